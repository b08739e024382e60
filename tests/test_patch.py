"""torchnp.patch(): existing code's conversions through torchnp, torch's contract kept.

Every behavioural test runs on both engines (conftest). The rule each test checks against is
torch itself: the same call unpatched (its result, its error type and message, whether it
shares memory), except where the patch is documented to do more (README, "Drop-in").
"""

from __future__ import annotations

import threading
import warnings

import ml_dtypes
import numpy as np
import pytest
import torch

import torchnp
from torchnp import _originals, _patch

BF16 = ml_dtypes.bfloat16


@pytest.fixture
def patched():
    with torchnp.patch() as handle:
        yield handle
    assert not torchnp.is_patched()


def _outcome(fn):
    """What a call gives: ('ok', result) or ('raise', type, message)."""
    try:
        return ("ok", fn())
    except Exception as exc:
        return ("raise", type(exc), str(exc))


def _same_error(fn):
    """`fn` raises under the patch exactly what it raises without it."""
    before = _outcome(fn)
    assert before[0] == "raise", before
    with torchnp.patch():
        after = _outcome(fn)
    assert after == before


def _shares(array: np.ndarray, tensor: torch.Tensor) -> bool:
    return array.size > 0 and np.shares_memory(array, tensor.detach().numpy(force=True))


# ---- installing and removing -------------------------------------------------------------


@pytest.mark.single_engine
def test_never_active_unless_asked():
    assert not torchnp.is_patched()
    assert torch.Tensor.numpy is _originals.tensor_numpy
    assert "numpy" not in torch.Tensor.__dict__  # inherited from torch._C.TensorBase
    assert torch.from_numpy is _originals.from_numpy
    assert torch.Tensor.__array__ is _originals.tensor_array


@pytest.mark.single_engine
def test_context_manager_installs_and_restores_exactly():
    before = {n: torch.Tensor.__dict__.get(n) for n in ("numpy", "__array__", "__eq__", "__ne__")}
    with torchnp.patch() as p:
        assert torchnp.is_patched()
        installed = {name: ours for _, name, ours, *_ in _patch._saved}
        assert sorted(installed) == sorted(
            ["numpy", "__array__", "__eq__", "__ne__", "from_numpy", "as_tensor", "asarray"]
        )
        assert torch.Tensor.__dict__["numpy"] is installed["numpy"]
        assert torch.Tensor.numpy is not _originals.tensor_numpy
        assert torch.from_numpy is installed["from_numpy"] is not _originals.from_numpy
        assert torch.as_tensor is _patch.as_tensor
        assert torch.asarray is _patch.asarray
        assert torch.Tensor.__dict__["__array__"] is installed["__array__"]
        assert torch.Tensor.__array__ is not _originals.tensor_array
        assert "active" in repr(p)
    after = {n: torch.Tensor.__dict__.get(n) for n in before}
    assert after == before
    assert torch.from_numpy is _originals.from_numpy
    assert torch.as_tensor is _originals.as_tensor
    assert torch.asarray is _originals.asarray
    assert "closed" in repr(p)


@pytest.mark.single_engine
def test_plain_call_nesting_idempotent_and_unpatch():
    first = torchnp.patch()
    second = torchnp.patch()  # installs nothing more
    assert len(_patch._saved) == 7
    with torchnp.patch():
        pass
    assert torchnp.is_patched()  # the inner block leaves the outer handles' patch in place
    first.close()
    first.close()  # closing a handle twice counts once
    assert torchnp.is_patched()
    second.close()
    assert not torchnp.is_patched()
    assert torch.Tensor.numpy is _originals.tensor_numpy

    handle = torchnp.patch()
    torchnp.patch()
    torchnp.unpatch()  # every handle at once
    assert not torchnp.is_patched()
    handle.close()  # from before unpatch(): no effect
    torchnp.unpatch()  # a no-op when not patched
    with torchnp.patch():
        assert torchnp.is_patched()
    assert not torchnp.is_patched()


@pytest.mark.single_engine
def test_replaced_after_patch_is_left_in_place():
    torchnp.patch()
    theirs = lambda self, *, force=False: "theirs"  # noqa: E731
    torch.Tensor.numpy = theirs
    try:
        with pytest.warns(RuntimeWarning, match="Tensor.numpy was replaced"):
            torchnp.unpatch()
        assert torch.Tensor.numpy is theirs
        assert torch.from_numpy is _originals.from_numpy  # the rest is restored
    finally:
        del torch.Tensor.numpy
    assert torch.Tensor.numpy is _originals.tensor_numpy


@pytest.mark.single_engine
def test_patching_is_thread_safe():
    errors: list[BaseException] = []
    t = torch.arange(12.0).reshape(3, 4)
    a = np.arange(12.0).reshape(3, 4)

    def patcher() -> None:
        try:
            for _ in range(300):
                with torchnp.patch():
                    np.testing.assert_array_equal(t.numpy(), a)
                    assert torch.from_numpy(a[::-1]).tolist() == a[::-1].tolist()
        except BaseException as exc:
            errors.append(exc)

    def user() -> None:
        try:
            for _ in range(2000):  # whichever state it sees, the results are torch's
                np.testing.assert_array_equal(t.numpy(), a)
                np.testing.assert_array_equal(np.asarray(t), a)
                assert torch.from_numpy(a).data_ptr() == a.ctypes.data
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=f) for f in (patcher,) * 4 + (user,) * 2]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors[0]
    assert not torchnp.is_patched()
    assert torch.Tensor.numpy is _originals.tensor_numpy


# ---- Tensor.numpy ------------------------------------------------------------------------


def test_numpy_shares_exactly_like_torch(patched):
    for t in (torch.arange(6.0).reshape(2, 3), torch.arange(24).reshape(2, 3, 4)[:, 1, ::2]):
        a = t.numpy()
        assert a.__array_interface__ == _originals.tensor_numpy(t).__array_interface__
        a[(0,) * a.ndim] = 42
        assert t[(0,) * t.ndim].item() == 42  # writes reach the tensor
    with torch.no_grad():  # grad mode off: torch shares a tensor that requires grad
        p = torch.nn.Parameter(torch.ones(3))
        assert np.shares_memory(p.numpy(), _originals.tensor_numpy(p.detach()))


@pytest.mark.parametrize(
    "make",
    [
        lambda: torch.ones(3, requires_grad=True),  # grad mode on
        lambda: torch.ones(3, dtype=torch.bfloat16, requires_grad=True),
        lambda: torch.ones(3, dtype=torch.complex64).conj(),
        lambda: torch._neg_view(torch.ones(3)),
        lambda: torch.ones(3, dtype=torch.bfloat16).to_sparse(),
        lambda: torch.ones(3).to_sparse(),
        lambda: torch.ones(3, device="meta"),
        lambda: torch.ones(3, dtype=torch.complex32),  # no NumPy type to share it as
    ],
    ids=["grad", "bf16-grad", "conj", "neg", "sparse-bf16", "sparse", "meta", "complex32"],
)
def test_numpy_keeps_torch_errors_and_messages(make):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # complex32 is "experimental"
        t = make()
    _same_error(lambda: t.numpy())
    _same_error(lambda: t.numpy(force=1))  # torch's TypeError for a non-bool force


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2], ids=str)
def test_numpy_shares_ml_dtypes_views(patched, dtype):
    t = torch.linspace(-2, 2, 7).to(dtype)
    a = t.numpy()
    assert a.dtype == torchnp.to_numpy(t).dtype and a.dtype.type.__module__ == "ml_dtypes"
    assert np.shares_memory(a, _originals.tensor_numpy(t.view(torch.uint8)))
    np.testing.assert_array_equal(a.view(np.uint8), t.view(torch.uint8).numpy())
    a[0] = a[-1]  # writes reach the tensor
    assert t[0].item() == t[-1].item()
    with torch.no_grad():  # requires grad, grad mode off: torch would share; so does the patch
        g = torch.ones(3, dtype=dtype, requires_grad=True)
        assert g.numpy().tolist() == [1.0, 1.0, 1.0]


def test_numpy_force_is_to_numpy(patched):
    z = torch.tensor([1 + 2j, 3 - 4j], dtype=torch.complex64)
    cases = [
        torch.ones(3, requires_grad=True),
        z.conj(),
        torch._neg_view(torch.arange(4.0)),
        torch.ones(2, 3, dtype=torch.bfloat16).T,
        torch.ones(3, dtype=torch.complex32),
    ]
    for t in cases:
        got = t.numpy(force=True)
        expected = torchnp.to_numpy(t)
        assert got.dtype == expected.dtype
        np.testing.assert_array_equal(got, expected)
    np.testing.assert_array_equal(z.conj().numpy(force=True), np.conj(z.numpy()))
    plain = torch.arange(3.0)
    assert np.shares_memory(plain.numpy(force=True), _originals.tensor_numpy(plain))


# ---- torch.from_numpy --------------------------------------------------------------------


def _torch_shares(a: np.ndarray) -> bool:
    try:
        t = _originals.from_numpy(a)
    except (TypeError, ValueError):
        return False
    return t.data_ptr() == a.__array_interface__["data"][0]


def _layouts():
    base = np.arange(48.0).reshape(4, 12)
    yield "contiguous", base
    yield "fortran", np.asfortranarray(base)
    yield "strided", base[::2, 1::3]
    yield "zero-stride", np.broadcast_to(np.arange(3.0), (4, 3))
    yield "empty", base[:0]
    yield "0-d", np.array(7.0)
    yield "int8", np.arange(10, dtype=np.int8)
    # NumPy calls this aligned (8-byte), torch shares it; torchnp's own from_numpy copies it.
    yield "c128-at-8-mod-16", np.frombuffer(bytearray(72), np.complex128, count=4, offset=8)
    yield "memmap-like subclass", np.arange(6.0).view(np.matrix)


@pytest.mark.parametrize("name,a", list(_layouts()), ids=[n for n, _ in _layouts()])
def test_from_numpy_shares_exactly_where_torch_shares(patched, name, a):
    assert _torch_shares(a) or a.size == 0
    t = torch.from_numpy(a)
    expected = _originals.from_numpy(a)
    assert (t.data_ptr(), t.shape, t.stride(), t.dtype) == (
        expected.data_ptr(),
        expected.shape,
        expected.stride(),
        expected.dtype,
    )
    if a.size and a.flags.writeable:
        # (fill_, not t[i] = x: torch's scalar store into complex128 memory at an address
        # 8 mod 16 crashes in torch itself; README, "Drop-in")
        t.fill_(5)  # writes reach the array
        assert (np.asarray(a) == 5).all()


def test_from_numpy_c128_offset_is_shared_by_patch_copied_by_torchnp(patched):
    buf = bytearray(72)
    a = np.frombuffer(buf, np.complex128, count=4, offset=8)
    assert a.flags.aligned and a.ctypes.data % 16 == 8
    t = torch.from_numpy(a)
    t.copy_(torch.tensor([1, 3 + 4j, 0, 2j], dtype=torch.complex128))  # (not t[1] = x: README)
    assert a.tolist() == [1, 3 + 4j, 0, 2j]  # shared, as torch shares it
    own = torchnp.from_numpy(a)  # torchnp's stricter rule: complex types fully aligned
    assert own.data_ptr() != a.ctypes.data
    np.testing.assert_array_equal(own.numpy(), a)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(12.0).reshape(3, 4)[::-1, ::-2],
        lambda: np.arange(6, dtype=">i4"),
        lambda: np.arange(6, dtype=">c8").reshape(2, 3).T,
        lambda: np.ndarray((3,), np.float64, np.zeros(40, np.uint8), 1, (9,)),
        lambda: np.arange(5.0).astype(BF16)[::-1],
    ],
    ids=["negative", "big-endian", "big-endian-complex-T", "odd-stride", "bf16-reversed"],
)
def test_from_numpy_converts_what_torch_refuses(patched, make):
    a = make()
    assert not _torch_shares(a)
    t = torch.from_numpy(a)
    expected = torchnp.from_numpy(a)
    assert t.dtype == expected.dtype
    assert torch.equal(t, expected)
    assert np.array_equal(torchnp.to_numpy(t), a.astype(a.dtype.newbyteorder("=")))


def test_from_numpy_shares_ml_dtypes_arrays(patched):
    a = np.linspace(0, 1, 8).astype(BF16)
    t = torch.from_numpy(a)
    assert t.dtype == torch.bfloat16 and t.data_ptr() == a.ctypes.data
    t[0] = 0.5
    assert a[0] == 0.5


@pytest.mark.parametrize(
    "make",
    [
        lambda: [1, 2],
        lambda: np.array(["a"]),
        lambda: np.array([object()]),
        lambda: np.arange(3).astype("M8[s]"),
        lambda: np.ones(2, np.longdouble),
        lambda: torch.ones(2),
    ],
    ids=["list", "str", "object", "datetime", "longdouble", "tensor"],
)
def test_from_numpy_keeps_torch_errors(make):
    x = make()
    _same_error(lambda: torch.from_numpy(x))


def test_from_numpy_readonly_shares_like_torch(patched):
    a = np.arange(4.0)
    a.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's one-time "not writable" warning
        t = torch.from_numpy(a)
    assert t.data_ptr() == a.ctypes.data  # torch's behaviour, kept: shared, writes undefined
    assert torchnp.from_numpy(a).data_ptr() != a.ctypes.data  # torchnp's own: copied
    b = np.arange(4.0).astype(BF16)
    b.flags.writeable = False
    c = torch.from_numpy(b)  # torch refuses bf16: torchnp's rule, a copy
    assert c.data_ptr() != b.ctypes.data and c.float().tolist() == [0, 1, 2, 3]


def test_from_numpy_keeps_arrays_unresizable(patched):
    x = np.zeros((2, 2))
    y = torch.from_numpy(x)  # noqa: F841 (alive: x must stay unresizable)
    with pytest.raises(ValueError):
        x.resize((5, 5))
    z = np.zeros(4)[::-1]  # a copy: nothing holds z
    torch.from_numpy(z)


# ---- torch.as_tensor / torch.asarray -----------------------------------------------------


def _as_calls():
    return [
        ("as_tensor", lambda a, **kw: torch.as_tensor(a, **kw), _originals.as_tensor),
        ("asarray", lambda a, **kw: torch.asarray(a, **kw), _originals.asarray),
    ]


@pytest.mark.parametrize("name,call,original", _as_calls(), ids=["as_tensor", "asarray"])
def test_as_tensor_shares_and_casts_like_torch(patched, name, call, original):
    a = np.arange(24, dtype=np.float32).reshape(2, 3, 4).transpose(2, 0, 1)
    for kw in ({}, {"dtype": torch.float32}, {"device": "cpu"}, {"device": torch.device("cpu")}):
        t = call(a, **kw)
        assert t.data_ptr() == original(a, **kw).data_ptr() == a.ctypes.data
    for dtype in (torch.float64, torch.float16, torch.int16, torch.bfloat16, torch.bool):
        t = call(a, dtype=dtype)
        e = original(a, dtype=dtype)
        assert (t.dtype, t.shape) == (e.dtype, e.shape)
        assert torch.equal(t, e)
        assert t.data_ptr() != a.ctypes.data
    # Non-array inputs are torch's alone.
    assert torch.equal(call([1.5, 2.5]), original([1.5, 2.5]))
    x = torch.ones(2)
    assert call(x) is original(x)


def test_asarray_copy_and_requires_grad(patched):
    a = np.arange(6.0)
    fresh = torch.asarray(a, copy=True)
    assert fresh.data_ptr() != a.ctypes.data and fresh.tolist() == a.tolist()
    shared = torch.asarray(a, copy=False)
    assert shared.data_ptr() == a.ctypes.data
    _same_error_call = _originals.asarray
    with pytest.raises(ValueError, match="can't alias"):
        torch.asarray(a, dtype=torch.float32, copy=False)  # torch's own error
    with pytest.raises(ValueError, match="can't alias"):
        _same_error_call(a, dtype=torch.float32, copy=False)
    g = torch.asarray(a, requires_grad=True)
    assert g.requires_grad and g.is_leaf and g.data_ptr() == a.ctypes.data
    r = torch.asarray(a[::-1], dtype=torch.float32, requires_grad=True)
    assert r.requires_grad and r.tolist() == a[::-1].tolist()
    with pytest.raises(RuntimeError, match="floating point"):
        torch.asarray(np.arange(3)[::-1], requires_grad=True)


@pytest.mark.parametrize("name,call,original", _as_calls(), ids=["as_tensor", "asarray"])
def test_as_tensor_converts_what_torch_refuses(patched, name, call, original):
    for a in (np.arange(6.0)[::-1], np.arange(6, dtype=">f4"), np.arange(6.0).astype(BF16)):
        t = call(a)
        assert torch.equal(t, torchnp.from_numpy(a))
        t32 = call(a, dtype=torch.float32)
        np.testing.assert_array_equal(t32.numpy(), a.astype(np.float32))


def test_as_tensor_follows_torch_default_device_modes(patched):
    a = np.arange(4.0)[::-1]
    with torch.device("meta"):  # a torch function mode: torch's own call decides
        assert torch.as_tensor(a.copy()).device.type == "meta"
        assert torch.asarray(a.copy()).device.type == "meta"


# ---- Tensor.__array__: NumPy 2's protocol ------------------------------------------------


def test_array_protocol(patched):
    t = torch.arange(6.0).reshape(2, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning about copy=
        assert np.shares_memory(np.asarray(t), _originals.tensor_numpy(t))
        assert np.shares_memory(np.array(t, copy=False), _originals.tensor_numpy(t))
        fresh = np.array(t)
        assert not np.shares_memory(fresh, _originals.tensor_numpy(t))
        np.testing.assert_array_equal(fresh, t.numpy())
        half = np.asarray(t, dtype=np.float16)
        np.testing.assert_array_equal(half, t.numpy().astype(np.float16))
        with pytest.raises(ValueError, match="copy=False"):
            np.array(t.conj() if t.is_complex() else torch._neg_view(t), copy=False)
        with pytest.raises(ValueError, match="copy=False"):
            np.asarray(t, dtype=np.float16, copy=False)
        grad = torch.ones(3, requires_grad=True)  # torch's own __array__ refuses this
        np.testing.assert_array_equal(np.asarray(grad), np.ones(3, np.float32))
        bf = torch.tensor([1.5, -2.0], dtype=torch.bfloat16)
        got = np.asarray(bf)
        assert got.dtype == BF16 and got.tolist() == [1.5, -2.0]
        z = torch.tensor([1 + 1j], dtype=torch.complex64).conj()
        np.testing.assert_array_equal(np.asarray(z), [1 - 1j])


def test_array_protocol_without_patch_is_torchs():
    bf = torch.ones(2, dtype=torch.bfloat16)
    with pytest.raises(TypeError, match="BFloat16"):
        np.asarray(bf)


def test_matplotlib_plots_bf16_and_grad_tensors(patched):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    y = torch.linspace(0, 1, 5, dtype=torch.bfloat16)
    w = torch.linspace(0, 1, 5, requires_grad=True)
    fig, ax = plt.subplots()
    try:
        (line,) = ax.plot(y)
        (line2,) = ax.plot(w)
        np.testing.assert_array_equal(line.get_ydata().astype(np.float32), y.float().numpy())
        np.testing.assert_array_equal(line2.get_ydata(), w.detach().numpy())
    finally:
        plt.close(fig)


# ---- the bf16 hazard: tensor == ml_dtypes scalar -----------------------------------------


@pytest.mark.single_engine
def test_ml_dtypes_scalar_comparison_is_silently_false_without_patch():
    t = torch.ones(2, dtype=torch.bfloat16)
    s = np.ones(2, BF16)[0]
    assert (t == s) is False  # torch alone: not even a tensor; the hazard the patch fixes


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float8_e4m3fn, torch.float32], ids=str)
def test_ml_dtypes_scalar_comparison_by_value(patched, dtype):
    t = torch.tensor([1.0, 2.0, float("nan")]).to(dtype)
    for scalar in (np.asarray(2.0, BF16)[()], np.ones(1, ml_dtypes.float8_e5m2)[0]):
        value = float(scalar)
        assert torch.equal(t == scalar, t == value)
        assert torch.equal(scalar == t, t == value)  # reflected
        assert torch.equal(t != scalar, t != value)
    a = torch.tensor([1.0, 2.0], dtype=torch.bfloat16)
    assert (a == a.numpy()[1]).tolist() == [False, True]
    assert (a != a.numpy()[1]).tolist() == [True, False]
    assert (a == 2.0).tolist() == [False, True]  # plain operands untouched
    assert (a == a).tolist() == [True, True]


# ---- no recursion, no swallowed exceptions -----------------------------------------------


def test_torchnp_never_calls_the_patched_names(patched):
    calls = []
    patched_numpy = torch.Tensor.numpy

    def spy(self, *, force=False):
        calls.append("numpy")
        return patched_numpy(self, force=force)

    torch.Tensor.numpy = spy  # as a naive patch would: torch's name calls torchnp
    try:
        t = torch.arange(6.0).reshape(2, 3)
        for call in (
            lambda: torchnp.to_numpy(t),
            lambda: torchnp.to_numpy(t.T, dtype=np.float16),
            lambda: torchnp.to_numpy(t, out=np.empty((2, 3))),
            lambda: torchnp.to_numpy(torch.ones(2, dtype=torch.bfloat16)),
            lambda: torchnp.tree_to_numpy({"a": t, "b": [t.T]}),
        ):
            call()
        assert calls == []
        assert t.numpy().sum() == 15 and calls == ["numpy"]
    finally:
        torch.Tensor.numpy = patched_numpy


@pytest.mark.single_engine
def test_a_naive_patch_calling_torchnp_does_not_recurse():
    def naive(self, *, force=False):
        return torchnp.to_numpy(self)

    torch.Tensor.numpy = naive
    try:
        t = torch.arange(4.0)
        for _ in range(2):  # the memoised path too
            np.testing.assert_array_equal(t.numpy(), [0, 1, 2, 3])
            np.testing.assert_array_equal(torchnp.to_numpy(t, dtype=np.float16), [0, 1, 2, 3])
    finally:
        del torch.Tensor.numpy


class _Raising(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in ("numpy", "__array__"):
            raise KeyError("from the subclass")
        return super().__torch_function__(func, types, args, kwargs or {})


def test_unrelated_exceptions_propagate(patched):
    t = torch.ones(3).as_subclass(_Raising)
    with pytest.raises(KeyError, match="from the subclass"):
        t.numpy()
    with pytest.raises(KeyError, match="from the subclass"):
        np.asarray(t)


# ---- torch.compile -----------------------------------------------------------------------


@pytest.mark.single_engine
def test_compiled_functions_stay_correct(patched):
    torch._dynamo.reset()

    def f(x: torch.Tensor) -> torch.Tensor:
        a = x.numpy()  # dynamo traces or graph-breaks: either way the values are right
        b = torch.from_numpy(a * 2 + 1)
        return b + x

    def g(arr: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(arr[::-1]) * 3  # a layout torch refuses: the patch copies

    compiled_f = torch.compile(f, backend="eager")
    compiled_g = torch.compile(g, backend="eager")
    x = torch.arange(6.0)
    arr = np.arange(5.0)
    for _ in range(2):
        assert torch.equal(compiled_f(x), f(x))
        assert torch.equal(
            compiled_g(arr), torch.tensor([12.0, 9.0, 6.0, 3.0, 0.0], dtype=torch.float64)
        )
    torch._dynamo.reset()


@pytest.mark.single_engine
@pytest.mark.parametrize("first", ["unpatched", "patched"])
def test_dynamo_models_the_conversions_without_graph_breaks(first):
    # dynamo builds its tables of torch functions on its first compile: whichever state that
    # happens in, compiled code has no graph break at the conversions, patched or not, after.
    def f(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(x) * 2 + torch.as_tensor(x)

    x = np.arange(4.0)
    expected = torch.tensor([0.0, 3.0, 6.0, 9.0], dtype=torch.float64)
    states = (
        ["unpatched", "patched", "unpatched"] if first == "unpatched" else ["patched", "unpatched"]
    )
    from torch._dynamo import trace_rules

    trace_rules.clear_lru_cache()
    for state in states:  # fullgraph: a graph break raises
        torch._dynamo.reset()
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)  # "Dynamo does not know how to trace"
            if state == "patched":
                with torchnp.patch():
                    got = torch.compile(f, backend="eager", fullgraph=True)(x)
            else:
                got = torch.compile(f, backend="eager", fullgraph=True)(x)
        assert torch.equal(got, expected), state
    torch._dynamo.reset()


@pytest.mark.single_engine
def test_readme_lists_each_intended_difference_of_the_peer_tests():
    import importlib.util
    import pathlib

    root = pathlib.Path(__file__).resolve().parents[1]
    spec = importlib.util.spec_from_file_location("peer_run", root / "tests" / "peer" / "run.py")
    run = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(run)
    readme = (root / "README.md").read_text()
    section = readme[readme.index("## Drop-in") : readme.index("## Performance")]
    for name in run.INTENDED:
        test = name.removesuffix("_cpu").removesuffix("_bfloat16").removesuffix("_cpu")
        assert f"`{test}`" in section, name


# ---- review findings, each pinned -------------------------------------------------------


def test_from_numpy_shares_longlong_like_torch(patched):
    # np.longlong is np.int64's twin with its own scalar type and type number.
    ro = np.arange(4, dtype=np.longlong)
    ro.flags.writeable = False
    unaligned = np.zeros(33, np.uint8)[1:].view(np.longlong)
    for a in (ro, unaligned):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            t = torch.from_numpy(a)
            u = torch.as_tensor(a)
        assert t.data_ptr() == u.data_ptr() == a.__array_interface__["data"][0]


@pytest.mark.parametrize(
    "dtype", [object, np.longdouble, np.clongdouble, "U8", "S8", "M8[s]", "V4"], ids=str
)
def test_array_protocol_with_dtypes_torchnp_does_not_write(dtype):
    t = torch.arange(3, dtype=torch.int32)
    expected = _outcome(lambda: np.asarray(t, dtype=dtype))
    with torchnp.patch():
        got = _outcome(lambda: np.asarray(t, dtype=dtype))
        with pytest.raises(ValueError):
            np.asarray(t, dtype=dtype, copy=False)  # a conversion always copies
    assert got[0] == expected[0]
    if got[0] == "ok":
        assert got[1].dtype == expected[1].dtype
        if got[1].dtype.kind in "fc":  # (longdouble's padding bytes are anything)
            np.testing.assert_array_equal(got[1], expected[1])
        else:
            assert got[1].tobytes() == expected[1].tobytes()


class _Intercepting(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") == "numpy":
            return ("intercepted", (kwargs or {}).get("force", False))
        return super().__torch_function__(func, types, args, kwargs or {})


def test_subclass_torch_function_sees_every_numpy_call(patched):
    for base in (torch.ones(2), torch.ones(2, dtype=torch.bfloat16)):
        s = base.as_subclass(_Intercepting)
        assert s.numpy() == ("intercepted", False)
        assert s.numpy(force=True) == ("intercepted", True)


def test_bf16_numpy_keeps_torch_errors_for_what_torch_refuses():
    zero = torch._efficientzerotensor(2, dtype=torch.bfloat16)
    _same_error(lambda: zero.numpy())
    neg = torch._neg_view(torch.ones(2, dtype=torch.bfloat16))
    _same_error(lambda: neg.numpy())


def test_as_tensor_casts_are_torchs_values(patched):
    finite = [0, 1, -1, 0.5, -0.5, 2.5, 127.6, 255.5, 256, -129, 65520, 70000, 1e10, 3.4e38]
    vals = np.array([*finite, 1e300, np.inf, -np.inf, np.nan, 2.0**31, 2.0**63, -(2.0**63), 1e-40])
    sources = [np.bool_, np.int8, np.int32, np.int64, np.uint8, np.uint64, np.float16]
    sources += [np.float32, np.float64, BF16, np.complex64]
    targets = [torch.bool, torch.int8, torch.int64, torch.uint8, torch.float16, torch.float32]
    targets += [torch.bfloat16, torch.complex128, torch.float8_e4m3fn, torch.float8_e5m2]
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for src in sources:
            a = vals.astype(src) if src is not np.complex64 else (vals + 1j).astype(src)
            for dst in targets:
                got = torch.as_tensor(a, dtype=dst)
                ref = _originals.as_tensor(
                    a if src is not BF16 else torchnp.from_numpy(a), dtype=dst
                )
                if torch.equal(got.view(torch.uint8), ref.view(torch.uint8)):
                    continue
                # NaN payloads aside (README: Differences), the values are torch's
                r = torch.view_as_real(ref) if ref.is_complex() else ref.double()
                g = torch.view_as_real(got) if got.is_complex() else got.double()
                assert torch.equal(torch.isnan(r), torch.isnan(g)), (src, dst)
                assert torch.equal(r.nan_to_num(7.0), g.nan_to_num(7.0)), (src, dst)


def test_as_tensor_signature_is_torchs():
    a = np.arange(3.0)
    _same_error(lambda: torch.as_tensor(a, torch.float32, "cpu"))  # device is keyword-only


def test_array_protocol_argument_forms(patched):
    t = torch.arange(6.0).reshape(2, 3)
    own = _originals.tensor_numpy(t).__array_interface__
    for call in (
        lambda: t.__array__(),
        lambda: t.__array__(None),
        lambda: t.__array__(None, None),
        lambda: t.__array__(None, False),
        lambda: t.__array__(dtype=None, copy=False),
        lambda: t.__array__(copy=None),
    ):
        assert call().__array_interface__ == own  # torch's own view
    fresh = t.__array__(copy=True)
    assert fresh.__array_interface__["data"][0] != own["data"][0]
    np.testing.assert_array_equal(fresh, t.numpy())
    np.testing.assert_array_equal(t.__array__(np.float16), t.numpy().astype(np.float16))
    with pytest.raises(TypeError):
        t.__array__(order="C")
    with pytest.raises(TypeError):
        t.__array__(None, None, None)
    z = torch.tensor([1 + 2j], dtype=torch.complex64).conj()  # torch refuses: resolved
    np.testing.assert_array_equal(z.__array__(), [1 - 2j])
