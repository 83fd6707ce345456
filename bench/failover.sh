#!/usr/bin/env bash
# Durable state and failover (issue 10), measured and reported, never
# asserted (the fake-clock takeover tests assert the bounds). Writes
# bench/results/failover.md.
#   bench/failover.sh           everything (about 6 minutes)
#   bench/failover.sh --quick   3 failovers of each kind, one round of 3 s cost runs (about 2)
#   BUILD_DIR=build-x bench/failover.sh   binaries of another build (default build)
#   KEEP_TMP=1 bench/failover.sh          keep the logs, grant logs and worker records
# Needs etcd and etcdctl (Debian etcd-server, etcd-client), node with
# clients/node/node_modules (clients/setup.sh), curl and python3.
#
# What it does, all on 127.0.0.1, every process stopped by the script on any
# exit:
#   1-3. Two throttle_server nodes on one etcd; six throttles (smooth, window,
#        bucket at 20 and 1,000 per 1 s) each drawn on by two worker
#        processes with one long AwaitFuel stream per throttle (reopened 10 ms
#        after it ends, reconnect backoff 20-100 ms), and a seventh (smooth
#        100/s) by a worker of the Node client library with its defaults
#        (awaitFuel loop, reconnect backoff 50 ms up to 2 s); all through
#        the target ipv4:127.0.0.1:P1,127.0.0.1:P2. The leader is killed
#        (-9) or stopped (SIGTERM) again and again, the old node restarted as
#        the standby. Every node keeps a --grant_log; the analysis merges
#        them: failover times, the gap, the grants lost and the extra grants
#        against each mode's bound. Phase "ttl1": etcd with
#        --election-timeout=500 --heartbeat-interval=50 and --lease_ttl=1s;
#        phase "ttl2": etcd's default timings and --lease_ttl=2s (the
#        default), kill -9 and SIGTERM taking turns.
#   4.   throttle_bench --address=... (4 worker processes) against servers
#        started here: raw_ceiling_server, throttle_server without durable
#        state, with --state_dir, and an etcd leader; server (and etcd) CPU
#        from /proc/PID/stat around each run.
#   5.   Store writes per throttle at 4/s, 1,000/s, 50,000/s on the etcd
#        leader: throttle_state_* metrics, the key's version in etcd, etcd's
#        revision and DB size.
set -euo pipefail
cd "$(dirname "$0")/.."
build="${BUILD_DIR:-build}"
server_bin="$build/server/throttle_server"
raw_bin="$build/bench/raw_ceiling_server"
ctl="$build/cli/throttlectl"
bench="$build/bench/throttle_bench"
node_dir="$PWD/clients/node"
results=bench/results/failover.md
quick=0
[[ "${1:-}" == "--quick" ]] && quick=1
if ((quick)); then
  kills_ttl1=3 pairs_ttl2=3 cost_rounds=1 cost_duration=3s write_seconds=3 settle=2.2
else
  kills_ttl1=10 pairs_ttl2=10 cost_rounds=2 cost_duration=5s write_seconds=10 settle=2.5
fi
for tool in etcd etcdctl node curl python3; do
  command -v "$tool" >/dev/null || { echo "failover.sh: needs $tool" >&2; exit 1; }
done
for bin in "$server_bin" "$raw_bin" "$ctl" "$bench"; do
  [[ -x "$bin" ]] || { echo "failover.sh: no $bin (BUILD_DIR=$build)" >&2; exit 1; }
done
[[ -d "$node_dir/node_modules/@grpc/grpc-js" ]] ||
  { echo "failover.sh: no $node_dir/node_modules: run clients/setup.sh" >&2; exit 1; }
export ETCDCTL_API=3
# The phases run with stderr to /dev/null, which keeps bash's "Killed" job
# notices for the nodes killed on purpose out of the output; what must be
# seen goes to fd 3, the script's stderr.
exec 3>&2

tmp=$(mktemp -d)
out="$tmp/failover.md"  # moved to $results at the end: a run cut short keeps the last one
pids=()  # everything started in the background, stopped on exit
cleanup() {
  for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null || true; done
  { wait; } 2>/dev/null || true
  if [[ -n "${KEEP_TMP:-}" ]]; then echo "failover.sh: kept $tmp" >&3; else rm -rf "$tmp"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
now_ns() { echo "${EPOCHREALTIME/[.,]/}000"; }
await_file() {  # await_file PATH SECONDS: 0 once PATH is non-empty, 1 on timeout
  local end=$(($(now_ns) + $2 * 1000000000))
  while [[ ! -s "$1" ]]; do
    (($(now_ns) < end)) || return 1
    sleep 0.01
  done
}
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat" 2>/dev/null || echo 0; }
metric() {  # metric PORT NAME{LABELS}: the sample's value (0 if absent)
  curl -s "127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m {v = $2} END {print v + 0}'
}

# ---------------------------------------------------------------- etcd
etcd_pid="" etcd_port=""
start_etcd() {  # start_etcd NAME fast|default
  local dir="$tmp/etcd.$1" peer
  etcd_port=$(free_port)
  peer=$(free_port)
  local timing=()
  [[ "$2" == fast ]] && timing=(--election-timeout=500 --heartbeat-interval=50)
  etcd --name s1 --data-dir "$dir" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" \
    --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$peer" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "s1=http://127.0.0.1:$peer" --initial-cluster-state new \
    --logger zap --log-outputs "$tmp/etcd.$1.log" "${timing[@]}" 2>"$tmp/etcd.$1.err" &
  etcd_pid=$!
  pids+=("$etcd_pid")
  for _ in $(seq 1 100); do
    etcdctl --endpoints="127.0.0.1:$etcd_port" endpoint health >/dev/null 2>&1 && return
    sleep 0.1
  done
  echo "failover.sh: etcd did not become healthy" >&3
  exit 1
}
etcd_status() {  # etcd's revision and DB size
  etcdctl --endpoints="127.0.0.1:$etcd_port" endpoint status -w json |
    python3 -c 'import json, sys; s = json.load(sys.stdin)[0]["Status"]; print(s["header"]["revision"], s["dbSize"])'
}
stop_etcd() { kill -TERM "$etcd_pid" 2>/dev/null || true; { wait "$etcd_pid"; } 2>/dev/null || true; }

# ------------------------------------------------- the worker of phases 1-3
# "stream": one AwaitFuel(count 0) stream per throttle, reopened 10 ms after
# it ends; "lib": the client library's awaitFuel() loop with its defaults.
# Writes "<arrival, wall clock, us> <throttle> <grants>" per message.
cat >"$tmp/worker.js" <<'EOF'
'use strict';
const path = require('node:path');
const fs = require('node:fs');
const { performance } = require('node:perf_hooks');
const [nodeDir, kind, address, names, out] = process.argv.slice(2);
const lib = require(nodeDir);
const grpc = require(path.join(nodeDir, 'node_modules', '@grpc', 'grpc-js'));
const nowUs = () => Math.round((performance.timeOrigin + performance.now()) * 1000);
let buffer = '';
const flush = () => { if (buffer) { fs.appendFileSync(out, buffer); buffer = ''; } };
setInterval(flush, 200);
process.on('SIGTERM', () => { flush(); process.exit(0); });
for (const name of names.split(',')) {
  if (kind === 'lib') {
    const tank = new lib.Throttle(address, name);
    (async () => {
      for (;;) {
        try {
          if ((await tank.awaitFuel()) === lib.FuelOutcome.FUEL) buffer += `${nowUs()} ${name} 1\n`;
          else await new Promise((r) => setTimeout(r, 10));
        } catch (e) {
          process.stderr.write(`${nowUs()} ${name} ${e.message}\n`);
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    })();
    continue;
  }
  const client = new lib.proto.Throttle(address, grpc.credentials.createInsecure(),
                                        lib.channelOptions(0.02, 0.1));
  const open = () => {
    const call = client.AwaitFuel({ throttle: name, count: 0 },
                                  new grpc.Metadata({ waitForReady: true }));
    let again = false;
    const reopen = () => { if (!again) { again = true; setTimeout(open, 10); } };
    call.on('data', (r) => {
      const g = Number(r.grants) || 0;
      if (g > 0) buffer += `${nowUs()} ${name} ${g}\n`;
    });
    call.on('error', reopen);
    call.on('end', reopen);
  };
  open();
}
EOF

# ------------------------------------------------------------ the analysis
cat >"$tmp/analyze.py" <<'EOF'
import bisect, calendar, collections, glob, json, math, os, re, statistics, sys
from datetime import datetime

def log_ts_ns(line):
    m = re.match(r'ts=(\S+)Z', line)
    d = datetime.strptime(m[1], '%Y-%m-%dT%H:%M:%S.%f')
    return (calendar.timegm(d.timetuple()) * 1000000 + d.microsecond) * 1000

def events(path, event):
    with open(path) as f:
        return [l for l in f if f' event={event} ' in l or l.rstrip().endswith(f' event={event}')]

def field(line, name):
    m = re.search(rf' {name}=(\S+)', line)
    return m[1] if m else None

def mmm(values, fmt='{:.3f}'):
    v = [x for x in values if x is not None]
    if not v:
        return '-'
    return ' / '.join(fmt.format(x) for x in (min(v), statistics.median(v), max(v)))

def chunk(max_n):
    return max(2, math.ceil(max_n * 0.25))

def bound(mode, max_n):
    # Most grants any half-open window of `per` may hold: GCRA with
    # tolerance (burst-1)*T fits burst + max_n - 1; smooth and window max_n.
    return 2 * max_n - 1 if mode == 'bucket' else max_n

def windows(times, b, lo_t, hi_t, per):
    # Over the windows [t, t + per - EARLY_NS) that start at a grant t in
    # [lo_t, hi_t]: the most grants one holds; by how many ns the (b+1)-th
    # grant from t came before t + per at most (> 0: b + 1 grants in
    # [t, t + per)), with the index of that window's first grant; and how
    # many windows hold more than b.
    most, early, at, over = 0, None, None, 0
    for i in range(bisect.bisect_left(times, lo_t), bisect.bisect_right(times, hi_t)):
        most = max(most, bisect.bisect_left(times, times[i] + per - EARLY_NS) - i)
        if i + b < len(times):
            e = times[i] + per - times[i + b]
            over += e > EARLY_NS
            if early is None or e > early:
                early, at = e, i
    return most, early, at, over

def ideal(mode, max_n, per, history, t0, horizon):
    # Grants a single ideal limiter of the mode would allow in
    # [t0, t0 + horizon) with demand all along, after `history`.
    count = 0
    if mode in ('smooth', 'bucket'):
        T = per // max_n
        tau = (max_n - 1) * T if mode == 'bucket' else 0
        tat = None
        for t in history:
            tat = (max(tat, t) if tat is not None else t) + T
        t = t0 if tat is None else max(t0, tat - tau)
        while t < t0 + horizon:
            tat = (max(tat, t) if tat is not None else t) + T
            count += 1
            t = max(t, tat - tau)
        return count
    last = collections.deque(history[-max_n:])
    t = t0
    while True:
        if len(last) >= max_n:
            t = max(t, last[0] + per)
        if t >= t0 + horizon:
            return count
        last.append(t)
        if len(last) > max_n:
            last.popleft()
        count += 1

# The grant log dates each batch by converting the server's monotonic time
# with a fresh wall-clock offset (two clock reads), which jitters by up to a
# few hundred us on a loaded machine. A window counts as over its bound
# only when the (bound + 1)-th grant came more than this far inside it.
EARLY_NS = 500_000

def us(ns):
    return '-' if ns is None or ns <= 0 else f'{ns / 1e3:.1f}'

def failover(label, prefix, specs, runs_path):
    throttles = {}
    for spec in specs.split(';'):
        parts = spec.split()
        kv = dict(p.split('=') for p in parts[1:])
        throttles[parts[0]] = (kv['mode'], int(kv['max_n']))
    per = 1_000_000_000
    horizon = per // 2
    grants = collections.defaultdict(list)  # name -> [(t, pid, raw line)]
    for path in glob.glob(prefix + '.grants.*'):
        with open(path) as f:
            for line in f:
                name, first, n, spacing, writer = line.split()
                pid = int(writer.rsplit(':', 1)[1])
                first, n, spacing = int(first), int(n), int(spacing)
                raw = os.path.basename(path) + ': ' + line.rstrip()
                grants[name].extend((first + i * spacing, pid, raw) for i in range(n))
    for v in grants.values():
        v.sort()
    def arrivals(pattern):
        a = []
        for path in glob.glob(pattern):
            with open(path) as f:
                a.extend(int(l.split()[0]) * 1000 for l in f if l.strip())
        return sorted(a)
    stream_arrivals = arrivals(prefix + '.stream.*.out')
    lib_arrivals = arrivals(prefix + '.lib.out')
    with open(runs_path) as f:
        runs = [l.split() for l in f if l.strip()]
    rows, per_throttle, problems, excerpts = [], collections.defaultdict(list), [], []
    # The grants each takeover assumed made (the old reservation), at the
    # time the new leader restored them: part of the limiter's state from
    # then on, so part of the history the next takeover is judged against.
    phantoms = collections.defaultdict(list)
    def excerpt(name, i, b, why):
        v = grants[name]
        lines = []
        for j in sorted(set(range(max(0, i - 2), i + 3)) | set(range(i + b - 2, min(len(v), i + b + 3)))):
            mark = '<-' if j in (i, i + b) else '  '
            if v[j][2] not in [l[3:] for l in lines]:
                lines.append(f'{mark} {v[j][2]}')
        excerpts.append((why, lines))
    for k, (kind, kill_ns, old_pid, new_pid, old_log, new_log) in enumerate(runs):
        kill_ns, old_pid, new_pid = int(kill_ns), int(old_pid), int(new_pid)
        next_kill = int(runs[k + 1][1]) if k + 1 < len(runs) else float('inf')
        leading = [log_ts_ns(l) for l in events(new_log, 'leading')]
        if not leading:
            problems.append(f'run {k + 1}: the standby never logged event=leading')
            continue
        lead = leading[0]
        firsts = [t for v in grants.values() for t, p, _ in v if p == new_pid]
        first_log = min(firsts) if firsts else None
        def first_after(a):
            i = bisect.bisect_left(a, lead)
            return a[i] if i < len(a) and a[i] < next_kill else None
        first_stream, first_lib = first_after(stream_arrivals), first_after(lib_arrivals)
        took = [field(l, 'took') for l in events(old_log, 'handed_over')]
        sec = lambda t: None if t is None else (t - kill_ns) / 1e9
        rows.append((k + 1, kind, sec(lead), sec(first_log), sec(first_stream),
                     sec(first_lib), took[0] if took else '-'))
        restored = events(new_log, 'throttle_restored')
        assumed = {field(l, 'throttle'): int(field(l, 'assumed_grants')) for l in restored}
        for name, (mode, max_n) in throttles.items():
            if name == 'probe':
                continue
            v = grants.get(name, [])
            times = [t for t, _, _ in v]
            old = [t for t, p, _ in v if p == old_pid]
            new = [t for t, p, _ in v if p == new_pid]
            if not old or not new:
                problems.append(f'run {k + 1} {name}: no grants from the '
                                f'{"old" if not old else "new"} leader')
                continue
            history = sorted([t for t in times if t < lead] + phantoms[name])
            actual = bisect.bisect_left(times, lead + horizon) - bisect.bisect_left(times, lead)
            lost = ideal(mode, max_n, per, history, lead, horizon) - actual
            b = bound(mode, max_n)
            most, early, at, _ = windows(times, b, lead - per, lead + per, per)
            if early is not None and early > EARLY_NS:
                excerpt(name, at, b, f'run {k + 1} ({kind}) {name}: {b + 1} grants within '
                        f'{(times[at + b] - times[at]) / 1e9:.6f} s')
            per_throttle[(kind, name)].append(dict(
                assumed=assumed.get(name), gap=(new[0] - old[-1]) / 1e9,
                lead_first=(new[0] - lead) / 1e9, lost=lost, most=most, early=early))
        for l in restored:
            phantoms[field(l, 'throttle')] += [log_ts_ns(l)] * int(field(l, 'assumed_grants'))
    sig = lambda kind: 'kill -9' if kind == 'kill' else 'SIGTERM'
    print(f'### Phase {label}: failover times\n')
    print('Seconds from the kill -9 (or SIGTERM) of the leader to: the standby\'s '
          '`event=leading` (log time stamp); the new leader\'s first grant in its '
          '--grant_log (nominal time, any throttle); the first grant a stream '
          'worker received from it (any throttle); the first grant of the '
          'client-library worker (its defaults, on a smooth 100/s throttle: after a kill -9 its first grant also waits out the 25 assumed grants, 250 ms). Handed over in: the old '
          'leader\'s `event=handed_over took=`.\n')
    print('| run | signal | to leading | to first grant (grant log) | to first grant (stream worker) | to first grant (library worker) | handed over in |')
    print('|---|---|---|---|---|---|---|')
    f = lambda x: '-' if x is None else f'{x:.3f}'
    for r in rows:
        print(f'| {r[0]} | {sig(r[1])} | {f(r[2])} | {f(r[3])} | {f(r[4])} | {f(r[5])} | {r[6]} |')
    print()
    print('| signal | runs | to leading min / median / max | to first grant (grant log) | to first grant (stream worker) | to first grant (library worker) |')
    print('|---|---|---|---|---|---|')
    for kind in ('kill', 'term'):
        sel = [r for r in rows if r[1] == kind]
        if sel:
            print(f'| {sig(kind)} | {len(sel)} | '
                  + ' | '.join(mmm([r[i] for r in sel]) for i in (2, 3, 4, 5)) + ' |')
    print()
    print(f'### Phase {label}: grants at the takeovers\n')
    print('Per throttle (max_n per 1 s) and signal, over its takeovers, from the '
          'merged grant logs (nominal times); min / median / max. chunk: the '
          'bound on what a takeover loses, max(2, ceil(rate x 0.25 s)). assumed: '
          'the `assumed_grants` the new leader logged (the old reservation, '
          'counted as used at the takeover). gap: from the old leader\'s last '
          'grant to the new one\'s first, in s and in grants at the rate. lead: '
          'from `event=leading` to the new leader\'s first grant. lost: what the '
          'old leader\'s limiter (every grant before, and what earlier takeovers '
          'assumed) would have allowed in the 0.5 s from `event=leading`, with '
          'demand all along, minus the grants made then; in smooth mode it '
          'includes the workers\' reconnection (at 1,000/s a grant per ms). '
          'most in 1 s: the most grants in a window [t, t + 1 s - 0.5 ms) '
          'starting within 1 s of a takeover, against the mode\'s bound (max_n; '
          'bucket burst + max_n - 1 = 2 max_n - 1); early: by how much the '
          '(bound + 1)-th grant after a window\'s first fell inside [t, t + 1 s), '
          'at most (us; - = never; the log\'s clock conversion alone gives up to '
          'a few hundred us, so windows are shortened by 0.5 ms).\n')
    print('| signal | throttle | takeovers | chunk | assumed | gap s | gap in grants | lead s | lost | most in 1 s / bound | early us |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for kind in ('kill', 'term'):
        for name, (mode, max_n) in throttles.items():
            d = per_throttle.get((kind, name))
            if not d:
                continue
            early = [x['early'] for x in d if x['early'] is not None]
            print(f'| {sig(kind)} | {name} | {len(d)} | '
                  f'{chunk(max_n)} | {mmm([x["assumed"] for x in d], "{:g}")} | '
                  f'{mmm([x["gap"] for x in d])} | {mmm([x["gap"] * max_n for x in d], "{:.0f}")} | '
                  f'{mmm([x["lead_first"] for x in d])} | {mmm([x["lost"] for x in d], "{:g}")} | '
                  f'{max(x["most"] for x in d)} / {bound(mode, max_n)} | {us(max(early) if early else None)} |')
    print()
    print(f'Whole phase {label}: the same window check over every grant of the merged logs '
          '(windows over the bound: those whose (bound + 1)-th grant is more than 0.5 ms inside).\n')
    print('| throttle | grants | most in 1 s | bound | windows over the bound | early us (max) |')
    print('|---|---|---|---|---|---|')
    for name, (mode, max_n) in throttles.items():
        times = [t for t, _, _ in grants.get(name, [])]
        if not times:
            continue
        b = bound(mode, max_n)
        most, early, at, over = windows(times, b, times[0], times[-1], per)
        print(f'| {name} | {len(times)} | {most} | {b} | {over} | {us(early)} |')
        if early is not None and early > EARLY_NS:
            excerpt(name, at, b, f'{name}: {b + 1} grants within {(times[at + b] - times[at]) / 1e9:.6f} s')
    print()
    for p in problems:
        print(f'- PROBLEM: {p}')
    for why, lines in excerpts[:4]:
        print(f'- PROBLEM: {why} (grant log excerpt, <- the window\'s first and its (bound + 1)-th grant):')
        print('```')
        print('\n'.join(lines))
        print('```')
    json.dump({'rows': rows, 'per_throttle': {f'{k[0]} {k[1]}': v for k, v in per_throttle.items()},
               'problems': problems}, open(prefix + '.json', 'w'))

def costs(path):
    rows = [l.rstrip('\n').split('\t') for l in open(path)]
    raw = collections.defaultdict(list)
    for r in rows:
        if r[1] == 'raw':
            raw[(r[0], r[2])].append(float(r[4]))
    print('| round | server | pattern | mode | grants/s | messages/s | raw ceiling grants/s (before, after) | ratio | server CPU us/grant | etcd CPU us/grant | store writes/s |')
    print('|---|---|---|---|---|---|---|---|---|---|---|')
    for rnd, server, pattern, mode, gps, mps, grants, cpu, ecpu, writes, seconds in rows:
        gps, mps, grants, cpu, ecpu = float(gps), float(mps), float(grants), float(cpu), float(ecpu)
        ceiling = raw.get((rnd, pattern), [])
        ratio = f'{gps / statistics.mean(ceiling) * 100:.0f}%' if ceiling else '-'
        per = lambda c: f'{c / grants * 1e6:.2f}' if grants > 0 else '-'
        w = f'{float(writes) / float(seconds):.1f}' if writes != '-' else '-'
        print(f'| {rnd} | {server if server != "raw" else "raw ceiling"} | {pattern} | {mode} | {gps:.0f} | {mps:.0f} | '
              f'{", ".join(f"{c:.0f}" for c in ceiling)} | {ratio} | '
              f'{per(cpu)} | {per(ecpu) if server == "etcd" else "-"} | {w} |')

def writes(path, seconds):
    seconds = float(seconds)
    print('| rate/s | chunk | store writes/s (ok) | failed | records/s | the key\'s versions/s | mean write ms | etcd revisions/s | etcd DB size before -> after (bytes) |')
    print('|---|---|---|---|---|---|---|---|---|')
    for l in open(path):
        rate, w, err, rec, ver, wsum, wcount, rev, db0, db1 = l.split()
        mean = float(wsum) / float(wcount) * 1e3 if float(wcount) else 0
        print(f'| {int(rate):,} | {chunk(int(rate))} | {float(w) / seconds:.1f} | {err} | {float(rec) / seconds:.1f} | '
              f'{float(ver) / seconds:.1f} | {mean:.2f} | {float(rev) / seconds:.1f} | {int(db0):,} -> {int(db1):,} |')

if __name__ == '__main__':
    {'failover': failover, 'costs': costs, 'writes': writes}[sys.argv[1]](*sys.argv[2:])
EOF

# ----------------------------------------------- phases 1-3: the failovers
specs="smooth20 max_n=20 per=1 mode=smooth;smooth1000 max_n=1000 per=1 mode=smooth"
specs+=";window20 max_n=20 per=1 mode=window;window1000 max_n=1000 per=1 mode=window"
specs+=";bucket20 max_n=20 per=1 mode=bucket;bucket1000 max_n=1000 per=1 mode=bucket"
specs+=";probe max_n=100 per=1 mode=smooth"
stream_names="smooth20,smooth1000,window20,window1000,bucket20,bucket1000"
node_pid=() node_log=() node_port=() seq=0 phase="" ttl=""
start_node() {  # start_node SLOT: a node of the current phase
  local slot=$1
  seq=$((seq + 1))
  rm -f "$tmp/$phase.port.$slot"
  node_log[$slot]="$tmp/$phase.node$slot.$seq.log"
  "$server_bin" --etcd_endpoints="127.0.0.1:$etcd_port" --cluster=bench \
    --lease_ttl="$ttl" --listen="127.0.0.1:${node_port[$slot]}" \
    --port_file="$tmp/$phase.port.$slot" --grant_log="$tmp/$phase.grants.$slot.$seq" \
    --throttle="$specs" --shutdown_grace=1s 2>"${node_log[$slot]}" &
  node_pid[$slot]=$!
  pids+=("$!")
}

failover_phase() {  # failover_phase NAME fast|default TTL SIGNAL...
  phase=$1 ttl=$3
  local etcd_timing=$2 leader=0 other kind kill_ns old seq0=$seq
  shift 3
  start_etcd "$phase" "$etcd_timing"
  node_port=("$(free_port)" "$(free_port)")
  start_node 0
  await_file "$tmp/$phase.port.0" 20 || { echo "failover.sh: no leader" >&3; exit 1; }
  start_node 1
  local address="ipv4:127.0.0.1:${node_port[0]},127.0.0.1:${node_port[1]}"
  for name in ${stream_names//,/ } probe; do "$ctl" --address="$address" start "$name" >/dev/null 2>&3; done
  local begun
  begun=$(now_ns)
  local workers=()
  for i in 1 2; do
    node "$tmp/worker.js" "$node_dir" stream "$address" "$stream_names" \
      "$tmp/$phase.stream.$i.out" 2>"$tmp/$phase.stream.$i.err" &
    workers+=("$!"); pids+=("$!")
  done
  node "$tmp/worker.js" "$node_dir" lib "$address" probe "$tmp/$phase.lib.out" \
    2>"$tmp/$phase.lib.err" &
  workers+=("$!"); pids+=("$!")
  sleep 3
  : >"$tmp/$phase.runs"
  local n=0
  for kind in "$@"; do
    n=$((n + 1))
    other=$((1 - leader))
    old=${node_pid[$leader]}
    # The clock read and the kill, with no fork between them.
    kill_ns="${EPOCHREALTIME/[.,]/}000"
    if [[ $kind == kill ]]; then kill -KILL "$old"; else kill -TERM "$old"; fi
    if ! await_file "$tmp/$phase.port.$other" 20; then
      echo "failover.sh: $phase run $n: no new leader within 20 s" >&3
    fi
    { wait "$old"; } 2>/dev/null || true
    echo "$kind $kill_ns $old ${node_pid[$other]} ${node_log[$leader]} ${node_log[$other]}" >>"$tmp/$phase.runs"
    printf '  %s run %d (%s): new leader after %.2f s\n' "$phase" "$n" "$kind" \
      "$(python3 -c "print(($(now_ns) - $kill_ns) / 1e9)")"
    start_node "$leader"  # the old node comes back as the standby
    leader=$other
    sleep "$settle"
  done
  for w in "${workers[@]}"; do kill -TERM "$w" 2>/dev/null || true; { wait "$w"; } 2>/dev/null || true; done
  local crashed=()
  for slot in 0 1; do
    kill -0 "${node_pid[$slot]}" 2>/dev/null || crashed+=("node$slot pid ${node_pid[$slot]}")
    kill -TERM "${node_pid[$slot]}" 2>/dev/null || true
  done
  for slot in 0 1; do { wait "${node_pid[$slot]}"; } 2>/dev/null || true; done
  local status
  status=$(etcd_status)
  stop_etcd
  {
    python3 "$tmp/analyze.py" failover "$phase" "$tmp/$phase" "$specs" "$tmp/$phase.runs" 2>&3
    read -r revision db_size <<<"$status"
    echo "etcd at the end of phase $phase: revision $revision after" \
      "$(python3 -c "print(f'{($(now_ns) - $begun) / 1e9:.0f}')") s (the throttles ran" \
      "throughout, with $((seq - seq0)) node processes in all), DB size $db_size bytes."
    echo
    for c in "${crashed[@]}"; do echo "- PROBLEM: $c had exited before the end of the phase"; done
    # What the nodes said that a healthy failover does not say.
    grep -h -E 'level=error|event=(lead_lost|campaign_failed|etcd_unreachable|handover_not_stored|term_not_started|port_file_not_written)' \
      "$tmp/$phase".node*.log | sed 's/^/- log: /' | head -n 20 || true
    grep -l -E 'Assertion|terminate called|Segmentation|Check failed' "$tmp/$phase".node*.log 2>/dev/null |
      sed 's/^/- PROBLEM: crash message in /' || true
    echo
  } >>"$out"
}

load() { cut -d' ' -f1-3 /proc/loadavg; }
{
  echo "# Durable state and failover ($(date -u +%Y-%m-%d), $(nproc) cores)"
  echo
  echo "Command: \`bench/failover.sh$( ((quick)) && echo ' --quick')\` (BUILD_DIR=$build;" \
    "sources at $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- server proto 2>/dev/null || echo ' with local changes in server/ or proto/');" \
    "$(etcd --version | head -n 1))." \
    "Load average at the start: $(load)."
  echo
  echo "## 1-3. Failover after kill -9 and SIGTERM of the leader"
  echo
} >"$out"

echo "phase ttl1: etcd --election-timeout=500 --heartbeat-interval=50, --lease_ttl=1s"
kinds=()
for _ in $(seq 1 "$kills_ttl1"); do kinds+=(kill); done
failover_phase ttl1 fast 1s "${kinds[@]}" 2>/dev/null
echo "phase ttl2: etcd's default timings, --lease_ttl=2s"
kinds=()
for _ in $(seq 1 "$pairs_ttl2"); do kinds+=(kill term); done
failover_phase ttl2 default 2s "${kinds[@]}" 2>/dev/null

# --------------------------------------- 4. the cost of the reservations
echo "cost of the reservations"
start_etcd cost default
declare -A srv_pid srv_port srv_metrics
start_server() {  # start_server NAME BINARY FLAGS...
  local name=$1 bin=$2
  shift 2
  rm -f "$tmp/cost.$name.port"
  "$bin" --port_file="$tmp/cost.$name.port" "$@" 2>"$tmp/cost.$name.log" &
  srv_pid[$name]=$!
  pids+=("$!")
  await_file "$tmp/cost.$name.port" 20 || { echo "failover.sh: $name did not start" >&3; exit 1; }
  srv_port[$name]=$(cat "$tmp/cost.$name.port")
}
start_server raw "$raw_bin" --listen=127.0.0.1:0
start_server none "$server_bin" --listen=127.0.0.1:0 --log_level=warning
srv_metrics[state]=$(free_port)
start_server state "$server_bin" --listen=127.0.0.1:0 --log_level=warning \
  --state_dir="$tmp/state" --metrics_listen="127.0.0.1:${srv_metrics[state]}"
srv_metrics[etcd]=$(free_port)
start_server etcd "$server_bin" --listen="127.0.0.1:$(free_port)" --log_level=warning \
  --etcd_endpoints="127.0.0.1:$etcd_port" --cluster=cost \
  --metrics_listen="127.0.0.1:${srv_metrics[etcd]}"
: >"$tmp/cost.tsv"
# The ceiling before and after each pattern's runs, in every round: the
# machine is shared, so a ratio is only fair to a ceiling of the same minutes.
cost_runs=()
for pattern in stream call; do
  cost_runs+=("raw $pattern -")
  for mode in monitor-only smooth; do
    for server in none state etcd; do cost_runs+=("$server $pattern $mode"); done
  done
  cost_runs+=("raw $pattern -")
done
for round in $(seq 1 "$cost_rounds"); do
  for run in "${cost_runs[@]}"; do
    read -r server pattern mode <<<"$run"
    flags=(--address="127.0.0.1:${srv_port[$server]}" --workers=4 --pattern="$pattern"
      --mode="$mode" --rate=100000 --duration="$cost_duration")
    [[ $server == raw ]] && flags=(--server=raw "${flags[@]/--mode=-/--mode=monitor-only}")
    w0=0
    [[ -n "${srv_metrics[$server]:-}" ]] && w0=$(metric "${srv_metrics[$server]}" 'throttle_state_writes_total{result="ok"}')
    c0=$(cpu_ticks "${srv_pid[$server]}") e0=$(cpu_ticks "$etcd_pid") t0=$(now_ns)
    json=$("$bench" "${flags[@]}" 2>"$tmp/cost.bench.err" | tail -n 1) ||
      { echo "failover.sh: throttle_bench failed: $(cat "$tmp/cost.bench.err")" >&3; exit 1; }
    c1=$(cpu_ticks "${srv_pid[$server]}") e1=$(cpu_ticks "$etcd_pid") t1=$(now_ns)
    writes=-
    [[ -n "${srv_metrics[$server]:-}" ]] &&
      writes=$(($(metric "${srv_metrics[$server]}" 'throttle_state_writes_total{result="ok"}') - w0))
    python3 - "$json" "$round" "$server" "$pattern" "$mode" "$((c1 - c0))" "$((e1 - e0))" "$writes" \
      "$(((t1 - t0) / 1000000))" "$(getconf CLK_TCK)" >>"$tmp/cost.tsv" <<'EOF'
import json, sys
j = json.loads(sys.argv[1])
round, server, pattern, mode, cpu, ecpu, writes, ms, tck = sys.argv[2:]
print('\t'.join(str(x) for x in (round, server, pattern, mode,
      j['grants_per_s'], j['messages_per_s'], j['grants'], int(cpu) / int(tck),
      int(ecpu) / int(tck), writes, int(ms) / 1000)))
EOF
    echo "  $(tail -n 1 "$tmp/cost.tsv")"
  done
done
{
  echo "## 4. Cost of the reservations on the grant path"
  echo
  echo "\`throttle_bench --address=127.0.0.1:PORT --workers=4 --pattern=P --mode=M" \
    "--rate=100000 --duration=$cost_duration\` against each server, all started" \
    "at once and run in turn, $cost_rounds round(s); raw_ceiling_server (--server=raw)" \
    "before and after each pattern's runs, the ratio is to the mean of those two." \
    "CPU: utime + stime of" \
    "the server (and of etcd for the etcd leader) from /proc/PID/stat before and after" \
    "the whole throttle_bench run (set-up included), per grant received. The" \
    "state directory is on ext4 on the VM's disk; etcd (default timings) keeps its" \
    "data there too. Store writes/s over the whole run."
  echo
  python3 "$tmp/analyze.py" costs "$tmp/cost.tsv"
  echo
} >>"$out"

# --------------------------------------- 5. store writes per throttle
echo "store writes per throttle"
key_version() {
  etcdctl --endpoints="127.0.0.1:$etcd_port" get "/throttle/cost/throttles/$1" -w json |
    python3 -c 'import json, sys; k = json.load(sys.stdin).get("kvs", []); print(k[0]["version"] if k else 0)'
}
m=${srv_metrics[etcd]}
address="127.0.0.1:${srv_port[etcd]}"
: >"$tmp/writes.tsv"
for rate in 4 1000 50000; do
  "$ctl" --address="$address" create "w$rate" --max_n="$rate" --per=1 --mode=smooth >/dev/null
  "$ctl" --address="$address" start "w$rate" >/dev/null
  node "$tmp/worker.js" "$node_dir" stream "$address" "w$rate" "$tmp/writes.$rate.out" 2>/dev/null &
  wpid=$!
  pids+=("$wpid")
  sleep 1
  sample() {
    echo "$(metric "$m" 'throttle_state_writes_total{result="ok"}')" \
      "$(metric "$m" 'throttle_state_writes_total{result="error"}')" \
      "$(metric "$m" throttle_state_records_written_total)" "$(key_version "w$rate")" \
      "$(metric "$m" throttle_state_write_seconds_sum)" "$(metric "$m" throttle_state_write_seconds_count)" \
      "$(etcd_status)"
  }
  read -r a0 b0 r0 v0 s0 n0 rev0 db0 <<<"$(sample)"
  sleep "$write_seconds"
  read -r a1 b1 r1 v1 s1 n1 rev1 db1 <<<"$(sample)"
  kill -TERM "$wpid"; { wait "$wpid"; } 2>/dev/null || true
  "$ctl" --address="$address" stop "w$rate" >/dev/null
  python3 -c "print($rate, $a1 - $a0, $b1 - $b0, $r1 - $r0, $v1 - $v0, $s1 - $s0, $n1 - $n0, $rev1 - $rev0, $db0, $db1)" \
    >>"$tmp/writes.tsv"
  echo "  $(tail -n 1 "$tmp/writes.tsv")"
done
{
  echo "## 5. Store writes per throttle (etcd leader)"
  echo
  echo "One smooth throttle at a time on the etcd leader of section 4, one long" \
    "stream drawing on it, sampled ${write_seconds} s apart after 1 s of running:" \
    "the server's throttle_state_writes_total (one etcd transaction each)," \
    "throttle_state_records_written_total and throttle_state_write_seconds, the" \
    "throttle's key version in etcd (one per record written to it), etcd's" \
    "revision and DB size (etcdctl endpoint status)."
  echo
  python3 "$tmp/analyze.py" writes "$tmp/writes.tsv" "$write_seconds"
  echo
  echo "Load average at the end: $(load)."
} >>"$out"
for s in raw none state etcd; do kill -TERM "${srv_pid[$s]}" 2>/dev/null || true; done
for s in raw none state etcd; do { wait "${srv_pid[$s]}"; } 2>/dev/null || true; done
stop_etcd
mv "$out" "$results"
echo "wrote $results"
