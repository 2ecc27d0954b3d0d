# Shared by scripts/demo and scripts/test: paths, the Python that has
# Debian's packages, and the build step.
CTSWEEP_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CTSWEEP_BUILD="${CTSWEEP_BUILD:-$CTSWEEP_ROOT/build}"

# The python3 on PATH may be a separate interpreter without Debian's
# packages (h5py, numpy, torch); prefer the one that has them.
ctsweep_python() {
  local cand
  for cand in "${CTSWEEP_PYTHON:-}" /usr/bin/python3 python3; do
    [ -n "$cand" ] || continue
    if command -v "$cand" >/dev/null 2>&1 && "$cand" -c "import numpy, h5py" >/dev/null 2>&1; then
      command -v "$cand"
      return 0
    fi
  done
  echo "ctsweep: no python3 with numpy and h5py found (run scripts/bootstrap)" >&2
  return 1
}

# Configures (once) and builds ctsweep in $CTSWEEP_BUILD.
ctsweep_build() {
  local jobs
  jobs="$(nproc 2>/dev/null || echo 2)"
  if [ ! -f "$CTSWEEP_BUILD/CMakeCache.txt" ]; then
    local launcher=()
    command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_C_COMPILER_LAUNCHER=ccache)
    cmake -S "$CTSWEEP_ROOT" -B "$CTSWEEP_BUILD" -DCMAKE_BUILD_TYPE=Release "${launcher[@]}" "$@" >/dev/null
  fi
  cmake --build "$CTSWEEP_BUILD" -j "$jobs" >/dev/null
}

# mpirun with what this machine needs: root permission flags when run as
# root, and --oversubscribe when there are more ranks than cores.
ctsweep_mpirun() {
  local n=$1
  shift
  local extra=()
  if [ "$(id -u)" -eq 0 ]; then
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  fi
  if [ "$n" -gt "$(nproc 2>/dev/null || echo 1)" ]; then
    extra+=(--oversubscribe)
  fi
  mpirun -n "$n" "${extra[@]}" "$@"
}
