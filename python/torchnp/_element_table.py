"""The element-type table, read from ``element_types.def``: the one list of element types.

The C++ core compiles the same file (X-macro rows); Python parses it here, so the Python engine
knows every type even when the compiled module is missing. No torch or NumPy import: the test
tools load this module by path (``tests/cpp/gen_oracle.py``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

_ROW = re.compile(r"^TORCHNP_ELEMENT_TYPE\((?P<fields>[^)]*)\)\s*$")
_FIELDS = ("code", "enumerator", "name", "short", "itemsize", "components", "cpp", "numpy", "torch")


@dataclass(frozen=True)
class Row:
    """One line of the table (see element_types.def for what each field means)."""

    code: int
    name: str
    short: str
    itemsize: int
    components: int
    numpy: str  # "module.attribute" of the NumPy / ml_dtypes scalar type
    torch: str  # attribute of the torch module


def table_path() -> Path:
    """Where the table is: installed beside this module, or in a source checkout's csrc/core."""
    here = Path(__file__).resolve().parent
    installed = here / "element_types.def"
    if installed.is_file():
        return installed
    return here.parent.parent / "csrc" / "core" / "element_types.def"


def read_table(path: Path | None = None) -> tuple[Row, ...]:
    """The rows of the table in code order; ValueError for a malformed table."""
    path = table_path() if path is None else path
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line.startswith("TORCHNP_ELEMENT_TYPE("):
            continue  # comments and blank lines
        match = _ROW.match(line)
        if match is None:
            raise ValueError(f"{path}:{number}: a row must be exactly TORCHNP_ELEMENT_TYPE(...)")
        fields = [f.strip() for f in match["fields"].split(",")]
        if len(fields) != len(_FIELDS):
            raise ValueError(f"{path}:{number}: expected {len(_FIELDS)} fields, got {len(fields)}")
        f = dict(zip(_FIELDS, fields, strict=True))
        rows.append(
            Row(
                code=int(f["code"]),
                name=f["name"],
                short=f["short"],
                itemsize=int(f["itemsize"]),
                components=int(f["components"]),
                numpy=f["numpy"],
                torch=f["torch"],
            )
        )
    if [r.code for r in rows] != list(range(len(rows))):
        raise ValueError(f"{path}: codes must be 0, 1, 2, ... in order")
    return tuple(rows)
