"""The engine loader: never breaks the import, explains every fallback, refuses a binary built
for another torch."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

import torchnp
from torchnp import _engines

pytestmark = pytest.mark.single_engine

BUILD = {"torch_version": "2.13", "cuda_version": "", "with_cuda": False}


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
fake.build_info = lambda: {**real.build_info(), 'torch_version': '1.99'}
sys.modules['torchnp._C'] = fake
"""


def _run(code: str, **env: str) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=full_env, check=False
    )


def test_matching_build_is_accepted():
    assert _engines.incompatibility(BUILD, "2.13.0+cpu", None) is None


def test_other_torch_minor_is_refused_with_reason():
    reason = _engines.incompatibility({**BUILD, "torch_version": "2.12"}, "2.13.0+cpu", None)
    assert reason is not None
    assert "built for torch 2.12" in reason and "2.13.0+cpu" in reason and "rebuild" in reason


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
    assert "built for torch 1.99" in reason


def test_forcing_native_with_a_mismatched_binary_is_a_clear_import_error():
    code = FAKE_BUILD_VERSION + "import torchnp\n"
    proc = _run(code, TORCHNP_ENGINE="native")
    assert proc.returncode != 0
    assert "ImportError: TORCHNP_ENGINE=native, but the native engine is unavailable" in proc.stderr
    assert "built for torch 1.99" in proc.stderr


def test_forcing_python_engine():
    proc = _run("import torchnp; print(torchnp.info().engine)", TORCHNP_ENGINE="python")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "python"


def test_unknown_engine_name_is_an_import_error():
    proc = _run("import torchnp", TORCHNP_ENGINE="fast")
    assert proc.returncode != 0
    assert "TORCHNP_ENGINE='fast'" in proc.stderr


def test_missing_binary_falls_back_and_says_why():
    code = (
        "import sys\n"
        "sys.modules['torchnp._C'] = None  # what a failed/missing build looks like\n"
        "import torchnp\n"
        "i = torchnp.info()\n"
        "print(i.engine); print(i.fallback_reason)\n"
    )
    proc = _run(code, TORCHNP_ENGINE="")
    assert proc.returncode == 0, proc.stderr
    engine, reason = proc.stdout.strip().splitlines()
    assert engine == "python"
    assert reason.startswith("compiled module torchnp._C did not load")


def test_info_record_and_cli():
    i = torchnp.info()
    assert isinstance(i, torchnp.Info)
    assert i.torch_version == torch.__version__
    assert i.threads == torch.get_num_threads()
    assert i.build_torch_version == ".".join(torch.__version__.split(".")[:2])
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
        return {**BUILD, "torch_version": "1.98"}

    monkeypatch.setattr(_engines, "_recorded_build", fake_recorded)
    native, reason = _engines.load_native()
    assert native is None
    assert "built for torch 1.98" in reason


def test_recorded_build_file_is_installed_and_matches_the_binary():
    recorded = _engines._recorded_build()
    assert recorded is not None, "_build.json missing beside the installed package"
    native, reason = _engines.load_native()
    assert native is not None, reason
    assert recorded["torch_version"] == native._C.build_info()["torch_version"]


def test_native_copies_run_on_torchs_intra_op_threads():
    """at::parallel_for is a header template: a binding compiled without OpenMP runs every
    "parallel" copy on the calling thread, silently (found in issue 4: all native copies were
    single-threaded). The probe counts the threads it really ran on."""
    native, reason = _engines.load_native()
    if native is None:
        pytest.skip(reason)
    C = native._C
    assert C.build_info()["parallel"] != "serial"
    threads = torch.get_num_threads()
    if threads < 2:
        pytest.skip("torch has one intra-op thread here")
    assert C.parallel_probe(64) == threads
    torch.set_num_threads(1)  # and torch.set_num_threads reaches the pool the copies use
    try:
        assert C.parallel_probe(64) == 1
    finally:
        torch.set_num_threads(threads)
    assert C.parallel_probe(64) == threads
