// Every limit of the service, in one place: what a configuration and a
// request may ask for (docs/DECISIONS.md, "Limits", lists them for
// clients). Beyond a limit the service answers INVALID_ARGUMENT naming the
// field and the value sent.
//
// Part of the scheduler core (Abseil only).
#ifndef THROTTLE_SERVER_CORE_LIMITS_H_
#define THROTTLE_SERVER_CORE_LIMITS_H_

#include <cstddef>
#include <cstdint>
#include <limits>

#include "absl/time/time.h"

namespace throttle::server {

// --- A throttle's configuration ---
inline constexpr int64_t kMaxMaxN = 1'000'000'000;
inline constexpr int64_t kMaxWindowModeMaxN = 1'000'000;    // memory of the log
inline constexpr double kMaxPerSeconds = 30.0 * 24 * 3600;  // 30 days
inline constexpr double kMaxRatePerSecond = 10'000'000.0;   // max_n / per
// Below this no max_n >= 1 keeps within kMaxRatePerSecond.
inline constexpr double kMinPerSeconds = 1 / kMaxRatePerSecond;

// --- A request ---
inline constexpr size_t kMaxNameLength = 128;      // throttle names, bytes
inline constexpr size_t kMaxWorkerIdLength = 128;  // bytes
inline constexpr int64_t kMaxStreamCount = 1'000'000'000;  // AwaitFuel count
inline constexpr int64_t kMaxWeight = 1000;                // AwaitFuel weight
inline constexpr int64_t kMaxEmitCount = 1'000'000;        // Emit count
inline constexpr int64_t kMaxDemand = 1'000'000;  // Acquire demand, a message
// Acquire: the outstanding demand of one stream.
inline constexpr int64_t kMaxOutstandingDemand = 1'000'000'000;
// Priority classes (AwaitFuel/Acquire priority): 0..kMaxPriority, higher
// served first; unset is kDefaultPriority, the lowest.
inline constexpr int64_t kMaxPriority = 9;
inline constexpr int64_t kDefaultPriority = 0;
inline constexpr int kPriorityClasses = static_cast<int>(kMaxPriority) + 1;
// Latest's window; also how much history the monitor keeps.
inline constexpr absl::Duration kMaxLatestWindow = absl::Seconds(60);

// a + b for counts >= 0, held at INT64_MAX instead of overflowing: totals
// are counters that must never wrap to a negative number.
inline int64_t SaturatingAdd(int64_t a, int64_t b) {
  return a > std::numeric_limits<int64_t>::max() - b
             ? std::numeric_limits<int64_t>::max()
             : a + b;
}

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_LIMITS_H_
