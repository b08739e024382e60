#!/usr/bin/env bash
# `make wheel`: build the CPU wheel (and, with --sdist, the sdist) into dist/, strictly: the
# compiled engine must be inside, or this fails (no silent pure-Python wheel).
#   VENV=... picks the environment whose torch it builds against (default .venv).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PY=$VENV/bin/python
rm -rf dist
TORCHNP_CUDA=OFF "$PY" -m pip wheel -q --no-build-isolation --no-deps -w dist .
wheel=$(ls dist/torchnp-*.whl)
case $wheel in
  *-none-any.whl) echo "wheel.sh: $wheel is a pure-Python wheel; the native build was lost" >&2; exit 1 ;;
esac
"$PY" - "$wheel" <<'PYEOF'
import sys, zipfile
names = zipfile.ZipFile(sys.argv[1]).namelist()
for need in ("torchnp/_build.json", "torchnp/element_types.def"):
    assert need in names, f"{need} missing from {sys.argv[1]}"
assert any(n.startswith("torchnp/_C") and n.endswith(".so") for n in names), "no torchnp/_C*.so"
PYEOF
if [[ ${1:-} == --sdist ]]; then
  "$PY" -m build --sdist --no-isolation --outdir dist . >/dev/null
fi
ls -l dist
