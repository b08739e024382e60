"""The reference every conversion is checked against: NumPy's (and ml_dtypes') own casts on the
exact NumPy view of the data, and a bit comparison that treats NaNs as equal only in floating
targets (NaN payloads are where NumPy itself is platform-defined).

Independent of torchnp on purpose: its dtype table and views are rebuilt here from torch, NumPy
and ml_dtypes alone, so a bug in torchnp's mapping cannot hide in the expected values.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import ml_dtypes
import numpy as np
import torch

# torch dtype -> the NumPy/ml_dtypes type holding the same bits.
TORCH_TO_NUMPY: dict[torch.dtype, np.dtype] = {
    torch.bool: np.dtype(np.bool_),
    torch.int8: np.dtype(np.int8),
    torch.int16: np.dtype(np.int16),
    torch.int32: np.dtype(np.int32),
    torch.int64: np.dtype(np.int64),
    torch.uint8: np.dtype(np.uint8),
    torch.uint16: np.dtype(np.uint16),
    torch.uint32: np.dtype(np.uint32),
    torch.uint64: np.dtype(np.uint64),
    torch.float16: np.dtype(np.float16),
    torch.bfloat16: np.dtype(ml_dtypes.bfloat16),
    torch.float32: np.dtype(np.float32),
    torch.float64: np.dtype(np.float64),
    torch.complex32: np.dtype(ml_dtypes.complex32),
    torch.complex64: np.dtype(np.complex64),
    torch.complex128: np.dtype(np.complex128),
    torch.float8_e4m3fn: np.dtype(ml_dtypes.float8_e4m3fn),
    torch.float8_e5m2: np.dtype(ml_dtypes.float8_e5m2),
    torch.float8_e4m3fnuz: np.dtype(ml_dtypes.float8_e4m3fnuz),
    torch.float8_e5m2fnuz: np.dtype(ml_dtypes.float8_e5m2fnuz),
    torch.float8_e8m0fnu: np.dtype(ml_dtypes.float8_e8m0fnu),
}
NUMPY_TO_TORCH: dict[np.dtype, torch.dtype] = {v: k for k, v in TORCH_TO_NUMPY.items()}
TORCH_DTYPES: tuple[torch.dtype, ...] = tuple(TORCH_TO_NUMPY)
NUMPY_DTYPES: tuple[np.dtype, ...] = tuple(TORCH_TO_NUMPY.values())

# The element type of each floating type's components (complex: real and imaginary parts).
_COMPONENT: dict[np.dtype, np.dtype] = {
    np.dtype(np.complex64): np.dtype(np.float32),
    np.dtype(np.complex128): np.dtype(np.float64),
    np.dtype(ml_dtypes.complex32): np.dtype(np.float16),
}
FLOATING: frozenset[np.dtype] = frozenset(
    [*_COMPONENT]
    + [np.dtype(t) for t in (np.float16, np.float32, np.float64)]
    + [
        np.dtype(t)
        for t in (
            ml_dtypes.bfloat16,
            ml_dtypes.float8_e4m3fn,
            ml_dtypes.float8_e5m2,
            ml_dtypes.float8_e4m3fnuz,
            ml_dtypes.float8_e5m2fnuz,
            ml_dtypes.float8_e8m0fnu,
        )
    ]
)
COMPLEX: frozenset[np.dtype] = frozenset(_COMPONENT)
_UINT = {1: np.uint8, 2: np.uint16, 4: np.uint32, 8: np.uint64}


def native(dt: np.dtype) -> np.dtype:
    return dt.newbyteorder("=") if not dt.isnative else dt


def is_floating(dt: np.dtype) -> bool:
    return native(dt) in FLOATING


def is_complex(dt: np.dtype) -> bool:
    return native(dt) in COMPLEX


def is_integer(dt: np.dtype) -> bool:
    return native(dt).kind in "iu"


_COMPLEX32 = np.dtype(ml_dtypes.complex32)


def can_cast(src: np.dtype, dst: np.dtype) -> bool:
    """Whether NumPy/ml_dtypes define this cast at all (ml_dtypes 0.6 has none between
    float8_e8m0fnu and the other float8 types or complex32)."""
    return bool(np.can_cast(src, dst, casting="unsafe"))


def refusal(src: np.dtype, dst: np.dtype) -> str | None:
    """The TypeError message (a regex) torchnp must raise for this cast, or None if it must
    convert: ml_dtypes 0.6 has no cast between float8_e8m0fnu and the other float8 types or
    complex32, and byte-swapped complex32 has no agreed layout (ml_dtypes swaps the whole
    4 bytes, NumPy's complex types each part), so torchnp refuses it."""
    if (src.newbyteorder("=") == _COMPLEX32 and not src.isnative) or (
        dst.newbyteorder("=") == _COMPLEX32 and not dst.isnative
    ):
        return "byte-swapped complex32"
    if not can_cast(src, dst):
        return "no cast"
    return None


def exact_view(t: torch.Tensor) -> np.ndarray:
    """The NumPy view of a CPU tensor's stored bits (its strides; conj/neg bits NOT applied)."""
    t = t.detach()
    if t.is_conj():
        t = t.conj()  # a view without the bit, over the same memory
    if t.is_neg():
        t = torch._neg_view(t)
    dt = TORCH_TO_NUMPY[t.dtype]
    carrier = {1: torch.uint8, 2: torch.int16, 4: torch.int32}.get(dt.itemsize)
    if dt.type.__module__.startswith("ml_dtypes"):
        return t.view(carrier).numpy().view(dt)
    return t.numpy()


def values(t: torch.Tensor) -> np.ndarray:
    """The tensor's values as a NumPy/ml_dtypes array (conj and neg bits applied)."""
    ref = exact_view(t).copy()
    if t.is_conj():
        ref = np.asarray(np.conj(ref))  # ufuncs return scalars for 0-d input
    if t.is_neg():
        ref = np.asarray(np.negative(ref))
    return ref


def negated(ref: np.ndarray, negate: int) -> np.ndarray:
    """The values with a sign-flip code applied (the core's Negate: 1 the real part, 2 the
    imaginary part, 3 both; a real type has only a real part, which 2 leaves alone), by NumPy's
    own ufuncs."""
    with np.errstate(all="ignore"):
        ref = native_copy(ref)
        if not is_complex(ref.dtype) and negate == 2:
            return ref
        if not is_complex(ref.dtype) or negate == 3:
            return np.asarray(np.negative(ref))
        if negate == 2:
            return np.asarray(np.conjugate(ref))
        return np.asarray(np.negative(np.conjugate(ref)))


def native_copy(a: np.ndarray) -> np.ndarray:
    """A copy in native byte order (a byte swap in NumPy: payloads and signs untouched)."""
    return a.astype(native(a.dtype))


def cast(ref: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """NumPy's unsafe cast, without its warnings (tests check torchnp's ComplexWarning apart).

    One deliberate exception: complex32 -> bool uses NumPy's complex rule (True unless both
    parts are ±0), as complex64 and torch do; ml_dtypes 0.6 truncates the real part to an
    integer instead (0.5+0j and 1j give False), which torchnp treats as an ml_dtypes bug.
    """
    dtype = np.dtype(dtype)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        if dtype.kind == "b" and ref.dtype == _COMPLEX32:
            return ref.astype(np.complex64).astype(dtype)
        return ref.astype(dtype)


def strided(
    buffer: np.ndarray, dtype: np.dtype, shape: Sequence[int], strides: Sequence[int], offset: int
) -> np.ndarray:
    """An array over `buffer`'s bytes (any offset, any strides) — the raw layouts NumPy allows."""
    return np.ndarray(tuple(shape), dtype=dtype, buffer=buffer, offset=offset, strides=strides)


def footprint(buffer: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Boolean mask over `buffer`'s bytes that elements of `a` (a view into it) cover."""
    mask = np.zeros(buffer.nbytes, dtype=bool)
    if a.size == 0:
        return mask
    start = a.__array_interface__["data"][0] - buffer.__array_interface__["data"][0]
    cover = np.ndarray(
        (*a.shape, a.dtype.itemsize),
        dtype=bool,
        buffer=mask,
        offset=start,
        strides=(*a.strides, 1),
    )
    cover[...] = True
    return mask


def restrict_for_integer_target(a: np.ndarray, limit: float = 2.0**31 - 2) -> None:
    """Replace, in place, values whose cast to an integer type NumPy leaves platform-defined:
    NaN, ±inf and anything at or beyond the int32 range (x86 wraps through int32/int64, ARM
    saturates). Complex values are cast through their real part, so only it is restricted."""
    if a.size == 0 or not is_floating(a.dtype):
        return
    wide = cast(a, np.dtype(np.complex128) if is_complex(a.dtype) else np.dtype(np.float64))
    real = wide.real
    bad = ~np.isfinite(real) | (np.abs(real) > limit)
    if bad.any():
        a[bad] = 0


def _components(a: np.ndarray) -> np.ndarray:
    """Flat array of the floating components (complex split into parts), native byte order."""
    dt = native(a.dtype)
    flat = np.ascontiguousarray(a).reshape(-1)
    comp = _COMPONENT.get(dt)
    if comp is not None:
        flat = cast(flat, np.dtype(np.complex64)) if comp == np.float16 else cast(flat, dt)
        parts = flat.view(np.float32 if comp == np.float16 else comp)
        return parts  # NaN-ness survives the exact widening of complex32 parts
    return cast(flat, dt)


def _bits(a: np.ndarray) -> np.ndarray:
    """Flat array of raw unsigned words, one per component (complex: two), as stored."""
    flat = np.ascontiguousarray(a).reshape(-1)
    comp = _COMPONENT.get(native(a.dtype))
    size = comp.itemsize if comp is not None else a.dtype.itemsize
    return flat.view(np.uint8).view(_UINT[size])


def _to_native(a: np.ndarray) -> np.ndarray:
    # A byte-order change is a pure byte swap in NumPy (NaN payloads and signs untouched).
    return a if a.dtype.isnative else a.astype(native(a.dtype))


def mismatches(actual: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """Flat indices of components whose bits differ (NaN vs NaN of the same sign counts as equal
    for floating dtypes)."""
    a_bits, e_bits = _bits(actual), _bits(expected)
    differ = a_bits != e_bits
    if is_floating(expected.dtype) and differ.any():
        both_nan = np.isnan(_components(actual)) & np.isnan(_components(expected))
        # Payloads may differ where NumPy itself is platform-defined, the sign may not (every
        # conversion here, F16C and ml_dtypes included, keeps it).
        a_native, e_native = _bits(_to_native(actual)), _bits(_to_native(expected))
        top = np.array(8 * a_native.dtype.itemsize - 1, dtype=a_native.dtype)
        same_sign = (a_native >> top) == (e_native >> top)
        differ &= ~(both_nan & same_sign)
    return np.flatnonzero(differ)


def assert_same_bits(actual: np.ndarray, expected: np.ndarray, context: str = "") -> None:
    """Assert equal shape, dtype (byte order included) and bits; NaN == NaN for floating types.

    The message lists the first mismatches with expected and actual bits in hex.
    """
    assert isinstance(actual, np.ndarray), f"{context}: got {type(actual).__name__}"
    assert actual.shape == expected.shape, f"{context}: shape {actual.shape} != {expected.shape}"
    assert actual.dtype == expected.dtype, f"{context}: dtype {actual.dtype} != {expected.dtype}"
    bad = mismatches(actual, expected)
    if bad.size == 0:
        return
    a_bits, e_bits = _bits(actual), _bits(expected)
    per = a_bits.size // max(actual.size, 1)
    width = a_bits.dtype.itemsize * 2
    lines = [
        f"  element {i // per}{'.imag' if per == 2 and i % 2 else ''}: "
        f"expected 0x{int(e_bits[i]):0{width}x}, got 0x{int(a_bits[i]):0{width}x}"
        for i in bad[:8]
    ]
    raise AssertionError(
        f"{context}: {bad.size} of {a_bits.size} components differ from the NumPy oracle "
        f"({expected.dtype}):\n" + "\n".join(lines)
    )


def assert_tensor_bits(actual: torch.Tensor, expected: np.ndarray, context: str = "") -> None:
    """Like assert_same_bits, for a tensor result (its dtype must be the expected one's)."""
    want = NUMPY_TO_TORCH[native(expected.dtype)]
    assert actual.dtype == want, f"{context}: tensor dtype {actual.dtype} != {want}"
    assert tuple(actual.shape) == expected.shape, f"{context}: shape {tuple(actual.shape)}"
    assert_same_bits(exact_view(actual.cpu()), cast(expected, native(expected.dtype)), context)


def interesting_values(dt: np.dtype) -> np.ndarray:
    """Edge values of a type in that type: zeros, extremes, NaN/inf, subnormals, halfway cases."""
    dt = native(dt)
    if dt.kind == "b":
        return np.array([False, True])
    if dt.kind in "iu":
        info = np.iinfo(dt)
        picks = [0, 1, -1, 2, 127, -128, 128, 255, 256, 32767, -32768, 65535, 2**31 - 1]
        picks += [-(2**31), 2**32 - 1, 2**63 - 1, info.min, info.max, info.max - 1]
        return np.array([v for v in picks if info.min <= v <= info.max], dtype=dt)
    base = [0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 3.0, 127.5, 255.5, 300.7, -129.9, 65504.0]
    base += [65520.0, 1e-8, 6e-8, 1e-40, 3.4e38, 1e300, -1e300, np.inf, -np.inf, np.nan]
    base += [1 + 2.0**-8, 1 + 2.0**-9, 1 + 2.0**-11, 1 + 2.0**-24, 448.0, 464.0, 57344.0, 2.0**31]
    with np.errstate(all="ignore"):
        real = cast(np.array(base), dt if dt not in COMPLEX else _COMPONENT[dt])
    if dt in COMPLEX:
        parts = cast(real, np.dtype(np.float64))
        z = np.empty((parts.size, parts.size // 3 + 1), dtype=np.complex128)
        z.real, z.imag = parts[:, None], parts[None, ::-3]  # no arithmetic: inf stays inf
        return cast(z.reshape(-1), dt)
    return real
