#pragma once
// Writing a file so that a failure never leaves half of it behind: the bytes go to PATH.tmp.<pid>.<n>,
// which is renamed over PATH only once everything is written and flushed. The temporary name
// is unique per process and call, so writers racing for one PATH (nodes caching the digest of
// a model they share) never write into each other's file: the last rename wins, whole.
#include <cstddef>
#include <functional>
#include <string>

namespace px {

// Called by write_parts for each piece of the file, in order.
using WriteBytes = std::function<void(const void* data, size_t n)>;

// Throws px::Error naming the file and the system's reason; the temporary file is removed.
void write_file_atomically(const std::string& path, const std::function<void(const WriteBytes&)>& write_parts);

}  // namespace px
