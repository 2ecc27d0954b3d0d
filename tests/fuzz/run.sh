#!/usr/bin/env bash
# Fuzzes the image decoder and resizer (tests/fuzz/fuzz_image.c) for a
# number of seconds: configures a clang build with -DCTSWEEP_FUZZ=ON if
# there is none, builds the target, writes a fresh seed corpus and runs
# libFuzzer on it. Prints one summary line; exits non-zero on any crash,
# sanitizer report, leak, timeout or out-of-memory (the input that caused it
# is kept in WORK/artifacts).
#
# usage: tests/fuzz/run.sh [SECONDS] [--build DIR] [--work DIR] [--jobs N]
#   SECONDS  fuzzing time (default 60)
#   --build  the clang build folder (default: build-fuzz in the repository)
#   --work   seeds, corpus, artifacts and the log (default: BUILD/fuzz-work)
#   --jobs   parallel fuzzing processes (default 1)
# Needs clang 14 and its libFuzzer runtime (Debian: clang-14,
# libclang-rt-14-dev; libomp-14-dev for the project's OpenMP; llvm-14 for
# symbolized reports).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=60 build="$root/build-fuzz" work="" jobs=1
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    -h|--help) sed -n '2,17p' "$0"; exit 0 ;;
    [0-9]*) seconds=$1; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
work="${work:-$build/fuzz-work}"

if [ ! -f "$build/CMakeCache.txt" ]; then
  mkdir -p "$build"
  CC="${CC:-clang}" cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCTSWEEP_FUZZ=ON >"$build/fuzz-configure.log" 2>&1 ||
    { echo "run.sh: configure failed, see $build/fuzz-configure.log" >&2; exit 1; }
fi
cmake --build "$build" --target fuzz_image fuzz_make_seeds -j 2 >"$build/fuzz-build.log" 2>&1 ||
  { echo "run.sh: build failed, see $build/fuzz-build.log" >&2; exit 1; }
fuzzer="$build/tests/fuzz/fuzz_image"

rm -rf "$work/seeds" "$work/artifacts"
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"
"$build/tests/fuzz/fuzz_make_seeds" "$work/seeds" >/dev/null

log="$work/fuzz.log"
set +e
if [ "$jobs" -gt 1 ]; then
  # -fork keeps going after a finding; each one still lands in artifacts.
  "$fuzzer" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
    -max_len=65536 -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
    "$work/corpus" "$work/seeds" >"$log" 2>&1
else
  "$fuzzer" -max_len=65536 -max_total_time="$seconds" -timeout=20 -rss_limit_mb=2048 \
    -artifact_prefix="$work/artifacts/" -print_final_stats=1 \
    "$work/corpus" "$work/seeds" >"$log" 2>&1
fi
rc=$?
set -e

runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s+=$1} END{print s+0}')
if [ "$runs" = 0 ]; then runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1); fi
cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
corpus=$(find "$work/corpus" -type f | wc -l)
findings=$(find "$work/artifacts" -type f | wc -l)
verdict=PASS
if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then verdict=FAIL; fi
where="log $log"
if [ "$findings" -ne 0 ]; then where="$where, inputs in $work/artifacts"; fi
echo "fuzz_image: $verdict ${seconds}s, ${runs:-0} runs, cov ${cov:-?}, corpus $corpus, findings $findings (exit $rc; $where)"
[ "$verdict" = PASS ]
