"""The core's own thread pool, seen from Python: sized by the calling thread's
torch.get_num_threads(), a caller that finishes alone when helpers do not come, small copies on
the calling thread, fork safety, and no OpenMP anywhere in the binary.

Deterministic: helpers are held back with the pool's test gate, never by timing.
"""

from __future__ import annotations

import contextlib
import glob
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

import torchnp
from torchnp import _engines

pytestmark = pytest.mark.single_engine

BIG = 1 << 24  # 64 MiB of float32: far above the inline threshold, many work units


@pytest.fixture
def native():
    engine, reason = _engines.load_native()
    if engine is None:
        pytest.skip(reason)
    return engine


@contextlib.contextmanager
def torch_threads(n: int):
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@contextlib.contextmanager
def gate_closed(C):
    C.set_pool_gate(True)
    try:
        yield
    finally:
        C.set_pool_gate(False)


def test_set_num_threads_sizes_large_copies(native):
    src = np.arange(BIG, dtype=np.float32)
    dst = np.empty_like(src)
    for n in (1, 2, 3):
        with torch_threads(n):
            assert native._C.num_threads() == n
            plan = native.plan(dst, src)
            assert plan.threads == n, plan
            assert native._C.parallel_probe(16) == n  # distinct threads that really ran
            assert plan.execute(dst, src) <= n
    np.testing.assert_array_equal(dst, src)


def test_small_copies_stay_on_the_calling_thread(native):
    src = np.arange(4096, dtype=np.float32)  # 16 KiB: below the hand-off threshold
    with torch_threads(4):
        plan = native.plan(np.empty_like(src), src)
        assert plan.threads == 1
        assert plan.execute(np.empty_like(src), src) == 1


def test_caller_finishes_alone_while_helpers_are_held(native):
    src = np.random.default_rng(0).standard_normal(BIG).astype(np.float32)
    dst = np.zeros_like(src)
    with torch_threads(2):
        plan = native.plan(dst, src, 3)  # with sign flips: the negate kernel
        assert plan.threads == 2
        with gate_closed(native._C):
            ran = plan.execute(dst, src)
        assert ran == 1  # the helper never joined, and nothing waited for it
        np.testing.assert_array_equal(dst, -src)
        # Through the public API too, in a thread with a deadline: it must not hang.
        out = np.zeros_like(src)
        t = torch.from_numpy(src)
        with gate_closed(native._C):
            worker = threading.Thread(target=torchnp.to_numpy, args=(t,), kwargs={"out": out})
            worker.start()
            worker.join(timeout=30)
        assert not worker.is_alive(), "a conversion waited for a helper held at the gate"
        np.testing.assert_array_equal(out, src)
    assert native._C.pool_helpers() >= 1


def test_concurrent_callers_get_correct_results(native):
    rng = np.random.default_rng(1)
    arrays = [rng.standard_normal(1 << 20).astype(np.float64) for _ in range(4)]
    results: list = [None] * 4

    def convert(i: int) -> None:
        t = torch.from_numpy(arrays[i])
        results[i] = [torchnp.to_numpy(t, dtype=np.float32) for _ in range(10)]

    with torch_threads(2):
        threads = [threading.Thread(target=convert, args=(i,)) for i in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=120)
    for i in range(4):
        for r in results[i]:
            np.testing.assert_array_equal(r, arrays[i].astype(np.float32))


def _wait(pid: int, timeout: float) -> int | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return status
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_converts_after_the_parent_used_the_pool(native):
    src = np.arange(BIG, dtype=np.float32)
    t = torch.from_numpy(src)
    with torch_threads(2):
        assert native.plan(np.empty_like(src), src).threads == 2
        np.testing.assert_array_equal(torchnp.to_numpy(t, copy=True), src)  # the pool ran
        pid = os.fork()
        if pid == 0:  # the child: a threaded conversion must neither hang nor go wrong
            code = 1
            try:
                signal.alarm(60)
                out = torchnp.to_numpy(torch._neg_view(t), copy=True)
                ok = np.array_equal(out, -src) and native._C.parallel_probe(8) == 2
                code = 0 if ok else 2
            finally:
                os._exit(code)
        status = _wait(pid, 90)
    assert status is not None, "the forked child hung in its threaded conversion"
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_while_another_thread_is_converting(native):
    # The fork lands at any point of another thread's threaded copy (the pool busy, a helper in
    # a chunk, the pool's lock held): the child's pool starts fresh all the same.
    src = np.arange(BIG, dtype=np.float32)
    t = torch.from_numpy(src)
    stop = threading.Event()

    def convert_forever() -> None:
        out = np.empty_like(src)
        while not stop.is_set():
            torchnp.to_numpy(t, out=out)

    with torch_threads(2):
        worker = threading.Thread(target=convert_forever)
        worker.start()
        try:
            statuses = []
            for _ in range(5):
                time.sleep(0.01)
                pid = os.fork()
                if pid == 0:
                    code = 1
                    try:
                        signal.alarm(60)
                        ok = np.array_equal(torchnp.to_numpy(torch._neg_view(t), copy=True), -src)
                        code = 0 if ok else 2
                    finally:
                        os._exit(code)
                statuses.append(_wait(pid, 90))
        finally:
            stop.set()
            worker.join()
    assert all(s is not None and os.WIFEXITED(s) and os.WEXITSTATUS(s) == 0 for s in statuses), (
        statuses
    )


def test_no_openmp_in_the_binary(native):
    assert native._C.build_info()["parallel"] == "torchnp thread pool"
    so = glob.glob(os.path.join(os.path.dirname(native._C.__file__), "_C*.so"))[0]
    with open(so, "rb") as f:
        image = f.read()
    for marker in (b"GOMP_", b"__kmpc_", b"omp_get_num_threads", b"libgomp", b"libomp"):
        assert marker not in image, f"{marker!r} in {so}"
