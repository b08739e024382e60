"""The small-call fast path replays the policy's decisions exactly: for random signatures and
layouts, a call answered from the memo (recorded by an earlier call of the same signature with
another layout) gives what the full policy gives for this call — the same values, dtype, shape,
strides, sharing and flags, or the same error — on both engines."""

from __future__ import annotations

import contextlib
import warnings
from unittest import mock

import ml_dtypes
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import oracle
import torchnp
from torchnp import _fast, _from_numpy, _pool, _to_numpy

TENSOR_DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.bfloat16,
    torch.int16,
    torch.uint8,
    torch.bool,
    torch.complex64,
    torch.float8_e4m3fn,
]
TO_NUMPY_DTYPES = [
    None,
    np.float32,
    "float16",
    torch.float64,
    np.dtype("f4"),
    np.dtype(">f8"),
    ml_dtypes.bfloat16,
    np.int32,
    np.uint8,
    np.complex128,
]
ARRAY_DTYPES = [
    np.dtype(np.float32),
    np.dtype(np.float64),
    np.dtype(">f4"),
    np.dtype(np.int16),
    np.dtype(np.uint8),
    np.dtype(np.bool_),
    np.dtype(np.complex64),
    np.dtype(ml_dtypes.bfloat16),
]
FROM_NUMPY_DTYPES = [None, torch.float32, torch.float64, np.float16, "int32", torch.bfloat16]
SETTINGS = settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@contextlib.contextmanager
def policy_only():
    """No memoised decision is used or recorded: every call runs the full policy."""
    _fast.clear()
    _fast.recording += 1
    try:
        yield
    finally:
        _fast.recording -= 1


def outcome(fn):
    """(result, None) or (None, (exception type, message)), warnings kept out of the way."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return fn(), None
        except (TypeError, ValueError, RuntimeError) as exc:
            return None, (type(exc), str(exc))


@st.composite
def tensors(draw, dtype):
    ndim = draw(st.integers(0, 3))
    shape = draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim))
    base = torch.from_numpy(
        np.random.default_rng(draw(st.integers(0, 99))).integers(0, 256, (4096,), dtype=np.uint8)
    )
    n = int(np.prod(shape)) if shape else 1
    t = base[: max(n, 1) * (torch.empty(0, dtype=dtype).element_size())]
    t = t.view(dtype)[:n].reshape(shape)
    kind = draw(st.sampled_from(["plain", "transposed", "sliced", "expanded", "flipped"]))
    if kind == "transposed" and ndim >= 2:
        t = t.transpose(0, -1)
    elif kind == "sliced" and ndim >= 1 and shape[0] > 1:
        t = t[::2]
    elif kind == "expanded" and ndim >= 1 and shape[-1] == 1:
        t = t.expand(*shape[:-1], 3)
    elif kind == "flipped" and ndim >= 1 and shape[0] > 1:
        t = t[1:]  # an offset view (torch has no negative strides)
    if dtype.is_floating_point and draw(st.booleans()):
        t = t.detach().requires_grad_(True)
    return t


def _same(fast, policy, source_memory):
    assert type(fast) is type(policy)
    if isinstance(policy, torch.Tensor):
        assert fast.dtype == policy.dtype and fast.shape == policy.shape
        assert fast.stride() == policy.stride()
        oracle.assert_tensor_bits(fast, oracle.exact_view(policy), "fast vs policy")
        fast_shares = fast.numel() > 0 and np.shares_memory(oracle.exact_view(fast), source_memory)
        policy_shares = policy.numel() > 0 and np.shares_memory(
            oracle.exact_view(policy), source_memory
        )
    else:
        assert fast.dtype == policy.dtype and fast.shape == policy.shape
        assert fast.strides == policy.strides, (fast.strides, policy.strides)
        assert fast.flags.writeable == policy.flags.writeable
        oracle.assert_same_bits(fast, policy, "fast vs policy")
        fast_shares = fast.size > 0 and np.shares_memory(fast, source_memory)
        policy_shares = policy.size > 0 and np.shares_memory(policy, source_memory)
    assert fast_shares == policy_shares, "sharing differs"


@SETTINGS
@given(
    data=st.data(),
    tensor_dtype=st.sampled_from(TENSOR_DTYPES),
    dtype=st.sampled_from(TO_NUMPY_DTYPES),
    copy=st.sampled_from([None, True, np.True_]),
    order=st.sampled_from(["K", "C", "F", "A", "c"]),
)
def test_to_numpy_replay_equals_the_policy(engine, data, tensor_dtype, dtype, copy, order):
    first = data.draw(tensors(tensor_dtype))  # the same signature: the same element type
    second = data.draw(tensors(tensor_dtype))
    call = {"dtype": dtype, "copy": copy, "order": order}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fast.clear()
        outcome(lambda: torchnp.to_numpy(first, **call))  # records the signature's decision
    fast, fast_error = outcome(lambda: torchnp.to_numpy(second, **call))
    with policy_only():
        policy, policy_error = outcome(lambda: torchnp.to_numpy(second, **call))
    assert fast_error == policy_error
    if policy_error is None:
        memory = oracle.exact_view(second.detach()) if second.numel() else np.empty(0)
        _same(fast, policy, memory)


OUT_DTYPES = [
    np.dtype(np.float32),
    np.dtype(np.float64),
    np.dtype(">f4"),
    np.dtype(np.int32),
    np.dtype(np.uint8),
    np.dtype(np.complex64),
    np.dtype(ml_dtypes.bfloat16),
]


@st.composite
def outs(draw, shape, dtype):
    """A destination for to_numpy(out=): usually of the tensor's shape, writable, in some
    layout; sometimes of another shape, read-only, or a subclass (the policy's errors)."""
    kind = draw(st.sampled_from(["C", "F", "strided", "other shape", "read-only", "matrix"]))
    if kind == "other shape":
        shape = (*shape, 2)
    if kind == "strided":
        out = np.zeros((*shape, 2), dtype)[..., 0]
    else:
        out = np.zeros(shape, dtype, order="F" if kind == "F" else "C")
    if kind == "read-only":
        out.flags.writeable = False
    if kind == "matrix" and out.ndim == 2:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", PendingDeprecationWarning)
            out = np.asmatrix(out)
    return out


@SETTINGS
@given(
    data=st.data(),
    tensor_dtype=st.sampled_from(TENSOR_DTYPES),
    out_dtype=st.sampled_from(OUT_DTYPES),
    dtype_matches=st.booleans(),
    copy=st.sampled_from([None, True, False]),
    order=st.sampled_from(["K", "C", "x"]),
)
def test_to_numpy_out_replay_equals_the_policy(
    engine, data, tensor_dtype, out_dtype, dtype_matches, copy, order
):
    first = data.draw(tensors(tensor_dtype))
    second = data.draw(tensors(tensor_dtype))
    dtype = out_dtype if dtype_matches else None
    call = {"dtype": dtype, "copy": copy, "order": order}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _fast.clear()
        outcome(lambda: torchnp.to_numpy(first, out=np.zeros(first.shape, out_dtype), **call))
    out_fast = data.draw(outs(tuple(second.shape), out_dtype))
    out_policy = out_fast.copy()
    if not out_fast.flags.writeable:
        out_policy.flags.writeable = False
    fast, fast_error = outcome(lambda: torchnp.to_numpy(second, out=out_fast, **call))
    with policy_only():
        policy, policy_error = outcome(lambda: torchnp.to_numpy(second, out=out_policy, **call))
    assert fast_error == policy_error
    if policy_error is None:
        assert fast is out_fast and policy is out_policy
    oracle.assert_same_bits(np.asarray(out_fast), np.asarray(out_policy), "out: fast vs policy")


def test_to_numpy_out_replay_is_used_and_stages_an_overlapping_source(engine):
    t = torch.arange(12.0)
    out = np.empty(12, np.float32)
    _fast.clear()
    torchnp.to_numpy(t, out=out)  # records the signature
    assert _fast._TO_NUMPY_OUT  # the decision is memoised ...
    t2 = torch.arange(12.0) * 2
    assert torchnp.to_numpy(t2, out=out) is out and np.array_equal(out, t2.numpy())
    # ... and a source that shares memory with out goes to the policy, which stages it first.
    buf = torch.arange(13.0)
    src, dst = buf[1:], buf[:-1].numpy()
    expected = buf[1:].numpy().copy()
    assert torchnp.to_numpy(src, out=dst) is dst
    assert np.array_equal(dst, expected)


@st.composite
def arrays(draw, dtype):
    ndim = draw(st.integers(0, 3))
    shape = draw(st.lists(st.integers(0, 5), min_size=ndim, max_size=ndim))
    raw = np.random.default_rng(draw(st.integers(0, 99))).integers(0, 256, 4096, dtype=np.uint8)
    n = int(np.prod(shape)) if shape else 1
    a = raw[: max(n, 1) * dtype.itemsize].view(dtype)[:n].reshape(shape)
    if dtype == np.bool_:
        a = (raw[:n] & 1).astype(bool).reshape(shape)
    kind = draw(st.sampled_from(["plain", "reversed", "transposed", "strided", "offset"]))
    if kind == "reversed" and ndim >= 1:
        a = a[::-1]
    elif kind == "transposed" and ndim >= 2:
        a = a.T
    elif kind == "strided" and ndim >= 1 and shape[0] > 1:
        a = a[::2]
    elif kind == "offset" and n:
        buf = np.zeros(n * dtype.itemsize + 1, np.uint8)
        a = buf[1:].view(dtype).reshape(shape)  # unaligned for itemsize > 1
        a[...] = np.zeros((), dtype)
    if draw(st.booleans()) and a.flags.writeable:
        a = a.copy()
        a.flags.writeable = draw(st.booleans())
    return a


@SETTINGS
@given(
    data=st.data(),
    array_dtype=st.sampled_from(ARRAY_DTYPES),
    dtype=st.sampled_from(FROM_NUMPY_DTYPES),
    copy=st.sampled_from([None, True]),
)
def test_from_numpy_replay_equals_the_policy(engine, data, array_dtype, dtype, copy):
    first = data.draw(arrays(array_dtype))
    second = data.draw(arrays(array_dtype))
    call = {"dtype": dtype, "copy": copy}
    _fast.clear()
    outcome(lambda: torchnp.from_numpy(first, **call))
    fast, fast_error = outcome(lambda: torchnp.from_numpy(second, **call))
    with policy_only():
        policy, policy_error = outcome(lambda: torchnp.from_numpy(second, **call))
    assert fast_error == policy_error
    if policy_error is None:
        _same(fast, policy, second if second.size else np.empty(0))


LARGE = (3, 1024, 640)  # float32: 7.5 MiB, past the pool's 4 MiB


def _from_pool(fn):
    """fn()'s result, and whether it came from the active engine's pool (one hand-out)."""
    pool = _pool.active()
    before = pool.hits + pool.misses
    result = fn()
    return result, pool.hits + pool.misses == before + 1


@pytest.mark.parametrize(
    ("make", "call"),
    [
        (lambda: torch.rand(LARGE), {"copy": True}),
        (lambda: torch.rand(LARGE).permute(2, 0, 1), {"order": "C"}),
        (lambda: torch.rand(LARGE).permute(2, 0, 1), {"order": "K", "copy": True}),
        (lambda: torch.rand(LARGE).transpose(0, 2), {"order": "F", "dtype": np.float64}),
        (lambda: torch.rand(LARGE).transpose(0, 2), {"order": "A", "copy": True}),
        (lambda: torch.rand(LARGE, dtype=torch.float64), {"dtype": np.float32}),
        (lambda: torch.rand(LARGE).to(torch.bfloat16), {"dtype": np.float32}),
    ],
)
def test_large_results_are_replayed_from_the_engines_pool(engine, make, call):
    """Results of the pool's size or more take the fast path too (the replay runs, the policy
    does not), from the active engine's recycling pool, with the policy's layout and bits."""
    first, second = make(), make()
    _fast.clear()
    torchnp.to_numpy(first, **call)  # records the signature's decision
    with mock.patch.object(_to_numpy, "convert", side_effect=AssertionError("policy ran")):
        fast, fast_pooled = _from_pool(lambda: torchnp.to_numpy(second, **call))
    with policy_only():
        policy, policy_pooled = _from_pool(lambda: torchnp.to_numpy(second, **call))
    _same(fast, policy, oracle.exact_view(second))
    assert fast_pooled and policy_pooled and not fast.flags.owndata


@pytest.mark.parametrize(
    ("make", "call"),
    [
        (lambda: np.random.rand(*LARGE).astype(np.float32)[::-1], {}),
        (lambda: np.random.rand(*LARGE), {"dtype": torch.float32}),
        (lambda: np.random.rand(*LARGE).astype(">f4"), {}),
        (lambda: np.random.rand(2, *LARGE).astype(np.float32), {"dtype": torch.bfloat16}),
    ],
)
def test_large_from_numpy_results_are_replayed_from_the_engines_pool(engine, make, call):
    first, second = make(), make()
    _fast.clear()
    torchnp.from_numpy(first, **call)
    with mock.patch.object(_from_numpy, "convert", side_effect=AssertionError("policy ran")):
        fast, fast_pooled = _from_pool(lambda: torchnp.from_numpy(second, **call))
    with policy_only():
        policy, policy_pooled = _from_pool(lambda: torchnp.from_numpy(second, **call))
    _same(fast, policy, second)
    assert fast_pooled and policy_pooled


def test_the_memo_is_used_and_bounded(engine):
    t = torch.arange(12.0).reshape(3, 4)
    _fast.clear()
    torchnp.to_numpy(t, dtype=np.float16)
    assert _fast._lookup(_fast._TO_NUMPY, (t.dtype, np.float16, None, "K")) is not None
    for k in range(_fast.MAX_ENTRIES + 5):  # many distinct signatures: bounded, then cleared
        torchnp.to_numpy(t, dtype=np.float16, order=["K", "C", "F", "A"][k % 4], copy=True)
        torchnp.from_numpy(np.ones(k % 7 + 1), dtype=torch.float32)
    assert _fast._entries <= _fast.MAX_ENTRIES


@pytest.mark.single_engine
def test_a_dtype_with_metadata_is_not_confused_with_the_plain_one():
    t = torch.ones(3)
    plain = np.dtype(np.float16)
    tagged = np.dtype(np.float16, metadata={"unit": "m"})
    _fast.clear()
    for _ in range(3):
        assert torchnp.to_numpy(t, dtype=plain).dtype.metadata is None
        assert torchnp.to_numpy(t, dtype=tagged).dtype.metadata == {"unit": "m"}


def test_a_copy_the_policy_refuses_is_never_answered_from_the_memo(engine):
    # The memo is keyed by copy as passed; 1 == True and hashes alike, but copy=1 is an error.
    t = torch.arange(6.0)
    x = np.arange(6.0)[::-1]
    out = np.empty(6, np.float32)
    for _ in range(2):  # the second round finds every signature memoised
        torchnp.to_numpy(t, copy=True)
        torchnp.to_numpy(t, dtype=np.float16, copy=True)
        torchnp.to_numpy(t, copy=True, out=out)
        torchnp.from_numpy(x, copy=True)
        for bad in (1, 1.0):
            with pytest.raises(ValueError, match="copy must be None, True or False"):
                torchnp.to_numpy(t, copy=bad)
            with pytest.raises(ValueError, match="copy must be None, True or False"):
                torchnp.to_numpy(t, dtype=np.float16, copy=bad)
            with pytest.raises(ValueError, match="copy must be None, True or False"):
                torchnp.to_numpy(t, copy=bad, out=out)
            with pytest.raises(ValueError, match="copy must be None, True or False"):
                torchnp.from_numpy(x, copy=bad)


# ---- the direct view (native tensor_view) ----------------------------------------------------

NUMPY_TYPED = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.uint16,
    torch.bool,
    torch.complex64,
    torch.complex128,
]


def _native_or_skip():
    native = torchnp._engines.loaded_native()
    if native is None:
        pytest.skip("the native engine is not loaded")
    return native


@pytest.mark.single_engine
@SETTINGS
@given(data=st.data(), dtype=st.sampled_from(NUMPY_TYPED))
def test_the_direct_view_is_torchs_view(data, dtype):
    """The native view is built from the tensor's metadata instead of through Tensor.numpy():
    the same dtype, shape, strides, data pointer and flags as torch's own view."""
    native = _native_or_skip()
    t = data.draw(tensors(dtype)).detach()
    view, theirs = native._C.tensor_view(t), t.numpy()
    assert view.dtype == theirs.dtype and view.shape == theirs.shape
    assert view.strides == theirs.strides
    if t.numel():  # (an empty view's pointer is torch's own, new each call)
        assert view.__array_interface__["data"] == theirs.__array_interface__["data"]
    flags = ("C_CONTIGUOUS", "F_CONTIGUOUS", "OWNDATA", "WRITEABLE", "ALIGNED", "WRITEBACKIFCOPY")
    assert [view.flags[f] for f in flags] == [theirs.flags[f] for f in flags]
    assert view.base is not None  # it holds the memory (the storage) while it lives


@contextlib.contextmanager
def metadata_read(C, stable: bool):
    """The fast path reads plain tensors' metadata through torch's stable C ABI (`stable`) or
    through torch's methods, inside the block; the stable read (checked) after it."""
    assert C.stable_init(_fast.stable_probes(), stable) == stable
    try:
        yield
    finally:
        assert C.stable_init(_fast.stable_probes())


@pytest.mark.single_engine
def test_the_stable_read_is_checked_against_torch_before_it_is_used():
    native = _native_or_skip()
    C = native._C
    assert C.stable_init(_fast.stable_probes())  # this torch's layout, as its methods say
    assert C.stable_read() and torchnp.info().tensor_metadata == "stable C ABI"
    # Anything but a plain torch.Tensor, or nothing to check it on: the methods read it.
    assert not C.stable_init([torch.nn.Parameter(torch.ones(2))])
    assert not C.stable_init([])
    assert not C.stable_read() and torchnp.info().tensor_metadata == "torch methods"
    t = torch.arange(6.0)
    assert type(C.tensor_view(t).base) is not torch.Tensor  # still the direct view, by methods
    assert C.stable_init(_fast.stable_probes())


@pytest.mark.single_engine
@SETTINGS
@given(
    data=st.data(), dtype=st.sampled_from(TENSOR_DTYPES), target=st.sampled_from(TO_NUMPY_DTYPES)
)
def test_the_stable_read_gives_what_the_methods_give(data, dtype, target):
    """Views, copies and casts of random layouts (offsets, broadcasts, permutations, grad, the
    storage shrunk under the tensor) read through torch's stable C ABI and through torch's
    methods: the same results, the same refusals."""
    C = _native_or_skip()._C
    t = data.draw(tensors(dtype))
    if data.draw(st.booleans()) and t.numel():
        t = t.detach().clone()  # its own storage, shrunk under a view of its second half
        view = t.reshape(-1)[t.numel() // 2 :]
        t.untyped_storage().resize_(data.draw(st.integers(0, t.untyped_storage().nbytes())))
        t = view
    order = data.draw(st.sampled_from(["K", "C", "F"]))
    calls = [
        lambda: C.tensor_view(t),
        lambda: torchnp.to_numpy(t, target, copy=True, order=order),
        lambda: torchnp.to_numpy(t, target, order=order),
    ]
    for call in calls:
        outcome(call)  # (decided once: the memo's replay is what runs below)
        with metadata_read(C, True):
            stable = outcome(call)
        with metadata_read(C, False):
            methods = outcome(call)
        assert (stable[0] is None) == (methods[0] is None), (stable, methods)
        assert stable[1] == methods[1]
        if stable[0] is not None:
            a, b = stable[0], methods[0]
            assert a.dtype == b.dtype and a.shape == b.shape and a.strides == b.strides
            assert a.flags.writeable == b.flags.writeable
            if a.size and t.untyped_storage().nbytes():
                oracle.assert_same_bits(a, b, "stable read vs methods")
                assert np.shares_memory(a, b) == (a.__array_interface__ == b.__array_interface__)


@pytest.mark.single_engine
def test_the_direct_view_leaves_the_rest_to_torch_and_the_policy():
    native = _native_or_skip()
    C = native._C
    t = torch.arange(6.0).reshape(2, 3)
    assert C.tensor_view(t).base is not None and type(C.tensor_view(t).base) is not torch.Tensor
    # A tensor that requires grad: its values, as the policy's detached view.
    grad = torch.arange(3.0, requires_grad=True)
    assert C.tensor_view(grad).__array_interface__ == grad.detach().numpy().__array_interface__
    # Refused outright (the policy's turn): bits, types torch has no NumPy view of, layouts.
    for refused in (
        torch.ones(2, dtype=torch.complex64).conj(),
        torch.ones(2, dtype=torch.complex64).conj().imag,  # the negative bit
        torch.ones(2, dtype=torch.bfloat16),
        torch.ones(2).to_sparse(),
        torch.ones(2, device="meta"),
    ):
        assert C.tensor_view(refused) is None, refused
    # torch's own answer where the direct view has none to give (no memory: an empty tensor).
    empty = torch.ones(0)
    assert C.tensor_view(empty).shape == (0,)
    # Storage freed under the tensor (FSDP's resize_(0)): nothing is viewed.
    freed = torch.ones(8)
    view = freed[2:]
    freed.untyped_storage().resize_(0)
    assert C.tensor_view(view) is None
    # The view keeps the memory alive after the tensor is gone, and set_ does not free it.
    u = torch.arange(4.0)
    a = C.tensor_view(u)
    u.set_(torch.zeros(1))
    del u
    assert a.tolist() == [0.0, 1.0, 2.0, 3.0]


@pytest.mark.single_engine
def test_the_direct_view_reads_the_class_attributes_as_python_does():
    """The fast path reads torch.Tensor's getters through the class's descriptors (no lookup per
    call) only while the class is unchanged: a property set on torch.Tensor since is what it
    reads then, as attribute access would."""
    native = _native_or_skip()
    C = native._C
    t = torch.arange(6.0).reshape(2, 3)
    assert type(C.tensor_view(t).base) is not torch.Tensor  # the direct view (a storage base)
    assert "is_cpu" not in vars(torch.Tensor)  # (torch._C.TensorBase's getter)
    torch.Tensor.is_cpu = property(lambda self: False)
    try:
        # Not a CPU tensor, as far as Python can tell: torch's own view (its base, the alias
        # tensor), not one made from the metadata; copies come from that view too.
        assert type(C.tensor_view(t).base) is torch.Tensor
        copy = torchnp.to_numpy(t, copy=True)
        assert copy.tolist() == t.tolist() and copy.base is None
    finally:
        del torch.Tensor.is_cpu
    assert t.is_cpu
    assert type(C.tensor_view(t).base) is not torch.Tensor  # the class restored: direct again


# ---- the public entries (_C.Entry) ------------------------------------------------------------


@pytest.mark.single_engine
def test_the_public_functions_are_native_entries_with_the_python_functions_face():
    import inspect
    import pickle
    import typing

    from torchnp import _from_numpy, _to_numpy

    native = _native_or_skip()
    for entry, fn in (
        (torchnp.to_numpy, _to_numpy.to_numpy),
        (torchnp.from_numpy, _from_numpy.from_numpy),
    ):
        assert type(entry) is native._C.Entry
        assert inspect.signature(entry) == inspect.signature(fn)
        assert typing.get_type_hints(entry) == typing.get_type_hints(fn)
        assert entry.__doc__ == fn.__doc__ and entry.__name__ == fn.__name__
        assert entry.__module__ == "torchnp" and inspect.unwrap(entry) is fn
        assert pickle.loads(pickle.dumps(entry)) is entry
        assert repr(entry) == f"<native function torchnp.{fn.__name__}>"

    class Holder:
        convert = torchnp.to_numpy  # looked up on a class or instance, not bound

    assert Holder().convert(torch.ones(2)).tolist() == [1.0, 1.0]


def test_the_entries_hand_every_other_call_to_the_policy(engine):
    """Any call shape the entry does not answer itself gets the Python function's result or
    error: out=, positional extras, unknown or repeated keywords, subclasses, other types."""
    t = torch.arange(6.0).reshape(2, 3)
    x = np.arange(6.0)
    out = np.empty((2, 3), np.float16)
    assert torchnp.to_numpy(t, np.float16, out=out) is out and out.tolist() == t.tolist()
    assert torchnp.to_numpy(t, "f2", copy=True, order="F").flags.f_contiguous
    assert torchnp.to_numpy(t, order=np.str_("C")).flags.c_contiguous
    assert torchnp.to_numpy(torch.nn.Parameter(t)).tolist() == t.tolist()
    assert torchnp.from_numpy(x, torch.float32, device="cpu").dtype == torch.float32
    assert torchnp.from_numpy(x.astype(">f8"), copy=None).tolist() == x.tolist()
    assert torchnp.from_numpy([[1, 2], [3, 4]]).shape == (2, 2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'orde'"):
        torchnp.to_numpy(t, orde="C")
    with pytest.raises(TypeError, match="multiple values for argument 'dtype'"):
        torchnp.to_numpy(t, np.float32, dtype=np.float32)
    with pytest.raises(TypeError, match="positional argument"):
        torchnp.to_numpy(t, None, None)
    with pytest.raises(TypeError, match="missing 1 required positional argument"):
        torchnp.from_numpy()
    with pytest.raises(ValueError, match="copy must be None, True or False"):
        torchnp.from_numpy(x, copy="yes")


@pytest.mark.single_engine
def test_the_entries_follow_the_active_engine():
    """Under the Python engine every call goes to the Python function (torch's own views)."""
    _native_or_skip()
    from torchnp import _engines

    t = torch.arange(3.0)
    previous = _engines.use("python")
    try:
        assert type(torchnp.to_numpy(t).base) is torch.Tensor  # torch's .numpy(): an alias
    finally:
        _engines.restore(previous)
    assert type(torchnp.to_numpy(t).base) is not torch.Tensor  # the direct view: the storage


def test_the_out_replay_writes_what_the_policy_writes(engine):
    """The memoised out= call (native: _C.ToNumpyOutReplay) on the layouts it takes and the
    ones it hands back to the policy, against a fresh policy call each time."""
    g = torch.Generator().manual_seed(7)
    cases = [
        (torch.randn(33, 17, generator=g), np.float32),
        (torch.randn(33, 17, generator=g).T, np.float64),  # transposed source
        (torch.randn(40, generator=g, requires_grad=True), np.float16),
        (torch.randn(40, generator=g).to(torch.bfloat16), np.float32),
        (torch.randn(8, 8, generator=g)[::2, 1:], np.dtype(">f4")),  # strided, byte-swapped out
    ]
    for t, out_dtype in cases:
        for _ in range(3):  # the first call records, the others replay
            out = np.full(t.shape, 7, out_dtype)
            assert torchnp.to_numpy(t, out=out) is out
            with policy_only():
                want = torchnp.to_numpy(t, out=np.empty(t.shape, out_dtype))
            oracle.assert_same_bits(out, want, f"{t.dtype} -> {out_dtype}")
    # Handed back: an out of another shape, a read-only one, one overlapping the tensor.
    t = torch.arange(6.0)
    torchnp.to_numpy(t, out=np.empty(6, np.float32))
    with pytest.raises(ValueError):
        torchnp.to_numpy(t, out=np.empty(5, np.float32))
    read_only = np.zeros(6, np.float32)
    read_only.flags.writeable = False
    with pytest.raises(ValueError):
        torchnp.to_numpy(t, out=read_only)
    assert (read_only == 0).all()
    own = torch.arange(7.0)
    for _ in range(2):  # overlapping memory: the source is read before any write
        torchnp.to_numpy(own[:-1], out=own.numpy()[1:])
    assert own.tolist() == [0.0, 0.0, 0.0, 1.0, 2.0, 3.0, 4.0]
