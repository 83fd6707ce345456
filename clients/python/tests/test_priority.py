"""Priorities against the real server: two workers of different classes
(Throttle(priority=...)) wait on one throttle; when it starts, the higher
class gets the fuel first and the lower one the grant after; a bad class is
INVALID_ARGUMENT naming it."""
import unittest

import grpc

from support import (GENEROUS, ServerTestCase, await_fuel_in_thread,
                     await_waiting)  # also sets sys.path

from throttle_client import FuelOutcome, ThrottleError

# One grant per this many seconds: the lower class's comes that long after
# the higher class's, so the order is plain on a loaded machine too.
PER = 5.0


class PriorityTest(ServerTestCase):

    def test_the_higher_class_gets_the_fuel_while_both_wait(self):
        low = self.throttle("prio", worker_id="low", priority=0)
        high = self.throttle("prio", worker_id="high", priority=7)
        low.create(1, PER)
        # Both wait before the throttle starts, the lower class first.
        low_thread, low_outcome = await_fuel_in_thread(low)
        self.assertTrue(await_waiting(low, 1))
        high_thread, high_outcome = await_fuel_in_thread(high)
        self.assertTrue(await_waiting(low, 2))
        low.start()
        high_thread.join(GENEROUS)
        self.assertEqual(high_outcome, [FuelOutcome.FUEL])
        # The grant was the higher class's: the lower one still waits.
        self.assertEqual(low_outcome, [])
        self.assertEqual(low.info().waiting_streams, 1)
        low_thread.join(GENEROUS + PER)
        self.assertEqual(low_outcome, [FuelOutcome.FUEL])
        self.assertEqual(low.info().total_emissions, 2)

    def test_the_starvation_bound_is_created_listed_and_updated(self):
        t = self.throttle("prio_bound")
        self.assertEqual(t.create(10, 1.0, starvation_bound=2.5)
                         .starvation_bound, 2.5)
        self.assertEqual(t.info().starvation_bound, 2.5)
        info = t.update(starvation_bound=4)
        self.assertEqual((info.starvation_bound, info.max_n), (4.0, 10))
        self.assertEqual(t.update(starvation_bound=None).starvation_bound,
                         0.0)
        with self.assertRaises(ThrottleError) as caught:
            t.update(starvation_bound=-1)
        self.assertEqual(caught.exception.code,
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("config.starvation_bound", caught.exception.details)

    def test_a_bad_class_is_invalid_argument_naming_it(self):
        t = self.throttle("prio_bad", priority=10)
        t.create(10, 1.0)
        t.start()
        with self.assertRaises(ThrottleError) as caught:
            t.await_fuel(timeout=GENEROUS)
        self.assertEqual(caught.exception.code,
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("priority must be in [0, 9], got 10",
                      caught.exception.details)


if __name__ == "__main__":
    unittest.main()
