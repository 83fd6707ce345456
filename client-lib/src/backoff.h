// Reconnection delays of the client library (client-lib/): exponential
// backoff with jitter. Private to the library; not installed.
#ifndef THROTTLE_CLIENT_LIB_SRC_BACKOFF_H_
#define THROTTLE_CLIENT_LIB_SRC_BACKOFF_H_

#include "absl/random/bit_gen_ref.h"
#include "absl/time/time.h"

namespace throttle {

// Delays between reconnection attempts: `initial`, doubling after each
// attempt up to `max`, each multiplied by a random factor in [0.8, 1.2) so
// that workers which lost the same server do not all return at once.
//
// Not thread-safe: one Backoff per retry loop.
class Backoff {
 public:
  // `initial` is raised to 1 ms if smaller; `max` is raised to `initial` if
  // smaller.
  Backoff(absl::Duration initial, absl::Duration max);

  // Returns the delay to wait before the next attempt and advances the base
  // delay. Never blocks.
  absl::Duration NextDelay(absl::BitGenRef gen);

  // Starts again from `initial` (after a successful attempt).
  void Reset() { base_ = initial_; }

 private:
  absl::Duration initial_;
  absl::Duration max_;
  absl::Duration base_;
};

}  // namespace throttle

#endif  // THROTTLE_CLIENT_LIB_SRC_BACKOFF_H_
