"""The (legacy) Query Extension: ``{"property": {"op": operand}}``, every operator must hold.

Comparisons (eq, neq, lt, lte, gt, gte) follow the CQL2 oracle's; a string operand that
reads as a number also compares as that number; startsWith/endsWith/contains are plain
substring tests (no wildcards); ``in`` holds for a scalar equal to one of the values or an
array sharing one with them. A missing or null property is NULL (never selects).
"""

from __future__ import annotations

import math
from typing import Any

from tests.oracles.cql2 import Tri, canonical, compare, t_and, t_or
from tests.oracles.records import Record


def _as_number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _query_compare(symbol: str, name: str, operand: Any, rec: Record) -> Tri:
    """A query-extension comparison: a string operand that reads as a number (clients send
    {"gsd": {"lt": "20"}}) also compares as that number; a present value gives TRUE or FALSE."""
    prop = {"property": name}
    first = compare(symbol, prop, operand, rec)
    if isinstance(operand, str) and _as_number(operand) is not None:
        if first is None:
            return None
        return first or bool(compare(symbol, prop, _as_number(operand), rec))
    return first


def query_extension(query: dict[str, dict[str, Any]], rec: Record) -> Tri:
    """The legacy query extension: every operator of every property must hold."""
    results: list[Tri] = []
    for name, ops in query.items():
        v = rec.value(name)
        for op, operand in ops.items():
            if v is None:
                results.append(None)
            elif op in ("startsWith", "endsWith", "contains"):
                if not isinstance(v, str):
                    results.append(False)
                else:
                    results.append({"startsWith": v.startswith, "endsWith": v.endswith,
                                    "contains": v.__contains__}[op](operand))
            elif op == "in":
                # A scalar equal to one of the values, or an array sharing one with them.
                shares = isinstance(v, list) and bool({canonical(x) for x in v} & {canonical(x) for x in operand})
                results.append(shares or t_or(_query_compare("=", name, x, rec) for x in operand))
            else:
                symbol = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
                results.append(_query_compare(symbol, name, operand, rec))
    return t_and(results)
