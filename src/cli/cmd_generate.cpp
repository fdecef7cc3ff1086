#include "cli/commands.h"

namespace px::cli {

void register_generate(CLI::App& app) {
  app.add_subcommand("generate", "(not yet implemented)");
}

}  // namespace px::cli
