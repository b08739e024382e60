"""The CUDA module (``torchnp._cuda``), loaded on first ask: the module or None, and why.

Importing this file imports nothing compiled and calls no CUDA function; ``load()`` imports the
module, which itself touches CUDA only when a device is asked for, so a CUDA build imports on a
machine without a driver. ``status()`` does ask (``cudaGetDeviceCount``, which initialises the
driver when there is one).
"""

from __future__ import annotations

import importlib
import json
import threading
from pathlib import Path
from types import ModuleType

_NOT_LOADED = object()
_lock = threading.Lock()
_module: object = _NOT_LOADED
_reason: str | None = None
_FACTS = Path(__file__).with_name("_cuda_build.json")  # CMake installs it only with the module


def build_facts() -> dict | None:
    """The CUDA build's facts (_cuda_build.json: CUDA version, archs, cudart), read without
    loading the binary; None for a CPU build or an unreadable file."""
    try:
        return json.loads(_FACTS.read_text())
    except (OSError, ValueError):
        return None


def _import() -> tuple[ModuleType | None, str | None]:
    try:
        return importlib.import_module("torchnp._cuda"), None
    except ModuleNotFoundError as exc:
        if exc.name != "torchnp._cuda":  # something the module imports is missing
            return None, f"import failed: {type(exc).__name__}: {exc}"
        if _FACTS.is_file():
            return None, "import failed: _cuda_build.json is installed but the module is not"
        return None, "not built (CPU build)"
    except Exception as exc:  # a broken binary must not break `import torchnp`
        return None, f"import failed: {type(exc).__name__}: {exc}"


def load() -> ModuleType | None:
    """``torchnp._cuda``, or None (see ``reason()``). Cached; never raises."""
    global _module, _reason
    if _module is _NOT_LOADED:
        with _lock:
            if _module is _NOT_LOADED:
                module, _reason = _import()
                _module = module
    return _module  # type: ignore[return-value]


def reason() -> str | None:
    """Why ``load()`` returns None ("not built (CPU build)", "import failed: ..."); None when
    it returns the module."""
    load()
    return _reason


def status() -> str:
    """For ``torchnp.info()``: "not built", "built, no device", "built, N device(s)", or
    "import failed" (a CUDA build whose module would not load; ``reason()`` says why)."""
    module = load()
    if module is None:
        return "not built" if _reason and _reason.startswith("not built") else "import failed"
    # torch's count, not cudaGetDeviceCount: torch asks NVML where it can, which does not
    # initialise the driver, so info() before forking DataLoader workers leaves CUDA usable in
    # the children. CUDA tensors come from torch anyway: a device torch cannot see is not served.
    import torch

    count = torch.cuda.device_count()
    return f"built, {count} device(s)" if count > 0 else "built, no device"
