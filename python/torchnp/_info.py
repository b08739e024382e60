"""torchnp.info(): what is running, and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from importlib import metadata

import ml_dtypes
import numpy as np
import torch

from torchnp import _cuda_loader, _device, _engines, _pool


@dataclass(frozen=True)
class Info:
    """Facts about the running torchnp: engine, versions, build (the oldest torch the binary runs
    with, build_torch_floor, and the torch it was built against), CPU kernels, threads (the calling
    thread's torch.get_num_threads() and the helper threads the core's pool has started), and
    the recycling pool for large outputs (its limit and the idle bytes it holds), how the native
    fast path reads a tensor's metadata (tensor_metadata: "stable C ABI" where torch's layout
    was checked at import, else "torch methods"; None with the Python engine), the CUDA
    transfer engine's state and its page-locked staging."""

    engine: str
    fallback_reason: str | None
    torchnp_version: str
    torch_version: str
    numpy_version: str
    ml_dtypes_version: str
    build_torch_floor: str | None
    build_torch_version: str | None
    build_cuda_version: str | None
    build_compiler: str | None
    build_cxx_flags: str | None
    build_parallel: str | None = None
    cpu_variants: tuple[str, ...] = field(default_factory=tuple)
    cpu_variant: str | None = None
    threads: int = 1
    thread_pool_helpers: int = 0
    pool_limit_bytes: int = 0
    pool_cached_bytes: int = 0
    tensor_metadata: str | None = None
    # The CUDA transfer engine: "not built", "built, no device", "built, N device(s)"; and
    # the page-locked staging of device transfers (limits, bytes held per device).
    cuda: str = "not built"
    staging: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        width = max(len(k) for k in self.as_dict())
        lines = []
        for key, value in self.as_dict().items():
            if isinstance(value, tuple):
                value = ", ".join(value) or "-"
            elif isinstance(value, dict):
                value = ", ".join(f"{k}={v}" for k, v in value.items()) or "-"
            lines.append(f"{key:<{width}} : {'-' if value is None else value}")
        return "\n".join(lines)


def _version() -> str:
    try:
        return metadata.version("torchnp")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


def info() -> Info:
    """Describe the running torchnp.

    Returns
    -------
    Info
        A frozen record; ``str(info())`` is what ``python -m torchnp info`` prints.

    Examples
    --------
    >>> import torchnp
    >>> torchnp.info().engine in ("native", "python")
    True
    """
    engine = _engines.active()
    # The binary is asked only when it loaded (one refused for another torch is never loaded);
    # otherwise the facts recorded beside it say what it is.
    native = engine if isinstance(engine, _engines.NativeEngine) else _engines.loaded_native()
    build: dict = _engines._recorded_build() or {}
    variants: tuple[str, ...] = ()
    active_variant = None
    helpers = 0
    metadata = None
    if native is not None:
        build = native._C.build_info()
        variants = tuple(native._C.cpu_variants())
        active_variant = native._C.active_cpu_variant()
        helpers = native._C.pool_helpers()
        metadata = "stable C ABI" if native._C.stable_read() else "torch methods"
    return Info(
        engine=engine.name,
        fallback_reason=_engines.fallback_reason() if engine.name != "native" else None,
        torchnp_version=_version(),
        torch_version=torch.__version__,
        numpy_version=np.__version__,
        ml_dtypes_version=ml_dtypes.__version__,
        build_torch_floor=build.get("torch_floor"),
        build_torch_version=build.get("torch_version"),
        build_cuda_version=build.get("cuda_version") or None,
        build_compiler=build.get("compiler"),
        build_cxx_flags=build.get("cxx_flags"),
        build_parallel=build.get("parallel"),
        cpu_variants=variants,
        cpu_variant=active_variant if engine.name == "native" else None,
        threads=torch.get_num_threads(),
        thread_pool_helpers=helpers if engine.name == "native" else 0,
        pool_limit_bytes=_pool.active().limit,
        pool_cached_bytes=_pool.active().cached_bytes,
        tensor_metadata=metadata if engine.name == "native" else None,
        cuda=_cuda_loader.status(),
        staging=_device.staging_info(),
    )
