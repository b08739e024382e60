#!/usr/bin/env bash
# A CPU build of torchnp (TORCHNP_CUDA=OFF) against a CUDA build of torch (torch==2.14.1+cu130,
# from local disk on the development machine) must compile and import, on a machine with no GPU
# or driver. Uses its own venv so the main one stays on the CPU torch; the venv (5.5 GB) lives
# outside the clone (CUDA_TORCH_VENV, default ~/.cache/torchnp-ci/venv-torch-2.14.1) so that
# repeated CI runs reuse it.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${CUDA_TORCH_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/torchnp-ci/venv-torch-2.14.1}
mkdir -p "$(dirname "$VENV")"
TORCH_SPEC=${CUDA_TORCH_SPEC:-torch==2.14.1}
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
PY="$(cd "$VENV" && pwd)/bin/python"  # absolute: the check below runs from /tmp
"$PY" -m pip install -q --upgrade pip
"$PY" -m pip install -q "$TORCH_SPEC" numpy ml_dtypes "scikit-build-core>=0.10" "cmake>=3.26" \
  ninja "pybind11>=2.12"
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
