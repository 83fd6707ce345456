#include "client-lib/src/backoff.h"

#include <algorithm>

#include "absl/random/distributions.h"

namespace throttle {

Backoff::Backoff(absl::Duration initial, absl::Duration max)
    : initial_(std::max(initial, absl::Milliseconds(1))),
      max_(std::max(max, initial_)),
      base_(initial_) {}

absl::Duration Backoff::NextDelay(absl::BitGenRef gen) {
  const absl::Duration delay = base_ * absl::Uniform(gen, 0.8, 1.2);
  base_ = std::min(base_ * 2, max_);
  return delay;
}

}  // namespace throttle
