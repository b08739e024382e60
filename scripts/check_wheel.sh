#!/usr/bin/env bash
# The wheel tier of CI: build the CPU wheel and the sdist strictly (scripts/wheel.sh), check the
# wheel's contents, install it into a fresh venv with only torch, NumPy and ml_dtypes (no build
# tools) and run a smoke check there, and build + install the sdist the same way
# (tests/test_wheel.py, slow tests included). The same wheel then runs the behavioural suite
# beside torch 2.14.1 (scripts/check_cuda_torch.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=$VENV/bin/python
bash scripts/wheel.sh --sdist
TORCHNP_WHEEL=$(ls "$PWD"/dist/torchnp-*.whl) "$PY" -m pytest -q -p no:cacheprovider \
  tests/test_wheel.py
