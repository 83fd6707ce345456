"""The one exception of throttle_client: a failed call, with its gRPC code.

The code says what to do next (see proto/throttle/v1/throttle.proto):
INVALID_ARGUMENT fix the request, NOT_FOUND no such throttle (or it was
deleted), ALREADY_EXISTS the name is taken, FAILED_PRECONDITION wrong state
(start of a running throttle, stop of a stopped one, emit on a throttle that
counts at grant time), UNAVAILABLE server down (retry later),
DEADLINE_EXCEEDED the call took too long, CANCELLED the client was closed.
"""
import grpc


class ThrottleError(Exception):
    """A call to the throttle server failed.

    Attributes:
      code: the grpc.StatusCode, e.g. grpc.StatusCode.NOT_FOUND.
      details: the server's (or gRPC's) message.
    """

    def __init__(self, code, details=""):
        super().__init__(f"{code.name}: {details}" if details else code.name)
        self.code = code
        self.details = details

    @property
    def code_name(self):
        """The code's name, e.g. "NOT_FOUND" (the same in every language)."""
        return self.code.name

    @classmethod
    def from_rpc_error(cls, error):
        """Converts a grpc.RpcError raised by a generated stub."""
        code = error.code() if hasattr(error, "code") else None
        details = error.details() if hasattr(error, "details") else str(error)
        return cls(code or grpc.StatusCode.UNKNOWN, details or "")


# The details of every call after Throttle.close(), and of a call close()
# ended.
CLOSED_DETAILS = "throttle_client.Throttle is closed"


def closed_error():
    """The error of a call to a closed Throttle: CANCELLED, CLOSED_DETAILS
    (the same code and words in the three clients: docs/clients.md)."""
    return ThrottleError(grpc.StatusCode.CANCELLED, CLOSED_DETAILS)
