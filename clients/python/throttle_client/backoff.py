"""Reconnection delays: exponential backoff with jitter.

The first delay is `initial`, it doubles after each attempt up to `maximum`,
and each is multiplied by a random factor in [0.8, 1.2) so that workers that
lost the same server do not all return at the same moment. The same policy
as the C++ library (client-lib/src/backoff.h).
"""
import random


class Backoff:
    def __init__(self, initial=0.05, maximum=2.0, rng=None):
        self._initial = max(initial, 0.001)
        self._maximum = max(maximum, self._initial)
        self._base = self._initial
        self._rng = rng or random.Random()

    def next_delay(self):
        """Returns the delay in seconds before the next attempt."""
        delay = self._base * self._rng.uniform(0.8, 1.2)
        self._base = min(self._base * 2, self._maximum)
        return delay

    def reset(self):
        self._base = self._initial
