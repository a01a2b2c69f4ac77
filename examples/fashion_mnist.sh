#!/usr/bin/env bash
# The main job: build resnet.cpp, train a CIFAR-style ResNet-20 on Fashion-MNIST (Debian's
# dataset-fashion-mnist package) with augmentation, print the test accuracy, save the model and
# the training curves. About 10 minutes on 2 cores.
#   bash examples/fashion_mnist.sh [extra `resnet train` flags, e.g. --epochs 3]
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -G Ninja >/dev/null
cmake --build build --target resnet_cli
mkdir -p out
./build/resnet train --dataset fashion-mnist --model resnet20 \
  --epochs 12 --batch-size 128 --optimizer sgd --lr 0.1 --momentum 0.9 --weight-decay 0.0005 \
  --schedule cosine --warmup-steps 200 --augment flip,crop=2 --seed 1 \
  --out out/fashion_mnist_resnet20.h5 --history out/fashion_mnist_history "$@"
