// The adaptive ceiling through real gRPC on 127.0.0.1:0 with a fake clock:
// created and listed with its defaults filled in, Report validated
// (INVALID_ARGUMENT naming the field and value, NOT_FOUND,
// FAILED_PRECONDITION), reports that move the rate visible in Report,
// ListThrottles, Latest and the current-rate gauge, a partial configure of
// `adaptive`, and a restarted server on the same state keeping the rate.
// Nothing here sleeps.
#include <memory>
#include <string>
#include <utility>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"
#include "tests/support/state_dir_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;

class AdaptiveServiceTest : public testing::StateDirServerTest {
 public:
  AdaptiveServiceTest()
      : StateDirServerTest("/tmp/throttle-adaptive-test-XXXXXX") {}
  void SetUp() override {
    options_.reservation_ahead = absl::Seconds(5);
    StateDirServerTest::SetUp();
  }

  // max_n per second, adaptive from a floor of 10: halve above 10%
  // rejections, else add 5, deciding every second on at least 1 outcome.
  static v1::ThrottleConfig Adaptive(int64_t max_n) {
    v1::ThrottleConfig config = Rate(max_n);
    v1::AdaptiveConfig* adaptive = config.mutable_adaptive();
    adaptive->set_floor_n(10);
    adaptive->set_target_rejection_ratio(0.1);
    adaptive->mutable_window()->set_seconds(1);
    adaptive->set_increase_n(5);
    adaptive->set_decrease_factor(0.5);
    adaptive->set_min_outcomes(1);
    return config;
  }
  grpc::Status Report(const std::string& name, int64_t successes,
                      int64_t rejections, int64_t* current = nullptr) {
    v1::ReportRequest request;
    request.set_throttle(name);
    request.set_worker_id("w1");
    request.set_successes(successes);
    request.set_rejections(rejections);
    v1::ReportResponse response;
    grpc::Status status = stub_->Report(Context().get(), request, &response);
    if (current != nullptr) *current = response.current_max_n();
    return status;
  }
  int64_t LatestCurrent(const std::string& name) {
    v1::LatestRequest request;
    request.set_throttle(name);
    v1::LatestResponse response;
    EXPECT_TRUE(stub_->Latest(Context().get(), request, &response).ok());
    return response.current_max_n();
  }
  // Drives the rate from 100 to 50: a window with every outcome rejected,
  // closed by the next report (with no outcomes) a second later.
  void HalveOnce(const std::string& name) {
    ASSERT_TRUE(Report(name, 0, 10).ok());
    clock_.Advance(absl::Seconds(1));
    int64_t current = 0;
    ASSERT_TRUE(Report(name, 0, 0, &current).ok());
    ASSERT_EQ(current, 50);
  }
};

TEST_F(AdaptiveServiceTest, CreatedAndListedWithTheDefaultsFilledIn) {
  v1::ThrottleConfig config = Rate(100);
  config.mutable_adaptive();  // empty: every default
  v1::ThrottleInfo created;
  ASSERT_TRUE(CreateThrottle("t", config, &created).ok());
  // A copy: a reference into the temporary Listed() returns would dangle
  // (UBSan caught it).
  const v1::AdaptiveConfig listed = Listed("t").config().adaptive();
  EXPECT_EQ(listed.floor_n(), 1);
  EXPECT_DOUBLE_EQ(listed.target_rejection_ratio(), 0.05);
  EXPECT_EQ(listed.window().seconds(), 1);
  EXPECT_EQ(listed.increase_n(), 1);
  EXPECT_DOUBLE_EQ(listed.decrease_factor(), 0.5);
  EXPECT_EQ(listed.min_outcomes(), 10);
  EXPECT_TRUE(created.config().has_adaptive());
  EXPECT_EQ(created.current_max_n(), 100);
  // Without `adaptive` nothing is listed, and the rate is max_n.
  config.clear_adaptive();
  ASSERT_TRUE(CreateThrottle("plain", config).ok());
  EXPECT_FALSE(Listed("plain").config().has_adaptive());
  EXPECT_EQ(Listed("plain").current_max_n(), 100);
}

TEST_F(AdaptiveServiceTest, BadReportsAndConfigsNameTheFieldAndValue) {
  ASSERT_TRUE(CreateThrottle("t", Adaptive(100)).ok());
  ASSERT_TRUE(Start("t").ok());
  grpc::Status status = Report("t", -1, 0);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("successes must be in [0, 1000000], got -1"));
  status = Report("t", 0, 1'000'001);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("rejections must be in [0, 1000000], got 1000001"));
  EXPECT_EQ(Report("nope", 1, 0).error_code(), grpc::StatusCode::NOT_FOUND);

  v1::ThrottleConfig floor_above = Adaptive(100);
  floor_above.mutable_adaptive()->set_floor_n(101);
  v1::ThrottleConfig target = Adaptive(100);
  target.mutable_adaptive()->set_target_rejection_ratio(1.5);
  v1::ThrottleConfig monitor = Adaptive(100);
  monitor.set_mode(v1::MODE_MONITOR_ONLY);
  for (const auto& [config, message] :
       {std::pair<v1::ThrottleConfig, const char*>{
            floor_above,
            "config.adaptive.floor_n must be in [1, max_n = 100], got 101"},
        {target,
         "config.adaptive.target_rejection_ratio must be in (0, 1), got 1.5"},
        {monitor, "config.adaptive applies to limited modes"}}) {
    status = CreateThrottle("bad", config);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(status.error_message(), HasSubstr(message));
  }
}

TEST_F(AdaptiveServiceTest, ReportOnAThrottleNotAdaptiveOrNotStartedFails) {
  v1::ThrottleConfig plain = Adaptive(100);
  plain.clear_adaptive();
  ASSERT_TRUE(CreateThrottle("plain", plain).ok());
  ASSERT_TRUE(Start("plain").ok());
  grpc::Status status = Report("plain", 1, 0);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("config.adaptive is unset"));
  ASSERT_TRUE(CreateThrottle("t", Adaptive(100)).ok());
  status = Report("t", 1, 0);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(status.error_message(), HasSubstr("never started"));
}

TEST_F(AdaptiveServiceTest, ReportsMoveTheRateShownEverywhere) {
  ASSERT_TRUE(CreateThrottle("t", Adaptive(100)).ok());
  ASSERT_TRUE(Start("t").ok());
  EXPECT_DOUBLE_EQ(server_->MetricValue("throttle_current_rate"), 100);
  HalveOnce("t");
  EXPECT_EQ(Listed("t").current_max_n(), 50);
  EXPECT_EQ(Listed("t").config().max_n(), 100);  // the ceiling stays
  EXPECT_EQ(LatestCurrent("t"), 50);
  EXPECT_DOUBLE_EQ(server_->MetricValue("throttle_current_rate"), 50);
  // A window without rejections adds 5.
  ASSERT_TRUE(Report("t", 10, 0).ok());
  clock_.Advance(absl::Seconds(1));
  int64_t current = 0;
  ASSERT_TRUE(Report("t", 0, 0, &current).ok());
  EXPECT_EQ(current, 55);
  // Stopped, it keeps the rate and still takes reports.
  ASSERT_TRUE(Stop("t").ok());
  ASSERT_TRUE(Report("t", 0, 10, &current).ok());
  EXPECT_EQ(current, 55);
}

TEST_F(AdaptiveServiceTest, APartialConfigureOfAdaptiveKeepsOrDropsTheRate) {
  ASSERT_TRUE(CreateThrottle("t", Adaptive(100)).ok());
  ASSERT_TRUE(Start("t").ok());
  HalveOnce("t");
  v1::ConfigureThrottleRequest configure;
  configure.set_name("t");
  *configure.mutable_config() = Adaptive(100);
  configure.mutable_config()->mutable_adaptive()->set_floor_n(60);
  configure.mutable_update_mask()->add_paths("adaptive");
  v1::ConfigureThrottleResponse configured;
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  EXPECT_EQ(configured.throttle().config().adaptive().floor_n(), 60);
  EXPECT_EQ(configured.throttle().current_max_n(), 60);  // clamped up
  // `adaptive` named but unset: no adaptive ceiling, the rate is max_n.
  configure.clear_config();
  configure.mutable_config()->set_max_n(7);  // not in the mask: ignored
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  EXPECT_FALSE(configured.throttle().config().has_adaptive());
  EXPECT_EQ(configured.throttle().current_max_n(), 100);
}

TEST_F(AdaptiveServiceTest, ARestartedServerKeepsTheRate) {
  ASSERT_TRUE(CreateThrottle("t", Adaptive(100)).ok());
  ASSERT_TRUE(Start("t").ok());
  HalveOnce("t");
  StopServer();
  StartServer();
  EXPECT_EQ(Listed("t").current_max_n(), 50);
  EXPECT_DOUBLE_EQ(server_->MetricValue("throttle_current_rate"), 50);
}

}  // namespace
}  // namespace throttle::server
