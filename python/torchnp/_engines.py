"""The two engines that move bytes, and the loader that picks one.

An engine has one job: ``copyto(dst, src)`` where both are NumPy arrays of the same shape over
raw memory (any strides, any supported element type and byte order, no overlap) and every
element of ``dst`` becomes ``src``'s element cast exactly as ``src.astype(dst.dtype)`` would
(one exception: complex32 -> bool follows NumPy's complex rule, see PythonEngine).
Everything else (what to copy, where, whether at all) is policy and lives elsewhere.
"""

from __future__ import annotations

import importlib
import json
import os
import warnings
from typing import Protocol

import ml_dtypes
import numpy as np
import torch

from torchnp._dtypes import core_code

_COMPLEX32 = np.dtype(ml_dtypes.complex32)


class Engine(Protocol):
    name: str

    def copyto(self, dst: np.ndarray, src: np.ndarray) -> None: ...


class PythonEngine:
    """Pure NumPy/ml_dtypes engine: the reference the native engine must match byte for byte."""

    name = "python"

    def copyto(self, dst: np.ndarray, src: np.ndarray) -> None:
        # The policy emits NumPy's ComplexWarning itself, once, in the user's frame. NumPy's
        # overflow/invalid RuntimeWarnings are silenced: the native engine has none, and both
        # engines must behave the same.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            if dst.dtype.kind == "b" and src.dtype == _COMPLEX32:
                # ml_dtypes 0.6 casts complex32 -> bool through the real part truncated to an
                # integer (0.5+0j and 1j give False); torchnp keeps NumPy's complex rule (True
                # unless both parts are ±0), as complex64 and torch's .to(torch.bool) do.
                halves = np.bitwise_and(src.view(np.uint32), 0x7FFF7FFF)  # drop both signs
                np.not_equal(halves, 0, out=dst)
                return
            np.copyto(dst, src, casting="unsafe")


class NativeEngine:
    """The compiled core (``torchnp._C``): planned, fused, multi-threaded copies."""

    name = "native"

    def __init__(self, module) -> None:
        self._C = module
        self.last_kernel: str | None = None

    def copyto(self, dst: np.ndarray, src: np.ndarray) -> None:
        d_code, d_swap = core_code(dst.dtype)
        s_code, s_swap = core_code(src.dtype)
        self.last_kernel = self._C.copy(dst, d_code, d_swap, src, s_code, s_swap)

    def plan(self, dst: np.ndarray, src: np.ndarray) -> dict:
        """The core's plan for copying src into dst, without running it."""
        d_code, d_swap = core_code(dst.dtype)
        s_code, s_swap = core_code(src.dtype)
        return self._C.plan(dst, d_code, d_swap, src, s_code, s_swap)


def _major_minor(version: str) -> str:
    return ".".join(version.split("+")[0].split(".")[:2])


def incompatibility(build: dict, torch_version: str, torch_cuda: str | None) -> str | None:
    """Why a binary with build facts `build` cannot run under this torch, or None if it can.

    Nothing guarantees torch's C++ ABI across minor versions, so the binary must have been built
    for the running torch's major.minor, and for its CUDA major when it was built with CUDA.
    """
    built = build.get("torch_version", "")
    running = _major_minor(torch_version)
    if built != running:
        return (
            f"torchnp._C was built for torch {built} but torch {torch_version} is running; "
            "rebuild torchnp against this torch (pip install --no-build-isolation "
            "--force-reinstall --no-deps torchnp)"
        )
    if build.get("with_cuda"):
        built_cuda = build.get("cuda_version", "").split(".")[0]
        running_cuda = (torch_cuda or "").split(".")[0]
        if built_cuda != running_cuda:
            return (
                f"torchnp._C was built for CUDA {built_cuda or 'none'} but torch uses CUDA "
                f"{running_cuda or 'none'}; rebuild torchnp against this torch"
            )
    return None


def _recorded_build() -> dict | None:
    """The build facts installed beside the binary (_build.json), or None if absent."""
    path = os.path.join(os.path.dirname(__file__), "_build.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def load_native() -> tuple[NativeEngine | None, str | None]:
    """Try the compiled engine; return (engine, None) or (None, reason).

    The recorded build facts are checked before the binary is loaded (loading one built for
    another torch may itself fail or crash), and again from the loaded binary.
    """
    recorded = _recorded_build()
    if recorded is not None:
        reason = incompatibility(recorded, torch.__version__, torch.version.cuda)
        if reason:
            return None, reason
    try:
        _C = importlib.import_module("torchnp._C")
    except ImportError as exc:
        return None, f"compiled module torchnp._C did not load: {exc}"
    reason = incompatibility(_C.build_info(), torch.__version__, torch.version.cuda)
    if reason:
        return None, reason
    return NativeEngine(_C), None


ENGINE_ENV = "TORCHNP_ENGINE"


def select_engine() -> tuple[Engine, str | None]:
    """Pick the engine at import: native when it loads and matches torch, else Python.

    ``TORCHNP_ENGINE=python|native`` forces one. Returns (engine, reason the native engine is not
    used or None).
    """
    forced = os.environ.get(ENGINE_ENV, "").strip().lower()
    if forced not in ("", "auto", "native", "python"):
        raise ImportError(f"{ENGINE_ENV}={forced!r}: expected 'native', 'python' or 'auto'")
    if forced == "python":
        return PythonEngine(), f"forced by {ENGINE_ENV}=python"
    native, reason = load_native()
    if native is not None:
        return native, None
    if forced == "native":
        raise ImportError(f"{ENGINE_ENV}=native, but the native engine is unavailable: {reason}")
    return PythonEngine(), reason


_active: Engine
_fallback_reason: str | None
_active, _fallback_reason = select_engine()


def active() -> Engine:
    return _active


def fallback_reason() -> str | None:
    return _fallback_reason


def use(name: str) -> Engine:
    """Switch the engine for this process ('native' or 'python'); returns the previous one.

    Raises RuntimeError when 'native' is asked for and unavailable.
    """
    global _active, _fallback_reason
    previous = _active
    if name == "python":
        _active = PythonEngine()
    elif name == "native":
        native, reason = load_native()
        if native is None:
            raise RuntimeError(f"native engine unavailable: {reason}")
        _active, _fallback_reason = native, None
    else:
        raise ValueError(f"unknown engine {name!r}: expected 'native' or 'python'")
    return previous


def restore(engine: Engine) -> None:
    global _active
    _active = engine
