#include "core/file_write.h"

#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <system_error>

#include "core/error.h"

namespace px {

void write_file_atomically(const std::string& path, const std::function<void(const WriteBytes&)>& write_parts) {
  static std::atomic<uint64_t> next{0};
  const std::string tmp = path + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(next++);
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (!f) fail("{}: cannot create: {}", tmp, errno_text(errno));
  try {
    write_parts([&](const void* data, size_t n) {
      if (n != 0 && std::fwrite(data, 1, n, f) != n) fail("{}: write failed: {}", tmp, errno_text(errno));
    });
    if (std::fflush(f) != 0) fail("{}: write failed: {}", tmp, errno_text(errno));
  } catch (...) {
    std::fclose(f);
    std::remove(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail("{}: write failed: {}", tmp, errno_text(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    std::remove(tmp.c_str());
    fail("cannot rename {} to {}: {}", tmp, path, errno_text(err));
  }
}

}  // namespace px
