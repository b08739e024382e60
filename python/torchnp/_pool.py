"""Recycled memory for large fresh outputs.

A fresh NumPy allocation of 4 MiB or more is a new ``mmap``: every page is zeroed by the kernel
on first touch. On the development VM that zeroing costs more than the copy that follows
(64 MiB: ~8 ms of page faults against ~3 ms to copy into warm memory), and it does not scale
with threads. So fresh outputs of at least ``MIN_BYTES`` come from a pool of private anonymous
mappings (2 MiB aligned, ``MADV_HUGEPAGE``) that are handed back when the last array using
them is gone and handed out again for the next output of a similar size: a conversion loop
runs at ``out=`` speed after its first iteration.

How an array gives its memory back: each hand-out is a *lease*, a ``uint8`` array over the
mapping. Every array the caller gets is built on the lease, and NumPy stops collapsing a view's
``base`` at the first array that is not a view of another ndarray, so the lease is the common
base of the result and all its views (and torch tensors made from them hold the array). When
the lease is collected a ``weakref.finalize`` returns the mapping to the pool. Pooled arrays do
not own their data (``flags.owndata`` is False), which is the one visible difference.

Bounds: at most ``limit`` bytes are kept (``TORCHNP_POOL_BYTES``, default the smaller of 1 GiB
and 1/8 of physical memory; 0 turns the pool off), a mapping idle for ``IDLE_SECONDS`` is
unmapped at the next pool operation, and :func:`torchnp.empty_cache` unmaps everything.
"""

from __future__ import annotations

import math
import mmap
import os
import threading
import time
import weakref
from dataclasses import dataclass

import numpy as np

MIN_BYTES = 4 << 20  # below this NumPy's allocator recycles heap memory itself
_ALIGN = 2 << 20  # one huge page
IDLE_SECONDS = 2.0
_SLACK = 1.25  # a cached mapping up to this much larger than needed is reused


def _default_limit() -> int:
    env = os.environ.get("TORCHNP_POOL_BYTES")
    if env is not None:
        try:
            value = int(env)
        except ValueError:
            raise ValueError(
                f"TORCHNP_POOL_BYTES must be a whole number of bytes (0 disables), got {env!r}"
            ) from None
        if value < 0:
            raise ValueError(f"TORCHNP_POOL_BYTES must be >= 0, got {value}")
        return value
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        physical = 8 << 30
    return min(1 << 30, physical // 8)


@dataclass
class _Mapping:
    mm: mmap.mmap
    offset: int  # of the 2 MiB aligned start inside mm
    size: int  # usable bytes from offset (a multiple of _ALIGN)
    idle_since: float = 0.0


class BufferPool:
    """Large output buffers, recycled. Thread-safe; see the module docstring."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._free: list[_Mapping] = []
        self._cached = 0
        self._lock = threading.RLock()  # finalizers may run while this thread holds it
        self.hits = 0
        self.misses = 0

    @property
    def cached_bytes(self) -> int:
        """Bytes held in idle mappings, ready for the next large output."""
        return self._cached

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """A C-ordered uninitialised array from the pool, or None when the pool does not serve
        this size (too small, larger than the limit, or the pool is off)."""
        nbytes = math.prod(shape) * dtype.itemsize  # (np.prod of a tuple costs ~4 us)
        if nbytes < MIN_BYTES or nbytes > self.limit:
            return None
        size = -(-nbytes // _ALIGN) * _ALIGN
        mapping = self._take(size) or self._map(size)
        lease = np.frombuffer(mapping.mm, np.uint8, count=size, offset=mapping.offset)
        done = weakref.finalize(lease, self._give_back, mapping)
        done.atexit = False  # nothing to return at interpreter exit
        return np.ndarray(shape, dtype=dtype, buffer=lease)

    def clear(self) -> int:
        """Unmap every idle mapping; returns the bytes released."""
        with self._lock:
            released = self._cached
            for m in self._free:
                self._unmap(m)
            self._free.clear()
            self._cached = 0
            return released

    # ------------------------------------------------------------------------------ internals

    def _take(self, size: int) -> _Mapping | None:
        with self._lock:
            self._expire(time.monotonic())
            best = None
            for m in self._free:
                if size <= m.size <= size * _SLACK and (best is None or m.size < best.size):
                    best = m
            if best is None:
                self.misses += 1
                return None
            self._free.remove(best)
            self._cached -= best.size
            self.hits += 1
            return best

    def _map(self, size: int) -> _Mapping:
        # Private (MAP_SHARED anonymous memory is shmem: no anonymous huge pages), one huge
        # page of slack so the usable range can start on a 2 MiB boundary.
        mm = mmap.mmap(-1, size + _ALIGN, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        if hasattr(mmap, "MADV_HUGEPAGE"):
            mm.madvise(mmap.MADV_HUGEPAGE)
        start = np.frombuffer(mm, np.uint8, count=1).ctypes.data
        return _Mapping(mm, (-start) % _ALIGN, size)

    def _give_back(self, mapping: _Mapping) -> None:
        with self._lock:
            now = time.monotonic()
            self._expire(now)
            if mapping.size > self.limit:
                self._unmap(mapping)
                return
            # Make room: the oldest idle mappings go first.
            self._free.sort(key=lambda m: m.idle_since)
            while self._free and self._cached + mapping.size > self.limit:
                old = self._free.pop(0)
                self._cached -= old.size
                self._unmap(old)
            mapping.idle_since = now
            self._free.append(mapping)
            self._cached += mapping.size

    def _expire(self, now: float) -> None:
        keep = []
        for m in self._free:
            if now - m.idle_since > IDLE_SECONDS:
                self._cached -= m.size
                self._unmap(m)
            else:
                keep.append(m)
        self._free = keep

    @staticmethod
    def _unmap(m: _Mapping) -> None:
        try:
            m.mm.close()
        except BufferError:  # still exported somewhere (cannot happen for idle mappings)
            pass


POOL = BufferPool(_default_limit())


def empty_cache() -> int:
    """Unmap the idle buffers torchnp keeps for large fresh outputs.

    Large results (4 MiB or more) are carved from recycled memory so that repeated conversions
    skip the kernel's page zeroing; memory comes back to the pool when the last array using it
    is freed, and idle buffers are unmapped after two seconds anyway. Call this to give the
    memory back to the system now (e.g. before a memory-hungry step). ``TORCHNP_POOL_BYTES``
    sets the pool's size limit (0 disables it).

    Returns
    -------
    int
        The number of bytes released.

    Examples
    --------
    >>> import torch, torchnp
    >>> a = torchnp.to_numpy(torch.ones(2**21), copy=True)  # 8 MiB: from the pool
    >>> del a
    >>> torchnp.empty_cache() >= 0
    True
    """
    return POOL.clear()
