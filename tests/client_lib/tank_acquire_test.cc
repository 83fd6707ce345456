// Unit tests of Tank::AwaitFuel on the Acquire stream
// (client-lib/src/acquire_stream.h) against an in-process fake of the
// Acquire method that answers each stream from a plan. The real server is
// tested by tests/integration/integration_test.cc.
#include <cstdint>
#include <deque>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server.h"
#include "grpcpp/server_builder.h"
#include "gtest/gtest.h"
#include "throttle/tank.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle {
namespace {

// How one Acquire stream of the fake is answered.
struct Plan {
  // Grants sent against demand before the stream ends.
  int64_t grants = std::numeric_limits<int64_t>::max();
  // Whether the last message says END_REASON_STOPPED, and its grants.
  bool stop = false;
  int64_t stop_grants = 0;
  // The status the stream ends with.
  grpc::Status status;
  // Never grants nor ends: waits until the client cancels.
  bool hold = false;
};

// The Acquire method, answering each stream from the next plan (or
// granting every demand at once when there is none), recording every
// message.
class FakeAcquire final : public v1::Throttle::Service {
 public:
  void AddPlan(Plan plan) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    plans_.push_back(std::move(plan));
  }

  // The messages of stream `i` so far.
  std::vector<v1::AcquireRequest> messages(size_t i) const
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return i < streams_.size() ? streams_[i]
                               : std::vector<v1::AcquireRequest>();
  }

  size_t streams() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return streams_.size();
  }

  // Waits (up to 30 s) until stream `i` has `n` messages.
  bool WaitForMessages(size_t i, size_t n) const ABSL_LOCKS_EXCLUDED(mu_) {
    auto arrived = [this, i, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return i < streams_.size() && streams_[i].size() >= n;
    };
    const bool ok =
        mu_.LockWhenWithTimeout(absl::Condition(&arrived), absl::Seconds(30));
    mu_.Unlock();
    return ok;
  }

  grpc::Status Acquire(
      grpc::ServerContext*,
      grpc::ServerReaderWriter<v1::AcquireResponse, v1::AcquireRequest>* stream)
      override {
    Plan plan;
    size_t index;
    {
      absl::MutexLock lock(&mu_);
      if (!plans_.empty()) {
        plan = std::move(plans_.front());
        plans_.pop_front();
      }
      index = streams_.size();
      streams_.emplace_back();
    }
    int64_t outstanding = 0;
    v1::AcquireRequest request;
    while (stream->Read(&request)) {
      {
        absl::MutexLock lock(&mu_);
        streams_[index].push_back(request);
      }
      if (plan.hold) continue;
      outstanding = std::max<int64_t>(outstanding - request.withdraw(), 0) +
                    request.demand();
      const int64_t grants = std::min(outstanding, plan.grants);
      if (grants > 0) {
        v1::AcquireResponse response;
        response.set_grants(grants);
        stream->Write(response);
        outstanding -= grants;
        plan.grants -= grants;
      }
      if (plan.grants == 0) break;
    }
    if (plan.hold) return grpc::Status::CANCELLED;
    if (plan.stop) {
      v1::AcquireResponse response;
      response.set_grants(plan.stop_grants);
      response.set_end(v1::END_REASON_STOPPED);
      stream->Write(response);
    }
    return plan.status;
  }

 private:
  mutable absl::Mutex mu_;
  std::deque<Plan> plans_ ABSL_GUARDED_BY(mu_);
  std::vector<std::vector<v1::AcquireRequest>> streams_ ABSL_GUARDED_BY(mu_);
};

class TankAcquireTest : public ::testing::Test {
 protected:
  TankAcquireTest() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  ~TankAcquireTest() override {
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  }

  static TankOptions Options() {
    TankOptions options;
    options.worker_id = "worker-1";
    options.weight = 2;
    options.backoff_initial = absl::Milliseconds(1);
    options.backoff_max = absl::Milliseconds(4);
    return options;
  }

  FakeAcquire service_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

constexpr absl::Duration kGenerous = absl::Seconds(30);

TEST_F(TankAcquireTest, OneStreamCarriesEveryAwaitWithItsIdentityFirst) {
  Tank tank(address_, "crawl", Options());
  for (int i = 0; i < 5; ++i) {
    const FuelResult result = tank.AwaitFuel(kGenerous);
    EXPECT_EQ(result.outcome, FuelOutcome::kFuel) << i;
    EXPECT_EQ(result.grants, 1) << i;
  }
  EXPECT_FALSE(tank.killed());
  ASSERT_EQ(service_.streams(), 1u);
  const std::vector<v1::AcquireRequest> messages = service_.messages(0);
  ASSERT_EQ(messages.size(), 5u);
  EXPECT_EQ(messages[0].throttle(), "crawl");
  EXPECT_EQ(messages[0].worker_id(), "worker-1");
  EXPECT_EQ(messages[0].weight(), 2);
  for (const v1::AcquireRequest& message : messages) {
    EXPECT_EQ(message.demand(), 1);
    EXPECT_EQ(message.withdraw(), 0);
  }
  EXPECT_EQ(messages[1].throttle(), "");
}

TEST_F(TankAcquireTest, CountedAwaitAsksForNAtOnce) {
  Tank tank(address_, "crawl", Options());
  const FuelResult result = tank.AwaitFuel(7, kGenerous);
  EXPECT_EQ(result.outcome, FuelOutcome::kFuel);
  EXPECT_EQ(result.grants, 7);
  ASSERT_EQ(service_.messages(0).size(), 1u);
  EXPECT_EQ(service_.messages(0)[0].demand(), 7);
}

TEST_F(TankAcquireTest, CountedAwaitRejectsABadCountWithoutACall) {
  Tank tank(address_, "crawl", Options());
  for (int64_t n : {int64_t{0}, int64_t{-1}, int64_t{1000001}}) {
    const FuelResult result = tank.AwaitFuel(n, kGenerous);
    EXPECT_EQ(result.outcome, FuelOutcome::kError) << n;
    EXPECT_EQ(result.status.code(), absl::StatusCode::kInvalidArgument) << n;
  }
  EXPECT_EQ(service_.streams(), 0u);
}

TEST_F(TankAcquireTest, TimeoutWithdrawsWhatTheWaiterStillMisses) {
  Plan plan;
  plan.hold = true;
  service_.AddPlan(plan);
  Tank tank(address_, "crawl", Options());
  const FuelResult result = tank.AwaitFuel(3, absl::Milliseconds(50));
  EXPECT_EQ(result.outcome, FuelOutcome::kTimedOut);
  EXPECT_EQ(result.grants, 0);
  ASSERT_TRUE(service_.WaitForMessages(0, 2));
  EXPECT_EQ(service_.messages(0)[0].demand(), 3);
  EXPECT_EQ(service_.messages(0)[1].withdraw(), 3);
  EXPECT_EQ(service_.messages(0)[1].demand(), 0);
  EXPECT_FALSE(tank.killed());
}

TEST_F(TankAcquireTest, PartialGrantsBeforeATimeoutAreReported) {
  Plan plan;
  plan.grants = 2;  // then the stream ends UNAVAILABLE
  plan.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "going away");
  service_.AddPlan(plan);
  Plan hold;
  hold.hold = true;
  service_.AddPlan(hold);
  Tank tank(address_, "crawl", Options());
  const FuelResult result = tank.AwaitFuel(5, absl::Seconds(2));
  EXPECT_EQ(result.outcome, FuelOutcome::kTimedOut);
  EXPECT_EQ(result.grants, 2);
  // The second stream asked for what was still missing.
  ASSERT_TRUE(service_.WaitForMessages(1, 1));
  EXPECT_EQ(service_.messages(1)[0].demand(), 3);
  EXPECT_EQ(service_.messages(1)[0].throttle(), "crawl");
}

TEST_F(TankAcquireTest, ReopensAfterUnavailableAndCancelledByTheServer) {
  Plan unavailable;
  unavailable.grants = 0;
  unavailable.status = grpc::Status(grpc::StatusCode::UNAVAILABLE, "restart");
  service_.AddPlan(unavailable);
  Plan cancelled = unavailable;
  cancelled.status = grpc::Status::CANCELLED;
  service_.AddPlan(cancelled);
  Tank tank(address_, "crawl", Options());
  const FuelResult result = tank.AwaitFuel(2, kGenerous);
  EXPECT_EQ(result.outcome, FuelOutcome::kFuel);
  EXPECT_EQ(result.grants, 2);
  EXPECT_EQ(service_.streams(), 3u);
}

TEST_F(TankAcquireTest, StopGivesItsGrantsToTheFirstWaitersAndStopsTheRest) {
  Plan stop;
  stop.grants = 0;
  stop.stop = true;
  stop.stop_grants = 1;
  service_.AddPlan(stop);
  Plan stopped = stop;
  stopped.stop_grants = 0;
  service_.AddPlan(stopped);
  Tank tank(address_, "crawl", Options());
  const FuelResult first = tank.AwaitFuel(kGenerous);
  EXPECT_EQ(first.outcome, FuelOutcome::kFuel);
  EXPECT_TRUE(tank.killed());
  const FuelResult second = tank.AwaitFuel(kGenerous);
  EXPECT_EQ(second.outcome, FuelOutcome::kStopped);
  EXPECT_EQ(second.grants, 0);
  EXPECT_TRUE(tank.killed());
  // A grant after the stop clears killed().
  EXPECT_TRUE(tank.AwaitFuel(kGenerous).ok());
  EXPECT_FALSE(tank.killed());
}

TEST_F(TankAcquireTest, OtherErrorsEndTheWaiterAndTheNextAwaitOpensAgain) {
  Plan missing;
  missing.grants = 0;
  missing.status = grpc::Status(grpc::StatusCode::NOT_FOUND, "no \"crawl\"");
  service_.AddPlan(missing);
  Tank tank(address_, "crawl", Options());
  const FuelResult result = tank.AwaitFuel(kGenerous);
  EXPECT_EQ(result.outcome, FuelOutcome::kError);
  EXPECT_EQ(result.status.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(result.status.message(), "no \"crawl\"");
  EXPECT_TRUE(tank.AwaitFuel(kGenerous).ok());
  EXPECT_EQ(service_.streams(), 2u);
}

TEST_F(TankAcquireTest, CloseEndsEveryWaiter) {
  Plan plan;
  plan.hold = true;
  service_.AddPlan(plan);
  Tank tank(address_, "crawl", Options());
  std::vector<FuelResult> results(3);
  std::vector<std::thread> threads;
  for (FuelResult& result : results) {
    threads.emplace_back([&tank, &result] { result = tank.AwaitFuel(); });
  }
  ASSERT_TRUE(service_.WaitForMessages(0, 1));
  tank.Close();
  for (std::thread& thread : threads) thread.join();
  for (const FuelResult& result : results) {
    EXPECT_EQ(result.outcome, FuelOutcome::kError);
    EXPECT_EQ(result.status.code(), absl::StatusCode::kCancelled);
    EXPECT_EQ(result.status.message(), "throttle::Tank is closed");
  }
}

TEST_F(TankAcquireTest, ThreadsSharingOneStreamEachGetTheirGrants) {
  Tank tank(address_, "crawl", Options());
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::vector<int64_t> fuel(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&tank, &fuel, t] {
      for (int i = 0; i < kPerThread; ++i) {
        const FuelResult result = tank.AwaitFuel(1 + i % 3, kGenerous);
        if (result.ok()) fuel[t] += result.grants;
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  int64_t expected = 0;
  for (int i = 0; i < kPerThread; ++i) expected += 1 + i % 3;
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(fuel[t], expected) << t;
  EXPECT_EQ(service_.streams(), 1u);
}

}  // namespace
}  // namespace throttle
