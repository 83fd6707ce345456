#include "server/service/record.h"

#include <unistd.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "server/service/convert.h"

namespace throttle::server {
namespace {

int64_t Ns(absl::Duration d) {
  if (d == absl::InfiniteDuration()) return std::numeric_limits<int64_t>::max();
  if (d == -absl::InfiniteDuration()) {
    return std::numeric_limits<int64_t>::min();
  }
  return absl::ToInt64Nanoseconds(d);
}
int64_t Ns(absl::Time t) {
  if (t == absl::InfiniteFuture()) return std::numeric_limits<int64_t>::max();
  if (t == absl::InfinitePast()) return std::numeric_limits<int64_t>::min();
  return absl::ToUnixNanos(t);
}
absl::Duration DurationOf(int64_t ns) {
  if (ns == std::numeric_limits<int64_t>::max()) {
    return absl::InfiniteDuration();
  }
  if (ns == std::numeric_limits<int64_t>::min()) {
    return -absl::InfiniteDuration();
  }
  return absl::Nanoseconds(ns);
}
absl::Time TimeOf(int64_t ns) {
  if (ns == std::numeric_limits<int64_t>::max()) return absl::InfiniteFuture();
  if (ns == std::numeric_limits<int64_t>::min()) return absl::InfinitePast();
  return absl::FromUnixNanos(ns);
}

State StateOf(v1::State state) {
  switch (state) {
    case v1::STATE_RUNNING:
      return State::kRunning;
    case v1::STATE_STOPPED:
      return State::kStopped;
    default:
      return State::kCreated;
  }
}

}  // namespace

std::string WriterName() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host, ":", getpid());
}

ThrottleRecord ToRecord(const StoredThrottle& stored, const Clock& clock,
                        const std::string& writer) {
  const absl::Duration offset = clock.WallOffset();
  auto Wall = [offset](absl::Time t) { return Ns(t + offset); };
  ThrottleRecord r;
  r.set_name(stored.name);
  *r.mutable_config() = ToProto(stored.config);
  r.set_state(ToProto(stored.state.state));
  r.set_last_grant_unix_ns(Wall(stored.state.last_grant));
  r.set_runtime_before_ns(Ns(stored.state.runtime_before));
  r.set_run_started_unix_ns(Wall(stored.state.run_started));
  const LimiterState& l = stored.state.limiter;
  state::v1::LimiterState* lp = r.mutable_limiter();
  lp->set_tat_unix_ns(Wall(l.tat));
  lp->set_newest_unix_ns(Wall(l.newest));
  for (const LimiterState::Run& run : l.runs) {
    state::v1::LimiterRun* rp = lp->add_runs();
    rp->set_at_unix_ns(Wall(run.at));
    rp->set_n(run.n);
  }
  lp->set_started(l.started);
  lp->set_paused(l.paused);
  lp->set_origin_unix_ns(Wall(l.origin));
  lp->set_paused_at_unix_ns(Wall(l.paused_at));
  lp->set_granted(l.granted);
  const MonitorTotals& m = stored.state.monitor;
  r.set_total_emissions(m.total);
  r.set_has_gap(m.has_gap);
  r.set_lowest_gap_ns(Ns(m.lowest_gap));
  r.set_highest_gap_ns(Ns(m.highest_gap));
  r.set_reserved(stored.reserved);
  r.set_starts(stored.starts);
  r.set_stops(stored.stops);
  if (stored.state.ramp_start != absl::InfiniteFuture()) {
    r.set_ramp_start_unix_ns(Wall(stored.state.ramp_start));
  }
  if (stored.state.stopped_at != absl::InfinitePast()) {
    r.set_stopped_at_unix_ns(Wall(stored.state.stopped_at));
  }
  if (stored.state.adaptive.has_value()) {
    const AdaptiveState& a = *stored.state.adaptive;
    state::v1::AdaptiveRecord* ap = r.mutable_adaptive();
    ap->set_rate_n(a.rate_n);
    ap->set_window_start_unix_ns(Wall(a.window_start));
    ap->set_successes(a.successes);
    ap->set_rejections(a.rejections);
  }
  r.set_open_weight(stored.state.open_weight);
  r.set_written_unix_ns(Ns(WallNow()));
  r.set_writer(writer);
  return r;
}

absl::StatusOr<StoredThrottle> FromRecord(const ThrottleRecord& r,
                                          const Clock& clock) {
  const absl::Duration offset = clock.WallOffset();
  auto Local = [offset](int64_t ns) { return TimeOf(ns) - offset; };
  auto bad = [&](absl::string_view why) {
    return absl::DataLossError(absl::StrCat("stored throttle \"", r.name(),
                                            "\" cannot be restored: ", why));
  };
  if (absl::Status s = ValidateName("name", r.name()); !s.ok()) {
    return bad(s.message());
  }
  absl::StatusOr<ThrottleConfig> config = FromProto(r.config());
  if (!config.ok()) return bad(config.status().message());
  if (r.reserved() < 0 || r.total_emissions() < 0) {
    return bad("negative counts");
  }
  StoredThrottle s;
  s.name = r.name();
  s.config = *config;
  s.state.state = StateOf(r.state());
  s.state.last_grant = Local(r.last_grant_unix_ns());
  s.state.runtime_before = DurationOf(r.runtime_before_ns());
  s.state.run_started = Local(r.run_started_unix_ns());
  const state::v1::LimiterState& lp = r.limiter();
  s.state.limiter.tat = Local(lp.tat_unix_ns());
  s.state.limiter.newest = Local(lp.newest_unix_ns());
  for (const state::v1::LimiterRun& run : lp.runs()) {
    if (run.n() <= 0) return bad("a window run without grants");
    s.state.limiter.runs.push_back({Local(run.at_unix_ns()), run.n()});
  }
  s.state.limiter.started = lp.started();
  s.state.limiter.paused = lp.paused();
  s.state.limiter.origin = Local(lp.origin_unix_ns());
  s.state.limiter.paused_at = Local(lp.paused_at_unix_ns());
  s.state.limiter.granted = lp.granted();
  s.state.monitor.total = r.total_emissions();
  s.state.monitor.has_gap = r.has_gap();
  s.state.monitor.lowest_gap = DurationOf(r.lowest_gap_ns());
  s.state.monitor.highest_gap = DurationOf(r.highest_gap_ns());
  if (r.has_ramp_start_unix_ns()) {
    s.state.ramp_start = Local(r.ramp_start_unix_ns());
  }
  if (r.has_stopped_at_unix_ns()) {
    s.state.stopped_at = Local(r.stopped_at_unix_ns());
  }
  if (r.has_adaptive()) {
    const state::v1::AdaptiveRecord& ap = r.adaptive();
    if (ap.rate_n() < 1 || ap.successes() < 0 || ap.rejections() < 0) {
      return bad("an adaptive rate below 1 or negative outcomes");
    }
    // Restore clamps the rate into the configured range.
    s.state.adaptive =
        AdaptiveState{ap.rate_n(), Local(ap.window_start_unix_ns()),
                      ap.successes(), ap.rejections()};
  }
  if (r.open_weight() < 0) return bad("a negative open weight");
  s.state.open_weight = r.open_weight();
  s.reserved = r.reserved();
  s.starts = r.starts();
  s.stops = r.stops();
  return s;
}

}  // namespace throttle::server
