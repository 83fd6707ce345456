"""throttle_client: Python client of the shared throttle service.

A thin hand-written layer over the gRPC code generated from
proto/throttle/v1/throttle.proto (clients/python/generate.sh), with the API
of the Python library mp_throttle:

    import time
    from throttle_client import Throttle

    def work():
        pass

    throttle = Throttle("127.0.0.1:50051", "crawl")
    throttle.create(4, 1)              # the seed's Throttle(4, 1)
    # in each worker process:
    while not throttle.kill_flag.is_set():
        if throttle.await_fuel():      # FuelOutcome.FUEL; else STOPPED or
            work()                     # TIMED_OUT (.stopped, .timed_out)
    # or 10 grants at once: FuelResult(outcome, grants), true if all came
    grants = throttle.await_fuel_n(10, timeout=5).grants
    # in the controller:
    throttle.start(); time.sleep(5)
    runtime, total, between, per_second = throttle.stop()
    with throttle.watch(interval=2) as watch:   # a live view (watch.py)
        for snapshot in watch:                  # first at once, then each
            print(snapshot.info.state, snapshot.latest.per_second)  # 2 s
    throttle.close()                   # every later call: CANCELLED

Errors raise ThrottleError, whose .code is the grpc.StatusCode.

TLS, mTLS and bearer tokens: Throttle(..., security=ChannelSecurity(
ca_file=, cert_file=, key_file=, token= or token_file=, server_name=)), or
the environment variables THROTTLE_TLS_CA, THROTTLE_TLS_CERT,
THROTTLE_TLS_KEY, THROTTLE_TOKEN, THROTTLE_TOKEN_FILE,
THROTTLE_TLS_SERVER_NAME when no security is given (see security.py).
"""
from .backoff import Backoff
from .client import (Adaptive, KillFlag, LatestStats, LatestWorkers, MeanStats,
                     MeanWorkers, StopStats, Throttle, ThrottleInfo,
                     WorkerStats, channel_options)
from .errors import ThrottleError
from .outcome import FuelCheck, FuelOutcome, FuelResult
from .security import ChannelSecurity
from .watch import Snapshot, Watch

__all__ = [
    "Adaptive", "Backoff", "ChannelSecurity", "FuelCheck", "FuelOutcome", "FuelResult",
    "KillFlag", "LatestStats", "LatestWorkers", "MeanStats", "MeanWorkers",
    "Snapshot", "StopStats", "Throttle", "ThrottleError", "ThrottleInfo",
    "Watch", "WorkerStats", "channel_options"
]
