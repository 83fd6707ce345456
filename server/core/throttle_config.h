// The configuration of one throttle, as the scheduler core sees it.
//
// Part of the scheduler core (no gRPC). The service converts and validates
// the proto's ThrottleConfig into this struct at its boundary.
#ifndef THROTTLE_SERVER_CORE_THROTTLE_CONFIG_H_
#define THROTTLE_SERVER_CORE_THROTTLE_CONFIG_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "server/core/adaptive.h"
#include "server/core/limits.h"

namespace throttle::server {

// How a throttle shapes its grants; see proto/throttle/v1/throttle.proto.
enum class Mode {
  kSmooth,       // grants at least per/max_n apart
  kWindow,       // at most max_n in any sliding window of `per`
  kBucket,       // token bucket of capacity `burst`
  kUnbounded,    // credit accumulates: the mean rate over the run is held
  kMonitorOnly,  // no limit, counting only
};

// Returns "smooth", "window", "bucket", "unbounded" or "monitor-only".
const char* ModeName(Mode mode);

// The longest warm-up, and the fraction a ramp starts from by default.
inline constexpr absl::Duration kMaxWarmUp = absl::Hours(24 * 30);
inline constexpr double kDefaultWarmUpFrom = 1.0 / 3;
// The longest starvation bound.
inline constexpr absl::Duration kMaxStarvationBound = absl::Hours(24 * 30);

// What a throttle's client libraries do while its server cannot be
// reached (docs/DECISIONS.md, "Graceful degradation"). The server only
// passes it on to the grant streams.
enum class Degradation {
  kWait,        // waits go on while the client reconnects (the default)
  kFailFast,    // waits end at once with UNAVAILABLE
  kLocalShare,  // grants at the stream's last share, for local_share_for
};
// The longest local_share_for.
inline constexpr absl::Duration kMaxLocalShareFor = absl::Hours(1);

struct ThrottleConfig {
  int64_t max_n = 1;                      // grants per `per`, >= 1
  absl::Duration per = absl::Seconds(1);  // > 0
  Mode mode = Mode::kSmooth;
  int64_t burst = 0;         // kBucket only; 0 means max_n
  bool manual_emit = false;  // count emissions only through Emit
  // How far the schedule may lag real time and still be caught up; unset:
  // DefaultCatchUp(). In [0, per].
  std::optional<absl::Duration> catch_up;
  // Warm-up (docs/DECISIONS.md, "Warm-up"): after a Start from kCreated or
  // after a stop of at least `warm_up`, the rate ramps linearly from
  // warm_up_from x the rate to the full rate over `warm_up`. Zero: none. In
  // [0, kMaxWarmUp]. Ignored in monitor-only mode.
  absl::Duration warm_up;
  // The fraction the ramp starts from; 0 means kDefaultWarmUpFrom. In
  // [0, 1].
  double warm_up_from = 0;
  // Priorities (docs/DECISIONS.md, "Priorities"): a class with waiting
  // streams below the highest waiting class that got no grant for this
  // long gets the next grant. Zero: none (a lower class waits while a
  // higher one waits). In [0, kMaxStarvationBound].
  absl::Duration starvation_bound;

  // The adaptive ceiling (server/core/adaptive.h): set, the rate in effect
  // moves in [adaptive->floor_n, max_n] by the outcomes workers report.
  // Limited modes only.
  std::optional<AdaptiveConfig> adaptive;

  Degradation degradation = Degradation::kWait;
  // kLocalShare only: how long a client may grant locally, in
  // (0, kMaxLocalShareFor]; zero otherwise.
  absl::Duration local_share_for;

  // The bucket capacity in effect: burst, or max_n when burst is 0.
  int64_t EffectiveBurst() const { return burst > 0 ? burst : max_n; }
  // The catch-up in effect: catch_up, or DefaultCatchUp().
  absl::Duration EffectiveCatchUp() const;
  // 1% of `per`, but at least one grant's spacing (per / max_n): a loop
  // late by less than a grant loses nothing at any rate, and a stall adds
  // at most 1% of max_n (or one grant) to any window of real time.
  absl::Duration DefaultCatchUp() const;
  // The fraction a ramp starts from: warm_up_from, or kDefaultWarmUpFrom.
  double EffectiveWarmUpFrom() const {
    return warm_up_from > 0 ? warm_up_from : kDefaultWarmUpFrom;
  }
  // Whether a Start may begin a ramp: a warm-up set, in a limited mode.
  bool WarmUpApplies() const {
    return warm_up > absl::ZeroDuration() && mode != Mode::kMonitorOnly;
  }
  // Whether the catch-up bound applies: not in unbounded mode (which
  // catches up by design) nor monitor-only (no schedule).
  bool CatchUpApplies() const {
    return mode != Mode::kUnbounded && mode != Mode::kMonitorOnly;
  }
};

// Checks a configuration against the limits of server/limits.h. Returns
// INVALID_ARGUMENT naming the field (as the proto spells it) and its value when
// one is out of range, OK otherwise.
absl::Status ValidateConfig(const ThrottleConfig& config);

// How many grants a server reserves at a time for a throttle with durable
// state (docs/DECISIONS.md, "Durable state"): what the configured rate
// hands out in `ahead`, and at least 2, so one reservation is always
// ahead of use. Also the most a takeover can lose.
int64_t ReservationChunk(const ThrottleConfig& config, absl::Duration ahead);

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_THROTTLE_CONFIG_H_
