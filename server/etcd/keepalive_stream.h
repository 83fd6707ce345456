// The LeaseKeepAlive stream of an etcd Client (etcd_client.h), used one
// exchange at a time, each with its own deadline. Internal to server/etcd/.
#ifndef THROTTLE_SERVER_ETCD_KEEPALIVE_STREAM_H_
#define THROTTLE_SERVER_ETCD_KEEPALIVE_STREAM_H_

#include <grpcpp/client_context.h>
#include <grpcpp/completion_queue.h>
#include <grpcpp/support/async_stream.h>

#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "etcd/etcdserver/etcdserverpb/rpc.grpc.pb.h"

namespace throttle::etcd {

// One LeaseKeepAlive call. A stream's deadline would cover its whole life,
// so the call has none: each exchange (one Write, one Read) is made with the
// async API on a completion queue of the stream's own and waits for each
// step until the exchange's deadline. On a timeout it cancels the call
// (TryCancel) and waits for the cancelled step to come back, so nothing is
// left pending. No thread of its own.
//
// After any failure the stream is dead (alive() false): drop it and open a
// new one. Not thread-safe: one exchange at a time.
class KeepAliveStream {
 public:
  // Starts the call on `stub`; does not wait for it.
  explicit KeepAliveStream(etcdserverpb::Lease::StubInterface* stub);
  // Cancels the call if it is still open and waits for it to end.
  ~KeepAliveStream();

  KeepAliveStream(const KeepAliveStream&) = delete;
  KeepAliveStream& operator=(const KeepAliveStream&) = delete;

  // Sends one keepalive for `lease` and reads etcd's answer, by `deadline`.
  // DEADLINE_EXCEEDED after it; otherwise the call's own status when the
  // stream broke (e.g. UNAVAILABLE), INTERNAL for an answer about another
  // lease. Blocks.
  absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> Exchange(
      int64_t lease, absl::Time deadline);

  // Whether the stream can take another exchange.
  bool alive() const { return !finished_; }
  // Whether an exchange succeeded on it: a stream that worked once may fail
  // only because it went stale (etcd restarted), worth one retry.
  bool used() const { return used_; }

 private:
  enum class Step { kDone, kFailed, kTimedOut };

  // Waits until the step in flight comes back or `deadline` passes.
  Step Await(absl::Time deadline);
  // Awaits the step in flight; on a failure or a timeout ends the call and
  // returns why.
  absl::Status Complete(absl::Time deadline);
  // Ends the call: cancels it when a step is still in flight or `cancel`,
  // waits for that step, then for the call's status, which it returns.
  absl::Status Finish(bool cancel);

  // Declared first, destroyed last: after the call that uses it.
  grpc::CompletionQueue cq_;
  grpc::ClientContext context_;
  std::unique_ptr<grpc::ClientAsyncReaderWriterInterface<
      etcdserverpb::LeaseKeepAliveRequest,
      etcdserverpb::LeaseKeepAliveResponse>>
      stream_;
  bool in_flight_ = false;  // a step was started and has not come back
  bool finished_ = false;
  bool used_ = false;
};

}  // namespace throttle::etcd

#endif  // THROTTLE_SERVER_ETCD_KEEPALIVE_STREAM_H_
