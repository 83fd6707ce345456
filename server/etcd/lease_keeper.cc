// LeaseKeeper (declared in etcd_client.h): keeps one lease alive from a
// thread of its own.
#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/etcd/etcd_client.h"

namespace throttle::etcd {
namespace {

// How soon a failed keepalive is tried again (unless `period` is shorter).
constexpr absl::Duration kRetryDelay = absl::Milliseconds(50);

}  // namespace

LeaseKeeper::LeaseKeeper(Client* client, int64_t lease,
                         absl::Time initial_deadline, absl::Duration period,
                         std::function<void(absl::Status why)> on_lost)
    : client_(client),
      lease_(lease),
      period_(period),
      on_lost_(std::move(on_lost)),
      deadline_(initial_deadline),
      ttl_(initial_deadline - absl::Now()),
      thread_([this] { Run(); }) {}

LeaseKeeper::~LeaseKeeper() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  thread_.join();
}

absl::Time LeaseKeeper::deadline() const {
  absl::MutexLock lock(&mu_);
  return deadline_;
}

void LeaseKeeper::SetDeadlineListener(
    std::function<void(absl::Time deadline)> listener) {
  absl::MutexLock lock(&mu_);
  listener_ = std::move(listener);
}

absl::Duration LeaseKeeper::Period() const {
  return period_ > absl::ZeroDuration() ? period_ : ttl_ / 3;
}

void LeaseKeeper::Run() {
  absl::Status last_error = absl::OkStatus();
  absl::Time next_send;
  {
    // The grant counts as the first answered keepalive.
    absl::MutexLock lock(&mu_);
    next_send = absl::Now() + Period();
  }
  while (true) {
    absl::Time deadline;
    {
      // Until the next keepalive is due, the deadline passes, or a stop.
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(&stopping_),
                            std::min(next_send, deadline_));
      if (stopping_) return;
      deadline = deadline_;
    }
    const absl::Time sent = absl::Now();
    if (sent >= deadline) break;
    // Answered by the lease's deadline or not at all: the keeper gives up
    // at the deadline, not rpc_timeout later.
    const absl::StatusOr<absl::Duration> ttl = client_->KeepAliveOnce(
        lease_, std::min(deadline, sent + client_->options().rpc_timeout));
    if (absl::IsNotFound(ttl.status())) {
      last_error = ttl.status();
      break;
    }
    std::function<void(absl::Time)> listener;
    {
      absl::MutexLock lock(&mu_);
      if (!ttl.ok()) {
        last_error = ttl.status();
        next_send = sent + std::min(kRetryDelay, Period());
        continue;
      }
      ttl_ = *ttl;
      next_send = sent + Period();
      if (deadline_ == sent + *ttl) continue;
      deadline_ = sent + *ttl;
      listener = listener_;
    }
    if (listener) listener(sent + *ttl);
  }
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
  }
  if (absl::IsNotFound(last_error)) {
    on_lost_(last_error);
    return;
  }
  on_lost_(absl::DeadlineExceededError(absl::StrCat(
      "etcd lease ", absl::Hex(lease_),
      ": no keepalive answered before its deadline",
      last_error.ok() ? "" : "; last error: ", last_error.message())));
}

}  // namespace throttle::etcd
