"""The device transfer pipeline (csrc/core/transfer.h) end to end on the host-simulated link.

Inside ``_device.simulated()`` a CPU tensor plays the device tensor: ``to_numpy_async`` downloads
it through the link (staging ring, events, gathers, the fused host drain) and
``from_numpy_async(..., device="cpu")`` uploads through it. Every result is checked bit for bit
against NumPy's own casts (tests/oracle.py) and against the plain host conversion's layout.
The native engine only: the pipeline is the compiled core's.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
import warnings
import weakref

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
import torchnp
from torchnp import _device, _engines

pytestmark = pytest.mark.single_engine

CHUNK = 256  # bytes: a few hundred elements make many chunks

SOURCE_TYPES = [
    torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64, torch.int32,
    torch.int8, torch.uint8, torch.bool, torch.complex64, torch.complex128,
    torch.float8_e4m3fn, torch.uint16, torch.uint32, torch.uint64, torch.int16,
]  # fmt: skip
TARGETS = [
    np.float32, np.float64, np.float16, ml_dtypes.bfloat16, np.int64, np.int32, np.int16,
    np.int8, np.uint8, np.bool_, np.complex64, np.complex128, ml_dtypes.float8_e5m2,
    np.uint16, np.uint32, np.uint64,
]  # fmt: skip


@pytest.fixture(autouse=True)
def _native_engine():
    if _engines.loaded_native() is None:
        pytest.skip("the pipeline is the native engine's")
    previous = _engines.use("native")
    yield
    _engines.restore(previous)


def _random_tensor(draw, dtype: torch.dtype) -> torch.Tensor:
    ndim = draw(st.integers(0, 4))
    shape = tuple(draw(st.lists(st.integers(0, 7), min_size=ndim, max_size=ndim)))
    if draw(st.booleans()) and ndim:  # sometimes many chunks
        shape = (*shape[:-1], draw(st.integers(50, 400)))
    seed = draw(st.integers(0, 2**31))
    g = torch.Generator().manual_seed(seed)
    bits = torch.randint(-(2**62), 2**62, (int(np.prod(shape or (1,))) * 2 + 16,), generator=g)
    raw = bits.view(torch.uint8)
    isz = torch.empty((), dtype=dtype).element_size()
    n = int(np.prod(shape)) if shape else 1
    base = raw[: n * isz].view(dtype).reshape(shape) if n else torch.empty(shape, dtype=dtype)
    if dtype.is_floating_point or dtype.is_complex:  # no NaN payload lottery in the source
        base = torch.where(torch.isnan(base), torch.zeros((), dtype=dtype), base)
    if dtype == torch.bool:
        base = raw[:n].reshape(shape) % 2 == 1 if n else torch.empty(shape, dtype=torch.bool)
    layout = draw(st.sampled_from(["dense", "permuted", "sliced", "expanded"]))
    if layout == "permuted" and ndim >= 2:
        perm = draw(st.permutations(range(ndim)))
        base = base.permute(*perm)
    elif layout == "sliced" and ndim >= 1 and shape[-1] >= 2:
        bigger = torch.cat([base, base], dim=-1)
        base = bigger[..., ::2]
    elif layout == "expanded" and ndim >= 1:
        base = base[..., :1].expand(*shape[:-1], max(shape[-1], 1) * 2) if n else base
    if dtype.is_complex and draw(st.booleans()):
        base = base.conj()
    return base


@st.composite
def downloads(draw):
    src = draw(st.sampled_from(SOURCE_TYPES))
    t = _random_tensor(draw, src)
    target = np.dtype(draw(st.sampled_from(TARGETS)))
    order = draw(st.sampled_from(["K", "C", "F", "A"]))
    use_out = draw(st.booleans())
    gather = draw(st.booleans())
    buffers = draw(st.integers(1, 4))
    return t, target, order, use_out, gather, buffers


def _expected(t: torch.Tensor, target: np.dtype) -> np.ndarray:
    ref = oracle.values(t.resolve_conj() if t.is_conj() else t)
    if oracle.is_integer(target):
        oracle.restrict_for_integer_target(ref)
    return oracle.cast(ref, target)


@settings(
    max_examples=300, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(downloads())
def test_download_through_the_pipeline_is_numpys_cast(case):
    t, target, order, use_out, gather, buffers = case
    if oracle.refusal(oracle.TORCH_TO_NUMPY[t.dtype], target):
        return
    ref_src = t
    if oracle.is_integer(target) and (t.dtype.is_floating_point or t.dtype.is_complex):
        # Platform-defined float -> int results: keep them out of the source.
        ref_np = oracle.values(t.resolve_conj() if t.is_conj() else t)
        oracle.restrict_for_integer_target(ref_np)
        ref_src = torchnp.from_numpy(ref_np)
    with _quiet():
        expected_plain = torchnp.to_numpy(ref_src, dtype=target, order=order, copy=True)
    out = None
    if use_out:
        out = np.full(ref_src.shape, 0, dtype=target, order="F" if order == "F" else "C")
    previous = _device._BUFFERS
    _device._BUFFERS = buffers
    try:
        with _device.simulated(chunk_bytes=CHUNK, gather=gather) as link, _quiet():
            result = torchnp.to_numpy_async(ref_src, target, order=order, out=out).result(30)
            stats = link.link_stats()
    finally:
        _device._BUFFERS = previous
    if use_out:
        assert result is out
    else:
        assert result.strides == expected_plain.strides
    oracle.assert_same_bits(result, _expected(ref_src, target), f"{ref_src.dtype}->{target}")
    oracle.assert_same_bits(result, expected_plain)
    assert stats["live_events"] == 0
    if result.size:
        assert stats["copies"] >= 1  # it really crossed the link


@contextlib.contextmanager
def _quiet():
    """No ComplexWarning and friends: their emission is tested elsewhere."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


@st.composite
def uploads(draw):
    src = np.dtype(draw(st.sampled_from(TARGETS)))
    ndim = draw(st.integers(0, 3))
    shape = tuple(draw(st.lists(st.integers(0, 6), min_size=ndim, max_size=ndim)))
    if ndim and draw(st.booleans()):
        shape = (*shape[:-1], draw(st.integers(40, 300)))
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    raw = rng.integers(0, 256, size=int(np.prod(shape)) * src.itemsize * 2 + 32, dtype=np.uint8)
    n = int(np.prod(shape))
    a = raw[: n * src.itemsize].view(src).reshape(shape) if n else np.empty(shape, src)
    if oracle.is_floating(src) and a.size:
        with np.errstate(all="ignore"):
            a = np.where(np.isnan(a), 0, a).astype(src)
    if src.kind == "b":
        a = raw[:n].reshape(shape) % 2 == 1
    if draw(st.booleans()) and ndim:
        a = a[..., ::-1]
    if draw(st.booleans()) and ndim >= 2:
        a = a.T
    if draw(st.booleans()) and src.itemsize > 1 and src.kind != "V":
        a = a.astype(src.newbyteorder(">"))
    target = draw(
        st.sampled_from(
            [
                None,
                torch.float32,
                torch.float64,
                torch.int32,
                torch.float16,
                torch.int64,
                torch.int16,
            ]
        )
    )
    return a, target, draw(st.integers(1, 4))


@settings(
    max_examples=200, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True
)
@given(uploads())
def test_upload_through_the_pipeline_is_numpys_cast(case):
    a, target, buffers = case
    own = np.dtype(a.dtype).newbyteorder("=")
    target_np = own if target is None else oracle.TORCH_TO_NUMPY[target]
    if oracle.refusal(own, target_np):
        return
    if oracle.is_integer(target_np) and oracle.is_floating(own):
        a = a.copy()
        oracle.restrict_for_integer_target(a)
    previous = _device._BUFFERS
    _device._BUFFERS = buffers
    try:
        with _device.simulated(chunk_bytes=CHUNK) as link, _quiet():
            result = torchnp.from_numpy_async(a, target, device="cpu").result(30)
            stats = link.link_stats()
    finally:
        _device._BUFFERS = previous
    with _quiet():
        plain = torchnp.from_numpy(a, target, copy=True)
    assert result.dtype == plain.dtype and result.shape == plain.shape
    if result.numel():  # the layout of the array's memory order (size-1 dims aside)
        assert [s for s, n in zip(result.stride(), a.shape, strict=True) if n > 1] == [
            s for s, n in zip(plain.stride(), a.shape, strict=True) if n > 1
        ]
    oracle.assert_tensor_bits(result, oracle.cast(oracle.native_copy(a), target_np))
    if result.numel():
        native = np.dtype(a.dtype).newbyteorder("=")
        own_t = next(t for t, d in oracle.TORCH_TO_NUMPY.items() if d == native)
        # Integer widening runs on the device: the narrow bytes cross.
        on_device = _device._widens_exactly(own_t, result.dtype)
        crossing = own_t.itemsize if on_device else result.element_size()
        assert stats["bytes_h2d"] == result.numel() * crossing
        assert stats["join_stream"], "the result must be joined to the user's stream"


def test_integer_narrowing_runs_on_the_device_and_halves_the_bytes():
    t = torch.arange(-5000, 5000, dtype=torch.int64) * 1_000_003
    with _device.simulated(chunk_bytes=4096) as link:
        r = torchnp.to_numpy_async(t, np.int32).result()
        stats = link.link_stats()
    assert np.array_equal(r, t.numpy().astype(np.int32))
    assert stats["bytes_d2h"] == t.numel() * 4  # int32 crossed, not int64


def test_integer_widening_runs_on_the_device_and_sends_the_narrow_bytes():
    a = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)[:, ::-1]
    with _device.simulated(chunk_bytes=4096) as link:
        r = torchnp.from_numpy_async(a, torch.float32, device="cpu").result()
        stats = link.link_stats()
    assert torch.equal(r, torch.from_numpy(a.astype(np.float32)))
    assert stats["bytes_h2d"] == a.size  # uint8 crossed, not float32
    # A float widening stays on the host (exact NaN payloads): the wide bytes cross.
    h = np.random.default_rng(1).random(1000).astype(np.float16)
    with _device.simulated(chunk_bytes=4096) as link:
        r = torchnp.from_numpy_async(h, torch.float32, device="cpu").result()
        assert link.link_stats()["bytes_h2d"] == h.size * 4
    assert torch.equal(r, torch.from_numpy(h.astype(np.float32)))


def test_a_tree_of_device_tensors_is_one_pipeline():
    g = torch.Generator().manual_seed(0)
    tree = {f"layer{i}.weight": torch.randn(10 + i, generator=g) for i in range(60)}
    tree["big"] = torch.randn(5000, generator=g)
    tree["permuted"] = torch.randn(30, 40, generator=g).T[::2]
    tree["ids"] = torch.arange(1000)
    tree["name"] = "not a tensor"
    with _device.simulated(chunk_bytes=4096) as link:
        before = link.link_stats()["events"]
        out = torchnp.tree_to_numpy(tree, copy=True)
        events = link.link_stats()["events"] - before
        halves = torchnp.tree_to_numpy(tree, np.float16)
    for key, leaf in tree.items():
        if isinstance(leaf, torch.Tensor):
            single = torchnp.to_numpy(leaf, copy=True)
            assert out[key].tobytes() == single.tobytes() and out[key].dtype == single.dtype
            with _quiet():
                assert halves[key].tobytes() == torchnp.to_numpy(leaf, np.float16).tobytes()
        else:
            assert out[key] is leaf
    # 63 tensors (~33 KB) in 4 KiB buffers: one event per buffer, not one per tensor.
    assert events < 20, events


def test_a_tree_of_arrays_to_the_device_is_one_pipeline():
    rng = np.random.default_rng(0)
    tree = {f"w{i}": rng.random(10 + i).astype(np.float32) for i in range(60)}
    tree["image"] = rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)[::-1]  # widened on device
    tree["big"] = rng.random(5000)[::2].astype(">f8")
    tree["label"] = 3
    with _device.simulated(chunk_bytes=4096) as link:
        before = link.link_stats()["events"]
        out = torchnp.tree_from_numpy(tree, device="cpu")
        events = link.link_stats()["events"] - before
        as_f32 = torchnp.tree_from_numpy(tree, torch.float32, device="cpu")
    for key, leaf in tree.items():
        if isinstance(leaf, np.ndarray):
            assert torch.equal(out[key], torchnp.from_numpy(leaf, copy=True))
            assert torch.equal(as_f32[key], torchnp.from_numpy(leaf, torch.float32, copy=True))
        else:
            assert out[key] == leaf
    assert events < 20, events  # one event per buffer and one at the end, not one per array


def test_a_permuted_sliced_source_is_gathered_chunk_by_chunk():
    base = torch.randn(64, 3, 50)
    t = base.permute(2, 0, 1)[:, ::2]  # not dense: packed on the device
    with _device.simulated(chunk_bytes=1024) as link:
        r = torchnp.to_numpy_async(t, order="C").result()
        stats = link.link_stats()
    assert np.array_equal(r, np.ascontiguousarray(t.numpy()))
    n_chunks = -(-t.numel() * 4 // 1024)
    assert stats["gathers"] == n_chunks and stats["copies"] == n_chunks
    # The staging chunk grown after the scratch was sized (set_staging during a call): each
    # chunk is gathered in scratch-sized pieces, never past the scratch.
    with _device.simulated(chunk_bytes=1024) as link:
        link.configure(4096, 1 << 20)
        scratch = _device._scratch
        _device._scratch = lambda device, lk: np.empty(1000, np.uint8)  # 250 floats
        try:
            r3 = torchnp.to_numpy_async(t, order="C").result()
        finally:
            _device._scratch = scratch
        total = t.numel() * 4
        lengths = [min(4096, total - off) for off in range(0, total, 4096)]
        assert link.link_stats()["gathers"] == sum(-(-n // 1000) for n in lengths)
    assert np.array_equal(r3, r)
    # Without the link's gather torch packs it first: same bytes.
    with _device.simulated(chunk_bytes=1024, gather=False) as link:
        r2 = torchnp.to_numpy_async(t, order="C").result()
        assert link.link_stats()["gathers"] == 0
    assert np.array_equal(r2, r)


@pytest.mark.parametrize("nth", [0, 2, 9])
def test_a_chunk_failing_mid_way_raises_the_cause_and_keeps_nothing(nth):
    t = torch.randn(10_000)
    with _device.simulated(chunk_bytes=4096) as link:
        link.fail_copy(nth, f"simulated DMA fault in copy {nth}")
        h = torchnp.to_numpy_async(t)
        with pytest.raises(RuntimeError, match=f"simulated DMA fault in copy {nth}") as info:
            h.result(30)
        assert isinstance(info.value, torchnp._C.TransferError)
        assert "device transfer failed" in str(info.value)
        stats = link.link_stats()
        assert stats["live_events"] == 0
        staged = link.staging_stats()
        assert staged["held_bytes"] == staged["idle_bytes"], "staging not given back"
        # out= is written in part (documented); after the fault is cleared the link works.
        out = np.zeros(10_000, np.float32)
        link.reset()  # a failed stream stays failed until then, as a CUDA stream error does
        link.fail_copy(nth, "again")
        with pytest.raises(RuntimeError, match="again"):
            torchnp.to_numpy_async(t, out=out).result(30)
        link.reset()
        assert np.array_equal(torchnp.to_numpy_async(t, out=out).result(30), t.numpy())
        # Uploads name the cause too.
        link.fail_copy(nth, "upload fault")
        with pytest.raises(RuntimeError, match="upload fault"):
            torchnp.from_numpy_async(np.ones(10_000), device="cpu").result(30)
        link.reset()


def test_handles_dropped_before_completion_finish_and_keep_their_sources_alive():
    with _device.simulated(delay_us=2000, chunk_bytes=4096) as link:
        refs, results = [], []
        for i in range(6):
            t = torch.full((5000,), float(i))
            refs.append(weakref.ref(t))
            h = torchnp.to_numpy_async(t, np.float64)
            results.append(h)  # kept: the result
            del t, h
        gc.collect()
        assert any(r() is not None for r in refs), "sources freed while their copies ran"
        for i, h in enumerate(results):
            assert np.array_equal(h.result(30), np.full(5000, float(i)))
        # Dropped entirely (handle and result): the work still runs to the end.
        for _ in range(4):
            torchnp.to_numpy_async(torch.ones(5000))
        gc.collect()
        deadline = time.monotonic() + 30
        while link.link_stats()["live_events"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert link.link_stats()["live_events"] == 0
    gc.collect()
    assert all(r() is None for r in refs), "a finished transfer kept its source"


def test_many_transfers_in_flight_from_many_threads_share_a_capped_staging():
    with _device.simulated(delay_us=200, chunk_bytes=2048) as link:
        link.configure(2048, 5 * 2048)
        errors: list = []

        def worker(seed: int) -> None:
            g = torch.Generator().manual_seed(seed)
            try:
                handles = []
                for _ in range(8):
                    t = torch.randn(int(torch.randint(1, 4000, (1,), generator=g)), generator=g)
                    handles.append((t, torchnp.to_numpy_async(t.double())))
                    a = np.random.default_rng(seed).random(777)[::-1]
                    handles.append((a, torchnp.from_numpy_async(a, torch.float32, device="cpu")))
                for src, h in handles:
                    r = h.result(60)
                    if isinstance(src, torch.Tensor):
                        assert np.array_equal(r, src.double().numpy())
                    else:
                        assert torch.equal(r, torch.from_numpy(src.astype(np.float32)))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=worker, args=(s,)) for s in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert not errors, errors
        assert link.staging_stats()["buffers"] <= 5
        assert link.link_stats()["max_queued"] >= 2


def test_every_download_orders_after_the_stream_and_every_upload_joins_it():
    with _device.simulated(chunk_bytes=4096) as link:
        torchnp.to_numpy_async(torch.ones(100)).result()
        torchnp.from_numpy_async(np.ones(100), device="cpu").result()
        stats = link.link_stats()
    assert sum(stats["after_stream"].values()) == 2
    assert sum(stats["join_stream"].values()) == 1


def test_pinned_arrays_are_aligned_writable_and_freed_with_their_last_view():
    with _device.simulated() as link:
        before = link.link_stats()["host_buffers"]
        a = torchnp.empty_pinned((100, 30), "float32")
        assert a.shape == (100, 30) and a.dtype == np.float32 and a.flags.c_contiguous
        assert a.ctypes.data % 256 == 0 and a.flags.writeable
        assert _device.is_pinned(a) and _device.is_pinned(a[::2])
        z = torchnp.zeros_pinned(7, ml_dtypes.bfloat16, order="F")
        assert z.dtype == ml_dtypes.bfloat16 and not z.astype(np.float32).any()
        f = torchnp.empty_pinned((3, 4), np.int16, order="F")
        assert f.flags.f_contiguous
        assert link.link_stats()["host_buffers"] == before + 3
        view = a[10:20]
        del a
        gc.collect()
        assert link.link_stats()["host_buffers"] == before + 3  # the view holds it
        del view, z, f
        gc.collect()
        assert link.link_stats()["host_buffers"] == before
        empty = torchnp.empty_pinned((0, 5), np.float64)
        assert empty.shape == (0, 5)


def test_a_pinned_out_with_the_same_bytes_takes_one_dma():
    t = torch.randn(300, 40)
    with _device.simulated(chunk_bytes=1024) as link:
        out = torchnp.empty_pinned(t.shape, np.float32)
        before = link.link_stats()["copies"]
        assert torchnp.to_numpy_async(t, out=out).result() is out
        assert link.link_stats()["copies"] == before + 1  # straight in, no staging
        assert np.array_equal(out, t.numpy())
        # A cast into pinned memory still goes through staging (the host does the cast).
        out64 = torchnp.empty_pinned(t.shape, np.float64)
        before = link.link_stats()["copies"]
        torchnp.to_numpy_async(t, out=out64).result()
        assert link.link_stats()["copies"] - before == -(-t.numel() * 4 // 1024)
        assert np.array_equal(out64, t.numpy().astype(np.float64))
        # Uploads from a pinned array: one DMA too.
        before = link.link_stats()["copies"]
        r = torchnp.from_numpy_async(out, device="cpu").result()
        assert link.link_stats()["copies"] == before + 1
        assert torch.equal(r, t)


def test_transfer_guard_refuses_an_async_download_before_anything_is_written():
    t = torch.ones(1000)
    out = np.zeros(1000, np.float32)
    with _device.simulated() as link:
        with torchnp.transfer_guard("disallow_explicit"), pytest.raises(torchnp.TransferGuardError):
            torchnp.to_numpy_async(t, out=out)
        assert link.link_stats()["copies"] == 0
    assert not out.any()
    with _device.simulated(), torchnp.transfer_log() as log:
        torchnp.to_numpy_async(t).result()
    assert log.count == 1 and log.nbytes == 4000


def test_staging_can_be_configured_reported_and_emptied():
    with pytest.raises(ValueError, match="multiple of 64"):
        torchnp.set_staging(chunk_bytes=100)
    with pytest.raises(ValueError, match="buffers"):
        torchnp.set_staging(buffers=0)
    with pytest.raises(ValueError, match="max_bytes"):
        torchnp.set_staging(max_bytes=-1)
    torchnp.set_staging(max_bytes=32 << 20, buffers=2)
    try:
        s = torchnp.info().staging
        assert s["max_bytes"] == 32 << 20 and s["buffers"] == 2
    finally:
        torchnp.set_staging(max_bytes=64 << 20, buffers=3)
    with _device.simulated(chunk_bytes=4096) as link:
        torchnp.to_numpy_async(torch.ones(10_000)).result()
        assert link.staging_stats()["idle_bytes"] > 0
        freed = link.trim()
        assert freed > 0 and link.staging_stats()["held_bytes"] == 0
        assert link.link_stats()["host_buffers"] == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without a device")
def test_pinned_arrays_without_a_device_say_so():
    with pytest.raises(RuntimeError, match="need a CUDA device"):
        torchnp.empty_pinned(3)
