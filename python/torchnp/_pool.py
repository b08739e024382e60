"""Recycled memory for large fresh outputs.

A fresh NumPy allocation of 4 MiB or more is a new ``mmap``: every page is zeroed by the kernel
on first touch. On the development VM that zeroing costs more than the copy that follows
(64 MiB: ~8 ms of page faults against ~3 ms to copy into warm memory), and it does not scale
with threads. So fresh outputs of at least ``MIN_BYTES`` come from a pool of private anonymous
mappings (2 MiB aligned; from ``FRESH_HUGEPAGE_MIN`` faulted in as huge pages while those come
warm, see below) that are handed back when the last array using them is gone and handed out
again for the next output of a similar size: a conversion loop runs at ``out=`` speed after its
first iteration.

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
# Fresh mappings from FRESH_HUGEPAGE_MIN up to `fresh_hugepage_max` are faulted in as huge pages
# here, one write per 2 MiB block, until a block takes longer than COLD_BLOCK_SECONDS: the rest
# of that mapping, and every fresh mapping for COLD_BACKOFF_SECONDS after, take the kernel's
# regular pages, which the copy then faults in. Why: on the development VMs (Firecracker) a
# fresh huge page comes either warm (faulted and zeroed in 0.2-0.4 ms) or cold from the host
# (6-9 ms on the 2-vCPU AMD VM, block by block in fresh processes; 2 MiB of 4 KiB pages take
# ~0.7 ms), and which one is a matter of the host's state: runs of warm blocks, runs of cold
# ones, sometimes turning cold half-way through a mapping. NumPy's own allocations ask for huge
# pages and take that lottery whole (`t.numpy().copy()` of 64 MiB in fresh processes: 12-17 ms
# in some sets, 186-286 ms in others); regular pages alone take 26-28 ms every time. Measured
# there, median of 7 fresh processes: 64 MiB copy=True 21 ms this way (11-33) against 28
# (26-34) with regular pages only; a 32 MiB cast output 7.4 ms against 16.0; 256 MiB 91
# against 101 (torch's own clone 109). On the 2-vCPU Intel VM huge pages came cold at every
# size (64 MiB 115-149 ms against 28-34): there the first block ends it. Under 32 MiB a cold
# block would cost more than regular pages could save. Reused mappings are already faulted in.
FRESH_HUGEPAGE_MIN = 32 << 20
FRESH_HUGEPAGE_MAX = 1 << 62
COLD_BLOCK_SECONDS = 1e-3
COLD_BACKOFF_SECONDS = 10.0
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
        self.cold_block_seconds = COLD_BLOCK_SECONDS  # tunable (tests: 0, every block is cold)
        self.cold_blocks = 0  # fresh huge-page blocks found cold (each starts a back-off)
        self._cold_until = 0.0
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
        start = np.frombuffer(mm, np.uint8, count=1).ctypes.data
        mapping = _Mapping(mm, (-start) % _ALIGN, size)
        if FRESH_HUGEPAGE_MIN <= size <= self.fresh_hugepage_max:
            self._fault_in_huge(mapping)
        return mapping

    def _fault_in_huge(self, m: _Mapping) -> None:
        """Fault `m` in as huge pages while its blocks come warm (see FRESH_HUGEPAGE_MIN)."""
        begin = time.monotonic()
        with self._lock:
            if begin < self._cold_until:
                return  # a cold block lately: regular pages
        try:
            m.mm.madvise(mmap.MADV_HUGEPAGE, m.offset, m.size)
        except (AttributeError, OSError):  # no THP (EINVAL), or no madvise here
            return
        # One write per block faults it in as a huge page (the kernel zeroes 2 MiB), or as one
        # regular page where none is to be had (then the copy faults the rest).
        view = np.frombuffer(m.mm, np.uint8, count=m.size, offset=m.offset)
        before = begin
        for offset in range(0, m.size, _ALIGN):
            view[offset] = 0
            after = time.monotonic()
            if after - before > self.cold_block_seconds:
                rest = offset + _ALIGN  # a cold block: the rest take regular pages
                if rest < m.size:
                    with contextlib.suppress(OSError):
                        m.mm.madvise(mmap.MADV_NOHUGEPAGE, m.offset + rest, m.size - rest)
                with self._lock:
                    self._cold_until = after + COLD_BACKOFF_SECONDS
                    self.cold_blocks += 1
                return
            before = after

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
