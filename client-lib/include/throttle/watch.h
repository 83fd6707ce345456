// throttle::ThrottleWatch: a live view of one throttle for a controller
// program, over the server-streaming WatchThrottle RPC of
// proto/throttle/v1/throttle.proto (client-lib/).
//
//   throttle::Controller controller("throttle.example:50051");
//   throttle::WatchOptions options;
//   options.interval = absl::Seconds(2);
//   std::unique_ptr<throttle::ThrottleWatch> watch =
//       controller.Watch("crawl", options);
//   for (;;) {
//     absl::StatusOr<throttle::v1::WatchThrottleResponse> snapshot =
//         watch->Next();
//     if (!snapshot.ok()) break;  // NOT_FOUND: deleted; CANCELLED: Cancel()
//     Draw(snapshot->throttle(), snapshot->latest(), snapshot->mean());
//   }
//
// Each snapshot is a whole WatchThrottleResponse (nothing is a delta): the
// first comes at once, then one every interval and one at once whenever
// the throttle's state or configuration changes (`changed`).
#ifndef THROTTLE_WATCH_H_
#define THROTTLE_WATCH_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "throttle/channel.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle {

class Controller;  // throttle/controller.h

// How Controller::Watch watches.
struct WatchOptions {
  // How often the server sends a snapshot; must be in [100 ms, 60 s] (the
  // server ends the watch with INVALID_ARGUMENT naming `interval`
  // otherwise). Zero: the server's default, 1 s.
  absl::Duration interval = absl::Seconds(1);
  // The window of each snapshot's `latest`; must be in (0, 60 s]. Zero:
  // the interval.
  absl::Duration window = absl::ZeroDuration();
  // When true (the default), a watch whose stream is lost (UNAVAILABLE, or
  // CANCELLED by the server, as by one shutting down) opens it again after
  // a backoff delay, `backoff_initial` doubling up to `backoff_max` with
  // +-20% jitter, reset by each snapshot; Next() goes on waiting meanwhile
  // and the next snapshot after a reconnect is a fresh first one. When
  // false such a loss ends the watch with that status.
  bool reconnect = true;
  absl::Duration backoff_initial = kDefaultBackoffInitial;
  absl::Duration backoff_max = kDefaultBackoffMax;
};

// One live watch of one throttle: the WatchThrottle stream, opened by the
// first Next() and read by Next().
//
// Thread-safety: Next() is called by one thread at a time; Cancel() may be
// called by any thread at any time, also while Next() blocks. The
// Controller must outlive it; its Close() ends the watch. Destroying it
// cancels the stream and waits a few milliseconds for gRPC to release it.
class ThrottleWatch {
 public:
  // Watches throttle `throttle` through `controller` (Controller::Watch
  // does the same). Does not block and does not fail: the stream is opened
  // by the first Next(), which reports what went wrong.
  ThrottleWatch(const Controller& controller, std::string throttle,
                WatchOptions options = WatchOptions());

  ThrottleWatch(const ThrottleWatch&) = delete;
  ThrottleWatch& operator=(const ThrottleWatch&) = delete;
  ~ThrottleWatch();

  // Blocks until the next snapshot arrives and returns it, or returns the
  // error that ended the watch: NOT_FOUND (the throttle does not exist or
  // was deleted), INVALID_ARGUMENT (bad options; the message names the
  // field), PERMISSION_DENIED / UNAUTHENTICATED, UNAVAILABLE (only with
  // reconnect off), CANCELLED with "throttle::ThrottleWatch is cancelled"
  // after Cancel() or "throttle::Controller is closed" after the
  // Controller's Close(). Once ended, every later call returns the same
  // error at once. DEADLINE_EXCEEDED when `timeout` passes first (on the
  // monotonic clock): the watch goes on and the next call may still get
  // the snapshot.
  absl::StatusOr<v1::WatchThrottleResponse> Next(
      absl::Duration timeout = absl::InfiniteDuration());

  // Ends the watch: a Next() blocked in another thread returns CANCELLED at
  // once, as does every later call; the stream is cancelled (the server
  // frees it). Permanent; cancelling again does nothing. Never blocks.
  void Cancel();

  // The name of the watched throttle.
  const std::string& throttle() const { return throttle_; }

 private:
  struct Call;
  class State;

  const std::string throttle_;
  // The stream, its backoff and how the watch ended: client-lib/src/watch.cc.
  const std::unique_ptr<State> state_;
};

}  // namespace throttle

#endif  // THROTTLE_WATCH_H_
