#include "server/service/service.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "google/protobuf/util/time_util.h"
#include "server/service/convert.h"
#include "server/service/fuel_reactor.h"
#include "server/service/log.h"

namespace throttle::server {
namespace {

using Entry = ThrottleTable::Entry;
using Changes = ThrottleTable::Changes;

absl::Status WithThrottle(const std::string& name, const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(status.code(), absl::StrCat("throttle \"", name,
                                                  "\": ", status.message()));
}

v1::ThrottleInfo Info(const Entry& entry) {
  v1::ThrottleInfo info;
  info.set_name(entry.name);
  *info.mutable_config() = ToProto(entry.scheduler.config());
  info.set_state(ToProto(entry.scheduler.state()));
  info.set_waiting_streams(entry.scheduler.waiting_streams());
  info.set_total_emissions(entry.scheduler.total_emissions());
  info.set_current_max_n(entry.scheduler.rate_max_n());
  return info;
}

void FillLatest(const Entry& entry, absl::Duration window, absl::Time now,
                v1::LatestResponse* response) {
  const LatestStats stats = entry.scheduler.Latest(window, now);
  response->set_seconds_between_emissions(stats.seconds_between_emissions);
  response->set_emissions_per_second(stats.emissions_per_second);
  response->set_emissions(stats.emissions);
  response->set_window_seconds(absl::ToDoubleSeconds(window));
  response->set_current_max_n(entry.scheduler.rate_max_n());
}

void FillMean(const Entry& entry, absl::Time now, v1::MeanResponse* response) {
  const MeanStats stats = entry.scheduler.Mean(now);
  response->set_mean_seconds_between_emissions(
      stats.run.mean_seconds_between_emissions);
  response->set_mean_emissions_per_second(stats.run.mean_emissions_per_second);
  response->set_runtime_seconds(absl::ToDoubleSeconds(stats.run.runtime));
  response->set_total_emissions(stats.run.total_emissions);
  response->set_lowest_gap_seconds(absl::ToDoubleSeconds(stats.lowest_gap));
  response->set_highest_gap_seconds(absl::ToDoubleSeconds(stats.highest_gap));
  response->set_state(ToProto(entry.scheduler.state()));
  response->set_fairness_index(entry.workers.FairnessIndex());
}

// Appends `counts` to `out`, each worker's grants per second over
// `seconds` (0 when `seconds` is 0).
void AddWorkers(const std::vector<WorkerCounts>& counts, double seconds,
                google::protobuf::RepeatedPtrField<v1::WorkerStats>* out) {
  for (const WorkerCounts& c : counts) {
    v1::WorkerStats* worker = out->Add();
    worker->set_worker_id(c.worker_id);
    worker->set_others(c.others);
    worker->set_grants(c.grants);
    worker->set_emissions(c.emissions);
    worker->set_grants_per_second(
        seconds > 0 ? static_cast<double>(c.grants) / seconds : 0);
  }
}

}  // namespace

Service::Service(const Clock* clock, Metrics* metrics,
                 const ServiceOptions& options)
    : metrics_(metrics),
      authorizer_(options.authorizer),
      stream_limits_(options.max_streams, options.max_streams_per_client,
                     metrics),
      loop_(clock),
      table_(clock, metrics, &loop_, options.table),
      watches_(clock, metrics,
               [this](const std::string& name, absl::Duration window,
                      uint64_t* uid, v1::WatchThrottleResponse* out) {
                 return WatchSnapshot(name, window, uid, out);
               }) {
  loop_.Start([this] { return table_.AdvanceDue(); });
}

Service::~Service() {
  BeginShutdown();
  StopRefillLoop();
}

void Service::BeginShutdown() {
  table_.CloseAllStreams(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
  watches_.CloseAll(
      grpc::Status(grpc::StatusCode::UNAVAILABLE, "server shutting down"));
}

grpc::ServerUnaryReactor* Service::Reply(grpc::CallbackServerContext* context,
                                         absl::string_view method,
                                         const absl::Status& status) {
  const grpc::Status grpc_status = ToGrpcStatus(status);
  CountCallError(metrics_, method, grpc_status);
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(grpc_status);
  return reactor;
}

grpc::ServerUnaryReactor* Service::ReplyStored(
    grpc::CallbackServerContext* context, absl::string_view method,
    const absl::Status& status, const std::string& name) {
  if (!status.ok() || persister_ == nullptr) {
    return Reply(context, method, status);
  }
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  persister_->Persist(name, [this, reactor, method = std::string(method),
                             name](absl::Status stored) {
    grpc::Status reply = grpc::Status::OK;
    if (!stored.ok()) {
      reply = grpc::Status(
          grpc::StatusCode::UNAVAILABLE,
          absl::StrCat("throttle \"", name,
                       "\": the change is not stored: ", stored.message()));
    }
    CountCallError(metrics_, method, reply);
    reactor->Finish(reply);
  });
  return reactor;
}

absl::Status Service::Admit(grpc::CallbackServerContext* context,
                            absl::string_view method,
                            absl::string_view throttle,
                            std::string* identity) const {
  if (authorizer_ == nullptr) return absl::OkStatus();
  return authorizer_->Check(*context, method, throttle, identity);
}

absl::StatusOr<std::unique_ptr<StreamLimits::Slot>> Service::AdmitStream(
    grpc::CallbackServerContext* context, absl::string_view method,
    absl::string_view throttle) {
  std::string identity;
  if (absl::Status s = Admit(context, method, throttle, &identity); !s.ok()) {
    return s;
  }
  return stream_limits_.Admit(identity.empty() ? PeerHost(context->peer())
                                               : identity);
}

grpc::ServerWriteReactor<v1::AwaitFuelResponse>* Service::AwaitFuel(
    grpc::CallbackServerContext* context, const v1::AwaitFuelRequest* request) {
  absl::StatusOr<std::unique_ptr<StreamLimits::Slot>> slot =
      AdmitStream(context, "AwaitFuel", request->throttle());
  if (!slot.ok()) {
    return NewFuelReactor(&table_, *request, ToGrpcStatus(slot.status()),
                          nullptr);
  }
  return NewFuelReactor(&table_, *request, grpc::Status::OK, *std::move(slot));
}

grpc::ServerBidiReactor<v1::AcquireRequest, v1::AcquireResponse>*
Service::Acquire(grpc::CallbackServerContext* context) {
  // The throttle is named in the first message: admitted when it arrives.
  return NewAcquireReactor(&table_, [this, context](const std::string& name) {
    return AdmitStream(context, "Acquire", name);
  });
}

grpc::ServerUnaryReactor* Service::HasFuel(grpc::CallbackServerContext* context,
                                           const v1::HasFuelRequest* request,
                                           v1::HasFuelResponse* response) {
  if (absl::Status s = Admit(context, "HasFuel", request->throttle());
      !s.ok()) {
    return Reply(context, "HasFuel", s);
  }
  absl::Status status = table_.Transact(
      "throttle", request->throttle(),
      [&](Entry& entry, absl::Time now, Changes*) -> absl::Status {
        if (absl::Status s = ValidateWorkerId(request->worker_id()); !s.ok()) {
          return s;
        }
        const HasFuelResult result = entry.scheduler.HasFuel(now);
        const WorkerStats::Key worker =
            entry.workers.Track(request->worker_id(), /*asks_fuel=*/true);
        if (result.granted) entry.workers.RecordGrants(worker, 1, 1, now);
        response->set_granted(result.granted);
        response->set_stopped(result.stopped);
        if (result.retry_after.has_value()) {
          DurationToProto(*result.retry_after, response->mutable_retry_after());
        }
        return absl::OkStatus();
      });
  return Reply(context, "HasFuel", status);
}

grpc::ServerUnaryReactor* Service::Emit(grpc::CallbackServerContext* context,
                                        const v1::EmitRequest* request,
                                        v1::EmitResponse* response) {
  if (absl::Status s = Admit(context, "Emit", request->throttle()); !s.ok()) {
    return Reply(context, "Emit", s);
  }
  absl::Status status = table_.Transact(
      "throttle", request->throttle(),
      [&](Entry& entry, absl::Time now, Changes*) -> absl::Status {
        const int64_t count = request->has_count() ? request->count() : 1;
        if (count < 1 || count > kMaxEmitCount) {
          return absl::InvalidArgumentError(absl::StrCat(
              "count must be in [1, ", kMaxEmitCount, "], got ", count));
        }
        if (absl::Status s = ValidateWorkerId(request->worker_id()); !s.ok()) {
          return s;
        }
        absl::StatusOr<int64_t> total = entry.scheduler.Emit(count, now);
        if (!total.ok()) {
          return WithThrottle(request->throttle(), total.status());
        }
        entry.workers.RecordEmissions(
            entry.workers.Track(request->worker_id(), /*asks_fuel=*/false),
            count, now);
        response->set_total_emissions(*total);
        return absl::OkStatus();
      });
  return Reply(context, "Emit", status);
}

grpc::ServerUnaryReactor* Service::Report(grpc::CallbackServerContext* context,
                                          const v1::ReportRequest* request,
                                          v1::ReportResponse* response) {
  if (absl::Status s = Admit(context, "Report", request->throttle()); !s.ok()) {
    return Reply(context, "Report", s);
  }
  absl::Status status = table_.Transact(
      "throttle", request->throttle(),
      [&](Entry& entry, absl::Time now, Changes*) -> absl::Status {
        for (const auto& [field, count] :
             {std::pair<const char*, int64_t>{"successes",
                                              request->successes()},
              {"rejections", request->rejections()}}) {
          if (count < 0 || count > kMaxReportCount) {
            return absl::InvalidArgumentError(absl::StrCat(
                field, " must be in [0, ", kMaxReportCount, "], got ", count));
          }
        }
        if (absl::Status s = ValidateWorkerId(request->worker_id()); !s.ok()) {
          return s;
        }
        absl::StatusOr<int64_t> rate = entry.scheduler.Report(
            request->successes(), request->rejections(), now);
        if (!rate.ok()) return WithThrottle(request->throttle(), rate.status());
        response->set_current_max_n(*rate);
        return absl::OkStatus();
      });
  return Reply(context, "Report", status);
}

grpc::ServerUnaryReactor* Service::Start(grpc::CallbackServerContext* context,
                                         const v1::StartRequest* request,
                                         v1::StartResponse* response) {
  if (absl::Status s = Admit(context, "Start", request->throttle()); !s.ok()) {
    return Reply(context, "Start", s);
  }
  absl::Status status = table_.Transact(
      "throttle", request->throttle(),
      [&](Entry& entry, absl::Time now, Changes*) -> absl::Status {
        if (absl::Status s = entry.scheduler.Start(now); !s.ok()) {
          return WithThrottle(request->throttle(), s);
        }
        ++entry.starts;
        Log(LogLevel::kInfo, "throttle_started",
            {{"throttle", request->throttle()}});
        response->set_state(ToProto(entry.scheduler.state()));
        return absl::OkStatus();
      });
  if (status.ok()) watches_.Notify(request->throttle());
  return ReplyStored(context, "Start", status, request->throttle());
}

grpc::ServerUnaryReactor* Service::Stop(grpc::CallbackServerContext* context,
                                        const v1::StopRequest* request,
                                        v1::StopResponse* response) {
  if (absl::Status s = Admit(context, "Stop", request->throttle()); !s.ok()) {
    return Reply(context, "Stop", s);
  }
  absl::Status status = table_.Transact(
      "throttle", request->throttle(),
      [&](Entry& entry, absl::Time now, Changes* changes) -> absl::Status {
        absl::StatusOr<RunStats> stats =
            entry.scheduler.Stop(now, &changes->events);
        if (!stats.ok()) {
          return WithThrottle(request->throttle(), stats.status());
        }
        ++entry.stops;
        Log(LogLevel::kInfo, "throttle_stopped",
            {{"throttle", request->throttle()},
             {"runtime_seconds",
              absl::StrCat(absl::ToDoubleSeconds(stats->runtime))},
             {"total_emissions", absl::StrCat(stats->total_emissions)},
             {"streams_ended", absl::StrCat(changes->events.size())}});
        response->set_runtime_seconds(absl::ToDoubleSeconds(stats->runtime));
        response->set_total_emissions(stats->total_emissions);
        response->set_mean_seconds_between_emissions(
            stats->mean_seconds_between_emissions);
        response->set_mean_emissions_per_second(
            stats->mean_emissions_per_second);
        return absl::OkStatus();
      });
  if (status.ok()) watches_.Notify(request->throttle());
  return ReplyStored(context, "Stop", status, request->throttle());
}

grpc::ServerUnaryReactor* Service::Latest(grpc::CallbackServerContext* context,
                                          const v1::LatestRequest* request,
                                          v1::LatestResponse* response) {
  if (absl::Status s = Admit(context, "Latest", request->throttle()); !s.ok()) {
    return Reply(context, "Latest", s);
  }
  absl::Duration window = absl::Seconds(1);
  if (request->has_window()) {
    absl::StatusOr<absl::Duration> asked =
        DurationFromProto("window", request->window());
    if (!asked.ok()) return Reply(context, "Latest", asked.status());
    if (*asked <= absl::ZeroDuration() || *asked > kMaxLatestWindow) {
      return Reply(
          context, "Latest",
          absl::InvalidArgumentError(absl::StrCat(
              "window must be in (0, ", absl::FormatDuration(kMaxLatestWindow),
              "], got ", absl::FormatDuration(*asked))));
    }
    window = *asked;
  }
  absl::Status status = table_.Read(
      "throttle", request->throttle(), [&](const Entry& entry, absl::Time now) {
        FillLatest(entry, window, now, response);
        if (request->include_workers()) {
          AddWorkers(entry.workers.Latest(window, now),
                     absl::ToDoubleSeconds(window),
                     response->mutable_workers());
        }
      });
  return Reply(context, "Latest", status);
}

grpc::ServerUnaryReactor* Service::Mean(grpc::CallbackServerContext* context,
                                        const v1::MeanRequest* request,
                                        v1::MeanResponse* response) {
  if (absl::Status s = Admit(context, "Mean", request->throttle()); !s.ok()) {
    return Reply(context, "Mean", s);
  }
  absl::Status status = table_.Read(
      "throttle", request->throttle(), [&](const Entry& entry, absl::Time now) {
        FillMean(entry, now, response);
        if (request->include_workers()) {
          AddWorkers(entry.workers.Totals(), response->runtime_seconds(),
                     response->mutable_workers());
        }
      });
  return Reply(context, "Mean", status);
}

grpc::ServerUnaryReactor* Service::CreateThrottle(
    grpc::CallbackServerContext* context,
    const v1::CreateThrottleRequest* request,
    v1::CreateThrottleResponse* response) {
  if (absl::Status s = Admit(context, "CreateThrottle", request->name());
      !s.ok()) {
    return Reply(context, "CreateThrottle", s);
  }
  if (absl::Status s = ValidateName("name", request->name()); !s.ok()) {
    return Reply(context, "CreateThrottle", s);
  }
  absl::StatusOr<ThrottleConfig> config = FromProto(request->config());
  if (!config.ok()) return Reply(context, "CreateThrottle", config.status());
  return ReplyStored(context, "CreateThrottle",
                     table_.Create(request->name(), *config,
                                   [&](const Entry& entry) {
                                     *response->mutable_throttle() =
                                         Info(entry);
                                   }),
                     request->name());
}

grpc::ServerUnaryReactor* Service::ConfigureThrottle(
    grpc::CallbackServerContext* context,
    const v1::ConfigureThrottleRequest* request,
    v1::ConfigureThrottleResponse* response) {
  if (absl::Status s = Admit(context, "ConfigureThrottle", request->name());
      !s.ok()) {
    return Reply(context, "ConfigureThrottle", s);
  }
  absl::Status status = table_.Transact(
      "name", request->name(),
      [&](Entry& entry, absl::Time now, Changes*) -> absl::Status {
        absl::StatusOr<ThrottleConfig> config =
            ApplyConfigUpdate(entry.scheduler.config(), request->config(),
                              request->update_mask());
        if (!config.ok()) return config.status();
        entry.scheduler.Configure(*config, now);
        *response->mutable_throttle() = Info(entry);
        Log(LogLevel::kInfo, "throttle_configured",
            {{"throttle", request->name()},
             {"config", response->throttle().config().ShortDebugString()},
             {"open_streams", absl::StrCat(entry.sinks.size())}});
        return absl::OkStatus();
      });
  if (status.ok()) watches_.Notify(request->name());
  return ReplyStored(context, "ConfigureThrottle", status, request->name());
}

grpc::ServerUnaryReactor* Service::DeleteThrottle(
    grpc::CallbackServerContext* context,
    const v1::DeleteThrottleRequest* request,
    v1::DeleteThrottleResponse* /*response*/) {
  if (absl::Status s = Admit(context, "DeleteThrottle", request->name());
      !s.ok()) {
    return Reply(context, "DeleteThrottle", s);
  }
  absl::Status status = table_.Delete("name", request->name());
  if (status.ok()) watches_.Notify(request->name());  // they end: NOT_FOUND
  return ReplyStored(context, "DeleteThrottle", status, request->name());
}

grpc::ServerUnaryReactor* Service::ListThrottles(
    grpc::CallbackServerContext* context,
    const v1::ListThrottlesRequest* /*request*/,
    v1::ListThrottlesResponse* response) {
  std::string identity;
  if (absl::Status s = Admit(context, "ListThrottles", "", &identity);
      !s.ok()) {
    return Reply(context, "ListThrottles", s);
  }
  // Only the throttles the caller's policy names.
  table_.ForEach([&](const Entry& entry) {
    if (authorizer_ == nullptr || authorizer_->MayList(identity, entry.name)) {
      *response->add_throttles() = Info(entry);
    }
  });
  return Reply(context, "ListThrottles", absl::OkStatus());
}

grpc::ServerWriteReactor<v1::WatchThrottleResponse>* Service::WatchThrottle(
    grpc::CallbackServerContext* context,
    const v1::WatchThrottleRequest* request) {
  // A watch holds a place under the stream limits like a worker's stream
  // (docs/DECISIONS.md): the number of watchers per server stays bounded.
  absl::StatusOr<std::unique_ptr<StreamLimits::Slot>> slot =
      AdmitStream(context, "WatchThrottle", request->throttle());
  if (!slot.ok()) {
    return watches_.NewWatch(*request, ToGrpcStatus(slot.status()), nullptr);
  }
  return watches_.NewWatch(*request, grpc::Status::OK, *std::move(slot));
}

absl::Status Service::WatchSnapshot(const std::string& name,
                                    absl::Duration window, uint64_t* uid,
                                    v1::WatchThrottleResponse* out) {
  bool same = true;
  absl::Status status =
      table_.Read("throttle", name, [&](const Entry& entry, absl::Time now) {
        if (*uid != 0 && *uid != entry.uid) {
          same = false;
          return;
        }
        *uid = entry.uid;
        *out->mutable_time() =
            google::protobuf::util::TimeUtil::NanosecondsToTimestamp(
                absl::ToUnixNanos(table_.clock()->ToWall(now)));
        *out->mutable_throttle() = Info(entry);
        FillLatest(entry, window, now, out->mutable_latest());
        FillMean(entry, now, out->mutable_mean());
      });
  // The throttle watched is gone (perhaps re-created under its name).
  if (*uid != 0 && (!same || absl::IsNotFound(status))) {
    return absl::NotFoundError(
        absl::StrCat("throttle \"", name, "\" was deleted"));
  }
  return status;
}

}  // namespace throttle::server
