#pragma once
// A whole file mapped read-only into memory. Weight files are read through the mapping so
// only the pages a shard touches are ever loaded, and the kernel can drop them under pressure.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace px {

class MappedFile {
 public:
  // Maps `path`. `kind` says what the file should be ("safetensors file") for the errors:
  // missing, unreadable, a directory, not a regular file, empty.
  static std::unique_ptr<MappedFile> open(const std::string& path, std::string_view kind);

  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const std::string& path() const { return path_; }
  std::span<const uint8_t> bytes() const { return {static_cast<const uint8_t*>(data_), size_}; }
  size_t size() const { return size_; }

 private:
  MappedFile(std::string path, void* data, size_t size)
      : path_(std::move(path)), data_(data), size_(size) {}

  std::string path_;
  void* data_ = nullptr;
  size_t size_ = 0;
};

// Tells the kernel that the whole pages inside [data, data + size) will not be read soon, so
// it can drop them from this process (MADV_PAGEOUT). The contents stay valid: file pages are
// read again on the next access, and anonymous memory is never discarded. Used after a
// matrix has been repacked into a copy. Best effort: older kernels ignore it.
void advise_pages_unused(const void* data, size_t size);

}  // namespace px
