#include "server/service/throttle_table.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "server/service/convert.h"
#include "server/service/log.h"

namespace throttle::server {
namespace {

GrantBatch BatchOf(const StreamEvent& event) {
  return {event.granted_at, event.grants, event.spacing, event.epoch};
}

// NOT_FOUND naming the request field and the name sent.
absl::Status NoSuchThrottle(absl::string_view field, absl::string_view name) {
  return absl::NotFoundError(
      absl::StrCat(field, ": no throttle named \"", name, "\""));
}

absl::Status NameTaken(absl::string_view name) {
  return absl::AlreadyExistsError(
      absl::StrCat("name: a throttle named \"", name, "\" already exists"));
}

}  // namespace

ThrottleTable::ThrottleTable(const Clock* clock, Metrics* metrics,
                             RefillLoop* loop, const TableOptions& options)
    : clock_(clock), metrics_(metrics), loop_(loop), options_(options) {}

absl::Status ThrottleTable::Create(
    const std::string& name, const ThrottleConfig& config,
    absl::FunctionRef<void(const Entry&)> created) {
  if (absl::Status status = ValidateName("name", name); !status.ok()) {
    return status;
  }
  if (absl::Status status = ValidateConfig(config); !status.ok()) {
    return status;
  }
  absl::MutexLock lock(&mu_);
  if (FindLocked(name) != nullptr) {
    return NameTaken(name);
  }
  if (static_cast<int64_t>(throttles_.size()) >= options_.max_throttles) {
    if (metrics_ != nullptr) metrics_->CountLimitReached("max_throttles");
    return absl::ResourceExhaustedError(
        absl::StrCat("--max_throttles: this server has ", throttles_.size(),
                     " throttles, its limit"));
  }
  Entry& entry = AddLocked(name, config);
  Log(LogLevel::kInfo, "throttle_created",
      {{"throttle", name}, {"config", ToProto(config).ShortDebugString()}});
  created(entry);
  CheckReservationLocked(entry);
  return absl::OkStatus();
}

ThrottleTable::Entry& ThrottleTable::AddLocked(const std::string& name,
                                               const ThrottleConfig& config) {
  auto entry = std::make_unique<Entry>(name, next_uid_++, config,
                                       options_.max_workers_per_throttle);
  Entry& added = *entry;
  if (metrics_ != nullptr) added.lateness = metrics_->Lateness(name);
  by_uid_.emplace(added.uid, &added);
  throttles_.emplace(name, std::move(entry));
  if (reservations_ != nullptr) added.scheduler.SetGrantLimit(0);
  added.scheduler.SetGrantDeadline(grant_deadline_);
  return added;
}

void ThrottleTable::EnableReservations(ReservationListener* listener,
                                       absl::Duration ahead) {
  absl::MutexLock lock(&mu_);
  reservations_ = listener;
  reservation_ahead_ = ahead;
}

absl::Status ThrottleTable::Restore(const StoredThrottle& stored) {
  absl::MutexLock lock(&mu_);
  if (FindLocked(stored.name) != nullptr) {
    return NameTaken(stored.name);
  }
  Entry& entry = AddLocked(stored.name, stored.config);
  entry.scheduler.Restore(stored.state, stored.reserved, clock_->Now());
  entry.starts = stored.starts;
  entry.stops = stored.stops;
  entry.stored_emissions = stored.state.monitor.total;
  entry.stored_rate_max_n = entry.scheduler.rate_max_n();
  Log(LogLevel::kInfo, "throttle_restored",
      {{"throttle", stored.name},
       {"config", ToProto(stored.config).ShortDebugString()},
       {"state", StateName(stored.state.state)},
       {"total_emissions", absl::StrCat(stored.state.monitor.total)},
       {"assumed_grants", absl::StrCat(stored.reserved)}});
  CheckReservationLocked(entry);
  return absl::OkStatus();
}

StoredThrottle ThrottleTable::StoredLocked(const Entry& entry,
                                           int64_t grant_limit) const {
  StoredThrottle stored;
  stored.name = entry.name;
  stored.config = entry.scheduler.config();
  stored.state = entry.scheduler.Save();
  if (reservations_ != nullptr && entry.scheduler.limited()) {
    stored.reserved = grant_limit - entry.scheduler.grants_recorded();
  }
  stored.starts = entry.starts;
  stored.stops = entry.stops;
  return stored;
}

ThrottleTable::StoreBatch ThrottleTable::CollectForStore(
    const std::vector<std::string>& names, const std::vector<uint64_t>& renew,
    StoreScope scope) {
  absl::MutexLock lock(&mu_);
  StoreBatch batch;
  absl::flat_hash_set<uint64_t> taken;
  if (scope == StoreScope::kRelease) {
    for (auto& [name, entry] : throttles_) {
      batch.throttles.push_back(
          StoredLocked(*entry, entry->scheduler.grants_recorded()));
    }
    return batch;
  }
  for (uint64_t uid : renew) {
    Entry* entry = FindByUidLocked(uid);
    if (entry == nullptr || !taken.insert(uid).second) continue;
    const Scheduler& scheduler = entry->scheduler;
    const int64_t limit =
        std::max(scheduler.grant_limit(),
                 SaturatingAdd(
                     scheduler.grants_recorded(),
                     ReservationChunk(scheduler.config(), reservation_ahead_)));
    batch.throttles.push_back(StoredLocked(*entry, limit));
    batch.limits.emplace_back(uid, limit);
    batch.renewed.push_back(uid);
    entry->stored_emissions = scheduler.total_emissions();
    entry->stored_rate_max_n = scheduler.rate_max_n();
    ++entry->storing;
  }
  auto add = [&](Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!taken.insert(entry.uid).second) return;
    batch.throttles.push_back(
        StoredLocked(entry, entry.scheduler.grant_limit()));
    entry.stored_emissions = entry.scheduler.total_emissions();
    entry.stored_rate_max_n = entry.scheduler.rate_max_n();
    ++entry.storing;
  };
  for (const std::string& name : names) {
    Entry* entry = FindLocked(name);
    if (entry == nullptr) {
      batch.deleted.push_back(name);
    } else {
      add(*entry);
    }
  }
  if (scope != StoreScope::kNamed) {
    for (auto& [name, entry] : throttles_) {
      if (scope == StoreScope::kAll ||
          entry->stored_emissions != entry->scheduler.total_emissions() ||
          entry->stored_rate_max_n != entry->scheduler.rate_max_n()) {
        add(*entry);
      }
    }
  }
  return batch;
}

void ThrottleTable::StoreDone(const StoreBatch& batch, bool durable) {
  {
    absl::MutexLock lock(&mu_);
    for (uint64_t uid : batch.renewed) {
      if (Entry* entry = FindByUidLocked(uid)) entry->reservation_asked = false;
    }
    for (const StoredThrottle& stored : batch.throttles) {
      Entry* entry = FindLocked(stored.name);
      if (entry == nullptr || entry->storing == 0) continue;
      --entry->storing;
      // Not stored: the next statistics write tries it again (a Stop whose
      // write failed changes no emissions, and would wait for one).
      if (!durable) entry->stored_emissions = -1;
    }
    if (!durable) return;  // renewals are asked again by the persister
    for (const auto& [uid, limit] : batch.limits) {
      Entry* entry = FindByUidLocked(uid);
      if (entry == nullptr) continue;
      entry->scheduler.SetGrantLimit(
          std::max(limit, entry->scheduler.grant_limit()));
      SettleLocked(*entry);
    }
  }
  DeliverQueued();
}

void ThrottleTable::SetGrantDeadline(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    const bool later = deadline > grant_deadline_;
    grant_deadline_ = deadline;
    for (auto& [name, entry] : throttles_) {
      entry->scheduler.SetGrantDeadline(deadline);
      if (later) SettleLocked(*entry);
    }
  }
  DeliverQueued();
}

void ThrottleTable::CheckReservationLocked(Entry& entry) {
  if (reservations_ == nullptr || entry.reservation_asked ||
      !entry.scheduler.limited()) {
    return;
  }
  const Scheduler& scheduler = entry.scheduler;
  const int64_t left = scheduler.grant_limit() - scheduler.grants_recorded();
  if (left > ReservationChunk(scheduler.config(), reservation_ahead_) / 2) {
    return;
  }
  entry.reservation_asked = true;
  reservations_->ReservationLow(entry.uid);
}

absl::Status ThrottleTable::Delete(absl::string_view field,
                                   const std::string& name) {
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Entry*> found = LookupLocked(field, name);
    if (!found.ok()) return found.status();
    Entry* entry = *found;
    Changes changes;
    changes.closed_status =
        grpc::Status(grpc::StatusCode::NOT_FOUND,
                     absl::StrCat("throttle \"", name, "\" was deleted"));
    entry->scheduler.EndAll(EndReason::kClosed, &changes.events);
    CollectLocked(*entry, changes);
    Log(LogLevel::kInfo, "throttle_deleted",
        {{"throttle", name},
         {"streams_ended", absl::StrCat(changes.events.size())}});
    if (entry->queued_wakeup != absl::InfiniteFuture()) {
      wakeups_.erase({entry->queued_wakeup, entry->uid});
    }
    by_uid_.erase(entry->uid);
    throttles_.erase(name);
  }
  DeliverQueued();
  return absl::OkStatus();
}

absl::Status ThrottleTable::Transact(
    absl::string_view field, const std::string& name,
    absl::FunctionRef<absl::Status(Entry&, absl::Time, Changes*)> change) {
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Entry*> found = LookupLocked(field, name);
    if (!found.ok()) return found.status();
    Entry* entry = *found;
    Changes changes;
    status = change(*entry, clock_->Now(), &changes);
    CollectLocked(*entry, changes);
    SettleLocked(*entry);
  }
  DeliverQueued();
  return status;
}

absl::Status ThrottleTable::Read(
    absl::string_view field, const std::string& name,
    absl::FunctionRef<void(const Entry&, absl::Time)> read) const {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> entry = LookupLocked(field, name);
  if (!entry.ok()) return entry.status();
  read(**entry, clock_->Now());
  return absl::OkStatus();
}

void ThrottleTable::ForEach(absl::FunctionRef<void(const Entry&)> read) const {
  absl::MutexLock lock(&mu_);
  for (const auto& [name, entry] : throttles_) read(*entry);
}

grpc::Status ThrottleTable::OpenStream(StreamSink* sink,
                                       const std::string& name,
                                       const StreamRequest& request,
                                       absl::string_view worker_id,
                                       uint64_t* uid, StreamId* id) {
  // Before the table's mutex: the per-worker series is found by name once
  // per stream, never per grant.
  prometheus::Counter* worker_grants =
      metrics_ == nullptr ? nullptr : metrics_->WorkerGrants(name, worker_id);
  {
    absl::MutexLock lock(&mu_);
    if (closed_) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "server shutting down");
    }
    Entry* entry = FindLocked(name);
    if (entry == nullptr) {
      return ToGrpcStatus(NoSuchThrottle("throttle", name));
    }
    Changes changes;
    *id = entry->scheduler.Open(request, clock_->Now(), &changes.events);
    *uid = entry->uid;
    entry->sinks.emplace(
        *id,
        Entry::OpenSink{sink, worker_grants,
                        entry->workers.Track(worker_id, /*asks_fuel=*/true),
                        request.weight});
    CollectLocked(*entry, changes);
    SettleLocked(*entry);
  }
  DeliverQueued();
  return grpc::Status::OK;
}

void ThrottleTable::CloseStream(uint64_t uid, StreamId id,
                                const std::vector<GrantBatch>& undelivered) {
  TransactStream(
      uid, [&](Entry& entry, absl::Time) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        DropStreamLocked(entry, id);
        for (const GrantBatch& u : undelivered) GiveBackLocked(entry, u);
      });
}

absl::Status ThrottleTable::AddDemand(uint64_t uid, StreamId id,
                                      int64_t withdraw, int64_t demand) {
  absl::Status status;
  TransactStream(uid, [&](Entry& entry, absl::Time now) {
    status = entry.scheduler.AddDemand(id, withdraw, demand, now).status();
  });
  return status;
}

void ThrottleTable::StreamDrained(uint64_t uid, StreamId id) {
  TransactStream(uid, [&](Entry& entry, absl::Time now) {
    entry.scheduler.MarkDelivered(id, now);
  });
}

void ThrottleTable::StreamResumed(uint64_t uid, StreamId id) {
  TransactStream(uid, [&](Entry& entry, absl::Time now) {
    if (entry.stalled.erase(id) == 0) {
      // The sink's stall is still on its way here: it is over already.
      entry.drained_early.insert(id);
      return;
    }
    entry.scheduler.Release(id, now);
  });
}

void ThrottleTable::TransactStream(
    uint64_t uid, absl::FunctionRef<void(Entry&, absl::Time now)> change) {
  {
    absl::MutexLock lock(&mu_);
    Entry* entry = FindByUidLocked(uid);
    if (entry == nullptr) return;  // the throttle was deleted
    change(*entry, clock_->Now());
    SettleLocked(*entry);
  }
  DeliverQueued();
}

absl::Time ThrottleTable::AdvanceDue() {
  {
    absl::MutexLock lock(&mu_);
    // Only the throttles that are due: the others cost nothing.
    const absl::Time now = clock_->Now();
    std::vector<Entry*> due;
    while (!wakeups_.empty() && wakeups_.begin()->first <= now) {
      due.push_back(FindByUidLocked(wakeups_.begin()->second));
      due.back()->queued_wakeup = absl::InfiniteFuture();
      wakeups_.erase(wakeups_.begin());
    }
    for (Entry* entry : due) {
      Changes changes;
      entry->scheduler.Advance(now, &changes.events);
      CollectLocked(*entry, changes);
      FileWakeupLocked(*entry, /*kick=*/false);
      CheckReservationLocked(*entry);
    }
    if (metrics_ != nullptr) {
      metrics_->CountRefillWakeup(static_cast<int64_t>(due.size()));
    }
  }
  DeliverQueued();
  absl::MutexLock lock(&mu_);
  return wakeups_.empty() ? absl::InfiniteFuture() : wakeups_.begin()->first;
}

void ThrottleTable::CloseAllStreams(const grpc::Status& status) {
  {
    absl::MutexLock lock(&mu_);
    if (closed_) return;
    closed_ = true;
    Log(LogLevel::kInfo, "streams_closing",
        {{"reason", status.error_message()}});
    for (auto& [name, entry] : throttles_) {
      Changes changes;
      changes.closed_status = status;
      entry->scheduler.EndAll(EndReason::kClosed, &changes.events);
      CollectLocked(*entry, changes);
    }
  }
  DeliverQueued();
}

bool ThrottleTable::Await(const std::string& name,
                          absl::FunctionRef<bool(const Entry&)> condition,
                          absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto holds = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const Entry* entry = FindLocked(name);
    return entry != nullptr && condition(*entry);
  };
  return mu_.AwaitWithTimeout(absl::Condition(&holds), timeout);
}

std::vector<ThrottleSnapshot> ThrottleTable::Snapshot() const {
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
    s.open_streams = static_cast<int64_t>(entry->sinks.size());
    s.stalled_streams = static_cast<int64_t>(entry->stalled.size());
    s.stalls = entry->stalls;
    s.configured_rate = static_cast<double>(scheduler.config().max_n) /
                        absl::ToDoubleSeconds(scheduler.config().per);
    s.current_rate = static_cast<double>(scheduler.rate_max_n()) /
                     absl::ToDoubleSeconds(scheduler.config().per) *
                     scheduler.RateFraction(now);
    s.achieved_rate =
        scheduler.Latest(absl::Seconds(1), now).emissions_per_second;
    s.mean_rate = scheduler.Mean(now).run.mean_emissions_per_second;
    s.starts = entry->starts;
    s.stops = entry->stops;
    snapshots.push_back(std::move(s));
  }
  return snapshots;
}

ThrottleTable::Entry* ThrottleTable::FindLocked(absl::string_view name) const {
  auto it = throttles_.find(name);
  return it == throttles_.end() ? nullptr : it->second.get();
}

absl::StatusOr<ThrottleTable::Entry*> ThrottleTable::LookupLocked(
    absl::string_view field, absl::string_view name) const {
  if (absl::Status status = ValidateName(field, name); !status.ok()) {
    return status;
  }
  Entry* entry = FindLocked(name);
  if (entry == nullptr) return NoSuchThrottle(field, name);
  return entry;
}

ThrottleTable::Entry* ThrottleTable::FindByUidLocked(uint64_t uid) const {
  auto it = by_uid_.find(uid);
  return it == by_uid_.end() ? nullptr : it->second;
}

void ThrottleTable::CollectLocked(Entry& entry, const Changes& changes) {
  const absl::Time now = clock_->Now();
  for (const StreamEvent& event : changes.events) {
    auto it = entry.sinks.find(event.stream);
    if (it == entry.sinks.end()) {
      // Its sink already left: the fuel goes back at once.
      if (event.grants > 0) {
        GiveBackLocked(entry, BatchOf(event));
      }
      continue;
    }
    StreamSink* sink = it->second.sink;
    prometheus::Counter* worker_grants = it->second.worker_grants;
    GrantBatch batch = BatchOf(event);
    batch.worker = it->second.worker;
    batch.weight = it->second.weight;
    if (event.end != EndReason::kNone) {
      entry.sinks.erase(it);
      entry.stalled.erase(event.stream);
      entry.drained_early.erase(event.stream);
    }
    if (event.grants > 0) {
      entry.grants = SaturatingAdd(entry.grants, event.grants);
      entry.workers.RecordGrants(batch.worker, event.grants, batch.weight, now);
      if (entry.lateness != nullptr) {
        entry.lateness->Observe(absl::ToDoubleSeconds(now - event.granted_at));
      }
    }
    sink->Ref();
    // O(1): the scheduler keeps the summed weight of its open streams; a
    // stream that ended with this event has left it already.
    // The share follows the rate in effect (adaptive, warm-up, recovery).
    const ThrottleConfig& config = entry.scheduler.config();
    const int64_t sharing = entry.scheduler.open_weight() +
                            (event.end != EndReason::kNone ? batch.weight : 0);
    outbox_.push_back(
        {sink, worker_grants, entry.uid, event.stream, batch, event.end,
         changes.closed_status, event.expected_wait, !entry.scheduler.limited(),
         entry.scheduler.SharePerSecond(batch.weight, sharing, now),
         config.degradation, config.local_share_for});
  }
}

void ThrottleTable::SettleLocked(Entry& entry) {
  Changes changes;
  entry.scheduler.Advance(clock_->Now(), &changes.events);
  CollectLocked(entry, changes);
  FileWakeupLocked(entry, /*kick=*/true);
  CheckReservationLocked(entry);
}

void ThrottleTable::FileWakeupLocked(Entry& entry, bool kick) {
  const absl::Time next = entry.scheduler.NextWakeup();
  if (next != entry.queued_wakeup) {
    if (entry.queued_wakeup != absl::InfiniteFuture()) {
      wakeups_.erase({entry.queued_wakeup, entry.uid});
    }
    if (next != absl::InfiniteFuture()) wakeups_.insert({next, entry.uid});
    entry.queued_wakeup = next;
  }
  if (kick && next != absl::InfiniteFuture()) loop_->Kick(next);
}

void ThrottleTable::GiveBackLocked(Entry& entry,
                                   const GrantBatch& undelivered) {
  entry.scheduler.GiveBack(undelivered.granted_at, undelivered.grants,
                           undelivered.spacing, undelivered.epoch);
  entry.grants -= undelivered.grants;
  entry.workers.RemoveGrants(undelivered.worker, undelivered.grants,
                             undelivered.weight);
  entry.given_back = SaturatingAdd(entry.given_back, undelivered.grants);
}

void ThrottleTable::DropStreamLocked(Entry& entry, StreamId id) {
  entry.sinks.erase(id);
  entry.stalled.erase(id);
  entry.drained_early.erase(id);
  entry.scheduler.Close(id);
}

void ThrottleTable::LogGrants(const Delivery& delivery) {
  std::string name;
  {
    absl::MutexLock lock(&mu_);
    const Entry* entry = FindByUidLocked(delivery.uid);
    if (entry == nullptr) return;
    name = entry->name;
  }
  options_.grant_log->Append(name, delivery.batch.granted_at,
                             delivery.batch.grants, delivery.batch.spacing);
}

void ThrottleTable::DeliverQueued() {
  while (true) {
    // Moves what was collected to its sink's queue, and claims the sinks
    // no other thread is handing over to: their queues are this thread's.
    std::vector<StreamSink*> mine;
    {
      absl::MutexLock lock(&mu_);
      if (outbox_.empty()) return;
      for (Delivery& delivery : outbox_) {
        auto [it, unclaimed] = handing_over_.try_emplace(delivery.sink);
        if (unclaimed) mine.push_back(delivery.sink);
        it->second.push_back(std::move(delivery));
      }
      outbox_.clear();
    }
    for (StreamSink* sink : mine) {
      while (true) {
        std::vector<Delivery> queued;
        {
          absl::MutexLock lock(&mu_);
          auto it = handing_over_.find(sink);
          if (it->second.empty()) {
            handing_over_.erase(it);
            break;
          }
          queued.swap(it->second);
        }
        const absl::Time now = clock_->Now();
        for (const Delivery& delivery : queued) HandOver(delivery, now);
      }
    }
    // Fuel given back may have collected more.
  }
}

void ThrottleTable::HandOver(const Delivery& delivery, absl::Time now) {
  StreamSink::Rejected rejected = delivery.sink->Deliver(delivery, now);
  delivery.sink->Unref();
  if (delivery.worker_grants != nullptr && delivery.batch.grants > 0) {
    int64_t delivered = delivery.batch.grants;
    for (const GrantBatch& u : rejected.grants) delivered -= u.grants;
    if (delivered > 0) {
      delivery.worker_grants->Increment(static_cast<double>(delivered));
    }
  }
  if (options_.grant_log != nullptr && delivery.batch.grants > 0 &&
      rejected.grants.empty()) {
    LogGrants(delivery);
  }
  if (rejected.grants.empty() && !rejected.gone && !rejected.stalled) {
    return;
  }
  absl::MutexLock lock(&mu_);
  Entry* entry = FindByUidLocked(delivery.uid);
  if (entry == nullptr) return;
  if (rejected.gone) DropStreamLocked(*entry, delivery.stream);
  if (rejected.stalled && entry->drained_early.erase(delivery.stream) == 0 &&
      entry->sinks.contains(delivery.stream)) {
    entry->scheduler.Hold(delivery.stream);
    // An on-demand stream is owed what goes back: its demand stands.
    int64_t owed = 0;
    for (const GrantBatch& u : rejected.grants) owed += u.grants;
    entry->scheduler.AddDemand(delivery.stream, 0, owed, now).IgnoreError();
    entry->stalled.insert(delivery.stream);
    ++entry->stalls;
    Log(LogLevel::kWarning, "stream_stalled",
        {{"throttle", entry->name},
         {"stream", absl::StrCat(delivery.stream)},
         {"timeout", absl::FormatDuration(options_.stream_stall_timeout)}});
  }
  for (const GrantBatch& u : rejected.grants) GiveBackLocked(*entry, u);
  SettleLocked(*entry);  // queues what the fuel given back grants
}

}  // namespace throttle::server
