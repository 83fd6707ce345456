// throttle::Clock: the time source of the client library (client-lib/) for
// intervals.
//
// A Tank measures AwaitFuel's timeout, what is left of it for each call's
// wait limit and for each retry, on a monotonic clock, so that a step of the
// wall clock (NTP, a resumed VM, an operator) neither stretches nor cuts a
// wait. gRPC deadlines are still wall-clock points (gRPC takes them so), but
// each is computed from what is left of the monotonic wait just before its
// call starts. Tests hand a Tank a clock of their own through TankOptions.
#ifndef THROTTLE_CLOCK_H_
#define THROTTLE_CLOCK_H_

#include "absl/time/time.h"

namespace throttle {

// A monotonic time source. The absl::Time values it returns are points on a
// monotonic timeline (never going back), not wall-clock dates: only the
// differences between them mean anything.
//
// Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;

  // Returns the current time on this clock's timeline. Never blocks.
  virtual absl::Time Now() const = 0;
};

// Returns the process-wide clock of std::chrono::steady_clock. Never null;
// owned by the library, lives for the whole process.
const Clock* SteadyClock();

}  // namespace throttle

#endif  // THROTTLE_CLOCK_H_
