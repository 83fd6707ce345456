// The throttle table's hand-over of deliveries to stream sinks, with a
// scripted sink and a fake clock (no gRPC, no refill thread).
#include "server/service/throttle_table.h"

#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"
#include "server/service/refill_loop.h"
#include "tests/support/fake_clock.h"

namespace throttle::server {
namespace {

// Takes every delivery and records it ("grants" or "grants+end"); its first
// hand-over does not return until released, as a thread preempted in the
// middle of one would.
class SlowFirstSink final : public StreamSink {
 public:
  void Ref() override {}
  void Unref() override {}
  Rejected Deliver(const Delivery& delivery, absl::Time) override {
    bool first = false;
    {
      absl::MutexLock lock(&mu_);
      first = !started_;
      started_ = true;
    }
    if (first) {
      entered.Notify();
      EXPECT_TRUE(release.WaitForNotificationWithTimeout(absl::Seconds(60)));
    }
    absl::MutexLock lock(&mu_);
    std::string d = std::to_string(delivery.batch.grants);
    if (delivery.end != EndReason::kNone) d += "+end";
    taken_.push_back(d);
    return {};
  }
  std::vector<std::string> taken() const {
    absl::MutexLock lock(&mu_);
    return taken_;
  }

  absl::Notification entered;
  absl::Notification release;

 private:
  mutable absl::Mutex mu_;
  bool started_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::string> taken_ ABSL_GUARDED_BY(mu_);
};

// A stream gets its deliveries in the order the table collected them, also
// when the thread handing over the first is slow and another thread
// collects the next ones meanwhile. (Handed over out of order, a stream saw
// its end before a grant collected earlier, refused that grant, and its
// AwaitFuel call ended OK one grant short of its count.)
TEST(ThrottleTableTest, DeliveriesReachAStreamInTheOrderTheyWereCollected) {
  testing::FakeClock clock;
  RefillLoop loop{&clock};  // never started: kicks are only recorded
  ThrottleTable table{&clock, nullptr, &loop, TableOptions{}};
  ASSERT_TRUE(table.Create("t", ThrottleConfig{}).ok());  // 1 per second
  ASSERT_TRUE(table
                  .Transact("throttle", "t",
                            [](ThrottleTable::Entry& entry, absl::Time now,
                               ThrottleTable::Changes*) {
                              return entry.scheduler.Start(now);
                            })
                  .ok());
  SlowFirstSink sink;
  std::thread opener([&] {
    uint64_t uid = 0;
    StreamId id = 0;
    StreamRequest request;
    request.count = 3;
    // Its first grant comes at once, on this thread.
    EXPECT_TRUE(table.OpenStream(&sink, "t", request, "w", &uid, &id).ok());
  });
  ASSERT_TRUE(sink.entered.WaitForNotificationWithTimeout(absl::Seconds(60)));
  // While that hand-over is under way, this thread collects the other two
  // grants, the last with the stream's end.
  for (int i = 0; i < 2; ++i) {
    clock.Advance(absl::Seconds(1));
    table.AdvanceDue();
  }
  sink.release.Notify();
  opener.join();
  EXPECT_EQ(sink.taken(), (std::vector<std::string>{"1", "1", "1+end"}));
}

}  // namespace
}  // namespace throttle::server
