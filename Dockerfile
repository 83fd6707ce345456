# The throttle server image: throttle_server (entry point), throttlectl and
# throttle_tutorial on a plain Debian 12 runtime, run as a non-root user.
#
#   docker build --network host -t throttle .
#   docker run --rm --network host throttle --throttle="crawl max_n=4 per=1"
#
# Two stages: "build" compiles with Debian's gRPC/protobuf/abseil packages
# and installs into /opt/throttle; the runtime stage copies only the three
# binaries and installs only the shared libraries they load. deploy/README.md
# describes the checks (deploy/verify-image.sh builds and runs this for real).
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      g++ cmake make pkg-config libgrpc++-dev libprotobuf-dev \
      protobuf-compiler protobuf-compiler-grpc libabsl-dev prometheus-cpp-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cmake -S . -B /build -DCMAKE_BUILD_TYPE=RelWithDebInfo \
      -DTHROTTLE_BUILD_TESTS=OFF \
 && cmake --build /build -j2 \
 && cmake --install /build --prefix /opt/throttle --strip

FROM debian:bookworm
# libgrpc++1.51 pulls in libgrpc, protobuf and abseil; prometheus-cpp serves
# the metrics endpoint.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libgrpc++1.51 libprometheus-cpp-core1.0 libprometheus-cpp-pull1.0 \
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
# 50051: gRPC (throttle.v1.Throttle, grpc.health.v1). 9464: Prometheus metrics.
EXPOSE 50051 9464
# throttle_server drains calls on SIGTERM (--shutdown_grace) and exits 0.
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/throttle_server", "--listen=0.0.0.0:50051", \
            "--metrics_listen=0.0.0.0:9464"]
