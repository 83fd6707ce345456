#include "throttle/tank.h"

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "client-lib/src/backoff.h"
#include "client-lib/src/proto_time.h"
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

absl::Status CancelledError() {
  return absl::CancelledError("throttle::Tank was cancelled");
}

}  // namespace

// One call in flight: owns its ClientContext and keeps it registered with the
// Tank for as long as the call runs, so that Cancel() can reach it.
class Tank::ActiveCall {
 public:
  explicit ActiveCall(Tank* tank) : tank_(tank) {
    absl::MutexLock lock(&tank_->mu_);
    registered_ = !tank_->cancelled_;
    if (registered_) tank_->active_.insert(&context_);
  }

  ~ActiveCall() {
    if (!registered_) return;
    absl::MutexLock lock(&tank_->mu_);
    tank_->active_.erase(&context_);
  }

  ActiveCall(const ActiveCall&) = delete;
  ActiveCall& operator=(const ActiveCall&) = delete;

  // False if the Tank was cancelled before the call: do not make it.
  bool registered() const { return registered_; }
  grpc::ClientContext* context() { return &context_; }

 private:
  Tank* const tank_;
  grpc::ClientContext context_;
  bool registered_ = false;
};

Tank::Tank(const std::string& target, std::string throttle, TankOptions options)
    // `options` copied, not moved: the channel's arguments read it too.
    : Tank(CreateInsecureChannel(target, options.backoff_initial,
                                 options.backoff_max),
           std::move(throttle), options) {}

Tank::Tank(std::shared_ptr<grpc::ChannelInterface> channel,
           std::string throttle, TankOptions options)
    : throttle_(std::move(throttle)),
      options_(std::move(options)),
      stub_(v1::Throttle::NewStub(std::move(channel))) {}

Tank::~Tank() { Cancel(); }

FuelResult Tank::AwaitFuel(absl::Duration timeout) {
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return Result(FuelOutcome::kError, CancelledError());
    if (TakeSurplus()) return Result(FuelOutcome::kFuel);
  }
  const bool finite = timeout != absl::InfiniteDuration();
  const absl::Time deadline =
      finite ? absl::Now() + std::max(timeout, absl::ZeroDuration())
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
      case grpc::StatusCode::CANCELLED: {
        absl::MutexLock lock(&mu_);
        if (cancelled_) return Result(FuelOutcome::kError, CancelledError());
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
          const absl::Duration remaining = deadline - absl::Now();
          if (remaining <= absl::ZeroDuration()) {
            return Result(FuelOutcome::kTimedOut);
          }
          delay = std::min(delay, remaining);
        }
        if (!SleepUnlessCancelled(delay)) {
          return Result(FuelOutcome::kError, CancelledError());
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
  ActiveCall call(this);
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
    const absl::Time now = absl::Now();
    ToProtoDuration(std::max(deadline - now, absl::ZeroDuration()),
                    request.mutable_wait_limit());
    context->set_deadline(
        absl::ToChronoTime(std::max(deadline, now) + options_.deadline_slack));
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
  absl::MutexLock lock(&mu_);
  return killed_ || cancelled_;
}

absl::StatusOr<bool> Tank::HasFuel() {
  {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return CancelledError();
    if (TakeSurplus()) return true;
  }
  ActiveCall call(this);
  if (!call.registered()) return CancelledError();
  call.context()->set_deadline(
      absl::ToChronoTime(absl::Now() + options_.unary_deadline));
  v1::HasFuelRequest request;
  request.set_throttle(throttle_);
  request.set_worker_id(options_.worker_id);
  v1::HasFuelResponse response;
  const grpc::Status status =
      stub_->HasFuel(call.context(), request, &response);
  absl::MutexLock lock(&mu_);
  if (!status.ok()) {
    if (status.error_code() == grpc::StatusCode::CANCELLED && cancelled_) {
      return CancelledError();
    }
    return FromGrpcStatus(status);
  }
  if (response.stopped()) {
    killed_ = true;
    surplus_ = 0;
    return false;
  }
  if (response.granted()) killed_ = false;
  return response.granted();
}

absl::Status Tank::Emit(int64_t n) {
  ActiveCall call(this);
  if (!call.registered()) return CancelledError();
  call.context()->set_deadline(
      absl::ToChronoTime(absl::Now() + options_.unary_deadline));
  v1::EmitRequest request;
  request.set_throttle(throttle_);
  request.set_count(n);
  request.set_worker_id(options_.worker_id);
  v1::EmitResponse response;
  const grpc::Status status = stub_->Emit(call.context(), request, &response);
  if (status.error_code() == grpc::StatusCode::CANCELLED) {
    absl::MutexLock lock(&mu_);
    if (cancelled_) return CancelledError();
  }
  return FromGrpcStatus(status);
}

void Tank::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  // Safe under mu_: a context leaves active_ (under mu_) before it is
  // destroyed.
  for (grpc::ClientContext* context : active_) context->TryCancel();
}

bool Tank::TakeSurplus() {
  if (surplus_ <= 0) return false;
  --surplus_;
  return true;
}

bool Tank::SleepUnlessCancelled(absl::Duration delay) {
  absl::MutexLock lock(&mu_);
  mu_.AwaitWithTimeout(absl::Condition(&cancelled_), delay);
  return !cancelled_;
}

}  // namespace throttle
