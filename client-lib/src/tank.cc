#include "throttle/tank.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client-lib/src/acquire_stream.h"
#include "client-lib/src/backoff.h"
#include "client-lib/src/call_registry.h"
#include "client-lib/src/channel_watch.h"
#include "client-lib/src/proto_time.h"
#include "client-lib/src/real_time.h"
#include "throttle/channel.h"
#include "throttle/status.h"

namespace throttle {
namespace {

// The bound on AwaitFuel(n, timeout)'s n.
constexpr int64_t kMaxCount = 1000000;

FuelResult Result(FuelOutcome outcome, int64_t grants,
                  absl::Status status = absl::OkStatus()) {
  FuelResult result;
  result.outcome = outcome;
  result.grants = grants;
  result.status = std::move(status);
  return result;
}

FuelResult Closed() {
  return Result(FuelOutcome::kError, 0, TankClosedError());
}

AcquireStreamOptions StreamOptions(const std::string& throttle,
                                   const TankOptions& options) {
  AcquireStreamOptions stream;
  stream.throttle = throttle;
  stream.worker_id = options.worker_id;
  stream.weight = options.weight;
  stream.priority = options.priority;
  stream.backoff_initial = options.backoff_initial;
  stream.backoff_max = options.backoff_max;
  stream.clock = options.clock;
  stream.ask_ahead = options.ask_ahead;
  return stream;
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
      channel_(std::move(channel)),
      stub_(v1::Throttle::NewStub(channel_)),
      calls_(std::make_unique<CallRegistry>()),
      acquire_(std::make_unique<AcquireStream>(
          channel_.get(), stub_.get(), calls_.get(),
          StreamOptions(throttle_, options_))) {}

Tank::~Tank() { Close(); }

FuelResult Tank::AwaitFuel(absl::Duration timeout) {
  return AwaitFuel(1, timeout);
}

FuelResult Tank::AwaitFuel(int64_t n, absl::Duration timeout) {
  if (calls_->closed()) return Closed();
  if (n < 1 || n > kMaxCount) {
    return Result(
        FuelOutcome::kError, 0,
        absl::InvalidArgumentError(absl::StrCat("AwaitFuel: n must be in [1, ",
                                                kMaxCount, "], not ", n)));
  }
  const Clock& clock = *options_.clock;
  if (timeout <= absl::ZeroDuration()) {
    // "Only if available now": the server's answer is exact.
    const int64_t kept = acquire_->TakeKept(n);
    if (kept == n) return Result(FuelOutcome::kFuel, n);
    return AwaitWithCalls(n, kept, clock.Now(), /*finite=*/true);
  }
  const bool finite = timeout != absl::InfiniteDuration();
  const absl::Time deadline =
      finite ? clock.Now() + timeout : absl::InfiniteFuture();
  AcquireStream::Outcome outcome = acquire_->Await(n, deadline);
  if (!outcome.unimplemented) return std::move(outcome.result);
  return AwaitWithCalls(n, outcome.result.grants, deadline, finite);
}

FuelResult Tank::AwaitFuelUnlessLate(int64_t n, absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration() || timeout == absl::InfiniteDuration() ||
      n < 1 || n > kMaxCount || calls_->closed()) {
    return AwaitFuel(n, timeout);  // nothing can be late; or its error
  }
  const int64_t kept = acquire_->TakeKept(n);
  if (kept == n) return Result(FuelOutcome::kFuel, n);
  return AwaitWithCalls(n, kept, options_.clock->Now() + timeout,
                        /*finite=*/true, /*fail_if_late=*/true);
}

FuelResult Tank::AwaitWithCalls(int64_t n, int64_t got, absl::Time deadline,
                                bool finite, bool fail_if_late) {
  const Clock& clock = *options_.clock;
  Backoff backoff(options_.backoff_initial, options_.backoff_max);
  // False right after this wait's call found the server gone: not again
  // before a sleep, however short the backoff (fail fast does not retry).
  bool may_call = true;
  for (;;) {
    // Graceful degradation, from the state the Tank's Acquire stream
    // shares: while the server is lost, fail at once or take local grants
    // between calls to the server.
    const absl::Time now = clock.Now();
    const AcquireStream::CallStep step =
        acquire_->DegradeCall(n - got, now, may_call);
    if (!step.call) {
      if (step.action == LocalShare::Action::kFailFast) {
        return Result(FuelOutcome::kError, got, step.error);
      }
      got += step.grants;
      if (got == n) return Result(FuelOutcome::kFuel, n);
      if (fail_if_late && step.next_grant > deadline) {
        // As the server would say: the next grant is not due in time.
        FuelResult result = Result(FuelOutcome::kTooLate, got);
        result.expected_wait = step.next_grant - now;
        return result;
      }
      // A zero-timeout poll ends here: no local grant was due.
      if (deadline <= now) return Result(FuelOutcome::kTimedOut, got);
      // Watching the channel, as the stream's waiters do between attempts
      // (channel_watch.h): else its reconnection stalls.
      WaitWatchingChannel(
          channel_.get(), std::min(step.wake, deadline) - now,
          [this](grpc_connectivity_state) { return calls_->closed(); });
      if (calls_->closed()) {
        return Result(FuelOutcome::kError, got, TankClosedError());
      }
      may_call = true;
      continue;
    }
    const Attempt attempt = CallAwaitFuel(n - got, deadline, finite,
                                          fail_if_late, step.wait_for_ready);
    if (attempt.grants > 0) {
      const int64_t take = std::min(attempt.grants, n - got);
      got += take;
      if (attempt.end == v1::END_REASON_STOPPED) {
        // Fuel that fell due just before the stop: use it, drop the rest.
        acquire_->SawStopped();
      } else {
        acquire_->SawGrants(attempt.grants - take);
      }
      if (got == n) return Result(FuelOutcome::kFuel, n);
    }
    if (attempt.end == v1::END_REASON_STOPPED) {
      acquire_->SawStopped();
      return Result(FuelOutcome::kStopped, got);
    }
    if (attempt.end == v1::END_REASON_WAIT_LIMIT_PASSED) {
      return Result(FuelOutcome::kTimedOut, got);
    }
    if (attempt.end == v1::END_REASON_TOO_LATE) {
      FuelResult result = Result(FuelOutcome::kTooLate, got);
      result.expected_wait = attempt.expected_wait;
      return result;
    }
    switch (attempt.status.error_code()) {
      case grpc::StatusCode::OK:
        return Result(FuelOutcome::kError, got,
                      absl::InternalError(
                          "AwaitFuel stream ended without its grants or an "
                          "end reason"));
      case grpc::StatusCode::DEADLINE_EXCEEDED:
        // Our own deadline (timeout + slack): the server was unreachable or
        // its answer late.
        if (finite) return Result(FuelOutcome::kTimedOut, got);
        break;
      case grpc::StatusCode::CANCELLED:
        if (calls_->closed()) {
          return Result(FuelOutcome::kError, got, TankClosedError());
        }
        // Not our cancel: the server cancelled the call (a shutdown past
        // its grace period). Like UNAVAILABLE, call again later.
        [[fallthrough]];
      case grpc::StatusCode::UNAVAILABLE: {
        // The server is restarting or shutting down: call again later. It
        // may come back with Acquire.
        acquire_->RetryAcquire();
        // Degraded: the next turn fails or grants locally.
        if (acquire_->CallLost(clock.Now()) != LocalShare::Action::kWait) {
          may_call = false;
          continue;
        }
        absl::Duration delay;
        {
          absl::MutexLock lock(&mu_);
          delay = backoff.NextDelay(gen_);
        }
        if (finite) {
          const absl::Duration remaining = deadline - clock.Now();
          if (remaining <= absl::ZeroDuration()) {
            return Result(FuelOutcome::kTimedOut, got);
          }
          delay = std::min(delay, remaining);
        }
        if (!calls_->SleepUnlessClosed(delay)) {
          return Result(FuelOutcome::kError, got, TankClosedError());
        }
        continue;
      }
      default:
        break;
    }
    return Result(FuelOutcome::kError, got, FromGrpcStatus(attempt.status));
  }
}

Tank::Attempt Tank::CallAwaitFuel(int64_t count, absl::Time deadline,
                                  bool finite, bool fail_if_late,
                                  bool wait_for_ready) {
  Attempt attempt;
  CallRegistry::Call call(calls_.get());
  if (!call.registered()) {
    attempt.status = grpc::Status(grpc::StatusCode::CANCELLED, "cancelled");
    return attempt;
  }
  grpc::ClientContext* context = call.context();
  // Wait for a server that is (re)starting instead of failing at once --
  // unless the throttle degrades otherwise, when the call must end soon.
  context->set_wait_for_ready(wait_for_ready);

  v1::AwaitFuelRequest request;
  request.set_throttle(throttle_);
  request.set_count(count);
  request.set_worker_id(options_.worker_id);
  request.set_weight(options_.weight);
  request.set_priority(options_.priority);
  request.set_fail_if_late(fail_if_late);
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
    acquire_->CallAnswered(&response);
    attempt.grants += std::max<int64_t>(response.grants(), 0);
    if (response.end() != v1::END_REASON_UNSPECIFIED) {
      attempt.end = response.end();
      attempt.expected_wait = FromProtoDuration(response.expected_wait());
    }
  }
  attempt.status = reader->Finish();
  switch (attempt.status.error_code()) {
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::UNAVAILABLE:
    case grpc::StatusCode::CANCELLED:
      break;  // not (known to be) from the server
    default:
      // NOT_FOUND, INVALID_ARGUMENT, UNIMPLEMENTED ...: the server is there.
      acquire_->CallAnswered(nullptr);
  }
  return attempt;
}

bool Tank::killed() const {
  if (calls_->closed()) return true;
  return acquire_->killed();
}

absl::StatusOr<bool> Tank::HasFuel() {
  absl::StatusOr<FuelCheck> check = CheckFuel();
  if (!check.ok()) return check.status();
  return check->granted;
}

absl::StatusOr<FuelCheck> Tank::CheckFuel() {
  if (calls_->closed()) return TankClosedError();
  FuelCheck check;
  if (acquire_->TakeKept(1) == 1) {
    check.granted = true;
    return check;
  }
  CallRegistry::Call call(calls_.get());
  if (!call.registered()) return TankClosedError();
  call.context()->set_deadline(GrpcDeadlineAfter(options_.unary_deadline));
  v1::HasFuelRequest request;
  request.set_throttle(throttle_);
  request.set_worker_id(options_.worker_id);
  v1::HasFuelResponse response;
  const grpc::Status status =
      stub_->HasFuel(call.context(), request, &response);
  if (!status.ok()) return CallError(status);
  check.granted = response.granted();
  check.stopped = response.stopped();
  if (response.has_retry_after()) {
    check.retry_after = FromProtoDuration(response.retry_after());
  }
  if (check.stopped) {
    acquire_->SawStopped();
  } else if (check.granted) {
    acquire_->SawGrants(0);
  }
  return check;
}

absl::Status Tank::Emit(int64_t n) {
  CallRegistry::Call call(calls_.get());
  if (!call.registered()) return TankClosedError();
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

absl::StatusOr<int64_t> Tank::Report(int64_t successes, int64_t rejections) {
  CallRegistry::Call call(calls_.get());
  if (!call.registered()) return TankClosedError();
  call.context()->set_deadline(GrpcDeadlineAfter(options_.unary_deadline));
  v1::ReportRequest request;
  request.set_throttle(throttle_);
  request.set_worker_id(options_.worker_id);
  request.set_successes(successes);
  request.set_rejections(rejections);
  v1::ReportResponse response;
  const grpc::Status status = stub_->Report(call.context(), request, &response);
  if (!status.ok()) return CallError(status);
  return response.current_max_n();
}

void Tank::Close() {
  calls_->Close();
  // A waiter sleeping out a backoff delay learns of it at once.
  acquire_->WakeAll();
}

absl::Status Tank::CallError(const grpc::Status& status) const {
  if (status.error_code() == grpc::StatusCode::CANCELLED && calls_->closed()) {
    return TankClosedError();
  }
  return FromGrpcStatus(status);
}

}  // namespace throttle
