// `parallax swarm init | invite | revoke | show`: a private swarm's root credential and the
// node credentials it issues (swarm/credential_authority.h says what each file is).
#include <nlohmann/json.hpp>

#include <chrono>
#include <filesystem>
#include <memory>

#include "cli/commands.h"
#include "core/error.h"
#include "swarm/credential_authority.h"
#include "swarm/peer_client.h"
#include "swarm/peer_tls.h"

namespace px::cli {
namespace {

struct InviteArgs {
  std::string root;
  std::string out;
  std::string name;
  int days = 365;
};

struct RevokeArgs {
  std::string root;
  std::string who;
  std::vector<std::string> peers;
};

void revoke(const RevokeArgs& args) {
  const swarm::RevocationList list = swarm::revoke_credential(args.root, args.who);
  fmt::print("revoked '{}' (revocation list {} of swarm {}, {} credential(s) revoked in all)\n", args.who,
             list.sequence, list.swarm_id, list.revoked.size());
  if (args.peers.empty()) {
    fmt::print("no --peer given: nodes learn it when one of them is given {} or joins after it\n",
               args.root + "/revocations.json");
    return;
  }
  // The operator's own short-lived credential gets the list into the swarm; nodes pass it on.
  const auto tls = std::make_shared<swarm::PeerTls>(swarm::operator_credential(args.root));
  int told = 0;
  for (const std::string& peer : args.peers) {
    try {
      const swarm::RevocationReplyData reply = swarm::PeerClient(peer, tls).revoke(list.file_text, std::chrono::seconds(5));
      if (!reply.error.empty()) fail("peer {} refused the list: {}", peer, reply.error);
      fmt::print("peer {}: {}\n", peer, reply.adopted ? "adopted it; it passes it on to the swarm" : "had it already");
      ++told;
    } catch (const Error& e) {
      fmt::print(stderr, "warning: {}\n", e.what());
    }
  }
  if (told == 0) fail("no peer took the revocation list; it is saved in {}/revocations.json", args.root);
}

}  // namespace

void register_credentials(CLI::App& app) {
  CLI::App* swarm = app.add_subcommand("swarm", "A private swarm's credentials: init, invite, revoke, show");
  swarm->require_subcommand(1);

  auto init_dir = std::make_shared<std::string>();
  auto init_name = std::make_shared<std::string>("swarm");
  CLI::App* cmd = swarm->add_subcommand("init", "Create a swarm's root credential (keep its swarm.key secret)");
  cmd->add_option("-o,--output", *init_dir, "Directory for the root (created; never overwritten)")->required();
  cmd->add_option("--name", *init_name, "A name for the swarm")->capture_default_str();
  cmd->callback([init_dir, init_name] {
    const swarm::SwarmRootInfo root = swarm::create_swarm_root(*init_dir, *init_name);
    fmt::print("swarm {} ('{}') created in {}\n", root.swarm_id, root.name, root.dir);
    fmt::print("{}/swarm.key admits and revokes nodes: keep it off the serving machines and back it up.\n", root.dir);
    fmt::print("next: parallax swarm invite {} -o NODE_DIR --name NODE_NAME\n", root.dir);
  });

  auto invite = std::make_shared<InviteArgs>();
  cmd = swarm->add_subcommand("invite", "Issue one node's credential");
  cmd->add_option("root", invite->root, "The swarm's root directory (from `swarm init`)")->required();
  cmd->add_option("-o,--output", invite->out, "Directory for the node's credential (give it to that node only)")
      ->required();
  cmd->add_option("--name", invite->name, "The node's name (default: the output directory's name)");
  cmd->add_option("--days", invite->days, "Days the credential is valid")->capture_default_str();
  cmd->callback([invite] {
    std::string name = invite->name;
    if (name.empty()) name = std::filesystem::path(invite->out).lexically_normal().filename().string();
    const swarm::CredentialInfo info = swarm::issue_node_credential(invite->root, invite->out, name, invite->days);
    fmt::print("credential '{}' (serial {}) valid until {} written to {}\n", info.name, info.serial,
               swarm::ossl::format_time(info.not_after), invite->out);
    fmt::print("use it with: parallax join --credentials {} ...\n", invite->out);
  });

  auto revoke_args = std::make_shared<RevokeArgs>();
  cmd = swarm->add_subcommand("revoke", "Revoke a node's credential; with --peer, tell the swarm now");
  cmd->add_option("root", revoke_args->root, "The swarm's root directory")->required();
  cmd->add_option("node", revoke_args->who, "The node's name or its credential's serial")->required();
  cmd->add_option("--peer", revoke_args->peers, "host:p2p-port of a node of the swarm to hand the list to");
  cmd->callback([revoke_args] { revoke(*revoke_args); });

  auto show_dir = std::make_shared<std::string>();
  cmd = swarm->add_subcommand("show", "Check a node credential directory and say what it holds");
  cmd->add_option("dir", *show_dir, "A node credential directory")->required();
  cmd->callback([show_dir] {
    const auto credentials = swarm::SwarmCredentials::load(*show_dir);
    fmt::print("credential '{}' (serial {}) of swarm {}, valid until {}; revocation list {}\n",
               credentials->self().name, credentials->self().serial, credentials->swarm_id(),
               swarm::ossl::format_time(credentials->self().not_after), credentials->revocation_sequence());
  });
}

}  // namespace px::cli
