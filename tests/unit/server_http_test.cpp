// The OpenAI-compatible HTTP server end to end over 127.0.0.1, with a FakeEngine behind it:
// every endpoint, the response shapes, SSE framing, and each error status.
#include <gtest/gtest.h>

#include "server/chat_prompt.h"
#include "server_test_util.h"

namespace px::test {
namespace {

using nlohmann::json;

json chat_body(json extra = json::object()) {
  json body = {{"model", "fake-model"}, {"messages", json::array({{{"role", "user"}, {"content", "Hi there"}}})}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

json completion_body(json extra = json::object()) {
  json body = {{"model", "fake-model"}, {"prompt", "Once upon"}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

// The error object of a response, after checking OpenAI's shape.
json error_of(const httplib::Result& res) {
  EXPECT_TRUE(res);
  if (!res) return json();
  const json body = json::parse(res->body);
  EXPECT_TRUE(body.contains("error")) << res->body;
  const json& e = body["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param"));
  EXPECT_TRUE(e.contains("code"));
  return e;
}

TEST(ServerHttp, HealthIsLoadingUntilTheEngineIsSet) {
  RunningServer s({}, /*loaded=*/false);
  auto health = s.get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 503);
  EXPECT_EQ(json::parse(health->body)["status"], "loading");

  auto chat = s.post("/v1/chat/completions", chat_body());
  ASSERT_TRUE(chat);
  EXPECT_EQ(chat->status, 503);
  EXPECT_EQ(error_of(chat)["code"], "model_loading");
  EXPECT_TRUE(chat->has_header("Retry-After"));

  s.server->set_engine(s.engine);
  health = s.get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(json::parse(health->body)["status"], "ok");
}

TEST(ServerHttp, ModelsListsTheServedName) {
  server::ServerOptions options;
  options.model_name = "my-model";
  RunningServer s(options);
  auto res = s.get("/v1/models");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  const json body = json::parse(res->body);
  EXPECT_EQ(body["object"], "list");
  ASSERT_EQ(body["data"].size(), 1u);
  EXPECT_EQ(body["data"][0]["id"], "my-model");
  EXPECT_EQ(body["data"][0]["object"], "model");
  EXPECT_EQ(s.get("/v1/models/my-model")->status, 200);
  EXPECT_EQ(s.get("/v1/models/other")->status, 404);
}

TEST(ServerHttp, ChatCompletionHasOpenAIsShape) {
  RunningServer s;
  auto res = s.post("/v1/chat/completions", chat_body());
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  const json body = json::parse(res->body);
  EXPECT_EQ(body["object"], "chat.completion");
  EXPECT_EQ(body["id"].get<std::string>().rfind("chatcmpl-", 0), 0u);
  EXPECT_TRUE(body["created"].is_number_integer());
  EXPECT_EQ(body["model"], "fake-model");
  ASSERT_EQ(body["choices"].size(), 1u);
  const json& choice = body["choices"][0];
  EXPECT_EQ(choice["index"], 0);
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], "Hello world");
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_TRUE(choice["logprobs"].is_null());

  const auto subs = s.engine->submissions();
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_EQ(body["usage"]["prompt_tokens"], subs[0].prompt.size());
  EXPECT_EQ(body["usage"]["completion_tokens"], 2);
  EXPECT_EQ(body["usage"]["total_tokens"], subs[0].prompt.size() + 2);
}

TEST(ServerHttp, ChatPromptIsTheChatMLRenderingWithBos) {
  RunningServer s;
  const json messages = json::array({{{"role", "system"}, {"content", "Be brief."}},
                                     {{"role", "user"}, {"content", json::array({{{"type", "text"}, {"text", "Hi "}},
                                                                                  {{"type", "text"}, {"text", "you"}}})}}});
  ASSERT_EQ(s.post("/v1/chat/completions", chat_body({{"messages", messages}}))->status, 200);
  const Tokenizer& tok = s.engine->tokenizer();
  std::vector<int32_t> expected = tok.encode(
      "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi you<|im_end|>\n<|im_start|>assistant\n", false,
      true);
  expected.insert(expected.begin(), tok.bos_id());
  EXPECT_EQ(s.engine->submissions().at(0).prompt, expected);
}

TEST(ServerHttp, ChatDefaultsToTheRestOfTheContextAndOpenAIsSampling) {
  RunningServer s;
  ASSERT_EQ(s.post("/v1/chat/completions", chat_body())->status, 200);
  const Submission sub = s.engine->submissions().at(0);
  EXPECT_EQ(sub.options.max_tokens, s.engine->n_ctx - int(sub.prompt.size()));
  EXPECT_EQ(sub.options.sampling.temperature, 1.0f);
  EXPECT_EQ(sub.options.sampling.top_p, 1.0f);
  EXPECT_EQ(sub.options.sampling.top_k, 0);
  EXPECT_EQ(sub.options.sampling.min_p, 0.0f);
}

TEST(ServerHttp, RequestParametersReachTheEngine) {
  RunningServer s;
  const json extra = {{"max_tokens", 7}, {"temperature", 0.5}, {"top_p", 0.9}, {"top_k", 12}, {"min_p", 0.1},
                      {"presence_penalty", 0.5}, {"frequency_penalty", -0.5}, {"repetition_penalty", 1.1},
                      {"seed", 1234}, {"stop", json::array({"END", "\n\n"})}, {"ignore_eos", true},
                      {"user", "someone"}, {"some_future_field", {{"x", 1}}}};
  auto res = s.post("/v1/chat/completions", chat_body(extra));
  ASSERT_EQ(res->status, 200) << res->body;
  const RequestOptions o = s.engine->submissions().at(0).options;
  EXPECT_EQ(o.max_tokens, 7);
  EXPECT_FLOAT_EQ(o.sampling.temperature, 0.5f);
  EXPECT_FLOAT_EQ(o.sampling.top_p, 0.9f);
  EXPECT_EQ(o.sampling.top_k, 12);
  EXPECT_FLOAT_EQ(o.sampling.min_p, 0.1f);
  EXPECT_FLOAT_EQ(o.sampling.presence_penalty, 0.5f);
  EXPECT_FLOAT_EQ(o.sampling.frequency_penalty, -0.5f);
  EXPECT_FLOAT_EQ(o.sampling.repetition_penalty, 1.1f);
  EXPECT_EQ(o.sampling.seed, 1234u);
  EXPECT_EQ(o.stop, (std::vector<std::string>{"END", "\n\n"}));
  EXPECT_TRUE(o.ignore_eos);
}

TEST(ServerHttp, ServerRequestTimeoutReachesTheEngine) {
  server::ServerOptions options;
  options.request_timeout = std::chrono::milliseconds(1500);
  RunningServer s(options);
  ASSERT_EQ(s.post("/v1/completions", json{{"prompt", "x"}})->status, 200);
  EXPECT_EQ(s.engine->submissions().at(0).options.timeout, std::chrono::milliseconds(1500));
}

TEST(ServerHttp, MaxCompletionTokensIsAnAliasOfMaxTokens) {
  RunningServer s;
  ASSERT_EQ(s.post("/v1/chat/completions", chat_body({{"max_completion_tokens", 5}}))->status, 200);
  EXPECT_EQ(s.engine->submissions().at(0).options.max_tokens, 5);
}

TEST(ServerHttp, NChoicesAreSeparateRequestsOnOneSeed) {
  RunningServer s;
  auto res = s.post("/v1/chat/completions", chat_body({{"n", 3}, {"seed", 9}}));
  ASSERT_EQ(res->status, 200) << res->body;
  const json body = json::parse(res->body);
  ASSERT_EQ(body["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(body["choices"][i]["index"], i);
  EXPECT_EQ(body["usage"]["completion_tokens"], 6);
  const auto subs = s.engine->submissions();
  ASSERT_EQ(subs.size(), 3u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(subs[i].options.stream_id, uint64_t(i));
    EXPECT_EQ(subs[i].options.sampling.seed, 9u);
  }
}

TEST(ServerHttp, UnseededRequestsGetDifferentSeeds) {
  RunningServer s;
  ASSERT_EQ(s.post("/v1/chat/completions", chat_body())->status, 200);
  ASSERT_EQ(s.post("/v1/chat/completions", chat_body())->status, 200);
  const auto subs = s.engine->submissions();
  EXPECT_NE(subs[0].options.sampling.seed, subs[1].options.sampling.seed);
}

TEST(ServerHttp, TextCompletionHasOpenAIsShape) {
  RunningServer s;
  auto res = s.post("/v1/completions", completion_body());
  ASSERT_EQ(res->status, 200) << res->body;
  const json body = json::parse(res->body);
  EXPECT_EQ(body["object"], "text_completion");
  EXPECT_EQ(body["id"].get<std::string>().rfind("cmpl-", 0), 0u);
  EXPECT_EQ(body["choices"][0]["text"], "Hello world");
  EXPECT_EQ(body["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(body["usage"]["completion_tokens"], 2);
  const Submission sub = s.engine->submissions().at(0);
  EXPECT_EQ(sub.options.max_tokens, 16);  // OpenAI's default for completions
  std::vector<int32_t> expected = s.engine->tokenizer().encode("Once upon", false, true);
  expected.insert(expected.begin(), s.engine->tokenizer().bos_id());
  EXPECT_EQ(sub.prompt, expected);
}

TEST(ServerHttp, CompletionPromptMayBeTokenIdsOrAnArrayOfOneString) {
  RunningServer s;
  ASSERT_EQ(s.post("/v1/completions", completion_body({{"prompt", json::array({5, 6, 7})}}))->status, 200);
  EXPECT_EQ(s.engine->submissions().at(0).prompt, (std::vector<int32_t>{5, 6, 7}));
  ASSERT_EQ(s.post("/v1/completions", completion_body({{"prompt", json::array({"Once upon"})}}))->status, 200);
  std::vector<int32_t> expected = s.engine->tokenizer().encode("Once upon", false, true);
  expected.insert(expected.begin(), s.engine->tokenizer().bos_id());
  EXPECT_EQ(s.engine->submissions().at(1).prompt, expected);
  EXPECT_EQ(s.post("/v1/completions", completion_body({{"prompt", json::array({"a", "b"})}}))->status, 400);
}

TEST(ServerHttp, ChatLogprobsUseOpenAIsChatFormat) {
  RunningServer s;
  auto res = s.post("/v1/chat/completions", chat_body({{"logprobs", true}, {"top_logprobs", 2}}));
  ASSERT_EQ(res->status, 200) << res->body;
  EXPECT_EQ(s.engine->submissions().at(0).options.top_logprobs, 2);
  const json content = json::parse(res->body)["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 2u);
  EXPECT_EQ(content[0]["token"], "Hello");
  EXPECT_FLOAT_EQ(content[0]["logprob"].get<float>(), FakeEngine::token_logprob(0));
  EXPECT_EQ(content[0]["bytes"], json::array({'H', 'e', 'l', 'l', 'o'}));
  ASSERT_EQ(content[1]["top_logprobs"].size(), 2u);
  EXPECT_EQ(content[1]["top_logprobs"][1]["token"], "B");
  EXPECT_FLOAT_EQ(content[1]["top_logprobs"][1]["logprob"].get<float>(), FakeEngine::alternative_logprob(1));
  EXPECT_EQ(content[1]["top_logprobs"][1]["bytes"], json::array({'B'}));
}

TEST(ServerHttp, CompletionLogprobsUseTheLegacyFormat) {
  RunningServer s;
  auto res = s.post("/v1/completions", completion_body({{"logprobs", 1}}));
  ASSERT_EQ(res->status, 200) << res->body;
  const json lp = json::parse(res->body)["choices"][0]["logprobs"];
  EXPECT_EQ(lp["tokens"], json::array({"Hello", " world"}));
  ASSERT_EQ(lp["token_logprobs"].size(), 2u);
  EXPECT_FLOAT_EQ(lp["token_logprobs"][1].get<float>(), FakeEngine::token_logprob(1));
  EXPECT_EQ(lp["text_offset"], json::array({0, 5}));
  ASSERT_EQ(lp["top_logprobs"].size(), 2u);
  EXPECT_FLOAT_EQ(lp["top_logprobs"][0]["A"].get<float>(), FakeEngine::alternative_logprob(0));
}

TEST(ServerHttp, StreamedChatIsFramedAsServerSentEvents) {
  RunningServer s;
  auto res = s.post("/v1/chat/completions", chat_body({{"stream", true}}));
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const SseBody sse = parse_sse(res->body);
  ASSERT_TRUE(sse.well_framed) << res->body;
  ASSERT_TRUE(sse.done);
  ASSERT_GE(sse.chunks.size(), 3u);
  EXPECT_EQ(sse.chunks.front()["choices"][0]["delta"]["role"], "assistant");
  std::string content;
  const std::string id = sse.chunks.front()["id"];
  for (const json& c : sse.chunks) {
    EXPECT_EQ(c["object"], "chat.completion.chunk");
    EXPECT_EQ(c["id"], id);
    EXPECT_FALSE(c.contains("usage"));
    const json& delta = c["choices"][0]["delta"];
    if (delta.contains("content")) content += delta["content"].get<std::string>();
  }
  EXPECT_EQ(content, "Hello world");
  const json& last = sse.chunks.back()["choices"][0];
  EXPECT_EQ(last["finish_reason"], "stop");
  for (size_t i = 0; i + 1 < sse.chunks.size(); ++i) EXPECT_TRUE(sse.chunks[i]["choices"][0]["finish_reason"].is_null());
}

TEST(ServerHttp, StreamIncludeUsageEndsWithAUsageChunk) {
  RunningServer s;
  auto res = s.post("/v1/chat/completions",
                    chat_body({{"stream", true}, {"stream_options", {{"include_usage", true}}}, {"n", 2}}));
  ASSERT_EQ(res->status, 200);
  const SseBody sse = parse_sse(res->body);
  ASSERT_TRUE(sse.well_framed && sse.done) << res->body;
  const json& last = sse.chunks.back();
  EXPECT_TRUE(last["choices"].empty());
  EXPECT_EQ(last["usage"]["completion_tokens"], 4);
  EXPECT_EQ(last["usage"]["total_tokens"].get<int>(),
            last["usage"]["prompt_tokens"].get<int>() + 4);
  for (size_t i = 0; i + 1 < sse.chunks.size(); ++i) EXPECT_TRUE(sse.chunks[i]["usage"].is_null());
  // Both choices stream, each with its own index and finish.
  int finished[2] = {0, 0};
  for (size_t i = 0; i + 1 < sse.chunks.size(); ++i) {
    const json& c = sse.chunks[i]["choices"][0];
    if (!c["finish_reason"].is_null()) ++finished[c["index"].get<int>()];
  }
  EXPECT_EQ(finished[0], 1);
  EXPECT_EQ(finished[1], 1);
}

TEST(ServerHttp, StreamedCompletionCarriesTextAndLogprobs) {
  RunningServer s;
  s.engine->finish = FinishReason::Length;
  auto res = s.post("/v1/completions", completion_body({{"stream", true}, {"logprobs", 0}}));
  ASSERT_EQ(res->status, 200);
  const SseBody sse = parse_sse(res->body);
  ASSERT_TRUE(sse.well_framed && sse.done) << res->body;
  std::string text;
  std::vector<int64_t> offsets;
  for (const json& c : sse.chunks) {
    EXPECT_EQ(c["object"], "text_completion");
    text += c["choices"][0]["text"].get<std::string>();
    if (!c["choices"][0]["logprobs"].is_null()) {
      for (const json& o : c["choices"][0]["logprobs"]["text_offset"]) offsets.push_back(o.get<int64_t>());
    }
  }
  EXPECT_EQ(text, "Hello world");
  EXPECT_EQ(offsets, (std::vector<int64_t>{0, 5}));
  EXPECT_EQ(sse.chunks.back()["choices"][0]["finish_reason"], "length");
}

TEST(ServerHttp, EngineErrorMidStreamIsAnErrorFrameThenDone) {
  RunningServer s;
  s.engine->finish = FinishReason::Error;
  s.engine->error_message = "the device fell over";
  auto res = s.post("/v1/chat/completions", chat_body({{"stream", true}}));
  ASSERT_EQ(res->status, 200);
  const SseBody sse = parse_sse(res->body);
  ASSERT_TRUE(sse.well_framed && sse.done) << res->body;
  EXPECT_EQ(sse.chunks.back()["error"]["message"], "the device fell over");
}

}  // namespace
}  // namespace px::test
