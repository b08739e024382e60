"""Device transfers through torchnp's own pipeline (csrc/core/transfer.h), and its staging.

The native engine sends a CUDA tensor's bytes through a *link*: ``torchnp._cuda`` (the CUDA
runtime, built in CUDA builds) hands one per device, and ``torchnp._C.Link`` runs the pipeline
on it: reused page-locked staging buffers, a copy stream with an event per chunk, and host
threads draining chunk k while chunk k + 1 crosses, with the cast, byte swap, sign flips and
layout change of the host side fused into that drain. A permuted or sliced device tensor is
packed on the device chunk by chunk (the link's gather), so the extra device memory is one
chunk. Integer narrowing (int64 -> int32, ...) runs on the device first, as torch's and
NumPy's casts agree bit for bit there; float casts run on the host, where the core reproduces
NumPy's exactly (NaN payloads included), which a device cast does not. An upload that only
widens integers (uint8 -> float32, int32 -> int64, ...) sends the narrow bytes and widens on the
device, where torch's cast is exact for those pairs.

Without the CUDA module (a CPU build, a CPU torch, the Python engine) the engines fall back on
torch's ``copy_`` and the same calls give the same bytes.

The host-simulated link (``torchnp._C.Link.simulated``) runs this module end to end on a machine
without a GPU: "device" memory is host memory (a CPU tensor), a worker thread does the DMA.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

from torchnp import _cuda_loader
from torchnp._dtypes import core_code, element_type_of_numpy, element_type_of_torch

_LOCK = threading.Lock()
_LINKS: dict[int, Any] = {}  # CUDA device index -> torchnp._C.Link
_OVERRIDE: list[Any] = []  # a link every device transfer uses (tests, dry runs), innermost last
# While simulated() is active the policy's slow path (to_numpy_async, tree_to_numpy, ...) sends
# CPU tensors, and from_numpy's explicit device="cpu", across the simulated link.
SIMULATING = False

_CHUNK_BYTES = 8 << 20
_MAX_BYTES = 64 << 20
_BUFFERS = 3

# Integer pairs torch casts exactly as NumPy does (two's-complement truncation): narrowed on
# the device, so fewer bytes cross.
_INTEGERS = (
    torch.int8, torch.uint8, torch.int16, torch.uint16, torch.int32, torch.uint32, torch.int64,
    torch.uint64,
)  # fmt: skip


def _native() -> Any:
    from torchnp import _engines

    engine = _engines.active()
    return getattr(engine, "_C", None)


def link_for(device: torch.device) -> Any | None:
    """The link for a CUDA device when the native engine and the CUDA module can serve it."""
    if _OVERRIDE:
        return _OVERRIDE[-1]
    if device.type != "cuda":
        return None
    C = _native()
    cuda = _cuda_loader.load()
    if C is None or cuda is None or not hasattr(C, "Link"):
        return None
    index = device.index if device.index is not None else torch.cuda.current_device()
    link = _LINKS.get(index)
    if link is None:
        with _LOCK:
            link = _LINKS.get(index)
            if link is None:
                link = C.Link.of_capsule(cuda.link(index))
                link.configure(_CHUNK_BYTES, _MAX_BYTES)
                _LINKS[index] = link
    return link


@contextlib.contextmanager
def simulated(delay_us: int = 0, *, gather: bool = True, chunk_bytes: int = 1 << 16) -> Iterator:
    """Route device transfers and pinned allocations through a host-simulated link (for tests
    and ``gpu_check.sh --dry-run``); yields the link (``link_stats()``, ``fail_copy()``).

    Inside, a CPU tensor is the "device": the policy's slow path (``to_numpy_async``,
    ``tree_to_numpy``, ...; the plain functions' fast path is not consulted there) downloads it
    through the link, and ``from_numpy(..., device="cpu")`` uploads through it. Process-wide;
    needs the native engine.
    """
    global SIMULATING
    C = _native()
    if C is None or not hasattr(C, "Link"):
        raise RuntimeError("the simulated link needs the native engine (torchnp._C)")
    link = C.Link.simulated(delay_us, gather, chunk_bytes, max(_MAX_BYTES, 4 * chunk_bytes))
    _OVERRIDE.append(link)
    SIMULATING = True
    try:
        yield link
    finally:
        _OVERRIDE.remove(link)
        SIMULATING = bool(_OVERRIDE)


def set_staging(
    *, max_bytes: int | None = None, chunk_bytes: int | None = None, buffers: int | None = None
) -> None:
    """Configure the page-locked staging of device transfers (every device).

    Parameters
    ----------
    max_bytes : int, optional
        Cap on the staging memory per device (default 64 MiB). A transfer always gets at least
        one buffer; lowering the cap frees idle buffers above it.
    chunk_bytes : int, optional
        Size of one staging buffer, a multiple of 64 (default 8 MiB).
    buffers : int, optional
        Buffers one transfer keeps in flight, 1 to 8 (default 3).

    Examples
    --------
    >>> import torchnp
    >>> torchnp.set_staging(max_bytes=128 << 20)
    >>> torchnp.info().staging["max_bytes"]
    134217728
    >>> torchnp.set_staging(max_bytes=64 << 20)
    """
    global _CHUNK_BYTES, _MAX_BYTES, _BUFFERS
    for name, value in (("max_bytes", max_bytes), ("chunk_bytes", chunk_bytes)):
        if value is not None and (type(value) is not int or value < 0):
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if chunk_bytes is not None and (chunk_bytes <= 0 or chunk_bytes % 64):
        raise ValueError(f"chunk_bytes must be a positive multiple of 64, got {chunk_bytes}")
    if buffers is not None and (type(buffers) is not int or not 1 <= buffers <= 8):
        raise ValueError(f"buffers must be an int from 1 to 8, got {buffers!r}")
    with _LOCK:
        _MAX_BYTES = _MAX_BYTES if max_bytes is None else max_bytes
        _CHUNK_BYTES = _CHUNK_BYTES if chunk_bytes is None else chunk_bytes
        _BUFFERS = _BUFFERS if buffers is None else buffers
        for link in _LINKS.values():
            link.configure(_CHUNK_BYTES, _MAX_BYTES)


def staging_info() -> dict[str, Any]:
    """The staging configuration and, per device in use, the bytes held."""
    with _LOCK:
        devices = {f"cuda:{i}": link.staging_stats()["held_bytes"] for i, link in _LINKS.items()}
        return {
            "max_bytes": _MAX_BYTES,
            "chunk_bytes": _CHUNK_BYTES,
            "buffers": _BUFFERS,
            "held_bytes": devices,
        }


def trim() -> int:
    """Free the idle staging buffers of every device; the bytes freed."""
    with _LOCK:
        links = list(_LINKS.values())
    return sum(link.trim() for link in links)


def is_pinned(a: np.ndarray) -> bool:
    """Whether `a` lies in page-locked memory from torchnp (empty_pinned), by its base chain."""
    C = _native()
    if C is None or not hasattr(C, "PinnedBuffer"):
        return False
    base = a
    while isinstance(base, np.ndarray):
        base = base.base
    if isinstance(base, memoryview):
        base = base.obj
    return isinstance(base, C.PinnedBuffer)


def _stream_of(device: torch.device) -> int:
    if device.type != "cuda":
        return 0
    return torch.cuda.current_stream(device).cuda_stream


def _dense_strides(t: torch.Tensor) -> list[int] | None:
    """Byte strides of `t` if its elements fill one block without gaps or overlap, else None."""
    dims = sorted((s, n) for s, n in zip(t.stride(), t.shape, strict=True) if n != 1)
    expected = 1
    for stride, size in dims:
        if stride != expected:
            return None
        expected *= size
    isz = t.element_size()
    return [s * isz for s in t.stride()]


def _memory_order(strides: tuple[int, ...] | list[int], shape: tuple[int, ...]) -> list[int]:
    """Dims outermost first by decreasing |stride| (stable), size-1 dims dropped."""
    dims = [d for d in range(len(shape)) if shape[d] != 1]
    return sorted(dims, key=lambda d: -abs(strides[d]))


def download(link: Any, dst: np.ndarray, src: torch.Tensor, negate: int = 0) -> None:
    """Copy tensor `src` (no conj/neg bits; on the link's device) into host array `dst`
    through the link's pipeline: cast, byte order, sign flips and layout as `dst` says."""
    download_many(link, [(dst, src, negate)])


def download_many(link: Any, items: list[tuple[np.ndarray, torch.Tensor, int]]) -> None:
    """Several downloads (``(dst, src, negate)`` each, all on the link's device) as one pipeline:
    every tensor's bytes are enqueued, small ones sharing staging buffers, before the host
    drains them (a state_dict: one pass, not one wait per tensor)."""
    keep: list = []  # device temporaries (narrowed copies, scratch) until the batch is done
    prepared = [_prepare(link, dst, src, negate, keep) for dst, src, negate in items]
    prepared = [p for p in prepared if p is not None]
    if prepared:
        link.download_many(prepared, _stream_of(items[0][1].device), _BUFFERS)


def _prepare(
    link: Any, dst: np.ndarray, src: torch.Tensor, negate: int, keep: list
) -> tuple | None:
    """The link's download item for `src` -> `dst`, after the device-side work (integer
    narrowing; packing for links without a gather); None when there is nothing to move.
    Device temporaries go into `keep`, which must outlive the download."""
    if dst.size == 0:
        return None
    target = element_type_of_torch(src.dtype)
    d_code, d_swap = core_code(dst.dtype)
    wanted = element_type_of_numpy(dst.dtype)[0].torch
    if (
        wanted is not None
        and src.dtype in _INTEGERS
        and wanted in _INTEGERS
        and wanted.itemsize < src.dtype.itemsize
    ):
        # Narrowed on the device (exact for integers): fewer bytes cross.
        src = src.to(wanted)
        target = element_type_of_torch(wanted)
        keep.append(src)
    pinned = is_pinned(dst)
    dense = _dense_strides(src)
    if dense is not None:
        return (dst, d_code, d_swap, src.data_ptr(), target.code, dense, negate, None, pinned)
    shape = tuple(src.shape)
    # Packed on the device in the destination's memory order, so the host drain streams.
    order = _memory_order(dst.strides, shape)
    isz = src.element_size()
    if not link.has_gather or len(order) > 8:
        src = src.contiguous()  # torch packs it (full size on the device)
        keep.append(src)
        return _prepare(link, dst, src, negate, keep)
    link_strides = [0] * len(shape)
    step = isz
    for d in reversed(order):
        link_strides[d] = step
        step *= shape[d]
    # One scratch for the whole call: the link's copy stream runs every gather in order.
    scratch = next((k for k in keep if isinstance(k, _Scratch)), None)
    if scratch is None:
        scratch = _Scratch(_scratch(src.device, link))
        keep.append(scratch)
    scratch = scratch.buffer
    gather = ([shape[d] for d in order], [src.stride()[d] * isz for d in order],
              _address(scratch), _nbytes(scratch) // isz * isz)  # fmt: skip
    return (dst, d_code, d_swap, src.data_ptr(), target.code, link_strides, negate, gather, pinned)


def upload(link: Any, dst: torch.Tensor, src: np.ndarray) -> None:
    """Copy host array `src` into tensor `dst` (same shape, on the link's device) through the
    link's pipeline: byte swap, layout and cast done by the host threads into staging."""
    upload_many(link, [(dst, src)])


def upload_many(link: Any, items: list[tuple[torch.Tensor, np.ndarray]]) -> None:
    """Several uploads (``(dst, src)`` each, all on the link's device) as one pipeline: small
    arrays share staging buffers, one event per buffer, one wait at the end."""
    prepared: list[tuple] = []
    after: list[tuple[torch.Tensor, torch.Tensor]] = []  # device work once the bytes are there
    locked = False
    for dst, src in items:
        if dst.numel() == 0:
            continue
        if _dense_strides(dst) is None:  # a strided target: upload densely, then copy on device
            tmp = torch.empty(dst.shape, dtype=dst.dtype, device=dst.device)
            after.append((dst, tmp))
            dst = tmp
        own = element_type_of_numpy(src.dtype)[0].torch
        if own is not None and _widens_exactly(own, dst.dtype):
            # The narrow bytes cross and the device widens them (uint8 images: a quarter of
            # the bytes); the cast is queued on the current stream, which the upload joins.
            narrow = torch.empty_strided(dst.shape, dst.stride(), dtype=own, device=dst.device)
            after.insert(0, (dst, narrow))  # before a strided target's copy from dst
            dst = narrow
        locked = locked or (dst.device.type == "cuda" and _page_locked(src))
        s_code, s_swap = core_code(src.dtype)
        prepared.append((dst.data_ptr(), element_type_of_torch(dst.dtype).code,
                         _dense_strides(dst), src, s_code, s_swap, is_pinned(src)))  # fmt: skip
    if not prepared:
        return
    device = items[0][0].device
    if locked:
        # The host threads read the arrays now: a pending device -> host copy into page-locked
        # memory on the current stream (torch's non_blocking=True) must land first.
        torch.cuda.current_stream(device).synchronize()
    link.upload_many(prepared, _stream_of(device), _BUFFERS)
    for dst, tmp in after:
        dst.copy_(tmp)


def _scratch(device: torch.device, link: Any) -> Any:
    """One chunk of device memory for the link's gathers (torch's caching allocator on a GPU;
    host memory for a simulated link)."""
    nbytes = link.staging_stats()["chunk_bytes"]
    if device.type == "cuda":
        return torch.empty(nbytes, dtype=torch.uint8, device=device)
    return np.empty(nbytes, np.uint8)


class _Scratch:
    """Device scratch for a call's gathers (kept with its other temporaries)."""

    __slots__ = ("buffer",)

    def __init__(self, buffer: Any) -> None:
        self.buffer = buffer


def _address(buffer: Any) -> int:
    if isinstance(buffer, torch.Tensor):
        return buffer.data_ptr()
    return buffer.ctypes.data


def _nbytes(buffer: Any) -> int:
    if isinstance(buffer, torch.Tensor):
        return buffer.numel() * buffer.element_size()
    return buffer.nbytes


def _widens_exactly(src: torch.dtype | None, dst: torch.dtype) -> bool:
    """Whether torch's device cast from `src` to the wider `dst` gives NumPy's values bit for bit:
    integers into wider integers (sign or zero extension on both sides), and integers into a
    float whose mantissa holds every value (so no rounding rule is involved). Float widening is
    left to the host: device casts do not keep NumPy's NaN payloads."""
    small = (torch.bool, torch.int8, torch.uint8, torch.int16)
    if src in small and dst in (torch.float32, torch.float64):
        return True
    if src == torch.int32 and dst == torch.float64:
        return True
    ints = (torch.bool, torch.int8, torch.uint8, torch.int16, torch.int32, torch.int64)
    return src in ints and dst in ints[1:] and dst.itemsize > src.itemsize


def _page_locked(a: np.ndarray) -> bool:
    """Whether `a`'s memory is page-locked (torchnp's pinned arrays, or any the driver knows)."""
    if is_pinned(a):
        return True
    if not torch.cuda.is_available():
        return False
    first = (ctypes.c_uint8 * 1).from_address(a.__array_interface__["data"][0])
    return torch.from_numpy(np.ctypeslib.as_array(first)).is_pinned()


def pinned_array(shape: Any, dtype: Any, order: str, zero: bool) -> np.ndarray:
    """An ndarray in page-locked memory (see torchnp.empty_pinned)."""
    dt = np.dtype(dtype)
    if order not in ("C", "F"):
        raise ValueError(f"order must be 'C' or 'F', got {order!r}")
    shape = (shape,) if isinstance(shape, int) else tuple(int(n) for n in shape)
    if any(n < 0 for n in shape):
        raise ValueError(f"negative dimensions are not allowed: {shape}")
    count = int(np.prod(shape, dtype=np.int64))
    nbytes = count * dt.itemsize
    link = _OVERRIDE[-1] if _OVERRIDE else None
    if link is None and _cuda_loader.load() is not None and torch.cuda.is_available():
        link = link_for(torch.device("cuda", torch.cuda.current_device()))
    if link is not None:
        # The buffer frees itself (through the link) when the last view of it is gone.
        flat = np.frombuffer(link.pinned(nbytes), dtype=np.uint8, count=nbytes)
    elif torch.cuda.is_available():
        # No CUDA module here: torch's pinned allocator (its power-of-two cache) gives it.
        flat = torch.empty(max(nbytes, 1), dtype=torch.uint8, pin_memory=True).numpy()[:nbytes]
    else:
        raise RuntimeError(
            "page-locked (pinned) arrays need a CUDA device, and none is available "
            f"({_cuda_loader.status()}); use np.empty for ordinary host memory"
        )
    a = flat.view(dt).reshape(shape, order=order)
    if zero:
        a.fill(0)
    return a
