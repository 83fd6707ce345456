// Unit tests of the client library's security options (throttle/channel.h):
// MakeChannelCredentials' checks and ChannelSecurityFromEnvironment. No
// server: what the options do on the wire is in secure_server_test.cc.
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "grpc/grpc.h"
#include "grpc/grpc_security_constants.h"
#include "gtest/gtest.h"
#include "throttle/channel.h"

namespace throttle {
namespace {

using ::testing::HasSubstr;

// A temporary directory with a few small files, removed afterwards.
class ChannelSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "channel_security_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
  }
  void TearDown() override {
    for (const std::string& path : written_) std::remove(path.c_str());
    rmdir(dir_.c_str());
  }

  std::string Write(const std::string& name, const std::string& text) {
    const std::string path = dir_ + "/" + name;
    std::ofstream(path) << text;
    written_.push_back(path);
    return path;
  }
  // Something shaped like PEM: the client library checks only for a block;
  // gRPC parses it at the handshake.
  std::string Pem(const std::string& name) {
    return Write(name,
                 "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"
                 "\n");
  }
  std::string Missing() const { return dir_ + "/missing.pem"; }

  std::string dir_;
  std::vector<std::string> written_;
};

absl::Status Make(const ChannelSecurity& security) {
  return MakeChannelCredentials(security).status();
}

TEST_F(ChannelSecurityTest, NothingSetIsPlaintext) {
  auto credentials = MakeChannelCredentials(ChannelSecurity());
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  EXPECT_NE(*credentials, nullptr);
}

TEST_F(ChannelSecurityTest, CaFileAloneIsTls) {
  ChannelSecurity security;
  security.ca_file = Pem("ca.pem");
  EXPECT_TRUE(Make(security).ok()) << Make(security);
}

TEST_F(ChannelSecurityTest, UnreadableFileNamesTheFieldFlagAndVariable) {
  struct Case {
    const char* prefix;
    ChannelSecurity security;
  };
  ChannelSecurity ca, cert, key, token_file;
  ca.ca_file = Missing();
  cert.cert_file = Missing();
  cert.key_file = Pem("k1.pem");
  key.cert_file = Pem("c1.pem");
  key.key_file = Missing();
  token_file.ca_file = Pem("ca.pem");
  token_file.token_file = Missing();
  for (const Case& c :
       {Case{"ca_file (--tls_ca, THROTTLE_TLS_CA): cannot read", ca},
        Case{"cert_file (--tls_cert, THROTTLE_TLS_CERT): cannot read", cert},
        Case{"key_file (--tls_key, THROTTLE_TLS_KEY): cannot read", key},
        Case{"token_file (--token_file, THROTTLE_TOKEN_FILE): cannot read",
             token_file}}) {
    const absl::Status status = Make(c.security);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << status;
    EXPECT_TRUE(absl::StartsWith(status.message(), c.prefix)) << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr(Missing()));
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("No such file or directory"));
  }
}

TEST_F(ChannelSecurityTest, FileWithoutPemBlockIsRefused) {
  ChannelSecurity security;
  security.ca_file = Write("ca.txt", "not a certificate\n");
  const absl::Status status = Make(security);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("ca_file"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("holds no PEM block"));
}

TEST_F(ChannelSecurityTest, CertificateAndKeyGoTogether) {
  ChannelSecurity cert_only;
  cert_only.ca_file = Pem("ca.pem");
  cert_only.cert_file = Pem("c.pem");
  absl::Status status = Make(cert_only);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "key_file (--tls_key"))
      << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("missing"));

  ChannelSecurity key_only;
  key_only.key_file = Pem("k.pem");
  status = Make(key_only);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "cert_file (--tls_cert"))
      << status;
}

TEST_F(ChannelSecurityTest, TokenWithoutTlsIsRefusedClearly) {
  ChannelSecurity token;
  token.token = "s3cret";
  absl::Status status = Make(token);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "token (--token")) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("TLS only"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("plaintext"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("ca_file"));
  EXPECT_THAT(std::string(status.message()),
              ::testing::Not(HasSubstr("s3cret")));

  ChannelSecurity token_file;
  token_file.token_file = Write("token", "s3cret\n");
  status = Make(token_file);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "token_file (--token_file"))
      << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("TLS only"));
}

TEST_F(ChannelSecurityTest, TokenAndTokenFileAreExclusive) {
  ChannelSecurity security;
  security.ca_file = Pem("ca.pem");
  security.token = "a";
  security.token_file = Write("token", "b\n");
  const absl::Status status = Make(security);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("not both"));
}

TEST_F(ChannelSecurityTest, TokenThatCannotBeAHeaderIsRefusedUnquoted) {
  ChannelSecurity security;
  security.ca_file = Pem("ca.pem");
  security.token = "two words";
  absl::Status status = Make(security);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("cannot be sent"));
  EXPECT_THAT(std::string(status.message()), ::testing::Not(HasSubstr("two")));

  security.token.clear();
  security.token_file = Write("empty", "\n\nsecond line\n");
  status = Make(security);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("first line"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("is empty"));
}

TEST_F(ChannelSecurityTest, TokenFileFirstLineIsTrimmed) {
  ChannelSecurity security;
  security.ca_file = Pem("ca.pem");
  security.token_file = Write("token", "  s3cret \r\nignored\n");
  EXPECT_TRUE(Make(security).ok()) << Make(security);
}

TEST_F(ChannelSecurityTest, CreateChannelFailsAsMakeChannelCredentials) {
  ChannelSecurity security;
  security.token = "s3cret";
  auto channel = CreateChannel("127.0.0.1:1", security);
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  auto plain = CreateChannel("127.0.0.1:1", ChannelSecurity());
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_NE(*plain, nullptr);
}

TEST_F(ChannelSecurityTest, ServerNameWithoutTlsIsRefusedClearly) {
  ChannelSecurity security;
  security.server_name = "throttle.example";
  const absl::Status status = Make(security);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(
      status.message(),
      "server_name (--tls_server_name, THROTTLE_TLS_SERVER_NAME): "))
      << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("needs TLS"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("plaintext"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("ca_file (--tls_ca"));
  EXPECT_EQ(CreateChannel("127.0.0.1:1", security).status().code(),
            absl::StatusCode::kInvalidArgument);

  security.ca_file = Pem("ca.pem");
  EXPECT_TRUE(Make(security).ok()) << Make(security);
  ChannelSecurity mtls;  // a client certificate alone is TLS too
  mtls.cert_file = Pem("c.pem");
  mtls.key_file = Pem("k.pem");
  mtls.server_name = "throttle.example";
  EXPECT_TRUE(Make(mtls).ok()) << Make(mtls);
}

TEST_F(ChannelSecurityTest, ServerNameIsOneName) {
  ChannelSecurity security;
  security.ca_file = Pem("ca.pem");
  for (const char* name : {"localhost", "127.0.0.1", "throttle.example",
                           "throttle.prod.svc.cluster.local"}) {
    security.server_name = name;
    EXPECT_TRUE(Make(security).ok()) << name << ": " << Make(security);
  }
  security.server_name = "10.0.0.1,10.0.0.2";
  absl::Status status = Make(security);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(absl::StartsWith(status.message(), "server_name (")) << status;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("\"10.0.0.1,10.0.0.2\": one name, not a list"));
  security.server_name = "throttle.example\n";
  status = Make(security);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("\"throttle.example\\n\": the name holds a space"));
}

// The value of the string argument `key` of `args`; "" when absent.
std::string StringArgument(const grpc::ChannelArguments& args,
                           const char* key) {
  const grpc_channel_args c = args.c_channel_args();
  for (size_t i = 0; i < c.num_args; ++i) {
    if (std::string(c.args[i].key) == key &&
        c.args[i].type == GRPC_ARG_STRING) {
      return c.args[i].value.string;
    }
  }
  return "";
}

int IntArgument(const grpc::ChannelArguments& args, const char* key) {
  const grpc_channel_args c = args.c_channel_args();
  for (size_t i = 0; i < c.num_args; ++i) {
    if (std::string(c.args[i].key) == key &&
        c.args[i].type == GRPC_ARG_INTEGER) {
      return c.args[i].value.integer;
    }
  }
  return -1;
}

TEST(ChannelArgumentsForTest, ServerNameIsTheSslTargetNameOverride) {
  ChannelSecurity security;
  EXPECT_EQ(StringArgument(ChannelArgumentsFor(security),
                           GRPC_SSL_TARGET_NAME_OVERRIDE_ARG),
            "");
  security.server_name = "throttle.example";
  const grpc::ChannelArguments args = ChannelArgumentsFor(
      security, absl::Milliseconds(30), absl::Milliseconds(700));
  EXPECT_EQ(StringArgument(args, GRPC_SSL_TARGET_NAME_OVERRIDE_ARG),
            "throttle.example");
  // And the reconnect arguments, as ReconnectChannelArguments.
  EXPECT_EQ(IntArgument(args, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS), 30);
  EXPECT_EQ(IntArgument(args, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS), 700);
}

// The environment as a map, for ChannelSecurityFromEnvironment.
ChannelSecurity FromEnv(const ChannelSecurity& flags,
                        const std::map<std::string, std::string>& env) {
  return ChannelSecurityFromEnvironment(
      flags, [&](const char* name) -> const char* {
        auto it = env.find(name);
        return it == env.end() ? nullptr : it->second.c_str();
      });
}

const std::map<std::string, std::string> kFullEnvironment = {
    {"THROTTLE_TLS_CA", "env-ca"},     {"THROTTLE_TLS_CERT", "env-cert"},
    {"THROTTLE_TLS_KEY", "env-key"},   {"THROTTLE_TOKEN", "env-token"},
    {"THROTTLE_TOKEN_FILE", "env-tf"}, {"THROTTLE_TLS_SERVER_NAME", "env-sn"},
};

TEST(ChannelSecurityFromEnvironmentTest, ReadsEveryVariable) {
  const ChannelSecurity s = FromEnv(ChannelSecurity(), kFullEnvironment);
  EXPECT_EQ(s.ca_file, "env-ca");
  EXPECT_EQ(s.cert_file, "env-cert");
  EXPECT_EQ(s.key_file, "env-key");
  EXPECT_EQ(s.token, "env-token");
  EXPECT_EQ(s.token_file, "env-tf");
  EXPECT_EQ(s.server_name, "env-sn");
}

TEST(ChannelSecurityFromEnvironmentTest, UnsetAndEmptyLeaveFieldsEmpty) {
  const ChannelSecurity s =
      FromEnv(ChannelSecurity(), {{"THROTTLE_TLS_CA", ""}});
  EXPECT_EQ(s.ca_file, "");
  EXPECT_EQ(s.cert_file, "");
  EXPECT_EQ(s.token, "");
}

TEST(ChannelSecurityFromEnvironmentTest, FlagsOverrideTheEnvironment) {
  ChannelSecurity flags;
  flags.ca_file = "flag-ca";
  flags.cert_file = "flag-cert";
  flags.key_file = "flag-key";
  flags.token = "flag-token";
  flags.server_name = "flag-sn";
  const ChannelSecurity s = FromEnv(flags, kFullEnvironment);
  EXPECT_EQ(s.ca_file, "flag-ca");
  EXPECT_EQ(s.cert_file, "flag-cert");
  EXPECT_EQ(s.key_file, "flag-key");
  EXPECT_EQ(s.token, "flag-token");
  EXPECT_EQ(s.token_file, "") << "a token flag keeps THROTTLE_TOKEN_FILE out";
  EXPECT_EQ(s.server_name, "flag-sn");
}

TEST(ChannelSecurityFromEnvironmentTest, PairsNeverMixFlagAndEnvironment) {
  ChannelSecurity flags;
  flags.cert_file = "flag-cert";  // no key flag: not THROTTLE_TLS_KEY
  flags.token_file = "flag-tf";   // not THROTTLE_TOKEN
  const ChannelSecurity s = FromEnv(flags, kFullEnvironment);
  EXPECT_EQ(s.ca_file, "env-ca");
  EXPECT_EQ(s.cert_file, "flag-cert");
  EXPECT_EQ(s.key_file, "");
  EXPECT_EQ(s.token, "");
  EXPECT_EQ(s.token_file, "flag-tf");
  EXPECT_EQ(s.server_name, "env-sn") << "a name of its own, no pair";
}

TEST(ChannelSecurityFromEnvironmentTest, ReadsTheProcessEnvironment) {
  ASSERT_EQ(setenv("THROTTLE_TLS_CA", "from-getenv", 1), 0);
  const ChannelSecurity s = ChannelSecurityFromEnvironment();
  unsetenv("THROTTLE_TLS_CA");
  EXPECT_EQ(s.ca_file, "from-getenv");
}

}  // namespace
}  // namespace throttle
