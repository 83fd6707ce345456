// The gRPC service glue: named throttles, the refill loop, and the
// per-stream queues drained by callback reactors.
//
// Sits between the scheduler core (scheduler.h, no gRPC) and the server
// (throttle_server.h). One mutex guards every throttle's scheduler; one
// refill thread, owned and joined by the service, wakes at the earliest due
// time of all throttles. Grants are handed to stream reactors outside the
// mutex; each reactor keeps a small queue and one write in flight.
#ifndef THROTTLE_SERVER_SERVICE_H_
#define THROTTLE_SERVER_SERVICE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/clock.h"
#include "server/metrics.h"
#include "server/scheduler.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {

class FuelReactor;

struct ServiceOptions {
  // A stream whose previous write has not drained for this long is
  // stalled: grants for it go back to the others and it leaves the ring
  // until the write drains (a client that stopped reading keeps no share).
  absl::Duration stream_stall_timeout = absl::Milliseconds(500);
};

// Implements throttle.v1.Throttle, and is the source of the per-throttle
// metrics. Thread-safe.
class Service final : public v1::Throttle::CallbackService,
                      public ThrottleStatsSource {
 public:
  // `clock` and `metrics` are not owned and must outlive the service;
  // `metrics` may be null (no metrics). Starts the refill thread.
  Service(const Clock* clock, Metrics* metrics,
          const ServiceOptions& options = {});
  // Ends open streams and joins the refill thread.
  ~Service() override;

  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Creates a throttle (used for throttles declared at start-up). Returns
  // INVALID_ARGUMENT for a bad name or config, ALREADY_EXISTS if taken.
  absl::Status Create(const std::string& name, const ThrottleConfig& config)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Refuses new streams and ends every open stream with UNAVAILABLE
  // ("server shutting down"). Unary calls still answer. Idempotent.
  void BeginShutdown() ABSL_LOCKS_EXCLUDED(mu_);

  // Stops and joins the refill thread. Idempotent. Call after the gRPC
  // server has shut down.
  void StopRefillLoop() ABSL_LOCKS_EXCLUDED(mu_);

  // Per-throttle numbers for the metrics endpoint.
  std::vector<ThrottleSnapshot> Snapshot() const override
      ABSL_LOCKS_EXCLUDED(mu_);

  // Counts a call that ended with a non-OK status (for the metrics).
  void CountError(absl::string_view method, const grpc::Status& status);

  // --- throttle.v1.Throttle ---
  grpc::ServerWriteReactor<v1::AwaitFuelResponse>* AwaitFuel(
      grpc::CallbackServerContext* context,
      const v1::AwaitFuelRequest* request) override;
  grpc::ServerUnaryReactor* HasFuel(grpc::CallbackServerContext* context,
                                    const v1::HasFuelRequest* request,
                                    v1::HasFuelResponse* response) override;
  grpc::ServerUnaryReactor* Emit(grpc::CallbackServerContext* context,
                                 const v1::EmitRequest* request,
                                 v1::EmitResponse* response) override;
  grpc::ServerUnaryReactor* Start(grpc::CallbackServerContext* context,
                                  const v1::StartRequest* request,
                                  v1::StartResponse* response) override;
  grpc::ServerUnaryReactor* Stop(grpc::CallbackServerContext* context,
                                 const v1::StopRequest* request,
                                 v1::StopResponse* response) override;
  grpc::ServerUnaryReactor* Latest(grpc::CallbackServerContext* context,
                                   const v1::LatestRequest* request,
                                   v1::LatestResponse* response) override;
  grpc::ServerUnaryReactor* Mean(grpc::CallbackServerContext* context,
                                 const v1::MeanRequest* request,
                                 v1::MeanResponse* response) override;
  grpc::ServerUnaryReactor* CreateThrottle(
      grpc::CallbackServerContext* context,
      const v1::CreateThrottleRequest* request,
      v1::CreateThrottleResponse* response) override;
  grpc::ServerUnaryReactor* ConfigureThrottle(
      grpc::CallbackServerContext* context,
      const v1::ConfigureThrottleRequest* request,
      v1::ConfigureThrottleResponse* response) override;
  grpc::ServerUnaryReactor* DeleteThrottle(
      grpc::CallbackServerContext* context,
      const v1::DeleteThrottleRequest* request,
      v1::DeleteThrottleResponse* response) override;
  grpc::ServerUnaryReactor* ListThrottles(
      grpc::CallbackServerContext* context,
      const v1::ListThrottlesRequest* request,
      v1::ListThrottlesResponse* response) override;

  // --- For FuelReactor ---

  // Grants handed to a reactor, with the reference the reactor holds.
  struct Delivery {
    FuelReactor* reactor;  // referenced; released by Deliver()
    int64_t grants;
    absl::Time granted_at;
    EndReason end;
    grpc::Status closed_status;  // for EndReason::kClosed
  };
  // A grant that never reached its stream.
  struct Undelivered {
    absl::Time granted_at;
    int64_t grants;
  };

  // Registers a validated stream; its first grants are delivered at once.
  // On error (no such throttle, shutting down) returns the status to
  // finish the call with.
  grpc::Status OpenStream(FuelReactor* reactor, const std::string& throttle,
                          const StreamRequest& request)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The stream went away: forget it and give back what it did not get.
  void CloseStream(uint64_t throttle_uid, StreamId id,
                   const std::vector<Undelivered>& undelivered)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A monitor-only count-0 stream's grant was written.
  void StreamDrained(uint64_t throttle_uid, StreamId id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // A stalled stream's write drained: it is back in line.
  void StreamResumed(uint64_t throttle_uid, StreamId id)
      ABSL_LOCKS_EXCLUDED(mu_);
  const Clock* clock() const { return clock_; }
  // How long a write may stay undrained before its stream is stalled.
  absl::Duration stream_stall_timeout() const {
    return options_.stream_stall_timeout;
  }

 private:
  struct Entry {
    Entry(std::string name, uint64_t uid, const ThrottleConfig& config)
        : name(std::move(name)), uid(uid), scheduler(config) {}
    const std::string name;
    const uint64_t uid;  // never reused, unlike names
    Scheduler scheduler;
    absl::flat_hash_map<StreamId, FuelReactor*> reactors;
    absl::flat_hash_set<StreamId> stalled;  // held until their write drains
    // Where this throttle stands in wakeups_ (InfiniteFuture: not there).
    absl::Time queued_wakeup = absl::InfiniteFuture();
    // For the metrics.
    int64_t grants = 0;      // handed to streams, minus those given back
    int64_t given_back = 0;  // came back undelivered
    int64_t stalls = 0;      // times a stream was stalled
    int64_t starts = 0;
    int64_t stops = 0;
  };

  // Finishes a unary call, counting an error for the metrics.
  grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context,
                                  absl::string_view method,
                                  const absl::Status& status);
  // Gives fuel back to a throttle's scheduler, counting it.
  void GiveBackLocked(Entry& entry, absl::Time granted_at, int64_t grants)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Turns scheduler events into deliveries (taking reactor references).
  void CollectLocked(Entry& entry, const std::vector<StreamEvent>& events,
                     const grpc::Status& closed_status,
                     std::vector<Delivery>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Advances one throttle to now and collects what fell due.
  void AdvanceLocked(Entry& entry, std::vector<Delivery>* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Files `entry` in the wake-up queue at its scheduler's NextWakeup, and
  // wakes the refill loop if that is earlier than planned. Call after
  // every change to a scheduler that can make its wake-up earlier.
  void KickLocked(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Forgets a stream of `entry` that went away or was rejected.
  void DropStreamLocked(Entry& entry, StreamId id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands deliveries to their reactors; grants a reactor could not take
  // are given back (which may deliver more). Must not hold mu_.
  void Deliver(std::vector<Delivery> deliveries) ABSL_LOCKS_EXCLUDED(mu_);
  Entry* FindLocked(const std::string& name) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entry* FindByUidLocked(uint64_t uid) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Looks a throttle up for a unary call: validates the name field.
  absl::StatusOr<Entry*> LookupLocked(absl::string_view field,
                                      const std::string& name)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  v1::ThrottleInfo InfoLocked(const Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CreateLocked(const std::string& name,
                            const ThrottleConfig& config, Entry** created)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RefillLoop() ABSL_LOCKS_EXCLUDED(mu_);

  const Clock* const clock_;
  Metrics* const metrics_;
  const ServiceOptions options_;
  mutable absl::Mutex mu_;
  absl::btree_map<std::string, std::unique_ptr<Entry>> throttles_
      ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, Entry*> by_uid_ ABSL_GUARDED_BY(mu_);
  // Throttles by the time their scheduler must next be advanced, so a
  // wake-up visits only the throttles that are due.
  absl::btree_set<std::pair<absl::Time, uint64_t>> wakeups_
      ABSL_GUARDED_BY(mu_);
  uint64_t next_uid_ ABSL_GUARDED_BY(mu_) = 1;
  bool shutting_down_ ABSL_GUARDED_BY(mu_) = false;
  bool loop_stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool kicked_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time planned_wakeup_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  std::thread refill_thread_;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_H_
