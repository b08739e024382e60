"""Plans, seen from Python: the kernel a conversion reports is the plan that ran, sign flips are
fused into that one plan, plans refuse memory of another layout, and slices of a plan at random
split points, in either operand's memory order, reproduce the whole copy bit for bit."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
import torchnp
from test_core_copy import copy_problems
from torchnp import _engines

pytestmark = pytest.mark.single_engine


@pytest.fixture
def native():
    engine, reason = _engines.load_native()
    if engine is None:
        pytest.skip(reason)
    previous = _engines.use("native")
    yield _engines.active()
    _engines.restore(previous)


def _streams(native) -> bool:
    return native._C.active_cpu_variant() != "baseline"  # only AVX2 has non-temporal kernels


def test_large_flat_copy_reports_the_streaming_copy_that_ran(native):
    """A 64 MiB flat copy streams (non-temporal stores) into memory already faulted in, and
    takes normal stores into memory not touched yet (the kernel zeroes a new page through the
    cache: normal stores then overwrite lines already there); the report says which ran."""
    t = torch.rand(1 << 24)  # 64 MiB: past the streaming threshold
    cold = np.empty(t.shape, np.float32)  # a fresh mapping: no page touched yet
    warm = np.full(t.shape, -1.0, np.float32)  # every page faulted in
    with native.recording() as plans:
        torchnp.to_numpy(t, out=cold)
        torchnp.to_numpy(t, out=warm)
    np.testing.assert_array_equal(cold, t.numpy())
    np.testing.assert_array_equal(warm, t.numpy())
    assert len(plans) == 2
    assert plans[0].name == "memcpy" and not plans[0].streaming and plans[0].dst_cold
    variant = native._C.active_cpu_variant()
    assert plans[1].name == (f"copy_nt/{variant}" if _streams(native) else "memcpy")
    assert plans[1].streaming == _streams(native) and not plans[1].dst_cold


def test_large_transpose_reports_the_streaming_tile_kernel(native):
    t = torch.rand(4096, 4096)
    with native.recording() as plans:
        a = torchnp.to_numpy(t.T, order="C")
    np.testing.assert_array_equal(a, t.numpy().T)
    (plan,) = plans
    nt = "_nt" if _streams(native) else ""
    assert plan.name == f"transpose_tile{nt}_f32_to_f32/{native._C.active_cpu_variant()}"
    assert plan.method == "transpose" and plan.streaming == _streams(native)


def test_zero_copy_runs_no_plan(native):
    with native.recording() as plans:
        torchnp.to_numpy(torch.ones(8))
    assert plans == []


def _conj_c64() -> torch.Tensor:
    return torch.rand(1000, dtype=torch.complex64).conj()


@pytest.mark.parametrize(
    ("make", "dtype", "order", "name"),
    [
        (_conj_c64, None, "K", "contig_c64.conj_to_c64"),
        (_conj_c64, np.complex128, "K", "contig_c64.conj_to_c128"),
        (lambda: torch._neg_view(torch.rand(1000)), np.float16, "K", "contig_f32.neg_to_f16"),
        (
            lambda: torch._neg_view(torch.rand(1000, dtype=torch.complex128).conj()),
            None,
            "K",
            "contig_c128.negreal_to_c128",
        ),
        # order K keeps the transposed tensor's memory order: still one flat pass
        (lambda: torch.rand(40, 30, dtype=torch.complex64).conj().T, None, "K", "contig_c64.conj"),
        (lambda: torch.rand(40, 30, dtype=torch.complex64).conj().T, None, "C", "strided_2d_c64"),
    ],
)
def test_conj_and_neg_bits_are_fused_into_the_one_copy(native, make, dtype, order, name):
    t = make()
    with native.recording() as plans:
        a = torchnp.to_numpy(t, dtype=dtype, order=order)
    assert len(plans) == 1, [p.name for p in plans]  # one pass: flips, cast and layout together
    assert plans[0].name.startswith(name), plans[0].name
    expected = t.resolve_conj().resolve_neg().numpy()
    np.testing.assert_array_equal(a, expected if dtype is None else expected.astype(dtype))


def test_a_plan_refuses_memory_of_another_layout(native):
    src = np.arange(12.0).reshape(3, 4)
    plan = native.plan(np.empty((3, 4)), src)
    with pytest.raises(ValueError, match="planned layout"):
        plan.execute(np.empty((4, 3)), src.T)
    with pytest.raises(ValueError, match="planned layout"):
        plan.execute(np.empty((3, 4)), src[:, ::-1])
    # Same sizes, other element types or byte order: the plan's kernels would misread them.
    with pytest.raises(ValueError, match="element types"):
        plan.execute(np.empty((3, 4)), src.astype(">f8"))
    with pytest.raises(ValueError, match="element types"):
        plan.execute(np.empty((3, 4), np.int64), src)
    with pytest.raises(ValueError, match="slice outside"):
        plan.execute(np.empty((3, 4)), src, 0, 13)
    with pytest.raises(ValueError, match="order"):
        plan.execute(np.empty((3, 4)), src, 0, 2, order="sideways")


def _at_alignment(shape: tuple[int, ...], dtype, offset: int) -> np.ndarray:
    """An uninitialised C-ordered array whose data sits `offset` bytes past a 64-byte boundary."""
    nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
    raw = np.empty(nbytes + 128, np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def test_a_plan_runs_again_on_other_memory_of_the_same_layout(native):
    rng = np.random.default_rng(0)
    a, b = (_at_alignment((64, 48), np.float64, 8) for _ in range(2))
    a[...], b[...] = rng.standard_normal((2, 64, 48))
    out_a, out_b = (_at_alignment((48, 64), np.float32, 4) for _ in range(2))
    plan = native.plan(out_a, a.T)
    plan.execute(out_a, a.T)
    plan.execute(out_b, b.T)
    np.testing.assert_array_equal(out_a, a.T.astype(np.float32))
    np.testing.assert_array_equal(out_b, b.T.astype(np.float32))
    with pytest.raises(ValueError, match="aligned differently"):
        plan.execute(_at_alignment((48, 64), np.float32, 0), b.T)


def _cuts(draw, n: int) -> list[tuple[int, int]]:
    points = sorted(draw(st.lists(st.integers(0, n), max_size=6)))
    bounds = [0, *points, n]
    pieces = [(lo, hi) for lo, hi in itertools.pairwise(bounds) if lo < hi]
    return draw(st.permutations(pieces))


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(problem=copy_problems(), data=st.data(), order=st.sampled_from(["destination", "source"]))
def test_slices_in_either_order_reproduce_the_whole_copy(native, problem, data, order):
    src, dst, negate = problem
    plan = native.plan(dst, src, negate)
    plan.execute(dst, src)
    whole = np.array(dst, copy=True)
    dst[...] = np.zeros((), dst.dtype)  # every element is written again below
    for lo, hi in _cuts(data.draw, plan.numel):
        plan.execute(dst, src, lo, hi, order=order)
    assert np.array(dst, copy=True).tobytes() == whole.tobytes(), (order, plan)


@st.composite
def dense_permuted(draw, shape):
    """An array over a dense buffer with the dims laid out in a random order and direction."""
    dtype = draw(st.sampled_from([np.float32, np.float64, np.int16, np.uint8, np.complex64]))
    perm = draw(st.permutations(range(len(shape))))
    base = np.empty([shape[p] for p in perm], dtype)
    a = base.transpose(np.argsort(perm)) if shape else base
    flips = tuple(slice(None, None, -1) if draw(st.booleans()) else slice(None) for _ in shape)
    return a[flips] if shape else a


def _memory_rank(a: np.ndarray) -> np.ndarray:
    """Each element's position in the array's memory order (its rank by byte address)."""
    offsets = np.zeros(a.shape, np.int64)
    for axis, stride in enumerate(a.strides):
        shape = [1] * a.ndim
        shape[axis] = a.shape[axis]
        offsets = offsets + (np.arange(a.shape[axis]) * stride).reshape(shape)
    ranks = np.empty(a.size, np.int64)
    ranks[np.argsort(offsets.reshape(-1), kind="stable")] = np.arange(a.size)
    return ranks.reshape(a.shape)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    shape=st.lists(st.integers(1, 6), min_size=0, max_size=4).map(tuple),
    data=st.data(),
    order=st.sampled_from(["destination", "source"]),
)
def test_a_slice_writes_exactly_the_elements_at_those_memory_positions(native, shape, data, order):
    src = data.draw(dense_permuted(shape))
    src[...] = np.arange(1, src.size + 1).reshape(src.shape).astype(src.dtype)
    dst = data.draw(dense_permuted(shape))
    sentinel = np.zeros((), dst.dtype)
    plan = native.plan(dst, src)
    n = plan.numel
    lo = data.draw(st.integers(0, n))
    hi = data.draw(st.integers(lo, n))
    dst[...] = sentinel
    plan.execute(dst, src, lo, hi, order=order)
    rank = _memory_rank(dst if order == "destination" else src)
    inside = (rank >= lo) & (rank < hi)
    expected = np.where(inside, oracle.cast(src, dst.dtype), sentinel)
    np.testing.assert_array_equal(dst, expected)
