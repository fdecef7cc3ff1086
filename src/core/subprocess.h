#pragma once
// A child process (a `parallax` node, for tests and benchmarks): its output is collected
// (stdout and stderr together), lines can be awaited with a deadline, and it is always reaped —
// killed if it is still running when the object goes away.
#include <chrono>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

namespace px {

class Subprocess {
 public:
  // Runs argv[0] (a path) with the rest as its arguments.
  explicit Subprocess(std::vector<std::string> argv);
  ~Subprocess();  // SIGKILL if running, then reaped
  Subprocess(const Subprocess&) = delete;
  Subprocess& operator=(const Subprocess&) = delete;

  // Waits for an output line matching `pattern`; returns its first capture group (or the whole
  // line), or "" after `timeout` or when the process ended.
  std::string wait_for(const std::string& pattern, std::chrono::milliseconds timeout);
  void signal(int sig);
  // Waits for the exit; returns the exit status (128 + signal when killed), or -1 on timeout.
  int wait(std::chrono::milliseconds timeout);
  bool running();
  std::string output();
  int pid() const { return pid_; }

 private:
  void read_output(int fd);

  int pid_ = -1;
  int status_ = -1;
  bool reaped_ = false;
  std::mutex mutex_;
  std::string output_;
  std::thread reader_;
};

}  // namespace px
