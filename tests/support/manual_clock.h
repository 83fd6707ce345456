// A throttle::Clock (client-lib) that moves only when a test says so.
#ifndef THROTTLE_TESTS_SUPPORT_MANUAL_CLOCK_H_
#define THROTTLE_TESTS_SUPPORT_MANUAL_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "throttle/clock.h"

namespace throttle::testing {

// Thread-safe.
class ManualClock final : public Clock {
 public:
  absl::Time Now() const override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_) = absl::UnixEpoch() + absl::Hours(1);
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_MANUAL_CLOCK_H_
