// The only file of the client library that reads the machine's clocks.
#include "throttle/clock.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/time/clock.h"
#include "client-lib/src/real_time.h"
#include "client-lib/src/steady_mutex.h"

namespace throttle {
namespace {

class SteadyClockImpl final : public Clock {
 public:
  absl::Time Now() const override {
    const auto since_boot = std::chrono::steady_clock::now().time_since_epoch();
    return absl::UnixEpoch() + absl::FromChrono(since_boot);
  }
};

}  // namespace

const Clock* SteadyClock() {
  static const SteadyClockImpl kClock;
  return &kClock;
}

std::chrono::system_clock::time_point GrpcDeadlineAfter(
    absl::Duration from_now) {
  return absl::ToChronoTime(absl::Now() + from_now);
}

bool SteadyWaitFor(std::condition_variable& cv,
                   std::unique_lock<std::mutex>& lock, absl::Duration timeout,
                   absl::FunctionRef<bool()> woken) {
  if (timeout == absl::InfiniteDuration()) {
    cv.wait(lock, woken);
    return true;
  }
  // A bound that steady_clock::now() + timeout cannot overflow.
  constexpr absl::Duration kLongest = absl::Hours(24 * 365);
  const absl::Duration bounded =
      std::clamp(timeout, absl::ZeroDuration(), kLongest);
  return cv.wait_until(
      lock,
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(bounded),
      woken);
}

gpr_timespec MonotonicDeadlineAfter(absl::Duration from_now) {
  if (from_now == absl::InfiniteDuration()) {
    return gpr_inf_future(GPR_CLOCK_MONOTONIC);
  }
  // A bound that now + from_now cannot overflow.
  constexpr absl::Duration kLongest = absl::Hours(24 * 365);
  const absl::Duration bounded =
      std::clamp(from_now, absl::ZeroDuration(), kLongest);
  return gpr_time_add(
      gpr_now(GPR_CLOCK_MONOTONIC),
      gpr_time_from_nanos(absl::ToInt64Nanoseconds(bounded), GPR_TIMESPAN));
}

void SteadyCondVar::WaitFor(SteadyMutex* mu, absl::Duration timeout) {
  // Borrows the held std::mutex for the wait and hands it back held.
  std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
  if (timeout == absl::InfiniteDuration()) {
    cv_.wait(lock);
  } else if (timeout > absl::ZeroDuration()) {
    constexpr absl::Duration kLongest = absl::Hours(24 * 365);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(std::min(timeout, kLongest)));
  }
  lock.release();
}

}  // namespace throttle
