// Warm-up through real gRPC on 127.0.0.1:0 with a fake clock: the fields
// are created, listed (the default fraction filled in), changed by a
// partial configure and refused with INVALID_ARGUMENT naming the field and
// the value; HasFuel follows the ramp, the current-rate gauge shows it, and
// a restarted server on the same state goes on with the ramp. Nothing here
// sleeps.
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"
#include "server/state/file_store.h"
#include "tests/support/state_dir_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;

class WarmUpServiceTest : public testing::StateDirServerTest {
 public:
  WarmUpServiceTest()
      : StateDirServerTest("/tmp/throttle-warm-up-test-XXXXXX") {}
  void SetUp() override {
    // Reservations of 5 s of grants: HasFuel below never waits for one to
    // be stored (the fake clock runs far ahead of the real disk).
    options_.reservation_ahead = absl::Seconds(5);
    StateDirServerTest::SetUp();
  }

  // max_n per second, warming up over `warm_up_seconds` from `from`.
  static v1::ThrottleConfig Config(int64_t max_n, int64_t warm_up_seconds,
                                   double from,
                                   v1::Mode mode = v1::MODE_SMOOTH) {
    v1::ThrottleConfig config;
    config.set_max_n(max_n);
    config.set_per_seconds(1);
    config.set_mode(mode);
    config.mutable_warm_up()->set_seconds(warm_up_seconds);
    config.set_warm_up_from(from);
    return config;
  }
  // Asks HasFuel every 1 ms of the fake clock for `seconds`; returns the
  // grants it got (each up to a poll later than it fell due, so a little
  // below the curve).
  int64_t PollHasFuel(const std::string& name, int seconds) {
    v1::HasFuelRequest request;
    request.set_throttle(name);
    int64_t granted = 0;
    for (int step = 0; step < seconds * 1000; ++step) {
      v1::HasFuelResponse response;
      EXPECT_TRUE(stub_->HasFuel(Context().get(), request, &response).ok());
      granted += response.granted() ? 1 : 0;
      clock_.Advance(absl::Milliseconds(1));
    }
    return granted;
  }
};

TEST_F(WarmUpServiceTest, CreatedAndListedWithTheDefaultFractionFilledIn) {
  v1::ThrottleInfo created;
  ASSERT_TRUE(CreateThrottle("t", Config(100, 30, 0), &created).ok());
  EXPECT_EQ(created.config().warm_up().seconds(), 30);
  EXPECT_DOUBLE_EQ(created.config().warm_up_from(), 1.0 / 3);
  const v1::ThrottleInfo listed = Listed("t");
  EXPECT_EQ(listed.config().warm_up().seconds(), 30);
  EXPECT_DOUBLE_EQ(listed.config().warm_up_from(), 1.0 / 3);
  // Without a warm-up neither is listed.
  ASSERT_TRUE(CreateThrottle("plain", Config(100, 0, 0)).ok());
  EXPECT_FALSE(Listed("plain").config().has_warm_up());
  EXPECT_EQ(Listed("plain").config().warm_up_from(), 0);
}

TEST_F(WarmUpServiceTest, APartialConfigureChangesOnlyTheWarmUpFieldsNamed) {
  ASSERT_TRUE(CreateThrottle("t", Config(100, 30, 0.25, v1::MODE_BUCKET)).ok());
  v1::ConfigureThrottleRequest configure;
  configure.set_name("t");
  configure.mutable_config()->set_warm_up_from(0.5);
  configure.mutable_update_mask()->add_paths("warm_up_from");
  v1::ConfigureThrottleResponse configured;
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  EXPECT_EQ(configured.throttle().config().warm_up().seconds(), 30);
  EXPECT_EQ(configured.throttle().config().warm_up_from(), 0.5);
  EXPECT_EQ(configured.throttle().config().mode(), v1::MODE_BUCKET);
  EXPECT_EQ(configured.throttle().config().max_n(), 100);

  // warm_up named but unset: no warm-up.
  configure.clear_config();
  configure.mutable_update_mask()->set_paths(0, "warm_up");
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  EXPECT_FALSE(configured.throttle().config().has_warm_up());
  EXPECT_EQ(configured.throttle().config().mode(), v1::MODE_BUCKET);
  EXPECT_FALSE(Listed("t").config().has_warm_up());
}

TEST_F(WarmUpServiceTest, BadValuesAreInvalidArgumentNamingFieldAndValue) {
  struct Case {
    v1::ThrottleConfig config;
    const char* message;
  };
  v1::ThrottleConfig negative = Config(10, 0, 0);
  negative.mutable_warm_up()->set_seconds(-2);
  v1::ThrottleConfig too_long = Config(10, 31 * 86400, 0);
  v1::ThrottleConfig from_above = Config(10, 5, 1.5);
  v1::ThrottleConfig from_below = Config(10, 5, -0.25);
  v1::ThrottleConfig malformed = Config(10, 5, 0);
  malformed.mutable_warm_up()->set_nanos(-5);  // seconds > 0, nanos < 0
  for (const Case& c : {
           Case{negative, "config.warm_up must be in [0, 30 days], got -2s"},
           Case{too_long, "config.warm_up must be in [0, 30 days], got 744h"},
           Case{from_above,
                "config.warm_up_from must be in (0, 1] (0 = 1/3), got 1.5"},
           Case{from_below,
                "config.warm_up_from must be in (0, 1] (0 = 1/3), got -0.25"},
           Case{malformed, "config.warm_up is not a valid Duration"},
       }) {
    const grpc::Status status = CreateThrottle("bad", c.config);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.message;
    EXPECT_THAT(status.error_message(), HasSubstr(c.message));
  }
  // Nothing was created.
  v1::ListThrottlesResponse response;
  ASSERT_TRUE(stub_
                  ->ListThrottles(Context().get(), v1::ListThrottlesRequest(),
                                  &response)
                  .ok());
  EXPECT_EQ(response.throttles_size(), 0);
}

TEST_F(WarmUpServiceTest, HasFuelAndTheCurrentRateGaugeFollowTheRamp) {
  // 100 per second from 10% over 10 s: the first second allows
  // 100 x (0.1 + 0.9 / 20) = 14.5 grants, the full rate 100.
  ASSERT_TRUE(CreateThrottle("t", Config(100, 10, 0.1)).ok());
  ASSERT_TRUE(Start("t").ok());
  EXPECT_DOUBLE_EQ(server_->MetricValue("throttle_current_rate"), 10);
  const int64_t first = PollHasFuel("t", 1);
  EXPECT_GE(first, 13);
  EXPECT_LE(first, 16);
  clock_.Advance(absl::Seconds(4));  // at 5 s: 55% of the rate
  EXPECT_NEAR(server_->MetricValue("throttle_current_rate"), 55, 1e-6);
  clock_.Advance(absl::Seconds(6));  // past the ramp
  EXPECT_DOUBLE_EQ(server_->MetricValue("throttle_current_rate"), 100);
  const int64_t full = PollHasFuel("t", 1);
  EXPECT_GE(full, 98);
  EXPECT_LE(full, 101);
}

TEST_F(WarmUpServiceTest, ARestartedServerGoesOnWithTheRamp) {
  ASSERT_TRUE(CreateThrottle("t", Config(100, 10, 0.1)).ok());
  ASSERT_TRUE(Start("t").ok());
  clock_.Advance(absl::Seconds(4));
  StopServer();
  StartServer();
  // At 4 s the ramp is at 46%: the restored throttle goes on from there,
  // not at the full rate. [4 s, 5 s) allows 100 x (0.1 + 0.9 x 0.45) =
  // 50.5 grants.
  EXPECT_NEAR(server_->MetricValue("throttle_current_rate"), 46, 1e-6);
  const int64_t granted = PollHasFuel("t", 1);
  EXPECT_GE(granted, 47);
  EXPECT_LE(granted, 53);
}

}  // namespace
}  // namespace throttle::server
