#include "server/service/fuel_reactor.h"

#include <atomic>
#include <optional>
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

// One AwaitFuel stream: a small queue of grants drained with one write in
// flight. Reference-counted: gRPC holds one reference until OnDone, and
// each pending Delivery holds one, so a reactor never dies under a caller.
//
// Finish is called exactly once, on whichever path ends the call first:
// the constructor (bad request, no such throttle), the end of the stream
// (count reached, stopped, wait limit, deleted, shutting down), a failed
// write, or a cancel -- with a write in flight, the cancel's Finish waits
// for that write's OnWriteDone, whatever its outcome. `finished_` records
// it under mu_.
//
// Thread-safe.
class FuelReactor final
    : public grpc::ServerWriteReactor<v1::AwaitFuelResponse>,
      public StreamSink {
 public:
  FuelReactor(ThrottleTable* table, const v1::AwaitFuelRequest& request,
              const grpc::Status& admitted,
              std::unique_ptr<StreamLimits::Slot> slot)
      : table_(table), slot_(std::move(slot)) {
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
    unlimited_ = stream_request->count == 0;
    if (LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "stream_opened",
          {{"throttle", request.throttle()},
           {"worker_id", request.worker_id()},
           {"count", absl::StrCat(stream_request->count)},
           {"weight", absl::StrCat(stream_request->weight)}});
    }
    // Its ids are set before any delivery or callback can read them.
    grpc::Status open = table_->OpenStream(this, request.throttle(),
                                           *stream_request, &uid_, &id_);
    if (open.ok()) {
      bound_ = true;
    } else {
      FinishOnce(open);
    }
  }

  void Ref() override { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() override {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Queues grants and/or the end of the stream at `now`. Grants it cannot
  // take -- the stream is gone, or its write has not drained within the
  // stall timeout (then what it had queued goes back too) -- are returned
  // to be given back.
  Rejected Deliver(const Delivery& delivery, absl::Time now) override
      ABSL_LOCKS_EXCLUDED(mu_) {
    Rejected rejected;
    Op op;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || cancelled_) {
        rejected.gone = true;
        if (delivery.batch.grants > 0) {
          rejected.grants.push_back(delivery.batch);
        }
        return rejected;
      }
      if (delivery.batch.grants > 0) {
        pending_.push_back(delivery.batch);
      }
      // Only a count-0 stream can keep a share: a stream that wants n gets
      // at most n, and grants given back would not be owed to it again.
      // An end (stopped, say) is delivered whole.
      const bool ending = delivery.end != EndReason::kNone;
      if (unlimited_ && !ending && write_in_flight_ && !stalled_ &&
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
      }
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
    }
    if (bound_) table_->CloseStream(uid_, id_, lost);
    Perform(op);
  }

  void OnDone() override { Unref(); }

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
    finished_ = true;
    final_write_ = true;
    end_status_ = grpc::Status::OK;
    return Op::kWriteAndFinish;
  }

  // Runs an operation chosen under mu_; touches no member after gRPC may
  // have called OnDone (the caller's reference keeps `this` alive anyway).
  void Perform(Op op) {
    switch (op) {
      case Op::kNone:
        return;
      case Op::kWrite:
        StartWrite(&response_);
        return;
      case Op::kWriteAndFinish:
        StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
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

  // The constructor's Finish: nothing else can have claimed it yet, but it
  // is claimed all the same, so a later OnCancel does not finish again.
  void FinishOnce(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (FinishLocked() == Op::kNone) return;
      end_status_ = status;
    }
    FinishWith(status);
  }

  // Finishes the call, counting a non-OK status for the metrics.
  void FinishWith(const grpc::Status& status) {
    CountCallError(table_->metrics(), "AwaitFuel", status);
    Finish(status);
  }

  ThrottleTable* const table_;
  const std::unique_ptr<StreamLimits::Slot> slot_;  // freed with the reactor
  std::atomic<int> refs_{1};                        // gRPC's, until OnDone
  bool unlimited_ = false;  // count 0: until the throttle stops
  // Set in the constructor, before any callback that reads them can run.
  bool bound_ = false;  // the stream is open in the table
  uint64_t uid_ = 0;    // of its throttle
  StreamId id_ = 0;

  absl::Mutex mu_;
  std::vector<GrantBatch> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<GrantBatch> in_flight_ ABSL_GUARDED_BY(mu_);
  std::optional<EndReason> end_ ABSL_GUARDED_BY(mu_);
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time write_started_ ABSL_GUARDED_BY(mu_);
  bool stalled_ ABSL_GUARDED_BY(mu_) = false;
  bool final_write_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  v1::AwaitFuelResponse response_;  // owned by gRPC while a write runs
};

}  // namespace

grpc::ServerWriteReactor<v1::AwaitFuelResponse>* NewFuelReactor(
    ThrottleTable* table, const v1::AwaitFuelRequest& request,
    const grpc::Status& admitted, std::unique_ptr<StreamLimits::Slot> slot) {
  return new FuelReactor(table, request, admitted, std::move(slot));
}

}  // namespace throttle::server
