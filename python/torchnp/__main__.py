"""Command line: ``python -m torchnp info | demo | bench``."""

from __future__ import annotations

import argparse
import sys


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
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["bench"]:
        # bench parses its own options (argparse.REMAINDER in a subparser drops leading "--x").
        from torchnp.bench import main as bench_main

        return bench_main(argv[1:])
    parser = argparse.ArgumentParser(prog="python -m torchnp", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="engine, versions, build facts, CPU kernels, threads")
    sub.add_parser("demo", help="a few conversions torch's built-ins cannot do in one call")
    sub.add_parser("bench", help="the performance benchmark: python -m torchnp bench --help")
    ns = parser.parse_args(argv)
    if ns.command == "info":
        import torchnp

        print(torchnp.info())
    elif ns.command == "demo":
        _demo()
    return 0


if __name__ == "__main__":
    sys.exit(main())
