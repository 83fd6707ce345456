// Channels of the client library (client-lib/): the one place that sets the
// gRPC channel arguments of the channels a Tank or a Controller makes from a
// target name.
//
// gRPC reconnects a channel that lost its server on its own schedule, not
// the Tank's: by default the attempts come 1 s, then x1.6 (+-20%) up to
// 120 s apart, so after a 30 s outage a worker waited up to 16 s more for
// its next attempt, whatever the Tank's own 2 s backoff cap. The arguments
// here make the channel's reconnect backoff that of the Tank (TankOptions),
// so that a worker reconnects within about its own cap after any outage.
//
// A caller that makes its own channel (TLS credentials, a channel shared by
// a Tank and a Controller) passes ReconnectChannelArguments() to
// grpc::CreateCustomChannel to get the same behaviour.
#ifndef THROTTLE_CHANNEL_H_
#define THROTTLE_CHANNEL_H_

#include <memory>
#include <string>

#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "grpcpp/support/channel_arguments.h"

namespace throttle {

// The client library's default backoff between attempts, for its own
// retries (TankOptions) and for the channel's reconnection alike.
inline constexpr absl::Duration kDefaultBackoffInitial = absl::Milliseconds(50);
inline constexpr absl::Duration kDefaultBackoffMax = absl::Seconds(2);

// The least time gRPC gives one connection attempt (C-core's
// GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, default 20 s): long enough for a
// handshake with a busy server over a slow link, short enough that an
// attempt whose SYN went unanswered (the server's host down) gives way to a
// fresh one soon after the host is back.
inline constexpr absl::Duration kMinConnectTimeout = absl::Seconds(5);

// Channel arguments that make gRPC reconnect after `backoff_initial`, the
// delay growing (x1.6, +-20% jitter: gRPC's own policy) up to `backoff_max`
// (GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, GRPC_ARG_MAX_RECONNECT_BACKOFF_MS),
// with kMinConnectTimeout per attempt (GRPC_ARG_MIN_RECONNECT_BACKOFF_MS).
// Values are whole milliseconds, at least 1; `backoff_max` is raised to
// `backoff_initial` if smaller. Never blocks.
grpc::ChannelArguments ReconnectChannelArguments(
    absl::Duration backoff_initial = kDefaultBackoffInitial,
    absl::Duration backoff_max = kDefaultBackoffMax);

// An insecure channel to `target` (a gRPC target name such as "host:port")
// with ReconnectChannelArguments(backoff_initial, backoff_max). Does not
// block and does not fail: connection problems show up in the calls.
std::shared_ptr<grpc::Channel> CreateInsecureChannel(
    const std::string& target,
    absl::Duration backoff_initial = kDefaultBackoffInitial,
    absl::Duration backoff_max = kDefaultBackoffMax);

}  // namespace throttle

#endif  // THROTTLE_CHANNEL_H_
