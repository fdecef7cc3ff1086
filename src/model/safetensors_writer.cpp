#include "model/safetensors_writer.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>
#include <system_error>

#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/file_write.h"
#include "model/safetensors.h"

namespace px {
namespace {


}  // namespace

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  metadata_[key] = value;
}

void SafetensorsWriter::add_tensor(const std::string& name, const std::string& dtype,
                                   std::vector<int64_t> shape, std::vector<uint8_t> data) {
  if (name.empty()) fail("safetensors writer: a tensor needs a name");
  if (name == "__metadata__") fail("safetensors writer: '__metadata__' is reserved, not a tensor name");
  for (const Tensor& t : tensors_) {
    if (t.name == name) fail("safetensors writer: tensor '{}' added twice", name);
  }
  const SafetensorsDTypeInfo* info = safetensors_dtype_info(dtype);
  if (!info) fail("safetensors writer: tensor '{}' has unknown dtype \"{}\"", name, dtype);
  uint64_t bits = info->bits;
  for (int64_t d : shape) {
    if (d < 0 || __builtin_mul_overflow(bits, static_cast<uint64_t>(d), &bits)) {
      fail("safetensors writer: tensor '{}' has an invalid shape [{}]", name, fmt::join(shape, ", "));
    }
  }
  if (bits % 8 != 0 || bits / 8 != data.size()) {
    fail("safetensors writer: tensor '{}' of shape [{}] and dtype {} needs {} bits, got {} bytes",
         name, fmt::join(shape, ", "), dtype, bits, data.size());
  }
  tensors_.push_back(Tensor{name, dtype, info->bits, std::move(shape), std::move(data)});
}

void SafetensorsWriter::add_tensor(const std::string& name, DType type, std::vector<int64_t> shape,
                                   std::vector<uint8_t> data) {
  add_tensor(name, std::string(safetensors_dtype_name(type)), std::move(shape), std::move(data));
}

std::vector<const SafetensorsWriter::Tensor*> SafetensorsWriter::file_order() const {
  std::vector<const Tensor*> order;
  for (const Tensor& t : tensors_) order.push_back(&t);
  // Larger elements first: with an 8-aligned data section every offset is then a multiple
  // of its tensor's element size.
  std::stable_sort(order.begin(), order.end(),
                   [](const Tensor* a, const Tensor* b) { return a->bits > b->bits; });
  return order;
}

std::string SafetensorsWriter::header() const {
  nlohmann::ordered_json root = nlohmann::ordered_json::object();
  if (!metadata_.empty()) root["__metadata__"] = metadata_;
  uint64_t offset = 0;
  for (const Tensor* t : file_order()) {
    root[t->name] = {{"dtype", t->dtype},
                     {"shape", t->shape},
                     {"data_offsets", {offset, offset + t->data.size()}}};
    offset += t->data.size();
  }
  std::string text = root.dump();
  text.resize((text.size() + 7) / 8 * 8, ' ');
  return text;
}

std::vector<uint8_t> SafetensorsWriter::serialize() const {
  const std::string h = header();
  const uint64_t n = h.size();
  std::vector<uint8_t> out(8 + h.size() + data_bytes());
  std::memcpy(out.data(), &n, 8);
  std::memcpy(out.data() + 8, h.data(), h.size());
  size_t at = 8 + h.size();
  for (const Tensor* t : file_order()) {
    if (!t->data.empty()) std::memcpy(out.data() + at, t->data.data(), t->data.size());
    at += t->data.size();
  }
  return out;
}

void SafetensorsWriter::write(const std::string& path) const {
  const std::string h = header();
  const uint64_t n = h.size();
  write_file_atomically(path, [&](const WriteBytes& put) {
    put(&n, 8);
    put(h.data(), h.size());
    for (const Tensor* t : file_order()) put(t->data.data(), t->data.size());
  });
}

uint64_t SafetensorsWriter::data_bytes() const {
  uint64_t total = 0;
  for (const Tensor& t : tensors_) total += t.data.size();
  return total;
}

std::vector<std::string> SafetensorsWriter::tensor_names() const {
  std::vector<std::string> names;
  for (const Tensor& t : tensors_) names.push_back(t.name);
  return names;
}

void write_safetensors_index(const std::string& path,
                             const std::map<std::string, std::string>& weight_map,
                             uint64_t total_size) {
  nlohmann::ordered_json root;
  root["metadata"] = {{"total_size", total_size}};
  root["weight_map"] = weight_map;
  const std::string text = root.dump(2) + "\n";
  write_file_atomically(path, [&](const WriteBytes& put) { put(text.data(), text.size()); });
}

}  // namespace px
