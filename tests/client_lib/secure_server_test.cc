// The client library's TLS, mTLS and tokens (throttle/channel.h) against
// the real server in-process on 127.0.0.1:0 with ServerOptions.security:
// who gets in, what the policy lets each identity do, the server's name
// through a multi-address target (server_name), certificate rotation,
// tenant isolation and the per-identity limits. The certificates are made
// by tests/support/make_certs.sh in a temporary directory for each test
// (about a second).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gmock/gmock.h"
#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/auth_context.h"
#include "gtest/gtest.h"
#include "server/security/tokens.h"
#include "server/service/throttle_server.h"
#include "tests/support/subprocess.h"
#include "throttle/channel.h"
#include "throttle/controller.h"
#include "throttle/tank.h"
#include "throttle/v1/throttle.grpc.pb.h"

#ifndef THROTTLE_MAKE_CERTS
#error "THROTTLE_MAKE_CERTS must be the path of tests/support/make_certs.sh"
#endif

namespace throttle {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kAdminToken[] = "admin-token-0123456789";

// The policy of most tests: the worker may work on "t" only; the others
// may do everything their role allows anywhere.
constexpr char kPolicy[] =
    R"(# identity                      role        throttles
spiffe://throttle.test/worker      worker      t
spiffe://throttle.test/controller  controller  *
spiffe://throttle.test/admin       admin       *
token:deployer                     admin       *
)";

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Writes `text` to a new file and renames it over `path`, as a deployment
// replaces a watched file (readers see the old file or the new one).
void ReplaceFile(const std::string& path, const std::string& text) {
  const std::string temporary = path + ".new";
  std::ofstream(temporary) << text;
  ASSERT_EQ(std::rename(temporary.c_str(), path.c_str()), 0) << path;
}

server::ThrottleConfig FourPerSecond() {
  server::ThrottleConfig config;
  config.max_n = 4;
  config.per = absl::Seconds(1);
  return config;
}

class SecureServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string pattern = ::testing::TempDir() + "secure_server_XXXXXX";
    ASSERT_NE(mkdtemp(pattern.data()), nullptr);
    dir_ = pattern;
    auto made = Subprocess::Spawn({"/bin/bash", THROTTLE_MAKE_CERTS, dir_});
    ASSERT_TRUE(made.ok()) << made.status();
    absl::StatusOr<int> code = made->Wait(absl::Seconds(60));
    ASSERT_TRUE(code.ok()) << code.status();
    ASSERT_EQ(*code, 0) << "make_certs.sh failed";
    // mTLS with the policy above unless a test changes options_.
    options_.listen_address = "127.0.0.1:0";
    options_.security.tls_cert = File("server.pem");
    options_.security.tls_key = File("server.key");
    options_.security.tls_client_ca = File("ca.pem");
    options_.security.policy_file = Write("policy", kPolicy);
    options_.security.token_file =
        Write("tokens",
              absl::StrCat("deployer ", server::HashToken(kAdminToken), "\n"));
    options_.throttles = {{"t", FourPerSecond()}};
  }

  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
    server_.reset();
    std::error_code ignored;
    std::filesystem::remove_all(dir_, ignored);
  }

  std::string File(const std::string& name) const {
    return absl::StrCat(dir_, "/", name);
  }
  std::string Write(const std::string& name, const std::string& text) const {
    std::ofstream(File(name)) << text;
    return File(name);
  }

  void StartServer() {
    auto started = server::ThrottleServer::Start(options_);
    ASSERT_TRUE(started.ok()) << started.status();
    server_ = *std::move(started);
  }
  std::string Target() const {
    return absl::StrCat("127.0.0.1:", server_->port());
  }

  // Trusts the test CA; presents the client certificate NAME.pem, if any.
  ChannelSecurity As(const std::string& name = "") const {
    ChannelSecurity security;
    security.ca_file = File("ca.pem");
    if (!name.empty()) {
      security.cert_file = File(name + ".pem");
      security.key_file = File(name + ".key");
    }
    return security;
  }
  ChannelSecurity WithToken(const std::string& token,
                            const std::string& name = "") const {
    ChannelSecurity security = As(name);
    security.token = token;
    return security;
  }

  std::shared_ptr<grpc::Channel> Channel(const ChannelSecurity& security) {
    auto channel = CreateChannel(Target(), security);
    EXPECT_TRUE(channel.ok()) << channel.status();
    return channel.ok() ? *channel : nullptr;
  }
  std::unique_ptr<Controller> ControllerFor(const ChannelSecurity& security) {
    return std::make_unique<Controller>(Channel(security));
  }
  std::unique_ptr<Tank> TankFor(const ChannelSecurity& security,
                                const std::string& throttle) {
    return std::make_unique<Tank>(Channel(security), throttle);
  }

  std::string dir_;
  server::ServerOptions options_;
  std::unique_ptr<server::ThrottleServer> server_;
};

// --- mTLS and the policy ----------------------------------------------------

TEST_F(SecureServerTest, WorkerCertificateGetsFuel) {
  StartServer();
  ASSERT_TRUE(ControllerFor(As("controller"))->Start("t").ok());
  const FuelResult fuel =
      TankFor(As("worker"), "t")->AwaitFuel(absl::Seconds(10));
  EXPECT_TRUE(fuel.ok()) << fuel.status;
}

TEST_F(SecureServerTest, ControllerCertificateStartsAndStops) {
  StartServer();
  const auto controller = ControllerFor(As("controller"));
  auto started = controller->Start("t");
  ASSERT_TRUE(started.ok()) << started.status();
  EXPECT_EQ(started->state(), v1::STATE_RUNNING);
  auto stopped = controller->Stop("t");
  EXPECT_TRUE(stopped.ok()) << stopped.status();
}

TEST_F(SecureServerTest, WorkerStopIsDeniedNamingMethodAndThrottle) {
  StartServer();
  ASSERT_TRUE(ControllerFor(As("controller"))->Start("t").ok());
  const absl::Status status = ControllerFor(As("worker"))->Stop("t").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("Stop"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("\"t\""));
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("spiffe://throttle.test/worker"));
}

TEST_F(SecureServerTest, ControllerCannotDelete) {
  StartServer();
  const absl::Status status =
      ControllerFor(As("controller"))->DeleteThrottle("t");
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("DeleteThrottle"));
  EXPECT_TRUE(ControllerFor(As("admin"))->DeleteThrottle("t").ok());
}

// nouri.pem has no URI SAN: its identity is its subject, as gRPC prints
// it (RFC 2253 order, last RDN first: "O=throttle,CN=nouri"); the rule
// matches either order.
TEST_F(SecureServerTest, CertificateWithoutUriIsKnownBySubject) {
  options_.security.policy_file =
      Write("policy", absl::StrCat(kPolicy, "*CN=nouri* worker t\n"));
  StartServer();
  const auto nouri = ControllerFor(As("nouri"));
  const absl::Status status = nouri->Start("t").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("CN=nouri"));
  EXPECT_THAT(std::string(status.message()), HasSubstr("O=throttle"));
  ASSERT_TRUE(ControllerFor(As("controller"))->Start("t").ok());
  const FuelResult fuel =
      TankFor(As("nouri"), "t")->AwaitFuel(absl::Seconds(10));
  EXPECT_TRUE(fuel.ok()) << fuel.status;
}

// --- tokens -----------------------------------------------------------------

// TLS without client certificates: the token is the only identity.
TEST_F(SecureServerTest, AdminTokenWorksOverTls) {
  options_.security.tls_client_ca.clear();
  StartServer();
  const auto admin = ControllerFor(WithToken(kAdminToken));
  v1::ThrottleConfig wire;
  wire.set_max_n(1);
  wire.set_per_seconds(1);
  auto created = admin->CreateThrottle("made-by-token", wire);
  EXPECT_TRUE(created.ok()) << created.status();
  EXPECT_TRUE(admin->DeleteThrottle("made-by-token").ok());
}

// With mTLS the token names the caller, whatever its certificate.
TEST_F(SecureServerTest, TokenOverridesTheCertificateIdentity) {
  StartServer();
  EXPECT_EQ(ControllerFor(As("worker"))->DeleteThrottle("t").code(),
            absl::StatusCode::kPermissionDenied);
  EXPECT_TRUE(ControllerFor(WithToken(kAdminToken, "worker"))
                  ->DeleteThrottle("t")
                  .ok());
}

TEST_F(SecureServerTest, WrongTokenIsUnauthenticated) {
  options_.security.tls_client_ca.clear();
  StartServer();
  const absl::Status status =
      ControllerFor(WithToken("not-the-token"))->ListThrottles().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
  // The server's answer for an unknown token, not for a missing one.
  EXPECT_THAT(std::string(status.message()), HasSubstr("not listed"));
}

TEST_F(SecureServerTest, NoIdentityUnderAPolicyIsUnauthenticated) {
  options_.security.tls_client_ca.clear();
  StartServer();
  const absl::Status status = ControllerFor(As())->ListThrottles().status();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnauthenticated) << status;
}

TEST_F(SecureServerTest, TokenFileIsReadAgainForEachNewChannel) {
  options_.security.tls_client_ca.clear();
  StartServer();
  ChannelSecurity security = As();
  security.token_file = Write("my-token", "wrong\n");
  EXPECT_EQ(ControllerFor(security)->ListThrottles().status().code(),
            absl::StatusCode::kUnauthenticated);
  ReplaceFile(security.token_file, absl::StrCat(kAdminToken, "\n"));
  EXPECT_TRUE(ControllerFor(security)->ListThrottles().ok());
}

TEST_F(SecureServerTest, TokenOnPlaintextIsRefusedBeforeAnyCall) {
  options_.security = server::SecurityOptions();  // a plaintext server
  StartServer();
  ChannelSecurity security;
  security.token = kAdminToken;
  const auto channel = CreateChannel(Target(), security);
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(channel.status().message()), HasSubstr("TLS only"));
}

// --- handshakes the server refuses -------------------------------------------

TEST_F(SecureServerTest, ClientsWithoutAGoodCertificateCannotConnect) {
  StartServer();
  ChannelSecurity rogue = As();
  rogue.cert_file = File("rogue.pem");
  rogue.key_file = File("rogue.key");
  ChannelSecurity wrong_ca = As("admin");
  wrong_ca.ca_file = File("rogue-ca.pem");
  for (const auto& [what, security] :
       {std::pair<const char*, ChannelSecurity>{"no certificate", As()},
        {"a certificate of another CA", rogue},
        {"plaintext", ChannelSecurity()},
        {"trusting another CA", wrong_ca}}) {
    const absl::Status status =
        ControllerFor(security)->ListThrottles().status();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable)
        << what << ": " << status;
  }
}

// A port of 127.0.0.1 that nothing listens on: bound to port 0, then
// closed (refused at once, as a standby's serving port is).
int ClosedPort() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  EXPECT_GE(fd, 0);
  sockaddr_in address = {};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t size = sizeof(address);
  EXPECT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&address), size), 0);
  EXPECT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&address), &size), 0);
  close(fd);
  return ntohs(address.sin_port);
}

// gRPC checks the server's certificate against the whole target, and a
// multi-address target (high availability, docs/clients.md "Failover") is
// no name in it: such a channel needs ChannelSecurity::server_name, a name
// of the servers' certificates (server.pem: IP 127.0.0.1, DNS localhost).
TEST_F(SecureServerTest, MultiAddressTargetNeedsTheCertificatesName) {
  StartServer();
  // A closed port first, as a standby's: pick_first passes on to the
  // server.
  const std::string addresses =
      absl::StrCat("127.0.0.1:", ClosedPort(), ",127.0.0.1:", server_->port());
  const std::string target = absl::StrCat("ipv4:", addresses);
  auto unnamed = CreateChannel(target, As("admin"));
  ASSERT_TRUE(unnamed.ok()) << unnamed.status();
  const absl::Status refused = Controller(*unnamed).ListThrottles().status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable) << refused;
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr(absl::StrCat("Peer name ", addresses,
                                     " is not in peer certificate")));

  // The certificate's DNS name or its IP address: calls and a worker's
  // stream work.
  for (const char* name : {"127.0.0.1", "localhost"}) {
    ChannelSecurity named = As("controller");
    named.server_name = name;
    auto channel = CreateChannel(target, named);
    ASSERT_TRUE(channel.ok()) << channel.status();
    auto list = Controller(*channel).ListThrottles();
    EXPECT_TRUE(list.ok()) << name << ": " << list.status();
  }
  ChannelSecurity controller = As("controller");
  controller.server_name = "localhost";
  auto controller_channel = CreateChannel(target, controller);
  ASSERT_TRUE(controller_channel.ok()) << controller_channel.status();
  ASSERT_TRUE(Controller(*controller_channel).Start("t").ok());
  ChannelSecurity worker = As("worker");
  worker.server_name = "localhost";
  auto worker_channel = CreateChannel(target, worker);
  ASSERT_TRUE(worker_channel.ok()) << worker_channel.status();
  const FuelResult fuel =
      Tank(*worker_channel, "t").AwaitFuel(absl::Seconds(10));
  EXPECT_TRUE(fuel.ok()) << fuel.status;

  // A name the certificate does not hold is refused as the target was,
  // also for a single address: the name replaces the target's host.
  ChannelSecurity wrong = As("admin");
  wrong.server_name = "throttle.example";
  for (const std::string& to : {target, Target()}) {
    auto channel = CreateChannel(to, wrong);
    ASSERT_TRUE(channel.ok()) << channel.status();
    const absl::Status status = Controller(*channel).ListThrottles().status();
    EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << to;
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("Peer name throttle.example is not in peer "
                          "certificate"))
        << to;
  }

  // A channel of one's own: the credentials do not carry the name, the
  // arguments of ChannelArgumentsFor do.
  ChannelSecurity admin = As("admin");
  admin.server_name = "localhost";
  auto credentials = MakeChannelCredentials(admin);
  ASSERT_TRUE(credentials.ok()) << credentials.status();
  grpc::ChannelArguments args = ChannelArgumentsFor(admin);
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  Controller own(grpc::CreateCustomChannel(target, *credentials, args));
  EXPECT_TRUE(own.ListThrottles().ok());
  Controller bare(grpc::CreateCustomChannel(target, *credentials,
                                            ReconnectChannelArguments()));
  const absl::Status bare_status = bare.ListThrottles().status();
  EXPECT_EQ(bare_status.code(), absl::StatusCode::kUnavailable) << bare_status;
  EXPECT_THAT(std::string(bare_status.message()),
              HasSubstr("is not in peer certificate"));
}

TEST_F(SecureServerTest, ServerNameOnPlaintextIsRefusedBeforeAnyCall) {
  options_.security = server::SecurityOptions();  // a plaintext server
  StartServer();
  ChannelSecurity security;
  security.server_name = "localhost";
  const auto channel = CreateChannel(Target(), security);
  EXPECT_EQ(channel.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(channel.status().message()),
              HasSubstr("server_name (--tls_server_name, "
                        "THROTTLE_TLS_SERVER_NAME): "));
  EXPECT_THAT(std::string(channel.status().message()), HasSubstr("needs TLS"));
}

// --- rotation ----------------------------------------------------------------

// The server's certificate as a new connection sees it: "CN=..." of its
// subject and its PEM, or an error.
absl::StatusOr<std::pair<std::string, std::string>> PeerCertificate(
    const std::string& target, const ChannelSecurity& security) {
  auto credentials = MakeChannelCredentials(security);
  if (!credentials.ok()) return credentials.status();
  grpc::ChannelArguments args = ReconnectChannelArguments();
  // A subchannel of its own: never an older connection from the global
  // pool.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto stub = v1::Throttle::NewStub(
      grpc::CreateCustomChannel(target, *credentials, args));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(5));
  v1::ListThrottlesRequest request;
  v1::ListThrottlesResponse response;
  const grpc::Status status = stub->ListThrottles(&context, request, &response);
  if (!status.ok()) return absl::UnavailableError(status.error_message());
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth == nullptr) return absl::InternalError("no auth context");
  auto first = [&](const char* name) {
    for (const grpc::string_ref& value : auth->FindPropertyValues(name)) {
      return std::string(value.data(), value.size());
    }
    return std::string();
  };
  return std::make_pair(first("x509_common_name"), first("x509_pem_cert"));
}

TEST_F(SecureServerTest, RotatedCertificateIsServedToNewConnections) {
  const std::string cert = Write("live.pem", ReadFile(File("server.pem")));
  const std::string key = Write("live.key", ReadFile(File("server.key")));
  options_.security.tls_cert = cert;
  options_.security.tls_key = key;
  options_.security.reload_interval = absl::Seconds(1);
  options_.security.policy_file.clear();  // transport only
  StartServer();
  auto before = PeerCertificate(Target(), As("admin"));
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_EQ(before->first, "server");
  EXPECT_EQ(before->second, ReadFile(File("server.pem")));

  ReplaceFile(key, ReadFile(File("server2.key")));
  ReplaceFile(cert, ReadFile(File("server2.pem")));
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(20);
  absl::StatusOr<std::pair<std::string, std::string>> seen;
  while (absl::Now() < deadline) {
    seen = PeerCertificate(Target(), As("admin"));
    // Between the two renames a handshake may fail: try again.
    if (seen.ok() && seen->first == "server2") break;
    absl::SleepFor(absl::Milliseconds(100));  // the server polls its files
  }
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_EQ(seen->first, "server2") << "after 20 s";
  EXPECT_EQ(seen->second, ReadFile(File("server2.pem")));
  std::fprintf(stderr, "rotation seen after %s\n",
               absl::FormatDuration(absl::Now() - start).c_str());
}

// --- tenant isolation --------------------------------------------------------

TEST_F(SecureServerTest, TenantSeesAndUsesOnlyItsThrottles) {
  options_.security.policy_file =
      Write("policy",
            absl::StrCat(kPolicy,
                         "spiffe://throttle.test/tenant-b controller b-*\n"));
  options_.throttles = {{"t", FourPerSecond()},
                        {"b-one", FourPerSecond()},
                        {"b-two", FourPerSecond()}};
  StartServer();
  const FuelResult denied =
      TankFor(As("tenant-b"), "t")->AwaitFuel(absl::Seconds(10));
  EXPECT_EQ(denied.outcome, FuelOutcome::kError);
  EXPECT_EQ(denied.status.code(), absl::StatusCode::kPermissionDenied)
      << denied.status;
  // The message names the method the Tank waits on (Acquire).
  EXPECT_THAT(std::string(denied.status.message()), HasSubstr("Acquire"));

  const auto tenant = ControllerFor(As("tenant-b"));
  auto listed = tenant->ListThrottles();
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::vector<std::string> names;
  for (const auto& info : listed->throttles()) names.push_back(info.name());
  EXPECT_THAT(names, ElementsAre("b-one", "b-two"));
  EXPECT_EQ(ControllerFor(As("admin"))->ListThrottles()->throttles_size(), 3);

  // Its own throttles work as usual.
  ASSERT_TRUE(tenant->Start("b-one").ok());
  const FuelResult fuel =
      TankFor(As("tenant-b"), "b-one")->AwaitFuel(absl::Seconds(10));
  EXPECT_TRUE(fuel.ok()) << fuel.status;
  EXPECT_EQ(tenant->Start("t").status().code(),
            absl::StatusCode::kPermissionDenied);
}

// --- limits ------------------------------------------------------------------

TEST_F(SecureServerTest, StreamsPerClientAreCountedPerIdentity) {
  options_.max_streams_per_client = 2;
  options_.security.policy_file.clear();  // identities, no roles
  options_.throttles = {{"t", FourPerSecond()}, {"held", FourPerSecond()}};
  StartServer();
  ASSERT_TRUE(ControllerFor(As("controller"))->Start("t").ok());
  // Two streams of the worker wait on "held", which is never started: two
  // Tanks (the threads of one Tank share its one Acquire stream).
  const auto worker = TankFor(As("worker"), "held");
  const auto worker2 = TankFor(As("worker"), "held");
  std::vector<FuelResult> held(2);
  std::vector<std::thread> waiting;
  waiting.emplace_back([tank = worker.get(), out = &held[0]] {
    *out = tank->AwaitFuel(absl::Seconds(60));
  });
  waiting.emplace_back([tank = worker2.get(), out = &held[1]] {
    *out = tank->AwaitFuel(absl::Seconds(60));
  });
  // Ends the two waits however the test ends.
  struct Join {
    Tank* tank;
    Tank* tank2;
    std::vector<std::thread>* threads;
    ~Join() {
      tank->Close();
      tank2->Close();
      for (std::thread& thread : *threads) thread.join();
    }
  } join{worker.get(), worker2.get(), &waiting};
  ASSERT_TRUE(server_->AwaitThrottle(
      "held", [](int64_t streams, int64_t) { return streams == 2; },
      absl::Seconds(20)))
      << held[0].status << " / " << held[1].status;

  const FuelResult third =
      TankFor(As("worker"), "t")->AwaitFuel(absl::Seconds(10));
  EXPECT_EQ(third.outcome, FuelOutcome::kError);
  EXPECT_EQ(third.status.code(), absl::StatusCode::kResourceExhausted)
      << third.status;
  EXPECT_THAT(std::string(third.status.message()),
              HasSubstr("max_streams_per_client"));
  const FuelResult other =
      TankFor(As("controller"), "t")->AwaitFuel(absl::Seconds(10));
  EXPECT_TRUE(other.ok()) << other.status;

  worker->Close();
  worker2->Close();
  for (std::thread& thread : waiting) thread.join();
  waiting.clear();
  for (const FuelResult& result : held) {
    EXPECT_EQ(result.status.code(), absl::StatusCode::kCancelled)
        << result.status;
  }
}

TEST_F(SecureServerTest, ThirdThrottleIsRefusedWithMaxThrottlesTwo) {
  options_.max_throttles = 2;
  options_.security.policy_file.clear();
  options_.throttles.clear();
  StartServer();
  const auto admin = ControllerFor(As("admin"));
  v1::ThrottleConfig config;
  config.set_max_n(1);
  config.set_per_seconds(1);
  EXPECT_TRUE(admin->CreateThrottle("one", config).ok());
  EXPECT_TRUE(admin->CreateThrottle("two", config).ok());
  const absl::Status status = admin->CreateThrottle("three", config).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("max_throttles"));
}

}  // namespace
}  // namespace throttle
