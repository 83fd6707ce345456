// The only file of the client library that reads the machine's clocks.
#include "throttle/clock.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/time/clock.h"
#include "client-lib/src/real_time.h"

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
                   const bool& woken) {
  if (timeout == absl::InfiniteDuration()) {
    cv.wait(lock, [&woken] { return woken; });
    return true;
  }
  // A bound that steady_clock::now() + timeout cannot overflow.
  constexpr absl::Duration kLongest = absl::Hours(24 * 365);
  const absl::Duration bounded =
      std::clamp(timeout, absl::ZeroDuration(), kLongest);
  return cv.wait_until(
      lock,
      std::chrono::steady_clock::now() + absl::ToChronoNanoseconds(bounded),
      [&woken] { return woken; });
}

}  // namespace throttle
