# tests/fuzz/targets.sh: the fuzz targets (tests/fuzz/CMakeLists.txt), for
# the scripts that build and run them (scripts/sanitize.sh fuzz,
# tests/fuzz/run.sh), sourced by each.
fuzz_targets=(request_fuzzer throttle_spec_fuzzer scheduler_fuzzer)
