// throttle::ThrottleWatch (throttle/watch.h): the WatchThrottle stream read
// by Next() on the caller's thread. There is no reader thread: Next() waits
// on the call's completion queue for its own timeout, and Cancel() wakes it
// by cancelling the call, or between calls (the backoff) by waking its
// sleep, as the Controller's Close() also does.
#include "throttle/watch.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <utility>

#include "absl/random/random.h"
#include "client-lib/src/backoff.h"
#include "client-lib/src/call_registry.h"
#include "client-lib/src/proto_time.h"
#include "client-lib/src/real_time.h"
#include "client-lib/src/steady_mutex.h"
#include "grpcpp/completion_queue.h"
#include "throttle/clock.h"
#include "throttle/controller.h"
#include "throttle/status.h"

namespace throttle {
namespace {

// The completion tags of the call's three kinds of operation.
void* const kStartTag = reinterpret_cast<void*>(1);
void* const kReadTag = reinterpret_cast<void*>(2);
void* const kFinishTag = reinterpret_cast<void*>(3);

absl::Status WatchCancelledError() {
  return absl::CancelledError("throttle::ThrottleWatch is cancelled");
}

// The same words as Controller's own (controller.cc).
absl::Status ControllerClosedError() {
  return absl::CancelledError("throttle::Controller is closed");
}

v1::WatchThrottleRequest Request(std::string throttle,
                                 const WatchOptions& options) {
  v1::WatchThrottleRequest request;
  request.set_throttle(std::move(throttle));
  // Zero leaves a field unset: the server's default. Anything else is sent
  // as given, for the server to judge (it names the field).
  if (options.interval != absl::ZeroDuration()) {
    ToProtoDuration(options.interval, request.mutable_interval());
  }
  if (options.window != absl::ZeroDuration()) {
    ToProtoDuration(options.window, request.mutable_window());
  }
  return request;
}

}  // namespace

// One WatchThrottle call. Members in order of destruction (last first): the
// reader, then the context (which releases the call), then the queue.
struct ThrottleWatch::Call {
  grpc::CompletionQueue queue;
  std::unique_ptr<CallRegistry::Call> registered;
  std::unique_ptr<grpc::ClientAsyncReader<v1::WatchThrottleResponse>> reader;
  v1::WatchThrottleResponse response;
  grpc::Status status;
  bool read_pending = false;
  bool finish_pending = false;
  bool finished = false;
};

class ThrottleWatch::State {
 public:
  State(v1::Throttle::Stub* stub, CallRegistry* calls,
        v1::WatchThrottleRequest request, const WatchOptions& options)
      : stub_(stub),
        calls_(calls),
        request_(std::move(request)),
        reconnect_(options.reconnect),
        backoff_(options.backoff_initial, options.backoff_max) {}

  ~State() {
    SteadyMutexLock lock(&mu_);
    cancelled_ = true;
    if (call_ != nullptr) Abandon();
  }

  absl::StatusOr<v1::WatchThrottleResponse> Next(absl::Duration timeout) {
    SteadyMutexLock lock(&mu_);
    const absl::Time deadline = SteadyClock()->Now() + timeout;
    for (;;) {
      if (!end_.ok()) return end_;
      if (cancelled_ || calls_->closed()) {
        if (call_ != nullptr) Abandon();
        end_ = cancelled_ ? WatchCancelledError() : ControllerClosedError();
        continue;
      }
      const absl::Time now = SteadyClock()->Now();
      if (call_ == nullptr) {
        if (now < reopen_at_) {
          if (now >= deadline) return TimedOut();
          // Cancel() and the Controller's Close() both end this sleep.
          const absl::Duration sleep = std::min(reopen_at_, deadline) - now;
          mu_.Unlock();
          calls_->SleepUnlessClosedOr(sleep, stopping_);
          mu_.Lock();
        } else {
          Open();
        }
        continue;
      }
      Call* const call = call_.get();
      void* tag = nullptr;
      bool ok = false;
      // Only this thread retires the call, so it outlives the unlocked
      // wait; Cancel() reaches it through its context meanwhile.
      mu_.Unlock();
      const grpc::CompletionQueue::NextStatus next = call->queue.AsyncNext(
          &tag, &ok, MonotonicDeadlineAfter(deadline - now));
      mu_.Lock();
      if (next != grpc::CompletionQueue::GOT_EVENT) {
        if (SteadyClock()->Now() >= deadline) return TimedOut();
        continue;
      }
      if (tag == kReadTag) {
        call->read_pending = false;
        if (ok) {
          backoff_.Reset();
          v1::WatchThrottleResponse snapshot = std::move(call->response);
          call->response.Clear();
          Read();
          return snapshot;
        }
        call->finish_pending = true;
        call->reader->Finish(&call->status, kFinishTag);
      } else if (tag == kFinishTag) {
        call->finish_pending = false;
        call->finished = true;
        Ended();
      }
    }
  }

  void Cancel() {
    {
      SteadyMutexLock lock(&mu_);
      if (cancelled_) return;
      cancelled_ = true;
      stopping_.store(true);
      // Ends a read Next() waits for; TryCancel does not block.
      if (call_ != nullptr) call_->registered->context()->TryCancel();
    }
    calls_->WakeSleepers();  // ends a backoff Next() sleeps out
  }

 private:
  absl::Status TimedOut() const {
    return absl::DeadlineExceededError(
        "no snapshot of throttle '" + request_.throttle() +
        "' within the timeout; the watch goes on");
  }

  void Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto call = std::make_unique<Call>();
    call->registered = std::make_unique<CallRegistry::Call>(calls_);
    if (!call->registered->registered()) {
      end_ = ControllerClosedError();
      return;
    }
    call->reader = stub_->PrepareAsyncWatchThrottle(call->registered->context(),
                                                    request_, &call->queue);
    call->reader->StartCall(kStartTag);
    call_ = std::move(call);
    Read();
  }

  void Read() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call_->read_pending = true;
    call_->reader->Read(&call_->response, kReadTag);
  }

  // The call finished: releases it and acts on its status.
  void Ended() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const grpc::Status status = call_->status;
    Release();
    if (cancelled_) {
      end_ = WatchCancelledError();
      return;
    }
    if (calls_->closed()) {
      end_ = ControllerClosedError();
      return;
    }
    switch (status.error_code()) {
      case grpc::StatusCode::OK:         // the server ended it (it should not)
      case grpc::StatusCode::CANCELLED:  // not by us: a server shutting down
      case grpc::StatusCode::UNAVAILABLE:  // lost, or the server shut down
        if (reconnect_) {
          reopen_at_ = SteadyClock()->Now() + backoff_.NextDelay(gen_);
        } else if (status.ok()) {
          end_ = absl::UnavailableError("the server ended the watch of '" +
                                        request_.throttle() + "'");
        } else {
          end_ = FromGrpcStatus(status);
        }
        return;
      default:
        end_ = FromGrpcStatus(status);
        return;
    }
  }

  // Cancels the call, waits for its operations to complete (a few
  // milliseconds) and releases it.
  void Abandon() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    Call* const call = call_.get();
    call->registered->context()->TryCancel();
    while (!call->finished) {
      if (!call->read_pending && !call->finish_pending) {
        call->finish_pending = true;
        call->reader->Finish(&call->status, kFinishTag);
      }
      void* tag = nullptr;
      bool ok = false;
      if (!call->queue.Next(&tag, &ok)) break;
      if (tag == kReadTag) call->read_pending = false;
      if (tag == kFinishTag) call->finished = true;
    }
    Release();
  }

  // Releases a finished call: the reader, the context, then the queue,
  // shut down and drained (of the start's completion, if nothing else).
  void Release() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    call_->reader.reset();
    call_->registered.reset();
    call_->queue.Shutdown();
    void* tag = nullptr;
    bool ok = false;
    while (call_->queue.Next(&tag, &ok)) {
    }
    call_.reset();
  }

  v1::Throttle::Stub* const stub_;
  CallRegistry* const calls_;
  const v1::WatchThrottleRequest request_;
  const bool reconnect_;

  SteadyMutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  // cancelled_ for the backoff's sleep, which is not under mu_.
  std::atomic<bool> stopping_{false};
  // How the watch ended; OK while it goes on.
  absl::Status end_ ABSL_GUARDED_BY(mu_);
  // The open call, if any. Opened and retired by Next() alone.
  std::unique_ptr<Call> call_ ABSL_GUARDED_BY(mu_);
  // No call is opened before this point on SteadyClock() (backoff).
  absl::Time reopen_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  Backoff backoff_ ABSL_GUARDED_BY(mu_);
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
};

ThrottleWatch::ThrottleWatch(const Controller& controller, std::string throttle,
                             WatchOptions options)
    : throttle_(throttle),
      state_(std::make_unique<State>(
          controller.stub_.get(), controller.calls_.get(),
          Request(std::move(throttle), options), options)) {}

ThrottleWatch::~ThrottleWatch() = default;

absl::StatusOr<v1::WatchThrottleResponse> ThrottleWatch::Next(
    absl::Duration timeout) {
  return state_->Next(timeout);
}

void ThrottleWatch::Cancel() { state_->Cancel(); }

std::unique_ptr<ThrottleWatch> Controller::Watch(absl::string_view name,
                                                 WatchOptions options) const {
  return std::make_unique<ThrottleWatch>(*this, std::string(name),
                                         std::move(options));
}

}  // namespace throttle
