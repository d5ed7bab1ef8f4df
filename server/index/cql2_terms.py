"""The parts of a CQL2 JSON filter that are read without the index: operator tables, property
references, literals (times, geometries, arrays), constant comparisons, and which filters are
light enough to run inline. server/index/filtering.py evaluates filters with them.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from typing import Any

import orjson
import shapely

from server.errors import InvalidQueryParameter
from server.index.spatial import bbox_geometry
from server.query.datetime import MAX_TIME, MIN_TIME, parse_rfc3339
from server.query.values import GeometryLiteral, checked_geometry, geojson_geometry

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


SPATIAL_PREDICATES = {
    "s_intersects": "intersects", "s_equals": "equals", "s_disjoint": "disjoint", "s_touches": "touches",
    "s_within": "within", "s_overlaps": "overlaps", "s_crosses": "crosses", "s_contains": "contains",
}


SELF_RELATIONS = {"s_intersects", "s_equals", "s_within", "s_contains"}  # true of A and A


# (fewest, most) arguments of the operators whose count is fixed; between also has a draft form of 2
ARITY: dict[str, tuple[int, int]] = {
    "and": (1, 10**9), "or": (1, 10**9), "not": (1, 1), "like": (2, 2), "between": (2, 3), "in": (2, 2),
    "isnull": (1, 1), **{op: (2, 2) for op in COMPARISONS}, **{op: (2, 2) for op in SPATIAL_OPS},
    **{op: (2, 2) for op in TEMPORAL_OPS}, **{op: (2, 2) for op in ARRAY_OPS},
}


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
    """The name a property reference gives, as given: which column it means (a `properties.`
    prefix dropped or not) is the table's to say (Table.property_key)."""
    if isinstance(arg, dict) and set(arg) == {"property"} and isinstance(arg["property"], str):
        name: str = arg["property"]
        return name
    return None


LIKE_PATTERN_MAX = 1_000  # characters of a LIKE pattern in a request; longer: a 400 (README)


def like_regex(pattern: str, case_insensitive: bool = False) -> re.Pattern[str]:
    """LIKE as a regex (for fullmatch) that cannot backtrack: read as segments between `%`s,
    each matching exactly as many characters as it has (`_` one, an escaped one one), the
    first anchored at the start, each one between them placed at its leftmost fit and never
    reconsidered (an atomic group; leftmost is always right: it leaves the most room for the
    rest), the last one tested once, at the end (a lookbehind, after a lookahead that leaves it
    room). A plain `.*` per `%` took 4 s at 4 `%`s and did not end at 20 (one request held the
    GIL past its time budget); `.*last` alone tried the last segment at every position: a
    70,000-character `%...` pattern over a 70,000-character value took 7.2 s (session 14's QA).
    Now the first and last segments cost their length, a middle one at most its length at each
    character it skips: O(len(value) x the longest middle segment), which LIKE_PATTERN_MAX
    bounds for a request's pattern."""
    segments = like_segments(pattern)
    parts = ["".join(segment) for segment in segments]
    if len(parts) == 1:
        regex = parts[0]
    else:
        middle = "".join(f"(?>.*?{part})" for part in parts[1:-1] if part)
        last = len(segments[-1])
        tail = f"(?=.{{{last}}})(?>.*)(?<={parts[-1]})" if last else ".*"
        regex = f"{parts[0]}{middle}{tail}"
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


def like_segments(pattern: str) -> list[list[str]]:
    """A LIKE pattern's segments between `%`s, each a regex a character: `_` any one, a
    backslash escapes the next character (a last lone one is itself)."""
    return [["." if ch is None else re.escape(ch) for ch in segment] for segment in like_tokens(pattern)]


def like_tokens(pattern: str) -> list[list[str | None]]:
    """A LIKE pattern's segments between `%`s, each a list of its characters, None for `_` (any
    one); a backslash escapes the next character (a last lone one is itself)."""
    segments: list[list[str | None]] = [[]]
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\" and i + 1 < len(pattern):
            segments[-1].append(pattern[i + 1])
            i += 2
            continue
        if ch == "%":
            segments.append([])
        else:
            segments[-1].append(None if ch == "_" else ch)
        i += 1
    return segments


def like_pattern(pattern: str) -> str:
    """A request's LIKE pattern, refused (400) past LIKE_PATTERN_MAX characters: its middle
    segments' matching costs up to their length at each character of a value (like_regex)."""
    if len(pattern) > LIKE_PATTERN_MAX:
        raise InvalidQueryParameter(
            f"Invalid filter: a LIKE pattern of {len(pattern):,} characters; at most {LIKE_PATTERN_MAX:,} are allowed"
        )
    return pattern


def time_literal(arg: Any) -> tuple[int, int] | None:
    """A timestamp, date or interval literal as an inclusive (start, end); None for anything
    else, including an INTERVAL with a property (or function) at an end."""
    if isinstance(arg, dict):
        if "timestamp" in arg:
            t = _parse_time(arg["timestamp"])
            return t, t
        if "date" in arg:
            t = _parse_time(f"{arg['date']}T00:00:00Z")
            return t, t + 86_400_000_000 - 1
        if "interval" in arg and isinstance(arg["interval"], list) and len(arg["interval"]) == 2:
            ends = [instant_literal(end, j == 1) for j, end in enumerate(arg["interval"])]
            if ends[0] is None or ends[1] is None:
                return None
            if ends[0] > ends[1]:
                raise InvalidQueryParameter("Invalid filter: an INTERVAL starts after its end")
            return ends[0], ends[1]
    return None


def instant_literal(end: Any, is_end: bool) -> int | None:
    """One end of an INTERVAL literal: '..' (open), a timestamp or date (as a string or an
    object); None for what is not a literal (a property, a function)."""
    if end in ("..", None):
        return MAX_TIME if is_end else MIN_TIME
    if isinstance(end, str):
        end = {"timestamp" if "T" in end or "t" in end else "date": end}
    if isinstance(end, dict) and len(end) == 1 and ("timestamp" in end or "date" in end):
        lit = time_literal(end)
        assert lit is not None
        return lit[1] if is_end else lit[0]
    return None


def _parse_time(text: Any) -> int:
    try:
        return parse_rfc3339(str(text))
    except ValueError as exc:
        raise InvalidQueryParameter(f"Invalid filter time literal: {exc}") from None


def geometry_literal(arg: Any) -> shapely.Geometry | None:
    if isinstance(arg, dict) and "bbox" in arg:
        b = arg["bbox"]
        if len(b) == 6:
            b = [b[0], b[1], b[3], b[4]]
        return bbox_geometry(tuple(float(v) for v in b))  # type: ignore[arg-type]
    if isinstance(arg, GeometryLiteral):
        return arg.geometry  # read and checked once, by parse_filter
    if isinstance(arg, dict) and "type" in arg and ("coordinates" in arg or "geometries" in arg):
        return checked_geometry(geojson_geometry(arg, "filter"), "filter")
    return None


def unwrap_case(arg: Any) -> tuple[Any, bool]:
    """The argument of CASEI(...) or ACCENTI(...) (nested either way), and whether a CASEI was there."""
    casei = False
    while isinstance(arg, dict) and str(arg.get("op", "")).lower() in ("casei", "accenti") \
            and isinstance(arg.get("args"), list) and len(arg["args"]) == 1:
        casei = casei or str(arg["op"]).lower() == "casei"
        arg = arg["args"][0]
    return arg, casei


def compare_constants(op: str, left: Any, right: Any, casei: bool) -> bool | None:
    """A comparison of two literals, with the rules of a property against a literal: NULL
    with a NULL, values of different types not equal; a DATE stands for every instant of its
    day, so an instant (or day) equals a day it lies in, is before it if before its start."""
    if left is None or right is None:
        return None
    lt, rt = time_literal(left), time_literal(right)
    if lt is not None or rt is not None:
        if lt is None:
            lt = _instant_string(left)
        if rt is None:
            rt = _instant_string(right)
        if lt is None or rt is None:
            return False
        (alo, ahi), (blo, bhi) = lt, rt
        inside = (blo <= alo and ahi <= bhi) or (alo <= blo and bhi <= ahi)
        return {
            "=": inside, "<>": not inside, "<": ahi < blo, "<=": alo <= bhi, ">": alo > bhi, ">=": ahi >= blo,
        }[op]
    for value in (left, right):
        if not isinstance(value, (str, int, float, bool)):
            raise InvalidQueryParameter(f"Invalid filter: cannot compare {str(value)[:80]}")
    fn = COMPARISONS[op]
    if isinstance(left, bool) or isinstance(right, bool):
        return bool(fn(left, right)) if isinstance(left, bool) and isinstance(right, bool) else False
    if isinstance(left, str) and isinstance(right, str):
        return bool(fn(left.lower(), right.lower()) if casei else fn(left, right))
    if isinstance(left, str) or isinstance(right, str):
        return False
    return bool(fn(float(left), float(right)))


def _instant_string(value: Any) -> tuple[int, int] | None:
    """A string that is an RFC 3339 date-time, as an instant (what a time property holds)."""
    if not isinstance(value, str):
        return None
    try:
        t = parse_rfc3339(value)
    except ValueError:
        return None
    return t, t


def array_key(value: Any) -> bytes:
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


def as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value == value and abs(value) != float("inf") else None


def is_expression(arg: Any) -> bool:
    return isinstance(arg, dict) and "op" in arg
