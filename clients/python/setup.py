"""Builds the throttle-client package (metadata in pyproject.toml).

The only code here: build_py also generates the gRPC code of
proto/throttle/v1/throttle.proto into throttle_client/_generated/ of the
build directory, with protoc and grpc_python_plugin ($GRPC_PYTHON_PLUGIN, else
found on PATH), as clients/python/generate.sh does for the source tree. The
generated throttle_pb2_grpc imports its messages as throttle.v1.throttle_pb2;
that import is made relative, so that the package needs no top-level
"throttle" module. Fails with the reason when the proto or a tool is missing.
"""
import os
import shutil
import subprocess
import sys
import tempfile

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO_ROOT = os.path.join(HERE, "..", "..", "proto")
PROTO = "throttle/v1/throttle.proto"
ABSOLUTE_IMPORT = "from throttle.v1 import throttle_pb2 as"


def tool(name, env):
    found = os.environ.get(env) or shutil.which(name)
    if not found:
        sys.exit(f"throttle-client: {name} not found (Debian: "
                 "apt-get install protobuf-compiler protobuf-compiler-grpc)")
    return found


class BuildPyWithProto(build_py):
    def run(self):
        super().run()
        if not os.path.isfile(os.path.join(PROTO_ROOT, PROTO)):
            sys.exit(f"throttle-client: {PROTO} not found under {PROTO_ROOT}: "
                     "build from a checkout of the repository")
        out = os.path.join(self.build_lib, "throttle_client", "_generated")
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.check_call([
                tool("protoc", "PROTOC"), f"--python_out={tmp}",
                f"--grpc_out={tmp}",
                "--plugin=protoc-gen-grpc=" +
                tool("grpc_python_plugin", "GRPC_PYTHON_PLUGIN"),
                "-I", PROTO_ROOT, os.path.join(PROTO_ROOT, PROTO)])
            os.makedirs(out, exist_ok=True)
            for name in ("throttle_pb2.py", "throttle_pb2_grpc.py"):
                with open(os.path.join(tmp, "throttle", "v1", name)) as f:
                    text = f.read()
                text = text.replace(ABSOLUTE_IMPORT, "from . import throttle_pb2 as")
                with open(os.path.join(out, name), "w") as f:
                    f.write(text)
            with open(os.path.join(out, "__init__.py"), "w") as f:
                f.write(f'"""Generated from {PROTO} at build time."""\n')


setup(cmdclass={"build_py": BuildPyWithProto})
