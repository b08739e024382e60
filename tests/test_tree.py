"""Many tensors at once: tree_to_numpy / tree_from_numpy, stack_from_numpy, collate and the
engines' copy_many, on both engines, against the single-call functions and NumPy / torch's own
default_collate as oracles."""

from __future__ import annotations

import collections
import errno
import gc
import os
import weakref

import ml_dtypes
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, default_collate

import torchnp
from torchnp import _engines, _tree
from torchnp._engines import base as _base

Pair = collections.namedtuple("Pair", "left right")
BIG = _tree.BATCH_BYTES // 4 + 1  # float32 elements: a leaf that takes the batched path


def _same(a: np.ndarray, b: np.ndarray) -> None:
    assert type(a) is type(b) and a.dtype == b.dtype and a.shape == b.shape
    assert a.strides == b.strides
    assert a.tobytes() == b.tobytes()  # bits, NaNs included


def _tensor_tree():
    g = torch.Generator().manual_seed(0)
    big = torch.randn(BIG, generator=g)
    return {
        "small": torch.arange(6.0).reshape(2, 3),
        "big": big,
        "big_t": torch.randn(300, 300, generator=g).T,  # a transposed large leaf
        "ints": [torch.arange(5), 7, "label", None, torch.tensor(3.5, dtype=torch.float64)],
        "pair": Pair(torch.randn(4, generator=g).to(torch.bfloat16), (torch.ones(2, 2), 1.5)),
        "ordered": collections.OrderedDict(
            w=torch.randn(64, 64, dtype=torch.complex64, generator=g).conj(),
            b=torch.randn(BIG, generator=g).neg(),
        ),
    }


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"copy": True}, {"dtype": np.float64}, {"order": "C"}, {"order": "F", "copy": True}],
)
def test_tree_to_numpy_is_to_numpy_of_every_leaf_in_the_same_structure(engine, kwargs):
    tree = _tensor_tree()
    if "dtype" in kwargs:
        tree.pop("ordered")  # complex -> float64 warns; covered by the single-call tests
    result = torchnp.tree_to_numpy(tree, **kwargs)
    leaves, spec = torch.utils._pytree.tree_flatten(tree)
    out_leaves, out_spec = torch.utils._pytree.tree_flatten(result)
    assert out_spec == spec
    assert type(result["pair"]) is Pair
    assert "dtype" in kwargs or type(result["ordered"]) is collections.OrderedDict
    for leaf, got in zip(leaves, out_leaves, strict=True):
        if isinstance(leaf, torch.Tensor):
            _same(got, torchnp.to_numpy(leaf, **kwargs))
        else:
            assert got is leaf  # passed through unchanged


@pytest.mark.parametrize("order", ["K", "A", "C", "F"])
@pytest.mark.parametrize("kwargs", [{}, {"copy": True}, {"dtype": np.float16}, {"dtype": "f8"}])
def test_many_large_leaves_of_one_type_are_each_their_single_call(engine, order, kwargs):
    # After the first large leaf of a type the call reuses the policy's decision: every layout
    # must still come out exactly as to_numpy's (values, dtype, strides, sharing).
    g = torch.Generator().manual_seed(2)
    base = torch.randn(2, 300, 400, generator=g)
    leaves = [
        base[0],
        base[1].T,
        base[:, ::2, 1:],
        base.permute(2, 0, 1),
        base[0, :, :300].T.contiguous().T,
        torch.randn(BIG, generator=g),
        torch.randn(BIG, generator=g).neg(),  # a bit: the policy's turn
        base[1].T.requires_grad_(),  # grad: the policy's turn
    ]
    result = torchnp.tree_to_numpy(leaves, order=order, **kwargs)
    for leaf, got in zip(leaves, result, strict=True):
        want = torchnp.to_numpy(leaf, order=order, **kwargs)
        _same(got, want)
        assert np.shares_memory(got, want) == np.shares_memory(want, torchnp.to_numpy(leaf))


def test_tree_to_numpy_shares_like_to_numpy_and_keeps_sources_alive(engine):
    t = torch.randn(BIG)
    ref = t.untyped_storage()._weak_ref()
    result = torchnp.tree_to_numpy({"t": t, "u": [torch.ones(3)]})
    assert np.shares_memory(result["t"], t.numpy())
    del t
    gc.collect()
    assert not torch.UntypedStorage._expired(ref)  # the shared array holds the memory
    del result
    gc.collect()
    assert torch.UntypedStorage._expired(ref)
    torch.UntypedStorage._free_weak_ref(ref)
    copied = torchnp.tree_to_numpy({"t": torch.randn(BIG)}, copy=True)["t"]
    assert copied.base is None or not isinstance(copied.base, torch.Tensor)


def test_tree_to_numpy_of_a_state_dict(engine):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 64, 3), torch.nn.BatchNorm2d(64))
    model.add_module("fc", torch.nn.Linear(512, 300))
    sd = model.state_dict()
    arrays = torchnp.tree_to_numpy(sd, copy=True)
    assert type(arrays) is type(sd) and list(arrays) == list(sd)
    for k, v in sd.items():
        _same(arrays[k], v.numpy().copy())
    params = torchnp.tree_to_numpy(dict(model.named_parameters()))  # requires_grad leaves
    np.testing.assert_array_equal(params["fc.weight"], model.fc.weight.detach().numpy())


@pytest.mark.parametrize("dtype", [None, np.float64, np.float16])
def test_tree_to_numpy_out_writes_the_matching_tree(engine, dtype):
    tree = {"a": torch.randn(BIG), "b": [torch.randn(3, 4), "x"], "c": torch.arange(4)}
    out = {
        "a": np.empty(BIG, dtype or np.float32),
        "b": [np.empty((4, 3), dtype or np.float32).T, None],
        "c": np.empty(4, np.int64),
    }
    result = torchnp.tree_to_numpy(tree, out=out)
    assert result is out
    for k in ("a", "c"):
        np.testing.assert_array_equal(out[k], tree[k].numpy().astype(out[k].dtype))
    np.testing.assert_array_equal(out["b"][0], tree["b"][0].numpy().astype(out["b"][0].dtype))
    # A dict for an OrderedDict is the same structure.
    od = collections.OrderedDict(x=torch.ones(2))
    assert torchnp.tree_to_numpy(od, out={"x": np.zeros(2, np.float32)})["x"].sum() == 2


def test_tree_to_numpy_out_overlapping_its_own_leaf_reads_before_writing(engine):
    base = torch.arange(2 * BIG, dtype=torch.float32)
    src = base[:BIG]
    out = base.numpy()[1 : BIG + 1]  # one element further on: every write would clobber a read
    expected = src.numpy().copy()
    torchnp.tree_to_numpy({"s": src}, out={"s": out})
    np.testing.assert_array_equal(out, expected)


def test_tree_to_numpy_out_of_another_structure_is_a_value_error(engine):
    with pytest.raises(ValueError, match=r"missing in out: \[\"\['b'\]\"\]"):
        torchnp.tree_to_numpy({"a": torch.ones(2), "b": torch.ones(2)}, out={"a": np.empty(2)})


def test_tree_to_numpy_error_names_the_leaf_and_writes_nothing(engine):
    out = {"a": np.full(BIG, 7.0, np.float32), "b": {"c": np.empty(3, np.float32)}}
    tree = {"a": torch.randn(BIG), "b": {"c": torch.empty(3, device="meta")}}
    with pytest.raises(TypeError, match=r"leaf \['b'\]\['c'\]: .*meta tensor"):
        torchnp.tree_to_numpy(tree, out=out)
    assert (out["a"] == 7).all()  # the first leaf's copy never ran
    with pytest.raises(ValueError, match=r"leaf \[1\]: copy=False.*conjugate bit"):
        torchnp.tree_to_numpy([torch.ones(2), torch.ones(2, dtype=torch.cfloat).conj()], copy=False)


def test_tree_to_numpy_of_a_lone_tensor_and_of_no_tensor(engine):
    _same(torchnp.tree_to_numpy(torch.arange(3)), np.arange(3))
    assert torchnp.tree_to_numpy({"n": 1, "s": "x"}) == {"n": 1, "s": "x"}


@pytest.mark.parametrize("kwargs", [{}, {"copy": True}, {"dtype": torch.float64}])
def test_tree_from_numpy_is_from_numpy_of_every_array_leaf(engine, kwargs):
    rng = np.random.default_rng(0)
    tree = {
        "small": rng.random((2, 3)).astype(np.float32),
        "big_reversed": rng.random(BIG).astype(np.float32)[::-1],
        "big_swapped": rng.random(BIG).astype(">f4"),
        "bf16": rng.random(5).astype(ml_dtypes.bfloat16),
        "list": [np.arange(4), 3, np.float32(2.0), "s"],
        "pair": Pair(np.ones((2, 2), np.uint8), None),
    }
    result = torchnp.tree_from_numpy(tree, **kwargs)
    leaves, spec = torch.utils._pytree.tree_flatten(tree)
    out_leaves, out_spec = torch.utils._pytree.tree_flatten(result)
    assert out_spec == spec
    for leaf, got in zip(leaves, out_leaves, strict=True):
        if isinstance(leaf, np.ndarray):
            want = torchnp.from_numpy(leaf, **kwargs)
            assert got.dtype == want.dtype and got.shape == want.shape
            assert torch.equal(got, want)
        else:
            assert got is leaf


def test_tree_from_numpy_shared_leaves_keep_their_arrays_alive(engine):
    a = np.arange(BIG, dtype=np.float32)
    ref = weakref.ref(a)
    result = torchnp.tree_from_numpy({"a": a, "b": [np.ones(2)]})
    assert result["a"].data_ptr() == a.ctypes.data  # shared, not copied
    del a
    gc.collect()
    assert ref() is not None  # the tensor holds the array
    del result
    gc.collect()
    assert ref() is None


def test_tree_from_numpy_lists_are_containers_not_data(engine):
    assert torchnp.tree_from_numpy([[1, 2], [3, 4]]) == [[1, 2], [3, 4]]
    assert torchnp.from_numpy([[1, 2], [3, 4]]).shape == (2, 2)  # the plain call is unchanged


def test_tree_from_numpy_error_names_the_leaf(engine):
    with pytest.raises(TypeError, match=r"leaf \['x'\]\[0\]"):
        torchnp.tree_from_numpy({"x": [np.array(["a", "b"])]})


# ---- stack_from_numpy -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "dtype"),
    [
        (lambda r: r.integers(0, 256, (8, 9, 3), dtype=np.uint8), None),
        (lambda r: r.integers(0, 256, (8, 9, 3), dtype=np.uint8), torch.float32),
        (lambda r: r.random((5, 7)).astype(">f8"), None),
        (lambda r: r.random((5, 7)).astype(np.float32)[::-1, ::2], torch.bfloat16),
        (lambda r: r.random((64, 64, 3)).astype(np.float32).transpose(2, 0, 1), None),
        (lambda r: r.random(()).astype(np.float64), np.float16),
        (lambda r: r.random((300, 300)).astype(np.float32), torch.float64),  # a large stack
    ],
)
def test_stack_from_numpy_is_np_stack_then_cast(engine, make, dtype):
    rng = np.random.default_rng(0)
    xs = [make(rng) for _ in range(6)]
    got = torchnp.stack_from_numpy(xs, dtype=dtype)
    want = np.stack(xs)
    if dtype is not None:
        if isinstance(dtype, torch.dtype):
            dtype = torchnp.to_numpy(torch.empty(0, dtype=dtype)).dtype
        want = want.astype(dtype)
    want = want.astype(want.dtype.newbyteorder("="))
    assert got.is_contiguous() and got.shape == want.shape
    _same(torchnp.to_numpy(got), np.ascontiguousarray(want))


def test_stack_from_numpy_mixed_types_promote_like_numpy(engine):
    got = torchnp.stack_from_numpy([np.ones(3, np.uint8), np.full(3, 2, np.int16)])
    assert got.dtype == torch.int16 and got.tolist() == [[1, 1, 1], [2, 2, 2]]


def test_stack_from_numpy_into_a_shared_memory_out(engine):
    xs = [np.full((4, 5), i, np.float32) for i in range(3)]
    out = torch.empty(3, 4, 5).share_memory_()
    assert torchnp.stack_from_numpy(xs, out=out) is out
    assert out.is_shared() and torch.equal(out, torch.from_numpy(np.stack(xs)))
    strided = torch.zeros(4, 5, 3).permute(2, 0, 1)  # any strides
    torchnp.stack_from_numpy(xs, out=strided)
    assert torch.equal(strided, out)
    f64 = torch.empty(3, 4, 5, dtype=torch.float64)
    torchnp.stack_from_numpy(xs, out=f64)  # out's dtype is the target
    assert torch.equal(f64, out.double())


def test_stack_from_numpy_sources_overlapping_other_slots_of_out(engine):
    # Slot 0 is a[1]'s destination and a[0]'s memory: every source is read before any write.
    t = torch.arange(4.0).reshape(2, 2)
    a = t.numpy()
    torchnp.stack_from_numpy([a[1], a[0]], out=t)
    assert t.tolist() == [[2.0, 3.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="internal overlap"):
        torchnp.stack_from_numpy([np.zeros(3)] * 4, out=torch.empty(3).expand(4, 3))


def test_collate_promotes_mixed_types_like_default_collate(engine):
    for pair in ((np.int64, np.float32), (np.float16, np.int16), (np.uint8, np.int8)):
        batch = [np.ones(3, pair[0]), np.full(3, 2, pair[1])]
        got, want = torchnp.collate(batch), default_collate(batch)
        assert got.dtype == want.dtype and torch.equal(got, want), pair


def test_stack_from_numpy_bad_input(engine):
    with pytest.raises(
        ValueError, match=r"arrays\[2\] has shape \(4,\), but arrays\[0\] has shape \(3,\)"
    ):
        torchnp.stack_from_numpy([np.zeros(3), np.zeros(3), np.zeros(4)])
    with pytest.raises(ValueError, match="at least one array"):
        torchnp.stack_from_numpy([])
    with pytest.raises(TypeError, match="sequence of arrays"):
        torchnp.stack_from_numpy(np.zeros((2, 3)))
    with pytest.raises(TypeError, match=r"arrays\[1\] is a torch.Tensor"):
        torchnp.stack_from_numpy([np.zeros(3), torch.zeros(3)])
    out = torch.full((2, 3), 7.0)
    with pytest.raises(ValueError, match="out has shape"):
        torchnp.stack_from_numpy([np.zeros(3)] * 3, out=out)
    with pytest.raises(TypeError, match=r"conflicts with out\.dtype"):
        torchnp.stack_from_numpy([np.zeros(3)] * 2, dtype=torch.int32, out=out)
    with pytest.raises(TypeError, match=r"must be a torch\.Tensor"):
        torchnp.stack_from_numpy([np.zeros(3)] * 2, out=np.zeros((2, 3)))
    assert (out == 7).all()


# ---- collate --------------------------------------------------------------------------------


def _samples(n: int = 4):
    rng = np.random.default_rng(0)
    return [
        {
            "image": rng.random((3, 8, 8)).astype(np.float32),
            "mask": rng.integers(0, 2, (8, 8), dtype=np.uint8),
            "tensor": torch.full((2,), float(i)),
            "label": i,
            "weight": 0.5 * i,
            "name": f"s{i}",
            "scalar": np.float64(i),
            "pair": Pair(np.arange(3) + i, [i, np.ones(2, np.int16)]),
        }
        for i in range(n)
    ]


def _assert_same_batch(got, want) -> None:
    assert type(got) is type(want)
    if isinstance(want, torch.Tensor):
        assert got.dtype == want.dtype and got.shape == want.shape and torch.equal(got, want)
    elif isinstance(want, dict):
        assert list(got) == list(want)
        for k in want:
            _assert_same_batch(got[k], want[k])
    elif isinstance(want, (list, tuple)):
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            _assert_same_batch(g, w)
    else:
        assert got == want


def test_collate_matches_default_collate(engine):
    _assert_same_batch(torchnp.collate(_samples()), default_collate(_samples()))
    pairs = [(np.ones(3) * i, i) for i in range(3)]
    _assert_same_batch(torchnp.collate(pairs), default_collate(pairs))


def test_collate_refuses_what_default_collate_refuses(engine):
    with pytest.raises(TypeError, match="default_collate"):
        torchnp.collate([np.array(["a"]), np.array(["b"])])


def test_collate_takes_arrays_torch_cannot(engine):
    batch = torchnp.collate([np.ones(2, ml_dtypes.bfloat16), np.zeros(2, ">f4")[::-1]])
    assert batch.dtype == torch.float32 and batch.tolist() == [[1, 1], [0, 0]]


class _Dataset(torch.utils.data.Dataset):
    def __init__(self) -> None:
        self.samples = _samples(8)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int):
        return self.samples[i]


@pytest.mark.single_engine
def test_collate_in_dataloader_workers_uses_shared_memory():
    data = _Dataset()
    kw = {"batch_size": 4, "num_workers": 2, "multiprocessing_context": "fork"}
    ours = list(DataLoader(data, collate_fn=torchnp.collate, **kw))
    theirs = list(DataLoader(data, collate_fn=default_collate, **kw))
    assert len(ours) == len(theirs) == 2
    for got, want in zip(ours, theirs, strict=True):
        _assert_same_batch(got, want)
        assert got["image"].is_shared() and got["pair"].left.is_shared()


@pytest.fixture
def in_worker(monkeypatch):
    """collate as inside a DataLoader worker (get_worker_info() is set), in this process."""
    monkeypatch.setattr(torch.utils.data, "get_worker_info", lambda: object())


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="needs memfd_create (Linux)")
def test_collate_in_a_worker_writes_a_shared_file(engine, in_worker):
    rng = np.random.default_rng(3)
    batch = [rng.random((3, 5, 7)).astype(np.float32) for _ in range(6)]
    fds = _open_fds()
    got = torchnp.collate(batch)
    assert got.is_shared() and torch.equal(got, default_collate(batch))
    fd, size = got.untyped_storage()._share_fd_cpu_()  # what the queue sends: a descriptor
    assert size == got.nbytes and os.fstat(fd).st_size == got.nbytes
    assert os.pread(fd, got.nbytes, 0) == np.stack(batch).tobytes()
    assert _open_fds() == fds + 1  # the storage's own descriptor; ours is closed
    del got
    gc.collect()
    assert _open_fds() == fds


@pytest.mark.parametrize(
    "case", ["cast", "byte-swapped", "strided", "file_system", "empty", "ragged"]
)
def test_collate_in_a_worker_other_batches(engine, in_worker, monkeypatch, case):
    """Batches the file write does not take still give default_collate's shared result."""
    rng = np.random.default_rng(4)
    batch = [rng.random((4, 6)).astype(np.float32) for _ in range(3)]
    if case == "cast":
        batch[1] = batch[1].astype(np.float64)
    elif case == "byte-swapped":
        batch = [a.astype(">f4") for a in batch]
    elif case == "strided":
        batch = [a[:, ::2] for a in batch]
    elif case == "file_system":
        monkeypatch.setattr(torch.multiprocessing, "get_sharing_strategy", lambda: "file_system")
    elif case == "empty":
        batch = [np.zeros((0, 6), np.float32)] * 3
    elif case == "ragged":
        batch[2] = batch[2][:3]
        with pytest.raises(ValueError, match=r"arrays\[2\] has shape \(3, 6\)"):
            torchnp.collate(batch)
        return
    got = torchnp.collate(batch)
    want = default_collate([torch.as_tensor(a.astype(a.dtype.newbyteorder("="))) for a in batch])
    assert got.is_shared() and got.dtype == want.dtype and torch.equal(got, want)


def test_collate_in_a_worker_takes_the_first_samples_type(engine, in_worker):
    """As default_collate does in a worker (torch.stack into the first sample's type)."""
    for pair in ((np.float32, np.float64), (np.float16, np.int16), (np.uint8, np.int8)):
        batch = [np.ones(3, pair[0]), np.full(3, 2, pair[1])]
        got, want = torchnp.collate(batch), default_collate(batch)
        assert got.dtype == want.dtype and torch.equal(got, want) and got.is_shared(), pair
    batch = [np.ones(3, np.int64), np.full(3, 2.5, np.float32)]
    with pytest.raises(TypeError):
        default_collate(batch)
    with pytest.raises(TypeError, match=r"first array's type, torch.int64.*promote to"):
        torchnp.collate(batch)


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="needs memfd_create (Linux)")
def test_collate_in_a_worker_full_shared_memory_is_a_clear_error(engine, in_worker, monkeypatch):
    def full(fd, buffers, offset):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "pwritev", full)
    fds = _open_fds()
    with pytest.raises(RuntimeError, match=r"could not write a 96-byte batch into shared memory"):
        torchnp.collate([np.ones((2, 4), np.float32)] * 3)
    assert _open_fds() == fds  # nothing left open


@pytest.mark.skipif(not hasattr(os, "memfd_create"), reason="needs memfd_create (Linux)")
def test_write_file_goes_on_after_partial_writes(engine, monkeypatch):
    """Every byte lands in order, whatever pwritev writes per call and however many arrays a
    call may take (IOV_MAX), ml_dtypes, 0-d and empty arrays included."""
    real = os.pwritev
    calls = []

    def short(fd, buffers, offset):  # at most 2 arrays' worth and 1000 bytes per call
        buffers = list(buffers)
        assert len(buffers) <= 3
        calls.append(len(buffers))
        head = b"".join(bytes(b) for b in buffers)[:1000]
        return real(fd, [head], offset)

    monkeypatch.setattr(os, "pwritev", short)
    monkeypatch.setattr(_base, "_iov_max", lambda: 3)
    rng = np.random.default_rng(5)
    sources = [
        rng.random(700),
        np.zeros(0, np.float32),
        np.array(7, np.int16),
        rng.random(33).astype(ml_dtypes.bfloat16),
        rng.integers(0, 255, (17, 9), dtype=np.uint8),
        rng.random(300).astype(np.float32)[::-1].copy(),
    ]
    expected = b"".join(a.tobytes() for a in sources)
    fd = os.memfd_create("test", os.MFD_CLOEXEC)
    try:
        os.ftruncate(fd, 11 + len(expected))
        _engines.active().write_file(fd, 11, sources)
        assert os.pread(fd, len(expected), 11) == expected
        assert os.pread(fd, 11, 0) == bytes(11)
    finally:
        os.close(fd)
    assert len(calls) > len(expected) // 1000  # the loop really went on after short writes
    with pytest.raises(ValueError, match="C-contiguous"):
        _engines.active().write_file(0, 0, [np.zeros((4, 4))[:, ::2]])
    monkeypatch.setattr(os, "pwritev", lambda fd, buffers, offset: 0)
    with pytest.raises(OSError, match="wrote nothing"):
        _engines.active().write_file(0, 0, [np.zeros(4)])


# ---- the engines' copy_many -----------------------------------------------------------------


def test_copy_many_is_each_copy(engine):
    rng = np.random.default_rng(1)
    copies, expected = [], []
    for n in (1, 7, 4096, 300_000, 1 << 20):  # ~8 MiB of traffic in all: threads take part
        src = rng.random(n).astype(np.float64)
        dst = np.empty(n, np.float32)
        copies.append((dst, src, 0))
        expected.append(src.astype(np.float32))
    src2 = rng.random((500, 600)).astype(">f4").T
    dst2 = np.empty((600, 500), np.float16)
    copies.append((dst2, src2, 0))
    expected.append(src2.astype(np.float16))
    src3 = (rng.random(1000) + 1j).astype(np.complex64)
    copies.append((np.empty(1000, np.complex64), src3, 2))  # conjugated
    expected.append(np.conj(src3))
    line = rng.random((3, 70_000)).astype(np.float32)
    bcast = np.zeros(3, np.float32)
    copies.append((np.lib.stride_tricks.as_strided(bcast, (3, 70_000), (4, 0)), line, 0))
    expected.append(None)
    copies.append((np.empty(0, np.float32), np.empty(0, np.float32), 0))
    expected.append(np.empty(0, np.float32))
    _engines.active().copy_many(copies)
    for (dst, _, _), want in zip(copies, expected, strict=True):
        if want is not None:
            assert dst.dtype == want.dtype
            assert np.ascontiguousarray(dst).tobytes() == np.ascontiguousarray(want).tobytes()
    np.testing.assert_array_equal(bcast, line[:, -1])  # a broadcast destination: last write wins
