"""Views and allocations: seeing tensor memory as NumPy arrays and NumPy memory as tensors,
without moving a byte. No policy here (callers decide whether sharing is allowed)."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np
import torch

from torchnp import _pool
from torchnp._dtypes import carrier_numpy, carrier_torch, element_type_of_torch


def numpy_view_of_tensor(t: torch.Tensor) -> np.ndarray:
    """The exact NumPy view of a CPU strided tensor's memory (its own element type, its strides).

    The tensor must have no conjugate or negative bit. The view keeps the tensor alive.
    """
    if t.requires_grad:
        t = t.detach()
    carrier = carrier_torch(t.dtype)
    if carrier is None:
        return t.numpy()
    return t.view(carrier).numpy().view(element_type_of_torch(t.dtype).numpy)


def tensor_of_numpy_view(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A tensor sharing a writable, native-order, itemsize-strided, non-negative-strided array.

    The tensor keeps the array alive and makes it non-resizable (torch.from_numpy's contract).
    """
    carrier = carrier_numpy(a.dtype)
    if carrier is None:
        return torch.from_numpy(a)
    return torch.from_numpy(a.view(carrier)).view(dtype)


def tensor_of_readonly_memory(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A tensor over a read-only array's memory, for callers that opted in to sharing it.

    torch.from_numpy warns (once per process) and torch.frombuffer refuses read-only buffers;
    a ctypes window over the same bytes is writable from torch's point of view, which is the
    risk the caller accepted. The window holds the array and a buffer export of it, so the array
    stays alive and cannot be resized while the tensor exists.
    """
    itemsize = a.dtype.itemsize
    if a.size == 0:
        return torch.empty(a.shape, dtype=dtype)
    low = sum(s * (n - 1) for s, n in zip(a.strides, a.shape, strict=True) if s < 0)
    high = sum(s * (n - 1) for s, n in zip(a.strides, a.shape, strict=True) if s > 0) + itemsize
    start = a.__array_interface__["data"][0] + low
    window = (ctypes.c_char * (high - low)).from_address(start)
    window._torchnp_owner = (a, memoryview(_bytes_of(a)))
    flat = torch.frombuffer(window, dtype=dtype)
    strides = [s // itemsize for s in a.strides]
    return flat.as_strided(a.shape, strides, -low // itemsize)


def _bytes_of(a: np.ndarray) -> np.ndarray:
    # memoryview() rejects ml_dtypes element types; a same-size integer view exports the same
    # buffer and blocks resizing just as well.
    carrier = carrier_numpy(a.dtype)
    return a if carrier is None else a.view(carrier)


def memory_order_permutation(shape: Sequence[int], strides: Sequence[int]) -> list[int]:
    """Dimension order from outermost to innermost by |stride| (NumPy's order='K'), stable.

    Unlike NumPy, broadcast dims (stride 0) go outermost: they have no memory order, and there
    a copy of ``broadcast_to(row, (n, m))`` stays a streaming write with a C-ordered result
    instead of a transposed one.
    """
    dims = range(len(shape))

    def rank(d: int) -> float:
        if shape[d] <= 1:
            return 0.0
        return -abs(strides[d]) if strides[d] else -float("inf")

    return sorted(dims, key=lambda d: (rank(d), d))


def empty_with_order(like: np.ndarray, dtype: np.dtype, order: str) -> np.ndarray:
    """A fresh uninitialised array shaped like `like`, in `order`, that shares no memory.

    order 'K' lays the dims out in the memory order of `like` (memory_order_permutation, so a
    transposed source gives an F-ordered result); 'C'/'F' as in NumPy.
    """
    if order == "C":
        return empty_in_memory_order(like.shape, None, dtype)
    if order == "F":
        pooled = _pooled(like.shape, list(reversed(range(like.ndim))), dtype)
        return np.empty(like.shape, dtype=dtype, order="F") if pooled is None else pooled
    return empty_in_memory_order(like.shape, like.strides, dtype)


def empty_in_memory_order(
    shape: Sequence[int], strides: Sequence[int] | None, dtype: np.dtype
) -> np.ndarray:
    """A fresh uninitialised array whose dims are laid out in the memory order of `strides`
    (C order when None).

    Large ones (>= 4 MiB) come from the recycling pool (_pool: warm, huge-page memory, not
    owned by the array); smaller ones from NumPy's allocator and own their data.
    """
    if strides is None or _descending(shape, strides):
        pooled = _pool.POOL.empty(tuple(shape), dtype)  # the common case, without the sorting
        return np.empty(shape, dtype=dtype) if pooled is None else pooled
    perm = memory_order_permutation(shape, strides)
    pooled = _pooled(shape, perm, dtype)
    if pooled is not None:
        return pooled
    if perm == sorted(perm):
        return np.empty(shape, dtype=dtype)
    # np.empty_like reads nothing but the prototype's shape and stride order, so a prototype
    # over one byte with strides ranked like `perm` yields an owning array in that order.
    ranks = [0] * len(shape)
    for position, d in enumerate(perm):
        ranks[d] = len(shape) - position
    proto = np.lib.stride_tricks.as_strided(np.empty(1, np.uint8), shape, ranks)
    return np.empty_like(proto, dtype=dtype, order="K", subok=False)


def _descending(shape: Sequence[int], strides: Sequence[int]) -> bool:
    """Whether memory_order_permutation would keep the dims in order: no size-1 or broadcast
    dim, |strides| never growing (so C order is the answer, without sorting)."""
    previous = None
    for n, s in zip(shape, strides, strict=True):  # (a plain loop: this runs on every copy)
        step = abs(s)
        if n <= 1 or step == 0 or (previous is not None and step > previous):
            return False
        previous = step
    return True


def _pooled(shape: Sequence[int], perm: list[int], dtype: np.dtype) -> np.ndarray | None:
    """A pool array with dims laid out outermost-first as `perm`, or None (not pooled)."""
    base = _pool.POOL.empty(tuple(shape[d] for d in perm), dtype)
    if base is None or perm == sorted(perm):
        return base
    return base.transpose(np.argsort(perm).tolist())


def empty_tensor_with_order(
    shape: Sequence[int], dtype: torch.dtype, like_strides: Sequence[int], pin_memory: bool = False
) -> torch.Tensor:
    """A fresh tensor whose dims are laid out in the memory order of `like_strides`."""
    perm = memory_order_permutation(shape, like_strides)
    base = torch.empty([shape[d] for d in perm], dtype=dtype, pin_memory=pin_memory)
    return base.permute(np.argsort(perm).tolist())
