// Helpers shared by the scheduler core's tests (fake time, no gRPC).
#ifndef THROTTLE_TESTS_CORE_SCHEDULER_TEST_UTIL_H_
#define THROTTLE_TESTS_CORE_SCHEDULER_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <vector>

#include "absl/time/time.h"
#include "server/core/scheduler.h"

namespace throttle::server::testing {

inline const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

inline ThrottleConfig Config(int64_t max_n, absl::Duration per, Mode mode,
                             int64_t burst = 0) {
  ThrottleConfig config;
  config.max_n = max_n;
  config.per = per;
  config.mode = mode;
  config.burst = burst;
  return config;
}

// An on-demand (Acquire) stream with its first demand.
inline StreamRequest OnDemand(int64_t demand, int64_t weight = 1) {
  StreamRequest request;
  request.count = demand;
  request.weight = weight;
  request.on_demand = true;
  return request;
}

// Calls Advance at every wake-up from `from` up to `until`.
inline void RunUntil(Scheduler& scheduler, absl::Time from, absl::Time until,
                     std::vector<StreamEvent>* events) {
  absl::Time t = from;
  while (t <= until) {
    scheduler.Advance(t, events);
    const absl::Time next = scheduler.NextWakeup();
    if (next > until) return;
    t = std::max(next, t + absl::Nanoseconds(1));
  }
}

// Most grants in any half-open window [t, t + per) of the sorted times.
inline int64_t MaxInWindow(const std::vector<absl::Time>& sorted,
                           absl::Duration per) {
  int64_t best = 0;
  size_t lo = 0;
  for (size_t hi = 0; hi < sorted.size(); ++hi) {
    while (sorted[hi] - sorted[lo] >= per) ++lo;
    best = std::max<int64_t>(best, static_cast<int64_t>(hi - lo + 1));
  }
  return best;
}

// The nominal time of every grant in `events`, in their order.
inline std::vector<absl::Time> TimesOf(const std::vector<StreamEvent>& events) {
  std::vector<absl::Time> times;
  for (const StreamEvent& e : events) {
    for (int64_t i = 0; i < e.grants; ++i) {
      times.push_back(e.granted_at + e.spacing * i);
    }
  }
  return times;
}

}  // namespace throttle::server::testing

#endif  // THROTTLE_TESTS_CORE_SCHEDULER_TEST_UTIL_H_
