"""Helpers of the Python client's tests: the real throttle_server binary on
127.0.0.1:0 and worker processes, all cleaned up by the test.

Environment (set by clients/python/run_tests.sh):
  THROTTLE_SERVER        path of throttle_server (required)
  THROTTLE_TEST_WORKER   path of the C++ tests/test_worker (mixed fleet)
  THROTTLE_SOURCE_ROOT   the repository (default: this file's ../../..)
  THROTTLE_PY_EXAMPLES   clients/python/examples or run_tests.sh's copy
  THROTTLE_ETCD          path of etcd (failover; default: etcd on PATH, else
                         /usr/bin/etcd)
  THROTTLECTL            path of cli/throttlectl (failover; set by
                         tests/polyglot.cmake)
  THROTTLE_MAKE_CERTS    path of tests/support/make_certs.sh (TLS; default:
                         found from this directory)
"""
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import unittest
import time
import urllib.request

# throttle_client is the installed package (run_tests.sh: a venv), never
# the source tree, which is not put on sys.path. run_tests.sh runs a copy of
# these tests and of examples/ outside the tree and names the repository
# (for clients/node and tests/support) in THROTTLE_SOURCE_ROOT.
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.environ.get("THROTTLE_SOURCE_ROOT") or os.path.dirname(
    os.path.dirname(os.path.dirname(HERE)))
CLIENTS = os.path.join(ROOT, "clients")
EXAMPLES = os.environ.get("THROTTLE_PY_EXAMPLES") or os.path.join(
    CLIENTS, "python", "examples")


SERVER = os.environ.get("THROTTLE_SERVER", "")
TEST_WORKER = os.environ.get("THROTTLE_TEST_WORKER", "")
THROTTLECTL = os.environ.get("THROTTLECTL", "")
MAKE_CERTS = os.environ.get("THROTTLE_MAKE_CERTS") or os.path.join(
    os.path.dirname(CLIENTS), "tests", "support", "make_certs.sh")
# Deadline of every wait on a condition: generous, for a loaded 2-core box.
GENEROUS = 60.0


def wait_for(condition, timeout=GENEROUS, interval=0.02):
    """Polls condition() until it is true; returns False after timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


class ServerTestCase(unittest.TestCase):
    """One real server for the whole test class; throttles made with
    self.throttle() are closed after each test."""

    @classmethod
    def setUpClass(cls):
        cls.server = Server().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.close()

    def throttle(self, name, **kwargs):
        from throttle_client import Throttle
        t = Throttle(self.server.address, name, **kwargs)
        self.addCleanup(t.close)
        return t


def await_fuel_in_thread(throttle, codes=True):
    """Runs throttle.await_fuel() in a thread. Returns (thread, outcome):
    outcome gets await_fuel's result, or the ThrottleError (its gRPC code
    when `codes`)."""
    from throttle_client import ThrottleError
    outcome = []

    def wait():
        try:
            outcome.append(throttle.await_fuel())
        except ThrottleError as error:
            outcome.append(error.code if codes else error)

    thread = threading.Thread(target=wait)
    thread.start()
    return thread, outcome


def await_waiting(throttle, n, timeout=GENEROUS):
    """Waits until n AwaitFuel streams wait on the throttle."""
    return wait_for(lambda: throttle.info().waiting_streams >= n, timeout)


class _LoggedProcess:
    """A child process with a log file in a temporary directory of its own:
    what Server and Etcd share. Subclasses set process, _tmp and log_path."""

    def _terminate(self, timeout):
        """SIGTERM, SIGKILL after `timeout` s; returns the exit code."""
        if self.process is None:
            return None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        code, self.process = self.process.returncode, None
        return code

    def log(self):
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def close(self):
        self.stop()
        self._tmp.cleanup()


class Server(_LoggedProcess):
    """throttle_server started on 127.0.0.1 (port 0 picks a free one).

    Use as a context manager; stop() sends SIGTERM and waits (SIGKILL after
    30 s). Its output goes to a log file in its temporary directory.
    """

    def __init__(self, *flags, port=0):
        if not SERVER:
            raise RuntimeError("THROTTLE_SERVER is not set")
        self.flags = list(flags)
        self.port = port
        self.process = None
        self._tmp = tempfile.TemporaryDirectory(prefix="throttle_pytest.")
        self.log_path = os.path.join(self._tmp.name, "server.log")

    @property
    def address(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        port_file = os.path.join(self._tmp.name, f"port.{time.time_ns()}")
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [SERVER, f"--listen=127.0.0.1:{self.port}",
             f"--port_file={port_file}"] + self.flags,
            stdout=log, stderr=subprocess.STDOUT)
        log.close()

        def reported():
            try:
                with open(port_file) as f:
                    self.port = int(f.read().strip() or 0)
                return self.port > 0
            except (OSError, ValueError):
                return self.process.poll() is not None

        if not wait_for(reported) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("throttle_server did not start:\n" + self.log())
        return self

    def stop(self):
        """SIGTERM and wait; returns the exit code."""
        return self._terminate(30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()


class UnavailableServer:
    """An in-process Throttle service on 127.0.0.1:0 whose AwaitFuel answers
    UNAVAILABLE ("shutting down") at once, as a server going down does, so
    that await_fuel keeps calling again. Records each call's wait limit in
    seconds (None when unset) in .wait_limits; on_call(n), if given, runs at
    the start of the n-th call (1, 2, ...). Acquire answers UNIMPLEMENTED,
    as a server older than Acquire does, or with acquire=True UNAVAILABLE
    too; .acquire_calls counts its calls. Other methods: UNIMPLEMENTED.
    close() stops it."""

    def __init__(self, on_call=None, acquire=False):
        from concurrent import futures

        import grpc
        from throttle_client._proto import pb_grpc

        self.wait_limits = []
        self.acquire_calls = 0
        lock = threading.Lock()
        limits = self.wait_limits
        outer = self

        class Servicer(pb_grpc.ThrottleServicer):
            def AwaitFuel(self, request, context):
                with lock:
                    limits.append(
                        request.wait_limit.ToTimedelta().total_seconds()
                        if request.HasField("wait_limit") else None)
                    n = len(limits)
                if on_call is not None:
                    on_call(n)
                context.abort(grpc.StatusCode.UNAVAILABLE, "shutting down")

            def Acquire(self, request_iterator, context):
                with lock:
                    outer.acquire_calls += 1
                if acquire:
                    context.abort(grpc.StatusCode.UNAVAILABLE,
                                  "shutting down")
                context.abort(grpc.StatusCode.UNIMPLEMENTED,
                              "Method not implemented!")

        self._server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        pb_grpc.add_ThrottleServicer_to_server(Servicer(), self._server)
        port = self._server.add_insecure_port("127.0.0.1:0")
        self._server.start()
        self.address = f"127.0.0.1:{port}"

    def close(self):
        self._server.stop(grace=None)


class WorkerProcess:
    """A worker process that prints "ready", "fuel" per grant and "stopped"
    (tests/test_worker and the example workers), output to a file."""

    def __init__(self, argv, output_path):
        self.output_path = output_path
        with open(output_path, "wb") as out:
            self.process = subprocess.Popen(argv, stdout=out,
                                            stderr=subprocess.STDOUT)

    def lines(self):
        with open(self.output_path, errors="replace") as f:
            return f.read().splitlines()

    def grants(self):
        return self.lines().count("fuel")

    def wait(self, timeout=GENEROUS):
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def free_ports(n):
    """n different TCP ports of 127.0.0.1 that are free now (held together
    while picked, so that they differ)."""
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def find_etcd():
    """The etcd binary: $THROTTLE_ETCD, else etcd on PATH, else
    /usr/bin/etcd; "" if there is none (as tests/support/etcd_process.cc)."""
    found = os.environ.get("THROTTLE_ETCD") or shutil.which("etcd")
    if not found and os.access("/usr/bin/etcd", os.X_OK):
        found = "/usr/bin/etcd"
    return found or ""


class Etcd(_LoggedProcess):
    """A single etcd member on free ports of 127.0.0.1, with the fast raft
    timings of tests/support/etcd_process.cc (--election-timeout=500
    --heartbeat-interval=50: a 1 s lease is granted as asked and its expiry
    seen within about 0.5 s). Its data and log are in a temporary directory.
    start() waits (up to GENEROUS) until /health answers true; close()
    stops it (SIGTERM, SIGKILL after 10 s) and removes the directory."""

    def __init__(self):
        self.binary = find_etcd()
        if not self.binary:
            raise RuntimeError("no etcd on PATH or at /usr/bin/etcd: install "
                               "etcd-server (scripts/setup.sh does)")
        self._tmp = tempfile.TemporaryDirectory(prefix="throttle_etcd.")
        self.log_path = os.path.join(self._tmp.name, "etcd.log")
        self.client_port = 0
        self.process = None

    @property
    def endpoint(self):
        return f"127.0.0.1:{self.client_port}"

    def start(self):
        for _ in range(3):  # fresh ports if another process took ours
            self.client_port, peer_port = free_ports(2)
            client = f"http://127.0.0.1:{self.client_port}"
            peer = f"http://127.0.0.1:{peer_port}"
            self.process = subprocess.Popen(
                [self.binary, "--name=s1",
                 "--data-dir=" + os.path.join(self._tmp.name, "data"),
                 "--listen-client-urls=" + client,
                 "--advertise-client-urls=" + client,
                 "--listen-peer-urls=" + peer,
                 "--initial-advertise-peer-urls=" + peer,
                 "--initial-cluster=s1=" + peer,
                 "--initial-cluster-state=new", "--election-timeout=500",
                 "--heartbeat-interval=50", "--logger=zap",
                 "--log-outputs=" + self.log_path],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if wait_for(lambda: self._healthy() or
                        self.process.poll() is not None):
                if self.process.poll() is None:
                    return self
            self.stop()
        raise RuntimeError("etcd did not become healthy:\n" +
                           self.log()[-4000:])

    def _healthy(self):
        try:
            with urllib.request.urlopen(
                    f"http://{self.endpoint}/health", timeout=1) as r:
                return b'"true"' in r.read()
        except OSError:
            return False

    def stop(self):
        self._terminate(10)


class HaServer(Server):
    """A high-available throttle_server (--etcd_endpoints) on a fixed port
    of 127.0.0.1: it leads or stands by with that port closed, so it cannot
    pick port 0. start() returns once the server campaigns (its log says
    "campaigning"); leading() tells whether it has led since, from its
    --port_file, which a server writes each time it starts leading. start()
    again after stop() or kill() restarts it on the same port. kill() is
    SIGKILL (a crash: the lease stays until its TTL passes)."""

    def __init__(self, etcd, port, cluster, *flags, lease_ttl="1s"):
        super().__init__(f"--etcd_endpoints={etcd.endpoint}",
                         f"--cluster={cluster}", f"--lease_ttl={lease_ttl}",
                         *flags, port=port)
        self._port_file = None

    def start(self):
        if self.process is not None:
            raise RuntimeError("HaServer.start: already running")
        self._port_file = os.path.join(self._tmp.name,
                                       f"port.{time.time_ns()}")
        log_from = len(self.log())
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [SERVER, f"--listen={self.address}",
             f"--port_file={self._port_file}"] + self.flags,
            stdout=log, stderr=subprocess.STDOUT)
        log.close()
        campaigning = wait_for(lambda: "event=campaigning" in self.log(
        )[log_from:] or self.process.poll() is not None)
        if not campaigning or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("throttle_server did not campaign:\n" +
                               self.log()[log_from:])
        return self

    def leading(self):
        """Whether this run of the server has led (it may have lost the lead
        since)."""
        return self._port_file is not None and os.path.exists(self._port_file)

    def kill(self):
        """SIGKILL and wait."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def ipv4_target(*servers):
    """The gRPC target that names every server: "ipv4:HOST:PORT,HOST:PORT"
    (gRPC's pick_first takes the first address that accepts)."""
    return "ipv4:" + ",".join(s.address for s in servers)


class Pki:
    """A test PKI made by tests/support/make_certs.sh in a temporary
    directory (ca.pem; server.pem/key for 127.0.0.1 and localhost;
    worker, controller, admin, tenant-b .pem/.key with the URI SAN
    spiffe://throttle.test/NAME; rogue-ca.pem, rogue.pem/key from another
    CA), and the policy and token files of a test written next to them.
    close() removes it all."""

    def __init__(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="throttle_pki.")
        self.dir = self._tmp.name
        try:
            subprocess.run(["bash", MAKE_CERTS, self.dir], check=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=GENEROUS)
        except (OSError, subprocess.SubprocessError) as error:
            output = getattr(error, "stdout", b"") or b""
            self.close()
            raise RuntimeError(f"{MAKE_CERTS} failed: {error}\n"
                               f"{output.decode(errors='replace')}") from None

    def path(self, name):
        """The path of a file of the PKI: path("ca.pem")."""
        return os.path.join(self.dir, name)

    def write(self, name, text):
        """Writes a file (a policy, a token file) here; returns its path."""
        path = self.path(name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def tokens(self, **tokens):
        """A token file (--token_file) for NAME=TOKEN pairs; returns its
        path."""
        return self.write("tokens.txt", "".join(
            f"{name} sha256:{hashlib.sha256(token.encode()).hexdigest()}\n"
            for name, token in tokens.items()))

    def server_flags(self, client_ca=True):
        """throttle_server's TLS flags: its certificate, and with client_ca
        client certificates required (mTLS)."""
        flags = [f"--tls_cert={self.path('server.pem')}",
                 f"--tls_key={self.path('server.key')}"]
        if client_ca:
            flags.append(f"--tls_client_ca={self.path('ca.pem')}")
        return flags

    def security(self, client=None, **kwargs):
        """A ChannelSecurity that trusts ca.pem, with the client
        certificate `client` ("worker", ...) if given."""
        from throttle_client import ChannelSecurity
        if client is not None:
            kwargs.setdefault("cert_file", self.path(f"{client}.pem"))
            kwargs.setdefault("key_file", self.path(f"{client}.key"))
        kwargs.setdefault("ca_file", self.path("ca.pem"))
        return ChannelSecurity(**kwargs)

    def close(self):
        self._tmp.cleanup()
