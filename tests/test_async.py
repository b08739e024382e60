"""to_numpy_async / from_numpy_async and their handle, on both engines: the same results as the
plain functions, errors at the call, the concurrent.futures protocol, sources kept alive."""

from __future__ import annotations

import concurrent.futures
import gc
import weakref

import ml_dtypes
import numpy as np
import pytest
import torch

import torchnp


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
    assert a.tobytes() == b.tobytes()


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"copy": True},
        {"dtype": np.float16, "order": "C"},
        {"dtype": ml_dtypes.bfloat16},
        {"order": "F", "copy": True},
    ],
)
def test_to_numpy_async_gives_to_numpys_result(engine, kwargs):
    t = torch.randn(300, 200).T[::2]
    h = torchnp.to_numpy_async(t, **kwargs)
    assert isinstance(h, torchnp.Transfer) and isinstance(h, concurrent.futures.Future)
    _same(h.result(timeout=30), torchnp.to_numpy(t, **kwargs))
    assert h.done() and h.exception() is None


def test_to_numpy_async_into_out_returns_out(engine):
    t = torch.arange(1000, dtype=torch.int64)
    out = np.zeros(1000, np.int32)
    assert torchnp.to_numpy_async(t, out=out).result(30) is out
    assert np.array_equal(out, np.arange(1000, dtype=np.int32))


@pytest.mark.parametrize(
    "kwargs", [{}, {"dtype": torch.float32}, {"copy": True}, {"dtype": torch.bfloat16}]
)
def test_from_numpy_async_gives_from_numpys_result(engine, kwargs):
    a = np.random.default_rng(0).random((64, 50))[::-1].astype(">f8")
    r = torchnp.from_numpy_async(a, **kwargs).result(30)
    expected = torchnp.from_numpy(a, **kwargs)
    assert r.dtype == expected.dtype and r.stride() == expected.stride()
    assert torch.equal(r, expected)


def test_a_shared_view_is_done_at_once(engine):
    t = torch.ones(10)
    h = torchnp.to_numpy_async(t)
    assert h.done()
    r = h.result()
    r[0] = 5
    assert t[0] == 5  # the same memory, as to_numpy shares it
    a = np.ones(4)
    assert torchnp.from_numpy_async(a).done()


def test_bad_arguments_raise_at_the_call_and_write_nothing(engine):
    t = torch.ones(4)
    out = np.zeros(5, np.float32)
    with pytest.raises(ValueError):
        torchnp.to_numpy_async(t, out=out)
    with pytest.raises(ValueError, match="copy=False"):
        torchnp.to_numpy_async(t, np.float64, copy=False)
    with pytest.raises(TypeError):
        torchnp.from_numpy_async(np.array(["a"]))
    assert not out.any()


def test_handles_work_with_concurrent_futures(engine):
    tensors = [torch.full((50_000,), float(i)) for i in range(6)]
    handles = [torchnp.to_numpy_async(t, np.float64) for t in tensors]
    _, not_done = concurrent.futures.wait(handles, timeout=60)
    assert not not_done
    seen = []
    for h in concurrent.futures.as_completed(handles, timeout=60):
        seen.append(float(h.result()[0]))
    assert sorted(seen) == [float(i) for i in range(6)]
    called = []
    handles[0].add_done_callback(lambda f: called.append(f.result().dtype))
    assert called == [np.dtype(np.float64)]
    assert handles[1].wait(timeout=10) is True
    assert "done" in repr(handles[1])


def test_the_handle_keeps_the_source_alive_until_it_is_done(engine):
    t = torch.randn(1 << 16)
    expected = t.numpy().astype(np.float64)
    ref = weakref.ref(t)
    h = torchnp.to_numpy_async(t, np.float64)
    del t
    assert np.array_equal(h.result(30), expected)
    gc.collect()
    assert ref() is None  # released once done


def test_many_handles_in_flight(engine):
    rng = np.random.default_rng(1)
    arrays = [rng.random(int(rng.integers(1, 100_000))) for _ in range(20)]
    handles = [torchnp.from_numpy_async(a[::-1], torch.float32) for a in arrays]
    for a, h in zip(arrays, handles, strict=True):
        assert torch.equal(h.result(60), torch.from_numpy(a[::-1].astype(np.float32)))
