"""Put a benchmark table into README.md between its bench markers.

    python -m torchnp bench --quick --markdown bench.md --json bench.json
    python benchmarks/update_readme.py bench.md

The table is the harness's own Markdown, pasted as it is: the README never holds numbers that
no run produced.
"""

from __future__ import annotations

import argparse
import pathlib
import re

START, END = "<!-- bench:start -->", "<!-- bench:end -->"


def splice(readme: str, table: str) -> str:
    """README text with everything between the markers replaced by `table`."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README has no {START} ... {END} section")
    return pattern.sub(lambda _: f"{START}\n{table.strip()}\n{END}", readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=pathlib.Path, help="Markdown written by bench --markdown")
    parser.add_argument("--readme", type=pathlib.Path, default=pathlib.Path("README.md"))
    args = parser.parse_args()
    args.readme.write_text(splice(args.readme.read_text(), args.table.read_text()))


if __name__ == "__main__":
    main()
