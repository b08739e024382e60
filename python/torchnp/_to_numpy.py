"""torchnp.to_numpy: the policy for tensor -> ndarray."""

from __future__ import annotations

import numpy as np
import torch

from torchnp import _device, _engines, _fast, _policy, _transfer
from torchnp._dtypes import (
    DTypeLike,
    default_numpy_dtype,
    element_type_of_torch,
    parse_dtype,
)
from torchnp._engines import Negate
from torchnp._memory import check_storage, empty_in_order, numpy_view_of_tensor

# Types Tensor.numpy() returns as themselves (bits and NumPy type unchanged).
_COMPLEX = frozenset((torch.complex32, torch.complex64, torch.complex128))
_NUMPY_NATIVE = frozenset(
    (
        *(torch.bool, torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8),
        *(torch.uint16, torch.uint32, torch.uint64, torch.float16, torch.float32),
        *(torch.float64, torch.complex64, torch.complex128),
    )
)


_IS_FUNCTORCH_WRAPPED = getattr(
    getattr(torch._C, "_functorch", None), "is_functorch_wrapped_tensor", None
)


# Bound once (module globals are the cheapest lookups).
_TENSOR = torch.Tensor
_NDARRAY = np.ndarray
_COPY_TYPES = _fast.COPY_TYPES


# Lazy modules' parameters and buffers before their first forward pass (their as_subclass view
# would be an empty tensor).
_UNINITIALIZED = torch.nn.parameter.UninitializedTensorMixin


def _is_functorch_wrapped(t: torch.Tensor) -> bool:
    return bool(_IS_FUNCTORCH_WRAPPED is not None and _IS_FUNCTORCH_WRAPPED(t))


def _readable(tensor: object) -> torch.Tensor:
    """The tensor as a plain strided torch.Tensor, or TypeError saying what would work."""
    if (
        type(tensor) is torch.Tensor
        and tensor.is_cpu  # not meta
        and tensor.layout is torch.strided
        and not (tensor.is_nested or tensor.is_quantized or _is_functorch_wrapped(tensor))
    ):
        # The common case, each refusal below ruled out. (detach() costs ~0.6 us and only
        # matters to a tensor that requires grad: .numpy() refuses those.)
        return tensor.detach() if tensor.requires_grad else tensor
    if not isinstance(tensor, torch.Tensor):
        raise TypeError(
            f"to_numpy expects a torch.Tensor, got {type(tensor).__name__}; "
            "for other objects use numpy.asarray"
        )
    if tensor.is_nested:
        raise TypeError(
            "to_numpy cannot read a nested tensor; convert it first with "
            ".to_padded_tensor(padding) or convert each of .unbind()"
        )
    if tensor.is_quantized:
        raise TypeError(
            "to_numpy cannot read a quantized tensor; use .dequantize() for values or "
            ".int_repr() for the stored integers"
        )
    if tensor.layout != torch.strided:
        raise TypeError(
            f"to_numpy cannot read a {tensor.layout} tensor; convert it with .to_dense()"
        )
    if tensor.device.type == "meta":
        raise TypeError(
            "to_numpy cannot read a meta tensor: it has no data; materialise it first "
            "(e.g. module.to_empty(device='cpu') and load the weights)"
        )
    if _is_functorch_wrapped(tensor):
        raise TypeError(
            "to_numpy cannot read a tensor inside torch.func transforms (vmap/grad/jvp/"
            "functionalize): it has no memory of its own; convert the transform's result "
            "outside the transform"
        )
    if isinstance(tensor, _UNINITIALIZED):
        raise ValueError(
            f"to_numpy cannot read an uninitialized {type(tensor).__name__}: a lazy module's "
            "parameters and buffers get their shape and memory on the module's first forward "
            "pass; call the module on a dummy batch first"
        )
    if type(tensor) is not torch.Tensor:
        if torch._C._dispatch_keys(tensor).has(torch._C.DispatchKey.Python):
            raise TypeError(
                f"to_numpy cannot read a {type(tensor).__name__}: it is a tensor subclass with its "
                "own __torch_dispatch__ and no memory torchnp can read; convert it to a plain "
                "torch.Tensor first (e.g. DTensor.full_tensor())"
            )
        tensor = tensor.as_subclass(torch.Tensor)
    return tensor.detach()


class _Source:
    """What the policy needs to know about a readable tensor, read off it once.

    A plain class with slots: this is built on every copying call, where a frozen dataclass or
    an enum would cost microseconds of a small call's budget.
    """

    __slots__ = ("conj", "element", "neg", "negate", "on_cpu", "plain", "shape", "tensor")

    def __init__(self, t: torch.Tensor) -> None:
        conj, neg = t.is_conj(), t.is_neg()
        plain = t.conj() if conj else t  # a view of the same memory without the bit
        plain = torch._neg_view(plain) if neg else plain  # the only way to drop the neg bit
        element = element_type_of_torch(t.dtype)
        if neg and element.name == "bool":
            raise TypeError(
                "to_numpy cannot resolve the negative bit of a bool tensor: bools have no "
                "negation (torch's resolve_neg refuses it too); drop the bit with "
                "torch._neg_view(t) if its values are what you want"
            )
        self.tensor = t
        self.plain = plain  # what an engine reads
        self.element = element
        self.shape = tuple(t.shape)
        self.on_cpu = t.is_cpu
        self.conj = conj
        self.neg = neg
        # The sign flips that resolve the bits (a Negate code): neg both parts, conj the
        # imaginary one.
        self.negate = (Negate.BOTH if neg else 0) ^ (Negate.IMAG if conj else 0)

    @property
    def strides(self) -> list[int]:
        """Byte strides (only copies into a fresh result and order 'F'/'A' ask)."""
        itemsize = self.element.numpy.itemsize
        return [s * itemsize for s in self.tensor.stride()]

    def layout_fits(self, order: str) -> bool:
        if order == "C":
            return self.tensor.is_contiguous()  # torch, like NumPy, ignores size-1 dims' strides
        if order == "F":
            itemsize = self.element.numpy.itemsize
            return _policy.is_contiguous(self.shape, self.strides, itemsize, True)
        return True

    def shareable(self, target: np.dtype, order: str) -> bool:
        """Whether a view of the tensor's memory is the answer."""
        return (
            self.on_cpu
            and not (self.conj or self.neg)
            and self.element.numpy == target
            and self.layout_fits(order)
        )

    def copy_reasons(self, target: np.dtype, order: str) -> list[str]:
        """Why shareable() is False, in words, for copy=False's error."""
        reasons = []
        if not self.on_cpu:
            reasons.append(f"on {self.plain.device}")
        if self.conj:
            reasons.append("conjugate bit set")
        if self.neg:
            reasons.append("negative bit set")
        if self.element.numpy != target:
            reasons.append(f"dtype {self.element.name} → {target} needs a cast")
        if order in ("C", "F") and not self.layout_fits(order):
            reasons.append(f"order={order!r} but the tensor is not {order}-contiguous")
        return reasons

    def order_of_copy(self, order: str) -> str:
        """'A' resolved the way NumPy does: F for an F-contiguous, non-C-contiguous tensor."""
        if order != "A":
            return order
        f_only = self.layout_fits("F") and not self.layout_fits("C")
        return "F" if f_only else "C"


def _check_out(out: object, shape: tuple[int, ...], dtype: np.dtype | None) -> np.ndarray:
    if not isinstance(out, np.ndarray):
        raise TypeError(f"out must be a numpy.ndarray, got {type(out).__name__}")
    if not out.flags.writeable:
        raise ValueError("out is read-only; pass a writable array (e.g. np.empty_like(out))")
    if out.shape != shape:
        raise ValueError(f"out has shape {out.shape}, but the tensor has shape {shape}")
    try:
        parse_dtype(out.dtype)
    except TypeError as exc:
        why = str(exc).removeprefix("torchnp: ")
        raise TypeError(f"out.dtype {out.dtype} cannot be written by torchnp: {why}") from None
    if dtype is not None and dtype != out.dtype:
        raise TypeError(f"dtype={dtype} conflicts with out.dtype={out.dtype}; pass one of them")
    return out


def to_numpy(
    tensor: torch.Tensor,
    dtype: DTypeLike | None = None,
    *,
    copy: bool | None = None,
    order: str = "K",
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Convert a tensor to a NumPy array, sharing memory when possible.

    Works for any readable tensor: ``requires_grad`` (detached), conjugate/negative bits
    (resolved), CUDA or other devices (copied to host), non-contiguous and offset views,
    bfloat16/float8 (as ml_dtypes arrays, bits unchanged), complex32 (widened to complex64).

    Parameters
    ----------
    tensor : torch.Tensor
        The tensor to convert.
    dtype : data-type or torch.dtype, optional
        Element type of the result. The cast is fused into the copy and gives exactly
        ``ref.astype(dtype)`` where ``ref`` is the exact NumPy view of the tensor.
    copy : bool, optional
        None (default): share memory when possible. True: always return a fresh array whose
        memory nothing else uses. False: never copy; raise ValueError listing every reason a
        copy is needed.
    order : {'K', 'A', 'C', 'F'}, optional
        Memory layout of a copy, as in NumPy. 'K' keeps the tensor's dimension order.
    out : numpy.ndarray, optional
        Writable array of the tensor's shape to write into (any strides, any supported dtype;
        the cast goes to ``out.dtype``). It may overlap the tensor's memory.

    Returns
    -------
    numpy.ndarray
        ``out`` if given; else a view of the tensor's memory or a fresh array.

    Examples
    --------
    >>> import torch, torchnp
    >>> t = torch.arange(6.0, requires_grad=True).reshape(2, 3)
    >>> torchnp.to_numpy(t.T, dtype="f2", order="C")
    array([[0., 3.],
           [1., 4.],
           [2., 5.]], dtype=float16)
    """
    # The memo is keyed by `copy` as passed, and 1 == True: only the values the policy accepts
    # may look it up (it refuses copy=1).
    if type(tensor) is _TENSOR and type(out) is _NDARRAY and type(copy) in _COPY_TYPES:
        # out=: a signature the policy has decided before, replayed (_fast).
        result = _fast.to_numpy_out(tensor, dtype, copy, order, out)
        if result is not None:
            return result
    elif type(tensor) is _TENSOR and out is None:
        if dtype is None and copy is None and order == "K":
            # The commonest call: a view of a plain CPU tensor, which torch's own .numpy()
            # gives as it is. Whatever it refuses (bits, devices, grad, layouts, types NumPy
            # lacks) or gives over memory the storage no longer holds goes to the policy
            # below, which says why or converts it another way.
            view = _fast.tensor_view(tensor)
            if view is not None:
                return view
            # Refused (a type torch has no NumPy view of, such as bf16; grad; bits; devices):
            # the memoised decision for this signature, if the policy made one.
            result = _fast.to_numpy(tensor, None, None, "K")
            if result is not None:
                return result
        elif type(copy) in _COPY_TYPES:
            # A signature the policy has decided before: its decision, replayed (_fast).
            result = _fast.to_numpy(tensor, dtype, copy, order)
            if result is not None:
                return result
    return convert(tensor, dtype, copy, order, out, None)


def convert(
    tensor: torch.Tensor,
    dtype: DTypeLike | None,
    copy: bool | None,
    order: str,
    out: np.ndarray | None,
    deferred: list | None,
) -> np.ndarray:
    """to_numpy's policy (after its fast path). With `deferred` (a list), a host copy is not run
    but appended to it as ``(dst, src, negate)``, for the caller to run with the others in one
    job (Engine.copy_many), and a device transfer as a callable; the result is then written only
    once those have run."""
    t = _readable(tensor)
    signature = (dtype, copy, order)  # as passed: the fast path's memo key
    order = _policy.check_order(order)
    copy = _policy.check_copy(copy)
    memoisable = type(tensor) is torch.Tensor and copy is not False
    memoisable = memoisable and (out is None or type(out) is np.ndarray)
    if t._is_zerotensor():  # autograd's memory-less zeros: materialise them, as force=True does
        if copy is False:
            raise _policy.copy_refusal(
                "this tensor",
                ["it is a ZeroTensor, with no memory to share"],
                "Pass copy=None or copy=True to get its zeros.",
            )
        # One zero, broadcast: the engine writes the result (cast like any other source).
        t = torch.zeros((), dtype=t.dtype, device=t.device).expand(t.shape)
        copy = True  # a broadcast view is never the answer
        memoisable = False
    requested = parse_dtype(dtype) if dtype is not None else None
    source = _Source(t)  # raises TypeError for dtypes NumPy cannot hold
    stored = source.element.numpy

    if out is not None:
        out = _check_out(out, source.shape, requested)
        if copy is False:
            raise ValueError("copy=False cannot be combined with out=: writing to out is a copy")
        target = out.dtype
    elif requested is not None:
        target = requested
    else:
        target = default_numpy_dtype(source.element)
    _policy.check_cast(stored, target)
    engine = _engines.active()
    # A CPU tensor crosses a simulated link while _device.simulated() is active (tests).
    on_cpu = source.on_cpu and not _device.SIMULATING
    # Nothing in this decision needs judgment a replay cannot make (no bits, no device, no error
    # to explain, no warning to emit): the fast path may replay it for this signature.
    if (
        memoisable
        and on_cpu
        and not (source.conj or source.neg)
        and not _policy.discards_imaginary(stored, target)
    ):
        key = (t.dtype, _fast.arg_key(signature[0]), *signature[1:])
        if out is None:
            share = copy is not True and stored == target
            _fast.remember_to_numpy(engine, key, source.element, target, share, order)
        else:
            _fast.remember_to_numpy_out(engine, (*key, target), source.element)
    if out is None and copy is not True and on_cpu and source.shareable(target, order):
        return numpy_view_of_tensor(t)
    if copy is False:
        raise _policy.copy_refusal(
            "this tensor",
            source.copy_reasons(target, order),
            "Pass copy=None to allow a copy, or copy=True to force one.",
        )
    _policy.warn_if_discarding_imaginary(stored, target)

    if out is None:
        order = source.order_of_copy(order)
        strides = source.strides if order == "K" else None
        out = empty_in_order(source.shape, strides, target, order)
        may_overlap = False
    else:
        may_overlap = True
    if on_cpu:
        view = numpy_view_of_tensor(source.plain)
        if deferred is None:
            engine.copy(out, view, source.negate, may_overlap=may_overlap)
        else:
            if may_overlap and np.may_share_memory(out, view):
                staged = np.empty_like(view, order="K")  # read now, written with the others
                engine.copy(staged, view)
                view = staged
            deferred.append((out, view, source.negate))
    else:
        if source.plain.device.type == "cuda":  # a read of freed device memory faults
            check_storage(source.plain)
        # Checked against transfer_guard now (a refusal writes nothing), logged as it runs.
        download = _transfer.download_call(engine, out, source.plain, source.negate)
        if deferred is None:
            download()
        else:  # a transfer for the caller to run after every leaf has been decided
            deferred.append(download)
    return out
