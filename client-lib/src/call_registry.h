// The calls in flight of one client object (Tank, Controller) of the client
// library (client-lib/), so that its Close() can cancel them, refuse later
// calls and wake a retry loop sleeping between attempts. Private to the
// library; not installed.
#ifndef THROTTLE_CLIENT_LIB_SRC_CALL_REGISTRY_H_
#define THROTTLE_CLIENT_LIB_SRC_CALL_REGISTRY_H_

#include <atomic>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_set.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/client_context.h"

namespace throttle {

// Thread-safe. Outlives every Call made on it.
class CallRegistry {
 public:
  // One call: owns its ClientContext and keeps it registered for as long as
  // the call runs, so that Close() can reach it.
  class Call {
   public:
    explicit Call(CallRegistry* registry);
    ~Call();

    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

    // False if the registry was closed before the call: do not make it.
    bool registered() const { return registered_; }
    grpc::ClientContext* context() { return &context_; }

   private:
    CallRegistry* const registry_;
    grpc::ClientContext context_;
    bool registered_ = false;
  };

  CallRegistry() = default;
  CallRegistry(const CallRegistry&) = delete;
  CallRegistry& operator=(const CallRegistry&) = delete;

  // Cancels every registered call (gRPC ends them with CANCELLED), refuses
  // later ones and wakes SleepUnlessClosed. Permanent; a second call does
  // nothing. Never blocks.
  void Close() ABSL_LOCKS_EXCLUDED(mu_);

  // Whether Close() was called. Never blocks.
  bool closed() const ABSL_LOCKS_EXCLUDED(mu_);

  // Waits for `delay` on the monotonic clock, or until Close(); returns
  // false if closed (before or during the wait).
  bool SleepUnlessClosed(absl::Duration delay) const;

  // As SleepUnlessClosed, and also returns false once `stop` is true: who
  // sets it calls WakeSleepers() after. (A ThrottleWatch's backoff, which
  // both its Cancel() and the Controller's Close() end.)
  bool SleepUnlessClosedOr(absl::Duration delay,
                           const std::atomic<bool>& stop) const;

  // Wakes every SleepUnlessClosedOr to look at its `stop`. Never blocks
  // beyond a brief lock.
  void WakeSleepers() const;

 private:
  mutable absl::Mutex mu_;
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  // Contexts of the calls in flight. Not owned: a context leaves the set
  // (under mu_) before it is destroyed.
  absl::flat_hash_set<grpc::ClientContext*> active_ ABSL_GUARDED_BY(mu_);

  // SleepUnlessClosed waits on a std::condition_variable, which waits on
  // steady_clock, not on an absl::Mutex timed wait, which waits for a
  // wall-clock time (client-lib/src/real_time.h). `woken_` is set with
  // closed_, under sleep_mu_ (std::mutex has no thread-safety annotations).
  mutable std::mutex sleep_mu_;
  mutable std::condition_variable sleep_cv_;
  bool woken_ = false;
};

}  // namespace throttle

#endif  // THROTTLE_CLIENT_LIB_SRC_CALL_REGISTRY_H_
