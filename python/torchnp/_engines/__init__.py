"""The two engines that move bytes, and the loader that picks one.

An engine moves every byte of a conversion (``base.Engine``: host copies with the cast, byte
swaps and sign flips fused, overlap staging, device transfers); the policy modules only decide
what to move and where. ``NativeEngine`` runs the compiled core, ``PythonEngine`` NumPy's own
casts; both give the same bytes.
"""

from __future__ import annotations

import importlib
import json
import os

import torch

from torchnp import _fast
from torchnp._engines.base import Engine, Negate
from torchnp._engines.native_engine import NativeEngine
from torchnp._engines.python_engine import PythonEngine

__all__ = ["Engine", "NativeEngine", "Negate", "PythonEngine", "active", "use"]


def _version_tuple(version: str) -> tuple[int, ...] | None:
    """(major, minor) of a version string such as "2.13.0+cpu", or None if it has none."""
    try:
        return tuple(int(part) for part in version.split("+")[0].split(".")[:2])
    except ValueError:
        return None


# The ABI modes this package can load: "stable" binaries use torch's stable C ABI only and run
# with every torch from their recorded floor up.
KNOWN_ABIS = ("stable",)
REBUILD = "pip install --no-build-isolation --force-reinstall --no-deps torchnp"


def incompatibility(build: dict, torch_version: str, torch_cuda: str | None) -> str | None:
    """Why a binary with build facts `build` cannot run under this torch, or None if it can.

    The binary uses torch's stable C ABI only, compiled for a floor (TORCH_TARGET_VERSION): it
    runs with that torch and every later one, and with no earlier one. A CUDA build must also
    match the running torch's CUDA major.
    """
    abi = build.get("abi")
    if abi not in KNOWN_ABIS:
        return (
            f"torchnp._C was built in ABI mode {abi!r}, which this torchnp cannot load "
            f"(known: {', '.join(KNOWN_ABIS)}); rebuild it ({REBUILD})"
        )
    floor = build.get("torch_floor", "")
    wanted, running = _version_tuple(floor), _version_tuple(torch_version)
    if wanted is None or running is None or running < wanted:
        return (
            f"torchnp._C needs torch >= {floor} (the oldest torch its stable-ABI build targets) "
            f"but torch {torch_version} is running; upgrade torch, or build torchnp from source "
            f"for this torch with a lower TORCHNP_TORCH_FLOOR ({REBUILD})"
        )
    if build.get("with_cuda"):
        built_cuda = build.get("cuda_version", "").split(".")[0]
        running_cuda = (torch_cuda or "").split(".")[0]
        if built_cuda != running_cuda:
            return (
                f"torchnp._C was built for CUDA {built_cuda or 'none'} but torch uses CUDA "
                f"{running_cuda or 'none'}; install the torchnp build for CUDA "
                f"{running_cuda or 'none'} or rebuild it ({REBUILD})"
            )
    return None


def _recorded_build() -> dict | None:
    """The build facts installed beside the binary (_build.json), or None if absent."""
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "_build.json")
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
    except Exception as exc:
        return None, f"compiled module torchnp._C did not load: {type(exc).__name__}: {exc}"
    reason = incompatibility(_C.build_info(), torch.__version__, torch.version.cuda)
    if reason:
        return None, reason
    reason = _table_mismatch(_C) or _missing_entries(_C)
    if reason:
        return None, reason
    try:
        return NativeEngine(_C), None
    except ImportError:
        raise  # TORCHNP_CPU names no usable kernel set: the user's error, said at import
    except Exception as exc:  # a binary that cannot run here: fall back, say why
        return None, f"torchnp._C failed its first copy: {type(exc).__name__}: {exc}"


# What the Python side calls in the binary: one left over from another version of torchnp may
# lack some (its build facts and element table can still match).
_ENTRIES = ("copy", "copy_many", "plan", "convert", "fast_init", "fast_to_numpy", "tensor_view")


def _missing_entries(module) -> str | None:
    missing = [name for name in _ENTRIES if not hasattr(module, name)]
    if missing:
        return (
            f"torchnp._C is from another version of torchnp (it lacks {', '.join(missing)}); "
            "rebuild torchnp (pip install --no-build-isolation --force-reinstall --no-deps torchnp)"
        )
    return None


def _table_mismatch(module) -> str | None:
    """Why the binary's element types differ from the table the Python side read, or None (a
    binary left over from an older build would otherwise read every type code wrongly)."""
    from torchnp._dtypes import _ELEMENT_TYPES

    ours = [(e.code, e.name, e.numpy.itemsize) for e in _ELEMENT_TYPES]
    built = [tuple(row) for row in module.element_types()]
    if built != ours:
        return (
            "torchnp._C was built from another element-type table than the installed "
            "element_types.def; rebuild torchnp (pip install --no-build-isolation "
            "--force-reinstall --no-deps torchnp)"
        )
    return None


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
_native: NativeEngine | None = _active if isinstance(_active, NativeEngine) else None
if _native is not None:
    _fast.shareable = _native._C.shareable
_fast.activate(_active)


def loaded_native() -> NativeEngine | None:
    """The native engine if it has been loaded in this process (active or not), else None."""
    return _native


def active() -> Engine:
    return _active


def fallback_reason() -> str | None:
    return _fallback_reason


def use(name: str) -> Engine:
    """Switch the engine for this process ('native' or 'python'); returns the previous one.

    Raises RuntimeError when 'native' is asked for and unavailable.
    """
    global _active, _fallback_reason, _native
    previous = _active
    if name == "python":
        _active = PythonEngine()
    elif name == "native":
        native, reason = load_native()
        if native is None:
            raise RuntimeError(f"native engine unavailable: {reason}")
        _active, _fallback_reason, _native = native, None, native
    else:
        raise ValueError(f"unknown engine {name!r}: expected 'native' or 'python'")
    _fast.activate(_active)  # memoised replays belong to the engine that recorded them
    return previous


def restore(engine: Engine) -> None:
    global _active
    _active = engine
    _fast.activate(engine)
