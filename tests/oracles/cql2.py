"""The Filter Extension: a CQL2 predicate (JSON form) evaluated on one record at a time.

- SQL three-valued logic: TRUE, FALSE or NULL (None). A comparison with a missing or null
  value is NULL; NOT NULL is NULL; AND/OR are Kleene; only TRUE selects.
- A property compared with a literal (or another property) of another JSON type is FALSE.
  Strings compare in Python order (CASEI: lowercased), numbers as floats, booleans as
  booleans; TIMESTAMP/DATE literals against RFC 3339 strings as instants, a DATE standing for
  every instant of its day (so ``t = DATE(d)`` for any t that day, ``t < DATE(d)`` before it,
  ``t > DATE(d)`` after it).
- Names: see tests/oracles/records.py. T_* on ``datetime`` use the record's interval (an
  item's start/end, else its instant; a collection's first temporal interval), open ends
  infinite; the 15 temporal operators are Allen's relations on inclusive intervals.
- S_* use shapely's predicates; a BBOX with minx > maxx crosses the antimeridian.
- LIKE: ``%`` any run, ``_`` one character, backslash escapes the next character.
- Arrays (A_*) compare element-wise as JSON values (1 and 1.0 are equal; true is not 1).
- Arithmetic (+ - * / % ^ div) on numbers; an error or a non-finite result is NULL.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape

from tests.oracles.records import DAY, Record, bbox_shape, instant, is_number
from tests.oracles.search import NEG_INF, POS_INF, to_micros

Tri = bool | None  # TRUE, FALSE, or NULL (None)


def t_and(values: Iterable[Tri]) -> Tri:
    values = list(values)
    if any(v is False for v in values):
        return False
    return True if all(v is True for v in values) else None


def t_or(values: Iterable[Tri]) -> Tri:
    values = list(values)
    if any(v is True for v in values):
        return True
    return False if all(v is False for v in values) else None


def t_not(value: Tri) -> Tri:
    return None if value is None else not value


class _Missing:
    """A property with no value (absent or null)."""


MISSING = _Missing()


@dataclass(frozen=True)
class TimeLit:
    lo: float
    hi: float


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def is_property(x: Any) -> bool:
    return isinstance(x, dict) and set(x) == {"property"}


def _is_casei(x: Any) -> bool:
    return isinstance(x, dict) and str(x.get("op", "")).lower() == "casei"


def _is_accenti(x: Any) -> bool:
    return isinstance(x, dict) and str(x.get("op", "")).lower() == "accenti"


def _time_end(text: str, end: bool) -> float:
    if text in ("..", None):
        return POS_INF if end else NEG_INF
    if _DATE.fullmatch(text):
        day = to_micros(f"{text}T00:00:00Z")
        return float(day + DAY - 1 if end else day)
    return float(to_micros(text))


def time_literal(x: Any) -> TimeLit | None:
    if not isinstance(x, dict):
        return None
    if "timestamp" in x:
        t = float(to_micros(x["timestamp"]))
        return TimeLit(t, t)
    if "date" in x:
        return TimeLit(_time_end(x["date"], False), _time_end(x["date"], True))
    if "interval" in x:
        a, b = (_literal_end(e, j == 1) for j, e in enumerate(x["interval"]))
        return None if a is None or b is None else TimeLit(a, b)
    return None


def _literal_end(x: Any, end: bool) -> float | None:
    """An INTERVAL end that is a literal ('..', a date or date-time string, TIMESTAMP, DATE)."""
    if x is None or isinstance(x, str):
        return _time_end(x, end)
    if isinstance(x, dict) and ("timestamp" in x or "date" in x):
        lit = time_literal(x)
        assert lit is not None
        return lit.hi if end else lit.lo
    return None


ARITH = {"+", "-", "*", "/", "%", "^", "div"}


def _arith(op: str, a: float, b: float) -> float | None:
    try:
        if op == "+":
            r = a + b
        elif op == "-":
            r = a - b
        elif op == "*":
            r = a * b
        elif op == "/":
            r = a / b
        elif op == "%":
            r = a % b
        elif op == "^":
            r = a ** b
        else:
            r = a // b
    except (ZeroDivisionError, OverflowError, ValueError):
        return None
    if isinstance(r, complex) or not math.isfinite(r):
        return None
    return float(r)


def _operand(x: Any, rec: Record) -> Any:
    """A comparison operand: the property's value (MISSING if none), a literal, or a number."""
    if is_property(x):
        v = rec.value(x["property"])
        return MISSING if v is None else v
    if _is_casei(x) or _is_accenti(x):
        return _operand(x["args"][0], rec)
    if isinstance(x, dict) and x.get("op") in ARITH:
        a, b = (_operand(y, rec) for y in x["args"])
        if not (is_number(a) and is_number(b)):
            return MISSING
        r = _arith(x["op"], float(a), float(b))
        return MISSING if r is None else r
    lit = time_literal(x)
    if lit is not None:
        return lit
    return x


_FLIP = {"<": ">", ">": "<", "<=": ">=", ">=": "<=", "=": "=", "<>": "<>"}


def _order(op: str, a: Any, b: Any) -> bool:
    return {"=": a == b, "<>": a != b, "<": a < b, "<=": a <= b, ">": a > b, ">=": a >= b}[op]


def compare(op: str, left: Any, right: Any, rec: Record) -> Tri:
    casei = _is_casei(left) or _is_casei(right)
    a, b = _operand(left, rec), _operand(right, rec)
    if a is MISSING or b is MISSING or a is None or b is None:
        return None
    if isinstance(a, TimeLit) and not isinstance(b, TimeLit):
        a, b, op = b, a, _FLIP[op]
    if isinstance(b, TimeLit):
        # An instant t (or a DATE, every instant of its day: [lo, hi]) against a DATE: equal
        # when one lies within the other, before when wholly before.
        if isinstance(a, TimeLit):
            lo, hi = a.lo, a.hi
        else:
            t = instant(a)
            if t is None:
                return False
            lo = hi = t
        inside = (b.lo <= lo and hi <= b.hi) or (lo <= b.lo and b.hi <= hi)
        return {
            "=": inside, "<>": not inside, "<": hi < b.lo, "<=": lo <= b.hi, ">": lo > b.hi, ">=": hi >= b.lo,
        }[op]
    if is_number(a) and is_number(b):
        return _order(op, float(a), float(b))
    if isinstance(a, str) and isinstance(b, str):
        if casei:
            a, b = a.lower(), b.lower()
        return _order(op, a, b)
    if isinstance(a, bool) and isinstance(b, bool):
        return _order(op, a, b)
    return False  # values of different JSON types are simply not equal (nor ordered)


def like_match(value: str, pattern: str, casei: bool) -> bool:
    """SQL LIKE: % any run, _ one character, backslash escapes the next character."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            tokens.append(("lit", pattern[i + 1]))
            i += 2
            continue
        tokens.append(("any", "") if ch == "%" else ("one", "") if ch == "_" else ("lit", ch))
        i += 1
    if casei:
        value = value.lower()
        tokens = [(k, c.lower()) for k, c in tokens]

    @functools.cache
    def m(ti: int, vi: int) -> bool:
        if ti == len(tokens):
            return vi == len(value)
        kind, ch = tokens[ti]
        if kind == "any":
            return any(m(ti + 1, k) for k in range(vi, len(value) + 1))
        if vi == len(value):
            return False
        if kind == "one" or value[vi] == ch:
            return m(ti + 1, vi + 1)
        return False

    return m(0, 0)


def geometry_literal(x: Any) -> Any:
    if isinstance(x, dict) and "bbox" in x:
        return bbox_shape([float(v) for v in x["bbox"]])
    g = shape(x)
    return g if g.is_valid else shapely.make_valid(g)


SPATIAL = {
    "s_intersects": "intersects", "s_equals": "equals", "s_disjoint": "disjoint", "s_touches": "touches",
    "s_within": "within", "s_overlaps": "overlaps", "s_crosses": "crosses", "s_contains": "contains",
}


def _spatial_arg(x: Any, rec: Record) -> Any:
    if is_property(x):
        return rec.geometry if rec.property_key(x["property"]) == "geometry" else None
    return geometry_literal(x)


def _temporal_arg(x: Any, rec: Record) -> tuple[float, float] | None:
    """The operand's interval for this record; None (NULL) where a property has no time, or
    where an INTERVAL of properties would start after its end."""
    if is_property(x):
        if rec.property_key(x["property"]) == "datetime":
            return None if rec.start is None else (rec.start, rec.end)
        t = instant(rec.value(x["property"]))
        return None if t is None else (float(t), float(t))
    lit = time_literal(x)
    if lit is not None:
        return lit.lo, lit.hi
    a, b = x["interval"]
    lo = _literal_end(a, False) if not is_property(a) else (_temporal_arg(a, rec) or (None,))[0]
    hi = _literal_end(b, True) if not is_property(b) else (_temporal_arg(b, rec) or (None, None))[1]
    if lo is None or hi is None or lo > hi:
        return None
    return lo, hi


def allen(op: str, a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Relation ``op`` of interval a to interval b (both inclusive)."""
    s, e = a
    qs, qe = b
    return {
        "t_after": s > qe,
        "t_before": e < qs,
        "t_contains": s < qs and e > qe,
        "t_during": qs < s and e < qe,
        "t_disjoint": e < qs or s > qe,
        "t_intersects": not (e < qs or s > qe),
        "t_equals": s == qs and e == qe,
        "t_meets": e == qs,
        "t_metby": s == qe,
        "t_overlaps": s < qs < e < qe,
        "t_overlappedby": qs < s < qe < e,
        "t_starts": s == qs and e < qe,
        "t_startedby": s == qs and e > qe,
        "t_finishes": e == qe and s > qs,
        "t_finishedby": e == qe and s < qs,
    }[op]


def canonical(v: Any) -> str:
    def c(x: Any) -> Any:
        if is_number(x):
            return ["n", float(x)]
        if isinstance(x, list):
            return [c(y) for y in x]
        if isinstance(x, dict):
            return {k: c(y) for k, y in x.items()}
        return x

    return json.dumps(c(v), sort_keys=True)


def _array_arg(x: Any, rec: Record) -> Any:
    if is_property(x):
        v = rec.value(x["property"])
        return MISSING if v is None else v
    return x


def array_op(op: str, left: Any, right: Any, rec: Record) -> Tri:
    a, b = _array_arg(left, rec), _array_arg(right, rec)
    if a is MISSING or b is MISSING:
        return None
    if not isinstance(a, list) or not isinstance(b, list):
        return False
    ca, cb = [canonical(v) for v in a], [canonical(v) for v in b]
    if op == "a_equals":
        return ca == cb
    if op == "a_contains":
        return set(cb) <= set(ca)
    if op == "a_containedby":
        return set(ca) <= set(cb)
    return bool(set(ca) & set(cb))


def evaluate(node: Any, rec: Record) -> Tri:
    """The CQL2 JSON predicate's value for one record: True, False or None (NULL)."""
    if node is True or node is False:
        return node
    op = str(node["op"]).lower()
    args = node["args"]
    if op == "and":
        return t_and(evaluate(a, rec) for a in args)
    if op == "or":
        return t_or(evaluate(a, rec) for a in args)
    if op == "not":
        return t_not(evaluate(args[0], rec))
    if op in ("=", "<>", "<", "<=", ">", ">="):
        return compare(op, args[0], args[1], rec)
    if op == "between":
        return t_and([compare(">=", args[0], args[1], rec), compare("<=", args[0], args[2], rec)])
    if op == "in":
        return t_or(compare("=", args[0], v, rec) for v in args[1])
    if op == "like":
        casei = _is_casei(args[0]) or _is_casei(args[1])
        v, pattern = _operand(args[0], rec), _operand(args[1], rec)
        if v is MISSING or pattern is MISSING:
            return None
        return like_match(v, pattern, casei) if isinstance(v, str) and isinstance(pattern, str) else False
    if op == "isnull":
        if is_property(args[0]) and rec.property_key(args[0]["property"]) == "geometry":
            return rec.geometry is None
        return _operand(args[0], rec) in (MISSING, None)
    if op in SPATIAL:
        a, b = _spatial_arg(args[0], rec), _spatial_arg(args[1], rec)
        if a is None or b is None:
            return None
        return bool(getattr(a, SPATIAL[op])(b))
    if op.startswith("t_"):
        a, b = _temporal_arg(args[0], rec), _temporal_arg(args[1], rec)
        if a is None or b is None:
            return None
        return allen(op, a, b)
    if op.startswith("a_"):
        return array_op(op, args[0], args[1], rec)
    raise ValueError(f"oracle: unknown op {op}")
