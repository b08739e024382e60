#!/usr/bin/env bash
# The whole test suite:
#  1. the torch-free C++ core tests, in a release and an ASan+UBSan build;
#  2. the native engine must have loaded (a silent fallback to Python fails here);
#  3. pytest: every behavioural test on both engines;
#  4. the engine-level and differential tests again on the portable kernels (TORCHNP_CPU=baseline),
#     so every compiled CPU variant is checked against the oracle;
#  5. pytest again with the Python engine forced (TORCHNP_ENGINE=python).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=$VENV/bin/python
export PATH="$PWD/$VENV/bin:$PATH"  # cmake, ninja and python with NumPy for the C++ tests

bash tests/cpp/build.sh release
bash tests/cpp/build.sh asan

"$PY" -m torchnp info
"$PY" - <<'PYEOF'
import torchnp
i = torchnp.info()
assert i.engine == "native", f"native engine did not load: {i.fallback_reason}"
PYEOF
# Run against the installed package (never the source tree's python/ folder).
"$PY" -m pytest -q -p no:cacheprovider tests "$@"
TORCHNP_CPU=baseline "$PY" -m pytest -q -p no:cacheprovider -k native \
  tests/test_core_copy.py tests/test_differential.py "$@"
TORCHNP_ENGINE=python "$PY" -m pytest -q -p no:cacheprovider tests "$@"
