// Unit tests of throttle::ThrottleWatch (throttle/watch.h) against an
// in-process fake of the WatchThrottle method that answers each stream from
// a plan: what the request carries, snapshots in order, the errors that end
// a watch, reconnection after UNAVAILABLE, Next()'s timeout, Cancel() and
// Controller::Close() waking a blocked Next() and freeing the stream. The
// real server is tested by watch_server_test.cc.
#include <cstdint>
#include <deque>
#include <future>
#include <memory>
#include <string>
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
#include "throttle/controller.h"
#include "throttle/watch.h"

namespace throttle {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(30);

// How one WatchThrottle stream of the fake is answered.
struct Plan {
  // Snapshots sent at once.
  int64_t snapshots = 0;
  // Then: stay open, sending what Push() gives, until the client cancels;
  // or end with `status`.
  bool hold = false;
  grpc::Status status;
};

// `snapshots`, then stays open.
Plan Held(int64_t snapshots) {
  Plan plan;
  plan.snapshots = snapshots;
  plan.hold = true;
  return plan;
}

// `snapshots`, then ends with `code` and `message`.
Plan Ends(int64_t snapshots, grpc::StatusCode code,
          const std::string& message = "") {
  Plan plan;
  plan.snapshots = snapshots;
  plan.status = grpc::Status(code, message);
  return plan;
}

class FakeWatch final : public v1::Throttle::Service {
 public:
  void AddPlan(Plan plan) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    plans_.push_back(std::move(plan));
  }

  // One more snapshot for the held stream.
  void Push() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    ++pushed_;
  }

  std::vector<v1::WatchThrottleRequest> requests() const
      ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return requests_;
  }

  // Waits (up to kGenerous) until a held stream saw its client cancel.
  bool WaitForCancelled() const ABSL_LOCKS_EXCLUDED(mu_) {
    const bool ok =
        mu_.LockWhenWithTimeout(absl::Condition(&cancelled_seen_), kGenerous);
    mu_.Unlock();
    return ok;
  }

  grpc::Status WatchThrottle(
      grpc::ServerContext* context, const v1::WatchThrottleRequest* request,
      grpc::ServerWriter<v1::WatchThrottleResponse>* writer) override {
    Plan plan;
    {
      absl::MutexLock lock(&mu_);
      if (!plans_.empty()) {
        plan = std::move(plans_.front());
        plans_.pop_front();
      }
      requests_.push_back(*request);
    }
    for (int64_t i = 0; i < plan.snapshots; ++i)
      Send(request->throttle(), writer);
    if (!plan.hold) return plan.status;
    // A sync handler learns of the cancel only by asking: it looks every
    // few milliseconds (the fake's own pace; no test waits on it).
    while (!context->IsCancelled()) {
      bool push = false;
      {
        absl::MutexLock lock(&mu_);
        auto pushed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return pushed_ > 0;
        };
        mu_.AwaitWithTimeout(absl::Condition(&pushed), absl::Milliseconds(5));
        if (pushed_ > 0) {
          --pushed_;
          push = true;
        }
      }
      if (push) Send(request->throttle(), writer);
    }
    absl::MutexLock lock(&mu_);
    cancelled_seen_ = true;
    return grpc::Status::CANCELLED;
  }

 private:
  // A snapshot whose total_emissions numbers it: 1, 2, ... over all streams.
  void Send(const std::string& throttle,
            grpc::ServerWriter<v1::WatchThrottleResponse>* writer)
      ABSL_LOCKS_EXCLUDED(mu_) {
    v1::WatchThrottleResponse response;
    response.mutable_throttle()->set_name(throttle);
    {
      absl::MutexLock lock(&mu_);
      response.mutable_throttle()->set_total_emissions(++sent_);
    }
    writer->Write(response);
  }

  mutable absl::Mutex mu_;
  std::deque<Plan> plans_ ABSL_GUARDED_BY(mu_);
  std::vector<v1::WatchThrottleRequest> requests_ ABSL_GUARDED_BY(mu_);
  int64_t pushed_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t sent_ ABSL_GUARDED_BY(mu_) = 0;
  bool cancelled_seen_ ABSL_GUARDED_BY(mu_) = false;
};

class ThrottleWatchTest : public ::testing::Test {
 protected:
  ThrottleWatchTest() {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(),
                             &port);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    controller_ =
        std::make_unique<Controller>("127.0.0.1:" + std::to_string(port));
  }
  ~ThrottleWatchTest() override {
    controller_.reset();
    server_->Shutdown(absl::ToChronoTime(absl::Now() + absl::Seconds(2)));
  }

  static WatchOptions FastBackoff() {
    WatchOptions options;
    options.backoff_initial = absl::Milliseconds(10);
    options.backoff_max = absl::Milliseconds(50);
    return options;
  }

  FakeWatch service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<Controller> controller_;
};

int64_t Number(const absl::StatusOr<v1::WatchThrottleResponse>& snapshot) {
  return snapshot.ok() ? snapshot->throttle().total_emissions() : -1;
}

TEST_F(ThrottleWatchTest, SnapshotsArriveInOrderAndTheRequestCarriesOptions) {
  service_.AddPlan(Held(3));
  WatchOptions options;
  options.interval = absl::Seconds(2);
  options.window = absl::Milliseconds(500);
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl", options);
  EXPECT_EQ(watch->throttle(), "crawl");
  for (int64_t i = 1; i <= 3; ++i) {
    absl::StatusOr<v1::WatchThrottleResponse> snapshot = watch->Next();
    ASSERT_TRUE(snapshot.ok()) << snapshot.status();
    EXPECT_EQ(snapshot->throttle().name(), "crawl");
    EXPECT_EQ(Number(snapshot), i);
  }
  const std::vector<v1::WatchThrottleRequest> requests = service_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_EQ(requests[0].throttle(), "crawl");
  EXPECT_EQ(requests[0].interval().seconds(), 2);
  EXPECT_EQ(requests[0].interval().nanos(), 0);
  EXPECT_EQ(requests[0].window().seconds(), 0);
  EXPECT_EQ(requests[0].window().nanos(), 500'000'000);
}

TEST_F(ThrottleWatchTest, ZeroOptionsLeaveTheServersDefaults) {
  service_.AddPlan(Held(1));
  WatchOptions options;
  options.interval = absl::ZeroDuration();
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl", options);
  ASSERT_TRUE(watch->Next().ok());
  const std::vector<v1::WatchThrottleRequest> requests = service_.requests();
  ASSERT_EQ(requests.size(), 1u);
  EXPECT_FALSE(requests[0].has_interval());
  EXPECT_FALSE(requests[0].has_window());
}

TEST_F(ThrottleWatchTest, NotFoundEndsTheWatchForGood) {
  service_.AddPlan(
      Ends(1, grpc::StatusCode::NOT_FOUND, "no throttle named 'crawl'"));
  std::unique_ptr<ThrottleWatch> watch =
      controller_->Watch("crawl", FastBackoff());
  EXPECT_EQ(Number(watch->Next()), 1);
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<v1::WatchThrottleResponse> end = watch->Next();
    EXPECT_EQ(end.status().code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(end.status().message(), "no throttle named 'crawl'");
  }
  EXPECT_EQ(service_.requests().size(), 1u);  // no reconnect
}

TEST_F(ThrottleWatchTest, InvalidArgumentEndsTheWatchWithTheServersMessage) {
  service_.AddPlan(Ends(0, grpc::StatusCode::INVALID_ARGUMENT,
                        "interval: 0.01s is not in [100ms, 60s]"));
  std::unique_ptr<ThrottleWatch> watch =
      controller_->Watch("crawl", FastBackoff());
  absl::StatusOr<v1::WatchThrottleResponse> end = watch->Next();
  EXPECT_EQ(end.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(end.status().message(), "interval: 0.01s is not in [100ms, 60s]");
  EXPECT_EQ(service_.requests().size(), 1u);
}

TEST_F(ThrottleWatchTest, ALostStreamIsOpenedAgain) {
  // Lost (UNAVAILABLE), then cancelled by the server (as by its shutdown),
  // then open: three streams, the watch sees every snapshot.
  service_.AddPlan(Ends(1, grpc::StatusCode::UNAVAILABLE, "going away"));
  service_.AddPlan(Ends(1, grpc::StatusCode::CANCELLED));
  service_.AddPlan(Held(1));
  std::unique_ptr<ThrottleWatch> watch =
      controller_->Watch("crawl", FastBackoff());
  for (int64_t i = 1; i <= 3; ++i) {
    absl::StatusOr<v1::WatchThrottleResponse> snapshot = watch->Next();
    ASSERT_TRUE(snapshot.ok()) << i << ": " << snapshot.status();
    EXPECT_EQ(Number(snapshot), i);
  }
  EXPECT_EQ(service_.requests().size(), 3u);
}

TEST_F(ThrottleWatchTest, WithoutReconnectUnavailableEndsTheWatch) {
  service_.AddPlan(Ends(1, grpc::StatusCode::UNAVAILABLE, "going away"));
  WatchOptions options = FastBackoff();
  options.reconnect = false;
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl", options);
  EXPECT_EQ(Number(watch->Next()), 1);
  EXPECT_EQ(watch->Next().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(watch->Next().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(service_.requests().size(), 1u);
}

TEST_F(ThrottleWatchTest, ATimeoutIsDeadlineExceededAndTheWatchGoesOn) {
  service_.AddPlan(Held(1));
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl");
  EXPECT_EQ(Number(watch->Next()), 1);
  EXPECT_EQ(watch->Next(absl::Milliseconds(50)).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(watch->Next(absl::ZeroDuration()).status().code(),
            absl::StatusCode::kDeadlineExceeded);
  service_.Push();
  EXPECT_EQ(Number(watch->Next()), 2);
  EXPECT_EQ(service_.requests().size(), 1u);
}

// Runs watch->Next() on another thread.
std::future<absl::StatusOr<v1::WatchThrottleResponse>> NextAsync(
    ThrottleWatch* watch) {
  return std::async(std::launch::async, [watch] { return watch->Next(); });
}

TEST_F(ThrottleWatchTest, CancelWakesABlockedNextAndFreesTheStream) {
  service_.AddPlan(Held(1));
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl");
  EXPECT_EQ(Number(watch->Next()), 1);
  auto blocked = NextAsync(watch.get());
  watch->Cancel();
  ASSERT_EQ(blocked.wait_for(absl::ToChronoSeconds(kGenerous)),
            std::future_status::ready);
  const absl::Status end = blocked.get().status();
  EXPECT_EQ(end.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(end.message(), "throttle::ThrottleWatch is cancelled");
  EXPECT_TRUE(service_.WaitForCancelled());
  EXPECT_EQ(watch->Next().status(), end);  // for good
  watch->Cancel();                         // again: nothing
}

TEST_F(ThrottleWatchTest, CancelWakesANextSleepingOutTheBackoff) {
  service_.AddPlan(Ends(0, grpc::StatusCode::UNAVAILABLE, "going away"));
  WatchOptions options;
  options.backoff_initial = absl::Hours(1);
  options.backoff_max = absl::Hours(1);
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl", options);
  auto blocked = NextAsync(watch.get());
  ASSERT_EQ(blocked.wait_for(std::chrono::milliseconds(200)),
            std::future_status::timeout);
  watch->Cancel();
  ASSERT_EQ(blocked.wait_for(absl::ToChronoSeconds(kGenerous)),
            std::future_status::ready);
  EXPECT_EQ(blocked.get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(service_.requests().size(), 1u);
}

TEST_F(ThrottleWatchTest, ControllerCloseWakesANextSleepingOutTheBackoff) {
  service_.AddPlan(Ends(0, grpc::StatusCode::UNAVAILABLE, "going away"));
  WatchOptions options;
  options.backoff_initial = absl::Hours(1);
  options.backoff_max = absl::Hours(1);
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl", options);
  auto blocked = NextAsync(watch.get());
  ASSERT_EQ(blocked.wait_for(std::chrono::milliseconds(200)),
            std::future_status::timeout);
  controller_->Close();
  ASSERT_EQ(blocked.wait_for(absl::ToChronoSeconds(kGenerous)),
            std::future_status::ready);
  const absl::Status end = blocked.get().status();
  EXPECT_EQ(end.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(end.message(), "throttle::Controller is closed");
  EXPECT_EQ(service_.requests().size(), 1u);
}

TEST_F(ThrottleWatchTest, ControllerCloseEndsTheWatch) {
  service_.AddPlan(Held(1));
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl");
  EXPECT_EQ(Number(watch->Next()), 1);
  auto blocked = NextAsync(watch.get());
  controller_->Close();
  ASSERT_EQ(blocked.wait_for(absl::ToChronoSeconds(kGenerous)),
            std::future_status::ready);
  const absl::Status end = blocked.get().status();
  EXPECT_EQ(end.code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(end.message(), "throttle::Controller is closed");
  EXPECT_TRUE(service_.WaitForCancelled());
  // A watch made after Close() opens nothing.
  std::unique_ptr<ThrottleWatch> later = controller_->Watch("crawl");
  EXPECT_EQ(later->Next().status(), end);
  EXPECT_EQ(service_.requests().size(), 1u);
}

TEST_F(ThrottleWatchTest, DestroyingAnOpenWatchFreesTheStream) {
  service_.AddPlan(Held(1));
  std::unique_ptr<ThrottleWatch> watch = controller_->Watch("crawl");
  EXPECT_EQ(Number(watch->Next()), 1);
  watch.reset();
  EXPECT_TRUE(service_.WaitForCancelled());
}

}  // namespace
}  // namespace throttle
