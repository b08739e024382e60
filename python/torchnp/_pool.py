"""Recycled memory for large fresh outputs.

A fresh NumPy allocation of 4 MiB or more is a new ``mmap``: every page is zeroed by the kernel
on first touch. On the development VM that zeroing costs more than the copy that follows
(64 MiB: ~8 ms of page faults against ~3 ms to copy into warm memory), and it does not scale
with threads. So fresh outputs of at least ``MIN_BYTES`` come from a pool of private anonymous
mappings (2 MiB aligned; ``MADV_HUGEPAGE`` up to ``FRESH_HUGEPAGE_MAX``, 0: never) that are handed
back when the last array using them is gone and handed out again for the next output of a
similar size: a conversion loop runs at ``out=`` speed after its first iteration.

How an array gives its memory back: each hand-out is a *lease*, a ``uint8`` array over the
mapping. Every array the caller gets is built on the lease, and NumPy stops collapsing a view's
``base`` at the first array that is not a view of another ndarray, so the lease is the common
base of the result and all its views (and torch tensors made from them hold the array). When
the lease is collected a ``weakref.finalize`` returns the mapping to the pool. Pooled arrays do
not own their data (``flags.owndata`` is False), which is the one visible difference.

This is the Python engine's pool; the native engine has the same one in C++
(``torchnp._C.BufferPool``, csrc/core/buffer_pool.h: a lease there is a capsule, and handing
out a buffer costs ~0.3 us instead of ~6), so that its fast path serves large results too.
:func:`active` is the active engine's.

Bounds: at most ``limit`` bytes are kept (``TORCHNP_POOL_BYTES``, default the smaller of 1 GiB
and 1/8 of physical memory; 0 turns the pool off), a mapping idle for ``IDLE_SECONDS`` is
unmapped by the next pool operation (there is no timer thread: after a last burst of
conversions, idle memory stays until a later large conversion or :func:`torchnp.empty_cache`).
"""

from __future__ import annotations

import contextlib
import math
import mmap
import os
import threading
import time
import weakref
from collections import deque
from dataclasses import dataclass

import numpy as np

MIN_BYTES = 4 << 20  # below this NumPy's allocator recycles heap memory itself
_ALIGN = 2 << 20  # one huge page
# Fresh mappings up to this size ask for huge pages (MADV_HUGEPAGE); larger ones take the
# kernel's regular pages. By default none do: a fresh huge page needs a free 2 MiB block, and on
# the development VMs (Firecracker) those often come cold from the host. Measured there (first
# touch of a new mapping in a fresh process, written by a 2-thread copy, 7 processes each): on
# the 2-vCPU AMD VM huge pages won up to 128 MiB (64 MiB 10-15 ms against 16-20 ms for 4 KiB
# pages) and lost past it (256 MiB: 160-600 ms against 62-83); on the 2-vCPU Intel VM, with 22
# GiB free and no compaction stalls, they lost at every size: 64 MiB 115-149 ms against 28-34,
# a 32 MiB cast output 59-85 ms against 16-20 (4 KiB pages the same as torch's own fresh
# allocations, which take no advice). Regular pages are never the slow side, so they are the
# default; `fresh_hugepage_max` on either engine's pool turns the advice back on up to a size.
# Steady state keeps the pool's benefit either way: a reused mapping is already faulted in.
FRESH_HUGEPAGE_MAX = 0
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
    """Large output buffers, recycled. Thread-safe; see the module docstring.

    Finalizers (which may run in any thread, at any allocation, even inside a pool method on
    the same thread) only stamp the mapping and append it to ``_returned``; everything else
    happens under ``_lock`` in the pool's own methods, which take returned mappings in first.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.idle_seconds = IDLE_SECONDS
        self.fresh_hugepage_max = FRESH_HUGEPAGE_MAX
        self._failing_maps = 0  # test hook (fail_maps)
        self._free: list[_Mapping] = []  # idle mappings, oldest first
        self._cached = 0
        self._returned: deque[_Mapping] = deque()  # appended by finalizers, lock-free
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        _POOLS.add(self)

    @property
    def cached_bytes(self) -> int:
        """Bytes held in idle mappings, ready for the next large output."""
        with self._lock:
            self._settle(time.monotonic())
            return self._cached

    def empty(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray | None:
        """A C-ordered uninitialised array from the pool, or None when the pool does not serve
        this size (too small, larger than the limit, the pool is off, or no mapping could be
        made: NumPy's allocator then has its say)."""
        nbytes = math.prod(shape) * dtype.itemsize  # (np.prod of a tuple costs ~4 us)
        if nbytes < MIN_BYTES or nbytes > self.limit:
            return None
        size = -(-nbytes // _ALIGN) * _ALIGN
        with self._lock:
            self._settle(time.monotonic())
            mapping = self._take(size)
        if mapping is None:
            mapping = self._map(size)
            if mapping is None:
                return None
        lease = np.frombuffer(mapping.mm, np.uint8, count=size, offset=mapping.offset)
        done = weakref.finalize(lease, self._returned_by_finalizer, mapping, self._returned)
        done.atexit = False  # nothing to return at interpreter exit
        return np.ndarray(shape, dtype=dtype, buffer=lease)

    def fail_maps(self, n: int) -> None:
        """Test hook: the next `n` mappings fail as if mmap had."""
        self._failing_maps = max(n, 0)

    def clear(self) -> int:
        """Unmap every idle mapping; returns the bytes released."""
        with self._lock:
            self._settle(time.monotonic())
            released = self._cached
            for m in self._free:
                self._unmap(m)
            self._free.clear()
            self._cached = 0
            return released

    # ------------------------------------------------------------------------------ internals

    @staticmethod
    def _returned_by_finalizer(mapping: _Mapping, returned: deque) -> None:
        mapping.idle_since = time.monotonic()
        returned.append(mapping)  # atomic; no lock, no list surgery here

    def _settle(self, now: float) -> None:
        """Take in returned mappings, then unmap the ones idle too long and, oldest first,
        whatever exceeds the limit. Called with the lock held."""
        while self._returned:
            m = self._returned.popleft()
            if m.size <= self.limit:  # (a larger one is unmapped when it is collected)
                self._free.append(m)
                self._cached += m.size
        while self._free and (
            now - self._free[0].idle_since > self.idle_seconds or self._cached > self.limit
        ):
            old = self._free.pop(0)
            self._cached -= old.size
            self._unmap(old)

    def _take(self, size: int) -> _Mapping | None:
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

    def _map(self, size: int) -> _Mapping | None:
        if self._failing_maps > 0:
            self._failing_maps -= 1
            return None
        # Private (MAP_SHARED anonymous memory is shmem: no anonymous huge pages), one huge
        # page of slack so the usable range can start on a 2 MiB boundary.
        try:
            mm = mmap.mmap(-1, size + _ALIGN, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        except OSError:
            return None
        if size <= self.fresh_hugepage_max:
            with contextlib.suppress(AttributeError, OSError):  # a kernel without THP: EINVAL
                mm.madvise(mmap.MADV_HUGEPAGE)
        start = np.frombuffer(mm, np.uint8, count=1).ctypes.data
        return _Mapping(mm, (-start) % _ALIGN, size)

    @staticmethod
    def _unmap(m: _Mapping) -> None:
        # BufferError: a lease is still being freed (its finalizer ran inside a pool call,
        # before the lease released its buffer); the mapping goes when that lease is gone.
        with contextlib.suppress(BufferError):
            m.mm.close()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # another thread may have held it at fork()


_POOLS: weakref.WeakSet[BufferPool] = weakref.WeakSet()


def _reset_locks_after_fork() -> None:
    for pool in list(_POOLS):
        pool._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks_after_fork)


POOL = BufferPool(_default_limit())  # the Python engine's
_active: object = POOL  # the active engine's pool: this one, or the native engine's _C.BufferPool


def active():
    """The pool the active engine's large results come from (a BufferPool, or the native
    engine's ``_C.BufferPool``: the same interface)."""
    return _active


def activate(pool) -> None:
    """Make `pool` the one large results come from (the engine changed: _engines)."""
    global _active
    _active = pool


def empty_cache() -> int:
    """Unmap the idle buffers torchnp keeps for large fresh outputs, and free the idle
    page-locked staging buffers of device transfers.

    Large results (4 MiB or more) are carved from recycled memory so that repeated conversions
    skip the kernel's page zeroing; memory comes back to the pool when the last array using it
    is freed, and a later large conversion unmaps buffers that sat idle for over two seconds.
    After the last conversion of a burst nothing else runs, so call this to give the memory
    back to the system now (e.g. before a memory-hungry step). ``TORCHNP_POOL_BYTES``
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
    from torchnp import _device, _engines

    released = POOL.clear()
    native = _engines.loaded_native()
    if native is not None:
        released += native.pool.clear()
    return released + _device.trim()
