// Waiting between reconnect attempts without stalling gRPC's own
// (client-lib/). Private to the library; not installed.
//
// gRPC's C-core makes progress on a channel's connection attempts -- sees
// a connect refused, or one accepted -- only while some thread polls a
// completion queue the channel knows of: a call's, or one watching the
// channel's state. Otherwise only its backup poller does, every 5 s
// (GRPC_CLIENT_CHANNEL_BACKUP_POLL_INTERVAL_MS). Between two attempts of a
// Tank no call is in flight, and while the server is lost under a
// degradation policy each attempt fails at once (no wait_for_ready): a
// waiter that slept out its backoff on a condition variable let each of
// the channel's connection attempts take 5 s, whatever its reconnect
// backoff, and came back to a restarted server up to 10 s late
// (docs/DECISIONS.md, "Reconnecting after an outage: the channel is
// polled between attempts").
#ifndef THROTTLE_CLIENT_LIB_SRC_CHANNEL_WATCH_H_
#define THROTTLE_CLIENT_LIB_SRC_CHANNEL_WATCH_H_

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "grpc/grpc.h"
#include "grpcpp/channel.h"

namespace throttle {

// How long WaitWatchingChannel waits at most before it asks `stop` again:
// what a wake-up (Tank::Close, a grant handed over) may be late by.
inline constexpr absl::Duration kChannelWatchStep = absl::Milliseconds(20);

// Waits up to `timeout` of monotonic time while watching `channel`'s
// state (asking it to connect if idle), so that its connection attempts go
// on at the channel's own reconnect backoff (ReconnectChannelArguments).
// Asks `stop` with the channel's state first, at each change of the state
// and at least every kChannelWatchStep; returns true as soon as it says
// so, false when the time is up. Thread-safe (each call has its own
// completion queue); `stop` runs on the calling thread.
bool WaitWatchingChannel(grpc::ChannelInterface* channel,
                         absl::Duration timeout,
                         absl::FunctionRef<bool(grpc_connectivity_state)> stop);

}  // namespace throttle

#endif  // THROTTLE_CLIENT_LIB_SRC_CHANNEL_WATCH_H_
