"""The bad-input matrix: everything wrong a user can pass, each with its exception type, a message
that says what to do, and proof that no destination byte was written and no argument changed. On
both engines; every call runs twice (the second may take a memoised path)."""

from __future__ import annotations

from collections.abc import Callable

import ml_dtypes
import numpy as np
import pytest
import torch

import torchnp

SENTINEL = 7.0
CASES: list[tuple[str, type, str, Callable]] = []


def _case(name: str, exc: type, match: str, skip_if: bool = False):
    """Register a case: the decorated function builds (the bad call, the arrays and tensors it
    must leave as they were)."""

    def register(build: Callable) -> Callable:
        if not skip_if:
            CASES.append((name, exc, match, build))
        return build

    return register


def _out(shape=(3,), dtype=np.float32, writeable=True) -> np.ndarray:
    out = np.full(shape, SENTINEL, dtype)
    out.flags.writeable = writeable
    return out


def _t(*shape) -> torch.Tensor:
    return torch.arange(float(np.prod(shape))).reshape(shape)


def _freed() -> torch.Tensor:
    t = _t(4, 3)
    v = t[1:]
    t.untyped_storage().resize_(0)
    return v


def _inside_vmap() -> None:
    errors = []

    def f(x):
        try:
            torchnp.to_numpy(x)
        except TypeError as exc:
            errors.append(exc)
        return x

    torch.vmap(f)(torch.ones(2, 3))
    raise errors[0]


def _dispatch_subclass() -> torch.Tensor:
    class Wrapper(torch.Tensor):
        @classmethod
        def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
            return func(*args, **(kwargs or {}))

    return torch.Tensor._make_subclass(Wrapper, torch.ones(3))


@_case("to_numpy: not a tensor", TypeError, "expects a torch.Tensor.*numpy.asarray")
def _():
    return lambda: torchnp.to_numpy([1, 2]), []


@_case("to_numpy: sparse", TypeError, "to_dense")
def _():
    t = torch.ones(2).to_sparse()
    return lambda: torchnp.to_numpy(t), []


@_case("to_numpy: quantized", TypeError, "dequantize")
def _():
    t = torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.quint8)
    return lambda: torchnp.to_numpy(t), []


@_case("to_numpy: meta", TypeError, "no data.*materialise")
def _():
    t = torch.empty(3, device="meta")
    return lambda: torchnp.to_numpy(t), []


@_case("to_numpy: nested", TypeError, "to_padded_tensor")
def _():
    t = torch.nested.nested_tensor([torch.ones(2), torch.ones(3)])
    return lambda: torchnp.to_numpy(t), []


@_case("to_numpy: inside vmap", TypeError, "outside the transform")
def _():
    return lambda: _inside_vmap(), []


@_case("to_numpy: dispatch subclass", TypeError, "plain torch.Tensor first")
def _():
    t = _dispatch_subclass()
    return lambda: torchnp.to_numpy(t), []


@_case("to_numpy: uninitialised parameter", ValueError, "first forward pass")
def _():
    p = torch.nn.LazyLinear(2).weight
    return lambda: torchnp.to_numpy(p), []


@_case("to_numpy: freed storage", ValueError, "storage now holds")
def _():
    v = _freed()
    return lambda: torchnp.to_numpy(v, copy=True), []


@_case("to_numpy: freed storage, out=", ValueError, "storage now holds")
def _():
    v = _freed()
    o = _out((3, 3))
    return lambda: torchnp.to_numpy(v, out=o), [o]


@_case("to_numpy: neg bool", TypeError, "negative bit of a bool")
def _():
    t = torch._neg_view(torch.ones(2, dtype=torch.bool))
    return lambda: torchnp.to_numpy(t), [t]


@_case("to_numpy: dtype without a tensor type", TypeError, "encode them")
def _():
    t = _t(3)
    return lambda: torchnp.to_numpy(t, dtype="U3"), [t]


@_case("to_numpy: impossible ml_dtypes cast", TypeError, "two steps")
def _():
    t = torch.ones(3, dtype=torch.float8_e8m0fnu)
    return lambda: torchnp.to_numpy(t, dtype=torch.float8_e4m3fn), [t]


@_case("to_numpy: copy=False needs a copy", ValueError, "copy=None to allow a copy")
def _():
    t = _t(2, 3)
    return lambda: torchnp.to_numpy(t.T, order="C", copy=False), [t]


@_case("to_numpy: copy=1", ValueError, "copy must be None, True or False")
def _():
    t = _t(3)
    return lambda: torchnp.to_numpy(t, copy=1), [t]


@_case("to_numpy: order='X'", ValueError, "order must be one of")
def _():
    t = _t(3)
    return lambda: torchnp.to_numpy(t, order="X"), [t]


@_case("to_numpy: out not an array", TypeError, "out must be a numpy\\.ndarray")
def _():
    t = _t(3)
    return lambda: torchnp.to_numpy(t, out=[0, 0, 0]), [t]


@_case("to_numpy: out read-only", ValueError, "read-only")
def _():
    t = _t(3)
    o = _out(writeable=False)
    return lambda: torchnp.to_numpy(t, out=o), [t, o]


@_case("to_numpy: out wrong shape", ValueError, "out has shape")
def _():
    t = _t(3)
    o = _out((4,))
    return lambda: torchnp.to_numpy(t, out=o), [t, o]


@_case("to_numpy: out object dtype", TypeError, "out.dtype object cannot be written")
def _():
    t = _t(3)
    o = np.full(3, None, object)
    return lambda: torchnp.to_numpy(t, out=o), [t]


@_case("to_numpy: out dtype conflicts", TypeError, "pass one of them")
def _():
    t = _t(3)
    o = _out()
    return lambda: torchnp.to_numpy(t, dtype=np.float64, out=o), [t, o]


@_case("to_numpy: out with copy=False", ValueError, "writing to out is a copy")
def _():
    t = _t(3)
    o = _out()
    return lambda: torchnp.to_numpy(t, copy=False, out=o), [t, o]


@_case("from_numpy: a tensor", TypeError, "already is a tensor")
def _():
    t = torch.ones(2)
    return lambda: torchnp.from_numpy(t), [t]


@_case("from_numpy: object array", TypeError, "numeric dtype")
def _():
    return lambda: torchnp.from_numpy(np.array([object()])), []


@_case("from_numpy: string array", TypeError, "encode them")
def _():
    a = np.array(["a"])
    return lambda: torchnp.from_numpy(a), [a]


@_case("from_numpy: unreadable object", TypeError, "numeric dtype")
def _():
    return lambda: torchnp.from_numpy(object()), []


@_case("from_numpy: copy=False needs a copy", ValueError, "copy=None to allow a copy")
def _():
    a = np.arange(4.0)[::-1]
    return lambda: torchnp.from_numpy(a, copy=False), [a]


@_case("from_numpy: copy=False of a read-only array", ValueError, "share_readonly=True")
def _():
    a = np.frombuffer(bytes(16), np.float32)
    return lambda: torchnp.from_numpy(a, copy=False), [a]


@_case("from_numpy: copy='x'", ValueError, "copy must be None, True or False")
def _():
    a = np.ones(2)
    return lambda: torchnp.from_numpy(a, copy="x"), [a]


@_case("from_numpy: device='bogus'", RuntimeError, "Expected one of cpu, cuda")
def _():
    a = np.ones(2)
    return lambda: torchnp.from_numpy(a, device="bogus"), [a]


@_case("from_numpy: dtype 'U3'", TypeError, "encode them")
def _():
    a = np.ones(2)
    return lambda: torchnp.from_numpy(a, dtype="U3"), [a]


@_case("from_numpy: impossible ml_dtypes cast", TypeError, "two steps")
def _():
    a = np.ones(3, ml_dtypes.float8_e8m0fnu)
    return lambda: torchnp.from_numpy(a, dtype=torch.float8_e4m3fn), [a]


@_case("tree_to_numpy: out of another structure", ValueError, "missing in out")
def _():
    o = {"a": _out()}
    return lambda: torchnp.tree_to_numpy({"a": _t(3), "b": _t(3)}, out=o), [o]


@_case("tree_to_numpy: a refused leaf leaves every out untouched", TypeError, "leaf \\['b'\\]")
def _():
    o = {"a": _out(), "b": _out()}
    tree = {"a": _t(3), "b": torch.empty(3, device="meta")}
    return lambda: torchnp.tree_to_numpy(tree, out=o), [o, tree["a"]]


@_case("tree_from_numpy: a refused leaf", TypeError, "leaf \\['s'\\]")
def _():
    a = np.ones(3)
    return lambda: torchnp.tree_from_numpy({"a": a, "s": np.array(["x"])}), [a]


@_case("stack_from_numpy: ragged", ValueError, "arrays\\[1\\] has shape")
def _():
    xs = [np.ones(3), np.ones(4)]
    return lambda: torchnp.stack_from_numpy(xs), [xs]


@_case("stack_from_numpy: out wrong shape", ValueError, "out has shape")
def _():
    o = torch.full((2, 4), SENTINEL)
    xs = [np.ones(3)] * 2
    return lambda: torchnp.stack_from_numpy(xs, out=o), [o, xs]


@_case("stack_from_numpy: out dtype conflicts", TypeError, "pass one of them")
def _():
    o = torch.full((2, 3), SENTINEL)
    xs = [np.ones(3)] * 2
    return lambda: torchnp.stack_from_numpy(xs, dtype=torch.int32, out=o), [o, xs]


@_case(
    "from_numpy: pin_memory without CUDA",
    RuntimeError,
    "needs a CUDA device",
    skip_if=torch.cuda.is_available(),
)
def _():
    a = np.ones(2)
    return lambda: torchnp.from_numpy(a, pin_memory=True), [a]


@_case(
    "from_numpy: device='cuda' without CUDA",
    RuntimeError,
    "no CUDA device is available",
    skip_if=torch.cuda.is_available(),
)
def _():
    a = np.ones(2)
    return lambda: torchnp.from_numpy(a, device="cuda"), [a]


def _bytes(obj) -> list[bytes]:
    leaves = torch.utils._pytree.tree_leaves(obj)
    return [
        leaf.tobytes() if isinstance(leaf, np.ndarray) else bytes(leaf.untyped_storage().tolist())
        for leaf in leaves
        if isinstance(leaf, (np.ndarray, torch.Tensor))
    ]


@pytest.mark.parametrize(("name", "exc", "match", "build"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_raises_clearly_and_writes_nothing(engine, name, exc, match, build):
    for _ in range(2):  # the second call may take a memoised path
        call, watched = build()
        before = _bytes(watched)
        with pytest.raises(exc, match=match) as info:
            call()
        assert len(str(info.value)) >= 30, f"{name}: the message must say what to do"
        assert _bytes(watched) == before, f"{name}: an argument's bytes changed"
