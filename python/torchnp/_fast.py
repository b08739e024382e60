"""The small-call fast path: the policy's decisions, memoised by call signature and replayed.

What a call means depends on its signature (the element type of the tensor or array, the
requested dtype, copy, order and the like) and on its layout. The policy (_to_numpy,
_from_numpy) decides; for signatures whose decision needs no judgment beyond the layout it
records a replay here. The next call with that signature skips the policy: one native call
reads the tensor's memory from its metadata (through torch's stable C ABI where stable_init has
checked that it reads what torch's methods say, else through those methods), then shares it
when the decision allows and the layout fits, or allocates the result in the decided layout and
copies; the Python engine replays the same steps in Python, from torch's own ``Tensor.numpy``.
Results of POOL_BYTES or more come from the engine's recycling output pool (_pool.active()). The
decision is never made here: where a replay cannot follow it, it returns None and the policy
runs.

The memo is per engine (cleared when the engine changes) and bounded (MAX_ENTRIES signatures).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from torchnp import _originals, _pool
from torchnp._dtypes import ElementType, carrier_numpy, carrier_torch, core_code
from torchnp._memory import storage_holds

POOL_BYTES = _pool.MIN_BYTES  # results this large come from the output pool
# The types of `copy` the policy accepts: only these may look up a memo keyed by `copy` as
# passed (1 == True and hash(1) == hash(True), but the policy refuses copy=1).
COPY_TYPES = frozenset({type(None), bool, np.bool_})
MAX_ENTRIES = 512
LAYOUTS = {"K": 0, "C": 1, "F": 2, "A": 3}

# torch's own conversions, kept before anyone can patch them: the fast path never calls back
# into a patched torch (a patched Tensor.numpy calling torchnp would recurse).
_tensor_numpy = _originals.tensor_numpy
_torch_from_numpy = _originals.from_numpy

Replay = Callable[[Any], Any]
# The memos, as nested dicts (one level per part of the signature: no key tuple to allocate):
#   _TO_NUMPY[tensor dtype][dtype arg][copy][order] and
#   _FROM_NUMPY[array scalar type][array byte order][dtype arg][copy].
# A dtype argument enters as arg_key(dtype).
_TO_NUMPY: dict = {}
_FROM_NUMPY: dict = {}
#   _TO_NUMPY_OUT[tensor dtype][dtype arg][copy][order][out dtype]: to_numpy(..., out=out).
_TO_NUMPY_OUT: dict = {}
_entries = 0


def clear() -> None:
    """Forget every memoised decision (the engine changed, or something records the plans that
    run: NativeEngine.recording clears the memo and keeps it empty while it records)."""
    global _entries
    _TO_NUMPY.clear()
    _FROM_NUMPY.clear()
    _TO_NUMPY_OUT.clear()
    _entries = 0


def arg_key(dtype: Any) -> Any:
    """A dtype argument as a memo key. A native NumPy dtype without metadata enters as its
    scalar type (a NumPy dtype's hash is recomputed from its fields on every call, and
    ``np.dtype('f4')`` means what ``np.float32`` does); anything else as itself (a dtype with
    metadata must not meet the same dtype without it)."""
    if isinstance(dtype, np.dtype) and dtype.metadata is None and dtype.isnative:
        return dtype.type
    return dtype


def _lookup(memo: dict, keys: tuple) -> Any:
    node = memo
    for k in keys:
        node = node.get(k)
        if node is None:
            return None
    return node


def _known(memo: dict, key: tuple) -> bool:
    """Whether a replay is already memoised for `key` (a policy call past the fast path, e.g. a
    large result, must not rebuild the same replay every time)."""
    try:
        return _lookup(memo, key) is not None
    except TypeError:  # an unhashable dtype-like: never memoised
        return False


recording = 0  # > 0 while NativeEngine.recording() runs: nothing is memoised


def python_shareable(array: np.ndarray) -> bool:
    """Whether torch.from_numpy can share the array as it is and torchnp would (the rule of
    _C.shareable, for when the binary is not loaded)."""
    from torchnp._memory import torch_can_view

    return array.dtype in _FROM_NUMPY_NATIVE and torch_can_view(array)


_FROM_NUMPY_NATIVE = frozenset(
    np.dtype(t)
    for t in (
        *(np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32),
        *(np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128),
    )
)
# The zero-copy check of from_numpy: _C.shareable once the native binary has loaded (set by
# the engine loader), this otherwise.
shareable: Callable[[np.ndarray], bool] = python_shareable


def _remember(memo: dict, key: tuple, replay: Replay) -> None:
    global _entries
    if recording:
        return
    if _entries >= MAX_ENTRIES:
        clear()  # a program with this many signatures gains little from any of them
    node = memo
    for k in key[:-1]:
        node = node.setdefault(k, {})
    if key[-1] not in node:
        _entries += 1
    node[key[-1]] = replay


def _np_view(tensor: torch.Tensor, carrier: torch.dtype | None) -> np.ndarray | None:
    """torch's own zero-copy view (of the carrier integer type for ml_dtypes types), or None
    when torch refuses it (a tensor with bits, on a device, with a layout NumPy cannot hold) or
    the tensor's storage no longer holds the bytes it addresses (_memory.storage_holds)."""
    # Requires grad: the values are what is converted (the policy detaches too), detached first
    # rather than after torch refuses it (its C++ exception costs ~9 us).
    source = tensor.detach() if tensor.requires_grad else tensor
    try:
        view = _tensor_numpy(source if carrier is None else source.view(carrier))
    except RecursionError:
        raise
    except (RuntimeError, TypeError):
        return None
    return view if storage_holds(tensor) else None


def _carried_dtypes() -> tuple[torch.dtype, ...]:
    """The torch dtypes Tensor.numpy() refuses that torchnp reads through an integer carrier
    (bf16, float8, complex32)."""
    from torchnp._dtypes import _BY_TORCH

    return tuple(dt for dt in _BY_TORCH if carrier_torch(dt) is not None)


CARRIED = frozenset(_carried_dtypes())


def python_tensor_view(tensor: torch.Tensor) -> np.ndarray | None:
    """torch's own ``Tensor.numpy()`` of `tensor` when it gives one over memory the tensor's
    storage holds, else None (the policy's turn): the commonest call, ``to_numpy(t)``. Types
    torch refuses (CARRIED) are None at once: torch's C++ exception would cost ~9 us."""
    if tensor.requires_grad or tensor.dtype in CARRIED:
        return None  # torch refuses these (at the cost of a C++ exception): the policy's turn
    try:
        view = _tensor_numpy(tensor)
    except RecursionError:
        raise
    except (RuntimeError, TypeError):
        return None
    return view if storage_holds(tensor) else None


# ---- to_numpy ----------------------------------------------------------------------------


def python_to_numpy(tensor: torch.Tensor, dtype: Any, copy: Any, order: Any) -> np.ndarray | None:
    """The replayed result of ``to_numpy(tensor, dtype, copy=copy, order=order)``, or None
    when the policy must run (no decision recorded for this signature, or the replay cannot
    follow it). The caller has checked ``type(tensor) is torch.Tensor`` and ``out is None``."""
    try:
        replay = _lookup(_TO_NUMPY, (tensor.dtype, arg_key(dtype), copy, order))
    except TypeError:  # an unhashable dtype-like
        return None
    return None if replay is None else replay(tensor)


def remember_to_numpy(
    engine: Any, key: tuple, element: ElementType, target: np.dtype, share: bool, layout: str
) -> None:
    """Record the policy's decision for a signature `key` (tensor dtype, then dtype, copy and
    order as passed; the dtype as arg_key gives it): the result has dtype `target`; it is the
    tensor's own view when `share` and the layout fits `layout` (the checked order: K, A, C or
    F), else a fresh array in `layout` ('A' resolved by the layout, as the policy does)."""
    if _known(_TO_NUMPY, key):
        return  # decided before: the same replay
    carrier = carrier_torch(key[0])  # ml_dtypes types: torch's .numpy() takes this integer view
    d_code, d_swap = core_code(target)
    replay = engine.to_numpy_replay(
        target, d_code, d_swap, element.code, element.numpy, LAYOUTS[layout], share, carrier
    )
    with contextlib.suppress(TypeError):  # an unhashable dtype-like: not memoised
        _remember(_TO_NUMPY, key, replay)


def python_to_numpy_out(
    tensor: torch.Tensor, dtype: Any, copy: Any, order: Any, out: np.ndarray
) -> np.ndarray | None:
    """The replayed ``to_numpy(tensor, dtype, copy=copy, order=order, out=out)``: `out`, written,
    or None when the policy must run (no decision for this signature, or a replay that cannot
    follow it: another shape, a read-only or overlapping `out`). The caller has checked
    ``type(tensor) is torch.Tensor`` and ``type(out) is np.ndarray``."""
    try:
        node = _TO_NUMPY_OUT.get(tensor.dtype)
        if node is not None:
            node = node.get(None if dtype is None else arg_key(dtype))
        if node is not None:
            node = node.get(copy)
        if node is not None:
            node = node.get(order)
        if node is not None:
            node = node.get(arg_key(out.dtype))
    except TypeError:  # an unhashable dtype-like
        return None
    return None if node is None else node(tensor, out)


def remember_to_numpy_out(engine: Any, key: tuple, element: ElementType) -> None:
    """Record the policy's decision for an ``out=`` signature `key` (tensor dtype, dtype, copy,
    order as passed, then out.dtype): the tensor's values, cast to out.dtype, written into
    `out` (of the tensor's shape, writable, not sharing memory with it)."""
    if _known(_TO_NUMPY_OUT, (*key[:-1], arg_key(key[-1]))):
        return
    target = key[-1]
    carrier = carrier_torch(key[0])
    stored = element.numpy
    may_share = np.may_share_memory
    C = getattr(engine, "_C", None)
    if C is not None:  # the native replay (_C.ToNumpyOutReplay), read by _C.fast_to_numpy_out
        d_code, d_swap = core_code(target)
        replay = C.ToNumpyOutReplay(stored, d_code, d_swap, element.code).capsule()
        with contextlib.suppress(TypeError):  # an unhashable dtype-like: not memoised
            _remember(_TO_NUMPY_OUT, (*key[:-1], arg_key(target)), replay)
        return
    host_copy = engine._host_copy

    def replay(tensor: torch.Tensor, out: np.ndarray) -> np.ndarray | None:
        view = _np_view(tensor, carrier)
        if view is None or out.shape != view.shape or not out.flags.writeable:
            return None
        if out.size:
            if may_share(out, view):
                return None  # the policy stages the source first
            host_copy(out, view if carrier is None else view.view(stored), 0)
        return out

    with contextlib.suppress(TypeError):  # an unhashable dtype-like: not memoised
        _remember(_TO_NUMPY_OUT, (*key[:-1], arg_key(target)), replay)


# ---- from_numpy --------------------------------------------------------------------------


def python_from_numpy(array: np.ndarray, dtype: Any, copy: Any) -> torch.Tensor | None:
    """The replayed result of ``from_numpy(array, dtype, copy=copy)`` (CPU, not pinned, no
    share_readonly), or None when the policy must run. The caller has checked
    ``type(array) is np.ndarray`` and the defaults of the other arguments."""
    try:
        replay = _lookup(_FROM_NUMPY, array_key(array.dtype, dtype, copy))
    except TypeError:
        return None
    return None if replay is None else replay(array)


def array_key(array_dtype: np.dtype, dtype: Any, copy: Any) -> tuple:
    """The memo key of a from_numpy signature. The array's element type enters as its scalar
    type and byte order (a tensor keeps no dtype metadata, so nothing else of it matters)."""
    return (array_dtype.type, ord(array_dtype.byteorder), arg_key(dtype), copy)


def remember_from_numpy(
    engine: Any,
    key: tuple,
    own: ElementType,
    swapped: bool,
    target_np: np.dtype,
    target: torch.dtype,
    share: bool,
) -> None:
    """Record the policy's decision for a signature `key` (array_key: the array's element type,
    dtype and copy as passed): share when `share` and torch can hold the array as it is (else
    the policy decides), or copy the cast into a fresh array laid out like the source."""
    if _known(_FROM_NUMPY, key):
        return
    d_code, d_swap = core_code(target_np)
    replay = engine.from_numpy_replay(
        target_np, d_code, d_swap, own.code, swapped, share, target, carrier_numpy(target_np)
    )
    with contextlib.suppress(TypeError):
        _remember(_FROM_NUMPY, key, replay)


# ---- the replays, one pair per engine ----------------------------------------------------


def native_to_numpy_replay(
    C: Any,
    target: np.dtype,
    d_code: int,
    d_swap: bool,
    s_code: int,
    stored: np.dtype,
    layout: int,
    share: bool,
    carrier: torch.dtype | None,
) -> Replay:
    """The replay as one native object (_C.ToNumpyReplay: view and convert in one call), in the
    capsule _C.fast_to_numpy reads."""
    return C.ToNumpyReplay(
        _tensor_numpy, carrier, stored, target, d_code, d_swap, s_code, layout, share, POOL_BYTES
    ).capsule()


def native_from_numpy_replay(
    C: Any,
    target_np: np.dtype,
    d_code: int,
    d_swap: bool,
    s_code: int,
    s_swap: bool,
    share: bool,
    target: torch.dtype,
    carrier_np: np.dtype | None,
) -> Replay:
    """The replay as one native object (_C.FromNumpyReplay), in the capsule
    _C.fast_from_numpy reads."""
    return C.FromNumpyReplay(
        _torch_from_numpy,
        target_np,
        target,
        carrier_np,
        d_code,
        d_swap,
        s_code,
        s_swap,
        share,
        POOL_BYTES,
    ).capsule()


def python_to_numpy_replay(
    engine: Any,
    target: np.dtype,
    layout: int,
    share: bool,
    carrier: torch.dtype | None,
    stored: np.dtype,
) -> Replay:
    """The same replay for an engine without a native convert: in Python, through the engine's
    own copy."""
    from torchnp._memory import empty_in_order

    order = "KCFA"[layout]

    def replay(tensor: torch.Tensor) -> np.ndarray | None:
        view = _np_view(tensor, carrier)
        if view is None:
            return None
        if carrier is not None:
            view = view.view(stored)
        flags = view.flags
        fits = (
            order in "KA"
            or (order == "C" and flags.c_contiguous)
            or (order == "F" and flags.f_contiguous)
        )
        if share and fits:
            return view
        resolved = (
            ("F" if flags.f_contiguous and not flags.c_contiguous else "C")
            if order == "A"
            else order
        )
        out = empty_in_order(view.shape, view.strides, target, resolved)
        engine.copy(out, view)
        return out

    return replay


def python_from_numpy_replay(
    engine: Any, target_np: np.dtype, share: bool, target: torch.dtype
) -> Replay:
    """The from_numpy replay through the engine's own copy."""
    from torchnp._memory import empty_in_order, tensor_of_numpy_view, tensor_view, torch_can_view

    def replay(array: np.ndarray) -> torch.Tensor | None:
        if share and torch_can_view(array):
            return tensor_view(array, target)
        out = empty_in_order(array.shape, array.strides, target_np, "K")
        engine.copy(out, array)
        return tensor_of_numpy_view(out, target)

    return replay


# The entries to_numpy / from_numpy call: the native ones (_C.fast_to_numpy / fast_from_numpy,
# one C call) while the native engine is active, these Python ones otherwise (activate()).
to_numpy: Callable[..., Any] = python_to_numpy
to_numpy_out: Callable[..., Any] = python_to_numpy_out
from_numpy: Callable[..., Any] = python_from_numpy
tensor_view: Callable[[torch.Tensor], Any] = python_tensor_view
_initialised: set[int] = set()


def _numpy_types() -> dict[torch.dtype, np.dtype]:
    """torch dtype -> the NumPy dtype torch's own Tensor.numpy() gives it, asked of torch itself
    (the native direct view builds exactly those views, and leaves every other type to it)."""
    candidates = (
        "bool", "uint8", "int8", "int16", "int32", "int64", "uint16", "uint32", "uint64",
        "float16", "float32", "float64", "complex64", "complex128",
    )  # fmt: skip
    types = {}
    for name in candidates:
        dt = getattr(torch, name, None)
        if isinstance(dt, torch.dtype):
            try:
                types[dt] = _tensor_numpy(torch.empty(1, dtype=dt)).dtype
            except (RuntimeError, TypeError):
                continue  # an older torch without a NumPy view of this type
    return types


def stable_probes() -> list[torch.Tensor]:
    """CPU tensors of varied layouts (offset, permuted, broadcast, 0-d, empty, requires_grad)
    that _C.stable_init reads both through torch's stable C ABI and through torch's methods:
    the native fast path reads plain tensors' metadata the first way only where both agree."""
    base = torch.arange(60, dtype=torch.float64).reshape(3, 4, 5)
    return [
        base,
        base.permute(2, 0, 1),
        base[1:, ::2, 3:],
        base[:, :1].expand(3, 7, 5),
        torch.zeros(()),
        torch.ones(9, dtype=torch.bool)[2::3],
        torch.empty(0, 4),
        torch.ones(4, 2, requires_grad=True).T,
    ]


def activate(engine: Any) -> None:
    """Switch the fast path to `engine`: forget the other engine's replays, and use the native
    entries when the engine has them."""
    global to_numpy, to_numpy_out, from_numpy, tensor_view
    clear()
    _pool.activate(engine.pool)  # large results come from the engine's own pool
    C = getattr(engine, "_C", None)
    if C is None:
        to_numpy, to_numpy_out, from_numpy = python_to_numpy, python_to_numpy_out, python_from_numpy
        tensor_view = python_tensor_view
        _entries_on(False)
        return
    if id(C) not in _initialised:
        storage = torch._C.StorageBase
        methods = (torch.Tensor.untyped_storage, storage.data_ptr, storage.nbytes)
        C.fast_init(torch.Tensor, _tensor_numpy, methods, _TO_NUMPY, _FROM_NUMPY, tuple(CARRIED))
        tensor = torch.Tensor
        C.view_init(
            _numpy_types(),
            torch.strided,
            (tensor.data_ptr, tensor.stride, tensor.is_conj, tensor.is_neg),
        )
        C.entry_init(COPY_TYPES, _torch_from_numpy)
        C.out_init(_TO_NUMPY_OUT)
        C.stable_init(stable_probes())
        _initialised.add(id(C))
    to_numpy, from_numpy, tensor_view = C.fast_to_numpy, C.fast_from_numpy, C.tensor_view
    to_numpy_out = C.fast_to_numpy_out
    _entries_on(True)


# ---- the public entries -------------------------------------------------------------------

_entry_modules: list[Any] = []  # the native modules whose entries back the public functions


def _entries_on(on: bool) -> None:
    for C in _entry_modules:
        C.entries_enabled(on)


def public_entry(fn: Callable[..., Any], kind: int) -> Callable[..., Any]:
    """`fn` (_to_numpy.to_numpy, kind 0, or _from_numpy.from_numpy, kind 1) as the public
    function: the native Entry (_C.Entry), which answers what the fast path can in one C call
    and hands every other call to `fn`, when the native binary is loaded and the native engine
    active; `fn` itself otherwise. The entry carries fn's name, docstring, annotations and
    signature (``__wrapped__``), so help(), inspect and doctest see the Python function."""
    from torchnp import _engines

    native = _engines.loaded_native()
    if native is None or not hasattr(native._C, "Entry"):
        return fn
    C = native._C
    entry = C.Entry(fn, kind)
    for name in ("__name__", "__qualname__", "__doc__", "__annotations__"):
        setattr(entry, name, getattr(fn, name))
    entry.__module__ = "torchnp"  # where it lives: pickled by name, as torchnp.<name>
    entry.__wrapped__ = fn
    if C not in _entry_modules:
        _entry_modules.append(C)
    C.entries_enabled(_engines.active() is native)
    return entry
