"""The engine loader: never breaks the import, explains every fallback, runs a stable-ABI binary
under every torch from its floor up and refuses it below."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import torchnp
from torchnp import _engines

pytestmark = pytest.mark.single_engine

BUILD = {
    "abi": "stable",
    "torch_floor": "2.13",
    "torch_version": "2.13",
    "cuda_version": "",
    "with_cuda": False,
}


# Load the real binary without running torchnp/__init__ (which selects the engine), and put a
# copy whose recorded torch version is faked where the loader will find it.
FAKE_BUILD_VERSION = """
import glob, importlib.machinery, importlib.util, os, sys, types, torch
pkg = os.path.dirname(importlib.util.find_spec('torchnp').origin)
path = glob.glob(os.path.join(pkg, '_C*.so'))[0]
loader = importlib.machinery.ExtensionFileLoader('torchnp._C', path)
real = importlib.util.module_from_spec(importlib.util.spec_from_loader('torchnp._C', loader))
loader.exec_module(real)
fake = types.ModuleType('torchnp._C')
fake.__dict__.update({k: getattr(real, k) for k in dir(real) if not k.startswith('__')})
fake.build_info = lambda: {**real.build_info(), 'torch_floor': '9.99'}
sys.modules['torchnp._C'] = fake
"""


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=False
    )


@pytest.mark.parametrize("running", ["2.13.0+cpu", "2.13.1", "2.14.1+cu130", "2.20.0", "3.0.0"])
def test_torch_at_or_above_the_floor_is_accepted(running):
    assert _engines.incompatibility(BUILD, running, None) is None


@pytest.mark.parametrize("running", ["2.12.1+cpu", "2.9.0", "1.13.1", "garbage"])
def test_torch_below_the_floor_is_refused_with_reason(running):
    reason = _engines.incompatibility(BUILD, running, None)
    assert reason is not None
    assert "needs torch >= 2.13" in reason and running in reason and "upgrade torch" in reason


def test_unknown_abi_mode_is_refused():
    for build in ({**BUILD, "abi": "cxx11-2.13"}, {k: v for k, v in BUILD.items() if k != "abi"}):
        reason = _engines.incompatibility(build, "2.13.0", None)
        assert reason is not None and "ABI mode" in reason


def test_other_cuda_major_is_refused_with_reason():
    build = {**BUILD, "with_cuda": True, "cuda_version": "12.8"}
    reason = _engines.incompatibility(build, "2.13.0+cu130", "13.0")
    assert reason is not None and "CUDA 12" in reason and "13" in reason


def test_faked_build_version_falls_back_at_import():
    # The real binary, with its recorded torch version faked before the loader reads it.
    code = (
        FAKE_BUILD_VERSION + "import torchnp\n"
        "i = torchnp.info()\n"
        "print(i.engine); print(i.fallback_reason)\n"
    )
    proc = _run(code, TORCHNP_ENGINE="")
    assert proc.returncode == 0, proc.stderr
    engine, reason = proc.stdout.strip().splitlines()
    assert engine == "python"
    assert "needs torch >= 9.99" in reason and torch.__version__ in reason


def test_forcing_native_with_a_mismatched_binary_is_a_clear_import_error():
    code = FAKE_BUILD_VERSION + "import torchnp\n"
    proc = _run(code, TORCHNP_ENGINE="native")
    assert proc.returncode != 0
    assert "ImportError: TORCHNP_ENGINE=native, but the native engine is unavailable" in proc.stderr
    assert "needs torch >= 9.99" in proc.stderr


# Conversions that need every part of an engine (a cast with sign flips, ml_dtypes types, a
# byte-swapped reversed source, an overlapping out=), checked against NumPy in a fresh process.
CONVERSIONS = """
import ml_dtypes, numpy as np, torch, torchnp
t = torch.tensor([1 + 2j, -3.5 - 0.5j]).conj()
want = np.array([1 - 2j, -3.5 + 0.5j], np.complex64)
assert np.array_equal(torchnp.to_numpy(t, dtype=np.complex64), want)
b = torchnp.to_numpy(torch.tensor([1.5, -2.25], dtype=torch.bfloat16))
assert b.dtype == ml_dtypes.bfloat16 and b.astype(np.float32).tolist() == [1.5, -2.25]
a = np.arange(6, dtype=">i4")[::-1]
assert torchnp.from_numpy(a, dtype=torch.float32).tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
x = torch.arange(6.0)
out = x.numpy()
torchnp.to_numpy(x.flip(0), out=out)  # out overlaps the source: staged
assert out.tolist() == [5.0, 4.0, 3.0, 2.0, 1.0, 0.0]
print(torchnp.info().engine)
"""


def test_forcing_python_engine_converts():
    proc = _run(CONVERSIONS, TORCHNP_ENGINE="python")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "python"


def test_unknown_engine_name_is_an_import_error():
    proc = _run("import torchnp", TORCHNP_ENGINE="fast")
    assert proc.returncode != 0
    assert "TORCHNP_ENGINE='fast'" in proc.stderr


# How a binary can fail to load, and what the fallback reason must say.
BROKEN_BINARIES = {
    # A missing or failed build (the Python engine needs nothing from _C: the element types come
    # from the table file).
    "missing": ("sys.modules['torchnp._C'] = None\n", "compiled module torchnp._C did not load"),
    # A binary that fails in its own initialisation with something other than ImportError.
    "raises": (
        "import importlib.abc\n"
        "class Broken(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torchnp._C':\n"
        "            raise RuntimeError('initialisation exploded')\n"
        "sys.meta_path.insert(0, Broken())\n",
        "RuntimeError: initialisation exploded",
    ),
    # A binary left over from another version of torchnp: its build facts and element table
    # match, but it lacks an entry the Python side calls.
    "stale": (
        FAKE_BUILD_VERSION.replace(
            "{**real.build_info(), 'torch_floor': '9.99'}", "real.build_info()"
        )
        + "del fake.copy_many\n",
        "torchnp._C is from another version of torchnp (it lacks copy_many)",
    ),
}


@pytest.mark.parametrize("how", list(BROKEN_BINARIES))
def test_unloadable_binary_falls_back_says_why_and_converts(how):
    setup, said = BROKEN_BINARIES[how]
    code = "import sys\n" + setup + CONVERSIONS + "print(torchnp.info().fallback_reason)\n"
    proc = _run(code, TORCHNP_ENGINE="")
    assert proc.returncode == 0, proc.stderr
    engine, reason = proc.stdout.strip().splitlines()
    assert engine == "python"
    assert said in reason


@pytest.mark.parametrize("value", ["garbage", "AVX2", "avx512"])
def test_unusable_cpu_variant_is_an_import_error_naming_the_choices(value):
    proc = _run("import torchnp", TORCHNP_CPU=value, TORCHNP_ENGINE="")
    assert proc.returncode != 0
    assert f"TORCHNP_CPU={value!r}" in proc.stderr and "compiled here: baseline" in proc.stderr


def test_valid_cpu_variant_is_applied():
    proc = _run("import torchnp; print(torchnp.info().cpu_variant)", TORCHNP_CPU="baseline")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "baseline"


def test_info_record_and_cli():
    i = torchnp.info()
    assert isinstance(i, torchnp.Info)
    assert i.torch_version == torch.__version__
    assert i.threads == torch.get_num_threads()
    running = _engines._version_tuple(torch.__version__)
    assert _engines._version_tuple(i.build_torch_floor) <= running  # it loaded: floor <= torch
    assert _engines._version_tuple(i.build_torch_version) >= _engines._version_tuple(
        i.build_torch_floor
    )
    assert "baseline" in i.cpu_variants
    proc = _run("import runpy; runpy.run_module('torchnp', run_name='__main__')")
    assert proc.returncode != 0  # no sub-command
    proc = subprocess.run(
        [sys.executable, "-m", "torchnp", "info"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert f"engine              : {i.engine}" in proc.stdout
    assert "torch_version" in proc.stdout


def test_engine_switch_rejects_unknown_name():
    with pytest.raises(ValueError, match="unknown engine"):
        _engines.use("gpu")


def test_recorded_build_file_is_checked_before_loading_the_binary(monkeypatch):
    def fake_recorded():
        return {**BUILD, "torch_floor": "9.98"}

    monkeypatch.setattr(_engines, "_recorded_build", fake_recorded)
    native, reason = _engines.load_native()
    assert native is None
    assert "needs torch >= 9.98" in reason


def test_recorded_build_file_is_installed_and_matches_the_binary():
    recorded = _engines._recorded_build()
    assert recorded is not None, "_build.json missing beside the installed package"
    native, reason = _engines.load_native()
    assert native is not None, reason
    built = native._C.build_info()
    for key in ("abi", "torch_floor", "torch_version"):
        assert recorded[key] == built[key], key
    assert built["abi"] == "stable"
    assert torchnp.info().build_torch_floor == built["torch_floor"]


def test_element_table_is_the_one_list():
    """Every element type comes from csrc/core/element_types.def: the Python table, the binary's
    codes and names, and torch / NumPy's types agree with it."""
    from torchnp import _dtypes, _element_table

    rows = _element_table.read_table()
    assert [e.code for e in _dtypes._ELEMENT_TYPES] == [r.code for r in rows]
    assert [e.name for e in _dtypes._ELEMENT_TYPES] == [r.name for r in rows]
    for e in _dtypes._ELEMENT_TYPES:
        assert e.numpy.name == e.name and e.numpy.itemsize in (1, 2, 4, 8, 16)
        assert e.torch is not None, f"torch {torch.__version__} lacks {e.name}"
        assert e.components == (2 if e.numpy.kind == "c" or e.name == "complex32" else 1)
    native, _reason = _engines.load_native()
    if native is not None:
        built = [(e.code, e.name, e.numpy.itemsize) for e in _dtypes._ELEMENT_TYPES]
        assert native._C.element_types() == built
