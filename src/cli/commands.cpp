#include "cli/commands.h"

namespace px::cli {

void register_commands(CLI::App& app) {
  register_generate(app);
  register_tokenize(app);
  register_model(app);
  register_bench(app);
  register_bench_serve(app);
  register_bench_swarm(app);
  register_bench_wire(app);
  register_chaos(app);
  register_serve(app);
  register_sim(app);
  register_swarm(app);
  register_credentials(app);
}

}  // namespace px::cli
