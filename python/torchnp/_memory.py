"""Views and allocations: seeing tensor memory as NumPy arrays and NumPy memory as tensors,
without moving a byte. No policy here (callers decide whether sharing is allowed)."""

from __future__ import annotations

import ctypes
from collections.abc import Sequence

import numpy as np
import torch

from torchnp import _originals, _pool
from torchnp._dtypes import (
    carrier_numpy,
    carrier_torch,
    element_type_of_numpy,
    element_type_of_torch,
)


def storage_holds(t: torch.Tensor) -> bool:
    """Whether every byte a CPU strided tensor addresses lies inside its storage as it is now.

    torch checks that only when a tensor is made: a storage resized or freed afterwards (FSDP
    frees parameters' storage with ``resize_(0)``) leaves older tensors over freed memory, and a
    functionalize wrapper's storage has no data of its own (its ``data_ptr()`` raises). The
    native fast path applies the same rule (fast_path.cpp, inside_storage).
    """
    if t.numel() == 0:
        return True  # no byte is read
    try:
        storage = t.untyped_storage()
        first, nbytes, data = storage.data_ptr(), storage.nbytes(), t.data_ptr()
    except RuntimeError:  # no data of its own (a functionalize wrapper, an invalid storage)
        return False
    reach = t.element_size() * (
        1 + sum((n - 1) * s for n, s in zip(t.shape, t.stride(), strict=True))
    )
    offset = data - first
    return offset >= 0 and offset + reach <= nbytes


def check_storage(t: torch.Tensor) -> None:
    """ValueError unless storage_holds(t): never a view of freed memory, never a read of it."""
    if not storage_holds(t):
        try:
            holds = (
                f"now holds {t.untyped_storage().nbytes()} bytes, fewer than the tensor addresses"
            )
        except RuntimeError:
            holds = "has no data of its own"
        raise ValueError(
            f"torchnp cannot read this tensor: its storage {holds} (the storage was resized or "
            "freed after the tensor was made, "
            "as FSDP does with untyped_storage().resize_(0)); read it while its storage is "
            "allocated (e.g. inside FSDP's summon_full_params), or clone it before the resize"
        )


def numpy_view_of_tensor(t: torch.Tensor) -> np.ndarray:
    """The exact NumPy view of a CPU strided tensor's memory (its own element type, its strides).

    The tensor must have no conjugate or negative bit. The view keeps the tensor alive.
    ValueError when its storage no longer holds every byte it addresses (check_storage).
    """
    check_storage(t)
    if t.requires_grad:
        t = t.detach()
    carrier = carrier_torch(t.dtype)
    if carrier is None:
        return _originals.tensor_numpy(t)
    return _originals.tensor_numpy(t.view(carrier)).view(element_type_of_torch(t.dtype).numpy)


def tensor_of_numpy_view(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A tensor sharing a writable, native-order, itemsize-strided, non-negative-strided array.

    The tensor keeps the array alive and makes it non-resizable (torch.from_numpy's contract).
    """
    carrier = carrier_numpy(a.dtype)
    if carrier is None:
        return _originals.from_numpy(a)
    return _originals.from_numpy(a.view(carrier)).view(dtype)


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


def normalised_strides(a: np.ndarray) -> tuple[int, ...]:
    """The array's strides with every stride that never addresses memory made harmless.

    The stride of a length-1 dimension (or of any dimension of an empty array) may be anything,
    e.g. negative after ``[::-1]``; such a stride is replaced by the C-contiguous value so that
    it never stops torch from sharing, and every stride that is already fine is kept.
    """
    if a.size and 1 not in a.shape:
        return a.strides  # no dead dimension: the common case, answered without a loop
    itemsize = a.dtype.itemsize
    strides = list(a.strides)
    contiguous = itemsize
    for d in reversed(range(a.ndim)):
        dead = a.shape[d] == 1 or a.size == 0
        if dead and (strides[d] < 0 or strides[d] % itemsize):
            strides[d] = contiguous
        contiguous *= max(a.shape[d], 1)
    return tuple(strides)


def aligned_for_torch(a: np.ndarray) -> bool:
    """Whether the data is aligned to its itemsize, as torch's element types need.

    To the itemsize, not NumPy's dtype.alignment: torch's complex types are aligned to their
    full size (c10::complex is alignas(2 * sizeof(T))), NumPy's complex128 only to 8 bytes.
    """
    if a.size == 0 or (a.flags.aligned and a.dtype.alignment >= a.dtype.itemsize):
        return True  # NumPy's own flag answers it without the (slow) address lookup
    return a.__array_interface__["data"][0] % a.dtype.itemsize == 0


def torch_can_view(a: np.ndarray, writable: bool = True) -> bool:
    """Whether a tensor can view the array as it is: a supported element type in native byte
    order, aligned, and strides torch can hold (non-negative multiples of the itemsize, after
    normalised_strides); writable too unless `writable` is False."""
    try:
        element, swapped = element_type_of_numpy(a.dtype)
    except TypeError:
        return False
    if swapped or element.torch is None or (writable and not a.flags.writeable):
        return False
    if not aligned_for_torch(a):
        return False
    itemsize = a.dtype.itemsize
    return all(s >= 0 and s % itemsize == 0 for s in normalised_strides(a))


def tensor_view(a: np.ndarray, dtype: torch.dtype) -> torch.Tensor:
    """A tensor of `dtype` over the array's memory, for an array torch_can_view accepts
    (read-only memory included: tensor_of_readonly_memory; the caller decides it may)."""
    strides = normalised_strides(a)
    if strides != a.strides:
        # as_strided goes through __array_interface__, which cannot spell ml_dtypes types.
        carrier = carrier_numpy(a.dtype)
        raw = a if carrier is None else a.view(carrier)
        raw = np.lib.stride_tricks.as_strided(raw, strides=strides, writeable=a.flags.writeable)
        a = raw if carrier is None else raw.view(a.dtype)
    if not a.flags.writeable:
        return tensor_of_readonly_memory(a, dtype)
    return tensor_of_numpy_view(a, dtype)


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


def empty_in_order(
    shape: Sequence[int], strides: Sequence[int] | None, dtype: np.dtype, order: str
) -> np.ndarray:
    """A fresh uninitialised array of `shape` in `order`, that shares no memory.

    order 'K' lays the dims out in the memory order of `strides` (memory_order_permutation, so a
    transposed source gives an F-ordered result; needed only for 'K'); 'C'/'F' as in NumPy ('A'
    is resolved by the caller).
    """
    if order == "C":
        return empty_in_memory_order(shape, None, dtype)
    if order == "F":
        pooled = _pooled(shape, list(reversed(range(len(shape)))), dtype)
        return np.empty(shape, dtype=dtype, order="F") if pooled is None else pooled
    return empty_in_memory_order(shape, strides, dtype)


def empty_in_memory_order(
    shape: Sequence[int], strides: Sequence[int] | None, dtype: np.dtype
) -> np.ndarray:
    """A fresh uninitialised array whose dims are laid out in the memory order of `strides`
    (C order when None).

    Large ones (>= 4 MiB) come from the recycling pool (_pool: warm, huge-page memory, not
    owned by the array); smaller ones from NumPy's allocator and own their data.
    """
    if strides is None or _descending(shape, strides):
        pooled = _pool.active().empty(tuple(shape), dtype)  # the common case, without sorting
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
    base = _pool.active().empty(tuple(shape[d] for d in perm), dtype)
    if base is None or perm == sorted(perm):
        return base
    return base.transpose(np.argsort(perm).tolist())


def empty_tensor_with_order(
    shape: Sequence[int],
    dtype: torch.dtype,
    like_strides: Sequence[int],
    *,
    device: torch.device | None = None,
    pin_memory: bool = False,
) -> torch.Tensor:
    """A fresh tensor whose dims are laid out in the memory order of `like_strides`."""
    perm = memory_order_permutation(shape, like_strides)
    base = torch.empty([shape[d] for d in perm], dtype=dtype, device=device, pin_memory=pin_memory)
    return base.permute(np.argsort(perm).tolist())
