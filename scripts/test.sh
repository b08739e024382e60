#!/usr/bin/env bash
# The fast tier, `make test`: every run of CI takes it.
#  1. the torch-free C++ core tests: release, ASan+UBSan, the portable-only build, and the pool
#     and slice tests under ThreadSanitizer;
#  2. the native engine must have loaded (a silent fallback to Python fails here);
#  3. pytest: every behavioural test on both engines (parametrised), the forced-Python and
#     missing-binary processes included (tests/test_loader.py);
#  4. the engine-level and differential tests again on the portable kernels (TORCHNP_CPU=baseline),
#     so every compiled CPU variant is checked against the oracle;
#  5. PyTorch's own NumPy interop tests with torchnp.patch() active, on both engines
#     (tests/peer/run.py: they must fail exactly where they fail without it, plus the intended
#     differences the README lists).
# Longer budgets (huge inputs, big fuzz runs): `make deep` (scripts/deep.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/stage.sh
VENV=${VENV:-.venv}
PY=$VENV/bin/python
export PATH="$PWD/$VENV/bin:$PATH"  # cmake, ninja and python with NumPy for the C++ tests

stage "C++ core tests (release)" bash tests/cpp/build.sh release
stage "C++ core tests (ASan + UBSan)" bash tests/cpp/build.sh asan
stage "C++ pool and slice tests (ThreadSanitizer)" bash tests/cpp/build.sh tsan
stage "C++ core tests (portable kernels only)" bash tests/cpp/build.sh portable

"$PY" -m torchnp info
"$PY" - <<'PYEOF'
import torchnp
i = torchnp.info()
assert i.engine == "native", f"native engine did not load: {i.fallback_reason}"
PYEOF
# Run against the installed package (never the source tree's python/ folder).
stage "pytest, both engines" "$PY" -m pytest -q -p no:cacheprovider -m "not slow" tests "$@"
stage "pytest, portable kernels (TORCHNP_CPU=baseline)" env TORCHNP_CPU=baseline \
  "$PY" -m pytest -q -p no:cacheprovider -k native tests/test_core_copy.py \
  tests/test_differential.py tests/test_plans.py tests/test_guard_pages.py "$@"
stage "PyTorch's NumPy interop tests under torchnp.patch() (native engine)" "$PY" tests/peer/run.py
stage "PyTorch's NumPy interop tests under torchnp.patch() (Python engine)" \
  env TORCHNP_ENGINE=python "$PY" tests/peer/run.py
