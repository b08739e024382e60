"""Element types: the torch <-> NumPy mapping, dtype-like parsing and the core's dtype codes.

The types come from the one table (csrc/core/element_types.def, read by _element_table). NumPy
has no bfloat16, float8 or complex32; ml_dtypes provides them as NumPy dtypes, so every element
type torchnp handles has exactly one NumPy spelling.
"""

from __future__ import annotations

import contextlib
import importlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from torchnp._element_table import read_table

DTypeLike = Any  # anything np.dtype() accepts, or a torch.dtype


@dataclass(frozen=True)
class ElementType:
    """One element type torchnp can read and write (a row of csrc/core/element_types.def)."""

    name: str  # NumPy / ml_dtypes name
    numpy: np.dtype  # native byte order
    torch: torch.dtype | None  # None where this torch has no such type
    code: int  # the core's ScalarType code
    components: int  # 2 for complex types: byte swaps and sign flips act per component


def _numpy_type(spelling: str) -> Any:
    module, attr = spelling.rsplit(".", 1)
    return getattr(importlib.import_module(module), attr)


_ELEMENT_TYPES: tuple[ElementType, ...] = tuple(
    ElementType(
        row.name,
        np.dtype(_numpy_type(row.numpy)),
        getattr(torch, row.torch, None),
        row.code,
        row.components,
    )
    for row in read_table()
)

_BY_NUMPY: dict[np.dtype, ElementType] = {e.numpy: e for e in _ELEMENT_TYPES}
_BY_TORCH: dict[torch.dtype, ElementType] = {e.torch: e for e in _ELEMENT_TYPES if e.torch}

# Bit-identical integer types of the same size, used to move ml_dtypes data through
# torch.from_numpy / Tensor.numpy(), which know nothing of ml_dtypes.
_CARRIER = {1: (np.uint8, torch.uint8), 2: (np.uint16, torch.uint16), 4: (np.uint32, torch.int32)}

# Hints for element types that no tensor can hold.
_UNSUPPORTED_HINTS = {
    "M": "view datetime64 data as int64 first (array.view('int64'))",
    "m": "view timedelta64 data as int64 first (array.view('int64'))",
    "O": "convert the objects to a numeric dtype first (e.g. np.asarray(x, dtype=float))",
    "U": "strings have no tensor type; encode them to numbers first",
    "S": "bytes have no tensor type; view them as uint8 (array.view(np.uint8))",
    "V": "structured/void data has no tensor type; select a numeric field or view as uint8",
}


def _unsupported_numpy(dt: np.dtype) -> TypeError:
    if dt.kind == "f" and dt.itemsize > 8:
        hint = "longdouble has no tensor type; cast to float64 first (array.astype(np.float64))"
    elif dt.kind == "c" and dt.itemsize > 16:
        hint = "clongdouble has no tensor type; cast to complex128 first"
    else:
        hint = _UNSUPPORTED_HINTS.get(dt.kind, "cast to a supported numeric dtype first")
    return TypeError(f"torchnp: dtype {dt} has no tensor equivalent: {hint}")


_CORE_CODES: dict[np.dtype, tuple[int, bool]] = {}


def core_code(dt: np.dtype) -> tuple[int, bool]:
    """(csrc/core ScalarType code, byte-swapped?) of a supported NumPy dtype; memoised, as it is
    on every copy's path."""
    try:
        return _CORE_CODES[dt]
    except KeyError:
        e, swapped = element_type_of_numpy(dt)
        _CORE_CODES[dt] = (e.code, swapped)
        return e.code, swapped


def element_type_of_numpy(dt: np.dtype) -> tuple[ElementType, bool]:
    """Return the element type of a NumPy dtype and whether its data is byte-swapped."""
    native = dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt
    e = _BY_NUMPY.get(native)
    if e is None:
        raise _unsupported_numpy(dt)
    if e.name == "complex32" and not dt.isnative:
        # No convention to follow: ml_dtypes swaps the 4 bytes as one unit (imaginary part
        # first), NumPy's complex types swap each part in place.
        raise TypeError(
            f"torchnp: byte-swapped complex32 ({dt.str}) is ambiguous (ml_dtypes swaps the whole "
            "4-byte value, NumPy's complex types each part); use native byte order"
        )
    # A one-byte element has no byte order, whatever NumPy's flag says ('>' on ml_dtypes float8).
    return e, not dt.isnative and dt.itemsize > 1


def element_type_of_torch(dt: torch.dtype) -> ElementType:
    """Return the element type of a torch dtype, or raise TypeError naming a way out."""
    e = _BY_TORCH.get(dt)
    if e is None:
        raise TypeError(
            f"torchnp: torch dtype {dt} has no NumPy equivalent; convert the tensor first "
            "(e.g. .view(torch.uint8) for packed/sub-byte types, .dequantize() for quantized)"
        )
    return e


_PARSED: dict[object, np.dtype] = {}


def parse_dtype(dtype: DTypeLike) -> np.dtype:
    """Turn a NumPy dtype-like or a torch.dtype into a NumPy dtype torchnp supports.

    Memoised by the argument (dtypes, type objects, strings: all hashable, all immutable):
    this runs on every call that passes dtype= or out=."""
    if isinstance(dtype, np.dtype) and dtype.metadata is not None:
        # Equal (and hashing equal) to the same dtype without metadata: not memoised, so
        # neither is mistaken for the other (h5py's enum dtypes carry metadata).
        return _parse_dtype(dtype)
    try:
        return _PARSED[dtype]
    except (KeyError, TypeError):  # TypeError: an unhashable dtype-like
        pass
    dt = _parse_dtype(dtype)
    with contextlib.suppress(TypeError):  # unhashable: not memoised
        _PARSED[dtype] = dt
    return dt


def _parse_dtype(dtype: DTypeLike) -> np.dtype:
    if isinstance(dtype, torch.dtype):
        return element_type_of_torch(dtype).numpy
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"torchnp: {dtype!r} is not a dtype ({exc})") from None
    element_type_of_numpy(dt)  # raises for unsupported types
    return dt


def default_numpy_dtype(e: ElementType) -> np.dtype:
    """The NumPy dtype a tensor of element type `e` converts to by default (bits unchanged,
    except complex32, which NumPy cannot compute with: it widens exactly to complex64)."""
    if e.name == "complex32":
        return np.dtype(np.complex64)
    return e.numpy


def torch_for_numpy(dt: np.dtype) -> torch.dtype:
    """The torch dtype holding NumPy dtype `dt` (native byte order assumed by the caller)."""
    e, _ = element_type_of_numpy(dt)
    if e.torch is None:
        raise TypeError(f"torchnp: dtype {dt} has no torch equivalent in torch {torch.__version__}")
    return e.torch


def carrier_numpy(dt: np.dtype) -> np.dtype | None:
    """A standard NumPy integer dtype of the same size for ml_dtypes types, else None."""
    if dt.type.__module__.startswith("ml_dtypes"):
        return np.dtype(_CARRIER[dt.itemsize][0])
    return None


def carrier_torch(dt: torch.dtype) -> torch.dtype | None:
    """A torch integer dtype of the same size that Tensor.numpy() accepts, or None if `dt`
    converts natively."""
    try:
        return _CARRIER_TORCH[dt]
    except KeyError:
        pass
    e = element_type_of_torch(dt)
    carrier = None
    if e.numpy.type.__module__.startswith("ml_dtypes"):
        carrier = _CARRIER[e.numpy.itemsize][1]
    _CARRIER_TORCH[dt] = carrier
    return carrier


_CARRIER_TORCH: dict[torch.dtype, torch.dtype | None] = {}


def is_complex(dt: np.dtype) -> bool:
    e = _BY_NUMPY.get(dt.newbyteorder("=") if dt.byteorder not in ("=", "|") else dt)
    return e is not None and e.components == 2
