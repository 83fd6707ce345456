// The scheduler of one throttle: who gets fuel, when, and what it costs.
//
// The heart of the scheduler core: plain C++, no gRPC, no threads, no clock
// of its own. Given the time, it says which waiting streams get fuel now
// (as StreamEvents) and when it must be woken next (NextWakeup). Every
// invariant -- the rate, the window bound, fairness, stop, wait limits -- is
// unit-tested here with a fake clock.
//
// Fairness: waiting streams form one ring per priority class, in arrival
// order. The highest class with a waiting stream is served; the stream at
// the front of its ring gets the next grant; after `weight` grants in a row
// (or when it needs no more) it moves to the back. Starvation bound: a
// lower class with waiting streams that got no grant for
// config.starvation_bound gets the next grant (one, to the front of its
// ring) as if it were the highest; choosing the class is O(classes). Serving,
// cancelling and expiring a stream are O(1) (expiry O(log n) in the wait-limit
// heap), so the cost of a grant does not grow with the number of open streams.
//
// Deadline-aware admission: the scheduler keeps, per class, the sum of the
// grants the streams in the ring get in their current turns (turn_grants_)
// and of the grants they still want (outstanding_, unbounded_ for count-0
// streams), updated at every change of a ring, so the grants due before a
// stream joining at the back of its class -- its class's turns and every
// grant higher classes still want -- is known in O(classes); the limiter turns
// that count into a time (Limiter::NthAllowed). A stream that asks fail_if_late
// ends with kTooLate when its next grant is expected after its wait limit.
//
// Not thread-safe: the owner (the service) serialises all calls.
#ifndef THROTTLE_SERVER_CORE_SCHEDULER_H_
#define THROTTLE_SERVER_CORE_SCHEDULER_H_

#include <algorithm>
#include <array>
#include <cstdint>
#include <limits>
#include <list>
#include <memory>
#include <optional>
#include <queue>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/adaptive.h"
#include "server/core/limiter.h"
#include "server/core/monitor.h"
#include "server/core/throttle_config.h"

namespace throttle::server {

// Identifies an open stream within one scheduler. Never reused.
using StreamId = uint64_t;

// The life cycle of a throttle: kCreated -> kRunning <-> kStopped.
enum class State { kCreated, kRunning, kStopped };

// Returns "created", "running" or "stopped".
const char* StateName(State state);

// Why a stream left the scheduler.
enum class EndReason {
  kNone,             // still open
  kCountReached,     // it got all the grants it asked for
  kStopped,          // the throttle was stopped (the seed's kill flag)
  kWaitLimitPassed,  // its wait limit passed without a grant
  kClosed,           // EndAll(): the throttle was deleted or the server stops
  kTooLate,  // fail_if_late: its next grant was expected after its wait limit
};

// What a stream asks for.
struct StreamRequest {
  int64_t count = 1;   // grants wanted; 0 = until the throttle stops
  int64_t weight = 1;  // grants per round-robin turn, >= 1
  // Longest wait for the next grant; restarts at each grant.
  absl::Duration wait_limit = absl::InfiniteDuration();
  // An Acquire stream: `count` is its first demand (0: none yet), more
  // comes through AddDemand. It never ends for its count: with no demand
  // outstanding it is idle -- out of the ring, not waiting, granted nothing
  // -- until AddDemand. Needs an infinite wait_limit.
  bool on_demand = false;
  // Deadline-aware admission: with a finite, non-zero wait_limit on a
  // running, limited throttle, the stream ends with kTooLate (its event
  // carries the expected wait) at Open and after each grant when its next
  // grant is expected later than its wait limit allows. The expectation
  // assumes nobody joins ahead and the configuration stays. Ignored
  // otherwise (a zero wait_limit ends with kWaitLimitPassed as before).
  bool fail_if_late = false;
  // Priority class in [0, kMaxPriority]: a higher class is served first.
  int64_t priority = kDefaultPriority;
};

// Something that happened to a stream: grants allotted and/or its end.
struct StreamEvent {
  StreamId stream = 0;
  int64_t grants = 0;  // grants allotted
  // Their nominal times: grant i (from 0) at granted_at + i * spacing;
  // all at granted_at when spacing is zero.
  absl::Time granted_at;
  absl::Duration spacing;
  EndReason end = EndReason::kNone;  // != kNone: the stream is closed
  // Opaque: the configuration they were granted under, and whether the
  // monitor counted them (see GiveBack).
  uint64_t epoch = 0;
  // With end == kTooLate: how long from the event's time its next grant
  // was expected to take. Zero otherwise.
  absl::Duration expected_wait;
};

// The seed's final tuple (Stop) and running totals.
struct RunStats {
  absl::Duration runtime;  // summed over all runs
  int64_t total_emissions = 0;
  double mean_seconds_between_emissions = 0;  // runtime / total
  double mean_emissions_per_second = 0;       // total / runtime
};

// The seed's mean() with lo/hi gaps.
struct MeanStats {
  RunStats run;
  absl::Duration lowest_gap;
  absl::Duration highest_gap;
};

// The seed's latest().
struct LatestStats {
  int64_t emissions = 0;
  double seconds_between_emissions = 0;  // window / emissions
  double emissions_per_second = 0;       // emissions / window
};

// The answer of HasFuel.
struct HasFuelResult {
  bool granted = false;
  bool stopped = false;
  // When neither granted nor stopped and the throttle is running: the
  // expected wait of a stream that would open now (ExpectedWait).
  std::optional<absl::Duration> retry_after;
};

// What a throttle's scheduler keeps across a restart or a failover
// (Scheduler::Save): its state, limiter and totals -- not its streams,
// whose workers reconnect, nor the history behind Latest.
struct SchedulerState {
  State state = State::kCreated;
  absl::Time last_grant = absl::InfinitePast();
  absl::Duration runtime_before;
  absl::Time run_started = absl::UnixEpoch();  // of the current run
  LimiterState limiter;
  MonitorTotals monitor;
  // The start of the warm-up ramp in progress or last run (infinite future:
  // none), and the last Stop (for whether a Start ramps again).
  absl::Time ramp_start = absl::InfiniteFuture();
  absl::Time stopped_at = absl::InfinitePast();
  // The adaptive ceiling's rate and window, once it has begun.
  std::optional<AdaptiveState> adaptive;
  // The summed weight of the open streams (a recovery's stored weight while
  // one is in progress): how much of the rate workers that lose the server
  // may go on granting locally (Restore, recovery).
  int64_t open_weight = 0;
};

class Scheduler {
 public:
  // A throttle in state kCreated. `config` must pass ValidateConfig.
  explicit Scheduler(const ThrottleConfig& config);

  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  State state() const { return state_; }
  const ThrottleConfig& config() const { return config_; }
  // Streams open and waiting for a grant (idle on-demand streams are not).
  int64_t waiting_streams() const {
    return static_cast<int64_t>(streams_.size()) - idle_streams_;
  }
  int64_t total_emissions() const { return monitor_.total(); }
  // The summed weight of all open streams (waiting, held or idle), kept as
  // a running sum: what a stream's share of the rate is divided by
  // (SharePerSecond, graceful degradation).
  int64_t open_weight() const { return open_weight_; }

  // Graceful degradation: the rate a stream of `weight` is told while
  // streams of `total_weight` in all share the throttle -- the rate in
  // effect at `now` (max_n_in_effect(), times a warm-up ramp's fraction)
  // x weight / total_weight, in grants per second. 0 in monitor-only mode
  // (no limit to share) or without weight. O(1).
  double SharePerSecond(int64_t weight, int64_t total_weight,
                        absl::Time now) const;

  // Opens a stream at `now`. If the throttle is stopped, or the wait limit
  // is zero and no fuel is free, the stream ends at once: its event is
  // appended to *events. Otherwise call Advance(now) to serve it.
  // `request` must be valid (count >= 0, weight >= 1, wait_limit >= 0,
  // priority in [0, kMaxPriority]).
  StreamId Open(const StreamRequest& request, absl::Time now,
                std::vector<StreamEvent>* events);

  // Removes a stream that went away (cancelled, disconnected). No event.
  // Unknown or already-ended ids are ignored.
  void Close(StreamId id);

  // Gives back a batch of grants that never reached its stream, exactly as
  // one StreamEvent reported it (`grants` at granted_at + i * spacing under
  // configuration `epoch`; a batch goes back whole, never split): the monitor
  // uncounts them, and the limiter takes back what it can without breaking the
  // mode's bound -- nothing for grants of an earlier configuration -- for the
  // next waiting stream.
  void GiveBack(absl::Time granted_at, int64_t grants, absl::Duration spacing,
                uint64_t epoch);

  // Changes an on-demand stream's outstanding demand: `withdraw` taken away
  // (not below zero), then `demand` added. A stream left without demand goes
  // idle; one that gets demand goes to the back of the ring. Call
  // Advance(now) afterwards. INVALID_ARGUMENT if the demand would exceed
  // kMaxOutstandingDemand (nothing changes then); unknown ids and streams
  // not on demand are ignored. Returns the demand now outstanding.
  absl::StatusOr<int64_t> AddDemand(StreamId id, int64_t withdraw,
                                    int64_t demand, absl::Time now);

  // Monitor-only mode hands a count-0 stream one grant at a time; the owner
  // calls this when that grant was written, so the stream gets the next.
  // Ignored in other modes and for unknown ids.
  void MarkDelivered(StreamId id, absl::Time now);

  // Takes a waiting stream out of service while its consumer is stalled:
  // it gets no grants (its wait limit still runs) until Release, also
  // across Configure. Ignored for unknown ids and streams already held.
  void Hold(StreamId id);
  // Puts a held stream back in line, at the back of the ring. Ignored for
  // unknown ids and streams not held. Call Advance(now) afterwards.
  void Release(StreamId id, absl::Time now);

  // Allots every grant due at or before `now` and ends streams whose wait
  // limit passed; appends what happened to *events.
  void Advance(absl::Time now, std::vector<StreamEvent>* events);

  // When Advance must next be called: absl::InfiniteFuture() if nothing is
  // pending. May be earlier than needed (a harmless early wake-up).
  absl::Time NextWakeup() const;

  // Starts or resumes the refill and the monitor. FAILED_PRECONDITION if
  // the throttle is already running. Call Advance(now) afterwards. With a
  // warm-up configured, a Start from kCreated or after a stop of at least
  // warm_up begins a ramp at `now`; after a shorter stop a ramp in
  // progress goes on by the clock, as if there had been no stop.
  absl::Status Start(absl::Time now);

  // Sets the kill flag: every open stream ends with kStopped (appended to
  // *events). Returns the seed's final tuple. FAILED_PRECONDITION if the
  // throttle is not running.
  absl::StatusOr<RunStats> Stop(absl::Time now,
                                std::vector<StreamEvent>* events);

  // Ends every open stream with `reason` (the throttle is deleted or the
  // server shuts down). With kClosed, Save's open_weight still counts the
  // streams it closed (their workers may grant locally: Restore).
  void EndAll(EndReason reason, std::vector<StreamEvent>* events);

  // Replaces the configuration (which must be valid); open streams stay and
  // are served under the new one from `now`. Call Advance(now) afterwards.
  // A warm-up ramp in progress goes on from its start with the new rate,
  // warm_up and warm_up_from (it ends at once if warm_up is now 0 or
  // already passed); a Configure never begins a ramp.
  void Configure(const ThrottleConfig& config, absl::Time now);

  // The adaptive ceiling (server/core/adaptive.h): from `now` grants go at
  // `max_n` in [1, config().max_n] grants per `per` instead of the
  // configured max_n; the rest of the configuration, the open streams and
  // a warm-up ramp stay. No burst: a window limiter keeps its log (no
  // window of `per` whose newest grant comes after the change holds more
  // than the new max_n), a smooth or bucket limiter spaces the next grant
  // at the new rate from the last one (a bucket starts empty), an
  // unbounded one accrues credit from `now`. Configure sets the rate back
  // to the configured max_n, or the adaptive controller's. With
  // config().adaptive the controller sets it at each window (Advance,
  // Report). Call Advance(now) afterwards.
  void SetRate(int64_t max_n, absl::Time now);
  // The max_n in effect: config().max_n unless SetRate changed it.
  int64_t rate_max_n() const { return rate_max_n_; }
  // The max_n the limiter grants at: rate_max_n(), scaled down during a
  // recovery (Restore).
  int64_t max_n_in_effect() const { return limiter_max_n_; }
  // Whether a recovery (Restore) is in progress.
  bool recovering() const { return recovery_weight_ > 0; }

  // Takes one grant if one is free at `now` and no stream is waiting;
  // otherwise says when one is expected (retry_after: ExpectedWait of the
  // default class; none if that is never) if running.
  HasFuelResult HasFuel(absl::Time now);

  // How long from `now` the first grant of a stream of class `priority`
  // opening now (at the back of its ring) is expected to take: the grants
  // due to the streams of its class ahead in their turns (weights, counts
  // and demands; held and idle streams are not ahead) and every grant the
  // streams of higher classes still want, on the limiter's schedule from
  // now (credit, spacing, window, catch-up). A count-0 stream of a higher
  // class wants grants without end: then the expectation is what the
  // starvation bound guarantees (its class's next grant after the bound,
  // one more bound per grant ahead in its class), or InfiniteDuration()
  // without a bound. Grants lower classes get by the starvation bound are
  // not counted. Assumes nobody joins ahead and the configuration stays.
  // Zero in monitor-only mode; nullopt when the throttle is not running.
  // O(classes) (logarithmic in window mode).
  std::optional<absl::Duration> ExpectedWait(
      absl::Time now, int64_t priority = kDefaultPriority) const;

  // The adaptive ceiling: counts the outcomes of a worker's work (each in
  // [0, kMaxReportCount]) into the window in progress, and applies a new
  // rate when a window ended (SetRate). FAILED_PRECONDITION if the
  // configuration has no `adaptive` or the throttle was never started.
  // Reports are taken while stopped too (work done under the last grants).
  // Returns the max_n in effect. Call Advance(now) afterwards.
  absl::StatusOr<int64_t> Report(int64_t successes, int64_t rejections,
                                 absl::Time now);

  // Counts `n` emissions reported by a worker. FAILED_PRECONDITION if the
  // throttle counts at grant time (not manual_emit) or is not running.
  // Returns the total since the first Start.
  absl::StatusOr<int64_t> Emit(int64_t n, absl::Time now);

  // --- Durable state and reservations (docs/DECISIONS.md) ---

  SchedulerState Save() const;
  // Restores `state` into a scheduler just made for the same configuration
  // (no stream opened, nothing granted). `unreported` grants that a
  // previous server may have made after the state was saved -- at most
  // its reservation, and all before `now` -- are assumed made at `now`,
  // the latest they can have been: later grants only constrain the next
  // ones more, so the mode's bound holds across the two servers.
  //
  // Recovery (docs/DECISIONS.md, "Graceful degradation"): a running,
  // limited throttle with degradation kLocalShare whose state has an open
  // weight W > 0 had workers that may now grant locally at their shares
  // until they are back. Until now + local_share_for (by then every
  // outage that began before `now` has ended local granting) or until the
  // open weight reaches W, whichever is first, the limiter grants at
  // max(1, rate_max_n() x open_weight() / W) per `per` -- the share of the
  // streams back, each told rate x weight / W -- re-evaluated at each
  // Advance and HasFuel (streams opened or closed since) through SetRate's
  // mechanism (no burst). A Save during it stores W.
  void Restore(const SchedulerState& state, int64_t unreported, absl::Time now);

  // Grants the limiter recorded (gives back do not lower it).
  int64_t grants_recorded() const { return grants_recorded_; }
  // Whether grants are limited at all: monitor-only needs no reservation.
  bool limited() const { return config_.mode != Mode::kMonitorOnly; }
  // A limited throttle allots grants only while grants_recorded() <
  // grant_limit() (no limit by default): the grants reserved so far.
  int64_t grant_limit() const { return grant_limit_; }
  // Raising the limit: call Advance(now) afterwards.
  void SetGrantLimit(int64_t limit) { grant_limit_ = limit; }
  // No grant is allotted, in any mode, by an Advance or HasFuel at or after
  // `deadline` (the end of a leader's lease), until a later deadline is
  // set: call Advance(now) afterwards.
  void SetGrantDeadline(absl::Time deadline);

  // The warm-up ramp in effect (WarmUp() if none), and the fraction of the
  // configured rate it allows at `now` (1 outside a ramp).
  WarmUp ramp() const;
  double RateFraction(absl::Time now) const { return ramp().FractionAt(now); }

  // Statistics; `window` in (0, kMaxLatestWindow].
  LatestStats Latest(absl::Duration window, absl::Time now) const;
  MeanStats Mean(absl::Time now) const;
  RunStats Totals(absl::Time now) const;

 private:
  // A waiting stream. It lives in a node of ring_ or parked_ and moves
  // between and within them by splicing, so serving the front of the ring
  // needs no lookup.
  struct Stream {
    StreamId id;
    int64_t remaining;  // grants still wanted; 0 = unlimited
    int64_t weight;
    int64_t turn_left;  // grants left in its current round-robin turn
    absl::Duration wait_limit;
    absl::Time deadline;     // last grant (or open) + wait_limit
    bool parked = false;     // in parked_: awaiting delivery, held, or idle
    bool held = false;       // by Hold, until Release (also across Configure)
    bool on_demand = false;  // remaining is its outstanding demand
    bool idle = false;       // on demand with none outstanding
    bool fail_if_late = false;
    int priority = 0;  // its class: the index of its ring
  };
  using StreamList = std::list<Stream>;
  struct Expiry {
    absl::Time deadline;
    StreamId id;
    bool operator>(const Expiry& o) const { return deadline > o.deadline; }
  };

  // Allots `n` grants from nominal time `at`, `spacing` apart.
  void Grant(Stream& stream, int64_t n, absl::Time at, absl::Duration spacing,
             std::vector<StreamEvent>* events);
  void End(StreamId id, EndReason reason, std::vector<StreamEvent>* events);
  // Adds a stream in a ring to (removes it from) its class's sums: call
  // Uncount before and Count after a change of its turn or count.
  void Count(const Stream& stream);
  void Uncount(const Stream& stream);
  // Puts a stream into the back of its class's ring, from `from` (which may
  // be that ring); the time starts its class's wait if the ring was empty.
  void Enter(StreamList& from, StreamList::iterator it, absl::Time now);
  // The class whose front stream gets the next grant, dated `at`: a starved
  // lower class (the longest starved), else the highest with a waiting
  // stream. Requires a waiting stream.
  int ServedClass(absl::Time at) const;
  // The highest class with a waiting stream (0 if none).
  int TopClass() const;
  // Streams waiting at `now` (a Start, a Configure) are owed nothing from
  // before: their waits, and their classes', count from `now`.
  void WaitFrom(absl::Time now);
  // Grants a stream in the ring gets in its current turn before it moves
  // to the back: the turn left, cut by its count or demand.
  static int64_t TurnGrants(const Stream& stream) {
    return stream.remaining > 0 ? std::min(stream.turn_left, stream.remaining)
                                : stream.turn_left;
  }
  // The nominal time of the grant that follows `ahead` grants to others,
  // on the limiter's schedule from `now`.
  absl::Time ExpectedGrantTime(int64_t ahead, absl::Time now) const;
  // The expected time of the next grant of a stream of class `priority`
  // after `ahead` grants to others of its class (ExpectedWait's rule);
  // InfiniteFuture() for "never".
  absl::Time ExpectedClassGrantTime(int priority, int64_t ahead,
                                    absl::Time now) const;
  // After a grant: ends a fail_if_late stream still in the ring with
  // kTooLate if its next grant, after `ahead` grants to others of its
  // class, is expected after its deadline.
  void EndIfLate(StreamId id, int64_t ahead, absl::Time now,
                 std::vector<StreamEvent>* events);
  // Moves a parked stream to the back of the ring.
  void Unpark(StreamList::iterator it, absl::Time now);
  // Moves a stream from the ring to parked_.
  void Park(StreamList::iterator it);
  // An on-demand stream whose demand is met or withdrawn leaves the ring.
  void BecomeIdle(StreamList::iterator it);
  // Whether a parked stream belongs back in the ring: not held, not idle.
  static bool Ready(const Stream& stream) {
    return !stream.held && !stream.idle;
  }
  void PushExpiry(absl::Time deadline, StreamId id);
  void ExpireWaitLimits(absl::Time now, std::vector<StreamEvent>* events);
  void ServeLimited(absl::Time now, std::vector<StreamEvent>* events);
  // Serves as many whole round-robin rounds of class `priority`'s ring from
  // `at` to `now` as the limiter allows and no stream's count cuts short -- all
  // at `at` (a burst, idle credit) or on the limiter's regular schedule (a late
  // loop, a high rate); false if not one.
  bool ServeRounds(int priority, absl::Time at, absl::Time now,
                   std::vector<StreamEvent>* events);
  void ServeUnlimited(absl::Time now, std::vector<StreamEvent>* events);
  void RecordEmissions(absl::Time at, int64_t n, absl::Duration spacing);
  // When the next grant may be dated: what the limiter allows, not more
  // than the catch-up before a stream was waiting, never before the newest
  // grant nor before the run (or configuration) began; never while no
  // grant is reserved or the grant deadline has passed.
  absl::Time DueTime() const;
  // The earliest a grant made at `now` may be dated: now - catch-up (the
  // schedule further behind is dropped), where the bound applies.
  absl::Time CatchUpFloor(absl::Time now) const;
  // Applies the adaptive controller's rate, if it has one.
  void FollowAdaptive(absl::Time now);
  // The max_n the limiter should grant at: rate_max_n_, scaled during a
  // recovery.
  int64_t EffectiveMaxN() const;
  // Makes the limiter grant at EffectiveMaxN() from `now` (SetRate's
  // mechanism), the next grant spaced from `last_grant`; nothing if it
  // does already.
  void ApplyRate(absl::Time now, absl::Time last_grant);
  // Ends a recovery whose time is up or whose weight is back, and applies
  // the rate for the streams open now.
  void FollowRecovery(absl::Time now);
  // Records `n` grants in the limiter and against the grant limit.
  void RecordGrants(absl::Time at, int64_t n, absl::Duration spacing);
  // Grants still reserved (limited modes).
  int64_t reserved_left() const { return grant_limit_ - grants_recorded_; }
  // False (and latched) once `now` reaches the grant deadline.
  bool BeforeGrantDeadline(absl::Time now);

  ThrottleConfig config_;
  int64_t rate_max_n_;     // SetRate; config_.max_n by default
  int64_t limiter_max_n_;  // what limiter_ was made with: EffectiveMaxN()
  // Recovery (Restore): the stored open weight (0: no recovery) and the
  // recovery's end.
  int64_t recovery_weight_ = 0;
  absl::Time recovery_until_ = absl::InfinitePast();
  // The weight of the streams EndAll(kClosed) closed (a server going
  // away): Save still counts them.
  int64_t closed_weight_ = 0;
  // With config_.adaptive, from the first Start (or a Configure or Restore
  // after it) on.
  std::unique_ptr<AdaptiveController> adaptive_;
  State state_ = State::kCreated;
  std::unique_ptr<Limiter> limiter_;
  Monitor monitor_;

  // Waiting, in service order: one ring per class; streams in all rings.
  std::array<StreamList, kPriorityClasses> rings_;
  int64_t in_rings_ = 0;
  // Per class, over its ring: the sum of TurnGrants (the grants due before
  // a stream that joins at the back gets its first), the sum of the counts
  // and demands still wanted, and the streams that want grants without
  // end (count 0).
  std::array<int64_t, kPriorityClasses> turn_grants_{};
  std::array<int64_t, kPriorityClasses> outstanding_{};
  std::array<int64_t, kPriorityClasses> unbounded_{};
  // Per class with a waiting stream: its last grant, or when its ring
  // became non-empty (the starvation bound counts from it).
  std::array<absl::Time, kPriorityClasses> class_since_{};
  // Out of service: monitor-only count-0 streams awaiting delivery, and
  // held streams.
  StreamList parked_;
  absl::flat_hash_map<StreamId, StreamList::iterator> streams_;  // all open
  int64_t idle_streams_ = 0;  // on-demand streams without demand
  int64_t open_weight_ = 0;   // summed weight of streams_
  // Time since which the rings have been non-empty: a grant is never given a
  // nominal time more than the catch-up before someone was waiting for it.
  absl::Time hungry_since_ = absl::InfiniteFuture();
  // No grant is dated before the current run started, the configuration
  // changed or the state was restored.
  absl::Time grants_from_ = absl::InfinitePast();
  std::priority_queue<Expiry, std::vector<Expiry>, std::greater<Expiry>>
      expiries_;  // lazy: entries of ended streams are skipped
  StreamId next_id_ = 1;

  // The newest nominal time granted: no grant is dated before it, so fuel
  // that comes back is never handed out in the past.
  absl::Time last_grant_ = absl::InfinitePast();
  // Configure calls * 2, plus 1 while manual_emit (the monitor does not
  // count grants): what a StreamEvent's epoch says.
  uint64_t epoch_ = 0;
  absl::Duration runtime_before_;  // runtime of completed runs
  absl::Time run_started_;
  // Warm-up: the start of the current (or last) ramp, infinite future if
  // none; the last Stop.
  absl::Time ramp_start_ = absl::InfiniteFuture();
  absl::Time stopped_at_ = absl::InfinitePast();

  int64_t grants_recorded_ = 0;
  int64_t grant_limit_ = std::numeric_limits<int64_t>::max();
  absl::Time grant_deadline_ = absl::InfiniteFuture();
  bool deadline_passed_ = false;
};

}  // namespace throttle::server

#endif  // THROTTLE_SERVER_CORE_SCHEDULER_H_
