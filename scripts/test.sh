#!/usr/bin/env bash
# The whole test suite: the native engine must have loaded, then every test on both engines,
# then every test again with the Python engine forced (TORCHNP_ENGINE=python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${VENV:-.venv}/bin/python
# Run from tests' parent with the installed package (never the source tree's python/ folder).
"$PY" -m torchnp info
"$PY" - <<'PYEOF'
import torchnp
i = torchnp.info()
assert i.engine == "native", f"native engine did not load: {i.fallback_reason}"
PYEOF
"$PY" -m pytest -q -p no:cacheprovider tests "$@"
TORCHNP_ENGINE=python "$PY" -m pytest -q -p no:cacheprovider tests "$@"
