// A mutex and a condition variable whose timed waits run on the monotonic
// clock, for the client library (client-lib/). Abseil 20220623's timed
// waits are on the wall clock (client-lib/src/real_time.h), so a waiter of
// the Acquire stream (client-lib/src/acquire_stream.h) would sleep an hour
// too long after the wall clock stepped back an hour. Wraps std::mutex and
// std::condition_variable with the thread-safety annotations that clang's
// -Wthread-safety checks. Private to the library; not installed.
#ifndef THROTTLE_CLIENT_LIB_SRC_STEADY_MUTEX_H_
#define THROTTLE_CLIENT_LIB_SRC_STEADY_MUTEX_H_

#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/time.h"

namespace throttle {

class ABSL_LOCKABLE SteadyMutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  friend class SteadyCondVar;
  std::mutex mu_;
};

// Holds a SteadyMutex for its scope.
class ABSL_SCOPED_LOCKABLE SteadyMutexLock {
 public:
  explicit SteadyMutexLock(SteadyMutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu)
      : mu_(mu) {
    mu_->Lock();
  }
  ~SteadyMutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }

  SteadyMutexLock(const SteadyMutexLock&) = delete;
  SteadyMutexLock& operator=(const SteadyMutexLock&) = delete;

 private:
  SteadyMutex* const mu_;
};

// Thread-safe.
class SteadyCondVar {
 public:
  // Releases `mu` and blocks until Signal(), until `timeout` has passed on
  // std::chrono::steady_clock, or spuriously; then holds `mu` again. The
  // caller checks its condition after. An infinite `timeout` waits for a
  // signal alone; zero or a negative one does not wait. Defined in
  // client-lib/src/clock.cc, the file that reads the clocks.
  void WaitFor(SteadyMutex* mu, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);

  // Wakes the waiter, if any. Never blocks.
  void Signal() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

}  // namespace throttle

#endif  // THROTTLE_CLIENT_LIB_SRC_STEADY_MUTEX_H_
