#include "client-lib/src/channel_watch.h"

#include "client-lib/src/real_time.h"
#include "grpc/support/time.h"
#include "grpcpp/completion_queue.h"

namespace throttle {

bool WaitWatchingChannel(
    grpc::ChannelInterface* channel, absl::Duration timeout,
    absl::FunctionRef<bool(grpc_connectivity_state)> stop) {
  const gpr_timespec until = MonotonicDeadlineAfter(timeout);
  grpc::CompletionQueue queue;
  bool stopped = false;
  for (;;) {
    const grpc_connectivity_state state =
        channel->GetState(/*try_to_connect=*/true);
    if (stop(state)) {
      stopped = true;
      break;
    }
    const gpr_timespec step = MonotonicDeadlineAfter(kChannelWatchStep);
    if (gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), until) >= 0) break;
    // The watch's one event: a change of state, or its deadline. Polling
    // the queue meanwhile is what drives the channel's connection.
    channel->NotifyOnStateChange(state, gpr_time_min(step, until), &queue,
                                 nullptr);
    void* tag = nullptr;
    bool ok = false;
    if (!queue.Next(&tag, &ok)) break;
  }
  // Nothing is pending on the queue: each watch was waited for.
  queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (queue.Next(&tag, &ok)) {
  }
  return stopped;
}

}  // namespace throttle
