#include "server/service/refill_loop.h"

#include <utility>

namespace throttle::server {

void RefillLoop::Start(std::function<absl::Time()> advance) {
  advance_ = std::move(advance);
  thread_ = std::thread([this] { Run(); });
}

void RefillLoop::Kick(absl::Time due) {
  absl::MutexLock lock(&mu_);
  if (due < planned_) {
    planned_ = due;
    kicked_ = true;
  }
}

void RefillLoop::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

void RefillLoop::Run() {
  absl::MutexLock lock(&mu_);
  while (!stopping_) {
    planned_ = absl::InfiniteFuture();
    kicked_ = false;
    mu_.Unlock();
    const absl::Time next = advance_();
    mu_.Lock();
    if (kicked_ || stopping_) continue;
    planned_ = next;
    if (next <= clock_->Now()) continue;
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return kicked_ || stopping_;
    };
    clock_->WaitUntil(&mu_, absl::Condition(&wake), next);
  }
}

}  // namespace throttle::server
