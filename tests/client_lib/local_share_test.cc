// LocalShare (client-lib/src/local_share.h): what a Tank's waiters do while
// the server is gone, on a manual clock. The pacing bound is asserted at
// every step: from the outage's start, never more than share x elapsed + 1
// local grants; none after local_share_for.
#include "client-lib/src/local_share.h"

#include <cmath>
#include <cstdint>

#include "absl/random/random.h"
#include "gtest/gtest.h"
#include "tests/support/manual_clock.h"

namespace throttle {
namespace {

using Action = LocalShare::Action;

// Takes every local grant due at `now` for a waiter that wants plenty.
int64_t TakeAll(LocalShare& local, absl::Time now) {
  int64_t got = 0;
  while (local.Take(1000, now) == 1) ++got;
  return got;
}

TEST(LocalShare, PacingNeverExceedsShareTimesElapsedPlusOne) {
  testing::ManualClock clock;
  LocalShare local;
  constexpr double kShare = 7.3;
  local.Update(v1::DEGRADATION_LOCAL_SHARE, absl::Seconds(60), kShare);
  const absl::Time lost = clock.Now();
  local.ServerLost(lost);
  absl::BitGen gen;
  int64_t total = 0;
  while (clock.Now() - lost < absl::Seconds(50)) {
    total += TakeAll(local, clock.Now());
    const double elapsed = absl::ToDoubleSeconds(clock.Now() - lost);
    ASSERT_LE(total, std::floor(kShare * elapsed) + 1) << "at " << elapsed;
    clock.Advance(absl::Milliseconds(absl::Uniform(gen, 1, 300)));
  }
  EXPECT_GT(total, 0);
}

TEST(LocalShare, AWaiterPolledOftenGetsAboutTheShare) {
  testing::ManualClock clock;
  LocalShare local;
  local.Update(v1::DEGRADATION_LOCAL_SHARE, absl::Seconds(20), 50);
  local.ServerLost(clock.Now());
  int64_t total = 0;
  for (int ms = 0; ms < 10000; ++ms) {
    total += TakeAll(local, clock.Now());
    clock.Advance(absl::Milliseconds(1));
  }
  EXPECT_LE(total, 501);
  EXPECT_GE(total, 490);  // 1 ms late per 20 ms grant at worst
}

TEST(LocalShare, StopsAfterLocalShareForThenFailsFast) {
  testing::ManualClock clock;
  LocalShare local;
  local.Update(v1::DEGRADATION_LOCAL_SHARE, absl::Seconds(2), 10);
  const absl::Time lost = clock.Now();
  local.ServerLost(lost);
  EXPECT_EQ(local.NextChange(lost), lost);
  int64_t total = 0;
  while (clock.Now() - lost < absl::Seconds(2)) {
    EXPECT_EQ(local.ActionAt(clock.Now()), Action::kLocal);
    total += TakeAll(local, clock.Now());
    clock.Advance(absl::Milliseconds(10));
  }
  EXPECT_EQ(total, 20);  // at 0, 0.1, ..., 1.9 s
  EXPECT_EQ(local.ActionAt(clock.Now()), Action::kFailFast);
  EXPECT_EQ(local.NextChange(clock.Now()), absl::InfiniteFuture());
  clock.Advance(absl::Seconds(5));
  EXPECT_EQ(TakeAll(local, clock.Now()), 0);
}

TEST(LocalShare, NextChangeIsTheNextGrantOrTheEndOfLocalGranting) {
  testing::ManualClock clock;
  LocalShare local;
  local.Update(v1::DEGRADATION_LOCAL_SHARE, absl::Milliseconds(250), 5);
  const absl::Time lost = clock.Now();
  local.ServerLost(lost);
  ASSERT_EQ(local.Take(1, lost), 1);
  EXPECT_LT(absl::AbsDuration(local.NextChange(lost) - lost -
                              absl::Milliseconds(200)),
            absl::Microseconds(1));
  EXPECT_EQ(local.Take(1, lost + absl::Milliseconds(150)), 0);
  ASSERT_EQ(local.Take(1, lost + absl::Milliseconds(200)), 1);
  // The next grant would be at 400 ms, after local granting ends.
  EXPECT_EQ(local.NextChange(lost + absl::Milliseconds(200)),
            lost + absl::Milliseconds(250));
}

TEST(LocalShare, ServerBackStopsLocalGrantsAtOnceAndANewOutageStartsAfresh) {
  testing::ManualClock clock;
  LocalShare local;
  local.Update(v1::DEGRADATION_LOCAL_SHARE, absl::Seconds(1), 10);
  local.ServerLost(clock.Now());
  clock.Advance(absl::Milliseconds(900));
  EXPECT_EQ(local.Take(1, clock.Now()), 1);
  local.ServerBack();
  EXPECT_FALSE(local.outage());
  EXPECT_EQ(local.ActionAt(clock.Now()), Action::kWait);
  clock.Advance(absl::Seconds(1));
  EXPECT_EQ(local.Take(1, clock.Now()), 0);
  // A second outage gets its own local_share_for, from its own start.
  local.ServerLost(clock.Now());
  clock.Advance(absl::Milliseconds(900));
  EXPECT_EQ(local.ActionAt(clock.Now()), Action::kLocal);
  // A second loss during the outage does not restart it.
  local.ServerLost(clock.Now());
  clock.Advance(absl::Milliseconds(200));
  EXPECT_EQ(local.ActionAt(clock.Now()), Action::kFailFast);
}

TEST(LocalShare, OtherPoliciesNeverGrantLocally) {
  testing::ManualClock clock;
  LocalShare wait;  // no policy told yet: wait, as without degradation
  wait.ServerLost(clock.Now());
  EXPECT_EQ(wait.ActionAt(clock.Now()), Action::kWait);
  EXPECT_EQ(wait.Take(1, clock.Now()), 0);

  LocalShare fail_fast;
  fail_fast.Update(v1::DEGRADATION_FAIL_FAST, absl::ZeroDuration(), 10);
  EXPECT_EQ(fail_fast.ActionAt(clock.Now()), Action::kWait);  // reachable
  fail_fast.ServerLost(clock.Now());
  EXPECT_EQ(fail_fast.ActionAt(clock.Now()), Action::kFailFast);
  EXPECT_EQ(fail_fast.Take(1, clock.Now()), 0);

  // Monitor-only has no share: nothing to go on at.
  LocalShare no_share;
  no_share.Update(v1::DEGRADATION_LOCAL_SHARE, absl::Seconds(10), 0);
  no_share.ServerLost(clock.Now());
  EXPECT_EQ(no_share.ActionAt(clock.Now()), Action::kFailFast);
  EXPECT_EQ(no_share.Take(1, clock.Now()), 0);
}

TEST(LocalShare, AMessageWithoutPolicyKeepsTheLastOne) {
  testing::ManualClock clock;
  LocalShare local;
  v1::AcquireResponse first;
  first.set_grants(1);
  first.set_degradation(v1::DEGRADATION_LOCAL_SHARE);
  first.mutable_local_share_for()->set_seconds(3);
  first.set_share_per_second(4);
  local.Update(first);
  v1::AcquireResponse plain;
  plain.set_grants(1);
  local.Update(plain);
  EXPECT_EQ(local.share_per_second(), 4);
  EXPECT_EQ(local.degradation(), v1::DEGRADATION_LOCAL_SHARE);
  local.ServerLost(clock.Now());
  clock.Advance(absl::Milliseconds(2900));
  EXPECT_EQ(local.ActionAt(clock.Now()), Action::kLocal);
  clock.Advance(absl::Milliseconds(100));
  EXPECT_EQ(local.ActionAt(clock.Now()), Action::kFailFast);
}

}  // namespace
}  // namespace throttle
