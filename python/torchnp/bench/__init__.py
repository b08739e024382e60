"""``python -m torchnp bench``: torchnp against the built-ins, as ratios to the copy limit.

For each case it reports torchnp's time, the best built-in way (torch's or NumPy's, named), the
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

from torchnp.bench.cases import CASES, PROFILES, select
from torchnp.bench.report import markdown, write_json, write_plot
from torchnp.bench.runner import LIMIT_ARRAY_BYTES, run_benchmark

__all__ = ["main"]

# The smoke test's profile: its limit arrays need not be large, only the code path exercised.
TINY_LIMIT_BYTES = 8 << 20

# Exit statuses besides 0 (and argparse's 2 for a bad option).
DISAGREE = 1  # some built-in way's result differed from torchnp's: its numbers mean nothing
NO_MATPLOTLIB = 3  # --plot without matplotlib installed (checked before anything runs)

DESCRIPTION = (
    "torchnp against the built-ins, each case as a speedup over the best built-in way and as a "
    "fraction of this machine's copy limit, all measured side by side in one run."
)
EPILOG = (
    "cases: {cases}. Exit status: 0, {disagree} if a built-in way's result differed from "
    "torchnp's, {no_mpl} if --plot was given without matplotlib."
)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m torchnp bench",
        description=DESCRIPTION,
        epilog=EPILOG.format(
            cases=", ".join(c.name for c in CASES), disagree=DISAGREE, no_mpl=NO_MATPLOTLIB
        ),
    )
    p.add_argument(
        "--quick", action="store_true", help="smaller sizes (whole run < 90 s on 2 cores)"
    )
    p.add_argument("--tiny", action="store_true", help=argparse.SUPPRESS)  # smoke tests only
    p.add_argument("--cases", metavar="P2,P4", help="only these cases (ids or full names)")
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
    p.add_argument("--plot", metavar="PATH", help="write a PNG bar chart (needs matplotlib)")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print the Markdown table to stdout, progress to stderr.

    Returns 0; DISAGREE (1) when some built-in way's result differed from torchnp's (the numbers
    of a case whose results differ are not comparable); NO_MATPLOTLIB (3) when --plot cannot be
    drawn, before anything is measured.
    """
    parser = _parser()
    ns = parser.parse_args(argv)
    if ns.plot and importlib.util.find_spec("matplotlib") is None:
        print(
            "bench: --plot needs matplotlib, which is not installed "
            "(pip install matplotlib, or leave out --plot)",
            file=sys.stderr,
        )
        return NO_MATPLOTLIB
    if ns.repeat < 1:
        parser.error("--repeat must be at least 1")
    try:
        cases = select(ns.cases)
    except ValueError as exc:
        parser.error(str(exc))
    if ns.threads is not None:
        if ns.threads < 1:
            parser.error("--threads must be at least 1")
        torch.set_num_threads(ns.threads)
    profile = "tiny" if ns.tiny else "quick" if ns.quick else "full"
    if ns.limit_mib < 1:
        parser.error("--limit-mib must be at least 1")
    limit_bytes = TINY_LIMIT_BYTES if ns.tiny else ns.limit_mib << 20
    report = run_benchmark(cases, PROFILES[profile], profile, ns.repeat, limit_bytes)
    table = markdown(report)
    print(table, end="")
    if ns.markdown:
        with open(ns.markdown, "w") as f:
            f.write(table)
    if ns.json:
        write_json(report, ns.json)
    if ns.plot:
        write_plot(report, ns.plot)
    print(f"bench: {report['wall_s']:.1f} s", file=sys.stderr)
    return 0 if all(c["agrees"] for c in report["cases"]) else DISAGREE
