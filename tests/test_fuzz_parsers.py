"""Property-based tests (hypothesis): every parser answers a value or a clear 400, never
another exception; and no request built from such inputs gets a 500."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.api.pagination import decode_page_token
from server.errors import InvalidQueryParameter
from server.index.cql2_terms import like_regex
from server.query.cql2 import parse_filter
from server.query.datetime import parse_datetime_interval
from server.query.extensions import parse_fields, parse_sortby, query_to_cql2
from server.query.freetext import parse_q
from server.query.parse import parse_search
from server.query.values import parse_bbox, parse_geometry
from tests.oracles.cql2 import like_match

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
numbers = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20))
json_values = st.recursive(
    st.none() | st.booleans() | numbers.filter(lambda v: v == v and abs(v) != float("inf")) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5),
    max_leaves=20,
)
datetime_like = st.one_of(
    st.text(alphabet="0123456789-:TZtz.+/ ,", max_size=40),
    st.datetimes().map(lambda d: d.isoformat() + "Z"),
    st.tuples(st.datetimes(), st.datetimes()).map(lambda p: f"{p[0].isoformat()}Z/{p[1].isoformat()}Z"),
)
cql2_texty = st.one_of(
    st.text(max_size=60),
    st.builds(lambda a, op, b: f"{a} {op} {b}", st.sampled_from(["eo:cloud_cover", "id", "platform", "x"]),
              st.sampled_from(["=", "<", ">=", "<>", "LIKE", "IN", "BETWEEN"]),
              st.one_of(st.integers().map(str), st.text(max_size=10).map(repr), st.just("('a','b')"))),
)


def allowed(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except InvalidQueryParameter as exc:
        assert exc.description


@FUZZ
@given(st.one_of(st.text(max_size=60), st.lists(numbers, max_size=8), json_values))
def test_bbox(value: Any) -> None:
    allowed(parse_bbox, value)


@FUZZ
@given(datetime_like)
def test_datetime(value: str) -> None:
    try:
        start, end = parse_datetime_interval(value)
        assert start <= end
    except InvalidQueryParameter:
        pass


@FUZZ
@given(st.one_of(json_values, st.text(max_size=80),
                 st.builds(lambda t, c: {"type": t, "coordinates": c},
                           st.sampled_from(["Point", "Polygon", "LineString", "MultiPolygon", "Nope"]),
                           st.recursive(numbers, lambda ch: st.lists(ch, max_size=5), max_leaves=30))))
def test_geometry(value: Any) -> None:
    allowed(parse_geometry, value)


@FUZZ
@given(st.one_of(cql2_texty, json_values), st.sampled_from([None, "cql2-text", "cql2-json", "bogus"]))
def test_cql2(value: Any, lang: Any) -> None:
    allowed(parse_filter, value, lang, None)


@FUZZ
@given(st.one_of(st.text(max_size=40), json_values))
def test_sortby_fields_query_q_tokens(value: Any) -> None:
    allowed(parse_sortby, value)
    allowed(parse_fields, value)
    allowed(query_to_cql2, value)
    allowed(parse_q, value)
    if isinstance(value, str):
        allowed(decode_page_token, value)


@FUZZ
@given(st.dictionaries(
    st.sampled_from(["bbox", "datetime", "ids", "collections", "limit", "token", "intersects", "filter",
                     "filter-lang", "q", "sortby", "fields", "query"]),
    st.one_of(json_values, st.text(max_size=30)), max_size=6))
def test_search_bodies(params: dict[str, Any]) -> None:
    allowed(lambda p: parse_search(p, default_limit=10, max_limit=100, body=True), params)


@pytest.fixture(scope="module")
def fuzz_client(make_client):
    with make_client() as c:
        yield c


@FUZZ
@given(st.dictionaries(
    st.sampled_from(["bbox", "datetime", "ids", "collections", "limit", "token", "intersects", "filter",
                     "filter-lang", "q", "sortby", "fields", "query"]),
    st.one_of(st.text(max_size=30), json_values.map(json.dumps), cql2_texty, datetime_like), max_size=5))
def test_no_request_gets_a_500(fuzz_client: Any, params: dict[str, str]) -> None:
    for response in (
        fuzz_client.get("/search", params=params),
        fuzz_client.get("/collections", params=params),
        fuzz_client.get("/collections/sentinel-2-l2a-nl/items", params=params),
    ):
        assert response.status_code in (200, 400), (params, response.status_code, response.text[:300])
        if response.status_code == 400:
            body = response.json()
            assert body["code"] and body["description"]


# -- deep and pathological input: what once crashed or hung the server -------------------------

# One level of nesting in each cql2-text form the native parser recurses on: (open, close).
WRAPPERS = [("(", ")"), ("NOT ", ""), ("NOT (", ")"), ("-", ""), ("+", ""), ("CASEI(", ")"), ("f(", ")"),
            ("(1 + ", ")"), ("A_CONTAINS(a, (", "))"), ("S_INTERSECTS(geometry, ", ")")]


def _nest(depth: int, cycle: list[tuple[str, str]], core: str) -> str:
    wrappers = [cycle[i % len(cycle)] for i in range(depth)]
    return "".join(w[0] for w in wrappers) + core + "".join(w[1] for w in reversed(wrappers))


deep_cql2_text = st.builds(
    _nest, st.integers(0, 4_000), st.lists(st.sampled_from(WRAPPERS), min_size=1, max_size=4),
    st.sampled_from(["id = 'x'", "gsd", "1", "x LIKE '%a%'", "'('", "POINT(1 2)"]),
)
chained_cql2_text = st.builds(
    lambda op, n: "x = " + op.join(["1"] * n) if op in ("+", "*") else op.join(["x = 1"] * n),
    st.sampled_from([" AND ", " OR ", "+", "*"]), st.integers(1, 20_000),
)
deep_cql2_json = st.builds(
    lambda op, n: f'{{"op":"{op}","args":[' * n + '{"op":"=","args":[{"property":"id"},"x"]}' + "]}" * n,
    st.sampled_from(["not", "and", "or"]), st.integers(0, 3_000),
)
like_patterns = st.text(alphabet="%_\\aZ", max_size=40)


@settings(max_examples=200, deadline=None)
@given(st.one_of(deep_cql2_text, chained_cql2_text, deep_cql2_json))
def test_cql2_deep_or_chained_is_parsed_or_a_400(text: str) -> None:
    """Never a crash of the native parser (it once segfaulted at ~1,560 parentheses)."""
    allowed(parse_filter, text, None, None)


@settings(max_examples=300, deadline=None)
@given(like_patterns, st.text(alphabet="aZ%_\\", max_size=60), st.booleans())
def test_like_agrees_with_the_backtracking_definition(pattern: str, value: str, casei: bool) -> None:
    """CQL2 LIKE (% any run, _ one character, backslash escapes), matched without backtracking."""
    regex = like_regex(pattern, casei)
    assert (regex.fullmatch(value) is not None) == like_match(value, pattern, casei)
