"""The engines' host copy, checked directly: copy(dst, src, negate) over raw layouts equals
NumPy's cast of the source with its sign flips applied.

Random shapes (0-d, empty, 1-6 dims), source strides of any sign, zero, or not a multiple of the
itemsize, unaligned offsets, byte-swapped operands on either side, destinations in any dimension
order and direction, every pair of the 21 element types the core knows, and sign flips of the
source (torch's conj / neg bits).
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
from torchnp import _engines

EXAMPLES = int(os.environ.get("TORCHNP_CORE_EXAMPLES", "1200"))
PAIRS = [(s, d) for s in oracle.NUMPY_DTYPES for d in oracle.NUMPY_DTYPES if oracle.can_cast(s, d)]


def _maybe_swapped(draw, dt: np.dtype) -> np.dtype:
    # NumPy can only spell a byte-swapped dtype for its own types, not ml_dtypes'.
    if dt.itemsize > 1 and dt.type.__module__ == "numpy" and draw(st.booleans()):
        return dt.newbyteorder()
    return dt


@st.composite
def copy_problems(draw):
    src_dt, dst_dt = draw(st.sampled_from(PAIRS))
    src_dt, dst_dt = _maybe_swapped(draw, src_dt), _maybe_swapped(draw, dst_dt)
    ndim = draw(st.integers(0, 6))
    shape = draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim))
    if ndim and draw(st.booleans()):
        shape[-1] = draw(st.integers(6, 70))  # long enough for vector loops and their tails
    size = src_dt.itemsize
    misaligned = draw(st.booleans())
    src_strides = [
        draw(st.integers(-3, 3)) * size * max(1, int(np.prod(shape[d + 1 :], dtype=np.int64)))
        + (draw(st.sampled_from([0, 1])) if misaligned else 0)
        for d in range(ndim)
    ]
    # Source: any strides (negative, zero, odd bytes) over a buffer; start so all fits.
    low = sum(s * (n - 1) for s, n in zip(src_strides, shape, strict=True) if s < 0 and n)
    high = sum(s * (n - 1) for s, n in zip(src_strides, shape, strict=True) if s > 0 and n)
    offset = -low + (draw(st.integers(1, 7)) if misaligned else 0)
    # The bytes from a drawn seed, not st.binary: hypothesis's mutator turns a fixed-size binary of
    # hundreds of KiB into a Python int of as many bytes and divides it down by 256 one byte at a
    # time (choice.py _index_to_size), which hung a CI run for over ten minutes.
    rng = np.random.default_rng(draw(st.integers(0, 2**63 - 1)))
    src_buf = rng.integers(0, 256, offset + high + size, dtype=np.uint8)
    if src_dt.kind == "b":
        src_buf &= 1  # a bool byte other than 0/1 is not a bool (NumPy reads it inconsistently)
    src = oracle.strided(src_buf, src_dt, shape, src_strides, offset)
    # Destination: a fresh buffer in a random dimension order and direction, maybe unaligned.
    perm = draw(st.permutations(range(ndim)))
    flips = [draw(st.booleans()) for _ in range(ndim)]
    dst_offset = draw(st.integers(1, 7)) if draw(st.booleans()) else 0
    dst_buf = np.zeros(dst_offset + max(1, int(np.prod(shape))) * dst_dt.itemsize, np.uint8)
    base = oracle.strided(
        dst_buf,
        dst_dt,
        [shape[p] for p in perm],
        _c_strides([shape[p] for p in perm], dst_dt),
        dst_offset,
    )
    dst = base.transpose(np.argsort(perm)) if ndim else base
    if ndim:
        dst = dst[tuple(slice(None, None, -1) if f else slice(None) for f in flips)]
    negate = 0 if src_dt.kind == "b" else draw(st.sampled_from([0, 0, 1, 2, 3]))
    return src, dst, negate


def _c_strides(shape, dt):
    strides, step = [], dt.itemsize
    for n in reversed(shape):
        strides.append(step)
        step *= max(n, 1)
    return list(reversed(strides))


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.function_scoped_fixture,  # the engine fixture is the same for every input
    ],
)
@given(copy_problems())
def test_copy_equals_numpy_cast(engine, problem):
    src, dst, negate = problem
    if oracle.is_integer(dst.dtype):
        src = src.copy()  # platform-defined float->int inputs are replaced (see oracle)
        oracle.restrict_for_integer_target(src)
    values = oracle.negated(src, negate) if negate else src
    expected = oracle.cast(values, dst.dtype)
    _engines.active().copy(dst, src, negate)
    oracle.assert_same_bits(
        np.array(dst, order="C"),
        expected,
        f"{src.dtype}->{dst.dtype} negate={negate} {src.shape} {src.strides}",
    )


@pytest.mark.single_engine
def test_plan_canonicalises_dims():
    native = _native_or_skip()
    a = np.zeros((4, 1, 5, 6), np.float32)
    b = np.zeros((4, 1, 5, 6), np.float32)
    plan = native.plan(b, a)
    assert plan.shape == [120]  # size-1 dim dropped, contiguous dims merged
    assert plan.numel == 120
    assert plan.name == "memcpy" and plan.method == "flat"
    t = np.zeros((6, 5, 1, 4), np.float32).transpose(3, 2, 1, 0)
    plan = native.plan(b, t)
    assert plan.method == "transpose" and plan.name.startswith("transpose_tile_f32_to_f32/"), plan
    rev = a[::-1, :, ::-1]  # dims 0 and 2 reversed: they still merge (one reversed run)
    plan = native.plan(np.zeros_like(rev), rev)
    assert plan.shape == [20, 6] and plan.src_strides == [-24, 4], plan.src_strides


@pytest.mark.single_engine
def test_cpu_variants_all_give_the_same_bits():
    native = _native_or_skip()
    C = native._C
    rng = np.random.default_rng(0)
    src = rng.standard_normal((67, 129)).astype(np.float32)
    src.view(np.uint32)[0, :8] = [
        0x7FC00001,
        0xFF800000,
        0x7F800000,
        1,
        0x80000001,
        0,
        0x477FF000,
        0x38800000,
    ]
    results = {}
    previous = C.active_cpu_variant()
    try:
        for variant in C.cpu_variants():
            C.set_cpu_variant(variant)
            for dt in (np.float16, "bfloat16", np.float64, np.uint8, ">f4"):
                dst_dt = np.dtype(oracle.ml_dtypes.bfloat16) if dt == "bfloat16" else np.dtype(dt)
                for s in (src, src.T):
                    out = np.empty(s.shape, dst_dt)
                    native.copy(out, s)
                    results.setdefault((str(dst_dt), s.strides), []).append((variant, out))
    finally:
        C.set_cpu_variant("" if previous == C.cpu_variants()[-1] else previous)
    for key, outs in results.items():
        for variant, out in outs[1:]:
            oracle.assert_same_bits(out, outs[0][1], f"{key}: {variant} vs {outs[0][0]}")


@pytest.mark.single_engine
def test_unknown_cpu_variant_is_a_value_error():
    native = _native_or_skip()
    with pytest.raises(ValueError):
        native._C.set_cpu_variant("avx9000")


def _native_or_skip():
    native, reason = _engines.load_native()
    if native is None:
        pytest.skip(reason)
    return native


@pytest.mark.single_engine
def test_binding_refuses_a_dtype_code_that_does_not_fit_the_array():
    native = _native_or_skip()
    src = np.arange(16, dtype=np.int8)[:2]
    with pytest.raises(ValueError, match="does not match"):
        native._C.copy(np.zeros(2), 12, False, src, 12, False)  # 12 = float64 for int8 data
    with pytest.raises(TypeError):
        native._C.copy([0.0, 0.0], 12, False, np.zeros(2), 12, False)  # no silent temporary
    with pytest.raises(ValueError, match="negation"):
        native._C.copy(np.zeros(2, bool), 0, False, np.zeros(2, bool), 0, False, 3)


def test_a_bool_has_no_sign_flip_in_either_engine(engine):
    src = np.array([True, False])
    dst = np.zeros(2, bool)
    with pytest.raises(ValueError, match="no negation"):
        _engines.active().copy(dst, src, 3)
    assert not dst.any()  # nothing written


@pytest.mark.parametrize("negate", [1, 2, 3])
def test_real_types_have_only_a_real_part(engine, negate):
    src = np.array([1.5, -2.0, 0.0], np.float32)
    dst = np.empty_like(src)
    _engines.active().copy(dst, src, negate)
    expected = src if negate == 2 else -src  # a conjugate leaves a real number as it is
    oracle.assert_same_bits(dst, expected, f"negate={negate}")
