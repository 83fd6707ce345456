#include "server/core/scheduler.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"

namespace throttle::server {

const char* StateName(State state) {
  switch (state) {
    case State::kCreated:
      return "created";
    case State::kRunning:
      return "running";
    case State::kStopped:
      return "stopped";
  }
  return "unknown";
}

Scheduler::Scheduler(const ThrottleConfig& config)
    : config_(config),
      rate_max_n_(config.max_n),
      limiter_max_n_(config.max_n),
      limiter_(MakeLimiter(config, absl::InfinitePast())),
      epoch_(config.manual_emit ? 1 : 0) {}

StreamId Scheduler::Open(const StreamRequest& request, absl::Time now,
                         std::vector<StreamEvent>* events) {
  const StreamId id = next_id_++;
  if (state_ == State::kStopped) {
    events->push_back({id, 0, now, absl::ZeroDuration(), EndReason::kStopped,
                       epoch_, absl::ZeroDuration()});
    return id;
  }
  if (request.fail_if_late && state_ == State::kRunning && limited() &&
      !request.on_demand && request.wait_limit != absl::ZeroDuration() &&
      request.wait_limit != absl::InfiniteDuration()) {
    // Deadline-aware admission: at the back of its class's ring, after
    // every stream's turn ahead in it and all higher classes want.
    const int p = static_cast<int>(request.priority);
    const absl::Time due = ExpectedClassGrantTime(p, turn_grants_[p], now);
    if (due > now + request.wait_limit) {
      events->push_back({id, 0, now, absl::ZeroDuration(), EndReason::kTooLate,
                         epoch_, due - now});
      return id;
    }
  }
  // Built in parked_, then entered into its ring.
  Stream& stream = parked_.emplace_back();
  stream.id = id;
  stream.priority = static_cast<int>(request.priority);
  stream.remaining = request.count;
  stream.weight = request.weight;
  stream.turn_left = request.weight;
  stream.wait_limit = request.wait_limit;
  stream.deadline = now + request.wait_limit;
  stream.on_demand = request.on_demand;
  stream.fail_if_late = request.fail_if_late;
  const StreamList::iterator it = std::prev(parked_.end());
  Enter(parked_, it, now);
  streams_.emplace(id, it);
  open_weight_ += request.weight;
  if (request.on_demand) {
    if (request.count == 0) BecomeIdle(it);
  } else if (request.wait_limit == absl::ZeroDuration()) {
    // "Only if fuel is free at once": serve now, and end it if that was
    // not enough.
    Advance(now, events);
    if (streams_.contains(id)) End(id, EndReason::kWaitLimitPassed, events);
  } else if (request.wait_limit != absl::InfiniteDuration()) {
    PushExpiry(stream.deadline, id);
  }
  return id;
}

void Scheduler::Count(const Stream& stream) {
  const int p = stream.priority;
  turn_grants_[p] += TurnGrants(stream);
  if (stream.remaining > 0) {
    outstanding_[p] = SaturatingAdd(outstanding_[p], stream.remaining);
  } else {
    ++unbounded_[p];
  }
}

void Scheduler::Uncount(const Stream& stream) {
  const int p = stream.priority;
  turn_grants_[p] -= TurnGrants(stream);
  if (stream.remaining > 0) {
    outstanding_[p] -= stream.remaining;
  } else {
    --unbounded_[p];
  }
}

void Scheduler::Enter(StreamList& from, StreamList::iterator it,
                      absl::Time now) {
  StreamList& ring = rings_[it->priority];
  if (in_rings_ == 0) hungry_since_ = now;
  if (ring.empty()) class_since_[it->priority] = now;
  it->parked = false;
  it->turn_left = it->weight;  // a whole turn at the back of the ring
  ring.splice(ring.end(), from, it);
  ++in_rings_;
  Count(*it);
}

void Scheduler::Unpark(StreamList::iterator it, absl::Time now) {
  Enter(parked_, it, now);
}

void Scheduler::Park(StreamList::iterator it) {
  it->parked = true;
  Uncount(*it);
  parked_.splice(parked_.end(), rings_[it->priority], it);
  if (--in_rings_ == 0) hungry_since_ = absl::InfiniteFuture();
}

int Scheduler::TopClass() const {
  int top = kPriorityClasses - 1;
  while (top > 0 && rings_[top].empty()) --top;
  return top;
}

int Scheduler::ServedClass(absl::Time at) const {
  const int top = TopClass();
  if (config_.starvation_bound <= absl::ZeroDuration()) return top;
  int served = top;
  for (int p = top - 1; p >= 0; --p) {
    if (rings_[p].empty() || at - class_since_[p] < config_.starvation_bound)
      continue;
    // The longest starved; on a tie the higher class.
    if (served == top || class_since_[p] < class_since_[served]) served = p;
  }
  return served;
}

void Scheduler::BecomeIdle(StreamList::iterator it) {
  it->idle = true;
  ++idle_streams_;
  if (!it->parked) Park(it);
}

absl::StatusOr<int64_t> Scheduler::AddDemand(StreamId id, int64_t withdraw,
                                             int64_t demand, absl::Time now) {
  auto found = streams_.find(id);
  if (found == streams_.end() || !found->second->on_demand) return 0;
  const StreamList::iterator it = found->second;
  const int64_t left = std::max<int64_t>(it->remaining - withdraw, 0);
  if (demand > kMaxOutstandingDemand - left) {
    return absl::InvalidArgumentError(absl::StrCat(
        "demand: ", demand, " more would make the outstanding demand ", left,
        " + ", demand, ", the limit is ", kMaxOutstandingDemand));
  }
  if (!it->parked) Uncount(*it);
  it->remaining = left + demand;
  if (!it->parked) Count(*it);
  if (it->remaining == 0 && !it->idle) {
    BecomeIdle(it);
  } else if (it->remaining > 0 && it->idle) {
    it->idle = false;
    --idle_streams_;
    if (Ready(*it)) Unpark(it, now);
  }
  return it->remaining;
}

void Scheduler::Close(StreamId id) {
  auto found = streams_.find(id);
  if (found == streams_.end()) return;
  const StreamList::iterator it = found->second;
  streams_.erase(found);
  open_weight_ -= it->weight;
  if (it->idle) --idle_streams_;
  if (it->parked) {
    parked_.erase(it);
    return;
  }
  Uncount(*it);
  rings_[it->priority].erase(it);
  if (--in_rings_ == 0) hungry_since_ = absl::InfiniteFuture();
}

void Scheduler::End(StreamId id, EndReason reason,
                    std::vector<StreamEvent>* events) {
  Close(id);
  events->push_back({id, 0, absl::InfinitePast(), absl::ZeroDuration(), reason,
                     epoch_, absl::ZeroDuration()});
}

void Scheduler::GiveBack(absl::Time granted_at, int64_t grants,
                         absl::Duration spacing, uint64_t epoch) {
  if (grants <= 0) return;
  if (epoch == epoch_) {
    limiter_->GiveBack(granted_at + spacing * (grants - 1), grants);
  }
  // Uncounted only if the monitor counted them when they were granted.
  if ((epoch & 1) == 0) monitor_.Remove(granted_at, grants);
}

absl::Time Scheduler::CatchUpFloor(absl::Time now) const {
  return config_.CatchUpApplies() ? now - config_.EffectiveCatchUp()
                                  : absl::InfinitePast();
}

absl::Time Scheduler::DueTime() const {
  if (reserved_left() <= 0 || deadline_passed_) return absl::InfiniteFuture();
  // A slot that passed while nobody waited is still granted if a waiter
  // comes within the catch-up: a short idle gap does not lower the rate.
  const absl::Time waited_since =
      config_.CatchUpApplies() ? hungry_since_ - config_.EffectiveCatchUp()
                               : hungry_since_;
  return std::max(
      {limiter_->NextAllowed(), waited_since, last_grant_, grants_from_});
}

void Scheduler::RecordGrants(absl::Time at, int64_t n, absl::Duration spacing) {
  limiter_->Record(at, n, spacing);
  grants_recorded_ += n;
}

bool Scheduler::BeforeGrantDeadline(absl::Time now) {
  if (now >= grant_deadline_) deadline_passed_ = true;
  return !deadline_passed_;
}

void Scheduler::SetGrantDeadline(absl::Time deadline) {
  grant_deadline_ = deadline;
  deadline_passed_ = false;
}

SchedulerState Scheduler::Save() const {
  SchedulerState state;
  state.state = state_;
  state.last_grant = last_grant_;
  state.runtime_before = runtime_before_;
  state.run_started = run_started_;
  state.limiter = limiter_->Save();
  state.monitor = monitor_.Totals();
  state.ramp_start = ramp_start_;
  state.stopped_at = stopped_at_;
  if (adaptive_ != nullptr) state.adaptive = adaptive_->Save();
  // A recovery in progress keeps its weight (the workers not back yet may
  // still grant locally if this state is restored again), and so does a
  // server going away (EndAll with kClosed).
  state.open_weight =
      std::max({open_weight_, recovery_weight_, closed_weight_});
  return state;
}

void Scheduler::Restore(const SchedulerState& state, int64_t unreported,
                        absl::Time now) {
  state_ = state.state;
  last_grant_ = state.last_grant;
  runtime_before_ = state.runtime_before;
  run_started_ = state.run_started;
  ramp_start_ = state.ramp_start;
  stopped_at_ = state.stopped_at;
  // A throttle started before: its rate as saved, or from the ceiling if
  // the state has none (saved before the throttle was adaptive).
  if (config_.adaptive.has_value() && state_ != State::kCreated) {
    adaptive_ = std::make_unique<AdaptiveController>(*config_.adaptive,
                                                     config_.max_n, now);
    if (state.adaptive.has_value()) adaptive_->Restore(*state.adaptive, now);
    rate_max_n_ = adaptive_->rate_n();
  }
  if (state_ == State::kRunning && limited() &&
      config_.degradation == Degradation::kLocalShare &&
      state.open_weight > 0) {
    recovery_weight_ = state.open_weight;
    recovery_until_ = now + config_.local_share_for;
  }
  // The saved limiter goes into one made for the rate in effect, so that
  // what it recorded (and the unreported grants) spaces the next grants
  // at that rate.
  limiter_max_n_ = EffectiveMaxN();
  ThrottleConfig rated = config_;
  rated.max_n = limiter_max_n_;
  limiter_ = MakeLimiter(rated, absl::InfinitePast());
  // A ramp in progress goes on where the saved state left it.
  limiter_->ContinueWarmUp(ramp());
  limiter_->Load(state.limiter);
  monitor_.RestoreTotals(state.monitor);
  grants_from_ = std::max(grants_from_, now);
  if (unreported > 0 && limited()) {
    const absl::Time at = std::max(now, last_grant_);
    limiter_->Record(at, unreported, absl::ZeroDuration());
    last_grant_ = at;
  }
}

int64_t Scheduler::EffectiveMaxN() const {
  if (!recovering()) return rate_max_n_;
  // In double: the product may pass int64. Never 0 grants: one per `per`
  // while no stream is back.
  const double scaled = std::floor(static_cast<double>(rate_max_n_) *
                                   static_cast<double>(open_weight_) /
                                   static_cast<double>(recovery_weight_));
  return std::clamp<int64_t>(
      static_cast<int64_t>(std::min(scaled, static_cast<double>(rate_max_n_))),
      1, rate_max_n_);
}

void Scheduler::FollowRecovery(absl::Time now) {
  if (!recovering()) return;
  const bool timed_out = now >= recovery_until_;
  if (timed_out || open_weight_ >= recovery_weight_) {
    recovery_weight_ = 0;  // for good: a later drop in weight is no outage
  }
  const int64_t before = limiter_max_n_;
  // The fleet granted at the whole rate up to now (the absent workers
  // locally): a bucket rebuilt now starts empty now, not refilled since
  // the server's last grant.
  ApplyRate(now, timed_out ? last_grant_ : std::max(last_grant_, now));
  // A window limiter may hand out the whole rise at once, while the
  // streams just back granted their share (the rise) locally over the
  // last `per`, evenly: the window holds those as if granted, in
  // kLocalRuns runs each at the end of its slice of `per` (no earlier
  // than they were), so the rise comes free as they leave the window.
  // Not at the recovery's end by time: the absent workers stopped long
  // before.
  if (config_.mode == Mode::kWindow && !timed_out && limiter_max_n_ > before) {
    constexpr int64_t kLocalRuns = 16;
    const int64_t rise = limiter_max_n_ - before;
    for (int64_t j = 1; j <= kLocalRuns; ++j) {
      const int64_t n = rise * j / kLocalRuns - rise * (j - 1) / kLocalRuns;
      if (n > 0) {
        limiter_->Record(now - config_.per + config_.per * j / kLocalRuns, n,
                         absl::ZeroDuration());
      }
    }
  }
}

double Scheduler::SharePerSecond(int64_t weight, int64_t total_weight,
                                 absl::Time now) const {
  if (!limited() || weight <= 0 || total_weight <= 0) return 0;
  return static_cast<double>(limiter_max_n_) * RateFraction(now) /
         absl::ToDoubleSeconds(config_.per) * static_cast<double>(weight) /
         static_cast<double>(total_weight);
}

void Scheduler::MarkDelivered(StreamId id, absl::Time now) {
  if (config_.mode != Mode::kMonitorOnly) return;
  auto found = streams_.find(id);
  if (found == streams_.end() || !found->second->parked ||
      !Ready(*found->second)) {
    return;
  }
  Unpark(found->second, now);
}

void Scheduler::Hold(StreamId id) {
  auto found = streams_.find(id);
  if (found == streams_.end() || found->second->held) return;
  found->second->held = true;
  if (!found->second->parked) Park(found->second);
}

void Scheduler::Release(StreamId id, absl::Time now) {
  auto found = streams_.find(id);
  if (found == streams_.end() || !found->second->held) return;
  found->second->held = false;
  if (!found->second->idle) Unpark(found->second, now);
}

void Scheduler::PushExpiry(absl::Time deadline, StreamId id) {
  // Entries of streams that ended are skipped lazily; rebuild the heap when
  // they outnumber the live ones, so memory stays proportional to the open
  // streams and the cost per stream stays O(log n) amortised.
  if (expiries_.size() > 2 * streams_.size() + 64) {
    std::vector<Expiry> live;
    live.reserve(streams_.size());
    for (const auto& [sid, it] : streams_) {
      if (it->wait_limit != absl::InfiniteDuration() &&
          it->wait_limit != absl::ZeroDuration() && sid != id) {
        live.push_back({it->deadline, sid});
      }
    }
    expiries_ = decltype(expiries_)(std::greater<Expiry>(), std::move(live));
  }
  expiries_.push({deadline, id});
}

void Scheduler::RecordEmissions(absl::Time at, int64_t n,
                                absl::Duration spacing) {
  if (!config_.manual_emit) monitor_.Record(at, n, spacing);
}

void Scheduler::Grant(Stream& stream, int64_t n, absl::Time at,
                      absl::Duration spacing,
                      std::vector<StreamEvent>* events) {
  const StreamId id = stream.id;
  RecordEmissions(at, n, spacing);
  const absl::Time last = at + spacing * (n - 1);
  last_grant_ = std::max(last_grant_, last);
  // Its class got a grant: the starvation bound counts from it.
  class_since_[stream.priority] = std::max(class_since_[stream.priority], last);
  EndReason end = EndReason::kNone;
  if (stream.remaining > 0) {
    // Its turn shrinks with its count (Close and Park below take the rest).
    if (!stream.parked) Uncount(stream);
    stream.remaining -= n;
    if (!stream.parked) Count(stream);
    if (stream.remaining == 0 && !stream.on_demand) {
      end = EndReason::kCountReached;
    }
  }
  // Consecutive grants to one stream at one instant travel together.
  if (spacing == absl::ZeroDuration() && !events->empty() &&
      events->back().stream == id && events->back().granted_at == at &&
      events->back().spacing == absl::ZeroDuration() &&
      events->back().end == EndReason::kNone) {
    events->back().grants += n;
    events->back().end = end;
  } else {
    events->push_back({id, n, at, spacing, end, epoch_, absl::ZeroDuration()});
  }
  if (end != EndReason::kNone) {
    Close(id);
    return;
  }
  if (stream.on_demand && stream.remaining == 0) {
    BecomeIdle(streams_.find(id)->second);  // its demand is met
    return;
  }
  if (stream.wait_limit != absl::InfiniteDuration()) {
    // The wait limit restarts; the heap entry is refreshed lazily. A grant
    // dated back by the catch-up moves no deadline earlier (the heap entry
    // would keep it anyway), so fail_if_late's check below sees the
    // deadline the stream really has.
    stream.deadline = std::max(stream.deadline, last + stream.wait_limit);
  }
}

void Scheduler::ServeLimited(absl::Time now, std::vector<StreamEvent>* events) {
  // Single steps serve the front stream's turn; between them, whole rounds
  // are served at once when the limiter allows them (a big burst or idle
  // credit), so the work does not grow with the number of grants. A round
  // that does not fit is tried again only after a full round of single
  // steps, so each step stays constant time.
  if (!BeforeGrantDeadline(now)) return;
  //
  // Priorities: each step serves the class ServedClass picks. Whole rounds
  // are served only where no starvation grant can fall between them: one
  // class waiting, or no starvation bound (lower classes get nothing).
  size_t steps_before_rounds = 0;
  while (in_rings_ > 0) {
    // A schedule that fell further behind than the catch-up starts again
    // at its floor: what it missed before is not granted.
    const absl::Time at = std::max(DueTime(), CatchUpFloor(now));
    if (at > now) return;
    const int p = ServedClass(at);
    StreamList& ring = rings_[p];
    const bool rounds_fit = config_.starvation_bound <= absl::ZeroDuration() ||
                            static_cast<int64_t>(ring.size()) == in_rings_;
    if (steps_before_rounds == 0 && rounds_fit) {
      if (ServeRounds(p, at, now, events)) continue;
      steps_before_rounds = ring.size();
    }
    if (steps_before_rounds > 0) --steps_before_rounds;
    const StreamList::iterator it = ring.begin();
    int64_t want = std::min(it->turn_left, reserved_left());
    if (it->remaining > 0) want = std::min(want, it->remaining);
    // A starved class gets one grant, then the higher ones go on.
    if (p != TopClass()) want = std::min<int64_t>(want, 1);
    const int64_t n = limiter_->AllowedAt(at, want);
    RecordGrants(at, n, absl::ZeroDuration());
    Uncount(*it);
    it->turn_left -= n;
    const bool turn_over = it->turn_left == 0;
    if (turn_over) {
      // Its turn is over: to the back of the ring (the node moves, the
      // iterators stay valid).
      it->turn_left = it->weight;
      ring.splice(ring.end(), ring, it);
    }
    Count(*it);
    const StreamId id = it->id;
    Grant(*it, n, at, absl::ZeroDuration(), events);
    // Still at the front: its next grant is the next one of its class; at
    // the back, it comes after everyone else's turn in its class.
    if (!turn_over) {
      EndIfLate(id, 0, now, events);
    } else if (auto found = streams_.find(id); found != streams_.end()) {
      EndIfLate(id, turn_grants_[p] - TurnGrants(*found->second), now, events);
    }
  }
}

bool Scheduler::ServeRounds(int priority, absl::Time at, absl::Time now,
                            std::vector<StreamEvent>* events) {
  StreamList& ring = rings_[priority];
  // Only the front stream can be inside its turn; a round starts at a turn.
  if (ring.front().turn_left != ring.front().weight) return false;
  const int64_t size = static_cast<int64_t>(ring.size());
  // Spaced rounds follow the limiter's regular schedule exactly, from
  // NextAllowed() while it has no burst to give at once.
  const absl::Duration spacing = limiter_->Spacing();
  const bool spaced = spacing > absl::ZeroDuration() &&
                      at == limiter_->NextAllowed() &&
                      limiter_->AllowedAt(at, 2) == 1;
  if (limiter_->AllowedAt(at, size) < size &&
      !(spaced && limiter_->DueBy(now, size) >= size)) {
    return false;  // not one round: cheap, no scan
  }
  int64_t round = 0;  // grants in one round: <= streams * kMaxWeight
  int64_t rounds = std::numeric_limits<int64_t>::max();
  for (const Stream& stream : ring) {
    round += stream.weight;
    if (stream.remaining > 0) {
      rounds = std::min(rounds, stream.remaining / stream.weight);
    }
  }
  rounds = std::min(rounds, reserved_left() / round);
  if (rounds > 0) {
    const int64_t supply = spaced ? limiter_->DueBy(now, rounds * round)
                                  : limiter_->AllowedAt(at, rounds * round);
    rounds = std::min(rounds, supply / round);
  }
  if (rounds == 0) return false;
  RecordGrants(at, rounds * round, spaced ? spacing : absl::ZeroDuration());
  // Grant j of the rounds falls at at + j * spacing (when spaced); a
  // stream's u-th grant of each turn recurs every round. `ahead`: the
  // grants of the turns before a stream's next, for EndIfLate.
  int64_t offset = 0;
  int64_t ahead = 0;
  for (auto it = ring.begin(); it != ring.end();) {
    Stream& stream = *it++;  // Grant may close it
    const StreamId id = stream.id;
    const int64_t weight = stream.weight;
    if (!spaced) {
      Grant(stream, rounds * weight, at, absl::ZeroDuration(), events);
    } else {
      for (int64_t u = 0; u < weight; ++u) {
        Grant(stream, rounds, at + spacing * (offset + u), spacing * round,
              events);
      }
    }
    offset += weight;
    EndIfLate(id, ahead, now, events);
    if (auto found = streams_.find(id);
        found != streams_.end() && !found->second->parked) {
      ahead += TurnGrants(*found->second);
    }
  }
  return true;
}

absl::Time Scheduler::ExpectedGrantTime(int64_t ahead, absl::Time now) const {
  // As DueTime, for a ring that would be waiting from now if empty; the
  // limiter dates the grants that follow.
  const absl::Time hungry = in_rings_ == 0 ? now : hungry_since_;
  const absl::Time waited_since =
      config_.CatchUpApplies() ? hungry - config_.EffectiveCatchUp() : hungry;
  const absl::Time from =
      std::max({waited_since, last_grant_, grants_from_, CatchUpFloor(now)});
  return limiter_->NthAllowed(from, ahead);
}

absl::Time Scheduler::ExpectedClassGrantTime(int priority, int64_t ahead,
                                             absl::Time now) const {
  int64_t higher = 0;  // grants higher classes still want
  bool unbounded = false;
  for (int p = priority + 1; p < kPriorityClasses; ++p) {
    higher = SaturatingAdd(higher, outstanding_[p]);
    unbounded = unbounded || unbounded_[p] > 0;
  }
  absl::Time due = absl::InfiniteFuture();
  if (!unbounded) due = ExpectedGrantTime(SaturatingAdd(ahead, higher), now);
  if (config_.starvation_bound > absl::ZeroDuration() &&
      (unbounded || higher > 0)) {
    // What the bound guarantees: its class's next grant once the class has
    // waited the bound, then one more bound per grant ahead of it.
    const absl::Time since =
        rings_[priority].empty() ? now : class_since_[priority];
    const absl::Time first =
        std::max(ExpectedGrantTime(0, now), since + config_.starvation_bound);
    const double bounds = static_cast<double>(ahead);
    due = std::min(due, first + config_.starvation_bound * bounds);
  }
  return due;
}

void Scheduler::EndIfLate(StreamId id, int64_t ahead, absl::Time now,
                          std::vector<StreamEvent>* events) {
  auto found = streams_.find(id);
  if (found == streams_.end()) return;
  const Stream& stream = *found->second;
  // A zero wait limit ("only if free at once") ends as it always did.
  if (!stream.fail_if_late || stream.parked ||
      stream.wait_limit == absl::InfiniteDuration() ||
      stream.wait_limit == absl::ZeroDuration()) {
    return;
  }
  const absl::Time due = ExpectedClassGrantTime(stream.priority, ahead, now);
  if (due <= stream.deadline) return;
  End(id, EndReason::kTooLate, events);
  events->back().expected_wait = due - now;
}

std::optional<absl::Duration> Scheduler::ExpectedWait(absl::Time now,
                                                      int64_t priority) const {
  if (state_ != State::kRunning) return std::nullopt;
  if (!limited()) return absl::ZeroDuration();
  const int p = static_cast<int>(priority);
  return std::max(absl::ZeroDuration(),
                  ExpectedClassGrantTime(p, turn_grants_[p], now) - now);
}

void Scheduler::ServeUnlimited(absl::Time now,
                               std::vector<StreamEvent>* events) {
  // Every waiting stream gets what it asked for at once; a count-0 stream
  // one grant per delivery (it is parked until MarkDelivered).
  if (!BeforeGrantDeadline(now)) return;
  while (in_rings_ > 0) {
    const StreamList::iterator it = rings_[TopClass()].begin();
    const int64_t n = it->remaining > 0 ? it->remaining : 1;
    if (it->remaining == 0) Park(it);
    Grant(*it, n, now, absl::ZeroDuration(), events);
  }
}

void Scheduler::ExpireWaitLimits(absl::Time now,
                                 std::vector<StreamEvent>* events) {
  while (!expiries_.empty() && expiries_.top().deadline <= now) {
    const Expiry expiry = expiries_.top();
    expiries_.pop();
    auto it = streams_.find(expiry.id);
    if (it == streams_.end()) continue;  // ended meanwhile
    if (it->second->deadline > now) {
      expiries_.push({it->second->deadline, expiry.id});  // granted since
      continue;
    }
    End(expiry.id, EndReason::kWaitLimitPassed, events);
  }
}

void Scheduler::Advance(absl::Time now, std::vector<StreamEvent>* events) {
  if (adaptive_ != nullptr && adaptive_->Evaluate(now)) FollowAdaptive(now);
  FollowRecovery(now);
  if (state_ == State::kRunning) {
    if (config_.mode == Mode::kMonitorOnly) {
      ServeUnlimited(now, events);
    } else {
      ServeLimited(now, events);
    }
  }
  ExpireWaitLimits(now, events);
}

absl::Time Scheduler::NextWakeup() const {
  absl::Time next = absl::InfiniteFuture();
  if (!expiries_.empty()) next = expiries_.top().deadline;
  if (state_ == State::kRunning && in_rings_ > 0) {
    const absl::Time due = config_.mode != Mode::kMonitorOnly ? DueTime()
                           : deadline_passed_ ? absl::InfiniteFuture()
                                              : absl::InfinitePast();
    next = std::min(next, due);
  }
  if (adaptive_ != nullptr && adaptive_->has_outcomes()) {
    next = std::min(next, adaptive_->NextEvaluation());
  }
  // The full rate comes back at the recovery's end.
  if (recovering() && state_ == State::kRunning && in_rings_ > 0) {
    next = std::min(next, recovery_until_);
  }
  return next;
}

absl::Status Scheduler::Start(absl::Time now) {
  if (state_ == State::kRunning) {
    return absl::FailedPreconditionError("throttle is already running");
  }
  const bool ramps =
      config_.WarmUpApplies() &&
      (state_ == State::kCreated || now - stopped_at_ >= config_.warm_up);
  state_ = State::kRunning;
  run_started_ = now;
  grants_from_ = now;
  monitor_.BeginRun();
  limiter_->Resume(now);
  if (ramps) {
    ramp_start_ = now;
    limiter_->BeginWarmUp(ramp(), now);
  }
  // The adaptive ceiling begins at the first Start; a stop keeps its rate
  // (the downstream did not change because the throttle paused).
  if (config_.adaptive.has_value() && adaptive_ == nullptr) {
    adaptive_ = std::make_unique<AdaptiveController>(*config_.adaptive,
                                                     config_.max_n, now);
  }
  // Streams waited while it was not running; none is owed fuel from then.
  WaitFrom(now);
  return absl::OkStatus();
}

absl::StatusOr<RunStats> Scheduler::Stop(absl::Time now,
                                         std::vector<StreamEvent>* events) {
  if (state_ != State::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat(
        "throttle is not running (state ", StateName(state_), ")"));
  }
  runtime_before_ += now - run_started_;
  stopped_at_ = now;
  state_ = State::kStopped;
  limiter_->Pause(now);
  EndAll(EndReason::kStopped, events);
  return Totals(now);
}

void Scheduler::EndAll(EndReason reason, std::vector<StreamEvent>* events) {
  // Streams closed as the server goes away lose it: their workers may
  // grant locally, so a Save after it still counts them.
  if (reason == EndReason::kClosed) {
    closed_weight_ = std::max(closed_weight_, open_weight_);
  }
  std::vector<StreamId> ids;
  ids.reserve(streams_.size());
  for (const auto& [id, it] : streams_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());  // in arrival order, for stable output
  for (StreamId id : ids) End(id, reason, events);
}

WarmUp Scheduler::ramp() const {
  if (!config_.WarmUpApplies() || ramp_start_ == absl::InfiniteFuture()) {
    return WarmUp();
  }
  return {ramp_start_, config_.warm_up, config_.EffectiveWarmUpFrom()};
}

void Scheduler::WaitFrom(absl::Time now) {
  if (in_rings_ > 0) hungry_since_ = std::max(hungry_since_, now);
  for (int p = 0; p < kPriorityClasses; ++p) {
    if (!rings_[p].empty()) class_since_[p] = std::max(class_since_[p], now);
  }
}

void Scheduler::Configure(const ThrottleConfig& config, absl::Time now) {
  // A ramp that has ended (or was not in effect) is over for good: a
  // longer warm_up must not bring it back.
  const WarmUp current = ramp();
  if (!current.active() || now >= current.end()) {
    ramp_start_ = absl::InfiniteFuture();
  }
  config_ = config;
  // An adaptive rate in effect stays, clamped into the new range.
  if (!config.adaptive.has_value()) {
    adaptive_.reset();
  } else if (adaptive_ != nullptr) {
    adaptive_->Configure(*config.adaptive, config.max_n, now);
  } else if (state_ != State::kCreated) {
    adaptive_ = std::make_unique<AdaptiveController>(*config.adaptive,
                                                     config.max_n, now);
  }
  rate_max_n_ = adaptive_ != nullptr ? adaptive_->rate_n() : config.max_n;
  limiter_max_n_ = EffectiveMaxN();
  ThrottleConfig rated = config;
  rated.max_n = limiter_max_n_;
  // Fuel granted before comes back to the monitor (if it counted it), not
  // to the new limiter.
  epoch_ = (epoch_ | 1) + 1 + (config.manual_emit ? 1 : 0);
  limiter_ = MakeLimiter(rated, last_grant_, ramp());
  grants_from_ = std::max(grants_from_, now);
  if (state_ == State::kRunning) limiter_->Resume(now);
  WaitFrom(now);
  // A count-0 stream parked under monitor-only is never woken in a limited
  // mode: put parked streams back in line, but not held ones (they wait
  // for their write to drain).
  if (config.mode != Mode::kMonitorOnly) {
    for (auto it = parked_.begin(); it != parked_.end();) {
      auto next = std::next(it);
      if (Ready(*it)) Unpark(it, now);
      it = next;
    }
  }
}

void Scheduler::FollowAdaptive(absl::Time now) {
  if (adaptive_ != nullptr) SetRate(adaptive_->rate_n(), now);
}

absl::StatusOr<int64_t> Scheduler::Report(int64_t successes, int64_t rejections,
                                          absl::Time now) {
  if (!config_.adaptive.has_value()) {
    return absl::FailedPreconditionError(
        "throttle has no adaptive ceiling (config.adaptive is unset); Report "
        "is for adaptive throttles");
  }
  if (adaptive_ == nullptr) {
    return absl::FailedPreconditionError(
        "throttle was never started (state created); its adaptive ceiling "
        "begins at the first Start");
  }
  if (adaptive_->Report(successes, rejections, now)) FollowAdaptive(now);
  return rate_max_n_;
}

void Scheduler::SetRate(int64_t max_n, absl::Time now) {
  rate_max_n_ = max_n;
  ApplyRate(now, last_grant_);
}

void Scheduler::ApplyRate(absl::Time now, absl::Time last_grant) {
  const int64_t max_n = EffectiveMaxN();
  if (max_n == limiter_max_n_) return;
  limiter_max_n_ = max_n;
  if (!limited()) return;
  ThrottleConfig rated = config_;
  rated.max_n = max_n;
  const LimiterState kept = limiter_->Save();
  // As in Configure: grants made before are not given back to the new
  // limiter, nor dated before the change.
  epoch_ = (epoch_ | 1) + 1 + (config_.manual_emit ? 1 : 0);
  limiter_ = MakeLimiter(rated, last_grant, ramp());
  // The window log is the bound itself; a GCRA limiter made from the last
  // grant already spaces the next one at the new rate.
  if (config_.mode == Mode::kWindow) limiter_->Load(kept);
  grants_from_ = std::max(grants_from_, now);
  if (state_ == State::kRunning) limiter_->Resume(now);
}

HasFuelResult Scheduler::HasFuel(absl::Time now) {
  FollowRecovery(now);
  if (state_ == State::kStopped) return {false, true, std::nullopt};
  if (state_ != State::kRunning || !BeforeGrantDeadline(now)) {
    return {false, false, std::nullopt};
  }
  if (config_.mode == Mode::kMonitorOnly) {
    RecordEmissions(now, 1, absl::ZeroDuration());
    return {true, false, std::nullopt};
  }
  if (in_rings_ > 0 || reserved_left() <= 0 || limiter_->NextAllowed() > now) {
    // A caller of the default class behind an endless higher class: none.
    std::optional<absl::Duration> wait = ExpectedWait(now);
    if (wait == absl::InfiniteDuration()) wait.reset();
    return {false, false, wait};
  }
  RecordGrants(now, 1, absl::ZeroDuration());
  last_grant_ = std::max(last_grant_, now);
  RecordEmissions(now, 1, absl::ZeroDuration());
  return {true, false, std::nullopt};
}

absl::StatusOr<int64_t> Scheduler::Emit(int64_t n, absl::Time now) {
  if (!config_.manual_emit) {
    return absl::FailedPreconditionError(
        "throttle counts emissions at grant time (manual_emit is false); "
        "Emit is for manual_emit throttles");
  }
  if (state_ != State::kRunning) {
    return absl::FailedPreconditionError(absl::StrCat(
        "throttle is not running (state ", StateName(state_), ")"));
  }
  monitor_.Record(now, n);
  return monitor_.total();
}

RunStats Scheduler::Totals(absl::Time now) const {
  RunStats stats;
  stats.runtime = runtime_before_;
  if (state_ == State::kRunning) stats.runtime += now - run_started_;
  stats.total_emissions = monitor_.total();
  const double seconds = absl::ToDoubleSeconds(stats.runtime);
  if (stats.total_emissions > 0) {
    stats.mean_seconds_between_emissions =
        seconds / static_cast<double>(stats.total_emissions);
  }
  if (seconds > 0) {
    stats.mean_emissions_per_second =
        static_cast<double>(stats.total_emissions) / seconds;
  }
  return stats;
}

MeanStats Scheduler::Mean(absl::Time now) const {
  return {Totals(now), monitor_.lowest_gap(), monitor_.highest_gap()};
}

LatestStats Scheduler::Latest(absl::Duration window, absl::Time now) const {
  LatestStats stats;
  stats.emissions = monitor_.CountInWindow(now, window);
  const double seconds = absl::ToDoubleSeconds(window);
  stats.emissions_per_second = static_cast<double>(stats.emissions) / seconds;
  if (stats.emissions > 0) {
    stats.seconds_between_emissions =
        seconds / static_cast<double>(stats.emissions);
  }
  return stats;
}

}  // namespace throttle::server
