#!/usr/bin/env bash
# Fails if clang-format (Google style, .clang-format) would change a file.
set -euo pipefail
cd "$(dirname "$0")/.."
git ls-files '*.h' '*.cc' | xargs clang-format --dry-run -Werror
echo "format: OK"
