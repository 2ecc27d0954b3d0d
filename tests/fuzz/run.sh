#!/usr/bin/env bash
# Runs the libFuzzer targets of tests/fuzz for a number of seconds each:
# configures a clang build with -DCTSWEEP_FUZZ=ON if there is none, builds
# the targets, writes fresh seed corpora and runs libFuzzer on each target
# in turn. Prints one summary line per target; exits non-zero on any crash,
# sanitizer report, leak, timeout or out-of-memory (the input that caused it
# is kept in WORK/<target>/artifacts).
#
#   image        the image decoder and resizer (fuzz_image.c)
#   safetensors  the safetensors weight reader (fuzz_safetensors.c)
#   config       the configuration reader and printer (fuzz_config.c)
#   results      the results readers of --resume and validate (fuzz_results.c)
#
# usage: tests/fuzz/run.sh [SECONDS] [--target NAME|all] [--build DIR]
#                          [--work DIR] [--jobs N] [--raw]
#   SECONDS  fuzzing time per target (default 60)
#   --target one target, or all (the default), one after another
#   --build  the clang build folder (default: build-fuzz in the repository)
#   --work   seeds, corpus, artifacts and logs, in WORK/<target>
#            (default: BUILD/fuzz-work); corpora are kept between runs
#   --jobs   parallel fuzzing processes per target (default 1)
#   --raw    results: also overwrite bytes inside the HDF5 files, which
#            mostly tests HDF5's own parser (crashes there are not ours;
#            leak detection is off, as HDF5 loses blocks on corrupt files)
# Needs clang 14 and its libFuzzer runtime (Debian: clang-14,
# libclang-rt-14-dev; libomp-14-dev for the project's OpenMP; llvm-14 for
# symbolized reports).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
seconds=60 build="$root/build-fuzz" work="" jobs=1 target=all raw=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) build=$2; shift 2 ;;
    --work) work=$2; shift 2 ;;
    --jobs) jobs=$2; shift 2 ;;
    --target) target=$2; shift 2 ;;
    --raw) raw=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    [0-9]*) seconds=$1; shift ;;
    *) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
work="${work:-$build/fuzz-work}"
all_targets="image safetensors config results"
case "$target" in
  all) targets=$all_targets ;;
  image|safetensors|config|results) targets=$target ;;
  *) echo "run.sh: unknown target $target (one of: $all_targets, all)" >&2; exit 2 ;;
esac

if [ ! -f "$build/CMakeCache.txt" ]; then
  mkdir -p "$build"
  CC="${CC:-clang}" cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCTSWEEP_FUZZ=ON >"$build/fuzz-configure.log" 2>&1 ||
    { echo "run.sh: configure failed, see $build/fuzz-configure.log" >&2; exit 1; }
fi
# Each target with its seed generator.
seedgen() {
  case "$1" in
    image) echo fuzz_make_seeds ;;
    safetensors) echo fuzz_make_seeds_st ;;
    config) echo fuzz_make_seeds_config ;;
    results) echo fuzz_make_seeds_results ;;
  esac
}
build_targets=""
for t in $targets; do build_targets="$build_targets fuzz_$t $(seedgen "$t")"; done
# shellcheck disable=SC2086
cmake --build "$build" --target $build_targets -j 2 >"$build/fuzz-build.log" 2>&1 ||
  { echo "run.sh: build failed, see $build/fuzz-build.log" >&2; exit 1; }
bin="$build/tests/fuzz"

# Temporary trees of the config and results targets: in memory when possible.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi

failed=0
for t in $targets; do
  w="$work/$t"
  rm -rf "$w/seeds" "$w/artifacts"
  mkdir -p "$w/seeds" "$w/corpus" "$w/artifacts"
  # What differs between targets: the seed generator's arguments, input
  # sizes and options.
  opts=(-max_len=65536 -timeout=20 -rss_limit_mb=2048)
  case "$t" in
    config)
      "$bin/$(seedgen "$t")" "$root" "$w/seeds" "$w/config.dict" >/dev/null
      opts=(-max_len=16384 -timeout=20 -rss_limit_mb=2048 -dict="$w/config.dict") ;;
    results)
      "$bin/$(seedgen "$t")" "$w/seeds" >/dev/null
      opts=(-max_len=512 -timeout=30 -rss_limit_mb=2048) ;;
    *)
      "$bin/$(seedgen "$t")" "$w/seeds" >/dev/null ;;
  esac
  if [ "$t" = results ] && [ "$raw" = 1 ]; then
    export CTSWEEP_FUZZ_RESULTS_RAW=1
    opts+=(-detect_leaks=0)
  else
    unset CTSWEEP_FUZZ_RESULTS_RAW
  fi

  log="$w/fuzz.log"
  set +e
  if [ "$jobs" -gt 1 ]; then
    # -fork keeps going after a finding; each one still lands in artifacts.
    "$bin/fuzz_$t" -fork="$jobs" -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1 \
      "${opts[@]}" -max_total_time="$seconds" -artifact_prefix="$w/artifacts/" -print_final_stats=1 \
      "$w/corpus" "$w/seeds" >"$log" 2>&1
  else
    "$bin/fuzz_$t" "${opts[@]}" -max_total_time="$seconds" -artifact_prefix="$w/artifacts/" \
      -print_final_stats=1 "$w/corpus" "$w/seeds" >"$log" 2>&1
  fi
  rc=$?
  set -e

  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | awk '{s+=$1} END{print s+0}')
  if [ "$runs" = 0 ]; then runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1); fi
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | awk '{print $2}')
  corpus=$(find "$w/corpus" -type f | wc -l)
  findings=$(find "$w/artifacts" -type f | wc -l)
  verdict=PASS
  if [ "$rc" -ne 0 ] || [ "$findings" -ne 0 ]; then verdict=FAIL; failed=1; fi
  where="log $log"
  if [ "$findings" -ne 0 ]; then where="$where, inputs in $w/artifacts"; fi
  echo "fuzz_$t: $verdict ${seconds}s, ${runs:-0} runs, cov ${cov:-?}, corpus $corpus, findings $findings (exit $rc; $where)"
done
[ "$failed" = 0 ]
