"""The Sort Extension: ``sortby`` over records, then the default order as the tie-break.

Sortable values are numbers, then strings, then booleans (ascending); any other value, or
none, sorts last in either direction. A field is sortable when some record has such a value.
"""

from __future__ import annotations

import functools
from typing import Any

from tests.oracles.records import Record, is_number


def _sort_value(v: Any) -> tuple[int, Any] | None:
    """Sortable values: numbers, then strings, then booleans (ascending); others sort as missing."""
    if is_number(v):
        return 0, float(v)
    if isinstance(v, str):
        return 1, v
    if isinstance(v, bool):
        return 2, v
    return None


def sort_records(records: list[Record], fields: list[tuple[str, bool]]) -> list[Record]:
    def cmp(a: Record, b: Record) -> int:
        for name, desc in fields:
            va, vb = _sort_value(a.value(name)), _sort_value(b.value(name))
            if va is None and vb is None:
                continue
            if va is None or vb is None:
                return 1 if va is None else -1  # missing last, either direction
            if va != vb:
                less = va < vb
                return (1 if less else -1) if desc else (-1 if less else 1)
        return -1 if a.default_key < b.default_key else 1 if a.default_key > b.default_key else 0

    return sorted(records, key=functools.cmp_to_key(cmp))


def sortable(records: list[Record], name: str) -> bool:
    """A field some record has a number, string or boolean value for."""
    if records and records[0].property_key(name) == "geometry":
        return False
    return any(_sort_value(r.value(name)) is not None for r in records)
