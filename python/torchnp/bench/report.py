"""The benchmark's outputs: a Markdown table (the README's performance table), JSON, a PNG chart."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

# Escaped so ruff (RUF001) accepts them: the multiplication sign and the en dash.
TIMES = "\u00d7"
NONE = "\u2013"


def format_seconds(s: float | None) -> str:
    """A duration in the unit that keeps three significant digits readable."""
    if s is None:
        return NONE
    if s < 1e-3:
        return f"{s * 1e6:.2f} µs"
    if s < 1:
        return f"{s * 1e3:.2f} ms"
    return f"{s:.3f} s"


def format_bytes(n: int) -> str:
    """A byte count in binary units (``512 MiB``, ``24 KiB``)."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            value = n / size
            return f"{value:.3g} {unit}" if value < 1000 else f"{value:.0f} {unit}"
    return f"{n} B"


def plural(n: int, word: str) -> str:
    """ "1 thread", "2 threads"."""
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _ratio(x: float | None, suffix: str = "") -> str:
    return NONE if x is None else f"{x:.2f}{suffix}"


def headline(report: dict) -> str:
    """One line naming what the ratios were measured against."""
    engine = report["engine"] + (f" ({report['cpu_variant']})" if report.get("cpu_variant") else "")
    threads = report["threads"]
    llc = report["machine"].get("llc_bytes")
    parts = []
    if report.get("limit"):
        beyond = (
            f"; of-limit only for cases moving more than the {format_bytes(llc)} LLC" if llc else ""
        )
        parts.append(
            f"limit {report['limit_gbps']:.1f} GB/s (median; {report['limit']['method']}, the "
            f"fastest of {len(report['limit']['first_gbps'])} ways; timed with each P case, whose "
            f"of-limit uses its own{beyond})"
        )
    parts += [
        plural(threads, "thread"),
        f"engine {engine}",
        f"torch {report['torch_version']}",
        f"NumPy {report['numpy_version']}",
        f"{report['profile']} sizes",
        f"median of {report['repeat']}",
        report["machine"]["cpu"],
    ]
    return " · ".join(parts)


def _regime(case: dict) -> str:
    return case.get("regime") or case["name"][0]


def _name(c: dict) -> str:
    return c["name"] if c["agrees"] else f"{c['name']} (results differ!)"


def _verdict(c: dict) -> str:
    if c.get("meets_target") is None:
        return NONE
    return ("yes" if c["meets_target"] else "**no**") + f" ({c['target']})"


# A table column: its header, whether it is right-aligned (numbers), and its cell for a record.
Column = tuple[str, bool, Callable[[dict], str]]


def _faults(c: dict) -> str:
    faults = c.get("page_faults", {})
    return f"{faults.get(c['torchnp_way'], 0):.0f} / {faults.get(c['baseline'], 0):.0f}"


CASE: Column = ("case", False, _name)
MOVED: Column = ("moved", True, lambda c: format_bytes(c["bytes"]))
BUILTIN: Column = ("built-in", False, lambda c: f"`{c['baseline']}`")
ITS_TIME: Column = ("its time", True, lambda c: format_seconds(c["baseline_s"]))
SPEEDUP: Column = ("speedup", True, lambda c: _ratio(c["speedup"], TIMES))
TARGET: Column = ("target met", False, _verdict)

STEADY: list[Column] = [
    CASE,
    MOVED,
    ("torchnp", True, lambda c: format_seconds(c["torchnp_s"])),
    ("first call", True, lambda c: format_seconds(c.get("torchnp_first_s"))),
    ("GB/s", True, lambda c: _ratio(c["gbps"], "")),
    ("of limit", True, lambda c: _ratio(c["of_limit"])),
    ("best built-in", False, BUILTIN[2]),
    ITS_TIME,
    SPEEDUP,
    ("vs torch", True, lambda c: _ratio(c["speedup_torch"], TIMES)),
    ("vs NumPy", True, lambda c: _ratio(c["speedup_numpy"], TIMES)),
]
KERNEL: Column = ("kernel", False, lambda c: f"`{c['kernel']}`" if c.get("kernel") else NONE)
SMALL: list[Column] = [
    CASE,
    ("torchnp per call", True, lambda c: format_seconds(c["torchnp_s"])),
    BUILTIN,
    ITS_TIME,
    SPEEDUP,
    TARGET,
]
LOADED: list[Column] = [
    CASE,
    MOVED,
    ("torchnp", True, lambda c: format_seconds(c["torchnp_s"])),
    ("torchnp, 1 thread", True, lambda c: format_seconds(c.get("torchnp_1_s"))),
    BUILTIN,
    ITS_TIME,
    SPEEDUP,
    ("vs 1 thread", True, lambda c: _ratio(c.get("vs_one_thread"), TIMES)),
    TARGET,
]
FIRST_CALL: list[Column] = [
    CASE,
    MOVED,
    ("torchnp first call", True, lambda c: format_seconds(c["torchnp_s"])),
    BUILTIN,
    ("its first call", True, lambda c: format_seconds(c["baseline_s"])),
    SPEEDUP,
    ("page faults (torchnp / built-in)", True, _faults),
    TARGET,
]
MANY: list[Column] = [
    CASE,
    MOVED,
    ("torchnp", True, lambda c: format_seconds(c["torchnp_s"])),
    BUILTIN,
    ITS_TIME,
    SPEEDUP,
    TARGET,
]


# The S/Z table with torchnp's column named for what it times: the patched call.
DROPIN: list[Column] = [
    CASE,
    ("patched, per call", True, lambda c: format_seconds(c["torchnp_s"])),
    *SMALL[2:],
]


def _table(cases: list[dict], columns: list[Column]) -> list[str]:
    lines = [
        "| " + " | ".join(head for head, _, _ in columns) + " |",
        "|" + "".join("---:|" if right else "---|" for _, right, _ in columns),
    ]
    for c in cases:
        lines.append("| " + " | ".join(cell(c) for _, _, cell in columns) + " |")
    return lines


def _steady_table(cases: list[dict]) -> list[str]:
    with_kernel = any(c.get("kernel") for c in cases)
    return _table(cases, [*STEADY, KERNEL] if with_kernel else STEADY)


REGIME_TITLES = {
    "P": "P · steady state: a warm loop over large tensors",
    "S": "S · small calls (per call)",
    "Z": "Z · zero-copy calls (per call)",
    "L": "L · one core busy with another process",
    "F": "F · first call in a fresh process",
    "T": "T · many tensors at once (per call)",
    "D": "D · drop-in: existing code's own calls, torchnp.patch() on against off (per call)",
}
_TABLES: dict[str, Callable[[list[dict]], list[str]]] = {
    "P": _steady_table,
    "S": lambda cases: _table(cases, SMALL),
    "Z": lambda cases: _table(cases, SMALL),
    "L": lambda cases: _table(cases, LOADED),
    "F": lambda cases: _table(cases, FIRST_CALL),
    "T": lambda cases: _table(cases, MANY),
    "D": lambda cases: _table(cases, DROPIN),
}


def markdown(report: dict) -> str:
    """The results as Markdown: the headline, then one table per regime that ran."""
    lines = [headline(report)]
    for regime, title in REGIME_TITLES.items():
        cases = [c for c in report["cases"] if _regime(c) == regime]
        if not cases:
            continue
        note = ""
        if regime == "F":
            processes = cases[0].get("processes", report.get("processes"))
            note = f" (median of {processes} fresh processes per way)"
        lines += ["", f"**{title}**{note}", "", *_TABLES[regime](cases)]
    return "\n".join(lines) + "\n"


def write_json(report: dict, path: str | Path) -> None:
    """The full report (every field of every case) as indented JSON."""
    Path(path).write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")


def write_plot(report: dict, path: str | Path) -> None:
    """A PNG with two bar charts per case: speedup over the best built-in, and fraction of limit."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is optional
    from matplotlib.figure import Figure

    cases = report["cases"]
    names = [c["name"] for c in cases]
    y = list(range(len(cases)))
    speedups = [c["speedup"] for c in cases]
    fractions = [c.get("of_limit") or 0.0 for c in cases]
    fig = Figure(figsize=(11, 0.45 * len(cases) + 1.8))
    FigureCanvasAgg(fig)
    left, right = fig.subplots(1, 2, sharey=True)
    # Bars grow from 1×, leftwards for a slowdown, on a log scale so 0.5× and 2× look alike.
    left.barh(
        y,
        [s - 1.0 for s in speedups],
        left=1.0,
        color=["tab:blue" if s >= 1 else "tab:red" for s in speedups],
    )
    left.set_xscale("log")
    low, high = min([*speedups, 0.5]) / 1.5, max([*speedups, 2.0]) * 1.5
    ticks = [t for t in (0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30, 100) if low <= t <= high]
    left.set_xlim(low, high)
    left.set_xticks(ticks, [f"{t:g}" for t in ticks])
    left.minorticks_off()
    left.axvline(1.0, color="black", linewidth=0.8)
    left.set_xlabel(f"speedup over the best built-in ({TIMES}, log scale)")
    left.set_yticks(y, names)
    left.invert_yaxis()
    right.barh(y, fractions, color="tab:green")
    right.axvline(1.0, color="black", linewidth=0.8)
    limit = report.get("limit_gbps")
    right.set_xlabel(
        "fraction of the copy limit" + ("" if limit is None else f" (median {limit:.1f} GB/s)")
    )
    for i, (s, f) in enumerate(zip(speedups, fractions, strict=True)):
        left.annotate(
            f"{s:.2f}",
            (s, i),
            xytext=(3 if s >= 1 else -3, 0),
            textcoords="offset points",
            ha="left" if s >= 1 else "right",
            va="center",
            fontsize=8,
        )
        label = "n/a" if cases[i].get("of_limit") is None else f"{f:.2f}"
        right.annotate(
            label, (f, i), xytext=(3, 0), textcoords="offset points", va="center", fontsize=8
        )
    for axis in (left, right):
        axis.grid(axis="x", alpha=0.3)
    fig.suptitle(
        f"torchnp bench · engine {report['engine']} · {plural(report['threads'], 'thread')} · "
        f"{report['profile']} sizes",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
