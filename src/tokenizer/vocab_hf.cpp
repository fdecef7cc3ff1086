// Reading a Hugging Face tokenizer.json (+ tokenizer_config.json) into a Vocab, so that the
// same encoders as for GGUF vocabularies run on it.
#include "tokenizer/vocab_hf.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "tokenizer/tokenizer.h"

namespace px {

namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

constexpr std::string_view kEscapedSpace = "\xe2\x96\x81";  // U+2581, SentencePiece's space

// The expression HF's ByteLevel pre-tokenizer splits with when use_regex is true (GPT-2's).
constexpr const char* kByteLevelRegex =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Split regexes of well-known tokenizer.json files and the named set of ours that splits the
// same way (ours spell the case-insensitive contractions out; see pretokenizer.cpp).
struct KnownSplit {
  std::string_view regex;
  std::string_view pre;
};
constexpr KnownSplit kKnownSplits[] = {
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "llama3"},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "qwen2"},
    {kByteLevelRegex, "gpt-2"},
};

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("{}: can not open the file", path.string());
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

json parse(std::string_view text, const std::string& source) {
  try {
    return json::parse(text.begin(), text.end());
  } catch (const json::parse_error& e) {
    fail("{}: not valid JSON: {}", source, e.what());
  }
}

// What the pre_tokenizer and normalizer sections say, reduced to what our encoders model.
struct Pipeline {
  bool byte_level = false;        // ByteLevel pre-tokenizer: byte-level BPE
  bool spm_style = false;         // spaces become U+2581 (Replace normalizer or Metaspace)
  bool prepend_space = false;     // a U+2581 goes in front (Prepend / Metaspace prepend)
  bool nfc = false;               // NFC normalizer
  std::vector<std::string> splits;  // regexes applied in order before BPE
};

std::string regex_of_split(const json& step, const std::string& source) {
  const json& pattern = step.value("pattern", json::object());
  if (pattern.contains("Regex") && pattern["Regex"].is_string()) return pattern["Regex"];
  if (pattern.contains("String") && pattern["String"].is_string()) {
    // A literal: quote it for PCRE2.
    return "\\Q" + pattern["String"].get<std::string>() + "\\E";
  }
  fail("{}: pre_tokenizer Split has no pattern.Regex or pattern.String", source);
}

void read_pre_tokenizer(const json& step, const std::string& source, Pipeline& out) {
  if (step.is_null()) return;
  const std::string type = step.value("type", "");
  if (type == "Sequence") {
    for (const json& inner : step.value("pretokenizers", json::array())) {
      read_pre_tokenizer(inner, source, out);
    }
  } else if (type == "ByteLevel") {
    out.byte_level = true;
    if (step.value("add_prefix_space", false)) {
      fail("{}: pre_tokenizer ByteLevel with add_prefix_space=true is not supported", source);
    }
    if (step.value("use_regex", true)) out.splits.emplace_back(kByteLevelRegex);
  } else if (type == "Split") {
    const std::string behavior = step.value("behavior", "Isolated");
    // Our pre-tokenizer keeps every match and every gap as its own piece: HF's "Isolated".
    if (behavior != "Isolated" || step.value("invert", false)) {
      fail("{}: pre_tokenizer Split with behavior '{}'{} is not supported (only 'Isolated')",
           source, behavior, step.value("invert", false) ? " and invert=true" : "");
    }
    out.splits.push_back(regex_of_split(step, source));
  } else if (type == "Digits") {
    out.splits.emplace_back(step.value("individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (type == "Metaspace") {
    out.spm_style = true;
    // split=true cuts the text before every U+2581; merging across the whole text differs only
    // where the vocabulary has tokens with a U+2581 inside (runs of spaces).
    if (step.value("split", false)) {
      spdlog::warn("{}: pre_tokenizer Metaspace split=true is approximated (runs of spaces may "
                   "tokenize differently)",
                   source);
    }
    // Newer files say prepend_scheme ("always", "first", "never"), older add_prefix_space.
    if (step.contains("prepend_scheme") && step["prepend_scheme"].is_string()) {
      out.prepend_space = step["prepend_scheme"] != "never";
    } else {
      out.prepend_space = step.value("add_prefix_space", true);
    }
  } else {
    fail("{}: pre_tokenizer type '{}' is not supported (supported: ByteLevel, Split, Digits, "
         "Metaspace, Sequence)",
         source, type);
  }
}

void read_normalizer(const json& step, const std::string& source, Pipeline& out) {
  if (step.is_null()) return;
  const std::string type = step.value("type", "");
  if (type == "Sequence") {
    for (const json& inner : step.value("normalizers", json::array())) {
      read_normalizer(inner, source, out);
    }
  } else if (type == "Prepend" && step.value("prepend", "") == kEscapedSpace) {
    out.prepend_space = true;
  } else if (type == "Replace" && step.value("content", "") == kEscapedSpace &&
             step.value("pattern", json::object()).value("String", "") == " ") {
    out.spm_style = true;
  } else if (type == "NFC") {
    out.nfc = true;
  } else {
    fail("{}: normalizer type '{}' is not supported (supported: SentencePiece-style Prepend and "
         "Replace of ' ' by U+2581, NFC, Sequence)",
         source, type);
  }
}

// A boolean setting, or `fallback` when absent or null.
bool bool_or(const json& object, const char* key, bool fallback) {
  if (!object.contains(key) || !object[key].is_boolean()) return fallback;
  return object[key].get<bool>();
}

// A token named in tokenizer_config.json: a string, {"content": ...} (AddedToken) or null.
std::optional<std::string> token_name(const json& config, const char* key,
                                      const std::string& config_source) {
  if (!config.contains(key) || config[key].is_null()) return std::nullopt;
  const json& value = config[key];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_object() && value.contains("content") && value["content"].is_string()) {
    return value["content"].get<std::string>();
  }
  fail("{}: {} should be a token text or an object with 'content'", config_source, key);
}

std::optional<std::string> read_chat_template(const json& config, const std::string& config_source) {
  if (!config.contains("chat_template")) return std::nullopt;
  const json& value = config["chat_template"];
  if (value.is_string()) return value.get<std::string>();
  if (value.is_array()) {
    // Named templates: the "default" one, else the first.
    const json* chosen = nullptr;
    for (const json& entry : value) {
      if (!entry.is_object() || !entry.contains("template") || !entry["template"].is_string()) {
        fail("{}: chat_template entries should be objects with 'name' and 'template'",
             config_source);
      }
      if (chosen == nullptr || entry.value("name", "") == "default") chosen = &entry;
      if (entry.value("name", "") == "default") break;
    }
    if (chosen != nullptr) return (*chosen)["template"].get<std::string>();
    return std::nullopt;
  }
  if (value.is_null()) return std::nullopt;
  fail("{}: chat_template should be a string or a list of {{name, template}}", config_source);
}

// The special tokens TemplateProcessing puts before and after a single sequence.
struct TemplateEnds {
  std::optional<std::string> first;  // the first token before the sequence
  std::optional<std::string> last;   // the last token after it
};

void read_post_processor(const json& step, TemplateEnds& ends) {
  if (step.is_null()) return;
  const std::string type = step.value("type", "");
  if (type == "Sequence") {
    for (const json& inner : step.value("processors", json::array())) read_post_processor(inner, ends);
    return;
  }
  if (type != "TemplateProcessing") return;  // ByteLevel etc. add no tokens
  bool seen_sequence = false;
  for (const json& item : step.value("single", json::array())) {
    if (item.contains("Sequence")) {
      seen_sequence = true;
    } else if (item.contains("SpecialToken")) {
      const std::string name = item["SpecialToken"].value("id", "");
      if (!seen_sequence && !ends.first) ends.first = name;
      if (seen_sequence) ends.last = name;
    }
  }
}

// HF BPE merges are "left right" strings or [left, right] pairs.
std::string merge_text(const json& merge, size_t index, const std::string& source) {
  if (merge.is_string()) return merge.get<std::string>();
  if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
    return merge[0].get<std::string>() + " " + merge[1].get<std::string>();
  }
  fail("{}: model.merges[{}] should be \"left right\" or [left, right]", source, index);
}

bool is_byte_token_name(std::string_view text) {
  auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  return text.size() == 6 && text.substr(0, 3) == "<0x" && text[5] == '>' && hex(text[3]) &&
         hex(text[4]);
}

// SentencePiece-style scores from BPE merge ranks. HF BPE has no scores, but our SPM encoder
// merges the adjacent pair whose joined text has the highest score. Giving the token a merge
// produces the score -rank (of its first merge) makes it merge in BPE rank order; tokens no
// merge produces score below every merge, so they are formed only when nothing else can be.
// (A token formed by a pair that is not itself in the merge list could still differ from
// HF; the merge lists of SentencePiece-converted vocabularies do not have such pairs.)
void scores_from_merges(Vocab& vocab, const StringMap& ids) {
  const float unreachable = -static_cast<float>(vocab.merges.size() + 1);
  for (TokenInfo& token : vocab.tokens) token.score = unreachable;
  for (size_t rank = vocab.merges.size(); rank-- > 0;) {
    const std::string& merge = vocab.merges[rank];
    const size_t space = merge.size() > 1 ? merge.find(' ', 1) : std::string::npos;
    if (space == std::string::npos) continue;
    const std::string joined = merge.substr(0, space) + merge.substr(space + 1);
    const auto it = ids.find(joined);
    // Walking from the last rank down, the first merge's score is written last.
    if (it != ids.end()) vocab.tokens[static_cast<size_t>(it->second)].score = -static_cast<float>(rank);
  }
}

int32_t id_of(const StringMap& ids, const std::string& text, const std::string& where) {
  const auto it = ids.find(text);
  if (it == ids.end()) fail("{} names token '{}', which is not in the vocabulary", where, text);
  return it->second;
}

Vocab build_vocab(const json& tokenizer, const json& config, const std::string& source,
                  const std::string& config_source) {
  if (!tokenizer.is_object()) fail("{}: should hold a JSON object", source);
  if (!tokenizer.contains("model") || !tokenizer["model"].is_object()) {
    fail("{}: 'model' is missing; this is not a tokenizer.json", source);
  }
  const json& model = tokenizer["model"];
  // Old files leave out model.type; merges then mean BPE.
  const std::string type = model.value("type", model.contains("merges") ? "BPE" : "");
  if (type != "BPE") {
    fail("{}: model.type is '{}'; only 'BPE' tokenizers are supported (not WordPiece, Unigram "
         "or WordLevel)",
         source, type);
  }
  if (!model.contains("vocab") || !model["vocab"].is_object()) {
    fail("{}: model.vocab is missing or not an object of token -> id", source);
  }
  if (!model.contains("merges") || !model["merges"].is_array()) {
    fail("{}: model.merges is missing or not an array", source);
  }
  for (const char* key : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(key) && model[key].is_string() && !model[key].get<std::string>().empty()) {
      fail("{}: model.{} is not supported", source, key);
    }
  }

  Pipeline pipeline;
  read_normalizer(tokenizer.value("normalizer", json()), source, pipeline);
  read_pre_tokenizer(tokenizer.value("pre_tokenizer", json()), source, pipeline);

  Vocab vocab;
  vocab.source = source;
  vocab.normalize_nfc = pipeline.nfc;
  if (pipeline.byte_level) {
    vocab.kind = VocabKind::Bpe;
  } else if (pipeline.spm_style) {
    vocab.kind = VocabKind::Spm;
  } else {
    fail("{}: the tokenizer is neither byte-level (pre_tokenizer ByteLevel) nor SentencePiece-"
         "style (Metaspace, or a normalizer replacing ' ' by U+2581)",
         source);
  }

  // Token texts by id: the model's vocabulary plus the added tokens, which may lie beyond it.
  std::vector<std::pair<std::string, int64_t>> entries;
  int64_t max_id = -1;
  for (const auto& [text, id] : model["vocab"].items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= INT32_MAX) {
      fail("{}: model.vocab['{}'] should be a token id, is {}", source, text, id.dump());
    }
    entries.emplace_back(text, id.get<int64_t>());
    max_id = std::max(max_id, id.get<int64_t>());
  }
  const json added = tokenizer.value("added_tokens", json::array());
  if (!added.is_array()) fail("{}: added_tokens should be an array", source);
  for (size_t i = 0; i < added.size(); ++i) {
    const json& token = added[i];
    if (!token.is_object() || !token.contains("id") || !token["id"].is_number_integer() ||
        token["id"].get<int64_t>() < 0 || token["id"].get<int64_t>() >= INT32_MAX ||
        !token.contains("content") || !token["content"].is_string()) {
      fail("{}: added_tokens[{}] should have an integer 'id' and a string 'content'", source, i);
    }
    max_id = std::max(max_id, token["id"].get<int64_t>());
  }
  if (max_id < 0) fail("{}: model.vocab is empty", source);
  vocab.tokens.resize(static_cast<size_t>(max_id) + 1);
  for (auto& [text, id] : entries) {
    TokenInfo& token = vocab.tokens[static_cast<size_t>(id)];
    if (!token.text.empty()) {
      fail("{}: model.vocab gives id {} to both '{}' and '{}'", source, id, token.text, text);
    }
    token.text = std::move(text);
  }
  const bool byte_fallback = model.value("byte_fallback", false);
  if (byte_fallback) {
    for (TokenInfo& token : vocab.tokens) {
      if (is_byte_token_name(token.text)) token.type = TokenType::Byte;
    }
  }
  for (const json& entry : added) {
    TokenInfo& token = vocab.tokens[static_cast<size_t>(entry["id"].get<int64_t>())];
    token.text = entry["content"].get<std::string>();
    // Special added tokens are matched only when special tokens are parsed; the others always.
    // ("normalized" added tokens are matched against the raw text here, which differs from HF
    // only for non-special tokens in SentencePiece-style vocabularies.)
    token.type = entry.value("special", false) ? TokenType::Control : TokenType::UserDefined;
    token.lstrip = entry.value("lstrip", false);
    token.rstrip = entry.value("rstrip", false);
  }
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    if (vocab.tokens[id].text.empty()) {
      // A gap in the ids: a placeholder no input produces keeps the others addressable.
      vocab.tokens[id].text = "[HF_UNUSED_" + std::to_string(id) + "]";
      vocab.tokens[id].type = TokenType::Unused;
    }
  }
  StringMap ids;
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    ids.emplace(vocab.tokens[id].text, static_cast<int32_t>(id));
  }

  const json& merges = model["merges"];
  vocab.merges.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) vocab.merges.push_back(merge_text(merges[i], i, source));

  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    vocab.unk_id = id_of(ids, model["unk_token"], source + ": model.unk_token");
    vocab.tokens[static_cast<size_t>(vocab.unk_id)].type = TokenType::Unknown;
  }

  if (vocab.kind == VocabKind::Bpe) {
    vocab.ignore_merges = model.value("ignore_merges", false);
    std::string pre;
    if (pipeline.splits.size() == 1) {
      for (const KnownSplit& known : kKnownSplits) {
        if (pipeline.splits[0] == known.regex) pre = known.pre;
      }
    }
    if (!pre.empty()) {
      vocab.pre = pre;
    } else {
      vocab.pre = "tokenizer.json";  // only named in messages
      vocab.pre_patterns = pipeline.splits;
      // No split at all: the whole text is one word.
      if (vocab.pre_patterns.empty()) vocab.pre_patterns.emplace_back(R"([\s\S]+)");
    }
  } else {
    vocab.add_space_prefix = pipeline.prepend_space;
    vocab.add_space_prefix = bool_or(config, "add_prefix_space", vocab.add_space_prefix);
    // Our SPM encoder needs no merge list, only the scores derived from it.
    scores_from_merges(vocab, ids);
    vocab.merges.clear();
  }

  // BOS/EOS: tokenizer_config.json first, then what the post-processor template adds.
  TemplateEnds ends;
  read_post_processor(tokenizer.value("post_processor", json()), ends);
  const auto bos = token_name(config, "bos_token", config_source);
  const auto eos = token_name(config, "eos_token", config_source);
  const auto pad = token_name(config, "pad_token", config_source);
  if (bos) vocab.bos_id = id_of(ids, *bos, config_source + ": bos_token");
  else if (ends.first) vocab.bos_id = id_of(ids, *ends.first, source + ": post_processor");
  if (eos) vocab.eos_id = id_of(ids, *eos, config_source + ": eos_token");
  else if (ends.last) vocab.eos_id = id_of(ids, *ends.last, source + ": post_processor");
  if (pad) vocab.pad_id = id_of(ids, *pad, config_source + ": pad_token");

  const bool template_bos = ends.first && vocab.bos_id == ids.find(*ends.first)->second;
  const bool template_eos = ends.last && vocab.eos_id == ids.find(*ends.last)->second;
  vocab.add_bos = bool_or(config, "add_bos_token", template_bos);
  vocab.add_eos = bool_or(config, "add_eos_token", template_eos);
  vocab.chat_template = read_chat_template(config, config_source);

  vocab.build_index();
  return vocab;
}

}  // namespace

Vocab load_hf_vocab_text(std::string_view tokenizer_json, std::string_view config_json,
                         const std::string& source) {
  const std::string config_source = source + " (tokenizer_config.json)";
  const json tokenizer = parse(tokenizer_json, source);
  json config = config_json.empty() ? json::object() : parse(config_json, config_source);
  if (!config.is_object()) fail("{}: should hold a JSON object", config_source);
  try {
    return build_vocab(tokenizer, config, source, config_source);
  } catch (const json::exception& e) {
    // A field of an unexpected JSON type that the checks above did not name.
    fail("{}: unexpected content: {}", source, e.what());
  }
}

Vocab load_hf_vocab(const std::string& dir_or_file) {
  const fs::path given(dir_or_file);
  std::error_code error;
  const bool is_dir = fs::is_directory(given, error);
  const fs::path tokenizer_path = is_dir ? given / "tokenizer.json" : given;
  if (!fs::exists(tokenizer_path, error)) {
    fail("{}: no such file; expected a Hugging Face tokenizer.json or the folder holding it",
         tokenizer_path.string());
  }
  const fs::path folder = tokenizer_path.parent_path();
  const fs::path config_path = folder / "tokenizer_config.json";
  const std::string config_text = fs::exists(config_path, error) ? read_text(config_path) : "";
  Vocab vocab = load_hf_vocab_text(read_text(tokenizer_path), config_text, tokenizer_path.string());
  // Newer transformers keep the template in its own file.
  const fs::path template_path = folder / "chat_template.jinja";
  if (!vocab.chat_template && fs::exists(template_path, error)) {
    vocab.chat_template = read_text(template_path);
  }
  return vocab;
}

std::shared_ptr<Tokenizer> Tokenizer::from_hf(const std::string& dir_or_file) {
  return from_vocab(load_hf_vocab(dir_or_file));
}

}  // namespace px
