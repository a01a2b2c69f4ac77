#!/usr/bin/env bash
# Data-parallel scaling of `resnet train` (docs/distributed.md): training throughput (img/s) of
# the CIFAR ResNet-20 on Fashion-MNIST (28x28x1) with 1 and 2 MPI ranks, one compute thread each,
# same global batch; every configuration runs RUNS times and the best is kept (shared machines
# are noisy). The throughput comes from the ms/step of the last epoch (the first pays for oneDNN
# primitive creation).
#
#   bench/mpi_scaling.sh [BUILD_DIR] [RANKS...]      (default: build, ranks 1 2)
# Environment: BATCH (64), LIMIT (2048 training images), EPOCHS (2), RUNS (2), MODEL (resnet20),
# SYNC_BN=1 to add --sync-bn, MPIRUN_ARGS (extra mpirun flags, e.g. "--bind-to core").
set -euo pipefail
build=${1:-build}
shift || true
ranks=("$@")
[ ${#ranks[@]} -gt 0 ] || ranks=(1 2)
BATCH=${BATCH:-64}
LIMIT=${LIMIT:-2048}
EPOCHS=${EPOCHS:-2}
RUNS=${RUNS:-2}
MODEL=${MODEL:-resnet20}
cli="$build/resnet"
cores=$(nproc --all)
[ -x "$cli" ] || { echo "no $cli: build the resnet_cli target first" >&2; exit 1; }
export OMP_NUM_THREADS=1
export OMPI_MCA_btl=${OMPI_MCA_btl:-self,vader}
export OMPI_MCA_btl_vader_single_copy_mechanism=${OMPI_MCA_btl_vader_single_copy_mechanism:-none}
extra=()
[ "${SYNC_BN:-0}" = 1 ] && extra+=(--sync-bn)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

echo "model $MODEL, Fashion-MNIST ($LIMIT images), global batch $BATCH, 1 thread per rank," \
     "best of $RUNS runs; $cores cores; $(date -u +%FT%TZ)"
base=""
for np in "${ranks[@]}"; do
  best=""
  for ((run = 1; run <= RUNS; ++run)); do
    mpirun --oversubscribe --allow-run-as-root --bind-to none ${MPIRUN_ARGS:-} -np "$np" \
      "$cli" train --dataset fashion-mnist --model "$MODEL" --limit "$LIMIT" \
      --batch-size "$BATCH" --epochs "$EPOCHS" --threads 1 --workers 1 --verbose 2 --seed 1 \
      "${extra[@]}" > "$tmp/out.txt" 2>&1 || { cat "$tmp/out.txt"; exit 1; }
    ms=$(grep -Eo '[0-9]+ms/step' "$tmp/out.txt" | tail -1 | tr -dc '0-9')
    ips=$(awk -v b="$BATCH" -v ms="$ms" 'BEGIN { printf "%.1f", b * 1000 / ms }')
    echo "  ranks $np, run $run: ${ms} ms/step, $ips img/s"
    if [ -z "$best" ] || awk -v a="$ips" -v b="$best" 'BEGIN { exit !(a > b) }'; then best=$ips; fi
  done
  [ -n "$base" ] || base=$best
  eff=$(awk -v x="$best" -v b="$base" -v n="$np" -v r0="${ranks[0]}" \
        'BEGIN { printf "%.0f", 100 * x / (b * n / r0) }')
  echo "ranks $np: best $best img/s, scaling efficiency ${eff}% (vs ${ranks[0]} rank(s))"
done
