"""A pytest plugin that runs every test with torchnp.patch() active (PyTorch's own NumPy interop
tests, scripts/peer.sh): ``pytest -p tests.peer.plugin <the peer test file>``.

TORCHNP_PEER_UNPATCHED=1 runs them without the patch: the reference the patched run is compared
against (scripts/peer.sh runs both).
"""

from __future__ import annotations

import os

import pytest

import torchnp


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    if os.environ.get("TORCHNP_PEER_UNPATCHED") == "1":
        yield
        return
    with torchnp.patch():
        assert torchnp.is_patched()
        yield
