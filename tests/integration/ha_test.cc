// High availability end to end: a real etcd (EtcdProcess), two real
// throttle_server processes of one cluster on fixed ports of 127.0.0.1,
// and four real test_worker processes that reach whichever server leads
// through the multi-address target "ipv4:127.0.0.1:P0,127.0.0.1:P1".
// Failovers (kill -9, SIGSTOP, SIGTERM, etcd gone) are checked against the
// servers' logs and their grant logs (--grant_log) merged: the grants of
// both leaders together keep each mode's bound. The last suite restarts a
// --state_dir server without etcd.
//
// Waits are on conditions with generous deadlines. The timing bounds
// asserted are the failover bounds of the issue (TTL + 1.5 s after a
// kill -9, under 2 s after SIGTERM) and the leader's grant deadline.
#include <signal.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "gtest/gtest.h"
#include "tests/support/etcd_process.h"
#include "tests/support/server_process.h"
#include "throttle/controller.h"

namespace throttle::testing {
namespace {

constexpr absl::Duration kTtl = absl::Seconds(1);
constexpr absl::Duration kGenerous = absl::Seconds(30);
// The issue's bound from a kill -9 of the leader until the standby leads:
// TTL + 1.5 s (the lease expires after the TTL, etcd checks expiry every
// 500 ms).
constexpr absl::Duration kKillFailoverBound = absl::Milliseconds(2500);
// How long the paused leader stays stopped: TTL + 1.5 s, past its lease.
constexpr absl::Duration kPause = absl::Milliseconds(2500);
// SIGTERM hands over (resign, revoke): a few hundred ms, bounded loosely.
constexpr absl::Duration kHandoverBound = absl::Seconds(2);
// Each server turns its monotonic grant times into wall-clock times for
// the grant log with an offset it reads anew each time (two clock reads):
// times of two processes compare to within microseconds, more when a
// process is preempted between the reads. The slack of every comparison.
constexpr absl::Duration kClockJitter = absl::Milliseconds(1);
constexpr int kWorkers = 4;
constexpr int64_t kMaxN = 20;  // per second, in every test
constexpr absl::Duration kPer = absl::Seconds(1);

// One grant of a --grant_log: its nominal time and the pid that gave it.
struct Grant {
  absl::Time at;
  int64_t pid;
};

std::string Describe(const Grant& grant, absl::Time origin) {
  return absl::StrCat("+", absl::FormatDuration(grant.at - origin), " pid ",
                      grant.pid);
}

// Every grant of `throttle` in the grant logs at `paths`, sorted by nominal
// time. A log line is "<throttle> <first, unix ns> <grants> <spacing ns>
// <host:pid>": grant i of the batch is at first + i * spacing.
std::vector<Grant> MergedGrants(const std::vector<std::string>& paths,
                                absl::string_view throttle) {
  std::vector<Grant> grants;
  for (const std::string& path : paths) {
    for (const std::string& line : ReadLines(path)) {
      const std::vector<absl::string_view> fields = absl::StrSplit(line, ' ');
      int64_t first = 0, count = 0, spacing = 0, pid = 0;
      const size_t colon =
          fields.size() == 5 ? fields[4].rfind(':') : absl::string_view::npos;
      if (colon == absl::string_view::npos ||
          !absl::SimpleAtoi(fields[1], &first) ||
          !absl::SimpleAtoi(fields[2], &count) ||
          !absl::SimpleAtoi(fields[3], &spacing) ||
          !absl::SimpleAtoi(fields[4].substr(colon + 1), &pid)) {
        ADD_FAILURE() << path << ": unparsable grant log line: " << line;
        continue;
      }
      if (fields[0] != throttle) continue;
      for (int64_t i = 0; i < count; ++i) {
        grants.push_back({absl::FromUnixNanos(first + i * spacing), pid});
      }
    }
  }
  std::stable_sort(grants.begin(), grants.end(),
                   [](const Grant& a, const Grant& b) { return a.at < b.at; });
  return grants;
}

// The grants [from, to) of `grants`, one per line, for failure messages.
std::string Excerpt(const std::vector<Grant>& grants, size_t from, size_t to) {
  std::vector<std::string> lines;
  const absl::Time origin = grants.empty() ? absl::UnixEpoch() : grants[0].at;
  for (size_t i = from; i < std::min(to, grants.size()); ++i) {
    lines.push_back(absl::StrCat("  #", i, " ", Describe(grants[i], origin)));
  }
  return absl::StrJoin(lines, "\n");
}

// The most grants in a window [t, t + per) of `grants`, and where the
// first such window starts (*from).
int64_t MostInWindow(const std::vector<Grant>& grants, absl::Duration per,
                     size_t* from) {
  int64_t most = 0;
  size_t end = 0;
  *from = 0;
  for (size_t i = 0; i < grants.size(); ++i) {
    end = std::max(end, i);
    while (end < grants.size() &&
           grants[end].at < grants[i].at + per - kClockJitter) {
      ++end;
    }
    if (static_cast<int64_t>(end - i) > most) {
      most = static_cast<int64_t>(end - i);
      *from = i;
    }
  }
  return most;
}

// "" if no window [t, t + per) holds more than `max_n` grants, else the
// first window that holds the most.
std::string WindowViolation(const std::vector<Grant>& grants, int64_t max_n,
                            absl::Duration per) {
  size_t from = 0;
  const int64_t most = MostInWindow(grants, per, &from);
  if (most <= max_n) return "";
  return absl::StrCat(most, " grants in the window of ",
                      absl::FormatDuration(per), " from #", from, ":\n",
                      Excerpt(grants, from, from + static_cast<size_t>(most)));
}

// "" if consecutive grants are at least `interval` apart, else the first
// pair that is not.
std::string SpacingViolation(const std::vector<Grant>& grants,
                             absl::Duration interval) {
  for (size_t i = 1; i < grants.size(); ++i) {
    if (grants[i].at - grants[i - 1].at < interval - kClockJitter) {
      return absl::StrCat("grants #", i - 1, " and #", i, " only ",
                          absl::FormatDuration(grants[i].at - grants[i - 1].at),
                          " apart:\n",
                          Excerpt(grants, i < 3 ? 0 : i - 3, i + 3));
    }
  }
  return "";
}

// "" if any k consecutive grants span at least (k - burst) * interval (a
// token bucket of `burst` refilled every `interval`), else the first run
// that does not.
std::string BucketViolation(const std::vector<Grant>& grants, int64_t burst,
                            absl::Duration interval) {
  for (size_t i = 0; i < grants.size(); ++i) {
    for (size_t j = i + 1; j < grants.size(); ++j) {
      const int64_t k = static_cast<int64_t>(j - i + 1);
      if (k <= burst) continue;
      if (grants[j].at - grants[i].at < (k - burst) * interval - kClockJitter) {
        return absl::StrCat(k, " grants #", i, "..#", j, " span only ",
                            absl::FormatDuration(grants[j].at - grants[i].at),
                            ", less than ", k - burst, " intervals:\n",
                            Excerpt(grants, i, j + 1));
      }
    }
  }
  return "";
}

// How many grants each pid gave in `grants`.
std::map<int64_t, int64_t> Granters(const std::vector<Grant>& grants) {
  std::map<int64_t, int64_t> pids;
  for (const Grant& grant : grants) ++pids[grant.pid];
  return pids;
}

// What the merged log holds, for the test's output: grants per server,
// the most in a window, the gap where the granting server changed.
std::string Summary(const std::vector<Grant>& grants, absl::Duration per) {
  std::vector<std::string> parts;
  for (const auto& [pid, n] : Granters(grants)) {
    parts.push_back(absl::StrCat(n, " from pid ", pid));
  }
  size_t from = 0;
  std::string summary = absl::StrCat(
      grants.size(), " grants (", absl::StrJoin(parts, ", "), "), at most ",
      MostInWindow(grants, per, &from), " in ", absl::FormatDuration(per));
  for (size_t i = 1; i < grants.size(); ++i) {
    if (grants[i].pid != grants[i - 1].pid) {
      absl::StrAppend(&summary, "; pid ", grants[i - 1].pid, " -> ",
                      grants[i].pid, " after ",
                      absl::FormatDuration(grants[i].at - grants[i - 1].at));
    }
  }
  return summary;
}

// The latest grant of `pid` in `grants`, if it gave any.
std::optional<Grant> LatestOf(const std::vector<Grant>& grants, int64_t pid) {
  std::optional<Grant> latest;
  for (const Grant& grant : grants) {
    if (grant.pid == pid && (!latest || grant.at > latest->at)) latest = grant;
  }
  return latest;
}

// The lines of the server log at `path` whose event is `event`
// ("leading" matches "... event=leading ...").
std::vector<std::string> EventLines(const std::string& path,
                                    absl::string_view event) {
  const std::string token = absl::StrCat("event=", event);
  std::vector<std::string> lines;
  for (const std::string& line : ReadLines(path)) {
    for (absl::string_view field : absl::StrSplit(line, ' ')) {
      if (field == token) {
        lines.push_back(line);
        break;
      }
    }
  }
  return lines;
}

// The time (ts=) of a log line; InfinitePast() if it has none.
absl::Time LineTime(absl::string_view line) {
  for (absl::string_view field : absl::StrSplit(line, ' ')) {
    absl::Time time;
    std::string error;
    if (absl::ConsumePrefix(&field, "ts=") &&
        absl::ParseTime("%Y-%m-%dT%H:%M:%E*SZ", field, &time, &error)) {
      return time;
    }
  }
  return absl::InfinitePast();
}

// The last `n` lines of `path`, for failure messages.
std::string Tail(const std::string& path, size_t n) {
  const std::vector<std::string> lines = ReadLines(path);
  const size_t from = lines.size() > n ? lines.size() - n : 0;
  return absl::StrJoin(lines.begin() + static_cast<std::ptrdiff_t>(from),
                       lines.end(), "\n");
}

v1::ThrottleConfig Config(v1::Mode mode, int64_t burst = 0) {
  v1::ThrottleConfig config;
  config.set_max_n(kMaxN);
  config.set_per_seconds(absl::ToDoubleSeconds(kPer));
  config.set_mode(mode);
  config.set_burst(burst);
  return config;
}

// Retries `call` (UNAVAILABLE while no server serves) until it succeeds
// or kGenerous passes; returns its last result.
template <typename Call>
auto Eventually(Call call) -> decltype(call()) {
  decltype(call()) result = absl::UnavailableError("not called");
  WaitFor(
      [&] {
        result = call();
        return result.ok();
      },
      kGenerous);
  return result;
}

// Calls `call` (named `what`) until it answers anything but UNAVAILABLE
// (no server leads, or the leader could not store the change in time: a
// client retries) or kGenerous passes. The try that timed out may have
// made the change all the same: `done_before` (ALREADY_EXISTS for a
// create, FAILED_PRECONDITION for a start or a stop) from a retry is
// success. Prints what the retries saw, if there were any.
absl::Status Retried(absl::string_view what,
                     const std::function<absl::Status()>& call,
                     absl::StatusCode done_before) {
  const absl::Time begin = absl::Now();
  absl::Status status = call();
  std::vector<std::string> seen;
  int tries = 1;
  WaitFor(
      [&] {
        if (!absl::IsUnavailable(status)) return true;
        if (seen.size() < 10 &&
            (seen.empty() ||
             !absl::StrContains(seen.back(), status.ToString()))) {
          seen.push_back(absl::StrCat("  +",
                                      absl::FormatDuration(absl::Now() - begin),
                                      " ", status.ToString()));
        }
        status = call();
        ++tries;
        return false;
      },
      kGenerous);
  if (tries > 1) {
    std::printf("%s: %d tries over %s, ending with %s; retried after:\n%s\n",
                std::string(what).c_str(), tries,
                absl::FormatDuration(absl::Now() - begin).c_str(),
                status.ToString().c_str(), absl::StrJoin(seen, "\n").c_str());
  }
  if (tries > 1 && status.code() == done_before) return absl::OkStatus();
  return status;
}

// Stops `name` and expects every worker to end by itself with "stopped":
// none of them saw an error across the failovers.
void StopThrottleAndWorkers(const Controller& controller, WorkerFleet& fleet,
                            const std::string& name) {
  const absl::Status stopped = Retried(
      "Stop", [&] { return controller.Stop(name).status(); },
      absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(stopped.ok()) << stopped;
  for (size_t i = 0; i < fleet.size(); ++i) {
    EXPECT_EQ(fleet.worker(i).Wait(kGenerous).value_or(-1), 0)
        << "worker " << i;
    EXPECT_EQ(fleet.LastLine(i), "stopped") << "worker " << i;
  }
}

// The stored throttle as `controller` lists it: `config`, running.
void ExpectRunningWithConfig(const Controller& controller,
                             const std::string& name,
                             const v1::ThrottleConfig& config) {
  auto list = Eventually([&] { return controller.ListThrottles(); });
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->throttles_size(), 1);
  const v1::ThrottleInfo& info = list->throttles(0);
  EXPECT_EQ(info.name(), name);
  EXPECT_EQ(info.state(), v1::STATE_RUNNING);
  EXPECT_EQ(info.config().max_n(), config.max_n());
  EXPECT_EQ(info.config().per_seconds(), config.per_seconds());
  EXPECT_EQ(info.config().mode(), config.mode());
}

// Mean after a restart or takeover against Mean shortly before: totals
// are stored at least every second, so at most 1 s of grants is lost, and
// the runtime goes on from where it was.
void ExpectStatisticsContinue(const Controller& controller,
                              const std::string& name,
                              const v1::MeanResponse& before) {
  auto after = Eventually([&] { return controller.Mean(name); });
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_GE(after->total_emissions(), before.total_emissions() - kMaxN)
      << "before: " << before.ShortDebugString()
      << "\nafter: " << after->ShortDebugString();
  EXPECT_GE(after->runtime_seconds(), before.runtime_seconds() - 1.0)
      << "before: " << before.ShortDebugString()
      << "\nafter: " << after->ShortDebugString();
}

// One throttle_server of the cluster: its fixed ports and its files.
struct Node {
  int port = 0;
  int health_port = 0;
  std::string log;        // standard error: the logfmt log
  std::string grant_log;  // --grant_log
  std::string port_file;  // written each time it starts leading
  std::optional<Subprocess> process;

  std::string address() const { return absl::StrCat("127.0.0.1:", port); }
  size_t Events(absl::string_view event) const {
    return EventLines(log, event).size();
  }
  // Whether its log says it leads now: "leading" is its newest election
  // event (not "lead_lost", "standing_by" or "handed_over").
  bool Leading() const {
    bool leading = false;
    for (const std::string& line : ReadLines(log)) {
      for (absl::string_view field : absl::StrSplit(line, ' ')) {
        if (field == "event=leading") leading = true;
        if (field == "event=lead_lost" || field == "event=standing_by" ||
            field == "event=handed_over") {
          leading = false;
        }
      }
    }
    return leading;
  }
};

// A real etcd and two servers of one cluster: node 0 leads, node 1 stands
// by (it is started only once node 0 leads). On a machine loaded enough
// that a 1 s lease expires by itself the two may swap before a test acts:
// each test acts on whichever leads then. Every process is stopped when
// the test ends, failed or not: the workers (killed) first, then the
// servers (killed), then etcd.
class HighAvailability : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> etcd = EtcdProcess::Start("");
    ASSERT_TRUE(etcd.ok()) << etcd.status();
    etcd_ = *std::move(etcd);
    absl::StatusOr<std::vector<int>> ports = PickFreePorts(4);
    ASSERT_TRUE(ports.ok()) << ports.status();
    for (int i = 0; i < 2; ++i) {
      Node& node = nodes_[i];
      node.port = (*ports)[2 * i];
      node.health_port = (*ports)[2 * i + 1];
      node.log = dir_.File(absl::StrCat("server", i, ".log"));
      node.grant_log = dir_.File(absl::StrCat("server", i, ".grants"));
      node.port_file = dir_.File(absl::StrCat("server", i, ".port"));
    }
    ASSERT_NO_FATAL_FAILURE(StartNode(0));
    ASSERT_NO_FATAL_FAILURE(AwaitEvent(0, "leading"));
    ASSERT_NO_FATAL_FAILURE(StartNode(1));
    ASSERT_NO_FATAL_FAILURE(AwaitEvent(1, "campaigning"));
    controller_ = std::make_unique<Controller>(target());
  }

  // On failure: the end of both logs, and every file (logs, grant logs,
  // worker outputs) kept in <dir>.failed for a closer look.
  void TearDown() override {
    if (!HasFailure()) return;
    for (const Node& node : nodes_) {
      std::printf("--- %s (last lines)\n%s\n", node.log.c_str(),
                  Tail(node.log, 30).c_str());
    }
    const std::string kept = dir_.path() + ".failed";
    std::error_code error;
    std::filesystem::copy(dir_.path(), kept,
                          std::filesystem::copy_options::recursive, error);
    std::printf("--- files kept in %s%s\n", kept.c_str(),
                error ? (": " + error.message()).c_str() : "");
  }

  // The multi-address target: the client reaches whichever server listens.
  std::string target() const {
    return absl::StrCat("ipv4:", nodes_[0].address(), ",", nodes_[1].address());
  }

  void StartNode(int i) {
    Node& node = nodes_[i];
    absl::StatusOr<Subprocess> process = SpawnServer(
        {"--etcd_endpoints=" + etcd_->endpoint(), "--cluster=ha_test",
         "--lease_ttl=" + absl::FormatDuration(kTtl),
         "--listen=" + node.address(),
         absl::StrCat("--health_listen=127.0.0.1:", node.health_port),
         "--port_file=" + node.port_file, "--grant_log=" + node.grant_log},
        node.log);
    ASSERT_TRUE(process.ok()) << process.status();
    node.process.emplace(*std::move(process));
  }

  // Waits until node `i` logged `event` more than `before` times; fails
  // at once if the node exited.
  void AwaitEvent(int i, absl::string_view event, size_t before = 0) {
    Node& node = nodes_[i];
    absl::StatusOr<int> exited = absl::DeadlineExceededError("running");
    ASSERT_TRUE(WaitFor(
        [&] {
          exited = node.process->Wait(absl::ZeroDuration());
          return node.Events(event) > before || exited.ok();
        },
        kGenerous))
        << "node " << i << " did not log event=" << event << ":\n"
        << Tail(node.log, 20);
    ASSERT_FALSE(exited.ok())
        << "node " << i << " exited with " << *exited << ":\n"
        << Tail(node.log, 20);
  }

  // The node that leads now (by the logs), once exactly one does.
  void AwaitLeader(int* leader) {
    ASSERT_TRUE(WaitFor(
        [&] { return nodes_[0].Leading() != nodes_[1].Leading(); }, kGenerous))
        << "no single leader:\n"
        << Tail(nodes_[0].log, 10) << "\n"
        << Tail(nodes_[1].log, 10);
    *leader = nodes_[0].Leading() ? 0 : 1;
  }

  // Sends `signal` to the node that leads (*old) and waits until the other
  // one leads; *took is the time from the signal to its "event=leading",
  // *signalled (if not null) when the signal was sent.
  void SignalLeaderAndAwaitTakeover(int signal, int* old, absl::Duration* took,
                                    absl::Time* signalled = nullptr) {
    ASSERT_NO_FATAL_FAILURE(AwaitLeader(old));
    const int next = 1 - *old;
    const size_t before = nodes_[next].Events("leading");
    nodes_[*old].process->Signal(signal);
    const absl::Time sent = absl::Now();
    if (signalled != nullptr) *signalled = sent;
    ASSERT_NO_FATAL_FAILURE(AwaitEvent(next, "leading", before));
    *took = LineTime(EventLines(nodes_[next].log, "leading")[before]) - sent;
  }

  // Creates `name` with `config` at run time (through the Controller), runs
  // the workers on it, starts it, and waits until every worker has fuel
  // and `grants` were counted (statistics were stored a few times).
  void RunWorkers(const std::string& name, const v1::ThrottleConfig& config,
                  int64_t grants) {
    const absl::Status created = Retried(
        "CreateThrottle",
        [&] { return controller_->CreateThrottle(name, config).status(); },
        absl::StatusCode::kAlreadyExists);
    ASSERT_TRUE(created.ok()) << created;
    fleet_ = std::make_unique<WorkerFleet>(dir_, target(), name, kWorkers);
    ASSERT_EQ(fleet_->size(), static_cast<size_t>(kWorkers));
    const absl::Status started = Retried(
        "Start", [&] { return controller_->Start(name).status(); },
        absl::StatusCode::kFailedPrecondition);
    ASSERT_TRUE(started.ok()) << started;
    ASSERT_TRUE(WaitFor(
        [&] {
          return fleet_->EachGrewPast(std::vector<int64_t>(kWorkers, 0)) &&
                 fleet_->TotalGrants() >= grants;
        },
        kGenerous));
  }

  // Kills the leader (*old) with SIGKILL and waits until the other node
  // leads; *failover is the time from the kill to its "event=leading".
  void KillLeaderAndAwaitTakeover(int* old, absl::Duration* failover) {
    ASSERT_NO_FATAL_FAILURE(
        SignalLeaderAndAwaitTakeover(SIGKILL, old, failover));
    EXPECT_EQ(nodes_[*old].process->Wait(kGenerous).value_or(-1),
              128 + SIGKILL);
  }

  std::vector<Grant> Grants(const std::string& name) const {
    return MergedGrants({nodes_[0].grant_log, nodes_[1].grant_log}, name);
  }

  // Declared in the order of their start; destroyed the other way round.
  TempDir dir_;
  std::unique_ptr<EtcdProcess> etcd_;
  Node nodes_[2];
  std::unique_ptr<Controller> controller_;
  std::unique_ptr<WorkerFleet> fleet_;
};

TEST_F(HighAvailability, KilledLeaderIsReplacedWithinTtlAndKeepsItsThrottles) {
  const v1::ThrottleConfig config = Config(v1::MODE_WINDOW);
  ASSERT_NO_FATAL_FAILURE(RunWorkers("work", config, 3 * kMaxN));
  auto before = controller_->Mean("work");
  ASSERT_TRUE(before.ok()) << before.status();

  int old = -1;
  absl::Duration failover;
  ASSERT_NO_FATAL_FAILURE(KillLeaderAndAwaitTakeover(&old, &failover));
  std::printf("kill -9 of the leader until the standby led: %s\n",
              absl::FormatDuration(failover).c_str());
  EXPECT_LE(failover, kKillFailoverBound);
  const std::vector<int64_t> at_takeover = fleet_->GrantCounts();

  ExpectRunningWithConfig(*controller_, "work", config);
  ExpectStatisticsContinue(*controller_, "work", *before);
  EXPECT_TRUE(
      WaitFor([&] { return fleet_->EachGrewPast(at_takeover); }, kGenerous));
  EXPECT_TRUE(fleet_->AllRunning());
  StopThrottleAndWorkers(*controller_, *fleet_, "work");
}

// A dead host (kill -9: the lease lives until it expires) is the test
// above; here the leader is paused past its lease and then continues.
TEST_F(HighAvailability, PausedLeaderGrantsNothingAfterItsDeadlineAndStandsBy) {
  ASSERT_NO_FATAL_FAILURE(
      RunWorkers("work", Config(v1::MODE_SMOOTH), 2 * kMaxN));
  int old = -1;
  absl::Time paused;
  absl::Duration took;
  ASSERT_NO_FATAL_FAILURE(
      SignalLeaderAndAwaitTakeover(SIGSTOP, &old, &took, &paused));
  // Stopped: its log stands still until SIGCONT.
  Node& leader = nodes_[old];
  const int64_t paused_pid = leader.process->pid();
  const size_t lost_before = leader.Events("lead_lost");
  const size_t stood_by_before = leader.Events("standing_by");
  // The pause itself: it lasts TTL + 1.5 s, however soon the other led.
  absl::SleepFor(paused + kPause - absl::Now());
  leader.process->Signal(SIGCONT);
  const std::vector<int64_t> at_continue = fleet_->GrantCounts();

  EXPECT_TRUE(WaitFor(
      [&] {
        return leader.Events("lead_lost") > lost_before &&
               leader.Events("standing_by") > stood_by_before;
      },
      kGenerous))
      << Tail(leader.log, 20);
  EXPECT_TRUE(
      WaitFor([&] { return fleet_->EachGrewPast(at_continue); }, kGenerous));
  EXPECT_TRUE(fleet_->AllRunning());

  const std::vector<Grant> grants = Grants("work");
  ASSERT_FALSE(grants.empty());
  const std::optional<Grant> last = LatestOf(grants, paused_pid);
  ASSERT_TRUE(last.has_value());
  std::printf("%s; the paused leader's last grant %s after the pause\n",
              Summary(grants, kPer).c_str(),
              absl::FormatDuration(last->at - paused).c_str());
  EXPECT_LE(last->at, paused + kTtl + kClockJitter)
      << "the paused leader granted " << absl::FormatDuration(last->at - paused)
      << " after it was paused (TTL " << absl::FormatDuration(kTtl) << ")";
  EXPECT_EQ(Granters(grants).size(), 2u);
  EXPECT_EQ(WindowViolation(grants, kMaxN, kPer), "");
  StopThrottleAndWorkers(*controller_, *fleet_, "work");
}

struct ModeCase {
  const char* name;
  v1::Mode mode;
  int64_t burst;  // bucket only
};

void PrintTo(const ModeCase& mode, std::ostream* out) { *out << mode.name; }

class HighAvailabilityModes : public HighAvailability,
                              public ::testing::WithParamInterface<ModeCase> {};

// The grant logs of the killed leader and of its successor, merged, keep
// the mode's bound: the successor gives no extra grants at the failover.
TEST_P(HighAvailabilityModes, BothLeadersTogetherKeepTheModesBound) {
  const ModeCase& mode = GetParam();
  ASSERT_NO_FATAL_FAILURE(
      RunWorkers("work", Config(mode.mode, mode.burst), 2 * kMaxN));
  int old = -1;
  absl::Duration failover;
  ASSERT_NO_FATAL_FAILURE(KillLeaderAndAwaitTakeover(&old, &failover));
  // The successor serves a few seconds.
  const std::string& successor_log = nodes_[1 - old].grant_log;
  const size_t successor_before = MergedGrants({successor_log}, "work").size();
  EXPECT_TRUE(WaitFor(
      [&] {
        return MergedGrants({successor_log}, "work").size() >=
               successor_before + static_cast<size_t>(3 * kMaxN);
      },
      kGenerous));

  const std::vector<Grant> grants = Grants("work");
  std::printf("%s: failover %s; %s\n", mode.name,
              absl::FormatDuration(failover).c_str(),
              Summary(grants, kPer).c_str());
  EXPECT_EQ(Granters(grants).size(), 2u) << "both leaders granted";
  const absl::Duration interval = kPer / kMaxN;
  switch (mode.mode) {
    case v1::MODE_SMOOTH:
      EXPECT_EQ(SpacingViolation(grants, interval), "");
      EXPECT_EQ(WindowViolation(grants, kMaxN, kPer), "");
      break;
    case v1::MODE_WINDOW:
      EXPECT_EQ(WindowViolation(grants, kMaxN, kPer), "");
      break;
    case v1::MODE_BUCKET:
      EXPECT_EQ(BucketViolation(grants, mode.burst, interval), "");
      break;
    default:
      FAIL() << "no bound to check for mode " << mode.name;
  }
  StopThrottleAndWorkers(*controller_, *fleet_, "work");
}

INSTANTIATE_TEST_SUITE_P(
    Modes, HighAvailabilityModes,
    ::testing::Values(ModeCase{"smooth", v1::MODE_SMOOTH, 0},
                      ModeCase{"window", v1::MODE_WINDOW, 0},
                      ModeCase{"bucket", v1::MODE_BUCKET, 5}),
    [](const ::testing::TestParamInfo<ModeCase>& info) {
      return std::string(info.param.name);
    });

TEST_F(HighAvailability, SigtermHandsOverAtOnceWithNothingReserved) {
  ASSERT_NO_FATAL_FAILURE(
      RunWorkers("work", Config(v1::MODE_WINDOW), 2 * kMaxN));
  int old = -1;
  ASSERT_NO_FATAL_FAILURE(AwaitLeader(&old));
  const Node& successor = nodes_[1 - old];
  const size_t restored_before =
      EventLines(successor.log, "throttle_restored").size();
  absl::Duration handover;
  ASSERT_NO_FATAL_FAILURE(
      SignalLeaderAndAwaitTakeover(SIGTERM, &old, &handover));
  ASSERT_EQ(&successor, &nodes_[1 - old]) << "the nodes swapped meanwhile";
  std::printf("SIGTERM of the leader until the standby led: %s\n",
              absl::FormatDuration(handover).c_str());
  EXPECT_LT(handover, kHandoverBound);
  const std::vector<int64_t> at_takeover = fleet_->GrantCounts();

  EXPECT_EQ(nodes_[old].process->Wait(kGenerous).value_or(-1), 0);
  EXPECT_EQ(nodes_[old].Events("handed_over"), 1u) << Tail(nodes_[old].log, 20);
  // The old leader stored the throttle with nothing reserved: the
  // successor's restore at this takeover assumes nothing used.
  const std::vector<std::string> restored =
      EventLines(successor.log, "throttle_restored");
  ASSERT_GT(restored.size(), restored_before) << Tail(successor.log, 20);
  const std::string& restore = restored[restored_before];
  EXPECT_TRUE(absl::StrContains(restore, " throttle=work ")) << restore;
  EXPECT_TRUE(absl::StrContains(restore + " ", " assumed_grants=0 "))
      << restore;

  EXPECT_TRUE(
      WaitFor([&] { return fleet_->EachGrewPast(at_takeover); }, kGenerous));
  EXPECT_TRUE(fleet_->AllRunning());
  StopThrottleAndWorkers(*controller_, *fleet_, "work");
}

TEST_F(HighAvailability, LeaderStopsGrantingWithoutEtcdAndResumesWithIt) {
  const v1::ThrottleConfig config = Config(v1::MODE_WINDOW);
  ASSERT_NO_FATAL_FAILURE(RunWorkers("work", config, 2 * kMaxN));
  int leader = -1;
  ASSERT_NO_FATAL_FAILURE(AwaitLeader(&leader));
  const size_t lost_before = nodes_[leader].Events("lead_lost");
  etcd_->Kill();
  const absl::Time killed = absl::Now();
  // The leader's deadline is the send time of its last answered keepalive
  // plus the TTL: at most TTL after the kill. Let it pass, with a margin.
  EXPECT_TRUE(
      WaitFor([&] { return nodes_[leader].Events("lead_lost") > lost_before; },
              kGenerous))
      << Tail(nodes_[leader].log, 20);
  absl::SleepFor(killed + kTtl + absl::Seconds(1) - absl::Now());
  const std::vector<Grant> grants = Grants("work");
  ASSERT_FALSE(grants.empty());
  std::printf("last grant %s after etcd was killed\n",
              absl::FormatDuration(grants.back().at - killed).c_str());
  const absl::Time limit = killed + kTtl + absl::Milliseconds(500);
  for (const Grant& grant : grants) {
    ASSERT_LE(grant.at, limit)
        << "granted " << absl::FormatDuration(grant.at - killed)
        << " after etcd was killed, by pid " << grant.pid;
  }
  const std::vector<int64_t> without_etcd = fleet_->GrantCounts();

  absl::Status restarted = etcd_->Restart();
  ASSERT_TRUE(restarted.ok()) << restarted;
  EXPECT_TRUE(
      WaitFor([&] { return fleet_->EachGrewPast(without_etcd); }, kGenerous));
  ExpectRunningWithConfig(*controller_, "work", config);
  EXPECT_TRUE(fleet_->AllRunning());
  StopThrottleAndWorkers(*controller_, *fleet_, "work");
}

// Without etcd: one server with --state_dir, killed and restarted on the
// same port and directory, resumes by itself.
TEST(DurableState, RestartedServerResumesRunningThrottlesAndStatistics) {
  TempDir dir;
  const std::vector<std::string> flags = {"--state_dir=" + dir.File("state")};
  absl::StatusOr<ServerProcess> server = StartServer(dir, 0, flags);
  ASSERT_TRUE(server.ok()) << server.status();
  Controller controller(server->address());
  const v1::ThrottleConfig config = Config(v1::MODE_WINDOW);
  ASSERT_TRUE(controller.CreateThrottle("work", config).ok());
  WorkerFleet fleet(dir, server->address(), "work", kWorkers);
  ASSERT_EQ(fleet.size(), static_cast<size_t>(kWorkers));
  ASSERT_TRUE(controller.Start("work").ok());
  ASSERT_TRUE(
      WaitFor([&] { return fleet.TotalGrants() >= 3 * kMaxN; }, kGenerous));
  auto before = controller.Mean("work");
  ASSERT_TRUE(before.ok()) << before.status();

  server->process.Signal(SIGKILL);
  ASSERT_EQ(server->process.Wait(kGenerous).value_or(-1), 128 + SIGKILL);
  const std::vector<int64_t> at_kill = fleet.GrantCounts();
  absl::StatusOr<ServerProcess> restarted =
      StartServer(dir, server->port, flags);
  ASSERT_TRUE(restarted.ok()) << restarted.status();

  ExpectRunningWithConfig(controller, "work", config);
  ExpectStatisticsContinue(controller, "work", *before);
  EXPECT_TRUE(WaitFor([&] { return fleet.EachGrewPast(at_kill); }, kGenerous));
  EXPECT_TRUE(fleet.AllRunning());
  StopThrottleAndWorkers(controller, fleet, "work");
  restarted->process.Signal(SIGTERM);
  EXPECT_EQ(restarted->process.Wait(kGenerous).value_or(-1), 0);
}

}  // namespace
}  // namespace throttle::testing
