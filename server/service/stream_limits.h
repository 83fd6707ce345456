// Limits on open streams (AwaitFuel, Acquire and WatchThrottle alike): per
// server, and per client (its identity, or its peer host when it proves
// none). Past a limit a new stream ends at once with RESOURCE_EXHAUSTED
// naming the limit; streams already open, and other clients, are not
// affected.
//
// Part of the service glue. Thread-safe.
#ifndef THROTTLE_SERVER_SERVICE_STREAM_LIMITS_H_
#define THROTTLE_SERVER_SERVICE_STREAM_LIMITS_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "server/service/metrics.h"

namespace throttle::server {

class StreamLimits {
 public:
  // A stream's place under the limits; freed when destroyed.
  class Slot {
   public:
    ~Slot();
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    friend class StreamLimits;
    Slot(StreamLimits* limits, std::string client)
        : limits_(limits), client_(std::move(client)) {}
    StreamLimits* const limits_;
    const std::string client_;
  };

  // `metrics` may be null; it must outlive the limits, which must outlive
  // every slot.
  StreamLimits(int64_t per_server, int64_t per_client, Metrics* metrics)
      : per_server_(per_server), per_client_(per_client), metrics_(metrics) {}

  // A slot for one more stream of `client`, or RESOURCE_EXHAUSTED naming
  // the flag of the limit that is reached.
  absl::StatusOr<std::unique_ptr<Slot>> Admit(const std::string& client)
      ABSL_LOCKS_EXCLUDED(mu_);

  int64_t open() const ABSL_LOCKS_EXCLUDED(mu_);
  // Blocks until exactly `n` streams hold a slot or `timeout` passes (real
  // time); returns whether they do. ThrottleServer::Shutdown waits with it
  // for every stream to be done before gRPC's shutdown starts; tests wait
  // with it for streams to open.
  bool AwaitOpen(int64_t n, absl::Duration timeout) const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  void Release(const std::string& client) ABSL_LOCKS_EXCLUDED(mu_);

  const int64_t per_server_;
  const int64_t per_client_;
  Metrics* const metrics_;
  mutable absl::Mutex mu_;
  int64_t open_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, int64_t> per_client_open_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_STREAM_LIMITS_H_
