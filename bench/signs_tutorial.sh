#!/usr/bin/env bash
# The tutorial's experiment: ResNet-50 (deeplearning.ai) on SIGNS, Adam lr 0.001, batch 32.
# Prints the test accuracy after 2, 10 and 25 epochs and the seconds per epoch.
#   bash bench/signs_tutorial.sh [SIGNS_DIR] [EPOCHS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
signs=${1:-${RESNET_SIGNS_DIR:-../shared/datasets/signs}}
epochs=${2:-25}
seed=${3:-0}
cmake -S . -B build -G Ninja >/dev/null
cmake --build build --target resnet_cli
mkdir -p out
log=out/signs_tutorial.log
./build/resnet train --model resnet50-tutorial --data "$signs/train_signs.h5" \
  --val "$signs/test_signs.h5" --epochs "$epochs" --batch-size 32 --optimizer adam --lr 0.001 \
  --seed "$seed" --out out/signs_resnet50.rnw --history out/signs_history | tee "$log"
# The validation set is the test set: val_accuracy after epoch e is the test accuracy then.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { acc[$1 + 1] = $col["val_accuracy"] }
  END { for (e = 1; e <= NR - 1; e++) if (e == 2 || e == 10 || e == 25 || e == NR - 1)
          printf "test accuracy after %d epochs: %.4f\n", e, acc[e] }' out/signs_history.csv
grep -o '[0-9]*s [0-9]*ms/step' "$log" | awk '{ s += $1; n++ } END { if (n) printf "seconds per epoch: %.1f (mean of %d)\n", s / n, n }'
