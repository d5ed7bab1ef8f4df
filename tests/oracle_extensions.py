"""Brute-force oracles for the search extensions, over the SOURCE JSON of a catalog.

Like tests/oracle.py, and deliberately independent of the server's code (no server imports):
every answer comes from testing each item or collection dict one by one in plain Python
(shapely for geometry predicates). Covered: CQL2 filters (JSON form), the legacy query
extension, free text `q` (basic and advanced), sortby, fields, collection search, and the
property names /queryables must list. Also a seeded generator of a heterogeneous catalog
(mixed-type, null, array, object properties; open time intervals; null geometries) to
run the same comparisons on data nastier than the sample's.

Semantics (issue 3 and the STAC API extensions):
- CQL2 with SQL three-valued logic: TRUE, FALSE or NULL (None). A comparison with a missing
  or null value is NULL; NOT NULL is NULL; AND/OR are Kleene; only TRUE selects. A property
  compared with a literal (or another property) of another JSON type is FALSE. Strings
  compare in Python order, numbers as floats, booleans as booleans; TIMESTAMP/DATE literals
  against RFC 3339 strings as instants, a DATE standing for every instant of its day
  (so ``t = DATE(d)`` for any t that day, ``t < DATE(d)`` before it, ``t > DATE(d)`` after it).
- Names: an item's properties (a ``properties.`` prefix is dropped), plus ``id``,
  ``collection`` (the effective collection) and ``geometry``; a collection's top-level
  members. T_* on ``datetime`` use the record's interval (an item's start/end, else its
  instant; a collection's first temporal interval), open ends infinite.
- Arrays compare element-wise as JSON values (1 and 1.0 are equal; true is not 1).
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterable

import shapely
from shapely.geometry import shape

from tests.oracle import NEG_INF, POS_INF, Oracle, to_micros

Tri = bool | None  # TRUE, FALSE, or NULL (None)

ITEM_FIELD_DEFAULTS = (
    "id", "type", "geometry", "bbox", "links", "assets", "properties.datetime", "properties.start_datetime",
    "properties.end_datetime", "collection", "stac_version", "stac_extensions",
)
COLLECTION_FIELD_DEFAULTS = ("id", "type", "title", "description", "links", "extent", "license", "stac_version")

DAY = 86_400_000_000
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


# -- records: what a filter, q and sortby see of one item or collection ---------------------------


@dataclass
class Record:
    kind: str  # "item" or "collection"
    id: str
    collection: str | None
    members: dict[str, Any]  # an item's properties, a collection's top-level members
    geometry: Any  # shapely geometry or None
    start: float | None
    end: float | None
    texts: list[str]
    doc: dict[str, Any]
    default_key: tuple[Any, ...]

    @property
    def key(self) -> Any:
        return (self.collection, self.id) if self.kind == "item" else self.id

    def value(self, name: str) -> Any:
        if name.startswith("properties."):
            name = name[len("properties."):]
        if name == "id":
            return self.id
        if name == "collection" and self.kind == "item":
            return self.collection
        return self.members.get(name)


def instant(text: Any) -> int | None:
    """An RFC 3339 date-time string (with an offset) as microseconds, else None."""
    if isinstance(text, str) and _INSTANT.fullmatch(text):
        return to_micros(text)
    return None


def searchable_texts(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("title", "description", "keywords"):
        v = doc.get(key)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, str))
    return out


def item_records(oracle: Oracle) -> list[Record]:
    out = []
    for it in oracle.items:
        props = it.doc.get("properties") or {}
        dt = instant(props.get("datetime"))
        if dt is not None:
            sort_time = float(dt)
        elif props.get("start_datetime") is not None:
            sort_time = float(to_micros(props["start_datetime"]))
        else:
            sort_time = NEG_INF
        out.append(Record(
            kind="item", id=it.id, collection=it.collection, members=props, geometry=it.geometry,
            start=it.start, end=it.end, texts=searchable_texts(props), doc=it.doc,
            default_key=(-sort_time, it.collection or "", it.id),
        ))
    return out


def collection_extent_geometry(doc: dict[str, Any]) -> Any:
    try:
        b = [float(v) for v in doc["extent"]["spatial"]["bbox"][0]]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    if len(b) == 6:
        b = [b[0], b[1], b[3], b[4]]
    minx, miny, maxx, maxy = b
    if minx > maxx:
        return shapely.union(shapely.box(minx, miny, 180.0, maxy), shapely.box(-180.0, miny, maxx, maxy))
    return shapely.box(minx, miny, maxx, maxy)


def collection_extent_interval(doc: dict[str, Any]) -> tuple[float | None, float | None]:
    try:
        lo, hi = doc["extent"]["temporal"]["interval"][0]
    except (KeyError, IndexError, TypeError, ValueError):
        return None, None
    start = NEG_INF if lo is None else float(to_micros(lo))
    end = POS_INF if hi is None else float(to_micros(hi))
    return (start, end) if start <= end else (None, None)


def collection_records(collections: dict[str, dict[str, Any]]) -> list[Record]:
    out = []
    for cid in sorted(collections):
        doc = collections[cid]
        start, end = collection_extent_interval(doc)
        out.append(Record(
            kind="collection", id=cid, collection=None,
            members={k: v for k, v in doc.items() if k not in ("links", "assets")},
            geometry=collection_extent_geometry(doc), start=start, end=end,
            texts=searchable_texts(doc), doc=doc, default_key=(cid,),
        ))
    return out


# -- three-valued logic ----------------------------------------------------------------------------


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


# -- CQL2 (JSON form) -----------------------------------------------------------------------------


class _Missing:
    """A property with no value (absent or null)."""


MISSING = _Missing()


@dataclass(frozen=True)
class TimeLit:
    lo: float
    hi: float


def _is_prop(x: Any) -> bool:
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


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _operand(x: Any, rec: Record) -> Any:
    """A comparison operand: the property's value (MISSING if none), a literal, or a number."""
    if _is_prop(x):
        v = rec.value(x["property"])
        return MISSING if v is None else v
    if _is_casei(x) or _is_accenti(x):
        return _operand(x["args"][0], rec)
    if isinstance(x, dict) and x.get("op") in ARITH:
        a, b = (_operand(y, rec) for y in x["args"])
        if not (_is_number(a) and _is_number(b)):
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
    if _is_number(a) and _is_number(b):
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

    @functools.lru_cache(maxsize=None)
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
        b = [float(v) for v in x["bbox"]]
        if len(b) == 6:
            b = [b[0], b[1], b[3], b[4]]
        minx, miny, maxx, maxy = b
        if minx > maxx:
            return shapely.union(shapely.box(minx, miny, 180.0, maxy), shapely.box(-180.0, miny, maxx, maxy))
        return shapely.box(minx, miny, maxx, maxy)
    g = shape(x)
    return g if g.is_valid else shapely.make_valid(g)


SPATIAL = {
    "s_intersects": "intersects", "s_equals": "equals", "s_disjoint": "disjoint", "s_touches": "touches",
    "s_within": "within", "s_overlaps": "overlaps", "s_crosses": "crosses", "s_contains": "contains",
}


def _spatial_arg(x: Any, rec: Record) -> Any:
    if _is_prop(x):
        return rec.geometry if x["property"] == "geometry" else None
    return geometry_literal(x)


def _temporal_arg(x: Any, rec: Record) -> tuple[float, float] | None:
    """The operand's interval for this record; None (NULL) where a property has no time, or
    where an INTERVAL of properties would start after its end."""
    if _is_prop(x):
        if x["property"] == "datetime":
            return None if rec.start is None else (rec.start, rec.end)
        t = instant(rec.value(x["property"]))
        return None if t is None else (float(t), float(t))
    lit = time_literal(x)
    if lit is not None:
        return lit.lo, lit.hi
    a, b = x["interval"]
    lo = _literal_end(a, False) if not _is_prop(a) else (_temporal_arg(a, rec) or (None,))[0]
    hi = _literal_end(b, True) if not _is_prop(b) else (_temporal_arg(b, rec) or (None, None))[1]
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


def _canon(v: Any) -> str:
    def c(x: Any) -> Any:
        if _is_number(x):
            return ["n", float(x)]
        if isinstance(x, list):
            return [c(y) for y in x]
        if isinstance(x, dict):
            return {k: c(y) for k, y in x.items()}
        return x

    return json.dumps(c(v), sort_keys=True)


def _array_arg(x: Any, rec: Record) -> Any:
    if _is_prop(x):
        v = rec.value(x["property"])
        return MISSING if v is None else v
    return x


def array_op(op: str, left: Any, right: Any, rec: Record) -> Tri:
    a, b = _array_arg(left, rec), _array_arg(right, rec)
    if a is MISSING or b is MISSING:
        return None
    if not isinstance(a, list) or not isinstance(b, list):
        return False
    ca, cb = [_canon(v) for v in a], [_canon(v) for v in b]
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
        if args[0] == {"property": "geometry"}:
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


# -- legacy query extension ------------------------------------------------------------------------


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
                shares = isinstance(v, list) and bool({_canon(x) for x in v} & {_canon(x) for x in operand})
                results.append(shares or t_or(_query_compare("=", name, x, rec) for x in operand))
            else:
                symbol = {"eq": "=", "neq": "<>", "lt": "<", "lte": "<=", "gt": ">", "gte": ">="}[op]
                results.append(_query_compare(symbol, name, operand, rec))
    return t_and(results)


# -- free text -------------------------------------------------------------------------------------

_WORD = re.compile(r"\w+")


def text_words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def term_matches(term: str, texts: list[str]) -> bool:
    """A one-word term: a word it prefixes. More words: a phrase in one text, last as prefix."""
    tw = text_words(term)
    if not tw:
        return False
    for text in texts:
        ws = text_words(text)
        for i in range(len(ws) - len(tw) + 1):
            if ws[i : i + len(tw) - 1] == tw[:-1] and ws[i + len(tw) - 1].startswith(tw[-1]):
                return True
    return False


class QSyntaxError(ValueError):
    pass


def split_q_commas(text: str) -> list[str]:
    pieces, buf, quoted = [], "", False
    for ch in text:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            pieces.append(buf)
            buf = ""
        else:
            buf += ch
    pieces.append(buf)
    return [p.strip() for p in pieces if p.strip()]


def q_tokens(text: str) -> list[tuple[str, str]]:
    """("(",) (")",) ("op", AND|OR|NOT) ("term", sign, text) as kinds and payloads."""
    out: list[Any] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "()":
            out.append((ch,))
            i += 1
        elif ch == '"' or (ch in "+-" and text[i + 1 : i + 2] == '"'):
            sign = "" if ch == '"' else ch
            start = i + (1 if ch == '"' else 2)
            close = text.find('"', start)
            if close < 0:
                raise QSyntaxError("unterminated quote")
            out.append(("term", sign, text[start:close]))
            i = close + 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in '()"':
                j += 1
            word = text[i:j]
            i = j
            if word in ("AND", "OR", "NOT"):
                out.append(("op", word))
            elif word[0] in "+-" and len(word) > 1:
                out.append(("term", word[0], word[1:]))
            else:
                out.append(("term", "", word))
    return out


def q_parse(piece: str) -> Any:
    """Advanced free text → a predicate over a record's texts (a Python callable)."""
    toks = q_tokens(piece)
    pos = 0

    def peek() -> Any:
        return toks[pos] if pos < len(toks) else None

    def group() -> Any:
        nonlocal pos
        optional, required, excluded = [], [], []
        while peek() is not None and peek()[0] != ")":
            if peek() == ("op", "OR"):
                pos += 1
                continue
            sign, f = clause()
            {"+": required, "-": excluded, "": optional}[sign].append(f)
        if not (optional or required or excluded):
            raise QSyntaxError("empty")
        if required:
            base = lambda t, fs=tuple(required): all(f(t) for f in fs)  # noqa: E731
        elif optional:
            base = lambda t, fs=tuple(optional): any(f(t) for f in fs)  # noqa: E731
        else:
            base = lambda t: True  # noqa: E731
        return lambda t, fs=tuple(excluded): base(t) and not any(f(t) for f in fs)

    def clause() -> tuple[str, Any]:
        nonlocal pos
        sign, f = unary()
        while peek() == ("op", "AND"):
            pos += 1
            _, g = unary()
            f = (lambda t, a=f, b=g: a(t) and b(t))
            sign = ""
        return sign, f

    def unary() -> tuple[str, Any]:
        nonlocal pos
        tok = peek()
        if tok is None:
            raise QSyntaxError("expected a term")
        if tok == ("op", "NOT"):
            pos += 1
            _, f = unary()
            return "", (lambda t, f=f: not f(t))
        if tok[0] == "(":
            pos += 1
            f = group()
            if peek() is None or peek()[0] != ")":
                raise QSyntaxError("unbalanced")
            pos += 1
            return "", f
        if tok[0] != "term":
            raise QSyntaxError(f"unexpected {tok}")
        pos += 1
        return tok[1], (lambda t, term=tok[2]: term_matches(term, t))

    f = group()
    if peek() is not None:
        raise QSyntaxError("unbalanced")
    return f


def q_predicate(value: str | list[str]) -> Any:
    pieces = split_q_commas(value) if isinstance(value, str) else [v.strip() for v in value if v.strip()]
    fs = [q_parse(p) for p in pieces]
    return lambda rec: any(f(rec.texts) for f in fs)


# -- sortby ----------------------------------------------------------------------------------------


def _sort_value(v: Any) -> tuple[int, Any] | None:
    """Sortable values: numbers, then strings, then booleans (ascending); others sort as missing."""
    if _is_number(v):
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
    if name.startswith("properties."):
        name = name[len("properties."):]
    if name == "geometry":
        return False
    return any(_sort_value(r.value(name)) is not None for r in records)


# -- fields ----------------------------------------------------------------------------------------

ALWAYS_FIELDS = ("id", "type", "stac_version", "links")


def project(
    doc: dict[str, Any],
    include: list[str],
    exclude: list[str],
    defaults: tuple[str, ...],
    include_given: bool = False,
) -> dict[str, Any]:
    """The fields extension as the server documents it (server/fields.py docstring):

    - some include: the included paths plus id, type, stac_version, links;
    - no include, but an (empty) include list was given, or nothing at all: the default set;
    - only exclusions: the whole document;
    then every excluded path is dropped, unless a more specific included path lies inside
    it (a path in both lists counts as included). Leaves only: containers left empty by
    the rules are not compared (see ``drop_empty``).
    """
    inc = [p.split(".") for p in include if p]
    exc = [p.split(".") for p in exclude if p and p not in include]
    if inc:
        base: list[list[str]] | None = [p.split(".") for p in ALWAYS_FIELDS] + inc
    elif include_given or not exc:
        base = [p.split(".") for p in defaults]
    else:
        base = None  # the whole document

    def covers(q: list[str], path: list[str]) -> bool:
        return path[: len(q)] == q

    def kept(path: list[str]) -> bool:
        if base is not None and not any(covers(b, path) for b in base):
            return False
        xs = [x for x in exc if covers(x, path)]
        if not xs:
            return True
        deepest = max(len(x) for x in xs)
        return any(covers(i, path) and len(i) > deepest for i in inc)

    def walk(node: dict[str, Any], prefix: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            path = prefix + [key]
            if isinstance(value, dict) and value:
                sub = walk(value, path)
                if sub:
                    out[key] = sub
            elif kept(path):
                out[key] = value
        return out

    return walk(doc, [])


def drop_empty(doc: Any) -> Any:
    """A document without empty objects (at any depth), to compare projections by leaves."""
    if isinstance(doc, dict):
        out = {k: drop_empty(v) for k, v in doc.items()}
        return {k: v for k, v in out.items() if v != {}}
    return doc


# -- a heterogeneous synthetic catalog -------------------------------------------------------------

VOCAB = [
    "alpha", "alpine", "alps", "river", "riverine", "delta", "deltaic", "forest", "forestry", "urban",
    "ndvi", "vegetation", "crop", "cropland", "snow", "glacier", "coast", "coastal", "water", "flood",
    "land", "cover", "change", "night", "light", "lights", "radar", "élan", "zürich", "école", "2019",
    "2020", "s2", "l2a", "a_b", "mosaic",
]
PLATFORMS = ["Alpha", "alpha", "ALPHA", "Beta", "beta-2", "gamma_ray", "Délta", "delta"]
PATTERNS = ["50%", "a_b", "a%b", "back\\slash", "under_score_", "100% pure", "x", "A_B", "%_%"]
LICENSES = ["CC-BY-4.0", "proprietary", "MIT", "various", "CC0-1.0"]
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
T_LO = to_micros("2015-01-01T00:00:00Z")
T_HI = to_micros("2025-01-01T00:00:00Z")


def rfc3339(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rand_time(rng: random.Random) -> int:
    # Whole days or seconds, so DATE literals and exact-edge comparisons both get hit.
    t = rng.randrange(T_LO, T_HI)
    return t // DAY * DAY if rng.random() < 0.3 else t // 1_000_000 * 1_000_000


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(VOCAB) for _ in range(n)]
    words = [w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w for w in words]
    seps = [rng.choice([" ", " ", " ", "-", ", ", "/"]) for _ in range(n - 1)] + [""]
    return "".join(w + s for w, s in zip(words, seps))


def _geometry(rng: random.Random, cx: float, cy: float) -> dict[str, Any] | None:
    kind = rng.choices(["box", "triangle", "point", "line", "null"], [10, 4, 2, 2, 1])[0]
    if kind == "null":
        return None
    x, y = round(cx + rng.uniform(-8, 8), 3), round(cy + rng.uniform(-5, 5), 3)
    if kind == "point":
        return {"type": "Point", "coordinates": [x, y]}
    if kind == "line":
        return {"type": "LineString", "coordinates": [[x, y], [round(x + rng.uniform(0.1, 3), 3), round(y + rng.uniform(-2, 2), 3)]]}
    if kind == "triangle":
        return {"type": "Polygon", "coordinates": [[[x, y], [round(x + 2, 3), y], [x, round(y + 2, 3)], [x, y]]]}
    if rng.random() < 0.3:  # integer grid boxes: shared edges and corners
        x, y = float(round(x)), float(round(y))
    w, h = rng.choice([1.0, 0.5, 2.0, round(rng.uniform(0.05, 4), 3)]), rng.choice([1.0, 0.5, round(rng.uniform(0.05, 3), 3)])
    x1, y1 = round(x + w, 3), round(y + h, 3)
    return {"type": "Polygon", "coordinates": [[[x, y], [x1, y], [x1, y1], [x, y1], [x, y]]]}


def _item_properties(rng: random.Random) -> dict[str, Any]:
    p: dict[str, Any] = {}
    r = rng.random()
    if r < 0.72:
        p["datetime"] = rfc3339(_rand_time(rng))
    elif r < 0.97:
        a, b = sorted((_rand_time(rng), _rand_time(rng)))
        p["datetime"] = rfc3339(_rand_time(rng)) if rng.random() < 0.3 else None
        kind = rng.choices(["closed", "open-start", "open-end"], [6, 1, 1])[0]
        if kind != "open-start":
            p["start_datetime"] = rfc3339(a)
        if kind != "open-end":
            p["end_datetime"] = rfc3339(b)
    else:
        p["datetime"] = None
    if rng.random() < 0.9:
        p["title"] = _sentence(rng, rng.randint(2, 6))
    if rng.random() < 0.5:
        p["description"] = _sentence(rng, rng.randint(3, 10))
    if rng.random() < 0.3:
        p["keywords"] = [rng.choice(VOCAB) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.6:
        p["created"] = rfc3339(_rand_time(rng))
    if rng.random() < 0.5:
        p["published"] = rfc3339(_rand_time(rng))
    r = rng.random()
    if r < 0.7:
        p["cloud"] = round(rng.uniform(0, 100), 2)
    elif r < 0.8:
        p["cloud"] = None
    if rng.random() < 0.5:
        p["eo:cloud_cover"] = rng.choice([0, 5, 10.5, 50, 99.99, 100])
    if rng.random() < 0.8:
        p["n"] = rng.randint(-5, 50)
    if rng.random() < 0.7:
        p["platform"] = rng.choice(PLATFORMS)
    if rng.random() < 0.6:
        p["flag"] = rng.random() < 0.5
    if rng.random() < 0.6:
        p["tags"] = rng.sample(VOCAB[:12], rng.randint(0, 3))
    if rng.random() < 0.4:
        p["bands"] = [rng.randint(1, 5) for _ in range(rng.randint(1, 3))]
    r = rng.random()
    if r < 0.8:
        p["mixed"] = rng.choice([
            rng.randint(0, 20), round(rng.uniform(0, 20), 1), rng.choice(["7", "abc", "Abc", "10"]),
            rng.random() < 0.5, [1, 2], None, {"k": 1},
        ])
    if rng.random() < 0.3:
        p["meta"] = {"a": rng.randint(0, 3), "b": rng.choice(["x", "y"])}
    if rng.random() < 0.3:
        p["always_null"] = None
    if rng.random() < 0.4:
        p["pattern"] = rng.choice(PATTERNS)
    if rng.random() < 0.5:
        p["gsd"] = rng.choice([10, 10.0, 20, 30, 0.5, 60])
    return p


def _extent(rng: random.Random, i: int, cx: float, cy: float) -> dict[str, Any]:
    if i == 0:
        bbox = [-180.0, -90.0, 180.0, 90.0]
    elif i == 1:
        bbox = [170.0, -20.0, -170.0, 20.0]  # crosses the antimeridian
    else:
        bbox = [round(cx - 9, 2), round(cy - 6, 2), round(cx + 9, 2), round(cy + 6, 2)]
    boxes = [bbox] + ([[cx - 1, cy - 1, cx + 1, cy + 1]] if rng.random() < 0.3 else [])
    a, b = sorted((_rand_time(rng), _rand_time(rng)))
    kind = rng.choice(["closed", "closed", "open-end", "open-start", "open"])
    lo = None if kind in ("open-start", "open") else rfc3339(a)
    hi = None if kind in ("open-end", "open") else rfc3339(b)
    return {"spatial": {"bbox": boxes}, "temporal": {"interval": [[lo, hi]]}}


def write_synthetic_catalog(root: Path, seed: str, n_collections: int = 10, items_per: tuple[int, int] = (8, 20)) -> None:
    """A seeded catalog with varied collections and items (see the module docstring)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)

    def write(rel: str, doc: dict[str, Any]) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False))

    def base_item(iid: str, geometry: Any, props: dict[str, Any], collection: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [], "id": iid,
            "geometry": geometry, "properties": props, "links": [],
            "assets": {"data": {"href": f"https://example.com/{iid}.tif", "title": "Data", "roles": ["data"]},
                       "thumbnail": {"href": f"https://example.com/{iid}.png", "type": "image/png"}},
        }
        if geometry is not None:
            doc["bbox"] = list(shape(geometry).bounds)
        if collection is not None:
            doc["collection"] = collection
        return doc

    root_links = [{"rel": "root", "href": "./catalog.json"}]
    for i in range(n_collections):
        cid = f"coll-{i:02d}"
        cx, cy = rng.uniform(-150, 150), rng.uniform(-60, 60)
        coll: dict[str, Any] = {
            "type": "Collection", "stac_version": "1.0.0", "stac_extensions": [], "id": cid,
            "description": _sentence(rng, rng.randint(4, 12)), "license": rng.choice(LICENSES),
            "extent": _extent(rng, i, cx, cy), "links": [{"rel": "root", "href": "../catalog.json"}],
        }
        if rng.random() < 0.8:
            coll["title"] = _sentence(rng, rng.randint(2, 5))
        if rng.random() < 0.6:
            coll["keywords"] = [rng.choice(VOCAB) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.7:
            coll["rank"] = rng.randint(0, 5)
        if rng.random() < 0.7:
            coll["tier"] = rng.choice(["gold", "silver", "Bronze"])
        if rng.random() < 0.6:
            coll["experimental"] = rng.random() < 0.5
        if i == 0:
            cx, cy = 10.0, 50.0
        for k in range(rng.randint(*items_per)):
            iid = f"shared-{k}" if k < 2 and i % 3 == 0 else f"{cid}-it{k:02d}"
            doc = base_item(iid, _geometry(rng, cx, cy), _item_properties(rng), cid if rng.random() < 0.8 else None)
            doc["links"] = [{"rel": "parent", "href": "../collection.json"}, {"rel": "root", "href": "../../catalog.json"}]
            write(f"{cid}/{iid}/{iid}.json", doc)
            coll["links"].append({"rel": "item", "href": f"./{iid}/{iid}.json"})
        write(f"{cid}/collection.json", coll)
        root_links.append({"rel": "child", "href": f"./{cid}/collection.json"})
    loose = {"type": "Catalog", "stac_version": "1.0.0", "id": "loose", "description": "items with no collection",
             "links": [{"rel": "root", "href": "../catalog.json"}]}
    for k in range(6):
        iid = f"loose-{k}"
        write(f"loose/{iid}.json", base_item(iid, _geometry(rng, 10.0, 50.0), _item_properties(rng), None))
        loose["links"].append({"rel": "item", "href": f"./{iid}.json"})
    write("loose/catalog.json", loose)
    root_links.append({"rel": "child", "href": "./loose/catalog.json"})
    write("catalog.json", {"type": "Catalog", "stac_version": "1.0.0", "id": "synthetic",
                           "description": "synthetic test catalog", "links": root_links})



# -- random inputs ---------------------------------------------------------------------------------

COMPARE_OPS = ["=", "<>", "<", "<=", ">", ">="]
TEMPORAL_OPS = [
    "t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals", "t_finishedby", "t_finishes",
    "t_intersects", "t_meets", "t_metby", "t_overlappedby", "t_overlaps", "t_startedby", "t_starts",
]
ARRAY_OPS = ["a_equals", "a_contains", "a_containedby", "a_overlaps"]
UNKNOWN = "no:such_property"


class Vocabulary:
    """Observed values per property name, to draw literals that actually hit records."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.values: dict[str, list[Any]] = {}
        for r in records:
            for k, v in [*r.members.items(), ("id", r.id)] + ([("collection", r.collection)] if r.kind == "item" else []):
                if k in ("links", "assets"):
                    continue
                self.values.setdefault(k, []).append(v)
        self.names = sorted(self.values)

    def of_type(self, test: Any) -> list[str]:
        return [n for n in self.names if any(test(v) for v in self.values[n])]

    def sample(self, rng: random.Random, name: str, test: Any = lambda v: v is not None) -> Any:
        good = [v for v in self.values.get(name, []) if test(v)]
        return rng.choice(good) if good else None

    def times(self) -> list[float]:
        out = []
        for r in self.records:
            out += [t for t in (r.start, r.end) if t is not None and math.isfinite(t)]
        return out


def _p(rng: random.Random, name: str) -> dict[str, str]:
    prefixed = name not in ("id", "collection", "geometry", "datetime") and rng.random() < 0.2
    return {"property": f"properties.{name}" if prefixed else name}


def _is_time_string(v: Any) -> bool:
    return instant(v) is not None


def _literal_for(rng: random.Random, vocab: Vocabulary, name: str) -> Any:
    v = vocab.sample(rng, name, lambda x: x is not None and not isinstance(x, (list, dict)))
    r = rng.random()
    if v is None or r < 0.08:
        return rng.choice([3, 10.5, "abc", True, False, "alpha"])
    if _is_number(v):
        return rng.choice([v, v, v + rng.choice([-1, 1, 0.5]), int(v) if float(v).is_integer() else round(v)])
    if isinstance(v, str) and _is_time_string(v) and r < 0.6:
        t = to_micros(v) + rng.choice([0, 0, -1_000_000, 1_000_000, DAY])
        if rng.random() < 0.4:
            return {"date": rfc3339(t)[:10]}
        return {"timestamp": rfc3339(t)}
    if isinstance(v, str) and r < 0.3:
        return rng.choice([v.upper(), v.lower(), v[:-1], v + "z", ""])
    return v


def _like_pattern(rng: random.Random, value: str) -> str:
    out = []
    for ch in value:
        if ch in "%_\\":
            out.append("\\" + ch if rng.random() < 0.6 else ch)
        elif rng.random() < 0.15:
            out.append("_")
        else:
            out.append(ch)
    pattern = "".join(out)
    cut = rng.randint(0, len(pattern))
    kind = rng.choice(["prefix", "suffix", "middle", "whole"])
    if kind == "prefix":
        pattern = pattern[:cut].rstrip("\\") + "%"
    elif kind == "suffix":
        pattern = "%" + pattern[cut:]
    elif kind == "middle":
        pattern = "%" + pattern[cut // 2 : cut].rstrip("\\") + "%"
    if rng.random() < 0.3:
        pattern = pattern.swapcase()
    return pattern


def random_bbox_near(rng: random.Random, records: list[Record]) -> list[float]:
    geoms = [r.geometry for r in records if r.geometry is not None]
    if geoms and rng.random() < 0.8:
        x0, y0, x1, y1 = rng.choice(geoms).bounds
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
    else:
        cx, cy = rng.uniform(-170, 170), rng.uniform(-80, 80)
    w, h = math.exp(rng.uniform(math.log(0.01), math.log(40))), math.exp(rng.uniform(math.log(0.01), math.log(30)))
    return [round(max(-180, cx - w), 3), round(max(-90, cy - h), 3), round(min(180, cx + w), 3), round(min(90, cy + h), 3)]


def _geometry_literal(rng: random.Random, records: list[Record]) -> dict[str, Any]:
    geoms = [r for r in records if r.geometry is not None]
    kind = rng.choice(["bbox", "bbox", "polygon", "point", "line", "item", "multipoint"])
    b = random_bbox_near(rng, records)
    if kind == "bbox":
        return {"bbox": b}
    if kind == "item" and geoms:
        g = rng.choice(geoms)
        return g.doc["geometry"] if g.kind == "item" else {"bbox": b}
    if kind == "point":
        if geoms and rng.random() < 0.5:
            g = rng.choice(geoms).geometry
            x, y = list(shapely.get_coordinates(g))[0]
            return {"type": "Point", "coordinates": [float(x), float(y)]}
        return {"type": "Point", "coordinates": [b[0], b[1]]}
    if kind == "multipoint":
        return {"type": "MultiPoint", "coordinates": [[b[0], b[1]], [b[2], b[3]]]}
    if kind == "line":
        return {"type": "LineString", "coordinates": [[b[0], b[1]], [b[2], b[3]]]}
    x0, y0, x1, y1 = b
    if x0 == x1 or y0 == y1:
        return {"bbox": [x0, y0, round(x0 + 1, 3), round(y0 + 1, 3)]}
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y0]]]}


def _time_literal(rng: random.Random, vocab: Vocabulary) -> dict[str, Any]:
    times = vocab.times()

    def t() -> int:
        if times and rng.random() < 0.6:
            return int(rng.choice(times)) + rng.choice([0, 0, 0, -1_000_000, 1_000_000])
        return _rand_time(rng)

    kind = rng.choice(["timestamp", "date", "interval", "interval"])
    if kind == "timestamp":
        return {"timestamp": rfc3339(t())}
    if kind == "date":
        return {"date": rfc3339(t())[:10]}
    a, b = sorted((t(), t()))
    ends = [rfc3339(a), rfc3339(b)]
    if rng.random() < 0.2:
        ends = [e[:10] for e in ends]
    if rng.random() < 0.25:
        ends[rng.randrange(2)] = ".."
    return {"interval": ends}


def random_predicate(rng: random.Random, vocab: Vocabulary, depth: int = 0) -> Any:
    """One random CQL2 JSON predicate (and/or/not of the atoms below, up to three levels)."""
    if depth < 3 and rng.random() < (0.45 if depth == 0 else 0.25):
        kind = rng.choice(["and", "or", "not"])
        if kind == "not":
            return {"op": "not", "args": [random_predicate(rng, vocab, depth + 1)]}
        return {"op": kind, "args": [random_predicate(rng, vocab, depth + 1) for _ in range(rng.randint(2, 3))]}
    scalars = vocab.of_type(lambda v: v is not None and not isinstance(v, (list, dict)))
    strings = vocab.of_type(lambda v: isinstance(v, str))
    numbers = vocab.of_type(_is_number)
    arrays = vocab.of_type(lambda v: isinstance(v, list))
    times = vocab.of_type(_is_time_string)
    kind = rng.choices(
        ["compare", "casei", "like", "between", "in", "isnull", "spatial", "temporal", "array", "arith",
         "propprop", "bool", "unknown", "temporal2", "spatial2", "like2", "array2", "literals"],
        [14, 3, 4, 3, 3, 3, 6, 6, 3, 2, 2, 1, 1, 6, 2, 3, 2, 2],
    )[0]
    needs = {"casei": strings, "like": strings, "between": numbers, "array": arrays, "arith": numbers,
             "propprop": numbers or strings, "like2": strings, "array2": arrays}
    if kind in needs and not needs[kind]:
        kind = "compare"
    if kind == "compare":
        name = rng.choice(scalars + ["id", "collection", "datetime"])
        lit = _literal_for(rng, vocab, name)
        node = {"op": rng.choice(COMPARE_OPS), "args": [_p(rng, name), lit]}
        if rng.random() < 0.15:
            node["args"].reverse()
        return node
    if kind == "casei":
        name = rng.choice(strings)
        v = vocab.sample(rng, name, lambda x: isinstance(x, str)) or "x"
        lit = rng.choice([v.upper(), v.lower(), v.swapcase(), v])
        return {"op": rng.choice(["=", "=", "<>", "<", ">="]),
                "args": [{"op": "casei", "args": [_p(rng, name)]}, {"op": "casei", "args": [lit]}]}
    if kind == "like":
        name = rng.choice(strings)
        v = vocab.sample(rng, name, lambda x: isinstance(x, str)) or "x"
        pattern = _like_pattern(rng, v)
        if rng.random() < 0.3:
            return {"op": "like", "args": [{"op": "casei", "args": [_p(rng, name)]}, {"op": "casei", "args": [pattern]}]}
        return {"op": "like", "args": [_p(rng, name), pattern]}
    if kind == "between":
        name = rng.choice(numbers)
        a, b = (vocab.sample(rng, name, _is_number) for _ in range(2))
        lo, hi = sorted((a, b)) if rng.random() < 0.9 else (max(a, b), min(a, b))
        return {"op": "between", "args": [_p(rng, name), lo, hi]}
    if kind == "in":
        name = rng.choice(scalars + ["id", "collection"])
        values = [_literal_for(rng, vocab, name) for _ in range(rng.randint(1, 4))]
        values = [v for v in values if not isinstance(v, dict)] or ["none"]
        return {"op": "in", "args": [_p(rng, name), values]}
    if kind == "isnull":
        name = rng.choice(vocab.names + ["geometry", "geometry", UNKNOWN, "collection"])
        return {"op": "isNull", "args": [_p(rng, name)]}
    if kind == "spatial":
        op = rng.choice(sorted(SPATIAL))
        args = [{"property": "geometry"}, _geometry_literal(rng, vocab.records)]
        if rng.random() < 0.2:
            args.reverse()
        return {"op": op, "args": args}
    if kind == "temporal":
        op = rng.choice(TEMPORAL_OPS)
        name = rng.choice(["datetime"] * 4 + [n for n in times if n != "datetime"])
        args = [{"property": name}, _time_literal(rng, vocab)]
        if rng.random() < 0.2:
            args.reverse()
        return {"op": op, "args": args}
    if kind == "array":
        name = rng.choice(arrays)
        elems = [e for v in vocab.values[name] if isinstance(v, list) for e in v if not isinstance(e, (list, dict))]
        lit = rng.sample(elems, min(len(elems), rng.randint(1, 3))) if elems else ["x"]
        if rng.random() < 0.2:
            lit.append(rng.choice(["zzz", 99]))
        args = [{"property": name}, lit]
        if rng.random() < 0.15:
            args.reverse()
        return {"op": rng.choice(ARRAY_OPS), "args": args}
    if kind == "arith":
        name = rng.choice(numbers)
        aop = rng.choice(["+", "-", "*", "/", "%", "div"])
        const = rng.choice([1, 2, 3, 0.5, 10]) if aop in ("/", "%", "div") else rng.choice([0, 1, 2, -3, 0.5])
        v = vocab.sample(rng, name, _is_number)
        return {"op": rng.choice(COMPARE_OPS), "args": [{"op": aop, "args": [_p(rng, name), const]}, v]}
    if kind == "propprop":
        pool = rng.choice([p for p in (numbers, strings) if p])
        a, b = rng.choice(pool), rng.choice(pool)
        return {"op": rng.choice(COMPARE_OPS), "args": [_p(rng, a), _p(rng, b)]}
    if kind == "temporal2":
        # Property-property: each operand a time property, a literal, or an INTERVAL whose
        # ends are properties, literals or '..'; seldom two literals.
        args = [_temporal_operand(rng, vocab, times, True), _temporal_operand(rng, vocab, times, rng.random() < 0.2)]
        rng.shuffle(args)
        return {"op": rng.choice(TEMPORAL_OPS), "args": args}
    if kind == "spatial2":
        if rng.random() < 0.6:
            return {"op": rng.choice(sorted(SPATIAL)), "args": [{"property": "geometry"}, {"property": "geometry"}]}
        g = _geometry_literal(rng, vocab.records)
        other = g if rng.random() < 0.5 else _geometry_literal(rng, vocab.records)
        return {"op": rng.choice(sorted(SPATIAL)), "args": [g, other]}
    if kind == "like2":
        pool = strings + ["pattern"] * 3 if "pattern" in strings else strings
        a, b = rng.choice(pool), rng.choice(pool)
        form = rng.choice(["props", "props", "same", "literal-left", "literals"])
        if form == "same":
            b = a
        left: Any = _p(rng, a)
        pattern: Any = _p(rng, b)
        if form in ("literal-left", "literals"):
            left = vocab.sample(rng, rng.choice(strings), lambda x: isinstance(x, str)) or "x"
        if form == "literals":
            pattern = _like_pattern(rng, left if rng.random() < 0.7 else "x")
        if rng.random() < 0.3:
            left, pattern = {"op": "casei", "args": [left]}, {"op": "casei", "args": [pattern]}
        return {"op": "like", "args": [left, pattern]}
    if kind == "array2":
        op = rng.choice(ARRAY_OPS)
        if rng.random() < 0.75:
            a = rng.choice(arrays)
            b = a if rng.random() < 0.4 else rng.choice(arrays)
            return {"op": op, "args": [_p(rng, a), _p(rng, b)]}
        elems = [e for n in arrays for v in vocab.values[n] if isinstance(v, list) for e in v
                 if not isinstance(e, (list, dict))] or ["x", 1]
        return {"op": op, "args": [rng.sample(elems, min(len(elems), rng.randint(1, 3))) for _ in range(2)]}
    if kind == "literals":
        pool = [1, 2.5, 3, "a", "b", "A", True, False, None,
                {"timestamp": "2020-01-01T00:00:00Z"}, {"timestamp": "2020-01-01T12:00:00Z"},
                {"date": "2020-01-01"}, {"date": "2020-01-02"}, "2020-01-01T12:00:00Z"]
        if rng.random() < 0.25:
            return {"op": "isNull", "args": [rng.choice(pool)]}
        a, b = rng.choice(pool), rng.choice(pool)
        if rng.random() < 0.3:
            b = a
        if isinstance(a, dict) and isinstance(b, str) and rng.random() < 0.5:
            a, b = b, a
        return {"op": rng.choice(COMPARE_OPS), "args": [a, b]}
    if kind == "bool":
        return rng.choice([True, False])
    return {"op": rng.choice(COMPARE_OPS), "args": [{"property": UNKNOWN}, rng.choice([1, "x", True])]}


def _temporal_operand(rng: random.Random, vocab: Vocabulary, times: list[str], with_property: bool) -> Any:
    """A temporal operand: a time property, or an INTERVAL with a property at one or both
    ends (the others literals or '..'); without ``with_property``, a literal."""
    names = ["datetime", "datetime"] + [n for n in times if n != "datetime"]

    def end(is_end: bool) -> Any:
        r = rng.random()
        if r < 0.5:
            return {"property": rng.choice(names)}
        if r < 0.65:
            return ".."
        t = rfc3339(int(rng.choice(vocab.times() or [T_LO])) + rng.choice([0, 0, -DAY, DAY]))
        return rng.choice([t, t[:10], {"timestamp": t}, {"date": t[:10]}])

    if not with_property:
        return _time_literal(rng, vocab)
    if rng.random() < 0.45:
        return _p(rng, rng.choice(names))
    ends = [end(False), end(True)]
    if not any(_is_prop(e) for e in ends):
        ends[rng.randrange(2)] = {"property": rng.choice(names)}
    return {"interval": ends}


def _text_value(x: Any) -> str:
    if x is None:
        return "NULL"
    if _is_prop(x):
        return '"' + x["property"] + '"'
    if isinstance(x, bool):
        return "TRUE" if x else "FALSE"
    if isinstance(x, (int, float)):
        return repr(x)
    if isinstance(x, str):
        return "'" + x.replace("'", "''") + "'"
    if isinstance(x, list):
        return "(" + ", ".join(_text_value(v) for v in x) + ")"
    if isinstance(x, dict):
        if "timestamp" in x:
            return f"TIMESTAMP('{x['timestamp']}')"
        if "date" in x:
            return f"DATE('{x['date']}')"
        if "interval" in x:
            return "INTERVAL(" + ", ".join(_text_value(e) for e in x["interval"]) + ")"
        if "bbox" in x:
            return "BBOX(" + ", ".join(repr(v) for v in x["bbox"]) + ")"
        if "type" in x:
            return wkt(x)
        if "op" in x:
            return to_text(x)
    raise ValueError(f"cannot write {x!r} as CQL2 text")


def wkt(g: dict[str, Any]) -> str:
    """GeoJSON → WKT with the shortest exact spelling of every number."""
    def pt(c: list[float]) -> str:
        return " ".join(repr(float(v)) for v in c)

    def ring(cs: list[list[float]]) -> str:
        return "(" + ", ".join(pt(c) for c in cs) + ")"

    def poly(rings: list[Any]) -> str:
        return "(" + ", ".join(ring(r) for r in rings) + ")"

    t, cs = g["type"], g.get("coordinates")
    if t == "Point":
        return f"POINT({pt(cs)})"
    if t == "MultiPoint":
        return "MULTIPOINT(" + ", ".join(f"({pt(c)})" for c in cs) + ")"
    if t == "LineString":
        return "LINESTRING" + ring(cs)
    if t == "MultiLineString":
        return "MULTILINESTRING(" + ", ".join(ring(c) for c in cs) + ")"
    if t == "Polygon":
        return "POLYGON" + poly(cs)
    if t == "MultiPolygon":
        return "MULTIPOLYGON(" + ", ".join(poly(p) for p in cs) + ")"
    return "GEOMETRYCOLLECTION(" + ", ".join(wkt(m) for m in g["geometries"]) + ")"


def to_text(node: Any) -> str:
    """CQL2 JSON → CQL2 text."""
    if node is True or node is False:
        return "TRUE" if node else "FALSE"
    op = node["op"]
    args = node["args"]
    low = op.lower()
    if low in ("and", "or"):
        return "(" + f") {low.upper()} (".join(to_text(a) for a in args) + ")"
    if low == "not":
        return f"NOT ({to_text(args[0])})"
    if low in ("casei", "accenti"):
        return f"{low.upper()}({_text_value(args[0])})"
    if low in ARITH:
        return f"({_text_value(args[0])} {op} {_text_value(args[1])})"
    if op in COMPARE_OPS:
        return f"{_text_value(args[0])} {op} {_text_value(args[1])}"
    if low == "like":
        return f"{_text_value(args[0])} LIKE {_text_value(args[1])}"
    if low == "between":
        return f"{_text_value(args[0])} BETWEEN {_text_value(args[1])} AND {_text_value(args[2])}"
    if low == "in":
        return f"{_text_value(args[0])} IN {_text_value(args[1])}"
    if low == "isnull":
        return f"{_text_value(args[0])} IS NULL"
    return f"{low.upper()}({_text_value(args[0])}, {_text_value(args[1])})"


def random_q(rng: random.Random, records: list[Record], advanced: bool = True) -> str:
    """A free-text query: words, prefixes, phrases from the records' texts, and the advanced syntax."""
    words = sorted({w for r in records for t in r.texts for w in text_words(t)}) or ["x"]

    def term() -> str:
        r = rng.random()
        if r < 0.45:
            w = rng.choice(words)
            w = w[: rng.randint(1, len(w))] if rng.random() < 0.4 else w
            return w.upper() if rng.random() < 0.2 else w
        if r < 0.75:
            texts = [t for rec in records for t in rec.texts]
            ws = text_words(rng.choice(texts)) if texts else ["x"]
            if len(ws) < 2:
                return ws[0] if ws else "x"
            i = rng.randrange(len(ws) - 1)
            k = rng.randint(2, min(3, len(ws) - i))
            phrase = ws[i : i + k]
            if rng.random() < 0.3:
                phrase[-1] = phrase[-1][: rng.randint(1, len(phrase[-1]))]
            if rng.random() < 0.2:
                phrase.reverse()
            return '"' + " ".join(phrase) + '"' if advanced or rng.random() < 0.5 else "-".join(phrase)
        if r < 0.85:
            return rng.choice(["nosuchword", "qqq", "ndvi", "Sentinel-2", "land-cover", "l2a"])
        return rng.choice(words) + rng.choice(["", "s", "ing"])

    if not advanced:
        return ",".join(term() for _ in range(rng.randint(1, 3)))

    def expr(depth: int) -> str:
        parts = []
        for i in range(rng.randint(1, 3)):
            r = rng.random()
            if depth < 2 and r < 0.15:
                piece = "(" + expr(depth + 1) + ")"
            elif r < 0.3:
                piece = f"{term()} AND {term()}"
            elif r < 0.38:
                piece = f"NOT {term()}"
            elif r < 0.55:
                piece = rng.choice("+-") + term()
            else:
                piece = term()
            if i:
                parts.append(rng.choice([" ", " OR ", " "]))
            parts.append(piece)
        return "".join(parts)

    q = expr(0)
    if rng.random() < 0.2:
        q += "," + term()
    return q


def random_sortby(rng: random.Random, records: list[Record], kind: str = "item") -> list[tuple[str, bool]]:
    vocab = Vocabulary(records)
    names = [n for n in vocab.names if sortable(records, n)]
    weights = [5 if n in ("datetime", "id", "collection", "title", "n", "cloud", "platform", "mixed", "flag", "gsd") else 1
               for n in names]
    chosen: list[str] = []
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        n = rng.choices(names, weights)[0]
        if n not in chosen:
            chosen.append(n)
    return [(n, rng.random() < 0.5) for n in chosen]


def sortby_get(fields: list[tuple[str, bool]], rng: random.Random) -> str:
    def name(n: str) -> str:
        return f"properties.{n}" if n not in ("id", "collection") and rng.random() < 0.3 else n

    return ",".join(("-" if d else rng.choice(["", "+"])) + name(n) for n, d in fields)


def sortby_post(fields: list[tuple[str, bool]], rng: random.Random) -> list[dict[str, str]]:
    return [{"field": n, "direction": "desc" if d else "asc"} for n, d in fields]


# -- expected answers and the server's, page by page ---------------------------------------------


def expected_items(
    oracle: Oracle,
    records: list[Record],
    *,
    bbox: list[float] | None = None,
    datetime: str | None = None,
    collections: list[str] | None = None,
    ids: list[str] | None = None,
    filter: Any = None,
    query: dict[str, Any] | None = None,
    q: str | list[str] | None = None,
    sortby: list[tuple[str, bool]] | None = None,
) -> list[Any]:
    """Keys of the items a search selects, in the order the server must return them."""
    base = {k: v for k, v in {"bbox": bbox, "datetime": datetime, "collections": collections, "ids": ids}.items()
            if v is not None}
    keep = oracle.evaluate(base)
    chosen = [r for r in records if r.key in keep]
    if filter is not None:
        chosen = [r for r in chosen if evaluate(filter, r) is True]
    if query is not None:
        chosen = [r for r in chosen if query_extension(query, r) is True]
    if q is not None:
        pred = q_predicate(q)
        chosen = [r for r in chosen if pred(r)]
    return [r.key for r in sort_records(chosen, sortby or [])]


def expected_collections(
    records: list[Record],
    *,
    bbox: list[float] | None = None,
    datetime: str | None = None,
    filter: Any = None,
    q: str | None = None,
    sortby: list[tuple[str, bool]] | None = None,
) -> list[str]:
    from tests.oracle import bbox_shape, interval

    chosen = records
    if bbox is not None:
        box = bbox_shape(bbox)
        chosen = [r for r in chosen if r.geometry is not None and r.geometry.intersects(box)]
    if datetime is not None:
        lo, hi = interval(datetime)
        chosen = [r for r in chosen if r.start is not None and r.start <= hi and r.end >= lo]
    if filter is not None:
        chosen = [r for r in chosen if evaluate(filter, r) is True]
    if q is not None:
        pred = q_predicate(q)
        chosen = [r for r in chosen if pred(r)]
    return [r.id for r in sort_records(chosen, sortby or [])]
