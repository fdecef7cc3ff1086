#include "server/openai_response.h"

#include <fmt/format.h>

#include <cmath>
#include <random>

#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace px::server {

using nlohmann::json;

std::string make_response_id(Endpoint endpoint) {
  static constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local std::mt19937_64 rng{std::random_device{}()};
  std::uniform_int_distribution<size_t> pick(0, sizeof(kAlphabet) - 2);
  std::string id = endpoint == Endpoint::Chat ? "chatcmpl-" : "cmpl-";
  for (int i = 0; i < 24; ++i) id += kAlphabet[pick(rng)];
  return id;
}

json finish_reason_json(FinishReason reason) {
  switch (reason) {
    case FinishReason::Stop:
    case FinishReason::Cancelled: return "stop";
    case FinishReason::Length:
    case FinishReason::Timeout: return "length";
    default: return nullptr;
  }
}

json usage_json(int prompt_tokens, int completion_tokens) {
  return {{"prompt_tokens", prompt_tokens},
          {"completion_tokens", completion_tokens},
          {"total_tokens", prompt_tokens + completion_tokens}};
}

std::string token_display_text(const std::string& bytes) {
  size_t pos = 0;
  uint32_t cp;
  while (pos < bytes.size() && unicode::decode_one(bytes, pos, cp)) {
  }
  if (pos == bytes.size()) return bytes;
  std::string out;
  for (unsigned char b : bytes) out += fmt::format("\\x{:02x}", b);
  return out;
}

namespace {

json byte_array(const std::string& bytes) {
  json out = json::array();
  for (unsigned char b : bytes) out.push_back(int(b));
  return out;
}

// OpenAI reports -9999.0 for a logprob of -inf; JSON has no infinity.
double finite_logprob(float logprob) { return std::isfinite(logprob) ? double(logprob) : -9999.0; }

}  // namespace

json chat_logprobs_content(const std::vector<GeneratedToken>& tokens, const Tokenizer& tokenizer) {
  json content = json::array();
  for (const GeneratedToken& t : tokens) {
    json top = json::array();
    for (const TokenLogprob& alt : t.top) {
      const std::string bytes = tokenizer.token_piece(alt.token);
      top.push_back({{"token", token_display_text(bytes)},
                     {"logprob", finite_logprob(alt.logprob)},
                     {"bytes", byte_array(bytes)}});
    }
    content.push_back({{"token", token_display_text(t.text)},
                       {"logprob", finite_logprob(t.logprob)},
                       {"bytes", byte_array(t.text)},
                       {"top_logprobs", std::move(top)}});
  }
  return content;
}

json completion_logprobs(const std::vector<GeneratedToken>& tokens, const Tokenizer& tokenizer,
                         size_t& text_offset) {
  json out = {{"tokens", json::array()},
              {"token_logprobs", json::array()},
              {"top_logprobs", json::array()},
              {"text_offset", json::array()}};
  for (const GeneratedToken& t : tokens) {
    out["tokens"].push_back(token_display_text(t.text));
    out["token_logprobs"].push_back(finite_logprob(t.logprob));
    json top = json::object();
    for (const TokenLogprob& alt : t.top) {
      const std::string text = token_display_text(tokenizer.token_piece(alt.token));
      if (!top.contains(text)) top[text] = finite_logprob(alt.logprob);
    }
    out["top_logprobs"].push_back(std::move(top));
    out["text_offset"].push_back(text_offset);
    text_offset += t.text.size();
  }
  return out;
}

json full_response(const ResponseContext& ctx, const std::vector<ChoiceResult>& choices, int prompt_tokens,
                   bool logprobs, const Tokenizer& tokenizer) {
  const bool chat = ctx.endpoint == Endpoint::Chat;
  json out = {{"id", ctx.id},
              {"object", chat ? "chat.completion" : "text_completion"},
              {"created", ctx.created},
              {"model", ctx.model},
              {"system_fingerprint", nullptr}};
  json list = json::array();
  int completion_tokens = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceResult& c = choices[i];
    completion_tokens += c.completion_tokens;
    json choice = {{"index", i}};
    json lp = nullptr;
    if (chat) {
      if (logprobs) lp = {{"content", chat_logprobs_content(c.tokens, tokenizer)}, {"refusal", nullptr}};
      choice["message"] = {{"role", "assistant"}, {"content", c.text}, {"refusal", nullptr}};
    } else {
      size_t offset = 0;
      if (logprobs) lp = completion_logprobs(c.tokens, tokenizer, offset);
      choice["text"] = c.text;
    }
    choice["logprobs"] = std::move(lp);
    choice["finish_reason"] = finish_reason_json(c.finish);
    list.push_back(std::move(choice));
  }
  out["choices"] = std::move(list);
  out["usage"] = usage_json(prompt_tokens, completion_tokens);
  return out;
}

namespace {

json chunk_base(const ResponseContext& ctx) {
  json out = {{"id", ctx.id},
              {"object", ctx.endpoint == Endpoint::Chat ? "chat.completion.chunk" : "text_completion"},
              {"created", ctx.created},
              {"model", ctx.model},
              {"system_fingerprint", nullptr}};
  if (ctx.include_usage) out["usage"] = nullptr;
  return out;
}

}  // namespace

json chat_chunk(const ResponseContext& ctx, int index, json delta, json logprobs, json finish) {
  json out = chunk_base(ctx);
  out["choices"] = json::array({{{"index", index},
                                 {"delta", std::move(delta)},
                                 {"logprobs", std::move(logprobs)},
                                 {"finish_reason", std::move(finish)}}});
  return out;
}

json completion_chunk(const ResponseContext& ctx, int index, const std::string& text, json logprobs,
                      json finish) {
  json out = chunk_base(ctx);
  out["choices"] = json::array({{{"index", index},
                                 {"text", text},
                                 {"logprobs", std::move(logprobs)},
                                 {"finish_reason", std::move(finish)}}});
  return out;
}

json usage_chunk(const ResponseContext& ctx, int prompt_tokens, int completion_tokens) {
  json out = chunk_base(ctx);
  out["choices"] = json::array();
  out["usage"] = usage_json(prompt_tokens, completion_tokens);
  return out;
}

}  // namespace px::server
