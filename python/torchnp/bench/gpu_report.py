"""``bench --gpu``'s output: the G table and the link matrix as Markdown, and the matrix as a
plot (the cases and their timing are bench/gpu_cases.py)."""

from __future__ import annotations

from pathlib import Path

from torchnp.bench.report import NONE, TIMES, format_bytes, format_seconds


def _verdict(r: dict) -> str:
    if r["meets_target"] is None:
        return f"n/a, simulated ({r['target']})"
    return ("yes" if r["meets_target"] else "**no**") + f" ({r['target']})"


def gpu_markdown(report: dict) -> str:
    """The G table, then the link matrix (GB/s), under a headline that says what ran."""
    head = [
        f"bench --gpu · {report['device']} · {report['pipeline']}",
        f"engine {report['engine']}",
        f"torch {report['torch_version']} (CUDA {report['torch_cuda'] or NONE})",
        f"NumPy {report['numpy_version']}",
        f"{report['threads']} threads",
        f"{format_bytes(report['case_bytes'])} cases",
        f"median of {report['repeat']}",
        report["machine"]["cpu"],
    ]
    lines = [" · ".join(head)]
    if report["simulated"]:
        lines += ["", f"**{report['note']}**"]
    limit = "a memcpy" if report["simulated"] else "a pinned <-> device copy"
    lines += [
        "",
        f"GB/s: the result's bytes per second. link limit: {limit} of the bytes that must cross "
        "(bf16's for G3), in the same run; of link: its time over torchnp's. vs reference: "
        "the speedup over the built-in the target names.",
        "",
        "| case | moved | torchnp | GB/s | link limit | of link | best built-in | its time "
        "| speedup | vs reference | target met |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---|",
    ]
    for r in report["cases"]:
        name = r["name"] if r["agrees"] else f"{r['name']} (results differ!)"
        cells = [
            name,
            format_bytes(r["bytes"]),
            format_seconds(r["torchnp_s"]),
            f"{r['gbps']:.2f}",
            f"{format_seconds(r['link_limit_s'])} ({r['link_limit_gbps']:.1f} GB/s)",
            f"{r['of_link']:.2f}",
            f"`{r['baseline']}`",
            format_seconds(r["baseline_s"]),
            f"{r['speedup']:.2f}{TIMES}",
            f"{r['speedup_reference']:.2f}{TIMES}",
            _verdict(r),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    for f in report["failed_cases"]:
        lines.append(f"| {f['name']} (FAILED: {f['error']}) |" + f" {NONE} |" * 10)
    m = report["matrix"]
    if m is not None:
        lines += ["", f"**link matrix, GB/s** ({m['method']})", ""]
        kinds = [f"{r['host']} {r['direction']}" for r in m["rows"]]
        lines += ["| size | " + " | ".join(kinds) + " |", "|---:|" + "---:|" * len(kinds)]
        for i, n in enumerate(m["sizes"]):
            cells = [format_bytes(n), *(f"{r['points'][i]['gbps']:.2f}" for r in m["rows"])]
            lines.append("| " + " | ".join(cells) + " |")
    if report["meets_targets"] is not None:
        met = sum(bool(r["meets_target"]) for r in report["cases"])
        lines += ["", f"targets met: {met} of {len(report['cases'])}."]
    return "\n".join(lines) + "\n"


def write_gpu_plot(report: dict, path: str | Path) -> None:
    """A PNG: the link matrix (GB/s against size, one line per host memory and direction),
    with each G case's torchnp rate (crossing bytes per second) marked at its size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is optional
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    styles = {"pinned": "-", "pageable": "--"}
    matrix = report["matrix"] or {"rows": [], "sizes": []}
    for row in matrix["rows"]:
        ax.plot(
            [p["bytes"] for p in row["points"]],
            [p["gbps"] for p in row["points"]],
            linestyle=styles[row["host"]],
            marker="o",
            label=f"link: {row['host']} {row['direction'].upper()}",
        )
    for r in report["cases"]:
        ax.scatter([r["link_bytes"]], [r["link_gbps"]], marker="*", s=90, color="black", zorder=3)
        ax.annotate(
            r["name"].split("_", 1)[0],
            (r["link_bytes"], r["link_gbps"]),
            xytext=(4, 4),
            textcoords="offset points",
            fontsize=8,
        )
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = matrix["sizes"] or sorted({r["link_bytes"] for r in report["cases"]})
    ax.set_xticks(sizes, [format_bytes(s) for s in sizes], rotation=30)
    ax.minorticks_off()
    ax.set_xlabel("transfer size")
    ax.set_ylabel("GB/s (log scale); stars: torchnp's G cases")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    title = (
        f"torchnp bench --gpu · {report['device']} · {report['threads']} threads · "
        f"{format_bytes(report['case_bytes'])} cases\n{report['pipeline']}"
    )
    if report["simulated"]:
        title = "SIMULATED: the numbers mean nothing about GPUs\n" + title
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
