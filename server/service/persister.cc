#include "server/service/persister.h"

#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/service/log.h"

namespace throttle::server {

using StoreScope = ThrottleTable::StoreScope;

Persister::Persister(ThrottleTable* table, StateStore* store, Metrics* metrics,
                     const PersisterOptions& options,
                     std::function<void(const absl::Status&)> on_refused)
    : table_(table),
      store_(store),
      metrics_(metrics),
      options_(options),
      on_refused_(std::move(on_refused)) {
  thread_ = std::thread([this] { Run(); });
}

Persister::~Persister() { Stop().IgnoreError(); }

void Persister::Persist(const std::string& name,
                        std::function<void(absl::Status)> done) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopped_) {
      pending_.push_back({name, std::move(done)});
      return;
    }
  }
  done(absl::UnavailableError("server shutting down: state not stored"));
}

absl::Status Persister::PersistAll() {
  absl::Mutex mu;
  bool finished = false;
  absl::Status result;
  // An empty name stands for every throttle.
  Persist("", [&](absl::Status status) {
    absl::MutexLock lock(&mu);
    result = std::move(status);
    finished = true;
  });
  absl::MutexLock lock(&mu);
  mu.Await(absl::Condition(&finished));
  return result;
}

void Persister::ReservationLow(uint64_t uid) {
  absl::MutexLock lock(&mu_);
  renew_.insert(uid);
}

absl::Status Persister::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_) stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
  absl::MutexLock lock(&mu_);
  return final_status_;
}

absl::Status Persister::Write(const ThrottleTable::StoreBatch& batch) {
  if (batch.throttles.empty() && batch.deleted.empty()) {
    return absl::OkStatus();
  }
  std::vector<ThrottleRecord> records;
  records.reserve(batch.throttles.size());
  const absl::Time now = WallNow();
  for (const StoredThrottle& stored : batch.throttles) {
    records.push_back(ToRecord(stored, *table_->clock(), options_.writer));
  }
  const absl::Status status = store_->Write(records, batch.deleted);
  const absl::Duration latency = WallNow() - now;
  if (metrics_ != nullptr) {
    metrics_->ObserveStateWrite(latency, static_cast<int64_t>(records.size()),
                                status.ok());
  }
  if (!status.ok()) {
    Log(LogLevel::kWarning, "state_write_failed",
        {{"store", store_->Describe()},
         {"records", absl::StrCat(records.size())},
         {"error", std::string(status.message())}});
    if (absl::IsFailedPrecondition(status) && on_refused_) on_refused_(status);
  }
  return status;
}

void Persister::Run() {
  absl::Time next_stats = WallNow() + options_.stats_interval;
  while (true) {
    std::vector<Pending> pending;
    std::vector<uint64_t> renew;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !pending_.empty() ||
               (!renew_.empty() && WallNow() >= retry_at_);
      };
      absl::Time wake = next_stats;
      if (!renew_.empty()) wake = std::min(wake, retry_at_);
      mu_.AwaitWithDeadline(absl::Condition(&ready), wake);
      pending.swap(pending_);
      if (WallNow() >= retry_at_) {
        renew.assign(renew_.begin(), renew_.end());
        renew_.clear();
      }
      stopping = stopping_;
    }
    StoreScope scope = StoreScope::kNamed;
    if (const absl::Time now = WallNow(); now >= next_stats) {
      scope = StoreScope::kChanged;
      next_stats = now + options_.stats_interval;
    }
    std::vector<std::string> names;
    for (const Pending& p : pending) {
      if (p.name.empty()) {
        scope = StoreScope::kAll;
      } else {
        names.push_back(p.name);
      }
    }
    const ThrottleTable::StoreBatch batch =
        table_->CollectForStore(names, renew, scope);
    const absl::Status status = Write(batch);
    table_->StoreDone(batch, status.ok());
    if (!status.ok() && !batch.renewed.empty()) {
      absl::MutexLock lock(&mu_);
      renew_.insert(batch.renewed.begin(), batch.renewed.end());
      retry_at_ = WallNow() + options_.retry_after;
    }
    for (Pending& p : pending) p.done(status);
    if (stopping) break;
  }
  // Nothing is granted any more: store every throttle with no reservation
  // left, so whoever takes over loses no capacity.
  const ThrottleTable::StoreBatch batch =
      table_->CollectForStore({}, {}, StoreScope::kRelease);
  const absl::Status status = Write(batch);
  std::vector<Pending> late;
  {
    absl::MutexLock lock(&mu_);
    stopped_ = true;
    final_status_ = status;
    late.swap(pending_);
  }
  for (Pending& p : late) {
    p.done(absl::UnavailableError("server shutting down: state not stored"));
  }
}

}  // namespace throttle::server
