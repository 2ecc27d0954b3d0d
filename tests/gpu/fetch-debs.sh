#!/usr/bin/env bash
# Downloads the Debian packages that tests/gpu/check.sh unpacks on a GPU
# machine which has the CUDA toolkit, cuDNN, NCCL, CMake and PyTorch but not
# ctsweep's other dependencies (Open MPI, HDF5, oneDNN, libfyaml, libspng,
# libdeflate, libjpeg-turbo) and no network. Run it beforehand on a Debian
# bookworm machine with apt and network (as root or not: `apt-get download`
# needs no privileges); the folder then travels with the working tree.
#
# Two kinds of package are fetched, recorded in DIR/MANIFEST:
#   primary  ctsweep's dependencies and the -dev packages that build against
#            them: always unpacked by check.sh;
#   runtime  the rest of their runtime closure, minus what every Debian or
#            Ubuntu base image has (libc, libstdc++, zlib, ...): check.sh
#            unpacks one only when the machine lacks one of its libraries.
#
# usage: tests/gpu/fetch-debs.sh [DIR]     (default: build-gpu-debs at the repository root)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
dir="${1:-$root/build-gpu-debs}"
arch="$(dpkg --print-architecture)"

primary=(
  # Open MPI 4.1 (headers, wrappers, mpirun) and the libraries it is built on
  libopenmpi-dev libopenmpi3 openmpi-bin openmpi-common libpmix2 libhwloc15
  libevent-core-2.1-7 libevent-pthreads-2.1-7
  # HDF5 1.10, serial
  libhdf5-dev libhdf5-103-1 libhdf5-hl-100 libsz2 libaec0
  # oneDNN 2.6 (Debian's links the OpenCL loader)
  libdnnl-dev libdnnl2 ocl-icd-libopencl1
  # YAML, PNG (libspng, libdeflate), JPEG, zlib
  libfyaml-dev libfyaml0 libspng-dev libspng0 libdeflate-dev libdeflate0 libturbojpeg0-dev libturbojpeg0
  zlib1g-dev zlib1g
  # pkg-config, which CMake's FindPkgConfig needs
  pkgconf pkgconf-bin libpkgconf3
)
# The runtime closure starts from these.
roots=(libopenmpi3 openmpi-bin libpmix2 libhdf5-103-1 libhdf5-hl-100 libdnnl2 libfyaml0 libspng0 libdeflate0
       libturbojpeg0 libpkgconf3)
# Never fetched: every base image has them, or nothing ctsweep runs uses them
# (X11 and XML for hwloc's optional plugins, ssh for remote launches, the
# toolchain's own runtime libraries, which must match the compiler there).
skip_re='^(libc6|libgcc-s1|libstdc\+\+6|gcc-[0-9]+-base|libgomp1|libatomic1|zlib1g|liblzma5|libbz2-1\.0|libzstd1|libcrypt1|libselinux1|libpcre2-8-0|libaudit1|libaudit-common|libcap-ng0|libpam0g|libpam-modules|libpam-modules-bin|passwd|adduser|debconf|cdebconf|dpkg|tar|install-info|libtinfo6|libreadline8|readline-common|libdb5\.3|libsemanage[0-9]*|libsemanage-common|libsepol2|libmd0|libbsd0|libuuid1|libdebian-installer4|libnewt0\.52|libslang2|libtextwrap1|openssh-client|libedit2|libfido2-1|libcbor0\.8|libhwloc-plugins|libxnvctrl0|libxml2|libicu[0-9]+|libx11-6|libx11-data|libxcb1|libxau6|libxdmcp6|libxext6|libpciaccess0|ibverbs-providers|perl-base|debianutils|libsystemd0|libudev1)$'

mapfile -t closure < <(apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks \
                         --no-replaces --no-enhances "${roots[@]}" 2>/dev/null | grep -v '^ ' | grep -v '^<' | sort -u)
runtime=()
for p in "${closure[@]}"; do
  [[ "$p" =~ $skip_re ]] && continue
  case " ${primary[*]} " in *" $p "*) continue ;; esac
  runtime+=("$p")
done

mkdir -p "$dir"
cd "$dir"
rm -f ./*.deb MANIFEST
echo "fetch-debs: ${#primary[@]} primary and ${#runtime[@]} runtime packages for $arch into $dir"
# apt-get download as root warns that its sandbox user cannot write here; harmless.
apt-get download "${primary[@]}" "${runtime[@]}" 2>&1 | grep -v -e '^Get:' -e 'W: Download is performed unsandboxed' || true
{
  echo "# arch $arch; fetched $(date -u +%FT%TZ) from $(. /etc/os-release && echo "$PRETTY_NAME")"
  echo "# role package deb"
  for p in "${primary[@]}"; do echo "primary $p $(ls "${p}"_*.deb 2>/dev/null | head -1)"; done
  for p in "${runtime[@]}"; do echo "runtime $p $(ls "${p}"_*.deb 2>/dev/null | head -1)"; done
} > MANIFEST
missing=$(awk '!/^#/ && NF < 3 {print $2}' MANIFEST)
if [ -n "$missing" ]; then
  echo "fetch-debs: not downloaded: $missing" >&2
  exit 1
fi
echo "fetch-debs: $(ls ./*.deb | wc -l) files, $(du -sh . | cut -f1) in $dir"
