#include "client-lib/src/call_registry.h"

#include "client-lib/src/real_time.h"

namespace throttle {

CallRegistry::Call::Call(CallRegistry* registry) : registry_(registry) {
  absl::MutexLock lock(&registry_->mu_);
  registered_ = !registry_->closed_;
  if (registered_) registry_->active_.insert(&context_);
}

CallRegistry::Call::~Call() {
  if (!registered_) return;
  absl::MutexLock lock(&registry_->mu_);
  registry_->active_.erase(&context_);
}

void CallRegistry::Close() {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    // Safe under mu_: a context leaves active_ (under mu_) before it is
    // destroyed. TryCancel does not block.
    for (grpc::ClientContext* context : active_) context->TryCancel();
  }
  {
    std::lock_guard<std::mutex> lock(sleep_mu_);
    woken_ = true;
  }
  sleep_cv_.notify_all();
}

bool CallRegistry::closed() const {
  absl::MutexLock lock(&mu_);
  return closed_;
}

bool CallRegistry::SleepUnlessClosed(absl::Duration delay) const {
  std::unique_lock<std::mutex> lock(sleep_mu_);
  return !SteadyWaitFor(sleep_cv_, lock, delay, [this] { return woken_; });
}

bool CallRegistry::SleepUnlessClosedOr(absl::Duration delay,
                                       const std::atomic<bool>& stop) const {
  std::unique_lock<std::mutex> lock(sleep_mu_);
  return !SteadyWaitFor(sleep_cv_, lock, delay,
                        [this, &stop] { return woken_ || stop.load(); });
}

void CallRegistry::WakeSleepers() const {
  // Taking the mutex orders the caller's store to `stop` before a
  // sleeper's check, so the notification is not lost.
  { std::lock_guard<std::mutex> lock(sleep_mu_); }
  sleep_cv_.notify_all();
}

}  // namespace throttle
