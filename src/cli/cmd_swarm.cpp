// `parallax run`, `parallax join` and `parallax status`: start a swarm, add a node to one, and
// show one.
#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <map>

#include "cli/commands.h"
#include "cli/swarm_command.h"
#include "core/error.h"
#include "swarm/peer_client.h"
#include "swarm/peer_tls.h"

namespace px::cli {
namespace {

void print_status(const std::string& json_text, bool raw) {
  if (raw) {
    fmt::print("{}\n", json_text);
    return;
  }
  const nlohmann::json j = nlohmann::json::parse(json_text);
  fmt::print("model {} ({} layers), seen from node {}\n", j.value("model_id", "?"), j.value("n_layers", 0),
             j.value("self", "?"));
  fmt::print("{:<18}{:<22}{:<10}{:<10}{:>7}{:>10}{:>10}{:>10}  {}\n", "NODE", "ADDRESS", "LAYERS", "STATE", "LOAD",
             "FREE KV", "RTT ms", "Mbit/s", "API");
  for (const auto& n : j.at("nodes")) {
    const auto& layers = n.at("layers");
    const std::string range = fmt::format("{}:{}", layers[0].get<int>(), layers[1].get<int>());
    const std::string rtt = n.at("rtt_ms").is_null() ? "-" : fmt::format("{:.2f}", n.at("rtt_ms").get<double>());
    // This node's probe of the link (absent from older nodes' answers).
    const nlohmann::json mbit = n.value("mbit_per_s", nlohmann::json());
    const std::string rate = mbit.is_number() ? fmt::format("{:.1f}", mbit.get<double>()) : "-";
    fmt::print("{:<18}{:<22}{:<10}{:<10}{:>7.2f}{:>10}{:>10}{:>10}  {}{}\n", n.at("id").get<std::string>(),
               n.at("address").get<std::string>(), range, n.at("state").get<std::string>(), n.at("load").get<double>(),
               n.at("free_kv_tokens").get<int64_t>(), rtt, rate, n.at("api_address").get<std::string>(),
               n.value("scheduler", false) ? "  (scheduler)" : "");
  }
  int i = 0;
  for (const auto& p : j.at("pipelines")) {
    std::string stages;
    for (const auto& s : p) {
      stages += fmt::format("{}{}[{}:{}]", stages.empty() ? "" : " -> ", s.at("id").get<std::string>(),
                            s.at("layers")[0].get<int>(), s.at("layers")[1].get<int>());
    }
    fmt::print("pipeline {}: {}\n", i++, stages);
  }
  if (j.at("pipelines").empty()) fmt::print("no pipeline covers the model yet\n");
  for (const auto& b : j.value("banned", nlohmann::json::array())) {
    fmt::print("banned {} at {}: {}\n", b.at("id").get<std::string>(), b.at("address").get<std::string>(),
               b.at("reason").get<std::string>());
  }
  // A head of an open swarm: what its verification has checked and found.
  if (const auto v = j.find("verification"); v != j.end() && v->is_object()) {
    fmt::print("verification at rate {}: {} of {} requests replayed, {} passed, {} disputes ({} cleared), {} bans\n",
               v->value("rate", 0.0), v->value("replayed", 0), v->value("completed", 0), v->value("passed", 0),
               v->value("disputes", 0), v->value("cleared", 0), v->value("bans", nlohmann::json::array()).size());
    if (v->value("mode", "") == "full") {
      fmt::print("verification full: every request on two disjoint pipelines; {} token disputes decided by this head "
                 "({} honest differences)\n",
                 v->value("token_disputes", 0), v->value("honest_differences", 0));
    }
  }
  // The last few routes this node's requests took (on a head).
  std::map<std::string, std::string> ranges;
  for (const auto& n : j.at("nodes")) {
    ranges[n.at("id").get<std::string>()] = fmt::format("[{}:{}]", n.at("layers")[0].get<int>(), n.at("layers")[1].get<int>());
  }
  const auto& routes = j.at("routes");
  for (size_t i = routes.size() > 3 ? routes.size() - 3 : 0; i < routes.size(); ++i) {
    std::string hops;
    for (const auto& id : routes[i].at("nodes")) hops += " -> " + id.get<std::string>() + ranges[id.get<std::string>()];
    fmt::print("route of request {}: head{} -> head\n", routes[i].at("request").get<uint64_t>(), hops);
  }
}

}  // namespace

void register_swarm(CLI::App& app) {
  auto run = std::make_shared<SwarmArgs>();
  CLI::App* cmd = app.add_subcommand("run", "Start a swarm: the scheduler, the API and (by default) a worker");
  add_swarm_options(cmd, *run);
  cmd->add_option("--port", run->port, "HTTP API port (0: any free port)")->capture_default_str();
  cmd->add_option("--peer", run->peers, "host:p2p-port of a node of an existing swarm to join");
  cmd->add_flag("--no-worker", [run](int64_t) { run->worker = false; }, "Hold no layers here: schedule and serve only");
  cmd->add_option("--wait-nodes", run->wait_nodes, "Workers to wait for before allocating layers")->capture_default_str();
  cmd->add_option("--api-key", run->api_key, "Require 'Authorization: Bearer KEY' on /v1/*")->envname("PARALLAX_API_KEY");
  cmd->add_option("--model-name", run->model_name, "Model id clients use (default: the file name)");
  cmd->callback([run] {
    run->scheduler = true;
    run_swarm_node(*run);
  });

  auto join = std::make_shared<SwarmArgs>();
  join->api = false;
  cmd = app.add_subcommand("join", "Join a swarm as a worker; the scheduler assigns its layers");
  add_swarm_options(cmd, *join);
  cmd->add_option("--peer", join->peers, "host:p2p-port of any node of the swarm")->required();
  cmd->add_flag("--no-worker", [join](int64_t) { join->worker = false; },
                "Hold no layers: only relay (with --relay) or serve the API (with --port)");
  auto* port = cmd->add_option("--port", join->port, "Also serve the HTTP API on this port");
  cmd->callback([join, port] {
    join->api = port->count() > 0;
    run_swarm_node(*join);
  });

  auto status_peer = std::make_shared<std::string>();
  auto status_json = std::make_shared<bool>(false);
  auto status_credentials = std::make_shared<std::string>();
  cmd = app.add_subcommand("status", "Show a swarm's nodes and pipelines as one of its nodes sees them");
  cmd->add_option("--peer", *status_peer, "host:p2p-port of any node of the swarm")->required();
  cmd->add_flag("--json", *status_json, "Print the raw JSON (as GET /v1/cluster)");
  cmd->add_option("--credentials", *status_credentials, "Node credential directory, for a private swarm")
      ->envname("PARALLAX_CREDENTIALS");
  cmd->callback([status_peer, status_json, status_credentials] {
    std::shared_ptr<const swarm::PeerTls> tls;
    if (!status_credentials->empty()) {
      tls = std::make_shared<swarm::PeerTls>(swarm::SwarmCredentials::load(*status_credentials));
    }
    std::string json;
    try {
      json = swarm::PeerClient(*status_peer, tls).cluster(std::chrono::seconds(5));
    } catch (const Error& e) {
      // A private swarm's node closes a plaintext connection without a word.
      if (tls || std::string(e.what()).find("Socket closed") == std::string::npos) throw;
      fail("{} (the node may be in a private swarm: give --credentials NODE_DIR)", e.what());
    }
    print_status(json, *status_json);
  });
}

}  // namespace px::cli
