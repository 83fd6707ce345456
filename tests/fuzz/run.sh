#!/usr/bin/env bash
# Runs every fuzz target for SECONDS on a copy of its seed corpus
# (tests/fuzz/corpus/<target>/; the committed corpus does not grow).
# Exits non-zero if any target crashed, timed out, leaked or ran out of
# memory, and prints where the reproducer is and how to run it.
#
#   tests/fuzz/run.sh BUILD_DIR [SECONDS]    (default 60 seconds per target)
#
# BUILD_DIR is a build configured with -DTHROTTLE_FUZZ=ON (clang); see
# scripts/sanitize.sh fuzz. Reproducers go to BUILD_DIR/fuzz-artifacts/.
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
  echo "usage: $0 BUILD_DIR [SECONDS]" >&2
  exit 2
fi
build_dir=$(cd "$1" && pwd)
seconds=${2:-60}
here=$(cd "$(dirname "$0")" && pwd)
source "${here}/targets.sh"
targets=("${fuzz_targets[@]}")

tmp=$(mktemp -d "${TMPDIR:-/tmp}/throttle-fuzz.XXXXXX")
trap 'rm -rf "${tmp}"' EXIT

failed=()
for target in "${targets[@]}"; do
  binary=${build_dir}/tests/fuzz/${target}
  if [[ ! -x ${binary} ]]; then
    echo "fuzz: ${binary} is missing (configure with -DTHROTTLE_FUZZ=ON)" >&2
    exit 2
  fi
  corpus=${tmp}/${target}
  mkdir -p "${corpus}"
  cp "${here}/corpus/${target}"/* "${corpus}/"
  artifacts=${build_dir}/fuzz-artifacts/${target}
  rm -rf "${artifacts}"
  mkdir -p "${artifacts}"
  log=${artifacts}/fuzz.log

  # -timeout: one input taking longer is a finding too. Sanitizer reports
  # abort (UBSan included: the build uses -fno-sanitize-recover).
  status=0
  "${binary}" -max_total_time="${seconds}" -timeout=25 -rss_limit_mb=2048 \
    -print_final_stats=1 -artifact_prefix="${artifacts}/" "${corpus}" \
    >"${log}" 2>&1 || status=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "${log}")
  speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "${log}")
  coverage=$(grep -o 'cov: [0-9]*' "${log}" | tail -1 || true)
  echo "fuzz: ${target}: ${runs:-?} runs in ${seconds} s" \
    "(${speed:-?}/s, ${coverage:-cov: ?}), exit ${status}"
  shopt -s nullglob
  found=("${artifacts}"/crash-* "${artifacts}"/timeout-* "${artifacts}"/leak-* \
    "${artifacts}"/oom-*)
  shopt -u nullglob
  if ((status != 0 || ${#found[@]} > 0)); then
    failed+=("${target}")
    echo "----- ${target} found a bug; the end of ${log}:"
    grep -v -e '^#[0-9]' -e '^INFO:' "${log}" | tail -40
    for reproducer in "${found[@]}"; do
      echo "reproducer: ${reproducer}"
      echo "  run it:   ${binary} ${reproducer}"
    done
    echo "-----"
  fi
done

echo "fuzz: $((${#targets[@]} - ${#failed[@]})) passed, ${#failed[@]} failed"
if ((${#failed[@]})); then
  echo "fuzz: FAILED: ${failed[*]}" >&2
  exit 1
fi
