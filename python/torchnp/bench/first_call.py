"""The F regime: the first call in a fresh process, where every output page is new to it.

A script that converts one large tensor pays for fresh memory: the kernel maps and zeroes every
page of the output on first touch, and nothing a warm loop measures tells how fast that is.
Each way of a case therefore runs in its own fresh Python process, which builds the inputs
(touched, so only the output is fresh), times the one call and reports the time, the page
faults taken during it and a digest of the result; after one untimed process that settles the
machine, the ways take turns, process by process, and each way's time is the median over the
processes. The digests of all ways must agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

import torchnp
from torchnp.bench.cases import NUMPY, TORCH, TORCHNP, Way, cast_ways, copy_ways, transpose_ways
from torchnp.bench.timing import balanced_orders

MIN_PROCESSES = 5  # each way's first call is the median over this many fresh processes


def _rand(n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.rand(n, dtype=dtype, generator=torch.Generator().manual_seed(0))


def _copy(nbytes: int) -> tuple[tuple[Way, ...], int]:
    t = _rand(nbytes // 4)
    return copy_ways(t), 2 * t.nbytes


def _transpose(side: int) -> tuple[tuple[Way, ...], int]:
    t = _rand(side * side).reshape(side, side)
    return transpose_ways(t), 2 * t.nbytes


def _cast(nbytes: int) -> tuple[tuple[Way, ...], int]:
    t = _rand(nbytes // 8, torch.float64)
    return cast_ways(t), t.nbytes + t.numel() * 4


def _negstride(nbytes: int) -> tuple[tuple[Way, ...], int]:
    a = _rand(nbytes // 4).numpy()
    return (
        Way(TORCHNP, "torchnp.from_numpy(a[::-1])", lambda: torchnp.from_numpy(a[::-1])),
        Way(NUMPY, "torch.from_numpy(a[::-1].copy())", lambda: torch.from_numpy(a[::-1].copy())),
        Way(TORCH, "torch.from_numpy(a).flip(0)", lambda: torch.from_numpy(a).flip(0)),
    ), 2 * a.nbytes


def _bigendian(nbytes: int) -> tuple[tuple[Way, ...], int]:
    a = _rand(nbytes // 4).numpy().astype(">f4")
    return (
        Way(TORCHNP, "torchnp.from_numpy(a)  # a.dtype == '>f4'", lambda: torchnp.from_numpy(a)),
        Way(NUMPY, "torch.from_numpy(a.astype('<f4'))", lambda: torch.from_numpy(a.astype("<f4"))),
    ), 2 * a.nbytes


@dataclass(frozen=True)
class FirstCallCase:
    """A first-call case: its ways (torchnp's first) are built inside each fresh process, for
    a profile's large size (``Sizes.large_bytes``: 64 MiB, the names' sizes; tiny for the
    smoke test)."""

    name: str
    summary: str
    build: Callable[[int], tuple[tuple[Way, ...], int]]

    @property
    def regime(self) -> str:
        return "F"

    @property
    def key(self) -> str:
        return self.name.split("_", 1)[0]


def _side(large: int) -> int:
    return round(large**0.5)  # 64 MiB -> 8192: an 8192² f32 matrix is 4 x 64 MiB


F_CASES: tuple[FirstCallCase, ...] = (
    FirstCallCase("F1_copy_64M", "64 MiB f32, copy=True", _copy),
    FirstCallCase("F2_copy_256M", "256 MiB f32, copy=True", lambda large: _copy(4 * large)),
    FirstCallCase(
        "F3_transpose_8192", "8192² f32 .T to C order", lambda large: _transpose(_side(large))
    ),
    FirstCallCase("F4_f64_to_f32_64M", "64 MiB f64 -> f32", _cast),
    FirstCallCase("F5_from_numpy_negstride_64M", "64 MiB f32 a[::-1] -> tensor", _negstride),
    FirstCallCase("F6_from_numpy_bigendian_64M", "64 MiB big-endian f32 -> tensor", _bigendian),
)
_BY_NAME = {c.name: c for c in F_CASES}


def _digest(result: object) -> str:
    a = result.numpy() if isinstance(result, torch.Tensor) else np.asarray(result)
    h = hashlib.blake2b(digest_size=16)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(np.ascontiguousarray(a).reshape(-1).view(np.uint8).data)
    return h.hexdigest()


def child(name: str, index: int, threads: int, large: int) -> None:
    """In the fresh process: build the case, time way `index` once, print one JSON line."""
    torch.set_num_threads(threads)
    ways, moved = _BY_NAME[name].build(large)
    fn = ways[index].fn
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    print(json.dumps({"s": seconds, "faults": faults, "digest": _digest(result), "bytes": moved}))


def _run_child(name: str, index: int, threads: int, large: int) -> dict:
    code = (
        f"from torchnp.bench.first_call import child; child({name!r}, {index}, {threads}, {large})"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ)
    )
    if proc.returncode != 0:
        raise RuntimeError(f"bench: the first-call process for {name} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_first_call_case(case: FirstCallCase, large: int, processes: int, threads: int) -> dict:
    """Each way's first call in `processes` fresh processes, the ways taking turns (in the orders
    of balanced_orders: a process that leaves the machine slow, as one that used up the host's
    free huge pages, hands that to every other way alike), after one untimed process; the
    case's record.

    The untimed process settles the machine after the previous case: on the dev VM the first
    process of a case took 35-40 ms where the same way's next ones took 6-17 (64 MiB cast and
    reversed copy, in every one of three runs), and that process was always torchnp's."""
    ways, _ = case.build(min(large, 1 << 16))  # here only for the labels and kinds
    _run_child(case.name, len(ways) - 1, threads, large)  # settling, not timed
    samples: dict[int, list[dict]] = {i: [] for i in range(len(ways))}
    for order in balanced_orders(len(ways), processes):
        for i in order:
            samples[i].append(_run_child(case.name, i, threads, large))
    seconds = {ways[i].label: statistics.median(s["s"] for s in v) for i, v in samples.items()}
    faults = {ways[i].label: statistics.median(s["faults"] for s in v) for i, v in samples.items()}
    digests = {s["digest"] for v in samples.values() for s in v}
    reference = samples[0][0]["digest"]
    disagree = [
        ways[i].label for i, v in samples.items() if any(s["digest"] != reference for s in v)
    ]
    mine = seconds[ways[0].label]
    best = {}
    for kind in (TORCH, NUMPY):
        labels = [w.label for w in ways if w.kind == kind]
        if labels:
            label = min(labels, key=seconds.__getitem__)
            best[kind] = (label, seconds[label])
    baseline, baseline_s = min(best.values(), key=lambda pair: pair[1])
    moved = samples[0][0]["bytes"]
    return {
        "name": case.name,
        "regime": "F",
        "summary": case.summary,
        "bytes": moved,
        "processes": processes,
        "threads": threads,
        "torchnp_way": ways[0].label,
        "torchnp_s": mine,
        "baseline": baseline,
        "baseline_s": baseline_s,
        "torch_way": best.get(TORCH, (None, None))[0],
        "torch_s": best.get(TORCH, (None, None))[1],
        "numpy_way": best.get(NUMPY, (None, None))[0],
        "numpy_s": best.get(NUMPY, (None, None))[1],
        "speedup": baseline_s / mine,
        "speedup_torch": None if TORCH not in best else best[TORCH][1] / mine,
        "speedup_numpy": None if NUMPY not in best else best[NUMPY][1] / mine,
        "gbps": moved / mine / 1e9,
        "page_faults": faults,
        "samples_s": {ways[i].label: [s["s"] for s in v] for i, v in samples.items()},
        "ways_s": seconds,
        "agrees": not disagree and len(digests) == 1,
        "disagreeing_ways": disagree,
    }
