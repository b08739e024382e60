"""The examples run, give the documented results, and write valid images."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _assert_valid_png(path: Path) -> None:
    import matplotlib.image

    assert path.read_bytes()[:8] == PNG_MAGIC
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    assert image.shape[2] in (3, 4)


def test_linear_regression_fits_the_line(engine, tmp_path):
    out = tmp_path / "fit.png"
    slope, intercept = _load("linear_regression").main(out)
    assert slope == pytest.approx(2.0, abs=0.1)
    assert intercept == pytest.approx(1.0, abs=0.1)
    _assert_valid_png(out)


@pytest.mark.single_engine
def test_linear_regression_cli(tmp_path):
    out = tmp_path / "cli.png"
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "linear_regression.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        env={**os.environ, "MPLBACKEND": "Agg"},
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = re.search(r"slope (\S+), intercept (\S+);", result.stdout)
    assert found, result.stdout
    assert float(found[1]) == pytest.approx(2.0, abs=0.1)
    assert float(found[2]) == pytest.approx(1.0, abs=0.1)
    _assert_valid_png(out)


def test_dropin_legacy_code_runs_under_the_patch(engine, tmp_path):
    import torch

    example = _load("dropin_legacy_code")
    out = tmp_path / "weights.png"
    result = example.main(out)
    torch.manual_seed(0)
    layer = torch.nn.Linear(64, 8).to(torch.bfloat16)
    w = layer.weight.detach().float().numpy().astype("f8")
    assert result["stats"]["mean"] == pytest.approx(w.mean())
    assert result["stats"]["max"] == pytest.approx(abs(w).max())
    assert result["bias_dtype"] == "bfloat16"
    assert result["reversed"].tolist() == layer.bias.detach().float().flip(0).tolist()
    assert result["transfers"] == 0
    _assert_valid_png(out)
    with pytest.raises((TypeError, RuntimeError)):  # torch alone: the same legacy call fails
        example.summarize(layer.weight)


def test_overlapped_metrics_equal_the_waiting_loop(engine):
    example = _load("overlapped_metrics")
    acc, matrix = example.main(batches=5, batch=256)
    acc_plain, matrix_plain = example.main(batches=5, batch=256, overlap=False)
    assert matrix.sum() == 5 * 256
    assert np.array_equal(matrix, matrix_plain) and acc == acc_plain
