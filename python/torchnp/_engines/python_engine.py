"""The pure NumPy / ml_dtypes engine: the reference the native engine matches byte for byte, and
what runs when the compiled module is missing or cannot load."""

from __future__ import annotations

import warnings

import numpy as np

from torchnp._dtypes import element_type_of_numpy
from torchnp._engines.base import Engine, Negate

# Float types whose negation has no sign-bit rule (ml_dtypes defines one: fnuz has no -0 and
# keeps its one NaN; e8m0 has no sign, its negation is NaN). np.negative applies it.
_NO_SIGN_BIT = frozenset(("float8_e4m3fnuz", "float8_e5m2fnuz", "float8_e8m0fnu"))


def effective_negate(components: int, negate: int) -> int:
    """The Negate code that applies to a type (the core's rule): a real type has only a real
    part, so a conjugate (IMAG) leaves it alone and REAL or BOTH negate it."""
    if components == 2:
        return negate
    return Negate.REAL if negate in (Negate.REAL, Negate.BOTH) else Negate.NONE


def negate_in_place(a: np.ndarray, negate: int) -> None:
    """Apply a Negate code to a C-contiguous, native-order array, as the core's kernels do."""
    element, _ = element_type_of_numpy(a.dtype)
    if element.name == "bool" and negate != Negate.NONE:
        raise ValueError("torchnp: a bool has no negation")
    negate = effective_negate(element.components, negate)
    if negate == Negate.NONE or a.size == 0:
        return
    flat = a.reshape(-1)
    if a.dtype.kind in "iu" or element.name in _NO_SIGN_BIT:
        np.negative(flat, out=flat)  # two's complement wrap; ml_dtypes' rule for the others
        return
    # IEEE sign flips (NaNs too; np.negative of ml_dtypes' complex32 would also quiet NaNs).
    part = a.dtype.itemsize // element.components
    bits = flat.view(np.dtype(f"u{part}")).reshape(-1, element.components)
    sign = np.array(1 << (8 * part - 1), dtype=bits.dtype)
    if element.components == 1:
        bits ^= sign
        return
    if negate & Negate.REAL:
        bits[:, 0] ^= sign
    if negate & Negate.IMAG:
        bits[:, 1] ^= sign


class PythonEngine(Engine):
    """Host copies with NumPy's own casts (np.copyto, casting="unsafe")."""

    name = "python"

    def _host_copy(self, dst: np.ndarray, src: np.ndarray, negate: int) -> None:
        # The policy emits NumPy's ComplexWarning itself, once, in the user's frame. NumPy's
        # overflow/invalid RuntimeWarnings are silenced: the native engine has none, and both
        # engines must behave the same.
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            element, _ = element_type_of_numpy(src.dtype)
            if negate != Negate.NONE:
                flipped = np.empty(src.shape, src.dtype.newbyteorder("="))
                np.copyto(flipped, src)
                negate_in_place(flipped, negate)
                src = flipped
            if dst.dtype.kind == "b" and element.name == "complex32":
                # ml_dtypes 0.6 casts complex32 -> bool through the real part truncated to an
                # integer (0.5+0j and 1j give False); torchnp keeps NumPy's complex rule (True
                # unless both parts are ±0), as complex64 and torch's .to(torch.bool) do.
                halves = np.bitwise_and(src.view(np.uint32), 0x7FFF7FFF)  # drop both signs
                np.not_equal(halves, 0, out=dst)
                return
            np.copyto(dst, src, casting="unsafe")
