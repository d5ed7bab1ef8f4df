"""CQL2 input (text or JSON, GET or POST) → CQL2 JSON, via the `cql2` package.

cql2 (Rust, maintained by the STAC community) parses both encodings; we
evaluate its JSON form ourselves over the columnar index.
"""

from __future__ import annotations

import math
import re
from typing import Any

import cql2
import orjson

from server.errors import InvalidQueryParameter
from server.query.values import GeometryLiteral, checked_geometry, geojson_geometry

# Not EPSG:4326: its axis order is latitude first, and filter geometries are read as lon/lat.
CRS84 = {
    "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
    "https://www.opengis.net/def/crs/OGC/1.3/CRS84",
}
MAX_DEPTH = 64
MAX_OPERATIONS = 1_000  # operators in one filter: more is a 400, not minutes of evaluation
MAX_PREFIX_OPERATORS = 256  # NOT, unary + and - in one cql2-text filter

# cql2's text parser (Rust, recursive descent) overflows its stack and kills the process
# (SIGSEGV) on deep input: measured at ~1,560 nested parentheses, ~3,100 nested function calls,
# ~3,400 chained NOT or unary minus, ~9,000 chained + and ~16,000 chained AND. So the text is
# measured before it is parsed: parentheses at most MAX_DEPTH deep, at most MAX_PREFIX_OPERATORS
# prefix operators and MAX_OPERATIONS binary ones, together under a third of any of those limits.
_TEXT_TOKENS = re.compile(
    r"""'(?:[^']|'')*'?        # a string literal ('' escapes a quote): nothing inside counts
      | "(?:[^"]|"")*"?        # a quoted identifier, likewise
      | [A-Za-z_][\w:.]*       # a word: AND, OR, NOT, a property, a function
      | [0-9.]+(?:[eE][-+]?[0-9]+)?
      | <>|<=|>=|[-+*/%^=<>(),\[\]]
      | \S""",
    re.VERBOSE,
)
_BINARY = {"and", "or", "*", "/", "%", "^", "=", "<>", "<", ">", "<=", ">=", "like", "between", "in", "is", "div"}
_OPERAND_END = {")", "]"}  # after these (or a literal or a word), + and - are binary


def _depth(node: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(node, dict):
        return max([_depth(v, level + 1) for v in node.values()] or [level])
    if isinstance(node, list):
        return max([_depth(v, level + 1) for v in node] or [level])
    return level


def _operations(node: Any) -> int:
    if isinstance(node, list):
        return sum(_operations(v) for v in node)
    if isinstance(node, dict):
        return ("op" in node) + sum(_operations(v) for v in node.values())
    return 0


def _check_text_shape(text: str) -> None:
    """A 400 for cql2-text nested or chained beyond what its native parser survives (above)."""
    depth = deepest = prefix = binary = 0
    previous = "("
    tokens = _TEXT_TOKENS.findall(text)
    for i, token in enumerate(tokens):
        word = token.lower()
        if token in ("+", "-") and i + 1 < len(tokens) and tokens[i + 1][:1].isdigit() and not _is_operand(previous):
            previous = "0"  # the sign of a number: -1 in IN (-1, -2) is one literal
            continue
        if token in ("(", "["):
            depth += 1
            deepest = max(deepest, depth)
        elif token in (")", "]"):
            depth -= 1
        elif (word == "not" or token in ("+", "-")) and not _is_operand(previous) and previous != "is":
            prefix += 1
        elif word in _BINARY or word == "not" or token in ("+", "-"):
            binary += 1
        elif token[:1].isdigit() and not _finite_number(token):
            # cql2 reads 1e999 as infinity, which JSON cannot hold: it became a null
            raise InvalidQueryParameter(f"Invalid filter: {token[:40]} is beyond the range of a double")
        previous = word
    if deepest > MAX_DEPTH or prefix > MAX_PREFIX_OPERATORS:
        raise InvalidQueryParameter(f"Invalid filter: nested deeper than {MAX_DEPTH}")
    if binary > MAX_OPERATIONS:
        raise InvalidQueryParameter(f"Invalid filter: over {MAX_OPERATIONS} operators; use IN for lists of values")


def _finite_number(token: str) -> bool:
    try:
        return math.isfinite(float(token))
    except ValueError:  # not one number ("1.2.3"): the parser says what is wrong with it
        return True


def _is_operand(token: str) -> bool:
    """Whether a token ends an operand, so that a + or - after it is binary, not a sign."""
    return token in _OPERAND_END or token[:1] in "'\"" or token[:1].isdigit() or token[:1] == "." or (
        (token[:1].isalpha() or token[:1] == "_") and token not in _BINARY and token != "not"
    )


_GEOMETRY_TYPES = {"Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection"}


def _modernize(node: Any) -> Any:
    """Draft-era CQL2 JSON still sent by clients, in its 1.0 form: BETWEEN(x, [lo, hi]); and
    GeoJSON geometries without their optional "bbox" member, which cql2 reads as the BBOX
    literal (the geometry then lost)."""
    if isinstance(node, list):
        return [_modernize(v) for v in node]
    if not isinstance(node, dict):
        return node
    geometry = node.get("type") in _GEOMETRY_TYPES and ("coordinates" in node or "geometries" in node)
    out = {k: _modernize(v) for k, v in node.items() if not (geometry and k == "bbox")}
    args = out.get("args")
    if str(out.get("op", "")).lower() == "between" and isinstance(args, list) and len(args) == 2 \
            and isinstance(args[1], list) and len(args[1]) == 2:
        out["args"] = [args[0], *args[1]]
    return out


def _parsed(kind: str, text: str) -> bytes:
    """CQL2 JSON from cql2's parsers, which reject what is not CQL2 syntax. Not its
    validate(): that JSON Schema check costs 30-110 ms per call, and the evaluator checks
    each operator's arguments itself (a malformed one is a 400 there)."""
    expr = cql2.parse_text(text) if kind == "text" else cql2.parse_json(text)
    return orjson.dumps(expr.to_json())


def parse_filter(value: Any, lang: Any, crs: Any) -> Any:
    """The filter as CQL2 JSON, or None when absent. Raises a 400 with the parser's words.
    filter-lang and filter-crs are checked even without a filter: they are never ignored."""
    if crs not in (None, "") and (not isinstance(crs, str) or crs not in CRS84):
        raise InvalidQueryParameter(f"Unsupported filter-crs {crs!r}: only CRS84 is supported")
    if lang not in (None, "", "cql2-text", "cql2-json") or isinstance(lang, bool):
        raise InvalidQueryParameter(f"Unsupported filter-lang {lang!r}: use cql2-text or cql2-json")
    if value is None or value == "" or value == {}:
        return None
    try:
        if isinstance(value, str) and (lang == "cql2-json" or (lang in (None, "") and value.lstrip().startswith("{"))):
            try:
                value = orjson.loads(value)
            except orjson.JSONDecodeError as exc:
                raise InvalidQueryParameter(f"Invalid filter: not JSON ({exc})") from None
            if not isinstance(value, (dict, bool)):  # true and false are CQL2 JSON filters too
                raise InvalidQueryParameter("Invalid filter: expected a CQL2 JSON object")
        if isinstance(value, str):
            _check_text_shape(value)
            parsed = orjson.loads(_parsed("text", value))
        elif isinstance(value, dict):
            if lang == "cql2-text":
                raise InvalidQueryParameter("filter-lang is cql2-text but the filter is a JSON object")
            if _depth(value) > MAX_DEPTH:
                raise InvalidQueryParameter(f"Invalid filter: nested deeper than {MAX_DEPTH}")
            parsed = orjson.loads(_parsed("json", orjson.dumps(_modernize(value)).decode()))
        elif isinstance(value, bool):
            return value
        else:
            raise InvalidQueryParameter("Invalid filter: expected CQL2 text or a CQL2 JSON object")
    except InvalidQueryParameter:
        raise
    except Exception as exc:  # cql2.ParseError, cql2.ValidationError and friends
        message = " ".join(str(exc).split())
        raise InvalidQueryParameter(f"Invalid filter: {message[:500]}") from None
    if _depth(parsed) > MAX_DEPTH:
        raise InvalidQueryParameter(f"Invalid filter: nested deeper than {MAX_DEPTH}")
    if _operations(parsed) > MAX_OPERATIONS:
        raise InvalidQueryParameter(f"Invalid filter: over {MAX_OPERATIONS} operators; use IN for lists of values")
    return _checked_geometries(parsed)


def _checked_geometries(node: Any) -> Any:
    """Every geometry literal of a parsed filter held to the rule ``intersects`` is held to
    (values.checked_geometry): a bowtie in S_INTERSECTS is a 400, as it is in intersects,
    whichever language and method it came in and whatever else the filter says. Each literal
    is replaced, in place, by a GeometryLiteral carrying the geometry read and checked here,
    which the evaluation uses (GEOS read every literal twice)."""
    if isinstance(node, dict) and node.get("type") in _GEOMETRY_TYPES and ("coordinates" in node or "geometries" in node):
        return GeometryLiteral(node, checked_geometry(geojson_geometry(node, "filter"), "filter"))
    if isinstance(node, list):
        for i, v in enumerate(node):
            if isinstance(v, (dict, list)):
                node[i] = _checked_geometries(v)
    elif isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (dict, list)):
                node[k] = _checked_geometries(v)
    return node
