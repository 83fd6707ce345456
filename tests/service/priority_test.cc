// Priorities through real gRPC on 127.0.0.1:0 with a fake clock: the
// AwaitFuel and Acquire priority and the throttle's starvation_bound are
// validated (INVALID_ARGUMENT naming the field and the value), the bound is
// created, listed and changed by a partial configure, and of two streams
// waiting on one throttle the higher class gets the fuel first. Nothing
// here sleeps.
#include <cstdint>
#include <memory>
#include <string>

#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "tests/support/controller_calls.h"
#include "tests/support/fake_clock.h"
#include "tests/support/loopback_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;
using v1::AwaitFuelRequest;
using v1::AwaitFuelResponse;

class PriorityServiceTest : public testing::LoopbackServerTest,
                            public testing::ControllerCalls {
 public:
  void SetUp() override {
    options_.clock = &clock_;
    LoopbackServerTest::SetUp();
    stub_ = v1::Throttle::NewStub(channel_);
  }

  // One grant per `per_seconds`, with a starvation bound of `bound_seconds`
  // (0: none).
  grpc::Status Create(const std::string& name, double per_seconds,
                      int64_t bound_seconds, v1::ThrottleInfo* info = nullptr) {
    v1::ThrottleConfig config = Rate(1, per_seconds, v1::MODE_SMOOTH);
    if (bound_seconds != 0) {
      config.mutable_starvation_bound()->set_seconds(bound_seconds);
    }
    return CreateThrottle(name, config, info);
  }
  static AwaitFuelRequest Request(int64_t count, int64_t priority) {
    AwaitFuelRequest request;
    request.set_throttle("t");
    request.set_count(count);
    request.set_priority(priority);
    return request;
  }
  // Waits until `n` streams wait on the throttle `name`.
  void AwaitWaiting(int64_t n, const std::string& name = "t") {
    ASSERT_TRUE(server_->AwaitThrottle(
        name, [n](int64_t waiting, int64_t) { return waiting == n; },
        absl::Seconds(30)))
        << "streams did not start waiting";
  }
  // Waits until the throttle counted `n` emissions.
  void AwaitEmissions(int64_t n, const std::string& name = "t") {
    ASSERT_TRUE(server_->AwaitThrottle(
        name, [n](int64_t, int64_t total) { return total == n; },
        absl::Seconds(30)))
        << "emissions did not reach " << n;
  }

 protected:
  testing::FakeClock clock_;
};

TEST_F(PriorityServiceTest, BadPrioritiesAreInvalidArgumentNamingTheValue) {
  ASSERT_TRUE(Create("t", 1, 0).ok());
  for (const int64_t bad : {-1, 10, 1'000'000}) {
    auto context = Context();
    auto reader = stub_->AwaitFuel(context.get(), Request(1, bad));
    AwaitFuelResponse response;
    while (reader->Read(&response)) {
    }
    const grpc::Status status = reader->Finish();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << bad;
    EXPECT_THAT(
        status.error_message(),
        HasSubstr("priority must be in [0, 9], got " + std::to_string(bad)));
  }
  auto context = Context();
  auto acquire = stub_->Acquire(context.get());
  v1::AcquireRequest first;
  first.set_throttle("t");
  first.set_demand(1);
  first.set_priority(12);
  acquire->Write(first);
  acquire->WritesDone();
  v1::AcquireResponse response;
  while (acquire->Read(&response)) {
  }
  const grpc::Status status = acquire->Finish();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("priority must be in [0, 9], got 12"));
}

TEST_F(PriorityServiceTest, BadStarvationBoundsAreInvalidArgument) {
  grpc::Status status = Create("a", 1, -3);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              HasSubstr("config.starvation_bound must be in [0, 30 days], "
                        "got -3s"));
  status = Create("b", 1, 31 * 86400);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(), HasSubstr("got 744h"));
}

TEST_F(PriorityServiceTest, TheStarvationBoundIsListedAndConfigured) {
  v1::ThrottleInfo created;
  ASSERT_TRUE(Create("t", 1, 5, &created).ok());
  EXPECT_EQ(created.config().starvation_bound().seconds(), 5);
  EXPECT_EQ(Listed("t").config().starvation_bound().seconds(), 5);
  ASSERT_TRUE(Create("plain", 1, 0).ok());
  EXPECT_FALSE(Listed("plain").config().has_starvation_bound());

  v1::ConfigureThrottleRequest configure;
  configure.set_name("t");
  configure.mutable_config()->mutable_starvation_bound()->set_seconds(7);
  configure.mutable_update_mask()->add_paths("starvation_bound");
  v1::ConfigureThrottleResponse configured;
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  EXPECT_EQ(configured.throttle().config().starvation_bound().seconds(), 7);
  EXPECT_EQ(configured.throttle().config().max_n(), 1);
  // Named but unset: none.
  configure.clear_config();
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  EXPECT_FALSE(Listed("t").config().has_starvation_bound());
}

TEST_F(PriorityServiceTest, TheHigherClassGetsTheFuelWhileBothWait) {
  // One grant per 10 s; the first, free at once, goes to a first stream.
  ASSERT_TRUE(Create("t", 10, 0).ok());
  ASSERT_TRUE(Start("t").ok());
  auto first_context = Context();
  auto first = stub_->AwaitFuel(first_context.get(), Request(1, 0));
  AwaitFuelResponse response;
  ASSERT_TRUE(first->Read(&response));
  EXPECT_EQ(response.grants(), 1);
  AwaitEmissions(1);
  // The lower class waits first, the higher joins after it.
  auto low_context = Context();
  auto low = stub_->AwaitFuel(low_context.get(), Request(1, 1));
  AwaitWaiting(1);
  auto high_context = Context();
  auto high = stub_->AwaitFuel(high_context.get(), Request(1, 6));
  AwaitWaiting(2);
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(high->Read(&response));
  EXPECT_EQ(response.grants(), 1);
  AwaitWaiting(1);  // the lower class still waits
  EXPECT_EQ(server_->MetricValue("throttle_waiting_streams"), 1);
  clock_.Advance(absl::Seconds(10));
  ASSERT_TRUE(low->Read(&response));
  EXPECT_EQ(response.grants(), 1);
  for (auto* reader : {first.get(), low.get(), high.get()}) {
    while (reader->Read(&response)) {
    }
    EXPECT_TRUE(reader->Finish().ok());
  }
}

}  // namespace
}  // namespace throttle::server
