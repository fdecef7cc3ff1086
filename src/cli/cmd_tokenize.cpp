#include "cli/commands.h"

namespace px::cli {

void register_tokenize(CLI::App& app) {
  app.add_subcommand("tokenize", "(not yet implemented)");
}

}  // namespace px::cli
