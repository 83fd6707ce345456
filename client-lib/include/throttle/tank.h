// throttle::Tank: the worker side of the client library (client-lib/).
//
// A worker process holds one Tank per throttle and asks it for fuel before
// each piece of work, as in the seed (mp_throttle):
//
//   throttle::Tank tank("throttle.example:50051", "crawl");
//   while (!tank.killed()) {
//     if (tank.AwaitFuel().ok()) Work();
//   }
//
// The Tank speaks the worker RPCs of proto/throttle/v1/throttle.proto: it
// waits for fuel on one long-lived Acquire stream shared by all its threads
// (docs/acquire-client-spec.md), falling back to AwaitFuel calls on a
// server without Acquire, and calls HasFuel and Emit. It reconnects with
// backoff when the server is unavailable (restarting, shutting down). Its
// intervals are measured on a monotonic clock (throttle/clock.h).
#ifndef THROTTLE_TANK_H_
#define THROTTLE_TANK_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/random/random.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "grpcpp/channel.h"
#include "throttle/channel.h"
#include "throttle/clock.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle {

class AcquireStream;  // client-lib/src/acquire_stream.h
class CallRegistry;   // client-lib/src/call_registry.h

// How a Tank identifies itself and how it waits.
struct TankOptions {
  // Who the worker is, for the server's logs and statistics: free text of at
  // most 128 bytes. Empty is allowed.
  std::string worker_id;
  // This worker's share relative to other waiting workers: weight 3 gets
  // three grants per round-robin turn where weight 1 gets one. Must be in
  // [1, 1000] (the server rejects other values with INVALID_ARGUMENT).
  int64_t weight = 1;
  // This worker's priority class: the server serves the highest class with
  // a worker waiting first (a lower class waits while a higher one waits,
  // unless the throttle has a starvation_bound). Must be in [0, 9] (the
  // server rejects other values with INVALID_ARGUMENT); 0, the default, is
  // the lowest.
  int64_t priority = 0;
  // The first delay before calling again after the server answered
  // UNAVAILABLE. It doubles after each further UNAVAILABLE up to
  // `backoff_max`; each delay carries +-20% random jitter. A Tank made from
  // a target name gives its channel the same reconnect backoff (see
  // throttle/channel.h), so that after an outage it reconnects within about
  // `backoff_max` of the server's return.
  absl::Duration backoff_initial = kDefaultBackoffInitial;
  absl::Duration backoff_max = kDefaultBackoffMax;
  // Added to a finite AwaitFuel timeout to form the gRPC deadline of an
  // AwaitFuel call (a timeout of zero or less, or a server without
  // Acquire), so that the server's own "wait limit passed" answer normally
  // arrives first.
  absl::Duration deadline_slack = absl::Milliseconds(200);
  // The deadline of each HasFuel and Emit call.
  absl::Duration unary_deadline = absl::Seconds(10);
  // While the server says the throttle's fuel is unlimited (monitor-only:
  // nobody else waits for it), the Tank asks ahead of its waiters what they
  // took in about the last millisecond, at most this many, and hands the
  // grants out as they come, topping up when half are used: in a fast loop
  // a grant then costs no round trip, while a worker slower than one grant
  // a millisecond asks for nothing ahead. Grants are counted as emissions
  // when the server sends them, so when the Tank closes or the throttle
  // stops, up to this many may be counted and unused. 0: ask only for what
  // waiters wait for (exact counts). Limited modes never ask ahead.
  int64_t ask_ahead = 16;
  // The monotonic clock that AwaitFuel's timeout is measured on. Not owned;
  // must outlive the Tank. Tests give their own.
  const Clock* clock = SteadyClock();
};

// What a call to Tank::AwaitFuel() ended with.
enum class FuelOutcome {
  // The grants asked for (one for the plain call): do that much work.
  kFuel,
  // The throttle was stopped (the seed's kill_flag): stop working.
  kStopped,
  // The timeout passed without a grant (also when the server stayed
  // unreachable until then); the throttle may still be running.
  kTimedOut,
  // Only from AwaitFuelUnlessLate: the server expected the next grant
  // later than the timeout allows (FuelResult::expected_wait says when), so
  // the call did not wait.
  kTooLate,
  // Any other failure; FuelResult::status says which.
  kError,
};

struct FuelResult {
  FuelOutcome outcome = FuelOutcome::kError;
  // OK unless outcome is kError. Then, by what to do next:
  // INVALID_ARGUMENT / NOT_FOUND (fix the request, or the throttle was
  // deleted), CANCELLED (the Tank is closed: Tank::Close()), or another
  // gRPC code.
  absl::Status status;
  // The grants this call took: 1 (or the count asked for) on kFuel. On
  // kStopped and kTimedOut the counted AwaitFuel(n, timeout) may have got
  // part of its n (counted as emissions by the server: use them); the
  // plain AwaitFuel() has 0 then.
  int64_t grants = 0;
  // On kTooLate: how long the server expected the next grant to take from
  // when it answered. Zero otherwise.
  absl::Duration expected_wait;

  // True if fuel was granted.
  bool ok() const { return outcome == FuelOutcome::kFuel; }
  bool stopped() const { return outcome == FuelOutcome::kStopped; }
  bool timed_out() const { return outcome == FuelOutcome::kTimedOut; }
  bool too_late() const { return outcome == FuelOutcome::kTooLate; }
};

// What Tank::CheckFuel() found.
struct FuelCheck {
  // One grant was taken for the caller.
  bool granted = false;
  // The throttle is stopped (killed() is then true).
  bool stopped = false;
  // Neither granted nor stopped and the throttle running: how long until
  // a grant is expected for a worker that starts waiting now (the server's
  // retry_after: an estimate, not a reservation). Unset otherwise, and from
  // a server that does not send it.
  std::optional<absl::Duration> retry_after;
};

// A worker's handle on one named throttle of one server.
//
// Thread-safe: any number of threads may call any method at once. Waiting
// AwaitFuel calls share the Tank's one Acquire stream and are served in the
// order they started waiting (FIFO). The Tank must outlive those calls:
// destroy it only after every thread has returned from it (Close() makes
// them return).
class Tank {
 public:
  // Connects to the server at `target` (a gRPC target name such as
  // "host:port" or "unix:/path") over an insecure channel whose reconnect
  // backoff is the options' (CreateInsecureChannel), for the throttle named
  // `throttle`. Does not block and does not fail: connection problems show
  // up in the calls.
  Tank(const std::string& target, std::string throttle,
       TankOptions options = TankOptions());

  // As above over `channel`, whose ownership the Tank shares: one with TLS,
  // mTLS or a token (throttle/channel.h), or one shared with a Controller.
  // Make it with CreateChannel, passing the options' backoff so that the
  // channel reconnects on the Tank's schedule:
  //
  //   throttle::ChannelSecurity security;
  //   security.ca_file = "ca.pem";        // verify the server
  //   security.cert_file = "worker.pem";  // mTLS: who this worker is
  //   security.key_file = "worker.key";
  //   absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
  //       throttle::CreateChannel("throttle.example:50051", security,
  //                               options.backoff_initial,
  //                               options.backoff_max);
  //   if (!channel.ok()) return channel.status();  // INVALID_ARGUMENT
  //   throttle::Tank tank(*channel, "crawl", options);
  //
  // A channel made otherwise should carry ReconnectChannelArguments().
  Tank(std::shared_ptr<grpc::ChannelInterface> channel, std::string throttle,
       TankOptions options = TankOptions());

  Tank(const Tank&) = delete;
  Tank& operator=(const Tank&) = delete;

  // Closes the Tank (Close()).
  ~Tank();

  // Blocks until one grant of fuel is available to this worker, the throttle
  // stops, `timeout` passes, or the call fails. The same as AwaitFuel(1,
  // timeout).
  FuelResult AwaitFuel(absl::Duration timeout = absl::InfiniteDuration())
      ABSL_LOCKS_EXCLUDED(mu_);

  // Blocks until `n` grants of fuel are available to this worker, the
  // throttle stops, `timeout` passes, or the call fails. `n` must be in
  // [1, 1000000] (kError with INVALID_ARGUMENT otherwise, without a call).
  //
  // Grants received earlier that no caller took (a grant that arrived just
  // after its waiter timed out) are handed out first, without asking the
  // server. For the rest the caller waits on the Tank's Acquire stream,
  // opened by the first call that needs it and kept open: it asks the
  // server for what is missing, and leaves the stream's FIFO queue of
  // waiters when its timeout passes, withdrawing what it still missed (the
  // result then counts what it got). While the server answers UNAVAILABLE
  // (or the stream is CANCELLED by the other side, as by a server shutting
  // down) the waiters keep waiting and the stream is opened again after a
  // backoff delay (TankOptions); it also waits for an unreachable server to
  // come up (gRPC wait_for_ready). A timeout of zero or less ("only if
  // available now") makes one AwaitFuel call with wait limit zero instead,
  // as does every wait on a server without Acquire (UNIMPLEMENTED).
  //
  // While the server cannot be reached, waits follow the throttle's
  // degradation policy as the server last told this Tank, on its stream or
  // in an AwaitFuel answer (docs/clients.md, "When the server is gone"):
  // wait on (the default), end at once with kError UNAVAILABLE (fail fast),
  // or take local grants at the last share for at most local_share_for
  // (local share: a zero-timeout poll takes one only if it is due now). The
  // AwaitFuel calls share the stream's record of the policy and the outage.
  //
  // On kFuel killed() becomes false (the throttle runs, perhaps restarted);
  // on kStopped it becomes true and grants kept for later are dropped. A
  // final message carrying grants and "stopped" together gives those grants
  // to the first waiters (kFuel) and sets killed(). Timeout and backoff are
  // measured on TankOptions::clock.
  //
  // When the Tank is closed (Close()) while this waits, in a call or between
  // calls, it returns kError with CANCELLED ("throttle::Tank is closed") at
  // once, unless its grants had already arrived; after Close() it returns so
  // without a call.
  FuelResult AwaitFuel(int64_t n,
                       absl::Duration timeout = absl::InfiniteDuration())
      ABSL_LOCKS_EXCLUDED(mu_);

  // Deadline-aware admission: as AwaitFuel(n, timeout), but the server is
  // asked to say at once when the next grant is not expected within the
  // timeout -- given the workers waiting ahead, their weights and the rate
  // -- and the call then returns kTooLate with FuelResult::expected_wait
  // instead of waiting it out. The check repeats after each grant for the
  // next one, so with n > 1 a kTooLate result may carry the grants got so
  // far (use them). An estimate: an admitted call may still time out
  // (kTimedOut) when others join ahead or the rate changes. This waits with
  // AwaitFuel calls, not on the Tank's shared Acquire stream (which has no
  // such check); grants kept from earlier are handed out first. A timeout
  // that is infinite, or zero or less, behaves as in AwaitFuel (nothing
  // can be late). Degradation applies as in AwaitFuel; under local share a
  // wait whose next local grant is due after the timeout is kTooLate at
  // once, its expected_wait the time until that grant.
  FuelResult AwaitFuelUnlessLate(int64_t n, absl::Duration timeout)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Returns true once the throttle was seen stopped (the seed's kill_flag)
  // and no grant was received since, or once the Tank is closed. Never
  // blocks.
  bool killed() const ABSL_LOCKS_EXCLUDED(mu_);

  // Takes one grant if one is available right now: from grants kept from an
  // earlier AwaitFuel (see above), else from the server (which says no while
  // other workers wait in AwaitFuel). Returns false if none is available or the
  // throttle is stopped (then killed() becomes true). Returns the call's
  // error otherwise (NOT_FOUND, UNAVAILABLE, DEADLINE_EXCEEDED after
  // TankOptions::unary_deadline, CANCELLED when the Tank is closed). Blocks
  // for one round trip.
  absl::StatusOr<bool> HasFuel() ABSL_LOCKS_EXCLUDED(mu_);

  // HasFuel() that also says when to try again: FuelCheck::retry_after
  // when no grant was free. The same errors as HasFuel().
  absl::StatusOr<FuelCheck> CheckFuel() ABSL_LOCKS_EXCLUDED(mu_);

  // Reports `n` emissions to a throttle created with manual_emit (the seed's
  // auto_emit=False). `n` must be in [1, 1000000]. Returns
  // FAILED_PRECONDITION if the throttle counts at grant time or is not
  // running, INVALID_ARGUMENT for a bad `n`, CANCELLED when the Tank is
  // closed, or the call's error. Blocks for one round trip.
  absl::Status Emit(int64_t n = 1) ABSL_LOCKS_EXCLUDED(mu_);

  // Reports how the worker's work went downstream to a throttle with an
  // adaptive ceiling (config.adaptive): `successes` accepted, `rejections`
  // rejected or failed since the last report, each in [0, 1000000].
  // Returns the throttle's max_n in effect (current_max_n), or
  // FAILED_PRECONDITION if the throttle is not adaptive or was never
  // started, INVALID_ARGUMENT for a bad count, CANCELLED when the Tank is
  // closed, or the call's error. Blocks for one round trip.
  absl::StatusOr<int64_t> Report(int64_t successes, int64_t rejections)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Closes the Tank: every call in flight, and every later call at once,
  // fails with CANCELLED and the message "throttle::Tank is closed"
  // (AwaitFuel: kError with that status); killed() becomes true so that the
  // seed's loop ends. Permanent; closing again does nothing. Never blocks.
  // The same as Close() of the Python and Node clients (docs/clients.md).
  void Close();

  // The same as Close() (its earlier name).
  void Cancel() { Close(); }

  // The throttle's name.
  const std::string& throttle() const { return throttle_; }

 private:
  // Outcome of one AwaitFuel call to the server.
  struct Attempt {
    int64_t grants = 0;
    v1::EndReason end = v1::END_REASON_UNSPECIFIED;
    absl::Duration expected_wait;  // with END_REASON_TOO_LATE
    grpc::Status status;
  };

  // Waits with AwaitFuel calls for the `n - got` grants still missing, as
  // AwaitFuel(n, timeout) says, calling again after UNAVAILABLE; with
  // `fail_if_late`, as AwaitFuelUnlessLate says.
  FuelResult AwaitWithCalls(int64_t n, int64_t got, absl::Time deadline,
                            bool finite, bool fail_if_late = false)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Makes one AwaitFuel call for `count` grants that ends at `deadline` (on
  // options_.clock) at the latest, telling the Tank's degradation state
  // what it heard.
  Attempt CallAwaitFuel(int64_t count, absl::Time deadline, bool finite,
                        bool fail_if_late, bool wait_for_ready);

  // `status` of a call, or the "closed" error if it was cancelled by
  // Close().
  absl::Status CallError(const grpc::Status& status) const;

  const std::string throttle_;
  const TankOptions options_;
  const std::shared_ptr<grpc::ChannelInterface> channel_;
  const std::unique_ptr<v1::Throttle::Stub> stub_;
  // The calls in flight, for Close().
  const std::unique_ptr<CallRegistry> calls_;
  // The Acquire stream, its waiters, the grants kept for later and the
  // kill flag. Destroyed before calls_.
  const std::unique_ptr<AcquireStream> acquire_;

  mutable absl::Mutex mu_;
  // Jitter of the reconnection delays of AwaitFuel calls.
  absl::BitGen gen_ ABSL_GUARDED_BY(mu_);
};

}  // namespace throttle

#endif  // THROTTLE_TANK_H_
