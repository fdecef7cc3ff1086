// libFuzzer entry point for the OpenAI request parser (src/server/openai_protocol.h) and what
// the server does with a parsed request before the engine sees it. The input is a request body;
// it goes through both endpoints, as a client may post any body to either:
//   parse_json_body -> parse_chat_request / parse_completion_request: accept or throw ApiError
//   (400 naming the parameter), and what they accept is valid for the sampler;
//   chat: render_chat_prompt with the model's chat template -> px::Error at most (the server's
//   400 "cannot render the chat prompt"); the prompt text -> tokenizer.encode.
// The model is the smallest real one: the built-in vocabulary and ChatML template every
// synthetic model carries, read from a GGUF as `parallax serve` reads it. An ApiError becomes the
// error body the server sends, so its message is checked too.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "core/error.h"
#include "model/builtin_vocab.h"
#include "model/gguf.h"
#include "model/gguf_writer.h"
#include "server/chat_prompt.h"
#include "server/errors.h"
#include "server/openai_protocol.h"
#include "tokenizer/tokenizer.h"

namespace px::server {
namespace {

[[noreturn]] void broken(const char* what, const std::string& detail) {
  std::fprintf(stderr, "\nopenai_request_fuzz: %s\n%s\n", what, detail.c_str());
  std::abort();
}

std::shared_ptr<Tokenizer> builtin_tokenizer() {
  const std::filesystem::path path =
      std::filesystem::temp_directory_path() / fmt::format("parallax-fuzz-vocab-{}.gguf", ::getpid());
  GgufWriter writer;
  writer.set_string("general.architecture", "llama");
  write_builtin_vocab(writer);
  writer.write(path.string());
  std::shared_ptr<Tokenizer> tokenizer = Tokenizer::from_gguf(*GgufFile::open(path.string()));
  std::filesystem::remove(path);
  return tokenizer;
}

const Tokenizer& tokenizer() {
  static const std::shared_ptr<Tokenizer> instance = builtin_tokenizer();
  return *instance;
}

// What the server answers for a refused request.
void send_error(const ApiError& error) {
  if (error.status() != 400) broken("a request was refused with a status other than 400", error.what());
  const std::string body = dump_json(error_body(error));
  if (body.empty()) broken("an empty error body", error.what());
}

// The parser's promise: what it accepts the engine can run, so no later check has to refuse
// it without naming the parameter.
void check_parsed(const ParsedRequest& r) {
  try {
    r.options.sampling.validate();
  } catch (const Error& e) {
    broken("the parser accepted sampling parameters the sampler refuses", e.what());
  }
  if (r.n < 1 || r.n > kMaxChoices) broken("n out of range", std::to_string(r.n));
  if (r.options.stop.size() > size_t(kMaxStopStrings)) broken("too many stop strings", std::to_string(r.options.stop.size()));
  if (r.max_tokens_given && r.options.max_tokens < 0) broken("negative max_tokens", std::to_string(r.options.max_tokens));
  if (r.options.top_logprobs < 0 || r.options.top_logprobs > kMaxChatTopLogprobs)
    broken("top_logprobs out of range", std::to_string(r.options.top_logprobs));
  if (r.endpoint == Endpoint::Chat && (!r.messages.is_array() || r.messages.empty()))
    broken("a chat request without messages", r.messages.dump());
  if (r.endpoint == Endpoint::Completions && !r.prompt_text && r.prompt_tokens.empty())
    broken("a completion request without a prompt", "");
}

// The prompt the engine would get: rendering and tokenizing may refuse (px::Error, a 400).
void build_prompt(const ParsedRequest& r) {
  std::string text;
  try {
    if (r.endpoint == Endpoint::Chat)
      text = render_chat_prompt(tokenizer(), r.messages, r.add_generation_prompt, r.chat_template_kwargs);
    else if (r.prompt_text)
      text = *r.prompt_text;
    else
      return;  // token ids go to the engine as they are; it checks them against the vocabulary
    const std::vector<int32_t> ids = tokenizer().encode(text, /*add_special=*/false, /*parse_special=*/true);
    for (const int32_t id : ids)
      if (id < 0 || id >= tokenizer().n_vocab()) broken("the tokenizer produced an id outside its vocabulary", text);
  } catch (const Error&) {
    // The server answers 400 "cannot render the chat prompt: ...".
  }
}

void run(const std::string& body) {
  nlohmann::json json;
  try {
    json = parse_json_body(body);
  } catch (const ApiError& e) {
    return send_error(e);
  }
  for (const Endpoint endpoint : {Endpoint::Chat, Endpoint::Completions}) {
    std::optional<ParsedRequest> parsed;
    try {
      parsed = endpoint == Endpoint::Chat ? parse_chat_request(json) : parse_completion_request(json);
    } catch (const ApiError& e) {
      send_error(e);
      continue;
    }
    check_parsed(*parsed);
    build_prompt(*parsed);
  }
}

}  // namespace
}  // namespace px::server

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  px::server::tokenizer();  // once, before the first input: its set-up is not what is measured
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  px::server::run(std::string(reinterpret_cast<const char*>(data), size));
  return 0;
}
