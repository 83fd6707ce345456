#include "server/service.h"

#include <algorithm>
#include <atomic>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/convert.h"
#include "server/log.h"

namespace throttle::server {

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
    : public grpc::ServerWriteReactor<v1::AwaitFuelResponse> {
 public:
  FuelReactor(Service* service, const v1::AwaitFuelRequest& request)
      : service_(service) {
    absl::StatusOr<StreamRequest> stream_request = FromProto(request);
    absl::Status status = stream_request.ok()
                              ? ValidateName("throttle", request.throttle())
                              : stream_request.status();
    if (!status.ok()) {
      FinishOnce(ToGrpcStatus(status));
      return;
    }
    report_drained_ = stream_request->count == 0;
    if (LogEnabled(LogLevel::kDebug)) {
      Log(LogLevel::kDebug, "stream_opened",
          {{"throttle", request.throttle()},
           {"worker_id", request.worker_id()},
           {"count", absl::StrCat(stream_request->count)},
           {"weight", absl::StrCat(stream_request->weight)}});
    }
    grpc::Status open =
        service_->OpenStream(this, request.throttle(), *stream_request);
    if (!open.ok()) FinishOnce(open);
  }

  // Called by the service under its mutex, before any delivery.
  void Bind(uint64_t throttle_uid, StreamId id) {
    throttle_uid_ = throttle_uid;
    stream_id_ = id;
    bound_ = true;
  }
  uint64_t throttle_uid() const { return throttle_uid_; }
  StreamId stream_id() const { return stream_id_; }

  void Ref() { refs_.fetch_add(1, std::memory_order_relaxed); }
  void Unref() {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // What a delivery left undone: grants to give back, and why.
  struct Rejected {
    std::vector<Service::Undelivered> grants;
    bool gone = false;     // the stream is gone: forget it
    bool stalled = false;  // its write did not drain: hold it
  };

  // Queues grants and/or the end of the stream at `now`. Grants it cannot
  // take -- the stream is gone, or its write has not drained within the
  // stall timeout (then what it had queued goes back too) -- are returned
  // to be given back.
  Rejected Deliver(const Service::Delivery& delivery, absl::Time now)
      ABSL_LOCKS_EXCLUDED(mu_) {
    Rejected rejected;
    Op op;
    {
      absl::MutexLock lock(&mu_);
      if (finished_ || cancelled_) {
        rejected.gone = true;
        if (delivery.grants > 0) {
          rejected.grants.push_back({delivery.granted_at, delivery.grants});
        }
        return rejected;
      }
      if (delivery.grants > 0) {
        pending_.push_back({delivery.granted_at, delivery.grants});
      }
      if (write_in_flight_ && !stalled_ &&
          now - write_started_ >= service_->stream_stall_timeout()) {
        stalled_ = true;
        rejected.stalled = true;
      }
      if (stalled_) {
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
    std::vector<Service::Undelivered> lost;
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
        drained = report_drained_ && pending_.empty();
        op = NextOpLocked(service_->clock()->Now());
      }
    }
    if (!ok) {
      service_->CloseStream(throttle_uid_, stream_id_, lost);
    } else if (resumed) {
      service_->StreamResumed(throttle_uid_, stream_id_);
    } else if (drained) {
      service_->StreamDrained(throttle_uid_, stream_id_);
    }
    Perform(op);
  }

  void OnCancel() override ABSL_LOCKS_EXCLUDED(mu_) {
    std::vector<Service::Undelivered> lost;
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
    if (bound_) service_->CloseStream(throttle_uid_, stream_id_, lost);
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
    service_->CountError("AwaitFuel", status);
    Finish(status);
  }

  Service* const service_;
  std::atomic<int> refs_{1};  // gRPC's, until OnDone
  bool report_drained_ = false;
  // Set once by Bind() under the service mutex before any callback that
  // reads them can run.
  bool bound_ = false;
  uint64_t throttle_uid_ = 0;
  StreamId stream_id_ = 0;

  absl::Mutex mu_;
  std::vector<Service::Undelivered> pending_ ABSL_GUARDED_BY(mu_);
  std::vector<Service::Undelivered> in_flight_ ABSL_GUARDED_BY(mu_);
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

namespace {

absl::Status WithThrottle(const std::string& name, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("throttle \"", name,
                                                  "\": ", status.message()));
}

}  // namespace

grpc::ServerUnaryReactor* Service::Reply(grpc::CallbackServerContext* context,
                                         absl::string_view method,
                                         const absl::Status& status) {
  const grpc::Status grpc_status = ToGrpcStatus(status);
  CountError(method, grpc_status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc_status);
  return reactor;
}

void Service::CountError(absl::string_view method, const grpc::Status& status) {
  if (status.ok()) return;
  if (metrics_ != nullptr) metrics_->CountError(method, status.error_code());
  if (LogEnabled(LogLevel::kDebug)) {
    Log(LogLevel::kDebug, "call_failed",
        {{"method", std::string(method)},
         {"code", StatusCodeName(status.error_code())},
         {"message", status.error_message()}});
  }
}

std::vector<ThrottleSnapshot> Service::Snapshot() const {
  absl::MutexLock lock(&mu_);
  const absl::Time now = clock_->Now();
  std::vector<ThrottleSnapshot> snapshots;
  for (const auto& [name, entry] : throttles_) {
    const Scheduler& scheduler = entry->scheduler;
    ThrottleSnapshot s;
    s.name = name;
    s.mode = ModeName(scheduler.config().mode);
    s.state = StateName(scheduler.state());
    s.grants = entry->grants;
    s.given_back = entry->given_back;
    s.emissions = scheduler.total_emissions();
    s.waiting_streams = scheduler.waiting_streams();
    s.open_streams = static_cast<int64_t>(entry->reactors.size());
    s.stalled_streams = static_cast<int64_t>(entry->stalled.size());
    s.stalls = entry->stalls;
    s.configured_rate = static_cast<double>(scheduler.config().max_n) /
                        absl::ToDoubleSeconds(scheduler.config().per);
    s.achieved_rate =
        scheduler.Latest(absl::Seconds(1), now).emissions_per_second;
    s.starts = entry->starts;
    s.stops = entry->stops;
    snapshots.push_back(std::move(s));
  }
  return snapshots;
}

void Service::GiveBackLocked(Entry& entry, absl::Time granted_at,
                             int64_t grants) {
  entry.scheduler.GiveBack(granted_at, grants);
  entry.grants -= grants;
  entry.given_back += grants;
}

Service::Service(const Clock* clock, Metrics* metrics,
                 const ServiceOptions& options)
    : clock_(clock), metrics_(metrics), options_(options) {
  refill_thread_ = std::thread([this] { RefillLoop(); });
}

Service::~Service() {
  BeginShutdown();
  StopRefillLoop();
}

absl::Status Service::CreateLocked(const std::string& name,
                                   const ThrottleConfig& config,
                                   Entry** created) {
  if (absl::Status status = ValidateName("name", name); !status.ok()) {
    return status;
  }
  if (absl::Status status = ValidateConfig(config); !status.ok()) {
    return status;
  }
  auto [it, inserted] = throttles_.try_emplace(name, nullptr);
  if (!inserted) {
    return absl::AlreadyExistsError(
        absl::StrCat("name: a throttle named \"", name, "\" already exists"));
  }
  it->second = std::make_unique<Entry>(name, next_uid_++, config);
  by_uid_.emplace(it->second->uid, it->second.get());
  if (created != nullptr) *created = it->second.get();
  return absl::OkStatus();
}

absl::Status Service::Create(const std::string& name,
                             const ThrottleConfig& config) {
  absl::MutexLock lock(&mu_);
  absl::Status status = CreateLocked(name, config, nullptr);
  if (status.ok()) {
    Log(LogLevel::kInfo, "throttle_created",
        {{"throttle", name}, {"config", ToProto(config).ShortDebugString()}});
  }
  return status;
}

void Service::BeginShutdown() {
  std::vector<Delivery> out;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) return;
    shutting_down_ = true;
    Log(LogLevel::kInfo, "streams_closing",
        {{"reason", "server shutting down"}});
    const grpc::Status closing(grpc::StatusCode::UNAVAILABLE,
                               "server shutting down");
    for (auto& [name, entry] : throttles_) {
      std::vector<StreamEvent> events;
      entry->scheduler.EndAll(EndReason::kClosed, &events);
      CollectLocked(*entry, events, closing, &out);
    }
  }
  Deliver(std::move(out));
}

void Service::StopRefillLoop() {
  {
    absl::MutexLock lock(&mu_);
    loop_stopping_ = true;
  }
  if (refill_thread_.joinable()) refill_thread_.join();
}

Service::Entry* Service::FindLocked(const std::string& name) {
  auto it = throttles_.find(name);
  return it == throttles_.end() ? nullptr : it->second.get();
}

Service::Entry* Service::FindByUidLocked(uint64_t uid) {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? nullptr : it->second;
}

absl::StatusOr<Service::Entry*> Service::LookupLocked(absl::string_view field,
                                                      const std::string& name) {
  if (absl::Status status = ValidateName(field, name); !status.ok()) {
    return status;
  }
  Entry* entry = FindLocked(name);
  if (entry == nullptr) {
    return absl::NotFoundError(
        absl::StrCat(field, ": no throttle named \"", name, "\""));
  }
  return entry;
}

void Service::CollectLocked(Entry& entry,
                            const std::vector<StreamEvent>& events,
                            const grpc::Status& closed_status,
                            std::vector<Delivery>* out) {
  const absl::Time now = clock_->Now();
  for (const StreamEvent& event : events) {
    auto it = entry.reactors.find(event.stream);
    if (it == entry.reactors.end()) {
      // Its reactor already left: the fuel goes back at once.
      if (event.grants > 0)
        GiveBackLocked(entry, event.granted_at, event.grants);
      continue;
    }
    FuelReactor* reactor = it->second;
    if (event.end != EndReason::kNone) entry.reactors.erase(it);
    if (event.grants > 0) {
      entry.grants = SaturatingAdd(entry.grants, event.grants);
      if (metrics_ != nullptr)
        metrics_->ObserveLateness(now - event.granted_at);
    }
    reactor->Ref();
    out->push_back(
        {reactor, event.grants, event.granted_at, event.end, closed_status});
  }
}

void Service::AdvanceLocked(Entry& entry, std::vector<Delivery>* out) {
  std::vector<StreamEvent> events;
  entry.scheduler.Advance(clock_->Now(), &events);
  CollectLocked(entry, events, grpc::Status::OK, out);
}

void Service::KickLocked(Entry& entry) {
  const absl::Time next = entry.scheduler.NextWakeup();
  if (next != entry.queued_wakeup) {
    if (entry.queued_wakeup != absl::InfiniteFuture()) {
      wakeups_.erase({entry.queued_wakeup, entry.uid});
    }
    if (next != absl::InfiniteFuture()) wakeups_.insert({next, entry.uid});
    entry.queued_wakeup = next;
  }
  if (next < planned_wakeup_) {
    planned_wakeup_ = next;
    kicked_ = true;
  }
}

void Service::DropStreamLocked(Entry& entry, StreamId id) {
  entry.reactors.erase(id);
  entry.stalled.erase(id);
  entry.scheduler.Close(id);
}

void Service::Deliver(std::vector<Delivery> deliveries) {
  while (!deliveries.empty()) {
    std::vector<Delivery> more;
    const absl::Time now = clock_->Now();
    for (const Delivery& delivery : deliveries) {
      FuelReactor::Rejected rejected = delivery.reactor->Deliver(delivery, now);
      const uint64_t uid = delivery.reactor->throttle_uid();
      const StreamId id = delivery.reactor->stream_id();
      delivery.reactor->Unref();
      if (rejected.grants.empty() && !rejected.gone && !rejected.stalled) {
        continue;
      }
      absl::MutexLock lock(&mu_);
      Entry* entry = FindByUidLocked(uid);
      if (entry == nullptr) continue;
      if (rejected.gone) DropStreamLocked(*entry, id);
      if (rejected.stalled) {
        entry->scheduler.Hold(id);
        entry->stalled.insert(id);
        ++entry->stalls;
        Log(LogLevel::kWarning, "stream_stalled",
            {{"throttle", entry->name},
             {"stream", absl::StrCat(id)},
             {"timeout", absl::FormatDuration(options_.stream_stall_timeout)}});
      }
      for (const Undelivered& u : rejected.grants) {
        GiveBackLocked(*entry, u.granted_at, u.grants);
      }
      AdvanceLocked(*entry, &more);
      KickLocked(*entry);
    }
    deliveries = std::move(more);
  }
}

grpc::Status Service::OpenStream(FuelReactor* reactor,
                                 const std::string& throttle,
                                 const StreamRequest& request) {
  std::vector<Delivery> out;
  {
    absl::MutexLock lock(&mu_);
    if (shutting_down_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "server shutting down");
    }
    Entry* entry = FindLocked(throttle);
    if (entry == nullptr) {
      return grpc::Status(
          grpc::StatusCode::NOT_FOUND,
          absl::StrCat("throttle: no throttle named \"", throttle, "\""));
    }
    std::vector<StreamEvent> events;
    const StreamId id = entry->scheduler.Open(request, clock_->Now(), &events);
    reactor->Bind(entry->uid, id);
    entry->reactors.emplace(id, reactor);
    CollectLocked(*entry, events, grpc::Status::OK, &out);
    AdvanceLocked(*entry, &out);
    KickLocked(*entry);
  }
  Deliver(std::move(out));
  return grpc::Status::OK;
}

void Service::CloseStream(uint64_t throttle_uid, StreamId id,
                          const std::vector<Undelivered>& undelivered) {
  std::vector<Delivery> out;
  {
    absl::MutexLock lock(&mu_);
    Entry* entry = FindByUidLocked(throttle_uid);
    if (entry == nullptr) return;
    DropStreamLocked(*entry, id);
    for (const Undelivered& u : undelivered) {
      GiveBackLocked(*entry, u.granted_at, u.grants);
    }
    if (!undelivered.empty()) {
      AdvanceLocked(*entry, &out);
      KickLocked(*entry);
    }
  }
  Deliver(std::move(out));
}

void Service::StreamDrained(uint64_t throttle_uid, StreamId id) {
  std::vector<Delivery> out;
  {
    absl::MutexLock lock(&mu_);
    Entry* entry = FindByUidLocked(throttle_uid);
    if (entry == nullptr ||
        entry->scheduler.config().mode != Mode::kMonitorOnly) {
      return;
    }
    entry->scheduler.MarkDelivered(id, clock_->Now());
    AdvanceLocked(*entry, &out);
    KickLocked(*entry);
  }
  Deliver(std::move(out));
}

void Service::StreamResumed(uint64_t throttle_uid, StreamId id) {
  std::vector<Delivery> out;
  {
    absl::MutexLock lock(&mu_);
    Entry* entry = FindByUidLocked(throttle_uid);
    if (entry == nullptr || entry->stalled.erase(id) == 0) return;
    entry->scheduler.Release(id, clock_->Now());
    AdvanceLocked(*entry, &out);
    KickLocked(*entry);
  }
  Deliver(std::move(out));
}

void Service::RefillLoop() {
  absl::MutexLock lock(&mu_);
  while (!loop_stopping_) {
    kicked_ = false;
    std::vector<Delivery> out;
    // Only the throttles that are due: the others cost nothing.
    const absl::Time now = clock_->Now();
    std::vector<Entry*> due;
    while (!wakeups_.empty() && wakeups_.begin()->first <= now) {
      due.push_back(FindByUidLocked(wakeups_.begin()->second));
      due.back()->queued_wakeup = absl::InfiniteFuture();
      wakeups_.erase(wakeups_.begin());
    }
    for (Entry* entry : due) {
      AdvanceLocked(*entry, &out);
      KickLocked(*entry);  // refiles it at its next wake-up
    }
    if (metrics_ != nullptr) {
      metrics_->CountRefillWakeup(static_cast<int64_t>(due.size()));
    }
    const absl::Time next =
        wakeups_.empty() ? absl::InfiniteFuture() : wakeups_.begin()->first;
    planned_wakeup_ = next;
    if (!out.empty()) {
      mu_.Unlock();
      Deliver(std::move(out));
      mu_.Lock();
      continue;
    }
    const absl::Duration timeout = next - clock_->Now();
    if (timeout <= absl::ZeroDuration()) continue;
    auto wake = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return kicked_ || loop_stopping_;
    };
    mu_.AwaitWithTimeout(absl::Condition(&wake), timeout);
  }
}

v1::ThrottleInfo Service::InfoLocked(const Entry& entry) const {
  v1::ThrottleInfo info;
  info.set_name(entry.name);
  *info.mutable_config() = ToProto(entry.scheduler.config());
  info.set_state(ToProto(entry.scheduler.state()));
  info.set_waiting_streams(entry.scheduler.waiting_streams());
  info.set_total_emissions(entry.scheduler.total_emissions());
  return info;
}

grpc::ServerWriteReactor<v1::AwaitFuelResponse>* Service::AwaitFuel(
    grpc::CallbackServerContext* /*context*/,
    const v1::AwaitFuelRequest* request) {
  return new FuelReactor(this, *request);
}

grpc::ServerUnaryReactor* Service::HasFuel(grpc::CallbackServerContext* context,
                                           const v1::HasFuelRequest* request,
                                           v1::HasFuelResponse* response) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> entry = LookupLocked("throttle", request->throttle());
  if (!entry.ok()) return Reply(context, "HasFuel", entry.status());
  if (absl::Status s = ValidateWorkerId(request->worker_id()); !s.ok()) {
    return Reply(context, "HasFuel", s);
  }
  const HasFuelResult result = (*entry)->scheduler.HasFuel(clock_->Now());
  response->set_granted(result.granted);
  response->set_stopped(result.stopped);
  return Reply(context, "HasFuel", absl::OkStatus());
}

grpc::ServerUnaryReactor* Service::Emit(grpc::CallbackServerContext* context,
                                        const v1::EmitRequest* request,
                                        v1::EmitResponse* response) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> entry = LookupLocked("throttle", request->throttle());
  if (!entry.ok()) return Reply(context, "Emit", entry.status());
  const int64_t count = request->has_count() ? request->count() : 1;
  if (count < 1 || count > kMaxEmitCount) {
    return Reply(
        context, "Emit",
        absl::InvalidArgumentError(absl::StrCat(
            "count must be in [1, ", kMaxEmitCount, "], got ", count)));
  }
  if (absl::Status s = ValidateWorkerId(request->worker_id()); !s.ok()) {
    return Reply(context, "Emit", s);
  }
  absl::StatusOr<int64_t> total =
      (*entry)->scheduler.Emit(count, clock_->Now());
  if (!total.ok()) {
    return Reply(context, "Emit",
                 WithThrottle(request->throttle(), total.status()));
  }
  response->set_total_emissions(*total);
  return Reply(context, "Emit", absl::OkStatus());
}

grpc::ServerUnaryReactor* Service::Start(grpc::CallbackServerContext* context,
                                         const v1::StartRequest* request,
                                         v1::StartResponse* response) {
  std::vector<Delivery> out;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Entry*> entry =
        LookupLocked("throttle", request->throttle());
    if (!entry.ok()) return Reply(context, "Start", entry.status());
    status = WithThrottle(request->throttle(),
                          (*entry)->scheduler.Start(clock_->Now()));
    if (status.ok()) {
      ++(*entry)->starts;
      Log(LogLevel::kInfo, "throttle_started",
          {{"throttle", request->throttle()}});
      response->set_state(ToProto((*entry)->scheduler.state()));
      AdvanceLocked(**entry, &out);
      KickLocked(**entry);
    }
  }
  Deliver(std::move(out));
  return Reply(context, "Start", status);
}

grpc::ServerUnaryReactor* Service::Stop(grpc::CallbackServerContext* context,
                                        const v1::StopRequest* request,
                                        v1::StopResponse* response) {
  std::vector<Delivery> out;
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Entry*> entry =
        LookupLocked("throttle", request->throttle());
    if (!entry.ok()) return Reply(context, "Stop", entry.status());
    std::vector<StreamEvent> events;
    absl::StatusOr<RunStats> stats =
        (*entry)->scheduler.Stop(clock_->Now(), &events);
    status = WithThrottle(request->throttle(), stats.status());
    if (stats.ok()) {
      ++(*entry)->stops;
      Log(LogLevel::kInfo, "throttle_stopped",
          {{"throttle", request->throttle()},
           {"runtime_seconds",
            absl::StrCat(absl::ToDoubleSeconds(stats->runtime))},
           {"total_emissions", absl::StrCat(stats->total_emissions)},
           {"streams_ended", absl::StrCat(events.size())}});
      response->set_runtime_seconds(absl::ToDoubleSeconds(stats->runtime));
      response->set_total_emissions(stats->total_emissions);
      response->set_mean_seconds_between_emissions(
          stats->mean_seconds_between_emissions);
      response->set_mean_emissions_per_second(stats->mean_emissions_per_second);
      CollectLocked(**entry, events, grpc::Status::OK, &out);
    }
  }
  Deliver(std::move(out));
  return Reply(context, "Stop", status);
}

grpc::ServerUnaryReactor* Service::Latest(grpc::CallbackServerContext* context,
                                          const v1::LatestRequest* request,
                                          v1::LatestResponse* response) {
  absl::Duration window = absl::Seconds(1);
  if (request->has_window()) {
    absl::StatusOr<absl::Duration> asked =
        DurationFromProto("window", request->window());
    if (!asked.ok()) return Reply(context, "Latest", asked.status());
    if (*asked <= absl::ZeroDuration() || *asked > kMaxLatestWindow) {
      return Reply(context, "Latest",
                   absl::InvalidArgumentError(
                       absl::StrCat("window must be in (0, 60s], got ",
                                    absl::FormatDuration(*asked))));
    }
    window = *asked;
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> entry = LookupLocked("throttle", request->throttle());
  if (!entry.ok()) return Reply(context, "Latest", entry.status());
  const LatestStats stats = (*entry)->scheduler.Latest(window, clock_->Now());
  response->set_seconds_between_emissions(stats.seconds_between_emissions);
  response->set_emissions_per_second(stats.emissions_per_second);
  response->set_emissions(stats.emissions);
  response->set_window_seconds(absl::ToDoubleSeconds(window));
  return Reply(context, "Latest", absl::OkStatus());
}

grpc::ServerUnaryReactor* Service::Mean(grpc::CallbackServerContext* context,
                                        const v1::MeanRequest* request,
                                        v1::MeanResponse* response) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> entry = LookupLocked("throttle", request->throttle());
  if (!entry.ok()) return Reply(context, "Mean", entry.status());
  const MeanStats stats = (*entry)->scheduler.Mean(clock_->Now());
  response->set_mean_seconds_between_emissions(
      stats.run.mean_seconds_between_emissions);
  response->set_mean_emissions_per_second(stats.run.mean_emissions_per_second);
  response->set_runtime_seconds(absl::ToDoubleSeconds(stats.run.runtime));
  response->set_total_emissions(stats.run.total_emissions);
  response->set_lowest_gap_seconds(absl::ToDoubleSeconds(stats.lowest_gap));
  response->set_highest_gap_seconds(absl::ToDoubleSeconds(stats.highest_gap));
  response->set_state(ToProto((*entry)->scheduler.state()));
  return Reply(context, "Mean", absl::OkStatus());
}

grpc::ServerUnaryReactor* Service::CreateThrottle(
    grpc::CallbackServerContext* context,
    const v1::CreateThrottleRequest* request,
    v1::CreateThrottleResponse* response) {
  if (absl::Status s = ValidateName("name", request->name()); !s.ok()) {
    return Reply(context, "CreateThrottle", s);
  }
  absl::StatusOr<ThrottleConfig> config = FromProto(request->config());
  if (!config.ok()) return Reply(context, "CreateThrottle", config.status());
  absl::MutexLock lock(&mu_);
  Entry* entry = nullptr;
  if (absl::Status s = CreateLocked(request->name(), *config, &entry);
      !s.ok()) {
    return Reply(context, "CreateThrottle", s);
  }
  *response->mutable_throttle() = InfoLocked(*entry);
  Log(LogLevel::kInfo, "throttle_created",
      {{"throttle", request->name()},
       {"config", response->throttle().config().ShortDebugString()}});
  return Reply(context, "CreateThrottle", absl::OkStatus());
}

grpc::ServerUnaryReactor* Service::ConfigureThrottle(
    grpc::CallbackServerContext* context,
    const v1::ConfigureThrottleRequest* request,
    v1::ConfigureThrottleResponse* response) {
  std::vector<Delivery> out;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Entry*> entry = LookupLocked("name", request->name());
    if (!entry.ok()) return Reply(context, "ConfigureThrottle", entry.status());
    absl::StatusOr<ThrottleConfig> config = FromProto(request->config());
    if (!config.ok())
      return Reply(context, "ConfigureThrottle", config.status());
    (*entry)->scheduler.Configure(*config, clock_->Now());
    *response->mutable_throttle() = InfoLocked(**entry);
    Log(LogLevel::kInfo, "throttle_configured",
        {{"throttle", request->name()},
         {"config", response->throttle().config().ShortDebugString()},
         {"open_streams", absl::StrCat((*entry)->reactors.size())}});
    AdvanceLocked(**entry, &out);
    KickLocked(**entry);
  }
  Deliver(std::move(out));
  return Reply(context, "ConfigureThrottle", absl::OkStatus());
}

grpc::ServerUnaryReactor* Service::DeleteThrottle(
    grpc::CallbackServerContext* context,
    const v1::DeleteThrottleRequest* request,
    v1::DeleteThrottleResponse* /*response*/) {
  std::vector<Delivery> out;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Entry*> entry = LookupLocked("name", request->name());
    if (!entry.ok()) return Reply(context, "DeleteThrottle", entry.status());
    std::vector<StreamEvent> events;
    (*entry)->scheduler.EndAll(EndReason::kClosed, &events);
    CollectLocked(**entry, events,
                  grpc::Status(grpc::StatusCode::NOT_FOUND,
                               absl::StrCat("throttle \"", request->name(),
                                            "\" was deleted")),
                  &out);
    Log(LogLevel::kInfo, "throttle_deleted",
        {{"throttle", request->name()},
         {"streams_ended", absl::StrCat(events.size())}});
    if ((*entry)->queued_wakeup != absl::InfiniteFuture()) {
      wakeups_.erase({(*entry)->queued_wakeup, (*entry)->uid});
    }
    by_uid_.erase((*entry)->uid);
    throttles_.erase(request->name());
  }
  Deliver(std::move(out));
  return Reply(context, "DeleteThrottle", absl::OkStatus());
}

grpc::ServerUnaryReactor* Service::ListThrottles(
    grpc::CallbackServerContext* context,
    const v1::ListThrottlesRequest* /*request*/,
    v1::ListThrottlesResponse* response) {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, entry] : throttles_) {
    *response->add_throttles() = InfoLocked(*entry);
  }
  return Reply(context, "ListThrottles", absl::OkStatus());
}

}  // namespace throttle::server
