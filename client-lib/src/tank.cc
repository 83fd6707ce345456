#include "throttle/tank.h"

#include <algorithm>
#include <utility>

#include "client-lib/src/backoff.h"
#include "client-lib/src/call_registry.h"
#include "client-lib/src/proto_time.h"
#include "client-lib/src/real_time.h"
#include "throttle/channel.h"
#include "throttle/status.h"

namespace throttle {
namespace {

FuelResult Result(FuelOutcome outcome, absl::Status status = absl::OkStatus()) {
  FuelResult result;
  result.outcome = outcome;
  result.status = std::move(status);
  return result;
}

absl::Status ClosedError() {
  return absl::CancelledError("throttle::Tank is closed");
}

}  // namespace

Tank::Tank(const std::string& target, std::string throttle, TankOptions options)
    // `options` copied, not moved: the channel's arguments read it too.
    : Tank(CreateInsecureChannel(target, options.backoff_initial,
                                 options.backoff_max),
           std::move(throttle), options) {}

Tank::Tank(std::shared_ptr<grpc::ChannelInterface> channel,
           std::string throttle, TankOptions options)
    : throttle_(std::move(throttle)),
      options_(std::move(options)),
      stub_(v1::Throttle::NewStub(std::move(channel))),
      calls_(std::make_unique<CallRegistry>()) {}

Tank::~Tank() { Close(); }

FuelResult Tank::AwaitFuel(absl::Duration timeout) {
  if (calls_->closed()) return Result(FuelOutcome::kError, ClosedError());
  {
    absl::MutexLock lock(&mu_);
    if (TakeSurplus()) return Result(FuelOutcome::kFuel);
  }
  const Clock& clock = *options_.clock;
  const bool finite = timeout != absl::InfiniteDuration();
  const absl::Time deadline =
      finite ? clock.Now() + std::max(timeout, absl::ZeroDuration())
             : absl::InfiniteFuture();
  Backoff backoff(options_.backoff_initial, options_.backoff_max);
  for (;;) {
    const Attempt attempt = CallAwaitFuel(deadline, finite);
    if (attempt.grants > 0) {
      absl::MutexLock lock(&mu_);
      if (attempt.end == v1::END_REASON_STOPPED) {
        // Fuel that fell due just before the stop: use one, drop the rest.
        killed_ = true;
        surplus_ = 0;
      } else {
        killed_ = false;
        surplus_ += attempt.grants - 1;
      }
      return Result(FuelOutcome::kFuel);
    }
    if (attempt.end == v1::END_REASON_STOPPED) {
      absl::MutexLock lock(&mu_);
      killed_ = true;
      surplus_ = 0;
      return Result(FuelOutcome::kStopped);
    }
    if (attempt.end == v1::END_REASON_WAIT_LIMIT_PASSED) {
      return Result(FuelOutcome::kTimedOut);
    }
    switch (attempt.status.error_code()) {
      case grpc::StatusCode::OK:
        return Result(FuelOutcome::kError,
                      absl::InternalError(
                          "AwaitFuel stream ended without a grant or an end "
                          "reason"));
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        // Our own deadline (timeout + slack): the server was unreachable or
        // its answer late.
        if (finite) return Result(FuelOutcome::kTimedOut);
        break;
      case grpc::StatusCode::CANCELLED:
        if (calls_->closed()) {
          return Result(FuelOutcome::kError, ClosedError());
        }
        // Not our cancel: the server cancelled the call (a shutdown past
        // its grace period). Like UNAVAILABLE, call again later.
        [[fallthrough]];
      case grpc::StatusCode::UNAVAILABLE: {
        // The server is restarting or shutting down: call again later.
        absl::Duration delay;
        {
          absl::MutexLock lock(&mu_);
          delay = backoff.NextDelay(gen_);
        }
        if (finite) {
          const absl::Duration remaining = deadline - clock.Now();
          if (remaining <= absl::ZeroDuration()) {
            return Result(FuelOutcome::kTimedOut);
          }
          delay = std::min(delay, remaining);
        }
        if (!calls_->SleepUnlessClosed(delay)) {
          return Result(FuelOutcome::kError, ClosedError());
        }
        continue;
      }
      default:
        break;
    }
    return Result(FuelOutcome::kError, FromGrpcStatus(attempt.status));
  }
}

Tank::Attempt Tank::CallAwaitFuel(absl::Time deadline, bool finite) {
  Attempt attempt;
  CallRegistry::Call call(calls_.get());
  if (!call.registered()) {
    attempt.status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    return attempt;
  }
  grpc::ClientContext* context = call.context();
  // Wait for a server that is (re)starting instead of failing at once.
  context->set_wait_for_ready(true);

  v1::AwaitFuelRequest request;
  request.set_throttle(throttle_);
  request.set_count(1);
  request.set_worker_id(options_.worker_id);
  request.set_weight(options_.weight);
  if (finite) {
    // What is left of the wait, on the monotonic clock; gRPC's deadline is
    // a wall-clock point computed from it now, as the call starts.
    const absl::Duration remaining =
        std::max(deadline - options_.clock->Now(), absl::ZeroDuration());
    ToProtoDuration(remaining, request.mutable_wait_limit());
    context->set_deadline(
        GrpcDeadlineAfter(remaining + options_.deadline_slack));
  }

  std::unique_ptr<grpc::ClientReader<v1::AwaitFuelResponse>> reader =
      stub_->AwaitFuel(context, request);
  v1::AwaitFuelResponse response;
  while (reader->Read(&response)) {
    attempt.grants += std::max<int64_t>(response.grants(), 0);
    if (response.end() != v1::END_REASON_UNSPECIFIED) {
      attempt.end = response.end();
    }
  }
  attempt.status = reader->Finish();
  return attempt;
}

bool Tank::killed() const {
  if (calls_->closed()) return true;
  absl::MutexLock lock(&mu_);
  return killed_;
}

absl::StatusOr<bool> Tank::HasFuel() {
  if (calls_->closed()) return ClosedError();
  {
    absl::MutexLock lock(&mu_);
    if (TakeSurplus()) return true;
  }
  CallRegistry::Call call(calls_.get());
  if (!call.registered()) return ClosedError();
  call.context()->set_deadline(GrpcDeadlineAfter(options_.unary_deadline));
  v1::HasFuelRequest request;
  request.set_throttle(throttle_);
  request.set_worker_id(options_.worker_id);
  v1::HasFuelResponse response;
  const grpc::Status status =
      stub_->HasFuel(call.context(), request, &response);
  if (!status.ok()) return CallError(status);
  absl::MutexLock lock(&mu_);
  if (response.stopped()) {
    killed_ = true;
    surplus_ = 0;
    return false;
  }
  if (response.granted()) killed_ = false;
  return response.granted();
}

absl::Status Tank::Emit(int64_t n) {
  CallRegistry::Call call(calls_.get());
  if (!call.registered()) return ClosedError();
  call.context()->set_deadline(GrpcDeadlineAfter(options_.unary_deadline));
  v1::EmitRequest request;
  request.set_throttle(throttle_);
  request.set_count(n);
  request.set_worker_id(options_.worker_id);
  v1::EmitResponse response;
  const grpc::Status status = stub_->Emit(call.context(), request, &response);
  if (!status.ok()) return CallError(status);
  return absl::OkStatus();
}

void Tank::Close() { calls_->Close(); }

bool Tank::TakeSurplus() {
  if (surplus_ <= 0) return false;
  --surplus_;
  return true;
}

absl::Status Tank::CallError(const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::CANCELLED && calls_->closed()) {
    return ClosedError();
  }
  return FromGrpcStatus(status);
}

}  // namespace throttle
