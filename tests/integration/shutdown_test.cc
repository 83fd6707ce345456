// SIGTERM of the real throttle_server binary on 127.0.0.1: how it ends what
// is open. A server with no call in flight exits promptly whatever
// connections its clients keep open (not after --shutdown_grace); open
// WatchThrottle, AwaitFuel and Acquire streams all end with the documented
// UNAVAILABLE. The grace is 30 s and "promptly" is under 15 s: the failure
// these catch is "waits the whole grace" (or gRPC's 20 s limit of a
// graceful GOAWAY), so the bound has a huge margin and no exact timing is
// asserted.
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);
constexpr char kGrace[] = "--shutdown_grace=30s";
constexpr absl::Duration kPrompt = absl::Seconds(15);  // half the grace

// An idle gRPC client reads its connection only when its backup poller
// runs (every 5 s by default): that is when it answers the ping of the
// server's GOAWAY, which the server used to wait for. At once a minute,
// as for a client that is busy or stopped, it does not answer before
// gRPC's own limit (20 s). Set before gRPC reads it, at its first use.
const bool kSlowBackupPoll =
    setenv("GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS", "60000", 1) == 0;

// SIGTERMs `server` and returns how long it took to exit; fails the test
// unless it exited with 0.
absl::Duration TerminateAndTime(ServerProcess& server) {
  const absl::Time sent = absl::Now();
  server.process.Signal(SIGTERM);
  absl::StatusOr<int> code = server.process.Wait(kGenerous);
  const absl::Duration took = absl::Now() - sent;
  EXPECT_TRUE(code.ok()) << code.status();
  EXPECT_EQ(code.value_or(-1), 0);
  std::printf("SIGTERM until exit: %s\n", absl::FormatDuration(took).c_str());
  return took;
}

std::unique_ptr<v1::Throttle::Stub> Connect(const ServerProcess& server) {
  return v1::Throttle::NewStub(grpc::CreateChannel(
      server.address(), grpc::InsecureChannelCredentials()));
}

// One finished call makes the channel's connection ready; it then stays
// open and idle.
void OneCall(v1::Throttle::Stub& stub) {
  grpc::ClientContext context;
  v1::ListThrottlesResponse response;
  const grpc::Status status =
      stub.ListThrottles(&context, v1::ListThrottlesRequest(), &response);
  ASSERT_TRUE(status.ok()) << status.error_message();
}

// The waiting streams of the throttle `name`; -1 if it cannot be read.
int64_t WaitingStreams(v1::Throttle::Stub& stub, const std::string& name) {
  grpc::ClientContext context;
  v1::ListThrottlesResponse list;
  if (!stub.ListThrottles(&context, v1::ListThrottlesRequest(), &list).ok()) {
    return -1;
  }
  for (const v1::ThrottleInfo& info : list.throttles()) {
    if (info.name() == name) return info.waiting_streams();
  }
  return -1;
}

TEST(Shutdown, IdleConnectionDoesNotHoldTheGrace) {
  ASSERT_TRUE(kSlowBackupPoll);
  TempDir dir;
  auto server = StartServer(dir, 0, {kGrace});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = Connect(*server);
  ASSERT_NO_FATAL_FAILURE(OneCall(*stub));
  EXPECT_LT(TerminateAndTime(*server), kPrompt);
}

// A client that opened an HTTP/2 connection (preface and SETTINGS sent)
// and never reads it: a frozen process, say.
TEST(Shutdown, ConnectionThatIsNeverReadDoesNotHoldTheGrace) {
  TempDir dir;
  auto server = StartServer(dir, 0, {kGrace});
  ASSERT_TRUE(server.ok()) << server.status();
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(server->port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address),
            0);
  static constexpr char kPrefaceAndSettings[] =
      "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
      "\x00\x00\x00\x04\x00\x00\x00\x00\x00";  // an empty SETTINGS frame
  const ssize_t size = sizeof kPrefaceAndSettings - 1;
  ASSERT_EQ(write(fd, kPrefaceAndSettings, size), size);
  // The server has the connection once its SETTINGS came back.
  char settings[9];
  ASSERT_EQ(recv(fd, settings, sizeof settings, MSG_WAITALL),
            static_cast<ssize_t>(sizeof settings));
  EXPECT_LT(TerminateAndTime(*server), kPrompt);
  close(fd);
}

// The same with the always-on health port and the metrics port serving
// too, and an idle connection to the health port as well.
TEST(Shutdown, IdleConnectionsWithHealthAndMetricsDoNotHoldTheGrace) {
  TempDir dir;
  absl::StatusOr<std::vector<int>> ports = PickFreePorts(1);
  ASSERT_TRUE(ports.ok()) << ports.status();
  const std::string health = absl::StrCat("127.0.0.1:", ports->front());
  auto server = StartServer(
      dir, 0,
      {kGrace, "--health_listen=" + health, "--metrics_listen=127.0.0.1:0"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = Connect(*server);
  ASSERT_NO_FATAL_FAILURE(OneCall(*stub));
  auto health_channel =
      grpc::CreateChannel(health, grpc::InsecureChannelCredentials());
  ASSERT_TRUE(health_channel->WaitForConnected(
      std::chrono::system_clock::now() + std::chrono::seconds(60)));
  EXPECT_LT(TerminateAndTime(*server), kPrompt);
}

// A server stream's end, seen by a client thread that reads it to its end.
struct StreamEnd {
  absl::Mutex mu;
  int64_t messages ABSL_GUARDED_BY(mu) = 0;
  bool done ABSL_GUARDED_BY(mu) = false;
  grpc::Status status ABSL_GUARDED_BY(mu);
};

template <typename Response, typename Reader>
void ReadToEnd(Reader* reader, StreamEnd* end) {
  Response response;
  while (reader->Read(&response)) {
    absl::MutexLock lock(&end->mu);
    ++end->messages;
  }
  grpc::Status status = reader->Finish();
  absl::MutexLock lock(&end->mu);
  end->status = status;
  end->done = true;
}

TEST(Shutdown, EveryOpenWatchAndFuelStreamEndsUnavailable) {
  constexpr int kWatches = 8;
  constexpr int kFuelStreams = 4;
  constexpr int kAcquireStreams = 2;
  TempDir dir;
  // "idle" is never started: its AwaitFuel streams wait.
  auto server = StartServer(
      dir, 0, {kGrace, "--throttle=idle max_n=1 per=1;busy max_n=50 per=1"});
  ASSERT_TRUE(server.ok()) << server.status();
  auto stub = Connect(*server);
  {
    grpc::ClientContext context;
    v1::StartRequest start;
    start.set_throttle("busy");
    v1::StartResponse started;
    ASSERT_TRUE(stub->Start(&context, start, &started).ok());
  }
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  std::vector<std::unique_ptr<StreamEnd>> ends;
  std::vector<std::thread> readers;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::WatchThrottleResponse>>>
      watches;
  std::vector<std::unique_ptr<grpc::ClientReader<v1::AwaitFuelResponse>>> fuel;
  std::vector<std::unique_ptr<
      grpc::ClientReaderWriter<v1::AcquireRequest, v1::AcquireResponse>>>
      acquires;
  for (int i = 0; i < kWatches + kFuelStreams + kAcquireStreams; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
    ends.push_back(std::make_unique<StreamEnd>());
  }
  for (int i = 0; i < kWatches; ++i) {
    v1::WatchThrottleRequest request;
    // Half of them on the running throttle, at the shortest interval, so
    // that a snapshot is often on its way when the server shuts down.
    request.set_throttle(i % 2 == 0 ? "busy" : "idle");
    request.mutable_interval()->set_nanos(100'000'000);
    watches.push_back(stub->WatchThrottle(contexts[i].get(), request));
    readers.emplace_back(
        ReadToEnd<v1::WatchThrottleResponse,
                  grpc::ClientReader<v1::WatchThrottleResponse>>,
        watches.back().get(), ends[i].get());
  }
  for (int i = 0; i < kFuelStreams; ++i) {
    v1::AwaitFuelRequest request;
    request.set_throttle(i % 2 == 0 ? "busy" : "idle");
    request.set_count(0);  // until the throttle stops
    request.set_worker_id(absl::StrCat("w", i));
    const size_t at = static_cast<size_t>(kWatches + i);
    fuel.push_back(stub->AwaitFuel(contexts[at].get(), request));
    readers.emplace_back(ReadToEnd<v1::AwaitFuelResponse,
                                   grpc::ClientReader<v1::AwaitFuelResponse>>,
                         fuel.back().get(), ends[at].get());
  }
  for (int i = 0; i < kAcquireStreams; ++i) {
    const size_t at = static_cast<size_t>(kWatches + kFuelStreams + i);
    acquires.push_back(stub->Acquire(contexts[at].get()));
    v1::AcquireRequest request;
    request.set_throttle("busy");
    request.set_worker_id(absl::StrCat("a", i));
    request.set_demand(1'000'000);
    ASSERT_TRUE(acquires.back()->Write(request));
    readers.emplace_back(
        ReadToEnd<
            v1::AcquireResponse,
            grpc::ClientReaderWriter<v1::AcquireRequest, v1::AcquireResponse>>,
        acquires.back().get(), ends[at].get());
  }
  // Every watch has had its first snapshot, every "busy" stream grants,
  // and the "idle" streams wait on the server.
  ASSERT_TRUE(WaitFor(
      [&] {
        for (int i = 0; i < kWatches + kFuelStreams + kAcquireStreams; ++i) {
          const bool waits_idle = i >= kWatches &&
                                  i < kWatches + kFuelStreams &&
                                  (i - kWatches) % 2 == 1;
          absl::MutexLock lock(&ends[i]->mu);
          if (ends[i]->done) return true;  // checked below
          if (!waits_idle && ends[i]->messages == 0) return false;
        }
        return true;
      },
      kGenerous));
  ASSERT_TRUE(
      WaitFor([&] { return WaitingStreams(*stub, "idle") >= 2; }, kGenerous));
  EXPECT_LT(TerminateAndTime(*server), kPrompt);
  for (std::thread& reader : readers) reader.join();
  for (int i = 0; i < kWatches + kFuelStreams + kAcquireStreams; ++i) {
    absl::MutexLock lock(&ends[i]->mu);
    EXPECT_EQ(ends[i]->status.error_code(), grpc::StatusCode::UNAVAILABLE)
        << (i < kWatches                  ? "watch "
            : i < kWatches + kFuelStreams ? "AwaitFuel stream "
                                          : "Acquire stream ")
        << i << " ended " << ends[i]->status.error_code() << " "
        << ends[i]->status.error_message();
  }
}

}  // namespace
}  // namespace throttle::testing
