"""throttle_client.ChannelSecurity: how a Throttle proves who it is to a
server that speaks TLS, mTLS or takes bearer tokens (throttle_server
--tls_cert/--tls_key [--tls_client_ca] [--token_file]).

    from throttle_client import ChannelSecurity, Throttle

    security = ChannelSecurity(ca_file="ca.pem", cert_file="worker.pem",
                               key_file="worker.key")      # mTLS
    worker = Throttle("throttle.example:50051", "crawl", security=security)
    admin = Throttle("throttle.example:50051", "crawl",
                     security=ChannelSecurity(ca_file="ca.pem",
                                              token_file="/run/admin-token"))

Through a multi-address target (high availability), name the servers'
certificate, which gRPC would otherwise check against the whole target:

    Throttle("ipv4:10.0.0.1:50051,10.0.0.2:50051", "crawl",
             security=ChannelSecurity(ca_file="ca.pem",
                                      server_name="throttle.example"))

Without `security`, a Throttle takes the same settings from the environment
(ChannelSecurity.from_env()): THROTTLE_TLS_CA, THROTTLE_TLS_CERT,
THROTTLE_TLS_KEY, THROTTLE_TOKEN, THROTTLE_TOKEN_FILE,
THROTTLE_TLS_SERVER_NAME. An explicit
`security` wins whole: the environment is then not read at all, so
ChannelSecurity() asks for plaintext whatever the environment says. To
complete settings of your own (flags) with the environment, as the C++
library's ChannelSecurityFromEnvironment(flags) and throttlectl do, use
ChannelSecurity.from_env(ca_file=..., ...): what you give wins over its
variable. The same names as the C++ library, throttlectl and the Node
client.
"""
import os

import grpc

from .errors import ThrottleError

__all__ = ["ChannelSecurity", "ENVIRONMENT"]

# The environment variable of each setting (ChannelSecurity.from_env()).
ENVIRONMENT = {
    "ca_file": "THROTTLE_TLS_CA",
    "cert_file": "THROTTLE_TLS_CERT",
    "key_file": "THROTTLE_TLS_KEY",
    "token": "THROTTLE_TOKEN",
    "token_file": "THROTTLE_TOKEN_FILE",
    "server_name": "THROTTLE_TLS_SERVER_NAME",
}
_ARGUMENTS = {name: name for name in ENVIRONMENT}


class ChannelSecurity:
    """What a Throttle's channel uses: plaintext, TLS, mTLS, a bearer token.

    ca_file: PEM file of the CA that signed the server's certificate (None:
      the system's roots).
    cert_file, key_file: PEM client certificate and its private key, for a
      server that requires client certificates (mTLS); both or neither.
    token: a bearer token, sent as "authorization: Bearer TOKEN" on every
      call; or token_file: a file whose first line (trimmed) is the token.
      Not both. A token needs TLS (ca_file, or cert_file and key_file):
      gRPC refuses call credentials on a plaintext channel.
    server_name: the name the server's certificate must hold (a DNS name
      or an IP address of its subject alternative names), also sent as the
      calls' :authority; None: the host of the target. Set it for a
      multi-address target ("ipv4:10.0.0.1:50051,10.0.0.2:50051"), which
      gRPC would otherwise check as one name ("Peer name
      10.0.0.1:50051,10.0.0.2:50051 is not in peer certificate"): the name
      every server of the cluster has in its certificate. One name, without
      a port. TLS only. (The channel option grpc.ssl_target_name_override:
      channel_options()).

    Nothing set means plaintext; any of ca_file, cert_file, key_file means
    TLS. The files are read each time a channel is made (the first call of
    each process), not here, so a rotated file is picked up by the next
    process. Raises ValueError here for settings that cannot work (a
    certificate without its key, a token and a token file, a token without
    TLS, a server_name without TLS or that is not one name), naming the
    arguments. Immutable; repr() hides the token. It
    pickles with the Throttle (token included), so multiprocessing workers
    authenticate as their parent does.
    """

    __slots__ = ("ca_file", "cert_file", "key_file", "token", "token_file",
                 "server_name")

    def __init__(self, ca_file=None, cert_file=None, key_file=None,
                 token=None, token_file=None, server_name=None):
        self._init(dict(ca_file=ca_file, cert_file=cert_file,
                        key_file=key_file, token=token,
                        token_file=token_file, server_name=server_name),
                   _ARGUMENTS)

    def _init(self, values, names):
        for field in self.__slots__:
            value = values[field]
            if value is not None and not isinstance(value, str):
                value = os.fspath(value)  # a pathlib.Path
            object.__setattr__(self, field, value or None)  # "" is unset
        if (self.cert_file is None) != (self.key_file is None):
            raise ValueError(
                f"{names['cert_file']} and {names['key_file']} go together "
                "(a client certificate and its private key)")
        if self.token is not None and self.token_file is not None:
            raise ValueError(f"{names['token']} and {names['token_file']}: "
                             "give one of them, not both")
        if self.token is not None:
            _check_token(self.token, names["token"])
        if (self.token or self.token_file) and not self.tls:
            given = names["token"] if self.token else names["token_file"]
            raise ValueError(
                f"{given} needs TLS: set {names['ca_file']} (or "
                f"{names['cert_file']} and {names['key_file']}); gRPC "
                "refuses call credentials on a plaintext channel")
        if self.server_name is not None:
            _check_server_name(self.server_name, names["server_name"])
            if not self.tls:
                raise ValueError(
                    f"{names['server_name']} needs TLS: it is the name the "
                    "server's certificate is checked against, and this "
                    f"channel would be plaintext; set {names['ca_file']} (or "
                    f"{names['cert_file']} and {names['key_file']})")

    @classmethod
    def from_env(cls, environ=None, **given):
        """The settings `given` (ca_file=..., as the constructor's),
        completed by the environment variables THROTTLE_TLS_CA,
        THROTTLE_TLS_CERT, THROTTLE_TLS_KEY, THROTTLE_TOKEN,
        THROTTLE_TOKEN_FILE, THROTTLE_TLS_SERVER_NAME (unset or empty: not
        set). A setting given wins
        over its variable, and the pairs are taken whole: cert_file or
        key_file keeps both THROTTLE_TLS_CERT and THROTTLE_TLS_KEY out,
        token or token_file both THROTTLE_TOKEN and THROTTLE_TOKEN_FILE, so
        that a setting never pairs with half of a pair from the environment.
        `environ` defaults to os.environ. Raises ValueError as the
        constructor does, naming each setting by its variable when it came
        from the environment; TypeError for an unknown setting."""
        unknown = set(given) - set(ENVIRONMENT)
        if unknown:
            raise TypeError("ChannelSecurity.from_env: unknown setting "
                            f"{', '.join(sorted(unknown))}")
        environ = os.environ if environ is None else environ
        given = {f: v for f, v in given.items() if v}
        values, names = {}, {}
        for group in (("ca_file",), ("cert_file", "key_file"),
                      ("token", "token_file"), ("server_name",)):
            from_env = not any(f in given for f in group)
            for field in group:
                if from_env:
                    values[field] = environ.get(ENVIRONMENT[field])
                    names[field] = ENVIRONMENT[field]
                else:
                    values[field] = given.get(field)
                    names[field] = field
        security = cls.__new__(cls)
        security._init(values, names)
        return security

    @property
    def tls(self):
        """Whether the channel uses TLS."""
        return any((self.ca_file, self.cert_file, self.key_file))

    def channel_options(self):
        """The gRPC channel options of these settings, as a tuple of
        (key, value): ("grpc.ssl_target_name_override", server_name) when
        server_name is set (C-core also makes it the calls' :authority),
        else none. A channel of your own made from channel_credentials()
        needs them too: the credentials do not carry the name. A Throttle
        passes them unless its channel_options set the same key (then
        those win)."""
        if self.server_name is None:
            return ()
        return (("grpc.ssl_target_name_override", self.server_name),)

    def channel_credentials(self):
        """The grpc.ChannelCredentials of these settings, or None for
        plaintext. Reads the files now. Raises ThrottleError
        INVALID_ARGUMENT naming the setting and the file when one cannot be
        read or the token file is empty."""
        if not self.tls:
            return None
        credentials = grpc.ssl_channel_credentials(
            root_certificates=_read(self.ca_file, "ca_file"),
            private_key=_read(self.key_file, "key_file"),
            certificate_chain=_read(self.cert_file, "cert_file"))
        token = self.token
        if self.token_file is not None:
            token = _read_token(self.token_file)
        if token is None:
            return credentials
        return grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token))

    def __setattr__(self, name, value):
        raise AttributeError("ChannelSecurity is immutable")

    def __getstate__(self):
        return {f: getattr(self, f) for f in self.__slots__}

    def __setstate__(self, state):
        for field in self.__slots__:
            object.__setattr__(self, field, state.get(field))

    def __eq__(self, other):
        if not isinstance(other, ChannelSecurity):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    def __hash__(self):
        return hash(tuple(self.__getstate__().values()))

    def __repr__(self):
        shown = ", ".join(
            f"{f}={'***' if f == 'token' else repr(getattr(self, f))}"
            for f in self.__slots__ if getattr(self, f) is not None)
        return f"ChannelSecurity({shown})"


def _check_token(token, name):
    # A header value gRPC can send: printable ASCII, no surrounding spaces.
    if (token != token.strip() or not token.isprintable()
            or not token.isascii()):
        raise ValueError(f"{name}: a bearer token is printable ASCII without "
                         "surrounding spaces or line breaks")


def _check_server_name(name, setting):
    # One name: gRPC would take anything, and a list or a stray space would
    # only show at the handshake ("Peer name ... is not in peer
    # certificate").
    if not name.isascii() or not name.isprintable() or " " in name:
        raise ValueError(f"{setting}: {name!r}: the name holds a space, a "
                         "control or a non-ASCII character")
    if "," in name:
        raise ValueError(f"{setting}: {name!r}: one name, not a list: the "
                         "name every server of the target has in its "
                         "certificate")


def _read(path, setting, pem=True):
    if path is None:
        return None
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as error:
        raise ThrottleError(
            grpc.StatusCode.INVALID_ARGUMENT,
            f"{setting}: cannot read {path}: {error.strerror}") from None
    if pem and b"-----BEGIN " not in data:
        raise ThrottleError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{setting}: {path} holds no PEM block")
    return data


def _read_token(path):
    text = _read(path, "token_file", pem=False).decode("utf-8",
                                                         errors="replace")
    lines = text.splitlines()
    token = lines[0].strip() if lines else ""
    if not token:
        raise ThrottleError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"token_file: {path} is empty (the token is its "
                            "first line)")
    try:
        _check_token(token, "token_file")
    except ValueError as error:
        raise ThrottleError(grpc.StatusCode.INVALID_ARGUMENT,
                            f"{error} ({path})") from None
    return token
