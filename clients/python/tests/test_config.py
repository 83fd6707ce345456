"""catch_up and warm_up through the Python client against the real server:
given in seconds or as a timedelta to create() and configure(), listed in
ThrottleInfo.catch_up (and warm_up, warm_up_from) with the server's default
filled in when unset; a value out of range is INVALID_ARGUMENT naming the
field; what is not a finite duration is refused by the client. update()
changes only the settings given (ConfigureThrottleRequest.update_mask),
configure() replaces the config whole.
"""
import datetime
import unittest

import grpc

from support import ServerTestCase

from throttle_client import ThrottleError


class CatchUp(ServerTestCase):

    def test_given_in_seconds_or_as_a_timedelta_and_listed(self):
        t = self.throttle("catch-up")
        self.assertAlmostEqual(t.create(10, 1, catch_up=0.05).catch_up, 0.05)
        self.assertAlmostEqual(t.info().catch_up, 0.05)
        info = t.configure(10, 1,
                           catch_up=datetime.timedelta(milliseconds=20))
        self.assertAlmostEqual(info.catch_up, 0.02)
        self.assertEqual(t.configure(10, 1, catch_up=0).catch_up, 0.0)
        listed = {i.name: i for i in t.list_throttles()}
        self.assertEqual(listed["catch-up"].catch_up, 0.0)

    def test_unset_is_the_servers_default(self):
        # 1% of per, at least one grant's spacing (per / max_n).
        t = self.throttle("catch-up-default")
        self.assertAlmostEqual(t.create(10, 1).catch_up, 0.1)
        self.assertAlmostEqual(t.configure(1000, 2).catch_up, 0.02)
        # configure() replaces the config whole: unset is the default again.
        t.configure(1000, 2, catch_up=0.5)
        self.assertAlmostEqual(t.configure(1000, 2).catch_up, 0.02)

    def test_outside_zero_to_per_is_invalid_argument(self):
        t = self.throttle("catch-up-bad")
        for bad in (1.5, -0.1, datetime.timedelta(seconds=-1)):
            with self.assertRaises(ThrottleError) as raised:
                t.create(10, 1, catch_up=bad)
            self.assertEqual(raised.exception.code,
                             grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn("catch_up", raised.exception.details)

    def test_what_is_not_a_finite_duration_is_refused_by_the_client(self):
        t = self.throttle("catch-up-type")
        for bad in (float("nan"), float("inf")):
            with self.assertRaises(ValueError):
                t.create(10, 1, catch_up=bad)
        for bad in ("0.1", True):
            with self.assertRaises(TypeError):
                t.create(10, 1, catch_up=bad)


class PartialUpdate(ServerTestCase):

    def test_update_keeps_the_settings_not_given(self):
        # The case: max_n=200 on a bucket throttle with burst 20
        # turned it smooth. update() sends a mask of max_n only.
        t = self.throttle("partial")
        t.create(100, 60, mode="bucket", burst=20, manual_emit=True,
                 catch_up=0.5)
        info = t.update(max_n=200)
        self.assertEqual(info.max_n, 200)
        self.assertEqual(info.per, 60)
        self.assertEqual(info.mode, "bucket")
        self.assertEqual(info.burst, 20)
        self.assertTrue(info.manual_emit)
        self.assertAlmostEqual(info.catch_up, 0.5)
        self.assertEqual(t.info(), info)
        # catch_up=None is in the mask: the server's default again.
        self.assertAlmostEqual(t.update(catch_up=None).catch_up, 0.6)
        self.assertEqual(t.info().burst, 20)

    def test_a_mode_switch_drops_the_burst_unless_given(self):
        t = self.throttle("partial-mode")
        t.create(100, 60, mode="bucket", burst=20)
        info = t.update(mode="smooth")
        self.assertEqual((info.mode, info.burst, info.max_n),
                         ("smooth", 0, 100))
        with self.assertRaises(ThrottleError) as raised:
            t.update(mode="window", burst=5)
        self.assertEqual(raised.exception.code,
                         grpc.StatusCode.INVALID_ARGUMENT)
        self.assertIn("burst", raised.exception.details)
        self.assertEqual(t.info().mode, "smooth")  # unchanged

    def test_update_without_a_setting_is_a_type_error(self):
        t = self.throttle("partial-none")
        t.create(1, 1)
        with self.assertRaises(TypeError):
            t.update()
        with self.assertRaises(TypeError):
            t.update(maxN=3)

    def test_configure_still_replaces_the_config_whole(self):
        t = self.throttle("partial-whole")
        t.create(100, 60, mode="bucket", burst=20)
        info = t.configure(200, 60)
        self.assertEqual((info.mode, info.burst), ("smooth", 0))


class WarmUp(ServerTestCase):

    def test_given_in_seconds_or_as_a_timedelta_and_listed(self):
        t = self.throttle("warm")
        info = t.create(100, 1, warm_up=30)
        self.assertEqual(info.warm_up, 30.0)
        self.assertAlmostEqual(info.warm_up_from, 1 / 3)  # the default
        self.assertEqual(t.info(), info)
        info = t.configure(100, 1, warm_up=datetime.timedelta(seconds=1.5),
                           warm_up_from=0.5)
        self.assertEqual((info.warm_up, info.warm_up_from), (1.5, 0.5))
        # Without a warm-up both are 0.
        info = t.configure(100, 1)
        self.assertEqual((info.warm_up, info.warm_up_from), (0.0, 0.0))

    def test_update_changes_only_the_warm_up_fields_given(self):
        t = self.throttle("warm-partial")
        t.create(100, 60, mode="bucket", burst=20, warm_up=10,
                 warm_up_from=0.25)
        info = t.update(warm_up_from=0.5)
        self.assertEqual((info.warm_up, info.warm_up_from, info.burst),
                         (10.0, 0.5, 20))
        info = t.update(warm_up=None)  # in the mask, unset: no warm-up
        self.assertEqual((info.warm_up, info.mode, info.burst),
                         (0.0, "bucket", 20))

    def test_a_bad_value_is_invalid_argument_naming_field_and_value(self):
        t = self.throttle("warm-bad")
        for settings, text in [
            (dict(warm_up=-1), "warm_up must be in [0, 30 days], got -1s"),
            (dict(warm_up=31 * 86400),
             "warm_up must be in [0, 30 days], got 744h"),
            (dict(warm_up=5, warm_up_from=1.5), "got 1.5"),
            (dict(warm_up=5, warm_up_from=-0.1), "got -0.1"),
        ]:
            with self.assertRaises(ThrottleError) as raised:
                t.create(10, 1, **settings)
            self.assertEqual(raised.exception.code,
                             grpc.StatusCode.INVALID_ARGUMENT)
            self.assertIn(text, raised.exception.details)
            self.assertIn("warm_up", raised.exception.details)
        # Refused by the client: not a finite duration, not a number.
        with self.assertRaises(ValueError):
            t.create(10, 1, warm_up=float("inf"))
        with self.assertRaises(TypeError):
            t.create(10, 1, warm_up=5, warm_up_from="half")


if __name__ == "__main__":
    unittest.main()
