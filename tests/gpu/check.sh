#!/usr/bin/env bash
# The GPU acceptance run, unattended, in well under 8 minutes on an H100/H200
# machine that has the CUDA toolkit, cuDNN and NCCL (perhaps only inside
# PyTorch's pip wheels), CMake and PyTorch, but neither network nor
# ctsweep's other dependencies: those come as Debian packages in
# build-gpu-debs/ (made beforehand by tests/gpu/fetch-debs.sh) and are
# unpacked into a private prefix here.
#
# Steps, each ending in one verdict line (PASS, FAIL or NOT RUN; NOT RUN
# counts as a failure):
#   1. what the machine has: GPUs, driver, nvcc, cmake, compilers, PyTorch
#   2. the Debian packages unpacked into build-gpu/prefix
#   3. configure and build with -DCTSWEEP_CUDA=ON into build-gpu/build
#   4. Open MPI from the prefix launches ranks (a --dry-run under mpirun -n 2)
#   5. ctest -L gpu (the CUDA backend against the CPU backend, op by op)
#   6. a 4-trial phantom sweep with train.backend cuda under mpirun -n 3
#   7. the same sweep with ranks_per_trial: 2 (NCCL when the group has two GPUs)
#   8. bench/backbone --backend cuda --batch 64 --size 224 beside PyTorch
# then a summary; the exit status is the number of failed checks (0: all passed).
#
# usage: tests/gpu/check.sh
# environment: CTSWEEP_GPU_WORK (default build-gpu), CTSWEEP_GPU_DEBS
# (default build-gpu-debs), CTSWEEP_GPU_JOBS (build jobs, default nproc),
# CTSWEEP_PYTHON (the python that has torch).
set -uo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
WORK="${CTSWEEP_GPU_WORK:-$ROOT/build-gpu}"
DEBS="${CTSWEEP_GPU_DEBS:-$ROOT/build-gpu-debs}"
JOBS="${CTSWEEP_GPU_JOBS:-$(nproc 2>/dev/null || echo 4)}"
BUILD="$WORK/build"
PREFIX="$WORK/prefix"
PBIN="$WORK/bin"
LOGS="$WORK/logs"
T0=$(date +%s)
FAILED=0
VERDICTS=()
mkdir -p "$WORK" "$LOGS" "$PBIN"

elapsed() { echo "$(( $(date +%s) - T0 ))s"; }
section() { echo; echo "==== $* [$(elapsed)]"; }
verdict() {  # name PASS|FAIL|NOT RUN detail
  local line
  line=$(printf '%-8s %-44s %s' "$2" "$1" "${3:-}")
  VERDICTS+=("$line")
  echo ">>> $line"
  [ "$2" = PASS ] || FAILED=$((FAILED + 1))
}
# Runs a command with a time limit, its output to a log and to the screen.
run_logged() {  # log seconds cmd...
  local log=$1 secs=$2
  shift 2
  timeout --kill-after=10 "$secs" "$@" 2>&1 | tee "$log"
  return "${PIPESTATUS[0]}"
}

# ---- 1. the machine ----
section "1. machine"
uname -srm
[ -r /etc/os-release ] && (. /etc/os-release && echo "os: $PRETTY_NAME")
echo "cores: $(nproc), memory: $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
NGPU=0
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=index,name,driver_version,memory.total,compute_cap --format=csv 2>&1 | sed 's/^/  /'
  NGPU=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU ' || true)
else
  echo "nvidia-smi: not found"
fi
echo "CUDA_VISIBLE_DEVICES=${CUDA_VISIBLE_DEVICES-(unset)}"
NVCC="$(command -v nvcc || true)"
[ -z "$NVCC" ] && [ -x /usr/local/cuda/bin/nvcc ] && NVCC=/usr/local/cuda/bin/nvcc
if [ -n "$NVCC" ]; then
  echo "nvcc: $NVCC: $("$NVCC" --version | grep -i release)"
  CUDA_ROOT="$(cd "$(dirname "$NVCC")/.." && pwd)"
else
  echo "nvcc: not found"
  CUDA_ROOT=/usr/local/cuda
fi
echo "cmake: $(cmake --version 2>/dev/null | head -1 || echo 'not found')"
echo "cc: $(cc --version 2>/dev/null | head -1 || echo 'not found')"
echo "pkg-config: $(command -v pkg-config || echo 'not found (the prefix has pkgconf)')"
PY=""
for cand in "${CTSWEEP_PYTHON:-}" python3 /usr/bin/python3 python; do
  [ -n "$cand" ] || continue
  if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import torch" >/dev/null 2>&1; then PY="$(command -v "$cand")"; break; fi
done
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
if [ "$NGPU" = 0 ] && [ -n "$PY" ]; then
  NGPU=$("$PY" -c "import torch; print(torch.cuda.device_count())" 2>/dev/null || echo 0)
fi
if [ "$NGPU" -ge 1 ]; then
  verdict "GPU visible" PASS "$NGPU GPU(s)"
else
  verdict "GPU visible" FAIL "nvidia-smi lists no GPU"
fi

# cuDNN and NCCL: the toolkit's, the system's, or those of PyTorch's wheels.
SITE_NVIDIA=()
if [ -n "$PY" ]; then
  mapfile -t SITE_NVIDIA < <("$PY" -c "
import glob, os, site
roots = site.getsitepackages() + [site.getusersitepackages()]
for r in roots:
    for d in sorted(glob.glob(os.path.join(r, 'nvidia', '*', 'lib'))):
        print(d)" 2>/dev/null)
fi
find_lib() {  # stem -> path of lib<stem>.so or lib<stem>.so.N
  local stem=$1 d f
  for d in "$CUDA_ROOT/lib64" "$CUDA_ROOT/lib" /usr/lib/x86_64-linux-gnu /usr/lib/aarch64-linux-gnu /usr/lib64 \
           "${SITE_NVIDIA[@]}"; do
    for f in "$d/lib$stem.so" "$d"/lib"$stem".so.[0-9]*; do
      [ -e "$f" ] && { echo "$f"; return 0; }
    done
  done
  return 1
}
find_header() {  # name -> directory
  local name=$1 d
  for d in "$CUDA_ROOT/include" /usr/include /usr/include/x86_64-linux-gnu /usr/include/aarch64-linux-gnu \
           "${SITE_NVIDIA[@]/%\/lib/\/include}"; do
    [ -e "$d/$name" ] && { echo "$d"; return 0; }
  done
  return 1
}
CUDALIBS="$WORK/cudalibs"
mkdir -p "$CUDALIBS"
CUDA_CMAKE=()
CUDA_LD=""
for stem in cudnn nccl; do
  lib="$(find_lib $stem || true)"
  hdr="$(find_header $stem.h || true)"
  echo "$stem: library ${lib:-not found}, header ${hdr:-not found}"
  [ -n "$lib" ] || continue
  # Wheels ship only lib<name>.so.N: give the linker the unversioned name.
  ln -sf "$lib" "$CUDALIBS/lib$stem.so"
  upper=$(echo "$stem" | tr a-z A-Z)
  CUDA_CMAKE+=("-DCTSWEEP_${upper}_LIB=$CUDALIBS/lib$stem.so")
  [ -n "$hdr" ] && CUDA_CMAKE+=("-DCTSWEEP_${upper}_INC=$hdr")
  CUDA_LD="$CUDA_LD:$(dirname "$lib")"
done
for d in "${SITE_NVIDIA[@]}"; do CUDA_LD="$CUDA_LD:$d"; done

# ---- 2. the private prefix of Debian packages ----
section "2. Debian packages into $PREFIX"
ARCH_DIR="$(uname -m)-linux-gnu"
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
ldconfig -p > "$WORK/ldconfig.txt" 2>/dev/null || true
if [ ! -f "$DEBS/MANIFEST" ]; then
  verdict "Debian packages" "NOT RUN" "no $DEBS/MANIFEST: run tests/gpu/fetch-debs.sh where apt works"
elif [ "$deb_arch" != "$want_arch" ]; then
  verdict "Debian packages" "NOT RUN" "packages are for $deb_arch, this machine is $want_arch"
else
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  unpacked=0 skipped=""
  while read -r role pkg deb; do
    case "$role" in \#*|"") continue ;; esac
    if [ "$role" = runtime ] && command -v dpkg-deb >/dev/null 2>&1 && system_has_libs "$DEBS/$deb"; then
      skipped="$skipped $pkg"
      continue
    fi
    extract "$DEBS/$deb" "$PREFIX" && unpacked=$((unpacked + 1))
  done < "$DEBS/MANIFEST"
  echo "unpacked $unpacked packages; the machine has its own:${skipped:- none}"
  LIBDIR="$PREFIX/usr/lib/$ARCH_DIR"
  # Development symlinks whose target was left to the system (zlib1g-dev's
  # libz.so) point at the system's copy instead.
  for l in "$LIBDIR"/lib*.so; do
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
  if [ -x "$PREFIX/usr/bin/opal_wrapper" ] && [ -e "$LIBDIR/libmpi.so.40" ] && [ -e "$LIBDIR/libdnnl.so" ]; then
    verdict "Debian packages" PASS "$unpacked unpacked, $(du -sh "$PREFIX" | cut -f1)"
  else
    verdict "Debian packages" FAIL "Open MPI or oneDNN missing from the prefix"
  fi
fi
LIBDIR="$PREFIX/usr/lib/$ARCH_DIR"
# Open MPI and PMIx find their plugins and help files relative to these.
export OPAL_PREFIX="$PREFIX/usr"
export PMIX_INSTALL_PREFIX="$LIBDIR/pmix2"
export PATH="$PBIN:$PATH"
export LD_LIBRARY_PATH="$LIBDIR:$LIBDIR/hdf5/serial:$LIBDIR/openmpi/lib:$LIBDIR/pmix2/lib${CUDA_LD}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
export PKG_CONFIG_LIBDIR="$LIBDIR/pkgconfig:$PREFIX/usr/share/pkgconfig:$PREFIX/usr/lib/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$PREFIX"
export PKG_CONFIG_ALLOW_SYSTEM_CFLAGS=1 PKG_CONFIG_ALLOW_SYSTEM_LIBS=1
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

# ---- 3. build ----
section "3. configure and build ($BUILD)"
built=0
if ! command -v cmake >/dev/null 2>&1; then
  verdict "build with CTSWEEP_CUDA=ON" "NOT RUN" "cmake not found"
else
  if run_logged "$LOGS/configure.log" 300 cmake -S "$ROOT" -B "$BUILD" -DCMAKE_BUILD_TYPE=Release -DCTSWEEP_CUDA=ON \
       -DCMAKE_PREFIX_PATH="$PREFIX/usr" -DMPI_C_COMPILER="$PBIN/mpicc" -DPKG_CONFIG_EXECUTABLE="$PKGCONF" \
       -DHDF5_C_COMPILER_EXECUTABLE="$WORK/no-h5cc" -DCUDAToolkit_ROOT="$CUDA_ROOT" "${CUDA_CMAKE[@]}" \
     && run_logged "$LOGS/build.log" 900 cmake --build "$BUILD" -j "$JOBS"; then
    built=1
    warnings=$(grep -c 'warning:' "$LOGS/build.log" || true)
    verdict "build with CTSWEEP_CUDA=ON" PASS "$warnings compiler warnings; logs in $LOGS"
  else
    verdict "build with CTSWEEP_CUDA=ON" FAIL "see $LOGS/configure.log and $LOGS/build.log"
  fi
  grep -E 'MPI_C_LIBRARIES|HDF5_C_LIBRARY_hdf5|DNNL_LIBRARY|CTSWEEP_CUDNN_LIB|CTSWEEP_NCCL_LIB' \
    "$BUILD/CMakeCache.txt" 2>/dev/null | sed 's/^/  /'
fi
CTSWEEP="$BUILD/ctsweep"
if [ $built = 1 ]; then
  missing=$(ldd "$CTSWEEP" 2>&1 | grep 'not found' || true)
  [ -n "$missing" ] && echo "unresolved libraries of ctsweep:" && echo "$missing"
fi

# The sweeps' configuration: 48 phantoms, 2 models x 2 schedules = 4 trials.
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
  epochs: [2]
  batch_size: [8]
  clr:
    - {mode: triangular, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size_epochs: 1}
    - {mode: exp_range, base_lr: 1.0e-4, max_lr: 1.0e-3, step_size: 3, gamma: 0.99}
  seed: [0]
ranks_per_trial: $3
EOF
}

# ---- 4. MPI from the prefix ----
section "4. mpirun from the prefix"
if [ $built = 1 ]; then
  write_config "$WORK/sweep_dry.yaml" cpu 1
  if run_logged "$LOGS/mpi.log" 120 mpirun -n 2 "$CTSWEEP" run "$WORK/sweep_dry.yaml" -o "$WORK/out-dry" --dry-run; then
    verdict "mpirun -n 2 (prefix Open MPI)" PASS "$(grep -c . "$LOGS/mpi.log") lines of --dry-run output"
  else
    verdict "mpirun -n 2 (prefix Open MPI)" FAIL "see $LOGS/mpi.log"
  fi
else
  verdict "mpirun -n 2 (prefix Open MPI)" "NOT RUN" "no build"
fi

# ---- 5. ctest -L gpu ----
section "5. ctest -L gpu"
if [ $built = 1 ]; then
  # -V keeps every test's own lines (its checks, a SKIP's reason) in the log.
  (cd "$BUILD" && run_logged "$LOGS/ctest.log" 900 ctest -L gpu -V)
  while read -r num name state; do
    reason="$(grep -m1 "^$num: SKIP: " "$LOGS/ctest.log" | sed "s/^$num: //")"
    case "$state" in
      Passed) verdict "ctest $name" PASS ;;
      Skipped)
        if [ "$name" = gpu_cuda_nccl ] && [ "$NGPU" = 1 ]; then
          verdict "ctest $name" PASS "1 GPU: shared-GPU detection checked; allreduce needs 2 GPUs"
        else
          verdict "ctest $name" "NOT RUN" "${reason:-skipped}"
        fi ;;
      *) verdict "ctest $name" FAIL "$state; see $LOGS/ctest.log" ;;
    esac
  done < <(sed -n 's/.*Test *#\([0-9]*\): \([^ ]*\) \.*[* ]*\([A-Za-z]*\).*/\1 \2 \3/p' "$LOGS/ctest.log")
  grep -q 'Test *#' "$LOGS/ctest.log" || verdict "ctest -L gpu" FAIL "no test ran; see $LOGS/ctest.log"
else
  verdict "ctest -L gpu" "NOT RUN" "no build"
fi

# ---- 6. and 7. sweeps ----
run_sweep() {  # name ranks_per_trial
  local name=$1 rpt=$2 out="$WORK/out-$1"
  rm -rf "$out"
  write_config "$WORK/$name.yaml" cuda "$rpt"
  if run_logged "$LOGS/$name.log" 600 mpirun -n 3 "$CTSWEEP" run "$WORK/$name.yaml" -o "$out" \
     && "$CTSWEEP" validate "$out" > "$LOGS/$name-validate.log" 2>&1; then
    "$CTSWEEP" status "$out" 2>&1 | tail -8
    return 0
  fi
  "$CTSWEEP" status "$out" 2>&1 | tail -8
  return 1
}
section "6. 4-trial phantom sweep, train.backend cuda, mpirun -n 3"
if [ $built = 1 ] && [ "$NGPU" -ge 1 ]; then
  if run_sweep sweep-cuda 1; then
    verdict "sweep backend cuda (mpirun -n 3)" PASS "4 trials done, validate passed"
  else
    verdict "sweep backend cuda (mpirun -n 3)" FAIL "see $LOGS/sweep-cuda.log"
  fi
else
  verdict "sweep backend cuda (mpirun -n 3)" "NOT RUN" "needs the build and a GPU"
fi

section "7. ranks_per_trial: 2 (NCCL allreduce)"
if ! grep -qs 'cuda_nccl_create' "$ROOT"/src/sweep/*.c "$ROOT"/src/train/*.c; then
  verdict "sweep ranks_per_trial 2 (NCCL)" "NOT RUN" "the sweep does not call cuda_nccl_create yet"
elif [ $built = 1 ] && [ "$NGPU" -ge 1 ]; then
  note="NCCL across $NGPU GPUs"
  [ "$NGPU" -lt 2 ] && note="1 GPU: the group shares it, so it reduces with MPI (NCCL needs a GPU per rank)"
  if run_sweep sweep-rpt2 2; then
    verdict "sweep ranks_per_trial 2 (NCCL)" PASS "$note"
  else
    verdict "sweep ranks_per_trial 2 (NCCL)" FAIL "$note; see $LOGS/sweep-rpt2.log"
  fi
else
  verdict "sweep ranks_per_trial 2 (NCCL)" "NOT RUN" "needs the build and a GPU"
fi

# ---- 8. benchmark ----
section "8. bench/backbone --backend cuda --batch 64 --size 224 beside PyTorch"
if [ $built = 1 ] && [ "$NGPU" -ge 1 ] && [ -n "$PY" ]; then
  if run_logged "$LOGS/bench.log" 420 "$ROOT/bench/backbone" --backend cuda --batch 64 --size 224 --iters 3 \
       --rounds 1 \
     && ! grep -q 'not run' "$LOGS/bench.log"; then
    verdict "bench/backbone cuda vs PyTorch" PASS "ours/torch: $(awk '$6 ~ /^[0-9.]+x$/ {printf "%s %s ", $1, $6}' "$LOGS/bench.log")"
  else
    verdict "bench/backbone cuda vs PyTorch" FAIL "see $LOGS/bench.log"
  fi
else
  verdict "bench/backbone cuda vs PyTorch" "NOT RUN" "needs the build, a GPU and python with torch"
fi

# ---- summary ----
section "summary"
for v in "${VERDICTS[@]}"; do echo "$v"; done
echo "$(( ${#VERDICTS[@]} - FAILED )) of ${#VERDICTS[@]} checks passed in $(elapsed); logs in $LOGS"
exit $(( FAILED > 125 ? 125 : FAILED ))
