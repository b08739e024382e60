"""Put a benchmark table into README.md between its markers (``<!-- bench:start -->`` ...).

    python -m torchnp bench --quick --markdown bench.md --json bench.json
    python benchmarks/update_readme.py bench.md
    python -m torchnp bench --sweep --markdown sweep.md
    python benchmarks/update_readme.py sweep.md --section sweep

The table is the harness's own Markdown, pasted as it is: the README never holds numbers that
no run produced.
"""

from __future__ import annotations

import argparse
import pathlib
import re


def splice(readme: str, table: str, section: str = "bench") -> str:
    """README text with everything between the section's markers replaced by `table`."""
    start, end = f"<!-- {section}:start -->", f"<!-- {section}:end -->"
    pattern = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
    if not pattern.search(readme):
        raise SystemExit(f"README has no {start} ... {end} section")
    return pattern.sub(lambda _: f"{start}\n{table.strip()}\n{end}", readme)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=pathlib.Path, help="Markdown written by bench --markdown")
    parser.add_argument("--readme", type=pathlib.Path, default=pathlib.Path("README.md"))
    parser.add_argument("--section", default="bench", help="the markers' name (bench, sweep)")
    args = parser.parse_args()
    text = splice(args.readme.read_text(), args.table.read_text(), args.section)
    args.readme.write_text(text)


if __name__ == "__main__":
    main()
