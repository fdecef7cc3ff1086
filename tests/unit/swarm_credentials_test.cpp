// A private swarm's credentials: the root, node credentials, revocation lists and sealed
// announcements, each refusing what it must (another swarm, expired, revoked, tampered).
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "swarm/announcement_seal.h"
#include "swarm/credential_authority.h"
#include "swarm/swarm_credentials.h"
#include "unit/test_temp_dir.h"

namespace px::swarm {
namespace {

namespace fs = std::filesystem;

std::string fresh_dir(const std::string& name) {
  static int n = 0;
  const std::string dir = test::temp_dir() + "credentials-" + std::to_string(n++) + "-" + name;
  fs::remove_all(dir);
  return dir;
}

std::string read(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

struct Swarm {
  std::string root = fresh_dir("root");
  Swarm() { create_swarm_root(root, "test"); }
  std::string invite(const std::string& name) {
    const std::string dir = fresh_dir(name);
    issue_node_credential(root, dir, name, 30);
    return dir;
  }
};

TEST(SwarmCredentials, ANodeCredentialIsCheckedAgainstItsSwarmsRoot) {
  Swarm swarm;
  const auto a = SwarmCredentials::load(swarm.invite("a"));
  const auto b = SwarmCredentials::load(swarm.invite("b"));
  EXPECT_EQ(a->swarm_id(), b->swarm_id());
  EXPECT_EQ(a->self().name, "a");
  EXPECT_NE(a->self().serial, b->self().serial);
  EXPECT_EQ(a->check_peer(b->cert_pem()).name, "b");
  EXPECT_EQ(b->check_peer(a->cert_pem()).serial, a->self().serial);
  // The key is the node's alone.
  struct stat st {};
  ASSERT_EQ(::stat((fs::path(swarm.root) / kRootKeyFile).c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
}

TEST(SwarmCredentials, AnotherSwarmsCredentialIsRefusedAndSaysSo) {
  Swarm ours, theirs;
  const auto a = SwarmCredentials::load(ours.invite("a"));
  const auto evil = SwarmCredentials::load(theirs.invite("evil"));
  EXPECT_NE(a->swarm_id(), evil->swarm_id());
  const std::string error = error_of([&] { a->check_peer(evil->cert_pem()); });
  EXPECT_NE(error.find("credential 'evil' is issued by another swarm's root"), std::string::npos) << error;
  // The root certificate itself is no node credential.
  EXPECT_NE(error_of([&] { a->check_peer(a->root_pem()); }).find("not a node credential"), std::string::npos);
}

TEST(SwarmCredentials, ExpiredAndNotYetValidCredentialsAreRefusedOnBothSides) {
  Swarm swarm;
  const auto a = SwarmCredentials::load(swarm.invite("a"));
  const std::string old_dir = fresh_dir("old"), future_dir = fresh_dir("future");
  issue_node_credential_window(swarm.root, old_dir, "old", -7200, -3600);
  issue_node_credential_window(swarm.root, future_dir, "future", 3600, 7200);
  const std::string old_pem = read(old_dir + "/" + kNodeCertFile);
  EXPECT_NE(error_of([&] { a->check_peer(old_pem); }).find("credential 'old' is expired on"), std::string::npos);
  EXPECT_NE(error_of([&] { a->check_peer(read(future_dir + "/" + kNodeCertFile)); }).find("not valid before"),
            std::string::npos);
  // The holder of an expired credential learns it when it loads it, before it tries to join.
  const std::string error = error_of([&] { SwarmCredentials::load(old_dir); });
  EXPECT_NE(error.find("this node's certificate: credential 'old' is expired"), std::string::npos) << error;
}

TEST(SwarmCredentials, UnreadableOrMismatchedFilesGiveAClearError) {
  Swarm swarm;
  EXPECT_NE(error_of([&] { SwarmCredentials::load(fresh_dir("missing")); }).find("not a directory"), std::string::npos);
  const std::string a = swarm.invite("a"), b = swarm.invite("b");
  fs::copy_file(b + "/" + kNodeKeyFile, a + "/" + kNodeKeyFile, fs::copy_options::overwrite_existing);
  EXPECT_NE(error_of([&] { SwarmCredentials::load(a); }).find("does not belong"), std::string::npos);
  std::ofstream(b + "/" + kNodeCertFile) << "-----BEGIN CERTIFICATE-----\ngarbage\n";
  EXPECT_NE(error_of([&] { SwarmCredentials::load(b); }).find("not a PEM certificate"), std::string::npos);
  fs::remove(b + "/" + kRootCertFile);
  EXPECT_NE(error_of([&] { SwarmCredentials::load(b); }).find("swarm root certificate"), std::string::npos);
  // Nothing is overwritten: a second init or invite into the same place is refused.
  EXPECT_NE(error_of([&] { create_swarm_root(swarm.root, "again"); }).find("refusing to overwrite"), std::string::npos);
  EXPECT_NE(error_of([&] { issue_node_credential(swarm.root, a, "a2", 30); }).find("refusing to overwrite"),
            std::string::npos);
  EXPECT_NE(error_of([&] { issue_node_credential(swarm.root, fresh_dir("x"), "bad name!", 30); }).find("only letters"),
            std::string::npos);
}

TEST(SwarmCredentials, ARevocationListIsAdoptedOnlyWhenSignedByTheRootAndNewer) {
  Swarm swarm;
  const auto a = SwarmCredentials::load(swarm.invite("a"));
  const auto b = SwarmCredentials::load(swarm.invite("b"));
  EXPECT_NE(error_of([&] { revoke_credential(swarm.root, "nobody"); }).find("no credential named"), std::string::npos);
  const RevocationList first = revoke_credential(swarm.root, "b");
  EXPECT_EQ(first.sequence, 1u);
  EXPECT_NE(error_of([&] { revoke_credential(swarm.root, "b"); }).find("revoked already"), std::string::npos);

  EXPECT_TRUE(a->adopt_revocations(first.file_text));
  EXPECT_FALSE(a->adopt_revocations(first.file_text));  // not newer
  EXPECT_TRUE(a->revoked(b->self().serial));
  EXPECT_NE(error_of([&] { a->check_peer(b->cert_pem()); }).find("has been revoked"), std::string::npos);

  // A tampered list (b's revocation removed) no longer carries the root's signature.
  nlohmann::json file = nlohmann::json::parse(first.file_text);
  nlohmann::json list = nlohmann::json::parse(file["list"].get<std::string>());
  list["revoked"] = nlohmann::json::array();
  list["sequence"] = 5;
  file["list"] = list.dump();
  EXPECT_NE(error_of([&] { a->adopt_revocations(file.dump()); }).find("not the swarm root's"), std::string::npos);
  // Another swarm's list, validly signed by its own root, is refused too.
  Swarm other;
  other.invite("z");
  const RevocationList foreign = revoke_credential(other.root, "z");
  EXPECT_FALSE(error_of([&] { a->adopt_revocations(foreign.file_text); }).empty());
  EXPECT_NE(error_of([&] { a->adopt_revocations("{not json"); }).find("malformed"), std::string::npos);
}

TEST(SwarmCredentials, ARevokedNodeCannotLoadItsCredentialOnceItHasTheList) {
  Swarm swarm;
  const std::string dir = swarm.invite("b");
  const RevocationList list = revoke_credential(swarm.root, "b");
  SwarmCredentials::load(dir);  // its directory does not know yet
  std::ofstream(dir + "/" + kRevocationsFile) << list.file_text;
  EXPECT_NE(error_of([&] { SwarmCredentials::load(dir); }).find("has been revoked"), std::string::npos);
  // A node invited after the revocation starts with the list.
  const std::string later = swarm.invite("c");
  EXPECT_EQ(SwarmCredentials::load(later)->revocation_sequence(), 1u);
}

TEST(SwarmCredentials, AdoptedListsPersistInTheNodeDirectory) {
  Swarm swarm;
  const std::string dir = swarm.invite("a");
  swarm.invite("b");
  const auto a = SwarmCredentials::load(dir);
  ASSERT_TRUE(a->adopt_revocations(revoke_credential(swarm.root, "b").file_text));
  EXPECT_EQ(SwarmCredentials::load(dir)->revocation_sequence(), 1u);
}

TEST(AnnouncementSeal, OnlyAnnouncementsSignedByAValidMemberOpen) {
  Swarm swarm, other;
  const auto a = SwarmCredentials::load(swarm.invite("a"));
  const auto b = SwarmCredentials::load(swarm.invite("b"));
  const auto evil = SwarmCredentials::load(other.invite("evil"));
  const std::string json = R"({"node_id":"0123456789abcdef"})";
  EXPECT_EQ(open_announcement(*a, seal_announcement(*b, json)), json);

  EXPECT_NE(error_of([&] { open_announcement(*a, json); }).find("unsigned"), std::string::npos);
  EXPECT_NE(error_of([&] { open_announcement(*a, seal_announcement(*evil, json)); }).find("another swarm"),
            std::string::npos);
  // Another member's certificate on b's signature: the signature does not match.
  nlohmann::json forged = nlohmann::json::parse(seal_announcement(*b, json));
  forged["certificate"] = a->cert_pem();
  EXPECT_NE(error_of([&] { open_announcement(*a, forged.dump()); }).find("not by credential 'a'"), std::string::npos);
  // A changed announcement under the original signature.
  nlohmann::json changed = nlohmann::json::parse(seal_announcement(*b, json));
  changed["announcement"] = R"({"node_id":"fedcba9876543210"})";
  EXPECT_NE(error_of([&] { open_announcement(*a, changed.dump()); }).find("signature"), std::string::npos);
  EXPECT_NE(error_of([&] { open_announcement(*a, std::string(kMaxSealedAnnouncementBytes + 1, ' ')); }).find("over"),
            std::string::npos);
  // Once b is revoked, its announcements are ignored.
  ASSERT_TRUE(a->adopt_revocations(revoke_credential(swarm.root, "b").file_text));
  EXPECT_NE(error_of([&] { open_announcement(*a, seal_announcement(*b, json)); }).find("revoked"), std::string::npos);
}

}  // namespace
}  // namespace px::swarm
