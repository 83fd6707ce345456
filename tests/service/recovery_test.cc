// Graceful degradation through real gRPC on 127.0.0.1:0 with a fake clock
// and a state directory: the share a grant message tells follows the rate in
// effect (a warm-up ramp, the adaptive ceiling), and a server restarted on
// the same state tells the first streams back only their part of the rate
// the whole fleet had, until the rest are back (Scheduler::Restore,
// recovery). Nothing here sleeps.
#include <memory>
#include <string>

#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"
#include "tests/support/state_dir_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

using v1::AcquireRequest;
using v1::AcquireResponse;
using Stream = grpc::ClientReaderWriter<AcquireRequest, AcquireResponse>;

class RecoveryServiceTest : public testing::StateDirServerTest {
 public:
  RecoveryServiceTest()
      : StateDirServerTest("/tmp/throttle-recovery-test-XXXXXX") {}
  void SetUp() override {
    options_.reservation_ahead = absl::Seconds(5);
    options_.stream_stall_timeout = absl::Hours(1);
    StateDirServerTest::SetUp();
  }

  // 100 per second, local_share for 30 s.
  static v1::ThrottleConfig LocalShare() {
    v1::ThrottleConfig config = Rate(100);
    config.set_degradation(v1::DEGRADATION_LOCAL_SHARE);
    config.mutable_local_share_for()->set_seconds(30);
    return config;
  }

  struct Call {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<Stream> stream;
  };
  // An Acquire stream of `weight` asking one grant.
  Call Open(const std::string& throttle, int64_t weight) {
    Call call{Context(), nullptr};
    call.stream = stub_->Acquire(call.context.get());
    AcquireRequest first;
    first.set_throttle(throttle);
    first.set_worker_id("w");
    first.set_demand(1);
    first.set_weight(weight);
    EXPECT_TRUE(call.stream->Write(first));
    return call;
  }
  // The share the stream's first grant message tells (-1 if it ended).
  static double FirstShare(Call& call) {
    AcquireResponse response;
    if (!call.stream->Read(&response)) return -1;
    EXPECT_EQ(response.grants(), 1);
    EXPECT_EQ(response.degradation(), v1::DEGRADATION_LOCAL_SHARE);
    return response.share_per_second();
  }
  void AwaitWaiting(const std::string& name, int64_t waiting) {
    ASSERT_TRUE(server_->AwaitThrottle(
        name, [&](int64_t w, int64_t) { return w == waiting; },
        absl::Seconds(30)));
  }
  static void End(Call& call) {
    call.context->TryCancel();
    AcquireResponse response;
    while (call.stream->Read(&response)) {
    }
    call.stream->Finish();
  }
};

TEST_F(RecoveryServiceTest, TheShareFollowsTheWarmUpRamp) {
  v1::ThrottleConfig config = LocalShare();
  config.mutable_warm_up()->set_seconds(10);
  config.set_warm_up_from(0.5);
  ASSERT_TRUE(CreateThrottle("t", config).ok());
  ASSERT_TRUE(Start("t").ok());
  // At the ramp's start the rate is half: so is the share of the only
  // stream (the configured max_n would say 100).
  Call a = Open("t", 1);
  EXPECT_DOUBLE_EQ(FirstShare(a), 50);
  // Halfway, 75 per second shared by a (still open: its close would race
  // b's grant) and b (the configured max_n would say 50 each).
  clock_.Advance(absl::Seconds(5));
  Call b = Open("t", 1);
  EXPECT_DOUBLE_EQ(FirstShare(b), 37.5);
  End(a);
  End(b);
}

TEST_F(RecoveryServiceTest, TheShareFollowsTheAdaptiveRate) {
  v1::ThrottleConfig config = LocalShare();
  config.mutable_adaptive()->set_floor_n(10);
  config.mutable_adaptive()->set_min_outcomes(1);
  ASSERT_TRUE(CreateThrottle("t", config).ok());
  ASSERT_TRUE(Start("t").ok());
  // A window of rejections halves the rate.
  v1::ReportRequest report;
  report.set_throttle("t");
  report.set_rejections(10);
  v1::ReportResponse reported;
  ASSERT_TRUE(stub_->Report(Context().get(), report, &reported).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(stub_->Report(Context().get(), report, &reported).ok());
  ASSERT_EQ(reported.current_max_n(), 50);
  Call a = Open("t", 1);
  EXPECT_DOUBLE_EQ(FirstShare(a), 50);
  End(a);
}

TEST_F(RecoveryServiceTest, ARestartedServerSharesTheFleetsRateUntilItIsBack) {
  ASSERT_TRUE(CreateThrottle("t", LocalShare()).ok());
  ASSERT_TRUE(Start("t").ok());
  // One after the other: opened together, b's first message may reach the
  // server first and take the grant due now.
  Call a = Open("t", 1);
  ASSERT_GE(FirstShare(a), 0);
  Call b = Open("t", 3);
  AwaitWaiting("t", 1);
  clock_.Advance(absl::Seconds(1));
  ASSERT_GE(FirstShare(b), 0);
  // The server goes away with both streams open (their workers would
  // grant locally at 25 and 75 per second) and comes back on its state.
  StopServer();
  End(a);
  End(b);
  StartServer();
  // The first back gets its part, a quarter; not the whole rate. (The
  // next grant is due a spacing after the restart: the clock moves once
  // the stream waits.)
  Call again = Open("t", 1);
  AwaitWaiting("t", 1);
  clock_.Advance(absl::Seconds(1));
  EXPECT_DOUBLE_EQ(FirstShare(again), 25);
  // The rest back: the recovery is over, each is told its share as before.
  Call rest = Open("t", 3);
  AwaitWaiting("t", 1);
  clock_.Advance(absl::Seconds(1));
  EXPECT_DOUBLE_EQ(FirstShare(rest), 75);
  End(again);
  End(rest);
}

}  // namespace
}  // namespace throttle::server
