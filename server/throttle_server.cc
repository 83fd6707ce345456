#include "server/throttle_server.h"

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/service.h"

namespace throttle::server {

struct ThrottleServer::Impl {
  std::unique_ptr<Service> service;
  std::unique_ptr<grpc::Server> server;
  absl::Mutex mu;
  bool shut_down ABSL_GUARDED_BY(mu) = false;
};

absl::StatusOr<std::unique_ptr<ThrottleServer>> ThrottleServer::Start(
    const ServerOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->service = std::make_unique<Service>(options.clock);
  for (const auto& [name, config] : options.throttles) {
    absl::Status status = impl->service->Create(name, config);
    if (!status.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("throttle \"", name, "\": ", status.message()));
    }
  }
  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen_address,
                           grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(impl->service.get());
  impl->server = builder.BuildAndStart();
  if (impl->server == nullptr || port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen_address));
  }
  return std::unique_ptr<ThrottleServer>(
      new ThrottleServer(std::move(impl), port));
}

ThrottleServer::ThrottleServer(std::unique_ptr<Impl> impl, int port)
    : impl_(std::move(impl)), port_(port) {}

ThrottleServer::~ThrottleServer() { Shutdown(absl::Seconds(5)); }

void ThrottleServer::Shutdown(absl::Duration deadline) {
  {
    absl::MutexLock lock(&impl_->mu);
    if (impl_->shut_down) return;
    impl_->shut_down = true;
  }
  // 1. Health says NOT_SERVING; 2. open streams are told (UNAVAILABLE);
  // 3. the transport drains until the deadline, then cancels what is left;
  // 4. the refill loop stops.
  if (auto* health = impl_->server->GetHealthCheckService()) {
    health->Shutdown();
  }
  impl_->service->BeginShutdown();
  impl_->server->Shutdown(std::chrono::system_clock::now() +
                          absl::ToChronoNanoseconds(deadline));
  impl_->server->Wait();
  impl_->service->StopRefillLoop();
}

void ThrottleServer::Wait() {
  absl::MutexLock lock(&impl_->mu);
  impl_->mu.Await(absl::Condition(&impl_->shut_down));
  // Shutdown sets the flag first; Server::Wait returns once it is done.
  impl_->server->Wait();
}

}  // namespace throttle::server
