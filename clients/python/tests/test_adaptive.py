"""The adaptive ceiling through the Python client against the real server:
create() with an Adaptive (defaults filled in when listed), report() of
outcomes moving the rate (ThrottleInfo.current_max_n, and latest()'s
with include_workers), update() of
adaptive alone, and the errors: FAILED_PRECONDITION on a throttle that is
not adaptive, INVALID_ARGUMENT naming the count, TypeError for an adaptive
that is neither an Adaptive nor a dict. Waits are on conditions with
generous deadlines.
"""
import unittest

import grpc

from support import ServerTestCase, wait_for

from throttle_client import Adaptive, ThrottleError


class AdaptiveCeiling(ServerTestCase):

    def test_defaults_are_filled_in_and_the_rate_starts_at_max_n(self):
        t = self.throttle("adaptive-defaults")
        info = t.create(100, 1, adaptive=Adaptive())
        self.assertEqual(info.adaptive,
                         Adaptive(1, 0.05, 1.0, 1, 0.5, 10))
        self.assertEqual(info.current_max_n, 100)
        plain = self.throttle("adaptive-none")
        self.assertIsNone(plain.create(100, 1).adaptive)

    def test_reported_rejections_lower_the_rate(self):
        t = self.throttle("adaptive-report")
        t.create(100, 1, adaptive={"floor_n": 10, "window": 0.1,
                                   "decrease_factor": 0.5,
                                   "min_outcomes": 1})
        t.start()
        self.assertEqual(t.report(rejections=10), 100)
        # The window of 100 ms ends: the server halves the rate.
        self.assertTrue(wait_for(lambda: t.info().current_max_n == 50))
        self.assertEqual(t.info().max_n, 100)  # the ceiling stays

    def test_latest_with_workers_gives_the_rate_in_effect(self):
        t = self.throttle("adaptive-latest")
        t.create(100, 1, adaptive={"floor_n": 10, "window": 0.1,
                                   "decrease_factor": 0.5,
                                   "min_outcomes": 1})
        t.start()
        self.assertEqual(t.latest(include_workers=True).current_max_n, 100)
        t.report(rejections=10)
        self.assertTrue(wait_for(
            lambda: t.latest(include_workers=True).current_max_n == 50))
        self.assertEqual(len(t.latest()), 2)  # the seed's tuple stays

    def test_update_of_adaptive_alone(self):
        t = self.throttle("adaptive-update")
        t.create(100, 1, mode="window")
        info = t.update(adaptive=Adaptive(floor_n=20))
        self.assertEqual(info.adaptive.floor_n, 20)
        self.assertEqual(info.mode, "window")
        self.assertIsNone(t.update(adaptive=None).adaptive)

    def test_errors(self):
        plain = self.throttle("adaptive-plain")
        plain.create(100, 1)
        plain.start()
        with self.assertRaises(ThrottleError) as raised:
            plain.report(successes=1)
        self.assertEqual(raised.exception.code,
                         grpc.StatusCode.FAILED_PRECONDITION)
        t = self.throttle("adaptive-bad")
        t.create(100, 1, adaptive=Adaptive(min_outcomes=1))
        t.start()
        with self.assertRaises(ThrottleError) as raised:
            t.report(successes=-1)
        self.assertEqual(raised.exception.code,
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("successes must be in [0, 1000000], got -1",
                      raised.exception.details)
        with self.assertRaises(ThrottleError) as raised:
            self.throttle("adaptive-floor").create(
                100, 1, adaptive=Adaptive(floor_n=200))
        self.assertIn("config.adaptive.floor_n", raised.exception.details)
        with self.assertRaises(TypeError):
            self.throttle("adaptive-type").create(100, 1, adaptive=5)


if __name__ == "__main__":
    unittest.main()
