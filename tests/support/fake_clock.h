// A clock that tests advance by hand, so nothing waits in real time.
// Thread-safe.
#ifndef THROTTLE_TESTS_SUPPORT_FAKE_CLOCK_H_
#define THROTTLE_TESTS_SUPPORT_FAKE_CLOCK_H_

#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/clock.h"

namespace throttle::testing {

class FakeClock final : public server::Clock {
 public:
  // Starts at an arbitrary, fixed point of the timeline.
  FakeClock() : now_(absl::UnixEpoch() + absl::Hours(1)) {}

  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }

  // Waits for `condition`, or for Advance to reach `deadline`.
  bool WaitUntil(absl::Mutex* mu, const absl::Condition& condition,
                 absl::Time deadline) const override
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    {
      absl::MutexLock lock(&mu_);
      waiters_.push_back(mu);
    }
    struct Wait {
      const FakeClock* clock;
      const absl::Condition* condition;
      absl::Time deadline;
      bool Done() const {
        return condition->Eval() || clock->Now() >= deadline;
      }
    } wait{this, &condition, deadline};
    mu->Await(absl::Condition(&wait, &Wait::Done));
    {
      absl::MutexLock lock(&mu_);
      for (auto it = waiters_.begin(); it != waiters_.end(); ++it) {
        if (*it == mu) {
          waiters_.erase(it);
          break;
        }
      }
    }
    return condition.Eval();
  }

  void Advance(absl::Duration d) { AdvanceTo(Now() + d); }
  void AdvanceTo(absl::Time t) {
    std::vector<absl::Mutex*> waiters;
    {
      absl::MutexLock lock(&mu_);
      if (t > now_) now_ = t;
      waiters = waiters_;
    }
    // A waiter's condition is evaluated again when its mutex is released.
    for (absl::Mutex* mu : waiters) {
      mu->Lock();
      mu->Unlock();
    }
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
  mutable std::vector<absl::Mutex*> waiters_ ABSL_GUARDED_BY(mu_);
};

}  // namespace throttle::testing

#endif  // THROTTLE_TESTS_SUPPORT_FAKE_CLOCK_H_
