"""The benchmark cases: for each, torchnp's call and the built-in ways a user would write today.

Each case builds its inputs for a size profile and returns callables that do the whole job,
allocation included. Fresh-output calls return a new array or tensor every time; ``out=`` calls
give every way its own preallocated destination (warm after the warm-up call).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch

import torchnp

TORCHNP, TORCH, NUMPY = "torchnp", "torch", "numpy"
TORCHNP_1 = "torchnp, 1 thread"  # the loaded regime's second yardstick: torchnp on one thread
NHWC = (0, 2, 3, 1)


@dataclass(frozen=True)
class Way:
    """One way to do a case's job: who provides it, how a user writes it, and the call."""

    kind: str  # TORCHNP, TORCH, NUMPY or TORCHNP_1
    label: str
    fn: Callable[[], object]
    threads: int | None = None  # torch.set_num_threads(threads) around each timed sample
    # A context entered around each call and timed sample, off the clock (torchnp.patch for the
    # drop-in's ways), or None.
    setting: Callable[[], AbstractContextManager] | None = None


@dataclass(frozen=True)
class Prepared:
    """A case with its inputs built: the ways (torchnp's first) and the bytes one call moves."""

    ways: tuple[Way, ...]
    bytes_moved: int
    per_call: bool = False  # tiny work: report per-call time (µs), not bandwidth


@dataclass(frozen=True)
class Sizes:
    """A size profile: elements of the flat cases, the transpose's side, the NCHW batch."""

    flat: int
    side: int
    nchw: tuple[int, int, int, int]
    tiny: int = 16
    # The L and F regimes' large size: 64 MiB in their names; small for the smoke test.
    large_bytes: int = 64 << 20


PROFILES = {
    # The yardstick's sizes: 8192² transpose, (64,3,224,224) images, 64 Mi-element flat arrays.
    "full": Sizes(flat=1 << 26, side=8192, nchw=(64, 3, 224, 224)),
    # Every working set still well past the 32 MiB L3 of the development machine.
    "quick": Sizes(flat=1 << 24, side=4096, nchw=(64, 3, 224, 224)),
    # For the smoke test only: correctness of the harness, not of the numbers.
    "tiny": Sizes(flat=4096, side=64, nchw=(2, 3, 8, 8), large_bytes=1 << 20),
}


# The ways of the jobs that several regimes time (S, F and the sweep), for a given tensor.


def copy_ways(t: torch.Tensor) -> tuple[Way, ...]:
    """A fresh copy of `t` as an array: torchnp's, NumPy's and torch's spelling."""
    return (
        Way(TORCHNP, "torchnp.to_numpy(t, copy=True)", lambda: torchnp.to_numpy(t, copy=True)),
        Way(NUMPY, "t.numpy().copy()", lambda: t.numpy().copy()),
        Way(TORCH, "t.clone().numpy()", lambda: t.clone().numpy()),
    )


def transpose_ways(t: torch.Tensor) -> tuple[Way, ...]:
    """`t.T` (2-D) as a C-order array."""
    return (
        Way(TORCHNP, 'torchnp.to_numpy(t.T, order="C")', lambda: torchnp.to_numpy(t.T, order="C")),
        Way(NUMPY, "np.ascontiguousarray(t.numpy().T)", lambda: np.ascontiguousarray(t.numpy().T)),
        Way(TORCH, "t.T.contiguous().numpy()", lambda: t.T.contiguous().numpy()),
    )


def cast_ways(t: torch.Tensor) -> tuple[Way, ...]:
    """`t` (float64) as a float32 array."""
    return (
        Way(
            TORCHNP,
            "torchnp.to_numpy(t, dtype=np.float32)",
            lambda: torchnp.to_numpy(t, dtype=np.float32),
        ),
        Way(NUMPY, "t.numpy().astype(np.float32)", lambda: t.numpy().astype(np.float32)),
        Way(TORCH, "t.float().numpy()", lambda: t.float().numpy()),
    )


@dataclass(frozen=True)
class Case:
    """A named benchmark case and how to build it for a size profile. The regime is the name's
    first letter: P steady state, S small calls, Z zero-copy, L one core busy (the F first-call
    cases are first_call.FirstCallCase)."""

    name: str
    summary: str
    prepare: Callable[[Sizes], Prepared]

    @property
    def regime(self) -> str:
        return self.name[0]

    @property
    def key(self) -> str:
        """The short id used by ``--cases`` (``P2o`` for ``P2o_transpose_f32_out``)."""
        return self.name.split("_", 1)[0]


def _rand(shape: tuple[int, ...] | int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))


def _copyto(out: np.ndarray, src: np.ndarray) -> np.ndarray:
    np.copyto(out, src)
    return out  # so the harness can check what was written


def _p1(s: Sizes) -> Prepared:
    t = _rand(s.flat)
    a = t.numpy()
    return Prepared(
        (
            Way(TORCHNP, "torchnp.to_numpy(t, copy=True)", lambda: torchnp.to_numpy(t, copy=True)),
            Way(TORCH, "t.clone().numpy()", lambda: t.clone().numpy()),
            Way(NUMPY, "a.copy()", lambda: a.copy()),
        ),
        2 * t.nbytes,
    )


def _p1o(s: Sizes) -> Prepared:
    t = _rand(s.flat)
    a = t.numpy()
    o1, o2, o3 = (np.empty_like(a) for _ in range(3))
    return Prepared(
        (
            Way(TORCHNP, "torchnp.to_numpy(t, out=out)", lambda: torchnp.to_numpy(t, out=o1)),
            Way(TORCH, "torch.from_numpy(out).copy_(t)", lambda: torch.from_numpy(o2).copy_(t)),
            Way(NUMPY, "np.copyto(out, a)", lambda: _copyto(o3, a)),
        ),
        2 * t.nbytes,
    )


def _p2(s: Sizes) -> Prepared:
    t = _rand((s.side, s.side))
    a = t.numpy()
    return Prepared(
        (
            Way(
                TORCHNP,
                'torchnp.to_numpy(t.T, order="C")',
                lambda: torchnp.to_numpy(t.T, order="C"),
            ),
            Way(TORCH, "t.T.contiguous().numpy()", lambda: t.T.contiguous().numpy()),
            Way(NUMPY, "np.ascontiguousarray(a.T)", lambda: np.ascontiguousarray(a.T)),
        ),
        2 * t.nbytes,
    )


def _p2o(s: Sizes) -> Prepared:
    t = _rand((s.side, s.side))
    a = t.numpy()
    o1, o2, o3 = (np.empty_like(a) for _ in range(3))
    return Prepared(
        (
            Way(TORCHNP, "torchnp.to_numpy(t.T, out=out)", lambda: torchnp.to_numpy(t.T, out=o1)),
            Way(TORCH, "torch.from_numpy(out).copy_(t.T)", lambda: torch.from_numpy(o2).copy_(t.T)),
            Way(NUMPY, "np.copyto(out, a.T)", lambda: _copyto(o3, a.T)),
        ),
        2 * t.nbytes,
    )


def _p3(s: Sizes) -> Prepared:
    t = _rand(s.nchw)
    a = t.numpy()
    return Prepared(
        (
            Way(
                TORCHNP,
                'torchnp.to_numpy(t.permute(0, 2, 3, 1), order="C")',
                lambda: torchnp.to_numpy(t.permute(NHWC), order="C"),
            ),
            Way(
                TORCH,
                "t.permute(0, 2, 3, 1).contiguous().numpy()",
                lambda: t.permute(NHWC).contiguous().numpy(),
            ),
            Way(
                NUMPY,
                "np.ascontiguousarray(a.transpose(0, 2, 3, 1))",
                lambda: np.ascontiguousarray(a.transpose(NHWC)),
            ),
        ),
        2 * t.nbytes,
    )


def _p4(s: Sizes) -> Prepared:
    t = _rand(s.flat, torch.float64)
    a = t.numpy()
    return Prepared(
        (
            Way(
                TORCHNP,
                "torchnp.to_numpy(t, dtype=np.float32)",
                lambda: torchnp.to_numpy(t, dtype=np.float32),
            ),
            Way(TORCH, "t.to(torch.float32).numpy()", lambda: t.to(torch.float32).numpy()),
            Way(NUMPY, "a.astype(np.float32)", lambda: a.astype(np.float32)),
        ),
        t.nbytes + t.numel() * 4,
    )


def _p5(s: Sizes) -> Prepared:
    t = _rand(s.flat, torch.bfloat16)
    return Prepared(
        (
            Way(
                TORCHNP,
                "torchnp.to_numpy(t, dtype=np.float32)",
                lambda: torchnp.to_numpy(t, dtype=np.float32),
            ),
            Way(TORCH, "t.float().numpy()", lambda: t.float().numpy()),
        ),
        t.nbytes + t.numel() * 4,
    )


def _p6(s: Sizes) -> Prepared:
    t = _rand(s.flat)
    a = t.numpy()
    return Prepared(
        (
            Way(
                TORCHNP,
                "torchnp.to_numpy(t, dtype=np.float16)",
                lambda: torchnp.to_numpy(t, dtype=np.float16),
            ),
            Way(TORCH, "t.half().numpy()", lambda: t.half().numpy()),
            Way(NUMPY, "a.astype(np.float16)", lambda: a.astype(np.float16)),
        ),
        t.nbytes + t.numel() * 2,
    )


def _p7(s: Sizes) -> Prepared:
    a = _rand(s.flat).numpy()
    rev = a[::-1]
    return Prepared(
        (
            Way(TORCHNP, "torchnp.from_numpy(a[::-1])", lambda: torchnp.from_numpy(rev)),
            Way(TORCH, "torch.from_numpy(a).flip(0)", lambda: torch.from_numpy(a).flip(0)),
            Way(
                NUMPY,
                "torch.from_numpy(a[::-1].copy())",
                lambda: torch.from_numpy(rev.copy()),
            ),
        ),
        2 * a.nbytes,
    )


def _p8(s: Sizes) -> Prepared:
    a = _rand(s.flat).numpy().astype(">f4")
    return Prepared(
        (
            Way(
                TORCHNP, "torchnp.from_numpy(a)  # a.dtype == '>f4'", lambda: torchnp.from_numpy(a)
            ),
            Way(
                NUMPY,
                "torch.from_numpy(a.astype('<f4'))",
                lambda: torch.from_numpy(a.astype("<f4")),
            ),
        ),
        2 * a.nbytes,
    )


def _p9(s: Sizes) -> Prepared:
    # Whole numbers in [0, 255]: every way agrees exactly, with no out-of-range casts.
    t = torch.floor(_rand(s.nchw) * 256)
    a = t.numpy()
    return Prepared(
        (
            Way(
                TORCHNP,
                'torchnp.to_numpy(t.permute(0, 2, 3, 1), dtype=np.uint8, order="C")',
                lambda: torchnp.to_numpy(t.permute(NHWC), dtype=np.uint8, order="C"),
            ),
            # Two spellings that cast before the 1-byte permute (permuting f32 first and casting
            # after ran 5x slower here); the faster one is the baseline.
            Way(
                TORCH,
                "t.permute(0, 2, 3, 1).to(torch.uint8).contiguous().numpy()",
                lambda: t.permute(NHWC).to(torch.uint8).contiguous().numpy(),
            ),
            Way(
                TORCH,
                "t.to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()",
                lambda: t.to(torch.uint8).permute(NHWC).contiguous().numpy(),
            ),
            Way(
                NUMPY,
                "np.ascontiguousarray(a.transpose(0, 2, 3, 1), dtype=np.uint8)",
                lambda: np.ascontiguousarray(a.transpose(NHWC), dtype=np.uint8),
            ),
        ),
        t.nbytes + t.numel(),
    )


def _p11(s: Sizes) -> Prepared:
    # A tensor carrying torch's conjugate bit (what t.conj() returns): the bit is resolved in the
    # same pass that copies. NumPy's way starts from the array of the unconjugated data.
    base = _rand(s.flat // 2, torch.complex64)
    t = base.conj()
    a = base.numpy()
    return Prepared(
        (
            Way(TORCHNP, "torchnp.to_numpy(t)  # t.is_conj()", lambda: torchnp.to_numpy(t)),
            Way(TORCH, "t.resolve_conj().numpy()", lambda: t.resolve_conj().numpy()),
            Way(NUMPY, "np.conjugate(a)", lambda: np.conjugate(a)),
        ),
        2 * t.nbytes,
    )


def _p10(s: Sizes) -> Prepared:
    t = _rand(s.tiny)
    return Prepared(
        (
            Way(TORCHNP, "torchnp.to_numpy(t)", lambda: torchnp.to_numpy(t)),
            Way(TORCH, "t.numpy(force=True)", lambda: t.numpy(force=True)),
        ),
        0,
        per_call=True,
    )


P_CASES: tuple[Case, ...] = (
    Case("P1_copy_fresh", "contiguous f32 copy into a new array", _p1),
    Case("P1o_copy_out", "contiguous f32 copy into out=", _p1o),
    Case("P2_transpose_f32", "f32 .T to a C-order new array", _p2),
    Case("P2o_transpose_f32_out", "f32 .T into a C-order out=", _p2o),
    Case("P3_nchw_to_nhwc_f32", "f32 NCHW -> NHWC, C-contiguous", _p3),
    Case("P4_f64_to_f32", "contiguous f64 -> f32", _p4),
    Case("P5_bf16_to_f32", "contiguous bf16 -> f32", _p5),
    Case("P6_f32_to_f16", "contiguous f32 -> f16", _p6),
    Case("P7_from_numpy_negstride", "a[::-1] f32 -> tensor", _p7),
    Case("P8_from_numpy_bigendian", "big-endian f32 -> native tensor", _p8),
    Case("P9_nchw_f32_to_nhwc_u8", "f32 NCHW tensor -> NHWC uint8 array", _p9),
    Case("P10_tiny_zero_copy", "16-element tensor, zero-copy view (per call)", _p10),
    Case("P11_conj_c64", "complex64 tensor with the conjugate bit -> array", _p11),
)
