#!/usr/bin/env bash
# torch 2.14.1, a CUDA build (+cu130, from local disk on the development machine), on a machine
# with no GPU or driver:
#  1. a CPU build of torchnp (TORCHNP_CUDA=OFF) against it compiles, imports and converts;
#  2. the wheel built against torch 2.13 (dist/, from scripts/check_wheel.sh), installed beside
#     it, runs the behavioural suite on the native engine: one binary for every torch from the
#     floor up;
#  3. the CUDA build: configure-only checks that TORCHNP_CUDA=ON refuses a mismatched nvcc and
#     AUTO falls back to the CPU engine; then a CUDA wheel (TORCHNP_CUDA=ON, the wheel
#     architecture list) built with the machine's nvcc, whose torchnp/_cuda*.so carries exactly
#     that list (cuobjdump), links the CUDA runtime statically and exports none of it; installed,
#     it imports without a driver (built, no device; link(0) says why) and runs the CPU suite.
#     The full wheel list costs ~9 s of nvcc on the 2-core machine (one architecture: ~4 s), so
#     the installed build is the wheel itself: one build serves both checks.
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
from torchnp import _cuda_loader
assert _cuda_loader.status() == "not built", _cuda_loader.status()
print("torchnp CPU build OK against torch", torch.__version__, "| CUDA module:", _cuda_loader.reason())
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

# ---- 3. the CUDA module ----------------------------------------------------------------------
NVCC=$(command -v nvcc || true)
if [[ -z $NVCC ]]; then
  echo "check_cuda_torch: no nvcc on PATH (the CUDA build needs torch's CUDA major)" >&2
  exit 1
fi
# nvcc may be a wrapper script: the toolkit root is what nvcc itself reports.
CUDA_ROOT=$("$NVCC" --dryrun -x cu -c /dev/null -o /dev/null 2>&1 | sed -n 's/^#\$ TOP=//p' | head -n 1)
if [[ -z $CUDA_ROOT || ! -d $CUDA_ROOT ]]; then
  echo "check_cuda_torch: '$NVCC --dryrun' names no toolkit root (TOP=)" >&2
  exit 1
fi
CUDA_ROOT=$(cd "$CUDA_ROOT" && pwd -P)
CUOBJDUMP=$(command -v cuobjdump || true)
if [[ -z $CUOBJDUMP && -x $CUDA_ROOT/bin/cuobjdump ]]; then CUOBJDUMP=$CUDA_ROOT/bin/cuobjdump; fi
if [[ -z $CUOBJDUMP ]]; then  # torch's CUDA wheels require triton, which ships one
  triton_dir=$("$PY" -c 'import importlib.util as u; s = u.find_spec("triton"); print(s.submodule_search_locations[0] if s else "")')
  if [[ -n $triton_dir && -x $triton_dir/backends/nvidia/bin/cuobjdump ]]; then
    CUOBJDUMP=$triton_dir/backends/nvidia/bin/cuobjdump
  fi
fi
if [[ -z $CUOBJDUMP ]]; then
  echo "check_cuda_torch: no cuobjdump (PATH, $CUDA_ROOT/bin, triton); pip install nvidia-cuda-cuobjdump" >&2
  exit 1
fi
echo "check_cuda_torch: nvcc $NVCC (toolkit $CUDA_ROOT), cuobjdump $CUOBJDUMP"

# The decision, configure only (seconds): a CUDA torch with an nvcc of another CUDA major is
# refused under ON, naming both, and falls back to the CPU engine under AUTO.
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
printf '#!/bin/sh\necho "Cuda compilation tools, release 12.8, V12.8.93"\n' >"$scratch/nvcc12"
chmod +x "$scratch/nvcc12"
configure() {  # configure MODE LOG
  CUDACXX=$scratch/nvcc12 "$(dirname "$PY")/cmake" -S . -B "$scratch/cfg-$1" -G Ninja \
    -DCMAKE_MAKE_PROGRAM="$(dirname "$PY")/ninja" -DPython3_EXECUTABLE="$PY" \
    -Dpybind11_DIR="$("$PY" -m pybind11 --cmakedir)" -DTORCHNP_CUDA="$1" >"$2" 2>&1
}
if configure ON "$scratch/on.log" || ! grep -q "their CUDA majors must match" "$scratch/on.log"; then
  cat "$scratch/on.log"; echo "check_cuda_torch: TORCHNP_CUDA=ON accepted a CUDA 12 nvcc" >&2; exit 1
fi
if ! configure AUTO "$scratch/auto.log" || ! grep -q "torchnp._cuda not built (TORCHNP_CUDA=AUTO)" "$scratch/auto.log"; then
  cat "$scratch/auto.log"; echo "check_cuda_torch: AUTO did not fall back to the CPU engine" >&2; exit 1
fi
echo "check_cuda_torch: ON refuses a CUDA 12 nvcc, AUTO falls back: OK"

# The wheel, strictly: TORCHNP_CUDA=ON fails the build on any mismatch instead of dropping the
# module; TORCHNP_CUDA_ARCHS=wheel, so a GPU on the build machine cannot narrow it to native.
t0=$(date +%s)
TORCHNP_CUDA=ON TORCHNP_CUDA_ARCHS=wheel "$PY" -m pip wheel -q --no-build-isolation --no-deps \
  -C build-dir=build/cuda-module -w "$scratch/wheel" .
echo "check_cuda_torch: CUDA wheel built in $(($(date +%s) - t0)) s"
cuda_wheel=$(ls "$scratch"/wheel/torchnp-*.whl)
# The intended list, spelled out once more here (not read from the build): SASS for each,
# PTX for sm_120 only.
case $(uname -m) in
  aarch64 | arm64) want_elf="sm_75 sm_80 sm_86 sm_89 sm_90 sm_100 sm_110 sm_120" ;;
  *) want_elf="sm_75 sm_80 sm_86 sm_89 sm_90 sm_100 sm_120" ;;
esac
want_ptx="sm_120"
so=$("$PY" - "$cuda_wheel" "$scratch/so" <<'PYEOF'
import json, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
names = z.namelist()
for need in ("torchnp/_build.json", "torchnp/_cuda_build.json"):
    assert need in names, f"{need} missing from the CUDA wheel"
assert json.loads(z.read("torchnp/_build.json"))["with_cuda"] is False, "_C must stay CUDA-free"
(so,) = [n for n in names if n.startswith("torchnp/_cuda") and n.endswith(".so")]
print(z.extract(so, sys.argv[2]))
PYEOF
)
echo "--- cuobjdump --list-elf $(basename "$so")"
"$CUOBJDUMP" --list-elf "$so"
echo "--- cuobjdump --list-ptx $(basename "$so")"
"$CUOBJDUMP" --list-ptx "$so"
got_elf=$("$CUOBJDUMP" --list-elf "$so" | sed -n 's/.*\.\(sm_[0-9a-z]*\)\.cubin$/\1/p' | sort -V | xargs)
got_ptx=$("$CUOBJDUMP" --list-ptx "$so" | sed -n 's/.*\.\(sm_[0-9a-z]*\)\.ptx$/\1/p' | sort -V | xargs)
if [[ $got_elf != "$want_elf" || $got_ptx != "$want_ptx" ]]; then
  echo "check_cuda_torch: SASS '$got_elf' (want '$want_elf'), PTX '$got_ptx' (want '$want_ptx')" >&2
  exit 1
fi
# Static cudart: no libcudart/libcuda to find at load time, and none of its symbols exported
# (exported, they would bind to whichever libcudart torch loaded first).
if readelf -d "$so" | grep -E 'NEEDED.*lib(cudart|cuda)\.'; then
  echo "check_cuda_torch: $so needs a shared CUDA library" >&2; exit 1
fi
if nm -D --defined-only "$so" | grep -E ' (cuda|cu)[A-Z]'; then
  echo "check_cuda_torch: $so exports CUDA runtime symbols" >&2; exit 1
fi
echo "check_cuda_torch: SASS $got_elf + PTX $got_ptx, cudart static and hidden: OK"

"$PY" -m pip install -q --force-reinstall --no-deps "$cuda_wheel"
cd /tmp
"$PY" - "$want_elf" "$want_ptx" <<'PYEOF'
import sys
import numpy as np, torch, torchnp
from torchnp import _cuda_loader
assert torch.version.cuda, "expected a CUDA build of torch"
i = torchnp.info()
assert i.engine == "native", i.fallback_reason
cuda = _cuda_loader.load()
assert cuda is not None, _cuda_loader.reason()
info = cuda.build_info()
print("build_info:", info)
print("runtime", cuda.runtime_version(), "driver", cuda.driver_version())
print("loader status:", _cuda_loader.status(), "| module status:", cuda.status())
want = [f"sm_{a[3:]}" for a in sys.argv[1].split()] + [f"compute_{a[3:]}" for a in sys.argv[2].split()]
assert info["archs"] == want and _cuda_loader.build_facts()["archs"] == want, (info, want)
assert info["cudart"] == "static", info
assert info["cuda_version"].split(".")[0] == torch.version.cuda.split(".")[0], info
if cuda.driver_version() == 0:  # the CI machine: no driver
    assert _cuda_loader.status() == "built, no device", _cuda_loader.status()
    assert cuda.device_count() == 0
    assert cuda.status().startswith("no device (cudaGetDeviceCount: "), cuda.status()
    try:
        cuda.link(0)
    except RuntimeError as exc:
        print("link(0) without a driver:", exc)
        assert "cudaGetDeviceCount: " in str(exc), exc
    else:
        raise AssertionError("link(0) returned a link without a device")
else:  # a machine with a GPU
    assert cuda.device_count() == torch.cuda.device_count() > 0
    assert type(cuda.link(0)).__name__ == "PyCapsule"
try:
    cuda.link(-1)
except ValueError:
    pass
else:
    raise AssertionError("link(-1) did not raise ValueError")
t = torch.arange(12.0).reshape(3, 4)
assert np.array_equal(torchnp.to_numpy(t.T, order="C"), t.numpy().T)
print("torchnp CUDA build OK against torch", torch.__version__)
PYEOF
cd - >/dev/null
TORCHNP_ENGINE=native "$PY" -m pytest -q -p no:cacheprovider -m "not slow" tests
