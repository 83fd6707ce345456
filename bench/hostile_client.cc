// hostile_client: what a hostile or merely unlucky client does to the
// server, for bench/robustness.sh. Talks to the server with raw generated
// stubs, as a client in any language could.
//
//   --mode=cancel_bad  AwaitFuel calls that fail (no such throttle, bad
//                      count) cancelled at once, as fast as they go
//   --mode=churn       open and cancel --rate streams per second, each
//                      reading at most one message
//   --mode=stuck       one count-0 stream that is never read
//   --mode=readers     --streams count-0 streams that read; prints the
//                      grants each received
// Runs for --duration, then exits; prints one line "key=value ...".
#include <atomic>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "throttle/v1/throttle.grpc.pb.h"

ABSL_FLAG(std::string, address, "127.0.0.1:50051", "server host:port");
ABSL_FLAG(std::string, throttle, "bench", "throttle name");
ABSL_FLAG(std::string, mode, "readers", "cancel_bad, churn, stuck or readers");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "how long to run");
ABSL_FLAG(int, rate, 300, "churn: streams opened and cancelled per second");
ABSL_FLAG(int, streams, 3, "readers: concurrent streams");
ABSL_FLAG(int, threads, 4, "cancel_bad: client threads");

namespace {

using throttle::v1::AwaitFuelRequest;
using throttle::v1::AwaitFuelResponse;

std::unique_ptr<throttle::v1::Throttle::Stub> NewStub() {
  return throttle::v1::Throttle::NewStub(grpc::CreateChannel(
      absl::GetFlag(FLAGS_address), grpc::InsecureChannelCredentials()));
}

AwaitFuelRequest CountZero() {
  AwaitFuelRequest request;
  request.set_throttle(absl::GetFlag(FLAGS_throttle));
  request.set_count(0);
  return request;
}

int CancelBad(absl::Time end) {
  auto stub = NewStub();
  std::atomic<int64_t> calls{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < absl::GetFlag(FLAGS_threads); ++t) {
    threads.emplace_back([&, t] {
      for (int64_t i = 0; absl::Now() < end; ++i) {
        AwaitFuelRequest request;
        request.set_throttle(i % 2 ? "no-such-throttle" : "");
        if (i % 3 == 0) request.set_count(-1);
        grpc::ClientContext context;
        if ((i + t) % 2 == 0) {
          context.set_deadline(std::chrono::system_clock::now() +
                               std::chrono::microseconds(500));
        }
        auto reader = stub->AwaitFuel(&context, request);
        context.TryCancel();
        AwaitFuelResponse response;
        while (reader->Read(&response)) {
        }
        reader->Finish();
        ++calls;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  std::printf("mode=cancel_bad calls=%ld\n", static_cast<long>(calls.load()));
  return 0;
}

int Churn(absl::Time end) {
  auto stub = NewStub();
  const absl::Duration gap = absl::Seconds(1) / absl::GetFlag(FLAGS_rate);
  int64_t opened = 0;
  int64_t grants = 0;
  absl::Time next = absl::Now();
  while (absl::Now() < end) {
    grpc::ClientContext context;
    auto reader = stub->AwaitFuel(&context, CountZero());
    AwaitFuelResponse response;
    if (opened % 2 == 0 && reader->Read(&response)) grants += response.grants();
    context.TryCancel();
    while (reader->Read(&response)) {
    }
    reader->Finish();
    ++opened;
    next += gap;
    absl::SleepFor(next - absl::Now());  // paces the churn (a benchmark)
  }
  std::printf("mode=churn opened=%ld grants=%ld\n", static_cast<long>(opened),
              static_cast<long>(grants));
  return 0;
}

int Stuck(absl::Time end) {
  auto stub = NewStub();
  grpc::ClientContext context;
  auto reader = stub->AwaitFuel(&context, CountZero());  // never read
  absl::SleepFor(end - absl::Now());
  context.TryCancel();
  std::printf("mode=stuck\n");
  return 0;
}

int Readers(absl::Time end) {
  const int n = absl::GetFlag(FLAGS_streams);
  std::vector<int64_t> grants(static_cast<size_t>(n), 0);
  std::vector<std::thread> threads;
  std::vector<std::unique_ptr<grpc::ClientContext>> contexts;
  for (int i = 0; i < n; ++i) {
    contexts.push_back(std::make_unique<grpc::ClientContext>());
  }
  for (int i = 0; i < n; ++i) {
    threads.emplace_back([&, i] {
      auto stub = NewStub();
      auto reader =
          stub->AwaitFuel(contexts[static_cast<size_t>(i)].get(), CountZero());
      AwaitFuelResponse response;
      while (reader->Read(&response)) {
        grants[static_cast<size_t>(i)] += response.grants();
      }
      reader->Finish();
    });
  }
  absl::SleepFor(end - absl::Now());
  for (auto& context : contexts) context->TryCancel();
  for (auto& thread : threads) thread.join();
  std::printf("mode=readers grants=%s\n", absl::StrJoin(grants, ",").c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  const absl::Time end = absl::Now() + absl::GetFlag(FLAGS_duration);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  if (mode == "cancel_bad") return CancelBad(end);
  if (mode == "churn") return Churn(end);
  if (mode == "stuck") return Stuck(end);
  if (mode == "readers") return Readers(end);
  std::fprintf(stderr, "hostile_client: unknown --mode %s\n", mode.c_str());
  return 2;
}
