#!/usr/bin/env bash
# Installs every Debian package resnet.cpp needs. Idempotent; run as root (or with sudo available)
# on Debian 12. Debian's oneDNN CMake package also asks for the OpenCL headers and loader (it was
# built with a GPU runtime), hence the two OpenCL packages. Usage: scripts/setup.sh [--with-reference]   (--with-reference adds python3-torch
# and h5py, needed only to regenerate the committed test fixtures).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git
  libdnnl-dev ocl-icd-opencl-dev opencl-headers libhdf5-dev nlohmann-json3-dev libcli11-dev libfmt-dev libstb-dev zlib1g-dev
  graphviz libgraphviz-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist
)
if [[ "${1:-}" == "--with-reference" ]]; then
  packages+=(python3-torch python3-h5py python3-numpy libopenblas0-openmp)
fi

sudo_cmd=()
if [[ $(id -u) -ne 0 ]]; then sudo_cmd=(sudo); fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
else
  echo "setup: all packages present"
fi
