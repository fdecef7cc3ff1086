#pragma once
// Building OpenAI response bodies: chat.completion / chat.completion.chunk, text_completion
// (whole and streamed), usage, and logprobs in both of OpenAI's formats.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/openai_protocol.h"

namespace px {
class Tokenizer;
}

namespace px::server {

// What every response (and chunk) of one request shares.
struct ResponseContext {
  Endpoint endpoint = Endpoint::Chat;
  std::string id;        // "chatcmpl-..." / "cmpl-..."
  int64_t created = 0;   // Unix seconds
  std::string model;
  bool include_usage = false;  // streaming: "usage": null on chunks, a usage chunk at the end
};

// A fresh response id: the endpoint's prefix and 24 random alphanumerics.
std::string make_response_id(Endpoint endpoint);

// OpenAI's finish_reason for an engine finish: "stop" or "length" (a timeout is a length
// limit the server set; a cancelled request's client is gone). null for None / Error.
nlohmann::json finish_reason_json(FinishReason reason);

nlohmann::json usage_json(int prompt_tokens, int completion_tokens);

// The text OpenAI shows for a token: its bytes when they are valid UTF-8, otherwise each
// byte as "\xNN" (OpenAI's "bytes:" convention for partial characters).
std::string token_display_text(const std::string& bytes);

// Chat format: [{"token", "logprob", "bytes", "top_logprobs": [{"token","logprob","bytes"}]}].
nlohmann::json chat_logprobs_content(const std::vector<GeneratedToken>& tokens, const Tokenizer& tokenizer);

// Completions format: {"tokens", "token_logprobs", "top_logprobs": [{text: logprob}],
// "text_offset"}; offsets count bytes from `text_offset` (advanced past the tokens).
nlohmann::json completion_logprobs(const std::vector<GeneratedToken>& tokens, const Tokenizer& tokenizer,
                                   size_t& text_offset);

// Everything one choice produced, for the non-streaming response.
struct ChoiceResult {
  std::string text;
  std::vector<GeneratedToken> tokens;  // kept only when logprobs were asked for
  FinishReason finish = FinishReason::None;
  int completion_tokens = 0;
};

// chat.completion or text_completion with every choice and usage.
nlohmann::json full_response(const ResponseContext& ctx, const std::vector<ChoiceResult>& choices,
                             int prompt_tokens, bool logprobs, const Tokenizer& tokenizer);

// One streamed chunk for choice `index`. Chat: `delta` is the delta object; completions:
// `text` is the new text. `logprobs` is null or the chunk's logprobs in the endpoint's format;
// `finish` is null until the choice's last chunk.
nlohmann::json chat_chunk(const ResponseContext& ctx, int index, nlohmann::json delta,
                          nlohmann::json logprobs, nlohmann::json finish);
nlohmann::json completion_chunk(const ResponseContext& ctx, int index, const std::string& text,
                                nlohmann::json logprobs, nlohmann::json finish);
// The final chunk of a stream with include_usage: no choices, the whole request's usage.
nlohmann::json usage_chunk(const ResponseContext& ctx, int prompt_tokens, int completion_tokens);

}  // namespace px::server
