#!/usr/bin/env bash
# Sanitizer builds and fuzzing, each in its own build directory with clang
# (what CI runs after the plain builds; a developer can run any of them):
#
#   scripts/sanitize.sh asan          ASan + UBSan build (build-asan), the
#                                     whole ctest suite
#   scripts/sanitize.sh tsan          TSan build (build-tsan) against a
#                                     TSan-built Abseil, the suite without
#                                     the Python/Node clients
#   scripts/sanitize.sh fuzz [SECS]   libFuzzer build (build-fuzz), each
#                                     target for SECS (default 60)
#
# Installs what is missing through scripts/setup.sh. Sanitizer options and
# suppressions: tests/sanitizers/. Why they are what they are:
# docs/DECISIONS.md, "Sanitizers and fuzzing in CI".
set -euo pipefail
shopt -s inherit_errexit  # a failure inside $(...) fails the script too
cd "$(dirname "$0")/.."
root=$(pwd)

usage() {
  echo "usage: $0 asan|tsan|fuzz [SECONDS]" >&2
  exit 2
}
[[ $# -ge 1 ]] || usage
mode=$1

# Configures and builds BUILD_DIR with clang and the given CMake arguments
# (the targets in THROTTLE_BUILD_TARGETS, default all).
build() {
  local dir=$1
  shift
  CXX=clang++ BUILD_DIR="${dir}" THROTTLE_CMAKE_ARGS="$*" \
    THROTTLE_EXTRA_PACKAGES="libclang-rt-14-dev dpkg-dev" scripts/setup.sh
}

# Echoes a directory of Abseil's shared libraries built with -fsanitize=thread
# from Debian's source package of the installed version (same SONAMEs, same
# ABI: put it first on LD_LIBRARY_PATH). Built once per version and cached
# under /var/cache/throttle-tsan-absl (or ~/.cache/throttle-tsan-absl when
# that is not writable); about a minute on 2 cores.
tsan_abseil() {
  local version cache_root cache
  # Keyed by the Abseil version and the compiler (whose TSan runtime the
  # libraries call into).
  version=$(dpkg-query -W -f='${Version}' libabsl-dev)-clang$(clang++ -dumpversion)
  cache_root=/var/cache/throttle-tsan-absl
  if ! mkdir -p "${cache_root}" 2>/dev/null || [[ ! -w ${cache_root} ]]; then
    cache_root=${XDG_CACHE_HOME:-${HOME}/.cache}/throttle-tsan-absl
  fi
  cache=${cache_root}/${version}
  if [[ -f ${cache}/.complete ]]; then
    echo "tsan: TSan-built Abseil ${version} from ${cache}" >&2
    echo "${cache}"
    return
  fi
  echo "tsan: building Abseil ${version} with -fsanitize=thread" >&2
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/throttle-tsan-absl.XXXXXX")
  build_tsan_abseil "${work}" "${cache}.tmp" >&2
  touch "${cache}.tmp/.complete"
  rm -rf "${cache}"
  mv "${cache}.tmp" "${cache}"
  rm -rf "${work}"
  echo "${cache}"
}

# Downloads and builds Abseil in WORK (see tsan_abseil), copies the
# libraries to OUT.
build_tsan_abseil() {
  local work=$1 out=$2
  # Source lists of their own (deb-src twins of the machine's enabled
  # entries), so that the machine's apt configuration stays as it is.
  mkdir -p "${work}/apt/lists/partial" "${work}/apt/parts" "${work}/apt/cache"
  python3 - "${work}/apt/parts" <<'EOF'
import glob, re, sys
stanzas, lines = [], []
for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
    for stanza in re.split(r"\n\s*\n", open(path).read()):
        if re.search(r"^Types:.*\bdeb\b", stanza, re.M) and not re.search(
                r"^Enabled:\s*no", stanza, re.M | re.I):
            stanzas.append(re.sub(r"^Types:.*$", "Types: deb-src", stanza,
                                  flags=re.M).strip())
for path in ["/etc/apt/sources.list"] + glob.glob("/etc/apt/sources.list.d/*.list"):
    try:
        lines += [re.sub(r"^\s*deb\s", "deb-src ", l).strip()
                  for l in open(path) if re.match(r"\s*deb\s", l)]
    except FileNotFoundError:
        pass
open(sys.argv[1] + "/src.sources", "w").write("\n\n".join(stanzas) + "\n")
open(sys.argv[1] + "/src.list", "w").write("\n".join(lines) + "\n")
EOF
  local apt=(apt-get -qq -o Dir::Etc::SourceList=/dev/null
    -o Dir::Etc::SourceParts="${work}/apt/parts"
    -o Dir::State::Lists="${work}/apt/lists" -o Dir::Cache="${work}/apt/cache"
    -o APT::Sandbox::User=root)
  "${apt[@]}" update
  (cd "${work}" && "${apt[@]}" source --download-only \
    "abseil=$(dpkg-query -W -f='${Version}' libabsl-dev)")
  dpkg-source -x "${work}"/abseil_*.dsc "${work}/src" >/dev/null
  # Debian's own configuration (debian/rules): C++17, shared libraries; its
  # patches set the SONAMEs and the ABI options.
  cmake -S "${work}/src" -B "${work}/build" -DCMAKE_BUILD_TYPE=None \
    -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_CXX_STANDARD=17 \
    -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
    -DCMAKE_CXX_FLAGS="-O2 -g -fsanitize=thread" \
    -DCMAKE_SHARED_LINKER_FLAGS="-fsanitize=thread" >/dev/null
  cmake --build "${work}/build" -j2 >/dev/null
  rm -rf "${out}"
  mkdir -p "${out}"
  find "${work}/build" -name 'libabsl_*.so*' -exec cp -a {} "${out}/" \;
  # Every Abseil library of the machine must have its TSan twin.
  local lib missing=0
  for lib in $(dpkg -L libabsl-dev | grep '/libabsl_.*\.so$'); do
    lib=$(basename "$(readlink -f "${lib}")")
    if [[ ! -e ${out}/${lib} ]]; then
      echo "tsan: no TSan build of ${lib}" >&2
      missing=1
    fi
  done
  ((missing == 0)) || exit 1
}

case "${mode}" in
  asan)
    build build-asan -DTHROTTLE_SANITIZE=address,undefined
    cd build-asan
    # Leak checking is on: Debian's gRPC leaves no reports at exit (its
    # globals are reachable); c-ares, under its dns:/// resolver, leaves
    # one small block (tests/sanitizers/lsan.supp).
    ASAN_OPTIONS=halt_on_error=1:detect_leaks=1 \
      LSAN_OPTIONS="suppressions=${root}/tests/sanitizers/lsan.supp" \
      UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
      ctest -j2 --output-on-failure --timeout 600
    ;;
  tsan)
    build build-tsan -DTHROTTLE_SANITIZE=thread
    absl_tsan=$(tsan_abseil)
    cd build-tsan
    # Not the Python and Node client tests (label polyglot): Debian's
    # python3-grpcio links Abseil and would load the TSan-built one without
    # the TSan runtime. They run in the ASan build and the plain builds.
    LD_LIBRARY_PATH="${absl_tsan}${LD_LIBRARY_PATH:+:${LD_LIBRARY_PATH}}" \
      TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 ignore_noninstrumented_modules=1 suppressions=${root}/tests/sanitizers/tsan.supp" \
      ctest -j2 -LE polyglot --output-on-failure --timeout 600
    ;;
  fuzz)
    # Only the fuzz targets and what they link (not the server, etcd's
    # client, throttlectl or the benchmarks).
    source tests/fuzz/targets.sh
    THROTTLE_BUILD_TARGETS="${fuzz_targets[*]}" \
      build build-fuzz -DTHROTTLE_FUZZ=ON -DTHROTTLE_BUILD_TESTS=OFF
    tests/fuzz/run.sh build-fuzz "${2:-60}"
    ;;
  *)
    usage
    ;;
esac
