"""torchnp.patch(): existing code's torch <-> NumPy conversions, routed through torchnp.

What ``patch()`` installs (and ``unpatch()`` removes), process-wide:

- ``torch.Tensor.numpy``: torch's own view where torch gives one (zero-copy, torch's errors and
  messages where ``force=False``: grad in grad mode, conj/neg bits, devices, layouts), plus a
  shared ml_dtypes view for bfloat16/float8 tensors, which torch refuses; ``force=True`` is
  ``torchnp.to_numpy`` (detach, resolve bits, copy from devices, complex32 widened).
- ``torch.from_numpy``: torch's own call first, so it shares exactly where torch shares;
  what torch refuses but torchnp can read (negative strides, other byte orders, strides that
  are not multiples of the itemsize, ml_dtypes arrays) is converted by ``torchnp.from_numpy``.
- ``torch.as_tensor`` / ``torch.asarray`` for ndarray inputs: torch's own call where it would
  share; casts, device targets and ``copy=True`` through ``torchnp.from_numpy`` (one fused pass);
  what torch refuses, as ``from_numpy`` above. Other inputs go to torch untouched.
- ``torch.Tensor.__array__``: NumPy 2's protocol (``dtype``, ``copy``) through
  ``torchnp.to_numpy``, so ``np.asarray(t)``/``np.array(t, copy=...)``, matplotlib and pandas
  take bf16, CUDA, requires-grad and conj/neg tensors.
- ``torch.Tensor.__eq__`` / ``__ne__``: an ml_dtypes scalar (``t.numpy()[0]`` of a bf16 tensor)
  compares by value; torch alone knows nothing of it, and ``t == scalar`` was silently False.

torchnp itself only ever calls torch's originals (_originals), so nothing recurses.
"""

from __future__ import annotations

import sys
import threading
import warnings
from typing import Any

import numpy as np
import torch
from torch.overrides import handle_torch_function, has_torch_function_unary

from torchnp import _engines, _fast, _from_numpy, _originals, _to_numpy, _transfer
from torchnp._dtypes import (
    _ELEMENT_TYPES,
    default_numpy_dtype,
    element_type_of_numpy,
    parse_dtype,
)

_NDARRAY = np.ndarray
_TENSOR = torch.Tensor
_ORIG_NUMPY = _originals.tensor_numpy
_ORIG_FROM_NUMPY = _originals.from_numpy
_ORIG_AS_TENSOR = _originals.as_tensor
_ORIG_ASARRAY = _originals.asarray
_ORIG_EQ = _originals.tensor_eq
_ORIG_NE = _originals.tensor_ne
_to_numpy_fn = _to_numpy.to_numpy
_MODES_ENABLED = torch._C._is_torch_function_mode_enabled
# True while dynamo traces (it folds this call): traced code gets torch's own functions, which
# dynamo models; torchnp's Python would be traced on fake values.
_is_compiling = torch.compiler.is_compiling
_COPY_ARGS = (type(None), bool)
_CARRIED = _fast.CARRIED
_STRIDED = torch.strided
_GRAD_ENABLED = torch.is_grad_enabled
_DISPATCH_KEYS = torch._C._dispatch_keys
_PYTHON_KEY = torch._C.DispatchKey.Python
_UNSUPPORTED_TYPE = "Got unsupported ScalarType"
_from_numpy_fn = _from_numpy.from_numpy

# ml_dtypes scalar types (what indexing an ml_dtypes array gives), as the Python number each
# equals exactly: torch reads those.
_ML_SCALARS: dict[type, type] = {
    e.numpy.type: complex if e.components == 2 else float
    for e in _ELEMENT_TYPES
    if e.numpy.type.__module__.startswith("ml_dtypes")
}


def _type_nums(dtypes: Any) -> dict[int, Any]:
    """NumPy type numbers of `dtypes` and of every NumPy type equivalent to one of them
    (np.longlong is np.int64's twin on Linux, with its own scalar type and number)."""
    nums: dict[int, Any] = {}
    aliases = {np.dtype(t) for t in set(np.sctypeDict.values())}
    for dt, value in dtypes:
        nums[dt.num] = value
        for other in aliases:
            if other == dt:
                nums[other.num] = value
    return nums


# Every element type torchnp reads, by NumPy type number (a dtype's own hash is recomputed on
# every call), as its torch dtype.
_TORCH_OF_NUM: dict[int, torch.dtype] = _type_nums(
    (e.numpy, e.torch) for e in _ELEMENT_TYPES if e.torch is not None
)
# The NumPy type numbers torch.from_numpy takes (torch's own list).
_TORCH_NATIVE: frozenset[int] = frozenset(
    _type_nums(
        (np.dtype(t), True)
        for t in (
            *(np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32),
            *(np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128),
        )
    )
)
# Casts torchnp makes for torch.as_tensor/asarray: those where NumPy's rule (torchnp's) and
# torch's give the same values. Not float8/complex32 (torch saturates some overflows where
# ml_dtypes gives NaN), not float/complex -> integer (out-of-range values are each library's
# own), not complex -> real (torch's warning is a UserWarning, NumPy's a ComplexWarning).
_ALIKE = {"b": "biufc", "i": "biufc", "u": "biufc", "f": "bfc", "c": "c"}


def _torch_casts_alike(src: np.dtype, dst: torch.dtype) -> bool:
    target = _NUMPY_OF_TORCH.get(dst)
    if target is None or _is_float8_or_c32(src) or _is_float8_or_c32(target):
        return False
    return _kind(target) in _ALIKE.get(_kind(src), "")


def _kind(dt: np.dtype) -> str:
    return "f" if dt.type.__name__ == "bfloat16" else dt.kind  # ml_dtypes' kind is "V"


def _is_float8_or_c32(dt: np.dtype) -> bool:
    return dt.type.__module__.startswith("ml_dtypes") and dt.type.__name__ != "bfloat16"


_NUMPY_OF_TORCH: dict[torch.dtype, np.dtype] = {
    e.torch: e.numpy for e in _ELEMENT_TYPES if e.torch is not None
}
# torch types whose default NumPy conversion is a view of the same bits (bf16 and float8 as
# ml_dtypes; not complex32, which converts by widening to complex64: a copy).
_VIEWABLE = frozenset(
    e.torch for e in _ELEMENT_TYPES if e.torch is not None and default_numpy_dtype(e) == e.numpy
)


# ---- the patched functions ---------------------------------------------------------------


def numpy(self: torch.Tensor, *, force: bool = False) -> np.ndarray:
    if type(self) is not _TENSOR and has_torch_function_unary(self):
        # A subclass's __torch_function__ sees the call first, as with torch's own numpy.
        return handle_torch_function(torch.Tensor.numpy, (self,), self, force=force)
    if force is False:
        if self.dtype not in _CARRIED:
            # torch's own view, as torch gives it (its errors and messages too).
            return _ORIG_NUMPY(self)
        # What torch refuses for the element type alone (bf16, float8): a shared ml_dtypes
        # view, where every other check torch makes (device, layout, grad in grad mode, the
        # negative bit, ZeroTensors, wrapper subclasses) would pass; else torch's own error.
        # (Not asking torch first: its C++ exception costs ~9 us.)
        if (
            self.dtype in _VIEWABLE
            and self.is_cpu
            and self.layout is _STRIDED
            and not (self.requires_grad and _GRAD_ENABLED())
            and not self.is_neg()
            and not self._is_zerotensor()
            and not _DISPATCH_KEYS(self).has(_PYTHON_KEY)
            and not _is_compiling()
        ):
            return _to_numpy_fn(self, copy=False)
        return _ORIG_NUMPY(self)
    if force is not True:
        return _ORIG_NUMPY(self, force=force)  # torch's TypeError for a non-bool
    if (
        self.layout is not _STRIDED
        or self.is_meta
        or self.is_quantized
        or self.is_nested
        or _DISPATCH_KEYS(self).has(_PYTHON_KEY)
    ):
        return _ORIG_NUMPY(self, force=True)  # what torchnp does not read: torch's own answer
    if self.is_cpu:
        return _to_numpy_fn(self)
    with _transfer.implicit("Tensor.numpy"):
        return _to_numpy_fn(self)


def __array__(self: torch.Tensor, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
    if has_torch_function_unary(self):
        return handle_torch_function(__array__, (self,), self, dtype=dtype, copy=copy)
    if dtype is None and (copy is None or copy is False):
        view = _fast.tensor_view(self)  # to_numpy's own shortcut: torch's view, checked
        if view is not None:
            return view
    if _is_compiling():
        return _originals.tensor_array(self, dtype)
    if dtype is not None and not _holds(dtype):
        # A type torchnp does not write (object, str, datetime, longdouble, structured): the
        # tensor's values as torchnp gives them, then NumPy's own conversion, as torch's
        # __array__ does (.numpy().astype(dtype)); copy as NumPy's protocol says.
        return np.array(__array__(self, None, None), dtype, copy=copy)
    if self.is_cpu:
        return _to_numpy_fn(self, dtype, copy=copy)
    with _transfer.implicit("Tensor.__array__"):
        return _to_numpy_fn(self, dtype, copy=copy)


def _holds(dtype: Any) -> bool:
    """Whether torchnp writes arrays of `dtype`."""
    try:
        parse_dtype(dtype)
    except TypeError:
        return False
    return True


def from_numpy(ndarray: np.ndarray) -> torch.Tensor:
    if type(ndarray) is _NDARRAY and _fast.shareable(ndarray):
        return _ORIG_FROM_NUMPY(ndarray)  # torch and torchnp both share it as it is
    if (
        _readable(ndarray)
        and not _torch_takes(ndarray)
        and not _MODES_ENABLED()
        and not _is_compiling()
    ):
        return _from_numpy_fn(ndarray)  # what torch refuses: torchnp converts it
    return _ORIG_FROM_NUMPY(ndarray)  # torch shares what it takes (read-only, unaligned); errors


def _torch_takes(a: np.ndarray) -> bool:
    """Whether torch.from_numpy accepts `a`: its own checks (a supported type in native byte
    order, strides that are non-negative multiples of the itemsize), made without letting it
    raise (its C++ exception costs ~8 us)."""
    dt = a.dtype
    if dt.num not in _TORCH_NATIVE or not dt.isnative:
        return False
    item = dt.itemsize
    return all(s >= 0 and s % item == 0 for s in a.strides)


def _readable(a: Any) -> bool:
    """Whether `a` is an ndarray whose element type torchnp reads (else torch's own call
    decides)."""
    if not isinstance(a, _NDARRAY):
        return False
    try:
        own, _ = element_type_of_numpy(a.dtype)
    except TypeError:
        return False
    return own.torch is not None


def _device_type(device: Any) -> str:
    return "cpu" if device is None else torch.device(device).type


def _array_to_tensor(a: np.ndarray, dtype: Any, device: Any, copy: bool | None) -> Any:
    """torch.as_tensor/asarray of ndarray `a` (no torch function mode active, so the default
    device is the CPU): torch's own from_numpy where those would share (the same tensor, and
    cheaper than their general argument handling), torchnp's fused copy where they would copy,
    torchnp where torch refuses what torchnp reads; None where torch's own call must decide
    (element types or arguments torchnp does not take, copy=False needing a copy)."""
    own_torch = _TORCH_OF_NUM.get(a.dtype.num)
    where = _device_type(device)
    if copy is not True and (dtype is None or dtype is own_torch) and where == "cpu":
        if _fast.shareable(a) or _torch_takes(a):
            return _ORIG_FROM_NUMPY(a)
        # torch refuses the layout, byte order or type: torchnp's turn
    elif copy is False:
        return None  # torch's own error (a cast or a device always copies)
    if own_torch is None or not (dtype is None or isinstance(dtype, torch.dtype)):
        return None
    if not (where == "cpu" or (where == "cuda" and torch.cuda.is_available())):
        return None  # devices torchnp does not transfer to: torch's own call (and errors)
    try:
        own, _ = element_type_of_numpy(a.dtype)
    except TypeError:
        return None
    if dtype is not None and dtype is not own_torch and not _torch_casts_alike(own.numpy, dtype):
        # A cast whose values torch defines differently from NumPy: torch's own cast, of the
        # array as torch reads it or, where torch cannot read it (ml_dtypes types, negative
        # strides, byte order), as torchnp does.
        if _fast.shareable(a) or _torch_takes(a):
            return None
        return _from_numpy_fn(a).to(dtype=dtype, device=device)
    return _from_numpy_fn(a, dtype, device=device, copy=copy)


def as_tensor(data: Any, *, dtype: torch.dtype | None = None, device: Any = None) -> torch.Tensor:
    if isinstance(data, _NDARRAY) and not (_MODES_ENABLED() or _is_compiling()):
        t = _array_to_tensor(data, dtype, device, None)
        if t is not None:
            return t
    return _ORIG_AS_TENSOR(data, dtype=dtype, device=device)


def asarray(
    obj: Any,
    *,
    dtype: torch.dtype | None = None,
    device: Any = None,
    copy: bool | None = None,
    requires_grad: bool = False,
) -> torch.Tensor:
    if (
        isinstance(obj, _NDARRAY)
        and type(copy) in _COPY_ARGS
        and not (_MODES_ENABLED() or _is_compiling())
    ):
        t = _array_to_tensor(obj, dtype, device, copy)
        if t is not None:
            return t.requires_grad_() if requires_grad else t
    return _ORIG_ASARRAY(obj, dtype=dtype, device=device, copy=copy, requires_grad=requires_grad)


def __eq__(self: torch.Tensor, other: Any) -> Any:
    number = _ML_SCALARS.get(type(other))
    return _ORIG_EQ(self, other if number is None else number(other))


def __ne__(self: torch.Tensor, other: Any) -> Any:
    number = _ML_SCALARS.get(type(other))
    return _ORIG_NE(self, other if number is None else number(other))


def _describe(fn: Any, original: Any, qualname: str, note: str) -> None:
    fn.__qualname__ = qualname
    fn.__doc__ = f"{original.__doc__ or ''}\n\n[torchnp.patch() is active: {note}]"
    fn.__torchnp_original__ = original


_describe(numpy, _ORIG_NUMPY, "Tensor.numpy", "bf16/float8 share an ml_dtypes view")
_describe(__array__, _originals.tensor_array, "Tensor.__array__", "through torchnp.to_numpy")
_describe(from_numpy, _ORIG_FROM_NUMPY, "from_numpy", "what torch refuses is copied")
_describe(as_tensor, _ORIG_AS_TENSOR, "as_tensor", "ndarray inputs through torchnp")
_describe(asarray, _ORIG_ASARRAY, "asarray", "ndarray inputs through torchnp")
_describe(__eq__, _ORIG_EQ, "Tensor.__eq__", "ml_dtypes scalars compare by value")
_describe(__ne__, _ORIG_NE, "Tensor.__ne__", "ml_dtypes scalars compare by value")

_native_ready: set[int] = set()


def _targets() -> tuple[tuple[Any, str, Any], ...]:
    """(owner, attribute, replacement), in the order they are installed. With the native engine
    active, Tensor.numpy, Tensor.__array__ and torch.from_numpy are its one-C-call versions
    (_C.patched_numpy_method, _C.patched_array_method, _C.patched_from_numpy: torch's own call
    for what torch answers as torchnp would, these Python functions for the rest); the Python
    ones otherwise."""
    patched_numpy, patched_from_numpy, patched_array = numpy, from_numpy, __array__
    C = getattr(_engines.active(), "_C", None)
    if C is not None and hasattr(C, "patched_array_method"):
        if id(C) not in _native_ready:
            C.patch_init(_ORIG_FROM_NUMPY, numpy, from_numpy, __array__)
            _native_ready.add(id(C))
        patched_numpy = C.patched_numpy_method(torch.Tensor)
        patched_array = C.patched_array_method(torch.Tensor)
        patched_from_numpy = C.patched_from_numpy
    return (
        (torch.Tensor, "numpy", patched_numpy),
        (torch.Tensor, "__array__", patched_array),
        (torch.Tensor, "__eq__", __eq__),
        (torch.Tensor, "__ne__", __ne__),
        (torch, "from_numpy", patched_from_numpy),
        (torch, "as_tensor", as_tensor),
        (torch, "asarray", asarray),
    )


_MISSING = object()


# ---- installing and removing -------------------------------------------------------------

_lock = threading.RLock()
_holders = 0  # live patch() handles (plus plain calls) keeping the patch installed
_generation = 0  # bumped by unpatch(): handles from before it no longer count
_saved: list[tuple[Any, str, Any, Any, bool]] = []  # (owner, name, ours, before, in constructors)


def _device_constructors() -> set | None:
    """torch's set of factory functions a default device (torch.set_default_device, ``with
    torch.device(...)``) applies to: matched by identity with the function a torch function
    mode is handed, which is whatever ``torch.as_tensor`` names at the call."""
    try:
        from torch.utils._device import _device_constructors

        return _device_constructors()
    except (ImportError, AttributeError, TypeError):
        return None


def _install() -> None:
    constructors = _device_constructors()  # computed (and cached) with torch's own functions
    for owner, name, replacement in _targets():
        before = owner.__dict__.get(name, _MISSING)
        # A default device applies to the patched factory functions as to torch's own.
        default_device = constructors is not None and before in constructors
        _saved.append((owner, name, replacement, before, default_device))
        setattr(owner, name, replacement)
        if default_device:
            constructors.add(replacement)
    _forget_dynamo_tables()


def _forget_dynamo_tables() -> None:
    """dynamo builds its tables of torch's functions (which it models, and how) the first time
    it compiles, from the names torch has then, and caches them. Cleared whenever the names
    change, they are rebuilt from the current ones: while patched, dynamo models the patched
    functions as the torch functions they stand for (torchnp's Python is never traced); after,
    torch's own again. (Code dynamo compiled before guards on these names and recompiles.)"""
    rules = sys.modules.get("torch._dynamo.trace_rules")
    clear = getattr(rules, "clear_lru_cache", None)
    if clear is not None:
        clear()
    variables = sys.modules.get("torch._dynamo.variables.torch")
    in_graph = getattr(variables, "TorchInGraphFunctionVariable", None)
    handlers = getattr(in_graph, "_get_handlers", None)
    if hasattr(handlers, "cache_clear"):
        handlers.cache_clear()


def _uninstall() -> None:
    constructors = _device_constructors()
    for owner, name, ours, before, default_device in reversed(_saved):
        if default_device and constructors is not None:
            constructors.discard(ours)
            constructors.add(before)
        if owner.__dict__.get(name, _MISSING) is not ours:
            warnings.warn(
                f"torchnp.unpatch(): {owner.__name__}.{name} was replaced after "
                "torchnp.patch(); leaving the newer one in place",
                RuntimeWarning,
                stacklevel=3,
            )
            continue
        if before is _MISSING:
            delattr(owner, name)  # inherited again (Tensor.numpy lives on torch._C.TensorBase)
        else:
            setattr(owner, name, before)
    _saved.clear()
    _forget_dynamo_tables()


class patch:
    """Route existing code's torch <-> NumPy conversions through torchnp, process-wide.

    Works as a plain call (``torchnp.patch()``, undone by ``torchnp.unpatch()``) and as a
    context manager (``with torchnp.patch(): ...``, undone on exit). Idempotent and
    thread-safe: nested or repeated patches install once and stay until the last handle is
    closed (or ``unpatch()``). Never active unless asked. See the README's "Drop-in" section
    for exactly what changes.

    Examples
    --------
    >>> import numpy as np, torch, torchnp
    >>> t = torch.tensor([1.5, 2.0], dtype=torch.bfloat16)
    >>> with torchnp.patch():
    ...     np.asarray(t)
    array([1.5, 2], dtype=bfloat16)
    >>> torchnp.is_patched()
    False
    """

    __slots__ = ("_generation", "_open")

    def __init__(self) -> None:
        global _holders
        with _lock:
            if _holders == 0:
                _install()
            _holders += 1
            self._generation = _generation
            self._open = True

    def close(self) -> None:
        """Release this handle: the patch is removed when no other handle holds it."""
        global _holders
        with _lock:
            if not self._open:
                return
            self._open = False
            if self._generation != _generation:
                return  # unpatch() removed the patch since
            _holders -= 1
            if _holders == 0:
                _uninstall()

    def __enter__(self) -> patch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<torchnp.patch {'active' if self._open else 'closed'}>"


def unpatch() -> None:
    """Remove torchnp's patch entirely (every handle of it); a no-op when not patched.

    Examples
    --------
    >>> import torch, torchnp
    >>> torchnp.patch()
    <torchnp.patch active>
    >>> torchnp.unpatch()
    >>> torchnp.is_patched()
    False
    """
    global _holders, _generation
    with _lock:
        if _holders:
            _uninstall()
        _holders = 0
        _generation += 1


def is_patched() -> bool:
    """Whether ``torchnp.patch()`` is active.

    Examples
    --------
    >>> import torchnp
    >>> torchnp.is_patched()
    False
    """
    return _holders > 0
