// The gRPC handlers of throttle.v1.Throttle.
//
// Part of the service glue, on top of the throttle table (throttle_table.h,
// which holds every throttle and its streams), the refill loop
// (refill_loop.h, the one thread that advances throttles when they fall
// due) and the AwaitFuel reactor (fuel_reactor.h). Each unary handler
// validates its request, makes one table transaction, and builds the reply.
#ifndef THROTTLE_SERVER_SERVICE_SERVICE_H_
#define THROTTLE_SERVER_SERVICE_SERVICE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/security/security.h"
#include "server/service/clock.h"
#include "server/service/metrics.h"
#include "server/service/persister.h"
#include "server/service/refill_loop.h"
#include "server/service/stream_limits.h"
#include "server/service/throttle_table.h"
#include "server/service/watch_hub.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::server {

struct ServiceOptions {
  TableOptions table;
  // Open AwaitFuel streams per server and per client (stream_limits.h).
  int64_t max_streams = 10'000;
  int64_t max_streams_per_client = 1'000;
  // Who may call what; not owned; null: everyone, everything.
  const Authorizer* authorizer = nullptr;
};

// Implements throttle.v1.Throttle. Thread-safe.
class Service final : public v1::Throttle::CallbackService {
 public:
  // `clock` and `metrics` are not owned and must outlive the service;
  // `metrics` may be null (no metrics). Starts the refill loop.
  Service(const Clock* clock, Metrics* metrics,
          const ServiceOptions& options = {});
  // Ends open streams and stops the refill loop.
  ~Service() override;

  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // The throttles (for start-up throttles, metrics and tests).
  ThrottleTable& table() { return table_; }
  const StreamLimits& stream_limits() const { return stream_limits_; }

  // Controller calls that change a throttle answer only once `persister`
  // stored it (not owned; null: nothing is stored). Set before serving.
  void SetPersister(Persister* persister) { persister_ = persister; }

  // Refuses new streams and ends every open stream (AwaitFuel, Acquire,
  // WatchThrottle) with UNAVAILABLE ("server shutting down"). Unary calls
  // still answer. Idempotent.
  void BeginShutdown();

  // Stops and joins the refill loop and the watch hub's thread. Idempotent.
  // Call after the gRPC server has shut down.
  void StopRefillLoop() {
    loop_.Stop();
    watches_.Stop();
  }

  // The throttle `name` was changed (state or configuration) or deleted
  // other than through this service's handlers (a config reload, say): its
  // watchers get a snapshot at once. Never blocks beyond short mutexes.
  void NotifyWatchers(const std::string& name) { watches_.Notify(name); }
  // The open WatchThrottle streams (for tests).
  int64_t open_watches() const { return watches_.open(); }

  // --- throttle.v1.Throttle ---
  grpc::ServerWriteReactor<v1::AwaitFuelResponse>* AwaitFuel(
      grpc::CallbackServerContext* context,
      const v1::AwaitFuelRequest* request) override;
  grpc::ServerBidiReactor<v1::AcquireRequest, v1::AcquireResponse>* Acquire(
      grpc::CallbackServerContext* context) override;
  grpc::ServerUnaryReactor* HasFuel(grpc::CallbackServerContext* context,
                                    const v1::HasFuelRequest* request,
                                    v1::HasFuelResponse* response) override;
  grpc::ServerUnaryReactor* Emit(grpc::CallbackServerContext* context,
                                 const v1::EmitRequest* request,
                                 v1::EmitResponse* response) override;
  grpc::ServerUnaryReactor* Report(grpc::CallbackServerContext* context,
                                   const v1::ReportRequest* request,
                                   v1::ReportResponse* response) override;
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
  grpc::ServerWriteReactor<v1::WatchThrottleResponse>* WatchThrottle(
      grpc::CallbackServerContext* context,
      const v1::WatchThrottleRequest* request) override;

 private:
  // Finishes a unary call, counting an error for the metrics.
  grpc::ServerUnaryReactor* Reply(grpc::CallbackServerContext* context,
                                  absl::string_view method,
                                  const absl::Status& status);
  // Reply, once the change to throttle `name` is stored (if it succeeded
  // and there is a persister): a failed store answers UNAVAILABLE.
  grpc::ServerUnaryReactor* ReplyStored(grpc::CallbackServerContext* context,
                                        absl::string_view method,
                                        const absl::Status& status,
                                        const std::string& name);

  // The caller's identity and whether it may call `method` on `throttle`
  // ("" for ListThrottles); OK without an authorizer.
  absl::Status Admit(grpc::CallbackServerContext* context,
                     absl::string_view method, absl::string_view throttle,
                     std::string* identity = nullptr) const;
  // Admit, then a place under the stream limits (of the caller's identity,
  // or its peer host without one).
  absl::StatusOr<std::unique_ptr<StreamLimits::Slot>> AdmitStream(
      grpc::CallbackServerContext* context, absl::string_view method,
      absl::string_view throttle);

  Metrics* const metrics_;
  const Authorizer* const authorizer_;
  StreamLimits stream_limits_;
  Persister* persister_ = nullptr;
  // A WatchThrottle snapshot of the throttle `name` (WatchSnapshotFn).
  absl::Status WatchSnapshot(const std::string& name, absl::Duration window,
                             uint64_t* uid, v1::WatchThrottleResponse* out);

  RefillLoop loop_;  // before table_, which kicks it
  ThrottleTable table_;
  WatchHub watches_;  // after table_, which its snapshots read
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_SERVICE_SERVICE_H_
