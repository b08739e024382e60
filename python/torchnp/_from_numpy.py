"""torchnp.from_numpy: the policy for ndarray (or anything array-like) -> tensor."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from torchnp import _policy
from torchnp._dtypes import (
    DTypeLike,
    carrier_numpy,
    element_type_of_numpy,
    parse_dtype,
    torch_for_numpy,
)
from torchnp._memory import (
    empty_tensor_with_order,
    empty_with_order,
    numpy_view_of_tensor,
    tensor_of_numpy_view,
    tensor_of_readonly_memory,
)

# Native-order dtypes torch.from_numpy maps to the torch dtype torchnp would choose, and whose
# NumPy alignment (flags.aligned) is their itemsize, as torch needs (complex is not: see _aligned).
_FROM_NUMPY_NATIVE = frozenset(
    np.dtype(t)
    for t in (
        *(np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32),
        *(np.uint64, np.float16, np.float32, np.float64),
    )
)


def _as_array(obj: Any) -> np.ndarray:
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, torch.Tensor):
        raise TypeError("from_numpy expects an array, got a torch.Tensor; it already is a tensor")
    try:
        return np.asarray(obj)
    except Exception as exc:
        raise TypeError(f"from_numpy cannot read {type(obj).__name__} as an array: {exc}") from exc


def _normalised_strides(a: np.ndarray) -> tuple[int, ...]:
    # The stride of a length-1 dimension (or of any dimension of an empty array) never addresses
    # memory, so it may be anything, e.g. negative after `[::-1]`; replace such a stride by the
    # C-contiguous value so it never forces a copy, and keep every stride that is already fine.
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


def _copy_reasons(
    a: np.ndarray, target: torch.dtype, device: torch.device | None, pin_memory: bool
) -> list[str]:
    reasons = []
    own, swapped = element_type_of_numpy(a.dtype)
    if swapped:
        reasons.append(f"byte order {a.dtype.str} is not native")
    if own.torch != target:
        reasons.append(f"dtype {own.name} → {target} needs a cast")
    itemsize = a.dtype.itemsize
    strides = _normalised_strides(a)
    if any(s < 0 for s in strides):
        reasons.append("negative strides")
    if any(s % itemsize for s in strides):
        reasons.append(f"strides {a.strides} are not multiples of the itemsize {itemsize}")
    if not _aligned(a):
        reasons.append("data is not aligned to its itemsize")
    if device is not None and device.type != "cpu":
        reasons.append(f"device {device} is not the CPU")
    if pin_memory:
        reasons.append("pin_memory=True needs page-locked memory")
    return reasons


def _aligned(a: np.ndarray) -> bool:
    # To the itemsize, not NumPy's dtype.alignment: torch's complex types are aligned to their
    # full size (c10::complex is alignas(2 * sizeof(T))), NumPy's complex128 only to 8 bytes.
    if a.size == 0 or (a.flags.aligned and a.dtype.alignment >= a.dtype.itemsize):
        return True  # NumPy's own flag answers it without the (slow) address lookup
    return a.__array_interface__["data"][0] % a.dtype.itemsize == 0


def _shareable_layout(a: np.ndarray) -> bool:
    """Native byte order, aligned, and strides torch can hold (the fast test; _copy_reasons
    says why not)."""
    if element_type_of_numpy(a.dtype)[1] or not _aligned(a):
        return False
    itemsize = a.dtype.itemsize
    return all(s >= 0 and s % itemsize == 0 for s in _normalised_strides(a))


def _share(a: np.ndarray, target: torch.dtype) -> torch.Tensor:
    strides = _normalised_strides(a)
    if strides != a.strides:
        # as_strided goes through __array_interface__, which cannot spell ml_dtypes types.
        carrier = carrier_numpy(a.dtype)
        raw = a if carrier is None else a.view(carrier)
        raw = np.lib.stride_tricks.as_strided(raw, strides=strides, writeable=a.flags.writeable)
        a = raw if carrier is None else raw.view(a.dtype)
    if not a.flags.writeable:
        return tensor_of_readonly_memory(a, target)
    return tensor_of_numpy_view(a, target)


def from_numpy(
    array: Any,
    dtype: DTypeLike | None = None,
    *,
    device: str | torch.device | None = None,
    copy: bool | None = None,
    pin_memory: bool = False,
    share_readonly: bool = False,
) -> torch.Tensor:
    """Convert an array (or anything ``numpy.asarray`` accepts) to a tensor, zero-copy when
    possible.

    Shares memory when torch can hold the array as it is (native byte order, supported dtype,
    aligned, non-negative strides that are multiples of the itemsize); otherwise copies in one
    fused pass (negative strides, byte swap and dtype cast together, no NumPy temporary).
    Read-only arrays are copied unless ``share_readonly=True``.

    Parameters
    ----------
    array : array_like
        ndarray (memmaps and subclasses too), NumPy scalar, or any object ``numpy.asarray``
        accepts. ml_dtypes bfloat16/float8/complex32 arrays map to the matching torch dtype.
    dtype : data-type or torch.dtype, optional
        Element type of the result; the cast equals NumPy's ``astype`` bit for bit.
    device : str or torch.device, optional
        Device of the result (default: CPU).
    copy : bool, optional
        None (default): share when possible. True: always copy. False: never copy; raise
        ValueError listing every reason a copy is needed.
    pin_memory : bool, optional
        Return a CPU tensor in page-locked memory (needs CUDA).
    share_readonly : bool, optional
        Share a read-only array instead of copying it (useful for read-only memory maps). The
        tensor is then writable in torch's eyes; writing to it is undefined behaviour (it may
        crash the process for a read-only mapping). Off by default.

    Returns
    -------
    torch.Tensor
        A tensor sharing the array's memory (keeping the array alive and non-resizable), or a
        fresh tensor.

    Examples
    --------
    >>> import numpy as np, torch, torchnp
    >>> a = np.arange(6, dtype=">i4")[::-1]
    >>> torchnp.from_numpy(a, dtype=torch.float32)
    tensor([5., 4., 3., 2., 1., 0.])
    """
    if (
        dtype is None
        and device is None
        and copy is None
        and not pin_memory
        and type(array) is np.ndarray
        and array.dtype in _FROM_NUMPY_NATIVE
    ):
        flags = array.flags
        if flags.writeable and flags.aligned and (flags.c_contiguous or flags.f_contiguous):
            # The common call: a writable, aligned, contiguous native array, which
            # torch.from_numpy holds as it is (every check below would only confirm it).
            # NumPy's contiguity ignores the strides of length-1 dims and of empty arrays,
            # which torch still refuses when odd or negative: those take the general path.
            try:
                return torch.from_numpy(array)
            except ValueError:
                pass
    copy = _policy.check_copy(copy)
    a = _as_array(array)
    own, _ = element_type_of_numpy(a.dtype)  # raises TypeError for unsupported element types
    # A tensor is always in native byte order, so dtype=">f4" means float32 (the values).
    target_np = own.numpy if dtype is None else parse_dtype(dtype).newbyteorder("=")
    target = torch_for_numpy(target_np)
    _policy.check_cast(own.numpy, target_np)
    target_device = torch.device(device) if device is not None else None
    if target_device is not None and target_device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={target_device}: no CUDA device is available")
    if pin_memory:
        if target_device is not None and target_device.type != "cpu":
            raise ValueError(
                "pin_memory=True gives a CPU tensor; it cannot be combined with "
                f"device={target_device}"
            )
        if not torch.cuda.is_available():
            raise RuntimeError("pin_memory=True needs a CUDA device, and none is available")

    readonly = not a.flags.writeable
    on_cpu = target_device is None or target_device.type == "cpu"
    layout_ok = _shareable_layout(a) and own.torch == target
    may_share = not readonly or share_readonly
    if layout_ok and on_cpu and may_share and not pin_memory and copy is not True:
        return _share(a, target)
    if copy is False:
        reasons = _copy_reasons(a, target, target_device, pin_memory)
        remedy = "Pass copy=None to allow a copy."
        if readonly and not share_readonly:
            reasons.append("the array is read-only")
            remedy += (
                " To share read-only memory anyway, pass share_readonly=True (writing "
                "through the tensor is then undefined), or copy it with np.array(a)."
            )
        raise _policy.copy_refusal("this array", reasons, remedy)

    _policy.warn_if_discarding_imaginary(a.dtype, target_np)
    to_device = not on_cpu
    if to_device and layout_ok and not pin_memory:
        # Only the device differs: torch's .to() reads the shared memory once (read-only memory
        # included, it is only read) instead of a host copy followed by a transfer.
        return _share(a, target).to(target_device)
    if pin_memory:
        result = empty_tensor_with_order(a.shape, target, a.strides, pin_memory=True)
        dst = numpy_view_of_tensor(result)
    else:
        # Host memory from NumPy's allocator or, when large, torchnp's recycled huge-page pool
        # (torch's allocator gives fresh 4 KiB pages: 2-5x slower to write here). The tensor
        # shares the array (like torch.from_numpy's do), so its storage cannot be resized.
        dst = empty_with_order(a, target_np, "K")
        result = tensor_of_numpy_view(dst, target)
    _policy.copy_between(dst, a, may_overlap=False)
    if to_device:
        result = result.to(target_device)
    return result
