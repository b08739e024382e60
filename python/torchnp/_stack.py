"""stack_from_numpy: same-shape arrays into one stacked tensor in one pass; collate: a drop-in for
DataLoader's default_collate that stacks ndarray leaves so, with no tensor per sample."""

from __future__ import annotations

import ctypes
import functools
import os
import re
import sys
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data._utils import collate as _torch_collate

from torchnp import _engines, _policy, _transfer
from torchnp._dtypes import (
    DTypeLike,
    element_type_of_numpy,
    element_type_of_torch,
    parse_dtype,
    torch_for_numpy,
)
from torchnp._memory import (
    check_storage,
    empty_in_order,
    numpy_view_of_tensor,
    tensor_of_numpy_view,
)


def _arrays_of(arrays: Sequence[Any]) -> list[np.ndarray]:
    if isinstance(arrays, (np.ndarray, torch.Tensor)):
        raise TypeError(
            "stack_from_numpy expects a sequence of arrays (e.g. a list); for one array that "
            "is already stacked use from_numpy"
        )
    out = []
    for i, a in enumerate(arrays):
        if isinstance(a, np.ndarray):
            out.append(a)
        elif isinstance(a, torch.Tensor):
            raise TypeError(f"stack_from_numpy: arrays[{i}] is a torch.Tensor; use torch.stack")
        else:
            try:
                out.append(np.asarray(a))
            except Exception as exc:
                raise TypeError(
                    f"stack_from_numpy cannot read arrays[{i}] ({type(a).__name__}) as an array: "
                    f"{exc}"
                ) from exc
    if not out:
        raise ValueError("stack_from_numpy needs at least one array to stack")
    return out


def _check_out(out: Any, shape: tuple[int, ...], target: torch.dtype | None) -> torch.Tensor:
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"out must be a torch.Tensor, got {type(out).__name__}")
    if out.device.type != "cpu" or out.layout is not torch.strided:
        raise ValueError(
            f"out must be a strided CPU tensor, got a {out.layout} tensor on {out.device}"
        )
    if tuple(out.shape) != shape:
        raise ValueError(f"out has shape {tuple(out.shape)}, but the stack has shape {shape}")
    if target is not None and out.dtype != target:
        raise TypeError(f"dtype={target} conflicts with out.dtype={out.dtype}; pass one of them")
    if out.requires_grad:
        raise ValueError("out requires grad; pass a tensor that does not (or out.detach())")
    if any(st == 0 and n > 1 for n, st in zip(out.shape, out.stride(), strict=True)):
        raise ValueError(
            "out has internal overlap (a stride-0 dimension, e.g. an expanded tensor): its "
            "elements would be written several times; pass a tensor that owns each element"
        )
    check_storage(out)
    return out


def stack_from_numpy(
    arrays: Sequence[Any],
    dtype: DTypeLike | None = None,
    *,
    device: str | torch.device | None = None,
    pin_memory: bool = False,
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """Stack same-shape arrays into one new tensor (a new first dimension), in one pass.

    The equivalent of ``torch.from_numpy(np.stack(arrays)).to(dtype)`` without the
    ``np.stack`` temporary: each array (any strides, byte order or element type) is cast and
    written straight into its slot of the result, all of them as one job on the core's threads.

    Parameters
    ----------
    arrays : sequence of array_like
        The arrays (e.g. HWC uint8 images), all of one shape.
    dtype : data-type or torch.dtype, optional
        Element type of the result (the cast equals NumPy's ``astype``). Default: ``out``'s,
        else the arrays' common type (``numpy.result_type``).
    device : str or torch.device, optional
        Device of the result (default: CPU).
    pin_memory : bool, optional
        Return a CPU tensor in page-locked memory (needs CUDA).
    out : torch.Tensor, optional
        A CPU tensor of shape ``(len(arrays), *arrays[0].shape)`` to write into (any strides;
        a shared-memory tensor, as DataLoader workers use, works).

    Returns
    -------
    torch.Tensor
        ``out`` if given, else a new tensor.

    Raises
    ------
    ValueError
        Arrays of different shapes (naming the first that differs) or none at all.

    Examples
    --------
    >>> import numpy as np, torch, torchnp
    >>> images = [np.full((2, 2, 3), i, np.uint8) for i in range(4)]
    >>> batch = torchnp.stack_from_numpy(images, dtype=torch.float32)
    >>> batch.shape, batch.dtype, batch[3, 0, 0].tolist()
    (torch.Size([4, 2, 2, 3]), torch.float32, [3.0, 3.0, 3.0])
    """
    items = _arrays_of(arrays)
    shape = items[0].shape
    for i, a in enumerate(items):
        if a.shape != shape:
            raise ValueError(
                f"stack_from_numpy: arrays[{i}] has shape {a.shape}, but arrays[0] has shape "
                f"{shape}; every array must have the same shape"
            )
    stored = {a.dtype for a in items}
    for dt in stored:
        element_type_of_numpy(dt)  # TypeError for types torchnp cannot read
    full = (len(items), *shape)
    requested = None if dtype is None else parse_dtype(dtype).newbyteorder("=")
    if out is not None:
        out = _check_out(out, full, None if requested is None else torch_for_numpy(requested))
        if pin_memory or device is not None:
            raise ValueError("out= cannot be combined with device= or pin_memory=")
    if requested is not None:
        target_np = requested
    elif out is not None:
        target_np = element_type_of_torch(out.dtype).numpy
    else:
        natives = {element_type_of_numpy(dt)[0].numpy for dt in stored}
        target_np = natives.pop() if len(natives) == 1 else np.result_type(*natives)
    target = torch_for_numpy(target_np)
    for dt in stored:
        _policy.check_cast(element_type_of_numpy(dt)[0].numpy, target_np)
        _policy.warn_if_discarding_imaginary(dt, target_np)
    target_device = torch.device(device) if device is not None else None
    on_cpu = target_device is None or target_device.type == "cpu"
    if target_device is not None and target_device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={target_device}: no CUDA device is available")
    if pin_memory:
        if not on_cpu:
            raise ValueError(
                "pin_memory=True gives a CPU tensor; it cannot be combined with "
                f"device={target_device}"
            )
        if not torch.cuda.is_available():
            raise RuntimeError("pin_memory=True needs a CUDA device, and none is available")

    if out is not None:
        result = out
        dst = numpy_view_of_tensor(out)
    elif pin_memory:
        result = torch.empty(full, dtype=target, pin_memory=True)
        dst = numpy_view_of_tensor(result)
    else:
        dst = empty_in_order(full, None, target_np, "C")
        result = tensor_of_numpy_view(dst, target) if on_cpu else None
    engine = _engines.active()
    copies = []
    for i, a in enumerate(items):
        if out is not None and np.may_share_memory(dst, a):
            staged = np.empty_like(a, order="K")  # read before any slot is written
            engine.copy(staged, a)
            a = staged
        copies.append((dst[i, ...], a, 0))  # dst[i, ...]: an array even for 0-d items
    engine.copy_many(copies)
    if not on_cpu:
        result = torch.empty(full, dtype=target, device=target_device)
        _transfer.upload_call(engine, result, dst)()
    return result


# ---- collate -----------------------------------------------------------------------------

_STRINGS_OR_OBJECTS = re.compile(r"[SaUO]")  # torch's own test: arrays default_collate refuses


def _collated_dtype(items: list[np.ndarray]) -> torch.dtype:
    """The type default_collate's torch.stack gives the samples' tensors: torch's promotion."""
    kinds = {torch_for_numpy(element_type_of_numpy(a.dtype)[0].numpy) for a in items}
    target = kinds.pop()
    for other in kinds:
        target = torch.promote_types(target, other)
    return target


def _worker_dtype(items: list[np.ndarray], promoted: torch.dtype) -> torch.dtype:
    """Inside a worker default_collate stacks into shared memory of the first sample's type
    (``torch.stack(..., out=)``): the others are cast to it where torch allows the cast."""
    first = _collated_dtype(items[:1])
    if promoted != first and not torch.can_cast(promoted, first):
        raise TypeError(
            f"torchnp.collate: inside a DataLoader worker the batch takes its first array's "
            f"type, {first}, and the batch's types promote to {promoted}, which torch does not "
            f"cast to {first} (default_collate raises the same way); give every sample one type"
        )
    return first


def _written_shared_stack(items: list[np.ndarray], dtype: torch.dtype) -> torch.Tensor | None:
    """In a DataLoader worker: the stacked result in a new shared-memory file whose pages the
    kernel fills straight from the arrays (``pwritev``), or None where that does not apply.

    ``default_collate`` maps fresh shared memory and writes it through the mapping: torch
    first allocates and zeroes every page (``posix_fallocate``), then each 4 KiB page faults
    as the stack first writes it, a few microseconds a page on a VM. Written through the file,
    the pages are allocated as they are filled, never zeroed, and never mapped in the worker;
    the main process receives the file as it receives torch's (an fd, the default
    ``file_descriptor`` sharing strategy). Applies when every array already holds the result's
    element type contiguously; other batches are cast or re-laid out on the engine's copy.
    """
    target = element_type_of_torch(dtype).numpy
    nbytes = sum(a.nbytes for a in items)
    if (
        nbytes == 0
        or not hasattr(os, "memfd_create")
        or not hasattr(torch.UntypedStorage, "_new_shared_fd_cpu")
        or torch.multiprocessing.get_sharing_strategy() != "file_descriptor"
        or any(a.dtype != target or not a.flags.c_contiguous for a in items)
    ):
        return None
    try:
        fd = os.memfd_create("torchnp-collate", os.MFD_CLOEXEC)
    except OSError:  # no memfd here (an old kernel, a sandbox): torch's own shared memory
        return None
    try:
        os.ftruncate(fd, nbytes)
        _engines.active().write_file(fd, 0, items)
        storage = torch.UntypedStorage._new_shared_fd_cpu(fd, nbytes)
    except OSError as exc:
        raise RuntimeError(
            f"torchnp.collate could not write a {nbytes}-byte batch into shared memory: {exc}. "
            "Free memory, use a smaller batch_size, or num_workers=0"
        ) from exc
    finally:
        os.close(fd)  # the storage holds its own descriptor
    return torch.empty(0, dtype=dtype).set_(storage).view(len(items), *items[0].shape)


def _shared_stack_out(items: list[np.ndarray], dtype: torch.dtype) -> torch.Tensor:
    """In a DataLoader worker: the stacked result in shared memory, as default_collate makes it
    (the batch then crosses to the main process without a copy)."""
    like = torch.empty(0, dtype=dtype)
    numel = len(items) * items[0].size
    storage = like._typed_storage()._new_shared(numel, device=like.device)
    out = like.new(storage).resize_(len(items), *items[0].shape)
    _populate(out.data_ptr(), out.nbytes)
    return out


_MADV_POPULATE_WRITE = 23  # Linux 5.14+: fault a range in, writable, in one call
_PAGE = 4096


def _populate(address: int, nbytes: int) -> None:
    """Fault fresh shared memory in with one madvise call instead of one fault per 4 KiB page
    as the copy first writes it (shared memory gets no huge pages here). Best effort: an older
    kernel (EINVAL) or another platform simply faults the pages as they are written."""
    libc = _libc()
    if libc is None or nbytes < 1 << 20:
        return
    start = address & ~(_PAGE - 1)
    libc.madvise(
        ctypes.c_void_p(start), ctypes.c_size_t(address + nbytes - start), _MADV_POPULATE_WRITE
    )


@functools.cache
def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
        return libc
    except (OSError, AttributeError):
        return None


def _collate_arrays(batch: Sequence[np.ndarray], *, collate_fn_map: Any = None) -> torch.Tensor:
    elem = batch[0]
    if _STRINGS_OR_OBJECTS.search(elem.dtype.str) is not None:
        raise TypeError(_torch_collate.default_collate_err_msg_format.format(elem.dtype))
    items = [a if isinstance(a, np.ndarray) else np.asarray(a) for a in batch]
    dtype = _collated_dtype(items)
    in_worker = torch.utils.data.get_worker_info() is not None
    if in_worker:
        dtype = _worker_dtype(items, dtype)
    out = None
    if in_worker and all(a.shape == elem.shape for a in items):
        written = _written_shared_stack(items, dtype)
        if written is not None:
            return written
        out = _shared_stack_out(items, dtype)
    return stack_from_numpy(items, dtype=dtype, out=out)


_COLLATE_MAP = dict(_torch_collate.default_collate_fn_map)
_COLLATE_MAP[np.ndarray] = _collate_arrays


def collate(batch: Sequence[Any]) -> Any:
    """A drop-in for ``torch.utils.data.default_collate`` that stacks ndarrays in one pass.

    The output has the same structure and types as ``default_collate``'s (torch's own collate
    walks the samples: tensors are stacked by ``torch.stack``, numbers become tensors, strings
    stay lists, dicts and namedtuples keep their types), with one difference in how it gets
    there: ndarray leaves are stacked by :func:`stack_from_numpy`, straight from the arrays, with
    no tensor per sample; inside DataLoader workers the result lies in shared memory and takes
    the first sample's type, as ``default_collate``'s does there (written into the shared file
    by the kernel when the arrays already hold that type contiguously). It also takes arrays
    torch cannot (bfloat16/float8 via ml_dtypes, other byte orders, negative strides). Ragged
    ndarray leaves raise ValueError (``default_collate``: RuntimeError).

    Parameters
    ----------
    batch : sequence
        The samples of one batch, as a Dataset returns them.

    Returns
    -------
    Any
        The collated batch.

    Examples
    --------
    >>> import numpy as np, torchnp
    >>> samples = [{"x": np.ones((2, 2), np.float32), "y": i} for i in range(3)]
    >>> batch = torchnp.collate(samples)
    >>> batch["x"].shape, batch["y"]
    (torch.Size([3, 2, 2]), tensor([0, 1, 2]))
    """
    return _torch_collate.collate(batch, collate_fn_map=_COLLATE_MAP)
