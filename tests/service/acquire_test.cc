// The Acquire stream through real gRPC on 127.0.0.1:0 with raw generated
// stubs, as a client in another language would see it: grants only against
// demand, withdrawal, how the stream ends, bad messages. Timing runs on a
// fake clock: nothing here sleeps.
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/core/limits.h"
#include "server/service/throttle_server.h"
#include "tests/support/controller_calls.h"
#include "tests/support/fake_clock.h"
#include "tests/support/loopback_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

using ::testing::HasSubstr;
using v1::AcquireRequest;
using v1::AcquireResponse;

using Stream = grpc::ClientReaderWriter<AcquireRequest, AcquireResponse>;

class AcquireTest : public testing::LoopbackServerTest,
                    public testing::ControllerCalls {
 public:
  void SetUp() override {
    options_.clock = &clock_;
    // The fake clock runs ahead of real delivery: a write still in flight
    // after a few steps of it is not a stalled reader here.
    options_.stream_stall_timeout = absl::Hours(1);
    LoopbackServerTest::SetUp();
    stub_ = v1::Throttle::NewStub(channel_);
  }

  grpc::Status Create(const std::string& name, int64_t max_n, double per,
                      v1::Mode mode = v1::MODE_SMOOTH) {
    return CreateThrottle(name, Rate(max_n, per, mode));
  }
  int64_t Total(const std::string& name) {
    return Mean(name).total_emissions();
  }

  // An Acquire stream with its context.
  struct Call {
    std::unique_ptr<grpc::ClientContext> context;
    std::unique_ptr<Stream> stream;
  };
  Call Open(const std::string& throttle, int64_t demand, int64_t weight = 1) {
    Call call{Context(), nullptr};
    call.stream = stub_->Acquire(call.context.get());
    AcquireRequest first;
    first.set_throttle(throttle);
    first.set_worker_id("w");
    first.set_demand(demand);
    first.set_weight(weight);
    EXPECT_TRUE(call.stream->Write(first));
    return call;
  }
  static void Ask(Call& call, int64_t demand, int64_t withdraw = 0) {
    AcquireRequest more;
    more.set_demand(demand);
    more.set_withdraw(withdraw);
    EXPECT_TRUE(call.stream->Write(more));
  }
  // Reads messages until `n` grants arrived (false if the stream ended).
  static bool ReadGrants(Call& call, int64_t n) {
    AcquireResponse response;
    int64_t got = 0;
    while (got < n) {
      if (!call.stream->Read(&response)) return false;
      EXPECT_EQ(response.end(), v1::END_REASON_UNSPECIFIED);
      got += response.grants();
    }
    EXPECT_EQ(got, n) << "more grants than the demand";
    return true;
  }
  // Reads to the end of the stream: the grants of its last messages and
  // the last message's end.
  struct Ending {
    int64_t grants = 0;
    v1::EndReason end = v1::END_REASON_UNSPECIFIED;
    grpc::Status status;
  };
  static Ending ReadToEnd(Call& call) {
    Ending ending;
    AcquireResponse response;
    while (call.stream->Read(&response)) {
      ending.grants += response.grants();
      ending.end = response.end();
    }
    ending.status = call.stream->Finish();
    return ending;
  }

  // Waits until the throttle has `waiting` waiting streams and `total`
  // emissions (a negative value: any).
  void AwaitState(const std::string& name, int64_t waiting, int64_t total) {
    ASSERT_TRUE(server_->AwaitThrottle(
        name,
        [&](int64_t w, int64_t t) {
          return (waiting < 0 || w == waiting) && (total < 0 || t == total);
        },
        absl::Seconds(30)))
        << "waiting " << waiting << ", total " << total;
  }

  testing::FakeClock clock_;
};

TEST_F(AcquireTest, GrantsGoOnlyAgainstDemand) {
  ASSERT_TRUE(Create("t", 10, 1).ok());  // one grant per 100 ms
  ASSERT_TRUE(Start("t").ok());
  Call call = Open("t", 2);
  ASSERT_TRUE(ReadGrants(call, 1));  // the first is free at once
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(ReadGrants(call, 1));
  // Its demand met, the stream waits for nothing while time passes.
  AwaitState("t", 0, 2);
  clock_.Advance(absl::Seconds(5));
  AwaitState("t", 0, 2);
  // Asked again, it gets one: nothing piled up for it meanwhile (a grant
  // sent would have been counted).
  Ask(call, 1);
  ASSERT_TRUE(ReadGrants(call, 1));
  AwaitState("t", 0, 3);
  EXPECT_EQ(Total("t"), 3);
  call.stream->WritesDone();
  const Ending ending = ReadToEnd(call);
  EXPECT_TRUE(ending.status.ok()) << ending.status.error_message();
  EXPECT_EQ(ending.grants, 0);
}

TEST_F(AcquireTest, WithdrawnDemandIsNeverServed) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());  // one grant per hour
  ASSERT_TRUE(Start("t").ok());
  Call call = Open("t", 1);
  ASSERT_TRUE(ReadGrants(call, 1));
  Ask(call, 3);
  AwaitState("t", 1, 1);
  Ask(call, 0, /*withdraw=*/3);
  AwaitState("t", 0, 1);
  // An hour later nothing was granted to the stream that stopped asking;
  // the hour's grant goes to the next asker.
  clock_.Advance(absl::Hours(2));
  Call other = Open("t", 1);
  ASSERT_TRUE(ReadGrants(other, 1));
  AwaitState("t", 0, 2);
  ASSERT_TRUE(Stop("t").ok());
  EXPECT_EQ(ReadToEnd(call).end, v1::END_REASON_STOPPED);
  EXPECT_EQ(ReadToEnd(other).end, v1::END_REASON_STOPPED);
  EXPECT_EQ(Total("t"), 2);
}

TEST_F(AcquireTest, StopEndsEveryStreamIdleOrWaiting) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());
  ASSERT_TRUE(Start("t").ok());
  Call first = Open("t", 1);
  ASSERT_TRUE(ReadGrants(first, 1));  // now idle
  Call waiting = Open("t", 5);
  Call idle = Open("t", 0);
  AwaitState("t", 1, 1);
  ASSERT_TRUE(Stop("t").ok());
  for (Call* call : {&first, &waiting, &idle}) {
    const Ending ending = ReadToEnd(*call);
    EXPECT_TRUE(ending.status.ok()) << ending.status.error_message();
    EXPECT_EQ(ending.end, v1::END_REASON_STOPPED);
    EXPECT_EQ(ending.grants, 0);
  }
  // A stream opened on a stopped throttle ends at once.
  Call late = Open("t", 1);
  EXPECT_EQ(ReadToEnd(late).end, v1::END_REASON_STOPPED);
}

TEST_F(AcquireTest, DeleteEndsStreamsWithNotFound) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());
  Call call = Open("t", 1);  // before the first Start it waits
  AwaitState("t", 1, 0);
  v1::DeleteThrottleRequest del;
  del.set_name("t");
  v1::DeleteThrottleResponse deleted;
  ASSERT_TRUE(stub_->DeleteThrottle(Context().get(), del, &deleted).ok());
  const Ending ending = ReadToEnd(call);
  EXPECT_EQ(ending.status.error_code(), grpc::StatusCode::NOT_FOUND);
}

TEST_F(AcquireTest, StreamsWithStandingDemandShareTheRate) {
  ASSERT_TRUE(Create("t", 10, 1).ok());  // one grant per 100 ms
  ASSERT_TRUE(Start("t").ok());
  Call a = Open("t", 100);
  Call b = Open("t", 100);
  AwaitState("t", 2, 1);  // the first was free at once
  // Each stream is read on its own thread; the fake clock moves one grant
  // at a time (a longer step would be past the catch-up).
  absl::Mutex mu;
  int64_t got_a = 0, got_b = 0;
  auto reader = [&mu](Call* call, int64_t* got) {
    AcquireResponse response;
    while (call->stream->Read(&response)) {
      absl::MutexLock lock(&mu);
      *got += response.grants();
    }
  };
  std::thread read_a(reader, &a, &got_a);
  std::thread read_b(reader, &b, &got_b);
  for (int64_t total = 2; total <= 21; ++total) {
    clock_.Advance(absl::Milliseconds(100));
    AwaitState("t", 2, total);
  }
  {
    absl::MutexLock lock(&mu);
    const auto all_read = [&] { return got_a + got_b == 21; };
    ASSERT_TRUE(
        mu.AwaitWithTimeout(absl::Condition(&all_read), absl::Seconds(30)));
  }
  a.context->TryCancel();
  b.context->TryCancel();
  read_a.join();
  read_b.join();
  a.stream->Finish();
  b.stream->Finish();
  EXPECT_NEAR(got_a, got_b, 1);
}

TEST_F(AcquireTest, MonitorOnlyAnswersEachDemandAtOnce) {
  ASSERT_TRUE(Create("m", 1, 1, v1::MODE_MONITOR_ONLY).ok());
  ASSERT_TRUE(Start("m").ok());
  Call call = Open("m", 0);
  for (int i = 1; i <= 100; ++i) {
    Ask(call, i % 3 + 1);
    ASSERT_TRUE(ReadGrants(call, i % 3 + 1)) << i;
  }
  AwaitState("m", 0, -1);
  int64_t expected = 0;
  for (int i = 1; i <= 100; ++i) expected += i % 3 + 1;
  EXPECT_EQ(Total("m"), expected);
}

TEST_F(AcquireTest, GrantMessagesSayWhetherFuelIsUnlimited) {
  ASSERT_TRUE(Create("m", 1, 1, v1::MODE_MONITOR_ONLY).ok());
  ASSERT_TRUE(Start("m").ok());
  Call call = Open("m", 1);
  AcquireResponse response;
  ASSERT_TRUE(call.stream->Read(&response));
  EXPECT_EQ(response.grants(), 1);
  EXPECT_TRUE(response.unlimited());
  // Configured to a limited mode, its grants are no longer unlimited.
  v1::ConfigureThrottleRequest configure;
  configure.set_name("m");
  configure.mutable_config()->set_max_n(10);
  configure.mutable_config()->set_per_seconds(1);
  v1::ConfigureThrottleResponse configured;
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  Ask(call, 1);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(call.stream->Read(&response));
  EXPECT_EQ(response.grants(), 1);
  EXPECT_FALSE(response.unlimited());
}

TEST_F(AcquireTest, BadMessagesGetTheRightCodeNamingTheFieldAndHarmNothing) {
  ASSERT_TRUE(Create("good", 1, 1, v1::MODE_MONITOR_ONLY).ok());
  ASSERT_TRUE(Start("good").ok());
  struct Case {
    std::string label;
    AcquireRequest first;
    std::vector<AcquireRequest> later;
    grpc::StatusCode code;
    std::string mention;
  };
  auto message = [](int64_t demand, int64_t withdraw) {
    AcquireRequest request;
    request.set_demand(demand);
    request.set_withdraw(withdraw);
    return request;
  };
  auto first = [&](const std::string& throttle, int64_t demand) {
    AcquireRequest request = message(demand, 0);
    request.set_throttle(throttle);
    return request;
  };
  AcquireRequest heavy = first("good", 1);
  heavy.set_weight(0);
  AcquireRequest long_id = first("good", 1);
  long_id.set_worker_id(std::string(200, 'w'));
  std::vector<Case> cases = {
      {"no throttle",
       first("", 1),
       {},
       grpc::StatusCode::INVALID_ARGUMENT,
       "throttle"},
      {"unknown throttle",
       first("nope", 1),
       {},
       grpc::StatusCode::NOT_FOUND,
       "nope"},
      {"negative first demand",
       first("good", -1),
       {},
       grpc::StatusCode::INVALID_ARGUMENT,
       "demand must be in [0, 1000000], got -1"},
      {"weight 0", heavy, {}, grpc::StatusCode::INVALID_ARGUMENT, "weight"},
      {"long worker_id",
       long_id,
       {},
       grpc::StatusCode::INVALID_ARGUMENT,
       "worker_id"},
      {"demand too big",
       first("good", 0),
       {message(kMaxDemand + 1, 0)},
       grpc::StatusCode::INVALID_ARGUMENT,
       "got 1000001"},
      {"negative withdraw",
       first("good", 0),
       {message(0, -5)},
       grpc::StatusCode::INVALID_ARGUMENT,
       "withdraw must not be negative, got -5"},
  };
  for (const Case& c : cases) {
    auto context = Context();
    std::unique_ptr<Stream> stream = stub_->Acquire(context.get());
    stream->Write(c.first);
    for (const AcquireRequest& m : c.later) stream->Write(m);
    AcquireResponse response;
    while (stream->Read(&response)) {
    }
    const grpc::Status status = stream->Finish();
    EXPECT_EQ(status.error_code(), c.code) << c.label;
    EXPECT_THAT(status.error_message(), HasSubstr(c.mention)) << c.label;
  }
  // The server serves on, and the throttle counted only what was granted.
  const int64_t before = Total("good");
  Call call = Open("good", 4);
  ASSERT_TRUE(ReadGrants(call, 4));
  EXPECT_EQ(Total("good"), before + 4);
}

TEST_F(AcquireTest, OutstandingDemandHasALimitThatCostsNothingToCheck) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());
  // Before the first Start nothing is granted: the demand adds up.
  Call call = Open("t", 0);
  const int64_t messages = kMaxOutstandingDemand / kMaxDemand;
  for (int64_t i = 0; i < messages; ++i) Ask(call, kMaxDemand);
  Ask(call, 1);
  const Ending ending = ReadToEnd(call);
  EXPECT_EQ(ending.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(ending.status.error_message(),
              HasSubstr(absl::StrCat("the limit is ", kMaxOutstandingDemand)));
  AwaitState("t", 0, 0);
}

TEST_F(AcquireTest, ACancelledStreamLeavesTheThrottleWithNothingOwed) {
  ASSERT_TRUE(Create("t", 10, 1).ok());
  ASSERT_TRUE(Start("t").ok());
  Call gone = Open("t", 50);
  ASSERT_TRUE(ReadGrants(gone, 1));
  gone.context->TryCancel();
  ReadToEnd(gone);
  AwaitState("t", 0, -1);
  // Its remaining demand went with it: the next asker gets the rate.
  Call next = Open("t", 1);
  clock_.Advance(absl::Milliseconds(100));
  ASSERT_TRUE(ReadGrants(next, 1));
  AwaitState("t", 0, 2);
}

TEST_F(AcquireTest, WaitingStreamsCountOnlyStreamsWithDemand) {
  ASSERT_TRUE(Create("t", 1, 3600).ok());
  std::vector<Call> calls;
  for (int i = 0; i < 5; ++i) calls.push_back(Open("t", i % 2));
  AwaitState("t", 2, 0);  // demands 0, 1, 0, 1, 0
  EXPECT_EQ(server_->MetricValue("throttle_waiting_streams"), 2);
  for (Call& call : calls) call.context->TryCancel();
  for (Call& call : calls) ReadToEnd(call);
  AwaitState("t", 0, 0);
}

// Graceful degradation: a throttle of 10/s whose workers go on locally
// for 5 s.
v1::ThrottleConfig LocalShareConfig() {
  v1::ThrottleConfig config;
  config.set_max_n(10);
  config.set_per_seconds(1);
  config.set_degradation(v1::DEGRADATION_LOCAL_SHARE);
  config.mutable_local_share_for()->set_seconds(5);
  return config;
}

TEST_F(AcquireTest, ShareFollowsStreamsJoiningLeavingWeightsAndAConfigure) {
  v1::CreateThrottleRequest create;
  create.set_name("s");
  *create.mutable_config() = LocalShareConfig();
  v1::CreateThrottleResponse created;
  ASSERT_TRUE(stub_->CreateThrottle(Context().get(), create, &created).ok());
  Start("s");
  // Reads the next grant message of `call`.
  const auto next = [](Call& call) {
    AcquireResponse response;
    EXPECT_TRUE(call.stream->Read(&response));
    EXPECT_EQ(response.grants(), 1);
    return response;
  };
  // With a alone: asks one more grant for it and moves the clock once it
  // waits (or was served at once).
  const auto serve_alone = [&](Call& call) {
    const int64_t before = Total("s");
    Ask(call, 1);
    ASSERT_TRUE(server_->AwaitThrottle(
        "s", [&](int64_t w, int64_t t) { return w == 1 || t > before; },
        absl::Seconds(30)));
    clock_.Advance(absl::Seconds(1));
  };
  Call a = Open("s", 1);
  AcquireResponse got = next(a);  // alone: the whole rate
  EXPECT_EQ(got.degradation(), v1::DEGRADATION_LOCAL_SHARE);
  EXPECT_EQ(got.local_share_for().seconds(), 5);
  EXPECT_DOUBLE_EQ(got.share_per_second(), 10);

  // b of weight 3 joins and keeps waiting (it wants more than comes);
  // a, idle, still counts.
  Call b = Open("s", 1000, 3);
  AwaitState("s", 1, -1);
  clock_.Advance(absl::Seconds(1));
  AcquireResponse first_b;
  ASSERT_TRUE(b.stream->Read(&first_b));
  EXPECT_GE(first_b.grants(), 1);
  EXPECT_EQ(first_b.degradation(), v1::DEGRADATION_LOCAL_SHARE);
  EXPECT_DOUBLE_EQ(first_b.share_per_second(), 7.5);

  Ask(a, 1);
  AwaitState("s", 2, -1);  // b took every grant due: a waits
  clock_.Advance(absl::Seconds(1));
  got = next(a);  // told again: its share moved
  EXPECT_EQ(got.degradation(), v1::DEGRADATION_LOCAL_SHARE);
  EXPECT_DOUBLE_EQ(got.share_per_second(), 2.5);

  // b leaves; with a idle, no stream waits once the server closed it.
  b.context->TryCancel();
  ReadToEnd(b);
  AwaitState("s", 0, -1);
  serve_alone(a);
  got = next(a);
  EXPECT_DOUBLE_EQ(got.share_per_second(), 10);

  // Nothing changed: the message repeats nothing.
  serve_alone(a);
  got = next(a);
  EXPECT_EQ(got.degradation(), v1::DEGRADATION_UNSPECIFIED);
  EXPECT_EQ(got.share_per_second(), 0);
  EXPECT_FALSE(got.has_local_share_for());

  // A configure that doubles the rate doubles the share.
  v1::ConfigureThrottleRequest configure;
  configure.set_name("s");
  configure.mutable_config()->set_max_n(20);
  configure.mutable_update_mask()->add_paths("max_n");
  v1::ConfigureThrottleResponse configured;
  ASSERT_TRUE(
      stub_->ConfigureThrottle(Context().get(), configure, &configured).ok());
  serve_alone(a);
  got = next(a);
  EXPECT_EQ(got.degradation(), v1::DEGRADATION_LOCAL_SHARE);
  EXPECT_DOUBLE_EQ(got.share_per_second(), 20);
  a.context->TryCancel();
  ReadToEnd(a);
}

TEST_F(AcquireTest, MonitorOnlyTellsThePolicyButNoShare) {
  Create("m", 1, 1, v1::MODE_MONITOR_ONLY);
  Start("m");
  Call call = Open("m", 1);
  AcquireResponse response;
  ASSERT_TRUE(call.stream->Read(&response));
  EXPECT_EQ(response.degradation(), v1::DEGRADATION_WAIT);  // the default
  EXPECT_EQ(response.share_per_second(), 0);
  call.context->TryCancel();
  ReadToEnd(call);
}

TEST_F(AcquireTest, AwaitFuelGrantsCarryThePolicyAndTheShare) {
  v1::CreateThrottleRequest create;
  create.set_name("f");
  create.mutable_config()->set_max_n(10);
  create.mutable_config()->set_per_seconds(1);
  create.mutable_config()->set_degradation(v1::DEGRADATION_FAIL_FAST);
  v1::CreateThrottleResponse created;
  ASSERT_TRUE(stub_->CreateThrottle(Context().get(), create, &created).ok());
  Start("f");
  // An idle Acquire stream (its one grant read) shares the rate too.
  Call idle = Open("f", 1, 3);
  ASSERT_TRUE(ReadGrants(idle, 1));
  v1::AwaitFuelRequest request;
  request.set_throttle("f");
  request.set_count(1);
  request.set_weight(2);
  auto context = Context();
  auto reader = stub_->AwaitFuel(context.get(), request);
  AwaitState("f", 1, 1);
  clock_.Advance(absl::Seconds(1));
  v1::AwaitFuelResponse response;
  ASSERT_TRUE(reader->Read(&response));
  EXPECT_EQ(response.grants(), 1);
  EXPECT_EQ(response.degradation(), v1::DEGRADATION_FAIL_FAST);
  EXPECT_FALSE(response.has_local_share_for());
  EXPECT_DOUBLE_EQ(response.share_per_second(), 4);  // 10 x 2 / (2 + 3)
  EXPECT_TRUE(reader->Finish().ok());
  idle.context->TryCancel();
  ReadToEnd(idle);
}

}  // namespace
}  // namespace throttle::server
