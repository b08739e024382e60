"""What an engine does: every byte a conversion moves.

The policy (``_to_numpy``, ``_from_numpy``) decides what a call needs and allocates its results;
an engine then moves the bytes, through three verbs:

- :meth:`Engine.copy`: host memory to host memory (any strides, element types and byte orders;
  the cast, byte swaps and sign flips fused), staging the source first when it may overlap the
  destination;
- :meth:`Engine.download`: a device tensor into a host array;
- :meth:`Engine.upload`: a host array into a device tensor;
- :meth:`Engine.write_file`: contiguous host arrays into a file (shared memory), one after
  another, by the kernel's ``pwritev``.

Every element of the destination becomes ``flip(src)`` cast exactly as ``src.astype(dst.dtype)``
would (one exception: complex32 -> bool follows NumPy's complex rule, see the Python engine),
where ``flip`` negates the components selected by a :data:`Negate` code (torch's conj / neg
bits): an IEEE sign flip for floats and complex parts, NaNs included; two's complement for
integers; ml_dtypes' rule for the float8 types without a negative zero (fnuz) or sign (e8m0).

Device transfers go through torch for now (``Tensor.copy_``); a CUDA engine overrides
``download`` / ``upload``. The host parts of a transfer (staging, cast, sign flips) run on the
engine's own host copy, so both engines give the same bytes everywhere.
"""

from __future__ import annotations

import enum
import errno
import functools
import os
from collections.abc import Sequence

import numpy as np
import torch

from torchnp._dtypes import element_type_of_numpy, element_type_of_torch
from torchnp._memory import empty_in_memory_order, tensor_view, torch_can_view


class Negate(enum.IntEnum):
    """The source components a copy negates, as the core's Negate codes."""

    NONE = 0
    REAL = 1  # conj and neg bits together
    IMAG = 2  # the conjugate bit
    BOTH = 3  # the negative bit

    @staticmethod
    def of_bits(conj: bool, neg: bool) -> Negate:
        """The flips that resolve a tensor's conjugate and negative bits."""
        return Negate((Negate.BOTH if neg else 0) ^ (Negate.IMAG if conj else 0))


class Engine:
    """The engine interface, with the device transfers built on the engine's host copy."""

    name: str

    @property
    def pool(self):
        """The recycling pool this engine's large results come from (_pool.POOL: Python's)."""
        from torchnp import _pool

        return _pool.POOL

    def _host_copy(self, dst: np.ndarray, src: np.ndarray, negate: int) -> None:
        """dst = flip(src) cast to dst.dtype; same shape, no overlap, dst.size > 0."""
        raise NotImplementedError

    def copy(
        self, dst: np.ndarray, src: np.ndarray, negate: int = 0, *, may_overlap: bool = False
    ) -> None:
        """Copy host array `src` into host array `dst` (same shape), cast, swapped and flipped.

        With `may_overlap` (a destination the caller passed in), a source that may share
        memory with it is staged first: the result is then as if the whole source had been
        read before any write.
        """
        if dst.size == 0:
            return
        if may_overlap and np.may_share_memory(dst, src):
            staged = np.empty_like(src, order="K")
            self._host_copy(staged, src, 0)
            src = staged
        self._host_copy(dst, src, negate)

    def copy_many(self, copies: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
        """Run several host copies, each ``(dst, src, negate)`` as :meth:`copy` takes it (no
        destination may overlap any source), as one job: the native engine hands them all to
        its threads at once (a tree of tensors, a stack of arrays)."""
        for dst, src, negate in copies:
            self.copy(dst, src, negate)

    def write_file(self, fd: int, offset: int, sources: Sequence[np.ndarray]) -> None:
        """Write the bytes of C-contiguous host arrays `sources`, one after another, into open
        file `fd` from byte `offset` on, through the kernel (``pwritev``, IOV_MAX arrays per
        call, the GIL released): the page cache of a shared-memory file is written directly,
        with no page of it mapped, faulted or zeroed in this process. Partial writes go on
        where they stopped; a failure raises OSError (e.g. ENOSPC when shared memory is full).
        """
        views = [_bytes_of(s) for s in sources if s.nbytes]
        limit = _iov_max()
        i = 0
        while i < len(views):
            written = os.pwritev(fd, views[i : i + limit], offset)
            if written <= 0:
                raise OSError(errno.ENOSPC, "pwritev wrote nothing", f"fd {fd}")
            offset += written
            while written:  # step past what was written, trimming a partly written array
                n = len(views[i])
                if written < n:
                    views[i] = views[i][written:]
                    break
                written -= n
                i += 1

    def to_numpy_replay(self, target, d_code, d_swap, s_code, stored, layout, share, carrier):
        """A replay of a memoised to_numpy decision (_fast), moving its bytes with this engine."""
        from torchnp import _fast

        return _fast.python_to_numpy_replay(self, target, layout, share, carrier, stored)

    def from_numpy_replay(self, target_np, d_code, d_swap, s_code, s_swap, share, target, carrier):
        """A replay of a memoised from_numpy decision (_fast), moving its bytes with this
        engine."""
        from torchnp import _fast

        return _fast.python_from_numpy_replay(self, target_np, share, target)

    def download(self, dst: np.ndarray, src: torch.Tensor, negate: int = 0) -> None:
        """Copy device tensor `src` (no conj/neg bits) into host array `dst`, cast and flipped.

        One transfer straight into `dst` when it holds the tensor's own element type and torch
        can address it; otherwise one transfer into host staging laid out like the tensor, and
        one host copy that does the cast, layout change and sign flips together.
        """
        if dst.size == 0:
            return
        stored = element_type_of_torch(src.dtype).numpy
        if negate == 0 and dst.dtype == stored and torch_can_view(dst):
            tensor_view(dst, src.dtype).copy_(src)
            return
        itemsize = stored.itemsize
        staging = empty_in_memory_order(src.shape, [s * itemsize for s in src.stride()], stored)
        tensor_view(staging, src.dtype).copy_(src)
        self._host_copy(dst, staging, negate)

    def download_many(self, items: list[tuple[np.ndarray, torch.Tensor, int]]) -> None:
        """Several downloads, ``(dst, src, negate)`` each: here one after another."""
        for dst, src, negate in items:
            self.download(dst, src, negate)

    def upload_many(self, items: list[tuple[torch.Tensor, np.ndarray]]) -> None:
        """Several uploads, ``(dst, src)`` each: here one after another."""
        for dst, src in items:
            self.upload(dst, src)

    def upload(self, dst: torch.Tensor, src: np.ndarray) -> None:
        """Copy host array `src` into device tensor `dst` (same shape), cast.

        One transfer from `src` itself when torch can address it as `dst`'s element type;
        otherwise one host copy into staging laid out like `dst` (byte swap, layout, cast),
        then one transfer.
        """
        if dst.numel() == 0:
            return
        own, _ = element_type_of_numpy(src.dtype)
        if own.torch == dst.dtype and torch_can_view(src, writable=False):
            # Only read, so even read-only memory may be viewed for the transfer.
            dst.copy_(tensor_view(src, dst.dtype))
            return
        target = element_type_of_torch(dst.dtype).numpy
        itemsize = target.itemsize
        staging = empty_in_memory_order(dst.shape, [s * itemsize for s in dst.stride()], target)
        self._host_copy(staging, src, 0)
        dst.copy_(tensor_view(staging, dst.dtype))


def _bytes_of(a: np.ndarray) -> memoryview:
    """A C-contiguous array's bytes as a flat memoryview (any element type, ml_dtypes included)."""
    if not a.flags.c_contiguous:
        raise ValueError("write_file needs C-contiguous arrays")
    return memoryview(a.reshape(-1).view(np.uint8))


@functools.cache
def _iov_max() -> int:
    try:
        return max(int(os.sysconf("SC_IOV_MAX")), 16)
    except (ValueError, OSError):
        return 1024
