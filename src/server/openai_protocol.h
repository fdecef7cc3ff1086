#pragma once
// Parsing and validation of OpenAI request bodies (/v1/chat/completions, /v1/completions)
// into engine options. Every problem a client can cause becomes ApiError 400 naming the
// parameter; unknown fields are ignored, as OpenAI-compatible servers do.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "runtime/engine.h"
#include "server/errors.h"

namespace px::server {

enum class Endpoint { Chat, Completions };

inline constexpr int kMaxChoices = 8;          // n
inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxChatTopLogprobs = 20;
inline constexpr int kMaxCompletionLogprobs = 5;
inline constexpr int kDefaultCompletionMaxTokens = 16;  // OpenAI's default for /v1/completions
// Objects and arrays nested in a request body, the body itself included. Tool schemas nest a
// few dozen levels at most; copying or printing a JSON value recurses once per level, so a body
// of '[' repeated could otherwise exhaust a server thread's stack.
inline constexpr int kMaxJsonDepth = 128;

struct ParsedRequest {
  Endpoint endpoint = Endpoint::Chat;
  std::string model;                        // as requested; "" when absent

  // Chat: messages with content normalized to a string (other fields kept as sent).
  nlohmann::json messages = nlohmann::json::array();
  bool add_generation_prompt = true;
  nlohmann::json chat_template_kwargs = nlohmann::json::object();

  // Completions: the prompt as text, or as token ids.
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_tokens;

  // Engine options. max_tokens is only meaningful when max_tokens_given; otherwise the caller
  // fills the endpoint's default (chat: the rest of the context).
  RequestOptions options;
  bool max_tokens_given = false;
  bool seed_given = false;

  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

// `body` is the parsed JSON body. Throws ApiError (400) for wrong types and out-of-range
// values. Sampling defaults follow OpenAI: temperature 1, top_p 1, no top-k / min-p, no
// penalties.
ParsedRequest parse_chat_request(const nlohmann::json& body);
ParsedRequest parse_completion_request(const nlohmann::json& body);

// Parses a request body as a JSON object; malformed JSON (including invalid UTF-8), nesting
// deeper than kMaxJsonDepth and non-objects throw ApiError 400.
nlohmann::json parse_json_body(const std::string& body);

}  // namespace px::server
