"""Deadline-aware admission against the real server: await_fuel(...,
fail_if_late=True) returns TOO_LATE at once -- well before its timeout --
when the next grant is an hour away, await_fuel_n says the expected wait
(and keeps the grants it got before), check_fuel() gives the retry-after;
where the grant is near, a fail_if_late wait gets it."""
import time
import unittest

from support import GENEROUS, ServerTestCase  # also sets sys.path

from throttle_client import FuelCheck, FuelOutcome, FuelResult

HOUR = 3600.0
# A timeout the hour-away grant cannot meet, and long enough that waiting it
# out would show.
TIMEOUT = 30.0


class AdmissionTest(ServerTestCase):

    def hourly(self, name):
        """A running throttle of one grant an hour."""
        t = self.throttle(name)
        t.create(1, HOUR)
        t.start()
        return t

    def test_too_late_is_told_at_once_with_the_expected_wait(self):
        t = self.hourly("hourly")
        self.assertIs(t.await_fuel(timeout=TIMEOUT), FuelOutcome.FUEL)
        started = time.monotonic()
        outcome = t.await_fuel(timeout=TIMEOUT, fail_if_late=True)
        self.assertIs(outcome, FuelOutcome.TOO_LATE)
        self.assertTrue(outcome.too_late)
        self.assertFalse(outcome)
        result = t.await_fuel_n(1, timeout=TIMEOUT, fail_if_late=True)
        self.assertLess(time.monotonic() - started, TIMEOUT)
        self.assertIsInstance(result, FuelResult)
        self.assertEqual(result, (FuelOutcome.TOO_LATE, 0))
        self.assertTrue(result.too_late)
        self.assertGreater(result.expected_wait, HOUR - 60)
        self.assertLessEqual(result.expected_wait, HOUR)
        self.assertFalse(t.kill_flag.is_set())
        self.assertEqual(t.info().total_emissions, 1)

    def test_the_check_repeats_after_each_grant(self):
        t = self.hourly("hourly_n")
        # The first of two is free, the second an hour on.
        result = t.await_fuel_n(2, timeout=TIMEOUT, fail_if_late=True)
        self.assertEqual(result, (FuelOutcome.TOO_LATE, 1))
        self.assertGreater(result.expected_wait, HOUR - 60)
        self.assertEqual(t.info().total_emissions, 1)

    def test_check_fuel_gives_the_retry_after(self):
        t = self.hourly("hourly_check")
        first = t.check_fuel()
        self.assertIsInstance(first, FuelCheck)
        self.assertEqual(first, (True, False, None))
        later = t.check_fuel()
        self.assertFalse(later.granted)
        self.assertFalse(later.stopped)
        self.assertGreater(later.retry_after, HOUR - 60)
        self.assertLessEqual(later.retry_after, HOUR)
        self.assertFalse(t.has_fuel())
        t.stop()
        self.assertEqual(t.check_fuel(), (False, True, None))

    def test_a_near_grant_is_waited_for(self):
        t = self.throttle("fast")
        t.create(100, 1.0)
        t.start()
        for _ in range(5):
            self.assertIs(t.await_fuel(timeout=GENEROUS, fail_if_late=True),
                          FuelOutcome.FUEL)
        self.assertEqual(
            t.await_fuel_n(3, timeout=GENEROUS, fail_if_late=True),
            (FuelOutcome.FUEL, 3))


if __name__ == "__main__":
    unittest.main()
