#!/usr/bin/env bash
# Installs every Debian package resnet.cpp needs. Idempotent; run as root (or with sudo available)
# on Debian 12. Debian's oneDNN CMake package also asks for the OpenCL headers and loader (it was
# built with a GPU runtime), hence the two OpenCL packages. ONNX/protobuf build the ONNX
# exporter and importer; python3-onnx (onnx.checker), python3-torch/torchvision (a PyTorch-exported
# ResNet-18) and Node's onnxruntime-node (installed under .deps/ from the npm registry) check them
# in the tests; OpenMPI builds and tests data-parallel training.
# Usage: scripts/setup.sh [--no-node]   (--no-node skips the npm package).
set -euo pipefail

packages=(
  build-essential cmake ninja-build ccache pkg-config git clang-format
  libdnnl-dev ocl-icd-opencl-dev opencl-headers libhdf5-dev nlohmann-json3-dev libcli11-dev libfmt-dev libstb-dev zlib1g-dev
  graphviz libgraphviz-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  dataset-fashion-mnist
  libonnx-dev libprotobuf-dev protobuf-compiler python3-onnx
  libopenmpi-dev openmpi-bin
  python3-torch python3-torchvision python3-h5py python3-numpy libopenblas0-openmp
)
# Node's own packages (e.g. nodesource's nodejs) bundle npm and conflict with Debian's npm package.
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

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

# onnxruntime-node, for the ONNX export checks and the ORT column of bench/compare.sh (its install
# step would download GPU files; the CPU build ships inside the package, hence
# ONNXRUNTIME_NODE_INSTALL=skip). Pinned to 1.30.x so that the benchmark ratios do not move with a
# release; another version already under .deps/ort is replaced.
ort_version="1.30"
if [[ "${1:-}" != "--no-node" ]]; then
  root="$(cd "$(dirname "$0")/.." && pwd)"
  pkg="$root/.deps/ort/node_modules/onnxruntime-node/package.json"
  have=""
  if [[ -f "$pkg" ]]; then
    have="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$pkg")"
  fi
  if [[ "$have" != "$ort_version".* ]]; then
    echo "setup: installing onnxruntime-node@$ort_version.x into .deps/ort${have:+ (found $have)}"
    mkdir -p "$root/.deps/ort"
    if ! ONNXRUNTIME_NODE_INSTALL=skip npm install --prefix "$root/.deps/ort" --no-audit --no-fund \
        --loglevel=error "onnxruntime-node@~$ort_version.0"; then
      echo "setup: warning: npm could not install onnxruntime-node; the ONNX Runtime checks will skip"
    fi
  fi
fi
