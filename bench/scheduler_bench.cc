// Scheduler microbenchmarks: the cost of one grant with 1 to 100,000
// waiting streams (it must stay flat), and of Latest/Mean with a full
// window at 100,000 grants per second. Fake time, no gRPC, one thread.
#include <vector>

#include "benchmark/benchmark.h"
#include "server/core/scheduler.h"

namespace throttle::server {
namespace {

const absl::Time kT0 = absl::UnixEpoch() + absl::Hours(1);

// One Advance that grants exactly one grant, with `streams` waiting.
void BM_GrantWithWaitingStreams(benchmark::State& state) {
  ThrottleConfig config;
  config.max_n = 1'000'000;
  config.per = absl::Seconds(1);
  Scheduler scheduler(config);
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 0;  // every stream stays hungry
  for (int64_t i = 0; i < state.range(0); ++i) {
    scheduler.Open(request, kT0, &events);
  }
  (void)scheduler.Start(kT0);
  absl::Time now = kT0;
  const absl::Duration interval = absl::Microseconds(1);
  int64_t grants = 0;
  for (auto _ : state) {
    events.clear();
    scheduler.Advance(now, &events);
    grants += static_cast<int64_t>(events.size());
    now += interval;
  }
  state.counters["grants"] = static_cast<double>(grants);
  state.SetItemsProcessed(grants);
}
BENCHMARK(BM_GrantWithWaitingStreams)
    ->Arg(1)
    ->Arg(100)
    ->Arg(10'000)
    ->Arg(100'000);

// Latest(1 s) and Mean with 60 s of history at 100,000 grants per second.
void BM_StatsWithFullWindow(benchmark::State& state) {
  ThrottleConfig config;
  config.max_n = 100'000;
  config.per = absl::Seconds(1);
  config.mode = Mode::kMonitorOnly;
  Scheduler scheduler(config);
  (void)scheduler.Start(kT0);
  absl::Time now = kT0;
  std::vector<StreamEvent> events;
  StreamRequest request;
  request.count = 1;
  for (int i = 0; i < 6'000'000; ++i) {  // 60 s at 100k/s
    events.clear();
    scheduler.Open(request, now, &events);
    scheduler.Advance(now, &events);
    now += absl::Microseconds(10);
  }
  for (auto _ : state) {
    benchmark::DoNotOptimize(scheduler.Latest(absl::Seconds(1), now));
    benchmark::DoNotOptimize(scheduler.Mean(now));
  }
}
BENCHMARK(BM_StatsWithFullWindow);

}  // namespace
}  // namespace throttle::server

BENCHMARK_MAIN();
