// The server's error statuses, in OpenAI's error shape, and its robustness: bad input,
// auth, full queues, oversized bodies, clients that vanish or stall.
#include <gtest/gtest.h>

#include "server/metrics.h"
#include "server_test_util.h"

namespace px::test {
namespace {

using nlohmann::json;

json chat_body(json extra = json::object()) {
  json body = {{"model", "fake-model"}, {"messages", json::array({{{"role", "user"}, {"content", "Hi"}}})}};
  for (auto& [k, v] : extra.items()) body[k] = v;
  return body;
}

// Checks status and OpenAI's error shape; returns the error object.
json expect_error(const httplib::Result& res, int status) {
  EXPECT_TRUE(res) << "no response";
  if (!res) return json();
  EXPECT_EQ(res->status, status) << res->body;
  EXPECT_EQ(res->get_header_value("Content-Type"), "application/json");
  json body;
  try {
    body = json::parse(res->body);
  } catch (const std::exception& e) {
    ADD_FAILURE() << "not JSON: " << res->body;
    return json();
  }
  const json& e = body["error"];
  EXPECT_TRUE(e["message"].is_string() && !e["message"].get<std::string>().empty()) << res->body;
  EXPECT_TRUE(e["type"].is_string()) << res->body;
  EXPECT_TRUE(e.contains("param") && e.contains("code")) << res->body;
  return e;
}

TEST(ServerErrors, MalformedJsonIs400) {
  RunningServer s;
  const json e = expect_error(s.post("/v1/chat/completions", std::string("{\"messages\": [")), 400);
  EXPECT_EQ(e["type"], "invalid_request_error");
  expect_error(s.post("/v1/chat/completions", std::string("[1, 2]")), 400);
  EXPECT_TRUE(s.engine->submissions().empty());
}

TEST(ServerErrors, WrongTypesAre400NamingTheParameter) {
  RunningServer s;
  const std::vector<std::pair<std::string, json>> cases = {
      {"temperature", "hot"}, {"max_tokens", 1.5},     {"stream", "yes"},     {"n", "2"},
      {"stop", 7},            {"seed", 0.5},           {"top_k", true},       {"logprobs", 1},
      {"messages", "hi"},     {"stream_options", 1},   {"ignore_eos", 1},     {"chat_template_kwargs", "x"}};
  for (const auto& [param, value] : cases) {
    const json e = expect_error(s.post("/v1/chat/completions", chat_body({{param, value}})), 400);
    EXPECT_EQ(e["param"], param) << param;
  }
  expect_error(s.post("/v1/chat/completions", chat_body({{"messages", json::array({{{"content", "no role"}}})}})), 400);
  expect_error(s.post("/v1/chat/completions",
                      chat_body({{"messages", json::array({{{"role", "user"}, {"content", 5}}})}})),
               400);
  expect_error(s.post("/v1/completions", json{{"prompt", json::object()}}), 400);
  EXPECT_TRUE(s.engine->submissions().empty());
}

TEST(ServerErrors, OutOfRangeValuesAre400) {
  RunningServer s;
  const std::vector<std::pair<std::string, json>> cases = {
      {"max_tokens", -1}, {"temperature", 2.5}, {"temperature", -0.1}, {"top_p", 1.5},
      {"n", 9},           {"n", 0},             {"presence_penalty", 3}, {"frequency_penalty", -2.5},
      {"min_p", 2},       {"top_logprobs", 21}, {"stop", json(std::vector<std::string>(17, "x"))}};
  for (const auto& [param, value] : cases) {
    const json e = expect_error(s.post("/v1/chat/completions", chat_body({{param, value}, {"logprobs", true}})), 400);
    EXPECT_EQ(e["param"], param) << param << " = " << value;
  }
  expect_error(s.post("/v1/completions", json{{"prompt", "x"}, {"logprobs", 6}}), 400);
  expect_error(s.post("/v1/chat/completions", chat_body({{"top_logprobs", 2}})), 400);  // needs logprobs
  EXPECT_TRUE(s.engine->submissions().empty());
}

TEST(ServerErrors, InvalidUtf8Is400AndTheServerStaysUp) {
  RunningServer s;
  const std::string body = "{\"messages\":[{\"role\":\"user\",\"content\":\"bad \xff\xfe bytes\"}]}";
  expect_error(s.post("/v1/chat/completions", body), 400);
  const std::string lone_surrogate = R"({"messages":[{"role":"user","content":"\ud800"}]})";
  expect_error(s.post("/v1/chat/completions", lone_surrogate), 400);
  EXPECT_EQ(s.get("/health")->status, 200);
}

TEST(ServerErrors, PromptThatFillsTheContextIs400ContextLengthExceeded) {
  RunningServer s;
  s.engine->n_ctx = 8;
  const json e = expect_error(
      s.post("/v1/chat/completions",
             chat_body({{"messages", json::array({{{"role", "user"}, {"content", std::string(200, 'z')}}})}})),
      400);
  EXPECT_EQ(e["code"], "context_length_exceeded");
  EXPECT_TRUE(s.engine->submissions().empty());
}

TEST(ServerErrors, UnknownModelIs404AndTheFileNameIsAccepted) {
  server::ServerOptions options;
  options.model_name = "served";
  options.model_aliases = {"model.gguf"};
  RunningServer s(options);
  const json e = expect_error(s.post("/v1/chat/completions", chat_body({{"model", "gpt-4"}})), 404);
  EXPECT_EQ(e["code"], "model_not_found");
  EXPECT_EQ(e["param"], "model");
  EXPECT_EQ(s.post("/v1/chat/completions", chat_body({{"model", "served"}}))->status, 200);
  EXPECT_EQ(s.post("/v1/chat/completions", chat_body({{"model", "model.gguf"}}))->status, 200);
}

TEST(ServerErrors, ApiKeyIsRequiredOnV1WhenSet) {
  server::ServerOptions options;
  options.api_key = "sekret";
  RunningServer s(options);
  expect_error(s.post("/v1/chat/completions", chat_body()), 401);
  const json e = expect_error(s.post("/v1/chat/completions", chat_body(), {{"Authorization", "Bearer wrong"}}), 401);
  EXPECT_EQ(e["code"], "invalid_api_key");
  expect_error(s.get("/v1/models", {{"Authorization", "sekret"}}), 401);
  EXPECT_TRUE(s.engine->submissions().empty());

  EXPECT_EQ(s.post("/v1/chat/completions", chat_body(), {{"Authorization", "Bearer sekret"}})->status, 200);
  EXPECT_EQ(s.get("/v1/models", {{"Authorization", "Bearer sekret"}})->status, 200);
  EXPECT_EQ(s.get("/health")->status, 200);  // probes need no key
  EXPECT_EQ(s.get("/metrics")->status, 200);
}

TEST(ServerErrors, FullQueueIs429WithRetryAfterAndCancelsTheChoicesAlreadyQueued) {
  RunningServer s;
  s.engine->hold = true;
  s.engine->accept_limit = 1;
  auto res = s.post("/v1/chat/completions", chat_body({{"n", 2}}));
  const json e = expect_error(res, 429);
  EXPECT_EQ(e["type"], "rate_limit_error");
  EXPECT_EQ(res->get_header_value("Retry-After"), "1");
  const auto subs = s.engine->submissions();
  ASSERT_EQ(subs.size(), 1u);
  EXPECT_TRUE(subs[0].stream->cancelled());
}

TEST(ServerErrors, EngineRejectionIs400) {
  RunningServer s;
  s.engine->reject_invalid = true;
  const json e = expect_error(s.post("/v1/completions", json{{"prompt", "x"}}), 400);
  EXPECT_EQ(e["message"], "the fake engine rejects this request");
}

TEST(ServerErrors, BodyOverTheLimitIs413AndTheServerStaysUp) {
  RunningServer s;
  const std::string huge = "{\"prompt\": \"" + std::string(10u << 20, 'a') + "\"}";
  expect_error(s.post("/v1/completions", huge), 413);
  EXPECT_TRUE(s.engine->submissions().empty());
  EXPECT_EQ(s.get("/health")->status, 200);
  EXPECT_EQ(s.post("/v1/completions", json{{"prompt", "x"}})->status, 200);
}

TEST(ServerErrors, PortInUseIsAClearError) {
  RunningServer first;
  server::ServerOptions options;
  options.host = "127.0.0.1";
  options.port = first.port;
  server::Server second(options);
  try {
    second.bind();
    ADD_FAILURE() << "a second server bound port " << first.port;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(std::to_string(first.port)), std::string::npos) << e.what();
  }
  EXPECT_EQ(first.get("/health")->status, 200);
}

TEST(ServerErrors, UnknownRouteIs404InOpenAIsShape) {
  RunningServer s;
  expect_error(s.get("/v1/nothing-here"), 404);
  expect_error(s.post("/v2/chat/completions", chat_body()), 404);
}

TEST(ServerErrors, ClientThatDisconnectsMidStreamCancelsItsRequest) {
  RunningServer s;
  s.engine->hold = true;
  const int fd = connect_raw(s.port);
  ASSERT_GE(fd, 0);
  const std::string request = raw_post("/v1/chat/completions", chat_body({{"stream", true}}).dump());
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
  // The role chunk comes at once; then the client goes away while generation is pending.
  std::string received;
  char buf[4096];
  while (received.find("\"assistant\"") == std::string::npos) {
    const ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
    ASSERT_GT(n, 0) << received;
    received.append(buf, size_t(n));
  }
  ::close(fd);
  ASSERT_TRUE(eventually([&] { return s.engine->submissions().size() == 1; }));
  EXPECT_TRUE(eventually([&] { return s.engine->submissions()[0].stream->cancelled(); }));
}

TEST(ServerErrors, ClientThatDisconnectsBeforeAWholeResponseCancelsItsRequest) {
  RunningServer s;
  s.engine->hold = true;
  const int fd = connect_raw(s.port);
  ASSERT_GE(fd, 0);
  const std::string request = raw_post("/v1/completions", json{{"prompt", "x"}, {"n", 2}}.dump());
  ASSERT_EQ(::send(fd, request.data(), request.size(), MSG_NOSIGNAL), ssize_t(request.size()));
  ASSERT_TRUE(eventually([&] { return s.engine->submissions().size() == 2; }));
  ::close(fd);
  EXPECT_TRUE(eventually([&] {
    const auto subs = s.engine->submissions();
    return subs[0].stream->cancelled() && subs[1].stream->cancelled();
  }));
}

TEST(ServerErrors, AStalledRequestDoesNotBlockOthers) {
  RunningServer s;
  s.engine->hold = true;
  std::thread stalled([&] { s.post("/v1/completions", json{{"prompt", "x"}}); });
  ASSERT_TRUE(eventually([&] { return s.engine->submissions().size() == 1; }));
  s.engine->hold = false;
  const auto start = std::chrono::steady_clock::now();
  auto res = s.post("/v1/chat/completions", chat_body());
  EXPECT_EQ(res->status, 200);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
  s.engine->submissions()[0].stream->cancel();  // lets the stalled one finish
  stalled.join();
}

TEST(ServerErrors, MetricsExposeEngineStatsAndServerLatencies) {
  RunningServer s;
  ASSERT_EQ(s.post("/v1/chat/completions", chat_body({{"n", 2}}))->status, 200);
  auto res = s.get("/metrics");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type").rfind("text/plain", 0), 0u);
  const std::string& m = res->body;
  EXPECT_NE(m.find("\nparallax_requests_total 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nparallax_requests_running 1\n"), std::string::npos);
  EXPECT_NE(m.find("\nparallax_requests_queued 2\n"), std::string::npos);
  EXPECT_NE(m.find("\nparallax_prompt_tokens_total 30\n"), std::string::npos);
  EXPECT_NE(m.find("\nparallax_generation_tokens_total 40\n"), std::string::npos);
  EXPECT_NE(m.find("\nparallax_kv_cache_usage_ratio 0.25\n"), std::string::npos);
  // Two choices: two first tokens, two durations, and one gap each between their two tokens.
  EXPECT_NE(m.find("\nparallax_time_to_first_token_seconds_count 2\n"), std::string::npos) << m;
  EXPECT_NE(m.find("\nparallax_request_duration_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(m.find("\nparallax_inter_token_latency_seconds_count 2\n"), std::string::npos);
  EXPECT_NE(m.find("# TYPE parallax_time_to_first_token_seconds histogram"), std::string::npos);
}

}  // namespace
}  // namespace px::test
