// Live watches of throttles (the WatchThrottle RPC): every open watch
// stream, which throttle it watches and when its next snapshot is due.
//
// Part of the service glue. The hub owns one thread (a RefillLoop on the
// service's clock, so a fake clock's Advance drives it in tests) that sends
// each watch its interval snapshots; the service tells it when a throttle
// was started, stopped, configured or deleted (Notify), which sends that
// throttle's watches a snapshot at once. Snapshots are built by the
// function the hub is handed, so the hub knows nothing of throttles.
//
// Each watch is one write-reactor with at most one write in flight: a
// snapshot that comes while one is being written replaces the one waiting
// (every snapshot is whole, so a slow watcher loses only resolution), and
// a watch costs the server one small entry here whatever its reader does.
#ifndef THROTTLE_SERVER_SERVICE_WATCH_HUB_H_
#define THROTTLE_SERVER_SERVICE_WATCH_HUB_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/service/clock.h"
#include "server/service/metrics.h"
#include "server/service/refill_loop.h"
#include "server/service/stream_limits.h"
#include "throttle/v1/throttle.pb.h"

namespace throttle::server {

// The bounds of WatchThrottleRequest.interval and .window.
inline constexpr absl::Duration kMinWatchInterval = absl::Milliseconds(100);
inline constexpr absl::Duration kMaxWatchInterval = absl::Seconds(60);
inline constexpr absl::Duration kMaxWatchWindow = absl::Seconds(60);

// A watch request's timing, validated.
struct WatchTiming {
  absl::Duration interval;
  absl::Duration window;
};

// Validates a WatchThrottleRequest (throttle name, interval, window) and
// applies the defaults (interval 1 s, window = interval). INVALID_ARGUMENT
// naming the field and the value sent.
absl::StatusOr<WatchTiming> ValidateWatch(const v1::WatchThrottleRequest& req);

// Fills `out` with a snapshot of the throttle `name` now, its `latest` over
// `window`. `*uid` is 0 before the first snapshot, which sets it to the
// throttle's uid; later snapshots are of that throttle only. NOT_FOUND (the
// message naming the throttle) if there is no such throttle, or it is not
// the one watched (deleted, perhaps re-created under the same name).
using WatchSnapshotFn =
    std::function<absl::Status(const std::string& name, absl::Duration window,
                               uint64_t* uid, v1::WatchThrottleResponse* out)>;

// Thread-safe. Owns its thread; Stop or the destructor joins it.
class WatchHub {
 public:
  // `clock` and `metrics` are not owned and must outlive the hub; `metrics`
  // may be null. `snapshot` runs on gRPC threads and the hub's thread and
  // must not call back into the hub. Starts the hub's thread.
  WatchHub(const Clock* clock, Metrics* metrics, WatchSnapshotFn snapshot);
  ~WatchHub();

  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Starts serving one WatchThrottle call: validates `request`, sends the
  // first snapshot at once and the next every interval. `admitted` is the
  // verdict of the service's checks (identity, policy, stream limits): a
  // call not admitted ends at once with it. The reactor holds `slot` (its
  // place under the stream limits; may be null) until it is deleted. Owned
  // by gRPC; it deletes itself when the call is done and the hub lets go.
  grpc::ServerWriteReactor<v1::WatchThrottleResponse>* NewWatch(
      const v1::WatchThrottleRequest& request, const grpc::Status& admitted,
      std::unique_ptr<StreamLimits::Slot> slot) ABSL_LOCKS_EXCLUDED(mu_);

  // The throttle `name` changed (state or configuration) or was deleted:
  // its watches get a snapshot at once, marked `changed`, or end with
  // NOT_FOUND. Never blocks beyond the hub's and the snapshot's mutexes.
  void Notify(const std::string& name) ABSL_LOCKS_EXCLUDED(mu_);

  // Refuses new watches (with `status`) and ends every open one with
  // `status`. Idempotent: only the first call ends watches.
  void CloseAll(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_);

  // Stops and joins the hub's thread. Idempotent. Call once the gRPC
  // server has shut down.
  void Stop() { loop_.Stop(); }

  // The number of watches the hub holds (for tests).
  int64_t open() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  class Watch;  // the reactor of one call (watch_hub.cc)

  struct Schedule {
    std::string name;
    absl::Duration interval;
    absl::Time due;
  };

  // Files `watch`, its first interval snapshot due one interval from now;
  // UNAVAILABLE (the CloseAll status) once closed.
  grpc::Status Add(Watch* watch, const std::string& name,
                   absl::Duration interval) ABSL_LOCKS_EXCLUDED(mu_);
  // Forgets `watch` (its call is done); nothing if it is not filed.
  void Remove(Watch* watch) ABSL_LOCKS_EXCLUDED(mu_);
  // The hub thread's pass: sends the snapshots that are due and returns
  // when the next one is.
  absl::Time SendDue() ABSL_LOCKS_EXCLUDED(mu_);

  const Clock* const clock_;
  Metrics* const metrics_;
  const WatchSnapshotFn snapshot_;
  mutable absl::Mutex mu_;
  // Every filed watch holds a reference the hub drops in Remove.
  absl::flat_hash_map<Watch*, Schedule> watches_ ABSL_GUARDED_BY(mu_);
  absl::btree_set<std::pair<absl::Time, Watch*>> due_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::flat_hash_set<Watch*>> by_name_
      ABSL_GUARDED_BY(mu_);
  bool closed_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status closed_status_ ABSL_GUARDED_BY(mu_);
  RefillLoop loop_;  // last: its thread stops first
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_WATCH_HUB_H_
