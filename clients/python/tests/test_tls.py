"""TLS, mTLS and bearer tokens through the Python client against the real
server, with certificates made by tests/support/make_certs.sh: a worker
certificate gets fuel over mTLS and may not stop the throttle
(PERMISSION_DENIED naming the method and the throttle); an admin token
creates and deletes (over TLS with a CA only, and beside a client
certificate); a wrong token is UNAUTHENTICATED; plaintext, a client without
a certificate or trusting another CA cannot connect (UNAVAILABLE); a token
without TLS is refused when the Throttle is made; the environment
variables and their precedence; the token file is read when the channel is
made; a spawned worker authenticates as its parent; a multi-address target
needs server_name (gRPC checks the certificate against the whole target).
"""
import multiprocessing
import os
import pickle
import unittest
from unittest import mock

import grpc

from support import GENEROUS, Pki, Server, free_ports

from throttle_client import (ChannelSecurity, FuelOutcome, Throttle,
                             ThrottleError)
from throttle_client.security import ENVIRONMENT

Code = grpc.StatusCode
ADMIN_TOKEN = "admin-token-5b1f"
WORKER = "spiffe://throttle.test/worker"
POLICY = f"""\
# test_tls.py: the worker certificate may take fuel of "t" only.
{WORKER}                           worker      t
spiffe://throttle.test/controller  controller  *
token:admin                        admin       *
"""


def _spawned_fuel(tank, results):
    """In a spawned process: one await_fuel of the pickled Throttle."""
    try:
        results.put(tank.await_fuel(timeout=GENEROUS).value)
    except ThrottleError as error:
        results.put(f"error {error}")
    finally:
        tank.close()


class Tls(unittest.TestCase):
    """Two servers with one policy and token file: `mtls` requires client
    certificates (--tls_client_ca), `tls` does not."""

    @classmethod
    def setUpClass(cls):
        cls.pki = Pki()
        cls.addClassCleanup(cls.pki.close)
        files = [f"--policy={cls.pki.write('policy.txt', POLICY)}",
                 f"--token_file={cls.pki.tokens(admin=ADMIN_TOKEN)}"]
        cls.mtls = Server(*cls.pki.server_flags(client_ca=True), *files)
        cls.addClassCleanup(cls.mtls.close)
        cls.mtls.start()
        cls.tls = Server(*cls.pki.server_flags(client_ca=False), *files)
        cls.addClassCleanup(cls.tls.close)
        cls.tls.start()

    def setUp(self):
        # The tests choose the environment, whatever the run's is.
        environ = mock.patch.dict(os.environ)
        environ.start()
        self.addCleanup(environ.stop)
        for variable in ENVIRONMENT.values():
            os.environ.pop(variable, None)

    def client(self, server, security, name="t", **kwargs):
        t = Throttle(server.address, name, security=security, **kwargs)
        self.addCleanup(t.close)
        return t

    def admin(self, name="t"):
        return self.client(self.mtls,
                           self.pki.security("admin", token=ADMIN_TOKEN),
                           name)

    def spawned_fuel(self, worker):
        """What a spawned process gets from worker.await_fuel()."""
        context = multiprocessing.get_context("spawn")
        results = context.Queue()
        process = context.Process(target=_spawned_fuel,
                                  args=(worker, results))
        process.start()

        def end():
            process.join(GENEROUS)
            if process.is_alive():
                process.kill()
                process.join()

        self.addCleanup(end)
        return results.get(timeout=GENEROUS)

    def running_t(self):
        """The throttle "t" on the mTLS server, made afresh and started by
        the controller; deleted after the test. Returns the controller."""
        admin = self.admin()
        admin.create(1000, 1, replace=True)
        self.addCleanup(admin.delete)
        controller = self.client(self.mtls, self.pki.security("controller"))
        controller.start()
        return controller

    def assertCode(self, code, call, *args):
        with self.assertRaises(ThrottleError) as raised:
            call(*args)
        self.assertEqual(raised.exception.code, code, raised.exception)
        self.assertIn(code.name, str(raised.exception))
        return raised.exception

    # --- what each identity may do -----------------------------------------

    def test_worker_certificate_gets_fuel_over_mtls(self):
        controller = self.running_t()
        worker = self.client(self.mtls, self.pki.security("worker"),
                             worker_id="w1")
        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        self.assertIsInstance(worker.has_fuel(), bool)  # allowed too
        self.assertGreaterEqual(controller.info().total_emissions, 1)

    def test_worker_stop_is_permission_denied_naming_method_and_throttle(self):
        controller = self.running_t()
        worker = self.client(self.mtls, self.pki.security("worker"))
        error = self.assertCode(Code.PERMISSION_DENIED, worker.stop)
        self.assertEqual(error.code_name, "PERMISSION_DENIED")
        self.assertIn("Stop", error.details)
        self.assertIn('"t"', error.details)
        self.assertIn(WORKER, error.details)
        self.assertFalse(worker.kill_flag.is_set())
        self.assertEqual(controller.info().state, "running")

    def test_worker_certificate_on_another_throttle_is_permission_denied(self):
        admin = self.admin("other")
        admin.create(10, 1, replace=True)
        self.addCleanup(admin.delete)
        worker = self.client(self.mtls, self.pki.security("worker"), "other")
        error = self.assertCode(Code.PERMISSION_DENIED, worker.await_fuel, 0)
        self.assertIn('"other"', error.details)

    def test_admin_token_creates_and_deletes(self):
        cases = {
            "TLS, a CA only": (self.tls, self.pki.security(
                token=ADMIN_TOKEN)),
            "mTLS, the admin certificate": (self.mtls, self.pki.security(
                "admin", token=ADMIN_TOKEN)),
            # The token's identity comes first: the worker certificate alone
            # may not create.
            "mTLS, the worker certificate": (self.mtls, self.pki.security(
                "worker", token=ADMIN_TOKEN)),
        }
        for case, (server, security) in cases.items():
            with self.subTest(case):
                admin = self.client(server, security, "made-by-token")
                info = admin.create(3, 2, mode="bucket", burst=2)
                self.assertEqual((info.name, info.max_n, info.mode),
                                 ("made-by-token", 3, "bucket"))
                self.assertEqual(admin.info().state, "created")
                admin.delete()
                self.assertCode(Code.NOT_FOUND, admin.info)

    def test_worker_certificate_alone_may_not_create(self):
        worker = self.client(self.mtls, self.pki.security("worker"))
        error = self.assertCode(Code.PERMISSION_DENIED, worker.create, 1, 1)
        self.assertIn("CreateThrottle", error.details)

    def test_wrong_token_is_unauthenticated(self):
        for server, security in (
                (self.tls, self.pki.security(token="not-the-token")),
                (self.mtls, self.pki.security("worker",
                                              token="not-the-token"))):
            with self.subTest(server=server.address):
                t = self.client(server, security)
                error = self.assertCode(Code.UNAUTHENTICATED, t.has_fuel)
                self.assertIn("bearer token is not listed", error.details)
                # await_fuel does not retry it.
                self.assertCode(Code.UNAUTHENTICATED, t.await_fuel, GENEROUS)

    def test_tls_without_identity_is_unauthenticated_under_a_policy(self):
        t = self.client(self.tls, self.pki.security())
        error = self.assertCode(Code.UNAUTHENTICATED, t.list_throttles)
        self.assertIn("ListThrottles", error.details)

    # --- who cannot connect at all -----------------------------------------

    def test_plaintext_client_to_a_tls_port_is_unavailable(self):
        for server in (self.mtls, self.tls):
            with self.subTest(server=server.address):
                t = self.client(server, ChannelSecurity())
                self.assertCode(Code.UNAVAILABLE, t.has_fuel)
                # No security and no environment: plaintext too.
                self.assertCode(Code.UNAVAILABLE,
                                self.client(server, None).has_fuel)

    def test_handshakes_that_fail_are_unavailable(self):
        cases = {
            "no client certificate": self.pki.security(),
            "a client certificate of another CA": self.pki.security(
                cert_file=self.pki.path("rogue.pem"),
                key_file=self.pki.path("rogue.key")),
            "trusting another CA": self.pki.security(
                "worker", ca_file=self.pki.path("rogue-ca.pem")),
        }
        for case, security in cases.items():
            with self.subTest(case):
                t = self.client(self.mtls, security)
                self.assertCode(Code.UNAVAILABLE, t.has_fuel)

    # --- settings refused before any call ----------------------------------

    def test_token_without_tls_is_refused_at_construction(self):
        token_file = self.pki.write("token-no-tls.txt", ADMIN_TOKEN)
        for kwargs in ({"token": ADMIN_TOKEN}, {"token_file": token_file}):
            with self.subTest(**kwargs):
                with self.assertRaisesRegex(ValueError, "needs TLS.*ca_file"):
                    ChannelSecurity(**kwargs)
        os.environ["THROTTLE_TOKEN"] = ADMIN_TOKEN
        with self.assertRaisesRegex(
                ValueError, "THROTTLE_TOKEN needs TLS.*THROTTLE_TLS_CA"):
            Throttle(self.mtls.address, "t")

    def test_settings_that_cannot_work_are_value_errors(self):
        ca, pem = self.pki.path("ca.pem"), self.pki.path("worker.pem")
        with self.assertRaisesRegex(ValueError, "cert_file and key_file"):
            ChannelSecurity(ca_file=ca, cert_file=pem)
        with self.assertRaisesRegex(ValueError, "not both"):
            ChannelSecurity(ca_file=ca, token="a", token_file=pem)
        with self.assertRaisesRegex(ValueError, "printable ASCII"):
            ChannelSecurity(ca_file=ca, token="two\nlines")
        with self.assertRaises(TypeError):
            Throttle(self.mtls.address, "t", security={"ca_file": ca})
        os.environ["THROTTLE_TLS_KEY"] = self.pki.path("worker.key")
        with self.assertRaisesRegex(ValueError,
                                    "THROTTLE_TLS_CERT and THROTTLE_TLS_KEY"):
            Throttle(self.mtls.address, "t")

    # --- the environment, files --------------------------------------------

    def test_environment_is_used_when_no_security_is_given(self):
        self.running_t()
        os.environ.update({
            "THROTTLE_TLS_CA": self.pki.path("ca.pem"),
            "THROTTLE_TLS_CERT": self.pki.path("worker.pem"),
            "THROTTLE_TLS_KEY": self.pki.path("worker.key"),
        })
        worker = self.client(self.mtls, None)
        self.assertEqual(worker.security, ChannelSecurity.from_env())
        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        self.assertCode(Code.PERMISSION_DENIED, worker.stop)
        # An explicit security wins whole over the environment.
        controller = self.client(self.mtls, self.pki.security("controller"))
        controller.stop()
        self.assertCode(Code.UNAVAILABLE,
                        self.client(self.mtls, ChannelSecurity()).has_fuel)
        token_file = self.pki.write("env-token.txt", ADMIN_TOKEN + "\n")
        os.environ["THROTTLE_TOKEN_FILE"] = token_file
        admin = self.client(self.mtls, None, "made-from-env")
        admin.create(1, 1)
        admin.delete()

    def test_from_env_completes_given_settings_pairs_whole(self):
        p = self.pki.path
        environ = {"THROTTLE_TLS_CA": p("ca.pem"),
                   "THROTTLE_TLS_CERT": p("worker.pem"),
                   "THROTTLE_TLS_KEY": p("worker.key"),
                   "THROTTLE_TOKEN": "from-env"}
        self.assertEqual(
            ChannelSecurity.from_env(environ, token_file=p("t.txt")),
            ChannelSecurity(ca_file=p("ca.pem"), cert_file=p("worker.pem"),
                            key_file=p("worker.key"), token_file=p("t.txt")))
        self.assertEqual(
            ChannelSecurity.from_env(environ, cert_file=p("admin.pem"),
                                     key_file=p("admin.key")),
            ChannelSecurity(ca_file=p("ca.pem"), cert_file=p("admin.pem"),
                            key_file=p("admin.key"), token="from-env"))
        with self.assertRaisesRegex(ValueError, "^cert_file and key_file"):
            ChannelSecurity.from_env(environ, cert_file=p("admin.pem"))
        with self.assertRaisesRegex(ValueError,
                                    "^token needs TLS: set THROTTLE_TLS_CA"):
            ChannelSecurity.from_env({}, token="x")
        with self.assertRaises(TypeError):
            ChannelSecurity.from_env(environ, cafile=p("ca.pem"))

    def test_token_file_is_read_when_the_channel_is_made(self):
        path = self.pki.write("admin-token.txt", "not-the-token\n")
        admin = self.client(self.tls, self.pki.security(token_file=path),
                            "from-file")
        # Only the first line counts, trimmed.
        self.pki.write("admin-token.txt", f"  {ADMIN_TOKEN} \nignored\n")
        admin.create(1, 1)
        admin.delete()
        self.pki.write("empty-token.txt", "\n")
        empty = self.client(self.tls, self.pki.security(
            token_file=self.pki.path("empty-token.txt")))
        error = self.assertCode(Code.INVALID_ARGUMENT, empty.has_fuel)
        self.assertIn("empty-token.txt is empty", error.details)

    def test_a_file_that_cannot_be_read_fails_the_first_call(self):
        missing = self.pki.path("no-such-ca.pem")
        t = self.client(self.mtls, self.pki.security("worker",
                                                     ca_file=missing))
        error = self.assertCode(Code.INVALID_ARGUMENT, t.has_fuel)
        self.assertIn(f"ca_file: cannot read {missing}", error.details)
        not_pem = self.pki.write("not-a-pem.txt", "hello\n")
        t = self.client(self.mtls, self.pki.security(
            "worker", ca_file=not_pem))
        error = self.assertCode(Code.INVALID_ARGUMENT, t.await_fuel, 0)
        self.assertIn(f"ca_file: {not_pem} holds no PEM block", error.details)

    def test_security_hides_the_token_and_pickles(self):
        security = self.pki.security("worker", token=ADMIN_TOKEN)
        self.assertNotIn(ADMIN_TOKEN, repr(security))
        self.assertIn("token=***", repr(security))
        self.assertEqual(pickle.loads(pickle.dumps(security)), security)
        with self.assertRaises(AttributeError):
            security.token = "other"

    # --- a multi-address target: server_name --------------------------------

    def multi_address_target(self):
        """ipv4:127.0.0.1:CLOSED,<the mTLS server>: a port nothing listens
        on first, as a standby's (pick_first passes on to the server)."""
        (closed,) = free_ports(1)
        return f"ipv4:127.0.0.1:{closed},{self.mtls.address}"

    def test_multi_address_target_needs_the_certificates_name(self):
        self.running_t()
        target = self.multi_address_target()
        addresses = target[len("ipv4:"):]
        t = Throttle(target, "t", security=self.pki.security("controller"))
        self.addCleanup(t.close)
        error = self.assertCode(Code.UNAVAILABLE, t.list_throttles)
        self.assertIn(f"Peer name {addresses} is not in peer certificate",
                      error.details)
        for name in ("localhost", "127.0.0.1"):
            with self.subTest(server_name=name):
                t = Throttle(target, "t", security=self.pki.security(
                    "controller", server_name=name))
                self.addCleanup(t.close)
                self.assertIn("t", [i.name for i in t.list_throttles()])
        worker = Throttle(target, "t", security=self.pki.security(
            "worker", server_name="localhost"))
        self.addCleanup(worker.close)
        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)

    def test_a_name_the_certificate_does_not_hold_is_unavailable(self):
        security = self.pki.security("controller",
                                     server_name="throttle.example")
        for target in (self.multi_address_target(), self.mtls.address):
            with self.subTest(target=target):
                t = Throttle(target, "t", security=security)
                self.addCleanup(t.close)
                error = self.assertCode(Code.UNAVAILABLE, t.list_throttles)
                self.assertIn("Peer name throttle.example is not in peer "
                              "certificate", error.details)

    def test_server_name_from_the_environment_and_in_a_spawned_worker(self):
        controller = self.running_t()
        target = self.multi_address_target()
        os.environ.update({
            "THROTTLE_TLS_CA": self.pki.path("ca.pem"),
            "THROTTLE_TLS_CERT": self.pki.path("worker.pem"),
            "THROTTLE_TLS_KEY": self.pki.path("worker.key"),
            "THROTTLE_TLS_SERVER_NAME": "localhost",
        })
        worker = Throttle(target, "t")
        self.addCleanup(worker.close)
        self.assertEqual(worker.security.server_name, "localhost")
        self.assertIs(worker.await_fuel(timeout=GENEROUS), FuelOutcome.FUEL)
        self.assertEqual(ChannelSecurity.from_env(
            server_name="x.example").server_name, "x.example")
        del os.environ["THROTTLE_TLS_SERVER_NAME"]
        # A spawned process gets server_name with the pickled Throttle, not
        # from its environment.
        self.assertEqual(self.spawned_fuel(worker), "fuel")
        self.assertGreaterEqual(controller.info().total_emissions, 2)

    def test_server_name_refused_without_tls_or_as_a_list(self):
        with self.assertRaisesRegex(
                ValueError, "^server_name needs TLS: .*plaintext; set "
                "ca_file"):
            ChannelSecurity(server_name="localhost")
        with self.assertRaisesRegex(
                ValueError, "^server_name: '127.0.0.1,localhost': one name, "
                "not a list"):
            self.pki.security(server_name="127.0.0.1,localhost")
        with self.assertRaisesRegex(ValueError, "the name holds a space"):
            self.pki.security(server_name="local host")
        os.environ["THROTTLE_TLS_SERVER_NAME"] = "localhost"
        with self.assertRaisesRegex(
                ValueError, "^THROTTLE_TLS_SERVER_NAME needs TLS: .*set "
                "THROTTLE_TLS_CA"):
            Throttle(self.mtls.address, "t")

    def test_server_name_is_the_ssl_target_name_override(self):
        security = self.pki.security(server_name="throttle.example")
        self.assertEqual(security.channel_options(),
                         (("grpc.ssl_target_name_override",
                           "throttle.example"),))
        self.assertEqual(self.pki.security().channel_options(), ())
        self.assertIn("server_name='throttle.example'", repr(security))
        self.assertEqual(pickle.loads(pickle.dumps(security)), security)
        self.assertNotEqual(security, self.pki.security())
        # The Throttle's own channel_options win over it.
        t = Throttle(self.multi_address_target(), "t",
                     security=self.pki.security("controller",
                                                server_name="not.it"),
                     channel_options=[("grpc.ssl_target_name_override",
                                       "localhost")])
        self.addCleanup(t.close)
        t.list_throttles()

    def test_spawned_worker_authenticates_as_its_parent(self):
        controller = self.running_t()
        worker = self.client(self.mtls, self.pki.security("worker"))
        self.assertEqual(self.spawned_fuel(worker), "fuel")
        self.assertGreaterEqual(controller.info().total_emissions, 1)


if __name__ == "__main__":
    unittest.main()
