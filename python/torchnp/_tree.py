"""Many tensors at once: tree_to_numpy / tree_from_numpy over nested containers.

The containers are walked by torch's own pytree library (``torch.utils._pytree``: dict, list,
tuple, namedtuple, OrderedDict, defaultdict, deque and whatever a program registers), so the
result has exactly the structure of the input. Each leaf takes the same policy as a single call;
what a tree call adds is that the host copies of all large leaves run as one job
(``Engine.copy_many``: one hand-off to the core's threads for all of them), while small leaves
take the fast path's memoised decisions (one pass through the policy per signature, no thread
start-up). Nothing is written into a caller's ``out`` before every leaf has been decided.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.utils._pytree as pytree

from torchnp import _device, _engines, _fast, _from_numpy, _policy, _to_numpy, _transfer
from torchnp._dtypes import DTypeLike, default_numpy_dtype, element_type_of_torch, parse_dtype
from torchnp._memory import empty_in_order

# Leaves below this many bytes take the single-call fast path (a memoised decision, copied on
# the calling thread); larger ones go through the policy, their copies batched into one job.
# A 256 KiB copy takes ~20 us here, the policy ~6 us.
BATCH_BYTES = 256 * 1024


def _run(deferred: list) -> None:
    """The deferred work of a tree call: the host copies as one job, then the device transfers."""
    host = [d for d in deferred if type(d) is tuple]
    if host:
        _engines.active().copy_many(host)
    # Device transfers: every tensor of a device enqueued before the host waits (one batch
    # per device and direction).
    downloads = [d for d in deferred if type(d) is _transfer.Download]
    uploads = [d for d in deferred if type(d) is _transfer.Upload]
    if downloads or uploads:
        _transfer.run_deferred(downloads, uploads)


def _leaf_path(tree: Any, index: int) -> str:
    """The key path of leaf `index` (for error messages only: flattening with paths is slower)."""
    path, _ = pytree.tree_flatten_with_path(tree)[0][index]
    return pytree.keystr(path) or "(the root)"


def _check_same_paths(tree: Any, out: Any) -> None:
    """ValueError unless `out` has the leaves of `tree` at the same key paths (containers may
    differ in type: a dict for an OrderedDict, a list for a tuple)."""
    paths = [pytree.keystr(p) for p, _ in pytree.tree_flatten_with_path(tree)[0]]
    out_paths = [pytree.keystr(p) for p, _ in pytree.tree_flatten_with_path(out)[0]]
    if paths == out_paths:
        return
    have, want = set(out_paths), set(paths)
    missing = [p for p in paths if p not in have]
    extra = [p for p in out_paths if p not in want]
    raise ValueError(
        "out must have the structure of the tree (a leaf at every key path the tree has); "
        f"missing in out: {missing[:5] or 'none'}, not in the tree: {extra[:5] or 'none'}"
        + ("" if missing or extra else " (the same paths in another order)")
    )


def _reraise_for_leaf(exc: Exception, tree: Any, index: int, what: str) -> None:
    """Re-raise a leaf's error, of the same type, naming the leaf."""
    if isinstance(exc, (TypeError, ValueError, RuntimeError)):
        try:
            named = type(exc)(f"{what} leaf {_leaf_path(tree, index)}: {exc}")
        except Exception:
            raise exc from None
        raise named from exc
    raise exc


class _LargeLeaves:
    """The policy's decision for the large leaves of one element type within one tree call, so
    that each leaf after the first costs a view, a check and an allocation (a few µs) instead of
    the whole policy (~15 µs): the decision depends on the element type and the arguments only,
    its layout part is redone per leaf exactly as the policy does it. Used only for plain CPU
    tensors without bits (anything else, and every leaf torch's own view refuses, takes the
    policy), and not where the policy has more to do than decide (copy=False's refusals, the
    ComplexWarning)."""

    __slots__ = ("order", "share", "target")

    def __init__(self, target: np.dtype, share: bool, order: str) -> None:
        self.target, self.share, self.order = target, share, order

    @classmethod
    def of(
        cls, t: torch.Tensor, dtype: DTypeLike | None, copy: Any, order: str
    ) -> _LargeLeaves | None:
        if copy not in (None, True) or type(copy) not in (type(None), bool):
            return None
        if order not in ("K", "A", "C", "F"):
            return None
        try:
            element = element_type_of_torch(t.dtype)
            target = parse_dtype(dtype) if dtype is not None else default_numpy_dtype(element)
        except TypeError:
            return None  # the policy says why, for every leaf
        stored = element.numpy
        if _policy.discards_imaginary(stored, target):
            return None
        return cls(target, copy is not True and stored == target, order)

    def convert(self, t: torch.Tensor, deferred: list) -> np.ndarray | None:
        """The leaf's result (its copy deferred), or None: the policy must see this leaf."""
        if t.is_conj() or t.is_neg() or t._is_zerotensor():
            return None
        view = _fast.tensor_view(t)  # torch's own view, inside the storage; None if refused
        if view is None:
            return None
        flags = view.flags
        order = self.order
        if self.share and (
            order in "KA"  # any layout fits K and A, as in the policy's layout_fits
            or (order == "C" and flags.c_contiguous)
            or (order == "F" and flags.f_contiguous)
        ):
            return view
        if order == "A":
            order = "F" if flags.f_contiguous and not flags.c_contiguous else "C"
        out = empty_in_order(view.shape, view.strides if order == "K" else None, self.target, order)
        deferred.append((out, view, 0))
        return out


def tree_to_numpy(
    tree: Any,
    dtype: DTypeLike | None = None,
    *,
    copy: bool | None = None,
    order: str = "K",
    out: Any = None,
) -> Any:
    """Convert every tensor in a nested container to a NumPy array, in one call.

    Dicts (a ``state_dict`` in particular), lists, tuples, namedtuples and OrderedDicts come back
    with the same structure; each tensor leaf becomes what ``to_numpy(leaf, dtype, copy=copy,
    order=order)`` gives; any other leaf (numbers, strings, arrays, None) is passed through
    unchanged. The copies of large leaves run together on the core's threads.

    Parameters
    ----------
    tree : pytree
        Nested containers of tensors and other objects.
    dtype : data-type or torch.dtype, optional
        Element type of every converted leaf (as in ``to_numpy``).
    copy : bool, optional
        As in ``to_numpy``, for every leaf: None shares where possible, True always copies,
        False never copies (ValueError naming the leaf that would need one).
    order : {'K', 'A', 'C', 'F'}, optional
        Memory layout of copies, as in ``to_numpy``.
    out : pytree, optional
        A tree of the same structure whose leaves at tensor positions are writable arrays of
        those tensors' shapes (e.g. the result of an earlier call); the results are written
        there. Leaves at other positions are ignored. Its arrays must not share memory with each
        other or with the tensors of other leaves (an array overlapping its own leaf's tensor is
        fine: that source is read first).

    Returns
    -------
    pytree
        The same structure, tensors replaced by arrays (``out`` itself when given).

    Examples
    --------
    >>> import torch, torchnp
    >>> sd = torch.nn.Linear(2, 1).state_dict()
    >>> arrays = torchnp.tree_to_numpy(sd, copy=True)
    >>> sorted(arrays), arrays["weight"].shape
    (['bias', 'weight'], (1, 2))
    """
    leaves, spec = pytree.tree_flatten(tree)
    outs = None
    if out is not None:
        outs, out_spec = pytree.tree_flatten(out)
        if out_spec != spec:
            _check_same_paths(tree, out)
    deferred: list = []
    results = []
    tensor_type = torch.Tensor
    decided: dict[torch.dtype, _LargeLeaves | None] = {}  # per element type, for this call
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, tensor_type):
            results.append(leaf)
            continue
        target = None if outs is None else outs[i]
        try:
            # Device leaves (and, in tests, simulated ones) are all deferred: run_downloads then
            # enqueues them as one pipeline per device.
            on_host = leaf.is_cpu and not _device.SIMULATING
            if target is None and type(leaf) is tensor_type and on_host:
                if leaf.nbytes < BATCH_BYTES:
                    results.append(_to_numpy.to_numpy(leaf, dtype, copy=copy, order=order))
                    continue
                plan = decided.get(leaf.dtype)
                result = None if plan is None else plan.convert(leaf, deferred)
                if result is not None:
                    results.append(result)
                    continue
                if leaf.dtype not in decided:
                    decided[leaf.dtype] = _LargeLeaves.of(leaf, dtype, copy, order)
            results.append(_to_numpy.convert(leaf, dtype, copy, order, target, deferred))
        except Exception as exc:
            _reraise_for_leaf(exc, tree, i, "tree_to_numpy:")
    _run(deferred)
    if out is not None:
        return out
    return pytree.tree_unflatten(results, spec)


def tree_from_numpy(
    tree: Any,
    dtype: DTypeLike | None = None,
    *,
    device: str | torch.device | None = None,
    copy: bool | None = None,
    pin_memory: bool = False,
    share_readonly: bool = False,
) -> Any:
    """Convert every ndarray in a nested container to a tensor, in one call.

    The same structure comes back; each ``numpy.ndarray`` leaf (memmaps and other subclasses
    too) becomes what ``from_numpy(leaf, dtype, device=device, copy=copy, ...)`` gives; any other
    leaf (numbers, NumPy scalars, strings, tensors, None) is passed through unchanged. Unlike
    ``from_numpy``, lists are containers here, never array data. The copies of large leaves run
    together on the core's threads.

    Parameters
    ----------
    tree : pytree
        Nested containers of arrays and other objects.
    dtype : data-type or torch.dtype, optional
        Element type of every converted leaf.
    device : str or torch.device, optional
        Device of every converted leaf (default: CPU).
    copy : bool, optional
        As in ``from_numpy``, for every leaf.
    pin_memory : bool, optional
        Page-locked CPU results (needs CUDA).
    share_readonly : bool, optional
        Share read-only arrays instead of copying them (see ``from_numpy``).

    Returns
    -------
    pytree
        The same structure, arrays replaced by tensors.

    Examples
    --------
    >>> import numpy as np, torchnp
    >>> batch = {"image": np.zeros((2, 3), np.uint8), "label": 7, "names": ["a", "b"]}
    >>> out = torchnp.tree_from_numpy(batch)
    >>> out["image"].dtype, out["label"], out["names"]
    (torch.uint8, 7, ['a', 'b'])
    """
    leaves, spec = pytree.tree_flatten(tree)
    deferred: list = []
    results = []
    simple = device is None and not (pin_memory or share_readonly)
    array_type = np.ndarray
    for i, leaf in enumerate(leaves):
        if not isinstance(leaf, array_type):
            results.append(leaf)
            continue
        try:
            if simple and type(leaf) is array_type and leaf.nbytes < BATCH_BYTES:
                results.append(_from_numpy.from_numpy(leaf, dtype, copy=copy))
            else:
                results.append(
                    _from_numpy.convert(
                        leaf, dtype, device, copy, pin_memory, share_readonly, deferred
                    )
                )
        except Exception as exc:
            _reraise_for_leaf(exc, tree, i, "tree_from_numpy:")
    _run(deferred)
    return pytree.tree_unflatten(results, spec)
