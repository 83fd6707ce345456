// Graceful degradation in the client library (client-lib/): what a Tank's
// waiters do while the server cannot be reached, by the throttle's policy
// as the server last told it (proto: ThrottleConfig.degradation).
//
// Pure logic on a clock the caller reads: no gRPC, no threads. The Acquire
// stream (acquire_stream.h) and the Tank's AwaitFuel calls (tank.cc, through
// the stream's one instance) tell it the policy and share of each grant
// message, that the server was lost or is back, and ask it what to do.
// Private to the library; not installed.
#ifndef THROTTLE_CLIENT_LIB_SRC_LOCAL_SHARE_H_
#define THROTTLE_CLIENT_LIB_SRC_LOCAL_SHARE_H_

#include <cstdint>

#include "absl/time/time.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle {

// Not thread-safe: the owner serialises all calls.
class LocalShare {
 public:
  // What waiters do at a point in time.
  enum class Action {
    kWait,      // the server is reachable, or the policy is to wait
    kLocal,     // grants come from Take, paced by the client's clock
    kFailFast,  // waits end at once with UNAVAILABLE
  };

  // Takes the policy and share of a grant message; a message that carries
  // no policy (degradation unspecified) changes nothing.
  void Update(const v1::AcquireResponse& response);
  // Same for the equivalent fields of an AwaitFuel answer.
  void Update(v1::Degradation degradation, absl::Duration local_share_for,
              double share_per_second);

  // The server could not be reached at `now` (the call ended UNAVAILABLE
  // or was cancelled by a server going away). The outage starts at the
  // first such call; later ones change nothing until ServerBack.
  void ServerLost(absl::Time now);
  // A message came from the server: local pacing stops at once.
  void ServerBack();

  bool outage() const { return lost_at_ != absl::InfiniteFuture(); }
  // What waiters do at `now`. kLocal only with DEGRADATION_LOCAL_SHARE, a
  // share above zero and less than local_share_for since the outage began;
  // after that (and with DEGRADATION_FAIL_FAST) kFailFast.
  Action ActionAt(absl::Time now) const;

  // Hands out up to `n` local grants at `now` (kLocal only, else 0): a
  // smooth limiter at the last share, so that from the outage's start
  // never more than share x elapsed + 1 grants (never more than one at
  // once). Returns how many.
  int64_t Take(int64_t n, absl::Time now);
  // When the next local grant, or the end of local granting, is due (for
  // how long a waiter may sleep); InfiniteFuture outside kLocal.
  absl::Time NextChange(absl::Time now) const;
  // When Take will next hand out a grant (now if one is due):
  // InfiniteFuture outside kLocal or when local granting ends first.
  absl::Time NextGrant(absl::Time now) const;

  double share_per_second() const { return share_per_second_; }
  v1::Degradation degradation() const { return degradation_; }

 private:
  v1::Degradation degradation_ = v1::DEGRADATION_WAIT;
  absl::Duration local_share_for_;
  double share_per_second_ = 0;
  absl::Time lost_at_ = absl::InfiniteFuture();
  // The earliest the next local grant may be handed out.
  absl::Time next_local_ = absl::InfinitePast();
};

}  // namespace throttle

#endif  // THROTTLE_CLIENT_LIB_SRC_LOCAL_SHARE_H_
