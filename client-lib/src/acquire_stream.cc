#include "client-lib/src/acquire_stream.h"

#include <algorithm>
#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "client-lib/src/channel_watch.h"
#include "client-lib/src/proto_time.h"
#include "client-lib/src/real_time.h"
#include "grpcpp/completion_queue.h"
#include "throttle/status.h"

namespace throttle {
namespace {

// The completion tags of the call's three kinds of operation.
void* const kWriteTag = reinterpret_cast<void*>(1);
void* const kReadTag = reinterpret_cast<void*>(2);
void* const kFinishTag = reinterpret_cast<void*>(3);

// The most demand one AcquireRequest may add (the proto's bound).
constexpr int64_t kMaxDemandPerMessage = 1000000;

// How long a waiter that leaves last waits for its withdrawal to be
// written (only when a write was in flight as it left).
constexpr absl::Duration kSettleTimeout = absl::Milliseconds(100);
// Asking ahead covers what the waiters took in about this long.
constexpr absl::Duration kAskAheadWindow = absl::Milliseconds(1);

}  // namespace

absl::Status TankClosedError() {
  return absl::CancelledError("throttle::Tank is closed");
}

// One waiting AwaitFuel call. Lives on its thread's stack while queued.
struct AcquireStream::Waiter {
  int64_t missing = 0;
  int64_t got = 0;
  bool done = false;
  bool unimplemented = false;
  FuelOutcome outcome = FuelOutcome::kError;
  absl::Status status;
  SteadyCondVar wake;
};

// One Acquire call. Members in order of destruction (last first): the
// stream, then the context (which releases the call), then the queue.
struct AcquireStream::Call {
  grpc::CompletionQueue queue;
  std::unique_ptr<CallRegistry::Call> registered;
  std::unique_ptr<
      grpc::ClientAsyncReaderWriter<v1::AcquireRequest, v1::AcquireResponse>>
      stream;
  v1::AcquireRequest request;
  v1::AcquireResponse response;
  grpc::Status status;
  bool first_written = false;
  bool write_pending = false;
  bool read_pending = false;
  bool read_ended = false;
  bool finish_pending = false;
  // The last message said END_REASON_STOPPED: no more demand is written.
  bool stopped = false;
  // What the server still owes by what was written and read, never below
  // zero: never more than the server's own count, so that the waiters'
  // demand is never short (docs/acquire-client-spec.md).
  int64_t outstanding = 0;

  bool accepts_demand() const { return !read_ended && !stopped; }
};

AcquireStream::AcquireStream(grpc::ChannelInterface* channel,
                             v1::Throttle::Stub* stub, CallRegistry* calls,
                             AcquireStreamOptions options)
    : channel_(channel),
      stub_(stub),
      calls_(calls),
      options_(std::move(options)),
      backoff_(options_.backoff_initial, options_.backoff_max) {}

AcquireStream::~AcquireStream() {
  SteadyMutexLock lock(&mu_);
  if (call_ == nullptr) return;
  call_->registered->context()->TryCancel();
  ReadNext();
  // Every operation completes soon after the cancel; the last, Finish,
  // releases the call.
  while (call_ != nullptr) {
    void* tag = nullptr;
    bool ok = false;
    if (!call_->queue.Next(&tag, &ok)) break;
    Handle(tag, ok);
  }
}

AcquireStream::Outcome AcquireStream::Await(int64_t n, absl::Time deadline) {
  SteadyMutexLock lock(&mu_);
  Waiter self;
  self.got = std::min(kept_, n);
  kept_ -= self.got;
  self.missing = n - self.got;
  Outcome outcome;
  if (self.missing == 0) {
    NoteTaken(n);
    Flush();  // asked ahead: top up before the kept grants run out
    outcome.result.outcome = FuelOutcome::kFuel;
    outcome.result.grants = n;
    return outcome;
  }
  if (unimplemented_) {
    outcome.unimplemented = true;
    outcome.result.grants = self.got;
    return outcome;
  }
  waiters_.push_back(&self);
  wanted_ += self.missing;
  Flush();
  if (call_ != nullptr) ReadNext();
  while (!self.done) {
    const absl::Time now = options_.clock->Now();
    Degrade(now);
    if (self.done) break;
    const absl::Duration left = deadline - now;
    if (left <= absl::ZeroDuration()) {
      Leave(&self);
      self.outcome = FuelOutcome::kTimedOut;
      if (waiters_.empty() && !polling_) Settle(kSettleTimeout);
      break;
    }
    if (!polling_) {
      polling_ = true;
      // Woken for the next local grant, if any.
      Poll(&self, std::min(left, local_.NextChange(now) - now));
      polling_ = false;
    } else {
      self.wake.WaitFor(&mu_, left);
    }
  }
  // Whoever leaves hands the polling on to the new head.
  if (!polling_ && !waiters_.empty()) waiters_.front()->wake.Signal();
  outcome.unimplemented = self.unimplemented;
  outcome.result.outcome = self.outcome;
  outcome.result.status = std::move(self.status);
  outcome.result.grants = self.got;
  return outcome;
}

void AcquireStream::Poll(Waiter* self, absl::Duration timeout) {
  if (call_ == nullptr) {
    if (calls_->closed()) {
      CompleteAll(FuelOutcome::kError, TankClosedError());
      return;
    }
    const absl::Duration backoff = reopen_at_ - options_.clock->Now();
    if (backoff > absl::ZeroDuration()) {
      // Not on self->wake: gRPC's connection attempts go on only while the
      // channel is polled (channel_watch.h). What would signal self->wake
      // (its grants handed over, Close) is seen within kChannelWatchStep.
      mu_.Unlock();
      WaitWatchingChannel(channel_, std::min(backoff, timeout),
                          [this, self](grpc_connectivity_state state) {
                            SteadyMutexLock lock(&mu_);
                            if (state != GRPC_CHANNEL_READY) {
                              reopen_when_connected_ = true;
                            } else if (reopen_when_connected_) {
                              reopen_at_ = absl::InfinitePast();
                            }
                            return self->done || calls_->closed() ||
                                   reopen_at_ == absl::InfinitePast();
                          });
      mu_.Lock();
      return;
    }
    Open();
    return;
  }
  Call* const call = call_.get();
  void* tag = nullptr;
  bool ok = false;
  // Only the poller retires the call, so it outlives the unlocked wait.
  mu_.Unlock();
  const grpc::CompletionQueue::NextStatus next =
      call->queue.AsyncNext(&tag, &ok, MonotonicDeadlineAfter(timeout));
  mu_.Lock();
  if (next == grpc::CompletionQueue::GOT_EVENT) Handle(tag, ok);
}

void AcquireStream::Settle(absl::Duration timeout) {
  // Real time, not the options' clock: this is not the caller's timeout,
  // and a test's clock may stand still.
  const gpr_timespec until = MonotonicDeadlineAfter(timeout);
  polling_ = true;
  while (call_ != nullptr && waiters_.empty() && call_->accepts_demand() &&
         (call_->write_pending || DemandChange() != 0)) {
    Call* const call = call_.get();
    void* tag = nullptr;
    bool ok = false;
    mu_.Unlock();
    const grpc::CompletionQueue::NextStatus next =
        call->queue.AsyncNext(&tag, &ok, until);
    mu_.Lock();
    if (next != grpc::CompletionQueue::GOT_EVENT) break;
    Handle(tag, ok);
  }
  polling_ = false;
}

void AcquireStream::Handle(void* tag, bool ok) {
  Call* const call = call_.get();
  if (tag == kWriteTag) {
    call->write_pending = false;
    // A failed write means a broken call: the pending read fails too.
    if (ok) Flush();
    MaybeFinish();
  } else if (tag == kReadTag) {
    call->read_pending = false;
    if (!ok) {
      call->read_ended = true;
      MaybeFinish();
      return;
    }
    backoff_.Reset();
    local_.Update(call->response);
    local_.ServerBack();
    unlimited_ = call->response.unlimited();
    const bool stopped = call->response.end() == v1::END_REASON_STOPPED;
    Grants(std::max<int64_t>(call->response.grants(), 0), stopped);
    if (!waiters_.empty() || stopped) ReadNext();
  } else if (tag == kFinishTag) {
    call->finish_pending = false;
    Ended();
  }
}

void AcquireStream::Open() {
  auto call = std::make_unique<Call>();
  call->registered = std::make_unique<CallRegistry::Call>(calls_);
  if (!call->registered->registered()) {
    CompleteAll(FuelOutcome::kError, TankClosedError());
    return;
  }
  grpc::ClientContext* context = call->registered->context();
  // Wait for a server that is (re)starting instead of failing at once --
  // unless the throttle degrades otherwise, when each attempt must end soon.
  context->set_wait_for_ready(local_.ActionAt(options_.clock->Now()) ==
                              LocalShare::Action::kWait);
  // The call's headers go with its first message, in one write.
  context->set_initial_metadata_corked(true);
  call->stream = stub_->PrepareAsyncAcquire(context, &call->queue);
  call->stream->StartCall(nullptr);
  call_ = std::move(call);
  Flush();
  ReadNext();
}

void AcquireStream::ReadNext() {
  Call* const call = call_.get();
  if (call->read_pending || call->read_ended) return;
  call->read_pending = true;
  call->stream->Read(&call->response, kReadTag);
}

void AcquireStream::Flush() {
  Call* const call = call_.get();
  if (call == nullptr || call->write_pending || !call->accepts_demand()) {
    return;
  }
  const int64_t change = DemandChange();
  if (call->first_written && change == 0) return;
  v1::AcquireRequest& request = call->request;
  request.Clear();
  if (!call->first_written) {
    request.set_throttle(options_.throttle);
    request.set_worker_id(options_.worker_id);
    request.set_weight(options_.weight);
    request.set_priority(options_.priority);
    call->first_written = true;
  }
  if (change > 0) {
    const int64_t demand = std::min(change, kMaxDemandPerMessage);
    request.set_demand(demand);
    call->outstanding += demand;
  } else if (change < 0) {
    request.set_withdraw(-change);
    call->outstanding = wanted_;
  }
  call->write_pending = true;
  call->stream->Write(request, kWriteTag);
}

int64_t AcquireStream::DemandChange() const {
  const Call* const call = call_.get();
  const int64_t exact = wanted_ - call->outstanding;
  if (!unlimited_) return exact;
  // While unlimited nothing is withdrawn: grants on their way would land
  // on top of the next top-up (what the waiters do not take is kept).
  const int64_t ask_ahead = AskAhead();
  if (ask_ahead <= 0) return std::max<int64_t>(exact, 0);
  // Grants kept or coming beyond what the waiters miss.
  const int64_t ahead = kept_ + call->outstanding - wanted_;
  if (ahead >= (ask_ahead + 1) / 2) return std::max<int64_t>(exact, 0);
  return ask_ahead - ahead;
}

void AcquireStream::NoteTaken(int64_t n) {
  const absl::Time now = options_.clock->Now();
  if (now - window_start_ >= kAskAheadWindow) {
    // A window or more passed: the last one's count, or none if longer.
    taken_before_ = now - window_start_ < 2 * kAskAheadWindow ? taken_now_ : 0;
    taken_now_ = 0;
    window_start_ = now;
  }
  taken_now_ += n;
}

int64_t AcquireStream::AskAhead() const {
  if (options_.ask_ahead <= 0) return 0;
  const int64_t pace = std::max(taken_now_, taken_before_);
  // One grant alone is no pace yet.
  return pace < 2 ? 0 : std::min(pace, options_.ask_ahead);
}

void AcquireStream::Grants(int64_t grants, bool stopped) {
  Call* const call = call_.get();
  call->outstanding = std::max<int64_t>(call->outstanding - grants, 0);
  if (grants > 0 && !stopped) killed_ = false;
  if (stopped) {
    HandOut(grants);
    // The rest of the grants are dropped with the kept ones.
    call->stopped = true;
    killed_ = true;
    kept_ = 0;
    CompleteAll(FuelOutcome::kStopped, absl::OkStatus());
    return;
  }
  HandOut(grants);
}

void AcquireStream::HandOut(int64_t grants) {
  while (grants > 0 && !waiters_.empty()) {
    Waiter* head = waiters_.front();
    const int64_t take = std::min(grants, head->missing);
    head->missing -= take;
    head->got += take;
    wanted_ -= take;
    grants -= take;
    if (head->missing == 0) {
      waiters_.pop_front();
      NoteTaken(head->got);
      Complete(head, FuelOutcome::kFuel);
    }
  }
  kept_ += grants;
}

void AcquireStream::Degrade(absl::Time now) {
  switch (local_.ActionAt(now)) {
    case LocalShare::Action::kLocal:
      // Only between reconnect attempts: an attempt under way either fails
      // at once (no wait_for_ready) or reached the server, whose grants
      // then come first -- local grants would withdraw its demand.
      if (call_ != nullptr) return;
      if (const int64_t grants = local_.Take(wanted_, now); grants > 0) {
        HandOut(grants);
      }
      return;
    case LocalShare::Action::kFailFast:
      // An attempt under way, or one due now, decides first.
      if (call_ == nullptr && now < reopen_at_) {
        CompleteAll(FuelOutcome::kError, LostError());
      }
      return;
    case LocalShare::Action::kWait:
      return;
  }
}

absl::Status AcquireStream::LostError() const {
  return absl::UnavailableError(absl::StrCat(
      "throttle ", options_.throttle,
      ": the server cannot be reached (degradation: ",
      local_.degradation() == v1::DEGRADATION_FAIL_FAST ? "fail fast"
                                                        : "no local share left",
      ")"));
}

void AcquireStream::MaybeFinish() {
  Call* const call = call_.get();
  if (!call->read_ended || call->write_pending || call->finish_pending) return;
  call->finish_pending = true;
  call->stream->Finish(&call->status, kFinishTag);
}

void AcquireStream::Ended() {
  const grpc::Status status = call_->status;
  const bool stopped = call_->stopped;
  // Release the call before its queue: the stream, the context, then the
  // queue, shut down and drained (nothing is left in it).
  call_->stream.reset();
  call_->registered.reset();
  call_->queue.Shutdown();
  void* tag = nullptr;
  bool ok = false;
  while (call_->queue.Next(&tag, &ok)) {
  }
  call_.reset();

  if (calls_->closed()) {
    CompleteAll(FuelOutcome::kError, TankClosedError());
    return;
  }
  switch (status.error_code()) {
    case grpc::StatusCode::OK:
      // After END_REASON_STOPPED every waiter was answered; a new waiter
      // opens a new call (which ends at once while the throttle is stopped).
      if (!stopped) {
        CompleteAll(FuelOutcome::kError,
                    absl::InternalError("Acquire stream ended without "
                                        "END_REASON_STOPPED"));
      }
      return;
    case grpc::StatusCode::CANCELLED:  // not by Close(): a server shutdown
    case grpc::StatusCode::UNAVAILABLE:
      // The waiters wait on (or degrade); a new call asks for what they
      // still miss.
      local_.ServerLost(options_.clock->Now());
      reopen_at_ = options_.clock->Now() + backoff_.NextDelay(gen_);
      reopen_when_connected_ =
          channel_->GetState(/*try_to_connect=*/false) != GRPC_CHANNEL_READY;
      return;
    case grpc::StatusCode::UNIMPLEMENTED:
      // An older server: the waiters make AwaitFuel calls instead.
      unimplemented_ = true;
      for (Waiter* waiter : waiters_) waiter->unimplemented = true;
      CompleteAll(FuelOutcome::kError, FromGrpcStatus(status));
      return;
    default:
      CompleteAll(FuelOutcome::kError, FromGrpcStatus(status));
      return;
  }
}

void AcquireStream::Leave(Waiter* waiter) {
  waiters_.erase(std::find(waiters_.begin(), waiters_.end(), waiter));
  wanted_ -= waiter->missing;
  Flush();
}

void AcquireStream::Complete(Waiter* waiter, FuelOutcome outcome,
                             absl::Status status) {
  waiter->done = true;
  waiter->outcome = outcome;
  waiter->status = std::move(status);
  waiter->wake.Signal();
}

void AcquireStream::CompleteAll(FuelOutcome outcome,
                                const absl::Status& status) {
  for (Waiter* waiter : waiters_) Complete(waiter, outcome, status);
  waiters_.clear();
  wanted_ = 0;
}

int64_t AcquireStream::TakeKept(int64_t n) {
  SteadyMutexLock lock(&mu_);
  const int64_t taken = std::min(kept_, n);
  kept_ -= taken;
  return taken;
}

void AcquireStream::SawGrants(int64_t extra) {
  SteadyMutexLock lock(&mu_);
  killed_ = false;
  kept_ += extra;
}

void AcquireStream::SawStopped() {
  SteadyMutexLock lock(&mu_);
  killed_ = true;
  kept_ = 0;
}

bool AcquireStream::killed() const {
  SteadyMutexLock lock(&mu_);
  return killed_;
}

void AcquireStream::RetryAcquire() {
  SteadyMutexLock lock(&mu_);
  unimplemented_ = false;
}

void AcquireStream::WakeAll() {
  SteadyMutexLock lock(&mu_);
  for (Waiter* waiter : waiters_) waiter->wake.Signal();
}

AcquireStream::CallStep AcquireStream::DegradeCall(int64_t missing,
                                                   absl::Time now,
                                                   bool may_call) {
  SteadyMutexLock lock(&mu_);
  CallStep step;
  step.action = local_.ActionAt(now);
  // As the stream's waiters: between reconnect attempts only; an attempt
  // decides first (and the server's answer takes over).
  step.call = step.action == LocalShare::Action::kWait ||
              (may_call && now >= reopen_at_);
  step.wait_for_ready = local_.degradation() == v1::DEGRADATION_WAIT;
  if (step.call) return step;
  if (step.action == LocalShare::Action::kFailFast) {
    step.error = LostError();
    return step;
  }
  step.grants = local_.Take(missing, now);
  step.next_grant = local_.NextGrant(now);
  step.wake = std::min(local_.NextChange(now), reopen_at_);
  return step;
}

void AcquireStream::CallAnswered(const v1::AwaitFuelResponse* response) {
  SteadyMutexLock lock(&mu_);
  if (response != nullptr) {
    local_.Update(response->degradation(),
                  FromProtoDuration(response->local_share_for()),
                  response->share_per_second());
  }
  local_.ServerBack();
  backoff_.Reset();
  // The server is back: a stream between attempts may open at once.
  reopen_at_ = absl::InfinitePast();
}

LocalShare::Action AcquireStream::CallLost(absl::Time now) {
  SteadyMutexLock lock(&mu_);
  local_.ServerLost(now);
  if (now >= reopen_at_) reopen_at_ = now + backoff_.NextDelay(gen_);
  return local_.ActionAt(now);
}

}  // namespace throttle
