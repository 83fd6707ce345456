#include "client-lib/src/local_share.h"

#include <algorithm>

#include "client-lib/src/proto_time.h"

namespace throttle {

void LocalShare::Update(const v1::AcquireResponse& response) {
  Update(response.degradation(), FromProtoDuration(response.local_share_for()),
         response.share_per_second());
}

void LocalShare::Update(v1::Degradation degradation,
                        absl::Duration local_share_for,
                        double share_per_second) {
  if (degradation == v1::DEGRADATION_UNSPECIFIED) return;
  degradation_ = degradation;
  local_share_for_ = local_share_for;
  share_per_second_ = share_per_second;
}

void LocalShare::ServerLost(absl::Time now) {
  if (outage()) return;
  lost_at_ = now;
  next_local_ = now;
}

void LocalShare::ServerBack() {
  lost_at_ = absl::InfiniteFuture();
  next_local_ = absl::InfinitePast();
}

LocalShare::Action LocalShare::ActionAt(absl::Time now) const {
  if (!outage()) return Action::kWait;
  switch (degradation_) {
    case v1::DEGRADATION_FAIL_FAST:
      return Action::kFailFast;
    case v1::DEGRADATION_LOCAL_SHARE:
      // Written so that a NaN share grants nothing.
      return share_per_second_ > 0 && now - lost_at_ < local_share_for_
                 ? Action::kLocal
                 : Action::kFailFast;
    default:
      return Action::kWait;
  }
}

int64_t LocalShare::Take(int64_t n, absl::Time now) {
  if (n <= 0 || ActionAt(now) != Action::kLocal || now < next_local_) {
    return 0;
  }
  // One grant, then the next a whole spacing later: a waiter that comes
  // late does not make up for the time nobody waited.
  next_local_ = now + absl::Seconds(1 / share_per_second_);
  return 1;
}

absl::Time LocalShare::NextChange(absl::Time now) const {
  if (ActionAt(now) != Action::kLocal) return absl::InfiniteFuture();
  return std::min(std::max(next_local_, now), lost_at_ + local_share_for_);
}

absl::Time LocalShare::NextGrant(absl::Time now) const {
  if (ActionAt(now) != Action::kLocal) return absl::InfiniteFuture();
  const absl::Time next = std::max(next_local_, now);
  return next - lost_at_ < local_share_for_ ? next : absl::InfiniteFuture();
}

}  // namespace throttle
