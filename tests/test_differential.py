"""Both engines against the NumPy/ml_dtypes oracle: every dtype pair, random layouts, zero
mismatches.

Two kinds of test:

* every (source, target) dtype pair, both directions, with exhaustive bit patterns for 1- and
  2-byte sources and edge values plus random bits for wider ones;
* hypothesis over shapes (0-d, empty, 1-6 dims), strides (zero; in NumPy also negative and not a
  multiple of the itemsize, through views of a uint8 buffer at any byte offset), byte orders,
  conj/neg bits, ``order``, ``copy`` and ``out`` (including an ``out`` overlapping the tensor).

The expected value is always ``ref.astype(target)``, ``ref`` being the exact NumPy view of the
data (oracle.py). Where NumPy's own result is platform-defined, the generated values are
restricted and the comparison relaxed:

* float -> integer for NaN, ±inf or |x| >= 2**31 - 1 (x86 wraps through int32/int64, ARM
  saturates): such values are replaced by 0 before converting (oracle.restrict_for_integer_target);
  values inside the int32 range keep NumPy's wrap-around (300.7 -> int8 gives 44);
* NaN payloads: compared with isnan for floating targets (oracle.assert_same_bits).

Pairs ml_dtypes 0.6 cannot cast (float8_e8m0fnu <-> other float8 types and complex32) and
byte-swapped complex32 (no agreed layout) must raise TypeError before anything is written; and
complex32 -> bool follows NumPy's complex rule rather than ml_dtypes' (see oracle.cast).

Hypothesis profiles (``HYPOTHESIS_PROFILE``): ``ci`` (default, 2,000 examples per test and
engine), ``dev`` (200), ``thorough`` (20,000).
"""

from __future__ import annotations

import os
import warnings

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
import torchnp

_COMMON = {
    "deadline": None,
    "database": None,
    "print_blob": True,
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}
settings.register_profile("ci", max_examples=2000, **_COMMON)
settings.register_profile("dev", max_examples=200, **_COMMON)
settings.register_profile("thorough", max_examples=20000, **_COMMON)
PROFILE = settings.get_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

NP_DTYPES = oracle.NUMPY_DTYPES
# Every type but bool can carry torch's negative bit (bools have no negation: a TypeError, tested
# in test_to_numpy); torch has no neg kernel for float8 and unsigned types: torchnp applies
# NumPy's / ml_dtypes' rule.
NEG_BIT_DTYPES = frozenset(d for d in oracle.TORCH_DTYPES if d != torch.bool)


def _swapped(dt: np.dtype) -> np.dtype:
    return dt.newbyteorder("S")


def _default_target(stored: np.dtype) -> np.dtype:
    return np.dtype(np.complex64) if stored == np.dtype(ml_dtypes.complex32) else stored


def _fill(view: np.ndarray, rng: np.random.Generator, mode: int) -> None:
    """Write test values into a (possibly strided, byte-swapped, unaligned) view."""
    if view.size == 0:
        return
    dt = oracle.native(view.dtype)
    if dt.kind == "b":
        view[...] = rng.integers(0, 2, size=view.shape).astype(bool)
    elif mode == 0:  # random bits: every pattern of small types, NaN payloads, subnormals
        raw = rng.integers(0, 256, size=(*view.shape, dt.itemsize), dtype=np.uint8)
        view[...] = raw.view(dt).reshape(view.shape)
    elif mode == 1:  # edge values of the type
        view[...] = rng.choice(oracle.interesting_values(dt), size=view.shape)
    else:  # small integers, exact in every type, around the int8/uint8 wrap points
        view[...] = oracle.cast(rng.integers(-300, 300, size=view.shape), dt)


def _prepare_values(view: np.ndarray, target: np.dtype) -> None:
    if oracle.is_integer(target):
        oracle.restrict_for_integer_target(view)


@st.composite
def shapes(draw: st.DrawFn) -> tuple[int, ...]:
    ndim = draw(st.integers(0, 6))
    hi = 4 if ndim <= 3 else 2
    return tuple(draw(st.lists(st.integers(0, hi), min_size=ndim, max_size=ndim)))


@st.composite
def layouts(
    draw: st.DrawFn, shape: tuple[int, ...], itemsize: int, raw: bool, zero: bool = True
) -> tuple[tuple[int, ...], int, int]:
    """(byte strides, byte offset of element 0, bytes needed) for `shape`.

    Dims are laid out in a random order with optional padding; with `zero` a dim may get stride
    0; with `raw` (NumPy arrays only) strides may be negative or not a multiple of the itemsize
    and the offset need not be aligned. Without `zero`, elements never overlap.
    """
    ndim = len(shape)
    order = draw(st.permutations(range(ndim)))
    pitch = itemsize + (draw(st.integers(0, 3)) if raw else itemsize * draw(st.integers(0, 1)))
    strides = [0] * ndim
    for d in reversed(order):
        strides[d] = pitch
        pitch *= max(shape[d], 1) + draw(st.integers(0, 1))
    for d in range(ndim):
        if zero and draw(st.integers(0, 5)) == 0:
            strides[d] = 0
        elif raw and draw(st.booleans()):
            strides[d] = -strides[d]
    low = sum(s * (n - 1) for s, n in zip(strides, shape, strict=True) if s < 0 and n > 0)
    high = sum(s * (n - 1) for s, n in zip(strides, shape, strict=True) if s > 0 and n > 0)
    offset = draw(st.integers(0, 15)) if raw else itemsize * draw(st.integers(0, 3))
    start = offset - low
    return tuple(strides), start, start + high + itemsize


def _dtype_argument(draw: st.DrawFn, dt: np.dtype):
    """The same target spelled as a torch dtype, a NumPy dtype, or a NumPy string."""
    spellings = [dt]
    if dt.isnative:  # a torch dtype has no byte order
        spellings.append(oracle.NUMPY_TO_TORCH[dt])
    if dt.type.__module__ == "numpy":
        spellings.append(dt.str)
    return draw(st.sampled_from(spellings))


def _expect_complex_warning(caught: list, src: np.dtype, dst: np.dtype, context: str) -> None:
    n = sum(issubclass(w.category, np.exceptions.ComplexWarning) for w in caught)
    expected = oracle.is_complex(src) and not oracle.is_complex(dst) and dst.kind != "b"
    assert n == int(expected), f"{context}: {n} ComplexWarnings, expected {int(expected)}"


# ---------------------------------------------------------------------------- every dtype pair


def _pair_values(dt: np.dtype, rng: np.random.Generator) -> np.ndarray:
    if dt.kind == "b":
        return np.array([False, True, True, False])
    if dt.itemsize <= 2:  # every bit pattern
        return np.arange(2 ** (8 * dt.itemsize), dtype=f"u{dt.itemsize}").view(dt)
    edge = oracle.interesting_values(dt)
    noise = rng.integers(0, 256, size=4096 * dt.itemsize, dtype=np.uint8).view(dt)
    return np.concatenate([edge, noise]).astype(dt)


def _tensor_of(values: np.ndarray) -> torch.Tensor:
    if values.dtype.type.__module__.startswith("ml_dtypes"):
        carrier = {1: np.uint8, 2: np.int16, 4: np.int32}[values.dtype.itemsize]
        return torch.from_numpy(values.view(carrier)).view(oracle.NUMPY_TO_TORCH[values.dtype])
    return torch.from_numpy(values)


@pytest.mark.parametrize("src", NP_DTYPES, ids=str)
def test_every_dtype_pair_matches_oracle(engine, src):
    rng = np.random.default_rng(1234)
    for dst in NP_DTYPES:
        values = _pair_values(src, rng)
        _prepare_values(values, dst)
        for dst_order in {dst, _swapped(dst)}:
            context = f"[{engine}] to_numpy {src} -> {dst_order}"
            t = _tensor_of(values)
            if why := oracle.refusal(src, dst_order):
                with pytest.raises(TypeError, match=why):
                    torchnp.to_numpy(t, dtype=dst_order)
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                got = torchnp.to_numpy(t, dtype=dst_order)
            oracle.assert_same_bits(got, oracle.cast(values, dst_order), context)
        for src_order in {src, _swapped(src)}:
            context = f"[{engine}] from_numpy {src_order} -> {dst}"
            arr = values.astype(src_order)
            if why := oracle.refusal(src_order, dst):
                with pytest.raises(TypeError, match=why):
                    torchnp.from_numpy(arr, dtype=oracle.NUMPY_TO_TORCH[dst])
                continue
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
                got = torchnp.from_numpy(arr, dtype=oracle.NUMPY_TO_TORCH[dst])
            oracle.assert_tensor_bits(got, oracle.cast(values, dst), context)


# ---------------------------------------------------------------------------- to_numpy


@PROFILE
@given(data=st.data())
def test_to_numpy_matches_oracle(engine, data):
    src_t = data.draw(st.sampled_from(oracle.TORCH_DTYPES), label="tensor dtype")
    stored = oracle.TORCH_TO_NUMPY[src_t]
    itemsize = stored.itemsize
    shape = data.draw(shapes(), label="shape")
    strides, start, need = data.draw(layouts(shape, itemsize, raw=False), label="tensor layout")

    mode = data.draw(st.sampled_from(["default", "dtype", "out", "out overlapping"]), label="mode")
    out_dt = None
    if mode == "default":
        target, dtype_arg = _default_target(stored), None
    else:
        target = data.draw(st.sampled_from(NP_DTYPES), label="target")
        target = data.draw(st.sampled_from([target, _swapped(target)]), label="byte order")
        dtype_arg = None if mode.startswith("out") else _dtype_argument(data.draw, target)
        out_dt = target if mode.startswith("out") else None
    order = data.draw(st.sampled_from("KACF"), label="order")
    copy = data.draw(st.sampled_from([None, True, False]), label="copy")
    conj = src_t.is_complex and data.draw(st.booleans(), label="conj")
    neg = src_t in NEG_BIT_DTYPES and data.draw(st.booleans(), label="neg")
    grad = src_t.is_floating_point or src_t.is_complex
    grad = grad and data.draw(st.booleans(), label="requires_grad")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)

    if out_dt is not None:
        o_strides, o_start, o_need = data.draw(
            layouts(shape, out_dt.itemsize, raw=True, zero=False), label="out layout"
        )
    # One byte buffer holds the tensor (and, when overlapping, `out` too).
    size = need if mode != "out overlapping" else max(need, o_need)
    buffer = torch.zeros(size + 16, dtype=torch.uint8)
    base = buffer.numpy()
    flat = buffer[: (buffer.numel() // itemsize) * itemsize].view(src_t)
    elem_strides = [s // itemsize for s in strides]
    t = torch.as_strided(flat, shape, elem_strides, start // itemsize)
    view = oracle.exact_view(t)
    _fill(view, rng, data.draw(st.integers(0, 2), label="value mode"))
    _prepare_values(view, target)
    if conj:
        t = t.conj()
    if neg:
        t = torch._neg_view(t)
    if grad:
        t = t.detach().requires_grad_(True)

    out = None
    out_base = base
    if out_dt is not None:
        if mode == "out":  # random bytes, so that a stray write shows
            out_base = rng.integers(0, 256, size=o_need + 16, dtype=np.uint8)
        out = oracle.strided(out_base, out_dt, shape, o_strides, o_start)
    ref = oracle.values(t)  # read before the call: `out` may overlap the tensor
    before = base.copy()
    out_before = out_base.copy()

    ctx = (
        f"[{engine}] to_numpy({src_t}{' conj' if conj else ''}{' neg' if neg else ''} "
        f"shape={shape} strides={strides}, dtype={dtype_arg}, out={out_dt} ({mode}), "
        f"order={order}, copy={copy})"
    )
    reasons = []
    if conj:
        reasons.append("conjugate bit set")
    if neg:
        reasons.append("negative bit set")
    if target != stored:
        reasons.append("needs a cast")
    if order == "C" and not view.flags.c_contiguous:
        reasons.append("order='C'")
    if order == "F" and not view.flags.f_contiguous:
        reasons.append("order='F'")

    call = {"dtype": dtype_arg, "copy": copy, "order": order, "out": out}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        why = oracle.refusal(stored, target)
        if out is not None and copy is False and why != "byte-swapped complex32":
            with pytest.raises(ValueError, match="out="):
                torchnp.to_numpy(t, **call)
            assert np.array_equal(base, before), ctx
            return
        if why:
            with pytest.raises(TypeError, match=why):
                torchnp.to_numpy(t, **call)
            assert np.array_equal(base, before), ctx
            assert np.array_equal(out_base, out_before), f"{ctx}: out written before the error"
            return
        if copy is False and reasons:
            with pytest.raises(ValueError) as info:
                torchnp.to_numpy(t, **call)
            for reason in reasons:
                assert reason in str(info.value), f"{ctx}: {reason!r} not in {info.value}"
            return
        result = torchnp.to_numpy(t, **call)
    _expect_complex_warning(caught, stored, target, ctx)

    expected = oracle.cast(ref, target)
    if out is not None:
        assert result is out, ctx
        oracle.assert_same_bits(out, expected, ctx)
        untouched = ~oracle.footprint(out_base, out)
        if mode == "out overlapping":
            assert np.array_equal(base[untouched], before[untouched]), f"{ctx}: stray writes"
        else:
            assert np.array_equal(out_base[untouched], out_before[untouched]), f"{ctx}: stray"
            assert np.array_equal(base, before), f"{ctx}: the tensor was written"
        return
    oracle.assert_same_bits(result, expected, ctx)
    assert np.array_equal(base, before), f"{ctx}: the tensor was written"
    if not reasons and copy is not True:
        assert result.strides == view.strides, f"{ctx}: shared result has other strides"
        assert result.size == 0 or np.shares_memory(result, view), f"{ctx}: not shared"
    else:
        assert not np.may_share_memory(result, base), f"{ctx}: a copy shares memory"
        if order == "C":
            assert result.flags.c_contiguous, ctx
        if order == "F":
            assert result.flags.f_contiguous, ctx


# ---------------------------------------------------------------------------- from_numpy


@PROFILE
@given(data=st.data())
def test_from_numpy_matches_oracle(engine, data):
    src = data.draw(st.sampled_from(NP_DTYPES), label="array dtype")
    src = data.draw(st.sampled_from([src, _swapped(src)]), label="byte order")
    shape = data.draw(shapes(), label="shape")
    strides, start, need = data.draw(layouts(shape, src.itemsize, raw=True), label="layout")
    choice = data.draw(st.sampled_from([None, *NP_DTYPES]), label="target")
    if choice is not None:  # the byte order of dtype= is moot: tensors are native
        choice_spelled = data.draw(st.sampled_from([choice, _swapped(choice)]), label="spelling")
    dtype_arg = None if choice is None else _dtype_argument(data.draw, choice_spelled)
    target = oracle.native(src) if choice is None else choice
    copy = data.draw(st.sampled_from([None, True, False]), label="copy")
    readonly = data.draw(st.booleans(), label="read-only")
    share_readonly = readonly and data.draw(st.booleans(), label="share_readonly")
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    rng = np.random.default_rng(seed)

    base = np.zeros(need + 16, dtype=np.uint8)
    arr = oracle.strided(base, src, shape, strides, start)
    _fill(arr, rng, data.draw(st.integers(0, 2), label="value mode"))
    _prepare_values(arr, target)
    if readonly:
        arr.flags.writeable = False
    ref = oracle.cast(arr, oracle.native(src))
    before = base.copy()

    ctx = (
        f"[{engine}] from_numpy({src} shape={shape} strides={strides} at {start}, "
        f"dtype={dtype_arg!r}, copy={copy}, read-only={readonly}, share_readonly={share_readonly})"
    )
    reasons = []
    if not src.isnative and src.itemsize > 1:  # one byte has no byte order
        reasons.append("byte order")
    if target != oracle.native(src):
        reasons.append("needs a cast")
    live = [s for s, n in zip(strides, shape, strict=True) if n > 1] if arr.size else []
    if any(s < 0 for s in live):
        reasons.append("negative strides")
    if any(s % src.itemsize for s in live):
        reasons.append("not multiples of the itemsize")
    if arr.size and arr.__array_interface__["data"][0] % src.itemsize:
        reasons.append("not aligned")
    if readonly and not share_readonly:
        reasons.append("read-only")

    call = {"dtype": dtype_arg, "copy": copy, "share_readonly": share_readonly}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if why := oracle.refusal(src, target if choice is None else choice_spelled):
            with pytest.raises(TypeError, match=why):
                torchnp.from_numpy(arr, **call)
            return
        if copy is False and reasons:
            with pytest.raises(ValueError) as info:
                torchnp.from_numpy(arr, **call)
            for reason in reasons:
                assert reason in str(info.value), f"{ctx}: {reason!r} not in {info.value}"
            if "read-only" in reasons:
                assert "share_readonly=True" in str(info.value), ctx
            return
        result = torchnp.from_numpy(arr, **call)
    _expect_complex_warning(caught, src, target, ctx)
    torch_warnings = [w for w in caught if "writable" in str(w.message)]
    assert not torch_warnings, f"{ctx}: torch warned {torch_warnings[0].message}"

    oracle.assert_tensor_bits(result, oracle.cast(ref, target), ctx)
    assert np.array_equal(base, before), f"{ctx}: the array was written"
    shared = result.numel() > 0 and np.shares_memory(oracle.exact_view(result), base)
    if not reasons and copy is not True:
        assert shared or arr.size == 0, f"{ctx}: not shared"
    else:
        assert not shared, f"{ctx}: a copy shares memory"
