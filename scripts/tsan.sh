#!/usr/bin/env bash
# The concurrency tests (tests/concurrency) under ThreadSanitizer: a build in build-tsan/ of the
# library and that one test executable, run with one intra-op thread so that GCC's OpenMP runtime
# (not instrumented, its barriers invisible to the sanitizer) starts no threads of its own. Every
# thread the tests see is then one of theirs, calling the model at once. Any finding fails the run.
# Run scripts/setup.sh first. Extra arguments go to the test executable (e.g. --gtest_filter=...).
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-tsan -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRESNET_TSAN=ON \
  -DRESNET_WERROR=ON -DRESNET_BUILD_BENCH=OFF
cmake --build build-tsan --target test_concurrency
export OMP_NUM_THREADS=1
# Fewer calls per thread than the plain run: the sanitizer makes the project's code ~10x slower.
export RESNET_CONCURRENCY_CALLS="${RESNET_CONCURRENCY_CALLS:-3}"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/tests/sanitizer/tsan.supp}"
./build-tsan/tests/test_concurrency "$@"
