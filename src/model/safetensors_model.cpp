// SafetensorsModel: a Hugging Face model's weights, in one file or in shards named by
// model.safetensors.index.json. Shards are mapped on first use and checked against the index
// then; the index itself is checked completely when the model is opened.
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <set>
#include <system_error>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "core/error.h"
#include "model/hf_json.h"
#include "model/safetensors.h"

namespace px {
namespace {

using json = nlohmann::json;

constexpr size_t kMaxIndexBytes = 100'000'000;
constexpr int kMaxIndexDepth = 8;  // a valid index nests 2 deep


enum class PathKind { Missing, Directory, File, Other };

PathKind path_kind(const std::string& path, int* err = nullptr) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (err) *err = errno;
    return PathKind::Missing;
  }
  if (S_ISDIR(st.st_mode)) return PathKind::Directory;
  if (S_ISREG(st.st_mode)) return PathKind::File;
  return PathKind::Other;
}

std::string join_path(const std::string& dir, const std::string& file) {
  return (std::filesystem::path(dir) / file).string();
}

// Shard names must be plain file names next to the index: an index must not make us map
// files elsewhere ("../../secret", "/dev/zero").
void check_shard_file_name(const std::string& index, const std::string& tensor,
                           const std::string& shard) {
  const bool bad = shard.empty() || shard == "." || shard == ".." || shard.size() > 255 ||
                   shard.find_first_of(std::string_view("/\\\0", 3)) != std::string::npos;
  if (bad) {
    fail("{}: weight_map gives tensor '{}' the shard file \"{}\"; shard files must be plain file "
         "names in the index's directory",
         index, escape_for_message(tensor), escape_for_message(shard));
  }
}

}  // namespace

std::shared_ptr<SafetensorsModel> SafetensorsModel::open(const std::string& path) {
  int err = 0;
  switch (path_kind(path, &err)) {
    case PathKind::Missing: fail("{}: cannot open: {}", path, errno_text(err));
    case PathKind::Other: fail("{}: is not a regular file or directory", path);
    case PathKind::File:
      return path.ends_with(".json") ? open_index(path) : open_single(path);
    case PathKind::Directory: break;
  }
  const std::string single = join_path(path, kSingleFileName);
  if (path_kind(single) == PathKind::File) return open_single(single);
  const std::string index = join_path(path, kIndexFileName);
  if (path_kind(index) == PathKind::File) return open_index(index);
  fail("{}: no Hugging Face weights found (looked for {} and {})", path, kSingleFileName,
       kIndexFileName);
}

std::shared_ptr<SafetensorsModel> SafetensorsModel::open_single(const std::string& path) {
  std::shared_ptr<SafetensorsModel> model(new SafetensorsModel());
  model->name_ = path;
  std::shared_ptr<const SafetensorsFile> file = SafetensorsFile::open(path);
  model->shard_paths_ = {path};
  model->shard_tensors_.resize(1);
  for (const SafetensorsTensor& t : file->tensors()) {
    model->tensor_shard_.emplace(t.name, 0);
    model->shard_tensors_[0].push_back(t.name);
  }
  model->shards_ = {std::move(file)};
  return model;
}

std::shared_ptr<SafetensorsModel> SafetensorsModel::open_index(const std::string& path) {
  const std::string text = read_small_file(path, kMaxIndexBytes, "safetensors index");
  const json root = parse_strict_json(text, path, "the index", kMaxIndexDepth);
  if (!root.is_object()) fail("{}: the index must be a JSON object, found {}", path, root.type_name());

  std::shared_ptr<SafetensorsModel> model(new SafetensorsModel());
  model->name_ = path;
  model->sharded_ = true;
  if (const auto it = root.find("metadata"); it != root.end() && !it->is_null()) {
    if (!it->is_object()) fail("{}: \"metadata\" must be an object, found {}", path, it->type_name());
    for (const auto& [key, value] : it->items()) {
      model->index_metadata_.emplace(key, value.is_string() ? value.get<std::string>() : value.dump());
    }
  }
  const auto map_it = root.find("weight_map");
  if (map_it == root.end()) fail("{}: the index has no \"weight_map\"", path);
  const json& weight_map = *map_it;
  if (!weight_map.is_object()) {
    fail("{}: \"weight_map\" must be an object of tensor name -> shard file, found {}", path,
         weight_map.type_name());
  }
  if (weight_map.empty()) fail("{}: \"weight_map\" lists no tensors", path);

  // Shards are numbered in sorted file-name order, so the numbering does not depend on
  // the order of the JSON object.
  std::set<std::string> shard_names;
  for (const auto& [tensor, shard] : weight_map.items()) {
    if (tensor.empty()) fail("{}: weight_map has a tensor with an empty name", path);
    if (!shard.is_string()) {
      fail("{}: weight_map entry for tensor '{}' must be a file name string, found {}", path,
           escape_for_message(tensor), shard.type_name());
    }
    check_shard_file_name(path, tensor, shard.get_ref<const std::string&>());
    shard_names.insert(shard.get<std::string>());
  }
  const std::string dir = std::filesystem::path(path).parent_path().string();
  std::vector<std::string> names(shard_names.begin(), shard_names.end());
  for (const std::string& shard : names) {
    model->shard_paths_.push_back(dir.empty() ? shard : join_path(dir, shard));
  }
  model->shard_tensors_.resize(names.size());
  for (const auto& [tensor, shard] : weight_map.items()) {
    const auto index = static_cast<size_t>(
        std::lower_bound(names.begin(), names.end(), shard.get<std::string>()) - names.begin());
    model->tensor_shard_.emplace(tensor, index);
    model->shard_tensors_[index].push_back(tensor);
  }
  for (size_t i = 0; i < names.size(); ++i) {
    const std::string& shard_path = model->shard_paths_[i];
    int err = 0;
    const PathKind kind = path_kind(shard_path, &err);
    if (kind != PathKind::File) {
      fail("{}: shard file {} (holding {} tensors, e.g. '{}') {}", path, shard_path,
           model->shard_tensors_[i].size(), escape_for_message(model->shard_tensors_[i].front()),
           kind == PathKind::Missing ? fmt::format("cannot be opened: {}", errno_text(err))
                                     : std::string("is not a regular file"));
    }
  }
  model->shards_.resize(names.size());
  return model;
}

std::shared_ptr<const SafetensorsFile> SafetensorsModel::shard(size_t index) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (shards_[index]) return shards_[index];
  std::shared_ptr<const SafetensorsFile> file = SafetensorsFile::open(shard_paths_[index]);
  // The shard must agree with the index: it holds every tensor the index assigns to it,
  // and none that the index assigns elsewhere. Tensors the index does not know are never
  // looked up; they are only worth a warning.
  for (const std::string& name : shard_tensors_[index]) {
    if (!file->find(name)) {
      fail("{}: the index says tensor '{}' is in {}, but that file has no such tensor", name_,
           escape_for_message(name), shard_paths_[index]);
    }
  }
  size_t unlisted = 0;
  const std::string* example = nullptr;
  for (const SafetensorsTensor& t : file->tensors()) {
    const auto it = tensor_shard_.find(t.name);
    if (it == tensor_shard_.end()) {
      if (unlisted++ == 0) example = &t.name;
    } else if (it->second != index) {
      fail("{}: tensor '{}' is in {}, but the index says it is in {}", name_, escape_for_message(t.name),
           shard_paths_[index], shard_paths_[it->second]);
    }
  }
  if (unlisted > 0) {
    spdlog::warn("{}: {} tensors of {} (e.g. '{}') are not in the index and will be ignored", name_,
                 unlisted, shard_paths_[index], escape_for_message(*example));
  }
  shards_[index] = file;
  return file;
}

std::vector<std::string> SafetensorsModel::tensor_names() const {
  std::vector<std::string> names;
  names.reserve(tensor_shard_.size());
  for (const auto& [name, shard] : tensor_shard_) names.push_back(name);
  std::sort(names.begin(), names.end());
  return names;
}

const std::string* SafetensorsModel::shard_of(std::string_view name) const {
  const auto it = tensor_shard_.find(name);
  return it == tensor_shard_.end() ? nullptr : &shard_paths_[it->second];
}

SafetensorsTensorRef SafetensorsModel::find(std::string_view name) const {
  const auto it = tensor_shard_.find(name);
  if (it == tensor_shard_.end()) return {};
  std::shared_ptr<const SafetensorsFile> file = shard(it->second);
  const SafetensorsTensor* tensor = file->find(name);  // present: checked when the shard opened
  return SafetensorsTensorRef{std::move(file), tensor};
}

SafetensorsTensorRef SafetensorsModel::get(std::string_view name) const {
  SafetensorsTensorRef ref = find(name);
  if (!ref) fail("{}: missing tensor '{}'", name_, name);
  return ref;
}

void SafetensorsModel::open_all_shards() const {
  for (size_t i = 0; i < shard_paths_.size(); ++i) shard(i);
}

size_t SafetensorsModel::open_shard_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return static_cast<size_t>(std::count_if(shards_.begin(), shards_.end(),
                                           [](const auto& s) { return s != nullptr; }));
}

}  // namespace px
