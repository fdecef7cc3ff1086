#include "cli/api_options.h"

#include <pthread.h>

#include <filesystem>

namespace px::cli {

server::ServerOptions api_options(const std::string& host, int port, const std::string& api_key,
                                  const std::string& model_path, const std::string& model_name) {
  const std::filesystem::path path(model_path);
  server::ServerOptions options;
  options.host = host;
  options.port = port;
  options.api_key = api_key;
  options.model_name = model_name.empty() ? path.filename().string() : model_name;
  options.model_aliases = {path.filename().string(), path.stem().string()};
  return options;
}

sigset_t block_stop_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

}  // namespace px::cli
