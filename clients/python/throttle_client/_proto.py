"""Loads the generated gRPC code of proto/throttle/v1/throttle.proto.

The code is generated at build time, never committed:
  - in an installed package (pip install ./clients/python: setup.py) it is
    throttle_client._generated, inside the package;
  - in the source tree, clients/python/generate.sh writes it into a build
    directory, found on sys.path (PYTHONPATH) as throttle.v1, or in the
    directory named by the environment variable THROTTLE_PY_GENERATED, which
    is then added to sys.path.
"""
import os
import sys

__all__ = ["pb", "pb_grpc"]

try:
    from ._generated import throttle_pb2 as pb  # noqa: F401
    from ._generated import throttle_pb2_grpc as pb_grpc  # noqa: F401
except ImportError:
    try:
        from throttle.v1 import throttle_pb2 as pb  # noqa: F401
        from throttle.v1 import throttle_pb2_grpc as pb_grpc  # noqa: F401
    except ImportError:
        _generated = os.environ.get("THROTTLE_PY_GENERATED")
        if not _generated:
            raise ImportError(
                "throttle_client: the generated code throttle.v1.throttle_pb2 "
                "is missing; install the package (pip install "
                "./clients/python), or run clients/python/generate.sh OUT_DIR "
                "and put OUT_DIR on PYTHONPATH or in THROTTLE_PY_GENERATED"
            ) from None
        sys.path.insert(0, _generated)
        from throttle.v1 import throttle_pb2 as pb  # noqa: F401
        from throttle.v1 import throttle_pb2_grpc as pb_grpc  # noqa: F401
