"""``python -m torchnp bench``: torchnp against the built-ins, regime by regime.

The regimes (``--regimes``, all by default): P steady state (a warm loop over large tensors),
S small calls, Z zero-copy calls, L one core busy with another process (the harness starts and
stops it), F first call in a fresh process (each way in ``--processes`` fresh processes).
``--sweep`` instead runs one copy and one transpose from 16 KiB to 256 MiB (bench/sweep.py).
``--gpu`` instead runs the device transfers G1-G5 and a link matrix (bench/gpu_cases.py), or
with ``--simulate`` the same on the host-simulated link.

For each P case it reports torchnp's time, the best built-in way (torch's or NumPy's, named), the
bytes moved (read + written), ``speedup = baseline_s / torchnp_s``, the plans that ran and, for
cases whose data exceeds the last-level cache, ``of_limit = (bytes / torchnp_s) / limit``, where
the limit is the fastest large warm contiguous copy this machine has (np.copyto, split or not, or
the core's own streaming copy) measured in the same run with the same thread count. Times are
medians of ``--repeat`` runs after a warm-up call, the ways taking turns; fresh-output ways
allocate a new result every run.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys

import torch

from torchnp.bench.cases import PROFILES
from torchnp.bench.first_call import MIN_PROCESSES
from torchnp.bench.regimes import CASES, REGIMES, select
from torchnp.bench.report import markdown, write_json, write_plot
from torchnp.bench.runner import LIMIT_ARRAY_BYTES, run_benchmark
from torchnp.bench.sweep import SIZES, TINY_SIZES, run_sweep, sweep_markdown, write_sweep_plot

__all__ = ["main"]

# The smoke test's profile: its limit arrays need not be large, only the code path exercised.
TINY_LIMIT_BYTES = 8 << 20

# Exit statuses besides 0 (and argparse's 2 for a bad option).
DISAGREE = 1  # some built-in way's result differed from torchnp's: its numbers mean nothing
NO_MATPLOTLIB = 3  # --plot without matplotlib installed (checked before anything runs)
NO_DEVICE = 4  # --gpu without a CUDA device and without --simulate

DESCRIPTION = (
    "torchnp against the built-ins in every regime (steady state, small calls, zero-copy, one "
    "core busy, first call in a fresh process), each case as a speedup over the best built-in "
    "way, all measured side by side in one run."
)
EPILOG = (
    "cases: {cases}. Exit status: 0, {disagree} if a built-in way's result differed from "
    "torchnp's (or a --gpu case failed), {no_mpl} if --plot was given without matplotlib, "
    "{no_device} if --gpu found no CUDA device (and no --simulate)."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m torchnp bench",
        description=DESCRIPTION,
        epilog=EPILOG.format(
            cases=", ".join(c.name for c in CASES),
            disagree=DISAGREE,
            no_mpl=NO_MATPLOTLIB,
            no_device=NO_DEVICE,
        ),
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="smaller P sizes (every regime: ~4 min on 2 cores, most of it F's fresh processes)",
    )
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke tests only
    p.add_argument(
        "--regimes",
        metavar="P,S,Z,L,F",
        help=f"only these regimes (default all: {', '.join(REGIMES)})",
    )
    p.add_argument("--cases", metavar="P2,S1k", help="only these cases (ids or full names)")
    p.add_argument(
        "--processes",
        type=int,
        default=MIN_PROCESSES,
        metavar="N",
        help=f"F regime: fresh processes per way (default and minimum {MIN_PROCESSES})",
    )
    p.add_argument(
        "--sweep",
        action="store_true",
        help="instead: copy and transpose from 16 KiB to 256 MiB against the built-in",
    )
    p.add_argument(
        "--gpu",
        action="store_true",
        help="instead: device transfers G1-G5 against the built-ins and the link, and a link "
        "matrix (needs a CUDA device, or --simulate); --cases picks G cases",
    )
    p.add_argument(
        "--simulate",
        action="store_true",
        help="with --gpu: on the host-simulated link, no GPU (checks code paths, not speed)",
    )
    p.add_argument(
        "--gpu-bytes",
        metavar="SIZE",
        help="with --gpu: the cases' size and the matrix's largest (default 1G, --quick 256M; "
        "simulated 64M, --quick 8M)",
    )
    p.add_argument("--threads", type=int, metavar="N", help="torch.set_num_threads(N) first")
    p.add_argument("--repeat", type=int, default=5, metavar="N", help="timed runs (default 5)")
    p.add_argument(
        "--limit-mib",
        type=int,
        default=LIMIT_ARRAY_BYTES >> 20,
        metavar="N",
        help=f"size of each limit-copy array (default {LIMIT_ARRAY_BYTES >> 20})",
    )
    p.add_argument("--json", metavar="PATH", help="write the full report as JSON")
    p.add_argument("--markdown", metavar="PATH", help="write the table as Markdown")
    p.add_argument(
        "--plot",
        metavar="PATH",
        nargs="?",
        const="",
        help="write a PNG chart (needs matplotlib; default bench.png, or sweep.png with --sweep)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the Markdown table to stdout, progress to stderr.

    Returns 0; DISAGREE (1) when some built-in way's result differed from torchnp's (the numbers
    of a case whose results differ are not comparable); NO_MATPLOTLIB (3) when --plot cannot be
    drawn, before anything is measured.
    """
    parser = _parser()
    ns = parser.parse_args(argv)
    if ns.plot is not None and importlib.util.find_spec("matplotlib") is None:
        print(
            "bench: --plot needs matplotlib, which is not installed "
            "(pip install matplotlib, or leave out --plot)",
            file=sys.stderr,
        )
        return NO_MATPLOTLIB
    if ns.repeat < 1:
        parser.error("--repeat must be at least 1")
    if ns.threads is not None:
        if ns.threads < 1:
            parser.error("--threads must be at least 1")
        torch.set_num_threads(ns.threads)
    if ns.simulate and not ns.gpu:
        parser.error("--simulate goes with --gpu")
    if ns.gpu:
        return _gpu(parser, ns)
    if ns.sweep:
        if ns.regimes or ns.cases:
            parser.error("--sweep runs its own two ops: leave out --regimes and --cases")
        report = run_sweep(TINY_SIZES if ns.tiny else SIZES, ns.repeat)
        table = sweep_markdown(report)
        _write(table, report, ns, write_sweep_plot, "sweep.png")
        return 0 if report["agrees"] else DISAGREE
    try:
        cases = select(ns.cases, ns.regimes)
    except ValueError as exc:
        parser.error(str(exc))
    # The smoke test may run F with fewer processes; a real run never does.
    if ns.processes < (1 if ns.tiny else MIN_PROCESSES):
        parser.error(f"--processes must be at least {MIN_PROCESSES}")
    profile = "tiny" if ns.tiny else "quick" if ns.quick else "full"
    if ns.limit_mib < 1:
        parser.error("--limit-mib must be at least 1")
    limit_bytes = TINY_LIMIT_BYTES if ns.tiny else ns.limit_mib << 20
    report = run_benchmark(
        cases, PROFILES[profile], profile, ns.repeat, limit_bytes, processes=ns.processes
    )
    _write(markdown(report), report, ns, write_plot, "bench.png")
    return 0 if all(c["agrees"] for c in report["cases"]) else DISAGREE


def _gpu(parser: argparse.ArgumentParser, ns: argparse.Namespace) -> int:
    from torchnp.bench import gpu_cases as g
    from torchnp.bench import gpu_report

    if ns.sweep or ns.regimes:
        parser.error("--gpu runs its own G cases: leave out --sweep and --regimes")
    try:
        cases = g.select(ns.cases)
        nbytes = None if ns.gpu_bytes is None else g.parse_bytes(ns.gpu_bytes)
    except ValueError as exc:
        parser.error(str(exc))
    largest = g.SIM_BYTES if ns.simulate else None
    if nbytes is None:
        nbytes = {
            (False, False): g.GPU_BYTES,
            (False, True): g.GPU_QUICK_BYTES,
            (True, False): g.SIM_BYTES,
            (True, True): g.SIM_QUICK_BYTES,
        }[ns.simulate, ns.quick]
    if nbytes < g.MIN_CASE_BYTES or (largest is not None and nbytes > largest):
        parser.error(
            f"--gpu-bytes must be at least {g.MIN_CASE_BYTES >> 20} MiB"
            + ("" if largest is None else f" and at most {largest >> 20} MiB with --simulate")
        )
    problem = g.device_problem(ns.simulate)
    if problem is not None:
        print(problem, file=sys.stderr)
        return NO_DEVICE
    profile = "quick" if ns.quick else "full"
    report = g.run_gpu(cases, nbytes, profile, ns.repeat, ns.simulate)
    _write(gpu_report.gpu_markdown(report), report, ns, gpu_report.write_gpu_plot, "gpu_link.png")
    return 0 if report["agrees"] and not report["failed_cases"] else DISAGREE


def _write(table: str, report: dict, ns: argparse.Namespace, plot, default_png: str) -> None:
    print(table, end="")
    if ns.markdown:
        with open(ns.markdown, "w") as f:
            f.write(table)
    if ns.json:
        write_json(report, ns.json)
    if ns.plot is not None:
        plot(report, ns.plot or default_png)
    print(f"bench: {report['wall_s']:.1f} s", file=sys.stderr)
