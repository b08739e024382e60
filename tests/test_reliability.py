"""Tensors torchnp must refuse rather than read: each test is a defect the adversarial probe found
(functionalize wrappers, uninitialised lazy parameters, storage freed under a view), on both
engines, through every way a call can take (the default shortcut, the policy, a memoised replay,
out=)."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time

import numpy as np
import pytest
import torch

import torchnp
from torchnp import _engines

# Each way a call can take: the default-argument shortcut, a copy, a cast, a layout change.
CALLS = [{}, {"copy": True}, {"dtype": np.float64}, {"order": "F"}]


def _memoise(kwargs: dict) -> None:
    """Run the signature once on a healthy tensor, so that the next call may be a replay."""
    torchnp.to_numpy(torch.arange(12.0).reshape(3, 4)[1:], **kwargs)


@pytest.mark.parametrize("kwargs", CALLS)
def test_inside_functionalize_to_numpy_refuses_instead_of_reading_garbage(engine, kwargs):
    _memoise(kwargs)
    seen = []

    def f(x):
        x.add_(1)
        with pytest.raises(TypeError, match="functionalize"):
            torchnp.to_numpy(x, **kwargs)
        seen.append(True)
        return x

    torch.func.functionalize(f)(torch.zeros(3, 4))
    assert seen


@pytest.mark.parametrize(
    "lazy",
    [
        lambda: torch.nn.LazyLinear(4).weight,
        lambda: torch.nn.LazyLinear(4).bias,
        lambda: torch.nn.parameter.UninitializedBuffer(),
    ],
    ids=["weight", "bias", "buffer"],
)
@pytest.mark.parametrize("kwargs", CALLS)
def test_uninitialised_lazy_parameter_raises_like_torch(engine, lazy, kwargs):
    with pytest.raises(ValueError, match=r"uninitialized .*first forward pass"):
        torchnp.to_numpy(lazy(), **kwargs)


def test_lazy_parameter_converts_once_initialised(engine):
    layer = torch.nn.LazyLinear(4)
    layer(torch.zeros(2, 3))
    np.testing.assert_array_equal(torchnp.to_numpy(layer.weight), layer.weight.detach().numpy())


def _freed(new_bytes: int):
    """A tensor, a view of it taken first, and the storage then shrunk to `new_bytes` (0: freed,
    as FSDP frees a parameter's storage)."""
    t = torch.arange(12.0).reshape(3, 4)
    v = t[1:]
    t.untyped_storage().resize_(new_bytes)
    return t, v


@pytest.mark.parametrize("new_bytes", [0, 16, 44], ids=["freed", "shrunk", "one-short"])
@pytest.mark.parametrize("kwargs", CALLS)
def test_storage_freed_under_a_view_raises_instead_of_crashing(engine, kwargs, new_bytes):
    _memoise(kwargs)
    t, v = _freed(new_bytes)
    for x in (t, v):
        with pytest.raises(ValueError, match="storage now holds"):
            torchnp.to_numpy(x, **kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"dtype": np.float64}])
def test_storage_freed_under_a_view_raises_with_out_and_leaves_out_untouched(engine, kwargs):
    out = np.full((2, 4), 7.0, dtype=kwargs.get("dtype", np.float32))
    torchnp.to_numpy(torch.ones(2, 4), out=np.empty_like(out))  # memoise the out= signature
    _, v = _freed(0)
    with pytest.raises(ValueError, match="storage now holds"):
        torchnp.to_numpy(v, out=out)
    assert (out == 7).all()


def test_storage_resized_back_converts_again(engine):
    t, v = _freed(0)
    t.untyped_storage().resize_(48)
    t.copy_(torch.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(torchnp.to_numpy(v), np.arange(4.0, 12.0).reshape(2, 4))
    np.testing.assert_array_equal(
        torchnp.to_numpy(v, dtype=np.float64), np.arange(4.0, 12.0).reshape(2, 4)
    )


def test_storage_exactly_covering_the_view_converts(engine):
    # The last byte of the view is the storage's last byte: readable (the check is not off by one).
    t = torch.arange(12.0)
    v = t[4:8]
    t.untyped_storage().resize_(32)
    np.testing.assert_array_equal(
        torchnp.to_numpy(v, copy=True), np.arange(4.0, 8.0, dtype=np.float32)
    )


def test_empty_view_of_a_freed_storage_reads_nothing(engine):
    t, _ = _freed(0)
    assert torchnp.to_numpy(t[:0]).shape == (0, 4)


# ---- concurrency --------------------------------------------------------------------------


def _mixed_jobs(seed: int):
    """(call, its oracle) pairs covering the paths a program mixes: views, small and large
    copies, casts, transposes, out=, from_numpy of odd layouts, trees and stacks."""
    rng = np.random.default_rng(seed)
    big = torch.from_numpy(rng.standard_normal((512, 640)).astype(np.float32))  # 1.25 MiB
    small = torch.from_numpy(rng.standard_normal((16, 24)))
    swapped = rng.standard_normal(3000).astype(">f4")
    out = np.empty((640, 512), np.float64)
    images = [rng.integers(0, 255, (8, 8, 3), dtype=np.uint8) for _ in range(5)]
    return [
        (lambda: torchnp.to_numpy(small), small.numpy()),
        (lambda: torchnp.to_numpy(small, copy=True), small.numpy()),
        (lambda: torchnp.to_numpy(small, dtype=np.float32), small.numpy().astype(np.float32)),
        (lambda: torchnp.to_numpy(big, dtype=np.float16), big.numpy().astype(np.float16)),
        (lambda: torchnp.to_numpy(big.T, order="C"), np.ascontiguousarray(big.numpy().T)),
        (lambda: torchnp.to_numpy(big.T, out=out), big.numpy().T.astype(np.float64)),
        (lambda: torchnp.from_numpy(swapped[::-1]).numpy(), swapped[::-1].astype(np.float32)),
        (
            lambda: torchnp.tree_to_numpy({"b": big, "s": [small]}, copy=True)["b"],
            big.numpy(),
        ),
        (lambda: torchnp.stack_from_numpy(images).numpy(), np.stack(images)),
    ], out


def test_threads_converting_while_another_sets_the_thread_count(engine):
    # 8 threads x 1,000 mixed conversions while another thread keeps changing torch's thread
    # count: every result right, nothing deadlocks (a hang fails at the join timeout).
    errors: list[str] = []
    stop = threading.Event()

    def convert(seed: int) -> None:
        jobs, _ = _mixed_jobs(seed)
        try:
            for k in range(1000):
                call, want = jobs[k % len(jobs)]
                got = call()
                if got.dtype != want.dtype or not np.array_equal(got, want):
                    errors.append(f"thread {seed}, call {k}: wrong result")
                    return
        except Exception as exc:  # reported below
            errors.append(f"thread {seed}: {type(exc).__name__}: {exc}")

    def churn() -> None:
        counts = (1, 2, 3, 2)
        k = 0
        while not stop.is_set():
            torch.set_num_threads(counts[k % len(counts)])
            k += 1
            time.sleep(0.0005)

    previous = torch.get_num_threads()
    setter = threading.Thread(target=churn)
    workers = [threading.Thread(target=convert, args=(seed,)) for seed in range(8)]
    setter.start()
    try:
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=300)
        assert not any(w.is_alive() for w in workers), "a converting thread hung"
    finally:
        stop.set()
        setter.join()
        torch.set_num_threads(previous)
    assert not errors, errors[:5]


def test_large_copies_release_the_gil(engine):
    if engine != "native":
        pytest.skip("the Python engine's copies are NumPy's")
    src = np.arange(1 << 24, dtype=np.float32)  # 64 MiB
    dst = np.empty_like(src)
    progress = [0]
    stop = threading.Event()

    def count() -> None:
        while not stop.is_set():
            progress[0] += 1

    counter = threading.Thread(target=count)
    counter.start()
    try:
        time.sleep(0.01)
        seen = []
        copy = _engines.active().copy
        for _ in range(5):
            before = progress[0]
            copy(dst, src)  # ~5-20 ms of C: the counter runs only if the GIL is released
            seen.append(progress[0] - before)
    finally:
        stop.set()
        counter.join()
    np.testing.assert_array_equal(dst, src)
    # Holding the GIL, the counter would advance only at the switch before the call (5 ms
    # interval): at most a few thousand steps; released, it runs all through the copy.
    assert max(seen) > 20_000, seen


# ---- lifetime and leaks -------------------------------------------------------------------


def test_failing_calls_leak_no_references(engine):
    t = torch.arange(12.0).reshape(3, 4)
    a = np.arange(12.0)[::-1]
    out = np.empty((4, 4), np.float32)  # the wrong shape
    ro = np.frombuffer(bytes(48), np.float32)
    args = (t, a, out, ro)
    before = [sys.getrefcount(x) for x in args]
    objects = len(gc.get_objects())
    for _ in range(10_000):
        for call, exc in (
            (lambda: torchnp.to_numpy(t, out=out), ValueError),
            (lambda: torchnp.to_numpy(t.T, order="C", copy=False), ValueError),
            (lambda: torchnp.from_numpy(a, copy=False), ValueError),
            (lambda: torchnp.from_numpy(ro, copy=False), ValueError),
            (lambda: torchnp.to_numpy(t, dtype="U3"), TypeError),
        ):
            with pytest.raises(exc):
                call()
    gc.collect()
    assert [sys.getrefcount(x) for x in args] == before
    assert len(gc.get_objects()) - objects < 1000


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="needs /proc")
def test_rss_stays_flat_over_many_conversions(engine):
    jobs, _ = _mixed_jobs(3)

    def run(n: int) -> None:
        for k in range(n):
            jobs[k % len(jobs)][0]()

    run(20_000)  # warm: pools, memos, allocator arenas
    gc.collect()
    start = _rss()
    run(100_000)
    gc.collect()
    grown = _rss() - start
    assert grown < 0.01 * start, f"RSS grew {grown / 1e6:.1f} MB from {start / 1e6:.1f} MB"


# ---- huge inputs --------------------------------------------------------------------------


def test_huge_uint8_tensor_and_strided_views_both_directions(engine, big_memory):
    # 2**31 + 4099 bytes: flat indices, offsets and strides beyond 32 bits, in both directions.
    if engine != "native":
        pytest.skip("the native engine's 64-bit index math (the Python engine is NumPy's)")
    n = 2**31 + 4099
    x = np.resize(np.arange(251, dtype=np.uint8), n)  # x[i] == i % 251
    t = torch.from_numpy(x)
    probe = np.array([0, 1, 2**31 - 1, 2**31, 2**31 + 1, n - 2, n - 1])

    copied = torchnp.to_numpy(t, copy=True)
    assert not np.shares_memory(copied, x)
    np.testing.assert_array_equal(copied[probe], probe % 251)
    del copied
    view = t[5::3]  # an offset, a stride, elements beyond 2**31 bytes in
    got = torchnp.to_numpy(view, dtype=np.int16)
    idx = np.array([0, 1, len(got) // 2, len(got) - 1])
    np.testing.assert_array_equal(got[idx], (5 + 3 * idx) % 251)
    del got
    cols = 2**16 + 3
    rows = n // cols
    square = t[: rows * cols].view(rows, cols)
    transposed = torchnp.to_numpy(square.T, order="C")
    for i, j in ((0, 0), (cols - 1, rows - 1), (cols // 2, rows - 1), (cols - 1, 0)):
        assert transposed[i, j] == (j * cols + i) % 251, (i, j)
    del transposed
    back = torchnp.from_numpy(x[::-1])
    assert back.is_contiguous() and back.numel() == n
    for i in (0, 1, n // 2, n - 1):
        assert int(back[i]) == (n - 1 - i) % 251, i
    del back
    gc.collect()
