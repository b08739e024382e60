"""The S (small calls) and Z (zero-copy) regimes: per-call times of the calls users make on
small tensors, each against the way a user holding the tensor (or, for from_numpy, the array)
would write it with the built-ins.
"""

from __future__ import annotations

import ml_dtypes  # noqa: F401  (bf16 arrays in the cases)
import numpy as np
import torch

import torchnp
from torchnp.bench.cases import (
    NUMPY,
    TORCH,
    TORCHNP,
    Case,
    Prepared,
    Sizes,
    Way,
    cast_ways,
    copy_ways,
    transpose_ways,
)


def _rand(shape, dtype=torch.float32) -> torch.Tensor:
    return torch.rand(shape, generator=torch.Generator().manual_seed(0)).to(dtype)


def _per_call(*ways: Way) -> Prepared:
    return Prepared(ways, 0, per_call=True)


def _s1(_: Sizes, side: int = 64) -> Prepared:
    return _per_call(*copy_ways(_rand((side, side))))


def _s1k(s: Sizes) -> Prepared:
    return _s1(s, side=16)


def _s2(_: Sizes) -> Prepared:
    return _per_call(*transpose_ways(_rand((64, 64))))


def _s3(_: Sizes) -> Prepared:
    return _per_call(*cast_ways(_rand((64, 32), torch.float64)))  # 16 KiB of float64


def _s4(_: Sizes) -> Prepared:
    t = _rand((64, 128), torch.bfloat16)  # 16 KiB of bfloat16
    return _per_call(
        Way(
            TORCHNP,
            "torchnp.to_numpy(t, dtype=np.float32)",
            lambda: torchnp.to_numpy(t, dtype=np.float32),
        ),
        Way(TORCH, "t.float().numpy()", lambda: t.float().numpy()),
    )


def _s5(_: Sizes) -> Prepared:
    t = _rand((64, 64))
    return _per_call(
        Way(
            TORCHNP,
            "torchnp.to_numpy(t, dtype=np.float16)",
            lambda: torchnp.to_numpy(t, dtype=np.float16),
        ),
        Way(TORCH, "t.half().numpy()", lambda: t.half().numpy()),
        Way(NUMPY, "t.numpy().astype(np.float16)", lambda: t.numpy().astype(np.float16)),
    )


def _s6(_: Sizes) -> Prepared:
    x = _rand((64, 32), torch.float64).numpy()
    return _per_call(
        Way(
            TORCHNP,
            "torchnp.from_numpy(x, dtype=torch.float32)",
            lambda: torchnp.from_numpy(x, dtype=torch.float32),
        ),
        Way(
            NUMPY,
            "torch.from_numpy(x.astype(np.float32))",
            lambda: torch.from_numpy(x.astype(np.float32)),
        ),
        Way(TORCH, "torch.from_numpy(x).float()", lambda: torch.from_numpy(x).float()),
    )


def _s7(_: Sizes) -> Prepared:
    x = _rand((64, 64)).numpy()
    rev = x[::-1]
    return _per_call(
        Way(TORCHNP, "torchnp.from_numpy(x[::-1])", lambda: torchnp.from_numpy(rev)),
        Way(NUMPY, "torch.from_numpy(x[::-1].copy())", lambda: torch.from_numpy(rev.copy())),
        Way(TORCH, "torch.from_numpy(x).flip(0)", lambda: torch.from_numpy(x).flip(0)),
    )


def _z1(_: Sizes) -> Prepared:
    t = torch.randn(16, generator=torch.Generator().manual_seed(0))
    return _per_call(
        Way(TORCHNP, "torchnp.to_numpy(t)", lambda: torchnp.to_numpy(t)),
        Way(TORCH, "t.numpy()", lambda: t.numpy()),
    )


def _z2(_: Sizes) -> Prepared:
    x = np.random.default_rng(0).random(16)
    return _per_call(
        Way(TORCHNP, "torchnp.from_numpy(x)", lambda: torchnp.from_numpy(x)),
        Way(TORCH, "torch.from_numpy(x)", lambda: torch.from_numpy(x)),
    )


def _z3(_: Sizes) -> Prepared:
    # A tensor that requires grad (a parameter, a model output): its values, shared.
    t = torch.randn(16, generator=torch.Generator().manual_seed(0), requires_grad=True)
    return _per_call(
        Way(TORCHNP, "torchnp.to_numpy(t)", lambda: torchnp.to_numpy(t)),
        Way(TORCH, "t.detach().numpy()", lambda: t.detach().numpy()),
    )


S_CASES: tuple[Case, ...] = (
    Case("S1_copy_16K", "64x64 f32, copy=True (per call)", _s1),
    Case("S1k_copy_1K", "16x16 f32, copy=True (per call)", _s1k),
    Case("S2_transpose_16K", "64x64 f32 .T to C order (per call)", _s2),
    Case("S3_f64_to_f32_16K", "16 KiB f64 -> f32 (per call)", _s3),
    Case("S4_bf16_to_f32_16K", "16 KiB bf16 -> f32 (per call)", _s4),
    Case("S5_f32_to_f16_16K", "64x64 f32 -> f16 (per call)", _s5),
    Case("S6_from_numpy_cast_16K", "16 KiB f64 array -> f32 tensor (per call)", _s6),
    Case("S7_from_numpy_negstride_16K", "64x64 f32 a[::-1] -> tensor (per call)", _s7),
)
Z_CASES: tuple[Case, ...] = (
    Case("Z1_to_numpy_view", "16-element tensor -> its view (per call)", _z1),
    Case("Z2_from_numpy_view", "16-element array -> its tensor (per call)", _z2),
    Case("Z3_to_numpy_grad_view", "16-element tensor requiring grad -> its view (per call)", _z3),
)
