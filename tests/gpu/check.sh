#!/usr/bin/env bash
# The GPU acceptance run, unattended, inside one short slot on an H100/H200
# machine that has the CUDA toolkit, cuDNN and NCCL (perhaps only inside
# PyTorch's pip wheels), CMake and PyTorch, but neither network nor
# ctsweep's other dependencies: those come as Debian packages in
# build-gpu-debs/ (made beforehand by tests/gpu/fetch-debs.sh) and are
# unpacked into a private prefix here.
#
# Such slots are short (one command at most 10 minutes) and a command
# stopped at its limit keeps only the end of its output and what it left
# under $OUT. So: one global deadline (default 480 s) to which every step's
# time limit is cut; each step's log and one-line verdict are copied to
# $OUT/logs/ the moment the step ends, and $OUT/summary.txt is rewritten
# at every step's start and end; SIGTERM, SIGINT or SIGHUP stop the running
# step and print (and write) the summary before exiting.
#
# Steps, planned on a 16-core machine (expected time / limit before the
# deadline cuts it); each ends in verdict lines PASS, FAIL or NOT RUN (NOT
# RUN counts as a failure):
#   0. a CUDA device visible (driver probe)                      1 s /  20 s
#   1. the machine: driver, nvcc, cmake, compilers, PyTorch     10 s /  60 s
#   2. cuDNN and NCCL found, built for the runtime's CUDA major  3 s /  30 s
#      (one line refuses each built for another major, naming both versions)
#   3. the Debian packages unpacked into build-gpu/prefix       15 s /  90 s
#      (not needed where the machine has Open MPI, HDF5, oneDNN, libfyaml)
#   4. configure and build with -DCTSWEEP_CUDA=ON              120 s / 270 s
#   5. Open MPI from the prefix launches ranks (--dry-run)       5 s /  60 s
#   6. ctest -L gpu (the CUDA backend against the CPU's: ops,  150 s / 270 s
#      operation table, models, a 20-step trainable-tail run)
#   7. a 4-trial phantom sweep, backend cuda, mpirun -n 3       40 s / 120 s
#   8. the same sweep with ranks_per_trial: 2 (NCCL)            40 s / 120 s
#   9. bench/backbone --backend cuda beside PyTorch             60 s / 150 s
#   expected in all: 444 s, under 8 minutes.
# The exit status is the number of failed checks (0: all passed; at most 76),
# or 77 with the single line "SKIP: no CUDA device visible (REASON)" (also
# written to $OUT/summary.txt) within seconds when there is no GPU.
#
# usage: tests/gpu/check.sh [--deadline S] [--libs-only]
#   --deadline S   finish within S seconds of starting (default 480)
#   --libs-only    only step 2: which cuDNN and NCCL would be used, and why
#                  others were refused (no GPU needed); exit 0 if both found
# environment: OUT (where results are kept, if set), CTSWEEP_GPU_WORK
# (default build-gpu), CTSWEEP_GPU_DEBS (default build-gpu-debs),
# CTSWEEP_GPU_JOBS (build jobs, default nproc), CTSWEEP_PYTHON (the python
# that has torch), CTSWEEP_GPU_LIB_PATH (colon-separated folders searched
# first for cuDNN and NCCL).
set -uo pipefail

usage() { sed -n '/^# usage:/,/^# first for/p' "$0" | sed 's/^# \{0,1\}//'; }
DEADLINE=480
LIBS_ONLY=0
while [ $# -gt 0 ]; do
  case "$1" in
    --deadline) DEADLINE="${2:-}"; shift 2 || shift ;;
    --deadline=*) DEADLINE="${1#*=}"; shift ;;
    --libs-only) LIBS_ONLY=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "tests/gpu/check.sh: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
if ! [[ "$DEADLINE" =~ ^[0-9]+$ ]] || [ "$DEADLINE" -lt 1 ]; then
  echo "tests/gpu/check.sh: --deadline: '$DEADLINE' is not a positive number of seconds" >&2
  exit 2
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${CTSWEEP_GPU_WORK:-$ROOT/build-gpu}"
DEBS="${CTSWEEP_GPU_DEBS:-$ROOT/build-gpu-debs}"
JOBS="${CTSWEEP_GPU_JOBS:-$(nproc 2>/dev/null || echo 4)}"
OUT="${OUT:-}"
BUILD="$WORK/build"
PREFIX="$WORK/prefix"
PBIN="$WORK/bin"
LOGS="$WORK/logs"
RESERVE=5  # seconds kept after the last step for the summary
T0=$(date +%s)
mkdir -p "$WORK" "$LOGS" "$PBIN" || exit 1
[ -n "$OUT" ] && { mkdir -p "$OUT/logs" || exit 1; }

# ---- bookkeeping: verdicts, budgets, the summary ----
FAILED=0
VERDICTS=()     # every check: "STATE name detail"
BUDGETS=()      # every step: expected and taken
HEADER=""
STEP_N="" STEP_NAME="" STEP_T0=0 STEP_EXPECT=0 STEP_LIMIT=0
STEP_LOGS=() STEP_STATES=() STEP_DETAILS=()
STEP_PID="" TAIL_PID=""

now() { date +%s; }
elapsed() { echo $(( $(now) - T0 )); }
verdict() {  # name PASS|FAIL|"NOT RUN" detail
  local line
  line=$(printf '%-8s %-40s %s' "$2" "$1" "${3:-}")
  VERDICTS+=("$line")
  STEP_STATES+=("$2")
  if [ "$1" = "$STEP_NAME" ]; then STEP_DETAILS+=("${3:-}")
  elif [ -n "${3:-}" ]; then STEP_DETAILS+=("$1: $3")
  else STEP_DETAILS+=("$1"); fi
  echo ">>> $line"
  [ "$2" = PASS ] || FAILED=$((FAILED + 1))
}
summary_text() {  # status line
  [ -n "$HEADER" ] && echo "$HEADER"
  local v
  for v in "${VERDICTS[@]}"; do echo "$v"; done
  [ ${#BUDGETS[@]} -gt 0 ] && echo "budget (expected / taken / limit):"
  for v in "${BUDGETS[@]}"; do echo "  $v"; done
  echo "$1"
}
write_summary() {  # status line
  [ -n "$OUT" ] || return 0
  summary_text "$1" > "$OUT/summary.txt.part" && mv -f "$OUT/summary.txt.part" "$OUT/summary.txt"
}
# Starts step N: prints its header with its budget and cuts its limit to
# the deadline. STEP_LIMIT 0: no time left, the step is not run.
step_begin() {  # N name expected limit
  STEP_N=$1 STEP_NAME=$2 STEP_EXPECT=$3
  STEP_LOGS=() STEP_STATES=() STEP_DETAILS=()
  STEP_T0=$(now)
  local left=$(( DEADLINE - $(elapsed) - RESERVE )) cut=""
  STEP_LIMIT=$4
  if [ "$left" -lt "$STEP_LIMIT" ]; then
    STEP_LIMIT=$(( left > 0 ? left : 0 ))
    cut=" (cut from $4 s by the ${DEADLINE} s deadline)"
  fi
  echo
  echo "==== $1. $2 [t=$(elapsed)s] expected $3 s, limit $STEP_LIMIT s$cut"
  write_summary "RUNNING step $1 ($2) since t=$(elapsed)s, limit $STEP_LIMIT s"
}
# Whether the step has time to run; if not, its verdict says so.
step_has_time() {
  [ "$STEP_LIMIT" -ge 3 ] && return 0
  verdict "$STEP_NAME" "NOT RUN" "no time left before the $DEADLINE s deadline"
  return 1
}
# Ends the step: budget line, logs and the step's one-line verdict to $OUT.
step_end() {
  [ -n "$STEP_N" ] || return 0
  local took=$(( $(now) - STEP_T0 )) state=PASS s tag
  for s in "${STEP_STATES[@]}"; do
    if [ "$s" = FAIL ]; then state=FAIL; elif [ "$s" = "NOT RUN" ] && [ "$state" = PASS ]; then state="NOT RUN"; fi
  done
  [ ${#STEP_STATES[@]} -eq 0 ] && state="NOT RUN"
  local budget
  budget=$(printf '%-2s %-34s expected %3d s, took %3d s, limit %3d s' "$STEP_N." "$STEP_NAME" "$STEP_EXPECT" \
           "$took" "$STEP_LIMIT")
  [ "$took" -gt "$STEP_EXPECT" ] && budget="$budget (over)"
  BUDGETS+=("$budget")
  echo "---- $STEP_N. $STEP_NAME: took $took s (expected $STEP_EXPECT s, limit $STEP_LIMIT s)"
  if [ -n "$OUT" ]; then
    tag=$(printf '%02d-%s' "$STEP_N" "$(echo "$STEP_NAME" | tr -c 'a-zA-Z0-9\n' '-' | tr -s '-' | cut -c1-40)")
    tag="${tag%-}"
    for s in "${STEP_LOGS[@]}"; do [ -f "$s" ] && cp -f "$s" "$OUT/logs/$tag.$(basename "$s")"; done
    local details
    details=$(IFS=';'; echo "${STEP_DETAILS[*]}")
    printf '%-8s %s. %s: %s; expected %d s, took %d s\n' "$state" "$STEP_N" "$STEP_NAME" "$details" \
      "$STEP_EXPECT" "$took" > "$OUT/logs/$tag.verdict"
  fi
  write_summary "RUNNING: step $STEP_N ($STEP_NAME) ended at t=$(elapsed)s"
  STEP_N=""
}
# Runs a command under what is left of the step's limit, its output to a
# log and to the screen. The command runs in the background and the script
# waits for it, so a signal reaches the trap at once, not after the command.
run_logged() {  # log cmd...
  local log=$1
  shift
  STEP_LOGS+=("$log")
  local lim=$(( STEP_LIMIT - ($(now) - STEP_T0) ))
  if [ "$lim" -le 0 ]; then
    echo "not run, the step's time is up: $*" | tee "$log"
    return 124
  fi
  : > "$log"
  timeout --kill-after=10 "$lim" "$@" > "$log" 2>&1 < /dev/null &
  STEP_PID=$!
  tail -n +1 -s 0.5 --pid="$STEP_PID" -f "$log" 2>/dev/null &
  TAIL_PID=$!
  local rc=0
  wait "$STEP_PID" || rc=$?
  wait "$TAIL_PID" 2>/dev/null
  STEP_PID="" TAIL_PID=""
  [ "$rc" = 124 ] && echo ">>> stopped at the step's limit ($lim s left of $STEP_LIMIT s)" | tee -a "$log"
  return "$rc"
}
on_signal() {  # NAME NUMBER
  trap - TERM INT HUP
  # timeout passes the signal on to the command (and kills it 10 s later).
  [ -n "$STEP_PID" ] && kill -TERM "$STEP_PID" 2>/dev/null
  [ -n "$TAIL_PID" ] && kill "$TAIL_PID" 2>/dev/null
  local where="between steps"
  if [ -n "$STEP_N" ]; then
    where="during step $STEP_N ($STEP_NAME)"
    verdict "$STEP_NAME" FAIL "killed by SIG$1 after $(( $(now) - STEP_T0 )) s"
    step_end
  fi
  local status
  status="KILLED by SIG$1 $where at t=$(elapsed)s: $(( ${#VERDICTS[@]} - FAILED )) of ${#VERDICTS[@]} checks passed so far"
  echo
  echo "==== summary (killed)"
  summary_text "$status"
  write_summary "$status"
  exit $((128 + $2))
}
trap 'on_signal TERM 15' TERM
trap 'on_signal INT 2' INT
trap 'on_signal HUP 1' HUP

# ---- 0. a CUDA device ----
# Asked of the driver itself (libcuda through dlopen), which applies
# CUDA_VISIBLE_DEVICES as every CUDA program here will; nvidia-smi, which
# ignores it, only when there is no C compiler for the probe.
PROBE="$WORK/check_probe"
have_probe=0
if command -v cc >/dev/null 2>&1 &&
   cc -O1 -o "$PROBE" "$ROOT/tests/gpu/check_probe.c" -ldl > "$LOGS/probe-build.log" 2>&1; then
  have_probe=1
fi
NGPU=0 GPU_WHY="" DRIVER_CUDA=""
if [ $have_probe = 1 ]; then
  read -r NGPU GPU_WHY < <("$PROBE" devices 2>&1 || echo "0 the driver probe failed")
  if [ "${NGPU:-0}" -gt 0 ] 2>/dev/null; then DRIVER_CUDA=$GPU_WHY GPU_WHY=""; else NGPU=0; fi
elif [ "${CUDA_VISIBLE_DEVICES-unset}" = "" ] || [ "${CUDA_VISIBLE_DEVICES-}" = "-1" ]; then
  GPU_WHY="CUDA_VISIBLE_DEVICES='${CUDA_VISIBLE_DEVICES}'"
elif command -v nvidia-smi >/dev/null 2>&1; then
  NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
  [ "$NGPU" -gt 0 ] || GPU_WHY="nvidia-smi lists no GPU"
else
  GPU_WHY="no C compiler for the driver probe and no nvidia-smi"
fi
if [ "$NGPU" = 0 ] && [ $LIBS_ONLY = 0 ]; then
  line="SKIP: no CUDA device visible ($GPU_WHY)"
  echo "$line"
  [ -n "$OUT" ] && echo "$line" > "$OUT/summary.txt"
  exit 77
fi
if [ $LIBS_ONLY = 0 ]; then
  HEADER="ctsweep GPU check on $(hostname 2>/dev/null || echo '?'), started $(date -u -d "@$T0" +%FT%TZ), deadline $DEADLINE s"
  step_begin 0 "a CUDA device visible" 1 20
  verdict "GPU visible" PASS "$NGPU device(s), driver for CUDA ${DRIVER_CUDA:-?}"
  step_end
fi

# ---- 1. the machine ----
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
# The toolkit's folder: CUDA_HOME or CUDA_PATH when set, else nvcc's with
# links resolved (nvcc may be reached through /usr/local/bin), else
# /usr/local/cuda; the first that holds the runtime library wins.
CUDA_ROOT=""
for cand in "${CUDA_HOME:-}" "${CUDA_PATH:-}" \
            "$([ -n "$NVCC" ] && dirname "$(dirname "$(readlink -f "$NVCC")")")" /usr/local/cuda; do
  [ -n "$cand" ] && [ -d "$cand" ] || continue
  if ls "$cand"/lib64/libcudart.so* "$cand"/lib/libcudart.so* >/dev/null 2>&1; then
    CUDA_ROOT="$(cd "$cand" && pwd)"; break
  fi
done
[ -z "$CUDA_ROOT" ] && CUDA_ROOT=/usr/local/cuda
PY=""
for cand in "${CTSWEEP_PYTHON:-}" python3 /usr/bin/python3 python; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch" >/dev/null 2>&1; then PY="$(command -v "$cand")"; break; fi
done
machine_info() {
  uname -srm
  [ -r /etc/os-release ] && (. /etc/os-release && echo "os: $PRETTY_NAME")
  echo "cores: $(nproc), memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
  if command -v nvidia-smi >/dev/null 2>&1; then
    nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv 2>&1 | sed 's/^/  /'
  else
    echo "nvidia-smi: not found"
  fi
  echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-(unset)}"
  if [ -n "$NVCC" ]; then echo "nvcc: $NVCC: $("$NVCC" --version | grep -i release)"; else echo "nvcc: not found"; fi
  echo "cmake: $(cmake --version 2>/dev/null | head -1 || echo 'not found')"
  echo "cc: $(cc --version 2>/dev/null | head -1 || echo 'not found')"
  echo "pkg-config: $(command -v pkg-config || echo 'not found (the prefix has pkgconf)')"
  if [ -n "$PY" ]; then
    "$PY" - <<'EOF' 2>&1 | sed 's/^/  /'
import torch
print(f"python {__import__('sys').version.split()[0]}, torch {torch.__version__}, built for CUDA {torch.version.cuda}, "
      f"cuDNN {torch.backends.cudnn.version()}")
print(f"torch.cuda.is_available(): {torch.cuda.is_available()}, devices: {torch.cuda.device_count()}"
      + (f", 0: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ""))
try:
    import torchvision
    print(f"torchvision {torchvision.__version__}")
except ImportError:
    print("torchvision: absent (bench/torch_backbone.py builds the same layers itself)")
EOF
  else
    echo "python with torch: not found"
  fi
}
if [ $LIBS_ONLY = 0 ]; then
  step_begin 1 "the machine" 10 60
  export -f machine_info
  export NVCC PY
  if ! step_has_time; then
    :
  elif ! run_logged "$LOGS/machine.log" bash -c machine_info; then
    verdict "machine" FAIL "the machine's description failed or did not finish; see machine.log"
  elif [ -z "$NVCC" ]; then
    verdict "machine" FAIL "nvcc not found (neither on PATH nor /usr/local/cuda/bin)"
  elif ! command -v cmake >/dev/null 2>&1; then
    verdict "machine" FAIL "cmake not found"
  else
    verdict "machine" PASS "$(nproc) cores, CUDA toolkit $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'), python with torch: ${PY:-none}"
  fi
  step_end
fi

# ---- 2. cuDNN and NCCL ----
# The toolkit's, the system's, or those of PyTorch's wheels, whichever comes
# first and was built for the CUDA major of the runtime the build links (a
# cuDNN for CUDA 12 beside a CUDA 13 toolkit fails at run time, if at all).
SITE_NVIDIA=()
if [ -n "$PY" ]; then
  mapfile -t SITE_NVIDIA < <("$PY" -c "
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, 'nvidia', '*', 'lib'))):
        print(d)" 2>/dev/null)
fi
ARCH_DIR="$(uname -m)-linux-gnu"
LIB_DIRS=()
IFS=: read -r -a LIB_DIRS <<< "${CTSWEEP_GPU_LIB_PATH:-}"
LIB_DIRS+=("$CUDA_ROOT/lib64" "$CUDA_ROOT/lib" "/usr/lib/$ARCH_DIR" /usr/lib64 "${SITE_NVIDIA[@]}")
# The runtime's version: the toolkit's libcudart (what the build links), else nvcc's release.
RUNTIME=""
for f in "$CUDA_ROOT"/lib64/libcudart.so.[0-9]* "$CUDA_ROOT"/lib/libcudart.so.[0-9]*; do
  [ -e "$f" ] && [ $have_probe = 1 ] && RUNTIME=$("$PROBE" cudart "$f" 2>/dev/null) && break
  RUNTIME=""
done
[ -z "$RUNTIME" ] && [ -n "$NVCC" ] && RUNTIME=$("$NVCC" --version | sed -n 's/.*release \([0-9]*\.[0-9]*\).*/\1/p')
# Candidates for lib<stem>, each folder's versioned file, once per real file.
candidates() {  # stem
  local d f seen=" "
  for d in "${LIB_DIRS[@]}"; do
    [ -n "$d" ] && [ -d "$d" ] || continue
    for f in "$d"/lib"$1".so.[0-9]* "$d/lib$1.so"; do
      [ -e "$f" ] || continue
      local real
      real="$(readlink -f "$f")"
      case "$seen" in *" $real "*) continue ;; esac
      seen="$seen$real "
      echo "$f"
      break
    done
  done
}
find_header() {  # name -> directory
  local d
  for d in "$@"; do
    [ -e "$d/$HDR_NAME" ] && { echo "$d"; return 0; }
  done
  return 1
}
CUDALIBS="$WORK/cudalibs"
mkdir -p "$CUDALIBS"
CUDA_CMAKE=()
# shellcheck disable=SC2034  # read through ${!want} after the build
CHOSEN_cudnn="" CHOSEN_nccl=""
choose_libs() {  # prints one line per candidate; sets CUDA_CMAKE, CHOSEN_*; fails if one is missing
  local stem label lib info ver built ok=0 notes=()
  CUDA_CMAKE=()
  echo "CUDA runtime: ${RUNTIME:-unknown} (toolkit $CUDA_ROOT)"
  for stem in cudnn nccl; do
    label=cuDNN; [ $stem = nccl ] && label=NCCL
    local chosen=""
    while read -r lib; do
      [ -n "$lib" ] || continue
      if [ $have_probe = 0 ] || [ -z "$RUNTIME" ]; then
        echo "$label: $lib (not checked: no C compiler for the probe, or no CUDA runtime version)"
        chosen=$lib
        break
      fi
      if ! info=$("$PROBE" $stem "$lib" 2>&1); then
        echo "$label at $lib cannot be loaded (${info#? }): skipped"
        continue
      fi
      read -r ver built <<< "$info"
      if [ "${built%%.*}" != "${RUNTIME%%.*}" ]; then
        echo "$label $ver at $lib was built for CUDA $built, the CUDA runtime is $RUNTIME: refused"
        notes+=("$label $ver for CUDA $built refused")
        continue
      fi
      echo "$label $ver at $lib, built for CUDA $built: used"
      chosen=$lib
      notes+=("$label $ver (CUDA $built)")
      break
    done < <(candidates $stem)
    HDR_NAME=$stem.h
    local hdr
    hdr="$(find_header "$CUDA_ROOT/include" /usr/include "/usr/include/$ARCH_DIR" \
           "$(dirname "${chosen:-/none/x}")/../include" "${SITE_NVIDIA[@]/%\/lib/\/include}" || true)"
    if [ -z "$chosen" ]; then
      echo "$label: none built for CUDA ${RUNTIME%%.*} found in: ${LIB_DIRS[*]}"
      ok=1
      continue
    fi
    echo "$label header: ${hdr:-not found}"
    # Wheels ship only lib<name>.so.N: give the linker the unversioned name.
    ln -sf "$(readlink -f "$chosen")" "$CUDALIBS/lib$stem.so"
    local upper
    upper=$(echo $stem | tr a-z A-Z)
    CUDA_CMAKE+=("-DCTSWEEP_${upper}_LIB=$CUDALIBS/lib$stem.so")
    [ -n "$hdr" ] && CUDA_CMAKE+=("-DCTSWEEP_${upper}_INC=$hdr")
    printf -v "CHOSEN_$stem" '%s' "$(readlink -f "$chosen")"
  done
  LIBS_NOTE="runtime ${RUNTIME:-?}; ${notes[*]}"
  return $ok
}
if [ $LIBS_ONLY = 1 ]; then
  choose_libs
  exit $?
fi
step_begin 2 "cuDNN and NCCL" 3 30
libs_ok=1
if step_has_time; then
  # Run here, not under run_logged: it sets the build's variables. It only
  # loads libraries and reads files, in a second or two.
  choose_libs > "$LOGS/libs.log" 2>&1
  libs_ok=$?
  cat "$LOGS/libs.log"
  STEP_LOGS+=("$LOGS/libs.log")
  if [ $libs_ok = 0 ]; then
    verdict "cuDNN and NCCL" PASS "$LIBS_NOTE"
  else
    verdict "cuDNN and NCCL" FAIL "$(grep -m1 'none built for' "$LOGS/libs.log")"
  fi
fi
step_end

# ---- 3. the private prefix of Debian packages ----
step_begin 3 "Debian packages into the prefix" 15 90
deb_arch="$(sed -n 's/^# arch \([a-z0-9]*\).*/\1/p' "$DEBS/MANIFEST" 2>/dev/null)"
case "$(uname -m)" in x86_64) want_arch=amd64 ;; aarch64) want_arch=arm64 ;; *) want_arch="$(uname -m)" ;; esac
extract() {  # deb dir
  if command -v dpkg-deb >/dev/null 2>&1; then
    dpkg-deb -x "$1" "$2"
  else
    local t
    t="$(mktemp -d)"
    (cd "$t" && ar x "$1" && tar -xf data.tar.* -C "$2")
    rm -rf "$t"
  fi
}
# Whether the machine already has every shared library a package carries.
system_has_libs() {  # deb
  local names n
  names=$( (dpkg-deb -c "$1" 2>/dev/null || true) | grep -o 'lib[^/ ]*\.so\.[0-9]*\( \|$\)' | tr -d ' ' | sort -u)
  [ -n "$names" ] || return 1
  for n in $names; do grep -q "^[[:space:]]*$n " "$WORK/ldconfig.txt" || return 1; done
  return 0
}
unpack_prefix() {
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  local unpacked=0 skipped="" role pkg deb
  while read -r role pkg deb; do
    case "$role" in \#*|"") continue ;; esac
    if [ "$role" = runtime ] && command -v dpkg-deb >/dev/null 2>&1 && system_has_libs "$DEBS/$deb"; then
      skipped="$skipped $pkg"
      continue
    fi
    extract "$DEBS/$deb" "$PREFIX" && unpacked=$((unpacked + 1))
  done < "$DEBS/MANIFEST"
  echo "unpacked $unpacked packages; the machine has its own:${skipped:- none}"
  local libdir="$PREFIX/usr/lib/$ARCH_DIR" l sys t
  # Development symlinks whose target was left to the system (zlib1g-dev's
  # libz.so) point at the system's copy instead.
  for l in "$libdir"/lib*.so; do
    [ -L "$l" ] && [ ! -e "$l" ] || continue
    sys="$(awk -v n="$(basename "$l")." 'index($1, n) == 1 {print $NF; exit}' "$WORK/ldconfig.txt")"
    [ -n "$sys" ] && ln -sf "$sys" "$l"
  done
  # Debian's alternatives (mpirun -> mpirun.openmpi -> orterun) are made by
  # maintainer scripts, which dpkg -x does not run. The wrapper reads the
  # data file named after the name it is called by (mpicc-wrapper-data.txt).
  for t in mpirun mpiexec orterun; do ln -sf "$PREFIX/usr/bin/orterun" "$PBIN/$t"; done
  ln -sf "$PREFIX/usr/bin/ompi_info" "$PBIN/ompi_info"
  ln -sf "$PREFIX/usr/bin/opal_wrapper" "$PBIN/mpicc"
}
export -f unpack_prefix extract system_has_libs
export PREFIX PBIN DEBS WORK ARCH_DIR
ldconfig -p > "$WORK/ldconfig.txt" 2>/dev/null || true
USE_PREFIX=1
if ! step_has_time; then
  :
elif [ ! -f "$DEBS/MANIFEST" ] && command -v mpicc >/dev/null 2>&1 &&
     pkg-config --exists libfyaml hdf5 2>/dev/null && [ -e /usr/include/oneapi/dnnl/dnnl.h ]; then
  USE_PREFIX=0
  verdict "Debian packages" PASS "not needed: the machine has Open MPI, HDF5, oneDNN and libfyaml"
elif [ ! -f "$DEBS/MANIFEST" ]; then
  verdict "Debian packages" "NOT RUN" "no $DEBS/MANIFEST: run tests/gpu/fetch-debs.sh where apt works"
elif [ "$deb_arch" != "$want_arch" ]; then
  verdict "Debian packages" "NOT RUN" "packages are for $deb_arch, this machine is $want_arch"
elif run_logged "$LOGS/debs.log" bash -c unpack_prefix &&
     [ -x "$PREFIX/usr/bin/opal_wrapper" ] && [ -e "$PREFIX/usr/lib/$ARCH_DIR/libmpi.so.40" ] &&
     [ -e "$PREFIX/usr/lib/$ARCH_DIR/libdnnl.so" ]; then
  verdict "Debian packages" PASS "$(sed -n 's/^\(unpacked [0-9]* packages\).*/\1/p' "$LOGS/debs.log"), $(du -sh "$PREFIX" | cut -f1)"
else
  verdict "Debian packages" FAIL "Open MPI or oneDNN missing from the prefix; see debs.log"
fi
LIBDIR="$PREFIX/usr/lib/$ARCH_DIR"
if [ $USE_PREFIX = 1 ]; then
  # Open MPI and PMIx find their plugins and help files relative to these.
  export OPAL_PREFIX="$PREFIX/usr"
  export PMIX_INSTALL_PREFIX="$LIBDIR/pmix2"
  export PATH="$PBIN:$PATH"
  # The CUDA libraries are not here: the build puts the toolkit's folder and
  # those of the chosen cuDNN and NCCL into every binary's RUNPATH
  # (cmake/CtsweepCuda.cmake), and LD_LIBRARY_PATH would also override the
  # libraries PyTorch's wheels bring for themselves.
  export LD_LIBRARY_PATH="$LIBDIR:$LIBDIR/hdf5/serial:$LIBDIR/openmpi/lib:$LIBDIR/pmix2/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
  export PKG_CONFIG_LIBDIR="$LIBDIR/pkgconfig:$PREFIX/usr/share/pkgconfig:$PREFIX/usr/lib/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR="$PREFIX"
  export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
fi
# mpirun as root, more ranks than cores, shared memory only (containers
# often forbid the cross-memory attach vader would use), quiet about the
# network components the machine has no hardware or libraries for.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1 OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,vader
export OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_mca_base_component_show_load_errors=0
export OMPI_MCA_osc='^ucx' OMPI_MCA_mtl='^ofi,psm,psm2'
export CTSWEEP_BUILD="$BUILD"
[ -n "$PY" ] && export CTSWEEP_PYTHON="$PY"
PKGCONF="$(command -v pkg-config || echo "$PREFIX/usr/bin/pkgconf")"
step_end

# ---- 4. build ----
step_begin 4 "configure and build" 120 270
built=0
CTSWEEP="$BUILD/ctsweep"
if ! step_has_time; then
  :
elif ! command -v cmake >/dev/null 2>&1; then
  verdict "build with CTSWEEP_CUDA=ON" "NOT RUN" "cmake not found"
elif [ $libs_ok != 0 ]; then
  verdict "build with CTSWEEP_CUDA=ON" "NOT RUN" "no cuDNN or NCCL for CUDA ${RUNTIME%%.*} (step 2)"
else
  deps=()
  [ $USE_PREFIX = 1 ] && deps=(-DCMAKE_PREFIX_PATH="$PREFIX/usr" -DMPI_C_COMPILER="$PBIN/mpicc"
                               -DPKG_CONFIG_EXECUTABLE="$PKGCONF" -DHDF5_C_COMPILER_EXECUTABLE="$WORK/no-h5cc")
  if run_logged "$LOGS/configure.log" cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCTSWEEP_CUDA=ON \
       "${deps[@]}" -DCUDAToolkit_ROOT="$CUDA_ROOT" "${CUDA_CMAKE[@]}" \
     && run_logged "$LOGS/build.log" cmake --build "$BUILD" -j "$JOBS"; then
    built=1
  fi
  grep -E 'MPI_C_LIBRARIES|HDF5_C_LIBRARY_hdf5|DNNL_LIBRARY|CTSWEEP_CUDNN_LIB|CTSWEEP_NCCL_LIB' \
    "$BUILD/CMakeCache.txt" 2>/dev/null | sed 's/^/  /'
  if [ $built = 1 ]; then
    # The binaries must find the CUDA libraries by themselves (RUNPATH),
    # and the very cuDNN and NCCL step 2 chose.
    ldd "$CTSWEEP" > "$LOGS/ldd.log" 2>&1
    STEP_LOGS+=("$LOGS/ldd.log")
    readelf -d "$CTSWEEP" 2>/dev/null | grep -i runpath | sed 's/^ */  /'
    problems=$(grep 'not found' "$LOGS/ldd.log" | awk '{print $1}' | tr '\n' ' ')
    for stem in cudnn nccl; do
      want="CHOSEN_$stem"
      got=$(awk -v s="lib$stem.so" 'index($1, s) == 1 {print $3; exit}' "$LOGS/ldd.log")
      [ -n "$got" ] && [ "$(readlink -f "$got")" = "${!want}" ] ||
        problems="${problems}lib$stem from ${got:-nowhere}, not ${!want}; "
    done
    warnings=$(grep -c 'warning:' "$LOGS/build.log" || true)
    if [ -z "$problems" ]; then
      verdict "build with CTSWEEP_CUDA=ON" PASS "$warnings compiler warnings; CUDA libraries found through RUNPATH"
    else
      built=0
      verdict "build with CTSWEEP_CUDA=ON" FAIL "ctsweep does not load: $problems"
    fi
  else
    first=$(cat "$LOGS/configure.log" "$LOGS/build.log" 2>/dev/null |
            awk '/CMake Error/ {getline; sub(/^ +/, ""); print; exit} /error:/ {print; exit}' | cut -c1-160)
    verdict "build with CTSWEEP_CUDA=ON" FAIL "${first:-failed}; see configure.log and build.log"
  fi
fi
step_end

# The first error line of a log, cut short, and "; " (nothing if none).
first_error() {  # log
  local e
  e=$(grep -m1 -i -E 'error|failed' "$1" 2>/dev/null | sed 's/^ *//' | cut -c1-140)
  [ -n "$e" ] && echo "$e; "
}

# The sweeps' configuration: 48 phantoms, 2 models x unfreeze 0 and 1 = 4
# trials (the fine-tuning ones train their last stage and head on the GPU;
# with ranks_per_trial 2 their gradients are summed by NCCL on the device).
write_config() {  # path backend ranks_per_trial
  cat > "$1" <<EOF
data:
  phantoms: {count: 48, size: 64, seed: 3}
  split: {fractions: [0.5, 0.25, 0.25], seed: 1}
  image_size: 64
head: {standardize: true}
train: {backend: $2, feature_batch: 16}
grid:
  model: [resnet34, vgg16]
  unfreeze: [0, 1]
  epochs: [2]
  batch_size: [8]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
  seed: [0]
ranks_per_trial: $3
EOF
}

# ---- 5. MPI from the prefix ----
step_begin 5 "mpirun from the prefix" 5 60
mpi_check="mpirun -n 2 (prefix Open MPI)"
[ $USE_PREFIX = 0 ] && mpi_check="mpirun -n 2 (the machine's Open MPI)"
if ! step_has_time; then
  :
elif [ $built = 1 ]; then
  write_config "$WORK/sweep_dry.yaml" cpu 1
  if run_logged "$LOGS/mpi.log" mpirun -n 2 "$CTSWEEP" run "$WORK/sweep_dry.yaml" -o "$WORK/out-dry" --dry-run; then
    verdict "$mpi_check" PASS "$(grep -c . "$LOGS/mpi.log") lines of --dry-run output"
  else
    verdict "$mpi_check" FAIL "$(first_error "$LOGS/mpi.log")see mpi.log"
  fi
else
  verdict "$mpi_check" "NOT RUN" "no build"
fi
step_end

# ---- 6. ctest -L gpu ----
step_begin 6 "ctest -L gpu" 150 270
if ! step_has_time; then
  :
elif [ $built = 1 ]; then
  # -V keeps every test's own lines (its checks, a SKIP's reason) in the log.
  run_logged "$LOGS/ctest.log" ctest --test-dir "$BUILD" -L gpu -V
  finished=" "
  while read -r num name state; do
    finished="$finished$num "
    reason="$(grep -m1 "^$num: SKIP: " "$LOGS/ctest.log" | sed "s/^$num: //")"
    case "$state" in
      Passed) verdict "ctest $name" PASS ;;
      Skipped)
        if [ "$name" = gpu_cuda_nccl ] && grep -q "^$num: ok   one GPU for two ranks detected" "$LOGS/ctest.log"; then
          verdict "ctest $name" PASS "1 GPU: shared-GPU detection checked; allreduce needs 2 GPUs"
        else
          verdict "ctest $name" "NOT RUN" "${reason:-skipped}"
        fi ;;
      *) verdict "ctest $name" FAIL "$state; see ctest.log" ;;
    esac
  done < <(sed -n 's/.*Test *#\([0-9]*\): \([^ ]*\) \.*[* ]*\([A-Za-z]*\).*/\1 \2 \3/p' "$LOGS/ctest.log")
  # A test that started but never reported: stopped at the step's limit.
  while read -r num name; do
    case "$finished" in *" $num "*) ;; *) verdict "ctest $name" FAIL "did not finish within the step's limit" ;; esac
  done < <(sed -n 's/^ *Start *\([0-9]*\): \([^ ]*\).*/\1 \2/p' "$LOGS/ctest.log")
  grep -q 'Start *[0-9]' "$LOGS/ctest.log" || verdict "ctest -L gpu" FAIL "no test ran; see ctest.log"
else
  verdict "ctest -L gpu" "NOT RUN" "no build"
fi
step_end

# ---- 7. and 8. sweeps ----
run_sweep() {  # name ranks_per_trial
  local name=$1 rpt=$2 out="$WORK/out-$1" rc=1
  rm -rf "$out"
  write_config "$WORK/$name.yaml" cuda "$rpt"
  if run_logged "$LOGS/$name.log" mpirun -n 3 "$CTSWEEP" run "$WORK/$name.yaml" -o "$out" &&
     run_logged "$LOGS/$name-validate.log" "$CTSWEEP" validate "$out"; then
    rc=0
  fi
  run_logged "$LOGS/$name-status.log" "$CTSWEEP" status "$out" > /dev/null
  tail -8 "$LOGS/$name-status.log"
  return $rc
}
step_begin 7 "sweep, backend cuda, mpirun -n 3" 40 120
if ! step_has_time; then
  :
elif [ $built = 1 ]; then
  if run_sweep sweep-cuda 1; then
    verdict "sweep backend cuda (mpirun -n 3)" PASS "4 trials done, validate passed"
  else
    verdict "sweep backend cuda (mpirun -n 3)" FAIL "$(first_error "$LOGS/sweep-cuda.log")see sweep-cuda.log"
  fi
else
  verdict "sweep backend cuda (mpirun -n 3)" "NOT RUN" "no build"
fi
step_end

step_begin 8 "sweep, ranks_per_trial 2 (NCCL)" 40 120
if ! step_has_time; then
  :
elif ! grep -qs 'cuda_nccl_create' "$ROOT"/src/sweep/*.c "$ROOT"/src/train/*.c; then
  verdict "sweep ranks_per_trial 2 (NCCL)" "NOT RUN" "the sweep does not call cuda_nccl_create yet"
elif [ $built = 1 ]; then
  note="NCCL across $NGPU GPUs"
  [ "$NGPU" -lt 2 ] && note="1 GPU: the group shares it, so it reduces with MPI (NCCL needs a GPU per rank)"
  if run_sweep sweep-rpt2 2; then
    verdict "sweep ranks_per_trial 2 (NCCL)" PASS "$note"
  else
    verdict "sweep ranks_per_trial 2 (NCCL)" FAIL "$(first_error "$LOGS/sweep-rpt2.log")$note; see sweep-rpt2.log"
  fi
else
  verdict "sweep ranks_per_trial 2 (NCCL)" "NOT RUN" "no build"
fi
step_end

# ---- 9. benchmark ----
step_begin 9 "bench/backbone cuda beside PyTorch" 60 150
if ! step_has_time; then
  :
elif [ $built = 1 ] && [ -n "$PY" ]; then
  if run_logged "$LOGS/bench.log" "$ROOT/bench/backbone" --backend cuda --batch 64 --size 224 --iters 3 --rounds 1 &&
     ! grep -q 'not run' "$LOGS/bench.log"; then
    verdict "bench/backbone cuda vs PyTorch" PASS "ours/torch: $(awk '$6 ~ /^[0-9.]+x$/ {printf "%s %s ", $1, $6}' "$LOGS/bench.log")"
  else
    verdict "bench/backbone cuda vs PyTorch" FAIL "$(first_error "$LOGS/bench.log")see bench.log"
  fi
else
  verdict "bench/backbone cuda vs PyTorch" "NOT RUN" "needs the build and python with torch"
fi
step_end

# ---- summary ----
status="FINISHED in $(elapsed) s (deadline $DEADLINE s): $(( ${#VERDICTS[@]} - FAILED )) of ${#VERDICTS[@]} checks passed; logs in $LOGS${OUT:+ and $OUT/logs}"
echo
echo "==== summary"
summary_text "$status"
write_summary "$status"
exit $(( FAILED > 76 ? 76 : FAILED ))
