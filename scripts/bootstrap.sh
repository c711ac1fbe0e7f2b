#!/usr/bin/env bash
# Create ./.venv (Python >= 3.11) and install Mochi with the torch and dev extras.
# Idempotent: a second run only checks. Used by scripts/demo.sh and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${PYTHON:-}
if [ -z "$py" ]; then
  for c in python3.11 python3.12 python3.13 python3; do
    if command -v "$c" >/dev/null && "$c" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then py=$c; break; fi
  done
fi
[ -n "$py" ] || { echo "bootstrap: need Python >= 3.11 (set PYTHON=...)" >&2; exit 1; }
if [ ! -x .venv/bin/python ]; then
  "$py" -m venv .venv
fi
stamp=.venv/.mochi-installed
want=$(cat pyproject.toml scripts/bootstrap.sh | sha256sum | cut -c1-16)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  # torch first, pinned: its CPU wheel is cached on CI machines; an unpinned torch pulls a
  # multi-GB CUDA build. Users with a GPU can install their own torch before this script.
  .venv/bin/python -c 'import torch' 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
  .venv/bin/python -m pip install -q -e ".[torch,dev]"
  echo "$want" > "$stamp"
fi
# The llama.cpp CPU engine: built once into ~/.cache/mochi/wheels (minutes on a fresh machine), then
# reused; never fatal (a failed build prints one line and torch stays the backend).
if [ "${MOCHI_SKIP_LLAMA:-0}" != 1 ]; then
  bash scripts/build_llama_cpp.sh
fi
