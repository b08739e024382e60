"""Every behavioural test runs once per engine (native, python).

Tests that are about one engine or none mark themselves ``@pytest.mark.single_engine``. With
TORCHNP_ENGINE=python the native runs are skipped (that run checks the forced fallback).
"""

from __future__ import annotations

import gc
import os

import pytest

import torchnp
from torchnp import _engines

ENGINES = ("native", "python")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "single_engine: run once, not once per engine")
    # scripts/sanitize.sh: the sanitised build must be what runs, on the native engine.
    expected = os.environ.get("TORCHNP_EXPECT_MODULE")
    if expected and not (
        os.path.dirname(torchnp.__file__) == expected and torchnp.info().engine == "native"
    ):
        raise pytest.UsageError(
            f"expected torchnp from {expected} on the native engine, got {torchnp.__file__} "
            f"({torchnp.info().engine}: {torchnp.info().fallback_reason})"
        )


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if metafunc.definition.get_closest_marker("single_engine") is None:
        metafunc.fixturenames.append("engine")
        metafunc.parametrize("engine", ENGINES, indirect=True)


@pytest.fixture(autouse=True)
def _engine_for_every_test(request: pytest.FixtureRequest) -> None:
    # Tests that do not name `engine` are parametrised over it too; make the switch happen.
    callspec = getattr(request.node, "callspec", None)
    if callspec is not None and "engine" in callspec.params:
        request.getfixturevalue("engine")


@pytest.fixture
def engine(request: pytest.FixtureRequest):
    name = request.param
    if name == "native" and os.environ.get(_engines.ENGINE_ENV, "").lower() == "python":
        pytest.skip("TORCHNP_ENGINE=python forces the Python engine")
    previous = _engines.use(name)
    yield name
    _engines.restore(previous)


def _status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(key)


@pytest.fixture
def peak_rss():
    """measure(fn) -> (bytes the process's peak resident memory rose while fn ran, fn's result).

    Sees every allocation, torch's, NumPy's and the output pool's alike (tracemalloc sees only
    Python's): the peak is reset first (/proc/self/clear_refs), the pool emptied so that every
    output is fresh memory, and inputs should exceed 32 MiB so that glibc serves every buffer
    as a fresh mapping rather than from memory already resident.
    """
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError as exc:
        pytest.skip(f"cannot reset the peak RSS here: {exc}")

    def measure(fn):
        gc.collect()
        torchnp.empty_cache()
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # VmHWM := VmRSS
        start = _status_bytes("VmRSS")
        result = fn()
        return _status_bytes("VmHWM") - start, result

    return measure


@pytest.fixture
def big_memory():
    """Skip unless ~6 GiB are free: the > 2**31-element tests hold two 2 GiB buffers."""
    with open("/proc/meminfo") as f:
        info = dict(line.split(":", 1) for line in f)
    available = int(info["MemAvailable"].split()[0]) * 1024
    if available < 6 * 2**30:
        pytest.skip(f"needs ~6 GiB free, {available / 2**30:.1f} GiB available")
