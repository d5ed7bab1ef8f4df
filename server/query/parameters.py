"""Every search parameter, declared once: its name, how a GET string or a POST JSON value of it
is parsed, which endpoints take it, its OpenAPI schema (GET) and JSON schema (POST body), and
whether it decides which records match. The parser (server.query.parse.parse_search), the
OpenAPI document, the routes' lists and the match-cache key (MatchCriteria) all derive from
PARAMETERS, so a parameter added here is parsed, documented and keyed with nothing else to edit.

The order is the order of the OpenAPI parameter lists and of parsing (so of which 400 a request
with several bad parameters gets).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import orjson
import shapely

from server.errors import InvalidQueryParameter
from server.query.cql2 import CRS84, parse_filter
from server.query.datetime import parse_datetime_interval
from server.query.extensions import FIELDS_MEMBERS, MAX_SORT_FIELDS, QUERY_OPS, parse_fields, parse_sortby, query_to_cql2
from server.query.freetext import parse_q
from server.query.model import SearchQuery
from server.query.values import GEOMETRY_TYPES, parse_bbox, parse_geometry, parse_limit, parse_string_list
from server.settings import RequestLimits

# The endpoints that take search parameters.
ITEM_SEARCH = "search"  # GET and POST /search
ITEMS = "items"  # GET /collections/{id}/items (its collection is the path's)
COLLECTION_SEARCH = "collections"  # GET /collections
AGGREGATE = "aggregate"  # GET and POST /aggregate and /collections/{id}/aggregate (the Aggregation extension)
CHILDREN = "children"  # GET /children and a catalog's or collection's .../children (the Children extension)

ALL = frozenset({ITEM_SEARCH, ITEMS, COLLECTION_SEARCH, AGGREGATE})
ITEM_ENDPOINTS = frozenset({ITEM_SEARCH, ITEMS, AGGREGATE})
ITEM_SEARCHES = frozenset({ITEM_SEARCH, AGGREGATE})  # what /search takes besides paging
PAGED = frozenset({ITEM_SEARCH, ITEMS, COLLECTION_SEARCH})  # pages of documents, not aggregations
PAGES = PAGED | {CHILDREN}  # what takes limit and token


@dataclass(frozen=True)
class ParseContext:
    """What a parameter's parser may read besides its own value."""

    params: Mapping[str, Any]  # the whole input: a parameter may read its companions (filter-lang)
    taken: frozenset[str]  # the names the endpoint takes (the others are not its input)
    body: bool  # a POST body (JSON values), not GET strings
    default_limit: int
    max_limit: int
    limits: RequestLimits


def _same(value: Any) -> Hashable:
    return value


def _as_text(value: Any) -> str | None:
    """The GET form of a POST value that is a string on both."""
    return value if isinstance(value, str) else None


@dataclass(frozen=True)
class Parameter:
    name: str
    description: str
    schema: dict[str, Any]  # OpenAPI 3.0 schema of the GET query parameter
    body_schema: dict[str, Any] | None  # JSON schema of the POST /search member; None: not in the body
    # (value, context) -> the typed value; given None when the parameter is absent. None here:
    # no value of its own (another parameter's parser reads it, as filter reads filter-lang).
    parse: Callable[[Any, ParseContext], Any] | None
    endpoints: frozenset[str] = ALL
    matching: bool = False  # decides which records match: part of the match-cache key
    attribute: str | None = None  # the SearchQuery attribute it sets; None: query.extra[name]
    key: Callable[[Any], Hashable] = _same  # the typed value as a hashable part of the key
    repeatable: bool = False  # GET ?ids=a&ids=b is ids=a,b
    form_array: bool = False  # GET: a comma list (OpenAPI style=form, explode=false)
    body_kind: str | None = None  # a POST body must give this ("an array"), not GET's string
    body_nullable: bool = True  # a JSON null in a POST body means "not given"
    # A valid POST value -> the GET text that asks the same, None when GET cannot say it
    # (as_get_params)
    get_form: Callable[[Any], str | None] = _as_text


# -- parsers: each takes the raw value (None when absent) -------------------------------------


def _absent(value: Any) -> bool:
    return value is None or value == ""


def _bbox(value: Any, ctx: ParseContext) -> Any:
    if value not in (None, "", []) and "intersects" in ctx.taken and not _absent(ctx.params.get("intersects")):
        raise InvalidQueryParameter("Only one of bbox and intersects may be given")
    return None if _absent(value) else parse_bbox(value)


def _intersects(value: Any, ctx: ParseContext) -> Any:
    return None if _absent(value) else parse_geometry(value, ctx.limits.max_vertices)


def _datetime(value: Any, ctx: ParseContext) -> Any:
    if _absent(value):
        return None
    if not isinstance(value, str):
        raise InvalidQueryParameter("Invalid datetime: expected a string")
    return parse_datetime_interval(value)


def _id_list(name: str, most: Callable[[RequestLimits], int]) -> Callable[[Any, ParseContext], Any]:
    def parse(value: Any, ctx: ParseContext) -> Any:
        if value is None:
            return None
        values = parse_string_list(value, name) or None
        if values and len(values) > most(ctx.limits):
            raise InvalidQueryParameter(f"Too many {name}: {len(values)}, over the limit of {most(ctx.limits)}")
        return values

    return parse


def _limit(value: Any, ctx: ParseContext) -> int:
    return parse_limit(value, ctx.default_limit, ctx.max_limit)


def _token(value: Any, ctx: ParseContext) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidQueryParameter("Invalid token: expected a string")
    return value or None


def _filter(value: Any, ctx: ParseContext) -> Any:
    return parse_filter(value, ctx.params.get("filter-lang"), ctx.params.get("filter-crs"))


def _fields(value: Any, ctx: ParseContext) -> Any:
    if ctx.body and value is None and "fields" in ctx.params:
        raise InvalidQueryParameter("Invalid fields: null; give an object with include and/or exclude")
    return parse_fields(value)


def _json_key(value: Any) -> Hashable:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _tuple_key(value: Any) -> Hashable:
    return tuple(value)


# -- GET forms of POST values: the text GET's parser reads back as the same value ---------------


def _json_text(value: Any) -> str | None:
    """An object as JSON text (GET takes intersects, CQL2 JSON and the legacy query so); a
    string as it is."""
    return value if isinstance(value, str) else orjson.dumps(value).decode()


def _numbers_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    return ",".join(repr(v) for v in value) if all(isinstance(v, int | float) for v in value) else None


def _plain_name(name: Any) -> bool:
    """A list member a GET comma list gives back as it is: no comma, no outer space, not empty."""
    return isinstance(name, str) and bool(name) and name == name.strip() and "," not in name


def _comma_list(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    return ",".join(value) if all(_plain_name(v) for v in value) else None


def _limit_text(value: Any) -> str | None:
    return value if isinstance(value, str) else str(int(value))


def _q_text(value: Any) -> str | None:
    """q: GET splits on commas outside double quotes, as a POST array's pieces were given."""
    if isinstance(value, str):
        return value
    pieces = [v.strip() for v in value if v.strip()]
    return ",".join(pieces) if all("," not in p and p.count('"') % 2 == 0 for p in pieces) else None


def _sort_name(name: Any) -> bool:
    return _plain_name(name) and not name.startswith(("+", "-"))


def _sortby_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if not all(_sort_name(entry["field"]) for entry in value):
        return None
    return ",".join(("-" if str(entry.get("direction", "asc")).lower() == "desc" else "") + entry["field"]
                    for entry in value)


def _fields_text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    include = [n for n in value.get("include") or [] if n]
    exclude = [n for n in value.get("exclude") or [] if n]
    if "include" in value and not include and exclude:
        return None  # an empty include keeps the default set, which GET's exclusions alone do not
    if not all(_sort_name(n) for n in [*include, *exclude]):
        return None
    return ",".join([*include, *(f"-{n}" for n in exclude)])


# -- schemas ----------------------------------------------------------------------------------

_STR: dict[str, Any] = {"type": "string"}
_STRINGS: dict[str, Any] = {"type": "array", "items": _STR}
FILTER_LANGS = ["cql2-text", "cql2-json"]
FILTER_CRS = sorted(CRS84)


def _bbox_schema() -> dict[str, Any]:
    """What parse_bbox takes: 4 or 6 numbers (OpenAPI 3.0 cannot say which is a longitude)."""
    return {"type": "array", "items": {"type": "number"}, "oneOf": [{"minItems": n, "maxItems": n} for n in (4, 6)]}


# The legacy query extension: {property: {op: operand}}
_SCALAR = {"not": {"anyOf": [{"type": "object"}, {"type": "array"}]}}
_QUERY_OPERANDS = {"startsWith": _STR, "endsWith": _STR, "contains": _STR, "in": {"type": "array", "minItems": 1}}

PARAMETERS: list[Parameter] = [
    Parameter("bbox", "minx,miny,maxx,maxy (or 6 numbers with elevations); minx > maxx crosses the antimeridian",
              _bbox_schema(), _bbox_schema(), _bbox, matching=True, attribute="bbox", form_array=True,
              body_kind="an array", get_form=_numbers_text),
    Parameter("intersects", "A GeoJSON geometry as JSON text", _STR,
              {"type": "object", "description": "GeoJSON geometry", "required": ["type"],
               "properties": {"type": {"type": "string", "enum": sorted(GEOMETRY_TYPES)}}},
              _intersects, endpoints=ITEM_SEARCHES, matching=True, attribute="intersects",
              key=lambda geom: shapely.to_wkb(geom), body_kind="an object", get_form=_json_text),
    Parameter("datetime", "RFC 3339 instant or interval (start/end, '..' or empty for open ends)", _STR, _STR,
              _datetime, matching=True, attribute="datetime"),
    # GET: text, not an array of strings: any text is a list of one or more ids, which is what the
    # server reads (an array schema would have tools take `ids=1` for a mistyped array). POST: also
    # a comma list, as on GET: clients send that too.
    Parameter("ids", "Comma-separated item ids (or the parameter repeated)", _STR, {"oneOf": [_STRINGS, _STR]},
              _id_list("ids", lambda limits: limits.max_ids), endpoints=ITEM_SEARCHES, matching=True,
              attribute="ids", key=_tuple_key, repeatable=True, get_form=_comma_list),
    Parameter("collections", "Comma-separated collection ids (or the parameter repeated)", _STR,
              {"oneOf": [_STRINGS, _STR]}, _id_list("collections", lambda limits: limits.max_collections),
              endpoints=ITEM_SEARCHES, matching=True, attribute="collections", key=_tuple_key,
              repeatable=True, get_form=_comma_list),
    Parameter("limit", "Page size (clamped to the server maximum)", {"type": "integer", "minimum": 1, "default": 10},
              {"type": "integer", "minimum": 1}, _limit, endpoints=PAGES, attribute="limit", get_form=_limit_text),
    Parameter("token", "Opaque page token from a next or prev link", _STR, _STR, _token, endpoints=PAGES,
              attribute="token"),
    Parameter("q", "Free text: comma-separated terms (OR); advanced syntax with AND, OR, NOT, +, -, "
              "parentheses and quoted phrases", _STR, {"oneOf": [_STR, _STRINGS]},
              lambda value, ctx: parse_q(value), matching=True, attribute="q", key=repr, get_form=_q_text),
    # CQL2 text, CQL2 JSON, or the CQL2 JSON literals true and false; its key is the filter the
    # search runs, the legacy query (below) included.
    Parameter("filter", "CQL2 filter (text, or JSON with filter-lang=cql2-json)", _STR,
              {"oneOf": [_STR, {"type": "object"}, {"type": "boolean"}]}, _filter, matching=True,
              attribute="filter", key=_json_key, get_form=_json_text),
    Parameter("filter-lang", "Filter encoding", {"type": "string", "enum": FILTER_LANGS},
              {"type": "string", "enum": [*FILTER_LANGS, ""]}, None),
    Parameter("filter-crs", "CRS of geometries in the filter: CRS84 only", {"type": "string", "enum": FILTER_CRS},
              {"type": "string", "enum": [*FILTER_CRS, ""]}, None),
    Parameter("sortby", "Comma-separated fields, + ascending (default) or - descending", _STR,
              {"type": "array", "maxItems": MAX_SORT_FIELDS,
               "items": {"type": "object", "required": ["field"],
                         "properties": {"field": _STR,
                                        "direction": {"type": "string", "description": "asc or desc, in any case",
                                                      "pattern": "^([aA][sS][cC]|[dD][eE][sS][cC])$"}}}},
              lambda value, ctx: parse_sortby(value), endpoints=PAGED, attribute="sortby", body_kind="an array",
              get_form=_sortby_text),
    # POST: not nullable: a null fields is a 400 (give an object, or leave it out).
    Parameter("fields", "Comma-separated fields to include, - prefix to exclude", _STR,
              {"type": "object", "properties": {name: {**_STRINGS, "nullable": True} for name in FIELDS_MEMBERS},
               "additionalProperties": False},
              _fields, endpoints=PAGED, attribute="fields", body_kind="an object", body_nullable=False,
              get_form=_fields_text),
    # The legacy query extension, as CQL2 ANDed into the filter (parse_search): keyed there.
    Parameter("query", "Legacy query extension as JSON text", _STR,
              {"type": "object", "additionalProperties": {
                  "type": "object", "minProperties": 1, "additionalProperties": False,
                  "properties": {op: _QUERY_OPERANDS.get(op, _SCALAR) for op in sorted(QUERY_OPS)}}},
              lambda value, ctx: query_to_cql2(value), endpoints=ITEM_ENDPOINTS, attribute="legacy_filter",
              body_kind="an object", get_form=_json_text),
]


# -- the Children extension's type filter (endpoint CHILDREN) -----------------------------------

CHILD_TYPES = ["Catalog", "Collection"]


def _child_type(value: Any, ctx: ParseContext) -> str | None:
    if _absent(value):
        return None
    if value not in CHILD_TYPES:
        raise InvalidQueryParameter(f"Invalid type: {str(value)[:80]!r}; expected Catalog or Collection")
    return str(value)


PARAMETERS.append(
    Parameter("type", "Only the children of this type (Catalog or Collection)", {"type": "string", "enum": CHILD_TYPES},
              None, _child_type, endpoints=frozenset({CHILDREN})))


def taken_by(endpoint: str) -> list[Parameter]:
    """The parameters an endpoint takes, in order."""
    return [p for p in PARAMETERS if endpoint in p.endpoints]


def repeatable_names() -> frozenset[str]:
    return frozenset(p.name for p in PARAMETERS if p.repeatable)


# A POST search is offered as GET (a page's URL, its alternate link) only up to this many bytes of
# query string: proxies commonly cap a request line near 8 KiB (a large intersects is over it).
MAX_GET_QUERY = 6 * 1024


def as_get_params(body: Mapping[str, Any], endpoint: str = ITEM_SEARCH) -> dict[str, str] | None:
    """The GET parameters asking ``endpoint`` what the POST ``body`` asks (its page token
    included), or None when GET cannot say it: a list member holding a comma, a sort or fields
    name GET would read otherwise, a query string over MAX_GET_QUERY. For a body that parsed."""
    params: dict[str, str] = {}
    for parameter in taken_by(endpoint):
        value = body.get(parameter.name)
        if value is None or value == "":
            continue  # absent, null or "": not given, as on GET
        text = parameter.get_form(value)
        if text is None:
            return None
        params[parameter.name] = text  # "" too: `fields=` (the default set) is not absent fields
    return params if len(urlencode(params)) <= MAX_GET_QUERY else None


def value_of(query: SearchQuery, parameter: Parameter) -> Any:
    return getattr(query, parameter.attribute) if parameter.attribute else query.extra.get(parameter.name)


@dataclass(frozen=True)
class MatchCriteria:
    """What decides which records a search matches (not their order, page or fields): each
    matching parameter's value in hashable form. It is the match cache's key, so forgetting a
    parameter here cannot happen: it is derived from PARAMETERS."""

    values: tuple[tuple[str, Hashable], ...] = field(default=())

    @classmethod
    def of(cls, query: SearchQuery) -> MatchCriteria:
        values = []
        for parameter in PARAMETERS:
            if parameter.matching:
                value = value_of(query, parameter)
                values.append((parameter.name, None if value is None else parameter.key(value)))
        return cls(tuple(values))


# -- the Aggregation extension's own parameters (endpoint AGGREGATE) ----------------------------

# Calendar intervals of datetime_frequency (Elasticsearch's calendar_interval names, as
# stac-server and stac-fastapi-elasticsearch-opensearch take them); month by default.
DATETIME_INTERVALS = ["year", "quarter", "month", "week", "day", "hour", "minute", "second"]
DEFAULT_DATETIME_INTERVAL = "month"
# Each grid aggregation's precision parameter: (name, lowest, highest, default), the limits of
# Elasticsearch's geohash_grid (1-12), geotile_grid (0-29) and geohex_grid (H3 resolutions 0-15),
# and the defaults stac-fastapi-elasticsearch-opensearch uses (the lowest).
GRID_PRECISIONS: dict[str, tuple[int, int, int]] = {
    "centroid_geohash_grid_frequency": (1, 12, 1),
    "centroid_geotile_grid_frequency": (0, 29, 0),
    "centroid_geohex_grid_frequency": (0, 15, 0),
    "geometry_geohash_grid_frequency": (1, 12, 1),
    "geometry_geotile_grid_frequency": (0, 29, 0),
}
MAX_AGGREGATIONS = 64


def _aggregation_names(value: Any, ctx: ParseContext) -> Any:
    if value is None or value == "":
        return None
    names = parse_string_list(value, "aggregations")
    if len(names) > MAX_AGGREGATIONS:
        raise InvalidQueryParameter(f"Too many aggregations: {len(names)}, over the limit of {MAX_AGGREGATIONS}")
    return list(dict.fromkeys(names)) or None


def _interval(value: Any, ctx: ParseContext) -> str:
    if _absent(value):
        return DEFAULT_DATETIME_INTERVAL
    if value not in DATETIME_INTERVALS:
        raise InvalidQueryParameter(f"Invalid datetime_frequency_interval: {value!r}; one of {', '.join(DATETIME_INTERVALS)}")
    return str(value)


def _integer(name: str, lowest: int, highest: int, default: int | None) -> Callable[[Any, ParseContext], Any]:
    def parse(value: Any, ctx: ParseContext) -> Any:
        if _absent(value):
            return default
        # ASCII digits only: str.isdigit() also takes "²" and "١", and int() refuses the first
        # and any run over 4,300 digits (qa19: each was a 500)
        text = value.strip() if isinstance(value, str) else str(value) if type(value) is int else ""
        if not (type(value) is int or text.isascii() and text.isdigit()) or len(text.lstrip("0")) > 18:
            raise InvalidQueryParameter(f"Invalid {name}: expected an integer from {lowest} to {highest}")
        number = int(text)
        if not lowest <= number <= highest:
            raise InvalidQueryParameter(f"Invalid {name}: {number}, expected an integer from {lowest} to {highest}")
        return number

    return parse


def _cloud_cover_width(value: Any, ctx: ParseContext) -> Any:
    if _absent(value):
        return None
    try:
        width = float(value) if not isinstance(value, bool) else float("nan")
    except (TypeError, ValueError):
        width = float("nan")
    if not 1 <= width <= 100:  # NaN too
        raise InvalidQueryParameter("Invalid cloud_cover_frequency_interval: expected a number from 1 to 100")
    return width


_AGG = frozenset({AGGREGATE})
PARAMETERS += [
    Parameter("aggregations", "Comma-separated names of the aggregations to compute (see /aggregations)", _STR,
              {"oneOf": [_STRINGS, _STR]}, _aggregation_names, endpoints=_AGG, repeatable=True),
    Parameter("datetime_frequency_interval", "Calendar interval of datetime_frequency's buckets",
              {"type": "string", "enum": DATETIME_INTERVALS, "default": DEFAULT_DATETIME_INTERVAL},
              {"type": "string", "enum": DATETIME_INTERVALS}, _interval, endpoints=_AGG),
    Parameter("cloud_cover_frequency_interval", "Width of cloud_cover_frequency's buckets from 0 to 100 "
              "(default: the ranges <5, 5-15, 15-40, >=40)", {"type": "number", "minimum": 1, "maximum": 100},
              {"type": "number", "minimum": 1, "maximum": 100}, _cloud_cover_width, endpoints=_AGG),
    *(Parameter(f"{name}_precision", f"Precision of {name} (from {lo} to {hi})",
                {"type": "integer", "minimum": lo, "maximum": hi, "default": default},
                {"type": "integer", "minimum": lo, "maximum": hi},
                _integer(f"{name}_precision", lo, hi, default), endpoints=_AGG)
      for name, (lo, hi, default) in GRID_PRECISIONS.items()),
]
