"""The compiled engine (``torchnp._C``): planned, fused copies on the core's own threads."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from torchnp import _device, _pool
from torchnp._dtypes import core_code
from torchnp._engines.base import Engine

CPU_ENV = "TORCHNP_CPU"


def _apply_cpu_env(module: Any) -> None:
    """Apply TORCHNP_CPU (a compiled kernel set, or empty for the best this CPU supports); a
    value that names none this binary can run is an ImportError saying which would do."""
    wanted = os.environ.get(CPU_ENV, "")  # as the core reads it (no stripping)
    if not wanted:
        return
    try:
        module.set_cpu_variant(wanted)
    except ValueError as exc:
        choices = ", ".join(module.cpu_variants())
        raise ImportError(
            f"{CPU_ENV}={wanted!r}: {str(exc).removeprefix('torchnp: ')}; compiled here: "
            f"{choices} (unset it for the best one this CPU supports)"
        ) from None


class NativeEngine(Engine):
    """Host copies through the C++ core: one plan per copy, executed as planned."""

    name = "native"

    def __init__(self, module: Any) -> None:
        self._C = module
        self._recorded: list | None = None
        _apply_cpu_env(module)  # before the first copy reads it
        # The binding's first call with arrays sets up NumPy's C API and the kernel set (~0.25
        # ms on the 2-core dev VM): paid here, at import, not by the user's first conversion.
        one = np.zeros(1, np.float32)
        self._host_copy(one, np.zeros(1, np.float32), 0)
        # Large results come from the core's own pool, bounded like the Python one.
        module.output_pool().limit = _pool.POOL.limit

    @property
    def pool(self):
        """The core's recycling pool (_C.BufferPool): the one its fast path uses too."""
        return self._C.output_pool()

    def _host_copy(self, dst: np.ndarray, src: np.ndarray, negate: int) -> None:
        d_code, d_swap = core_code(dst.dtype)
        s_code, s_swap = core_code(src.dtype)
        if self._recorded is None:
            self._C.copy(dst, d_code, d_swap, src, s_code, s_swap, negate)
        else:  # the same copy as a plan object, kept: what ran, for whoever is recording
            plan = self._C.plan(dst, d_code, d_swap, src, s_code, s_swap, negate)
            plan.execute(dst, src)
            self._recorded.append(plan)

    def copy_many(self, copies: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
        if self._recorded is not None:  # one plan object per copy, kept
            super().copy_many(copies)
            return
        items = []
        for dst, src, negate in copies:
            if dst.size:
                items.append((dst, *core_code(dst.dtype), src, *core_code(src.dtype), negate))
        if items:
            self._C.copy_many(items)

    def download(self, dst: np.ndarray, src: torch.Tensor, negate: int = 0) -> None:
        """A device tensor into a host array through the core's transfer pipeline when the CUDA
        module serves its device (``_device``), else torch's copy and one host copy."""
        link = _device.link_for(src.device)
        if link is None:
            super().download(dst, src, negate)
        else:
            _device.download(link, dst, src, negate)

    def download_many(self, items: list[tuple[np.ndarray, torch.Tensor, int]]) -> None:
        """The downloads of each device its link serves as one pipeline (``_device``); the others
        one by one through torch."""
        by_link: dict[tuple, tuple[Any, list]] = {}
        for dst, src, negate in items:
            link = _device.link_for(src.device)
            if link is None:
                super().download(dst, src, negate)
            else:
                key = (id(link), src.device)
                by_link.setdefault(key, (link, []))[1].append((dst, src, negate))
        for link, group in by_link.values():
            _device.download_many(link, group)

    def upload_many(self, items: list[tuple[torch.Tensor, np.ndarray]]) -> None:
        """The uploads to each device its link serves as one pipeline; the others one by one."""
        by_link: dict[tuple, tuple[Any, list]] = {}
        for dst, src in items:
            link = _device.link_for(dst.device)
            if link is None:
                super().upload(dst, src)
            else:
                by_link.setdefault((id(link), dst.device), (link, []))[1].append((dst, src))
        for link, group in by_link.values():
            _device.upload_many(link, group)

    def upload(self, dst: torch.Tensor, src: np.ndarray) -> None:
        """A host array into a device tensor through the transfer pipeline when the CUDA module
        serves its device, else one host copy and torch's copy."""
        link = _device.link_for(dst.device)
        if link is None:
            super().upload(dst, src)
        else:
            _device.upload(link, dst, src)

    def plan(self, dst: np.ndarray, src: np.ndarray, negate: int = 0, threads: int = 0) -> Any:
        """The core's plan for copying src into dst (a ``torchnp._C.Plan``), without running it.

        ``threads <= 0``: sized by the calling thread's ``torch.get_num_threads()``.
        """
        d_code, d_swap = core_code(dst.dtype)
        s_code, s_swap = core_code(src.dtype)
        return self._C.plan(dst, d_code, d_swap, src, s_code, s_swap, negate, threads)

    def to_numpy_replay(self, target, d_code, d_swap, s_code, stored, layout, share, carrier):
        from torchnp import _fast

        return _fast.native_to_numpy_replay(
            self._C, target, d_code, d_swap, s_code, stored, layout, share, carrier
        )

    def from_numpy_replay(self, target_np, d_code, d_swap, s_code, s_swap, share, target, carrier):
        from torchnp import _fast

        return _fast.native_from_numpy_replay(
            self._C, target_np, d_code, d_swap, s_code, s_swap, share, target, carrier
        )

    @contextlib.contextmanager
    def recording(self) -> Iterator[list]:
        """Within the block, every host copy runs as a plan object that is appended to the
        yielded list: the plans that ran, in order (for tests and the benchmark's kernel
        column). The fast path's memo is cleared and kept empty meanwhile, so that every call
        runs (and records) its plans. Not for concurrent use from several threads."""
        from torchnp import _fast

        previous, self._recorded = self._recorded, []
        _fast.clear()
        _fast.recording += 1
        try:
            yield self._recorded
        finally:
            _fast.recording -= 1
            self._recorded = previous
