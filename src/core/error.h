#pragma once
// Errors: internals throw px::Error with a message that says what went wrong and where;
// boundaries (CLI, HTTP, RPC) catch and report it.
#include <fmt/format.h>

#include <stdexcept>
#include <string>
#include <system_error>

namespace px {

class Error : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> format, Args&&... args) {
  throw Error(fmt::format(format, std::forward<Args>(args)...));
}

// The system's text for an errno value, for messages about files and sockets.
inline std::string errno_text(int err) { return std::error_code(err, std::generic_category()).message(); }

}  // namespace px
