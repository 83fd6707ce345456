// throttle::ThrottleWatch (Controller::Watch) against the real
// throttle_server binary on 127.0.0.1: the first snapshot at once, then one
// per interval; a Stop shows state stopped with changed=true; a delete ends
// the watch with NOT_FOUND; a bad interval is INVALID_ARGUMENT naming it;
// Cancel() frees the stream on the server (under --max_streams=1); the
// watch goes on across a server restart. Waits are on conditions with
// generous deadlines, never on exact timing.
#include <signal.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "google/protobuf/util/time_util.h"
#include "gtest/gtest.h"
#include "tests/support/server_process.h"
#include "throttle/controller.h"
#include "throttle/watch.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(60);

using google::protobuf::util::TimeUtil;

v1::ThrottleConfig Config(int64_t max_n, double per_seconds) {
  v1::ThrottleConfig config;
  config.set_max_n(max_n);
  config.set_per_seconds(per_seconds);
  return config;
}

WatchOptions Every(absl::Duration interval) {
  WatchOptions options;
  options.interval = interval;
  options.backoff_initial = absl::Milliseconds(20);
  options.backoff_max = absl::Milliseconds(500);
  return options;
}

class WatchServerTest : public ::testing::Test {
 protected:
  void SetUp() override { Start({}); }

  void Start(const std::vector<std::string>& flags, int port = 0) {
    absl::StatusOr<ServerProcess> server = StartServer(dir_, port, flags);
    ASSERT_TRUE(server.ok()) << server.status();
    server_.emplace(*std::move(server));
    if (!controller_.has_value()) controller_.emplace(server_->address());
  }

  void Stop() {
    server_->process.Signal(SIGTERM);
    EXPECT_EQ(server_->process.Wait(kGenerous).value_or(-1), 0);
    server_.reset();
  }

  void TearDown() override {
    // Without a client connection left open the server stops at once,
    // instead of after its shutdown grace.
    controller_.reset();
    if (server_.has_value()) Stop();
  }

  // Creates and starts throttle `name`.
  void Run(const std::string& name, const v1::ThrottleConfig& config) {
    ASSERT_TRUE(controller_->CreateThrottle(name, config).ok());
    ASSERT_TRUE(controller_->Start(name).ok());
  }

  TempDir dir_;
  std::optional<ServerProcess> server_;
  std::optional<Controller> controller_;
};

TEST_F(WatchServerTest, FirstSnapshotComesAtOnceWithTheThrottleAsItIs) {
  Run("first", Config(7, 2));
  std::unique_ptr<ThrottleWatch> watch =
      controller_->Watch("first", Every(absl::Milliseconds(200)));
  absl::StatusOr<v1::WatchThrottleResponse> snapshot = watch->Next(kGenerous);
  ASSERT_TRUE(snapshot.ok()) << snapshot.status();
  EXPECT_EQ(snapshot->throttle().name(), "first");
  EXPECT_EQ(snapshot->throttle().state(), v1::STATE_RUNNING);
  EXPECT_EQ(snapshot->throttle().config().max_n(), 7);
  EXPECT_EQ(snapshot->throttle().config().per_seconds(), 2);
  EXPECT_FALSE(snapshot->changed());
  EXPECT_TRUE(snapshot->has_time());
  // The window defaults to the interval.
  EXPECT_DOUBLE_EQ(snapshot->latest().window_seconds(), 0.2);
}

TEST_F(WatchServerTest, SnapshotsFollowTheInterval) {
  Run("paced", Config(5, 1));
  WatchOptions options = Every(absl::Milliseconds(200));
  options.window = absl::Seconds(1);
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("paced", options);
  std::vector<google::protobuf::Timestamp> times;
  for (int i = 0; i < 6; ++i) {
    absl::StatusOr<v1::WatchThrottleResponse> snapshot = watch->Next(kGenerous);
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    EXPECT_FALSE(snapshot->changed());
    EXPECT_DOUBLE_EQ(snapshot->latest().window_seconds(), 1.0);
    times.push_back(snapshot->time());
  }
  for (size_t i = 1; i < times.size(); ++i) {
    EXPECT_GT(times[i], times[i - 1]);
  }
  // By the server's clock the k-th is due k intervals after the watch
  // was filed (so one sent late is followed by a shorter gap); the
  // first may be taken a little after that. Load only delays them.
  const int64_t total_ms =
      TimeUtil::DurationToMilliseconds(times.back() - times.front());
  EXPECT_GE(total_ms, 5 * 200 - 100);
  EXPECT_LT(total_ms, absl::ToInt64Milliseconds(kGenerous));
}

TEST_F(WatchServerTest, AStopShowsStateStoppedMarkedChanged) {
  Run("stopping", Config(5, 1));
  // Only changes come soon.
  std::unique_ptr<ThrottleWatch> watch =
      controller_->Watch("stopping", Every(absl::Seconds(60)));
  ASSERT_TRUE(watch->Next(kGenerous).ok());
  ASSERT_TRUE(controller_->Stop("stopping").ok());
  absl::StatusOr<v1::WatchThrottleResponse> stopped = watch->Next(kGenerous);
  ASSERT_TRUE(stopped.ok()) << stopped.status();
  EXPECT_TRUE(stopped->changed());
  EXPECT_EQ(stopped->throttle().state(), v1::STATE_STOPPED);
}

TEST_F(WatchServerTest, ADeleteEndsTheWatchWithNotFound) {
  Run("deleted", Config(5, 1));
  std::unique_ptr<ThrottleWatch> watch =
      controller_->Watch("deleted", Every(absl::Seconds(60)));
  ASSERT_TRUE(watch->Next(kGenerous).ok());
  ASSERT_TRUE(controller_->DeleteThrottle("deleted").ok());
  absl::StatusOr<v1::WatchThrottleResponse> end = watch->Next(kGenerous);
  EXPECT_EQ(end.status().code(), absl::StatusCode::kNotFound) << end.status();
  EXPECT_NE(end.status().message().find("deleted"), absl::string_view::npos)
      << end.status();
  EXPECT_EQ(watch->Next(kGenerous).status(), end.status());
}

TEST_F(WatchServerTest, ABadIntervalIsInvalidArgumentNamingIt) {
  Run("bad", Config(5, 1));
  std::unique_ptr<ThrottleWatch> watch =
      controller_->Watch("bad", Every(absl::Milliseconds(10)));
  absl::StatusOr<v1::WatchThrottleResponse> end = watch->Next(kGenerous);
  EXPECT_EQ(end.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(end.status().message().find("interval"), absl::string_view::npos)
      << end.status();
}

// The first snapshot's status of a new watch of `name`, which is then
// destroyed.
absl::Status FirstStatus(const Controller& controller,
                         const std::string& name) {
  std::unique_ptr<ThrottleWatch> watch =
      controller.Watch(name, Every(absl::Seconds(60)));
  return watch->Next(kGenerous).status();
}

TEST_F(WatchServerTest, CancelFreesTheStreamOnTheServer) {
  // One stream in all: a watch holds it, a second is refused, and once the
  // first is cancelled a new one gets it.
  controller_.reset();
  Stop();
  Start({"--max_streams=1", "--throttle=limited max_n=10 per=1"});
  std::unique_ptr<ThrottleWatch> first =
      controller_->Watch("limited", Every(absl::Seconds(60)));
  ASSERT_TRUE(first->Next(kGenerous).ok());
  EXPECT_EQ(FirstStatus(*controller_, "limited").code(),
            absl::StatusCode::kResourceExhausted);
  first->Cancel();
  EXPECT_EQ(first->Next().status().code(), absl::StatusCode::kCancelled);
  absl::Status last;
  EXPECT_TRUE(WaitFor(
      [&] {
        last = FirstStatus(*controller_, "limited");
        return last.ok();
      },
      kGenerous))
      << last;
}

TEST_F(WatchServerTest, TheWatchGoesOnAcrossAServerRestart) {
  controller_.reset();
  Stop();
  const std::vector<std::string> flags = {"--throttle=restart max_n=10 per=1"};
  Start(flags);
  const int port = server_->port;
  std::unique_ptr<ThrottleWatch> watch =
      controller_->Watch("restart", Every(absl::Milliseconds(200)));
  absl::StatusOr<v1::WatchThrottleResponse> first = watch->Next(kGenerous);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->throttle().state(), v1::STATE_CREATED);
  Stop();
  Start(flags, port);  // the throttle comes from the flag
  ASSERT_TRUE(
      WaitFor([&] { return controller_->Start("restart").ok(); }, kGenerous));
  // Snapshots of the old server may still be queued; the new one's
  // throttle is running (the old one's never was).
  EXPECT_TRUE(WaitFor(
      [&] {
        absl::StatusOr<v1::WatchThrottleResponse> snapshot =
            watch->Next(kGenerous);
        return snapshot.ok() &&
               snapshot->throttle().state() == v1::STATE_RUNNING;
      },
      kGenerous));
}

}  // namespace
}  // namespace throttle::testing
