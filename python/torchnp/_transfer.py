"""Seeing transfers: transfer_log() counts the host <-> device conversions torchnp makes, and
transfer_guard() refuses hidden device -> host ones in a region (JAX's transfer_guard, for torch).

Every device transfer torchnp makes goes through one of two points here (download_call,
upload_call), which the policy calls after it has decided a conversion and before any byte
moves: a guard that refuses raises there, with nothing written. A conversion is *implicit* when
it came through an entry point ``torchnp.patch()`` installed on torch (``Tensor.numpy``,
``Tensor.__array__``, so ``np.asarray(t)`` and anything calling it), *explicit* when the program
called torchnp itself (``to_numpy``, ``tree_to_numpy``, ``from_numpy(device=...)``).

Both contexts are per thread (and per asyncio task): contextvars, read only when a device
transfer is about to happen, so host-only conversions pay nothing.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

GuardLevel = Literal["allow", "log", "disallow", "log_explicit", "disallow_explicit"]
_LEVELS = ("allow", "log", "disallow", "log_explicit", "disallow_explicit")

# The active logs (a tuple: nested logs all record), the guard level, and the patched entry point
# a conversion came through (None: an explicit torchnp call).
_LOGS: contextvars.ContextVar[tuple[TransferLog, ...]] = contextvars.ContextVar(
    "torchnp_transfer_logs", default=()
)
_GUARD: contextvars.ContextVar[str] = contextvars.ContextVar(
    "torchnp_transfer_guard", default="allow"
)
_IMPLICIT: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "torchnp_implicit_entry", default=None
)


class TransferGuardError(RuntimeError):
    """A device -> host conversion that transfer_guard('disallow') (or 'disallow_explicit')
    refuses in this region."""


@dataclass(frozen=True)
class TransferRecord:
    """One host <-> device conversion torchnp made.

    Attributes
    ----------
    direction : {'device_to_host', 'host_to_device'}
    device : str
        The device side of the transfer, e.g. ``'cuda:0'``.
    nbytes : int
        Bytes moved across (the device side's bytes).
    seconds : float
        Wall time of the transfer, cast and layout change included.
    synced : bool
        Whether the calling thread waited for the device (every transfer torchnp makes today
        does: torch's blocking copies).
    implicit : bool
        True when it came through a patched torch entry point, not a torchnp call.
    entry : str
        The function the program called (``'to_numpy'``, ``'Tensor.__array__'``, ...).
    site : str
        The first frame outside torchnp and torch: ``'file:line in function'``.
    """

    direction: str
    device: str
    nbytes: int
    seconds: float
    synced: bool
    implicit: bool
    entry: str
    site: str


@dataclass
class TransferLog:
    """What ``transfer_log()`` yields: the transfers made while it was active, in order."""

    transfers: list[TransferRecord] = field(default_factory=list)

    @property
    def count(self) -> int:
        """Number of transfers."""
        return len(self.transfers)

    @property
    def nbytes(self) -> int:
        """Bytes moved, both directions."""
        return sum(t.nbytes for t in self.transfers)

    @property
    def seconds(self) -> float:
        """Time spent in transfers."""
        return sum(t.seconds for t in self.transfers)

    @property
    def syncs(self) -> int:
        """Transfers during which the calling thread waited for the device."""
        return sum(t.synced for t in self.transfers)

    def summary(self) -> str:
        """One line per call site: count, bytes, time, syncs."""
        by_site: dict[tuple[str, str], list[TransferRecord]] = {}
        for t in self.transfers:
            by_site.setdefault((t.direction, t.site), []).append(t)
        lines = [f"{self.count} transfers, {self.nbytes} bytes, {self.seconds * 1e3:.3f} ms"]
        for (direction, site), ts in by_site.items():
            lines.append(
                f"  {direction:14} {len(ts):5}x {sum(t.nbytes for t in ts):>12} B "
                f"{sum(t.seconds for t in ts) * 1e3:9.3f} ms  {site}"
            )
        return "\n".join(lines)


@contextlib.contextmanager
def transfer_log() -> Iterator[TransferLog]:
    """Record every host <-> device conversion torchnp makes in this block (this thread).

    Sees torchnp's own calls, and, with ``torchnp.patch()`` on, ``Tensor.numpy(force=True)``
    and ``Tensor.__array__`` (``np.asarray(t)``, matplotlib, pandas, ...). It cannot see
    transfers torch makes by itself: ``.cpu()``, ``.to()``, ``.item()``, ``.tolist()``,
    ``print(t)``; for those use ``torch.cuda.set_sync_debug_mode('warn')`` (or
    ``transfer_guard(..., sync_debug=True)``) on a CUDA machine.

    Yields
    ------
    TransferLog
        Filled in as the block runs: ``.transfers``, ``.count``, ``.nbytes``, ``.seconds``,
        ``.summary()``.

    Examples
    --------
    >>> import torch, torchnp
    >>> with torchnp.transfer_log() as log:
    ...     _ = torchnp.to_numpy(torch.ones(3))  # a host tensor: no transfer
    >>> log.count
    0
    """
    log = TransferLog()
    token = _LOGS.set((*_LOGS.get(), log))
    try:
        yield log
    finally:
        _LOGS.reset(token)


@contextlib.contextmanager
def transfer_guard(level: GuardLevel, *, sync_debug: bool = False) -> Iterator[None]:
    """Allow, log or refuse device -> host conversions in this block (this thread).

    Parameters
    ----------
    level : {'allow', 'log', 'disallow', 'log_explicit', 'disallow_explicit'}
        As in JAX. 'disallow' raises TransferGuardError on *implicit* device -> host conversions
        (through the entry points ``torchnp.patch()`` installs: ``t.numpy(force=True)``,
        ``np.asarray(t)``); 'log' prints each one to stderr instead. The ``_explicit`` levels
        also cover explicit torchnp calls (``to_numpy`` of a device tensor). The check runs
        before any byte moves: a refused conversion writes nothing.
    sync_debug : bool, optional
        Also set ``torch.cuda.set_sync_debug_mode`` ('error' for the disallow levels, 'warn'
        for the log levels) while the block runs, so torch's own synchronising calls
        (``.cpu()``, ``.item()``, ``print(t)``) are caught too. That mode is process-wide and
        covers every synchronising CUDA call; ignored where CUDA is unavailable.

    Examples
    --------
    >>> import torch, torchnp
    >>> with torchnp.transfer_guard("disallow"):
    ...     torchnp.to_numpy(torch.ones(2))  # host memory: allowed
    array([1., 1.], dtype=float32)
    """
    if level not in _LEVELS:
        raise ValueError(f"transfer_guard level must be one of {', '.join(_LEVELS)}; got {level!r}")
    token = _GUARD.set(level)
    restore: Any = None
    if sync_debug and level != "allow" and torch.cuda.is_available():
        restore = torch.cuda.get_sync_debug_mode()
        torch.cuda.set_sync_debug_mode("error" if level.startswith("disallow") else "warn")
    try:
        yield
    finally:
        if restore is not None:
            torch.cuda.set_sync_debug_mode(restore)
        _GUARD.reset(token)


@contextlib.contextmanager
def implicit(entry: str) -> Iterator[None]:
    """Mark the conversions in this block as coming through patched entry point `entry`."""
    token = _IMPLICIT.set(entry)
    try:
        yield
    finally:
        _IMPLICIT.reset(token)


_SKIPPED = ("torchnp", "torch", "numpy", "contextlib")


def _site() -> tuple[str, str]:
    """The torchnp function the program called (the outermost torchnp frame), and the first
    frame outside torchnp, torch, NumPy and contextlib: where the program asked."""
    frame = sys._getframe(1)
    entry = "?"
    while frame is not None:
        top = frame.f_globals.get("__name__", "").partition(".")[0]
        code = frame.f_code
        if top not in _SKIPPED:
            return entry, f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"
        if top == "torchnp":
            entry = code.co_name
        frame = frame.f_back
    return entry, "<unknown>"


def _checked(direction: str, device: torch.device, nbytes: int) -> Callable | None:
    """Apply the guard to a transfer about to happen; a recorder for it when a log is active or
    the level says to log, else None."""
    level = _GUARD.get()
    logs = _LOGS.get()
    if level == "allow" and not logs:
        return None
    implicit_entry = _IMPLICIT.get()
    is_implicit = implicit_entry is not None
    covered = direction == "device_to_host" and (is_implicit or level.endswith("_explicit"))
    entry, site = _site()
    name = implicit_entry or entry
    if covered and level.startswith("disallow"):
        kind = "implicit" if is_implicit else "explicit"
        raise TransferGuardError(
            f"transfer_guard({level!r}) refuses an {kind} device -> host conversion of "
            f"{nbytes} bytes from {device} ({name} at {site}); convert outside the region, or "
            "relax the guard with torchnp.transfer_guard('allow')"
        )
    log_it = covered and level.startswith("log")

    def record(seconds: float) -> None:
        t = TransferRecord(direction, str(device), nbytes, seconds, True, is_implicit, name, site)
        for log in logs:
            log.transfers.append(t)
        if log_it:
            print(
                f"torchnp transfer_guard: {direction} {nbytes} B from {device} ({name} at {site})",
                file=sys.stderr,
            )

    return record


def _timed(run: Callable[[], None], record: Callable | None) -> Callable[[], None]:
    if record is None:
        return run

    def timed() -> None:
        start = time.perf_counter()
        run()
        record(time.perf_counter() - start)

    return timed


class Download:
    """A device -> host copy decided and checked against the guard (before anything is written),
    to run (and be logged) when called, alone or batched with others (run_downloads)."""

    __slots__ = ("engine", "nbytes", "negate", "out", "record", "src")

    def __init__(self, engine: Any, out: np.ndarray, src: torch.Tensor, negate: int) -> None:
        self.engine, self.out, self.src, self.negate = engine, out, src, negate
        self.nbytes = src.numel() * src.element_size()
        self.record = _checked("device_to_host", src.device, self.nbytes)

    def __call__(self) -> None:
        _timed(lambda: self.engine.download(self.out, self.src, self.negate), self.record)()


def download_call(engine: Any, out: np.ndarray, src: torch.Tensor, negate: int) -> Download:
    """The download of device tensor `src` into `out`, checked against the guard now (before
    anything is written), to run (and be logged) when called."""
    return Download(engine, out, src, negate)


class Upload:
    """A host -> device copy decided (and checked), to run (and be logged) when called, alone
    or batched with others (run_uploads)."""

    __slots__ = ("dst", "engine", "nbytes", "record", "src")

    def __init__(self, engine: Any, dst: torch.Tensor, src: np.ndarray) -> None:
        self.engine, self.dst, self.src = engine, dst, src
        self.nbytes = dst.numel() * dst.element_size()
        self.record = _checked("host_to_device", dst.device, self.nbytes)

    def __call__(self) -> None:
        _timed(lambda: self.engine.upload(self.dst, self.src), self.record)()


def upload_call(engine: Any, dst: torch.Tensor, src: np.ndarray) -> Upload:
    """The upload of host array `src` into device tensor `dst`, to run (and be logged) when
    called."""
    return Upload(engine, dst, src)


def run_deferred(downloads: list[Download], uploads: list[Upload]) -> None:
    """Run deferred device transfers, those of one engine as one batch per direction
    (Engine.download_many / upload_many: the native engine enqueues every tensor of a device
    before it waits); each is logged with its share of its batch's time, by bytes."""
    for items, run in ((downloads, "download_many"), (uploads, "upload_many")):
        by_engine: dict[int, list] = {}
        for d in items:
            by_engine.setdefault(id(d.engine), []).append(d)
        for batch in by_engine.values():
            start = time.perf_counter()
            if run == "download_many":
                batch[0].engine.download_many([(d.out, d.src, d.negate) for d in batch])
            else:
                batch[0].engine.upload_many([(d.dst, d.src) for d in batch])
            seconds = time.perf_counter() - start
            total = sum(d.nbytes for d in batch) or 1
            for d in batch:
                if d.record is not None:
                    d.record(seconds * d.nbytes / total)
