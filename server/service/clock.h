// Time source of the server, injected everywhere time matters.
//
// Used by the service glue (the scheduler core is handed times, not a
// clock). Everything that reads the time or waits for it is handed a Clock;
// only real_clock.cc reads the machine's clock, and tests use a fake clock
// they advance by hand (tests/support/fake_clock.h).
#ifndef THROTTLE_SERVER_SERVICE_CLOCK_H_
#define THROTTLE_SERVER_SERVICE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace throttle::server {

// A monotonic time source. The absl::Time values it returns are points on a
// monotonic timeline (never going back), not wall-clock dates: only
// differences between them mean anything.
//
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  // Returns the current monotonic time. Never blocks.
  virtual absl::Time Now() const = 0;

  // Blocks until `condition` holds or this clock reaches `deadline`
  // (absl::InfiniteFuture(): no deadline), releasing `mu` while it waits,
  // like absl::Mutex::Await. Returns whether the condition holds. Waiting
  // goes through the clock so that a fake clock's Advance wakes it.
  virtual bool WaitUntil(absl::Mutex* mu, const absl::Condition& condition,
                         absl::Time deadline) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) = 0;

  // Wall-clock time minus Now(): what turns a point of this clock into a
  // date that another process or host understands (stored state, lease
  // deadlines, the grant log) and back. A fake clock's is zero.
  virtual absl::Duration WallOffset() const { return absl::ZeroDuration(); }

  absl::Time ToWall(absl::Time t) const { return t + WallOffset(); }
  absl::Time FromWall(absl::Time wall) const { return wall - WallOffset(); }
};

// Returns the process-wide monotonic clock (std::chrono::steady_clock).
// Never null; owned by the library, lives for the whole process.
const Clock* RealClock();

// The wall-clock time, for timestamps in logs only (never for intervals).
absl::Time WallNow();

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_CLOCK_H_
