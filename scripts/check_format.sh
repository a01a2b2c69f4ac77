#!/usr/bin/env bash
# Fails when a tracked C++ file differs from what clang-format (.clang-format) makes of it.
# Fix with: git ls-files '*.cpp' '*.h' '*.inc' | xargs clang-format -i
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files -z '*.cpp' '*.h' '*.inc' | xargs -0 clang-format --dry-run --Werror
echo "check_format: $(git ls-files '*.cpp' '*.h' '*.inc' | wc -l) files formatted"
