"""The median of several ``bench`` runs, as one report: for every case, the record of the run
whose speedup is that case's median (so every number in a row comes from one run, side by
side), with every run's speedup kept in ``speedups``.

    for i in 1 2 3; do python -m torchnp bench --quick --json run$i.json; done
    python benchmarks/median_report.py run1.json run2.json run3.json --markdown bench.md \\
        --json median.json
    python benchmarks/update_readme.py bench.md
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics

from torchnp.bench.report import markdown, write_json


def median_report(reports: list[dict]) -> dict:
    """One report: the first run's header, each case's median record (by speedup)."""
    if not reports:
        raise ValueError("no reports")
    names = [c["name"] for c in reports[0]["cases"]]
    for r in reports[1:]:
        if [c["name"] for c in r["cases"]] != names:
            raise ValueError("the runs measured different cases; run the same command each time")
    cases = []
    for i, _ in enumerate(names):
        records = sorted((r["cases"][i] for r in reports), key=lambda c: c["speedup"])
        middle = dict(records[(len(records) - 1) // 2])  # the lower middle for an even count
        middle["speedups"] = [r["cases"][i]["speedup"] for r in reports]
        middle["agrees"] = all(r["cases"][i]["agrees"] for r in reports)
        cases.append(middle)
    merged = dict(reports[0])
    merged["cases"] = cases
    merged["runs"] = len(reports)
    per_run = [r["limit_gbps"] for r in reports if r.get("limit_gbps") is not None]
    merged["limit_gbps"] = statistics.median(per_run) if per_run else None
    merged["wall_s"] = sum(r["wall_s"] for r in reports)
    return merged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=pathlib.Path, help="JSON written by bench --json")
    parser.add_argument("--markdown", type=pathlib.Path, help="write the median table here")
    parser.add_argument("--json", type=pathlib.Path, help="write the median report here")
    args = parser.parse_args()
    report = median_report([json.loads(p.read_text()) for p in args.runs])
    table = markdown(report).replace(
        f"median of {report['repeat']}",
        f"median of {report['repeat']}, the middle of {report['runs']} runs per case",
        1,
    )
    print(table, end="")
    if args.markdown:
        args.markdown.write_text(table)
    if args.json:
        write_json(report, args.json)


if __name__ == "__main__":
    main()
