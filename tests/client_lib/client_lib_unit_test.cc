// Unit tests of the client library (client-lib/): status mapping, backoff,
// and Tank/Controller against an in-process fake of the Throttle service
// that answers from a script (the real server is tested by the integration
// tests).
#include <cstdint>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "client-lib/src/backoff.h"
#include "grpc/grpc.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "tests/support/manual_clock.h"
#include "throttle/channel.h"
#include "throttle/clock.h"
#include "throttle/controller.h"
#include "throttle/status.h"
#include "throttle/tank.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle {
namespace {

using ::throttle::testing::ManualClock;

// An address where nothing listens.
constexpr char kUnreachable[] = "unix:/nonexistent-throttle-test-dir/sock";

v1::AwaitFuelResponse Grants(int64_t grants,
                             v1::EndReason end = v1::END_REASON_UNSPECIFIED) {
  v1::AwaitFuelResponse response;
  response.set_grants(grants);
  response.set_end(end);
  return response;
}

// The scripted answer to one AwaitFuel call: messages, then a status.
struct Answer {
  std::vector<v1::AwaitFuelResponse> messages;
  grpc::Status status;
};

// The Throttle service, answering from a script. AwaitFuel calls take the
// next scripted answer (or the repeated one); with neither they wait until
// cancelled.
class FakeThrottle final : public v1::Throttle::Service {
 public:
  void AddAnswer(Answer answer) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    answers_.push_back(std::move(answer));
  }

  void RepeatAnswer(Answer answer) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    repeat_ = std::move(answer);
    has_repeat_ = true;
  }

  // Runs `hook` at the start of every AwaitFuel call (before its answer).
  void OnAwaitFuel(std::function<void()> hook) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    on_await_fuel_ = std::move(hook);
  }

  void SetHasFuel(bool granted, bool stopped) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    has_fuel_.set_granted(granted);
    has_fuel_.set_stopped(stopped);
  }

  std::vector<v1::AwaitFuelRequest> requests() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

  // Waits (up to 10 s) until `n` AwaitFuel calls arrived.
  bool WaitForCalls(size_t n) const ABSL_LOCKS_EXCLUDED(mu_) {
    auto arrived = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return requests_.size() >= n;
    };
    const bool ok =
        mu_.LockWhenWithTimeout(absl::Condition(&arrived), absl::Seconds(10));
    mu_.Unlock();
    return ok;
  }

  // Waits (up to 10 s) until `n` ListThrottles calls arrived.
  bool WaitForListCalls(int n) const ABSL_LOCKS_EXCLUDED(mu_) {
    auto arrived = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return list_calls_ >= n;
    };
    const bool ok =
        mu_.LockWhenWithTimeout(absl::Condition(&arrived), absl::Seconds(10));
    mu_.Unlock();
    return ok;
  }

  int64_t emitted() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return emitted_;
  }

  v1::LatestRequest last_latest() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return last_latest_;
  }

  grpc::Status AwaitFuel(
      grpc::ServerContext* context, const v1::AwaitFuelRequest* request,
      grpc::ServerWriter<v1::AwaitFuelResponse>* writer) override {
    Answer answer;
    std::function<void()> hook;
    {
      absl::MutexLock lock(&mu_);
      hook = on_await_fuel_;
    }
    if (hook) hook();
    {
      absl::MutexLock lock(&mu_);
      requests_.push_back(*request);
      if (!answers_.empty()) {
        answer = std::move(answers_.front());
        answers_.pop_front();
      } else if (has_repeat_) {
        answer = repeat_;
      } else {
        // A sync handler learns of cancellation only by asking.
        while (!context->IsCancelled()) {
          mu_.AwaitWithTimeout(absl::Condition(&never_), absl::Milliseconds(5));
        }
        return grpc::Status::CANCELLED;
      }
    }
    for (const v1::AwaitFuelResponse& message : answer.messages) {
      writer->Write(message);
    }
    return answer.status;
  }

  grpc::Status HasFuel(grpc::ServerContext*, const v1::HasFuelRequest*,
                       v1::HasFuelResponse* response) override {
    absl::MutexLock lock(&mu_);
    *response = has_fuel_;
    return grpc::Status::OK;
  }

  grpc::Status Emit(grpc::ServerContext*, const v1::EmitRequest* request,
                    v1::EmitResponse* response) override {
    absl::MutexLock lock(&mu_);
    emitted_ += request->count();
    response->set_total_emissions(emitted_);
    return grpc::Status::OK;
  }

  grpc::Status Stop(grpc::ServerContext*, const v1::StopRequest* request,
                    v1::StopResponse* response) override {
    if (request->throttle() != "known") {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          "no throttle \"" + request->throttle() + "\"");
    }
    response->set_runtime_seconds(5.0);
    response->set_total_emissions(25);
    response->set_mean_seconds_between_emissions(0.2);
    response->set_mean_emissions_per_second(5.0);
    return grpc::Status::OK;
  }

  grpc::Status Latest(grpc::ServerContext*, const v1::LatestRequest* request,
                      v1::LatestResponse* response) override {
    absl::MutexLock lock(&mu_);
    last_latest_ = *request;
    response->set_emissions(3);
    return grpc::Status::OK;
  }

  // Waits until the caller cancels (for Controller::Close()).
  grpc::Status ListThrottles(grpc::ServerContext* context,
                             const v1::ListThrottlesRequest*,
                             v1::ListThrottlesResponse*) override {
    absl::MutexLock lock(&mu_);
    ++list_calls_;
    while (!context->IsCancelled()) {
      mu_.AwaitWithTimeout(absl::Condition(&never_), absl::Milliseconds(5));
    }
    return grpc::Status::CANCELLED;
  }

  grpc::Status CreateThrottle(grpc::ServerContext*,
                              const v1::CreateThrottleRequest* request,
                              v1::CreateThrottleResponse* response) override {
    response->mutable_throttle()->set_name(request->name());
    *response->mutable_throttle()->mutable_config() = request->config();
    response->mutable_throttle()->set_state(v1::STATE_CREATED);
    return grpc::Status::OK;
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<Answer> answers_ ABSL_GUARDED_BY(mu_);
  Answer repeat_ ABSL_GUARDED_BY(mu_);
  bool has_repeat_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<v1::AwaitFuelRequest> requests_ ABSL_GUARDED_BY(mu_);
  v1::HasFuelResponse has_fuel_ ABSL_GUARDED_BY(mu_);
  int64_t emitted_ ABSL_GUARDED_BY(mu_) = 0;
  v1::LatestRequest last_latest_ ABSL_GUARDED_BY(mu_);
  std::function<void()> on_await_fuel_ ABSL_GUARDED_BY(mu_);
  int list_calls_ ABSL_GUARDED_BY(mu_) = 0;
  bool never_ ABSL_GUARDED_BY(mu_) = false;
};

// A monotonic clock that a test moves by hand. Its timeline starts an hour
// after the Unix epoch, far from the wall clock, so that a Tank mixing it
// with absl::Now() would compute nonsense. Thread-safe.
// The wait limit of `request` in whole milliseconds.
int64_t WaitLimitMillis(const v1::AwaitFuelRequest& request) {
  return request.wait_limit().seconds() * 1000 +
         request.wait_limit().nanos() / 1000000;
}

// FakeThrottle served on a free loopback port.
class FakeServer {
 public:
  FakeServer() {
    grpc::ServerBuilder builder;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
  }

  ~FakeServer() {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  }

  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  FakeThrottle& service() { return service_; }

 private:
  FakeThrottle service_;
  int port_ = 0;
  std::unique_ptr<grpc::Server> server_;
};

class TankTest : public ::testing::Test {
 protected:
  TankOptions Options() {
    TankOptions options;
    options.worker_id = "worker-1";
    options.weight = 2;
    options.backoff_initial = absl::Milliseconds(1);
    options.backoff_max = absl::Milliseconds(4);
    return options;
  }

  FakeServer server_;
};

TEST(FromGrpcStatusTest, KeepsCodeAndMessage) {
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
  const absl::Status status =
      FromGrpcStatus(grpc::Status(grpc::StatusCode::NOT_FOUND, "no \"x\""));
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(status.message(), "no \"x\"");
  for (int code = 1; code <= 16; ++code) {
    EXPECT_EQ(static_cast<int>(
                  FromGrpcStatus(
                      grpc::Status(static_cast<grpc::StatusCode>(code), "m"))
                      .code()),
              code);
  }
}

TEST(FromGrpcStatusTest, UnknownCodeBecomesUnknown) {
  EXPECT_EQ(FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(20), "m"))
                .code(),
            absl::StatusCode::kUnknown);
}

TEST(BackoffTest, DoublesWithJitterUpToMax) {
  absl::BitGen gen;
  Backoff backoff(absl::Milliseconds(50), absl::Seconds(2));
  absl::Duration base = absl::Milliseconds(50);
  for (int i = 0; i < 12; ++i) {
    const absl::Duration delay = backoff.NextDelay(gen);
    EXPECT_GE(delay, base * 0.8) << i;
    EXPECT_LE(delay, base * 1.2) << i;
    base = std::min(base * 2, absl::Seconds(2));
  }
  backoff.Reset();
  EXPECT_LE(backoff.NextDelay(gen), absl::Milliseconds(60));
}

// The integer channel argument `key` of `args`, if set.
std::optional<int> IntArgument(const grpc::ChannelArguments& args,
                               const char* key) {
  const grpc_channel_args c_args = args.c_channel_args();
  for (size_t i = 0; i < c_args.num_args; ++i) {
    const grpc_arg& arg = c_args.args[i];
    if (std::strcmp(arg.key, key) == 0 && arg.type == GRPC_ARG_INTEGER) {
      return arg.value.integer;
    }
  }
  return std::nullopt;
}

TEST(ReconnectChannelArgumentsTest, SetsGrpcReconnectBackoffToTheTanks) {
  const grpc::ChannelArguments args =
      ReconnectChannelArguments(absl::Milliseconds(50), absl::Seconds(2));
  EXPECT_EQ(IntArgument(args, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS), 50);
  EXPECT_EQ(IntArgument(args, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS), 2000);
  EXPECT_EQ(IntArgument(args, GRPC_ARG_MIN_RECONNECT_BACKOFF_MS),
            absl::ToInt64Milliseconds(kMinConnectTimeout));
}

TEST(ReconnectChannelArgumentsTest, DefaultsAreTankOptionsDefaults) {
  const TankOptions tank;
  const grpc::ChannelArguments args = ReconnectChannelArguments();
  EXPECT_EQ(IntArgument(args, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS),
            absl::ToInt64Milliseconds(tank.backoff_initial));
  EXPECT_EQ(IntArgument(args, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS),
            absl::ToInt64Milliseconds(tank.backoff_max));
}

TEST(ReconnectChannelArgumentsTest, KeepsValuesPositiveAndOrdered) {
  const grpc::ChannelArguments zero =
      ReconnectChannelArguments(absl::ZeroDuration(), -absl::Seconds(1));
  EXPECT_EQ(IntArgument(zero, GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS), 1);
  EXPECT_EQ(IntArgument(zero, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS), 1);
  const grpc::ChannelArguments inverted =
      ReconnectChannelArguments(absl::Seconds(3), absl::Seconds(1));
  EXPECT_EQ(IntArgument(inverted, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS), 3000);
  const grpc::ChannelArguments huge =
      ReconnectChannelArguments(absl::Seconds(1), absl::InfiniteDuration());
  EXPECT_EQ(IntArgument(huge, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS),
            std::numeric_limits<int>::max());
}

TEST_F(TankTest, SendsOneGrantRequestWithoutWaitLimitByDefault) {
  server_.service().AddAnswer({{Grants(1)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  EXPECT_EQ(tank.AwaitFuel().outcome, FuelOutcome::kFuel);
  const std::vector<v1::AwaitFuelRequest> requests =
      server_.service().requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].throttle(), "crawl");
  EXPECT_EQ(requests[0].count(), 1);
  EXPECT_EQ(requests[0].worker_id(), "worker-1");
  EXPECT_EQ(requests[0].weight(), 2);
  EXPECT_FALSE(requests[0].has_wait_limit());
}

TEST_F(TankTest, HandsOutSurplusGrantsWithoutAnotherCall) {
  server_.service().AddAnswer({{Grants(3)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(tank.AwaitFuel().outcome, FuelOutcome::kFuel) << i;
  }
  EXPECT_EQ(server_.service().requests().size(), 1u);
  EXPECT_FALSE(tank.killed());
}

TEST_F(TankTest, SendsTimeoutAsWaitLimitAndReportsWaitLimitPassed) {
  server_.service().AddAnswer(
      {{Grants(0, v1::END_REASON_WAIT_LIMIT_PASSED)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  EXPECT_EQ(tank.AwaitFuel(absl::Seconds(2)).outcome, FuelOutcome::kTimedOut);
  const std::vector<v1::AwaitFuelRequest> requests =
      server_.service().requests();
  ASSERT_EQ(requests.size(), 1u);
  ASSERT_TRUE(requests[0].has_wait_limit());
  const int64_t limit_ms = WaitLimitMillis(requests[0]);
  EXPECT_GT(limit_ms, 1000);
  EXPECT_LE(limit_ms, 2000);
  EXPECT_FALSE(tank.killed());
}

TEST_F(TankTest, StopSetsKilledAndALaterGrantClearsIt) {
  server_.service().AddAnswer(
      {{Grants(0, v1::END_REASON_STOPPED)}, grpc::Status::OK});
  server_.service().AddAnswer({{Grants(1)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  EXPECT_FALSE(tank.killed());
  EXPECT_EQ(tank.AwaitFuel().outcome, FuelOutcome::kStopped);
  EXPECT_TRUE(tank.killed());
  EXPECT_EQ(tank.AwaitFuel().outcome, FuelOutcome::kFuel);
  EXPECT_FALSE(tank.killed());
}

TEST_F(TankTest, GrantsArrivingWithStopGiveOneFuelThenKilled) {
  server_.service().AddAnswer(
      {{Grants(2, v1::END_REASON_STOPPED)}, grpc::Status::OK});
  server_.service().AddAnswer(
      {{Grants(0, v1::END_REASON_STOPPED)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  EXPECT_EQ(tank.AwaitFuel().outcome, FuelOutcome::kFuel);
  EXPECT_TRUE(tank.killed());
  // The second grant was dropped with the stop: this asks the server again.
  EXPECT_EQ(tank.AwaitFuel().outcome, FuelOutcome::kStopped);
  EXPECT_EQ(server_.service().requests().size(), 2u);
}

TEST_F(TankTest, SeedLoopEndsWhenThrottleStops) {
  server_.service().AddAnswer({{Grants(1), Grants(1)}, grpc::Status::OK});
  server_.service().AddAnswer({{Grants(1)}, grpc::Status::OK});
  server_.service().AddAnswer(
      {{Grants(0, v1::END_REASON_STOPPED)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  int work = 0;
  while (!tank.killed()) {
    if (tank.AwaitFuel().ok()) ++work;
  }
  EXPECT_EQ(work, 3);
}

TEST_F(TankTest, CallsAgainAfterUnavailable) {
  const grpc::Status unavailable(grpc::StatusCode::UNAVAILABLE, "restarting");
  server_.service().AddAnswer({{}, unavailable});
  server_.service().AddAnswer({{}, unavailable});
  server_.service().AddAnswer({{Grants(1)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  EXPECT_EQ(tank.AwaitFuel(absl::Seconds(30)).outcome, FuelOutcome::kFuel);
  EXPECT_EQ(server_.service().requests().size(), 3u);
}

TEST_F(TankTest, CallsAgainAfterCancelledByTheServer) {
  server_.service().AddAnswer({{}, grpc::Status::CANCELLED});
  server_.service().AddAnswer({{Grants(1)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  EXPECT_EQ(tank.AwaitFuel(absl::Seconds(30)).outcome, FuelOutcome::kFuel);
  EXPECT_EQ(server_.service().requests().size(), 2u);
}

TEST_F(TankTest, UnavailableUntilTimeoutIsTimedOut) {
  server_.service().RepeatAnswer(
      {{}, grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down")});
  Tank tank(server_.address(), "crawl", Options());
  // Backoff is 1..4 ms: several calls fit in the timeout.
  EXPECT_EQ(tank.AwaitFuel(absl::Milliseconds(500)).outcome,
            FuelOutcome::kTimedOut);
  EXPECT_GE(server_.service().requests().size(), 2u);
}

TEST_F(TankTest, ReportsOtherErrors) {
  server_.service().AddAnswer(
      {{}, grpc::Status(grpc::StatusCode::NOT_FOUND, "no throttle \"x\"")});
  Tank tank(server_.address(), "x", Options());
  const FuelResult result = tank.AwaitFuel();
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status.message(), "no throttle \"x\"");
  EXPECT_EQ(server_.service().requests().size(), 1u);
}

// The error of every call after Close(), and of a call it ended.
void ExpectClosed(const absl::Status& status) {
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_EQ(status.message(), "throttle::Tank is closed") << status;
}

TEST_F(TankTest, CloseEndsAWaitingCallAndLaterCallsFailAtOnce) {
  Tank tank(server_.address(), "crawl", Options());
  FuelResult result;
  std::thread worker([&] { result = tank.AwaitFuel(); });
  ASSERT_TRUE(server_.service().WaitForCalls(1));
  tank.Close();
  worker.join();
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  ExpectClosed(result.status);
  EXPECT_TRUE(tank.killed());
  ExpectClosed(tank.AwaitFuel().status);
  ExpectClosed(tank.AwaitFuel(absl::ZeroDuration()).status);
  ExpectClosed(tank.HasFuel().status());
  ExpectClosed(tank.Emit());
  // No call reached the server after Close().
  EXPECT_EQ(server_.service().requests().size(), 1u);
  tank.Close();  // again: nothing happens
  EXPECT_TRUE(tank.killed());
}

TEST_F(TankTest, CloseEndsABackoffWait) {
  server_.service().RepeatAnswer(
      {{}, grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down")});
  TankOptions options = Options();
  options.backoff_initial = absl::Seconds(60);
  options.backoff_max = absl::Seconds(60);
  Tank tank(server_.address(), "crawl", options);
  FuelResult result;
  std::thread worker([&] { result = tank.AwaitFuel(); });
  ASSERT_TRUE(server_.service().WaitForCalls(1));
  tank.Close();
  worker.join();
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  ExpectClosed(result.status);
}

TEST_F(TankTest, KeptGrantsAreNotHandedOutAfterClose) {
  server_.service().AddAnswer({{Grants(3)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  ASSERT_TRUE(tank.AwaitFuel().ok());
  tank.Close();
  ExpectClosed(tank.AwaitFuel().status);
  ExpectClosed(tank.HasFuel().status());
}

TEST_F(TankTest, CancelIsClose) {
  Tank tank(server_.address(), "crawl", Options());
  tank.Cancel();
  EXPECT_TRUE(tank.killed());
  ExpectClosed(tank.AwaitFuel().status);
}

TEST_F(TankTest, TimedOutAndStoppedAreTold) {
  server_.service().AddAnswer(
      {{Grants(0, v1::END_REASON_WAIT_LIMIT_PASSED)}, grpc::Status::OK});
  server_.service().AddAnswer(
      {{Grants(0, v1::END_REASON_STOPPED)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  const FuelResult timed_out = tank.AwaitFuel(absl::Seconds(1));
  EXPECT_TRUE(timed_out.timed_out());
  EXPECT_FALSE(timed_out.stopped());
  EXPECT_FALSE(timed_out.ok());
  EXPECT_FALSE(tank.killed());
  const FuelResult stopped = tank.AwaitFuel(absl::Seconds(1));
  EXPECT_TRUE(stopped.stopped());
  EXPECT_FALSE(stopped.timed_out());
  EXPECT_FALSE(stopped.ok());
  EXPECT_TRUE(tank.killed());
}

TEST_F(TankTest, MeasuresTheTimeoutOnItsClock) {
  // Each call takes a second of the Tank's clock and is answered
  // UNAVAILABLE: the wait limits count down on that clock, and the wait
  // ends when that clock, not the wall clock, passes the timeout.
  ManualClock clock;
  server_.service().OnAwaitFuel([&clock] { clock.Advance(absl::Seconds(1)); });
  server_.service().RepeatAnswer(
      {{}, grpc::Status(grpc::StatusCode::UNAVAILABLE, "shutting down")});
  TankOptions options = Options();
  options.clock = &clock;
  Tank tank(server_.address(), "crawl", options);
  EXPECT_EQ(tank.AwaitFuel(absl::Seconds(5)).outcome, FuelOutcome::kTimedOut);
  const std::vector<v1::AwaitFuelRequest> requests =
      server_.service().requests();
  ASSERT_EQ(requests.size(), 5u);
  for (size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(WaitLimitMillis(requests[i]), static_cast<int64_t>(5 - i) * 1000)
        << i;
  }
}

TEST_F(TankTest, RealTimeDoesNotCountWhileItsClockStandsStill) {
  // A 1 ms timeout on a clock that does not move: the real time that 20
  // UNAVAILABLE answers and their backoff delays take does not end it.
  ManualClock clock;
  const grpc::Status unavailable(grpc::StatusCode::UNAVAILABLE, "restarting");
  for (int i = 0; i < 20; ++i) server_.service().AddAnswer({{}, unavailable});
  server_.service().AddAnswer({{Grants(1)}, grpc::Status::OK});
  TankOptions options = Options();
  options.clock = &clock;
  Tank tank(server_.address(), "crawl", options);
  EXPECT_EQ(tank.AwaitFuel(absl::Milliseconds(1)).outcome, FuelOutcome::kFuel);
  EXPECT_EQ(server_.service().requests().size(), 21u);
}

TEST(SteadyClockTest, NeverGoesBack) {
  const Clock* clock = SteadyClock();
  ASSERT_NE(clock, nullptr);
  EXPECT_EQ(TankOptions().clock, clock);
  absl::Time last = clock->Now();
  for (int i = 0; i < 1000; ++i) {
    const absl::Time now = clock->Now();
    EXPECT_GE(now, last);
    last = now;
  }
}

TEST_F(TankTest, ManyThreadsShareOneTank) {
  server_.service().RepeatAnswer({{Grants(1)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 25;
  std::vector<std::thread> threads;
  std::vector<int> fuel(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&tank, &fuel, t] {
      for (int i = 0; i < kPerThread; ++i) {
        if (tank.AwaitFuel(absl::Seconds(30)).ok()) ++fuel[t];
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(fuel[t], kPerThread);
  EXPECT_EQ(server_.service().requests().size(),
            static_cast<size_t>(kThreads * kPerThread));
}

TEST_F(TankTest, HasFuelStoppedSetsKilled) {
  Tank tank(server_.address(), "crawl", Options());
  server_.service().SetHasFuel(/*granted=*/false, /*stopped=*/true);
  absl::StatusOr<bool> has = tank.HasFuel();
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_FALSE(*has);
  EXPECT_TRUE(tank.killed());
  server_.service().SetHasFuel(/*granted=*/true, /*stopped=*/false);
  has = tank.HasFuel();
  ASSERT_TRUE(has.ok()) << has.status();
  EXPECT_TRUE(*has);
  EXPECT_FALSE(tank.killed());
}

TEST_F(TankTest, HasFuelTakesSurplusFirst) {
  server_.service().AddAnswer({{Grants(2)}, grpc::Status::OK});
  Tank tank(server_.address(), "crawl", Options());
  ASSERT_TRUE(tank.AwaitFuel().ok());
  server_.service().SetHasFuel(/*granted=*/false, /*stopped=*/false);
  EXPECT_TRUE(tank.HasFuel().value_or(false));  // the kept grant
  EXPECT_FALSE(tank.HasFuel().value_or(true));  // the server says no
}

TEST_F(TankTest, EmitSendsCount) {
  Tank tank(server_.address(), "crawl", Options());
  EXPECT_TRUE(tank.Emit(5).ok());
  EXPECT_TRUE(tank.Emit().ok());
  EXPECT_EQ(server_.service().emitted(), 6);
}

// Graceful degradation on AwaitFuel calls (docs/clients.md, "AwaitFuel
// calls follow the same policy from the same state"), on a clock that moves
// only when the test says: a fail-if-late wait, a zero-timeout poll and the
// fallback wait on a server without Acquire (this fake has none).
class TankDegradationTest : public TankTest {
 protected:
  // A Tank on `clock_` whose reconnect backoff is 10 s (+-20%): no call to
  // the server is due again until the test moves the clock that far.
  TankOptions DegradeOptions() {
    TankOptions options = Options();
    options.clock = &clock_;
    options.backoff_initial = absl::Seconds(10);
    options.backoff_max = absl::Seconds(10);
    return options;
  }
  // A grant carrying the throttle's policy and the stream's share, as the
  // server sends on a stream's first grant.
  static v1::AwaitFuelResponse PolicyGrant(
      v1::Degradation degradation, double share,
      absl::Duration local_share_for = absl::ZeroDuration()) {
    v1::AwaitFuelResponse response = Grants(1);
    response.set_degradation(degradation);
    response.set_share_per_second(share);
    if (local_share_for > absl::ZeroDuration()) {
      response.mutable_local_share_for()->set_seconds(
          absl::ToInt64Seconds(local_share_for));
    }
    return response;
  }
  size_t calls() { return server_.service().requests().size(); }

  ManualClock clock_;
  const grpc::Status unavailable_{grpc::StatusCode::UNAVAILABLE, "gone"};
};

TEST_F(TankDegradationTest, LocalShareGrantsPollsAndLateWaitsAtTheShare) {
  server_.service().AddAnswer(
      {{PolicyGrant(v1::DEGRADATION_LOCAL_SHARE, 2, absl::Seconds(60))},
       grpc::Status::OK});
  server_.service().RepeatAnswer({{}, unavailable_});
  Tank tank(server_.address(), "crawl", DegradeOptions());
  ASSERT_TRUE(tank.AwaitFuelUnlessLate(1, absl::Seconds(5)).ok());
  // The poll finds the server gone: the outage starts, and with it the
  // local grant due at its start.
  FuelResult result = tank.AwaitFuel(1, absl::ZeroDuration());
  EXPECT_EQ(result.outcome, FuelOutcome::kFuel) << result.status;
  EXPECT_EQ(calls(), 2u);
  // The next is due 1/share = 0.5 s later: a poll now is not granted, a
  // fail-if-late wait shorter than that is too late at once, saying when.
  result = tank.AwaitFuel(1, absl::ZeroDuration());
  EXPECT_EQ(result.outcome, FuelOutcome::kTimedOut) << result.status;
  EXPECT_EQ(result.grants, 0);
  result = tank.AwaitFuelUnlessLate(1, absl::Milliseconds(400));
  EXPECT_EQ(result.outcome, FuelOutcome::kTooLate) << result.status;
  EXPECT_EQ(result.expected_wait, absl::Milliseconds(500));
  clock_.Advance(absl::Milliseconds(200));
  result = tank.AwaitFuelUnlessLate(1, absl::Milliseconds(200));
  EXPECT_EQ(result.outcome, FuelOutcome::kTooLate) << result.status;
  EXPECT_EQ(result.expected_wait, absl::Milliseconds(300));
  clock_.Advance(absl::Milliseconds(300));
  EXPECT_TRUE(tank.AwaitFuelUnlessLate(1, absl::Milliseconds(200)).ok());
  clock_.Advance(absl::Milliseconds(500));
  EXPECT_TRUE(tank.AwaitFuel(1, absl::ZeroDuration()).ok());
  // A counted poll takes what is due now: one grant.
  clock_.Advance(absl::Milliseconds(500));
  result = tank.AwaitFuel(3, absl::ZeroDuration());
  EXPECT_EQ(result.outcome, FuelOutcome::kTimedOut);
  EXPECT_EQ(result.grants, 1);
  // Between reconnect attempts (the backoff): no call to the server.
  EXPECT_EQ(calls(), 2u);
}

TEST_F(TankDegradationTest, TheFallbackWaitWithoutAcquireGrantsLocally) {
  server_.service().AddAnswer(
      {{PolicyGrant(v1::DEGRADATION_LOCAL_SHARE, 4, absl::Seconds(60))},
       grpc::Status::OK});
  server_.service().RepeatAnswer({{}, unavailable_});
  Tank tank(server_.address(), "crawl", DegradeOptions());
  // Acquire is UNIMPLEMENTED: the wait falls back to an AwaitFuel call,
  // which tells the policy.
  ASSERT_TRUE(tank.AwaitFuel(absl::Seconds(5)).ok());
  ASSERT_EQ(calls(), 1u);
  // The next fallback call finds the server gone and grants locally.
  const FuelResult result = tank.AwaitFuel(absl::Seconds(5));
  EXPECT_EQ(result.outcome, FuelOutcome::kFuel) << result.status;
  EXPECT_EQ(calls(), 2u);
}

TEST_F(TankDegradationTest, FailFastEndsCallsAtOnceUntilTheServerAnswers) {
  server_.service().AddAnswer(
      {{PolicyGrant(v1::DEGRADATION_FAIL_FAST, 5)}, grpc::Status::OK});
  server_.service().AddAnswer({{}, unavailable_});
  Tank tank(server_.address(), "crawl", DegradeOptions());
  ASSERT_TRUE(tank.AwaitFuelUnlessLate(1, absl::Seconds(5)).ok());
  // One call finds the server gone; it is not retried.
  FuelResult result = tank.AwaitFuelUnlessLate(1, absl::Seconds(5));
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable)
      << result.status;
  EXPECT_NE(result.status.message().find("fail fast"), std::string::npos)
      << result.status;
  EXPECT_EQ(calls(), 2u);
  // During the reconnect backoff every wait and poll ends so without a
  // call.
  result = tank.AwaitFuel(1, absl::ZeroDuration());
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable)
      << result.status;
  result = tank.AwaitFuelUnlessLate(1, absl::Seconds(5));
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable)
      << result.status;
  EXPECT_EQ(calls(), 2u);
  // After it, one call; the server answers and the outage is over.
  clock_.Advance(absl::Seconds(13));
  server_.service().AddAnswer({{Grants(1)}, grpc::Status::OK});
  server_.service().AddAnswer({{Grants(1)}, grpc::Status::OK});
  EXPECT_TRUE(tank.AwaitFuelUnlessLate(1, absl::Seconds(5)).ok());
  EXPECT_TRUE(tank.AwaitFuel(1, absl::ZeroDuration()).ok());
  EXPECT_EQ(calls(), 4u);
}

TEST_F(TankDegradationTest, AfterLocalShareForCallsFailFast) {
  server_.service().AddAnswer(
      {{PolicyGrant(v1::DEGRADATION_LOCAL_SHARE, 1, absl::Seconds(3))},
       grpc::Status::OK});
  server_.service().RepeatAnswer({{}, unavailable_});
  Tank tank(server_.address(), "crawl", DegradeOptions());
  ASSERT_TRUE(tank.AwaitFuelUnlessLate(1, absl::Seconds(5)).ok());
  EXPECT_TRUE(tank.AwaitFuel(1, absl::ZeroDuration()).ok());  // local
  clock_.Advance(absl::Seconds(2));
  EXPECT_TRUE(tank.AwaitFuel(1, absl::ZeroDuration()).ok());  // local
  // The next local grant (at 3 s) would come as local granting ends: a
  // late wait is too late, with no grant to expect.
  FuelResult result = tank.AwaitFuelUnlessLate(1, absl::Seconds(5));
  EXPECT_EQ(result.outcome, FuelOutcome::kTooLate) << result.status;
  EXPECT_EQ(result.expected_wait, absl::InfiniteDuration());
  clock_.Advance(absl::Seconds(1));
  result = tank.AwaitFuel(1, absl::ZeroDuration());
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kUnavailable)
      << result.status;
  EXPECT_NE(result.status.message().find("no local share left"),
            std::string::npos)
      << result.status;
  EXPECT_EQ(calls(), 2u);
}

TEST_F(TankDegradationTest, AServerAnswerTakesOverFromLocalGrants) {
  server_.service().AddAnswer(
      {{PolicyGrant(v1::DEGRADATION_LOCAL_SHARE, 1, absl::Seconds(60))},
       grpc::Status::OK});
  server_.service().AddAnswer({{}, unavailable_});
  Tank tank(server_.address(), "crawl", DegradeOptions());
  ASSERT_TRUE(tank.AwaitFuelUnlessLate(1, absl::Seconds(5)).ok());
  EXPECT_TRUE(tank.AwaitFuel(1, absl::ZeroDuration()).ok());  // local
  EXPECT_EQ(calls(), 2u);
  // Past the backoff a call is due before the local grant due too; the
  // server is back and answers.
  clock_.Advance(absl::Seconds(13));
  server_.service().AddAnswer(
      {{Grants(0, v1::END_REASON_WAIT_LIMIT_PASSED)}, grpc::Status::OK});
  EXPECT_EQ(tank.AwaitFuel(1, absl::ZeroDuration()).outcome,
            FuelOutcome::kTimedOut);
  EXPECT_EQ(calls(), 3u);
  // The outage is over: polls ask the server, not the local pacer.
  server_.service().AddAnswer(
      {{Grants(0, v1::END_REASON_WAIT_LIMIT_PASSED)}, grpc::Status::OK});
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(tank.AwaitFuel(1, absl::ZeroDuration()).outcome,
            FuelOutcome::kTimedOut);
  EXPECT_EQ(calls(), 4u);
}

TEST_F(TankDegradationTest, WaitPolicyCallsAsBefore) {
  server_.service().AddAnswer(
      {{PolicyGrant(v1::DEGRADATION_WAIT, 1)}, grpc::Status::OK});
  server_.service().RepeatAnswer({{}, unavailable_});
  Tank tank(server_.address(), "crawl", DegradeOptions());
  ASSERT_TRUE(tank.AwaitFuelUnlessLate(1, absl::Seconds(5)).ok());
  // Each poll calls the server, which is gone: not granted.
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(tank.AwaitFuel(1, absl::ZeroDuration()).outcome,
              FuelOutcome::kTimedOut);
  }
  EXPECT_EQ(calls(), 3u);
}

TEST(TankUnreachableTest, TimesOutWithinTimeout) {
  Tank tank(kUnreachable, "crawl");
  const absl::Time start = absl::Now();
  EXPECT_EQ(tank.AwaitFuel(absl::Milliseconds(100)).outcome,
            FuelOutcome::kTimedOut);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(tank.HasFuel().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(tank.Emit().code(), absl::StatusCode::kUnavailable);
}

TEST(ControllerTest, ReturnsResponsesAndMapsErrors) {
  FakeServer server;
  Controller controller(server.address());
  const absl::StatusOr<v1::StopResponse> stop = controller.Stop("known");
  ASSERT_TRUE(stop.ok()) << stop.status();
  EXPECT_EQ(stop->total_emissions(), 25);
  const absl::StatusOr<v1::StopResponse> missing = controller.Stop("other");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(missing.status().message(), "no throttle \"other\"");
  // Methods the fake does not implement answer UNIMPLEMENTED.
  EXPECT_EQ(controller.Mean("known").status().code(),
            absl::StatusCode::kUnimplemented);
}

TEST(ControllerTest, SendsConfigAndWindow) {
  FakeServer server;
  Controller controller(server.address());
  v1::ThrottleConfig config;
  config.set_max_n(4);
  config.set_per_seconds(1.5);
  config.set_mode(v1::MODE_BUCKET);
  const absl::StatusOr<v1::CreateThrottleResponse> created =
      controller.CreateThrottle("crawl", config);
  ASSERT_TRUE(created.ok()) << created.status();
  EXPECT_EQ(created->throttle().name(), "crawl");
  EXPECT_EQ(created->throttle().config().max_n(), 4);
  EXPECT_EQ(created->throttle().config().mode(), v1::MODE_BUCKET);

  ASSERT_TRUE(controller.Latest("crawl", absl::Milliseconds(2500)).ok());
  EXPECT_EQ(server.service().last_latest().window().seconds(), 2);
  EXPECT_EQ(server.service().last_latest().window().nanos(), 500000000);
  ASSERT_TRUE(controller.Latest("crawl").ok());
  EXPECT_EQ(server.service().last_latest().window().seconds(), 1);
}

TEST(ControllerTest, SendsCatchUp) {
  FakeServer server;
  Controller controller(server.address());
  v1::ThrottleConfig config;
  config.set_max_n(4);
  config.set_per_seconds(1);
  config.mutable_catch_up()->set_nanos(20000000);
  const absl::StatusOr<v1::CreateThrottleResponse> created =
      controller.CreateThrottle("crawl", config);
  ASSERT_TRUE(created.ok()) << created.status();
  ASSERT_TRUE(created->throttle().config().has_catch_up());
  EXPECT_EQ(created->throttle().config().catch_up().nanos(), 20000000);
}

TEST(ControllerTest, CloseEndsACallInFlightAndLaterCallsFailAtOnce) {
  FakeServer server;
  Controller controller(server.address());
  absl::Status in_flight;
  std::thread caller([&] { in_flight = controller.ListThrottles().status(); });
  ASSERT_TRUE(server.service().WaitForListCalls(1));
  controller.Close();
  caller.join();
  auto expect_closed = [](const absl::Status& status) {
    EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
    EXPECT_EQ(status.message(), "throttle::Controller is closed") << status;
  };
  expect_closed(in_flight);
  expect_closed(controller.Stop("known").status());
  expect_closed(controller.ListThrottles().status());
  expect_closed(controller.DeleteThrottle("known"));
  controller.Close();  // again: nothing happens
  expect_closed(controller.Start("known").status());
}

TEST(ControllerTest, UnreachableServerFailsFastWithUnavailable) {
  Controller controller(kUnreachable);
  const absl::Time start = absl::Now();
  EXPECT_EQ(controller.ListThrottles().status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
}

TEST(ControllerTest, WaitForReadyWaitsUntilDeadline) {
  ControllerOptions options;
  options.deadline = absl::Milliseconds(100);
  options.wait_for_ready = true;
  Controller controller(kUnreachable, options);
  EXPECT_EQ(controller.Start("x").status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace throttle
