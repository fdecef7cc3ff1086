#include "model/model_info.h"

#include <fmt/format.h>

#include <map>
#include <string>

#include "core/dtype.h"

namespace px {
namespace {

std::string human_bytes(uint64_t bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double value = static_cast<double>(bytes);
  int unit = 0;
  while (value >= 1024.0 && unit < 4) {
    value /= 1024.0;
    ++unit;
  }
  return unit == 0 ? fmt::format("{} B", bytes) : fmt::format("{:.2f} {}", value, units[unit]);
}

// An integer hyperparameter as JSON: null when the file lacks it.
nlohmann::json int_or_null(const GgufFile& file, const std::string& key) {
  const auto v = file.find_int(key);
  return v ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json float_or_null(const GgufFile& file, const std::string& key) {
  const GgufValue* v = file.find(key);
  if (!v) return nullptr;
  const double value = v->as_float();
  // A FLOAT32 widened to double prints as 9.999999747378752e-06; show the float's own digits.
  if (v->type == GgufType::FLOAT32) return std::stod(fmt::format("{}", static_cast<float>(value)));
  return value;
}

std::string text(const nlohmann::json& v) {
  if (v.is_null()) return "(missing)";
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:g}", v.get<double>());
  return v.dump();
}

}  // namespace

nlohmann::json describe_model_json(const GgufFile& file) {
  nlohmann::json j;
  const std::string arch = file.find_string("general.architecture").value_or("");
  const std::string a = arch + ".";
  j["file"] = file.name();
  j["gguf_version"] = file.version();
  j["architecture"] = arch.empty() ? nlohmann::json(nullptr) : nlohmann::json(arch);
  const auto name = file.find_string("general.name");
  j["name"] = name ? nlohmann::json(*name) : nlohmann::json(nullptr);
  j["file_type"] = int_or_null(file, "general.file_type");
  j["layers"] = int_or_null(file, a + "block_count");
  j["embedding_length"] = int_or_null(file, a + "embedding_length");
  j["heads"] = int_or_null(file, a + "attention.head_count");
  j["kv_heads"] = int_or_null(file, a + "attention.head_count_kv");
  j["head_dim"] = int_or_null(file, a + "attention.key_length");
  if (j["head_dim"].is_null() && j["embedding_length"].is_number() && j["heads"].is_number() &&
      j["heads"].get<int64_t>() > 0) {
    j["head_dim"] = j["embedding_length"].get<int64_t>() / j["heads"].get<int64_t>();
  }
  j["feed_forward_length"] = int_or_null(file, a + "feed_forward_length");
  j["context_length"] = int_or_null(file, a + "context_length");
  j["rope_freq_base"] = float_or_null(file, a + "rope.freq_base");
  j["rms_epsilon"] = float_or_null(file, a + "attention.layer_norm_rms_epsilon");
  const auto scaling = file.find_string(a + "rope.scaling.type");
  j["rope_scaling"] = scaling ? nlohmann::json(*scaling) : nlohmann::json(nullptr);

  nlohmann::json vocab;
  const GgufValue* tokens = file.find("tokenizer.ggml.tokens");
  vocab["size"] = tokens && tokens->is_array() ? nlohmann::json(tokens->array_size())
                                               : int_or_null(file, a + "vocab_size");
  const auto model = file.find_string("tokenizer.ggml.model");
  const auto pre = file.find_string("tokenizer.ggml.pre");
  vocab["model"] = model ? nlohmann::json(*model) : nlohmann::json(nullptr);
  vocab["pre"] = pre ? nlohmann::json(*pre) : nlohmann::json(nullptr);
  vocab["chat_template"] = file.find("tokenizer.chat_template") != nullptr;
  j["vocab"] = vocab;

  int64_t params = 0;
  std::map<std::string, std::pair<int64_t, uint64_t>> by_type;  // name -> (count, bytes)
  for (const auto& t : file.tensors()) {
    params += t.n_elements;
    auto& entry = by_type[std::string(dtype_name(t.type))];
    entry.first += 1;
    entry.second += t.n_bytes;
  }
  j["tensors"] = file.tensors().size();
  j["parameters"] = params;
  j["file_size"] = file.file_size();
  nlohmann::json types = nlohmann::json::object();
  for (const auto& [type, entry] : by_type) {
    types[type] = {{"count", entry.first}, {"bytes", entry.second}};
  }
  j["tensor_types"] = types;
  return j;
}

std::string describe_model(const GgufFile& file) {
  const nlohmann::json j = describe_model_json(file);
  std::string out;
  auto line = [&](const char* label, const std::string& value) {
    out += fmt::format("{:<16}{}\n", label, value);
  };
  line("file", j["file"].get<std::string>());
  line("architecture", text(j["architecture"]));
  line("name", text(j["name"]));
  line("layers", text(j["layers"]));
  line("embedding", text(j["embedding_length"]));
  line("heads", fmt::format("{} (kv heads {})", text(j["heads"]), text(j["kv_heads"])));
  line("head dim", text(j["head_dim"]));
  line("feed forward", text(j["feed_forward_length"]));
  line("context", text(j["context_length"]));
  line("rope base", text(j["rope_freq_base"]));
  if (!j["rope_scaling"].is_null()) line("rope scaling", text(j["rope_scaling"]));
  const auto& v = j["vocab"];
  line("vocab", fmt::format("{} tokens, tokenizer {} (pre {})", text(v["size"]), text(v["model"]),
                            text(v["pre"])));
  line("chat template", v["chat_template"].get<bool>() ? "yes" : "no");
  const auto params = j["parameters"].get<int64_t>();
  line("parameters", fmt::format("{} ({:.2f} M)", params, static_cast<double>(params) / 1e6));
  line("file size", human_bytes(j["file_size"].get<uint64_t>()));
  line("tensors", fmt::format("{}", j["tensors"].get<size_t>()));
  for (const auto& [type, entry] : j["tensor_types"].items()) {
    out += fmt::format("  {:<14}{} tensors, {}\n", type, entry["count"].get<int64_t>(),
                       human_bytes(entry["bytes"].get<uint64_t>()));
  }
  return out;
}

}  // namespace px
