"""One binary for every torch from the floor up: the binding uses torch's stable C ABI only, the
wheel holds no torch library and states its floor, and it installs and runs where there are no
build tools. The wheel tests need a built wheel (``make wheel``, or TORCHNP_WHEEL=path); the
slow ones create fresh virtual environments (CI runs them in scripts/check_wheel.sh).
"""

from __future__ import annotations

import glob
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch

from torchnp import _engines

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

pytestmark = pytest.mark.single_engine

ROOT = Path(__file__).resolve().parents[1]
# What the binary may need besides libtorch_cpu: the C/C++ runtime.
RUNTIME = re.compile(r"^(libstdc\+\+|libgcc_s|libc|libm|libpthread|libdl|ld-linux.*)\.so")
FORBIDDEN = ("libtorch_python", "libc10", "libgomp", "libiomp", "libomp", "libtorch.so")


def _readelf(path: str) -> str:
    if shutil.which("readelf") is None:
        pytest.skip("readelf (binutils) is not installed")
    return subprocess.run(
        ["readelf", "-d", path], capture_output=True, text=True, check=True
    ).stdout


def _check_binary(path: str) -> None:
    dynamic = _readelf(path)
    needed = re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", dynamic)
    assert "libtorch_cpu.so" in needed, needed
    for lib in needed:
        assert lib == "libtorch_cpu.so" or RUNTIME.match(lib), f"{path} needs {lib}"
    runpath = re.findall(r"\((?:RUNPATH|RPATH)\)\s+Library r(?:un)?path: \[([^\]]+)\]", dynamic)
    assert runpath == ["$ORIGIN/../torch/lib"], runpath  # relative: torch beside it


def _floor_of_pyproject() -> tuple[str, str]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (torch_req,) = [d for d in data["project"]["dependencies"] if d.startswith("torch")]
    cmake_floor = data["tool"]["scikit-build"]["cmake"]["define"]["TORCHNP_TORCH_FLOOR"]["default"]
    return torch_req.removeprefix("torch>="), cmake_floor


def _wheel() -> Path:
    path = os.environ.get("TORCHNP_WHEEL") or next(iter(glob.glob(str(ROOT / "dist/*.whl"))), "")
    if not path:
        pytest.skip("no wheel built (make wheel, or TORCHNP_WHEEL=path)")
    return Path(path)


def test_installed_binary_needs_only_libtorch_cpu():
    native, reason = _engines.load_native()
    if native is None:
        pytest.skip(reason)
    if native._C.build_info()["cxx_flags"].find("-fsanitize") >= 0 or os.environ.get(
        "TORCHNP_EXPECT_MODULE"
    ):
        pytest.skip("a sanitizer build links the sanitizer runtimes (scripts/sanitize.sh)")
    _check_binary(native._C.__file__)
    build = native._C.build_info()
    assert build["abi"] == "stable" and build["torch_floor"] == _floor_of_pyproject()[0]


def test_sources_include_no_torch_cpp_api():
    sources = [p for p in (ROOT / "csrc").rglob("*") if p.suffix in (".h", ".cpp", ".cu", ".def")]
    if not sources:
        pytest.skip("no csrc beside these tests")
    include = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]', re.M)
    for path in sources:
        for header in include.findall(path.read_text()):
            if header.startswith(("torch/", "ATen/", "c10/", "caffe2/")):
                assert header.startswith("torch/csrc/stable/c/"), f"{path}: {header}"
            if header.startswith("pybind11/"):
                assert "bindings" in path.parts, f"{path}: pybind11 outside csrc/bindings"


def test_floor_is_stated_once_in_pyproject():
    requirement, cmake_floor = _floor_of_pyproject()
    assert requirement == cmake_floor, (requirement, cmake_floor)


def test_wheel_holds_no_torch_library_and_states_its_floor(tmp_path):
    wheel = _wheel()
    with zipfile.ZipFile(wheel) as z:
        names = z.namelist()
        binaries = [n for n in names if ".so" in n or n.endswith((".dll", ".dylib"))]
        assert len(binaries) == 1 and binaries[0].startswith("torchnp/_C"), binaries
        for name in names:
            assert not any(lib in name for lib in FORBIDDEN), name
        build = json.loads(z.read("torchnp/_build.json"))
        metadata = z.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
        z.extract(binaries[0], tmp_path)
        assert "torchnp/element_types.def" in names
    assert build["abi"] == "stable"
    assert f"Requires-Dist: torch>={build['torch_floor']}" in metadata
    assert build["torch_floor"] == _floor_of_pyproject()[0]
    _check_binary(str(tmp_path / binaries[0]))


SMOKE = """
import importlib.util, sys
import numpy as np, torch, torchnp
info = torchnp.info()
assert info.engine == "native", info.fallback_reason
t = torch.arange(12.0).reshape(3, 4)
want = t.numpy().T.astype(np.float16)
assert np.array_equal(torchnp.to_numpy(t.T, dtype=np.float16, order="C"), want)
a = np.arange(6, dtype=">i4")[::-1]
assert torchnp.from_numpy(a, dtype=torch.float32).tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
for tool in ("cmake", "ninja", "pybind11", "scikit_build_core"):
    if importlib.util.find_spec(tool) is not None and sys.argv[1:] == ["no-build-tools"]:
        raise SystemExit(f"{tool} is installed: not a consumer environment")
print(info.build_torch_floor, info.torch_version)
"""


def _fresh_venv(path: Path, *packages: str) -> Path:
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    python = path / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, "--upgrade", "pip"], check=True)
    subprocess.run([*pip, *packages], check=True)
    return python


def _runtime_packages() -> list[str]:
    import ml_dtypes
    import numpy as np

    return [
        f"torch=={torch.__version__}",
        f"numpy=={np.__version__}",
        f"ml_dtypes=={ml_dtypes.__version__}",
    ]


@pytest.mark.slow
def test_wheel_runs_in_a_fresh_venv_without_build_tools(tmp_path):
    wheel = _wheel()
    python = _fresh_venv(tmp_path / "venv", *_runtime_packages())
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--no-deps", str(wheel)], check=True)
    proc = subprocess.run(
        [str(python), "-c", SMOKE, "no-build-tools"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr


@pytest.mark.slow
def test_sdist_builds_and_installs_the_same_way(tmp_path):
    sdists = glob.glob(str(_wheel().parent / "torchnp-*.tar.gz"))
    if not sdists:
        pytest.skip("no sdist built (make wheel)")
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())
    python = _fresh_venv(tmp_path / "venv", *_runtime_packages(), *data["build-system"]["requires"])
    subprocess.run(
        [str(python), "-m", "pip", "install", "-q", "--no-build-isolation", "--no-deps", sdists[0]],
        check=True,
        cwd=tmp_path,
    )
    proc = subprocess.run([str(python), "-c", SMOKE], capture_output=True, text=True, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
