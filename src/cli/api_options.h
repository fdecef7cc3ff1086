#pragma once
// What every command that serves the API sets up the same way.
#include <signal.h>

#include <string>

#include "server/server.h"

namespace px::cli {

// The API's options for a model file or directory: clients may name it by `model_name` (default:
// the file name), the file name or its stem.
server::ServerOptions api_options(const std::string& host, int port, const std::string& api_key,
                                  const std::string& model_path, const std::string& model_name);

// Blocks SIGINT and SIGTERM in this thread and every thread started after it (they inherit
// the mask), so one thread can wait for them with sigwait; returns the set to wait on.
sigset_t block_stop_signals();

}  // namespace px::cli
