"""torchnp.from_numpy: the policy for ndarray (or anything array-like) -> tensor."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from torchnp import _device, _engines, _fast, _policy, _transfer
from torchnp._dtypes import (
    DTypeLike,
    ElementType,
    element_type_of_numpy,
    parse_dtype,
    torch_for_numpy,
)
from torchnp._memory import (
    aligned_for_torch,
    empty_in_order,
    empty_tensor_with_order,
    normalised_strides,
    numpy_view_of_tensor,
    tensor_of_numpy_view,
    tensor_view,
    torch_can_view,
)

# The zero-copy check's pieces, bound once (module globals are the cheapest lookups): the native
# check when the binary loaded at import, and torch's own from_numpy (never a patched one).
_NDARRAY = np.ndarray
_SHAREABLE = _fast.shareable
_TORCH_FROM_NUMPY = _fast._torch_from_numpy


def _as_array(obj: Any) -> np.ndarray:
    if isinstance(obj, np.ndarray):
        return obj
    if isinstance(obj, torch.Tensor):
        raise TypeError("from_numpy expects an array, got a torch.Tensor; it already is a tensor")
    try:
        return np.asarray(obj)
    except Exception as exc:
        raise TypeError(f"from_numpy cannot read {type(obj).__name__} as an array: {exc}") from exc


def _copy_reasons(
    a: np.ndarray,
    own: ElementType,
    swapped: bool,
    target: torch.dtype,
    device: torch.device | None,
    pin_memory: bool,
) -> list[str]:
    """Why the array cannot be shared as it is, in words, for copy=False's error."""
    reasons = []
    if swapped:
        reasons.append(f"byte order {a.dtype.str} is not native")
    if own.torch != target:
        reasons.append(f"dtype {own.name} → {target} needs a cast")
    itemsize = a.dtype.itemsize
    strides = normalised_strides(a)
    if any(s < 0 for s in strides):
        reasons.append("negative strides")
    if any(s % itemsize for s in strides):
        reasons.append(f"strides {a.strides} are not multiples of the itemsize {itemsize}")
    if not aligned_for_torch(a):
        reasons.append("data is not aligned to its itemsize")
    if device is not None and device.type != "cpu":
        reasons.append(f"device {device} is not the CPU")
    if pin_memory:
        reasons.append("pin_memory=True needs page-locked memory")
    return reasons


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
    if type(array) is _NDARRAY and device is None and not (pin_memory or share_readonly):
        # The commonest call: an array torch.from_numpy holds as it is (writable, aligned,
        # native, strides torch can hold). Else a signature the policy has decided before: its
        # decision, replayed (_fast). Anything else goes to the policy below.
        if dtype is None and copy is None and _SHAREABLE(array):
            return _TORCH_FROM_NUMPY(array)
        if type(copy) in _fast.COPY_TYPES:  # keyed by copy as passed, and 1 == True
            result = _fast.from_numpy(array, dtype, copy)
            if result is not None:
                return result
    return convert(array, dtype, device, copy, pin_memory, share_readonly, None)


def convert(
    array: Any,
    dtype: DTypeLike | None,
    device: str | torch.device | None,
    copy: bool | None,
    pin_memory: bool,
    share_readonly: bool,
    deferred: list | None,
) -> torch.Tensor:
    """from_numpy's policy (after its fast path). With `deferred` (a list), a host copy is not
    run but appended to it as ``(dst, src, 0)``, for the caller to run with the others in one
    job (Engine.copy_many), and a device transfer as a callable; the result is then written
    only once those have run."""
    signature = (dtype, copy)  # as passed: the fast path's memo key
    copy = _policy.check_copy(copy)
    a = _as_array(array)
    own, swapped = element_type_of_numpy(a.dtype)  # raises TypeError for unsupported types
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
    # device="cpu" is the simulated device while _device.simulated() is active (tests).
    on_cpu = on_cpu and not (_device.SIMULATING and target_device is not None)
    viewable = own.torch == target and torch_can_view(a, writable=False)
    if (
        copy is not True
        and viewable
        and on_cpu
        and not pin_memory
        and (share_readonly or not readonly)
    ):
        return tensor_view(a, target)
    if copy is False:
        reasons = _copy_reasons(a, own, swapped, target, target_device, pin_memory)
        remedy = "Pass copy=None to allow a copy."
        if readonly and not share_readonly:
            reasons.append("the array is read-only")
            remedy += (
                " To share read-only memory anyway, pass share_readonly=True (writing "
                "through the tensor is then undefined), or copy it with np.array(a)."
            )
        raise _policy.copy_refusal("this array", reasons, remedy)

    _policy.warn_if_discarding_imaginary(a.dtype, target_np)
    engine = _engines.active()
    if (
        type(array) is np.ndarray
        and on_cpu
        and not (pin_memory or share_readonly)
        and not _policy.discards_imaginary(a.dtype, target_np)
    ):
        # Nothing here needs judgment a replay cannot make: the fast path may replay it.
        share = copy is None and own.torch == target and not swapped
        key = _fast.array_key(array.dtype, *signature)
        _fast.remember_from_numpy(engine, key, own, swapped, target_np, target, share)
    if not on_cpu:
        result = empty_tensor_with_order(a.shape, target, a.strides, device=target_device)
        upload = _transfer.upload_call(engine, result, a)
        if deferred is None:
            upload()
        else:  # a transfer for the caller to run after every leaf has been decided
            deferred.append(upload)
        return result
    if pin_memory:
        result = empty_tensor_with_order(a.shape, target, a.strides, pin_memory=True)
        dst = numpy_view_of_tensor(result)
    else:
        # Host memory from NumPy's allocator or, when large, torchnp's recycled huge-page pool
        # (torch's allocator gives fresh 4 KiB pages: 2-5x slower to write here). The tensor
        # shares the array (like torch.from_numpy's do), so its storage cannot be resized.
        dst = empty_in_order(a.shape, a.strides, target_np, "K")
        result = tensor_of_numpy_view(dst, target)
    if deferred is not None and dst.size:
        deferred.append((dst, a, 0))
    else:
        engine.copy(dst, a)
    return result
