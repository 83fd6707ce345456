"""Throttle.watch() (throttle_client/watch.py) against the real server: the
first snapshot at once, then about one per interval; a stop shows state
stopped with changed=True; a delete ends the watch with NOT_FOUND; a bad
interval is INVALID_ARGUMENT naming it; close() ends a next() blocked in
another thread and frees the stream on the server; Throttle.close() ends
it with CANCELLED; a watch goes on across a server restart. Waits are on
conditions with generous deadlines, never on exact timing.
"""
import datetime
import subprocess
import sys
import threading
import time
import unittest

import grpc

from support import (GENEROUS, Server, ServerTestCase, free_ports,
                     wait_for)

from throttle_client import Snapshot, ThrottleError

Code = grpc.StatusCode


def next_in_thread(watch):
    """Runs next(watch) in a thread. Returns (thread, result): result gets
    the Snapshot, "stop" for StopIteration, or the ThrottleError."""
    result = []

    def run():
        try:
            result.append(next(watch))
        except StopIteration:
            result.append("stop")
        except ThrottleError as error:
            result.append(error)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, result


class Watching(ServerTestCase):

    def running(self, name, max_n=5, per=1):
        t = self.throttle(name)
        t.create(max_n, per)
        t.start()
        return t

    def watch(self, throttle, **kwargs):
        watch = throttle.watch(**kwargs)
        self.addCleanup(watch.close)
        return watch

    def test_first_snapshot_comes_at_once_with_the_throttle_as_it_is(self):
        t = self.running("first", max_n=7, per=2)
        watch = self.watch(t, interval=0.2)
        snapshot = next(watch)
        self.assertIsInstance(snapshot, Snapshot)
        self.assertEqual(snapshot.info.name, "first")
        self.assertEqual(snapshot.info.state, "running")
        self.assertEqual(snapshot.info.max_n, 7)
        self.assertEqual(snapshot.info.per, 2)
        self.assertFalse(snapshot.changed)
        self.assertIsNotNone(snapshot.time.tzinfo)
        now = datetime.datetime.now(datetime.timezone.utc)
        self.assertLess(abs((now - snapshot.time).total_seconds()), GENEROUS)
        # The window defaults to the interval.
        self.assertAlmostEqual(snapshot.message.latest.window_seconds, 0.2)

    def test_snapshots_follow_the_interval(self):
        t = self.running("paced")
        watch = self.watch(t, interval=datetime.timedelta(milliseconds=200),
                           window=1)
        first = next(watch)
        self.assertAlmostEqual(first.message.latest.window_seconds, 1.0)
        times = [first.time]
        for _ in range(5):
            snapshot = next(watch)
            self.assertFalse(snapshot.changed)
            times.append(snapshot.time)
        gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:])]
        # By the server's clock the k-th is due k intervals after the watch
        # was filed (so one sent late is followed by a shorter gap); the
        # first may be taken a little after that. Load only delays them.
        self.assertTrue(all(gap > 0 for gap in gaps), gaps)
        self.assertGreaterEqual(sum(gaps), 5 * 0.2 - 0.1, gaps)
        self.assertLess(sum(gaps), GENEROUS, gaps)

    def test_a_stop_shows_state_stopped_marked_changed(self):
        t = self.running("stopping")
        watch = self.watch(t, interval=60)  # only changes come soon
        self.assertEqual(next(watch).info.state, "running")
        t.stop()
        snapshot = next(watch)
        self.assertTrue(snapshot.changed)
        self.assertEqual(snapshot.info.state, "stopped")
        t.update(max_n=9)
        snapshot = next(watch)
        self.assertTrue(snapshot.changed)
        self.assertEqual(snapshot.info.max_n, 9)

    def test_a_delete_ends_the_watch_with_not_found(self):
        t = self.running("deleted")
        watch = self.watch(t, interval=60)
        next(watch)
        t.delete()
        with self.assertRaises(ThrottleError) as raised:
            next(watch)
        self.assertEqual(raised.exception.code, Code.NOT_FOUND)
        self.assertIn("deleted", raised.exception.details)
        with self.assertRaises(StopIteration):
            next(watch)  # exhausted

    def test_an_unknown_throttle_is_not_found(self):
        watch = self.watch(self.throttle("nobody"))
        with self.assertRaises(ThrottleError) as raised:
            next(watch)
        self.assertEqual(raised.exception.code, Code.NOT_FOUND)
        self.assertIn("nobody", raised.exception.details)

    def test_a_bad_interval_is_invalid_argument_naming_it(self):
        t = self.running("bad")
        watch = self.watch(t, interval=0.01)
        with self.assertRaises(ThrottleError) as raised:
            next(watch)
        self.assertEqual(raised.exception.code, Code.INVALID_ARGUMENT)
        self.assertIn("interval", raised.exception.details)
        with self.assertRaises(TypeError):
            t.watch(interval="1s")
        with self.assertRaises(ValueError):
            t.watch(window=float("inf"))

    def test_close_ends_a_blocked_next(self):
        t = self.running("closed")
        watch = t.watch(interval=60)
        next(watch)
        thread, result = next_in_thread(watch)
        watch.close()
        thread.join(GENEROUS)
        self.assertFalse(thread.is_alive())
        self.assertEqual(result, ["stop"])
        with self.assertRaises(StopIteration):
            next(watch)

    def test_the_throttles_close_ends_the_watch_with_cancelled(self):
        t = self.running("owner")
        watch = self.watch(t, interval=60)
        next(watch)
        thread, result = next_in_thread(watch)
        t.close()
        thread.join(GENEROUS)
        self.assertFalse(thread.is_alive())
        self.assertEqual(len(result), 1)
        self.assertIsInstance(result[0], ThrottleError)
        self.assertEqual(result[0].code, Code.CANCELLED)
        self.assertEqual(result[0].details,
                         "throttle_client.Throttle is closed")

    def test_a_process_with_an_open_watch_exits(self):
        # A watch left open (never closed) does not keep the interpreter
        # from exiting: no thread of ours outlives main.
        t = self.running("exiting")
        script = (
            "from throttle_client import Throttle\n"
            f"t = Throttle({self.server.address!r}, 'exiting')\n"
            "w = t.watch(interval=60)\n"
            "print(next(w).info.state, flush=True)\n")
        done = subprocess.run([sys.executable, "-c", script],
                              capture_output=True, text=True,
                              timeout=GENEROUS)
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(done.stdout.strip(), "running")
        t.stop()


def first_or_error(watch):
    """next(watch), or the code of the ThrottleError it raised."""
    try:
        return next(watch)
    except ThrottleError as error:
        return error.code


class StreamLimit(unittest.TestCase):

    def test_close_frees_the_stream_on_the_server(self):
        # One stream in all: a watch holds it, a second is refused, and
        # once the first is closed a new one gets it.
        server = Server("--max_streams=1",
                        "--throttle=limited max_n=10 per=1").start()
        self.addCleanup(server.close)
        from throttle_client import Throttle
        t = Throttle(server.address, "limited")
        self.addCleanup(t.close)
        first = t.watch(interval=60)
        self.addCleanup(first.close)
        self.assertEqual(next(first).info.name, "limited")
        with t.watch(interval=60) as second:
            self.assertEqual(first_or_error(second),
                             Code.RESOURCE_EXHAUSTED)
        first.close()
        opened = []

        def reopened():
            with t.watch(interval=60) as again:
                opened.append(first_or_error(again))
            return isinstance(opened[-1], Snapshot)

        self.assertTrue(wait_for(reopened, interval=0.05), opened[-5:])


class Backoff(unittest.TestCase):
    """Nothing listens: each stream fails UNAVAILABLE at once and the
    watch sleeps out an hour's backoff, which a close must end."""

    def sleeping(self):
        from throttle_client import Throttle
        t = Throttle(f"127.0.0.1:{free_ports(1)[0]}", "away",
                     backoff_initial=3600, backoff_max=3600)
        self.addCleanup(t.close)
        watch = t.watch()
        self.addCleanup(watch.close)
        thread, result = next_in_thread(watch)
        thread.join(0.2)
        self.assertTrue(thread.is_alive())  # not ended by the failure
        return t, watch, thread, result

    def test_close_ends_the_backoff(self):
        _, watch, thread, result = self.sleeping()
        watch.close()
        thread.join(GENEROUS)
        self.assertFalse(thread.is_alive())
        self.assertEqual(result, ["stop"])

    def test_the_throttles_close_ends_the_backoff(self):
        t, _, thread, result = self.sleeping()
        t.close()
        thread.join(GENEROUS)
        self.assertFalse(thread.is_alive())
        self.assertEqual(len(result), 1)
        self.assertIsInstance(result[0], ThrottleError)
        self.assertEqual(result[0].code, Code.CANCELLED)


class Restart(unittest.TestCase):

    def test_the_watch_goes_on_across_a_server_restart(self):
        server = Server("--throttle=restart max_n=10 per=1").start()
        self.addCleanup(server.close)
        from throttle_client import Throttle
        t = Throttle(server.address, "restart", backoff_initial=0.05,
                     backoff_max=0.5)
        self.addCleanup(t.close)
        watch = t.watch(interval=0.2)
        self.addCleanup(watch.close)
        self.assertEqual(next(watch).info.name, "restart")
        server.stop()
        server.start()  # the same port; the throttle comes from the flag

        def started():
            try:
                t.start()
                return True
            except ThrottleError as error:
                self.assertEqual(error.code, Code.UNAVAILABLE, error)
                return False

        self.assertTrue(wait_for(started, interval=0.05))
        # Snapshots of the old server may still be queued; the new one's
        # throttle is running (the old one's never was).
        deadline = time.monotonic() + GENEROUS
        while time.monotonic() < deadline:
            if next(watch).info.state == "running":
                break
        else:
            self.fail("no snapshot of the restarted server")


if __name__ == "__main__":
    unittest.main()
