// A clock that tests advance by hand. Thread-safe.
#ifndef THROTTLE_TESTS_FAKE_CLOCK_H_
#define THROTTLE_TESTS_FAKE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/clock.h"

namespace throttle::testing {

class FakeClock final : public server::Clock {
 public:
  // Starts at an arbitrary, fixed point of the timeline.
  FakeClock() : now_(absl::UnixEpoch() + absl::Hours(1)) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void AdvanceTo(absl::Time t) {
    absl::MutexLock lock(&mu_);
    if (t > now_) now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_FAKE_CLOCK_H_
