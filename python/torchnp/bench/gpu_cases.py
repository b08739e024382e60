"""``bench --gpu``: device transfers (the G cases) against the best built-in and against the
link itself, and a matrix of the link's raw speed (pinned or pageable host memory, each way,
4 KiB up to the case size).

Every G case is timed with its ways taking turns (bench/timing.py): torchnp's call, the
built-in spellings a user would write (the first one is the issue's reference, the one its
target names), and the *link limit*: a copy of the bytes that must cross, between a page-locked
host buffer and device memory (``pinned.copy_(dev, non_blocking=True)`` then a device-wide
synchronize), so ``of_link = link_limit_s / torchnp_s`` is a fraction of what the bus does in
the same run. Every timed call ends with ``torch.cuda.synchronize()``: an upload is not done
when torch's call returns.

``--simulate`` runs the same cases on a machine without a GPU, through the host-simulated link
(``torchnp._device.simulated``): CPU tensors play the device tensors, torchnp's calls are the
``_async`` ones (the plain functions take their CPU fast path), the built-ins are torch's CPU
copies and the link limit is a memcpy of the same bytes. Its numbers say nothing about GPUs;
they show the code paths (staging ring, events, gathers, pinned arrays) run end to end.
"""

from __future__ import annotations

import contextlib
import gc
import os
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

import torchnp
from torchnp import _device
from torchnp.bench.cases import TORCH, TORCHNP, Way
from torchnp.bench.report import TIMES, format_bytes, format_seconds
from torchnp.bench.timing import MIN_SAMPLE_S, calibrate_inner, time_interleaved

# The sizes: 1 GiB transfers; --quick a quarter of that (a minute or so on an H200
# host, matrix included). Simulated: host memcpy through a worker thread, so 64 MiB at most.
GPU_BYTES = 1 << 30
GPU_QUICK_BYTES = 256 << 20
SIM_BYTES = 64 << 20
SIM_QUICK_BYTES = 8 << 20
MIN_CASE_BYTES = 1 << 20  # G4's smallest batch is one 1 MiB image
SMALL_BYTES = 4 << 10  # G5: latency, not bandwidth
MATRIX_MIN_BYTES = 4 << 10
# The simulated link's staging chunk: small enough that an 8 MiB case crosses in many chunks.
SIM_CHUNK_BYTES = 1 << 20
# G4's images: (N, 16, 128, 128) f32, 1 MiB each, permuted to NHWC.
NCHW_IMAGE = (16, 128, 128)
_LIMIT_KEY = "\0link limit"  # never a way's label

SIMULATED_NOTE = (
    "SIMULATED: host-simulated link, CPU tensors as the device, a memcpy as the link limit. "
    "The numbers say nothing about GPUs; they show that the code paths run."
)


@dataclass(frozen=True)
class Target:
    """The issue's target for one case: a fraction of the link (or none) and a speedup over
    the reference built-in (the case's first built-in way)."""

    of_link: float | None
    speedup: float

    def describe(self, reference: str) -> str:
        parts = [] if self.of_link is None else [f">= {self.of_link:.2f} of link"]
        return ", ".join([*parts, f">= {self.speedup:.2f}{TIMES} `{reference}`"])


TARGETS = {
    "G1": Target(0.8, 2.0),
    "G1o": Target(0.8, 2.0),  # as G1: a warm destination is only easier
    "G2": Target(0.8, 2.0),
    "G3": Target(None, 2.0),
    "G4": Target(None, 2.0),
    "G5": Target(None, 1.0),  # no slower than the built-in
}


def parse_bytes(text: str) -> int:
    """``"256M"``, ``"1G"``, ``"64KiB"`` or a plain count: the bytes (argparse's type=)."""
    s = text.strip().upper().removesuffix("IB").removesuffix("B")
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    try:
        return int(s[:-1]) * units[s[-1]] if s and s[-1] in units else int(s)
    except ValueError:
        raise ValueError(f"not a size: {text!r} (e.g. 256M, 1G, 1048576)") from None


# --- The two links: a CUDA device, and the host-simulated one ------------------------------


class CudaLink:
    """A CUDA device: torchnp's plain calls, torch's copies and a pinned buffer for the limit."""

    simulated = False

    def __init__(self, max_bytes: int) -> None:
        self.device = torch.device("cuda", torch.cuda.current_device())
        self.name = torch.cuda.get_device_name(self.device)
        link = _device.link_for(self.device)
        about = torchnp.info()
        self.pipeline = (
            f"torchnp pipeline ({link.name})"
            if link is not None
            else f"torch fallback (engine {about.engine}; CUDA module: {about.cuda})"
        )
        self._dev = torch.ones(max_bytes, dtype=torch.uint8, device=self.device)
        self._pinned = torch.empty(max_bytes, dtype=torch.uint8, pin_memory=True).fill_(1)
        self._pageable = torch.from_numpy(np.ones(max_bytes, np.uint8))  # every page mapped
        torch.cuda.synchronize()

    def sync(self) -> None:
        torch.cuda.synchronize()

    def to_numpy(self, t: torch.Tensor, **kwargs) -> np.ndarray:
        return torchnp.to_numpy(t, **kwargs)

    def from_numpy(self, a: np.ndarray) -> torch.Tensor:
        return torchnp.from_numpy(a, device=self.device)

    def spell(self, call: str, args: str) -> str:
        return f"torchnp.{call}({args})"

    def copy_fn(self, host: str, direction: str, nbytes: int) -> tuple[str, Callable[[], None]]:
        """A raw copy of `nbytes` between the pinned or pageable host buffer and the device."""
        h = (self._pinned if host == "pinned" else self._pageable)[:nbytes]
        d = self._dev[:nbytes]
        if direction == "d2h":
            return f"{host}.copy_(dev, non_blocking=True); sync", lambda: h.copy_(d, True)
        return f"dev.copy_({host}, non_blocking=True); sync", lambda: d.copy_(h, True)

    def limit_fn(self, direction: str, nbytes: int) -> tuple[str, Callable[[], None]]:
        return self.copy_fn("pinned", direction, nbytes)

    def stats(self) -> dict | None:
        link = _device.link_for(self.device)
        return None if link is None else {"staging": link.staging_stats()}

    def close(self) -> None:
        self._dev = self._pinned = self._pageable = torch.empty(0)
        torch.cuda.empty_cache()


class SimulatedLink:
    """The host-simulated link: CPU tensors as the device, torchnp's ``_async`` calls, torch's
    CPU copies as the built-ins, a memcpy of the same bytes as the limit."""

    simulated = True

    def __init__(self, max_bytes: int) -> None:
        self.device = torch.device("cpu")
        self.name = "host-simulated link"
        self.pipeline = (
            f"torchnp pipeline on the simulated link ({SIM_CHUNK_BYTES >> 10} KiB chunks)"
        )
        # Process-wide while it lasts: left by close(), or at once if the set-up fails.
        self._scope = contextlib.ExitStack()
        self._link = self._scope.enter_context(_device.simulated(chunk_bytes=SIM_CHUNK_BYTES))
        try:
            self._src = np.ones(max_bytes, np.uint8)
            self._dst = np.zeros(max_bytes, np.uint8)
            self._dev = torch.ones(max_bytes, dtype=torch.uint8)
            self._pinned = torchnp.empty_pinned(max_bytes, np.uint8)  # from the simulated link
            self._pinned.fill(1)
            self._pageable = np.ones(max_bytes, np.uint8)
        except BaseException:
            self._scope.close()
            raise

    def sync(self) -> None:
        pass

    def to_numpy(self, t: torch.Tensor, **kwargs) -> np.ndarray:
        return torchnp.to_numpy_async(t, **kwargs).result()

    def from_numpy(self, a: np.ndarray) -> torch.Tensor:
        return torchnp.from_numpy_async(a, device="cpu").result()

    def spell(self, call: str, args: str) -> str:
        return f"torchnp.{call}_async({args}).result()"

    def copy_fn(self, host: str, direction: str, nbytes: int) -> tuple[str, Callable[[], None]]:
        """Through torchnp's pipeline on the simulated link: a pinned host array takes one
        "DMA", a pageable one the staging ring."""
        h = (self._pinned if host == "pinned" else self._pageable)[:nbytes]
        d = self._dev[:nbytes]
        if direction == "d2h":
            return f"to_numpy_async(dev, out={host}).result()", lambda: self.to_numpy(d, out=h)
        return f"from_numpy_async({host}, device=dev).result()", lambda: self.from_numpy(h)

    def limit_fn(self, direction: str, nbytes: int) -> tuple[str, Callable[[], None]]:
        src, dst = self._src[:nbytes], self._dst[:nbytes]
        return "np.copyto (memcpy of the same bytes)", lambda: np.copyto(dst, src)

    def stats(self) -> dict:
        return dict(self._link.link_stats())

    def close(self) -> None:
        self._pinned = self._pageable = self._src = self._dst = np.empty(0)
        self._dev = torch.empty(0)
        gc.collect()
        self._scope.close()


Link = CudaLink | SimulatedLink


def device_problem(simulate: bool) -> str | None:
    """Why ``bench --gpu`` cannot run here (None when it can)."""
    if simulate:
        from torchnp import _engines

        if _engines.loaded_native() is None:
            return (
                "bench --gpu --simulate: the simulated link is the native engine's, and it is not "
                f"loaded ({torchnp.info().fallback_reason})"
            )
        return None
    if not torch.cuda.is_available():
        return (
            f"bench --gpu: no CUDA device (torch {torch.__version__}, CUDA "
            f"{torch.version.cuda or 'not in this torch build'}, torch.cuda.is_available() is "
            f"False; torchnp's CUDA module: {torchnp.info().cuda}). Run it on a GPU machine, or "
            "add --simulate to run the G cases on the host-simulated link"
        )
    return None


# --- The cases -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    """A G case with its inputs built: torchnp's way first, then the built-ins (the issue's
    reference first); the bytes of the result and the fewest bytes that must cross the link."""

    ways: tuple[Way, ...]
    bytes: int
    link_bytes: int
    per_call: bool = False


@dataclass(frozen=True)
class GpuCase:
    name: str
    summary: str
    direction: str  # "d2h" or "h2d": the way the link limit copies
    prepare: Callable[[Link, int], Prepared]

    @property
    def key(self) -> str:
        return self.name.split("_", 1)[0]


def _device_rand(link: Link, shape: tuple[int, ...]) -> torch.Tensor:
    g = torch.Generator(device=link.device).manual_seed(0)
    return torch.rand(shape, generator=g, device=link.device)


def _ways(link: Link, mine: tuple[str, Callable], gpu: list, sim: list) -> tuple[Way, ...]:
    builtins = sim if link.simulated else gpu
    return (Way(TORCHNP, *mine), *(Way(TORCH, label, fn) for label, fn in builtins))


def _g1(link: Link, nbytes: int) -> Prepared:
    t = _device_rand(link, (nbytes // 4,))

    def pinned_copy() -> np.ndarray:
        return torch.empty(t.shape, dtype=t.dtype, pin_memory=True).copy_(t).numpy()

    ways = _ways(
        link,
        (link.spell("to_numpy", "t"), lambda: link.to_numpy(t)),
        gpu=[
            ("t.cpu().numpy()", lambda: t.cpu().numpy()),
            ("torch.empty(.., pin_memory=True).copy_(t).numpy()", pinned_copy),
        ],
        sim=[
            ("t.clone().numpy()", lambda: t.clone().numpy()),
            ("t.numpy().copy()", lambda: t.numpy().copy()),
        ],
    )
    return Prepared(ways, t.nbytes, t.nbytes)


def _g1o(link: Link, nbytes: int) -> Prepared:
    t = _device_rand(link, (nbytes // 4,))
    outs = [np.zeros(t.shape, np.float32) for _ in range(3)]  # each way its own, warm

    def into(k: int, fill: Callable[[np.ndarray], object]) -> Callable[[], np.ndarray]:
        return lambda: (fill(outs[k]), outs[k])[1]

    ways = _ways(
        link,
        (link.spell("to_numpy", "t, out=out"), into(0, lambda o: link.to_numpy(t, out=o))),
        gpu=[
            ("torch.from_numpy(out).copy_(t)", into(1, lambda o: torch.from_numpy(o).copy_(t))),
            ("np.copyto(out, t.cpu().numpy())", into(2, lambda o: np.copyto(o, t.cpu().numpy()))),
        ],
        sim=[
            ("torch.from_numpy(out).copy_(t)", into(1, lambda o: torch.from_numpy(o).copy_(t))),
            ("np.copyto(out, t.numpy())", into(2, lambda o: np.copyto(o, t.numpy()))),
        ],
    )
    return Prepared(ways, t.nbytes, t.nbytes)


def _g2(link: Link, nbytes: int) -> Prepared:
    a = torch.rand(nbytes // 4, generator=torch.Generator().manual_seed(0)).numpy()
    dev = link.device
    ways = _ways(
        link,
        (link.spell("from_numpy", 'a, device="cuda"'), lambda: link.from_numpy(a)),
        gpu=[
            ("torch.from_numpy(a).cuda()", lambda: torch.from_numpy(a).to(dev)),
            (
                "torch.from_numpy(a).pin_memory().cuda(non_blocking=True)",
                lambda: torch.from_numpy(a).pin_memory().to(dev, non_blocking=True),
            ),
        ],
        sim=[
            ("torch.from_numpy(a).clone()", lambda: torch.from_numpy(a).clone()),
            ("torch.from_numpy(a.copy())", lambda: torch.from_numpy(a.copy())),
        ],
    )
    return Prepared(ways, a.nbytes, a.nbytes)


def _g3(link: Link, nbytes: int) -> Prepared:
    t = _device_rand(link, (nbytes // 4,)).to(torch.bfloat16)  # the f32 result is nbytes
    ways = _ways(
        link,
        (link.spell("to_numpy", "t, np.float32"), lambda: link.to_numpy(t, dtype=np.float32)),
        gpu=[
            ("t.float().cpu().numpy()", lambda: t.float().cpu().numpy()),
            ("t.cpu().float().numpy()", lambda: t.cpu().float().numpy()),
        ],
        sim=[("t.float().numpy()", lambda: t.float().numpy())],
    )
    return Prepared(ways, 2 * t.nbytes, t.nbytes)  # the bf16 bytes are all that must cross


def _g4(link: Link, nbytes: int) -> Prepared:
    c, h, w = NCHW_IMAGE
    batch = max(1, nbytes // (4 * c * h * w))
    t = _device_rand(link, (batch, c, h, w)).permute(0, 2, 3, 1)
    ways = _ways(
        link,
        (link.spell("to_numpy", 't, order="C"'), lambda: link.to_numpy(t, order="C")),
        gpu=[
            ("t.contiguous().cpu().numpy()", lambda: t.contiguous().cpu().numpy()),
            (
                "np.ascontiguousarray(t.cpu().numpy())",
                lambda: np.ascontiguousarray(t.cpu().numpy()),
            ),
        ],
        sim=[
            ("t.contiguous().numpy()", lambda: t.contiguous().numpy()),
            ("np.ascontiguousarray(t.numpy())", lambda: np.ascontiguousarray(t.numpy())),
        ],
    )
    n = t.numel() * t.element_size()
    return Prepared(ways, n, n)


def _g5(link: Link, nbytes: int) -> Prepared:
    t = _device_rand(link, (SMALL_BYTES // 4,))
    ways = _ways(
        link,
        (link.spell("to_numpy", "t"), lambda: link.to_numpy(t)),
        gpu=[("t.cpu().numpy()", lambda: t.cpu().numpy())],
        sim=[
            ("t.clone().numpy()", lambda: t.clone().numpy()),
            ("t.numpy().copy()", lambda: t.numpy().copy()),
        ],
    )
    return Prepared(ways, t.nbytes, t.nbytes, per_call=True)


G_CASES: tuple[GpuCase, ...] = (
    GpuCase("G1_d2h_fresh", "f32 device tensor -> new ndarray", "d2h", _g1),
    GpuCase("G1o_d2h_out", "f32 device tensor -> preallocated ndarray (out=)", "d2h", _g1o),
    GpuCase("G2_h2d_pageable", "pageable f32 ndarray -> device tensor", "h2d", _g2),
    GpuCase("G3_d2h_bf16_to_f32", "bf16 device tensor -> f32 ndarray", "d2h", _g3),
    GpuCase("G4_d2h_permuted", "NCHW.permute(0,2,3,1) device tensor -> C-order", "d2h", _g4),
    GpuCase("G5_d2h_small", "4 KiB f32 device tensor -> new ndarray (latency)", "d2h", _g5),
)


def select(spec: str | None) -> list[GpuCase]:
    """The G cases named by a comma list of keys or full names (all without `spec`)."""
    if not spec:
        return list(G_CASES)
    wanted = [w.strip() for w in spec.split(",") if w.strip()]
    chosen = [c for c in G_CASES if c.key in wanted or c.name in wanted]
    missing = set(wanted) - {c.key for c in chosen} - {c.name for c in chosen}
    if missing:
        keys = ", ".join(c.key for c in G_CASES)
        raise ValueError(f"unknown G case(s) {', '.join(sorted(missing))}; choose from {keys}")
    return chosen


# --- Running -------------------------------------------------------------------------------


def _synced(fn: Callable[[], object], link: Link) -> Callable[[], object]:
    def call() -> object:
        result = fn()
        link.sync()
        return result

    return call


def _same(a: object, b: object) -> bool:
    """The same values: device tensors compared on the device, everything else as arrays."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        return a.dtype == b.dtype and a.shape == b.shape and bool(torch.equal(a, b.to(a.device)))
    a = a.numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
    b = b.numpy() if isinstance(b, torch.Tensor) else np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


def _inner(fn: Callable[[], object]) -> tuple[int, float]:
    """Calls per sample (tiny work repeated, as the P regime does), and one call's time."""
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return (1 if once >= MIN_SAMPLE_S else calibrate_inner(fn)), once


def _stats_delta(before: dict | None, after: dict | None) -> dict | None:
    if before is None or after is None:
        return after
    counters = ("copies", "gathers", "bytes_d2h", "bytes_h2d", "events")
    return {k: v - before[k] if k in counters else v for k, v in after.items()}


def run_gpu_case(case: GpuCase, link: Link, nbytes: int, repeat: int) -> dict:
    """One case: warm up, check every built-in agrees with torchnp, time the ways and the link
    limit interleaved; the case's record."""
    prepared = case.prepare(link, nbytes)
    ways = prepared.ways
    calls = {w.label: _synced(w.fn, link) for w in ways}
    torchnp.empty_cache()
    before = link.stats()
    start = time.perf_counter()
    reference = calls[ways[0].label]()
    first_s = time.perf_counter() - start
    after = link.stats()  # what torchnp's own call did (copies and bytes on a simulated link)
    disagree = [w.label for w in ways[1:] if not _same(reference, calls[w.label]())]
    del reference
    limit_label, limit_call = link.limit_fn(case.direction, prepared.link_bytes)
    calls[_LIMIT_KEY] = _synced(limit_call, link)
    timed = {key: (fn, _inner(fn)[0]) for key, fn in calls.items()}
    seconds = time_interleaved(timed, repeat)
    limit_s = seconds.pop(_LIMIT_KEY)
    mine = seconds[ways[0].label]
    builtins = [w.label for w in ways[1:]]
    best = min(builtins, key=seconds.__getitem__)
    reference_way = builtins[0]
    record = {
        "name": case.name,
        "summary": case.summary,
        "direction": case.direction,
        "bytes": prepared.bytes,
        "link_bytes": prepared.link_bytes,
        "per_call": prepared.per_call,
        "torchnp_way": ways[0].label,
        "torchnp_s": mine,
        "torchnp_first_s": first_s,
        "baseline": best,
        "baseline_s": seconds[best],
        "speedup": seconds[best] / mine,
        "reference": reference_way,
        "reference_s": seconds[reference_way],
        "speedup_reference": seconds[reference_way] / mine,
        "link_limit_way": limit_label,
        "link_limit_s": limit_s,
        "link_limit_gbps": prepared.link_bytes / limit_s / 1e9,
        "gbps": prepared.bytes / mine / 1e9,
        "link_gbps": prepared.link_bytes / mine / 1e9,
        "of_link": limit_s / mine,
        "calls_per_sample": timed[ways[0].label][1],
        "agrees": not disagree,
        "disagreeing_ways": disagree,
        "ways_s": seconds,
        "link_stats": _stats_delta(before, after),
    }
    target = TARGETS[case.key]
    record["target"] = target.describe(reference_way)
    if link.simulated:
        record["meets_target"] = None  # a memcpy says nothing about a bus
    else:
        record["meets_target"] = record["speedup_reference"] >= target.speedup and (
            target.of_link is None or record["of_link"] >= target.of_link
        )
    return record


def matrix_sizes(max_bytes: int) -> list[int]:
    """4 KiB, 16 KiB, ... (powers of 4) up to max_bytes, which ends the list."""
    sizes = []
    n = MATRIX_MIN_BYTES
    while n < max_bytes:
        sizes.append(n)
        n *= 4
    return [*sizes, max_bytes]


HOSTS = ("pinned", "pageable")
DIRECTIONS = ("h2d", "d2h")


def run_matrix(link: Link, max_bytes: int, repeat: int, log: Callable[[str], None]) -> dict:
    """The link's speed for pinned and pageable host memory, each way, at every size; the four
    kinds take turns at each size."""
    sizes = matrix_sizes(max_bytes)
    kinds = [(h, d) for h in HOSTS for d in DIRECTIONS]
    rows = {f"{h} {d}": {"host": h, "direction": d, "way": None, "points": []} for h, d in kinds}
    for n in sizes:
        timed = {}
        for h, d in kinds:
            label, fn = link.copy_fn(h, d, n)
            rows[f"{h} {d}"]["way"] = label
            call = _synced(fn, link)
            timed[f"{h} {d}"] = (call, _inner(call)[0])
        seconds = time_interleaved(timed, repeat)
        for key, s in seconds.items():
            rows[key]["points"].append({"bytes": n, "seconds": s, "gbps": n / s / 1e9})
        log(
            f"link {format_bytes(n)}: "
            + ", ".join(f"{k} {n / s / 1e9:.2f} GB/s" for k, s in seconds.items())
        )
    method = (
        "torchnp's pipeline on the simulated link (pinned: torchnp.empty_pinned arrays)"
        if link.simulated
        else "torch copy_ between device memory and a pinned or pageable host buffer, then sync"
    )
    return {"method": method, "sizes": sizes, "rows": list(rows.values())}


def run_gpu(
    cases: Sequence[GpuCase],
    nbytes: int,
    profile: str,
    repeat: int,
    simulate: bool,
    log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True),
) -> dict:
    """Every chosen G case, then the link matrix; the report as a JSON-ready dict."""
    from torchnp.bench.runner import _cpu_name

    start = time.perf_counter()
    link: Link = SimulatedLink(nbytes) if simulate else CudaLink(nbytes)
    if simulate:
        log(SIMULATED_NOTE)
    log(f"gpu: {link.name}, {link.pipeline}, cases of {format_bytes(nbytes)}")
    records: list[dict] = []
    failed: list[dict] = []  # a case that raised: the others still run (one shot on a GPU)
    matrix = None
    try:
        for i, case in enumerate(cases, 1):
            gc.collect()
            try:
                record = run_gpu_case(case, link, nbytes, repeat)
            except Exception as exc:
                failed.append({"name": case.name, "error": f"{type(exc).__name__}: {exc}"})
                log(f"[{i}/{len(cases)}] {case.name}: FAILED\n{traceback.format_exc()}")
                continue
            records.append(record)
            log(_progress(i, len(cases), record, time.perf_counter() - start))
        try:
            matrix = run_matrix(link, nbytes, repeat, log)
        except Exception as exc:
            failed.append({"name": "link matrix", "error": f"{type(exc).__name__}: {exc}"})
            log(f"link matrix: FAILED\n{traceback.format_exc()}")
        stats = link.stats()
    finally:
        link.close()
    about = torchnp.info()
    judged = [r["meets_target"] for r in records if r["meets_target"] is not None]
    return {
        "kind": "gpu",
        "simulated": simulate,
        "note": SIMULATED_NOTE if simulate else None,
        "device": link.name,
        "pipeline": link.pipeline,
        "engine": about.engine,
        "cpu_variant": about.cpu_variant,
        "cuda_module": about.cuda,
        "staging": about.staging,
        "torchnp_version": about.torchnp_version,
        "torch_version": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "numpy_version": np.__version__,
        "threads": torch.get_num_threads(),
        "profile": profile,
        "case_bytes": nbytes,
        "repeat": repeat,
        "machine": {"cpu": _cpu_name(), "cores": os.cpu_count()},
        "cases": records,
        "failed_cases": failed,
        "matrix": matrix,
        "link_stats": stats,
        "agrees": all(r["agrees"] for r in records),
        "meets_targets": None if simulate or not judged else all(judged),
        "wall_s": time.perf_counter() - start,
    }


def _progress(index: int, total: int, r: dict, elapsed: float) -> str:
    rate = "" if r["per_call"] else f" ({r['gbps']:.2f} GB/s)"
    verdict = {None: "", True: ", target met", False: f"  (misses its target {r['target']})"}
    flag = "" if r["agrees"] else "  RESULTS DISAGREE: " + "; ".join(r["disagreeing_ways"])
    return (
        f"[{index}/{total}] {r['name']}: torchnp {format_seconds(r['torchnp_s'])}{rate}, "
        f"{r['baseline']} {format_seconds(r['baseline_s'])} -> {r['speedup']:.2f}x, "
        f"{r['of_link']:.2f} of link ({r['link_limit_gbps']:.2f} GB/s)"
        f"{verdict[r['meets_target']]} ({elapsed:.1f} s){flag}"
    )
