"""The L regime: conversions while another process keeps one core busy (a DataLoader worker,
a second job). Each case has three yardsticks: the built-in, and torchnp itself on one thread
(a threaded call must never be slower than that). The harness starts and stops the load
(Competitor).
"""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import torch

import torchnp
from torchnp.bench.cases import (
    NUMPY,
    TORCH,
    TORCHNP,
    TORCHNP_1,
    Case,
    Prepared,
    Sizes,
    Way,
    cast_ways,
)


def _bytes(size: str, sizes: Sizes) -> int:
    return 512 << 10 if size == "512K" else sizes.large_bytes  # "64M": 64 MiB but when tiny


def _rand(shape, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(dtype)


def _copyto(out: np.ndarray, src: np.ndarray) -> np.ndarray:
    np.copyto(out, src)
    return out


def _copy_out(nbytes: int) -> Prepared:
    t = _rand(nbytes // 4)
    o1, o2, o3 = (np.empty(t.shape, np.float32) for _ in range(3))
    return Prepared(
        (
            Way(TORCHNP, "torchnp.to_numpy(t, out=out)", lambda: torchnp.to_numpy(t, out=o1)),
            Way(TORCHNP_1, "the same, 1 thread", lambda: torchnp.to_numpy(t, out=o1), threads=1),
            Way(NUMPY, "np.copyto(out, t.numpy())", lambda: _copyto(o2, t.numpy())),
            Way(TORCH, "torch.from_numpy(out).copy_(t)", lambda: torch.from_numpy(o3).copy_(t)),
        ),
        2 * t.nbytes,
    )


def _transpose_out(nbytes: int) -> Prepared:
    side = int((nbytes // 4) ** 0.5)
    t = _rand((side, side))
    o1, o2, o3 = (np.empty((side, side), np.float32) for _ in range(3))
    return Prepared(
        (
            Way(TORCHNP, "torchnp.to_numpy(t.T, out=out)", lambda: torchnp.to_numpy(t.T, out=o1)),
            Way(TORCHNP_1, "the same, 1 thread", lambda: torchnp.to_numpy(t.T, out=o1), threads=1),
            Way(NUMPY, "np.copyto(out, t.numpy().T)", lambda: _copyto(o2, t.numpy().T)),
            Way(TORCH, "torch.from_numpy(out).copy_(t.T)", lambda: torch.from_numpy(o3).copy_(t.T)),
        ),
        2 * t.nbytes,
    )


def _cast(nbytes: int) -> Prepared:
    t = _rand(nbytes // 8, torch.float64)
    mine, *builtins = cast_ways(t)
    return Prepared(
        (mine, Way(TORCHNP_1, "the same, 1 thread", mine.fn, threads=1), *builtins),
        t.nbytes + t.numel() * 4,
    )


def _case(name: str, summary: str, make, size: str) -> Case:
    return Case(
        f"{name}_{size}", f"{summary}, {size}B, one core busy", lambda s: make(_bytes(size, s))
    )


L_CASES: tuple[Case, ...] = tuple(
    _case(name, summary, make, size)
    for name, summary, make in (
        ("L1o_copy_out", "f32 copy into out=", _copy_out),
        ("L2o_transpose_out", "f32 .T into a C-order out=", _transpose_out),
        ("L4_f64_to_f32", "f64 -> f32 into a new array", _cast),
    )
    for size in ("512K", "64M")
)


class Competitor:
    """Another process keeping one core busy (a Python busy loop), for as long as the block."""

    def __enter__(self) -> Competitor:
        self._proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        time.sleep(0.3)  # scheduled and spinning before the first measurement
        return self

    def __exit__(self, *exc: object) -> None:
        self._proc.kill()
        self._proc.wait()
