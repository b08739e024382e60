#!/usr/bin/env bash
# Create (or reuse) .venv with torch, the build tools and the test and benchmark tools (all named
# in pyproject.toml; scripts/requirements.py reads them), then build and install torchnp into
# it. Idempotent. TORCH_SPEC picks the torch (default: torch==2.13.0, the CPU build that
# installs from local disk on the development machine).
set -euo pipefail
cd "$(dirname "$0")/.."
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}

if [ ! -x "$VENV/bin/python" ]; then
  "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip
# torch first, so that the `torch>=` of the run-time requirements is already satisfied.
"$PY" -m pip install -q "$TORCH_SPEC"
# Every requirement but one comes from the machine's local package mirror; expecttest (which
# PyTorch's own test helpers import, for tests/peer) comes from PyPI, so a copy of its wheel is
# kept outside the clone and offered first: a run without the network still finds it.
WHEELS=${TORCHNP_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/torchnp-ci/wheels}
mkdir -p "$WHEELS"
# shellcheck disable=SC2046  # one requirement per line
"$PY" -m pip install -q --find-links "$WHEELS" $("$PY" scripts/requirements.py build run test bench dev)
"$PY" -m pip download -q --no-deps -d "$WHEELS" --find-links "$WHEELS" expecttest >/dev/null 2>&1 || true
# Without isolation, so that the extension is built against the torch installed above (an
# isolated build would fetch whatever torch the index serves and build against that).
"$PY" -m pip install -q --no-build-isolation --no-deps ${TORCHNP_PIP_ARGS:-} .
