"""Timing primitives: interleaved medians, per-call loops for tiny work, and the copy limit."""

from __future__ import annotations

import contextlib
import itertools
import os
import statistics
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

# A sample shorter than this is dominated by timer resolution and loop overhead, so tiny work
# is repeated inside one sample and reported per call.
MIN_SAMPLE_S = 2e-3
MAX_INNER = 100_000


def calibrate_inner(fn: Callable[[], object], min_sample_s: float = MIN_SAMPLE_S) -> int:
    """How many calls of `fn` one timed sample needs to last at least `min_sample_s`."""
    inner = 1
    while inner < MAX_INNER:
        start = time.perf_counter()
        for _ in range(inner):
            fn()
        if time.perf_counter() - start >= min_sample_s:
            break
        inner *= 4
    return min(inner, MAX_INNER)


def _sample(
    fn: Callable[[], object],
    inner: int,
    threads: int | None = None,
    setting: Callable[[], contextlib.AbstractContextManager] | None = None,
) -> float:
    # A fresh output is freed after the clock stops (unmapping 256 MiB costs milliseconds that
    # are not the conversion's) and before the next run allocates its own: never reused.
    # `threads`: torch.set_num_threads(threads) for this sample, set and restored off the clock;
    # `setting`: a context entered around the sample, off the clock too (torchnp.patch).
    with thread_count(threads), setting() if setting is not None else contextlib.nullcontext():
        start = time.perf_counter()
        if inner == 1:
            result = fn()
            elapsed = time.perf_counter() - start
            del result
            return elapsed
        for _ in range(inner):
            fn()  # tiny work: each result is dropped at once, inside the loop
        return (time.perf_counter() - start) / inner


@contextlib.contextmanager
def thread_count(threads: int | None) -> Iterator[None]:
    """torch.set_num_threads(threads) inside the block (nothing for None), restored after."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


Timed = tuple  # (function, calls per sample[, threads[, setting]]): _sample's arguments


def balanced_orders(n: int, rounds: int) -> list[list[int]]:
    """`rounds` orders of the ways 0..n-1, one per round, in which every way comes right after
    every other way equally often (a Williams design: each ordered pair once in every n rounds
    for even n, twice in every 2n for odd n), starting from 0, 1, n-1, 2, n-2, ...

    Rotating one order instead keeps its neighbours: a way that leaves the machine busy (torch's
    OpenMP workers spin for milliseconds after a threaded torch call) would always hand that to
    the same next way. Measured on the 2-vCPU AMD VM, one core busy, 64 MiB f64->f32: the calls
    right after `t.float()` took 7.6-8.7 ms whichever way they were, the others 4.5-5.0; torchnp's
    threaded way, next to torch's in the rotated order, followed it in 30 of 40 rounds.

    >>> balanced_orders(4, 4)
    [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]]
    """
    if n == 0:
        return [[] for _ in range(rounds)]
    first = [0]
    low, high = 1, n - 1
    while low <= high:
        first.append(low)
        low += 1
        if low <= high:
            first.append(high)
            high -= 1
    rows = [[(x + r) % n for x in first] for r in range(n)]
    if n % 2:
        rows += [row[::-1] for row in rows]
    return [rows[r % len(rows)] for r in range(rounds)]


def time_interleaved(fns: Mapping[str, Timed], repeat: int) -> dict[str, float]:
    """Median seconds per call of each ``(function, calls per sample[, threads[, setting]])``,
    taking turns so that drift in the machine's speed hits all alike, in the orders of
    balanced_orders so that what a way leaves behind (torch's OpenMP workers spin for
    milliseconds after a threaded torch call) lands on every other way alike.

    The callers have already warmed each function up (one untimed call).
    """
    samples: dict[str, list[float]] = {key: [] for key in fns}
    keys = list(fns)
    for order in balanced_orders(len(keys), repeat):
        for i in order:
            samples[keys[i]].append(_sample(*fns[keys[i]]))
    return {key: statistics.median(values) for key, values in samples.items()}


class CopyLimit:
    """The yardstick: a large warm contiguous copy between two preallocated arrays, by the
    fastest way this machine has, at the run's thread count.

    The candidates: ``np.copyto`` in one call (one thread), ``np.copyto`` split into ``threads``
    slices copied by as many Python threads (np.copyto releases the GIL), and the core's own
    copy (non-temporal stores at this size, on its own pool) when the native engine is loaded.
    ``np.copyto`` alone is not the limit: glibc's memcpy writes through the cache below its
    non-temporal threshold, and a streaming copy beat it by ~1.8x on the development machine,
    so fractions of an np.copyto limit read up to 2. The fastest in a first round (``winner``)
    is then timed interleaved with every case (``fn``, ``inner``), because a shared machine's
    copy speed drifts by 2x within a minute.
    """

    def __init__(self, array_bytes: int, threads: int, repeat: int) -> None:
        n = max(array_bytes // 8, 1)
        self._src = np.ones(n, dtype=np.float64)
        self._dst = np.zeros(n, dtype=np.float64)
        self.array_bytes = self._src.nbytes
        self.bytes_moved = 2 * self._src.nbytes
        self.threads = threads
        self._pool = ThreadPoolExecutor(max_workers=threads) if threads > 1 else None
        ways: dict[str, Callable[[], object]] = {"np.copyto, one call": self._single}
        if self._pool is not None:
            ways[f"np.copyto split over {threads} threads"] = self._split
        self._plan = _core_copy_plan(self._dst, self._src)
        if self._plan is not None:
            ways[f"torchnp core copy ({self._plan.name})"] = self._core
        for fn in ways.values():
            fn()  # touches both arrays: every page is mapped before timing
        self.inner = calibrate_inner(self._single)
        first = time_interleaved({k: (fn, self.inner) for k, fn in ways.items()}, repeat)
        self.winner = min(first, key=first.__getitem__)
        self.fn: Callable[[], object] = ways[self.winner]
        self.method = f"{self.winner}, {self.array_bytes >> 20} MiB arrays, warm"
        self.first_gbps = {k: self.bytes_moved / s / 1e9 for k, s in first.items()}

    def _single(self) -> None:
        np.copyto(self._dst, self._src)

    def _split(self) -> None:
        assert self._pool is not None
        n = self._src.size
        bounds = [n * i // self.threads for i in range(self.threads + 1)]
        futures = [
            self._pool.submit(np.copyto, self._dst[lo:hi], self._src[lo:hi])
            for lo, hi in itertools.pairwise(bounds)
        ]
        for future in futures:
            future.result()

    def _core(self) -> None:
        self._plan.execute(self._dst, self._src)

    def close(self) -> None:
        """Stop the copy threads and free the arrays."""
        if self._pool is not None:
            self._pool.shutdown()
        self._src = self._dst = np.empty(0)
        self._plan = None


def _core_copy_plan(dst: np.ndarray, src: np.ndarray):
    """The native engine's plan for a flat copy of src into dst, or None without that engine."""
    from torchnp import _engines

    native, _ = _engines.load_native()
    return None if native is None else native.plan(dst, src)


def last_level_cache_bytes() -> int:
    """The size of the largest CPU cache one core sees, from sysfs (inside VMs sysconf reports
    the whole host's L3: 320 MiB on the development VM, whose sysfs says 32 MiB); sysconf, then
    32 MiB, where sysfs has nothing."""
    best = 0
    try:
        base = "/sys/devices/system/cpu/cpu0/cache"
        for entry in os.listdir(base):
            if entry.startswith("index"):
                with open(os.path.join(base, entry, "size")) as f:
                    text = f.read().strip()
                units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
                size = int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)
                best = max(best, size)
    except (OSError, ValueError, KeyError):
        best = 0
    if best:
        return best
    try:
        return int(os.sysconf("SC_LEVEL3_CACHE_SIZE")) or (32 << 20)
    except (ValueError, OSError, AttributeError):
        return 32 << 20
