#pragma once
// Each subcommand registers itself on the app; its callback runs the command and may throw
// px::Error, which main() reports.
#include <CLI/CLI.hpp>

namespace px::cli {

void register_commands(CLI::App& app);

void register_generate(CLI::App& app);
void register_tokenize(CLI::App& app);
void register_model(CLI::App& app);
void register_bench(CLI::App& app);
void register_bench_serve(CLI::App& app);
void register_bench_swarm(CLI::App& app);
void register_bench_wire(CLI::App& app);
void register_chaos(CLI::App& app);
void register_serve(CLI::App& app);
void register_sim(CLI::App& app);
void register_swarm(CLI::App& app);  // run, join, status
void register_credentials(CLI::App& app);  // swarm init, invite, revoke, show

}  // namespace px::cli
