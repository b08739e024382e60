"""transfer_log() and transfer_guard(): seeing host <-> device conversions.

The guard and the log sit at the two points every device transfer torchnp makes goes through
(_transfer.download_call / upload_call). Without a GPU the transfers themselves cannot run, so
the points are driven directly with a recording engine (the logic under test is theirs: which
conversions are refused, that a refused one writes nothing, what is logged and where); the
tests marked cuda run the real conversions where a GPU exists.
"""

from __future__ import annotations

import sys
import threading

import numpy as np
import pytest
import torch

import torchnp
from torchnp import _transfer

CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


class _Recorder:
    """An engine whose transfers are host copies, recording what it was asked to move."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def download(self, out: np.ndarray, src: torch.Tensor, negate: int) -> None:
        self.calls.append("download")
        np.copyto(out, src.numpy())

    def upload(self, dst: torch.Tensor, src: np.ndarray) -> None:
        self.calls.append("upload")
        dst.copy_(torch.from_numpy(src))


def _download(engine: _Recorder, src: torch.Tensor, out: np.ndarray) -> None:
    _transfer.download_call(engine, out, src, 0)()


# ---- host conversions are not transfers --------------------------------------------------


def test_host_conversions_log_nothing_and_pass_every_guard():
    t = torch.arange(12.0).reshape(3, 4)
    with torchnp.transfer_log() as log, torchnp.transfer_guard("disallow_explicit"):
        torchnp.to_numpy(t)
        torchnp.to_numpy(t.T, dtype=np.float16)
        torchnp.from_numpy(np.arange(4.0)[::-1])
        torchnp.tree_to_numpy({"w": t, "b": [t[0]]})
        with torchnp.patch():
            np.asarray(t)
            t.numpy(force=True)
            torch.from_numpy(np.arange(3.0))
    assert log.count == 0 and log.nbytes == 0 and log.transfers == []
    assert log.summary().startswith("0 transfers")


def test_bad_level_is_refused():
    with (
        pytest.raises(ValueError, match="transfer_guard level must be one of"),
        torchnp.transfer_guard("forbid"),  # type: ignore[arg-type]
    ):
        pass


# ---- the transfer points -----------------------------------------------------------------


def test_disallow_refuses_implicit_downloads_before_any_byte_moves():
    engine = _Recorder()
    src = torch.arange(6.0)
    out = np.full(6, -1.0, np.float32)
    with torchnp.transfer_guard("disallow"):
        with (
            _transfer.implicit("Tensor.__array__"),
            pytest.raises(torchnp.TransferGuardError) as info,
        ):
            _download(engine, src, out)
        _download(engine, src, out)  # explicit (a torchnp call): allowed at this level
    message = str(info.value)
    assert "implicit device -> host" in message and "24 bytes" in message
    assert "Tensor.__array__" in message and "test_transfer.py" in message
    assert engine.calls == ["download"]  # only the allowed one ran
    np.testing.assert_array_equal(out, np.arange(6.0))


def test_disallow_explicit_refuses_every_download_but_no_upload():
    engine = _Recorder()
    out = np.zeros(3)
    with torchnp.transfer_guard("disallow_explicit"):
        with pytest.raises(torchnp.TransferGuardError, match="explicit device -> host"):
            _download(engine, torch.ones(3, dtype=torch.float64), out)
        dst = torch.empty(3)
        _transfer.upload_call(engine, dst, np.arange(3.0))()
    assert engine.calls == ["upload"]
    assert (out == 0).all() and dst.tolist() == [0.0, 1.0, 2.0]


def test_log_records_count_bytes_time_sync_and_site():
    engine = _Recorder()
    with torchnp.transfer_log() as outer:
        with torchnp.transfer_log() as inner:  # nested logs both record
            _download(engine, torch.ones(4, 5), np.empty((4, 5), np.float32))
            with _transfer.implicit("Tensor.numpy"):
                _download(engine, torch.ones(2, dtype=torch.float64), np.empty(2))
        _transfer.upload_call(engine, torch.empty(8, dtype=torch.int16), np.ones(8, np.int16))()
    assert inner.count == 2 and outer.count == 3
    first, second = inner.transfers
    assert (first.direction, first.nbytes, first.implicit) == ("device_to_host", 80, False)
    assert (second.nbytes, second.implicit, second.entry) == (16, True, "Tensor.numpy")
    assert first.entry == "download_call"  # the outermost torchnp function called
    assert all(t.synced and t.seconds >= 0 for t in outer.transfers)
    assert all("test_transfer.py" in t.site for t in outer.transfers)
    up = outer.transfers[2]
    assert (up.direction, up.nbytes, up.device) == ("host_to_device", 16, "cpu")
    assert outer.nbytes == 80 + 16 + 16 and outer.syncs == 3
    summary = outer.summary()
    assert summary.startswith("3 transfers, 112 bytes") and "host_to_device" in summary


def test_log_level_prints_implicit_transfers(capsys):
    engine = _Recorder()
    with torchnp.transfer_guard("log"):
        _download(engine, torch.ones(2), np.empty(2, np.float32))  # explicit: not printed
        with _transfer.implicit("Tensor.__array__"):
            _download(engine, torch.ones(2), np.empty(2, np.float32))
    err = capsys.readouterr().err
    assert err.count("torchnp transfer_guard:") == 1 and "Tensor.__array__" in err
    assert engine.calls == ["download", "download"]


def test_guards_and_logs_are_per_thread():
    engine = _Recorder()
    seen: list[object] = []

    def other() -> None:
        try:  # this thread has no guard and no log
            _download(engine, torch.ones(2), np.empty(2, np.float32))
            seen.append("ran")
        except BaseException as exc:
            seen.append(exc)

    with torchnp.transfer_log() as log, torchnp.transfer_guard("disallow_explicit"):
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
    assert seen == ["ran"] and log.count == 0


def test_levels_restore_on_exit_and_exceptions():
    engine = _Recorder()
    with pytest.raises(KeyError), torchnp.transfer_guard("disallow_explicit"):
        raise KeyError("inside")
    _download(engine, torch.ones(1), np.empty(1, np.float32))  # allowed again
    # an inner region may relax the guard
    with torchnp.transfer_guard("disallow_explicit"), torchnp.transfer_guard("allow"):
        _download(engine, torch.ones(1), np.empty(1, np.float32))
    assert engine.calls == ["download", "download"]


def test_sync_debug_is_ignored_without_cuda():
    if torch.cuda.is_available():
        pytest.skip("a CUDA machine sets the mode (test_cuda_sync_debug)")
    with torchnp.transfer_guard("disallow", sync_debug=True):
        torchnp.to_numpy(torch.ones(2))


# ---- on a GPU: the real conversions ------------------------------------------------------


@CUDA
def test_cuda_conversions_are_logged_and_guarded():
    t = torch.arange(1024.0, device="cuda")
    with torchnp.transfer_log() as log:
        a = torchnp.to_numpy(t)
        torchnp.from_numpy(a, device="cuda")
    assert [x.direction for x in log.transfers] == ["device_to_host", "host_to_device"]
    assert log.transfers[0].nbytes == 4096 and not log.transfers[0].implicit
    assert log.transfers[0].entry == "to_numpy"
    with torchnp.patch(), torchnp.transfer_guard("disallow"):
        with pytest.raises(torchnp.TransferGuardError, match=r"Tensor\.__array__"):
            np.asarray(t)
        with pytest.raises(torchnp.TransferGuardError, match=r"Tensor\.numpy"):
            t.numpy(force=True)
        torchnp.to_numpy(t)  # explicit: allowed
    out = np.full(1024, -1.0, np.float32)
    with torchnp.transfer_guard("disallow_explicit"):
        with pytest.raises(torchnp.TransferGuardError):
            torchnp.to_numpy(t, out=out)
        with pytest.raises(torchnp.TransferGuardError):
            torchnp.tree_to_numpy({"a": torch.ones(3), "b": t})
    assert (out == -1).all()  # refused before anything was written


@CUDA
def test_cuda_sync_debug():
    before = torch.cuda.get_sync_debug_mode()
    with torchnp.transfer_guard("disallow", sync_debug=True):
        assert torch.cuda.get_sync_debug_mode() == 2  # "error"
    assert torch.cuda.get_sync_debug_mode() == before


def test_transfer_records_are_public():
    assert torchnp.TransferRecord.__module__ == "torchnp._transfer"
    assert issubclass(torchnp.TransferGuardError, RuntimeError)
    assert "torchnp" in sys.modules
