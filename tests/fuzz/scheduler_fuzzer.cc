// Fuzz target: sequences of scheduler operations, checked against the
// scheduler's invariants (server/scheduler.h, README "Modes").
//
// The input picks a small configuration (max_n 1..20, per 1 ms..10 s, with
// or without a warm-up, with or without a starvation bound; streams of
// priority classes 0, 3, 6 and 9) and
// then up to kMaxOps operations -- Open, Close, GiveBack of fuel granted and
// not yet given back, MarkDelivered, Hold, Release, Advance and Tick with
// time moving forward, Start, Stop, Configure, HasFuel, Emit, statistics,
// EndAll. A model beside the scheduler keeps what the public API promises
// and aborts on the first broken promise:
//   - smooth and window mode: never more than max_n grants (by nominal time
//     granted_at) in any window of `per`; smooth: at least per/max_n apart;
//     bucket: the token bucket's bound (burst, refilled at max_n/per);
//     unbounded: no more grants than the running time has earned;
//   - a stream with count c gets at most c grants and ends when it has them;
//     a held stream gets none;
//   - no event for a stream that ended or was closed, or that never was;
//   - grants only while running, never in the future, never before the
//     current run or configuration began;
//   - wait limits: a stream ends for its wait limit only once it passed,
//     and always once it passed; a zero wait limit ends at once;
//   - fail_if_late: a stream ends as too late only when it asked, has a
//     finite non-zero wait limit, the throttle runs and is limited, and its
//     expected wait reaches past its deadline;
//   - Stop ends every open stream; Start/Stop/Emit fail exactly when the
//     state says so; total_emissions is never negative and counts exactly
//     the grants (or the Emit calls, with manual_emit) not given back;
//   - after Advance(now), NextWakeup() is after now and no later than any
//     open stream's wait-limit deadline.
// The bounds per window hold within one configuration: Configure starts a
// new one (the window of a new rate over grants made at the old one has no
// promised bound). Only the scheduler's public header is used.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/core/scheduler.h"
#include "server/core/throttle_config.h"
#include "tests/fuzz/fuzz_check.h"

namespace throttle::server {
namespace {

constexpr int kMaxOps = 256;

// THROTTLE_FUZZ_TRACE=1 prints each operation and event to stderr: run the
// target on one input with it to read a reproducer.
const bool kTrace = std::getenv("THROTTLE_FUZZ_TRACE") != nullptr;
#define TRACE(...)                                 \
  do {                                             \
    if (kTrace) std::fprintf(stderr, __VA_ARGS__); \
  } while (0)

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

// For the trace: a time as the offset from kT0.
std::string Since(absl::Time t) { return absl::FormatDuration(t - kT0); }

void TraceConfig(const char* what, const ThrottleConfig& config) {
  TRACE(
      "%s mode=%s max_n=%lld per=%s burst=%lld manual_emit=%d warm_up=%s "
      "warm_up_from=%g starvation_bound=%s\n",
      what, ModeName(config.mode), static_cast<long long>(config.max_n),
      absl::FormatDuration(config.per).c_str(),
      static_cast<long long>(config.burst), config.manual_emit,
      absl::FormatDuration(config.warm_up).c_str(), config.warm_up_from,
      absl::FormatDuration(config.starvation_bound).c_str());
}

// Reads the fuzz input from the front, one value at a time; zeros once it
// is used up.
class Input {
 public:
  Input(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  bool empty() const { return pos_ >= size_; }
  uint8_t Byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  // A value in [lo, hi], from as many bytes as the range needs.
  int64_t Range(int64_t lo, int64_t hi) {
    const uint64_t span = static_cast<uint64_t>(hi) - static_cast<uint64_t>(lo);
    uint64_t value = 0;
    for (uint64_t left = span; left > 0; left >>= 8)
      value = value << 8 | Byte();
    return lo + static_cast<int64_t>(span == UINT64_MAX ? value
                                                        : value % (span + 1));
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

ThrottleConfig DecodeConfig(Input& in) {
  ThrottleConfig config;
  config.mode = static_cast<Mode>(in.Range(0, 4));
  config.max_n = in.Range(1, 20);
  // Mostly round values; sometimes any nanosecond count in [1 ms, 10 s]
  // (per / max_n then needs rounding to the Duration's resolution).
  static constexpr int64_t kPerMs[] = {1000, 250, 10, 1, 3, 10'000};
  const uint8_t pick = in.Byte();
  config.per = pick < 240
                   ? absl::Milliseconds(kPerMs[pick % 6])
                   : absl::Nanoseconds(in.Range(1'000'000, 10'000'000'000));
  if (config.mode == Mode::kBucket) config.burst = in.Range(0, 20);
  config.manual_emit = in.Byte() % 4 == 0;
  // A warm-up in one config of two, of 1 to 20 `per`, from 1/256 to 1 of
  // the rate (0: the default 1/3): the bounds above hold during a ramp.
  const uint8_t warm = in.Byte();
  if (warm % 2 == 0) {
    config.warm_up = config.per * (1 + warm % 20);
    config.warm_up_from = in.Byte() / 256.0;
  }
  // A starvation bound (priorities) in one config of two, of 1/4 to 1
  // `per`, from the warm-up byte's upper bits.
  if ((warm & 0x20) != 0)
    config.starvation_bound = config.per * (1 + (warm >> 6)) / 4;
  FUZZ_CHECK(ValidateConfig(config).ok());
  return config;
}

// Where events came from: what each kind of call may report.
enum class Source { kOpen, kAdvance, kStop, kEndAll };

class Harness {
 public:
  explicit Harness(const ThrottleConfig& config)
      : config_(config), scheduler_(config) {
    TraceConfig("config", config);
  }

  void Step(Input& in) {
    switch (in.Byte() % 15) {
      case 0:
      case 1:
        Open(in);
        break;
      case 2: {
        const StreamId id = Pick(in);
        TRACE("%s Close(%llu)\n", Since(now_).c_str(),
              static_cast<unsigned long long>(id));
        scheduler_.Close(id);
        CloseInModel(id);
        break;
      }
      case 3:
        GiveBack(in);
        break;
      case 4: {
        const StreamId id = Pick(in);
        TRACE("%s MarkDelivered(%llu)\n", Since(now_).c_str(),
              static_cast<unsigned long long>(id));
        scheduler_.MarkDelivered(id, now_);
        if (config_.mode == Mode::kMonitorOnly) {
          auto it = streams_.find(id);
          if (it != streams_.end() && !it->second.held) {
            it->second.awaiting = false;
          }
        }
        break;
      }
      case 5:
      case 6:
        Advance(in);
        break;
      case 7:
        now_ += TimeStep(in);
        TRACE("%s (time passes)\n", Since(now_).c_str());
        break;
      case 8:
        Start();
        break;
      case 9:
        Stop();
        break;
      case 10:
        Configure(in);
        break;
      case 11:
        if (in.Byte() % 2 == 0) {
          HasFuel();
        } else {
          Emit(in);
        }
        break;
      case 12:
        if (in.Byte() % 8 == 0) {
          EndAll();
        } else {
          Statistics(in);
        }
        break;
      case 13: {
        const StreamId id = Pick(in);
        TRACE("%s Hold(%llu)\n", Since(now_).c_str(),
              static_cast<unsigned long long>(id));
        scheduler_.Hold(id);
        SetHeld(id, true);
        break;
      }
      case 14: {
        const StreamId id = Pick(in);
        TRACE("%s Release(%llu)\n", Since(now_).c_str(),
              static_cast<unsigned long long>(id));
        scheduler_.Release(id, now_);
        SetHeld(id, false);
        break;
      }
    }
    CheckAlways();
  }

  // At the end of the input: the bounds over the whole last configuration.
  void Finish() { CheckBucketBound(); }

 private:
  enum class Life { kOpen, kEnded, kClosed };
  struct StreamModel {
    StreamRequest request;
    absl::Time deadline;  // open or last grant + wait_limit
    int64_t granted = 0;
    Life life = Life::kOpen;
    EndReason end = EndReason::kNone;
    // Out of service: held by Hold until Release (also across Configure),
    // or, in monitor-only mode, awaiting MarkDelivered.
    bool held = false;
    bool awaiting = false;
    bool OutOfService() const { return held || awaiting; }
  };
  // Fuel granted and not given back (yet), in the order granted: grant i
  // at granted_at + i * spacing.
  struct Batch {
    absl::Time granted_at;
    absl::Duration spacing;
    int64_t grants;
    int epoch;      // the model's count of configurations
    uint64_t tag;   // the StreamEvent's epoch, for GiveBack
    bool counted;   // by the monitor when granted (not manual_emit)
    bool has_fuel;  // taken by HasFuel: it reached its worker, never back
  };

  // --- operations ---------------------------------------------------------

  void Open(Input& in) {
    StreamRequest request;
    request.count = in.Range(0, 30);
    request.weight = in.Range(1, 5);
    const uint8_t kind = in.Byte();
    // Deadline-aware admission from the same byte, so the corpus decodes
    // as before.
    request.fail_if_late = (kind & 4) != 0;
    // Priority classes 0, 3, 6 and 9 from the same byte's upper bits.
    request.priority = 3 * ((kind >> 3) & 3);
    switch (kind % 4) {
      case 0:
        request.wait_limit = absl::ZeroDuration();
        break;
      case 1:
        request.wait_limit = absl::Nanoseconds(
            in.Range(1, 4 * absl::ToInt64Nanoseconds(config_.per)));
        break;
      default:
        request.wait_limit = absl::InfiniteDuration();
    }
    std::vector<StreamEvent> events;
    const StreamId id = scheduler_.Open(request, now_, &events);
    TRACE(
        "%s Open(count=%lld weight=%lld wait_limit=%s fail_if_late=%d "
        "priority=%lld) -> %llu\n",
        Since(now_).c_str(), static_cast<long long>(request.count),
        static_cast<long long>(request.weight),
        absl::FormatDuration(request.wait_limit).c_str(), request.fail_if_late,
        static_cast<long long>(request.priority),
        static_cast<unsigned long long>(id));
    FUZZ_CHECK(streams_.empty() || id > streams_.rbegin()->first);  // new
    StreamModel& stream = streams_[id];
    stream.request = request;
    stream.deadline = now_ + request.wait_limit;
    ids_.push_back(id);
    open_.insert(id);
    Apply(events, Source::kOpen, id);
    if (state_ == State::kStopped) {
      FUZZ_CHECK(events.size() == 1);
      FUZZ_CHECK(stream.life == Life::kEnded);
      FUZZ_CHECK(stream.end == EndReason::kStopped);
    }
    // "Only if fuel is free at once": the stream never waits.
    if (request.wait_limit == absl::ZeroDuration()) {
      FUZZ_CHECK(stream.life == Life::kEnded);
    }
  }

  // A stream id to act on: a known one (open or not) or one never handed
  // out.
  StreamId Pick(Input& in) {
    const int64_t i = in.Range(0, static_cast<int64_t>(ids_.size()));
    if (i < static_cast<int64_t>(ids_.size())) return ids_[i];
    return (streams_.empty() ? 0 : streams_.rbegin()->first) + 1000;
  }

  void SetHeld(StreamId id, bool held) {
    auto it = streams_.find(id);
    if (it != streams_.end() && it->second.life == Life::kOpen) {
      it->second.held = held;
      if (!held) it->second.awaiting = false;  // Release puts it in line
    }
  }

  // Open streams that wait for fuel (not held).
  bool AnyoneWaits() const {
    for (StreamId id : open_) {
      if (!streams_.at(id).OutOfService()) return true;
    }
    return false;
  }

  void CloseInModel(StreamId id) {
    auto it = streams_.find(id);
    if (it == streams_.end() || it->second.life != Life::kOpen) return;
    it->second.life = Life::kClosed;
    open_.erase(id);
  }

  void GiveBack(Input& in) {
    if (outstanding_.empty()) return;
    size_t i = static_cast<size_t>(
        in.Range(0, static_cast<int64_t>(outstanding_.size()) - 1));
    Batch& batch = outstanding_[i];
    if (batch.has_fuel) return;
    // A batch goes back whole, as its StreamEvent said (the contract of
    // Scheduler::GiveBack; the service never splits one).
    const int64_t n = batch.grants;
    TRACE("%s GiveBack(%s, %lld)\n", Since(now_).c_str(),
          Since(batch.granted_at).c_str(), static_cast<long long>(n));
    scheduler_.GiveBack(batch.granted_at, n, batch.spacing, batch.tag);
    if (batch.counted) expected_total_ -= std::min(n, expected_total_);
    if (batch.epoch == epoch_) {
      // The batch never was.
      epoch_grants_ -= n;
      for (int64_t k = batch.grants - n; k < batch.grants; ++k) {
        auto it = log_.find(batch.granted_at + k * batch.spacing);
        if (it == log_.end()) continue;
        if (--it->second <= 0) log_.erase(it);
      }
    }

    batch.grants -= n;
    if (batch.grants == 0) outstanding_.erase(outstanding_.begin() + i);
  }

  // How far time moves: not at all, to the next wake-up, or up to 4 * per.
  absl::Duration TimeStep(Input& in) {
    const int64_t per_ns = absl::ToInt64Nanoseconds(config_.per);
    switch (in.Byte() % 4) {
      case 0:
        return absl::ZeroDuration();
      case 1: {
        const absl::Time next = scheduler_.NextWakeup();
        if (next > now_ && next - now_ <= 4 * config_.per) return next - now_;
        return absl::Nanoseconds(in.Range(1, per_ns));
      }
      case 2:
        return absl::Nanoseconds(in.Range(1, per_ns));
      default:
        return absl::Nanoseconds(in.Range(1, 4 * per_ns));
    }
  }

  void Advance(Input& in) {
    now_ += TimeStep(in);
    TRACE("%s Advance\n", Since(now_).c_str());
    std::vector<StreamEvent> events;
    scheduler_.Advance(now_, &events);
    Apply(events, Source::kAdvance, 0);
    CheckAfterAdvance();
  }

  void Start() {
    const absl::Status status = scheduler_.Start(now_);
    TRACE("%s Start: %s\n", Since(now_).c_str(), status.ToString().c_str());
    if (state_ == State::kRunning) {
      FUZZ_CHECK(status.code() == absl::StatusCode::kFailedPrecondition);
      return;
    }
    FUZZ_CHECK(status.ok());
    state_ = State::kRunning;
    run_started_ = now_;
    segment_started_ = now_;
  }

  void Stop() {
    std::vector<StreamEvent> events;
    const absl::StatusOr<RunStats> stats = scheduler_.Stop(now_, &events);
    TRACE("%s Stop: %s\n", Since(now_).c_str(),
          stats.status().ToString().c_str());
    if (state_ != State::kRunning) {
      FUZZ_CHECK(stats.status().code() ==
                 absl::StatusCode::kFailedPrecondition);
      FUZZ_CHECK(events.empty());
      return;
    }
    FUZZ_CHECK(stats.ok());
    Apply(events, Source::kStop, 0);
    FUZZ_CHECK(open_.empty());  // every open stream was told
    runtime_ += now_ - run_started_;
    epoch_running_ += now_ - segment_started_;
    state_ = State::kStopped;
    FUZZ_CHECK(stats->runtime == runtime_);
    FUZZ_CHECK(stats->total_emissions == expected_total_);
  }

  void Configure(Input& in) {
    CheckBucketBound();
    const ThrottleConfig config = DecodeConfig(in);
    TraceConfig((Since(now_) + " Configure").c_str(), config);
    scheduler_.Configure(config, now_);
    // A limited mode puts streams awaiting delivery back in line; held
    // streams stay held.
    if (config.mode != Mode::kMonitorOnly) {
      for (StreamId id : open_) streams_.at(id).awaiting = false;
    }
    config_ = config;
    ++epoch_;
    epoch_started_ = now_;
    log_.clear();
    epoch_grants_ = 0;
    epoch_running_ = absl::ZeroDuration();
    segment_started_ = now_;
    FUZZ_CHECK(scheduler_.config().max_n == config.max_n);
  }

  void HasFuel() {
    const HasFuelResult result = scheduler_.HasFuel(now_);
    TRACE("%s HasFuel: granted=%d stopped=%d\n", Since(now_).c_str(),
          result.granted, result.stopped);
    if (state_ != State::kRunning) {
      FUZZ_CHECK(!result.granted);
      FUZZ_CHECK(result.stopped == (state_ == State::kStopped));
      return;
    }
    FUZZ_CHECK(!result.stopped);
    if (!result.granted) return;
    // Only when no stream waits (monitor-only streams wait for delivery,
    // not for fuel).
    if (config_.mode != Mode::kMonitorOnly) FUZZ_CHECK(!AnyoneWaits());
    outstanding_.push_back({now_, absl::ZeroDuration(), 1, epoch_, 0,
                            !config_.manual_emit,
                            /*has_fuel=*/true});
    RecordGrants(now_, 1, absl::ZeroDuration());
  }

  void Emit(Input& in) {
    const int64_t n = in.Range(1, 1000);
    const absl::StatusOr<int64_t> total = scheduler_.Emit(n, now_);
    TRACE("%s Emit(%lld): %s\n", Since(now_).c_str(), static_cast<long long>(n),
          total.status().ToString().c_str());
    if (!config_.manual_emit || state_ != State::kRunning) {
      FUZZ_CHECK(total.status().code() ==
                 absl::StatusCode::kFailedPrecondition);
      return;
    }
    FUZZ_CHECK(total.ok());
    expected_total_ += n;
    FUZZ_CHECK(*total == expected_total_);
  }

  void Statistics(Input& in) {
    const absl::Duration window = absl::Nanoseconds(
        in.Range(1, absl::ToInt64Nanoseconds(kMaxLatestWindow)));
    const LatestStats latest = scheduler_.Latest(window, now_);
    FUZZ_CHECK(latest.emissions >= 0);
    FUZZ_CHECK(latest.emissions <= expected_total_);
    const MeanStats mean = scheduler_.Mean(now_);
    FUZZ_CHECK(mean.run.total_emissions == expected_total_);
    FUZZ_CHECK(mean.lowest_gap >= absl::ZeroDuration());
    FUZZ_CHECK(mean.lowest_gap <= mean.highest_gap);
    const RunStats totals = scheduler_.Totals(now_);
    FUZZ_CHECK(totals.runtime == runtime_ + (state_ == State::kRunning
                                                 ? now_ - run_started_
                                                 : absl::ZeroDuration()));
  }

  void EndAll() {
    std::vector<StreamEvent> events;
    TRACE("%s EndAll\n", Since(now_).c_str());
    scheduler_.EndAll(EndReason::kClosed, &events);
    Apply(events, Source::kEndAll, 0);
    FUZZ_CHECK(open_.empty());
  }

  // --- the model ------------------------------------------------------------

  // Checks and records what a call reported. `opened` is the stream the
  // call opened (Source::kOpen).
  void Apply(const std::vector<StreamEvent>& events, Source source,
             StreamId opened) {
    for (const StreamEvent& event : events) {
      TRACE("  stream %llu: %lld grants at %s every %s, end %d\n",
            static_cast<unsigned long long>(event.stream),
            static_cast<long long>(event.grants),
            Since(event.granted_at).c_str(),
            absl::FormatDuration(event.spacing).c_str(),
            static_cast<int>(event.end));
      auto it = streams_.find(event.stream);
      FUZZ_CHECK(it != streams_.end());  // a stream that was opened
      StreamModel& stream = it->second;
      FUZZ_CHECK(stream.life == Life::kOpen);  // not ended, not closed
      FUZZ_CHECK(event.grants >= 0);
      FUZZ_CHECK(event.grants > 0 || event.end != EndReason::kNone);
      const int64_t count = stream.request.count;
      if (event.grants > 0) {
        const absl::Duration spacing = event.spacing;
        const absl::Time last = event.granted_at + (event.grants - 1) * spacing;
        FUZZ_CHECK(source == Source::kOpen || source == Source::kAdvance);
        FUZZ_CHECK(state_ == State::kRunning);
        FUZZ_CHECK(spacing >= absl::ZeroDuration());
        FUZZ_CHECK(last <= now_);
        FUZZ_CHECK(event.granted_at >= run_started_);
        FUZZ_CHECK(event.granted_at >= epoch_started_);
        stream.granted += event.grants;
        if (count > 0) FUZZ_CHECK(stream.granted <= count);
        if (stream.request.wait_limit != absl::InfiniteDuration()) {
          // The wait for the next grant restarts (a grant dated before an
          // earlier one restarts nothing).
          stream.deadline =
              std::max(stream.deadline, last + stream.request.wait_limit);
        }
        FUZZ_CHECK(!stream.OutOfService());  // a held stream gets nothing
        outstanding_.push_back({event.granted_at, spacing, event.grants, epoch_,
                                event.epoch, !config_.manual_emit,
                                /*has_fuel=*/false});
        RecordGrants(event.granted_at, event.grants, spacing);
        // Monitor-only serves a count-0 stream one grant per delivery.
        if (config_.mode == Mode::kMonitorOnly && count == 0 &&
            event.end == EndReason::kNone) {
          stream.awaiting = true;
        }
      }
      switch (event.end) {
        case EndReason::kNone:
          // A stream that has all it asked for is ended with that grant.
          if (count > 0) FUZZ_CHECK(stream.granted < count);
          break;
        case EndReason::kCountReached:
          FUZZ_CHECK(count > 0 && stream.granted == count);
          break;
        case EndReason::kStopped:
          FUZZ_CHECK(source == Source::kStop ||
                     (source == Source::kOpen && event.stream == opened &&
                      state_ == State::kStopped));
          break;
        case EndReason::kWaitLimitPassed:
          FUZZ_CHECK(stream.request.wait_limit != absl::InfiniteDuration());
          FUZZ_CHECK(now_ >= stream.deadline);
          break;
        case EndReason::kClosed:
          FUZZ_CHECK(source == Source::kEndAll);
          break;
        case EndReason::kTooLate:
          // Only a fail_if_late stream with a finite, non-zero limit on a
          // running, limited throttle, and only when its next grant is
          // expected after its deadline.
          FUZZ_CHECK(stream.request.fail_if_late);
          FUZZ_CHECK(stream.request.wait_limit != absl::InfiniteDuration());
          FUZZ_CHECK(stream.request.wait_limit != absl::ZeroDuration());
          FUZZ_CHECK(state_ == State::kRunning);
          FUZZ_CHECK(config_.mode != Mode::kMonitorOnly);
          FUZZ_CHECK(source == Source::kOpen || source == Source::kAdvance);
          FUZZ_CHECK(event.grants == 0);
          FUZZ_CHECK(now_ + event.expected_wait > stream.deadline);
          break;
      }
      if (event.end != EndReason::kNone) {
        stream.life = Life::kEnded;
        stream.end = event.end;
        open_.erase(event.stream);
      }
    }
  }

  // `n` grants from nominal time `at`, `spacing` apart, under the current
  // configuration.
  void RecordGrants(absl::Time at, int64_t n, absl::Duration spacing) {
    if (!config_.manual_emit) expected_total_ += n;
    epoch_grants_ += n;
    if (config_.mode == Mode::kUnbounded) CheckUnboundedBound();
    if (config_.mode != Mode::kSmooth && config_.mode != Mode::kWindow &&
        config_.mode != Mode::kBucket) {
      return;
    }
    const int64_t times = spacing == absl::ZeroDuration() ? 1 : n;
    for (int64_t i = 0; i < times; ++i) {
      const absl::Time t = at + i * spacing;
      log_[t] += n / times;
      if (config_.mode != Mode::kBucket) CheckWindowsAround(t);
    }
  }

  // No window [s, s + per) that contains `at` holds more than max_n grants.
  // The fullest such window starts at a grant, so only windows starting at
  // grants in (at - per, at] are counted.
  void CheckWindowsAround(absl::Time at) {
    const absl::Duration per = config_.per;
    auto first = log_.upper_bound(at - per);
    auto end = log_.lower_bound(at + per);
    for (auto start = first; start != end && start->first <= at; ++start) {
      int64_t in_window = 0;
      for (auto it = start; it != end && it->first < start->first + per; ++it) {
        in_window += it->second;
      }
      if (in_window > config_.max_n) {
        std::fprintf(stderr,
                     "%lld grants in the window [%s, +%s) of %s mode, "
                     "max_n=%lld\n",
                     static_cast<long long>(in_window),
                     absl::FormatDuration(start->first - kT0).c_str(),
                     absl::FormatDuration(per).c_str(), ModeName(config_.mode),
                     static_cast<long long>(config_.max_n));
        std::abort();
      }
    }
  }

  // Smooth (a bucket of 1) and bucket mode: the grants of this
  // configuration, in nominal time order, conform to a token bucket of
  // capacity `burst` refilled at exactly max_n per `per` that starts full
  // (the generic cell rate algorithm, scaled by max_n to stay exact: grant
  // k may come no earlier than tat - (burst - 1) * per / max_n).
  void CheckBucketBound() {
    int64_t burst;
    if (config_.mode == Mode::kSmooth) {
      burst = 1;
    } else if (config_.mode == Mode::kBucket) {
      burst = config_.EffectiveBurst();
    } else {
      return;
    }
    const absl::Duration tolerance = (burst - 1) * config_.per;
    absl::Duration tat = -absl::InfiniteDuration();  // in units of 1/max_n
    for (const auto& [at, n] : log_) {
      const absl::Duration scaled = (at - kT0) * config_.max_n;
      for (int64_t i = 0; i < n; ++i) {
        if (scaled < tat - tolerance) {
          std::fprintf(stderr,
                       "%s mode (max_n=%lld per=%s burst=%lld): a grant at "
                       "%s comes too early for the bucket\n",
                       ModeName(config_.mode),
                       static_cast<long long>(config_.max_n),
                       absl::FormatDuration(config_.per).c_str(),
                       static_cast<long long>(burst),
                       absl::FormatDuration(at - kT0).c_str());
          std::abort();
        }
        tat = std::max(tat, scaled) + config_.per;
      }
    }
  }

  // Unbounded mode: grant k (from 0) of this configuration is earned k *
  // per / max_n of running time after it began (1 ns of slack for the
  // rounding of that time).
  void CheckUnboundedBound() const {
    absl::Duration running = epoch_running_;
    if (state_ == State::kRunning) running += now_ - segment_started_;
    absl::Duration unused;
    const int64_t earned =
        absl::IDivDuration((running + absl::Nanoseconds(1)) * config_.max_n,
                           config_.per, &unused) +
        1;
    FUZZ_CHECK(epoch_grants_ <= earned);
  }

  void CheckAlways() const {
    FUZZ_CHECK(scheduler_.state() == state_);
    FUZZ_CHECK(scheduler_.total_emissions() >= 0);
    FUZZ_CHECK(scheduler_.total_emissions() == expected_total_);
    FUZZ_CHECK(scheduler_.waiting_streams() ==
               static_cast<int64_t>(open_.size()));
  }

  void CheckAfterAdvance() const {
    const absl::Time next = scheduler_.NextWakeup();
    // Everything due by now was done; otherwise the refill loop would spin.
    FUZZ_CHECK(next > now_);
    if (state_ == State::kRunning && config_.mode != Mode::kMonitorOnly &&
        AnyoneWaits()) {
      FUZZ_CHECK(next != absl::InfiniteFuture());  // someone waits for fuel
    }
    for (StreamId id : open_) {
      const StreamModel& stream = streams_.at(id);
      if (stream.request.wait_limit == absl::InfiniteDuration()) continue;
      FUZZ_CHECK(stream.deadline > now_);  // it would have ended
      FUZZ_CHECK(next <= stream.deadline);
    }
  }

  ThrottleConfig config_;
  Scheduler scheduler_;
  absl::Time now_ = kT0;
  State state_ = State::kCreated;

  std::map<StreamId, StreamModel> streams_;  // every stream opened
  std::vector<StreamId> ids_;                // the same, in order
  std::set<StreamId> open_;                  // not ended, not closed
  std::vector<Batch> outstanding_;           // and HasFuel's, to keep the order
  int64_t expected_total_ = 0;

  absl::Duration runtime_;  // of completed runs
  absl::Time run_started_ = absl::InfinitePast();

  // The current configuration: since Configure (or the start).
  int epoch_ = 0;
  absl::Time epoch_started_ = absl::InfinitePast();
  std::map<absl::Time, int64_t> log_;  // grants by nominal time, net
  int64_t epoch_grants_ = 0;           // net of give-backs
  absl::Duration epoch_running_;       // running time before this segment
  absl::Time segment_started_;         // running since (when running)
};

}  // namespace
}  // namespace throttle::server

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  throttle::server::Input in(data, size);
  throttle::server::Harness harness(throttle::server::DecodeConfig(in));
  for (int op = 0; op < throttle::server::kMaxOps && !in.empty(); ++op) {
    harness.Step(in);
  }
  harness.Finish();
  return 0;
}
