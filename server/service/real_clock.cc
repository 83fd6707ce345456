// The only file of the server that reads the machine's clocks.
#include <chrono>

#include "absl/time/clock.h"
#include "server/service/clock.h"

namespace throttle::server {
namespace {

class SteadyClock final : public Clock {
 public:
  absl::Time Now() const override {
    const auto since_boot = std::chrono::steady_clock::now().time_since_epoch();
    return absl::UnixEpoch() + absl::FromChrono(since_boot);
  }
  bool WaitUntil(absl::Mutex* mu, const absl::Condition& condition,
                 absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (deadline == absl::InfiniteFuture()) {
      mu->Await(condition);
      return true;
    }
    return mu->AwaitWithTimeout(condition, deadline - Now());
  }
  absl::Duration WallOffset() const override { return absl::Now() - Now(); }
};

}  // namespace

const Clock* RealClock() {
  static const SteadyClock kClock;
  return &kClock;
}

absl::Time WallNow() { return absl::Now(); }

}  // namespace throttle::server
