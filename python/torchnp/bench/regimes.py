"""Every benchmark case, by regime, and how ``--regimes`` / ``--cases`` choose among them."""

from __future__ import annotations

from torchnp.bench.cases import P_CASES, Case
from torchnp.bench.dropin_cases import D_CASES
from torchnp.bench.first_call import F_CASES, FirstCallCase
from torchnp.bench.loaded_cases import L_CASES
from torchnp.bench.small_cases import S_CASES, Z_CASES
from torchnp.bench.tree_cases import T_CASES

AnyCase = Case | FirstCallCase

# In report order. The letters are the case names' first letters.
REGIMES: dict[str, tuple[str, tuple[AnyCase, ...]]] = {
    "P": ("steady state: warm loop over large tensors", P_CASES),
    "S": ("small calls: 16 KiB and 1 KiB", S_CASES),
    "Z": ("zero-copy calls", Z_CASES),
    "L": ("one core busy with another process", L_CASES),
    "F": ("first call in a fresh process", F_CASES),
    "T": ("many tensors at once: trees, stacks, collate", T_CASES),
    "D": ("drop-in: existing code's calls with torchnp.patch() on against off", D_CASES),
}
CASES: tuple[AnyCase, ...] = tuple(c for _, cases in REGIMES.values() for c in cases)


def select(spec: str | None, regimes: str | None = None) -> list[AnyCase]:
    """The cases named by a comma list of keys or full names (``P2,S1k``), within the regimes
    named by a comma list of letters (``P,F``); every case of those regimes without `spec`,
    of every regime without `regimes`."""
    letters = [r.strip().upper() for r in (regimes or ",".join(REGIMES)).split(",") if r.strip()]
    unknown = [r for r in letters if r not in REGIMES]
    if unknown:
        raise ValueError(
            f"unknown regime(s) {', '.join(unknown)}; choose from {', '.join(REGIMES)}"
        )
    pool = [c for c in CASES if c.regime in letters]
    if not spec:
        return pool
    wanted = [w.strip() for w in spec.split(",") if w.strip()]
    chosen = [c for c in pool if c.key in wanted or c.name in wanted]
    missing = set(wanted) - {c.key for c in chosen} - {c.name for c in chosen}
    if missing:
        keys = ", ".join(c.key for c in pool)
        raise ValueError(f"unknown case(s) {', '.join(sorted(missing))}; choose from {keys}")
    return chosen
