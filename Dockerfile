# The throttle server image: throttle_server (entry point), throttlectl and
# throttle_tutorial on a plain Debian 12 runtime, run as a non-root user.
#
#   docker build --network host -t throttle .
#   docker run --rm --network host throttle --throttle="crawl max_n=4 per=1"
#
# Two stages: "build" compiles with Debian's gRPC/protobuf/abseil packages
# and installs into /opt/throttle; the runtime stage copies only the three
# binaries and installs only the shared libraries they load. The server's
# etcd client (high availability, --etcd_endpoints) needs nothing more: its
# code is generated from the protos vendored in third_party/etcd by the
# protoc and grpc_cpp_plugin the build stage has. etcd itself is another
# image, deploy/etcd/Dockerfile. deploy/README.md describes the checks
# (deploy/verify-image.sh builds and runs both for real).
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

FROM debian:bookworm
# libgrpc++1.51 pulls in libgrpc, protobuf and abseil; prometheus-cpp serves
# the metrics endpoint, yaml-cpp reads the --config file. apt-get clean: a debootstrapped debian:bookworm
# keeps the downloaded packages (no docker-clean hook as in Docker Hub's).
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
      libyaml-cpp0.7 \
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
