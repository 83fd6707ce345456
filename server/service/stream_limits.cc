#include "server/service/stream_limits.h"

#include "absl/strings/str_cat.h"

namespace throttle::server {

StreamLimits::Slot::~Slot() { limits_->Release(client_); }

absl::StatusOr<std::unique_ptr<StreamLimits::Slot>> StreamLimits::Admit(
    const std::string& client) {
  {
    absl::MutexLock lock(&mu_);
    if (open_ >= per_server_) {
      if (metrics_ != nullptr) metrics_->CountLimitReached("max_streams");
      return absl::ResourceExhaustedError(
          absl::StrCat("--max_streams: this server has ", open_,
                       " open streams (AwaitFuel and Acquire), its limit"));
    }
    int64_t& mine = per_client_open_[client];
    if (mine >= per_client_) {
      if (mine == 0) per_client_open_.erase(client);
      if (metrics_ != nullptr) {
        metrics_->CountLimitReached("max_streams_per_client");
      }
      return absl::ResourceExhaustedError(
          absl::StrCat("--max_streams_per_client: \"", client, "\" has ", mine,
                       " open streams (AwaitFuel and Acquire), its limit"));
    }
    ++mine;
    ++open_;
  }
  return std::unique_ptr<Slot>(new Slot(this, client));
}

void StreamLimits::Release(const std::string& client) {
  absl::MutexLock lock(&mu_);
  --open_;
  auto it = per_client_open_.find(client);
  if (it != per_client_open_.end() && --it->second == 0) {
    per_client_open_.erase(it);
  }
}

bool StreamLimits::AwaitOpen(int64_t n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto reached = [this, n]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return open_ == n; };
  return mu_.AwaitWithTimeout(absl::Condition(&reached), timeout);
}

int64_t StreamLimits::open() const {
  absl::MutexLock lock(&mu_);
  return open_;
}

}  // namespace throttle::server
