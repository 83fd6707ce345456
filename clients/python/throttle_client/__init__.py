"""throttle_client: Python client of the shared throttle service.

A thin hand-written layer over the gRPC code generated from
proto/throttle/v1/throttle.proto (clients/python/generate.sh), with the API
of the Python library mp_throttle:

    from throttle_client import Throttle

    throttle = Throttle("127.0.0.1:50051", "crawl")
    throttle.create(4, 1)              # the seed's Throttle(4, 1)
    # in each worker process:
    while not throttle.kill_flag.is_set():
        throttle.await_fuel()
        work()
    # in the controller:
    throttle.start(); time.sleep(5)
    runtime, total, between, per_second = throttle.stop()

Errors raise ThrottleError, whose .code is the grpc.StatusCode.
"""
from .backoff import Backoff
from .client import (KillFlag, LatestStats, MeanStats, StopStats, Throttle,
                     ThrottleInfo, channel_options)
from .errors import ThrottleError

__all__ = [
    "Backoff", "KillFlag", "LatestStats", "MeanStats", "StopStats",
    "Throttle", "ThrottleError", "ThrottleInfo", "channel_options"
]
