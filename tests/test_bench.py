"""Smoke test of the benchmark harness (``python -m torchnp bench``) on tiny sizes.

It checks the harness, not the speed: every named case runs, every built-in way agrees with
torchnp, and the JSON, Markdown and PNG outputs have the documented shape.
"""

from __future__ import annotations

import importlib.util
import itertools
import json
import math
import shlex
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import torchnp
from torchnp import bench
from torchnp.bench.regimes import CASES, REGIMES
from torchnp.bench.timing import balanced_orders, time_interleaved
from torchnp.bench.tree_cases import T_TARGETS

pytestmark = pytest.mark.single_engine

NAMES = [
    "P1_copy_fresh",
    "P1o_copy_out",
    "P2_transpose_f32",
    "P2o_transpose_f32_out",
    "P3_nchw_to_nhwc_f32",
    "P4_f64_to_f32",
    "P5_bf16_to_f32",
    "P6_f32_to_f16",
    "P7_from_numpy_negstride",
    "P8_from_numpy_bigendian",
    "P9_nchw_f32_to_nhwc_u8",
    "P10_tiny_zero_copy",
    "P11_conj_c64",
    "S1_copy_16K",
    "S1k_copy_1K",
    "S2_transpose_16K",
    "S3_f64_to_f32_16K",
    "S4_bf16_to_f32_16K",
    "S5_f32_to_f16_16K",
    "S6_from_numpy_cast_16K",
    "S7_from_numpy_negstride_16K",
    "Z1_to_numpy_view",
    "Z2_from_numpy_view",
    "Z3_to_numpy_grad_view",
    "L1o_copy_out_512K",
    "L1o_copy_out_64M",
    "L2o_transpose_out_512K",
    "L2o_transpose_out_64M",
    "L4_f64_to_f32_512K",
    "L4_f64_to_f32_64M",
    "F1_copy_64M",
    "F2_copy_256M",
    "F3_transpose_8192",
    "F4_f64_to_f32_64M",
    "F5_from_numpy_negstride_64M",
    "F6_from_numpy_bigendian_64M",
    "T1_state_dict_cpu",
    "T2_stack_images",
    "T3_collate",
    "T3w_collate_workers",
    "D1_patched_numpy_zero_copy",
    "D1f_patched_from_numpy_zero_copy",
    "D2_patched_asarray_zero_copy",
    "D3_patched_as_tensor_zero_copy",
    "D4_patched_as_tensor_cast_16K",
    "D5_patched_from_numpy_negstride_16K",
    "D6_patched_asarray_bf16_16K",
]
CASE_FIELDS = {
    "name": str,
    "regime": str,
    "bytes": int,
    "torchnp_s": float,
    "baseline": str,
    "baseline_s": float,
    "numpy_s": (float, type(None)),
    "speedup": float,
}
STEADY_FIELDS = {"torchnp_first_s": float, "of_limit": (float, type(None))}
NO_NUMPY_WAY = {
    "P5_bf16_to_f32",
    "P10_tiny_zero_copy",
    "S4_bf16_to_f32_16K",
    "Z1_to_numpy_view",
    "Z2_from_numpy_view",
    "Z3_to_numpy_grad_view",
    "T3_collate",
    "T3w_collate_workers",
    "D1_patched_numpy_zero_copy",
    "D1f_patched_from_numpy_zero_copy",
    "D3_patched_as_tensor_zero_copy",
    "D4_patched_as_tensor_cast_16K",
    "D6_patched_asarray_bf16_16K",
}


@pytest.fixture
def keep_threads():
    threads = torch.get_num_threads()
    yield threads
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def full_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str, Path]:
    out = tmp_path_factory.mktemp("bench")
    threads = torch.get_num_threads()
    args = ["--tiny", "--threads", str(threads), "--processes", "1", "--repeat", "3"]
    args += ["--json", str(out / "r.json")]
    args += ["--markdown", str(out / "r.md"), "--plot", str(out / "r.png")]
    try:
        rc = bench.main(args)
    finally:
        torch.set_num_threads(threads)
    assert rc == 0, "a built-in way disagreed with torchnp (see the progress lines)"
    return json.loads((out / "r.json").read_text()), (out / "r.md").read_text(), out / "r.png"


def test_every_named_case_is_defined() -> None:
    assert [c.name for c in CASES] == NAMES
    for c in CASES:
        assert c.name[0] == c.regime and c.regime in REGIMES


def test_json_schema(full_run: tuple[dict, str, Path]) -> None:
    report, _, _ = full_run
    assert report["limit_gbps"] > 0
    assert report["threads"] == torch.get_num_threads()
    assert report["engine"] in ("native", "python")
    for key in ("cpu_variant", "torch_version", "numpy_version", "limit", "profile"):
        assert key in report
    assert report["regimes"] == list(REGIMES)
    assert [c["name"] for c in report["cases"]] == NAMES
    for case in report["cases"]:
        fields = CASE_FIELDS | (STEADY_FIELDS if case["regime"] != "F" else {})
        for field, kind in fields.items():
            assert isinstance(case[field], kind), (case["name"], field, case[field])
        assert case["regime"] == case["name"][0]
        assert case["agrees"], case["disagreeing_ways"]
        assert case["torchnp_s"] > 0 and case["baseline_s"] > 0
        assert math.isclose(case["speedup"], case["baseline_s"] / case["torchnp_s"])
        builtins = [s for s in (case["torch_s"], case["numpy_s"]) if s is not None]
        assert case["baseline_s"] == min(builtins)
        assert case["baseline"] in case["ways_s"]
        assert (case["numpy_s"] is None) == (case["name"] in NO_NUMPY_WAY)
        # Every regime but P has its target, judged in the record; in D only the zero-copy
        # calls (D1) have one (the others are shown against the rewrite torch alone needs).
        untargeted = case["regime"] == "P" or (
            case["regime"] == "D" and not case["name"].startswith("D1")
        )
        assert (case["meets_target"] is None) == untargeted, case
        if case["name"].startswith("D1"):
            assert case["meets_target"] == (case["torchnp_s"] <= 1.3 * case["baseline_s"])
            assert not torchnp.is_patched()  # the patch only around the patched way's calls
        if case["regime"] in "SF":
            assert case["meets_target"] == (case["speedup"] >= 1.0)
        if case["regime"] == "T":
            need = T_TARGETS[case["name"].split("_", 1)[0].rstrip("w")]
            assert case["meets_target"] == (case["speedup"] >= need)
        if case["regime"] == "L":
            # torchnp on one thread is the second yardstick, timed in the same turns.
            assert case["torchnp_1_s"] > 0
            assert math.isclose(case["vs_one_thread"], case["torchnp_1_s"] / case["torchnp_s"])
        if case["regime"] == "F":
            assert case["processes"] == 1 and len(case["samples_s"][case["torchnp_way"]]) == 1
            assert set(case["page_faults"]) == set(case["ways_s"])
            continue
        if case["regime"] != "P":
            assert case.get("limit_gbps") is None and case["of_limit"] is None
            continue
        assert "kernel" in case
        # of_limit only where the data exceeds the last-level cache (never at --tiny sizes)
        if case["bytes"] > report["machine"]["llc_bytes"]:
            expected = case["bytes"] / case["torchnp_s"] / (case["limit_gbps"] * 1e9)
            assert math.isclose(case["of_limit"], expected)
        else:
            assert case["of_limit"] is None
        if report["engine"] == "native" and case["name"] != "P10_tiny_zero_copy":
            assert case["kernel"], case  # the plans that ran
    limit = report["limit"]
    assert limit["winner"] in limit["first_gbps"]
    assert limit["first_gbps"][limit["winner"]] == max(limit["first_gbps"].values())
    if report["engine"] == "native":
        assert any(k.startswith("torchnp core copy") for k in limit["first_gbps"]), limit


def test_regime_filter_and_one_thread_way(tmp_path: Path, keep_threads: int) -> None:
    out = tmp_path / "r.json"
    torch.set_num_threads(2)
    assert bench.main(["--tiny", "--regimes", "z,L", "--cases", "Z1,L4", "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [c["name"] for c in report["cases"]] == [
        "Z1_to_numpy_view",
        "L4_f64_to_f32_512K",
        "L4_f64_to_f32_64M",
    ]
    assert report["limit"] is None and report["regimes"] == ["Z", "L"]
    assert torch.get_num_threads() == 2  # the 1-thread way restored the count
    with pytest.raises(SystemExit):
        bench.main(["--tiny", "--regimes", "P,Q"])
    with pytest.raises(SystemExit):
        bench.main(["--tiny", "--regimes", "S", "--cases", "P1"])  # P1 is not an S case
    with pytest.raises(SystemExit):
        bench.main(["--regimes", "F", "--processes", "2"])  # fewer than 5 fresh processes


def test_sweep_mode(tmp_path: Path, keep_threads: int) -> None:
    from torchnp.bench.sweep import crossovers

    out, md, png = tmp_path / "s.json", tmp_path / "s.md", tmp_path / "s.png"
    args = ["--tiny", "--sweep", "--repeat", "2", "--json", str(out), "--markdown", str(md)]
    assert bench.main([*args, "--plot", str(png)]) == 0
    report = json.loads(out.read_text())
    assert set(report["points"]) == {"copy", "transpose"}
    for op, points in report["points"].items():
        assert [p["bytes"] for p in points] == [16 << 10, 64 << 10]
        for p in points:
            assert p["agrees"] and math.isclose(p["speedup"], p["baseline_s"] / p["torchnp_s"])
        assert report["crossovers"][op] == crossovers(points)
    worst = min(p["speedup"] for ps in report["points"].values() for p in ps)
    assert report["meets_target"] == (worst >= 0.95)
    assert "| 16 KiB |" in md.read_text() and "crossovers" in md.read_text()
    if importlib.util.find_spec("matplotlib") is not None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(SystemExit):
        bench.main(["--tiny", "--sweep", "--cases", "P1"])


def test_crossovers_are_interpolated_on_log_scales() -> None:
    from torchnp.bench.sweep import crossovers

    points = [
        {"bytes": 1 << 10, "speedup": 0.5},
        {"bytes": 1 << 12, "speedup": 2.0},  # crosses halfway, at 2 KiB
        {"bytes": 1 << 14, "speedup": 4.0},
        {"bytes": 1 << 16, "speedup": 0.5},  # log 4 : log 0.5 = 2 : -1, so at 2^(14 + 2 * 2/3)
    ]
    found = crossovers(points)
    assert len(found) == 2
    assert math.isclose(found[0], 2048.0)
    assert math.isclose(found[1], 2 ** (14 + 4 / 3))


def test_markdown_and_plot(full_run: tuple[dict, str, Path]) -> None:
    _, table, png = full_run
    for name in NAMES:
        assert f"| {name} |" in table
    for regime in REGIMES:
        assert f"**{regime} · " in table
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_case_filter(tmp_path: Path, keep_threads: int) -> None:
    out = tmp_path / "r.json"
    assert bench.main(["--tiny", "--cases", "P2,P10_tiny_zero_copy", "--json", str(out)]) == 0
    names = [c["name"] for c in json.loads(out.read_text())["cases"]]
    assert names == ["P2_transpose_f32", "P10_tiny_zero_copy"]
    with pytest.raises(SystemExit):
        bench.main(["--tiny", "--cases", "P99"])


def test_command_line_passes_options_to_bench(keep_threads: int) -> None:
    from torchnp.__main__ import main as cli

    assert cli(["bench", "--tiny", "--cases", "P10"]) == 0


def _cli(*args: str, pipe: str = "") -> subprocess.CompletedProcess:
    command = shlex.join([sys.executable, "-m", "torchnp", *args]) + pipe
    return subprocess.run(command, shell=True, capture_output=True, text=True, check=False)


def test_help_is_plain_text() -> None:
    for args in (("--help",), ("bench", "--help")):
        proc = _cli(*args)
        assert proc.returncode == 0, proc.stderr
        assert "``" not in proc.stdout and "usage:" in proc.stdout


def test_one_thread_is_singular(tmp_path: Path, keep_threads: int, capsys) -> None:
    out = tmp_path / "r.md"
    assert bench.main(["--tiny", "--cases", "P10", "--threads", "1", "--markdown", str(out)]) == 0
    captured = capsys.readouterr()
    for text in (out.read_text(), captured.err):
        assert "1 thread " in text or "1 thread," in text or "1 thread)" in text, text
        assert "1 threads" not in text


def test_reader_that_stops_reading_gets_no_traceback() -> None:
    proc = _cli("info", pipe=" | head -n 1")
    assert proc.returncode == 0
    assert proc.stdout.startswith("engine")
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_plot_without_matplotlib_fails_first_with_its_own_status(tmp_path, monkeypatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name)
    )
    png = tmp_path / "r.png"
    started = time.perf_counter()
    assert bench.main(["--tiny", "--plot", str(png)]) == bench.NO_MATPLOTLIB
    assert time.perf_counter() - started < 5 and not png.exists()  # before any measuring


def test_progress_line_gives_torchnps_rate() -> None:
    from torchnp.bench.runner import _progress

    record = {
        "name": "P1_copy_fresh",
        "torchnp_s": 0.002,
        "baseline": "a.copy()",
        "baseline_s": 0.004,
        "speedup": 2.0,
        "gbps": 67.1,
        "of_limit": 0.99,
        "limit_gbps": 68.0,
        "agrees": True,
        "disagreeing_ways": [],
    }
    line = _progress(1, 1, record, 1.0)
    assert "2.00 ms (67.1 GB/s)" in line and "(limit 68.0 GB/s)" in line


def test_size_sweep_runs(tmp_path: Path, keep_threads: int) -> None:
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "sweep.py"
    if not path.exists():
        pytest.skip("benchmarks/sweep.py is not beside this tests folder")
    spec = importlib.util.spec_from_file_location("torchnp_sweep", path)
    sweep = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sweep)
    out = tmp_path / "sweep.json"
    args = ["--max-bytes", "4K", "--threads", "1", "--repeat", "1", "--limit-bytes", "1M"]
    assert sweep.main([*args, "--json", str(out)]) == 0
    points = json.loads(out.read_text())["points"]
    assert {(p["op"], p["src_bytes"]) for p in points} == {
        (op, size) for op in ("transpose", "cast") for size in (1024, 2048, 4096)
    }
    assert all(v > 0 for p in points for v in p["gbps"].values())


def _load_benchmarks_module(name: str):
    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    if not path.exists():
        pytest.skip(f"benchmarks/{name}.py is not beside this tests folder")
    spec = importlib.util.spec_from_file_location(f"torchnp_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_median_report_takes_each_case_from_its_middle_run() -> None:
    median = _load_benchmarks_module("median_report")

    def run(speedups: dict[str, float], limit: float) -> dict:
        cases = [
            {"name": n, "speedup": s, "torchnp_s": 1.0, "agrees": True, "run": limit}
            for n, s in speedups.items()
        ]
        return {"limit_gbps": limit, "wall_s": 1.0, "repeat": 5, "cases": cases}

    runs = [
        run({"P1_x": 2.0, "S1_y": 0.9}, 10.0),
        run({"P1_x": 3.0, "S1_y": 0.7}, 30.0),
        run({"P1_x": 1.0, "S1_y": 1.1}, 20.0),
    ]
    merged = median.median_report(runs)
    by_name = {c["name"]: c for c in merged["cases"]}
    assert by_name["P1_x"]["speedup"] == 2.0 and by_name["P1_x"]["run"] == 10.0
    assert by_name["S1_y"]["speedup"] == 0.9 and by_name["S1_y"]["run"] == 10.0
    assert by_name["P1_x"]["speedups"] == [2.0, 3.0, 1.0]
    assert merged["limit_gbps"] == 20.0 and merged["runs"] == 3 and merged["wall_s"] == 3.0
    with pytest.raises(ValueError):
        median.median_report([runs[0], run({"P1_x": 2.0}, 1.0)])


def test_update_readme_replaces_only_its_section() -> None:
    update = _load_benchmarks_module("update_readme")
    readme = "a\n<!-- bench:start -->\nold\n<!-- bench:end -->\n"
    readme += "b\n<!-- sweep:start -->\nx\n<!-- sweep:end -->\n"
    out = update.splice(readme, "new sweep\n", "sweep")
    assert "old" in out and "new sweep" in out and "\nx\n" not in out
    with pytest.raises(SystemExit):
        update.splice("no markers", "t", "sweep")


def test_first_call_case_settles_before_it_times(monkeypatch) -> None:
    """An F case runs one untimed process first (the first process after another case is
    slow on some machines, and the first round would always hand it to torchnp); then every way
    once per round, in balanced orders; only the timed processes make the medians."""
    from torchnp.bench import first_call

    calls: list[int] = []

    def fake_child(name: str, index: int, threads: int, large: int) -> dict:
        calls.append(index)
        seconds = 1.0 if len(calls) == 1 else 0.01 * (index + 1)  # the settling one: slow
        return {"s": seconds, "faults": 0, "digest": "same", "bytes": 8}

    monkeypatch.setattr(first_call, "_run_child", fake_child)
    case = first_call.F_CASES[0]
    record = first_call.run_first_call_case(case, 1 << 16, 5, 1)
    ways = len(case.build(1 << 16)[0])
    assert calls[0] == ways - 1 and len(calls) == 1 + 5 * ways
    assert calls[1:] == [i for order in balanced_orders(ways, 5) for i in order]
    assert record["torchnp_s"] == pytest.approx(0.01)  # the settling process is not counted
    assert record["agrees"]


@pytest.mark.parametrize("n", range(1, 8))
def test_balanced_orders_give_every_way_every_predecessor_alike(n: int) -> None:
    """Each round is an order of all the ways, and over a full design every way comes right
    after every other way equally often (a rotated order would keep its neighbours)."""
    full = n if n % 2 == 0 else 2 * n
    orders = balanced_orders(n, 3 * full)
    assert all(sorted(order) == list(range(n)) for order in orders)
    assert orders[0][:2] == [0, 1][:n]
    follows: dict[tuple[int, int], int] = {}
    for order in orders[:full]:
        for before, after in itertools.pairwise(order):
            follows[before, after] = follows.get((before, after), 0) + 1
    assert len(follows) == n * (n - 1)  # every ordered pair of different ways
    assert len(set(follows.values())) <= 1  # and each as often
    assert orders[full:] == orders[:full] * 2


def test_balanced_orders_of_no_ways_are_empty_rounds() -> None:
    assert balanced_orders(0, 3) == [[], [], []]


def test_time_interleaved_takes_turns_in_balanced_orders() -> None:
    """What a way leaves behind reaches every other way: the calls land in balanced_orders."""
    calls: list[str] = []
    fns = {k: (lambda k=k: calls.append(k), 1) for k in "abcd"}
    seconds = time_interleaved(fns, 4)
    assert set(seconds) == set("abcd")
    keys = list(fns)
    assert calls == [keys[i] for order in balanced_orders(4, 4) for i in order]
