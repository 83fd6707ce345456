# The throttle server image: throttle_server (entry point), throttlectl and
# throttle_tutorial on Debian 12 slim, run as a non-root user.
#
#   docker build --network host -t throttle \
#     --build-arg REVISION="$(git rev-parse HEAD)" \
#     --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --rm --network host throttle --throttle="crawl max_n=4 per=1"
#
# Two stages: "build" compiles with Debian's gRPC/protobuf/abseil packages
# and installs into /opt/throttle; the runtime stage, on debian:bookworm-slim
# (Debian 12 without documentation, manuals and translations), copies only
# the three binaries and the list of the Debian packages that own the
# shared libraries they load (ldd, then dpkg -S, in the build stage), and
# installs those packages alone. The server's etcd client (high
# availability, --etcd_endpoints) needs nothing more: its code is generated
# from the protos vendored in third_party/etcd by the protoc and
# grpc_cpp_plugin the build stage has. etcd itself is another image,
# deploy/etcd/Dockerfile. deploy/README.md describes the checks
# (deploy/verify-image.sh builds and runs both for real, and checks the
# labels below).
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config libgrpc++-dev libprotobuf-dev \
      protobuf-compiler protobuf-compiler-grpc libabsl-dev prometheus-cpp-dev \
      libyaml-cpp-dev libcli11-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the three programs the image ships (not the benchmarks, which the
# whole build would compile too), stripped into /opt/throttle/bin.
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTHROTTLE_BUILD_TESTS=OFF \
 && cmake --build /build -j2 \
      --target throttle_server throttlectl throttle_tutorial \
 && install -D -s -t /opt/throttle/bin /build/server/throttle_server \
      /build/cli/throttlectl /build/examples/tutorial/throttle_tutorial
# The packages of the libraries the binaries load, one a line, for the
# runtime stage (the C library and the C++ runtime are in every Debian). A
# library ldd finds under /lib may be recorded by dpkg under /usr/lib, or
# the other way round (merged /usr); one no package owns fails the build.
RUN set -e; \
    for lib in $(ldd /opt/throttle/bin/* \
        | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u); do \
      dpkg -S "$lib" 2>/dev/null || dpkg -S "${lib#/usr}" 2>/dev/null \
        || dpkg -S "/usr$lib"; \
    done > /tmp/owners; \
    cut -d: -f1 /tmp/owners | sort -u \
      | grep -vxE 'libc6|libgcc-s1|libstdc\+\+6' > /opt/throttle/runtime-packages; \
    cat /opt/throttle/runtime-packages

FROM debian:bookworm-slim
# Only the packages the build stage found (libgrpc++1.51, libgrpc29,
# protobuf, abseil, prometheus-cpp for the metrics endpoint, yaml-cpp for the
# --config file, ...) and what they depend on. apt-get clean: a
# debian:bookworm-slim made by verify-image.sh keeps the downloaded packages
# (no docker-clean hook as in Docker Hub's).
COPY --from=build /opt/throttle/runtime-packages /usr/local/share/throttle/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      $(cat /usr/local/share/throttle/runtime-packages) \
 && apt-get clean \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home \
      --home-dir /nonexistent --shell /usr/sbin/nologin throttle
COPY --from=build /opt/throttle/bin/throttle_server \
     /opt/throttle/bin/throttlectl /opt/throttle/bin/throttle_tutorial \
     /usr/local/bin/
# Fail the build here, not at run time, if a shared library is missing.
RUN ! ldd /usr/local/bin/throttle_server /usr/local/bin/throttlectl \
      /usr/local/bin/throttle_tutorial | grep 'not found'
# Numeric, so that Kubernetes' runAsNonRoot can check it.
USER 10001:10001
# 50051: gRPC (throttle.v1.Throttle, grpc.health.v1); with --etcd_endpoints
# only the leader listens there. 9464: Prometheus metrics. 50052: the
# always-on health endpoint when started with --health_listen=0.0.0.0:50052
# (deploy/k8s does, for liveness).
EXPOSE 50051 50052 9464
# throttle_server drains calls on SIGTERM (--shutdown_grace) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/throttle_server", "--listen=0.0.0.0:50051", \
            "--metrics_listen=0.0.0.0:9464"]
# OCI annotations (github.com/opencontainers/image-spec, annotations.md),
# last so that a new revision rebuilds nothing. VERSION is the project's
# (CMakeLists.txt's project(VERSION): deploy/validate checks they agree);
# REVISION (the git commit) and CREATED (RFC 3339) are given at build time
# (.dockerignore keeps .git out of the context), "unknown" when not.
# No license is declared anywhere in the repository, hence NOASSERTION.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
ARG SOURCE=unknown
LABEL org.opencontainers.image.title="throttle" \
      org.opencontainers.image.description="Shared throttle server: workers on many hosts get fuel at one configured rate over gRPC (throttle_server, throttlectl, throttle_tutorial)" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="NOASSERTION"
