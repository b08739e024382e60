"""``bench --sweep``: one copy and one transpose from 16 KiB to 256 MiB, torchnp against the
built-in at every size, to show where torchnp wins, where it only ties and where the curves
cross. Warm loops (the way the P regime times them), each size's ways taking turns.
"""

from __future__ import annotations

import gc
import itertools
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import torchnp
from torchnp.bench.cases import Way, copy_ways, transpose_ways
from torchnp.bench.report import NONE, TIMES, format_bytes, format_seconds
from torchnp.bench.timing import MIN_SAMPLE_S, calibrate_inner, time_interleaved

# 16 KiB, 64 KiB, ..., 256 MiB: the tensor's size (a square one for the transpose).
SIZES = tuple(16 << 10 << (2 * k) for k in range(8))
TINY_SIZES = SIZES[:2]
# The sweep's target: at no size is torchnp more than 5 % slower than the built-in.
SWEEP_TARGET = 0.95


def _copy_ways(nbytes: int) -> tuple[Way, ...]:
    return copy_ways(torch.rand(nbytes // 4, generator=torch.Generator().manual_seed(0)))


def _transpose_ways(nbytes: int) -> tuple[Way, ...]:
    side = math.isqrt(nbytes // 4)
    return transpose_ways(torch.rand((side, side), generator=torch.Generator().manual_seed(0)))


OPS: dict[str, Callable[[int], tuple[Way, ...]]] = {
    "copy": _copy_ways,
    "transpose": _transpose_ways,
}


def _point(op: str, nbytes: int, repeat: int) -> dict:
    ways = OPS[op](nbytes)
    torchnp.empty_cache()
    reference = ways[0].fn()
    disagree = []
    for w in ways[1:]:
        other = np.asarray(w.fn())
        if not (other.dtype == reference.dtype and np.array_equal(other, reference)):
            disagree.append(w.label)
    del reference
    start = time.perf_counter()
    ways[0].fn()
    once = time.perf_counter() - start
    inner = 1 if once >= MIN_SAMPLE_S else calibrate_inner(ways[0].fn)
    seconds = time_interleaved({w.label: (w.fn, inner) for w in ways}, repeat)
    mine = seconds[ways[0].label]
    baseline = min((w.label for w in ways[1:]), key=seconds.__getitem__)
    return {
        "op": op,
        "bytes": nbytes,
        "torchnp_s": mine,
        "baseline": baseline,
        "baseline_s": seconds[baseline],
        "speedup": seconds[baseline] / mine,
        "ways_s": seconds,
        "agrees": not disagree,
        "disagreeing_ways": disagree,
    }


def crossovers(points: list[dict]) -> list[float]:
    """Sizes (bytes, interpolated on log scales) where one op's speedup crosses 1.0."""
    found = []
    for a, b in itertools.pairwise(points):
        sa, sb = math.log(a["speedup"]), math.log(b["speedup"])
        if (sa < 0) != (sb < 0):
            f = sa / (sa - sb)
            found.append(math.exp(math.log(a["bytes"]) + f * math.log(b["bytes"] / a["bytes"])))
    return found


def run_sweep(
    sizes: tuple[int, ...],
    repeat: int,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> dict:
    """Every op at every size; the report as a JSON-ready dict."""
    start = time.perf_counter()
    points: dict[str, list[dict]] = {}
    for op in OPS:
        points[op] = []
        for nbytes in sizes:
            gc.collect()
            p = _point(op, nbytes, repeat)
            points[op].append(p)
            flag = "" if p["agrees"] else "  RESULTS DISAGREE: " + "; ".join(p["disagreeing_ways"])
            log(
                f"sweep {op} {format_bytes(nbytes)}: torchnp {format_seconds(p['torchnp_s'])}, "
                f"{p['baseline']} {format_seconds(p['baseline_s'])} -> {p['speedup']:.2f}x{flag}"
            )
    worst = min(p["speedup"] for ps in points.values() for p in ps)
    about = torchnp.info()
    from torchnp.bench.runner import _cpu_name

    return {
        "kind": "sweep",
        "engine": about.engine,
        "cpu_variant": about.cpu_variant,
        "threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "repeat": repeat,
        "machine": {"cpu": _cpu_name()},
        "points": points,
        "crossovers": {op: crossovers(ps) for op, ps in points.items()},
        "worst_speedup": worst,
        "target": SWEEP_TARGET,
        "meets_target": worst >= SWEEP_TARGET,
        "agrees": all(p["agrees"] for ps in points.values() for p in ps),
        "wall_s": time.perf_counter() - start,
    }


def sweep_markdown(report: dict) -> str:
    """One row per size: each op's torchnp time, built-in time and speedup."""
    ops = list(report["points"])
    head = ["size"]
    for op in ops:
        head += [f"{op}: torchnp", "built-in", "speedup"]
    lines = [
        f"size sweep · engine {report['engine']} · {report['threads']} threads · torch "
        f"{report['torch_version']} · median of {report['repeat']} · {report['machine']['cpu']}",
        "",
        "| " + " | ".join(head) + " |",
        "|---:|" + "---:|---|---:|" * len(ops),
    ]
    by_size = {p["bytes"]: {} for ps in report["points"].values() for p in ps}
    for op, ps in report["points"].items():
        for p in ps:
            by_size[p["bytes"]][op] = p
    for nbytes, row_points in by_size.items():
        row = [format_bytes(nbytes)]
        for op in ops:
            p = row_points.get(op)
            if p is None:
                row += [NONE] * 3
                continue
            row += [
                format_seconds(p["torchnp_s"]),
                f"`{p['baseline']}` {format_seconds(p['baseline_s'])}",
                f"{p['speedup']:.2f}{TIMES}",
            ]
        lines.append("| " + " | ".join(row) + " |")
    cross = "; ".join(
        f"{op} at " + (", ".join(format_bytes(int(c)) for c in cs) if cs else "none")
        for op, cs in report["crossovers"].items()
    )
    verdict = "met" if report["meets_target"] else "missed"
    lines += [
        "",
        f"crossovers (speedup = 1): {cross}. Worst speedup {report['worst_speedup']:.2f}"
        f"{TIMES} (target >= {report['target']:.2f}{TIMES}: {verdict}).",
    ]
    return "\n".join(lines) + "\n"


def write_sweep_plot(report: dict, path: str | Path) -> None:
    """A PNG: speedup over the built-in against size, one line per op, crossovers marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # lazy: matplotlib is optional
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 5))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    for op, ps in report["points"].items():
        line = ax.plot([p["bytes"] for p in ps], [p["speedup"] for p in ps], marker="o", label=op)[
            0
        ]
        for c in report["crossovers"][op]:
            ax.axvline(c, color=line.get_color(), linestyle=":", linewidth=1)
            ax.annotate(
                format_bytes(int(c)),
                (c, 1.0),
                xytext=(3, 6),
                textcoords="offset points",
                fontsize=8,
                color=line.get_color(),
            )
    ax.axhline(1.0, color="black", linewidth=0.8)
    ax.axhline(report["target"], color="tab:red", linewidth=0.8, linestyle="--", label="target")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    sizes = sorted({p["bytes"] for ps in report["points"].values() for p in ps})
    ax.set_xticks(sizes, [format_bytes(s) for s in sizes], rotation=30)
    ax.minorticks_off()
    speedups = [p["speedup"] for ps in report["points"].values() for p in ps]
    ticks = [t for t in (0.5, 0.75, 1, 1.5, 2, 3, 5, 10, 20) if min(speedups) / 1.3 <= t]
    ticks = [t for t in ticks if t <= max(speedups) * 1.3] or [1]
    ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
    ax.set_xlabel("tensor size")
    ax.set_ylabel(f"speedup over the best built-in ({TIMES}, log scale)")
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(
        f"torchnp bench --sweep · engine {report['engine']} · {report['threads']} threads",
        fontsize=10,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
