// throttle_bench: load generator and accuracy meter for the shared throttle.
//
// Starts a server (throttle_server, or raw_ceiling_server with --server=raw)
// unless --address names one, creates a throttle at --rate in --mode, runs
// --workers worker processes (this binary with --worker), each with
// --streams concurrent AwaitFuel callers, either one call per grant
// (--pattern=call, count 1) or one long stream each (--pattern=stream,
// count 0), or one call per grant each on a connection of its own
// (--pattern=connect: TCP and, with TLS, a full handshake per grant). Workers
// record every grant's arrival time (CLOCK_MONOTONIC, shared by all
// processes of the machine). Prints a readable table and, as its last line,
// one JSON object.
//
// The client libraries' own loops (issue 12): --pattern=tank runs, in each
// worker process, `while (!tank.killed()) tank.AwaitFuel();` through
// throttle::Tank (one Tank, one thread per --streams), recording each
// grant's return at the worker; --worker_command runs another program as
// each worker (bench/acquire_worker.py, bench/acquire_worker.js: the Python
// and Node loops) that writes the same output file. --idle opens the
// workers' streams on a throttle that never starts and reports the
// server's resident memory per open stream (--pattern=stream: AwaitFuel
// count 0; --pattern=acquire: Acquire streams, first waiting for one grant,
// then with their demand withdrawn). --grant_log_lateness also dates each
// grant by the server's --grant_log (its nominal time).
//
// TLS: --tls_ca, --tls_cert, --tls_key, --token, --tls_server_name are the
// workers' channel security (throttle::ChannelSecurity, CreateChannel), and
// the coordinator's too unless --controller_tls_cert/--controller_tls_key
// (or --controller_token) give it another identity (with a policy, the
// coordinator needs admin: it creates, starts and stops the throttle).
// --server_flags are passed to the server it starts (e.g. its
// --tls_cert/--tls_key/--tls_client_ca/--policy).
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "grpcpp/grpcpp.h"
#include "server/usage.h"
#include "tests/support/subprocess.h"
#include "throttle/channel.h"
#include "throttle/controller.h"
#include "throttle/names.h"
#include "throttle/tank.h"
#include "throttle/v1/throttle.grpc.pb.h"

ABSL_FLAG(std::string, address, "", "use this server instead of starting one");
ABSL_FLAG(std::string, server, "throttle", "throttle or raw (the ceiling)");
ABSL_FLAG(std::string, server_binary, THROTTLE_SERVER_BINARY,
          "path of throttle_server");
ABSL_FLAG(std::string, raw_server_binary, RAW_SERVER_BINARY,
          "path of raw_ceiling_server");
ABSL_FLAG(int, workers, 4, "worker processes");
ABSL_FLAG(int, streams, 1, "concurrent AwaitFuel callers per worker");
ABSL_FLAG(double, rate, 1000, "target grants per second (max_n per 1 s)");
ABSL_FLAG(std::string, mode, "smooth",
          "smooth, window, bucket, unbounded or monitor-only");
ABSL_FLAG(std::string, pattern, "stream",
          "call (count 1), stream (count 0), connect (count 1, each call "
          "on a new connection: a TCP and TLS handshake per grant), tank "
          "(the Tank loop: while (!tank.killed()) tank.AwaitFuel();) or, "
          "with --idle, acquire (Acquire streams)");
ABSL_FLAG(absl::Duration, duration, absl::Seconds(10), "measured run time");
ABSL_FLAG(absl::Duration, churn, absl::ZeroDuration(),
          "if > 0, each stream is cancelled after a random lifetime of about "
          "this and replaced by a new one");
ABSL_FLAG(std::string, dump_times, "",
          "write every grant's arrival time (seconds from Start) here");
ABSL_FLAG(std::string, label, "", "name of the scenario, copied to the JSON");
ABSL_FLAG(std::string, tls_ca, "",
          "PEM roots to verify the server with: the workers (and the "
          "coordinator) speak TLS");
ABSL_FLAG(std::string, tls_cert, "",
          "PEM client certificate of the workers (mTLS), with --tls_key");
ABSL_FLAG(std::string, tls_key, "", "PEM private key of --tls_cert");
ABSL_FLAG(std::string, token, "", "bearer token the workers send (TLS only)");
ABSL_FLAG(std::string, tls_server_name, "",
          "name the server's certificate must hold (default: the target's "
          "host)");
ABSL_FLAG(std::string, controller_tls_cert, "",
          "client certificate of the coordinator's controller (default: "
          "--tls_cert)");
ABSL_FLAG(std::string, controller_tls_key, "",
          "private key of --controller_tls_cert");
ABSL_FLAG(std::string, controller_token, "",
          "bearer token of the coordinator's controller (default: --token)");
ABSL_FLAG(std::string, server_flags, "",
          "extra flags, separated by spaces, for the server this starts "
          "(e.g. \"--tls_cert=server.pem --tls_key=server.key\")");
ABSL_FLAG(int, server_pid, 0,
          "with --address: the server's process id, whose CPU time "
          "(/proc/PID/stat) is measured around the run");
ABSL_FLAG(std::string, worker_command, "",
          "run this command as each worker instead of this binary (words "
          "separated by spaces, the first an absolute path); it is given "
          "--address=, --throttle=, --out=, --streams= and writes the "
          "worker output file (bench/acquire_worker.py, .js)");
ABSL_FLAG(int64_t, tank_ask_ahead, -1,
          "--pattern=tank: TankOptions::ask_ahead (grants asked ahead where "
          "fuel is unlimited; 0: exact counts); -1: the Tank's default");
ABSL_FLAG(bool, idle, false,
          "open the workers' streams on a throttle that is never started "
          "and report the server's resident memory (VmRSS) per stream");
ABSL_FLAG(bool, grant_log_lateness, false,
          "start the server with --grant_log and report each grant's "
          "lateness against the nominal time the server logged for it "
          "(matched by rank), besides the ideal-schedule lateness");
// Internal: worker processes.
ABSL_FLAG(bool, worker, false, "internal: run as a worker");
ABSL_FLAG(std::string, out, "", "internal: worker output file");
ABSL_FLAG(std::string, throttle, "bench", "throttle name");

namespace {

using throttle::v1::AcquireRequest;
using throttle::v1::AcquireResponse;
using throttle::v1::AwaitFuelRequest;
using throttle::v1::AwaitFuelResponse;

int64_t MonoNanos() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

// ------------------------------------------------------------- worker side

struct Recorder {
  absl::Mutex mu;
  std::vector<int64_t> arrivals ABSL_GUARDED_BY(mu);
  std::vector<int64_t> latencies ABSL_GUARDED_BY(mu);
  std::vector<int64_t> messages ABSL_GUARDED_BY(mu);  // arrival of each
  // Calls whose initial metadata arrived: the server has taken them (the
  // raw server sends it at once on --idle streams).
  std::atomic<int64_t> metadata{0};
};

class Slot;

// One AwaitFuel call. Deletes itself in OnDone after telling its slot.
class Call final : public grpc::ClientReadReactor<AwaitFuelResponse> {
 public:
  Call(Slot* slot, throttle::v1::Throttle::Stub* stub, int64_t count,
       const std::string& throttle);
  void OnReadInitialMetadataDone(bool ok) override;
  void OnReadDone(bool ok) override;
  void OnDone(const grpc::Status& status) override;
  void Cancel() { context_.TryCancel(); }
  int64_t started() const { return started_; }

 private:
  Slot* const slot_;
  grpc::ClientContext context_;
  AwaitFuelRequest request_;
  AwaitFuelResponse response_;
  const int64_t started_;
  bool first_ = true;
  bool stopped_ = false;
};

// Makes a channel of its own (a connection of its own: local subchannel
// pool) per call, for --pattern=connect. Channels done with are destroyed
// by the worker's main thread (Collect), never in a gRPC callback.
class Connector {
 public:
  Connector(std::string address,
            std::shared_ptr<grpc::ChannelCredentials> credentials,
            grpc::ChannelArguments args)
      : address_(std::move(address)),
        credentials_(std::move(credentials)),
        args_(std::move(args)) {
    args_.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  }
  std::unique_ptr<throttle::v1::Throttle::Stub> NewStub() {
    return throttle::v1::Throttle::NewStub(
        grpc::CreateCustomChannel(address_, credentials_, args_));
  }
  void Retire(std::unique_ptr<throttle::v1::Throttle::Stub> stub) {
    if (stub == nullptr) return;
    absl::MutexLock lock(&mu_);
    retired_.push_back(std::move(stub));
  }
  void Collect() {
    std::vector<std::unique_ptr<throttle::v1::Throttle::Stub>> done;
    {
      absl::MutexLock lock(&mu_);
      done.swap(retired_);
    }
  }

 private:
  const std::string address_;
  const std::shared_ptr<grpc::ChannelCredentials> credentials_;
  grpc::ChannelArguments args_;
  absl::Mutex mu_;
  std::vector<std::unique_ptr<throttle::v1::Throttle::Stub>> retired_
      ABSL_GUARDED_BY(mu_);
};

// One concurrent caller: makes calls one after another until stopped.
class Slot {
 public:
  Slot(throttle::v1::Throttle::Stub* stub, Recorder* recorder, int64_t count,
       std::string throttle, absl::Duration churn, uint32_t seed,
       Connector* connector = nullptr)
      : stub_(stub),
        connector_(connector),
        recorder_(recorder),
        count_(count),
        throttle_(std::move(throttle)),
        churn_(churn),
        rng_(seed) {}

  void Begin() {
    absl::MutexLock lock(&mu_);
    StartLocked();
  }
  void Record(int64_t grants, int64_t latency_ns) {
    const int64_t now = MonoNanos();
    absl::MutexLock lock(&recorder_->mu);
    recorder_->messages.push_back(now);
    for (int64_t i = 0; i < grants; ++i) recorder_->arrivals.push_back(now);
    if (latency_ns >= 0) recorder_->latencies.push_back(latency_ns);
  }
  void Metadata() { recorder_->metadata.fetch_add(1); }
  void Done(bool stopped, const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    call_ = nullptr;
    // Stopped, shut down or failed: this caller is finished. A call cut by
    // churn (CANCELLED while running) is replaced.
    const bool churned =
        status.error_code() == grpc::StatusCode::CANCELLED && !halt_;
    if (stopped || halt_ || (!status.ok() && !churned)) {
      finished_ = true;
      if (!status.ok() && !churned && !stopped && !halt_) {
        std::fprintf(stderr, "worker call ended: %d %s\n", status.error_code(),
                     status.error_message().c_str());
      }
      return;
    }
    StartLocked();
  }
  // Cancels the call if it outlived its churn lifetime.
  void MaybeChurn(int64_t now) {
    absl::MutexLock lock(&mu_);
    if (call_ != nullptr && now >= deadline_) call_->Cancel();
  }
  void Halt() {
    absl::MutexLock lock(&mu_);
    halt_ = true;
    if (call_ != nullptr) call_->Cancel();
  }
  bool finished() {
    absl::MutexLock lock(&mu_);
    return finished_;
  }

 private:
  void StartLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (churn_ > absl::ZeroDuration()) {
      std::uniform_real_distribution<double> f(0.5, 1.5);
      deadline_ =
          MonoNanos() +
          static_cast<int64_t>(absl::ToDoubleNanoseconds(churn_) * f(rng_));
    }
    if (connector_ != nullptr) {
      connector_->Retire(std::move(own_stub_));
      own_stub_ = connector_->NewStub();
      call_ = new Call(this, own_stub_.get(), count_, throttle_);
      return;
    }
    call_ = new Call(this, stub_, count_, throttle_);
  }

  throttle::v1::Throttle::Stub* const stub_;
  Connector* const connector_;
  Recorder* const recorder_;
  const int64_t count_;
  const std::string throttle_;
  const absl::Duration churn_;
  absl::Mutex mu_;
  std::mt19937 rng_ ABSL_GUARDED_BY(mu_);
  Call* call_ ABSL_GUARDED_BY(mu_) = nullptr;
  // --pattern=connect: the stub (and channel) of the current call.
  std::unique_ptr<throttle::v1::Throttle::Stub> own_stub_ ABSL_GUARDED_BY(mu_);
  int64_t deadline_ ABSL_GUARDED_BY(mu_) = INT64_MAX;
  bool halt_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

Call::Call(Slot* slot, throttle::v1::Throttle::Stub* stub, int64_t count,
           const std::string& throttle)
    : slot_(slot), started_(MonoNanos()) {
  request_.set_throttle(throttle);
  request_.set_count(count);
  stub->async()->AwaitFuel(&context_, &request_, this);
  StartRead(&response_);
  StartCall();
}

void Call::OnReadInitialMetadataDone(bool ok) {
  if (ok) slot_->Metadata();
}

void Call::OnReadDone(bool ok) {
  if (!ok) return;
  slot_->Record(response_.grants(), first_ ? MonoNanos() - started_ : -1);
  first_ = false;
  if (response_.end() == throttle::v1::END_REASON_STOPPED) stopped_ = true;
  StartRead(&response_);
}

void Call::OnDone(const grpc::Status& status) {
  // The slot forgets this call under its lock before it is deleted, so
  // Halt() and MaybeChurn() never reach a deleted call.
  slot_->Done(stopped_, status);
  delete this;
}

// The workers' channel security, from --tls_ca, --tls_cert, --tls_key,
// --token, --tls_server_name.
throttle::ChannelSecurity WorkerSecurity() {
  throttle::ChannelSecurity security;
  security.ca_file = absl::GetFlag(FLAGS_tls_ca);
  security.cert_file = absl::GetFlag(FLAGS_tls_cert);
  security.key_file = absl::GetFlag(FLAGS_tls_key);
  security.token = absl::GetFlag(FLAGS_token);
  security.server_name = absl::GetFlag(FLAGS_tls_server_name);
  return security;
}

// The coordinator's: the workers', with the controller's own identity if
// --controller_tls_cert or --controller_token give one.
throttle::ChannelSecurity ControllerSecurity() {
  throttle::ChannelSecurity security = WorkerSecurity();
  if (!absl::GetFlag(FLAGS_controller_tls_cert).empty() ||
      !absl::GetFlag(FLAGS_controller_tls_key).empty()) {
    security.cert_file = absl::GetFlag(FLAGS_controller_tls_cert);
    security.key_file = absl::GetFlag(FLAGS_controller_tls_key);
  }
  if (!absl::GetFlag(FLAGS_controller_token).empty()) {
    security.token = absl::GetFlag(FLAGS_controller_token);
  }
  return security;
}

// What the workers speak: plaintext, tls or mtls, "+token" with a token.
std::string SecurityName(const throttle::ChannelSecurity& s) {
  std::string name = !s.cert_file.empty() ? "mtls"
                     : !s.ca_file.empty() ? "tls"
                                          : "plaintext";
  if (!s.token.empty()) absl::StrAppend(&name, "+token");
  return name;
}

// One idle Acquire stream (--idle --pattern=acquire): its first message
// asks for one grant (so that the server counts it in waiting_streams, and
// the coordinator knows it arrived), Withdraw() takes that demand back, and
// it then holds the stream open without demand until cancelled. Owned by
// the worker, which waits for OnDone (Finished()) before destroying it.
class AcquireCall final
    : public grpc::ClientBidiReactor<AcquireRequest, AcquireResponse> {
 public:
  AcquireCall(throttle::v1::Throttle::Stub* stub, const std::string& throttle,
              Recorder* recorder)
      : recorder_(recorder) {
    first_.set_throttle(throttle);
    first_.set_demand(1);
    withdraw_.set_withdraw(1);
    stub->async()->Acquire(&context_, this);
    writing_ = true;
    StartWrite(&first_);
    StartRead(&response_);
    StartCall();
  }
  // Called from the worker's signal thread: StartWrite outside the lock,
  // in case gRPC runs OnWriteDone on this thread before it returns.
  void Withdraw() ABSL_LOCKS_EXCLUDED(mu_) {
    {
      absl::MutexLock lock(&mu_);
      if (done_ || withdrawn_) return;
      withdrawn_ = true;
      if (writing_) return;  // OnWriteDone sends it
      writing_ = true;
      sent_withdraw_ = true;
    }
    StartWrite(&withdraw_);
  }
  void Cancel() { context_.TryCancel(); }
  bool Finished() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return done_;
  }
  int64_t grants() ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    return grants_;
  }

  void OnReadInitialMetadataDone(bool ok) override {
    if (ok) recorder_->metadata.fetch_add(1);
  }
  void OnWriteDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (ok && withdrawn_ && !sent_withdraw_) {
      sent_withdraw_ = true;
      writing_ = true;
      StartWrite(&withdraw_);
    }
  }
  void OnReadDone(bool ok) override ABSL_LOCKS_EXCLUDED(mu_) {
    if (!ok) return;
    {
      absl::MutexLock lock(&mu_);
      grants_ += response_.grants();
    }
    StartRead(&response_);
  }
  void OnDone(const grpc::Status& status) override ABSL_LOCKS_EXCLUDED(mu_) {
    if (!status.ok() && status.error_code() != grpc::StatusCode::CANCELLED) {
      std::fprintf(stderr, "worker call ended: %d %s\n", status.error_code(),
                   status.error_message().c_str());
    }
    absl::MutexLock lock(&mu_);
    done_ = true;
  }

 private:
  Recorder* const recorder_;
  grpc::ClientContext context_;
  AcquireRequest first_;
  AcquireRequest withdraw_;
  AcquireResponse response_;
  absl::Mutex mu_;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool withdrawn_ ABSL_GUARDED_BY(mu_) = false;
  // The first write was still in flight when Withdraw() came: OnWriteDone
  // sends the withdrawal.
  bool sent_withdraw_ ABSL_GUARDED_BY(mu_) = false;
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  int64_t grants_ ABSL_GUARDED_BY(mu_) = 0;
};

// Writes the worker output file: the grants' arrival times, the messages'
// and the latencies (three int64 arrays, each after its length).
bool WriteWorkerOutput(const std::string& path,
                       const std::vector<int64_t>& arrivals,
                       const std::vector<int64_t>& messages,
                       const std::vector<int64_t>& latencies) {
  std::ofstream out(path, std::ios::binary);
  for (const std::vector<int64_t>* v : {&arrivals, &messages, &latencies}) {
    const int64_t n = static_cast<int64_t>(v->size());
    out.write(reinterpret_cast<const char*>(&n), sizeof(n));
    out.write(reinterpret_cast<const char*>(v->data()),
              static_cast<std::streamsize>(v->size() * sizeof(int64_t)));
  }
  return static_cast<bool>(out);
}

// Tells the coordinator that every stream of this worker was taken by the
// server (its initial metadata came back): the file OUT.ready.
void MarkReady() {
  std::ofstream(absl::GetFlag(FLAGS_out) + ".ready") << "ready\n";
}

// --pattern=tank: one Tank per --streams, each in a thread of its own
// running the seed's loop. A grant's time is taken when AwaitFuel returns
// with it (what the worker's own code sees); the latency is that of each
// AwaitFuel. SIGTERM closes the Tanks.
int RunTankWorker(const std::shared_ptr<grpc::Channel>& channel,
                  const sigset_t& signals) {
  const int streams = absl::GetFlag(FLAGS_streams);
  std::vector<std::unique_ptr<throttle::Tank>> tanks;
  for (int i = 0; i < streams; ++i) {
    throttle::TankOptions options;
    options.worker_id = absl::StrCat("bench-", getpid(), "-", i);
    if (const int64_t ahead = absl::GetFlag(FLAGS_tank_ask_ahead); ahead >= 0) {
      options.ask_ahead = ahead;
    }
    tanks.push_back(std::make_unique<throttle::Tank>(
        channel, absl::GetFlag(FLAGS_throttle), options));
  }
  std::atomic<bool> halted{false};
  std::vector<std::vector<int64_t>> times(static_cast<size_t>(streams));
  std::vector<std::vector<int64_t>> waits(static_cast<size_t>(streams));
  std::vector<std::thread> threads;
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&, i] {
      throttle::Tank& tank = *tanks[static_cast<size_t>(i)];
      std::vector<int64_t>& t = times[static_cast<size_t>(i)];
      std::vector<int64_t>& w = waits[static_cast<size_t>(i)];
      t.reserve(1 << 20);
      w.reserve(1 << 20);
      while (!tank.killed()) {
        const int64_t asked = MonoNanos();
        const throttle::FuelResult fuel = tank.AwaitFuel();
        if (fuel.ok()) {
          const int64_t now = MonoNanos();
          t.push_back(now);
          w.push_back(now - asked);
        } else if (fuel.outcome == throttle::FuelOutcome::kError) {
          if (!halted.load()) {
            std::fprintf(stderr, "worker call ended: %s\n",
                         fuel.status.ToString().c_str());
          }
          break;
        }
      }
    });
  }
  std::thread signal_thread([&] {
    int signal = 0;
    while (sigwait(&signals, &signal) == 0 && signal != SIGTERM) {
    }
    halted.store(true);
    for (auto& tank : tanks) tank->Close();
  });
  for (auto& thread : threads) thread.join();
  if (!halted.load()) kill(getpid(), SIGTERM);  // releases the signal thread
  signal_thread.join();
  std::vector<int64_t> arrivals, latencies;
  for (int i = 0; i < streams; ++i) {
    const auto& t = times[static_cast<size_t>(i)];
    const auto& w = waits[static_cast<size_t>(i)];
    arrivals.insert(arrivals.end(), t.begin(), t.end());
    latencies.insert(latencies.end(), w.begin(), w.end());
  }
  std::sort(arrivals.begin(), arrivals.end());
  return WriteWorkerOutput(absl::GetFlag(FLAGS_out), arrivals, {}, latencies)
             ? 0
             : 1;
}

// --idle --pattern=acquire: --streams idle Acquire streams; SIGUSR1
// withdraws their demand, SIGTERM cancels them.
int RunIdleAcquireWorker(throttle::v1::Throttle::Stub* stub,
                         const sigset_t& signals) {
  Recorder recorder;
  std::vector<std::unique_ptr<AcquireCall>> calls;
  for (int i = 0; i < absl::GetFlag(FLAGS_streams); ++i) {
    calls.push_back(std::make_unique<AcquireCall>(
        stub, absl::GetFlag(FLAGS_throttle), &recorder));
  }
  std::atomic<bool> halted{false};
  std::thread signal_thread([&] {
    int signal = 0;
    while (sigwait(&signals, &signal) == 0) {
      if (signal == SIGUSR1) {
        for (auto& call : calls) call->Withdraw();
        continue;
      }
      break;
    }
    halted.store(true);
    for (auto& call : calls) call->Cancel();
  });
  bool ready = false;
  while (true) {
    const bool all_done = std::all_of(calls.begin(), calls.end(),
                                      [](auto& c) { return c->Finished(); });
    if (all_done) break;
    if (!ready &&
        recorder.metadata.load() >= static_cast<int64_t>(calls.size())) {
      ready = true;
      MarkReady();
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  if (!halted.load()) kill(getpid(), SIGTERM);
  signal_thread.join();
  int64_t grants = 0;
  for (auto& call : calls) grants += call->grants();
  std::vector<int64_t> arrivals(static_cast<size_t>(grants), MonoNanos());
  return WriteWorkerOutput(absl::GetFlag(FLAGS_out), arrivals, {}, {}) ? 0 : 1;
}

int RunWorker() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // --idle --pattern=acquire: withdraw
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  const throttle::ChannelSecurity security = WorkerSecurity();
  const std::string pattern = absl::GetFlag(FLAGS_pattern);
  auto channel =
      throttle::CreateChannel(absl::GetFlag(FLAGS_address), security);
  if (!channel.ok()) {
    std::fprintf(stderr, "worker: %s\n", channel.status().ToString().c_str());
    return 1;
  }
  if (pattern == "tank") return RunTankWorker(*channel, signals);
  auto stub = throttle::v1::Throttle::NewStub(*channel);
  if (pattern == "acquire") return RunIdleAcquireWorker(stub.get(), signals);
  std::unique_ptr<Connector> connector;
  if (pattern == "connect") {
    auto credentials = throttle::MakeChannelCredentials(security);
    if (!credentials.ok()) return 1;  // CreateChannel would have failed
    connector =
        std::make_unique<Connector>(absl::GetFlag(FLAGS_address), *credentials,
                                    throttle::ChannelArgumentsFor(security));
  }
  Recorder recorder;
  const int64_t count = pattern == "stream" ? 0 : 1;
  std::vector<std::unique_ptr<Slot>> slots;
  for (int i = 0; i < absl::GetFlag(FLAGS_streams); ++i) {
    slots.push_back(std::make_unique<Slot>(
        stub.get(), &recorder, count, absl::GetFlag(FLAGS_throttle),
        absl::GetFlag(FLAGS_churn), static_cast<uint32_t>(getpid() * 1000 + i),
        connector.get()));
  }
  for (auto& slot : slots) slot->Begin();

  // SIGTERM (raw mode, or the coordinator giving up) halts every slot.
  std::thread signal_thread([&] {
    int signal = 0;
    while (sigwait(&signals, &signal) == 0 && signal != SIGTERM) {
    }
    for (auto& slot : slots) slot->Halt();
  });
  bool ready = false;
  while (true) {
    if (!ready &&
        recorder.metadata.load() >= static_cast<int64_t>(slots.size())) {
      ready = true;
      MarkReady();
    }
    bool all = true;
    const int64_t now = MonoNanos();
    for (auto& slot : slots) {
      if (!slot->finished()) {
        all = false;
        slot->MaybeChurn(now);
      }
    }
    if (connector != nullptr) connector->Collect();
    if (all) break;
    absl::SleepFor(absl::Milliseconds(5));
  }
  kill(getpid(), SIGTERM);  // releases the signal thread
  signal_thread.join();
  slots.clear();  // the last calls' channels go before the connector's
  if (connector != nullptr) connector->Collect();

  absl::MutexLock lock(&recorder.mu);
  return WriteWorkerOutput(absl::GetFlag(FLAGS_out), recorder.arrivals,
                           recorder.messages, recorder.latencies)
             ? 0
             : 1;
}

// -------------------------------------------------------- coordinator side

struct WorkerResult {
  std::vector<int64_t> arrivals;  // one per grant
  std::vector<int64_t> messages;  // one per message
  std::vector<int64_t> latencies;
};

bool ReadWorker(const std::string& path, WorkerResult* result) {
  std::ifstream in(path, std::ios::binary);
  for (std::vector<int64_t>* v :
       {&result->arrivals, &result->messages, &result->latencies}) {
    int64_t n = 0;
    if (!in.read(reinterpret_cast<char*>(&n), sizeof(n))) return false;
    v->resize(static_cast<size_t>(n));
    in.read(reinterpret_cast<char*>(v->data()),
            static_cast<std::streamsize>(n * sizeof(int64_t)));
  }
  return static_cast<bool>(in);
}

// CPU seconds (user + system) of a process, from /proc/PID/stat.
double CpuSeconds(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/stat"));
  std::string content((std::istreambuf_iterator<char>(in)), {});
  const size_t close = content.rfind(')');
  if (close == std::string::npos) return 0;
  std::vector<std::string> fields;
  std::string field;
  for (size_t i = close + 2; i <= content.size(); ++i) {
    if (i == content.size() || content[i] == ' ') {
      fields.push_back(field);
      field.clear();
    } else {
      field.push_back(content[i]);
    }
  }
  // After ")": state is field 0; utime is 11, stime 12.
  if (fields.size() < 13) return 0;
  return (std::stod(fields[11]) + std::stod(fields[12])) /
         static_cast<double>(sysconf(_SC_CLK_TCK));
}

// Peak resident set (VmHWM) in MiB.
double PeakRssMiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) / 1024.0;
  }
  return 0;
}

// Resident set (VmRSS) in KiB, -1 if unknown.
int64_t ResidentKiB(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

// The throttle's waiting_streams, -1 if it cannot be listed.
int64_t WaitingStreams(throttle::Controller& controller,
                       const std::string& name) {
  auto list = controller.ListThrottles();
  if (!list.ok()) return -1;
  for (const auto& info : list->throttles()) {
    if (info.name() == name) return info.waiting_streams();
  }
  return -1;
}

// Polls `done` every 20 ms until it holds or `timeout` passes.
bool PollUntil(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!done()) {
    if (absl::Now() >= deadline) return false;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return true;
}

// The server's resident memory, once it has settled: read every 250 ms
// until two reads in a row differ by less than 1%, at most 5 s.
int64_t SettledResidentKiB(pid_t pid) {
  int64_t last = ResidentKiB(pid);
  for (int i = 0; i < 20; ++i) {
    absl::SleepFor(absl::Milliseconds(250));
    const int64_t now = ResidentKiB(pid);
    if (std::abs(now - last) * 100 < std::max<int64_t>(last, 1)) return now;
    last = now;
  }
  return last;
}

// The CLOCK_REALTIME - CLOCK_MONOTONIC offset in ns, from the tightest of a
// few pairs of reads: the server's --grant_log dates grants on the wall
// clock with the same offset taken once.
int64_t WallMinusMonoNanos() {
  int64_t best_span = INT64_MAX, offset = 0;
  for (int i = 0; i < 20; ++i) {
    timespec a, w, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    clock_gettime(CLOCK_REALTIME, &w);
    clock_gettime(CLOCK_MONOTONIC, &b);
    const int64_t ma = int64_t{a.tv_sec} * 1'000'000'000 + a.tv_nsec;
    const int64_t mb = int64_t{b.tv_sec} * 1'000'000'000 + b.tv_nsec;
    const int64_t wall = int64_t{w.tv_sec} * 1'000'000'000 + w.tv_nsec;
    if (mb - ma < best_span) {
      best_span = mb - ma;
      offset = wall - (ma + mb) / 2;
    }
  }
  return offset;
}

// The nominal times (CLOCK_MONOTONIC ns) of every grant of `name` in the
// server's --grant_log, sorted: "<throttle> <first, unix ns> <grants>
// <spacing ns> <writer>" per batch.
std::vector<int64_t> LoggedGrants(const std::string& path,
                                  const std::string& name) {
  const int64_t offset = WallMinusMonoNanos();
  std::vector<int64_t> times;
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    std::vector<std::string> f = absl::StrSplit(line, ' ');
    if (f.size() < 4 || f[0] != name) continue;
    const int64_t first = std::stoll(f[1]) - offset;
    const int64_t grants = std::stoll(f[2]);
    const int64_t spacing = std::stoll(f[3]);
    for (int64_t k = 0; k < grants; ++k) times.push_back(first + k * spacing);
  }
  std::sort(times.begin(), times.end());
  return times;
}

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0;
  const size_t i = std::min(
      v.size() - 1, static_cast<size_t>(p * static_cast<double>(v.size())));
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(i),
                   v.end());
  return v[i];
}

int Fail(const std::string& message) {
  std::fprintf(stderr, "throttle_bench: %s\n", message.c_str());
  return 1;
}

std::string TempDir() {
  char pattern[] = "/tmp/throttle_bench.XXXXXX";
  return mkdtemp(pattern) == nullptr ? "/tmp" : pattern;
}

// A binary beside this one (installed layout) when the build-tree default
// does not exist.
std::string Locate(const std::string& configured, const std::string& name) {
  struct stat st;
  if (stat(configured.c_str(), &st) == 0) return configured;
  const std::string self = throttle::SelfExecutable();
  return self.substr(0, self.rfind('/') + 1) + name;
}

int RunCoordinator() {
  const bool raw = absl::GetFlag(FLAGS_server) == "raw";
  const std::string dir = TempDir();
  const std::string name = absl::GetFlag(FLAGS_throttle);
  const double rate = absl::GetFlag(FLAGS_rate);
  const std::string mode = absl::GetFlag(FLAGS_mode);
  const int workers = absl::GetFlag(FLAGS_workers);
  const int streams = absl::GetFlag(FLAGS_streams);
  const bool idle = absl::GetFlag(FLAGS_idle);
  const std::string pattern = absl::GetFlag(FLAGS_pattern);
  const std::string grant_log = dir + "/grants.log";
  const bool grant_log_lateness = absl::GetFlag(FLAGS_grant_log_lateness) &&
                                  !raw && absl::GetFlag(FLAGS_address).empty();

  std::string address = absl::GetFlag(FLAGS_address);
  std::optional<throttle::Subprocess> server;
  if (address.empty()) {
    const std::string port_file = dir + "/port";
    std::vector<std::string> argv = {
        raw ? Locate(absl::GetFlag(FLAGS_raw_server_binary),
                     "raw_ceiling_server")
            : Locate(absl::GetFlag(FLAGS_server_binary), "throttle_server"),
        "--listen=127.0.0.1:0", "--port_file=" + port_file};
    for (absl::string_view flag : absl::StrSplit(
             absl::GetFlag(FLAGS_server_flags), ' ', absl::SkipEmpty())) {
      argv.emplace_back(flag);
    }
    if (grant_log_lateness) argv.push_back("--grant_log=" + grant_log);
    auto spawned = throttle::Subprocess::Spawn(argv);
    if (!spawned.ok()) return Fail(spawned.status().ToString());
    server = *std::move(spawned);
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    int port = 0;
    while (absl::Now() < deadline) {
      std::ifstream in(port_file);
      if (in >> port && port > 0) break;
      absl::SleepFor(absl::Milliseconds(10));
    }
    if (port <= 0) return Fail("server did not start");
    address = absl::StrCat("127.0.0.1:", port);
  }

  auto controller_channel =
      throttle::CreateChannel(address, ControllerSecurity());
  if (!controller_channel.ok()) {
    return Fail(controller_channel.status().ToString());
  }
  throttle::Controller controller(*controller_channel);
  if (!raw) {
    throttle::v1::ThrottleConfig config;
    config.set_max_n(static_cast<int64_t>(std::llround(rate)));
    config.set_per_seconds(1);
    absl::StatusOr<throttle::v1::Mode> parsed = throttle::ModeFromName(mode);
    if (!parsed.ok()) return Fail(parsed.status().ToString());
    config.set_mode(*parsed);
    (void)controller.DeleteThrottle(name);
    auto created = controller.CreateThrottle(name, config);
    if (!created.ok()) return Fail(created.status().ToString());
  }

  const pid_t server_pid =
      server ? server->pid()
             : static_cast<pid_t>(absl::GetFlag(FLAGS_server_pid));
  // --idle: the server's memory before the workers connect.
  const int64_t rss_before_kib =
      idle && server_pid > 0 ? SettledResidentKiB(server_pid) : -1;
  const double open_cpu0 = server_pid > 0 ? CpuSeconds(server_pid) : 0;
  const int64_t t_open = MonoNanos();

  std::vector<throttle::Subprocess> children;
  std::vector<std::string> outputs;
  const std::string worker_command = absl::GetFlag(FLAGS_worker_command);
  for (int i = 0; i < workers; ++i) {
    outputs.push_back(absl::StrCat(dir, "/worker", i));
    std::vector<std::string> argv;
    if (worker_command.empty()) {
      argv = {throttle::SelfExecutable(),
              "--worker",
              "--pattern=" + pattern,
              absl::StrCat("--churn=",
                           absl::FormatDuration(absl::GetFlag(FLAGS_churn))),
              "--tls_ca=" + absl::GetFlag(FLAGS_tls_ca),
              "--tls_cert=" + absl::GetFlag(FLAGS_tls_cert),
              "--tls_key=" + absl::GetFlag(FLAGS_tls_key),
              "--token=" + absl::GetFlag(FLAGS_token),
              "--tls_server_name=" + absl::GetFlag(FLAGS_tls_server_name),
              absl::StrCat("--tank_ask_ahead=",
                           absl::GetFlag(FLAGS_tank_ask_ahead))};
    } else {
      argv = absl::StrSplit(worker_command, ' ', absl::SkipEmpty());
    }
    argv.insert(argv.end(), {"--address=" + address, "--throttle=" + name,
                             "--out=" + outputs.back(),
                             absl::StrCat("--streams=", streams)});
    auto child = throttle::Subprocess::Spawn(argv);
    if (!child.ok()) return Fail(child.status().ToString());
    children.push_back(*std::move(child));
  }
  if (idle) {
    // Every stream taken by the server: counted as waiting by the throttle
    // server, or its initial metadata back from the raw server.
    const int64_t total = int64_t{workers} * streams;
    bool worker_ended = false;
    const bool all_open = PollUntil(
        [&] {
          // A worker whose streams ended (e.g. UNIMPLEMENTED) never opens
          // them all: stop waiting.
          for (auto& child : children) {
            if (child.Wait(absl::ZeroDuration()).ok()) worker_ended = true;
          }
          if (worker_ended) return true;
          if (!raw) return WaitingStreams(controller, name) >= total;
          for (const auto& o : outputs) {
            struct stat st;
            if (stat((o + ".ready").c_str(), &st) != 0) return false;
          }
          return true;
        },
        absl::Seconds(120));
    if (worker_ended) return Fail("a worker ended before its streams opened");
    if (!all_open) {
      return Fail("the idle streams did not all open within 120 s");
    }
    const double open_s = static_cast<double>(MonoNanos() - t_open) / 1e9;
    const double open_cpu_s = CpuSeconds(server_pid) - open_cpu0;
    const int64_t rss_waiting_kib = SettledResidentKiB(server_pid);
    int64_t rss_idle_kib = -1;
    if (pattern == "acquire") {
      for (auto& child : children) child.Signal(SIGUSR1);
      if (!raw &&
          !PollUntil([&] { return WaitingStreams(controller, name) == 0; },
                     absl::Seconds(60))) {
        return Fail("the Acquire streams' demand was not withdrawn in 60 s");
      }
      if (raw) absl::SleepFor(absl::Seconds(1));
      rss_idle_kib = SettledResidentKiB(server_pid);
    }
    for (auto& child : children) child.Signal(SIGTERM);
    int64_t grants = 0;
    for (int i = 0; i < workers; ++i) {
      auto code = children[static_cast<size_t>(i)].Wait(absl::Seconds(120));
      WorkerResult result;
      if (!code.ok() || *code != 0 ||
          !ReadWorker(outputs[static_cast<size_t>(i)], &result)) {
        return Fail(absl::StrCat("worker ", i, " failed"));
      }
      grants += static_cast<int64_t>(result.arrivals.size());
      std::remove(outputs[static_cast<size_t>(i)].c_str());
      std::remove((outputs[static_cast<size_t>(i)] + ".ready").c_str());
    }
    if (server) {
      server->Signal(SIGTERM);
      (void)server->Wait(absl::Seconds(30));
    }
    const auto per_stream = [&](int64_t kib) {
      return kib < 0 ? -1.0
                     : static_cast<double>(kib - rss_before_kib) /
                           static_cast<double>(total);
    };
    std::printf(
        "%-10s idle %-8s W=%d S=%d streams=%lld rss before=%lld KiB "
        "waiting=%lld KiB (%.2f KiB/stream) idle=%lld KiB (%.2f KiB/stream) "
        "open=%.2fs server cpu/stream open=%.0fus grants=%lld\n",
        raw ? "raw" : "throttle", pattern.c_str(), workers, streams,
        static_cast<long long>(total), static_cast<long long>(rss_before_kib),
        static_cast<long long>(rss_waiting_kib), per_stream(rss_waiting_kib),
        static_cast<long long>(rss_idle_kib), per_stream(rss_idle_kib), open_s,
        open_cpu_s / static_cast<double>(total) * 1e6,
        static_cast<long long>(grants));
    absl::PrintF(
        "{\"label\":\"%s\",\"server\":\"%s\",\"idle\":true,"
        "\"pattern\":\"%s\",\"workers\":%d,\"streams_per_worker\":%d,"
        "\"streams\":%d,\"rss_before_kib\":%d,\"rss_waiting_kib\":%d,"
        "\"rss_idle_kib\":%d,\"waiting_kib_per_stream\":%.3f,"
        "\"idle_kib_per_stream\":%.3f,\"open_s\":%.3f,"
        "\"server_cpu_us_per_stream_open\":%.1f,\"grants\":%d,"
        "\"server_flags\":\"%s\"}\n",
        absl::GetFlag(FLAGS_label), raw ? "raw" : "throttle", pattern, workers,
        streams, total, rss_before_kib, rss_waiting_kib, rss_idle_kib,
        per_stream(rss_waiting_kib), per_stream(rss_idle_kib), open_s,
        open_cpu_s / static_cast<double>(total) * 1e6, grants,
        absl::GetFlag(FLAGS_server_flags));
    std::remove((dir + "/port").c_str());
    rmdir(dir.c_str());
    return 0;
  }
  if (!raw) {
    // Every caller waits before the start: the schedule begins saturated.
    const absl::Time deadline = absl::Now() + absl::Seconds(120);
    bool ready = false;
    while (!ready && absl::Now() < deadline) {
      auto list = controller.ListThrottles();
      for (const auto& info :
           list.ok() ? list->throttles() : decltype(list->throttles()){}) {
        if (info.name() == name &&
            info.waiting_streams() >= int64_t{workers} * streams) {
          ready = true;
        }
      }
      if (!ready) absl::SleepFor(absl::Milliseconds(20));
    }
    if (!ready) return Fail("workers did not all wait within 120 s");
  } else {
    absl::SleepFor(absl::Milliseconds(500));  // connections up, flooding
  }

  const auto workers_cpu = [&children] {
    double sum = 0;
    for (const auto& child : children) sum += CpuSeconds(child.pid());
    return sum;
  };
  const double cpu0 = server_pid > 0 ? CpuSeconds(server_pid) : 0;
  const double wcpu0 = workers_cpu();
  const int64_t t_start = MonoNanos();
  if (!raw) {
    auto started = controller.Start(name);
    if (!started.ok()) return Fail(started.status().ToString());
  }
  absl::SleepFor(absl::GetFlag(FLAGS_duration));
  const int64_t t_stop = MonoNanos();
  const double cpu1 = server_pid > 0 ? CpuSeconds(server_pid) : 0;
  const double wcpu1 = workers_cpu();
  const double rss = server_pid > 0 ? PeakRssMiB(server_pid) : 0;
  const int64_t server_rss_kib = server_pid > 0 ? ResidentKiB(server_pid) : -1;
  int64_t server_total = -1;
  if (!raw) {
    auto stopped = controller.Stop(name);
    if (!stopped.ok()) return Fail(stopped.status().ToString());
    server_total = stopped->total_emissions();
  } else {
    for (auto& child : children) child.Signal(SIGTERM);
  }

  std::vector<int64_t> all;
  std::vector<int64_t> every;  // all, also outside the measured window
  std::vector<double> latencies;
  std::vector<double> shares;
  int64_t messages = 0;
  for (int i = 0; i < workers; ++i) {
    auto code = children[static_cast<size_t>(i)].Wait(absl::Seconds(120));
    WorkerResult result;
    if (!code.ok() || *code != 0 ||
        !ReadWorker(outputs[static_cast<size_t>(i)], &result)) {
      return Fail(absl::StrCat("worker ", i, " failed"));
    }
    int64_t in_window = 0;
    every.insert(every.end(), result.arrivals.begin(), result.arrivals.end());
    for (int64_t t : result.arrivals) {
      if (t >= t_start && t <= t_stop) {
        all.push_back(t);
        ++in_window;
      }
    }
    shares.push_back(static_cast<double>(in_window));
    for (int64_t t : result.messages) messages += (t >= t_start && t <= t_stop);
    for (int64_t l : result.latencies)
      latencies.push_back(static_cast<double>(l) / 1e3);
  }
  if (server) {
    server->Signal(SIGTERM);
    (void)server->Wait(absl::Seconds(30));
  }
  std::sort(all.begin(), all.end());
  std::sort(every.begin(), every.end());

  const double seconds = static_cast<double>(t_stop - t_start) / 1e9;
  const double grants = static_cast<double>(all.size());
  const double achieved =
      all.size() > 1
          ? (grants - 1) / (static_cast<double>(all.back() - all.front()) / 1e9)
          : 0;
  const bool limited = !raw && mode != "monitor-only";
  const double relative_error = limited ? achieved / rate - 1 : 0;
  // Most grants in any sliding window of 1 s (the throttle's `per`), as
  // the workers saw them; and in windows 1 ms shorter, which forgives
  // delivery jitter of up to 1 ms between the first and the last grant of a
  // window (the server's own schedule holds the bound exactly; see
  // docs/BENCHMARKS.md).
  const auto max_in = [&all](int64_t window_ns) {
    int64_t best = 0;
    for (size_t lo = 0, hi = 0; hi < all.size(); ++hi) {
      while (all[hi] - all[lo] >= window_ns) ++lo;
      best = std::max<int64_t>(best, static_cast<int64_t>(hi - lo + 1));
    }
    return best;
  };
  const int64_t max_in_window = max_in(1'000'000'000);
  const int64_t max_in_window_jitter_1ms = max_in(999'000'000);
  std::vector<double> gaps, lateness;
  for (size_t i = 1; i < all.size(); ++i)
    gaps.push_back(static_cast<double>(all[i] - all[i - 1]) / 1e3);
  if (limited) {
    const double interval_ns = 1e9 / rate;
    for (size_t k = 0; k < all.size(); ++k) {
      lateness.push_back((static_cast<double>(all[k] - t_start) -
                          static_cast<double>(k) * interval_ns) /
                         1e3);
    }
  }
  // Lateness against two other slots: the ideal schedule anchored at the
  // first grant the workers received (slot i = first + i / rate: what the
  // delivery adds after the first grant, whatever the Start call cost), and
  // the nominal time of each grant in the server's --grant_log (the i-th
  // grant received against the i-th logged, both in time order).
  std::vector<double> lateness_first, lateness_log;
  std::vector<int64_t> logged;
  if (limited && !all.empty()) {
    const double interval_ns = 1e9 / rate;
    for (size_t k = 0; k < all.size(); ++k) {
      lateness_first.push_back((static_cast<double>(all[k] - all[0]) -
                                static_cast<double>(k) * interval_ns) /
                               1e3);
    }
  }
  if (grant_log_lateness) {
    logged = LoggedGrants(grant_log, name);
    for (size_t k = 0; k < std::min(logged.size(), every.size()); ++k) {
      if (every[k] < t_start || every[k] > t_stop) continue;
      lateness_log.push_back(static_cast<double>(every[k] - logged[k]) / 1e3);
    }
    std::remove(grant_log.c_str());
  }
  const auto max_of = [](const std::vector<double>& v) {
    return v.empty() ? 0 : *std::max_element(v.begin(), v.end());
  };
  const auto min_of = [](const std::vector<double>& v) {
    return v.empty() ? 0 : *std::min_element(v.begin(), v.end());
  };
  double sum = 0, sum_sq = 0;
  for (double s : shares) {
    sum += s;
    sum_sq += s * s;
  }
  const double jain =
      sum_sq > 0 ? sum * sum / (static_cast<double>(shares.size()) * sum_sq)
                 : 0;
  const double cpu_per_million = grants > 0 ? (cpu1 - cpu0) / grants * 1e6 : 0;
  const double workers_cpu_per_million =
      grants > 0 ? (wcpu1 - wcpu0) / grants * 1e6 : 0;

  if (const std::string path = absl::GetFlag(FLAGS_dump_times); !path.empty()) {
    std::ofstream dump(path);
    for (int64_t t : all)
      dump << absl::StrFormat("%.9f\n", static_cast<double>(t - t_start) / 1e9);
  }

  std::string shares_json;
  for (double s : shares)
    absl::StrAppend(&shares_json, shares_json.empty() ? "" : ",", s);
  const std::string json = absl::StrFormat(
      "{\"label\":\"%s\",\"server\":\"%s\",\"mode\":\"%s\",\"pattern\":\"%s\","
      "\"workers\":%d,\"streams_per_worker\":%d,\"target_rate\":%g,"
      "\"duration_s\":%.3f,\"grants\":%d,\"server_total\":%d,\"messages\":%d,"
      "\"grants_per_s\":%.1f,\"messages_per_s\":%.1f,\"achieved_rate\":%.4f,"
      "\"relative_error\":%.6f,\"max_in_window\":%d,"
      "\"max_in_window_jitter_1ms\":%d,"
      "\"gap_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
      "\"lateness_us\":{\"p50\":%.1f,\"p99\":%.1f,\"max\":%.1f},"
      "\"await_latency_us\":{\"p50\":%.1f,\"p99\":%.1f},"
      "\"shares\":[%s],\"jain\":%.5f,\"server_cpu_s_per_million\":%.3f,"
      "\"server_peak_rss_mib\":%.1f,\"security\":\"%s\","
      "\"server_flags\":\"%s\",\"server_cpu_s\":%.3f,"
      "\"workers_cpu_s_per_million\":%.3f,"
      "\"lateness_first_us\":{\"min\":%.1f,\"p50\":%.1f,\"p99\":%.1f,"
      "\"max\":%.1f},"
      "\"lateness_log_us\":{\"min\":%.1f,\"p50\":%.1f,\"p99\":%.1f,"
      "\"max\":%.1f,\"matched\":%d,\"logged\":%d,\"received\":%d},"
      "\"await_latency_max_us\":%.1f,\"server_rss_kib\":%d}",
      absl::GetFlag(FLAGS_label), raw ? "raw" : "throttle", mode,
      absl::GetFlag(FLAGS_pattern), workers, streams, rate, seconds,
      static_cast<int64_t>(all.size()), server_total, messages,
      grants / seconds, static_cast<double>(messages) / seconds, achieved,
      relative_error, max_in_window, max_in_window_jitter_1ms,
      Percentile(gaps, 0.5), Percentile(gaps, 0.99),
      gaps.empty() ? 0 : *std::max_element(gaps.begin(), gaps.end()),
      Percentile(lateness, 0.5), Percentile(lateness, 0.99),
      lateness.empty() ? 0
                       : *std::max_element(lateness.begin(), lateness.end()),
      Percentile(latencies, 0.5), Percentile(latencies, 0.99), shares_json,
      jain, cpu_per_million, rss, SecurityName(WorkerSecurity()),
      absl::GetFlag(FLAGS_server_flags), cpu1 - cpu0, workers_cpu_per_million,
      min_of(lateness_first), Percentile(lateness_first, 0.5),
      Percentile(lateness_first, 0.99), max_of(lateness_first),
      min_of(lateness_log), Percentile(lateness_log, 0.5),
      Percentile(lateness_log, 0.99), max_of(lateness_log),
      static_cast<int64_t>(lateness_log.size()),
      static_cast<int64_t>(logged.size()), static_cast<int64_t>(every.size()),
      max_of(latencies), server_rss_kib);
  std::printf(
      "%-10s %-12s %-6s W=%d S=%d target=%g/s grants=%lld (%.0f/s, %.0f msg/s) "
      "achieved=%.3f/s err=%+.4f%% max/1s=%lld (%lld) gap p99=%.0fus lateness "
      "p50/p99/max=%.0f/%.0f/%.0fus jain=%.4f cpu/M=%.2fs workers cpu/M=%.2fs "
      "rss=%.0fMiB %s lateness from first grant p50/p99/max=%.0f/%.0f/%.0fus "
      "from the grant log=%.0f/%.0f/%.0fus\n",
      raw ? "raw" : "throttle", mode.c_str(),
      absl::GetFlag(FLAGS_pattern).c_str(), workers, streams, rate,
      static_cast<long long>(all.size()), grants / seconds,
      static_cast<double>(messages) / seconds, achieved, relative_error * 100,
      static_cast<long long>(max_in_window),
      static_cast<long long>(max_in_window_jitter_1ms), Percentile(gaps, 0.99),
      Percentile(lateness, 0.5), Percentile(lateness, 0.99),
      lateness.empty() ? 0
                       : *std::max_element(lateness.begin(), lateness.end()),
      jain, cpu_per_million, workers_cpu_per_million, rss,
      SecurityName(WorkerSecurity()).c_str(), Percentile(lateness_first, 0.5),
      Percentile(lateness_first, 0.99), max_of(lateness_first),
      Percentile(lateness_log, 0.5), Percentile(lateness_log, 0.99),
      max_of(lateness_log));
  std::printf("%s\n", json.c_str());
  std::error_code ignored;
  for (const auto& o : outputs) std::remove(o.c_str());
  std::remove((dir + "/port").c_str());
  rmdir(dir.c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  throttle::ParseCommandLineWithUsage(
      argc, argv,
      "Load generator and accuracy meter of the shared throttle service "
      "(docs/BENCHMARKS.md).",
      __FILE__);
  return absl::GetFlag(FLAGS_worker) ? RunWorker() : RunCoordinator();
}
