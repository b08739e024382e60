"""The recycling pool for large fresh outputs (_pool): reuse, lifetimes, bounds, both engines."""

from __future__ import annotations

import ctypes
import functools
import gc
import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import torch

import torchnp
from torchnp import _engines, _pool

BIG = 3 << 20  # float32 elements: 12 MiB, past _pool.MIN_BYTES


@pytest.fixture
def private_pool():
    """use(limit): a private pool of the active engine's kind (the Python engine's
    _pool.BufferPool, the native engine's _C.BufferPool), the one its large results come from
    for this test, so counts do not depend on what other tests left behind. Afterwards every
    engine has its own pool back, and the active engine's is the active pool."""
    made, undo = [], []

    def use(limit: int):
        engine = _engines.active()
        p = type(engine.pool)(limit)
        if engine.name == "native":
            undo.append(functools.partial(engine._C.set_output_pool, engine.pool))
            engine._C.set_output_pool(p)
        else:
            undo.append(functools.partial(setattr, _pool, "POOL", _pool.POOL))
            _pool.POOL = p
        _pool.activate(p)
        made.append(p)
        return p

    yield use
    for step in reversed(undo):
        step()
    _pool.activate(_engines.active().pool)
    gc.collect()
    for p in made:
        p.clear()


@pytest.fixture
def pool(engine, private_pool):
    """A private 256 MiB pool of the engine under test."""
    return private_pool(256 << 20)


def _start(a: np.ndarray) -> int:
    return a.__array_interface__["data"][0]


def test_large_copies_come_from_the_pool_and_go_back(engine, pool):
    t = torch.arange(BIG, dtype=torch.float32)
    r = torchnp.to_numpy(t, copy=True)
    assert not r.flags.owndata and r.flags.writeable and r.flags.c_contiguous
    assert _start(r) % (2 << 20) == 0  # huge-page aligned
    np.testing.assert_array_equal(r, t.numpy())
    first = _start(r)
    assert pool.cached_bytes == 0
    del r
    assert pool.cached_bytes >= t.nbytes
    r2 = torchnp.to_numpy(t * 2, copy=True)  # same size: the same memory, rewritten
    assert _start(r2) == first and pool.hits == 1
    np.testing.assert_array_equal(r2, (t * 2).numpy())


def test_small_results_own_their_data(engine, pool):
    r = torchnp.to_numpy(torch.ones(1000), copy=True)
    assert r.flags.owndata and pool.misses == 0 and pool.hits == 0


def test_views_keep_the_memory_out_of_the_pool(engine, pool):
    t = torch.arange(BIG, dtype=torch.float32)
    r = torchnp.to_numpy(t, copy=True)
    view = r.reshape(3, -1).T[::2]
    del r
    gc.collect()
    assert pool.cached_bytes == 0  # the view still uses it
    other = torchnp.to_numpy(t + 1, copy=True)
    assert not np.shares_memory(other, view)
    np.testing.assert_array_equal(view, t.numpy().reshape(3, -1).T[::2])
    del view
    assert pool.cached_bytes >= t.nbytes


def test_from_numpy_copies_keep_their_memory_while_the_tensor_lives(engine, pool):
    a = np.arange(BIG, dtype=np.float32)[::-1]  # negative stride: a copy
    t = torchnp.from_numpy(a)
    del a
    gc.collect()
    assert pool.cached_bytes == 0
    spare = torchnp.from_numpy(np.ones(BIG, np.float32)[::-1])
    assert t[0].item() == BIG - 1 and t[-1].item() == 0 and spare[0].item() == 1
    del t, spare
    assert pool.cached_bytes >= 2 * BIG * 4


@pytest.mark.parametrize("order", ["C", "F", "K"])
def test_pooled_results_have_the_requested_layout(engine, pool, order):
    t = torch.arange(BIG, dtype=torch.float32).reshape(3, 1024, 1024).permute(2, 0, 1)
    r = torchnp.to_numpy(t, dtype=np.float64, order=order)
    assert not r.flags.owndata
    expected = t.numpy().astype(np.float64)
    np.testing.assert_array_equal(r, expected)
    if order == "C":
        assert r.flags.c_contiguous
    elif order == "F":
        assert r.flags.f_contiguous
    else:
        assert np.argsort(r.strides).tolist() == np.argsort(t.stride()).tolist()


def test_limit_bounds_what_is_kept(engine, private_pool):
    p = private_pool(16 << 20)
    t = torch.ones(BIG)  # 12 MiB: fits the limit once
    a, b = torchnp.to_numpy(t, copy=True), torchnp.to_numpy(t, copy=True)
    del a, b
    assert p.cached_bytes <= 16 << 20
    huge = torchnp.to_numpy(torch.ones(5 << 20), copy=True)  # 20 MiB > limit: NumPy's memory
    assert huge.flags.owndata


def test_idle_buffers_are_unmapped(engine, pool):
    r = torchnp.to_numpy(torch.ones(BIG), copy=True)
    del r
    assert pool.cached_bytes > 0
    pool.idle_seconds = 0.0
    keep = torchnp.to_numpy(torch.ones(4 * BIG), copy=True)  # any pool operation expires
    assert pool.cached_bytes == 0 and keep.size == 4 * BIG  # idle ones


def test_empty_cache_releases_everything(engine, pool):
    r = torchnp.to_numpy(torch.ones(BIG), copy=True)
    del r
    held = pool.cached_bytes
    assert held > 0
    assert torchnp.empty_cache() == held
    assert pool.cached_bytes == 0 and torchnp.info().pool_cached_bytes == 0


def test_threads_converting_at_once_get_distinct_correct_memory(engine, pool):
    sources = [torch.full((BIG // 4,), float(k)) for k in range(8)]
    results: dict[int, list] = {}

    def work(k: int) -> None:
        outs = [torchnp.to_numpy(sources[k], copy=True) for _ in range(4)]
        results[k] = [(o, float(o.min()), float(o.max())) for o in outs]

    threads = [threading.Thread(target=work, args=(k,)) for k in range(8)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    live = [o for k in results for o, _, _ in results[k]]
    for k, items in results.items():
        assert all(lo == hi == float(k) for _, lo, hi in items)
    for i, x in enumerate(live):  # every live result has memory of its own
        assert not any(np.shares_memory(x, y) for y in live[i + 1 :])


@pytest.mark.single_engine
@pytest.mark.parametrize(("value", "expect"), [("0", "owning"), ("lots", "error"), ("-1", "error")])
def test_pool_limit_from_the_environment(value, expect):
    code = (
        "import torch, torchnp\n"
        "r = torchnp.to_numpy(torch.ones(3 << 20), copy=True)\n"
        "print(r.flags.owndata, torchnp.info().pool_limit_bytes)\n"
    )
    env = {**os.environ, "TORCHNP_POOL_BYTES": value}
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    if expect == "owning":
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.split() == ["True", "0"]
    else:
        assert proc.returncode != 0
        assert "TORCHNP_POOL_BYTES must be" in proc.stderr


def test_a_finalizer_during_a_pool_operation_neither_blocks_nor_corrupts(private_pool):
    # Regression (review): finalizers used to take the pool's lock and rebuild its free list,
    # so one running inside a pool call (GC may run anywhere) lost or double-counted memory.
    # Now they only hand the mapping over; here one runs while another thread holds the lock.
    # (The Python pool's: the native one runs no Python under its lock, and its leases hand
    # buffers back under that lock alone; test_leases_freed_from_many_threads covers it.)
    previous = _engines.use("python")
    try:
        pool = private_pool(256 << 20)
        _finalizer_inside_pool_operation(pool)
    finally:
        _engines.restore(previous)


def _finalizer_inside_pool_operation(pool) -> None:
    a, b = (torchnp.to_numpy(torch.ones(BIG), copy=True) for _ in range(2))
    del a
    done = threading.Event()

    def drop() -> None:
        nonlocal b
        del b  # the finalizer runs in this thread
        done.set()

    with pool._lock:
        th = threading.Thread(target=drop)
        th.start()
        th.join(timeout=10)
        assert done.is_set(), "a finalizer blocked on the pool's lock"
    assert pool.cached_bytes == 2 * (-(-BIG * 4 // (2 << 20)) * (2 << 20))
    assert len(pool._free) == 2


def test_no_mapping_means_numpy_memory(engine, pool):
    pool.fail_maps(1)
    r = torchnp.to_numpy(torch.ones(BIG), copy=True)
    assert r.flags.owndata and r.sum() == BIG
    again = torchnp.to_numpy(torch.ones(BIG), copy=True)  # the next mapping works
    assert not again.flags.owndata and again.sum() == BIG


def _vm_flags(address: int) -> set[str]:
    """The VmFlags of the mapping holding `address` (/proc/self/smaps)."""
    inside = False
    with open("/proc/self/smaps") as f:
        for line in f:
            head = line.split()[0]
            if "-" in head and not head.endswith(":"):
                low, high = (int(x, 16) for x in head.split("-"))
                inside = low <= address < high
            elif inside and head == "VmFlags:":
                return set(line.split()[1:])
    raise AssertionError(f"no mapping holds {address:#x}")


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
_BLOCK = 2 << 20  # the pool's alignment: one huge page


def _resident(address: int, length: int) -> list[bool]:
    """Whether each page of [address, address + length) is in memory (mincore(2))."""
    libc = ctypes.CDLL(None, use_errno=True)
    pages = -(-length // _PAGE)
    vec = (ctypes.c_ubyte * pages)()
    rc = libc.mincore(ctypes.c_void_p(address), ctypes.c_size_t(length), vec)
    assert rc == 0, os.strerror(ctypes.get_errno())
    return [bool(v & 1) for v in vec]


def _blocks_resident(a: np.ndarray) -> list[bool]:
    """Whether the first page of each 2 MiB block of a pool array is in memory."""
    pages = _resident(_start(a), a.nbytes)
    return pages[:: _BLOCK // _PAGE]


def _thp_available() -> bool:
    try:
        with open("/sys/kernel/mm/transparent_hugepage/enabled") as f:
            return "[never]" not in f.read()
    except OSError:
        return False


linux_thp = pytest.mark.skipif(
    not (os.path.exists("/proc/self/smaps") and _thp_available()),
    reason="needs Linux /proc and transparent huge pages",
)


def test_both_pools_start_with_the_same_huge_page_rules(engine, pool):
    assert pool.fresh_hugepage_max == _pool.FRESH_HUGEPAGE_MAX
    assert pool.cold_block_seconds == _pool.COLD_BLOCK_SECONDS
    assert pool.cold_blocks == 0


@linux_thp
def test_large_fresh_mappings_are_faulted_in_as_huge_pages_while_warm(engine, pool):
    """From FRESH_HUGEPAGE_MIN a fresh mapping asks for huge pages and is faulted in, block by
    block, before it is handed out (no block counts as cold here); smaller ones are left to
    the copy's first touch with regular pages. Both give the right bytes."""
    pool.cold_block_seconds = 1e9
    large = torch.arange(_pool.FRESH_HUGEPAGE_MIN // 4, dtype=torch.float32)  # 32 MiB
    small = torch.arange((_pool.FRESH_HUGEPAGE_MIN - _BLOCK) // 4, dtype=torch.float32)
    fresh = pool.empty((_pool.FRESH_HUGEPAGE_MIN,), np.dtype(np.uint8))
    assert all(_blocks_resident(fresh)) and "hg" in _vm_flags(_start(fresh))
    fresh_small = pool.empty((small.nbytes,), np.dtype(np.uint8))
    assert not any(_blocks_resident(fresh_small)) and "hg" not in _vm_flags(_start(fresh_small))
    del fresh, fresh_small
    r_large = torchnp.to_numpy(large, copy=True)
    r_small = torchnp.to_numpy(small, copy=True)
    assert not r_large.flags.owndata and not r_small.flags.owndata  # both from the pool
    np.testing.assert_array_equal(r_large, large.numpy())
    np.testing.assert_array_equal(r_small, small.numpy())
    assert pool.cold_blocks == 0


@linux_thp
def test_a_cold_block_sends_the_rest_and_the_next_mappings_to_regular_pages(engine, pool):
    """A block slower than cold_block_seconds (0 here: the first one) ends the huge pages: the
    rest of that mapping is advised MADV_NOHUGEPAGE and left unfaulted, and the next fresh
    mapping, within the back-off, asks for nothing and is not faulted in."""
    pool.cold_block_seconds = 0.0
    first = pool.empty((64 << 20,), np.dtype(np.uint8))
    assert pool.cold_blocks == 1
    blocks = _blocks_resident(first)
    assert blocks[0] and not any(blocks[1:])
    assert "hg" in _vm_flags(_start(first)) and "nh" in _vm_flags(_start(first) + _BLOCK)
    second = pool.empty((48 << 20,), np.dtype(np.uint8))  # (first is still on lease)
    assert pool.cold_blocks == 1  # not probed again: the back-off
    assert not any(_blocks_resident(second)) and "hg" not in _vm_flags(_start(second))
    t = torch.arange(12 << 20, dtype=torch.float32)  # 48 MiB, fresh too
    np.testing.assert_array_equal(torchnp.to_numpy(t, copy=True), t.numpy())


@linux_thp
def test_fresh_hugepage_max_caps_the_huge_page_mappings(engine, pool):
    pool.cold_block_seconds = 1e9
    pool.fresh_hugepage_max = 40 << 20
    at = pool.empty((40 << 20,), np.dtype(np.uint8))
    past = pool.empty((48 << 20,), np.dtype(np.uint8))
    assert all(_blocks_resident(at)) and "hg" in _vm_flags(_start(at))
    assert not any(_blocks_resident(past)) and "hg" not in _vm_flags(_start(past))
