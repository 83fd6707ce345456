// The throttle table's per-worker counts with scripted stream sinks and a
// fake clock (no gRPC, no refill thread): grants count when handed to a
// stream and are uncounted when they come back, whichever way they do --
// refused by the sink, or queued and lost when the stream went away.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "server/service/refill_loop.h"
#include "server/service/throttle_table.h"
#include "tests/support/fake_clock.h"

namespace throttle::server {
namespace {

// Takes what it is handed (and records it), or refuses it as a stream that
// is gone does.
class ScriptedSink final : public StreamSink {
 public:
  explicit ScriptedSink(bool refuse) : refuse_(refuse) {}
  void Ref() override {}
  void Unref() override {}
  Rejected Deliver(const Delivery& delivery, absl::Time) override {
    Rejected rejected;
    if (delivery.batch.grants == 0) return rejected;
    if (refuse_) {
      rejected.grants.push_back(delivery.batch);
      rejected.gone = true;
    } else {
      taken.push_back(delivery.batch);
    }
    return rejected;
  }
  std::vector<GrantBatch> taken;

 private:
  const bool refuse_;
};

class WorkerStatsTableTest : public ::testing::Test {
 public:
  void SetUp() override {
    ASSERT_TRUE(table_.Create("t", ThrottleConfig{}).ok());  // 1 per second
    ASSERT_TRUE(table_
                    .Transact("throttle", "t",
                              [](ThrottleTable::Entry& entry, absl::Time now,
                                 ThrottleTable::Changes*) {
                                return entry.scheduler.Start(now);
                              })
                    .ok());
  }

  // "id:grants" per worker since the start, and the throttle's grants.
  std::string Counted() {
    std::string out;
    EXPECT_TRUE(
        table_
            .Read("throttle", "t",
                  [&](const ThrottleTable::Entry& entry, absl::Time) {
                    for (const WorkerCounts& c : entry.workers.Totals()) {
                      absl::StrAppend(&out, c.worker_id, ":", c.grants, " ");
                    }
                    absl::StrAppend(&out, "total:", entry.grants);
                  })
            .ok());
    return out;
  }

 protected:
  testing::FakeClock clock_;
  RefillLoop loop_{&clock_};  // never started: kicks are only recorded
  ThrottleTable table_{&clock_, nullptr, &loop_, TableOptions{}};
};

TEST_F(WorkerStatsTableTest, GrantsTheSinkRefusesAreNotCounted) {
  ScriptedSink refusing(/*refuse=*/true);
  uint64_t uid = 0;
  StreamId id = 0;
  StreamRequest request;
  request.count = 0;  // until stopped
  ASSERT_TRUE(table_.OpenStream(&refusing, "t", request, "a", &uid, &id).ok());
  // The free first grant went to a's sink and came back: a asked, got none.
  EXPECT_EQ(Counted(), "total:0");

  ScriptedSink taking(/*refuse=*/false);
  ASSERT_TRUE(table_.OpenStream(&taking, "t", request, "b", &uid, &id).ok());
  ASSERT_EQ(taking.taken.size(), 1u);
  EXPECT_EQ(Counted(), "b:1 total:1");
  table_.CloseStream(uid, id, {});
}

TEST_F(WorkerStatsTableTest, GrantsQueuedForAStreamThatWentAwayAreUncounted) {
  ScriptedSink taking(/*refuse=*/false);
  uint64_t uid = 0;
  StreamId id = 0;
  StreamRequest request;
  request.count = 0;
  request.weight = 2;
  ASSERT_TRUE(table_.OpenStream(&taking, "t", request, "a", &uid, &id).ok());
  clock_.Advance(absl::Seconds(1));
  table_.AdvanceDue();
  ASSERT_EQ(taking.taken.size(), 2u);
  EXPECT_EQ(Counted(), "a:2 total:2");
  // The stream is cancelled with its last batch still queued (as the
  // reactor's OnCancel gives back what it had not written).
  table_.CloseStream(uid, id, {taking.taken.back()});
  EXPECT_EQ(Counted(), "a:1 total:1");
}

}  // namespace
}  // namespace throttle::server
