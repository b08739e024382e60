"""The D (drop-in) regime: existing code's own calls, with torchnp.patch() on against off.

Each case times one call as the program writes it (``t.numpy()``, ``torch.from_numpy(x)``, ...)
twice: with the patch installed around the timed samples (off the clock) and without it. The
zero-copy cases (D1) say what the patch costs a call it cannot speed up: the issue's target is
at most 1.3x the original's per-call time. The others show what it gains where it copies.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import torch

import torchnp
from torchnp.bench.cases import NUMPY, TORCH, TORCHNP, Case, Prepared, Sizes, Way

D1_TARGET = 1.3  # patched zero-copy calls: at most this many times the original's time
PATCHED = " under torchnp.patch()"


def _pair(label: str, fn, kind: str = TORCH) -> Prepared:
    """The same call with the patch on (torchnp's way) and off (the built-in)."""
    return Prepared(
        (Way(TORCHNP, label + PATCHED, fn, setting=torchnp.patch), Way(kind, label, fn)),
        0,
        per_call=True,
    )


def _d1(_: Sizes) -> Prepared:
    t = torch.randn(16, generator=torch.Generator().manual_seed(0))
    return _pair("t.numpy()", lambda: t.numpy())


def _d1f(_: Sizes) -> Prepared:
    x = np.random.default_rng(0).random(16)
    return _pair("torch.from_numpy(x)", lambda: torch.from_numpy(x))


def _d2(_: Sizes) -> Prepared:
    t = torch.randn(16, generator=torch.Generator().manual_seed(0))
    return _pair("np.asarray(t)", lambda: np.asarray(t), NUMPY)


def _d3(_: Sizes) -> Prepared:
    x = np.random.default_rng(0).random(16)
    return _pair("torch.as_tensor(x)", lambda: torch.as_tensor(x))


def _d4(_: Sizes) -> Prepared:
    x = np.random.default_rng(0).random((64, 32))  # 16 KiB of float64
    return _pair(
        "torch.as_tensor(x, dtype=torch.float32)", lambda: torch.as_tensor(x, dtype=torch.float32)
    )


def _d5(_: Sizes) -> Prepared:
    # What torch alone cannot do: the built-in is the rewrite a user would need without it.
    x = np.random.default_rng(0).random((64, 64)).astype(np.float32)[::-1]
    patched = Way(
        TORCHNP,
        "torch.from_numpy(x[::-1])" + PATCHED,
        lambda: torch.from_numpy(x),
        setting=torchnp.patch,
    )
    return Prepared(
        (
            patched,
            Way(NUMPY, "torch.from_numpy(x[::-1].copy())", lambda: torch.from_numpy(x.copy())),
        ),
        0,
        per_call=True,
    )


def _d6(_: Sizes) -> Prepared:
    t = torch.randn(64, 128, generator=torch.Generator().manual_seed(0)).to(torch.bfloat16)
    patched = Way(
        TORCHNP, "np.asarray(t_bf16)" + PATCHED, lambda: np.asarray(t), setting=torchnp.patch
    )
    bf16 = ml_dtypes.bfloat16
    rewrite = Way(
        TORCH,
        "t.view(torch.int16).numpy().view(bfloat16)",
        lambda: t.view(torch.int16).numpy().view(bf16),
    )
    return Prepared((patched, rewrite), 0, per_call=True)


D_CASES: tuple[Case, ...] = (
    Case("D1_patched_numpy_zero_copy", "16-element tensor .numpy() (per call)", _d1),
    Case("D1f_patched_from_numpy_zero_copy", "16-element array torch.from_numpy (per call)", _d1f),
    Case("D2_patched_asarray_zero_copy", "np.asarray of a 16-element tensor (per call)", _d2),
    Case("D3_patched_as_tensor_zero_copy", "torch.as_tensor of a 16-element array (per call)", _d3),
    Case("D4_patched_as_tensor_cast_16K", "torch.as_tensor 16 KiB f64 -> f32 (per call)", _d4),
    Case("D5_patched_from_numpy_negstride_16K", "from_numpy of 64x64 f32 a[::-1] (per call)", _d5),
    Case("D6_patched_asarray_bf16_16K", "np.asarray of a 16 KiB bf16 tensor (per call)", _d6),
)
