#!/usr/bin/env bash
# Writes the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/),
# with the reproducers of the bugs they found as regressions, all small and
# committed. Run it again after changing an input format; it needs protoc.
#
#   request_fuzzer        serialized request messages (protoc --encode)
#   throttle_spec_fuzzer  --throttle values and --config files
#   scheduler_fuzzer      operation sequences, byte by byte as
#                         scheduler_fuzzer.cc decodes them (see there)
set -euo pipefail
cd "$(dirname "$0")"
root=$(cd ../.. && pwd)

corpus=corpus
rm -rf "${corpus}"
mkdir -p "${corpus}"/{request_fuzzer,throttle_spec_fuzzer,scheduler_fuzzer}

# --- request_fuzzer: NAME MESSAGE TEXT --------------------------------------
msg() {
  protoc --proto_path="${root}/proto" --proto_path=/usr/include \
    --encode="throttle.v1.$2" throttle/v1/throttle.proto \
    <<<"$3" >"${corpus}/request_fuzzer/$1.pb"
}
msg await_default AwaitFuelRequest 'throttle: "crawl"'
msg await_full AwaitFuelRequest \
  'throttle: "crawl" count: 5 weight: 3 worker_id: "w-1"
   wait_limit { seconds: 1 nanos: 500000000 }'
msg await_bad AwaitFuelRequest \
  'throttle: "a b" count: -1 weight: 0 wait_limit { seconds: 1 nanos: -1 }'
msg await_priority AwaitFuelRequest 'throttle: "crawl" priority: 7'
msg await_priority_bad AwaitFuelRequest 'throttle: "crawl" priority: 56'
msg acquire_priority AcquireRequest \
  'throttle: "crawl" demand: 2 weight: 2 priority: 3'
msg has_fuel HasFuelRequest 'throttle: "api" worker_id: "host-7"'
msg emit EmitRequest 'throttle: "api" count: 3 worker_id: "w"'
msg start StartRequest 'throttle: "crawl"'
msg latest LatestRequest 'throttle: "crawl" window { seconds: 2 }'
msg latest_bad LatestRequest \
  'throttle: "crawl" window { seconds: 315576000001 nanos: 5 }'
msg create_smooth CreateThrottleRequest \
  'name: "crawl" config { max_n: 4 per_seconds: 1 }'
msg create_bucket CreateThrottleRequest \
  'name: "api" config { max_n: 100 per_seconds: 1 mode: MODE_BUCKET burst: 20
   manual_emit: true }'
msg create_bad CreateThrottleRequest \
  'name: "x" config { max_n: 1000000000 per_seconds: 0.001 mode: MODE_WINDOW
   burst: 5 }'
msg configure ConfigureThrottleRequest \
  'name: "crawl" config { max_n: 2 per_seconds: 0.5 mode: MODE_UNBOUNDED }'
msg delete DeleteThrottleRequest 'name: "crawl"'
msg create_starvation_bound CreateThrottleRequest \
  'name: "api" config { max_n: 10 per_seconds: 1 starvation_bound { seconds: 2 } }'

# --- throttle_spec_fuzzer ---------------------------------------------------
spec() { printf '%s' "$2" >"${corpus}/throttle_spec_fuzzer/$1.txt"; }
spec flag_one 'crawl max_n=4 per=1'
spec flag_starvation_bound 'api max_n=10 per=1 starvation_bound=2500ms'
spec flag_two 'crawl max_n=4 per=1; api max_n=100 per=1 mode=bucket burst=20'
spec flag_all 'm max_n=7 per=0.25 mode=monitor-only manual_emit=true;w max_n=3 per=2.5e-1 mode=window;u max_n=1 per=30 mode=unbounded'
spec flag_bad 'x max_n=0 per=nan; y max_n=1; z per=1 max_n=1 mode=fast burst=-1'
spec config_file '# throttles
crawl max_n=4 per=1   # four a second
	api max_n=100 per=1 mode=bucket burst=20

slow max_n=1 per=2592000
'

# --- scheduler_fuzzer: NAME BYTES (printf escapes) --------------------------
# Config: mode (0 smooth, 1 window, 2 bucket, 3 unbounded, 4 monitor-only),
#   max_n - 1, per (byte % 6: 0 1s, 1 250ms, 2 10ms, 3 1ms, 4 3ms, 5 10s),
#   [bucket: burst], manual_emit (byte % 4 == 0).
# Ops (byte % 15): 0 Open count weight wait (byte % 4: 0 zero, 1 finite +
#   4-5 bytes, 2 infinite; byte & 4: fail_if_late) | 2 Close i | 3 GiveBack i [n] | 4 MarkDelivered i |
#   5 Advance step | 7 Tick step | 8 Start | 9 Stop | 10 Configure config |
#   11 HasFuel 0 / Emit 1 + 2 bytes | 12 EndAll 0 / Statistics 1 + 5 bytes |
#   13 Hold i | 14 Release i. A step is 0 (none) or 1 (to NextWakeup());
#   i indexes the streams opened so far (one past them: an unknown id).
ops() { printf "$2" >"$3/$1.bin"; }
seed() { ops "$1" "$2" "${corpus}/scheduler_fuzzer"; }
# Smooth 4 per 1 s, one count-0 stream, six wake-ups, stop.
seed smooth_one '\x00\x03\x00\x01''\x00\x00\x00\x02''\x08''\x05\x00''\x05\x01\x05\x01\x05\x01\x05\x01\x05\x01''\x09'
# Window 3 per 250 ms, two weighted streams (one with a count and a wait
# limit), a close, statistics.
seed window_two '\x01\x02\x01\x01''\x00\x00\x02\x02''\x00\x05\x00\x01\x1d\xcd\x64\xff''\x08''\x05\x00\x05\x01\x05\x01''\x02\x00''\x05\x01\x05\x01''\x0c\x01\x00\x3b\x9a\xc9\xff''\x09'
# Bucket 5 per 10 ms with burst 8, HasFuel, then configured to unbounded.
seed bucket_configure '\x02\x04\x02\x08\x01''\x08''\x0b\x00\x0b\x00\x0b\x00''\x00\x0a\x00\x02''\x05\x00\x05\x01''\x0a\x03\x01\x02\x01''\x05\x01\x05\x01\x05\x01''\x09'
# Monitor-only: a count-0 stream delivered twice, a count-3 stream, open
# after stop.
seed monitor_only '\x04\x00\x00\x01''\x08''\x00\x00\x00\x02''\x05\x00''\x04\x00\x05\x00\x04\x00\x05\x00''\x00\x03\x00\x02''\x09''\x00\x00\x00\x02'
# manual_emit: Emit while created (refused), start, Emit, statistics, EndAll.
seed manual_emit '\x00\x00\x00\x00''\x0b\x01\x00\x05''\x08''\x0b\x01\x00\x05''\x0b\x01\x03\xe7''\x0c\x01\x00\x3b\x9a\xc9\xff''\x00\x00\x00\x02''\x0c\x00'
# Give back the newest fuel while nobody waits, then a new stream gets it.
seed give_back_newest '\x00\x01\x00\x01''\x00\x02\x00\x02''\x08''\x05\x00\x05\x01''\x03\x01''\x00\x00\x00\x02''\x05\x00\x05\x01''\x09'
# Hold and Release; a held stream stays held across Configure.
seed hold_release '\x00\x03\x00\x01''\x00\x00\x00\x02''\x00\x00\x00\x02''\x08''\x05\x00''\x0d\x00''\x05\x01\x05\x01''\x0e\x00''\x05\x01\x05\x01''\x0d\x01''\x0a\x01\x01\x01\x01''\x05\x01''\x09'
# Zero wait limits in every state.
seed zero_wait '\x01\x00\x00\x01''\x00\x01\x00\x00''\x08''\x00\x02\x00\x00''\x00\x02\x00\x00''\x09''\x00\x01\x00\x00'

# --- regressions: bugs the fuzzers found (fixed), kept in the corpus
# A bad mode name with a line break: the error was two lines.
printf 'a max_n=1 per=1 mode=x\ny' \
  >corpus/throttle_spec_fuzzer/mode_error_two_lines.txt
crash() { ops "$1" "$2" corpus/scheduler_fuzzer; }
# Window 3 per 10 ms, two streams: 3 grants at 0, 3 at 10 ms, the three at
# 10 ms given back; the next Advance granted 6, three of them dated 0.
crash window_give_back_backdates '\x01\x02\x02\x01''\x00\x00\x00\x02''\x00\x00\x00\x02''\x08''\x05\x00''\x05\x01''\x03\x05''\x03\x04''\x03\x03''\x05\x00'
# Smooth 1 per 1 s: grants at 0, 1 s, 2 s; the one at 0 given back; the
# next stream got a second grant at 2 s.
crash smooth_give_back_older '\x00\x00\x00\x01''\x00\x03\x00\x02''\x08''\x05\x00''\x05\x01''\x05\x01''\x03\x00''\x00\x00\x00\x02''\x05\x00'
# Smooth 1 per 1 s, one grant; configured to unbounded 1 per 1 s, HasFuel
# takes the first grant; giving back the smooth grant let HasFuel take a
# second one at once.
crash give_back_across_configure '\x00\x00\x00\x01''\x00\x01\x00\x02''\x08''\x05\x00''\x0a\x03\x00\x00\x01''\x0b\x00''\x03\x00''\x0b\x00'
# Smooth 1 per 1 s, a zero-wait fail_if_late stream of 3: after its one
# free grant it ended as too late instead of for its wait limit.
crash zero_wait_fail_if_late '\x00\x00\x00\x00\x0b\x01\x00\x05\x08\x06\x0b\x01\x00\x05\x0b\x01\x03\xe7\x0c\x01\x00\x3b\x9a\xc9\x0c\x00'
# Smooth 1 per ~7 s: a fail_if_late stream's grant dated back 7 s by the
# catch-up moved its deadline into the past, and it ended as too late though
# its next grant was due at once.
crash catch_up_keeps_deadline '\x00\x00\xfa\x04\x00\x05\x24\x08\x00\x01\x40\x05\x01\x05\xcd\x1d\x64\xff\x08\x05\x00\x05\x01\x05\xcd\x08\x00\x05\x0b\x1d\x00\x0b\xfe\x0b\x01\x00'
