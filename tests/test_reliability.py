"""Tensors torchnp must refuse rather than read: each test is a defect the adversarial probe found
(functionalize wrappers, uninitialised lazy parameters, storage freed under a view), on both
engines, through every way a call can take (the default shortcut, the policy, a memoised replay,
out=)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import torchnp

# Each way a call can take: the default-argument shortcut, a copy, a cast, a layout change.
CALLS = [{}, {"copy": True}, {"dtype": np.float64}, {"order": "F"}]


def _memoise(kwargs: dict) -> None:
    """Run the signature once on a healthy tensor, so that the next call may be a replay."""
    torchnp.to_numpy(torch.arange(12.0).reshape(3, 4)[1:], **kwargs)


@pytest.mark.parametrize("kwargs", CALLS)
def test_inside_functionalize_to_numpy_refuses_instead_of_reading_garbage(engine, kwargs):
    _memoise(kwargs)
    seen = []

    def f(x):
        x.add_(1)
        with pytest.raises(TypeError, match="functionalize"):
            torchnp.to_numpy(x, **kwargs)
        seen.append(True)
        return x

    torch.func.functionalize(f)(torch.zeros(3, 4))
    assert seen


@pytest.mark.parametrize(
    "lazy",
    [
        lambda: torch.nn.LazyLinear(4).weight,
        lambda: torch.nn.LazyLinear(4).bias,
        lambda: torch.nn.parameter.UninitializedBuffer(),
    ],
    ids=["weight", "bias", "buffer"],
)
@pytest.mark.parametrize("kwargs", CALLS)
def test_uninitialised_lazy_parameter_raises_like_torch(engine, lazy, kwargs):
    with pytest.raises(ValueError, match=r"uninitialized .*first forward pass"):
        torchnp.to_numpy(lazy(), **kwargs)


def test_lazy_parameter_converts_once_initialised(engine):
    layer = torch.nn.LazyLinear(4)
    layer(torch.zeros(2, 3))
    np.testing.assert_array_equal(torchnp.to_numpy(layer.weight), layer.weight.detach().numpy())


def _freed(new_bytes: int):
    """A tensor, a view of it taken first, and the storage then shrunk to `new_bytes` (0: freed,
    as FSDP frees a parameter's storage)."""
    t = torch.arange(12.0).reshape(3, 4)
    v = t[1:]
    t.untyped_storage().resize_(new_bytes)
    return t, v


@pytest.mark.parametrize("new_bytes", [0, 16, 44], ids=["freed", "shrunk", "one-short"])
@pytest.mark.parametrize("kwargs", CALLS)
def test_storage_freed_under_a_view_raises_instead_of_crashing(engine, kwargs, new_bytes):
    _memoise(kwargs)
    t, v = _freed(new_bytes)
    for x in (t, v):
        with pytest.raises(ValueError, match="storage now holds"):
            torchnp.to_numpy(x, **kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"dtype": np.float64}])
def test_storage_freed_under_a_view_raises_with_out_and_leaves_out_untouched(engine, kwargs):
    out = np.full((2, 4), 7.0, dtype=kwargs.get("dtype", np.float32))
    torchnp.to_numpy(torch.ones(2, 4), out=np.empty_like(out))  # memoise the out= signature
    _, v = _freed(0)
    with pytest.raises(ValueError, match="storage now holds"):
        torchnp.to_numpy(v, out=out)
    assert (out == 7).all()


def test_storage_resized_back_converts_again(engine):
    t, v = _freed(0)
    t.untyped_storage().resize_(48)
    t.copy_(torch.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(torchnp.to_numpy(v), np.arange(4.0, 12.0).reshape(2, 4))
    np.testing.assert_array_equal(
        torchnp.to_numpy(v, dtype=np.float64), np.arange(4.0, 12.0).reshape(2, 4)
    )


def test_storage_exactly_covering_the_view_converts(engine):
    # The last byte of the view is the storage's last byte: readable (the check is not off by one).
    t = torch.arange(12.0)
    v = t[4:8]
    t.untyped_storage().resize_(32)
    np.testing.assert_array_equal(
        torchnp.to_numpy(v, copy=True), np.arange(4.0, 8.0, dtype=np.float32)
    )


def test_empty_view_of_a_freed_storage_reads_nothing(engine):
    t, _ = _freed(0)
    assert torchnp.to_numpy(t[:0]).shape == (0, 4)
