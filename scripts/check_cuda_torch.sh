#!/usr/bin/env bash
# torch 2.14.1, a CUDA build (+cu130, from local disk on the development machine), on a machine
# with no GPU or driver:
#  1. a CPU build of torchnp (TORCHNP_CUDA=OFF) against it compiles, imports and converts;
#  2. the wheel built against torch 2.13 (dist/, from scripts/check_wheel.sh), installed beside
#     it, runs the behavioural suite on the native engine: one binary for every torch from the
#     floor up.
# Uses its own venv so the main one stays on the CPU torch; the venv (5.5 GB) lives outside the
# clone (CUDA_TORCH_VENV, default ~/.cache/torchnp-ci/venv-torch-2.14.1) so that repeated CI
# runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CUDA_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/torchnp-ci/venv-torch-2.14.1}
mkdir -p "$(dirname "$VENV")"
TORCH_SPEC=${CUDA_TORCH_SPEC:-torch==2.14.1}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$(cd "$VENV" && pwd)/bin/python"  # absolute: the check below runs from /tmp
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q "$TORCH_SPEC"
# shellcheck disable=SC2046  # one requirement per line
"$PY" -m pip install -q --find-links "${TORCHNP_WHEEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/torchnp-ci/wheels}" \
  $("$PY" scripts/requirements.py build run test)
# Its own build folder: objects compiled against another torch must never be reused.
TORCHNP_CUDA=OFF "$PY" -m pip install -q --no-build-isolation --no-deps \
  -C build-dir=build/cuda-torch .
cd /tmp  # import the installed package, not the source tree
"$PY" - <<'PYEOF'
import torch, torchnp, numpy as np
i = torchnp.info()
print(i)
assert torch.version.cuda, "expected a CUDA build of torch"
assert i.engine == "native", i.fallback_reason
assert i.build_parallel == "torchnp thread pool", i.build_parallel
from torchnp import _C
assert _C.num_threads() == torch.get_num_threads(), "the stable shim's thread count differs"
assert _C.parallel_probe(16) == torch.get_num_threads(), "copies would not use torch's count"
t = torch.arange(12.0).reshape(3, 4)
assert np.array_equal(torchnp.to_numpy(t.T, dtype=np.float16, order="C"), t.numpy().T.astype(np.float16))
print("torchnp CPU build OK against torch", torch.__version__)
PYEOF
cd - >/dev/null
wheel=$(ls dist/torchnp-*.whl 2>/dev/null || true)
if [[ -z $wheel ]]; then
  echo "check_cuda_torch: no wheel in dist/ (run scripts/check_wheel.sh first)" >&2
  exit 1
fi
"$PY" -m pip install -q --force-reinstall --no-deps "$wheel"
# The installed wheel, not the source tree: pytest runs from tests/ with the venv's torchnp.
TORCHNP_ENGINE=native "$PY" -m pytest -q -p no:cacheprovider -m "not slow" tests
