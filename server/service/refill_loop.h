// The refill loop: the one thread that advances throttles when they fall
// due.
//
// Part of the service glue. It knows nothing of throttles: it calls the
// `advance` function it is started with, which advances whatever is due
// and returns when it must be called next, and sleeps until then -- through
// the injected Clock, so a fake clock's Advance wakes it in tests. A Kick
// with an earlier time wakes it sooner.
#ifndef THROTTLE_SERVER_SERVICE_REFILL_LOOP_H_
#define THROTTLE_SERVER_SERVICE_REFILL_LOOP_H_

#include <functional>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/service/clock.h"

namespace throttle::server {

// Thread-safe. Owns its thread and joins it in Stop or the destructor.
class RefillLoop {
 public:
  // `clock` is not owned and must outlive the loop.
  explicit RefillLoop(const Clock* clock) : clock_(clock) {}
  ~RefillLoop() { Stop(); }

  RefillLoop(const RefillLoop&) = delete;
  RefillLoop& operator=(const RefillLoop&) = delete;

  // Starts the thread. `advance` runs on it, never under the loop's own
  // mutex, and returns the time it must run next (InfiniteFuture: only
  // when kicked). Call once.
  void Start(std::function<absl::Time()> advance) ABSL_LOCKS_EXCLUDED(mu_);

  // Makes the loop run `advance` by `due` if it planned to run later. Never
  // blocks beyond the loop's short critical sections; may be called with
  // the caller's own mutexes held (the loop never holds its mutex while it
  // takes another).
  void Kick(absl::Time due) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops and joins the thread. Idempotent.
  void Stop() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Run() ABSL_LOCKS_EXCLUDED(mu_);

  const Clock* const clock_;
  std::function<absl::Time()> advance_;
  absl::Mutex mu_;
  // When the loop will next run `advance`; InfiniteFuture while it runs,
  // so that every kick meanwhile makes it run again.
  absl::Time planned_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_REFILL_LOOP_H_
