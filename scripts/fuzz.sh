#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 60) on a seed corpus generated now.
#   scripts/fuzz.sh [SECONDS] [BUILD_DIR]
# Builds BUILD_DIR (default build-fuzz) with -DRESNET_FUZZ=ON. With CXX=clang++ the targets use
# libFuzzer; otherwise the standalone replay-and-mutate driver (fuzz/standalone_driver.cpp).
# A target that crashes leaves crash-* files in BUILD_DIR/fuzz-findings/<target>/ and makes the
# script fail.
# Targets: one per file loader (keras_h5, keras3, h5_dataset, idx, cifar, image, onnx, torch). Another target:
# add fuzz/fuzz_<name>.cpp (LLVMFuzzerTestOneInput) and its seeds to fuzz/make_seed_corpus.cpp
# (folder <name>). The normal build has the targets too, and CTest runs each briefly.
set -euo pipefail
seconds="${1:-60}"
build="${2:-build-fuzz}"
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
cmake -S . -B "$build" -G Ninja -DRESNET_FUZZ=ON -DRESNET_BUILD_BENCH=OFF >/dev/null
targets=$(cd fuzz && ls fuzz_*.cpp | sed 's/\.cpp$//')
cmake --build "$build" --target fuzz_make_seed_corpus $targets

corpus="$build/fuzz-corpus"
rm -rf "$corpus"
"$build/fuzz_make_seed_corpus" "$corpus"  # one folder per target: keras_h5, h5_dataset, idx, torch, ...
keras_dir="${RESNET_KERAS_DIR:-$root/../shared/datasets/keras}"
if [ -d "$keras_dir" ]; then cp "$keras_dir"/*.h5 "$corpus/keras_h5/" 2>/dev/null || true; fi

# The seed folder of each target: fuzz_<x> reads $corpus/<x>.
seeds_for() {
  case "$1" in
    fuzz_onnx) echo "$root/fuzz/corpus/onnx" ;;  # tests/io/onnx/make_fuzz_seed.py
    *) echo "$corpus/${1#fuzz_}" ;;
  esac
}
# A file that hangs libhdf5 costs the .h5 pre-flight's time limit per loader call: keep it short.
export RESNET_H5_PREFLIGHT_TIMEOUT="${RESNET_H5_PREFLIGHT_TIMEOUT:-3}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

status=0
for t in $targets; do
  out="$root/$build/fuzz-findings/$t"
  mkdir -p "$out"
  work="$build/fuzz-work/$t"
  mkdir -p "$work"
  cp -r "$(seeds_for "$t")/." "$work/"
  reg="$root/fuzz/regressions/${t#fuzz_}"  # past findings
  if [ -d "$reg" ]; then cp -r "$reg/." "$work/"; fi
  echo "== $t for ${seconds}s"
  if ! (cd "$out" && "$root/$build/$t" -max_total_time="$seconds" -timeout=20 "$root/$work"); then
    echo "$t: FAILED (see $out)" >&2
    status=1
  fi
done
exit $status
