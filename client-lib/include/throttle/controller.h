// throttle::Controller: the controller side of the client library
// (client-lib/).
//
// An operator, a job driver or the throttlectl CLI uses a Controller to
// create, configure, start and stop the throttles of one server and to read
// their statistics, as the seed's Throttle.start()/stop()/latest()/mean():
//
//   throttle::Controller controller("throttle.example:50051");
//   throttle::v1::ThrottleConfig config;
//   config.set_max_n(4);
//   config.set_per_seconds(1);
//   config.mutable_catch_up()->set_nanos(50'000'000);  // 50 ms; unset: default
//   absl::Status status = controller.CreateThrottle("crawl", config).status();
//   status = controller.Start("crawl").status();
//   ...
//   absl::StatusOr<throttle::v1::StopResponse> stats =
//   controller.Stop("crawl");
//
// Each method is one unary RPC of proto/throttle/v1/throttle.proto and
// returns its response message; the proto documents every field.
#ifndef THROTTLE_CONTROLLER_H_
#define THROTTLE_CONTROLLER_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "google/protobuf/field_mask.pb.h"
#include "grpcpp/channel.h"
#include "grpcpp/client_context.h"
#include "grpcpp/support/status.h"
#include "throttle/v1/throttle.grpc.pb.h"
#include "throttle/watch.h"

namespace throttle {

class CallRegistry;  // client-lib/src/call_registry.h

struct ControllerOptions {
  // The deadline of each call; DEADLINE_EXCEEDED when it passes.
  absl::Duration deadline = absl::Seconds(10);
  // When false (the default) a call to an unreachable server fails at once
  // with UNAVAILABLE; when true it waits for the server up to the deadline.
  bool wait_for_ready = false;
};

// A controller's handle on one throttle server.
//
// Every method makes one blocking round trip bounded by
// ControllerOptions::deadline and returns the server's error on failure:
// INVALID_ARGUMENT (the message names the bad field), NOT_FOUND (no throttle
// of that name), ALREADY_EXISTS, FAILED_PRECONDITION (wrong state, e.g. Stop
// of a throttle that is not running), UNAVAILABLE (server unreachable or
// shutting down: retry), DEADLINE_EXCEEDED, CANCELLED (the Controller is
// closed).
//
// Thread-safe: any number of threads may call it at once. Holds no state
// besides the channel and the calls in flight (for Close()). Destroy it only
// after every thread has returned from it.
class Controller {
 public:
  // Connects to the server at `target` (a gRPC target name such as
  // "host:port" or "unix:/path") over an insecure channel with the library's
  // default reconnect backoff (CreateInsecureChannel). Does not block and
  // does not fail: connection problems show up in the calls.
  explicit Controller(const std::string& target,
                      ControllerOptions options = ControllerOptions());

  // As above over `channel`, whose ownership is shared: for TLS, mTLS or a
  // token, one made by CreateChannel (throttle/channel.h):
  //
  //   throttle::ChannelSecurity security;
  //   security.ca_file = "ca.pem";
  //   security.token_file = "/run/secrets/throttle-token";
  //   absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
  //       throttle::CreateChannel("throttle.example:50051", security);
  //   if (!channel.ok()) return channel.status();  // INVALID_ARGUMENT
  //   throttle::Controller controller(*channel);
  //
  // Calls the server refuses fail with UNAUTHENTICATED (no or a bad
  // identity) or PERMISSION_DENIED (the server's policy; the message names
  // the method, the throttle and the identity); a refused handshake (no or
  // an untrusted client certificate, plaintext to a TLS server) shows up as
  // UNAVAILABLE.
  explicit Controller(std::shared_ptr<grpc::ChannelInterface> channel,
                      ControllerOptions options = ControllerOptions());

  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // Closes the Controller (Close()).
  ~Controller();

  // Closes the Controller: every call in flight, and every later call at
  // once, fails with CANCELLED and the message "throttle::Controller is
  // closed". Permanent; closing again does nothing. Never blocks. The same
  // as Tank::Close() and close() of the Python and Node clients
  // (docs/clients.md).
  void Close();

  // Creates throttle `name` in state CREATED with `config` (every field of
  // v1::ThrottleConfig, catch_up included: leave it unset for the server's
  // default). ALREADY_EXISTS if the name is taken.
  absl::StatusOr<v1::CreateThrottleResponse> CreateThrottle(
      absl::string_view name, const v1::ThrottleConfig& config) const;

  // Replaces the configuration of throttle `name` whole; open AwaitFuel
  // streams stay open and are served at the new rate.
  absl::StatusOr<v1::ConfigureThrottleResponse> ConfigureThrottle(
      absl::string_view name, const v1::ThrottleConfig& config) const;

  // Changes only the fields of throttle `name`'s configuration that
  // `update_mask` names (ThrottleConfig field names: max_n, per_seconds,
  // mode, burst, manual_emit, catch_up, warm_up, warm_up_from, adaptive),
  // taking them from `config`; the other fields keep their values. An empty
  // mask replaces the config whole, as the overload above. Switching mode away
  // from bucket resets burst unless burst is named. INVALID_ARGUMENT for an
  // unknown path or an invalid merged config. Blocks for one call.
  absl::StatusOr<v1::ConfigureThrottleResponse> ConfigureThrottle(
      absl::string_view name, const v1::ThrottleConfig& config,
      const google::protobuf::FieldMask& update_mask) const;

  // Deletes throttle `name`; its open AwaitFuel streams end with NOT_FOUND.
  absl::Status DeleteThrottle(absl::string_view name) const;

  // Lists every throttle, sorted by name.
  absl::StatusOr<v1::ListThrottlesResponse> ListThrottles() const;

  // Starts (or resumes) throttle `name`. FAILED_PRECONDITION if running.
  absl::StatusOr<v1::StartResponse> Start(absl::string_view name) const;

  // Stops throttle `name` (sets the kill flag) and returns the seed's final
  // tuple. FAILED_PRECONDITION if it is not running.
  absl::StatusOr<v1::StopResponse> Stop(absl::string_view name) const;

  // Statistics of throttle `name` over the last `window`, which must be in
  // (0, 60 s] (INVALID_ARGUMENT otherwise). With `include_workers` the
  // answer's `workers` lists what each worker_id got in the window (at
  // 100 ms resolution).
  absl::StatusOr<v1::LatestResponse> Latest(
      absl::string_view name, absl::Duration window = absl::Seconds(1),
      bool include_workers = false) const;

  // Statistics of throttle `name` since its first Start, with Jain's
  // fairness index of the grants per worker; with `include_workers` the
  // answer's `workers` lists what each worker_id got.
  absl::StatusOr<v1::MeanResponse> Mean(absl::string_view name,
                                        bool include_workers = false) const;

  // A live watch of throttle `name` (WatchThrottle; throttle/watch.h): a
  // snapshot at once, then one every options.interval and one on each
  // change of state or configuration, read with ThrottleWatch::Next().
  // Does not block: the stream opens on the first Next(). The Controller
  // must outlive the watch; Close() ends it with CANCELLED.
  std::unique_ptr<ThrottleWatch> Watch(
      absl::string_view name, WatchOptions options = WatchOptions()) const;

 private:
  friend class ThrottleWatch;  // its stream uses stub_ and calls_

  // The signature shared by the unary methods of the generated stub.
  template <typename Request, typename Response>
  using StubMethod = grpc::Status (v1::Throttle::Stub::*)(grpc::ClientContext*,
                                                          const Request&,
                                                          Response*);

  // Makes one unary call with the options' deadline.
  template <typename Request, typename Response>
  absl::StatusOr<Response> Call(StubMethod<Request, Response> method,
                                const Request& request) const;

  const ControllerOptions options_;
  const std::unique_ptr<v1::Throttle::Stub> stub_;
  // The calls in flight, for Close().
  const std::unique_ptr<CallRegistry> calls_;
};

}  // namespace throttle

#endif  // THROTTLE_CONTROLLER_H_
