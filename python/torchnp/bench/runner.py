"""Run the cases: warm up, check every way agrees with torchnp, time, and compute the ratios."""

from __future__ import annotations

import contextlib
import gc
import os
import platform
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.utils._pytree as pytree

import torchnp
from torchnp import _engines
from torchnp.bench.cases import NUMPY, TORCH, TORCHNP, TORCHNP_1, Case, Sizes, Way
from torchnp.bench.dropin_cases import D1_TARGET
from torchnp.bench.first_call import MIN_PROCESSES, FirstCallCase, run_first_call_case
from torchnp.bench.loaded_cases import Competitor
from torchnp.bench.regimes import REGIMES, AnyCase
from torchnp.bench.report import TIMES, format_seconds, plural
from torchnp.bench.timing import (
    MIN_SAMPLE_S,
    CopyLimit,
    calibrate_inner,
    last_level_cache_bytes,
    thread_count,
    time_interleaved,
)
from torchnp.bench.tree_cases import T_TARGETS

# Two arrays of this size are copied for the limit: far past any last-level cache, and past
# glibc 2.36's switch (at 16× its non-temporal threshold, ~192 MiB on the 2-core development
# machine) to a 4-page-interleaved non-temporal memcpy that ran 1.7× faster there (30 vs 17 GB/s
# at 64 MiB): the limit is what the memory system can do, not what a smaller memcpy happens to.
LIMIT_ARRAY_BYTES = 256 << 20
_LIMIT_KEY = "\0limit"  # never a way's label
# The zero-copy target: torchnp's per-call time at most this multiple of the built-in's (a view
# costs ~0.5 µs; the policy's checks cost the rest).
Z_TARGET = 1.3


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _as_array(result: object) -> np.ndarray:
    if isinstance(result, torch.Tensor):
        return result.numpy()
    return np.asarray(result)


def _agrees(reference: object, other: object) -> bool:
    """The same values: arrays and tensors by dtype, shape and elements; trees (a dict of arrays,
    a collated batch) leaf by leaf, whatever their container types."""
    mine, theirs = pytree.tree_leaves(reference), pytree.tree_leaves(other)
    if len(mine) != 1 or len(theirs) != 1 or mine[0] is not reference:
        return len(mine) == len(theirs) and all(map(_agrees, mine, theirs))
    if not isinstance(reference, (np.ndarray, torch.Tensor)):
        return bool(reference == other)
    a, b = _as_array(reference), _as_array(other)
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


def _best(
    ways: Sequence[Way], seconds: dict[str, float], kind: str
) -> tuple[str | None, float | None]:
    mine = [w.label for w in ways if w.kind == kind]
    if not mine:
        return None, None
    label = min(mine, key=seconds.__getitem__)
    return label, seconds[label]


def _kernels(names: list[str]) -> str | None:
    """The plans' kernel names joined (distinct ones with their counts, for a tree's many)."""
    if len(names) <= 3:
        return " + ".join(names) or None
    counts = Counter(names)
    return " + ".join(f"{n} x{k}" if k > 1 else n for n, k in counts.most_common(3)) + (
        f" + {len(counts) - 3} more" if len(counts) > 3 else ""
    )


def _setting(way: Way) -> contextlib.AbstractContextManager:
    return way.setting() if way.setting is not None else contextlib.nullcontext()


def _warm_up(ways: Sequence[Way]) -> tuple[float, str | None, list[str]]:
    """Call each way once: torchnp's first call time, the kernels of the plans that call ran
    (None for a zero-copy call, or an engine without plans), and the ways that disagree."""
    engine = _engines.active()
    recording = getattr(engine, "recording", None)
    with (
        recording() if recording is not None else contextlib.nullcontext([]) as plans,
        _setting(ways[0]),
    ):
        start = time.perf_counter()
        reference = ways[0].fn()
        first_s = time.perf_counter() - start
    kernel = _kernels([p.name for p in plans])
    disagree = []
    for w in ways[1:]:
        with thread_count(w.threads), _setting(w):
            if not _agrees(reference, w.fn()):
                disagree.append(w.label)
    return first_s, kernel, disagree


def run_case(
    case: Case, sizes: Sizes, repeat: int, limit: CopyLimit | None, llc_bytes: int
) -> dict:
    """Time one case, with the limit copy (where given) taking its turn among the ways; the
    case's record.

    ``of_limit`` is reported only for cases whose data (bytes read + written) exceeds the
    last-level cache: below it a copy runs from cache, faster than memory can, and a fraction of
    a memory-bound limit says nothing. A way with ``threads`` runs at that torch thread count
    (set off the clock); a TORCHNP_1 way is reported as ``torchnp_1_s`` and ``vs_one_thread``."""
    prepared = case.prepare(sizes)
    ways = prepared.ways
    assert ways[0].kind == TORCHNP
    # torchnp's first call runs with an empty output pool: what a one-off conversion costs
    # (fresh pages, zeroed by the kernel). The timed calls after it reuse pool memory.
    torchnp.empty_cache()
    first_s, kernel, disagree = _warm_up(ways)
    with _setting(ways[0]):
        inner = 1 if first_s >= MIN_SAMPLE_S else calibrate_inner(ways[0].fn)
    timed: dict[str, tuple] = {w.label: (w.fn, inner, w.threads, w.setting) for w in ways}
    if limit is not None:
        timed[_LIMIT_KEY] = (limit.fn, limit.inner)
    seconds = time_interleaved(timed, repeat)
    limit_bps = None if limit is None else limit.bytes_moved / seconds.pop(_LIMIT_KEY)
    mine = seconds[ways[0].label]
    torch_way, torch_s = _best(ways, seconds, TORCH)
    numpy_way, numpy_s = _best(ways, seconds, NUMPY)
    _, one_thread_s = _best(ways, seconds, TORCHNP_1)
    baseline, baseline_s = min(
        ((w, s) for w, s in ((torch_way, torch_s), (numpy_way, numpy_s)) if s is not None),
        key=lambda pair: pair[1],
    )
    moved = prepared.bytes_moved
    beyond_cache = moved > llc_bytes and limit_bps is not None
    record = {
        "name": case.name,
        "regime": case.regime,
        "summary": case.summary,
        "bytes": moved,
        "torchnp_way": ways[0].label,
        "torchnp_s": mine,
        "torchnp_first_s": first_s,
        "baseline": baseline,
        "baseline_s": baseline_s,
        "torch_way": torch_way,
        "torch_s": torch_s,
        "numpy_way": numpy_way,
        "numpy_s": numpy_s,
        "speedup": baseline_s / mine,
        "speedup_torch": None if torch_s is None else torch_s / mine,
        "speedup_numpy": None if numpy_s is None else numpy_s / mine,
        "torchnp_1_s": one_thread_s,
        "vs_one_thread": None if one_thread_s is None else one_thread_s / mine,
        "gbps": moved / mine / 1e9 if moved else None,
        "of_limit": moved / mine / limit_bps if beyond_cache else None,
        "limit_gbps": None if limit_bps is None else limit_bps / 1e9,
        "per_call": prepared.per_call,
        "calls_per_sample": inner,
        "kernel": kernel,
        "agrees": not disagree,
        "disagreeing_ways": disagree,
        "ways_s": seconds,
    }
    record["target"], record["meets_target"] = meets_target(record)
    return record


def meets_target(record: dict) -> tuple[str | None, bool | None]:
    """The issue's target for the record's regime, and whether the record meets it (None, None
    for the steady state, whose target is "no regression": a comparison across runs)."""
    regime, speedup = record["regime"], record["speedup"]
    if regime in ("S", "F"):
        return f">= 1.00{TIMES}", speedup >= 1.0
    if regime == "Z":
        return f"<= {Z_TARGET:.2f}{TIMES} its time", record["torchnp_s"] <= Z_TARGET * record[
            "baseline_s"
        ]
    if regime == "D":
        if record["name"].startswith("D1"):  # zero-copy: what the patch costs a call
            ok = record["torchnp_s"] <= D1_TARGET * record["baseline_s"]
            return f"<= {D1_TARGET:.2f}{TIMES} its time", ok
        return None, None  # calls torch refuses or copies: shown against the rewrite they need
    if regime == "T":
        need = T_TARGETS[record["name"].split("_", 1)[0].rstrip("w")]
        return f">= {need:.2f}{TIMES}", speedup >= need
    if regime == "L":
        ok = speedup >= 1.0 and (record["vs_one_thread"] is None or record["vs_one_thread"] >= 1.0)
        return f">= 1.00{TIMES}, and >= 1 thread", ok
    return None, None


def _progress(index: int, total: int, record: dict, elapsed: float) -> str:
    mine, base = record["torchnp_s"], record["baseline_s"]
    rate = (
        ""
        if record.get("gbps") is None or record.get("per_call")
        else (f" ({record['gbps']:.1f} GB/s)")
    )
    extra = "" if record.get("of_limit") is None else f", {record['of_limit']:.2f} of limit"
    if record.get("limit_gbps") is not None:
        extra += f" (limit {record['limit_gbps']:.1f} GB/s)"
    if record.get("vs_one_thread") is not None:
        extra += f", {record['vs_one_thread']:.2f}x its 1-thread time"
    if record.get("processes"):
        extra += f", median of {record['processes']} fresh processes"
    if record.get("meets_target") is False:
        extra += f"  (misses its target {record['target']})"
    flag = (
        "" if record["agrees"] else "  RESULTS DISAGREE: " + "; ".join(record["disagreeing_ways"])
    )
    return (
        f"[{index}/{total}] {record['name']}: torchnp {format_seconds(mine)}{rate}, "
        f"{record['baseline']} {format_seconds(base)} -> {record['speedup']:.2f}x{extra} "
        f"({elapsed:.1f} s){flag}"
    )


def run_benchmark(
    cases: Sequence[AnyCase],
    sizes: Sizes,
    profile: str,
    repeat: int,
    limit_bytes: int = LIMIT_ARRAY_BYTES,
    processes: int = MIN_PROCESSES,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> dict:
    """Measure the copy limit (when a steady-state case is chosen), then every case, regime by
    regime; the whole report as a JSON-ready dict.

    The L cases run while a competing process keeps one core busy (started before the first of
    them, stopped after the last); the F cases run each way in `processes` fresh processes."""
    start = time.perf_counter()
    threads = torch.get_num_threads()
    limit = None
    if any(c.regime == "P" for c in cases):
        limit = CopyLimit(limit_bytes, threads, repeat)
        candidates = ", ".join(f"{k} {v:.1f} GB/s" for k, v in limit.first_gbps.items())
        log(f"limit: {limit.method} at {plural(threads, 'thread')} (of {candidates})")
    llc_bytes = last_level_cache_bytes()
    records: list[dict] = []
    index = 0
    try:
        for regime, (description, _) in REGIMES.items():
            chosen = [c for c in cases if c.regime == regime]
            if not chosen:
                continue
            log(f"{regime}: {description}")
            competitor = Competitor() if regime == "L" else contextlib.nullcontext()
            with competitor:
                for case in chosen:
                    index += 1
                    gc.collect()  # the previous case's arrays are gone before this allocates
                    if isinstance(case, FirstCallCase):
                        record = run_first_call_case(case, sizes.large_bytes, processes, threads)
                        record["target"], record["meets_target"] = meets_target(record)
                    else:
                        record = run_case(
                            case, sizes, repeat, limit if regime == "P" else None, llc_bytes
                        )
                    records.append(record)
                    log(_progress(index, len(cases), record, time.perf_counter() - start))
    finally:
        if limit is not None:
            limit.close()
    per_case = [r["limit_gbps"] for r in records if r.get("limit_gbps") is not None]
    about = torchnp.info()
    return {
        "limit_gbps": statistics.median(per_case) if per_case else None,
        "threads": threads,
        "engine": about.engine,
        "cpu_variant": about.cpu_variant,
        "fallback_reason": about.fallback_reason,
        "torchnp_version": about.torchnp_version,
        "torch_version": torch.__version__,
        "numpy_version": np.__version__,
        "profile": profile,
        "repeat": repeat,
        "processes": processes,
        "regimes": [r for r in REGIMES if any(c.regime == r for c in cases)],
        "limit": None
        if limit is None
        else {
            "method": limit.method,
            "winner": limit.winner,
            "array_bytes": limit.array_bytes,
            "threads": threads,
            "first_gbps": limit.first_gbps,
            "per_case_min_gbps": min(per_case),
            "per_case_max_gbps": max(per_case),
        },
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count(), "llc_bytes": llc_bytes},
        "wall_s": time.perf_counter() - start,
        "cases": records,
    }
