#include "server/service/fuel_reactor.h"

#include <atomic>
#include <cmath>
#include <optional>
#include <type_traits>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "server/service/convert.h"
#include "server/service/log.h"
#include "server/service/metrics.h"

namespace throttle::server {
namespace {

// The write side of one grant stream (AwaitFuel's or Acquire's): a small
// queue of grants drained with one write in flight. `Reactor` is the gRPC
// reactor type it completes (a ServerWriteReactor or ServerBidiReactor of
// `Response`, which has `grants` and `end`). Reference-counted: gRPC holds
// one reference until OnDone, and each pending Delivery holds one, so a
// reactor never dies under a caller.
//
// Finish is called exactly once, on whichever path ends the call first:
// a refused or bad request, the end of the stream (count reached, stopped,
// wait limit, deleted, shutting down, the client half-closed), a failed
// write, or a cancel -- with a write in flight, the cancel's Finish waits
// for that write's OnWriteDone, whatever its outcome. `finished_` records
// it under mu_.
//
// Thread-safe.
template <typename Reactor, typename Response>
class GrantStream : public Reactor, public StreamSink {
 public:
  GrantStream(ThrottleTable* table, const char* method,
              std::unique_ptr<StreamLimits::Slot> slot)
      : table_(table), method_(method), slot_(std::move(slot)) {}

  void Ref() override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() override {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Queues grants and/or the end of the stream at `now`. Grants it cannot
  // take -- the stream is gone or ending, or its write has not drained
  // within the stall timeout (then what it had queued goes back too) -- are
  // returned to be given back.
  Rejected Deliver(const Delivery& delivery, absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    Rejected rejected;
    Op op;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || cancelled_ || end_.has_value()) {
        rejected.gone = finished_ || cancelled_;
        if (delivery.batch.grants > 0) {
          rejected.grants.push_back(delivery.batch);
        }
        return rejected;
      }
      if (delivery.batch.grants > 0) {
        pending_.push_back(delivery.batch);
      }
      // A stream that wants at most n gets at most n, and grants given back
      // would not be owed to it again: only a count-0 stream and an
      // on-demand one (whose demand the table restores) can stall. An end
      // (stopped, say) is delivered whole.
      const bool ending = delivery.end != EndReason::kNone;
      if (can_stall_ && !ending && write_in_flight_ && !stalled_ &&
          now - write_started_ >= table_->stream_stall_timeout()) {
        stalled_ = true;
        rejected.stalled = true;
      }
      if (stalled_ && !ending) {
        rejected.grants = std::move(pending_);
        pending_.clear();
      }
      if (delivery.end != EndReason::kNone) {
        end_ = delivery.end;
        end_status_ = delivery.closed_status;
        expected_wait_ = delivery.expected_wait;
      }
      unlimited_mode_ = delivery.unlimited;
      share_per_second_ = delivery.share_per_second;
      degradation_ = delivery.degradation;
      local_share_for_ = delivery.local_share_for;
      op = NextOpLocked(now);
    }
    Perform(op);
    return rejected;
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    Op op = Op::kNone;
    std::vector<GrantBatch> lost;
    bool drained = false;
    bool resumed = false;
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      if (ok) {
        in_flight_.clear();  // it reached the transport
      } else {
        // The stream broke: nothing queued will reach it.
        lost = std::move(in_flight_);
        lost.insert(lost.end(), pending_.begin(), pending_.end());
        in_flight_.clear();
        pending_.clear();
        cancelled_ = true;
        end_status_ = grpc::Status(grpc::StatusCode::CANCELLED,
                                   "stream broke while writing");
      }
      if (cancelled_) {
        // Cancelled while this write was in flight: OnCancel left the
        // Finish to us.
        op = FinishLocked();
      } else {
        resumed = stalled_;
        stalled_ = false;
        drained = unlimited_ && pending_.empty();
        op = NextOpLocked(table_->clock()->Now());
      }
    }
    if (!ok) {
      table_->CloseStream(uid_, id_, lost);
    } else if (resumed) {
      table_->StreamResumed(uid_, id_);
    } else if (drained) {
      table_->StreamDrained(uid_, id_);
    }
    Perform(op);
  }

  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<GrantBatch> lost;
    Op op = Op::kNone;
    bool bound = false;
    {
      absl::MutexLock lock(&mu_);
      cancelled_ = true;
      lost = std::move(pending_);
      pending_.clear();
      if (final_write_) {
        // A final write whose call was cancelled: assume it did not arrive.
        lost.insert(lost.end(), in_flight_.begin(), in_flight_.end());
        in_flight_.clear();
      }
      end_status_ = grpc::Status::CANCELLED;
      // With a write in flight, its OnWriteDone finishes.
      if (!write_in_flight_) op = FinishLocked();
      bound = bound_;
      // Cancelled while Open is still opening the stream (an Acquire
      // stream opens in OnReadDone, which may run beside this): Open
      // closes it, with these grants.
      if (!bound) lost_unbound_ = std::move(lost);
    }
    if (bound) table_->CloseStream(uid_, id_, lost);
    Perform(op);
  }

  void OnDone() override { Unref(); }

 protected:
  // Opens the stream in the table: true if it is open (its first grants may
  // have been delivered already), else the call is finished with the error.
  bool Open(const std::string& throttle, const StreamRequest& request,
            absl::string_view worker_id) {
    unlimited_ = request.count == 0 && !request.on_demand;
    can_stall_ = unlimited_ || request.on_demand;
    // Its ids are set (under the table's mutex) before any delivery or
    // callback can read them.
    grpc::Status open =
        table_->OpenStream(this, throttle, request, worker_id, &uid_, &id_);
    if (!open.ok()) {
      FinishOnce(open);
      return false;
    }
    // Bound under mu_, so that exactly one of this and OnCancel closes the
    // stream in the table: a cancel that came while the stream was being
    // opened (its first grants may have reached the client already) left
    // it to us.
    std::vector<GrantBatch> lost;
    bool cancelled = false;
    {
      absl::MutexLock lock(&mu_);
      bound_ = true;
      cancelled = cancelled_;
      lost = std::move(lost_unbound_);
    }
    if (cancelled) table_->CloseStream(uid_, id_, lost);
    return !cancelled;
  }
  bool bound() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return bound_;
  }
  uint64_t uid() const { return uid_; }
  StreamId id() const { return id_; }

  // Ends the stream from our side: with `status`, or -- OK -- without a
  // final message when the client half-closed. Grants not yet written go
  // back to the throttle; the call finishes once the write in flight is
  // done.
  void EndFromHere(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<GrantBatch> lost;
    Op op = Op::kNone;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || cancelled_ || end_.has_value()) return;
      lost = std::move(pending_);
      pending_.clear();
      end_ = EndReason::kClosed;
      end_status_ = status;
      op = NextOpLocked(table_->clock()->Now());
    }
    if (bound()) table_->CloseStream(uid_, id_, lost);
    Perform(op);
  }

  // Whether the call is over or ending: no more reads are worth starting.
  bool Ending() const ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return finished_ || cancelled_ || end_.has_value();
  }

  // The first and only Finish when nothing else can have claimed it yet
  // (a refused or bad request); claimed all the same, so a later OnCancel
  // does not finish again.
  void FinishOnce(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (FinishLocked() == Op::kNone) return;
      end_status_ = status;
    }
    FinishWith(status);
  }

  ThrottleTable* table() const { return table_; }
  // Holds the stream's place under the stream limits until the reactor is
  // deleted.
  void HoldSlot(std::unique_ptr<StreamLimits::Slot> slot) {
    slot_ = std::move(slot);
  }

 private:
  enum class Op { kNone, kWrite, kWriteAndFinish, kFinish };

  // Claims the one Finish of this call, with end_status_; kNone if it was
  // claimed already.
  Op FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return Op::kNone;
    finished_ = true;
    return Op::kFinish;
  }

  // Decides the next operation and prepares response_ for it.
  Op NextOpLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_in_flight_ || finished_) return Op::kNone;
    if (end_ == EndReason::kClosed) {
      pending_.clear();  // the throttle is gone: nothing to give back to
      return FinishLocked();
    }
    int64_t grants = 0;
    for (const auto& p : pending_) grants += p.grants;
    if (grants == 0 && !end_.has_value()) return Op::kNone;
    response_.Clear();
    response_.set_grants(grants);
    if constexpr (std::is_same_v<Response, v1::AcquireResponse>) {
      response_.set_unlimited(unlimited_mode_);
    }
    if (grants > 0) SetShareLocked();
    in_flight_ = std::move(pending_);
    pending_.clear();
    if (!end_.has_value()) {
      write_in_flight_ = true;
      write_started_ = now;
      return Op::kWrite;
    }
    if (end_ == EndReason::kStopped) {
      response_.set_end(v1::END_REASON_STOPPED);
    } else if (end_ == EndReason::kWaitLimitPassed) {
      response_.set_end(v1::END_REASON_WAIT_LIMIT_PASSED);
    }
    if constexpr (std::is_same_v<Response, v1::AwaitFuelResponse>) {
      if (end_ == EndReason::kTooLate) {
        response_.set_end(v1::END_REASON_TOO_LATE);
        DurationToProto(expected_wait_, response_.mutable_expected_wait());
      }
    }
    finished_ = true;
    final_write_ = true;
    end_status_ = grpc::Status::OK;
    return Op::kWriteAndFinish;
  }

  // Graceful degradation: puts the policy and the share on the response
  // when this stream has not been told them yet or they changed (the share
  // by more than 1%), so most grant messages carry nothing more.
  void SetShareLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const bool share_moved =
        std::abs(share_per_second_ - sent_share_per_second_) >
        0.01 * sent_share_per_second_;
    if (policy_sent_ && degradation_ == sent_degradation_ &&
        local_share_for_ == sent_local_share_for_ && !share_moved) {
      return;
    }
    policy_sent_ = true;
    sent_degradation_ = degradation_;
    sent_local_share_for_ = local_share_for_;
    sent_share_per_second_ = share_per_second_;
    response_.set_degradation(DegradationToProto(degradation_));
    if (degradation_ == Degradation::kLocalShare) {
      DurationToProto(local_share_for_, response_.mutable_local_share_for());
    }
    response_.set_share_per_second(share_per_second_);
  }

  // Runs an operation chosen under mu_; touches no member after gRPC may
  // have called OnDone (the caller's reference keeps `this` alive anyway).
  void Perform(Op op) {
    switch (op) {
      case Op::kNone:
        return;
      case Op::kWrite:
        this->StartWrite(&response_);
        return;
      case Op::kWriteAndFinish:
        this->StartWriteAndFinish(&response_, grpc::WriteOptions(),
                                  grpc::Status::OK);
        return;
      case Op::kFinish: {
        grpc::Status status;
        {
          absl::MutexLock lock(&mu_);
          status = end_status_;
        }
        FinishWith(status);
        return;
      }
    }
  }

  // Finishes the call, counting a non-OK status for the metrics.
  void FinishWith(const grpc::Status& status) {
    CountCallError(table_->metrics(), method_, status);
    this->Finish(status);
  }

  ThrottleTable* const table_;
  const char* const method_;                  // for the metrics
  std::unique_ptr<StreamLimits::Slot> slot_;  // freed with the reactor
  std::atomic<int> refs_{1};                  // gRPC's, until OnDone
  // Set by Open before the stream can get a delivery or a callback that
  // reads them.
  bool unlimited_ = false;  // count 0: until the throttle stops
  bool can_stall_ = false;  // a stalled write holds the stream
  uint64_t uid_ = 0;        // of its throttle
  StreamId id_ = 0;

  mutable absl::Mutex mu_;
  bool bound_ ABSL_GUARDED_BY(mu_) = false;  // the stream is open in the table
  // Grants a cancel took before the stream was bound, for Open to give back.
  std::vector<GrantBatch> lost_unbound_ ABSL_GUARDED_BY(mu_);
  std::vector<GrantBatch> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<GrantBatch> in_flight_ ABSL_GUARDED_BY(mu_);
  std::optional<EndReason> end_ ABSL_GUARDED_BY(mu_);
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  // With end_ kTooLate: the next grant's expected wait.
  absl::Duration expected_wait_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;
  bool final_write_ ABSL_GUARDED_BY(mu_) = false;
  // What the last delivery said: the throttle's fuel is not limited.
  bool unlimited_mode_ ABSL_GUARDED_BY(mu_) = false;
  // The latest share and policy delivered, and what this stream was last
  // told (SetShareLocked).
  double share_per_second_ ABSL_GUARDED_BY(mu_) = 0;
  Degradation degradation_ ABSL_GUARDED_BY(mu_) = Degradation::kWait;
  absl::Duration local_share_for_ ABSL_GUARDED_BY(mu_);
  bool policy_sent_ ABSL_GUARDED_BY(mu_) = false;
  double sent_share_per_second_ ABSL_GUARDED_BY(mu_) = 0;
  Degradation sent_degradation_ ABSL_GUARDED_BY(mu_) = Degradation::kWait;
  absl::Duration sent_local_share_for_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  Response response_;  // owned by gRPC while a write runs
};

// One AwaitFuel call: its request opens the stream at once.
class FuelReactor final
    : public GrantStream<grpc::ServerWriteReactor<v1::AwaitFuelResponse>,
                         v1::AwaitFuelResponse> {
 public:
  FuelReactor(ThrottleTable* table, const v1::AwaitFuelRequest& request,
              const grpc::Status& admitted,
              std::unique_ptr<StreamLimits::Slot> slot)
      : GrantStream(table, "AwaitFuel", std::move(slot)) {
    if (!admitted.ok()) {
      FinishOnce(admitted);
      return;
    }
    absl::StatusOr<StreamRequest> stream_request = FromProto(request);
    absl::Status status = stream_request.ok()
                              ? ValidateName("throttle", request.throttle())
                              : stream_request.status();
    if (!status.ok()) {
      FinishOnce(ToGrpcStatus(status));
      return;
    }
    if (LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "stream_opened",
          {{"throttle", request.throttle()},
           {"worker_id", request.worker_id()},
           {"count", absl::StrCat(stream_request->count)},
           {"weight", absl::StrCat(stream_request->weight)}});
    }
    Open(request.throttle(), *stream_request, request.worker_id());
  }
};

// One Acquire call: the first message opens the stream, every message
// changes its demand. One read is outstanding at a time until the call
// ends.
class AcquireReactor final
    : public GrantStream<
          grpc::ServerBidiReactor<v1::AcquireRequest, v1::AcquireResponse>,
          v1::AcquireResponse> {
 public:
  // gRPC calls OnDone only after the last OnReadDone, so a read needs no
  // reference of its own.
  AcquireReactor(ThrottleTable* table, AdmitStreamFn admit)
      : GrantStream(table, "Acquire", nullptr), admit_(std::move(admit)) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      // The client half-closed: its demand is withdrawn and the call ends
      // (if it is cancelled instead, OnCancel has finished or will).
      if (bound()) {
        EndFromHere(grpc::Status::OK);
      } else {
        FinishOnce(grpc::Status::OK);  // not even a first message
      }
      return;
    }
    const bool open = !bound() ? OpenFromFirst() : ApplyDemand();
    if (open && !Ending()) StartRead(&request_);
  }

 private:
  // The first message: admission, validation, then the stream opens with
  // its first demand. Returns whether the stream is open.
  bool OpenFromFirst() {
    absl::StatusOr<std::unique_ptr<StreamLimits::Slot>> slot =
        admit_(request_.throttle());
    if (!slot.ok()) {
      FinishOnce(ToGrpcStatus(slot.status()));
      return false;
    }
    HoldSlot(*std::move(slot));
    absl::StatusOr<StreamRequest> stream_request = FromProto(request_);
    if (!stream_request.ok()) {
      FinishOnce(ToGrpcStatus(stream_request.status()));
      return false;
    }
    if (LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "acquire_opened",
          {{"throttle", request_.throttle()},
           {"worker_id", request_.worker_id()},
           {"demand", absl::StrCat(stream_request->count)},
           {"weight", absl::StrCat(stream_request->weight)}});
    }
    return Open(request_.throttle(), *stream_request, request_.worker_id());
  }

  // A later message: more demand, or demand withdrawn. Returns whether the
  // stream goes on.
  bool ApplyDemand() {
    absl::Status status = ValidateDemand(request_);
    if (status.ok() && (request_.demand() != 0 || request_.withdraw() != 0)) {
      status = table()->AddDemand(uid(), id(), request_.withdraw(),
                                  request_.demand());
    }
    if (!status.ok()) {
      EndFromHere(ToGrpcStatus(status));
      return false;
    }
    return true;
  }

  const AdmitStreamFn admit_;
  v1::AcquireRequest request_;  // owned by gRPC while a read runs
};

}  // namespace

grpc::ServerWriteReactor<v1::AwaitFuelResponse>* NewFuelReactor(
    ThrottleTable* table, const v1::AwaitFuelRequest& request,
    const grpc::Status& admitted, std::unique_ptr<StreamLimits::Slot> slot) {
  return new FuelReactor(table, request, admitted, std::move(slot));
}

grpc::ServerBidiReactor<v1::AcquireRequest, v1::AcquireResponse>*
NewAcquireReactor(ThrottleTable* table, AdmitStreamFn admit) {
  return new AcquireReactor(table, std::move(admit));
}

}  // namespace throttle::server
