"""The benchmark's outputs: a Markdown table (the README's performance table), JSON, a PNG chart."""

from __future__ import annotations

import json
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
            return f"{n / size:.3g} {unit}"
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
    beyond = (
        f"; of-limit only for cases moving more than the {format_bytes(llc)} LLC" if llc else ""
    )
    return (
        f"limit {report['limit_gbps']:.1f} GB/s (median; {report['limit']['method']}, the fastest "
        f"of {len(report['limit']['first_gbps'])} ways; timed with each case, whose of-limit "
        f"uses its own{beyond}) · {plural(threads, 'thread')} · "
        f"engine {engine} · torch {report['torch_version']} · NumPy {report['numpy_version']} · "
        f"{report['profile']} sizes · median of {report['repeat']} · {report['machine']['cpu']}"
    )


def markdown(report: dict) -> str:
    """The results as a Markdown table, preceded by the headline."""
    with_kernel = any(c.get("kernel") for c in report["cases"])
    columns = [
        "case",
        "moved",
        "torchnp",
        "first call",
        "GB/s",
        "of limit",
        "best built-in",
        "its time",
        "speedup",
        "vs torch",
        "vs NumPy",
    ]
    if with_kernel:
        columns.append("kernel")
    lines = [
        headline(report),
        "",
        "| " + " | ".join(columns) + " |",
        "|---|" + "---:|" * 5 + "---|" + "---:|" * 4 + ("---|" if with_kernel else ""),
    ]
    for c in report["cases"]:
        name = c["name"] if c["agrees"] else f"{c['name']} (results differ!)"
        row = [
            name,
            format_bytes(c["bytes"]),
            format_seconds(c["torchnp_s"]),
            format_seconds(c.get("torchnp_first_s")),
            _ratio(c["gbps"], ""),
            _ratio(c["of_limit"]),
            f"`{c['baseline']}`",
            format_seconds(c["baseline_s"]),
            _ratio(c["speedup"], TIMES),
            _ratio(c["speedup_torch"], TIMES),
            _ratio(c["speedup_numpy"], TIMES),
        ]
        if with_kernel:
            row.append(f"`{c['kernel']}`" if c.get("kernel") else NONE)
        lines.append("| " + " | ".join(row) + " |")
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
    fractions = [c["of_limit"] or 0.0 for c in cases]
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
    right.set_xlabel(f"fraction of the copy limit (median {report['limit_gbps']:.1f} GB/s)")
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
        label = "n/a" if cases[i]["of_limit"] is None else f"{f:.2f}"
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
