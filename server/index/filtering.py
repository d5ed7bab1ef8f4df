"""CQL2 (JSON form) evaluated over the columnar index, with SQL-style three-valued logic.

A predicate yields two boolean masks over all records: where it is TRUE and where it is
FALSE; everywhere else it is NULL (a missing property, a null value). NOT swaps the masks,
so NOT on an unknown property still selects nothing, as CQL2 requires.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Callable
from typing import Any, Protocol

import numpy as np
import shapely

from server.errors import InvalidQueryParameter
from server.index.columns import Column, NumberPart, StringPart
from server.index.cql2_terms import (
    ARITHMETIC,
    ARITY,
    ARRAY_OPS,
    COMPARISONS,
    INTERVAL_PROPERTIES,
    LIKE_PATTERN_MAX,
    SELF_RELATIONS,
    SPATIAL_OPS,
    SPATIAL_PREDICATES,
    TEMPORAL_OPS,
    array_key,
    as_number,
    compare_constants,
    geometry_literal,
    instant_literal,
    is_expression,
    like_pattern,
    property_name,
    time_literal,
    unwrap_case,
)
from server.index.like import like_matcher
from server.query.extensions import COERCE
from server.query.model import SearchQuery, check_deadline


class Records(Protocol):
    """What a filter reads of the records it runs over (an item Table or the collections')."""

    size: int
    start: np.ndarray
    end: np.ndarray
    geometry_positions: np.ndarray

    def column(self, name: str) -> Column | None: ...

    def property_key(self, name: str) -> str: ...

    def spatial_positions(self, geom: shapely.Geometry, predicate: str) -> np.ndarray: ...

Tri = tuple[np.ndarray, np.ndarray]


class FilterEvaluator:
    def __init__(self, index: Records, query: SearchQuery | None = None) -> None:
        self.index = index
        self.n = index.size
        self.query = query  # its deadline is checked at every predicate and in long loops
        self._arrays: dict[str, list[list[bytes] | None]] = {}  # array column -> keys per row, read once

    def _tick(self) -> None:
        if self.query is not None:
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
        arity = ARITY.get(op)  # (every predicate's argument count is checked here, once)
        if arity is not None and not arity[0] <= len(args) <= arity[1]:
            wanted = str(arity[0]) if arity[0] == arity[1] else f"at least {arity[0]}"
            raise InvalidQueryParameter(f"Invalid filter: {op} takes {wanted} argument(s), got {len(args)}")
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
            at_once = self._in_at_once(args[0], values, bool(node.get(COERCE)))
            if at_once is not None:
                return at_once
            t = self._empty()
            false: np.ndarray | None = None  # FALSE for every value
            for value in values:
                self._tick()
                t2, f2 = self._compare("=", args[0], value, bool(node.get(COERCE)))
                t |= t2
                false = f2 if false is None else false & f2
            return t, (false if false is not None else ~t)
        if op == "isnull":
            return self._is_null(args[0])
        if op in SPATIAL_OPS:
            return self._spatial(op, args)
        if op in TEMPORAL_OPS:
            return self._temporal(op, args)
        if op in ARRAY_OPS:
            return self._array(op, args)
        raise InvalidQueryParameter(f"Unsupported filter operator {node['op']!r}")

    def _in_at_once(self, left: Any, values: list[Any], coerce: bool) -> Tri | None:
        """A property IN a list of strings, or of numbers, in one pass over its column
        (np.isin of the values' codes), not a pass per value: the (TRUE, FALSE) of the OR of
        the "="s, FALSE where a record holds a value (of any type) equal to none of them. None:
        another IN, for the loop. qa16: a pass per value made an IN of V values V full-size
        masks, O(V x records): 200,000 ids (a 1 MiB body) ran 11 s at 100,000 records, to the
        time budget; 10,000 values were ~0.5 s at 100,000 records, so ~50 s at 10,000,000."""
        name = property_name(left)
        if name is None or coerce or not values:
            return None
        if all(type(v) is str for v in values):
            strings = True
        elif all(type(v) in (int, float) for v in values):
            strings = False
        else:
            return None
        col = self._column(name)
        if col is None:
            return self._empty(), self._empty()
        part = col.string if strings else col.number
        if part is None:
            return self._mismatch(col)
        if isinstance(part, StringPart):
            codes = []
            for i, value in enumerate(set(values)):
                if not i % 4096:
                    self._tick()  # (a value's code is a bisection of the vocabulary, ~1 us)
                code = part.code_of(value)
                if code is not None:
                    codes.append(code)
            truth = np.isin(part.codes, np.array(codes, dtype=part.codes.dtype))
        else:
            truth = np.isin(part.values, np.array([float(v) for v in values], dtype=np.float64))
        return self._with_mismatch(col, part.rows, truth)

    # -- comparisons -------------------------------------------------------------------------

    def _compare(self, op: str, left: Any, right: Any, coerce: bool = False) -> Tri:
        left, casei_left = unwrap_case(left)
        right, casei_right = unwrap_case(right)
        casei = casei_left or casei_right
        left_name, right_name = property_name(left), property_name(right)
        if left_name is None and right_name is not None:
            flipped = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}.get(op, op)
            left, right, left_name, right_name, op = right, left, right_name, left_name, flipped
        if coerce and left_name is not None and isinstance(right, str) and as_number(right) is not None:
            t1, _ = self._compare(op, left, right)
            t2, _ = self._compare(op, left, as_number(right))
            col = self._column(left_name)
            truth = t1 | t2
            return truth, (self._present(col) & ~truth if col is not None else self._empty())
        if left_name is not None and right_name is not None:
            return self._compare_properties(op, left_name, right_name, casei)
        if left_name is not None and not is_expression(right):
            return self._compare_literal(op, left_name, right, casei)
        if left_name is None and not is_expression(left) and not is_expression(right):
            return self._constant(compare_constants(op, left, right, casei))
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
                va = np.array(pa.lower_vocab if casei else list(pa.vocab), dtype=object)[pa.codes[ia]]
                vb = np.array(pb.lower_vocab if casei else list(pb.vocab), dtype=object)[pb.codes[ib]]
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
        col = self._column(name)
        if col is None:
            return self._empty(), self._empty()
        time_lit = time_literal(literal)
        if time_lit is not None:
            if col.time is None:
                return self._mismatch(col)
            lo, hi = time_lit
            # A DATE is every instant of its day: t = DATE holds within it, t > DATE and
            # t <= DATE test the day's end, t < DATE and t >= DATE its start.
            if op in ("=", "<>") and lo != hi:
                within = (col.time.values >= lo) & (col.time.values <= hi)
                truth = within if op == "=" else ~within
            else:
                truth = fn(col.time.values, hi if op in (">", "<=") else lo)
            return self._with_mismatch(col, col.time.rows, truth)
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
        arg, _ = unwrap_case(arg)
        name = property_name(arg)
        if name is None:
            if is_expression(arg) and str(arg.get("op")) in ARITHMETIC:
                _, defined = self._dense(arg)
                return ~defined, defined.copy()
            if arg is None:
                return self._constant(True)
            if isinstance(arg, (str, int, float, bool, list)) or time_literal(arg) is not None \
                    or geometry_literal(arg) is not None:
                return self._constant(False)  # a literal is never null
            raise InvalidQueryParameter(f"Invalid filter: IS NULL of {str(arg)[:80]} is not supported")
        if self.index.property_key(name) == "geometry":
            present = self._empty()
            present[self.index.geometry_positions] = True
        else:
            col = self._column(name)
            present = self._present(col) if col is not None else self._empty()
        return ~present, present

    def _like(self, left: Any, pattern: Any) -> Tri:
        left, casei_left = unwrap_case(left)
        pattern, casei_right = unwrap_case(pattern)
        casei = casei_left or casei_right
        name, pattern_name = property_name(left), property_name(pattern)
        if (name is None and not isinstance(left, str)) or (pattern_name is None and not isinstance(pattern, str)):
            raise InvalidQueryParameter("Invalid filter: LIKE takes a string or property and a pattern or property")
        if pattern_name is None:
            pattern = like_pattern(pattern)
        if name is None and pattern_name is None:
            return self._constant(bool(like_matcher(pattern, casei)(left)))
        if pattern_name is None:
            col = self._column(name)  # type: ignore[arg-type]
            if col is None:
                return self._empty(), self._empty()
            if col.string is None:
                return self._mismatch(col)
            alike, vocab = like_matcher(pattern, casei), col.string.vocab
            matching = np.zeros(len(vocab), dtype=bool)
            for start in range(0, len(vocab), 4096):
                self._tick()
                chunk = vocab[start:start + 4096]
                matching[start:start + len(chunk)] = np.fromiter(map(alike, chunk), dtype=bool, count=len(chunk))
            return self._with_mismatch(col, col.string.rows, matching[col.string.codes])
        patterns = self._column(pattern_name)
        if patterns is None:
            return self._empty(), self._empty()
        if name is None:  # a string against each record's pattern: one test per distinct pattern
            if patterns.string is None:
                return self._mismatch(patterns)
            matching = np.zeros(len(patterns.string.vocab), dtype=bool)
            for i, p in enumerate(patterns.string.vocab):
                if i % 4096 == 0 or len(p) > LIKE_PATTERN_MAX:  # (a long one: its time checked at once)
                    self._tick()
                matching[i] = bool(like_matcher(p, casei)(left))
            return self._with_mismatch(patterns, patterns.string.rows, matching[patterns.string.codes])
        values = self._column(name)
        if values is None:
            return self._empty(), self._empty()
        t = self._empty()
        if values.string is not None and patterns.string is not None:
            va, pa = values.string, patterns.string
            rows, ia, ib = np.intersect1d(va.rows, pa.rows, assume_unique=True, return_indices=True)
            # One test per distinct (value, pattern) pair, each pattern compiled once.
            pairs = va.codes[ia].astype(np.int64) * len(pa.vocab) + pa.codes[ib]
            unique, inverse = np.unique(pairs, return_inverse=True)
            truth = np.zeros(len(unique), dtype=bool)
            compiled: dict[int, Callable[[str], object]] = {}
            for i, pair in enumerate(unique.tolist()):
                vcode, pcode = divmod(pair, len(pa.vocab))
                value = va.vocab[vcode]
                if i % 4096 == 0 or len(value) > LIKE_PATTERN_MAX:
                    self._tick()
                matches = compiled.get(pcode)
                if matches is None:
                    matches = compiled[pcode] = like_matcher(pa.vocab[pcode], casei)
                truth[i] = bool(matches(value))
            t[rows[truth[inverse.reshape(-1)]]] = True
        # Values or patterns that are not strings are simply not alike.
        return t, self._present(values) & self._present(patterns) & ~t

    def _array_literal(self, op: str, arg: Any) -> list[bytes]:
        if any(property_name(v) is not None or is_expression(v) for v in arg):
            raise InvalidQueryParameter(f"Invalid filter: the arrays of {op} hold literals only")
        return [array_key(v) for v in arg]

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
        time_lit = time_literal(expr)
        if time_lit is not None:
            return np.full(self.n, float(time_lit[0])), np.ones(self.n, dtype=bool)
        raise InvalidQueryParameter(f"Invalid filter: unsupported expression {str(expr)[:100]}")

    # -- spatial -----------------------------------------------------------------------------

    def _spatial(self, op: str, args: list[Any]) -> Tri:
        first, second = (self._spatial_operand(op, arg) for arg in args)
        if first is not None and second is not None:  # two literals: one answer for every record
            return self._constant(bool(getattr(shapely, SPATIAL_PREDICATES[op])(first, second)))
        has_geom = self._empty()
        has_geom[self.index.geometry_positions] = True
        if first is None and second is None:
            # A record's geometry against itself: DE-9IM of A and A, for any non-empty A, is
            # equal, within and containing it (so intersecting), never disjoint, touching,
            # overlapping or crossing.
            if op in SELF_RELATIONS:
                return has_geom, self._empty()
            return self._empty(), has_geom
        if first is None:
            geom = second
        else:
            geom, op = first, {"s_within": "s_contains", "s_contains": "s_within"}.get(op, op)
        if op == "s_disjoint":
            hits = self.index.spatial_positions(geom, "intersects")
            t = has_geom.copy()
            t[hits] = False
            return t, has_geom & ~t
        hits = self.index.spatial_positions(geom, SPATIAL_PREDICATES[op])
        t = self._empty()
        t[hits] = True
        return t, has_geom & ~t

    def _spatial_operand(self, op: str, arg: Any) -> shapely.Geometry | None:
        """A geometry literal, or None for the geometry property (the only spatial one)."""
        name = property_name(arg)
        if name is not None and self.index.property_key(name) == "geometry":
            return None
        if name is not None:
            raise InvalidQueryParameter(f"Invalid filter: {op} needs the geometry property, not {name!r}")
        geom = geometry_literal(arg)
        if geom is None:
            raise InvalidQueryParameter(f"Invalid filter: {op} takes the geometry property or a geometry literal")
        return geom

    def _constant(self, value: bool | None) -> Tri:
        """A predicate that does not depend on the record: TRUE, FALSE or NULL everywhere."""
        if value is None:
            return self._empty(), self._empty()
        full = np.full(self.n, value, dtype=bool)
        return full, ~full

    # -- temporal ----------------------------------------------------------------------------

    def _temporal(self, op: str, args: list[Any]) -> Tri:
        """Allen's relations, elementwise: each operand is (start, end, defined), arrays over
        the records or scalars for a literal. ``datetime`` is the record's interval, another
        property the instant of its value, INTERVAL(a, b) from the start of a to the end of b."""
        s, e, d1 = self._time_operand(op, args[0])
        qs, qe, d2 = self._time_operand(op, args[1])
        relations: dict[str, Callable[[], Any]] = {
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
        defined = np.broadcast_to(np.logical_and(d1, d2), (self.n,))
        truth = np.broadcast_to(relations[op](), (self.n,)) & defined
        return truth, defined & ~truth

    def _time_operand(self, op: str, arg: Any) -> tuple[Any, Any, Any]:
        """(start, end, defined) of a temporal operand: scalars for a literal, arrays over
        the records for a property or an INTERVAL with a property at an end."""
        name = property_name(arg)
        if name is not None:
            return self._time_of(name)
        lit = time_literal(arg)
        if lit is not None:
            return lit[0], lit[1], True
        if isinstance(arg, dict) and set(arg) == {"interval"} and isinstance(arg["interval"], list) \
                and len(arg["interval"]) == 2:
            s, _, ds = self._interval_end(op, arg["interval"][0], False)
            _, e, de = self._interval_end(op, arg["interval"][1], True)
            # Per record, an INTERVAL whose start is after its end is no interval: NULL.
            return s, e, np.logical_and(np.logical_and(ds, de), s <= e)
        raise InvalidQueryParameter(
            f"Invalid filter: {op} takes a time property, a TIMESTAMP, a DATE or an INTERVAL, not {str(arg)[:80]}")

    def _interval_end(self, op: str, end: Any, is_end: bool) -> tuple[Any, Any, Any]:
        name = property_name(end)
        if name is not None:
            return self._time_of(name)
        t = instant_literal(end, is_end)
        if t is None:
            raise InvalidQueryParameter(
                f"Invalid filter: an INTERVAL end in {op} is a time property, a TIMESTAMP, a DATE or '..', "
                f"not {str(end)[:80]}")
        return t, t, True

    def _time_of(self, name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``datetime``: each record's interval; another property: the instant of its value
        (NULL where it has none, or a value that is no RFC 3339 date-time)."""
        if self.index.property_key(name) in INTERVAL_PROPERTIES:
            s, e = self.index.start, self.index.end
            return s, e, s <= e
        col = self._column(name)
        values = np.zeros(self.n, dtype=np.int64)
        defined = self._empty()
        if col is not None and col.time is not None:
            values[col.time.rows] = col.time.values
            defined[col.time.rows] = True
        return values, values, defined

    # -- arrays --------------------------------------------------------------------------------

    def _array(self, op: str, args: list[Any]) -> Tri:
        a, b = args
        a_name, b_name = property_name(a), property_name(b)
        if (a_name is None and not isinstance(a, list)) or (b_name is None and not isinstance(b, list)):
            raise InvalidQueryParameter(f"Invalid filter: {op} takes array properties and array literals")
        if a_name is None and b_name is None:
            return self._constant(ARRAY_TESTS[op](self._array_literal(op, a), self._array_literal(op, b)))
        if a_name is not None and b_name is not None:
            return self._array_properties(op, a_name, b_name)
        if a_name is None:
            op, a_name, b = {"a_contains": "a_containedby", "a_containedby": "a_contains"}.get(op, op), b_name, a
        assert a_name is not None
        want = self._array_literal(op, b)
        col = self._column(a_name)
        if col is None or col.objects is None:
            return self._empty(), self._empty() if col is None else self._present(col)
        wanted = set(want)
        test: Callable[[list[bytes]], bool] = {
            "a_equals": lambda have: have == want,
            "a_contains": lambda have: wanted.issubset(have),
            "a_containedby": lambda have: wanted.issuperset(have),
            "a_overlaps": lambda have: not wanted.isdisjoint(have),
        }[op]
        rows = col.objects.rows
        truth = np.zeros(len(rows), dtype=bool)
        for i, have in enumerate(self._array_keys(a_name, col)):
            if i % 4096 == 0:
                self._tick()
            if have is not None:
                truth[i] = test(have)
        return self._with_mismatch(col, rows, truth)

    def _array_properties(self, op: str, a_name: str, b_name: str) -> Tri:
        """Array property against array property, record by record: TRUE or FALSE where both
        have a value (a value that is not an array is FALSE), NULL elsewhere."""
        a, b = self._column(a_name), self._column(b_name)
        if a is None or b is None:
            return self._empty(), self._empty()
        t = self._empty()
        if a.objects is not None and b.objects is not None:
            rows, ia, ib = np.intersect1d(a.objects.rows, b.objects.rows, assume_unique=True, return_indices=True)
            keys_a, keys_b = self._array_keys(a_name, a), self._array_keys(b_name, b)
            test = ARRAY_TESTS[op]
            truth = np.zeros(len(rows), dtype=bool)
            for k, (i, j) in enumerate(zip(ia.tolist(), ib.tolist())):
                if k % 4096 == 0:
                    self._tick()
                have_a, have_b = keys_a[i], keys_b[j]
                if have_a is not None and have_b is not None:
                    truth[k] = test(have_a, have_b)
            t[rows[truth]] = True
        return t, self._present(a) & self._present(b) & ~t

    def _array_keys(self, name: str, col: Column) -> list[list[bytes] | None]:
        """The column's arrays as keys, read once per filter however many predicates use it."""
        if name not in self._arrays:
            self._arrays[name] = _read_array_keys(col)
        return self._arrays[name]


def _read_array_keys(col: Column) -> list[list[bytes] | None]:
    """Per row of an object column: its array's elements as array_key bytes (None: no array)."""
    assert col.objects is not None
    out: list[list[bytes] | None] = []
    for i in range(len(col.objects.rows)):
        value = col.objects.value(i)
        out.append([array_key(v) for v in value] if isinstance(value, list) else None)
    return out


ARRAY_TESTS: dict[str, Callable[[list[bytes], list[bytes]], bool]] = {
    "a_equals": lambda a, b: a == b,
    "a_contains": lambda a, b: set(b).issubset(a),
    "a_containedby": lambda a, b: set(a).issubset(b),
    "a_overlaps": lambda a, b: not set(a).isdisjoint(b),
}


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
    lo = bisect_left(part.vocab, literal)
    hi = bisect_right(part.vocab, literal)
    if op == "<":
        return part.codes < lo
    if op == "<=":
        return part.codes < hi
    if op == ">":
        return part.codes >= hi
    return part.codes >= lo
