// `throttlectl watch NAME`: opens the WatchThrottle stream and shows each
// snapshot (cli/watch_view.h draws them): redrawn in place on a terminal,
// one line per snapshot otherwise. Ctrl-C (SIGINT) or SIGTERM ends it.
#ifndef THROTTLE_CLI_WATCH_H_
#define THROTTLE_CLI_WATCH_H_

#include "cli/throttlectl.h"
#include "throttle/v1/throttle.grpc.pb.h"

namespace throttle::cli {

// Blocks SIGINT and SIGTERM in the calling thread, so that every thread
// started after it (gRPC's too) leaves them to RunWatch's signal thread.
// Call it first in main, before a channel exists.
void BlockStopSignals();

// Runs the watch of `invocation` over `stub` until Ctrl-C (returns 0), the
// throttle is not there or is deleted (NOT_FOUND: says so, returns 1), or
// another error (returns 1). UNAVAILABLE (the server restarting or out of
// reach), and a CANCELLED it did not cause (a server shutting down), are
// retried with a backoff from 0.5 s to 8 s, said on screen.
// Redraws on stdout when it is a terminal, else writes a line per
// snapshot. Blocks; BlockStopSignals must have been called.
int RunWatch(const Invocation& invocation, v1::Throttle::StubInterface& stub);

}  // namespace throttle::cli

#endif  // THROTTLE_CLI_WATCH_H_
