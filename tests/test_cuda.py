"""CUDA tensors through torchnp on a real GPU, on both engines, against the CPU result as the
oracle (the same conversion of the tensor's CPU copy, itself checked against NumPy elsewhere).

Marked ``cuda``: skipped without a device (benchmarks/gpu_check.sh runs them on a GPU machine).
With the native engine and the CUDA module built, the transfers go through torchnp's pipeline,
which these tests check is what ran.
"""

from __future__ import annotations

import gc

import ml_dtypes
import numpy as np
import pytest
import torch

import torchnp
from torchnp import _cuda_loader, _device, _engines

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def _pipeline(device: torch.device) -> bool:
    """Whether this engine sends the device's transfers through torchnp's own pipeline."""
    return _device.link_for(device) is not None


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert a.dtype == b.dtype and a.shape == b.shape
    assert a.tobytes() == b.tobytes()


def _check_module_state(engine: str) -> None:
    if engine == "native" and _cuda_loader.load() is not None:
        assert _pipeline(torch.device("cuda")), "the CUDA module is built but not used"
        assert torchnp.info().cuda.startswith("built, ") and "device" in torchnp.info().cuda


def _staged_bytes() -> int:
    return sum(_device.staging_info()["held_bytes"].values())


@pytest.fixture(params=["8 MiB chunks", "64 KiB chunks"])
def chunks(request):
    """The default staging, and chunks small enough that every case spans many of them (the
    ring's reuse, rebased drains, gathers that start mid-tensor)."""
    if request.param.startswith("64"):
        torchnp.set_staging(chunk_bytes=64 << 10)
    yield request.param
    torchnp.set_staging(chunk_bytes=8 << 20)


@pytest.mark.parametrize(
    "make",
    [
        lambda d: torch.randn(1 << 20, device=d),  # 4 MiB: a few chunks
        lambda d: torch.randn(3, 500, 700, device=d).permute(1, 2, 0),  # dense, permuted
        lambda d: torch.randn(64, 3, 100, device=d).permute(2, 0, 1)[:, ::2],  # gathered
        lambda d: torch.randn(256, 3, 1000, device=d).permute(2, 0, 1)[:, ::2],  # gathered, 1.5 MB
        lambda d: torch.randn(1000, 10, device=d)[:, 3],  # a strided column
        lambda d: torch.randn(7, device=d),  # small: one chunk, one event
        lambda d: torch.randn(1 << 22, device=d).to(torch.bfloat16),
        lambda d: (torch.randn(1000, device=d) + 1j * torch.randn(1000, device=d)).conj(),
        lambda d: torch.randint(-(2**40), 2**40, (100_000,), device=d),
        lambda d: torch.empty(0, 5, device=d),
    ],
)
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"order": "C"}, {"dtype": np.float32}, {"dtype": np.float64, "order": "F"}],
)
def test_to_numpy_of_a_cuda_tensor_is_the_cpu_result(engine, chunks, make, kwargs):
    _check_module_state(engine)
    t = make("cuda")
    if t.is_complex() and "dtype" in kwargs:
        kwargs = {**kwargs, "dtype": np.complex64}
    expected = torchnp.to_numpy(t.cpu(), **kwargs, copy=True)
    torchnp.empty_cache()
    got = torchnp.to_numpy(t, **kwargs)
    _same(got, expected)
    assert got.strides == expected.strides
    if t.numel() and _pipeline(t.device):
        assert _staged_bytes() > 0, "the bytes did not go through torchnp's staging"


def test_integer_narrowing_and_bf16_widening(engine):
    t = torch.randint(-(2**62), 2**62, (1 << 20,), device="cuda")
    _same(torchnp.to_numpy(t, np.int16), t.cpu().numpy().astype(np.int16))
    b = torch.randn(1 << 20, device="cuda").bfloat16()
    _same(torchnp.to_numpy(b, np.float32), b.float().cpu().numpy())
    _same(torchnp.to_numpy(b), b.cpu().view(torch.int16).numpy().view(ml_dtypes.bfloat16))


@pytest.mark.parametrize("pinned", [False, True])
def test_to_numpy_into_out(engine, pinned):
    t = torch.randn(2048, 1024, device="cuda")
    make = torchnp.empty_pinned if pinned else np.empty
    out = make(t.shape, np.float32)
    assert torchnp.to_numpy(t, out=out) is out
    _same(out, t.cpu().numpy())
    out_t = np.empty((1024, 2048), np.float64)
    torchnp.to_numpy(t.T, out=out_t)
    _same(out_t, t.T.cpu().numpy().astype(np.float64))


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.random.default_rng(0).random((1000, 1000)).astype(np.float32),
        lambda: np.random.default_rng(1).random((300, 400))[::-1, ::2],
        lambda: np.random.default_rng(2).random(100_000).astype(">f8"),
        lambda: np.random.default_rng(3).integers(0, 255, (64, 64, 3), dtype=np.uint8),
        lambda: np.zeros((0, 3)),
    ],
)
@pytest.mark.parametrize("dtype", [None, torch.float32, torch.float16])
def test_from_numpy_to_cuda_is_the_cpu_result(engine, chunks, make, dtype):
    _check_module_state(engine)
    a = make()
    expected = torchnp.from_numpy(a, dtype, copy=True)
    got = torchnp.from_numpy(a, dtype, device="cuda")
    assert got.device.type == "cuda" and got.dtype == expected.dtype
    assert torch.equal(got.cpu(), expected)


def test_from_numpy_of_a_pinned_array(engine):
    a = torchnp.empty_pinned((512, 512), np.float32)
    a[...] = np.random.default_rng(0).random(a.shape)
    assert torch.equal(torchnp.from_numpy(a, device="cuda").cpu(), torch.from_numpy(a.copy()))


def test_an_upload_from_page_locked_memory_waits_for_a_pending_copy_into_it(engine):
    g = torch.full((1 << 22,), 7.0, device="cuda")
    pinned = torch.empty(1 << 22, pin_memory=True)
    torch.cuda._sleep(50_000_000)
    pinned.copy_(g, non_blocking=True)  # lands later, on the current stream
    r = torchnp.from_numpy(pinned.numpy(), torch.float64, device="cuda")  # a cast: host-packed
    assert bool((r == 7.0).all())


def test_reads_are_ordered_after_the_current_streams_work(engine):
    side = torch.cuda.Stream()
    with torch.cuda.stream(side):
        t = torch.empty(1 << 24, device="cuda")
        torch.cuda._sleep(50_000_000)  # keep the stream busy, then write
        t.fill_(3.0)
        got = torchnp.to_numpy(t)  # must see the fill without a device-wide wait
    assert (got == 3.0).all()


def test_results_are_ready_for_the_current_stream(engine):
    side = torch.cuda.Stream()
    a = np.arange(1 << 22, dtype=np.uint8)
    with torch.cuda.stream(side):
        # uint8 -> float32 widens on the device, queued on `side`: the sum must follow it.
        t = torchnp.from_numpy(a, torch.float32, device="cuda")
        s = t.double().sum()  # queued on `side` after the upload
    side.synchronize()
    assert s.item() == float(a.astype(np.float64).sum())


def test_async_handles_on_several_streams(engine):
    streams = [torch.cuda.Stream() for _ in range(3)]
    handles, expected = [], []
    for i, s in enumerate(streams):
        with torch.cuda.stream(s):
            t = torch.empty(1 << 21, device="cuda")
            torch.cuda._sleep(20_000_000)  # a read not ordered after the fill sees garbage
            t.fill_(float(i))
            handles.append(torchnp.to_numpy_async(t, np.float64))
            expected.append(np.full(1 << 21, float(i)))
            handles.append(torchnp.from_numpy_async(expected[-1], device="cuda"))
    for k, h in enumerate(handles):
        r = h.result(60)
        want = expected[k // 2]
        if isinstance(r, torch.Tensor):
            torch.cuda.synchronize()
            assert torch.equal(r.cpu(), torch.from_numpy(want))
        else:
            assert np.array_equal(r, want)


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two devices")
def test_two_devices_each_with_the_right_device_current(engine):
    torch.cuda.set_device(0)
    t1 = torch.randn(1 << 20, device="cuda:1")
    _same(torchnp.to_numpy(t1), t1.cpu().numpy())
    assert torch.cuda.current_device() == 0
    r = torchnp.from_numpy(np.ones(1 << 20), device="cuda:1")
    assert r.device == torch.device("cuda:1") and torch.cuda.current_device() == 0
    assert bool((r == 1).all())


def test_staging_is_bounded_reported_and_released(engine):
    t = torch.randn(1 << 26, device="cuda")  # 256 MiB: many chunks
    _same(torchnp.to_numpy(t), t.cpu().numpy())
    info = torchnp.info()
    if _pipeline(torch.device("cuda")):
        held = sum(info.staging["held_bytes"].values())
        assert 0 < held <= info.staging["max_bytes"]
        gc.collect()
        assert torchnp.empty_cache() >= held
        assert sum(torchnp.info().staging["held_bytes"].values()) == 0


def test_pinned_arrays_are_page_locked(engine):
    a = torchnp.zeros_pinned((1000, 3), np.float64)
    assert not a.any() and a.ctypes.data % 256 == 0
    # torch sees the memory as pinned through a tensor over it.
    assert torch.from_numpy(a).is_pinned()


@pytest.mark.single_engine
def test_python_engine_and_native_give_the_same_bytes():
    t = torch.randn(513, 257, device="cuda").T
    results = []
    for name in ("native", "python"):
        if name == "native" and _engines.loaded_native() is None:
            continue
        previous = _engines.use(name)
        try:
            results.append(torchnp.to_numpy(t, np.float16, order="C"))
        finally:
            _engines.restore(previous)
    for r in results[1:]:
        _same(r, results[0])
