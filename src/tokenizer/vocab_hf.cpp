// Hugging Face tokenizer.json (+ tokenizer_config.json) into a Vocab, for byte-level BPE
// tokenizers (Llama 3, Qwen2/2.5/3, GPT-2 style). The pre-tokenizer is recognised from its
// Split regex and mapped to the llama.cpp-compatible named set in pretokenizer.cpp, so HF
// files and GGUF files go through the same encoder.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "tokenizer/vocab.h"

namespace px {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

json read_json(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: cannot open", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  try {
    return json::parse(text.str());
  } catch (const json::exception& e) {
    fail("{}: invalid JSON: {}", path.string(), e.what());
  }
}

// The Split regexes of the families we know, by their distinctive digit rule.
std::string pre_tokenizer_name(const json& pre, const std::string& source) {
  std::vector<const json*> parts;
  if (pre.is_object() && pre.value("type", "") == "Sequence") {
    for (const json& p : pre.at("pretokenizers")) parts.push_back(&p);
  } else if (pre.is_object()) {
    parts.push_back(&pre);
  }
  bool byte_level = false, byte_level_regex = false;
  std::string split_regex;
  for (const json* p : parts) {
    const std::string type = p->value("type", "");
    if (type == "ByteLevel") {
      byte_level = true;
      byte_level_regex = p->value("use_regex", true);
    } else if (type == "Split" && p->contains("pattern") && p->at("pattern").contains("Regex")) {
      split_regex = p->at("pattern").at("Regex").get<std::string>();
    }
  }
  if (!byte_level) {
    fail("{}: only byte-level BPE tokenizer.json files are supported so far (no ByteLevel pre-tokenizer)", source);
  }
  if (split_regex.empty()) {
    if (byte_level_regex) return "gpt-2";
    fail("{}: a ByteLevel pre-tokenizer without a regex is not supported", source);
  }
  if (split_regex.find("\\p{N}{1,3}") != std::string::npos) return "llama3";
  if (split_regex.find("[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}|") != std::string::npos) return "qwen2";
  fail("{}: unrecognised pre-tokenizer regex '{}'", source, split_regex.substr(0, 120));
}

std::string token_content(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content")) return v.at("content").get<std::string>();
  return {};
}

}  // namespace

Vocab load_hf_vocab(const std::string& path) {
  const fs::path file = fs::is_directory(path) ? fs::path(path) / "tokenizer.json" : fs::path(path);
  const std::string source = file.string();
  const json t = read_json(file);
  Vocab v;
  v.source = source;
  try {
    const json& model = t.at("model");
    if (model.value("type", "") != "BPE") {
      fail("{}: model type '{}' is not supported (supported: BPE)", source, model.value("type", "?"));
    }
    v.kind = VocabKind::Bpe;
    v.pre = pre_tokenizer_name(t.value("pre_tokenizer", json()), source);
    v.ignore_merges = model.value("ignore_merges", false);
    // Ids: the model's vocab plus the added tokens; every id must be taken exactly once.
    std::vector<std::optional<TokenInfo>> by_id;
    auto place = [&](int64_t id, TokenInfo info) {
      if (id < 0 || id > (1 << 24)) fail("{}: token id {} out of range", source, id);
      if (size_t(id) >= by_id.size()) by_id.resize(size_t(id) + 1);
      by_id[size_t(id)] = std::move(info);
    };
    for (const auto& [text, id] : model.at("vocab").items()) place(id.get<int64_t>(), {text});
    for (const json& added : t.value("added_tokens", json::array())) {
      TokenInfo info{added.at("content").get<std::string>()};
      info.type = added.value("special", false) ? TokenType::Control : TokenType::UserDefined;
      info.lstrip = added.value("lstrip", false);
      info.rstrip = added.value("rstrip", false);
      place(added.at("id").get<int64_t>(), std::move(info));
    }
    for (size_t id = 0; id < by_id.size(); ++id) {
      if (!by_id[id]) fail("{}: token id {} is not defined", source, id);
      v.tokens.push_back(std::move(*by_id[id]));
    }
    for (const json& merge : model.at("merges")) {
      v.merges.push_back(merge.is_string() ? merge.get<std::string>()
                                           : merge.at(0).get<std::string>() + " " + merge.at(1).get<std::string>());
    }
  } catch (const json::exception& e) {
    fail("{}: unexpected structure: {}", source, e.what());
  }

  // tokenizer_config.json beside it: special tokens, BOS policy and the chat template.
  const fs::path config_path = file.parent_path() / "tokenizer_config.json";
  if (fs::exists(config_path)) {
    const json c = read_json(config_path);
    auto id_of = [&](const char* key) -> int32_t {
      const std::string text = c.contains(key) ? token_content(c.at(key)) : "";
      for (size_t i = 0; i < v.tokens.size() && !text.empty(); ++i) {
        if (v.tokens[i].text == text) return int32_t(i);
      }
      return -1;
    };
    v.bos_id = id_of("bos_token");
    v.eos_id = id_of("eos_token");
    v.pad_id = id_of("pad_token");
    v.add_bos = c.value("add_bos_token", v.bos_id >= 0 && v.pre == "llama3");
    if (c.contains("chat_template")) {
      const json& ct = c.at("chat_template");
      if (ct.is_string()) {
        v.chat_template = ct.get<std::string>();
      } else if (ct.is_array()) {
        for (const json& named : ct) {
          if (named.value("name", "") == "default") v.chat_template = named.value("template", "");
        }
      }
    }
  }
  v.build_index();
  return v;
}

}  // namespace px
