// The WatchThrottle stream through real gRPC on 127.0.0.1:0 with raw
// generated stubs: the first snapshot at once, one per interval of the
// service's (fake) clock, one at once on Start, Stop and Configure, how the
// stream ends (deleted or unknown throttle, cancel, shutdown), bad requests
// and the stream limits. Nothing here sleeps: each step waits for the
// message it expects (reads block, under a generous call deadline).
#include <algorithm>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"
#include "tests/support/controller_calls.h"
#include "tests/support/fake_clock.h"
#include "tests/support/loopback_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

using ::google::protobuf::util::TimeUtil;
using ::testing::HasSubstr;
using v1::WatchThrottleRequest;
using v1::WatchThrottleResponse;

class WatchTest : public testing::LoopbackServerTest,
                  public testing::ControllerCalls {
 public:
  void SetUp() override {
    options_.clock = &clock_;
    options_.stream_stall_timeout = absl::Hours(1);
    LoopbackServerTest::SetUp();
    stub_ = v1::Throttle::NewStub(channel_);
  }

  grpc::Status Create(const std::string& name, int64_t max_n, double per,
                      bool manual_emit = false) {
    return CreateThrottle(
        name, Rate(max_n, per, v1::MODE_UNSPECIFIED, 0, manual_emit));
  }
  grpc::Status Configure(const std::string& name, int64_t max_n) {
    return ControllerCalls::Configure(name, Rate(max_n));
  }

  // A WatchThrottle stream with its context.
  struct Call {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<grpc::ClientReader<WatchThrottleResponse>> stream;
  };
  Call Watch(const WatchThrottleRequest& request) {
    Call call{Context(), nullptr};
    call.stream = stub_->WatchThrottle(call.context.get(), request);
    return call;
  }
  Call Watch(const std::string& name, absl::Duration interval,
             absl::Duration window = absl::ZeroDuration()) {
    WatchThrottleRequest request;
    request.set_throttle(name);
    *request.mutable_interval() =
        TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(interval));
    if (window != absl::ZeroDuration()) {
      *request.mutable_window() =
          TimeUtil::NanosecondsToDuration(absl::ToInt64Nanoseconds(window));
    }
    return Watch(request);
  }
  // The next snapshot; fails the test if the stream ended.
  static WatchThrottleResponse Next(Call& call) {
    WatchThrottleResponse response;
    EXPECT_TRUE(call.stream->Read(&response)) << "the stream ended";
    return response;
  }
  // Reads to the end: the status the stream ended with, and how many
  // snapshots came before it.
  static grpc::Status End(Call& call, int* snapshots = nullptr) {
    WatchThrottleResponse response;
    int n = 0;
    while (call.stream->Read(&response)) ++n;
    if (snapshots != nullptr) *snapshots = n;
    return call.stream->Finish();
  }
  static absl::Time TimeOf(const WatchThrottleResponse& response) {
    return absl::FromUnixNanos(
        TimeUtil::TimestampToNanoseconds(response.time()));
  }

 protected:
  testing::FakeClock clock_;
};

TEST_F(WatchTest, FirstSnapshotComesAtOnceWithTheThrottleAsItIs) {
  ASSERT_TRUE(Create("w", 10, 1).ok());
  WatchThrottleRequest request;  // interval and window unset: 1 s each
  request.set_throttle("w");
  Call call = Watch(request);
  const WatchThrottleResponse first = Next(call);
  EXPECT_FALSE(first.changed());
  EXPECT_EQ(TimeOf(first), clock_.Now());
  EXPECT_EQ(first.throttle().name(), "w");
  EXPECT_EQ(first.throttle().state(), v1::STATE_CREATED);
  EXPECT_EQ(first.throttle().config().max_n(), 10);
  EXPECT_EQ(first.throttle().config().per_seconds(), 1);
  EXPECT_EQ(first.latest().window_seconds(), 1);
  EXPECT_EQ(first.mean().state(), v1::STATE_CREATED);
  call.context->TryCancel();
}

TEST_F(WatchTest, SendsOneSnapshotPerIntervalOfTheServiceClock) {
  ASSERT_TRUE(Create("w", 1000, 1, /*manual_emit=*/true).ok());
  ASSERT_TRUE(Start("w").ok());
  Call call = Watch("w", absl::Milliseconds(250), absl::Seconds(1));
  const WatchThrottleResponse first = Next(call);
  EXPECT_EQ(first.latest().window_seconds(), 1);
  EXPECT_EQ(first.throttle().total_emissions(), 0);

  ASSERT_TRUE(Emit("w", 5).ok());
  clock_.Advance(absl::Milliseconds(250));
  const WatchThrottleResponse second = Next(call);
  EXPECT_FALSE(second.changed());
  EXPECT_EQ(TimeOf(second) - TimeOf(first), absl::Milliseconds(250));
  EXPECT_EQ(second.throttle().total_emissions(), 5);
  EXPECT_EQ(second.mean().total_emissions(), 5);
  EXPECT_EQ(second.latest().emissions(), 5);

  ASSERT_TRUE(Emit("w", 3).ok());
  clock_.Advance(absl::Milliseconds(250));
  const WatchThrottleResponse third = Next(call);
  EXPECT_FALSE(third.changed());
  EXPECT_EQ(TimeOf(third) - TimeOf(first), absl::Milliseconds(500));
  EXPECT_EQ(third.throttle().total_emissions(), 8);
  EXPECT_EQ(third.latest().emissions(), 8);  // both within the 1 s window

  // A jump of many intervals brings one snapshot, not a catch-up burst:
  // the next one is due an interval after the jump.
  clock_.Advance(absl::Seconds(30));
  const WatchThrottleResponse after_jump = Next(call);
  EXPECT_EQ(TimeOf(after_jump) - TimeOf(first), absl::Milliseconds(30'500));
  EXPECT_EQ(after_jump.latest().emissions(), 0);  // out of the window
  clock_.Advance(absl::Milliseconds(250));
  EXPECT_EQ(TimeOf(Next(call)) - TimeOf(after_jump), absl::Milliseconds(250));
  call.context->TryCancel();
}

TEST_F(WatchTest, StartStopAndConfigureSendASnapshotAtOnceMarkedChanged) {
  ASSERT_TRUE(Create("w", 10, 1).ok());
  Call call = Watch("w", absl::Seconds(60));
  EXPECT_EQ(Next(call).throttle().state(), v1::STATE_CREATED);

  ASSERT_TRUE(Start("w").ok());
  const WatchThrottleResponse started = Next(call);
  EXPECT_TRUE(started.changed());
  EXPECT_EQ(started.throttle().state(), v1::STATE_RUNNING);

  ASSERT_TRUE(Stop("w").ok());
  const WatchThrottleResponse stopped = Next(call);
  EXPECT_TRUE(stopped.changed());
  EXPECT_EQ(stopped.throttle().state(), v1::STATE_STOPPED);

  ASSERT_TRUE(Configure("w", 25).ok());
  const WatchThrottleResponse configured = Next(call);
  EXPECT_TRUE(configured.changed());
  EXPECT_EQ(configured.throttle().config().max_n(), 25);

  // The interval snapshot after them is not marked.
  clock_.Advance(absl::Seconds(60));
  const WatchThrottleResponse later = Next(call);
  EXPECT_FALSE(later.changed());
  EXPECT_EQ(later.throttle().config().max_n(), 25);
  call.context->TryCancel();
}

TEST_F(WatchTest, AConfigReloadThatConfiguresTheThrottleIsAChange) {
  ASSERT_TRUE(Create("w", 10, 1).ok());
  Call call = Watch("w", absl::Seconds(60));
  Next(call);
  ThrottleConfig reloaded;
  reloaded.max_n = 40;
  reloaded.per = absl::Seconds(2);
  absl::StatusOr<bool> created = server_->DeclareThrottle("w", reloaded);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_FALSE(*created);
  const WatchThrottleResponse configured = Next(call);
  EXPECT_TRUE(configured.changed());
  EXPECT_EQ(configured.throttle().config().max_n(), 40);
  EXPECT_EQ(configured.throttle().config().per_seconds(), 2);
  call.context->TryCancel();
}

TEST_F(WatchTest, EndsWithNotFoundWhenTheThrottleIsDeleted) {
  ASSERT_TRUE(Create("w", 10, 1).ok());
  Call call = Watch("w", absl::Seconds(60));
  Next(call);
  ASSERT_TRUE(Delete("w").ok());
  const grpc::Status status = End(call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("\"w\" was deleted"));
  EXPECT_TRUE(server_->AwaitOpenStreams(0, absl::Seconds(30)));
}

TEST_F(WatchTest, AnUnknownThrottleIsNotFound) {
  Call call = Watch("nope", absl::Seconds(1));
  int snapshots = -1;
  const grpc::Status status = End(call, &snapshots);
  EXPECT_EQ(snapshots, 0);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);
  EXPECT_THAT(status.error_message(), HasSubstr("nope"));
}

TEST_F(WatchTest, CountedByTheMetricsLikeTheOtherCalls) {
  // -1: no series yet.
  auto count = [&](const std::string& name) {
    return std::max(0.0, server_->MetricValue(name));
  };
  const double started = count("grpc_server_started_total");
  const double errors = count("throttle_rpc_errors_total");
  Call call = Watch("nope", absl::Seconds(1));
  EXPECT_EQ(End(call).error_code(), grpc::StatusCode::NOT_FOUND);
  // Both are counted before the status is sent.
  EXPECT_EQ(count("grpc_server_started_total"), started + 1);
  EXPECT_EQ(count("throttle_rpc_errors_total"), errors + 1);
}

TEST_F(WatchTest, ABadIntervalWindowOrNameIsInvalidArgumentNamingIt) {
  ASSERT_TRUE(Create("w", 10, 1).ok());
  struct Case {
    absl::Duration interval;
    absl::Duration window;
    std::string expected;
  };
  const Case cases[] = {
      {absl::Milliseconds(50), absl::ZeroDuration(), "interval"},
      {absl::Milliseconds(50), absl::ZeroDuration(), "got 50ms"},
      {absl::Seconds(61), absl::ZeroDuration(), "got 1m1s"},
      {absl::Seconds(1), absl::Seconds(61), "window"},
      {absl::Seconds(1), absl::Seconds(-1), "got -1s"},
  };
  for (const Case& c : cases) {
    Call call = Watch("w", c.interval, c.window);
    const grpc::Status status = End(call);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.expected;
    EXPECT_THAT(status.error_message(), HasSubstr(c.expected));
  }
  // A window set to zero is out of (0, 60s] (unset means the interval).
  WatchThrottleRequest zero_window;
  zero_window.set_throttle("w");
  zero_window.mutable_window();  // present, 0 s
  Call zero = Watch(zero_window);
  const grpc::Status zero_status = End(zero);
  EXPECT_EQ(zero_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(zero_status.error_message(), HasSubstr("window must be in (0"));

  Call bad_name = Watch("a b", absl::Seconds(1));
  const grpc::Status name_status = End(bad_name);
  EXPECT_EQ(name_status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(name_status.error_message(), HasSubstr("throttle"));
  EXPECT_TRUE(server_->AwaitOpenStreams(0, absl::Seconds(30)));
}

TEST_F(WatchTest, ACancelledWatchFreesItsPlace) {
  ASSERT_TRUE(Create("w", 10, 1).ok());
  Call call = Watch("w", absl::Seconds(1));
  Next(call);
  EXPECT_TRUE(server_->AwaitOpenStreams(1, absl::Seconds(30)));
  call.context->TryCancel();
  EXPECT_EQ(End(call).error_code(), grpc::StatusCode::CANCELLED);
  // The place is held by the reactor until it is deleted: all freed.
  EXPECT_TRUE(server_->AwaitOpenStreams(0, absl::Seconds(30)));
  // Changes and intervals after the cancel touch nothing that is gone.
  ASSERT_TRUE(Start("w").ok());
  clock_.Advance(absl::Seconds(5));
  Call again = Watch("w", absl::Seconds(1));
  EXPECT_EQ(Next(again).throttle().state(), v1::STATE_RUNNING);
  again.context->TryCancel();
}

TEST_F(WatchTest, ShutdownEndsOpenWatchesWithUnavailable) {
  ASSERT_TRUE(Create("w", 10, 1).ok());
  Call call = Watch("w", absl::Seconds(1));
  Next(call);
  const absl::Time begin = absl::Now();
  server_->Shutdown(absl::Seconds(2));
  // Generous bound: the deadline is 2 s; only a hang would pass 20 s.
  EXPECT_LT(absl::Now() - begin, absl::Seconds(20));
  const grpc::Status status = End(call);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_THAT(status.error_message(), HasSubstr("shutting down"));
}

class WatchLimitTest : public WatchTest {
 public:
  void SetUp() override {
    options_.max_streams = 1;
    WatchTest::SetUp();
  }
};

TEST_F(WatchLimitTest, AWatchHoldsAPlaceUnderTheStreamLimits) {
  ASSERT_TRUE(Create("w", 10, 1).ok());
  Call first = Watch("w", absl::Seconds(1));
  Next(first);
  Call second = Watch("w", absl::Seconds(1));
  const grpc::Status status = End(second);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(status.error_message(), HasSubstr("max_streams"));
  first.context->TryCancel();
}

}  // namespace
}  // namespace throttle::server
