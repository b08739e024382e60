"""torchnp.to_numpy: one test per behaviour the README's API table and "differences" list promise,
on both engines."""

from __future__ import annotations

import gc
import warnings

import ml_dtypes
import numpy as np
import pytest
import torch

import oracle
import torchnp

CUDA = torch.cuda.is_available()
needs_cuda = pytest.mark.skipif(not CUDA, reason="needs a CUDA device")
FLOAT8 = [getattr(torch, n) for n in dir(torch) if n.startswith("float8_")]


def _storage_ref(t: torch.Tensor) -> int:
    return t.untyped_storage()._weak_ref()


def _storage_freed(ref: int) -> bool:
    gc.collect()
    return torch.UntypedStorage._expired(ref)


def _shares(result: np.ndarray, t: torch.Tensor) -> bool:
    return np.shares_memory(result, oracle.exact_view(t))


# ---------------------------------------------------------------------------- any tensor


def test_requires_grad_is_detached(engine):
    leaf = torch.arange(6.0, requires_grad=True)
    for t in (leaf, leaf * 2, leaf.view(2, 3).T):
        r = torchnp.to_numpy(t)
        np.testing.assert_array_equal(r, t.detach().numpy())
    assert _shares(torchnp.to_numpy(leaf), leaf)


def test_conj_bit_resolved(engine):
    base = torch.tensor([1 + 2j, -3 - 4j], dtype=torch.complex64)
    t = base.conj()
    assert t.is_conj()
    r = torchnp.to_numpy(t)
    np.testing.assert_array_equal(r, np.array([1 - 2j, -3 + 4j], dtype=np.complex64))
    assert not _shares(r, base)
    np.testing.assert_array_equal(base.numpy(), [1 + 2j, -3 - 4j])  # the tensor is untouched


def test_neg_bit_resolved(engine):
    z = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex128)
    t = z.conj().imag  # a float64 view with the negative bit
    assert t.is_neg()
    np.testing.assert_array_equal(torchnp.to_numpy(t), [-2.0, 4.0])
    np.testing.assert_array_equal(torchnp.to_numpy(t, dtype=np.int8), [-2, 4])


def test_conj_and_neg_bits_resolved_where_torch_has_no_kernel(engine):
    # torch has no neg/conj kernel for float8 and complex32 with both bits; ml_dtypes' is used.
    f8 = torch._neg_view(torch.tensor([1.0, -2.0]).to(torch.float8_e4m3fn))
    np.testing.assert_array_equal(torchnp.to_numpy(f8).astype(np.float32), [-1.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: ComplexHalf is experimental
        c = torch.tensor([1 + 2j]).to(torch.complex32)
        r = torchnp.to_numpy(torch._neg_view(c.conj()))
    np.testing.assert_array_equal(r, np.array([-1 + 2j], dtype=np.complex64))


def test_neg_bit_of_a_bool_tensor_is_a_type_error(engine):
    t = torch._neg_view(torch.tensor([True, False]))
    with pytest.raises(TypeError, match="bools have no negation"):
        torchnp.to_numpy(t)


def _tensor_of_bits(a: np.ndarray, torch_dtype: torch.dtype) -> torch.Tensor:
    """A tensor of `torch_dtype` over a copy of the array's bits (ml_dtypes types included)."""
    carrier = np.uint64 if a.dtype.itemsize == 16 else oracle._UINT[a.dtype.itemsize]
    return torch.from_numpy(np.ascontiguousarray(a).view(carrier).copy()).view(torch_dtype)


def test_sign_flips_follow_numpy_for_every_type(engine):
    # IEEE sign flips (NaN signs too), integer wrap-around, ml_dtypes' rules for fnuz and e8m0,
    # per component for complex types: each bit resolved in the tensor's own type.
    for torch_dtype, np_dtype in oracle.TORCH_TO_NUMPY.items():
        if torch_dtype == torch.bool:
            continue
        values = oracle.interesting_values(np_dtype)
        if np_dtype.itemsize == 1:  # every bit pattern
            values = np.arange(256, dtype=np.uint8).view(np_dtype)
        x = _tensor_of_bits(values, torch_dtype)
        views = [torch._neg_view(x)]
        if x.is_complex():
            views += [x.conj(), torch._neg_view(x.conj())]
        for view in views:
            oracle.assert_same_bits(
                torchnp.to_numpy(view, dtype=np_dtype), oracle.values(view), str(view.dtype)
            )


@needs_cuda
def test_cuda_tensor_copied_to_host(engine):
    t = torch.arange(12.0, device="cuda").reshape(3, 4).T
    r = torchnp.to_numpy(t, dtype=np.float16)
    np.testing.assert_array_equal(r, t.cpu().numpy().astype(np.float16))
    np.testing.assert_array_equal(torchnp.to_numpy(t), t.cpu().numpy())


def test_non_contiguous_and_offset_views(engine):
    base = torch.arange(60.0).reshape(3, 4, 5)
    t = base[1:, ::2, 3:].transpose(0, 2)
    assert t.storage_offset() > 0 and not t.is_contiguous()
    r = torchnp.to_numpy(t)
    np.testing.assert_array_equal(r, base.numpy()[1:, ::2, 3:].transpose(2, 1, 0))
    assert _shares(r, t)


def test_sparse_raises_type_error_naming_to_dense(engine):
    for t in (torch.eye(3).to_sparse(), torch.eye(3).to_sparse_csr()):
        with pytest.raises(TypeError, match=r"sparse.*\.to_dense\(\)"):
            torchnp.to_numpy(t)


def test_quantized_raises_type_error_naming_dequantize(engine):
    q = torch.quantize_per_tensor(torch.ones(3), 0.1, 0, torch.qint8)
    with pytest.raises(TypeError, match=r"quantized.*\.dequantize\(\)"):
        torchnp.to_numpy(q)


def test_meta_raises_type_error_saying_it_has_no_data(engine):
    with pytest.raises(TypeError, match=r"meta tensor.*no data.*to_empty"):
        torchnp.to_numpy(torch.empty(3, device="meta"))


@pytest.mark.parametrize("layout", [torch.strided, torch.jagged], ids=str)
def test_nested_raises_type_error_naming_to_padded_tensor(engine, layout):
    nt = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)], layout=layout)
    with pytest.raises(TypeError, match=r"nested.*\.to_padded_tensor"):
        torchnp.to_numpy(nt)


def test_subclass_with_torch_dispatch_raises_type_error_naming_it(engine):
    from torch.testing._internal.two_tensor import TwoTensor

    tt = TwoTensor(torch.ones(2), torch.zeros(2))
    with pytest.raises(TypeError, match=r"TwoTensor.*__torch_dispatch__"):
        torchnp.to_numpy(tt)


def test_plain_subclass_is_read_like_a_tensor(engine):
    p = torch.nn.Parameter(torch.arange(3.0))
    r = torchnp.to_numpy(p)
    np.testing.assert_array_equal(r, [0.0, 1.0, 2.0])
    assert type(r) is np.ndarray and _shares(r, p)


def test_not_a_tensor_raises_type_error(engine):
    with pytest.raises(TypeError, match=r"expects a torch.Tensor.*numpy.asarray"):
        torchnp.to_numpy([1, 2, 3])


@pytest.mark.parametrize("dtype", [torch.bits8, torch.uint4, torch.float4_e2m1fn_x2], ids=str)
def test_torch_dtype_without_numpy_type_raises_type_error(engine, dtype):
    with pytest.raises(TypeError, match=rf"{dtype}.*no NumPy equivalent"):
        torchnp.to_numpy(torch.empty(2, dtype=dtype))


# ---------------------------------------------------------------------------- dtype mapping

STANDARD = {
    torch.bool: np.bool_,
    torch.int8: np.int8,
    torch.int16: np.int16,
    torch.int32: np.int32,
    torch.int64: np.int64,
    torch.uint8: np.uint8,
    torch.uint16: np.uint16,
    torch.uint32: np.uint32,
    torch.uint64: np.uint64,
    torch.float16: np.float16,
    torch.float32: np.float32,
    torch.float64: np.float64,
    torch.complex64: np.complex64,
    torch.complex128: np.complex128,
}


@pytest.mark.parametrize("torch_dtype", STANDARD, ids=str)
def test_default_dtype_mapping_is_the_same_numpy_type(engine, torch_dtype):
    t = torch.arange(5).to(torch_dtype)
    r = torchnp.to_numpy(t)
    assert r.dtype == np.dtype(STANDARD[torch_dtype])
    np.testing.assert_array_equal(r, t.numpy())
    assert _shares(r, t)


@pytest.mark.parametrize("torch_dtype", [torch.bfloat16, *FLOAT8], ids=str)
def test_bf16_and_every_float8_map_to_ml_dtypes_bits_unchanged(engine, torch_dtype):
    size = torch.empty((), dtype=torch_dtype).element_size()
    bits = np.arange(2 ** (8 * size), dtype=f"u{size}")  # every bit pattern
    t = torch.from_numpy(bits.view(f"i{size}")).view(torch_dtype)
    r = torchnp.to_numpy(t)
    assert r.dtype == np.dtype(getattr(ml_dtypes, str(torch_dtype).removeprefix("torch.")))
    np.testing.assert_array_equal(r.view(bits.dtype), bits)
    assert _shares(r, t)


def test_complex32_widens_to_complex64(engine):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch: ComplexHalf is experimental
        t = torch.tensor([1 + 2j, -0.5 + 65504j, float("inf")]).to(torch.complex32)
        r = torchnp.to_numpy(t)
        widened = t.to(torch.complex64).numpy()
    assert r.dtype == np.complex64
    np.testing.assert_array_equal(r, widened)
    with pytest.raises(ValueError, match=r"complex32 → complex64 needs a cast"):
        torchnp.to_numpy(t, copy=False)


def test_dtype_cast_is_numpy_astype(engine):
    t = torch.tensor([300.7, -129.9, 2.5, -0.0, 1e-3, 65519.0])
    ref = t.numpy()
    for dtype in (np.int8, np.uint8, np.uint32, np.float16, ml_dtypes.bfloat16, ">f8", "<i2"):
        oracle.assert_same_bits(torchnp.to_numpy(t, dtype=dtype), ref.astype(dtype), str(dtype))
    assert torchnp.to_numpy(t, dtype=np.int8)[0] == 44  # wraps through int32, as NumPy does


def test_cast_and_layout_change_in_one_pass_without_temporary(engine, peak_rss):
    t = torch.arange(1 << 24, dtype=torch.float64).reshape(4096, 4096).T  # 128 MiB
    peak, r = peak_rss(lambda: torchnp.to_numpy(t, dtype=">f4", order="C"))
    assert r[1, 0] == 1.0 and r[0, 1] == 4096.0 and r.flags.c_contiguous and r.dtype == ">f4"
    assert peak < r.nbytes * 1.1, f"{(peak - r.nbytes) >> 20} MiB beyond the result"
    # The measure sees a temporary: the two-pass spelling needs one of the result's size.
    two_pass, _ = peak_rss(lambda: t.to(torch.float32).contiguous().numpy().astype(">f4"))
    assert two_pass > r.nbytes * 1.5


def test_complex_to_real_drops_imaginary_part(engine):
    t = torch.tensor([1.5 + 2j, -3 - 4j], dtype=torch.complex128)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
        np.testing.assert_array_equal(torchnp.to_numpy(t, dtype=np.float32), [1.5, -3.0])
        np.testing.assert_array_equal(torchnp.to_numpy(t, dtype=np.int16), [1, -3])


@pytest.mark.parametrize("src", [np.complex64, np.complex128])
@pytest.mark.parametrize("dst", [np.float32, np.int8, np.bool_, np.complex64, ml_dtypes.bfloat16])
def test_complex_warning_emitted_like_numpy(engine, src, dst):
    t = torch.from_numpy(np.array([1 + 1j, 2], dtype=src))
    with warnings.catch_warnings(record=True) as numpy_caught:
        warnings.simplefilter("always")
        t.numpy().astype(dst)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torchnp.to_numpy(t, dtype=dst)
    numpy_warned = any(w.category is np.exceptions.ComplexWarning for w in numpy_caught)
    ours = [w for w in caught if w.category is np.exceptions.ComplexWarning]
    if np.dtype(dst).type.__module__.startswith("ml_dtypes"):
        # ml_dtypes' casts warn 0 (bfloat16) or 2 (float8) times; torchnp warns once for every
        # complex -> real cast, as NumPy does for its own types.
        assert len(ours) == 1
    else:
        assert len(ours) == int(numpy_warned)
    for w in ours:
        assert w.filename == __file__  # points at the caller's line, as NumPy's does


def test_dtype_accepts_numpy_and_torch_spellings(engine):
    t = torch.arange(3, dtype=torch.int32)
    for spelling in (np.float32, "f4", "float32", np.dtype("f4"), torch.float32):
        r = torchnp.to_numpy(t, dtype=spelling)
        assert r.dtype == np.float32
    r = torchnp.to_numpy(t, dtype=">f4")
    assert r.dtype == np.dtype(">f4") and r.dtype.byteorder == ">"
    np.testing.assert_array_equal(r, [0.0, 1.0, 2.0])
    with pytest.raises(TypeError, match="not a dtype"):
        torchnp.to_numpy(t, dtype="no such type")


def test_cast_ml_dtypes_cannot_do_raises_type_error(engine):
    t = torch.ones(3).to(torch.float8_e8m0fnu)
    with pytest.raises(TypeError, match="no cast from float8_e8m0fnu to float8_e4m3fn"):
        torchnp.to_numpy(t, dtype=ml_dtypes.float8_e4m3fn)
    out = np.zeros(3, dtype=ml_dtypes.float8_e5m2)
    with pytest.raises(TypeError, match="no cast"):
        torchnp.to_numpy(t, out=out)
    assert not out.view(np.uint8).any()


# ---------------------------------------------------------------------------- copy


def test_copy_none_shares(engine):
    t = torch.arange(6.0).reshape(2, 3)
    r = torchnp.to_numpy(t)
    assert _shares(r, t) and r.flags.writeable
    r[0, 0] = 42.0
    assert t[0, 0] == 42.0


def test_copy_true_owns_data(engine):
    t = torch.arange(6.0).reshape(2, 3)
    for view in (t, t.T, t[:, ::2]):
        r = torchnp.to_numpy(view, copy=True)
        assert r.flags.owndata and r.flags.writeable and not _shares(r, view)
        np.testing.assert_array_equal(r, view.numpy())
    c = torch.tensor([1 + 1j]).conj()
    r = torchnp.to_numpy(c, copy=True)
    assert not np.shares_memory(r, oracle.exact_view(c))


def test_copy_false_shares_when_possible(engine):
    t = torch.arange(6.0).reshape(2, 3).T
    assert _shares(torchnp.to_numpy(t, copy=False), t)
    assert _shares(torchnp.to_numpy(t, copy=False, order="F"), t)


def test_copy_false_lists_every_reason(engine):
    z = torch.randn(3, 4, dtype=torch.complex64).T.conj()
    with pytest.raises(ValueError) as info:
        torchnp.to_numpy(z, dtype=np.complex128, order="C", copy=False)
    message = str(info.value)
    for reason in ("conjugate bit set", "complex64 → complex128 needs a cast", "order='C'"):
        assert reason in message
    neg = torch.randn(3, dtype=torch.complex64).conj().imag
    with pytest.raises(ValueError, match="negative bit set"):
        torchnp.to_numpy(neg, copy=False)
    with pytest.raises(ValueError, match="dtype bfloat16 → float32 needs a cast"):
        torchnp.to_numpy(torch.ones(2, dtype=torch.bfloat16), dtype=np.float32, copy=False)


@needs_cuda
def test_copy_false_names_the_device(engine):
    with pytest.raises(ValueError, match="on cuda:0"):
        torchnp.to_numpy(torch.ones(2, device="cuda"), copy=False)


def test_invalid_copy_and_order_arguments(engine):
    with pytest.raises(ValueError, match="copy must be"):
        torchnp.to_numpy(torch.ones(2), copy="yes")
    with pytest.raises(ValueError, match="order must be"):
        torchnp.to_numpy(torch.ones(2), order="X")


# ---------------------------------------------------------------------------- order


def test_order_k_keeps_dim_order(engine):
    t = torch.arange(24.0).reshape(2, 3, 4)
    for view in (t.permute(2, 1, 0), t.permute(1, 2, 0), t.permute(2, 0, 1)[:, :, ::2]):
        r = torchnp.to_numpy(view, dtype=np.float16)  # a copy
        assert np.argsort(r.strides).tolist() == np.argsort(view.stride()).tolist()
        assert r.flags.owndata
        np.testing.assert_array_equal(r, view.numpy().astype(np.float16))
    assert torchnp.to_numpy(t.permute(2, 1, 0), dtype=np.float16).flags.f_contiguous


def test_order_k_puts_broadcast_dims_outermost(engine):
    # Unlike NumPy's K (broadcast dims innermost), so copying an expanded row is a streaming
    # write and gives a C-ordered result.
    t = torch.arange(3.0).expand(4, 3)
    r = torchnp.to_numpy(t, copy=True)
    assert r.flags.c_contiguous and r.flags.owndata
    np.testing.assert_array_equal(r, np.broadcast_to(np.arange(3.0), (4, 3)))
    r = torchnp.to_numpy(torch.arange(3.0)[:, None].expand(3, 5).T, dtype=np.float16)
    assert r.strides == (6, 2)  # the broadcast dim (the first, after .T) is outermost


@pytest.mark.parametrize("order", ["C", "F", "A", "K"])
def test_order_c_f_a_k_match_numpy(engine, order):
    t = torch.arange(24.0).reshape(4, 6)
    for view in (t, t.T, t[:, ::2], t.T[::2]):
        ref = view.numpy()
        r = torchnp.to_numpy(view, dtype=np.float32, order=order, copy=True)
        expected = np.array(ref, order=order, copy=True)
        np.testing.assert_array_equal(r, expected)
        assert r.flags.c_contiguous == expected.flags.c_contiguous
        assert r.flags.f_contiguous == expected.flags.f_contiguous


def test_shared_result_keeps_strides(engine):
    t = torch.arange(60.0).reshape(3, 4, 5)[::2, 1:, ::2]
    r = torchnp.to_numpy(t)
    assert r.strides == tuple(s * t.element_size() for s in t.stride())
    assert _shares(r, t)
    expanded = torch.arange(3.0).expand(4, 3)
    assert torchnp.to_numpy(expanded).strides == (0, 4)


def test_order_not_matching_layout_copies_or_refuses(engine):
    t = torch.arange(6.0).reshape(2, 3)
    assert _shares(torchnp.to_numpy(t, order="C"), t)
    assert _shares(torchnp.to_numpy(t, order="A"), t)
    r = torchnp.to_numpy(t, order="F")
    assert r.flags.f_contiguous and not _shares(r, t)
    with pytest.raises(ValueError, match="order='F' but the tensor is not F-contiguous"):
        torchnp.to_numpy(t, order="F", copy=False)
    assert _shares(torchnp.to_numpy(t.T, order="F"), t)


# ---------------------------------------------------------------------------- out=


def test_out_writing_one_element_several_times_keeps_the_last_write(engine):
    # A writable broadcast out= (stride 0): the last element of each row wins, as np.copyto
    # does, on every engine and thread count (no race between threads).
    t = torch.arange(2 * 300_000, dtype=torch.float32).reshape(2, 300_000)
    base = np.zeros(2, np.float32)
    out = np.lib.stride_tricks.as_strided(base, (2, 300_000), (4, 0), writeable=True)
    for _ in range(5):
        torchnp.to_numpy(t, out=out)
        np.testing.assert_array_equal(base, t[:, -1].numpy())
    reference = np.zeros(2, np.float32)
    np.copyto(np.lib.stride_tricks.as_strided(reference, (2, 300_000), (4, 0), writeable=True), t)
    np.testing.assert_array_equal(base, reference)


def test_out_strided_slice_of_bigger_array(engine):
    big = np.full((6, 10), -1.0)
    out = big[1:4, 8:0:-3]
    t = torch.arange(9.0).reshape(3, 3)
    assert torchnp.to_numpy(t, out=out) is out
    np.testing.assert_array_equal(out, t.numpy())
    rest = np.ones(big.shape, dtype=bool)
    rest[1:4, 8:0:-3] = False
    assert (big[rest] == -1.0).all()


@pytest.mark.parametrize("out_dtype", [np.float16, ">i4", np.uint8, ml_dtypes.bfloat16, "c8"])
def test_out_other_dtype_gets_the_cast(engine, out_dtype):
    t = torch.tensor([[1.5, -2.25], [300.0, 7.0]])
    out = np.zeros((2, 2), dtype=out_dtype)
    torchnp.to_numpy(t, out=out)
    oracle.assert_same_bits(out, t.numpy().astype(out_dtype))
    torchnp.to_numpy(t, dtype=out.dtype, out=out)  # a matching dtype= is fine


def test_out_overlapping_the_tensor_memory(engine):
    t = torch.arange(10.0)
    a = t.numpy()
    torchnp.to_numpy(t[:-1], out=a[1:])  # shifted: the source must be read before writes
    np.testing.assert_array_equal(a, [0, 0, 1, 2, 3, 4, 5, 6, 7, 8])
    t = torch.arange(10.0)
    a = t.numpy()
    torchnp.to_numpy(t, out=a[::-1])  # reversed in place
    np.testing.assert_array_equal(a, np.arange(10.0)[::-1])
    t = torch.arange(8, dtype=torch.int32)
    as_f2 = t.numpy().view(np.float16)[::2]  # same bytes, another dtype
    torchnp.to_numpy(t, out=as_f2)
    np.testing.assert_array_equal(as_f2, np.arange(8, dtype=np.float16))


def _untouched_after(call, out: np.ndarray, error: type, match: str) -> None:
    snapshot = out.copy()
    with pytest.raises(error, match=match):
        call()
    assert np.array_equal(out.view(np.uint8), snapshot.view(np.uint8))


def test_out_wrong_shape_read_only_or_conflicting_dtype_raises_out_untouched(engine):
    t = torch.arange(6.0).reshape(2, 3)
    out = np.full((3, 2), 7.0)
    _untouched_after(lambda: torchnp.to_numpy(t, out=out), out, ValueError, r"shape \(3, 2\)")
    ro = np.full((2, 3), 7.0)
    ro.flags.writeable = False
    _untouched_after(lambda: torchnp.to_numpy(t, out=ro), ro, ValueError, "read-only")
    good = np.full((2, 3), 7.0)
    _untouched_after(
        lambda: torchnp.to_numpy(t, dtype=np.float32, out=good), good, TypeError, "conflicts"
    )
    _untouched_after(
        lambda: torchnp.to_numpy(t, out=good, copy=False), good, ValueError, "copy=False"
    )
    obj = np.full((2, 3), None, dtype=object)
    with pytest.raises(TypeError, match="object"):
        torchnp.to_numpy(t, out=obj)
    assert (obj == None).all()  # noqa: E711 (elementwise)
    with pytest.raises(TypeError, match=r"numpy.ndarray"):
        torchnp.to_numpy(t, out=[[0] * 3] * 2)


# ---------------------------------------------------------------------------- lifetime


def test_shared_result_keeps_tensor_alive(engine):
    t = torch.arange(1000.0)
    ref = _storage_ref(t)
    r = torchnp.to_numpy(t)
    del t
    assert not _storage_freed(ref)
    assert r[999] == 999.0
    del r
    assert _storage_freed(ref)
    torch.UntypedStorage._free_weak_ref(ref)


def test_copied_result_does_not_reference_tensor(engine):
    for kwargs in ({"copy": True}, {"dtype": np.float16}, {"order": "F"}):
        t = torch.arange(12.0).reshape(3, 4)
        ref = _storage_ref(t)
        r = torchnp.to_numpy(t, **kwargs)
        del t
        assert _storage_freed(ref), kwargs
        assert r[2, 3] == 11.0
        torch.UntypedStorage._free_weak_ref(ref)


# ---------------------------------------------------------------------------- sizes


@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (1, 1)], ids=str)
def test_zero_d_and_empty(engine, shape):
    t = torch.full(shape, 2.5)
    for kwargs in ({}, {"dtype": np.int8}, {"copy": True, "order": "F"}):
        r = torchnp.to_numpy(t, **kwargs)
        assert r.shape == shape and isinstance(r, np.ndarray)
        np.testing.assert_array_equal(r, t.numpy().astype(r.dtype))
    out = np.zeros(shape, dtype=np.float16)
    assert torchnp.to_numpy(t, out=out) is out


def test_more_than_2_to_the_31_elements(engine, big_memory):
    # A broadcast source (one 64 KiB row read again and again) keeps the input free; the result
    # is 2**31 + 97,537 fresh bytes, the last of them at a flat index beyond 2**31.
    rows, cols = 2**15 + 1, 2**16 + 1
    row = torch.arange(cols, dtype=torch.int16).remainder(251).sub(125).to(torch.int8)
    t = row.expand(rows, cols)
    r = torchnp.to_numpy(t, order="C")  # a copy: C order does not match the zero stride
    assert r.shape == (rows, cols) and r.size > 2**31 and r.flags.c_contiguous
    expected = row.numpy()
    for i in (0, rows // 2, rows - 2, rows - 1):
        assert np.array_equal(r[i], expected), f"row {i}"
    del r
    gc.collect()


def test_copy_true_of_a_tensor_with_bits_owns_its_data(engine):
    # Regression: the staged (bits resolved) result used to be a view of a torch tensor.
    for t in (torch.tensor([1 + 2j, -3j]).conj(), torch._neg_view(torch.ones(2))):
        for copy in (True, None):
            r = torchnp.to_numpy(t, copy=copy)
            assert r.flags.owndata and r.base is None
            np.testing.assert_array_equal(r, t.resolve_conj().resolve_neg().numpy())


def test_zero_tensor_converts_to_zeros(engine):
    # Regression: autograd's memory-less ZeroTensor fell through the fast path to torch's
    # RuntimeError. It converts like .numpy(force=True), and copy=False says why it cannot.
    z = torch._efficientzerotensor((2, 3))
    for kwargs in ({}, {"copy": True}, {"dtype": np.float16}, {"order": "F"}):
        r = torchnp.to_numpy(z, **kwargs)
        assert r.shape == (2, 3) and not r.any()
        assert r.dtype == np.dtype(kwargs.get("dtype", np.float32))
        assert r.flags.owndata and r.flags.writeable and 0 not in r.strides  # not a broadcast
    assert torchnp.to_numpy(z, order="F").flags.f_contiguous
    e8m0 = torchnp.to_numpy(z, dtype=ml_dtypes.float8_e8m0fnu)  # cast like any source: 0 -> NaN
    assert np.isnan(e8m0.astype(np.float32)).all()
    with pytest.raises(ValueError, match="ZeroTensor"):
        torchnp.to_numpy(z, copy=False)


def test_dtype_metadata_is_neither_lost_nor_invented(engine):
    # Regression: the dtype memo treated dtypes that differ only in metadata (equal and
    # hashing equal in NumPy) as one.
    enum = np.dtype("i1", metadata={"enum": {"A": 0, "B": 1}})
    out = np.empty(3, enum)
    assert torchnp.to_numpy(torch.ones(3), out=out) is out
    assert torchnp.to_numpy(torch.ones(3), dtype=np.dtype("i1")).dtype.metadata is None
    assert torchnp.to_numpy(torch.ones(3), dtype=enum).dtype.metadata == {"enum": {"A": 0, "B": 1}}


def test_tensor_inside_vmap_raises_type_error_naming_the_transform(engine):
    with pytest.raises(TypeError, match=r"torch\.func transforms"):
        torch.vmap(lambda x: torchnp.to_numpy(x))(torch.ones(2, 3))


def test_out_with_unsupported_dtype_names_out(engine):
    with pytest.raises(TypeError, match=r"out\.dtype object cannot be written"):
        torchnp.to_numpy(torch.ones(3), out=np.zeros(3, dtype=object))
