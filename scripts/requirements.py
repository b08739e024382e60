"""Print the requirements pyproject.toml names, one per line, for pip (`pip install $(...)`).

    python scripts/requirements.py build run test      # any of: build run test bench dev

build = [build-system].requires, run = [project].dependencies, the others the extras of the
same names. pyproject.toml is the one list; the set-up and CI scripts install from it through
this script.
"""

from __future__ import annotations

import pathlib
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib


def requirements(sections: list[str]) -> list[str]:
    data = tomllib.loads(
        (pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml").read_text()
    )
    extras = data["project"].get("optional-dependencies", {})
    out: list[str] = []
    for section in sections:
        if section == "build":
            out += data["build-system"]["requires"]
        elif section == "run":
            out += data["project"]["dependencies"]
        elif section in extras:
            out += extras[section]
        else:
            raise SystemExit(f"unknown section {section!r}: build, run or {', '.join(extras)}")
    return list(dict.fromkeys(out))  # each once, in order


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1:])))
