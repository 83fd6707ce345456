#include "throttle/channel.h"

#include <algorithm>
#include <cstdint>
#include <limits>

#include "grpc/grpc.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"

namespace throttle {
namespace {

// Whole milliseconds in [1, INT_MAX], as gRPC's integer arguments take them.
int Millis(absl::Duration d) {
  const int64_t ms = absl::ToInt64Milliseconds(d);
  return static_cast<int>(
      std::clamp<int64_t>(ms, 1, std::numeric_limits<int>::max()));
}

}  // namespace

grpc::ChannelArguments ReconnectChannelArguments(absl::Duration backoff_initial,
                                                 absl::Duration backoff_max) {
  const int initial_ms = Millis(backoff_initial);
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, initial_ms);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              std::max(initial_ms, Millis(backoff_max)));
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, Millis(kMinConnectTimeout));
  return args;
}

std::shared_ptr<grpc::Channel> CreateInsecureChannel(
    const std::string& target, absl::Duration backoff_initial,
    absl::Duration backoff_max) {
  return grpc::CreateCustomChannel(
      target, grpc::InsecureChannelCredentials(),
      ReconnectChannelArguments(backoff_initial, backoff_max));
}

}  // namespace throttle
