"""Guard pages: every kernel family reads and writes exactly its operands' bytes.

Each source and destination is placed so that its last byte is the last byte before a
``PROT_NONE`` page, or its first byte the first after one (both ends are guarded either way): a
kernel that reads or writes one byte too many, a vector tail loop included, faults and the run
dies there (pytest's faulthandler names the test). Cases: flat copies and casts of odd lengths,
transposes of odd sizes, 3-channel interleaves, 8/16-bit types, byte-swapped operands, negative
strides and streaming-size (>= 32 MiB) destinations; on both engines, and under
``TORCHNP_CPU=baseline`` (scripts/test.sh) on the portable kernels too.
"""

from __future__ import annotations

import ctypes
import mmap
import sys

import ml_dtypes
import numpy as np
import pytest
import torch

import torchnp
from torchnp import _engines

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mprotect via libc")

PAGE = mmap.PAGESIZE
_PROT_NONE = 0
_libc = ctypes.CDLL(None, use_errno=True)
_libc.mprotect.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int)
_keep: list = []  # the mappings (their arrays are views; freed with the test module)


def guarded(shape: tuple[int, ...], dtype, *, at_end: bool) -> np.ndarray:
    """A C-contiguous array filling pages that are fenced by PROT_NONE pages on both sides,
    flush against the one after it (`at_end`) or the one before it."""
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    pages = max(-(-nbytes // PAGE), 1)
    mm = mmap.mmap(-1, (pages + 2) * PAGE)
    base = ctypes.addressof(ctypes.c_char.from_buffer(mm))
    for page in (0, pages + 1):
        if _libc.mprotect(base + page * PAGE, PAGE, _PROT_NONE) != 0:
            pytest.skip(f"mprotect failed: errno {ctypes.get_errno()}")
    _keep.append(mm)
    offset = PAGE + (pages * PAGE - nbytes if at_end else 0)
    raw = np.frombuffer(mm, np.uint8, nbytes, offset)
    return raw.view(dtype).reshape(shape)


def _fill(a: np.ndarray, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.standard_normal(a.shape) * 100
    if a.dtype.kind in "iub":
        values = rng.integers(0, 120, a.shape)
    if a.dtype.kind == "c":
        values = values + 1j * rng.standard_normal(a.shape)
    a[...] = values.astype(a.dtype)


BF16 = np.dtype(ml_dtypes.bfloat16)
# (source shape, source dtype, how the source is viewed, destination dtype, negate)
CASES = [
    *[((n,), np.float32, "flat", np.float32, 0) for n in (1, 3, 7, 31, 33, 1023, 4097)],
    *[((n,), np.float64, "flat", np.float32, 0) for n in (5, 63, 4099)],
    ((4097,), np.float32, "flat", np.float16, 0),
    ((4097,), np.float16, "flat", np.float32, 0),
    ((1029,), BF16, "flat", np.float32, 0),
    ((1029,), np.float32, "flat", BF16, 0),
    ((4095,), np.uint8, "flat", np.float32, 0),
    ((4095,), np.int8, "flat", np.int64, 0),
    ((2047,), np.int16, "flat", np.uint8, 0),
    ((1001,), np.complex64, "flat", np.complex64, 2),  # conjugated
    ((1001,), np.float32, "flat", np.float32, 3),  # negated
    ((4097,), ">f4", "flat", np.float32, 0),  # byte-swapped source
    ((4097,), np.float32, "flat", ">f4", 0),  # byte-swapped destination
    ((2049,), ">i2", "flat", np.int16, 0),
    ((4097,), np.float32, "reversed", np.float32, 0),  # a negative stride
    ((4097,), np.uint8, "reversed", np.uint8, 0),
    ((17, 33), np.float32, "transposed", np.float32, 0),
    ((33, 17), np.float64, "transposed", np.float32, 0),
    ((257, 3), np.float32, "transposed", np.float32, 0),
    ((3, 257), np.uint8, "transposed", np.uint8, 0),
    ((65, 129), np.int16, "transposed", np.int16, 0),
    ((31, 47), BF16, "transposed", np.float32, 0),
    ((29, 37), ">f4", "transposed", np.float32, 0),
    ((19, 23, 3), np.uint8, "hwc_to_chw", np.uint8, 0),  # 3-channel interleave
    ((3, 19, 23), np.uint8, "chw_to_hwc", np.uint8, 0),
    ((3, 31, 17), np.float32, "chw_to_hwc", np.float32, 0),
    ((7, 9, 11), np.float32, "reversed", np.float64, 0),
]
# Streaming-size destinations (>= 32 MiB: non-temporal stores), odd lengths.
BIG_CASES = [
    (((32 << 20) // 4 + 3,), np.float32, "flat", np.float32, 0),
    (((32 << 20) // 4 + 5,), np.float64, "flat", np.float32, 0),
    ((4099, 2051), np.float32, "transposed", np.float32, 0),
]


def _source_view(src: np.ndarray, how: str) -> np.ndarray:
    if how == "flat":
        return src
    if how == "reversed":
        return src[(slice(None, None, -1),) * src.ndim]
    if how == "transposed":
        return src.T
    if how == "hwc_to_chw":
        return src.transpose(2, 0, 1)
    if how == "chw_to_hwc":
        return src.transpose(1, 2, 0)
    raise AssertionError(how)


def _expected(view: np.ndarray, dtype: np.dtype, negate: int) -> np.ndarray:
    v = np.array(view)  # an unguarded copy, native order
    if negate == 2:
        v = np.conjugate(v)
    elif negate == 3:
        v = np.negative(v)
    return v.astype(dtype)


def _run(case, src_at_end: bool, dst_at_end: bool) -> None:
    shape, sdt, how, ddt, negate = case
    src = guarded(shape, sdt, at_end=src_at_end)
    _fill(src, 0)
    view = _source_view(src, how)
    want = _expected(view, np.dtype(ddt), negate)
    dst = guarded(view.shape, ddt, at_end=dst_at_end)
    _engines.active().copy(dst, view, negate)
    assert np.ascontiguousarray(dst).tobytes() == np.ascontiguousarray(want).tobytes()


@pytest.mark.parametrize("placement", ["both-at-end", "both-at-start", "src-end-dst-start"])
@pytest.mark.parametrize(
    "case", CASES, ids=lambda c: f"{c[2]}-{np.dtype(c[1])}-{c[0]}-to-{np.dtype(c[3])}"
)
def test_copy_touches_only_its_operands(engine, case, placement):
    src_end = placement != "both-at-start"
    dst_end = placement == "both-at-end"
    _run(case, src_end, dst_end)


@pytest.mark.parametrize("case", BIG_CASES, ids=lambda c: f"{c[2]}-{c[0]}")
def test_streaming_size_copies_touch_only_their_operands(engine, case):
    _run(case, True, True)
    _run(case, False, False)


def test_public_calls_on_guarded_memory(engine):
    # to_numpy into a guarded out=, from_numpy of a guarded array: the policy's own views.
    src = guarded((33, 65), np.float32, at_end=True)
    _fill(src, 1)
    t = torch.from_numpy(src)
    out = guarded((65, 33), np.float64, at_end=True)
    torchnp.to_numpy(t.T, out=out)
    np.testing.assert_array_equal(out, src.T.astype(np.float64))
    swapped = guarded((4097,), ">f4", at_end=True)
    _fill(swapped, 2)
    back = torchnp.from_numpy(swapped[::-1], dtype=torch.float64)
    np.testing.assert_array_equal(back.numpy(), swapped[::-1].astype(np.float64))
    images = [guarded((19, 23, 3), np.uint8, at_end=i % 2 == 0) for i in range(4)]
    for i, im in enumerate(images):
        _fill(im, i)
    stacked = torchnp.stack_from_numpy(images, dtype=torch.float32)
    np.testing.assert_array_equal(stacked.numpy(), np.stack(images).astype(np.float32))
