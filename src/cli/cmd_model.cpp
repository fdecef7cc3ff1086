#include "cli/commands.h"

namespace px::cli {

void register_model(CLI::App& app) {
  app.add_subcommand("model", "(not yet implemented)");
}

}  // namespace px::cli
