// Per-worker statistics through real gRPC on 127.0.0.1:0 with a fake
// clock: AwaitFuel and HasFuel grants and Emit counts attributed by
// worker_id, Latest's window and Mean's totals, the server's bound on
// tracked workers, and the fairness index.
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "server/service/throttle_server.h"
#include "tests/support/controller_calls.h"
#include "tests/support/fake_clock.h"
#include "tests/support/loopback_server.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {
namespace {

// "id:grants:emissions[:others]" per entry, in the order sent.
std::string Show(
    const google::protobuf::RepeatedPtrField<v1::WorkerStats>& workers) {
  std::string out;
  for (const v1::WorkerStats& w : workers) {
    absl::StrAppend(&out, out.empty() ? "" : " ", w.worker_id(), ":",
                    w.grants(), ":", w.emissions(),
                    w.others() ? ":others" : "");
  }
  return out;
}

class WorkerStatsServiceTest : public testing::LoopbackServerTest,
                               public testing::ControllerCalls {
 public:
  void SetUp() override {
    options_.clock = &clock_;
    options_.metrics_max_workers_per_throttle = 2;
    LoopbackServerTest::SetUp();
    stub_ = v1::Throttle::NewStub(channel_);
  }

  grpc::Status Create(const std::string& name, int64_t max_n,
                      bool manual_emit) {
    return CreateThrottle(name,
                          Rate(max_n, 1, v1::MODE_UNSPECIFIED, 0, manual_emit));
  }
  // One AwaitFuel stream of count 1 read to its end; returns its grants.
  int64_t AwaitOne(const std::string& name, const std::string& worker_id) {
    v1::AwaitFuelRequest request;
    request.set_throttle(name);
    request.set_count(1);
    request.set_worker_id(worker_id);
    auto context = Context();
    auto reader = stub_->AwaitFuel(context.get(), request);
    v1::AwaitFuelResponse response;
    int64_t grants = 0;
    while (reader->Read(&response)) grants += response.grants();
    EXPECT_TRUE(reader->Finish().ok());
    return grants;
  }
  bool HasFuel(const std::string& name, const std::string& worker_id) {
    v1::HasFuelRequest request;
    request.set_throttle(name);
    request.set_worker_id(worker_id);
    v1::HasFuelResponse response;
    EXPECT_TRUE(stub_->HasFuel(Context().get(), request, &response).ok());
    return response.granted();
  }
  v1::LatestResponse Latest(const std::string& name, absl::Duration window,
                            bool include_workers) {
    v1::LatestRequest request;
    request.set_throttle(name);
    request.mutable_window()->set_seconds(window / absl::Seconds(1));
    request.mutable_window()->set_nanos(static_cast<int32_t>(
        (window % absl::Seconds(1)) / absl::Nanoseconds(1)));
    request.set_include_workers(include_workers);
    v1::LatestResponse response;
    EXPECT_TRUE(stub_->Latest(Context().get(), request, &response).ok());
    return response;
  }

 protected:
  testing::FakeClock clock_;
};

TEST_F(WorkerStatsServiceTest, LatestAndMeanListWhatEachWorkerGot) {
  ASSERT_TRUE(
      Create("t", 10, /*manual_emit=*/false).ok());  // one grant every 100 ms
  ASSERT_TRUE(Start("t").ok());
  // a at 0 ms (the first is free at once), b at 100, a at 200, and c's
  // HasFuel at 300: c is the third worker, beyond the server's bound of 2.
  EXPECT_EQ(AwaitOne("t", "a"), 1);
  clock_.Advance(absl::Milliseconds(100));
  EXPECT_EQ(AwaitOne("t", "b"), 1);
  clock_.Advance(absl::Milliseconds(100));
  EXPECT_EQ(AwaitOne("t", "a"), 1);
  clock_.Advance(absl::Milliseconds(100));
  EXPECT_TRUE(HasFuel("t", "c"));

  const v1::MeanResponse mean = Mean("t", /*include_workers=*/true);
  EXPECT_EQ(Show(mean.workers()), "a:2:0 b:1:0 :1:0:others");
  EXPECT_DOUBLE_EQ(mean.runtime_seconds(), 0.3);
  EXPECT_DOUBLE_EQ(mean.workers(0).grants_per_second(), 2 / 0.3);
  // Over a and b (the others entry is not one worker): x = 2, 1.
  EXPECT_DOUBLE_EQ(mean.fairness_index(), 9.0 / 10);

  // (250, 300] ms overlaps the 100 ms buckets from 200 ms: a's second and
  // c's.
  const v1::LatestResponse latest =
      Latest("t", absl::Milliseconds(50), /*include_workers=*/true);
  EXPECT_EQ(Show(latest.workers()), "a:1:0 :1:0:others");
  EXPECT_DOUBLE_EQ(latest.workers(0).grants_per_second(), 1 / 0.05);
  EXPECT_EQ(Show(Latest("t", absl::Seconds(60), true).workers()),
            "a:2:0 b:1:0 :1:0:others");
  // A minute later the window holds none of them; the totals stay.
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(Show(Latest("t", absl::Seconds(60), true).workers()), "");
  EXPECT_EQ(Show(Mean("t", true).workers()), "a:2:0 b:1:0 :1:0:others");
}

TEST_F(WorkerStatsServiceTest, WorkersOnlyWhenAskedFairnessAlways) {
  ASSERT_TRUE(Create("t", 10, /*manual_emit=*/false).ok());
  ASSERT_TRUE(Start("t").ok());
  EXPECT_EQ(AwaitOne("t", "a"), 1);
  clock_.Advance(absl::Milliseconds(100));
  EXPECT_EQ(AwaitOne("t", "b"), 1);
  EXPECT_EQ(Latest("t", absl::Seconds(1), false).workers_size(), 0);
  const v1::MeanResponse mean = Mean("t", /*include_workers=*/false);
  EXPECT_EQ(mean.workers_size(), 0);
  EXPECT_DOUBLE_EQ(mean.fairness_index(), 1.0);
}

TEST_F(WorkerStatsServiceTest, AWorkerThatAskedAndGotNothingLowersFairness) {
  ASSERT_TRUE(Create("t", 10, /*manual_emit=*/false).ok());
  ASSERT_TRUE(Start("t").ok());
  EXPECT_TRUE(HasFuel("t", "a"));   // the free first grant
  EXPECT_FALSE(HasFuel("t", "b"));  // none left until 100 ms
  // One of two askers got everything: 1/2, the lowest for two.
  EXPECT_DOUBLE_EQ(Mean("t", false).fairness_index(), 0.5);
  EXPECT_EQ(Show(Mean("t", true).workers()), "a:1:0");
}

TEST_F(WorkerStatsServiceTest, EmitCountsEmissionsPerWorker) {
  ASSERT_TRUE(Create("m", 100, /*manual_emit=*/true).ok());
  ASSERT_TRUE(Start("m").ok());
  ASSERT_TRUE(Emit("m", 5, "x").ok());
  ASSERT_TRUE(Emit("m", 2, "y").ok());
  ASSERT_TRUE(Emit("m", 1, "x").ok());
  const v1::MeanResponse mean = Mean("m", /*include_workers=*/true);
  EXPECT_EQ(mean.total_emissions(), 8);
  // No grants: by worker_id; no fairness without a grant.
  EXPECT_EQ(Show(mean.workers()), "x:0:6 y:0:2");
  EXPECT_EQ(mean.fairness_index(), 0);
  EXPECT_EQ(Show(Latest("m", absl::Seconds(1), true).workers()), "x:0:6 y:0:2");
}

}  // namespace
}  // namespace throttle::server
