// The adaptive ceiling's rate is durable right after a step: the real
// server in-process on 127.0.0.1:0 with a fake clock and a state
// directory. A step moves the rate without any emission (no worker takes
// fuel), which used to leave the record as it was until something else
// stored the throttle; a copy of the directory taken then is what a crash
// leaves, and a fresh server on it must restore the new rate.
//
// The fake clock drives the throttle; the persister's statistics write
// runs on its own thread every real second, so the test waits for it on a
// condition with a generous deadline (it asserts no timing).
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "server/state/file_store.h"
#include "tests/support/state_dir_server.h"

namespace throttle::server {
namespace {

constexpr absl::Duration kGenerous = absl::Seconds(30);

class AdaptiveDurableTest : public testing::StateDirServerTest {
 public:
  AdaptiveDurableTest()
      : StateDirServerTest("/tmp/throttle-adaptive-durable-test-XXXXXX") {}
  void TearDown() override {
    StateDirServerTest::TearDown();
    std::system(absl::StrCat("rm -rf ", Crashed()).c_str());
  }

  // Where a copy of the state directory goes: what a crash leaves.
  std::string Crashed() const { return dir_ + "-crashed"; }
  // Copies the state directory to Crashed() now and returns the rate the
  // record of `name` holds there (-1 without a record or an adaptive
  // rate).
  int64_t RateLeftByACrash(const std::string& name) {
    const std::string crashed = Crashed();
    std::system(
        absl::StrCat("rm -rf ", crashed, " && cp -a ", dir_, " ", crashed)
            .c_str());
    auto store = OpenFileStore(crashed);
    if (!store.ok()) return -1;
    auto records = (*store)->LoadAll();
    if (!records.ok()) return -1;
    for (const ThrottleRecord& record : *records) {
      if (record.name() == name && record.has_adaptive()) {
        return record.adaptive().rate_n();
      }
    }
    return -1;
  }
  grpc::Status Report(const std::string& name, int64_t successes,
                      int64_t rejections, int64_t* current) {
    v1::ReportRequest request;
    request.set_throttle(name);
    request.set_successes(successes);
    request.set_rejections(rejections);
    v1::ReportResponse response;
    grpc::Status status = stub_->Report(Context().get(), request, &response);
    *current = response.current_max_n();
    return status;
  }
};

TEST_F(AdaptiveDurableTest, AStepIsStoredAtTheNextWriteAndSurvivesACrash) {
  // 100 per second, halved by a window of rejections (at least 1 outcome).
  v1::ThrottleConfig config = Rate(100);
  config.mutable_adaptive()->set_min_outcomes(1);
  ASSERT_TRUE(CreateThrottle("t", config).ok());
  ASSERT_TRUE(Start("t").ok());  // stored before it is answered
  ASSERT_EQ(RateLeftByACrash("t"), 100);

  int64_t current = 0;
  ASSERT_TRUE(Report("t", 0, 10, &current).ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(Report("t", 0, 0, &current).ok());  // closes the window
  ASSERT_EQ(current, 50);

  // Nothing was emitted: only the step marks the record for the
  // persister's next statistics write.
  const absl::Time deadline = absl::Now() + kGenerous;
  int64_t stored = RateLeftByACrash("t");
  while (stored != 50 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    stored = RateLeftByACrash("t");
  }
  ASSERT_EQ(stored, 50) << "the step was not stored within " << kGenerous;

  // A fresh server on what the crash left (not on the directory this
  // server stores everything into at its orderly shutdown).
  StopServer();
  auto store = OpenFileStore(Crashed());
  ASSERT_TRUE(store.ok()) << store.status();
  store_ = *std::move(store);
  options_.store = store_.get();
  StartServer();
  EXPECT_EQ(Listed("t").current_max_n(), 50);
}

}  // namespace
}  // namespace throttle::server
