"""Command line: ``python -m torchnp info | demo | bench``."""

from __future__ import annotations

import argparse
import os
import sys

DESCRIPTION = "torchnp's command line: what is running (info), a demo, the benchmark (bench)."


def _demo() -> None:
    import numpy as np
    import torch

    import torchnp

    t = torch.arange(12, dtype=torch.float32, requires_grad=True).reshape(3, 4)
    print("tensor (requires_grad, transposed view):\n", t.T)
    a = torchnp.to_numpy(t.T, dtype=np.float16, order="C")
    print("to_numpy(t.T, dtype=float16, order='C'):\n", a, a.dtype, a.flags.c_contiguous)
    b = np.arange(6, dtype=">i4")[::-1]
    print(
        "from_numpy(big-endian, reversed int32, dtype=torch.float32):",
        torchnp.from_numpy(b, dtype=torch.float32),
    )
    bf = torchnp.to_numpy(torch.tensor([1.5, -2.25], dtype=torch.bfloat16))
    print("bfloat16 tensor -> ml_dtypes array:", bf, bf.dtype)


def main(argv: list[str] | None = None) -> int:
    """Run one sub-command; returns its exit status. A reader that stops reading (``python -m
    torchnp info | head``) ends the command quietly: it chose to, which is not an error."""
    try:
        return _main(sys.argv[1:] if argv is None else list(argv))
    except BrokenPipeError:
        # Python would report the broken pipe again while flushing stdout at exit: point
        # stdout at /dev/null first (the recipe of Python's signal module documentation).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def _main(argv: list[str]) -> int:
    if argv[:1] == ["bench"]:
        # bench parses its own options (argparse.REMAINDER in a subparser drops leading "--x").
        from torchnp.bench import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m torchnp", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="engine, versions, build facts, CPU kernels, threads")
    sub.add_parser("demo", help="a few conversions torch's built-ins cannot do in one call")
    sub.add_parser("bench", help="the performance benchmark: python -m torchnp bench --help")
    ns = parser.parse_args(argv)
    if ns.command == "info":
        import torchnp

        print(torchnp.info(), flush=True)
    elif ns.command == "demo":
        _demo()
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
