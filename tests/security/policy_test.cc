// The policy and token file formats (server/security/): what a rule
// allows, what a bad line says, how tokens are hashed and found.
#include "server/security/policy.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/security/security.h"
#include "server/security/tokens.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;

constexpr char kPolicy[] = R"(# a comment
spiffe://throttle.test/worker/*  worker      crawl api-*
spiffe://throttle.test/ops       controller  *   # any throttle
token:deployer                   admin       b-*
O=throttle,CN=legacy             WORKER      legacy
)";

TEST(Policy, RolesCoverTheRolesBelowThemOnTheirThrottles) {
  auto policy = Policy::Parse(kPolicy, "policy.txt");
  ASSERT_TRUE(policy.ok()) << policy.status();
  const std::string worker = "spiffe://throttle.test/worker/w1";
  EXPECT_TRUE(policy->Allows(worker, "AwaitFuel", "crawl"));
  EXPECT_TRUE(policy->Allows(worker, "HasFuel", "api-eu"));
  EXPECT_FALSE(policy->Allows(worker, "AwaitFuel", "other"));
  EXPECT_FALSE(policy->Allows(worker, "Stop", "crawl"));
  EXPECT_FALSE(policy->Allows(worker, "WatchThrottle", "crawl"));
  const std::string ops = "spiffe://throttle.test/ops";
  EXPECT_TRUE(policy->Allows(ops, "Stop", "anything"));
  EXPECT_TRUE(policy->Allows(ops, "WatchThrottle", "anything"));
  EXPECT_TRUE(policy->Allows(ops, "AwaitFuel", "anything"));
  EXPECT_FALSE(policy->Allows(ops, "DeleteThrottle", "anything"));
  EXPECT_TRUE(policy->Allows("token:deployer", "CreateThrottle", "b-1"));
  EXPECT_FALSE(policy->Allows("token:deployer", "CreateThrottle", "crawl"));
  EXPECT_TRUE(policy->Allows("O=throttle,CN=legacy", "Emit", "legacy"));
  EXPECT_FALSE(policy->Allows("someone", "AwaitFuel", "crawl"));
  EXPECT_FALSE(policy->Allows(ops, "NoSuchMethod", "crawl"));
  EXPECT_TRUE(policy->HasRole(ops, Role::kController));
  EXPECT_FALSE(policy->HasRole(worker, Role::kController));
}

TEST(Policy, ABadLineNamesTheFileTheLineAndTheProblem) {
  auto unknown_role = Policy::Parse("a worker t\nb boss t\n", "p.txt");
  ASSERT_FALSE(unknown_role.ok());
  EXPECT_THAT(unknown_role.status().message(), HasSubstr("p.txt:2:"));
  EXPECT_THAT(unknown_role.status().message(), HasSubstr("\"boss\""));
  auto no_throttle = Policy::Parse("\n\nspiffe://x worker\n", "p.txt");
  ASSERT_FALSE(no_throttle.ok());
  EXPECT_THAT(no_throttle.status().message(), HasSubstr("p.txt:3:"));
  auto brackets = Policy::Parse("a worker t[12]\n", "p.txt");
  ASSERT_FALSE(brackets.ok());
  EXPECT_THAT(brackets.status().message(), HasSubstr("'*' and '?'"));
}

TEST(Tokens, StoredHashedAndFoundByTheToken) {
  const std::string hash = HashToken("s3cret");
  EXPECT_EQ(hash.size(), 7u + 64u);
  // sha256("abc"), the standard test vector.
  EXPECT_EQ(HashToken("abc"),
            "sha256:"
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  auto file = TokenFile::Parse("deployer " + hash + "\n# c\n", "tokens.txt");
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_EQ(file->IdentityOf("s3cret"), "token:deployer");
  EXPECT_EQ(file->IdentityOf("wrong"), "");
}

TEST(Tokens, APlainTokenOrARepeatIsRefusedNamingTheLine) {
  auto plain = TokenFile::Parse("a s3cret\n", "tokens.txt");
  ASSERT_FALSE(plain.ok());
  EXPECT_THAT(plain.status().message(), HasSubstr("tokens.txt:1:"));
  EXPECT_THAT(plain.status().message(), HasSubstr("hashed"));
  const std::string line = "a " + HashToken("x") + "\n";
  auto twice = TokenFile::Parse(line + line, "tokens.txt");
  ASSERT_FALSE(twice.ok());
  EXPECT_THAT(twice.status().message(), HasSubstr("tokens.txt:2:"));
}

TEST(PeerHost, DropsThePort) {
  EXPECT_EQ(PeerHost("ipv4:10.0.0.7:53412"), "ipv4:10.0.0.7");
  EXPECT_EQ(PeerHost("ipv6:[::1]:53412"), "ipv6:[::1]");
  EXPECT_EQ(PeerHost("unix:/run/x.sock"), "unix:/run/x.sock");
}

}  // namespace
}  // namespace throttle::server
