#pragma once
// Helpers of the multi-process swarm tests: a synthetic model, `parallax` nodes as child
// processes (always reaped), the head's /v1/cluster, completions (plain and streamed) and the
// single node's answers to compare with.
#include <gtest/gtest.h>
#include <httplib.h>
#include <signal.h>

#include <future>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "core/subprocess.h"
#include "model/synth.h"
#include "unit/test_temp_dir.h"

namespace px::swarm_test {

using namespace std::chrono_literals;
using nlohmann::json;
// A `parallax` node.
class ChildProcess : public Subprocess {
 public:
  explicit ChildProcess(std::vector<std::string> args) : Subprocess(with_binary(std::move(args))) {}

 private:
  static std::vector<std::string> with_binary(std::vector<std::string> args) {
    args.insert(args.begin(), PARALLAX_BINARY);
    return args;
  }
};

inline constexpr int kLayers = 8;

// The swarm tests' model shape, written once per file name; `seed` picks the weights.
inline std::string write_swarm_model(const std::string& file, uint64_t seed) {
  const std::string p = test::temp_dir() + file;
  SynthSpec spec;
  spec.arch = "llama";
  spec.n_layers = kLayers;
  spec.n_embd = 64;
  spec.type = DType::Q8_0;
  spec.seed = seed;
  write_synthetic_model(spec, p);
  return p;
}

inline std::string model_path() {
  static const std::string path = write_swarm_model("swarm_model.gguf", SynthSpec{}.seed);
  return path;
}

// host:port -> a client with bounded timeouts.
inline std::unique_ptr<httplib::Client> client(const std::string& address) {
  auto c = std::make_unique<httplib::Client>("http://" + address);
  c->set_connection_timeout(5);
  c->set_read_timeout(60);
  return c;
}

inline json cluster(const std::string& api) {
  auto res = client(api)->Get("/v1/cluster");
  if (!res || res->status != 200) return json::object();
  return json::parse(res->body, nullptr, false);
}

// Waits until the head sees `pipelines` pipelines and `ready` ready nodes holding layers.
inline bool wait_for_cluster(const std::string& api, size_t pipelines, size_t ready, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    const json c = cluster(api);
    if (c.contains("pipelines") && c["pipelines"].size() >= pipelines) {
      size_t n = 0;
      for (const auto& node : c["nodes"]) {
        n += node["state"] == "ready" && node["layers"][1].get<int>() > node["layers"][0].get<int>();
      }
      if (n >= ready) return true;
    }
    std::this_thread::sleep_for(100ms);
  }
  return false;
}

// Request i of a test: greedy for even i, seeded sampling for odd i, with logprobs.
inline json request_body(int i, int max_tokens) {
  json body = {{"prompt", "request " + std::to_string(i) + ": tell me about swarms and pipelines"},
               {"max_tokens", max_tokens},
               {"logprobs", 2}};
  if (i % 2 == 0) {
    body["temperature"] = 0;
  } else {
    body["temperature"] = 0.9;
    body["seed"] = 100 + i;
  }
  return body;
}

struct Completion {
  std::string text;
  json logprobs;
  std::string finish;
  int status = 0;
  std::string body;
};

inline Completion complete(const std::string& api, int i, int max_tokens = 16) {
  const json body = request_body(i, max_tokens);
  Completion c;
  auto res = client(api)->Post("/v1/completions", body.dump(), "application/json");
  if (!res) return c;
  c.status = res->status;
  c.body = res->body;
  const json j = json::parse(res->body, nullptr, false);
  if (res->status != 200 || j.is_discarded()) return c;
  c.text = j["choices"][0]["text"];
  c.logprobs = j["choices"][0]["logprobs"];
  c.finish = j["choices"][0]["finish_reason"];
  return c;
}

// The same request as complete(), streamed (SSE): the text and the token logprobs put together
// from the chunks, and the longest silence between two chunks.
struct Streamed {
  std::string text;
  json token_logprobs = json::array();
  std::string finish;
  int status = 0;
  double worst_gap_s = 0;
};

inline Streamed stream(const std::string& api, int i, int max_tokens) {
  json body = request_body(i, max_tokens);
  body["stream"] = true;
  Streamed out;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  std::string pending;
  auto last = std::chrono::steady_clock::now();
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    pending.append(data, n);
    for (size_t pos; (pos = pending.find("\n\n")) != std::string::npos; pending.erase(0, pos + 2)) {
      const std::string event = pending.substr(0, pos);
      if (event.rfind("data: {", 0) != 0) continue;
      const auto now = std::chrono::steady_clock::now();
      out.worst_gap_s = std::max(out.worst_gap_s, std::chrono::duration<double>(now - last).count());
      last = now;
      const json j = json::parse(event.substr(6), nullptr, false);
      if (j.is_discarded() || !j.contains("choices") || j["choices"].empty()) continue;
      const json& c = j["choices"][0];
      out.text += c.value("text", "");
      if (c.contains("logprobs") && c["logprobs"].is_object()) {
        for (const auto& lp : c["logprobs"]["token_logprobs"]) out.token_logprobs.push_back(lp);
      }
      if (c.contains("finish_reason") && c["finish_reason"].is_string()) out.finish = c["finish_reason"];
    }
    return true;
  };
  auto res = client(api)->send(req);
  out.status = res ? res->status : 0;
  return out;
}

inline std::vector<Completion> complete_concurrently(const std::string& api, int n, int max_tokens = 16) {
  std::vector<std::future<Completion>> futures;
  for (int i = 0; i < n; ++i) futures.push_back(std::async(std::launch::async, [&, i] { return complete(api, i, max_tokens); }));
  std::vector<Completion> out;
  for (auto& f : futures) out.push_back(f.get());
  return out;
}

// The reference: the same requests against one `parallax serve` holding the whole model.
inline const std::vector<Completion>& single_node_reference(int max_tokens = 16) {
  static std::map<int, std::vector<Completion>> references;
  if (references.count(max_tokens)) return references[max_tokens];
  references[max_tokens] = [&] {
    ChildProcess serve({"serve", "-m", model_path(), "--port", "0", "-t", "1"});
    const std::string port = serve.wait_for(R"(listening on http://127\.0\.0\.1:(\d+))", 30s);
    EXPECT_FALSE(port.empty()) << serve.output();
    const std::string api = "127.0.0.1:" + port;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (std::chrono::steady_clock::now() < deadline) {
      auto res = client(api)->Get("/health");
      if (res && res->status == 200) break;
      std::this_thread::sleep_for(50ms);
    }
    std::vector<Completion> r;
    for (int i = 0; i < 8; ++i) r.push_back(complete(api, i, max_tokens));
    serve.signal(SIGTERM);
    serve.wait(20s);
    return r;
  }();
  return references[max_tokens];
}

inline void expect_same(const std::vector<Completion>& got, const std::string& what, int max_tokens = 16) {
  const auto& want = single_node_reference(max_tokens);
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < want.size(); ++i) {
    ASSERT_EQ(want[i].status, 200) << want[i].body;
    EXPECT_EQ(got[i].status, 200) << what << " request " << i << ": " << got[i].body;
    EXPECT_EQ(got[i].text, want[i].text) << what << " request " << i;
    EXPECT_EQ(got[i].logprobs, want[i].logprobs) << what << " request " << i;
    EXPECT_EQ(got[i].finish, want[i].finish) << what << " request " << i;
  }
}

// Each stream gives the single node's text, token logprobs and finish; returns the longest pause
// any of them saw.
inline double expect_streams_match_reference(std::vector<std::future<Streamed>>& running, int max_tokens,
                                             const std::string& what) {
  const auto& want = single_node_reference(max_tokens);
  double worst = 0;
  for (size_t i = 0; i < running.size(); ++i) {
    const Streamed got = running[i].get();
    EXPECT_EQ(got.status, 200) << what << " request " << i;
    EXPECT_EQ(got.text, want[i].text) << what << " request " << i;
    EXPECT_EQ(got.token_logprobs, want[i].logprobs["token_logprobs"]) << what << " request " << i;
    EXPECT_EQ(got.finish, want[i].finish) << what << " request " << i;
    worst = std::max(worst, got.worst_gap_s);
  }
  return worst;
}

// A head with no layers: the scheduler and the API of the swarm.
struct Head {
  std::unique_ptr<ChildProcess> process;
  std::string p2p, api;
  explicit Head(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"run", "-m", model_path(), "--port", "0", "--p2p-port", "0", "-t", "1",
                                     "--heartbeat-ms", "200", "--expire-ms", "2000"};
    args.insert(args.end(), extra.begin(), extra.end());
    process = std::make_unique<ChildProcess>(args);
    const std::string line = process->wait_for(R"((ready node=.*))", 60s);
    std::smatch m;
    if (std::regex_search(line, m, std::regex(R"(p2p=(\S+) api=(\S+))"))) p2p = m[1], api = m[2];
  }
};

inline std::unique_ptr<ChildProcess> worker(const std::string& peer, std::vector<std::string> extra) {
  std::vector<std::string> args = {"-m", model_path(), "--peer", peer, "-t", "1", "--heartbeat-ms", "200",
                                   "--expire-ms", "2000"};
  if (std::find(extra.begin(), extra.end(), "--p2p-port") == extra.end()) {
    args.insert(args.end(), {"--p2p-port", "0"});  // any free one, unless the test names one
  }
  extra.insert(extra.end(), args.begin(), args.end());
  auto p = std::make_unique<ChildProcess>(extra);
  EXPECT_FALSE(p->wait_for(R"((ready node=.*))", 60s).empty()) << p->output();
  return p;
}

inline std::string node_id_of(ChildProcess& p) { return p.wait_for(R"(ready node=(\S+))", 1s); }

}  // namespace px::swarm_test
