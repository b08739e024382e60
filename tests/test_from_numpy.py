"""torchnp.from_numpy: one test per behaviour the README's API table and "differences" list
promise, on both engines."""

from __future__ import annotations

import array
import gc
import warnings
import weakref

import ml_dtypes
import numpy as np
import pytest
import torch

import oracle
import torchnp

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
# Every element type that only ml_dtypes spells (bf16, float8, complex32), from the oracle's table.
ML_DTYPES = [dt for dt in oracle.NUMPY_DTYPES if dt.type.__module__.startswith("ml_dtypes")]


def _shares(t: torch.Tensor, a: np.ndarray) -> bool:
    return t.numel() > 0 and np.shares_memory(oracle.exact_view(t), a)


def _values_equal(t: torch.Tensor, a: np.ndarray) -> None:
    expected = oracle.cast(a, oracle.native(a.dtype))
    oracle.assert_tensor_bits(t, expected, f"from_numpy({a.dtype})")


def _raw(dtype, shape, strides, offset, fill=None) -> np.ndarray:
    """An array at any byte offset/strides inside a fresh byte buffer."""
    dtype = np.dtype(dtype)
    span = sum(abs(s) * (n - 1) for s, n in zip(strides, shape, strict=True)) + dtype.itemsize
    low = sum(-s * (n - 1) for s, n in zip(strides, shape, strict=True) if s < 0)
    buffer = np.zeros(offset + span + 8, dtype=np.uint8)
    a = oracle.strided(buffer, dtype, shape, strides, offset + low)
    a[...] = np.arange(a.size).reshape(shape) if fill is None else fill
    return a


def _no_warnings(*args, **kwargs) -> torch.Tensor:
    """torchnp.from_numpy(*args, **kwargs), asserting that nothing warned."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = torchnp.from_numpy(*args, **kwargs)
    assert not caught, [str(w.message) for w in caught]
    return result


# ---------------------------------------------------------------------------- what it accepts


def test_ndarray_is_shared(engine):
    a = np.arange(6.0).reshape(2, 3)
    t = torchnp.from_numpy(a)
    assert t.dtype == torch.float64 and _shares(t, a)
    t[0, 0] = 42.0
    assert a[0, 0] == 42.0


def test_memmap_is_shared(engine, tmp_path):
    path = tmp_path / "data.bin"
    mm = np.memmap(path, dtype=np.float32, mode="w+", shape=(4, 3))
    mm[:] = np.arange(12.0).reshape(4, 3)
    t = torchnp.from_numpy(mm)
    assert _shares(t, mm)
    t[3, 2] = -1.0
    mm.flush()
    del t, mm
    gc.collect()
    assert np.fromfile(path, dtype=np.float32)[-1] == -1.0


def test_ndarray_subclass_is_shared(engine):
    class Tagged(np.ndarray):
        pass

    a = np.arange(5, dtype=np.int16).view(Tagged)
    t = torchnp.from_numpy(a)
    assert type(t) is torch.Tensor and t.dtype == torch.int16 and _shares(t, a)
    masked = np.ma.masked_array([1.0, 2.0, 3.0], mask=[0, 1, 0])
    assert _shares(torchnp.from_numpy(masked), masked.data)  # the data, as np.asarray sees it


def test_zero_d_array(engine):
    a = np.array(3.5, dtype=np.float32)
    t = torchnp.from_numpy(a)
    assert t.shape == () and t.dtype == torch.float32 and t.item() == 3.5 and _shares(t, a)


@pytest.mark.parametrize(
    ("scalar", "dtype"),
    [
        (np.float64(1), torch.float64),
        (np.float32(1.5), torch.float32),
        (np.float16(2), torch.float16),
        (np.int8(-3), torch.int8),
        (np.uint64(2**64 - 1), torch.uint64),
        (np.bool_(True), torch.bool),
        (np.complex64(1 + 2j), torch.complex64),
        (ml_dtypes.bfloat16(1.5), torch.bfloat16),
        (ml_dtypes.float8_e4m3fn(2), torch.float8_e4m3fn),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, torch.dtype) else "",
)
def test_numpy_scalars_keep_their_dtype(engine, scalar, dtype):
    t = torchnp.from_numpy(scalar)
    assert t.shape == () and t.dtype == dtype
    _values_equal(t, np.asarray(scalar))


def test_lists_and_nested_sequences(engine):
    t = torchnp.from_numpy([[1, 2], [3, 4]])
    assert t.dtype == torch.int64 and t.tolist() == [[1, 2], [3, 4]]
    t = torchnp.from_numpy([1.5, 2.5], dtype=torch.float16)
    assert t.dtype == torch.float16 and t.tolist() == [1.5, 2.5]


def test_objects_with___array__(engine):
    class Wrapper:
        def __init__(self, data: np.ndarray) -> None:
            self.data = data

        def __array__(self, dtype=None, copy=None):
            return self.data

    data = np.arange(4, dtype=np.uint16)
    t = torchnp.from_numpy(Wrapper(data))
    assert t.dtype == torch.uint16 and _shares(t, data)


def test_buffer_protocol_objects(engine):
    raw = bytearray(b"\x01\x02\x03")
    t = torchnp.from_numpy(raw)
    assert t.dtype == torch.uint8 and t.tolist() == [1, 2, 3]
    t[0] = 9
    assert raw[0] == 9  # shared, and the bytearray cannot be resized meanwhile
    with pytest.raises(BufferError):
        raw.append(4)
    floats = array.array("f", [1.0, 2.0])
    t = torchnp.from_numpy(floats)
    assert t.dtype == torch.float32 and t.tolist() == [1.0, 2.0]
    readonly = memoryview(b"\x05\x06")
    t = _no_warnings(readonly)
    assert t.tolist() == [5, 6]


def test_tensor_argument_raises_type_error(engine):
    with pytest.raises(TypeError, match="already is a tensor"):
        torchnp.from_numpy(torch.ones(2))


# ---------------------------------------------------------------------------- zero copy


@pytest.mark.parametrize("dtype", ML_DTYPES, ids=lambda d: np.dtype(d).name)
def test_ml_dtypes_arrays_are_shared_as_the_torch_dtype(engine, dtype):
    a = np.arange(8, dtype=np.float32).reshape(2, 4).astype(dtype)[:, ::2]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: ComplexHalf is experimental
        t = torchnp.from_numpy(a)
    assert t.dtype == oracle.NUMPY_TO_TORCH[np.dtype(dtype)]
    assert _shares(t, a)
    _values_equal(t, a)


def test_reversed_length_1_axis_still_shares(engine):
    a = np.arange(6.0).reshape(6, 1)[:, ::-1]
    assert a.strides[1] < 0
    t = torchnp.from_numpy(a, copy=False)
    assert _shares(t, a) and t.tolist() == a.tolist()
    b = np.arange(6.0)[None][::-1]
    assert _shares(torchnp.from_numpy(b, copy=False), b)
    c = np.arange(3.0)[None, :].view(np.uint8)[:, ::-1].view(np.uint8)  # harmless too
    assert _shares(torchnp.from_numpy(c[:, ::-1]), c)


def test_non_contiguous_positive_strides_are_shared(engine):
    a = np.arange(60, dtype=np.int32).reshape(3, 4, 5).transpose(2, 0, 1)[::2, :, 1:]
    t = torchnp.from_numpy(a)
    assert _shares(t, a) and t.stride() == tuple(s // 4 for s in a.strides)
    _values_equal(t, a)


# ---------------------------------------------------------------------------- copies


COPY_CASES = {
    "negative strides": lambda: np.arange(10.0)[::-2],
    "byte order": lambda: np.arange(6, dtype=">i4").reshape(2, 3),
    "not aligned": lambda: _raw(np.float64, (4,), (8,), offset=3),
    "not multiples of the itemsize": lambda: _raw(np.int32, (5,), (6,), offset=0),
}


@pytest.mark.parametrize("reason", COPY_CASES)
def test_copies_when_torch_cannot_hold_the_layout(engine, reason):
    a = COPY_CASES[reason]()
    t = _no_warnings(a)
    assert not _shares(t, a)
    assert t.dtype == oracle.NUMPY_TO_TORCH[oracle.native(a.dtype)]
    _values_equal(t, a)
    with pytest.raises(ValueError, match=reason):
        torchnp.from_numpy(a, copy=False)


def test_dtype_argument_copies_with_the_cast(engine):
    a = np.array([300.7, -1.5, np.inf, 65519.0])
    for dtype in (torch.float16, np.float16, "f2", ">f2"):
        t = torchnp.from_numpy(a, dtype=dtype)
        assert t.dtype == torch.float16 and not _shares(t, a)
        oracle.assert_same_bits(oracle.exact_view(t), a.astype(np.float16))
    with pytest.raises(ValueError, match=r"float64 → torch.float16 needs a cast"):
        torchnp.from_numpy(a, dtype=torch.float16, copy=False)
    assert torchnp.from_numpy(a[:2], dtype=torch.int8).tolist() == [44, -1]  # NumPy's wrap


def test_copy_is_one_fused_pass_without_temporary(engine, peak_rss):
    a = np.arange(1 << 24, dtype=">f8")[::-1]  # swap + reverse + cast in one go, 128 MiB
    peak, t = peak_rss(lambda: torchnp.from_numpy(a, dtype=torch.float32))
    result_bytes = t.numel() * t.element_size()
    assert t[0].item() == float((1 << 24) - 1)
    assert peak < result_bytes * 1.1, f"{(peak - result_bytes) >> 20} MiB of temporaries"
    # The measure sees a temporary: swapping first, then casting, needs one of 128 MiB.
    two_pass, _ = peak_rss(lambda: torch.from_numpy(a.astype("<f8").astype(np.float32)))
    assert two_pass > result_bytes * 1.5


def test_fused_copy_of_swapped_reversed_cast(engine):
    a = _raw(">f8", (3, 4), (-40, 9), offset=1)
    t = torchnp.from_numpy(a, dtype=torch.bfloat16)
    oracle.assert_same_bits(oracle.exact_view(t), a.astype(ml_dtypes.bfloat16))


def test_device_argument(engine):
    a = np.arange(4.0)
    t = torchnp.from_numpy(a, device="cpu")
    assert _shares(t, a)
    meta = torchnp.from_numpy(a, device="meta")
    assert meta.device.type == "meta" and meta.shape == (4,)
    with pytest.raises(ValueError, match="device meta is not the CPU"):
        torchnp.from_numpy(a, device="meta", copy=False)


@needs_cuda
def test_device_cuda_gives_a_cuda_tensor(engine):
    a = np.arange(6, dtype=">i2").reshape(2, 3)[:, ::-1]
    t = torchnp.from_numpy(a, dtype=torch.float32, device="cuda")
    assert t.device.type == "cuda"
    np.testing.assert_array_equal(t.cpu().numpy(), a.astype(np.float32))


@needs_cuda
def test_pin_memory_gives_pinned_cpu_tensor(engine):
    t = torchnp.from_numpy(np.arange(4.0), pin_memory=True)
    assert t.is_pinned() and t.device.type == "cpu"


@pytest.mark.skipif(CUDA, reason="checks the error without CUDA")
def test_pin_memory_without_cuda_raises_runtime_error(engine):
    a = np.arange(4.0)
    with pytest.raises(RuntimeError, match="pin_memory=True needs a CUDA device"):
        torchnp.from_numpy(a, pin_memory=True)
    np.testing.assert_array_equal(a, np.arange(4.0))


@pytest.mark.skipif(CUDA, reason="checks the error without CUDA")
def test_device_cuda_without_cuda_raises_before_any_work(engine):
    a = np.arange(4.0)[::-1]
    with pytest.raises(RuntimeError, match="no CUDA device"):
        torchnp.from_numpy(a, device="cuda")
    np.testing.assert_array_equal(a, np.arange(4.0)[::-1])


def test_copy_true_always_copies(engine):
    a = np.arange(6.0).reshape(2, 3)
    t = torchnp.from_numpy(a, copy=True)
    assert not _shares(t, a)
    _values_equal(t, a)
    assert t.is_contiguous()
    f = np.asfortranarray(a)
    assert torchnp.from_numpy(f, copy=True).T.is_contiguous()  # keeps the memory order


def test_copy_false_lists_every_reason(engine):
    a = _raw(">f4", (3, 2), (-12, 5), offset=1)
    a.flags.writeable = False
    with pytest.raises(ValueError) as info:
        torchnp.from_numpy(a, dtype=torch.float64, copy=False)
    message = str(info.value)
    for reason in (
        "byte order >f4 is not native",
        "float32 → torch.float64 needs a cast",
        "negative strides",
        "not multiples of the itemsize",
        "not aligned",
        "read-only",
        "share_readonly=True",
        "np.array(a)",
    ):
        assert reason in message, reason


# ---------------------------------------------------------------------------- read-only


def test_read_only_array_is_copied_by_default_without_warning(engine):
    a = np.arange(5.0)
    a.flags.writeable = False
    t = _no_warnings(a)
    assert not _shares(t, a)
    t[0] = 7.0  # the copy is writable, the array untouched
    assert a[0] == 0.0
    b = np.broadcast_to(np.arange(3.0), (2, 3))  # read-only, zero strides
    np.testing.assert_array_equal(_no_warnings(b).numpy(), b)


def test_read_only_copy_false_raises_naming_share_readonly(engine):
    a = np.arange(5.0)
    a.flags.writeable = False
    with pytest.raises(ValueError, match=r"read-only.*share_readonly=True") as info:
        torchnp.from_numpy(a, copy=False)
    assert "undefined" in str(info.value)  # the risk is stated


def test_share_readonly_on_read_only_memmap_shares_without_warning(engine, tmp_path):
    path = tmp_path / "ro.bin"
    np.arange(10, dtype=np.int32).tofile(path)
    mm = np.memmap(path, dtype=np.int32, mode="r")
    assert not mm.flags.writeable
    t = _no_warnings(mm, share_readonly=True)
    assert _shares(t, mm) and t.tolist() == list(range(10))
    t2 = _no_warnings(mm[::3], copy=False, share_readonly=True)
    assert _shares(t2, mm) and t2.tolist() == [0, 3, 6, 9]
    held = weakref.ref(mm)
    del mm
    gc.collect()
    assert held() is not None  # the tensor keeps the mapping alive
    assert t.sum().item() == 45
    del t, t2
    gc.collect()
    assert held() is None


# ---------------------------------------------------------------------------- unsupported


UNSUPPORTED = {
    "object": (np.array([1, "a"], dtype=object), "numeric"),
    "str": (np.array(["ab", "c"]), "strings"),
    "bytes": (np.array([b"ab", b"c"]), "uint8"),
    "void": (np.zeros(2, dtype="V4"), "uint8"),
    "structured": (np.zeros(2, dtype=[("x", "f4"), ("y", "i4")]), "field"),
    "datetime64": (np.array(["2024-01-01"], dtype="datetime64[D]"), "view datetime64"),
    "timedelta64": (np.array([1], dtype="timedelta64[s]"), "int64"),
    "longdouble": (np.ones(2, dtype=np.longdouble), "float64"),
    "clongdouble": (np.ones(2, dtype=np.clongdouble), "complex128"),
}


@pytest.mark.parametrize("kind", UNSUPPORTED)
def test_unsupported_dtypes_raise_type_error_with_hint(engine, kind):
    a, hint = UNSUPPORTED[kind]
    if a.dtype in (np.dtype(np.float64), np.dtype(np.complex128)):
        pytest.skip("longdouble is double on this platform")
    with pytest.raises(TypeError) as info:
        torchnp.from_numpy(a)
    message = str(info.value)
    assert str(a.dtype) in message and hint in message
    with pytest.raises(TypeError):
        torchnp.from_numpy(np.ones(2), dtype=a.dtype)


def test_cast_ml_dtypes_cannot_do_raises_type_error(engine):
    a = np.ones(3, dtype=ml_dtypes.float8_e5m2)
    with pytest.raises(TypeError, match="no cast from float8_e5m2 to float8_e8m0fnu"):
        torchnp.from_numpy(a, dtype=torch.float8_e8m0fnu)


def test_complex_to_real_warns_like_numpy(engine):
    a = np.array([1 + 2j, 3 - 4j])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t = torchnp.from_numpy(a, dtype=torch.float32)
    assert t.tolist() == [1.0, 3.0]
    warned = [w for w in caught if w.category is np.exceptions.ComplexWarning]
    assert len(warned) == 1 and warned[0].filename == __file__
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torchnp.from_numpy(a, dtype=torch.bool)
    assert not caught  # NumPy does not warn for complex -> bool either


# ---------------------------------------------------------------------------- lifetime


def test_shared_tensor_keeps_array_alive_and_non_resizable(engine):
    a = np.arange(5.0)
    held = weakref.ref(a)
    t = torchnp.from_numpy(a)
    with pytest.raises(ValueError, match="cannot resize"):
        a.resize(10)
    del a
    gc.collect()
    assert held() is not None and t.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    del t
    gc.collect()
    assert held() is None


def test_copied_tensor_does_not_reference_array(engine):
    a = np.arange(5.0)[::-1]
    held = weakref.ref(a.base)
    t = torchnp.from_numpy(a)
    del a
    gc.collect()
    assert held() is None and t.tolist() == [4.0, 3.0, 2.0, 1.0, 0.0]


# ---------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (1, 1)], ids=str)
def test_zero_d_and_empty(engine, shape):
    a = np.full(shape, 2.5)
    for kwargs in ({}, {"dtype": torch.int8}, {"copy": True}):
        t = torchnp.from_numpy(a, **kwargs)
        assert tuple(t.shape) == shape
        np.testing.assert_array_equal(t.numpy(), a.astype(t.numpy().dtype))
    empty_reversed = np.zeros((0, 3))[:, ::-1]
    assert torchnp.from_numpy(empty_reversed, copy=False).shape == (0, 3)


def test_more_than_2_to_the_31_elements(engine, big_memory):
    # A broadcast (read-only, so copied) source keeps the input free; the result is
    # 2**31 + 97,537 fresh bytes, the last of them at a flat index beyond 2**31.
    rows, cols = 2**15 + 1, 2**16 + 1
    row = (np.arange(cols) % 251 - 125).astype(np.int8)
    a = np.broadcast_to(row, (rows, cols))
    t = torchnp.from_numpy(a)
    assert tuple(t.shape) == (rows, cols) and t.numel() > 2**31 and t.is_contiguous()
    expected = torch.from_numpy(row)
    for i in (0, rows // 2, rows - 2, rows - 1):
        assert torch.equal(t[i], expected), f"row {i}"
    del t
    gc.collect()


def test_one_byte_ml_dtypes_with_big_endian_flag_still_share(engine):
    # A one-byte element has no byte order; NumPy still flags '>' ml_dtypes float8 as non-native.
    dt = np.dtype(ml_dtypes.float8_e4m3fn).newbyteorder(">")
    a = np.arange(4, dtype=np.uint8).view(dt)
    t = torchnp.from_numpy(a, copy=False)
    assert t.dtype == torch.float8_e4m3fn
    assert t.view(torch.uint8).tolist() == [0, 1, 2, 3]
