"""Conversions that run in the background: to_numpy_async, from_numpy_async and their handle.

The policy runs in the caller, so every error the plain function would raise (bad arguments, a
refused copy, transfer_guard) raises at the call, and nothing is written then. The byte moving
(host copies, device transfers) runs on torchnp's transfer threads; the handle returns the
result once it is all written, and keeps the source (and ``out``) alive until then.
"""

from __future__ import annotations

import concurrent.futures
import threading
from typing import Any

import numpy as np
import torch
from numpy.typing import DTypeLike

from torchnp import _from_numpy, _to_numpy
from torchnp._tree import _run  # the deferred work of a call: host copies, then transfers

_WORKERS = 2  # transfers in flight at once; more queue (each uses the core's threads)
_EXECUTOR: concurrent.futures.ThreadPoolExecutor | None = None
_EXECUTOR_LOCK = threading.Lock()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _EXECUTOR
    if _EXECUTOR is None:
        with _EXECUTOR_LOCK:
            if _EXECUTOR is None:
                _EXECUTOR = concurrent.futures.ThreadPoolExecutor(
                    _WORKERS, thread_name_prefix="torchnp-transfer"
                )
    return _EXECUTOR


class Transfer(concurrent.futures.Future):
    """A conversion in flight: a ``concurrent.futures.Future`` of its result.

    ``done()``, ``result(timeout=None)``, ``exception()``, ``add_done_callback()`` and
    ``concurrent.futures.wait`` / ``as_completed`` work as for any future; ``wait(timeout)``
    blocks until it is done. It keeps the source and ``out`` alive until then. Do not write the
    source, or read the result's memory (or ``out``), before it is done.

    Examples
    --------
    >>> import torch, torchnp
    >>> h = torchnp.to_numpy_async(torch.arange(3.0), copy=True)
    >>> h.wait(timeout=10)
    True
    >>> h.result()
    array([0., 1., 2.], dtype=float32)
    """

    def __init__(self) -> None:
        super().__init__()
        self._keep: tuple = ()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the transfer is done (or `timeout` seconds passed); whether it is."""
        concurrent.futures.wait([self], timeout=timeout)
        return self.done()

    def __repr__(self) -> str:
        state = "done" if self.done() else "running"
        return f"<torchnp.Transfer {state}>"


def _start(result: Any, deferred: list, keep: tuple, ordering: tuple | None) -> Transfer:
    handle = Transfer()
    if not deferred:  # nothing to move (a shared view, an empty result)
        handle.set_running_or_notify_cancel()
        handle.set_result(result)
        return handle
    handle._keep = keep

    def work() -> None:
        if not handle.set_running_or_notify_cancel():
            handle._keep = ()
            return
        try:
            if ordering is None:
                _run(deferred)
            else:
                _run_on_device(deferred, *ordering)
        except BaseException as exc:
            handle.set_exception(exc)
        else:
            handle.set_result(result)
        finally:
            handle._keep = ()

    _executor().submit(work)
    return handle


def _ordering(device: torch.device | None) -> tuple | None:
    """For a CUDA transfer: the caller's current stream, and an event recorded on it now, so
    the copies wait for the work queued before the call and not for what the caller queues
    after it."""
    if device is None or device.type != "cuda":
        return None
    stream = torch.cuda.current_stream(device)
    event = torch.cuda.Event()
    event.record(stream)
    return stream, event


def _run_on_device(deferred: list, stream: Any, event: Any) -> None:
    # A stream of the worker's own that waits for the call-time event; the device guard keeps
    # the worker thread's current device (and so no context on another GPU) as it was.
    with torch.cuda.device(stream.device):
        side = torch.cuda.Stream(stream.device)
        side.wait_event(event)
        with torch.cuda.stream(side):
            _run(deferred)
        # What the transfer queued on the device (an upload's widening cast) before the
        # caller's stream uses the result.
        stream.wait_stream(side)


def to_numpy_async(
    tensor: torch.Tensor,
    dtype: DTypeLike | None = None,
    *,
    copy: bool | None = None,
    order: str = "K",
    out: np.ndarray | None = None,
) -> Transfer:
    """Start ``torchnp.to_numpy(tensor, ...)`` in the background; a handle to its result.

    Same parameters and result as :func:`torchnp.to_numpy`. Errors in the arguments raise now;
    errors while moving bytes (a device fault) come from ``result()``. A CUDA tensor's read is
    ordered after the work queued on the current stream before this call (an event recorded
    now; later work does not delay it), without a device-wide wait.

    Returns
    -------
    Transfer
        A ``concurrent.futures.Future`` of the ndarray (``out`` itself when given).

    Examples
    --------
    >>> import torch, torchnp
    >>> h = torchnp.to_numpy_async(torch.ones(2, 3), order="F")
    >>> h.result().flags.f_contiguous
    True
    """
    deferred: list = []
    t = tensor
    result = _to_numpy.convert(t, dtype, copy, order, out, deferred)
    device = t.device if isinstance(t, torch.Tensor) else None
    return _start(result, deferred, (tensor, out), _ordering(device))


def from_numpy_async(
    array: Any,
    dtype: DTypeLike | None = None,
    *,
    device: str | torch.device | None = None,
    copy: bool | None = None,
    pin_memory: bool = False,
    share_readonly: bool = False,
) -> Transfer:
    """Start ``torchnp.from_numpy(array, ...)`` in the background; a handle to its result.

    Same parameters and result as :func:`torchnp.from_numpy`. On a CUDA device the result is
    ready for the current stream (work queued on it after the handle is done sees the data).

    Returns
    -------
    Transfer
        A ``concurrent.futures.Future`` of the tensor.

    Examples
    --------
    >>> import numpy as np, torchnp
    >>> h = torchnp.from_numpy_async(np.arange(4)[::-1])
    >>> h.result()
    tensor([3, 2, 1, 0])
    """
    deferred: list = []
    result = _from_numpy.convert(array, dtype, device, copy, pin_memory, share_readonly, deferred)
    return _start(result, deferred, (array,), _ordering(result.device))
