"""Size sweep, 1 KiB -> 1 GiB, for one transpose and one cast: is there a cliff anywhere?

For each source size (doubling) and each thread count it times torchnp into a fresh array,
torchnp into a warm ``out=`` array and the best built-in, and prints GB/s (bytes read + written
per second). The curves show the cache regimes (L2, L3, DRAM), what page faults cost fresh
outputs (fresh vs ``out=``), and from which size a second thread pays off.

    python benchmarks/sweep.py --json sweep.json --plot sweep.png
    python benchmarks/sweep.py --ops cast --max-bytes 64M --threads 1,2
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import torchnp
from torchnp.bench.timing import MIN_SAMPLE_S, CopyLimit, calibrate_inner, time_interleaved

WAYS = ("torchnp fresh", "torchnp out=", "built-in")
BUILTIN = {"transpose": "t.T.contiguous().numpy()", "cast": "a.astype(np.float32)"}
# A second thread "pays" once it makes torchnp out= at least this much faster than one thread.
THREADING_PAYS = 1.2
TIMES, NONE, AT_LEAST = "\u00d7", "\u2013", "\u2265"  # escaped for ruff's RUF001


def _ways(op: str, src_bytes: int) -> tuple[dict[str, Callable[[], object]], int]:
    """The three ways for `op` on a source of `src_bytes`, and the bytes one call moves."""
    if op == "transpose":
        m = (src_bytes // 4).bit_length() - 1
        t = torch.rand(1 << (m // 2), 1 << (m - m // 2))
        out = np.empty(t.T.shape, dtype=np.float32)
        ways = {
            "torchnp fresh": lambda: torchnp.to_numpy(t.T, order="C"),
            "torchnp out=": lambda: torchnp.to_numpy(t.T, out=out),
            "built-in": lambda: t.T.contiguous().numpy(),
        }
        return ways, 2 * t.nbytes
    t = torch.rand(src_bytes // 8, dtype=torch.float64)
    a = t.numpy()
    out = np.empty(a.shape, dtype=np.float32)
    ways = {
        "torchnp fresh": lambda: torchnp.to_numpy(t, dtype=np.float32),
        "torchnp out=": lambda: torchnp.to_numpy(t, out=out),
        "built-in": lambda: a.astype(np.float32),
    }
    return ways, t.nbytes + out.nbytes


def _measure(op: str, src_bytes: int, repeat: int) -> tuple[dict[str, float], int]:
    ways, moved = _ways(op, src_bytes)
    start = time.perf_counter()
    ways["torchnp out="]()
    first = time.perf_counter() - start
    for fn in ways.values():
        fn()  # warm-up
    inner = 1 if first >= MIN_SAMPLE_S else calibrate_inner(ways["torchnp out="])
    seconds = time_interleaved({k: (fn, inner) for k, fn in ways.items()}, repeat)
    return {k: moved / s / 1e9 for k, s in seconds.items()}, moved


def _cache_sizes() -> dict[str, int]:
    """Data/unified cache sizes of CPU 0 from sysfs ({'L2': bytes, ...}); empty if unknown."""
    sizes = {}
    for index in sorted(Path("/sys/devices/system/cpu/cpu0/cache").glob("index*")):
        try:
            if (index / "type").read_text().strip() == "Instruction":
                continue
            level = (index / "level").read_text().strip()
            text = (index / "size").read_text().strip()
        except OSError:
            continue
        unit = {"K": 1 << 10, "M": 1 << 20}.get(text[-1], 1)
        sizes[f"L{level}"] = int(text.rstrip("KM")) * unit
    return sizes


def _parse_bytes(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    text = text.strip().upper().removesuffix("IB").removesuffix("B")
    return int(text[:-1]) * units[text[-1]] if text[-1] in units else int(text)


def _human(n: int) -> str:
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:g} {unit}"
    return f"{n} B"


def sweep(
    ops: list[str], sizes: list[int], thread_counts: list[int], repeat: int, limit_bytes: int
) -> dict:
    """Every (op, size, threads) point, the copy limit per thread count, and the cache sizes."""
    points, limits = [], {}
    for threads in thread_counts:
        torch.set_num_threads(threads)
        limit = CopyLimit(limit_bytes, threads, repeat)
        limits[threads] = max(limit.first_gbps.values())
        limit.close()
    # Thread counts innermost: the machine's speed drifts, so the curves being compared are
    # measured seconds apart, not minutes.
    for op in ops:
        for size in sizes:
            for threads in thread_counts:
                torch.set_num_threads(threads)
                gbps, moved = _measure(op, size, repeat)
                points.append(
                    {"op": op, "src_bytes": size, "moved": moved, "threads": threads, "gbps": gbps}
                )
                cells = ", ".join(f"{k} {v:.2f}" for k, v in gbps.items())
                print(f"{op} {_human(size)} x{threads}: {cells} GB/s", file=sys.stderr, flush=True)
    return {
        "engine": torchnp.info().engine,
        "cpu_variant": torchnp.info().cpu_variant,
        "builtins": BUILTIN,
        "limit_gbps": limits,  # by thread count
        "caches": _cache_sizes(),
        "points": points,
    }


def thread_gain(result: dict, op: str) -> dict[int, float]:
    """torchnp out= at the most threads over one thread, by source size (empty if one count)."""
    counts = sorted({p["threads"] for p in result["points"]})
    speed = {
        (p["src_bytes"], p["threads"]): p["gbps"]["torchnp out="]
        for p in result["points"]
        if p["op"] == op
    }
    if len(counts) < 2:
        return {}
    sizes = sorted({s for s, _ in speed})
    return {s: speed[s, counts[-1]] / speed[s, counts[0]] for s in sizes}


def threading_pays_from(result: dict, op: str) -> int | None:
    """The smallest size where more threads gain THREADING_PAYS there and at the next size up
    (two in a row, so one noisy point does not decide)."""
    gain = list(thread_gain(result, op).items())
    for (size, here), (_, above) in itertools.pairwise(gain):
        if here >= THREADING_PAYS and above >= THREADING_PAYS:
            return size
    return None


def markdown(result: dict) -> str:
    """One table per op: GB/s of each way at each thread count, by source size."""
    counts = sorted({p["threads"] for p in result["points"]})
    limits = ", ".join(f"{t} threads {g:.1f} GB/s" for t, g in result["limit_gbps"].items())
    caches = ", ".join(f"{k} {_human(v)}" for k, v in result["caches"].items())
    lines = [f"engine {result['engine']} · copy limit: {limits} · caches: {caches}", ""]
    for op in dict.fromkeys(p["op"] for p in result["points"]):
        heads = [f"{w} {TIMES}{t}" for w in WAYS for t in counts] + ["thread gain (out=)"]
        gain = thread_gain(result, op)
        lines += [f"**{op}** (built-in: `{result['builtins'][op]}`), GB/s", ""]
        lines += ["| source | " + " | ".join(heads) + " |", "|---:" * (len(heads) + 1) + "|"]
        rows: dict[int, dict] = {}
        for p in result["points"]:
            if p["op"] == op:
                rows.setdefault(p["src_bytes"], {})[p["threads"]] = p["gbps"]
        for size, by_threads in rows.items():
            cells = [
                f"{by_threads[t][w]:.2f}" if t in by_threads else NONE for w in WAYS for t in counts
            ]
            cells.append(f"{gain[size]:.2f}{TIMES}" if size in gain else NONE)
            lines.append(f"| {_human(size)} | " + " | ".join(cells) + " |")
        pays = threading_pays_from(result, op)
        lines += [
            "",
            f"threading pays ({AT_LEAST}{THREADING_PAYS}{TIMES}) from: "
            + (_human(pays) if pays else "never in this range"),
            "",
        ]
    return "\n".join(lines)


def plot(result: dict, path: str) -> None:
    """GB/s against source size, one panel per op, cache sizes and copy limits marked."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    ops = list(dict.fromkeys(p["op"] for p in result["points"]))
    fig = Figure(figsize=(7 * len(ops), 5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(ops), squeeze=False)[0]
    colors = dict(zip(WAYS, ("tab:blue", "tab:green", "tab:gray"), strict=True))
    counts = sorted({p["threads"] for p in result["points"]})
    styles = dict(zip(counts, ("--", "-", ":", "-."), strict=False))
    sizes = sorted({p["src_bytes"] for p in result["points"]})
    for axis, op in zip(axes, ops, strict=True):
        for threads in counts:
            pts = [p for p in result["points"] if p["op"] == op and p["threads"] == threads]
            x = [p["src_bytes"] for p in pts]
            for way in WAYS:
                axis.plot(
                    x,
                    [p["gbps"][way] for p in pts],
                    styles.get(threads, "-"),
                    color=colors[way],
                    marker=".",
                    label=f"{way} {TIMES}{threads}",
                )
            axis.axhline(
                result["limit_gbps"][threads],
                color="black",
                linestyle=styles.get(threads, "-"),
                linewidth=0.8,
                label=f"copy limit {TIMES}{threads}",
            )
        for name, size in result["caches"].items():
            if name != "L1":
                axis.axvline(size, color="tab:red", alpha=0.4)
                axis.text(
                    size,
                    0.98,
                    f" {name}",
                    color="tab:red",
                    va="top",
                    transform=axis.get_xaxis_transform(),
                )
        axis.set_xscale("log", base=2)
        ticks = [1 << k for k in range(10, 31, 2) if sizes[0] <= 1 << k <= sizes[-1]]
        axis.set_xticks(ticks, [_human(t).replace(" ", "") for t in ticks])
        axis.minorticks_off()
        axis.set_xlabel("source size (bytes)")
        axis.set_ylabel("GB/s (read + written)")
        axis.set_title(f"{op} (built-in: {result['builtins'][op]})", fontsize=9)
        axis.grid(alpha=0.3)
        axis.legend(fontsize=7)
    fig.suptitle(f"torchnp size sweep · engine {result['engine']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    """Run the sweep; print the tables, optionally write JSON and a PNG."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--ops", default="transpose,cast", help="transpose, cast or both")
    p.add_argument("--min-bytes", default="1K", help="smallest source (default 1K)")
    p.add_argument("--max-bytes", default="1G", help="largest source (default 1G)")
    p.add_argument("--threads", help="thread counts, e.g. 1,2 (default 1 and torch's count)")
    p.add_argument("--repeat", type=int, default=5, help="timed runs per point (default 5)")
    p.add_argument("--limit-bytes", default="256M", help="each limit-copy array (default 256M)")
    p.add_argument("--json", metavar="PATH")
    p.add_argument("--plot", metavar="PATH")
    ns = p.parse_args(argv)
    ops = [o for o in ns.ops.split(",") if o]
    if not set(ops) <= set(BUILTIN):
        p.error(f"--ops: choose from {', '.join(BUILTIN)}")
    default_threads = sorted({1, torch.get_num_threads()})
    counts = [int(t) for t in ns.threads.split(",")] if ns.threads else default_threads
    lo, hi = _parse_bytes(ns.min_bytes), _parse_bytes(ns.max_bytes)
    sizes = [1 << k for k in range(lo.bit_length() - 1, hi.bit_length()) if lo <= 1 << k <= hi]
    result = sweep(ops, sizes, counts, ns.repeat, _parse_bytes(ns.limit_bytes))
    print(markdown(result))
    if ns.json:
        Path(ns.json).write_text(json.dumps(result, indent=2) + "\n")
    if ns.plot:
        plot(result, ns.plot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
