"""``bench --gpu`` (bench/gpu_cases.py) and ``benchmarks/gpu_check.sh`` without a GPU.

``--gpu --simulate`` runs every G case on the host-simulated link: the checks are that each case
ran through that link (its bytes crossed it), every built-in agreed with torchnp, and the JSON
and Markdown say it was simulated. ``--gpu`` without a device must refuse clearly. The harness,
not the speed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from torchnp import _engines, bench
from torchnp.bench import gpu_cases

pytestmark = pytest.mark.single_engine

ROOT = Path(__file__).resolve().parents[1]
NAMES = [
    "G1_d2h_fresh",
    "G1o_d2h_out",
    "G2_h2d_pageable",
    "G3_d2h_bf16_to_f32",
    "G4_d2h_permuted",
    "G5_d2h_small",
]
HAS_MATPLOTLIB = importlib.util.find_spec("matplotlib") is not None


@pytest.fixture(scope="module")
def simulated_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    if _engines.loaded_native() is None:
        pytest.skip("the simulated link is the native engine's")
    out = tmp_path_factory.mktemp("gpu")
    argv = ["--gpu", "--simulate", "--quick", "--repeat", "2", "--json", str(out / "g.json")]
    argv += ["--markdown", str(out / "g.md")]
    if HAS_MATPLOTLIB:
        argv += ["--plot", str(out / "g.png")]
    previous = _engines.use("native")
    try:
        assert bench.main(argv) == 0
    finally:
        _engines.restore(previous)
    return json.loads((out / "g.json").read_text()), (out / "g.md").read_text(), out


def test_the_simulated_run_has_every_g_case_with_sane_fields(simulated_report):
    report, _, _ = simulated_report
    assert report["kind"] == "gpu" and report["simulated"] is True
    assert "SIMULATED" in report["note"] and report["meets_targets"] is None
    assert report["agrees"] is True and report["case_bytes"] == gpu_cases.SIM_QUICK_BYTES
    assert [c["name"] for c in report["cases"]] == NAMES
    for c in report["cases"]:
        assert c["agrees"], c["disagreeing_ways"]
        assert c["torchnp_s"] > 0 and c["baseline_s"] > 0 and c["link_limit_s"] > 0
        assert c["baseline"] in c["ways_s"] and c["reference"] in c["ways_s"]
        assert c["torchnp_way"].endswith(".result()")  # the _async call, not the CPU fast path
        assert c["speedup"] == pytest.approx(c["baseline_s"] / c["torchnp_s"])
        assert c["of_link"] == pytest.approx(c["link_limit_s"] / c["torchnp_s"])
        assert c["meets_target"] is None and c["target"]
        assert 0 < c["link_bytes"] <= c["bytes"]
        # torchnp's warm-up call crossed the simulated link with every byte it had to move
        crossed = c["link_stats"]["bytes_h2d" if c["direction"] == "h2d" else "bytes_d2h"]
        assert crossed >= c["link_bytes"], c["link_stats"]
    by_name = {c["name"]: c for c in report["cases"]}
    assert by_name["G3_d2h_bf16_to_f32"]["link_bytes"] * 2 == by_name["G3_d2h_bf16_to_f32"]["bytes"]
    assert by_name["G5_d2h_small"]["bytes"] == 4096 and by_name["G5_d2h_small"]["per_call"]


def test_the_link_matrix_covers_both_memories_both_ways_every_size(simulated_report):
    m = simulated_report[0]["matrix"]
    assert m["sizes"] == gpu_cases.matrix_sizes(gpu_cases.SIM_QUICK_BYTES)
    assert m["sizes"][0] == 4 << 10 and m["sizes"][-1] == gpu_cases.SIM_QUICK_BYTES
    kinds = {(r["host"], r["direction"]) for r in m["rows"]}
    assert kinds == {(h, d) for h in ("pinned", "pageable") for d in ("h2d", "d2h")}
    for r in m["rows"]:
        assert [p["bytes"] for p in r["points"]] == m["sizes"]
        assert all(p["seconds"] > 0 and p["gbps"] > 0 for p in r["points"])


def test_the_markdown_says_simulated_and_names_every_case(simulated_report):
    _, table, out = simulated_report
    assert "**SIMULATED" in table and "link matrix" in table
    for name in NAMES:
        assert f"| {name} |" in table
    assert "n/a, simulated" in table
    if HAS_MATPLOTLIB:
        assert (out / "g.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_gpu_without_a_device_fails_with_a_clear_message(monkeypatch, capsys):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert bench.main(["--gpu", "--quick"]) == bench.NO_DEVICE != 0
    err = capsys.readouterr().err
    assert "no CUDA device" in err and "--simulate" in err


def test_gpu_options_are_checked_before_anything_runs(capsys):
    for argv in (
        ["--simulate"],
        ["--gpu", "--simulate", "--gpu-bytes", "1G"],
        ["--gpu", "--gpu-bytes", "12 parsecs"],
        ["--gpu", "--gpu-bytes", "4K"],
        ["--gpu", "--cases", "G9"],
        ["--gpu", "--regimes", "P"],
    ):
        with pytest.raises(SystemExit) as exc:
            bench.main(argv)
        assert exc.value.code == 2, argv
    assert "unknown G case(s) G9" in capsys.readouterr().err


def test_sizes_parse_and_the_matrix_grows_by_fours():
    assert gpu_cases.parse_bytes("1G") == 1 << 30
    assert gpu_cases.parse_bytes("256MiB") == 256 << 20
    assert gpu_cases.parse_bytes("64k") == 64 << 10
    assert gpu_cases.parse_bytes("4096") == 4096
    assert gpu_cases.matrix_sizes(1 << 30)[-3:] == [64 << 20, 256 << 20, 1 << 30]
    assert gpu_cases.matrix_sizes(8 << 20)[-2:] == [4 << 20, 8 << 20]
    assert [c.key for c in gpu_cases.select("G1o,G5_d2h_small")] == ["G1o", "G5"]


@pytest.mark.slow
def test_gpu_check_dry_run_end_to_end(tmp_path):
    """The script CI runs on every change, and a GPU machine once: its dry run (~45 s)."""
    if _engines.loaded_native() is None:
        pytest.skip("the dry run's simulated link needs the native engine")
    env = {**os.environ, "OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(
        ["bash", str(ROOT / "benchmarks" / "gpu_check.sh"), "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    summary = json.loads((tmp_path / "gpu_check.json").read_text())
    assert proc.returncode == 0, (proc.stdout[-3000:], summary["problems"])
    assert summary["ok"] and summary["complete"] and summary["dry_run"]
    steps = summary["steps"]
    for step in ("env", "info", "tests", "bench_gpu", "bench_cpu_t1", "bench_cpu_t2"):
        assert steps[step]["status"] == "ok", (step, steps[step])
    assert summary["tests"]["passed"] > 0 and summary["tests"]["failures"] == 0
    assert summary["bench_gpu"]["simulated"] and len(summary["bench_gpu"]["table"]) == len(NAMES)
    assert set(summary["bench_cpu"]) == {"1", "2"}
    assert (tmp_path / "gpu_check.log").stat().st_size > 0
