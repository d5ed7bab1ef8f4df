"""CQL2 (JSON form) evaluated over the columnar index, with SQL-style three-valued logic.

A predicate yields two boolean masks over all records: where it is TRUE and where it is
FALSE; everywhere else it is NULL (a missing property, a null value). NOT swaps the masks,
so NOT on an unknown property still selects nothing, as CQL2 requires.
"""

from __future__ import annotations

import operator
import re
from typing import TYPE_CHECKING, Any, Callable

import numpy as np
import orjson
import shapely

from server.errors import InvalidQueryParameter
from server.index.columns import Column, NumberPart, StringPart
from server.query.datetime import MAX_TIME, MIN_TIME, parse_rfc3339
from server.query.extensions import COERCE

if TYPE_CHECKING:
    from server.index.index import Index
    from server.query.model import SearchQuery

Tri = tuple[np.ndarray, np.ndarray]

COMPARISONS: dict[str, Callable[[Any, Any], Any]] = {
    "=": operator.eq, "<>": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
}
SPATIAL_OPS = {"s_intersects", "s_equals", "s_disjoint", "s_touches", "s_within", "s_overlaps", "s_crosses", "s_contains"}
TEMPORAL_OPS = {
    "t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals", "t_finishedby", "t_finishes",
    "t_intersects", "t_meets", "t_metby", "t_overlappedby", "t_overlaps", "t_startedby", "t_starts",
}
ARRAY_OPS = {"a_equals", "a_contains", "a_containedby", "a_overlaps"}
ARITHMETIC = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
              "%": operator.mod, "^": operator.pow, "div": operator.floordiv}
INTERVAL_PROPERTIES = {"datetime"}


LIGHT_PREDICATES = 16  # see is_light


def _scalar(arg: Any) -> bool:
    if isinstance(arg, (str, int, float, bool)):
        return True
    return isinstance(arg, dict) and len(arg) == 1 and isinstance(arg.get("timestamp", arg.get("date")), str)


def is_light(node: Any) -> bool:
    """Whether a filter takes a few vectorized passes over columns and nothing else: up to
    LIGHT_PREDICATES comparisons, BETWEENs, INs and IS NULLs of a property with literals,
    combined with AND, OR and NOT. Such a filter runs in ~0.1-0.3 ms per predicate at
    1,000,000 records, too little to be worth a hand-off to a worker thread; LIKE, CASEI,
    spatial, temporal and array operators, arithmetic and property-to-property comparisons
    may scan vocabularies or geometries, and are not light."""
    budget = [LIGHT_PREDICATES]

    def light(n: Any) -> bool:
        if n is True or n is False:
            return True
        if not isinstance(n, dict) or not isinstance(n.get("args"), list):
            return False
        op, args = str(n.get("op", "")).lower(), n["args"]
        if op in ("and", "or", "not"):
            return all(light(a) for a in args)
        budget[0] -= 1
        if budget[0] < 0 or not args or property_name(args[0]) is None:
            return False
        rest = args[1:]
        if op in COMPARISONS or op == "between":
            return 1 <= len(rest) <= 2 and all(_scalar(a) for a in rest)
        if op == "in":
            return len(rest) == 1 and isinstance(rest[0], list) and len(rest[0]) <= 64 and all(map(_scalar, rest[0]))
        return op == "isnull" and not rest

    return light(node)


def property_name(arg: Any) -> str | None:
    if isinstance(arg, dict) and set(arg) == {"property"} and isinstance(arg["property"], str):
        name = arg["property"]
        return name[len("properties."):] if name.startswith("properties.") else name
    return None


def like_regex(pattern: str, case_insensitive: bool = False) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if ch == "%" else "." if ch == "_" else re.escape(ch))
        i += 1
    return re.compile("".join(out), re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def _time_literal(arg: Any) -> tuple[int, int] | None:
    """A timestamp, date or interval literal as an inclusive (start, end)."""
    if isinstance(arg, dict):
        if "timestamp" in arg:
            t = _parse_time(arg["timestamp"])
            return t, t
        if "date" in arg:
            t = _parse_time(f"{arg['date']}T00:00:00Z")
            return t, t + 86_400_000_000 - 1
        if "interval" in arg and isinstance(arg["interval"], list) and len(arg["interval"]) == 2:
            ends = []
            for j, end in enumerate(arg["interval"]):
                if end in ("..", None):
                    ends.append(MIN_TIME if j == 0 else MAX_TIME)
                else:
                    lit = _time_literal(end if isinstance(end, dict) else {"timestamp" if "T" in str(end) else "date": end})
                    assert lit is not None
                    ends.append(lit[0] if j == 0 else lit[1])
            return ends[0], ends[1]
    return None


def _parse_time(text: Any) -> int:
    try:
        return parse_rfc3339(str(text))
    except ValueError as exc:
        raise InvalidQueryParameter(f"Invalid filter time literal: {exc}") from None


def _geometry_literal(arg: Any) -> shapely.Geometry | None:
    if isinstance(arg, dict) and "bbox" in arg:
        b = arg["bbox"]
        if len(b) == 6:
            b = [b[0], b[1], b[3], b[4]]
        from server.index.index import bbox_geometry

        return bbox_geometry(tuple(float(v) for v in b))  # type: ignore[arg-type]
    if isinstance(arg, dict) and "type" in arg and ("coordinates" in arg or "geometries" in arg):
        try:
            geom = shapely.from_geojson(orjson.dumps(arg))
        except Exception as exc:  # GEOS errors
            raise InvalidQueryParameter(f"Invalid filter geometry: {exc}") from None
        return geom if geom.is_valid else shapely.make_valid(geom)
    return None


class FilterEvaluator:
    def __init__(self, index: "Index", query: "SearchQuery | None" = None) -> None:
        self.index = index
        self.n = index.size
        self.query = query  # its deadline is checked at every predicate and in long loops
        self._arrays: dict[str, list[list[bytes] | None]] = {}  # array column -> keys per row, read once

    def _tick(self) -> None:
        if self.query is not None:
            from server.index.table import check_deadline

            check_deadline(self.query)

    # -- helpers -------------------------------------------------------------------------------

    def _empty(self) -> np.ndarray:
        return np.zeros(self.n, dtype=bool)

    def _tri(self, rows: np.ndarray, truth: np.ndarray) -> Tri:
        if len(rows) == self.n:  # every record has a value (rows is 0..n-1): no scatter
            truth = np.asarray(truth, dtype=bool)
            return truth.copy(), ~truth
        t = self._empty()
        f = self._empty()
        t[rows[truth]] = True
        f[rows[~truth]] = True
        return t, f

    def _column(self, name: str) -> Column | None:
        return self.index.column(name)

    # -- entry -----------------------------------------------------------------------------------

    def evaluate(self, node: Any) -> Tri:
        """(TRUE mask, FALSE mask) of a CQL2 JSON predicate. A predicate whose arguments do
        not fit its operator is a 400, whatever part of the evaluation finds it."""
        try:
            return self._evaluate(node)
        except InvalidQueryParameter:
            raise
        except (IndexError, KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise InvalidQueryParameter(f"Invalid filter: malformed {str(node)[:200]} ({type(exc).__name__})") from None

    def _evaluate(self, node: Any) -> Tri:
        self._tick()
        if node is True or node is False:
            full = np.full(self.n, node, dtype=bool)
            return full, ~full
        if not isinstance(node, dict) or "op" not in node:
            raise InvalidQueryParameter(f"Invalid filter: expected a predicate, got {str(node)[:100]}")
        op = str(node["op"]).lower()
        args = node.get("args", [])
        if not isinstance(args, list):
            raise InvalidQueryParameter(f"Invalid filter: args of {op} must be a list")
        if op == "and":
            t, f = self._evaluate(args[0])
            for a in args[1:]:
                t2, f2 = self._evaluate(a)
                t, f = t & t2, f | f2
            return t, f
        if op == "or":
            t, f = self._evaluate(args[0])
            for a in args[1:]:
                t2, f2 = self._evaluate(a)
                t, f = t | t2, f & f2
            return t, f
        if op == "not":
            t, f = self._evaluate(args[0])
            return f, t
        if op in COMPARISONS:
            return self._compare(op, args[0], args[1], bool(node.get(COERCE)))
        if op == "like":
            return self._like(args[0], args[1])
        if op == "between":
            if len(args) == 2 and isinstance(args[1], list) and len(args[1]) == 2:
                args = [args[0], *args[1]]  # the draft form: BETWEEN(x, [lo, hi])
            if len(args) != 3:
                raise InvalidQueryParameter("Invalid filter: BETWEEN takes a value and two bounds")
            if any(isinstance(b, (str, bool)) or b is None for b in args[1:]):
                raise InvalidQueryParameter("Invalid filter: BETWEEN bounds must be numbers")
            lo_t, lo_f = self._compare(">=", args[0], args[1])
            hi_t, hi_f = self._compare("<=", args[0], args[2])
            return lo_t & hi_t, lo_f | hi_f
        if op == "in":
            values = args[1]
            if not isinstance(values, list):
                raise InvalidQueryParameter("Invalid filter: IN needs a list")
            t, f = self._empty(), None
            for value in values:
                self._tick()
                t2, f2 = self._compare("=", args[0], value, bool(node.get(COERCE)))
                t |= t2
                f = f2 if f is None else f & f2
            return t, (f if f is not None else ~t)
        if op == "isnull":
            return self._is_null(args[0])
        if op in SPATIAL_OPS:
            return self._spatial(op, args)
        if op in TEMPORAL_OPS:
            return self._temporal(op, args)
        if op in ARRAY_OPS:
            return self._array(op, args)
        raise InvalidQueryParameter(f"Unsupported filter operator {node['op']!r}")

    # -- comparisons -------------------------------------------------------------------------

    def _compare(self, op: str, left: Any, right: Any, coerce: bool = False) -> Tri:
        left_name, right_name = property_name(left), property_name(right)
        if left_name is None and right_name is not None:
            flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
            return self._compare(flipped, right, left, coerce)
        if coerce and left_name is not None and isinstance(right, str) and _as_number(right) is not None:
            t1, _ = self._compare(op, left, right)
            t2, _ = self._compare(op, left, _as_number(right))
            col = self._column(left_name)
            truth = t1 | t2
            return truth, (self._present(col) & ~truth if col is not None else self._empty())
        casei = False
        if isinstance(left, dict) and str(left.get("op", "")).lower() in ("casei", "accenti"):
            casei = str(left["op"]).lower() == "casei"
            left = left["args"][0]
            left_name = property_name(left)
            if isinstance(right, dict) and str(right.get("op", "")).lower() in ("casei", "accenti"):
                right = right["args"][0]
        if left_name is not None and property_name(right) is not None:
            return self._compare_properties(op, left_name, property_name(right), casei)  # type: ignore[arg-type]
        if left_name is not None and property_name(right) is None and not _is_expression(right):
            return self._compare_literal(op, left_name, right, casei)
        return self._compare_dense(op, left, right)

    def _compare_properties(self, op: str, left: str, right: str, casei: bool) -> Tri:
        """Property against property: values of one JSON type compare (RFC 3339 times as
        instants, strings in string order), values of different types are simply not equal."""
        a, b = self._column(left), self._column(right)
        t, f = self._empty(), self._empty()
        if a is None or b is None:
            return t, f
        fn = COMPARISONS[op]
        done = self._empty()
        for pa, pb in ((a.time, b.time), (a.number, b.number), (a.string, b.string), (a.boolean, b.boolean)):
            if pa is None or pb is None:
                continue
            rows, ia, ib = np.intersect1d(pa.rows, pb.rows, assume_unique=True, return_indices=True)
            if isinstance(pa, StringPart) and isinstance(pb, StringPart):
                va = np.array(pa.lower_vocab if casei else pa.vocab, dtype=object)[pa.codes[ia]]
                vb = np.array(pb.lower_vocab if casei else pb.vocab, dtype=object)[pb.codes[ib]]
            else:
                va, vb = pa.values[ia], pb.values[ib]  # type: ignore[union-attr]
            truth = np.asarray(fn(va, vb), dtype=bool)
            fresh = ~done[rows]
            t[rows[fresh & truth]] = True
            f[rows[fresh & ~truth]] = True
            done[rows] = True
        f |= self._present(a) & self._present(b) & ~done
        return t, f

    def _compare_literal(self, op: str, name: str, literal: Any, casei: bool) -> Tri:
        fn = COMPARISONS[op]
        time_lit = _time_literal(literal)
        if name in INTERVAL_PROPERTIES and time_lit is not None:
            col = self._column(name)
            part = col.time if col is not None else None
            if part is None:
                return self._empty(), self._empty()
            lo, hi = time_lit
            # A DATE is every instant of its day: t > DATE and t <= DATE test the day's end,
            # t < DATE and t >= DATE its start.
            value = hi if op in (">", "<=") else lo
            if op in ("=", "<>") and lo != hi:
                truth = (part.values >= lo) & (part.values <= hi)
                return self._tri(part.rows, truth if op == "=" else ~truth)
            return self._tri(part.rows, fn(part.values, value))
        col = self._column(name)
        if col is None:
            return self._empty(), self._empty()
        if time_lit is not None:
            if col.time is None:
                return self._mismatch(col)
            lo, hi = time_lit
            if op in ("=", "<>") and lo != hi:
                truth = (col.time.values >= lo) & (col.time.values <= hi)
                return self._tri(col.time.rows, truth if op == "=" else ~truth)
            return self._with_mismatch(col, col.time.rows, fn(col.time.values, hi if op in (">", "<=") else lo))
        if isinstance(literal, bool):
            if col.boolean is None:
                return self._mismatch(col)
            return self._with_mismatch(col, col.boolean.rows, fn(col.boolean.values, literal))
        if isinstance(literal, (int, float)):
            if col.number is None:
                return self._mismatch(col)
            return self._with_mismatch(col, col.number.rows, fn(col.number.values, float(literal)))
        if isinstance(literal, str):
            if col.string is None:
                return self._mismatch(col)
            return self._with_mismatch(col, col.string.rows, _string_truth(col.string, op, literal, casei))
        if literal is None:
            return self._empty(), self._empty()
        raise InvalidQueryParameter(f"Invalid filter: cannot compare {name} with {str(literal)[:80]}")

    def _mismatch(self, col: Column) -> Tri:
        """A literal of another type than the property: defined values are simply not equal."""
        return self._empty(), self._present(col)

    def _with_mismatch(self, col: Column, rows: np.ndarray, truth: np.ndarray) -> Tri:
        """TRUE/FALSE where ``rows`` hold a value of the compared type; values of other types
        are FALSE (a number is not equal to a string), absent ones stay NULL."""
        t, f = self._tri(rows, truth)
        if len(col.parts) > 1 or (col.time is not None and rows is col.time.rows):
            f |= self._present(col) & ~t & ~f
        return t, f

    def _present(self, col: Column) -> np.ndarray:
        mask = self._empty()
        mask[col.present_rows] = True
        return mask

    def _is_null(self, arg: Any) -> Tri:
        name = property_name(arg)
        if name is None:
            raise InvalidQueryParameter("Invalid filter: IS NULL needs a property")
        if name == "geometry":
            present = self._empty()
            present[self.index.geometry_positions] = True
        else:
            col = self._column(name)
            present = self._present(col) if col is not None else self._empty()
        return ~present, present

    def _like(self, left: Any, pattern: Any) -> Tri:
        casei = False
        if isinstance(left, dict) and str(left.get("op", "")).lower() in ("casei", "accenti"):
            casei = str(left["op"]).lower() == "casei"
            left = left["args"][0]
        if isinstance(pattern, dict) and str(pattern.get("op", "")).lower() in ("casei", "accenti"):
            pattern = pattern["args"][0]
        name = property_name(left)
        if name is None or not isinstance(pattern, str):
            raise InvalidQueryParameter("Invalid filter: LIKE needs a property and a string pattern")
        col = self._column(name)
        if col is None:
            return self._empty(), self._empty()
        if col.string is None:
            return self._mismatch(col)
        regex = like_regex(pattern, casei)
        matching = np.array([bool(regex.fullmatch(v)) for v in col.string.vocab], dtype=bool)
        return self._with_mismatch(col, col.string.rows, matching[col.string.codes])

    def _compare_dense(self, op: str, left: Any, right: Any) -> Tri:
        lv, ld = self._dense(left)
        rv, rd = self._dense(right)
        defined = ld & rd
        with np.errstate(all="ignore"):
            truth = COMPARISONS[op](lv, rv)
        truth = np.asarray(truth, dtype=bool) & defined
        return truth, defined & ~truth

    def _dense(self, expr: Any) -> tuple[np.ndarray, np.ndarray]:
        """A numeric expression as (values, defined) over all records."""
        if isinstance(expr, bool) or expr is None:
            raise InvalidQueryParameter("Invalid filter: arithmetic needs numbers")
        if isinstance(expr, (int, float)):
            return np.full(self.n, float(expr)), np.ones(self.n, dtype=bool)
        name = property_name(expr)
        if name is not None:
            col = self._column(name)
            values = np.full(self.n, np.nan)
            defined = self._empty()
            part: NumberPart | None = None
            if col is not None:
                part = col.number or col.time
            if part is not None:
                values[part.rows] = part.values
                defined[part.rows] = True
            return values, defined
        if isinstance(expr, dict) and expr.get("op") in ARITHMETIC:
            args = expr.get("args", [])
            if len(args) != 2:
                raise InvalidQueryParameter("Invalid filter: arithmetic takes two arguments")
            a, ad = self._dense(args[0])
            b, bd = self._dense(args[1])
            with np.errstate(all="ignore"):
                out = ARITHMETIC[expr["op"]](a, b)
            return out, ad & bd & np.isfinite(out)
        time_lit = _time_literal(expr)
        if time_lit is not None:
            return np.full(self.n, float(time_lit[0])), np.ones(self.n, dtype=bool)
        raise InvalidQueryParameter(f"Invalid filter: unsupported expression {str(expr)[:100]}")

    # -- spatial -----------------------------------------------------------------------------

    def _spatial(self, op: str, args: list[Any]) -> Tri:
        op, a, b = _property_first(op, args, {"s_within": "s_contains", "s_contains": "s_within"})
        if property_name(a) != "geometry":
            raise InvalidQueryParameter(f"Invalid filter: {op} needs the geometry property")
        geom = _geometry_literal(b)
        if geom is None:
            raise InvalidQueryParameter(f"Invalid filter: {op} needs a geometry literal")
        has_geom = self._empty()
        has_geom[self.index.geometry_positions] = True
        if op == "s_disjoint":
            hits = self.index.spatial_positions(geom, "intersects")
            t = has_geom.copy()
            t[hits] = False
            return t, has_geom & ~t
        predicate = {
            "s_intersects": "intersects", "s_equals": "equals", "s_touches": "touches", "s_within": "within",
            "s_overlaps": "overlaps", "s_crosses": "crosses", "s_contains": "contains",
        }[op]
        hits = self.index.spatial_positions(geom, predicate)
        t = self._empty()
        t[hits] = True
        return t, has_geom & ~t

    # -- temporal ----------------------------------------------------------------------------

    def _temporal(self, op: str, args: list[Any]) -> Tri:
        if len(args) != 2:
            raise InvalidQueryParameter(f"Invalid filter: {op} takes two arguments")
        a, b = args
        if property_name(a) is None and property_name(b) is not None:
            # T_BEFORE(literal, prop) is T_AFTER(prop, literal): swap to the converse relation.
            a, b = b, a
            op = {
                "t_after": "t_before", "t_before": "t_after", "t_contains": "t_during", "t_during": "t_contains",
                "t_finishedby": "t_finishes", "t_finishes": "t_finishedby", "t_meets": "t_metby",
                "t_metby": "t_meets", "t_overlappedby": "t_overlaps", "t_overlaps": "t_overlappedby",
                "t_startedby": "t_starts", "t_starts": "t_startedby",
            }.get(op, op)
        name = property_name(a)
        if name is None:
            raise InvalidQueryParameter(f"Invalid filter: {op} needs a property")
        lit = _time_literal(b)
        if lit is None:
            raise InvalidQueryParameter(f"Invalid filter: {op} needs a time literal")
        qs, qe = lit
        if name in INTERVAL_PROPERTIES:
            s, e = self.index.start, self.index.end
            defined = s <= e
        else:
            col = self._column(name)
            if col is None or col.time is None:
                return self._empty(), self._empty()
            s = np.full(self.n, MAX_TIME, dtype=np.int64)
            s[col.time.rows] = col.time.values
            e = np.full(self.n, MIN_TIME, dtype=np.int64)
            e[col.time.rows] = col.time.values
            defined = s <= e
        relations: dict[str, Callable[[], np.ndarray]] = {
            "t_after": lambda: s > qe,
            "t_before": lambda: e < qs,
            "t_contains": lambda: (s < qs) & (e > qe),
            "t_disjoint": lambda: (e < qs) | (s > qe),
            "t_during": lambda: (s > qs) & (e < qe),
            "t_equals": lambda: (s == qs) & (e == qe),
            "t_finishedby": lambda: (s < qs) & (e == qe),
            "t_finishes": lambda: (s > qs) & (e == qe),
            "t_intersects": lambda: (s <= qe) & (e >= qs),
            "t_meets": lambda: e == qs,
            "t_metby": lambda: s == qe,
            "t_overlappedby": lambda: (s > qs) & (s < qe) & (e > qe),
            "t_overlaps": lambda: (s < qs) & (e > qs) & (e < qe),
            "t_startedby": lambda: (s == qs) & (e > qe),
            "t_starts": lambda: (s == qs) & (e < qe),
        }
        truth = relations[op]() & defined
        return truth, defined & ~truth

    # -- arrays --------------------------------------------------------------------------------

    def _array(self, op: str, args: list[Any]) -> Tri:
        op, a, b = _property_first(op, args, {"a_contains": "a_containedby", "a_containedby": "a_contains"})
        name = property_name(a)
        if name is None or not isinstance(b, list):
            raise InvalidQueryParameter(f"Invalid filter: {op} needs a property and an array literal")
        col = self._column(name)
        if col is None or col.objects is None:
            return self._empty(), self._empty() if col is None else self._present(col)
        want = [_array_key(v) for v in b]
        wanted = set(want)
        test: Callable[[list[bytes]], bool] = {
            "a_equals": lambda have: have == want,
            "a_contains": lambda have: wanted.issubset(have),
            "a_containedby": lambda have: wanted.issuperset(have),
            "a_overlaps": lambda have: not wanted.isdisjoint(have),
        }[op]
        rows = col.objects.rows
        truth = np.zeros(len(rows), dtype=bool)
        for i, have in enumerate(self._array_keys(name, col)):
            if i % 4096 == 0:
                self._tick()
            if have is not None:
                truth[i] = test(have)
        return self._with_mismatch(col, rows, truth)

    def _array_keys(self, name: str, col: Column) -> list[list[bytes] | None]:
        """The column's arrays as keys, read once per filter however many predicates use it."""
        if name not in self._arrays:
            self._arrays[name] = _read_array_keys(col)
        return self._arrays[name]


def _read_array_keys(col: Column) -> list[list[bytes] | None]:
    """Per row of an object column: its array's elements as _array_key bytes (None: no array)."""
    assert col.objects is not None
    out: list[list[bytes] | None] = []
    for i in range(len(col.objects.rows)):
        value = col.objects.value(i)
        out.append([_array_key(v) for v in value] if isinstance(value, list) else None)
    return out


def _array_key(value: Any) -> bytes:
    """An array element as comparable bytes; JSON numbers compare by value, so the 10 of an
    item equals the 10.0 that CQL2 text parses ``(10)`` into."""

    def norm(v: Any) -> Any:
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
        if isinstance(v, list):
            return [norm(x) for x in v]
        if isinstance(v, dict):
            return {k: norm(x) for k, x in v.items()}
        return v

    return orjson.dumps(norm(value), option=orjson.OPT_SORT_KEYS)


def _property_first(op: str, args: list[Any], converse: dict[str, str]) -> tuple[str, Any, Any]:
    """(op, property, literal) for a two-argument operator written either way round."""
    if len(args) != 2:
        raise InvalidQueryParameter(f"Invalid filter: {op} takes two arguments")
    a, b = args
    if property_name(a) is None:
        return converse.get(op, op), b, a
    return op, a, b


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def _is_expression(arg: Any) -> bool:
    return isinstance(arg, dict) and "op" in arg


def _string_truth(part: StringPart, op: str, literal: str, casei: bool) -> np.ndarray:
    if casei:
        wanted = literal.lower()
        lower = np.array(part.lower_vocab, dtype=object)
        match = COMPARISONS[op](lower, wanted).astype(bool)
        return match[part.codes]
    if op in ("=", "<>"):
        code = part.code_of(literal)
        equal = part.codes == code if code is not None else np.zeros(len(part.codes), dtype=bool)
        return equal if op == "=" else ~equal
    from bisect import bisect_left, bisect_right

    lo = bisect_left(part.vocab, literal)
    hi = bisect_right(part.vocab, literal)
    if op == "<":
        return part.codes < lo
    if op == "<=":
        return part.codes < hi
    if op == ">":
        return part.codes >= hi
    return part.codes >= lo
