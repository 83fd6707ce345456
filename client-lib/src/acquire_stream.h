// The Acquire stream of one throttle::Tank (client-lib/): the waiters of
// Tank::AwaitFuel in FIFO order, the grants kept for later, and the one
// long-lived Acquire call they share, as docs/acquire-client-spec.md says.
// Private to the library; not installed.
//
// There is no reader thread: the waiting threads take turns at reading.
// One of them (the poller) waits on the call's completion queue, up to its
// own timeout, and hands each grant to the head waiter; the others sleep
// on their own condition variable until their grants arrive, their timeout
// passes or the poller leaves (then the new head polls). A lone waiter
// thus reads its own grant: one message each way per grant and no thread
// hand-off. With no waiter, nobody reads (no read is even started): the
// stream holds no demand, so the server sends nothing but the end of the
// stream, read by the next waiter. A read is started after the demand is
// written, so that gRPC's window update goes out with the demand.
//
// Graceful degradation (local_share.h): when a call ends UNAVAILABLE (or
// is cancelled by a server going away) the waiters act on the throttle's
// last known policy: wait on (the default), fail at once with UNAVAILABLE,
// or take local grants at the stream's last share for a bounded time. The
// poller hands the local grants out, between reconnect attempts only (an
// attempt that reached the server waits for its grants). While degraded, new
// calls fail fast at the transport (no wait_for_ready) so that each reconnect
// attempt ends soon; the first message of a call that got through ends the
// outage, and the server's grants take over.
#ifndef THROTTLE_CLIENT_LIB_SRC_ACQUIRE_STREAM_H_
#define THROTTLE_CLIENT_LIB_SRC_ACQUIRE_STREAM_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "client-lib/src/backoff.h"
#include "client-lib/src/call_registry.h"
#include "client-lib/src/local_share.h"
#include "client-lib/src/steady_mutex.h"
#include "throttle/clock.h"
#include "throttle/tank.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle {

// The error of every Tank call ended or refused by Tank::Close().
absl::Status TankClosedError();

struct AcquireStreamOptions {
  std::string throttle;
  std::string worker_id;
  int64_t weight = 1;
  int64_t priority = 0;  // TankOptions::priority
  // The reconnect backoff after UNAVAILABLE (or CANCELLED by the server).
  absl::Duration backoff_initial;
  absl::Duration backoff_max;
  // Not owned; timeouts are points on it.
  const Clock* clock = nullptr;
  // TankOptions::ask_ahead: grants asked ahead of the waiters while the
  // server says fuel is unlimited (monitor-only).
  int64_t ask_ahead = 0;
};

// Thread-safe. `channel` (the stub's), `stub` and `calls` are not owned and
// outlive it. Destroy it
// only when no thread is in it, after `calls` was closed.
class AcquireStream {
 public:
  AcquireStream(grpc::ChannelInterface* channel, v1::Throttle::Stub* stub,
                CallRegistry* calls, AcquireStreamOptions options);
  AcquireStream(const AcquireStream&) = delete;
  AcquireStream& operator=(const AcquireStream&) = delete;
  // Ends the call (cancelled through `calls`) and waits for gRPC to release
  // it: a few milliseconds.
  ~AcquireStream();

  // What Await ended with.
  struct Outcome {
    FuelResult result;
    // The server has no Acquire method (UNIMPLEMENTED: an older server):
    // result is not set; result.grants were taken from the kept grants and
    // the caller waits for the rest with AwaitFuel calls.
    bool unimplemented = false;
  };

  // Blocks until `n` >= 1 grants were taken (kept grants first, then from
  // the stream), the throttle stops (kStopped), `deadline` on the options'
  // clock passes (kTimedOut: the demand still missing is withdrawn) or the
  // stream fails (kError: the server's status, or TankClosedError() after
  // Close()). result.grants is what was taken, n on kFuel. UNAVAILABLE and
  // CANCELLED by the server do not end it: the call is opened again after
  // a backoff delay.
  Outcome Await(int64_t n, absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  // Takes up to `n` kept grants; returns how many. Never blocks.
  int64_t TakeKept(int64_t n) ABSL_LOCKS_EXCLUDED(mu_);

  // What an AwaitFuel or HasFuel call saw: the throttle runs, and `extra`
  // grants beyond what was asked are kept; or it stopped (kept grants are
  // dropped). Never blocks.
  void SawGrants(int64_t extra) ABSL_LOCKS_EXCLUDED(mu_);
  void SawStopped() ABSL_LOCKS_EXCLUDED(mu_);
  bool killed() const ABSL_LOCKS_EXCLUDED(mu_);

  // After an UNAVAILABLE answer to an AwaitFuel call (the server may have
  // come back upgraded): the next Await tries Acquire again.
  void RetryAcquire() ABSL_LOCKS_EXCLUDED(mu_);

  // Wakes every waiter to see that `calls` was closed (Tank::Close()).
  void WakeAll() ABSL_LOCKS_EXCLUDED(mu_);

  // Graceful degradation of the Tank's AwaitFuel calls (Tank::AwaitWithCalls;
  // docs/clients.md, "AwaitFuel calls follow the same policy from the same
  // state"): the stream's one policy, share, outage and local pacer, and
  // its reconnect backoff, so that the stream and the calls agree.
  //
  // What an AwaitFuel call does next, at `now`, for the `missing` grants.
  struct CallStep {
    LocalShare::Action action = LocalShare::Action::kWait;
    // Call the server now: always under kWait, else once the reconnect
    // backoff has passed (and `may_call`).
    bool call = true;
    // The call waits for a server that is (re)starting only under the
    // wait policy (as before); otherwise a call to a server that is down
    // ends at once, UNAVAILABLE, and the outage starts -- also for the
    // first call after the server went, which no call in flight saw go.
    bool wait_for_ready = true;
    // Not calling, kLocal: the local grants taken now (at most one); when
    // the next is due (InfiniteFuture: none before local granting ends);
    // when to look again (that grant, the end of local granting or the
    // next call to the server, whichever is first).
    int64_t grants = 0;
    absl::Time next_grant = absl::InfiniteFuture();
    absl::Time wake = absl::InfiniteFuture();
    // Not calling, kFailFast: the UNAVAILABLE error to end with.
    absl::Status error;
  };
  CallStep DegradeCall(int64_t missing, absl::Time now, bool may_call)
      ABSL_LOCKS_EXCLUDED(mu_);
  // An AwaitFuel call heard from the server: a message (`response`, whose
  // policy and share are taken if it carries them) or a status from the
  // server (nullptr). The outage ends and the backoff starts again.
  void CallAnswered(const v1::AwaitFuelResponse* response)
      ABSL_LOCKS_EXCLUDED(mu_);
  // An AwaitFuel call ended UNAVAILABLE (or CANCELLED by the server) at
  // `now`: the outage starts (if it has not), and so does a reconnect
  // backoff (unless one is under way). Returns the action at `now`.
  LocalShare::Action CallLost(absl::Time now) ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Waiter;
  struct Call;

  // One step of the poller `self`: opens the call, or sleeps out the
  // backoff (watching the channel: channel_watch.h), or handles one event
  // of the call, waiting at most `timeout`.
  void Poll(Waiter* self, absl::Duration timeout)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Polls, with no waiter left, until the demand written equals the
  // waiters' (a withdrawal is on the wire) or `timeout` passes.
  void Settle(absl::Duration timeout) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Handles one completion of the call's queue.
  void Handle(void* tag, bool ok) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Open() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Starts a read unless one is pending or the stream ended.
  void ReadNext() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Writes the change of demand, unless a write is in flight.
  void Flush() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The demand Flush would add (> 0) or withdraw (< 0) now: what the
  // waiters miss, and while fuel is unlimited a top-up to ask_ahead grants
  // beyond them once fewer than half of those are kept or coming (never a
  // withdrawal then).
  int64_t DemandChange() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Graceful degradation at `now`: hands local grants to the waiters, or
  // fails them with UNAVAILABLE while no reconnect attempt is under way.
  void Degrade(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The UNAVAILABLE error of a wait that fails fast (the policy, or no
  // local share left).
  absl::Status LostError() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Hands `grants` to the waiters in order; what is left over is kept.
  void HandOut(int64_t grants) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts `n` grants taken by an Await now, for AskAhead.
  void NoteTaken(int64_t n) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // How many grants to ask ahead while fuel is unlimited: what the waiters
  // took in the last kAskAheadWindow (their pace over about a round
  // trip), at most options_.ask_ahead -- so a slow worker asks for nothing
  // ahead and its counts stay exact.
  int64_t AskAhead() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Grants(int64_t grants, bool stopped) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void MaybeFinish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The call finished: releases it and acts on its status.
  void Ended() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Leave(Waiter* waiter) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Complete(Waiter* waiter, FuelOutcome outcome,
                absl::Status status = absl::OkStatus())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void CompleteAll(FuelOutcome outcome, const absl::Status& status)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  grpc::ChannelInterface* const channel_;
  v1::Throttle::Stub* const stub_;
  CallRegistry* const calls_;
  const AcquireStreamOptions options_;

  mutable SteadyMutex mu_;
  std::deque<Waiter*> waiters_ ABSL_GUARDED_BY(mu_);
  // The grants the waiters still miss.
  int64_t wanted_ ABSL_GUARDED_BY(mu_) = 0;
  // Whether a waiter is the poller.
  bool polling_ ABSL_GUARDED_BY(mu_) = false;
  // The open call, if any.
  std::unique_ptr<Call> call_ ABSL_GUARDED_BY(mu_);
  // No call is opened before this point on the options' clock (backoff);
  // while degraded, no AwaitFuel call of the Tank either.
  absl::Time reopen_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  // The channel was not connected at some point since the last call
  // ended (that call never reached a server, or the connection it had
  // dropped: a server killed): the channel's connecting again is news, so
  // the next call goes at once instead of at reopen_at_. (A call that a
  // server refused over a connection that stays up waits out its backoff.)
  bool reopen_when_connected_ ABSL_GUARDED_BY(mu_) = false;
  Backoff backoff_ ABSL_GUARDED_BY(mu_);
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
  bool unimplemented_ ABSL_GUARDED_BY(mu_) = false;
  // The throttle's degradation policy and the stream's share, as last
  // told, and the outage if the server is lost.
  LocalShare local_ ABSL_GUARDED_BY(mu_);
  // Grants that came with no waiter to take them.
  int64_t kept_ ABSL_GUARDED_BY(mu_) = 0;
  bool killed_ ABSL_GUARDED_BY(mu_) = false;
  // The last message said the throttle's fuel is unlimited (monitor-only).
  bool unlimited_ ABSL_GUARDED_BY(mu_) = false;
  // Grants taken in the current and the previous kAskAheadWindow.
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int64_t taken_now_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t taken_before_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace throttle

#endif  // THROTTLE_CLIENT_LIB_SRC_ACQUIRE_STREAM_H_
