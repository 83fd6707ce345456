#include "server/service/watch_hub.h"

#include <atomic>
#include <optional>
#include <vector>

#include "absl/strings/str_cat.h"
#include "server/service/convert.h"

namespace throttle::server {
namespace {

// A request duration field: unset -> `unset`; else it must be in
// [low, high] (`low_open`: (low, high]).
absl::StatusOr<absl::Duration> WatchDuration(
    absl::string_view field, bool has, const google::protobuf::Duration& d,
    absl::Duration unset, absl::Duration low, bool low_open,
    absl::Duration high) {
  if (!has) return unset;
  absl::StatusOr<absl::Duration> asked = DurationFromProto(field, d);
  if (!asked.ok()) return asked.status();
  const bool too_low = low_open ? *asked <= low : *asked < low;
  if (too_low || *asked > high) {
    return absl::InvalidArgumentError(absl::StrCat(
        field, " must be in ", low_open ? "(" : "[", absl::FormatDuration(low),
        ", ", absl::FormatDuration(high), "], got ",
        absl::FormatDuration(*asked)));
  }
  return *asked;
}

}  // namespace

absl::StatusOr<WatchTiming> ValidateWatch(const v1::WatchThrottleRequest& req) {
  if (absl::Status s = ValidateName("throttle", req.throttle()); !s.ok()) {
    return s;
  }
  absl::StatusOr<absl::Duration> interval = WatchDuration(
      "interval", req.has_interval(), req.interval(), absl::Seconds(1),
      kMinWatchInterval, /*low_open=*/false, kMaxWatchInterval);
  if (!interval.ok()) return interval.status();
  absl::StatusOr<absl::Duration> window =
      WatchDuration("window", req.has_window(), req.window(), *interval,
                    absl::ZeroDuration(), /*low_open=*/true, kMaxWatchWindow);
  if (!window.ok()) return window.status();
  return WatchTiming{*interval, *window};
}

// One WatchThrottle call. References: gRPC's until OnDone, the hub's while
// it is filed, and one for each snapshot or end on its way to it.
class WatchHub::Watch final
    : public grpc::ServerWriteReactor<v1::WatchThrottleResponse> {
 public:
  Watch(WatchHub* hub, const v1::WatchThrottleRequest& request,
        const grpc::Status& admitted, std::unique_ptr<StreamLimits::Slot> slot)
      : hub_(hub), name_(request.throttle()), slot_(std::move(slot)) {
    if (!admitted.ok()) {
      End(admitted);
      return;
    }
    absl::StatusOr<WatchTiming> timing = ValidateWatch(request);
    if (!timing.ok()) {
      End(ToGrpcStatus(timing.status()));
      return;
    }
    window_ = timing->window;
    // Filed before the first snapshot, so that no change after it is
    // missed; the gRPC call cannot be cancelled before this constructor
    // returns, so OnDone (which unfiles) comes after.
    if (grpc::Status filed = hub_->Add(this, name_, timing->interval);
        !filed.ok()) {
      End(filed);
      return;
    }
    Refresh(/*changed=*/false);
  }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // Takes a snapshot now and sends it (after the write in flight, replacing
  // a snapshot still waiting); ends the call with the snapshot's error
  // (NOT_FOUND) instead if there is one. Nothing once the call is ending.
  void Refresh(bool changed) ABSL_LOCKS_EXCLUDED(mu_) {
    Op op;
    {
      absl::MutexLock lock(&mu_);
      if (ending_) return;
      // Taken under mu_ so that snapshots reach the client in the order
      // they were taken (the snapshot's own mutex never waits for ours).
      v1::WatchThrottleResponse snapshot;
      absl::Status taken = hub_->snapshot_(name_, window_, &uid_, &snapshot);
      if (!taken.ok()) {
        EndLocked(ToGrpcStatus(taken));
      } else {
        // A change that a newer snapshot overtakes is still reported.
        snapshot.set_changed(changed ||
                             (pending_.has_value() && pending_->changed()));
        pending_ = std::move(snapshot);
      }
      op = NextOpLocked();
    }
    Perform(op);
  }

  // Ends the call with `status` once the write in flight is done; a
  // snapshot still waiting is dropped. Nothing if it is ending already.
  void End(const grpc::Status& status) ABSL_LOCKS_EXCLUDED(mu_) {
    Op op;
    {
      absl::MutexLock lock(&mu_);
      EndLocked(status);
      op = NextOpLocked();
    }
    Perform(op);
  }

  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    Op op;
    {
      absl::MutexLock lock(&mu_);
      write_in_flight_ = false;
      if (!ok) {
        EndLocked(grpc::Status(grpc::StatusCode::CANCELLED,
                               "stream broke while writing"));
      }
      op = NextOpLocked();
    }
    Perform(op);
  }

  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    End(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    hub_->Remove(this);
    Unref();
  }

 private:
  enum class Op { kNone, kWrite, kFinish };

  ~Watch() override = default;

  void EndLocked(const grpc::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (ending_) return;
    ending_ = true;
    end_status_ = status;
    pending_.reset();
  }

  // Decides the next operation and prepares response_ for it.
  Op NextOpLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (write_in_flight_ || finished_) return Op::kNone;
    if (ending_) {
      finished_ = true;
      return Op::kFinish;
    }
    if (!pending_.has_value()) return Op::kNone;
    response_ = *std::move(pending_);
    pending_.reset();
    write_in_flight_ = true;
    return Op::kWrite;
  }

  // Runs an operation chosen under mu_. Finish may lead gRPC to OnDone at
  // once: the caller's reference (gRPC's own until OnDone, or the hub's
  // while it delivers) keeps `this` alive for the rest of the call.
  void Perform(Op op) ABSL_LOCKS_EXCLUDED(mu_) {
    switch (op) {
      case Op::kNone:
        return;
      case Op::kWrite:
        StartWrite(&response_);
        return;
      case Op::kFinish: {
        grpc::Status status;
        {
          absl::MutexLock lock(&mu_);
          status = end_status_;
        }
        CountCallError(hub_->metrics_, "WatchThrottle", status);
        Finish(status);
        return;
      }
    }
  }

  WatchHub* const hub_;
  const std::string name_;
  absl::Duration window_;
  const std::unique_ptr<StreamLimits::Slot> slot_;  // freed with the reactor
  std::atomic<int> refs_{1};                        // gRPC's, until OnDone

  mutable absl::Mutex mu_;
  uint64_t uid_ ABSL_GUARDED_BY(mu_) = 0;  // of the throttle watched
  std::optional<v1::WatchThrottleResponse> pending_ ABSL_GUARDED_BY(mu_);
  bool write_in_flight_ ABSL_GUARDED_BY(mu_) = false;
  bool ending_ ABSL_GUARDED_BY(mu_) = false;
  grpc::Status end_status_ ABSL_GUARDED_BY(mu_);
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
  v1::WatchThrottleResponse response_;  // owned by gRPC while a write runs
};

WatchHub::WatchHub(const Clock* clock, Metrics* metrics,
                   WatchSnapshotFn snapshot)
    : clock_(clock),
      metrics_(metrics),
      snapshot_(std::move(snapshot)),
      loop_(clock) {
  loop_.Start([this] { return SendDue(); });
}

WatchHub::~WatchHub() { Stop(); }

grpc::ServerWriteReactor<v1::WatchThrottleResponse>* WatchHub::NewWatch(
    const v1::WatchThrottleRequest& request, const grpc::Status& admitted,
    std::unique_ptr<StreamLimits::Slot> slot) {
  return new Watch(this, request, admitted, std::move(slot));
}

grpc::Status WatchHub::Add(Watch* watch, const std::string& name,
                           absl::Duration interval) {
  const absl::Time due = clock_->Now() + interval;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return closed_status_;
    watch->Ref();
    watches_.emplace(watch, Schedule{name, interval, due});
    due_.emplace(due, watch);
    by_name_[name].insert(watch);
  }
  loop_.Kick(due);
  return grpc::Status::OK;
}

void WatchHub::Remove(Watch* watch) {
  {
    absl::MutexLock lock(&mu_);
    auto it = watches_.find(watch);
    if (it == watches_.end()) return;
    due_.erase({it->second.due, watch});
    auto named = by_name_.find(it->second.name);
    named->second.erase(watch);
    if (named->second.empty()) by_name_.erase(named);
    watches_.erase(it);
  }
  watch->Unref();
}

absl::Time WatchHub::SendDue() {
  const absl::Time now = clock_->Now();
  std::vector<Watch*> due;
  absl::Time next;
  {
    absl::MutexLock lock(&mu_);
    while (!due_.empty() && due_.begin()->first <= now) {
      Watch* watch = due_.begin()->second;
      due_.erase(due_.begin());
      Schedule& schedule = watches_.at(watch);
      // One interval on from when it was due, so intervals do not drift;
      // after a long pause (a clock jump), one snapshot, not a catch-up.
      schedule.due += schedule.interval;
      if (schedule.due <= now) schedule.due = now + schedule.interval;
      due_.emplace(schedule.due, watch);
      watch->Ref();
      due.push_back(watch);
    }
    next = due_.empty() ? absl::InfiniteFuture() : due_.begin()->first;
  }
  for (Watch* watch : due) {
    watch->Refresh(/*changed=*/false);
    watch->Unref();
  }
  return next;
}

void WatchHub::Notify(const std::string& name) {
  std::vector<Watch*> watches;
  {
    absl::MutexLock lock(&mu_);
    auto named = by_name_.find(name);
    if (named == by_name_.end()) return;
    for (Watch* watch : named->second) {
      watch->Ref();
      watches.push_back(watch);
    }
  }
  for (Watch* watch : watches) {
    watch->Refresh(/*changed=*/true);
    watch->Unref();
  }
}

void WatchHub::CloseAll(const grpc::Status& status) {
  std::vector<Watch*> watches;
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    closed_status_ = status;
    for (auto& [watch, schedule] : watches_) {
      watch->Ref();
      watches.push_back(watch);
    }
  }
  for (Watch* watch : watches) {
    watch->End(status);
    watch->Unref();
  }
}

int64_t WatchHub::open() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(watches_.size());
}

}  // namespace throttle::server
