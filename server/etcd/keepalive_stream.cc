#include "server/etcd/keepalive_stream.h"

#include <grpcpp/support/status.h>

#include "absl/strings/str_cat.h"

namespace throttle::etcd {
namespace {

// The only tag: one step is in flight at a time.
void* const kTag = reinterpret_cast<void*>(1);

absl::Status FromGrpc(const grpc::Status& status) {
  return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                      status.error_message());
}

}  // namespace

KeepAliveStream::KeepAliveStream(etcdserverpb::Lease::StubInterface* stub)
    : stream_(stub->AsyncLeaseKeepAlive(&context_, &cq_, kTag)),
      in_flight_(true) {}

KeepAliveStream::~KeepAliveStream() {
  if (!finished_) Finish(/*cancel=*/true).IgnoreError();
  cq_.Shutdown();
  void* tag;
  bool ok;
  while (cq_.Next(&tag, &ok)) {
  }
}

KeepAliveStream::Step KeepAliveStream::Await(absl::Time deadline) {
  void* tag;
  bool ok = false;
  switch (cq_.AsyncNext(&tag, &ok, absl::ToChronoTime(deadline))) {
    case grpc::CompletionQueue::GOT_EVENT:
      in_flight_ = false;
      return ok ? Step::kDone : Step::kFailed;
    case grpc::CompletionQueue::TIMEOUT:
      return Step::kTimedOut;
    case grpc::CompletionQueue::SHUTDOWN:
      break;
  }
  in_flight_ = false;  // shut down: nothing can be in flight any more
  return Step::kFailed;
}

absl::Status KeepAliveStream::Finish(bool cancel) {
  void* tag;
  bool ok;
  if (cancel || in_flight_) context_.TryCancel();
  // A cancelled step comes back at once (with ok false).
  if (in_flight_ && cq_.Next(&tag, &ok)) in_flight_ = false;
  grpc::Status status;
  stream_->Finish(&status, kTag);
  cq_.Next(&tag, &ok);
  finished_ = true;
  return FromGrpc(status);
}

absl::Status KeepAliveStream::Complete(absl::Time deadline) {
  switch (Await(deadline)) {
    case Step::kDone:
      return absl::OkStatus();
    case Step::kFailed: {
      const absl::Status status = Finish(/*cancel=*/false);
      return status.ok() ? absl::UnavailableError("stream closed by etcd")
                         : status;
    }
    case Step::kTimedOut:
      break;
  }
  Finish(/*cancel=*/true).IgnoreError();
  return absl::DeadlineExceededError("no answer by the deadline");
}

absl::StatusOr<etcdserverpb::LeaseKeepAliveResponse> KeepAliveStream::Exchange(
    int64_t lease, absl::Time deadline) {
  if (finished_) return absl::FailedPreconditionError("stream closed");
  // The StartCall of the constructor, the first time; then a Write and a
  // Read. Each step comes back before the next one starts.
  if (in_flight_) {
    if (absl::Status status = Complete(deadline); !status.ok()) return status;
  }
  etcdserverpb::LeaseKeepAliveRequest request;
  request.set_id(lease);
  stream_->Write(request, kTag);
  in_flight_ = true;
  if (absl::Status status = Complete(deadline); !status.ok()) return status;
  etcdserverpb::LeaseKeepAliveResponse response;
  stream_->Read(&response, kTag);
  in_flight_ = true;
  if (absl::Status status = Complete(deadline); !status.ok()) return status;
  if (response.id() != lease) {
    Finish(/*cancel=*/true).IgnoreError();
    return absl::InternalError(
        absl::StrCat("answer for lease ", absl::Hex(response.id()),
                     " to a keepalive for lease ", absl::Hex(lease)));
  }
  used_ = true;
  return response;
}

}  // namespace throttle::etcd
