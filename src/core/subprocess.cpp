#include "core/subprocess.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <sstream>

namespace px {

Subprocess::Subprocess(std::vector<std::string> args) {
  int fds[2];
  if (args.empty() || pipe2(fds, O_CLOEXEC) != 0) return;
  pid_ = fork();
  if (pid_ == 0) {
    dup2(fds[1], 1);
    dup2(fds[1], 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  close(fds[1]);
  reader_ = std::thread([this, fd = fds[0]] { read_output(fd); });
}

Subprocess::~Subprocess() {
  if (running()) signal(SIGKILL);
  wait(std::chrono::seconds(10));
  if (reader_.joinable()) reader_.join();
}

void Subprocess::read_output(int fd) {
  char buf[4096];
  for (;;) {
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) break;
    std::lock_guard lock(mutex_);
    output_.append(buf, size_t(n));
  }
  close(fd);
}

std::string Subprocess::wait_for(const std::string& pattern, std::chrono::milliseconds timeout) {
  const std::regex re(pattern);
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      std::istringstream lines(output_);
      std::string line;
      std::smatch m;
      while (std::getline(lines, line)) {
        if (std::regex_search(line, m, re)) return m.size() > 1 ? m[1].str() : line;
      }
    }
    if (std::chrono::steady_clock::now() >= deadline || !running()) return "";
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

void Subprocess::signal(int sig) {
  if (pid_ > 0 && !reaped_) ::kill(pid_, sig);
}

bool Subprocess::running() {
  if (pid_ <= 0 || reaped_) return false;
  int status = 0;
  const pid_t r = waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    reaped_ = true;
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return true;
}

int Subprocess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return status_;
}

std::string Subprocess::output() {
  std::lock_guard lock(mutex_);
  return output_;
}

}  // namespace px
