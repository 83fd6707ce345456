// What the client library (client-lib/) reads from the machine's clocks,
// besides SteadyClock() (throttle/clock.h): gRPC deadlines, and sleeping on
// the monotonic clock. Private to the library; not installed. clock.cc is
// the one file that reads the real clocks.
#ifndef THROTTLE_CLIENT_LIB_SRC_REAL_TIME_H_
#define THROTTLE_CLIENT_LIB_SRC_REAL_TIME_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "grpc/support/time.h"

namespace throttle {

// The gRPC deadline `from_now` after this moment, for
// grpc::ClientContext::set_deadline: a wall-clock time point, which gRPC
// turns into its own monotonic deadline when the call starts. An infinite
// `from_now` gives the farthest time point (no deadline). Never blocks.
std::chrono::system_clock::time_point GrpcDeadlineAfter(
    absl::Duration from_now);

// Blocks on `cv` (with `lock` held) until `woken()` is true or `timeout`
// has passed on std::chrono::steady_clock; returns `woken()`. What `woken`
// reads is set under `lock`'s mutex (or before it is taken to notify), and
// whoever sets it notifies `cv`. Abseil 20220623's timed
// waits (absl::Mutex::AwaitWithTimeout, absl::CondVar) wait for a
// wall-clock time (FUTEX_CLOCK_REALTIME), so a step of the wall clock would
// stretch or cut them; this one waits on the monotonic clock. An infinite
// `timeout` waits for `woken` alone; zero or a negative one does not wait.
bool SteadyWaitFor(std::condition_variable& cv,
                   std::unique_lock<std::mutex>& lock, absl::Duration timeout,
                   absl::FunctionRef<bool()> woken);

// The deadline `from_now` after this moment on gRPC's monotonic clock, for
// grpc::CompletionQueue::AsyncNext: unlike a wall-clock time point, a step
// of the wall clock neither stretches nor cuts it. An infinite `from_now`
// gives no deadline; zero or a negative one gives now. Never blocks.
gpr_timespec MonotonicDeadlineAfter(absl::Duration from_now);

}  // namespace throttle

#endif  // THROTTLE_CLIENT_LIB_SRC_REAL_TIME_H_
