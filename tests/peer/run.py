"""PyTorch's own NumPy interop tests (test/test_numpy_interop.py, BSD licence; not shipped in
torch wheels, so a copy lives outside this repository), run with torchnp.patch() active.

    python tests/peer/run.py [path/to/test_numpy_interop.py]

Runs the file twice, without the patch (the reference: what this torch and NumPy give) and with
it (tests/peer/plugin.py wraps every test in ``torchnp.patch()``), and passes when the patched
run fails exactly where the reference fails plus the intended differences below, each listed
with its reason in the README ("Drop-in"). A difference that no longer shows fails too: the list
must stay true. The file is looked for at $TORCHNP_PEER_TESTS, then ../shared/peer/ beside the
repository (and beside the clone's origin), then /work/shared/peer/.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[2]
NAME = "test_numpy_interop.py"

# Tests the patch is meant to change, and why (the README lists the same).
INTENDED = {
    "test_from_numpy_cpu": (
        "torch.from_numpy of an array whose strides are not multiples of its itemsize: torch "
        "raises ValueError, the patch copies it (it accepts what torch refuses)"
    ),
    "test_numpy_scalar_cmp_cpu_bfloat16": (
        "Tensor.numpy() of a bfloat16 tensor: torch raises TypeError, the patch returns a "
        "shared ml_dtypes view"
    ),
}


def _candidates() -> list[pathlib.Path]:
    found = []
    if os.environ.get("TORCHNP_PEER_TESTS"):
        found.append(pathlib.Path(os.environ["TORCHNP_PEER_TESTS"]))
    found.append(ROOT.parent / "shared" / "peer" / NAME)
    try:  # a CI clone's origin: the working tree it was cloned from
        origin = subprocess.run(
            ["git", "-C", str(ROOT), "config", "--get", "remote.origin.url"],
            capture_output=True,
            text=True,
            check=False,
        ).stdout.strip()
        if origin and not origin.startswith(("http", "git@", "ssh:")):
            found.append(pathlib.Path(origin).resolve().parent / "shared" / "peer" / NAME)
    except OSError:
        pass
    found.append(pathlib.Path("/work/shared/peer") / NAME)
    return found


def find_tests() -> pathlib.Path:
    for path in _candidates():
        if path.is_file():
            return path
    looked = "\n  ".join(str(p) for p in _candidates())
    raise SystemExit(f"PyTorch's {NAME} not found; looked at:\n  {looked}\nset TORCHNP_PEER_TESTS")


def run(path: pathlib.Path, patched: bool) -> dict[str, str]:
    """Each test's outcome: passed, failed or skipped."""
    with tempfile.TemporaryDirectory() as tmp:
        report = pathlib.Path(tmp) / "report.xml"
        env = dict(os.environ, PYTHONPATH=str(ROOT / "tests" / "peer"))
        env["TORCHNP_PEER_UNPATCHED"] = "0" if patched else "1"
        env.setdefault("PYTORCH_PRINT_REPRO_ON_FAILURE", "0")
        cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "plugin"]
        cmd += ["--rootdir", tmp, f"--junitxml={report}", str(path)]
        proc = subprocess.run(cmd, cwd=tmp, env=env, capture_output=True, text=True, check=False)
        if not report.exists():
            sys.stdout.write(proc.stdout + proc.stderr)
            raise SystemExit("the peer tests did not run")
        outcomes = {}
        for case in ET.parse(report).iter("testcase"):
            name = case.get("name", "?")
            if case.find("failure") is not None or case.find("error") is not None:
                outcomes[name] = "failed"
            elif case.find("skipped") is not None:
                outcomes[name] = "skipped"
            else:
                outcomes[name] = "passed"
        if proc.returncode not in (0, 1):
            sys.stdout.write(proc.stdout[-4000:] + proc.stderr[-4000:])
            raise SystemExit(f"pytest exited {proc.returncode}")
        return outcomes


def _counts(outcomes: dict[str, str]) -> str:
    return ", ".join(
        f"{sum(v == k for v in outcomes.values())} {k}" for k in ("passed", "failed", "skipped")
    )


def main(argv: list[str]) -> int:
    path = pathlib.Path(argv[0]) if argv else find_tests()
    import torch

    import torchnp

    print(f"PyTorch's {NAME} ({path}), torch {torch.__version__}, engine {torchnp.info().engine}")
    reference = run(path, patched=False)
    patched = run(path, patched=True)
    print(f"  without the patch: {_counts(reference)}")
    print(f"  with torchnp.patch(): {_counts(patched)}")
    ok = True
    if set(reference) != set(patched):
        print(f"  the two runs collected different tests: {set(reference) ^ set(patched)}")
        ok = False
    for name in sorted(patched):
        ref, got = reference.get(name), patched[name]
        if name in INTENDED:
            if got != "failed" or ref != "passed":
                print(f"  STALE intended difference {name}: {ref} -> {got}")
                ok = False
            else:
                print(f"  intended difference: {name}: {INTENDED[name]}")
        elif got == "failed" and ref == "failed":
            print(f"  fails without the patch too (the test itself, not torchnp): {name}")
        elif got != ref:
            print(f"  DIFFERENCE {name}: {ref} without the patch, {got} with it")
            ok = False
    print("peer tests: " + ("as expected" if ok else "UNEXPECTED RESULTS"))
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
