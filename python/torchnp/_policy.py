"""Decisions shared by both directions: argument checks, layouts, casts, warnings, refusals."""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Sequence

import numpy as np

from torchnp._dtypes import is_complex

ORDERS = ("K", "A", "C", "F")


def check_order(order: str) -> str:
    if not isinstance(order, str) or order.upper() not in ORDERS:
        raise ValueError(f"order must be one of 'K', 'A', 'C', 'F', got {order!r}")
    return order.upper()


def check_copy(copy: bool | None) -> bool | None:
    if copy is None or isinstance(copy, bool | np.bool_):
        return None if copy is None else bool(copy)
    raise ValueError(f"copy must be None, True or False, got {copy!r}")


def is_contiguous(
    shape: Sequence[int], strides: Sequence[int], itemsize: int, fortran: bool = False
) -> bool:
    """NumPy's contiguity test on byte strides (size-1 dims and empty arrays always pass)."""
    if any(n == 0 for n in shape):
        return True
    expected = itemsize
    dims = range(len(shape)) if fortran else reversed(range(len(shape)))
    for d in dims:
        if shape[d] != 1:
            if strides[d] != expected:
                return False
            expected *= shape[d]
    return True


_CASTABLE: dict[tuple[np.dtype, np.dtype], bool] = {}


def check_cast(src: np.dtype, dst: np.dtype) -> None:
    """Raise TypeError for element-type pairs NumPy/ml_dtypes cannot cast, the oracle every
    engine must match (ml_dtypes 0.6 has no cast between float8_e8m0fnu and the other float8
    types or complex32). Raised before anything is allocated or written."""
    key = (src, dst)
    castable = _CASTABLE.get(key)
    if castable is None:
        castable = _CASTABLE[key] = bool(np.can_cast(src, dst, casting="unsafe"))
    if not castable:
        raise TypeError(
            f"torchnp: NumPy/ml_dtypes define no cast from {src} to {dst}; "
            "cast through float32 in two steps (e.g. .astype(np.float32) first)"
        )


_DISCARDS_IMAGINARY: dict[tuple[np.dtype, np.dtype], bool] = {}


def discards_imaginary(src: np.dtype, dst: np.dtype) -> bool:
    """Whether casting src to dst drops imaginary parts (and NumPy warns): complex -> non-bool
    real. Memoised: it runs on every copying call."""
    key = (src, dst)
    discards = _DISCARDS_IMAGINARY.get(key)
    if discards is None:
        discards = is_complex(src) and not is_complex(dst) and dst.kind != "b"
        _DISCARDS_IMAGINARY[key] = discards
    return discards


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _caller_stacklevel() -> int:
    """The stacklevel of the first frame outside torchnp (the user's line), as seen from a
    function of this module calling ``warnings.warn``: right however many of torchnp's own
    functions (to_numpy, its policy, a tree call) lie in between."""
    frame, level = sys._getframe(1), 1
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE_DIR):
        frame, level = frame.f_back, level + 1
    return level


def warn_if_discarding_imaginary(src: np.dtype, dst: np.dtype) -> None:
    """Emit NumPy's ComplexWarning where NumPy's astype would (complex -> non-bool real),
    pointing at the user's line (the first caller outside torchnp), as NumPy's points at the
    line that called astype. Also emitted for complex32, where ml_dtypes' own cast stays
    silent."""
    if discards_imaginary(src, dst):
        warnings.warn(
            "Casting complex values to real discards the imaginary part",
            np.exceptions.ComplexWarning,
            stacklevel=_caller_stacklevel(),
        )


def copy_refusal(what: str, reasons: Sequence[str], remedy: str) -> ValueError:
    listed = "; ".join(reasons)
    return ValueError(f"copy=False, but {what} needs a copy: {listed}. {remedy}")
