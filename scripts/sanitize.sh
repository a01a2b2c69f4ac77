#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer (Debug build in build-asan/,
# warnings as errors): the library, the CLI, every test and the fuzz targets' seed corpora. Any
# sanitizer finding, leak included, fails its test. Run scripts/setup.sh first.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build-asan -G Ninja -DCMAKE_BUILD_TYPE=Debug -DRESNET_SANITIZE=ON -DRESNET_WERROR=ON \
  -DRESNET_BUILD_BENCH=OFF
cmake --build build-asan
# allocator_may_return_null: the loaders' tests provoke huge allocations and expect std::bad_alloc
# to become an IoError, as it does without the sanitizer.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
# Leaks that libraries outside the project keep on purpose (font caches, MPI), named one by one.
export LSAN_OPTIONS="${LSAN_OPTIONS:-suppressions=$PWD/tests/sanitizer/lsan.supp:print_suppressions=0}"
ctest --test-dir build-asan --output-on-failure "$@"
