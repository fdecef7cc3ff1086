// OpenAI request parsing and response building without HTTP: defaults, type and range
// checks, the prompt forms, logprob formats, ChatML rendering, SSE framing, metrics text.
#include <gtest/gtest.h>

#include "server/chat_prompt.h"
#include "server/metrics.h"
#include "server/openai_protocol.h"
#include "server/openai_response.h"
#include "server/sse.h"
#include "server_fake_engine.h"

namespace px::server {
namespace {

using nlohmann::json;

json chat(json extra = json::object()) {
  json body = {{"messages", json::array({{{"role", "user"}, {"content", "hi"}}})}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

// The parameter an ApiError names, or "<no error>".
std::string rejected_param(const std::function<void()>& parse) {
  try {
    parse();
  } catch (const ApiError& e) {
    EXPECT_EQ(e.status(), 400);
    return e.param();
  }
  return "<no error>";
}

TEST(ServerProtocol, ChatDefaultsFollowOpenAI) {
  const ParsedRequest r = parse_chat_request(chat());
  EXPECT_EQ(r.n, 1);
  EXPECT_FALSE(r.stream);
  EXPECT_FALSE(r.max_tokens_given);
  EXPECT_FALSE(r.seed_given);
  EXPECT_FALSE(r.options.logprobs);
  EXPECT_EQ(r.options.sampling.temperature, 1.0f);
  EXPECT_EQ(r.options.sampling.top_p, 1.0f);
  EXPECT_EQ(r.options.sampling.top_k, 0);
  EXPECT_EQ(r.options.sampling.min_p, 0.0f);
  EXPECT_TRUE(r.add_generation_prompt);
  EXPECT_NO_THROW(r.options.sampling.validate());
}

TEST(ServerProtocol, NullMeansNotSet) {
  const ParsedRequest r = parse_chat_request(chat({{"temperature", nullptr}, {"stop", nullptr}, {"seed", nullptr}}));
  EXPECT_EQ(r.options.sampling.temperature, 1.0f);
  EXPECT_TRUE(r.options.stop.empty());
  EXPECT_FALSE(r.seed_given);
}

TEST(ServerProtocol, ContentPartsAreJoinedIntoText) {
  const json messages = json::array(
      {{{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "a"}}, {{"type", "text"}, {"text", "b"}}})}},
       {{"role", "assistant"}, {"content", nullptr}}});
  const ParsedRequest r = parse_chat_request(chat({{"messages", messages}}));
  EXPECT_EQ(r.messages[0]["content"], "ab");
  EXPECT_EQ(r.messages[1]["content"], "");
  EXPECT_EQ(rejected_param([] {
              parse_chat_request(chat({{"messages", json::array({{{"role", "user"},
                                                                  {"content", json::array({{{"type", "image_url"}}})}}})}}));
            }),
            "messages[0].content");
  EXPECT_EQ(rejected_param([] { parse_chat_request(chat({{"messages", json::array({{{"role", "wizard"}, {"content", "x"}}})}})); }),
            "messages[0].role");
  EXPECT_EQ(rejected_param([] { parse_chat_request(chat({{"messages", json::array()}})); }), "messages");
}

TEST(ServerProtocol, IntegersMayBeWrittenAsWholeFloats) {
  EXPECT_EQ(parse_chat_request(chat({{"max_tokens", 12.0}})).options.max_tokens, 12);
  EXPECT_EQ(rejected_param([] { parse_chat_request(chat({{"max_tokens", 12.5}})); }), "max_tokens");
}

TEST(ServerProtocol, TopPZeroMeansOnlyTheMostLikelyToken) {
  const ParsedRequest r = parse_chat_request(chat({{"top_p", 0}, {"top_k", 50}}));
  EXPECT_EQ(r.options.sampling.top_k, 1);
  EXPECT_NO_THROW(r.options.sampling.validate());
  EXPECT_EQ(parse_chat_request(chat({{"top_k", -1}})).options.sampling.top_k, 0);
}

TEST(ServerProtocol, StopMayBeAStringOrUpToSixteenStrings) {
  EXPECT_EQ(parse_chat_request(chat({{"stop", "x"}})).options.stop, (std::vector<std::string>{"x"}));
  EXPECT_EQ(parse_chat_request(chat({{"stop", std::vector<std::string>(16, "y")}})).options.stop.size(), 16u);
  EXPECT_EQ(rejected_param([] { parse_chat_request(chat({{"stop", json::array({"a", 1})}})); }), "stop");
  EXPECT_EQ(parse_chat_request(chat({{"stop_token_ids", json::array({3, 4})}})).options.stop_tokens,
            (std::vector<int32_t>{3, 4}));
}

TEST(ServerProtocol, ChatLogprobsNeedTheFlagForAlternatives) {
  const ParsedRequest r = parse_chat_request(chat({{"logprobs", true}, {"top_logprobs", 20}}));
  EXPECT_TRUE(r.options.logprobs);
  EXPECT_EQ(r.options.top_logprobs, 20);
  EXPECT_FALSE(parse_chat_request(chat({{"logprobs", false}, {"top_logprobs", 0}})).options.logprobs);
  EXPECT_EQ(rejected_param([] { parse_chat_request(chat({{"top_logprobs", 3}})); }), "top_logprobs");
}

TEST(ServerProtocol, CompletionPromptForms) {
  EXPECT_EQ(*parse_completion_request({{"prompt", "abc"}}).prompt_text, "abc");
  EXPECT_EQ(*parse_completion_request({{"prompt", json::array({"abc"})}}).prompt_text, "abc");
  EXPECT_EQ(parse_completion_request({{"prompt", json::array({1, 2})}}).prompt_tokens, (std::vector<int32_t>{1, 2}));
  EXPECT_EQ(parse_completion_request({{"prompt", json::array({json::array({3})})}}).prompt_tokens,
            (std::vector<int32_t>{3}));
  EXPECT_EQ(rejected_param([] { parse_completion_request({{"prompt", json::array({1, -2})}}); }), "prompt");
  EXPECT_EQ(rejected_param([] { parse_completion_request(json::object()); }), "prompt");
  // Empty in every form (the last found by tests/fuzz/openai_request_fuzz).
  EXPECT_EQ(rejected_param([] { parse_completion_request({{"prompt", json::array()}}); }), "prompt");
  EXPECT_EQ(rejected_param([] { parse_completion_request({{"prompt", json::array({json::array()})}}); }), "prompt");
  EXPECT_EQ(rejected_param([] { parse_completion_request({{"prompt", "x"}, {"echo", true}}); }), "echo");
  const ParsedRequest r = parse_completion_request({{"prompt", "x"}, {"logprobs", 0}});
  EXPECT_TRUE(r.options.logprobs);
  EXPECT_EQ(r.options.top_logprobs, 0);
  EXPECT_EQ(r.options.max_tokens, kDefaultCompletionMaxTokens);
}

TEST(ServerProtocol, BodyMustBeAJsonObject) {
  EXPECT_THROW(parse_json_body("not json"), ApiError);
  EXPECT_THROW(parse_json_body("\"a string\""), ApiError);
  EXPECT_THROW(parse_json_body("{\"a\": \"\xc3\x28\"}"), ApiError);  // invalid UTF-8
  EXPECT_EQ(parse_json_body("{\"a\": 1}")["a"], 1);
}

// Copying a message (as the parser does) recurses per level: 100000 levels crashed the server.
TEST(ServerProtocol, BodiesNestedTooDeeplyAreRefused) {
  const auto nested = [](int levels) {
    return R"({"messages": [{"role": "user", "content": "hi", "extra": )" + std::string(size_t(levels), '[') +
           std::string(size_t(levels), ']') + "}]}";
  };
  EXPECT_EQ(rejected_param([&] { parse_json_body(nested(100000)); }), "");
  // The body, "messages" and the message are 3 levels around "extra".
  EXPECT_EQ(rejected_param([&] { parse_json_body(nested(kMaxJsonDepth - 2)); }), "");
  const json at_limit = parse_json_body(nested(kMaxJsonDepth - 3));
  EXPECT_EQ(parse_chat_request(at_limit).messages.size(), 1u);
  try {
    parse_json_body(nested(100000));
  } catch (const ApiError& e) {
    EXPECT_NE(std::string(e.what()).find(fmt::format("more than {} levels", kMaxJsonDepth)), std::string::npos) << e.what();
  }
}

TEST(ServerProtocol, ErrorBodyHasOpenAIsFields) {
  const json e = error_body(invalid_request("bad value", "temperature"))["error"];
  EXPECT_EQ(e["message"], "bad value");
  EXPECT_EQ(e["type"], "invalid_request_error");
  EXPECT_EQ(e["param"], "temperature");
  EXPECT_TRUE(e["code"].is_null());
}

TEST(ServerProtocol, ChatMLRendering) {
  const json messages = json::array({{{"role", "system"}, {"content", "S"}}, {{"role", "user"}, {"content", "U"}}});
  EXPECT_EQ(render_chatml(messages, true),
            "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(render_chatml(messages, false), "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n");
  const auto tokenizer = test::builtin_tokenizer();
  EXPECT_EQ(render_chat_prompt(*tokenizer, messages, true, json::object()), render_chatml(messages, true));
}

TEST(ServerProtocol, TokenTextShowsPartialCharactersAsEscapedBytes) {
  EXPECT_EQ(token_display_text("abc"), "abc");
  EXPECT_EQ(token_display_text("\xc3\xa9"), "\xc3\xa9");
  EXPECT_EQ(token_display_text("\xe2\x80"), "\\xe2\\x80");
}

TEST(ServerProtocol, FinishReasonsMapToOpenAIs) {
  EXPECT_EQ(finish_reason_json(FinishReason::Stop), "stop");
  EXPECT_EQ(finish_reason_json(FinishReason::Length), "length");
  EXPECT_EQ(finish_reason_json(FinishReason::Timeout), "length");
  EXPECT_TRUE(finish_reason_json(FinishReason::None).is_null());
}

TEST(ServerProtocol, ResponseIdsAreUniqueWithTheEndpointsPrefix) {
  const std::string a = make_response_id(Endpoint::Chat), b = make_response_id(Endpoint::Chat);
  EXPECT_EQ(a.rfind("chatcmpl-", 0), 0u);
  EXPECT_NE(a, b);
  EXPECT_EQ(make_response_id(Endpoint::Completions).rfind("cmpl-", 0), 0u);
}

TEST(ServerProtocol, SseFraming) {
  EXPECT_EQ(sse_data(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(sse_done(), "data: [DONE]\n\n");
  // Invalid UTF-8 that slipped through is replaced, never thrown.
  EXPECT_EQ(sse_data(json{{"t", std::string("\xff")}}), "data: {\"t\":\"\xef\xbf\xbd\"}\n\n");
}

TEST(ServerProtocol, HistogramBucketsAreCumulative) {
  Histogram h({0.1, 1.0});
  h.observe(0.05);
  h.observe(0.1);
  h.observe(0.5);
  h.observe(5);
  std::string out;
  h.render(out, "x_seconds", "help");
  EXPECT_NE(out.find("# TYPE x_seconds histogram\n"), std::string::npos);
  EXPECT_NE(out.find("x_seconds_bucket{le=\"0.1\"} 2\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{le=\"1\"} 3\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_bucket{le=\"+Inf\"} 4\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_sum 5.65\n"), std::string::npos) << out;
  EXPECT_NE(out.find("x_seconds_count 4\n"), std::string::npos) << out;
}

TEST(ServerProtocol, MetricsWhileLoadingReadZero) {
  ServerMetrics m;
  const std::string out = m.render(nullptr);
  EXPECT_NE(out.find("\nparallax_requests_total 0\n"), std::string::npos);
  EXPECT_NE(out.find("\nparallax_kv_cache_usage_ratio 0\n"), std::string::npos);
  EXPECT_NE(out.find("parallax_inter_token_latency_seconds_count 0\n"), std::string::npos);
}

}  // namespace
}  // namespace px::server
