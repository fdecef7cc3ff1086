#include "cli/swarm_harness.h"

#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <regex>
#include <thread>

#include "core/error.h"

namespace px::cli {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

std::string self_binary() { return std::filesystem::read_symlink("/proc/self/exe").string(); }

std::string await_output(Subprocess& p, const std::string& pattern) {
  const std::string found = p.wait_for(pattern, 60s);
  if (found.empty()) fail("a node did not start:\n{}", p.output());
  return found;
}

StartedNode start_node(std::vector<std::string> args) {
  args.insert(args.begin(), self_binary());
  StartedNode node;
  node.process = std::make_unique<Subprocess>(std::move(args));
  const std::string ready = await_output(*node.process, R"((ready node=.*))");
  std::smatch m;
  if (std::regex_search(ready, m, std::regex(R"(p2p=(\S+))"))) node.p2p = m[1];
  if (std::regex_search(ready, m, std::regex(R"(api=(\S+))"))) node.api = m[1];
  if (std::regex_search(ready, m, std::regex(R"(listen=\S+:(\d+))"))) node.listen_port = std::stoi(m[1]);
  return node;
}

void wait_until_serving(const std::string& api, bool swarm) {
  httplib::Client client("http://" + api);
  client.set_connection_timeout(2);
  const auto deadline = Clock::now() + 60s;
  while (Clock::now() < deadline) {
    auto health = client.Get("/health");
    if (health && health->status == 200) {
      if (!swarm) return;
      auto cluster = client.Get("/v1/cluster");
      if (cluster && cluster->status == 200 && cluster->body.find("\"pipelines\":[[") != std::string::npos) return;
    }
    std::this_thread::sleep_for(100ms);
  }
  fail("{} did not start serving within 60 s", api);
}

std::vector<double> probed_link_mbit(const std::string& api) {
  httplib::Client client("http://" + api);
  client.set_connection_timeout(2);
  client.set_read_timeout(5);
  std::vector<double> rates;
  auto res = client.Get("/v1/cluster");
  if (!res || res->status != 200) return rates;
  const nlohmann::json view = nlohmann::json::parse(res->body, nullptr, false);
  if (view.is_discarded() || !view.contains("nodes")) return rates;
  for (const auto& node : view["nodes"]) {
    if (node.contains("mbit_per_s") && node["mbit_per_s"].is_number()) rates.push_back(node["mbit_per_s"].get<double>());
  }
  std::sort(rates.rbegin(), rates.rend());
  return rates;
}

StreamResult stream_completion(const std::string& api, nlohmann::json body, int timeout_s) {
  httplib::Client client("http://" + api);
  client.set_connection_timeout(5);
  client.set_read_timeout(timeout_s);
  body["stream"] = true;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  StreamResult r;
  const auto start = Clock::now();
  auto last = start;
  std::string pending;
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    pending.append(data, n);
    for (size_t pos; (pos = pending.find("\n\n")) != std::string::npos; pending.erase(0, pos + 2)) {
      const std::string event = pending.substr(0, pos);
      if (event.rfind("data: {", 0) != 0) continue;
      const auto now = Clock::now();
      if (const double gap = std::chrono::duration<double>(now - last).count(); gap > r.worst_gap_s) {
        r.worst_gap_s = gap;
        r.worst_gap_end = now;
      }
      last = now;
      const auto j = nlohmann::json::parse(event.substr(6), nullptr, false);
      if (j.is_discarded()) continue;
      if (j.contains("error")) {
        r.error = j["error"].value("message", "error");
        continue;
      }
      if (!j.contains("choices") || j["choices"].empty()) continue;
      const auto& choice = j["choices"][0];
      const std::string text = choice.value("text", "");
      if (text.empty() && !(choice.contains("logprobs") && choice["logprobs"].is_object())) continue;
      const double at = std::chrono::duration<double>(now - start).count();
      if (r.chunks++ == 0) r.ttft_s = at;
      r.last_s = at;
      r.text += text;
    }
    return true;
  };
  const auto res = client.send(req);
  if (!res) {
    r.error = "connection failed: " + httplib::to_string(res.error());
    return r;
  }
  r.status = res->status;
  if (r.status != 200 && r.error.empty()) r.error = res->body;
  return r;
}

}  // namespace px::cli
