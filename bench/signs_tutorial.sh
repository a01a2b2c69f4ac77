#!/usr/bin/env bash
# The tutorial's experiment: ResNet-50 (deeplearning.ai) on SIGNS, Adam lr 0.001, batch 32.
# Prints the test accuracy after 2, 10 and 25 epochs and the seconds per epoch.
#   bash bench/signs_tutorial.sh [SIGNS_DIR] [EPOCHS] [SEED] [EXTRA TRAIN FLAGS...]
# The BatchNormalization statistics are recomputed after every epoch (--update-bn, precise BN; see
# docs/design-notes.md, "SIGNS and BatchNormalization"); SIGNS_PLAIN=1 leaves them as Keras does.
set -euo pipefail
cd "$(dirname "$0")/.."
signs=${1:-${RESNET_SIGNS_DIR:-../shared/datasets/signs}}
epochs=${2:-25}
seed=${3:-0}
shift $(( $# < 3 ? $# : 3 ))
if [[ "${SIGNS_PLAIN:-0}" != 1 ]]; then set -- --update-bn "$@"; fi
# RESNET_BIN: an already built `resnet` (skips the build); SIGNS_OUT: output folder (out/).
bin=${RESNET_BIN:-}
if [[ -z "$bin" ]]; then
  cmake -S . -B build -G Ninja >/dev/null
  cmake --build build --target resnet_cli
  bin=./build/resnet
fi
o=${SIGNS_OUT:-out}
mkdir -p "$o"
log=$o/signs_tutorial.log
"$bin" train --model resnet50-tutorial --data "$signs/train_signs.h5" \
  --val "$signs/test_signs.h5" --epochs "$epochs" --batch-size 32 --optimizer adam --lr 0.001 \
  --seed "$seed" "$@" --out "$o/signs_resnet50.h5" --history "$o/signs_history" | tee "$log"
# The validation set is the test set: val_accuracy after epoch e is the test accuracy then.
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
  { acc[$1 + 1] = $col["val_accuracy"] }
  END { for (e = 1; e <= NR - 1; e++) if (e == 2 || e == 10 || e == 25 || e == NR - 1)
          printf "test accuracy after %d epochs: %.4f\n", e, acc[e] }' "$o/signs_history.csv"
grep -o '[0-9]*s [0-9]*ms/step' "$log" | awk '{ s += $1; n++ } END { if (n) printf "seconds per epoch: %.1f (mean of %d)\n", s / n, n }'
