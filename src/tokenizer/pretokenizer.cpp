#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <spdlog/spdlog.h>


#include "core/error.h"
#include "tokenizer/unicode.h"

namespace px {

namespace {

// ---- Expressions (the tokenizer.json pre-tokenizer regexes of each model family) ----

// GPT-2: contractions, letters, digits, other symbols, each optionally after one space;
// runs of whitespace leave their last space to the following word.
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// Contractions spelled out case by case: (?i:...) would also fold 's' with U+017F.
#define PX_CONTRACTIONS "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])"

// Llama 3 (tiktoken cl100k style): numbers in groups of up to three digits.
constexpr const char* kLlama3 =
    PX_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen2: as Llama 3 but every digit on its own.
constexpr const char* kQwen2 =
    PX_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Qwen3.5: letters keep their combining marks.
constexpr const char* kQwen35 =
    PX_CONTRACTIONS R"(|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// GPT-4o / Llama 4 (o200k): words split at lower-to-upper case changes.
constexpr const char* kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)" PX_CONTRACTIONS
    R"(?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)" PX_CONTRACTIONS
    R"(?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// Mistral Tekken: as GPT-4o without contractions, single digits.
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+)"
    R"(|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*)"
    R"(|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

#undef PX_CONTRACTIONS

constexpr const char* kEachDigit = R"(\p{N})";
constexpr const char* kDigitRuns = R"(\p{N}+)";
constexpr const char* kUpToThreeDigits = R"(\p{N}{1,3})";
constexpr const char* kAsciiDigitTriples = "[0-9][0-9][0-9]";
constexpr const char* kLineBreak = R"([\r\n])";
// CJK ideographs, everything from U+0800 up to them, and Hangul (DeepSeek).
constexpr const char* kDeepseekCjk = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";

// Falcon and the llama.cpp "default" list cut runs of punctuation out first.
constexpr const char* kFalconPunctuation = R"([\p{P}\$\+<=>\^~\|`]+)";
constexpr const char* kDefaultPunctuation = R"([\p{P}\$\+<=>\^~\|]+)";

// DeepSeek LLM: letters are the cased letters (Lu/Ll/Lt) of the scripts listed.
constexpr const char* kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-\x{293})"
    R"(\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386}\x{388}-\x{38A})"
    R"(\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F}\x{531}-\x{556})"
    R"(\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA}\x{1CBD}-\x{1CBF})"
    R"(\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-\x{1F15}\x{1F18}-\x{1F1D})"
    R"(\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59}\x{1F5B}\x{1F5D})"
    R"(\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-\x{1FC4})"
    R"(\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC}\x{1FF2}-\x{1FF4})"
    R"(\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-\x{211D}\x{2124})"
    R"(\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-\x{213F})"
    R"(\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
    R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-\x{FB17})"
    R"(\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3})"
    R"(\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";
constexpr const char* kDeepseekLlmPunctuation =
    R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)";
constexpr const char* kTrailingSpace = R"(\s+$)";

// DeepSeek V3: CJK and kana runs, then words that may start with one ASCII punctuation.
constexpr const char* kDeepseekV3Cjk = R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)";
constexpr const char* kDeepseekV3Words =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+)"
    R"(| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

struct Spec {
  std::vector<std::string_view> names;  // first is the canonical one
  std::vector<const char*> patterns;
  bool ignore_merges = false;
  bool add_bos = false;
};

// Names as written by llama.cpp's converter into tokenizer.ggml.pre.
const std::vector<Spec>& specs() {
  static const std::vector<Spec> table = {
      {{"gpt-2", "phi-2", "mpt", "olmo", "jais", "jina-es", "jina-de", "jina-v2-es", "jina-v2-de",
        "jina-v1-en", "jina-v2-code", "roberta-bpe", "gigachat", "exaone4", "trillion",
        "granite-docling", "mellum", "modern-bert", "a.x-4.0"},
       {kGpt2}},
      {{"default"}, {kDefaultPunctuation, kGpt2, kDigitRuns, kAsciiDigitTriples}},
      {{"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral", "midm-2.0", "lfm2"},
       {kLlama3},
       /*ignore_merges=*/true,
       /*add_bos=*/true},
      {{"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"}, {kLlama3}},
      {{"qwen2", "deepseek-r1-qwen", "stablelm2", "megrez", "hunyuan", "kormo"}, {kQwen2}},
      {{"qwen35"}, {kQwen35}},
      {{"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone", "minerva-7b"},
       {kEachDigit, kGpt2}},
      {{"falcon"}, {kFalconPunctuation, kGpt2, kAsciiDigitTriples}},
      {{"deepseek-coder"},
       {kLineBreak, R"(\s?\p{L}+)", R"(\s?\p{P}+)", kDeepseekCjk, kEachDigit}},
      {{"deepseek-llm"},
       {kLineBreak, kDeepseekLlmLetters, kDeepseekLlmPunctuation, kTrailingSpace, kDeepseekCjk,
        kDigitRuns}},
      {{"deepseek-v3"}, {kUpToThreeDigits, kDeepseekV3Cjk, kDeepseekV3Words}},
      {{"gpt-4o", "llama4"}, {kGpt4o}},
      {{"tekken"}, {kTekken}, /*ignore_merges=*/true, /*add_bos=*/true},
  };
  return table;
}

const Spec* find_spec(std::string_view name) {
  for (const Spec& spec : specs()) {
    for (std::string_view alias : spec.names) {
      if (alias == name) return &spec;
    }
  }
  return nullptr;
}

const Spec& gpt2_spec() { return *find_spec("gpt-2"); }

}  // namespace

// One compiled expression. The compiled code is immutable and shared by all threads; each
// split() call makes its own match data.
struct PreTokenizer::Pattern {
  pcre2_code* code = nullptr;
  std::string source;

  explicit Pattern(const char* pattern) : source(pattern) {
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    // DOLLAR_ENDONLY: "$" means the end of the piece, never "before a final newline".
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_DOLLAR_ENDONLY, &error_code,
                         &error_offset, nullptr);
    if (code == nullptr) {
      PCRE2_UCHAR message[256];
      pcre2_get_error_message(error_code, message, sizeof(message));
      fail("pre-tokenizer expression does not compile at offset {}: {} (expression: {})",
           error_offset, reinterpret_cast<const char*>(message), source);
    }
    // JIT is an optimisation only: where it is unavailable the interpreter runs instead.
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);
  }
  ~Pattern() { pcre2_code_free(code); }
  Pattern(const Pattern&) = delete;
  Pattern& operator=(const Pattern&) = delete;

  // Appends the pieces of `piece` to `out`: every match and every gap between matches.
  void split_piece(std::string_view piece, pcre2_match_data* match_data,
                   std::vector<std::string_view>& out) const {
    const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
    size_t emitted = 0;  // end of what has been appended so far
    size_t start = 0;    // where the next search begins
    while (start < piece.size()) {
      int rc = pcre2_match(code, subject, piece.size(), start, PCRE2_NO_UTF_CHECK, match_data,
                           nullptr);
      if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
        rc = pcre2_match(code, subject, piece.size(), start, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT,
                         match_data, nullptr);
      }
      if (rc == PCRE2_ERROR_NOMATCH) break;
      if (rc < 0) {
        PCRE2_UCHAR message[256];
        pcre2_get_error_message(rc, message, sizeof(message));
        fail("pre-tokenizer expression failed on a {}-byte piece: {} (expression: {})",
             piece.size(), reinterpret_cast<const char*>(message), source);
      }
      const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match_data);
      const size_t match_begin = ovector[0];
      const size_t match_end = ovector[1];
      if (match_end == match_begin) {
        // An empty match cuts nothing; step over one character and search on.
        start = match_begin + unicode::char_length_at(piece, match_begin);
        continue;
      }
      if (match_begin > emitted) out.push_back(piece.substr(emitted, match_begin - emitted));
      out.push_back(piece.substr(match_begin, match_end - match_begin));
      emitted = start = match_end;
    }
    if (emitted < piece.size()) out.push_back(piece.substr(emitted));
  }
};

PreTokenizer::PreTokenizer(std::string_view name) {
  const Spec* spec = find_spec(name);
  if (spec == nullptr) {
    spdlog::warn("unknown pre-tokenizer '{}'; using the GPT-2 expression (tokens may differ "
                 "from the model's own tokenizer)",
                 name);
    spec = &gpt2_spec();
  }
  traits_ = traits(name);
  for (const char* pattern : spec->patterns) patterns_.push_back(std::make_unique<Pattern>(pattern));
}

PreTokenizer::PreTokenizer(PreTokenizerTraits traits, const std::vector<std::string>& patterns)
    : traits_(std::move(traits)) {
  if (patterns.empty()) fail("pre-tokenizer '{}' has no expressions", traits_.name);
  for (const std::string& pattern : patterns) {
    patterns_.push_back(std::make_unique<Pattern>(pattern.c_str()));
  }
}

PreTokenizer::~PreTokenizer() = default;

bool PreTokenizer::is_known(std::string_view name) { return find_spec(name) != nullptr; }

PreTokenizerTraits PreTokenizer::traits(std::string_view name) {
  const Spec* spec = find_spec(name);
  if (spec == nullptr) spec = &gpt2_spec();
  return PreTokenizerTraits{std::string(spec->names.front()), spec->ignore_merges, spec->add_bos};
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  for (size_t pos = 0; pos < text.size();) {
    uint32_t cp = 0;
    if (!unicode::decode_one(text, pos, cp)) {
      fail("pre-tokenizer input is not valid UTF-8 at byte {}", pos);
    }
  }
  std::vector<std::string_view> pieces;
  if (!text.empty()) pieces.push_back(text);
  std::vector<std::string_view> next;
  for (const auto& pattern : patterns_) {
    pcre2_match_data* match_data = pcre2_match_data_create_from_pattern(pattern->code, nullptr);
    if (match_data == nullptr) fail("out of memory creating PCRE2 match data");
    next.clear();
    next.reserve(pieces.size() * 2);
    try {
      for (std::string_view piece : pieces) pattern->split_piece(piece, match_data, next);
    } catch (...) {
      pcre2_match_data_free(match_data);
      throw;
    }
    pcre2_match_data_free(match_data);
    pieces.swap(next);
  }
  return pieces;
}

}  // namespace px
