"""CQL2 filters: the server's answers, over every page and in order, equal the brute-force oracle's.

Each case draws a random predicate (and/or/not over comparisons, CASEI, LIKE, BETWEEN, IN,
IS NULL, spatial, temporal, array, arithmetic and property-property atoms) with literals taken
from the data, writes it both as CQL2 JSON and as CQL2 text, sends it on GET and POST (text on
one, JSON on the other, alternating), often combined with bbox, datetime, collections, q and
sortby, pages to the end with a small limit, and compares with tests/oracles/.
Runs over the sample catalog and over a seeded synthetic catalog with mixed-type, null, array
and object properties, open intervals and null geometries.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import cql2
import pytest
import shapely
import shapely.geometry

from server.catalog.loader import load_catalogs
from tests.conftest import Env
from tests.helpers import check_item_search
from tests.oracles.cql2 import evaluate
from tests.oracles.expected import expected_items
from tests.oracles.random_inputs import (
    Vocabulary,
    random_bbox_near,
    random_predicate,
    random_q,
    random_sortby,
    sortby_get,
    sortby_post,
    to_text,
    wkt,
)
from tests.oracles.records import item_records
from tests.oracles.search import Oracle

SEED = "stac-static-api-ext-cql2-v1"
N_SAMPLE = 90
N_SYNTH = 120


def random_datetime(rng: random.Random, vocab: Vocabulary) -> str:
    from tests.oracles.synthetic import rfc3339

    times = sorted(int(t) for t in vocab.times())
    a, b = sorted(rng.sample(times, 2))
    kind = rng.choice(["closed", "closed", "open-start", "open-end", "instant"])
    if kind == "instant":
        return rfc3339(rng.choice(times))
    if kind == "open-start":
        return f"../{rfc3339(b)}"
    if kind == "open-end":
        return f"{rfc3339(a)}/.."
    return f"{rfc3339(a)}/{rfc3339(b)}"


def page_limit(rng: random.Random, n: int, max_pages: int = 6) -> int:
    """A small page size, but not so small that paging takes more than ``max_pages`` requests."""
    return max(rng.choice([1, 2, 3, 5, 7, 10, 25, 200]), -(-n // max_pages))


def run_case(env: Env, rng: random.Random, case: int, node: Any, combine: bool = True) -> None:
    """Send ``node`` as text and as JSON over GET and POST (with extras) and compare."""
    text = to_text(node)
    parsed = cql2.parse_text(text).to_json()
    # The text we send must mean what the JSON means (guards the test's own writer).
    assert [evaluate(parsed, r) for r in env.items] == [evaluate(node, r) for r in env.items], text

    extras: dict[str, Any] = {}
    if combine:
        if rng.random() < 0.25:
            extras["bbox"] = random_bbox_near(rng, env.items)
        if rng.random() < 0.2:
            extras["datetime"] = random_datetime(rng, env.vocab)
        if rng.random() < 0.15:
            names = sorted(env.oracle.collections)
            extras["collections"] = rng.sample(names, rng.randint(1, min(3, len(names))))
        if rng.random() < 0.15:
            extras["q"] = random_q(rng, env.items, advanced=rng.random() < 0.5)
    sort = random_sortby(rng, env.items) if combine and rng.random() < 0.4 else None
    expected = expected_items(env.oracle, env.items, filter=node, sortby=sort, **extras)
    limit = page_limit(rng, len(expected))

    get: dict[str, Any] = {"limit": limit, **extras}
    post: dict[str, Any] = {"limit": limit, **extras}
    if sort:
        get["sortby"] = sortby_get(sort, rng)
        post["sortby"] = sortby_post(sort, rng)
    if case % 2 == 0:
        get["filter"] = text
        if rng.random() < 0.5:
            get["filter-lang"] = "cql2-text"
        post["filter"] = node
        if rng.random() < 0.5:
            post["filter-lang"] = "cql2-json"
    else:
        get["filter"] = json.dumps(node)
        get["filter-lang"] = "cql2-json"
        post["filter"] = text
        post["filter-lang"] = "cql2-text"
    check_item_search(env.client, "GET", "/search", get, expected, f"GET {json.dumps(get)}")
    check_item_search(env.client, "POST", "/search", post, expected, f"POST {json.dumps(post)}")


@pytest.mark.parametrize("case", range(N_SAMPLE), ids=lambda i: f"s{i:03d}")
def test_cql2_sample_matches_oracle(sample_env: Env, case: int) -> None:
    rng = random.Random(f"{SEED}/sample/{case}")
    run_case(sample_env, rng, case, random_predicate(rng, sample_env.vocab))


@pytest.mark.parametrize("case", range(N_SYNTH), ids=lambda i: f"y{i:03d}")
def test_cql2_synthetic_matches_oracle(synth_env: Env, case: int) -> None:
    rng = random.Random(f"{SEED}/synth/{case}")
    run_case(synth_env, rng, case, random_predicate(rng, synth_env.vocab))


def test_cql2_cases_are_varied(sample_env: Env, synth_env: Env) -> None:
    """Guard against a generator that only ever selects nothing or everything."""
    for env, n, tag in ((sample_env, N_SAMPLE, "sample"), (synth_env, N_SYNTH, "synth")):
        sizes = []
        for case in range(n):
            rng = random.Random(f"{SEED}/{tag}/{case}")
            node = random_predicate(rng, env.vocab)
            sizes.append(sum(evaluate(node, r) is True for r in env.items))
        total = len(env.items)
        assert sum(1 for s in sizes if 0 < s < total) >= n // 3, (tag, sizes)
        assert sum(1 for s in sizes if s == 0) >= n // 10, (tag, sizes)


# -- on the collection's own items endpoint --------------------------------------------------------


@pytest.mark.parametrize("case", range(30), ids=lambda i: f"c{i:02d}")
def test_cql2_on_collection_items(synth_env: Env, case: int) -> None:
    rng = random.Random(f"{SEED}/items/{case}")
    env = synth_env
    cid = rng.choice(sorted(env.oracle.collections))
    node = random_predicate(rng, env.vocab)
    sort = random_sortby(rng, env.items) if rng.random() < 0.5 else None
    expected = expected_items(env.oracle, env.items, collections=[cid], filter=node, sortby=sort)
    params: dict[str, Any] = {"limit": page_limit(rng, len(expected)), "filter": to_text(node)}
    if sort:
        params["sortby"] = sortby_get(sort, rng)
    check_item_search(env.client, "GET", f"/collections/{cid}/items", params, expected, f"{cid} {json.dumps(params)}")


# -- fixed cases -----------------------------------------------------------------------------------

FIXED_TEXT = [
    "\"eo:cloud_cover\" < 10",
    "\"eo:cloud_cover\" < 10 AND platform = 'sentinel-2b'",
    "NOT (\"eo:cloud_cover\" < 10)",
    "description IS NULL",
    "description IS NOT NULL",
    "geometry IS NULL",
    "datetime IS NULL",
    "collection IS NULL",
    "CASEI(platform) = CASEI('SENTINEL-2A')",
    "title LIKE 'NDVI%'",
    "CASEI(title) LIKE CASEI('ndvi%')",
    "title LIKE '%2022-0_'",
    "gsd BETWEEN 10 AND 30",
    "gsd NOT BETWEEN 10 AND 30",
    "\"proj:epsg\" IN (32631, 4326)",
    "id IN ('clc-2006', 'aerial-wageningen-2021')",
    "S_INTERSECTS(geometry, POLYGON((5.65 51.95, 5.68 51.95, 5.68 51.98, 5.65 51.98, 5.65 51.95)))",
    "S_WITHIN(geometry, BBOX(5.0, 45.0, 15.0, 48.0))",
    "S_CONTAINS(geometry, POINT(5.665 51.97))",
    "S_DISJOINT(geometry, BBOX(-30, 30, 50, 75))",
    "S_TOUCHES(geometry, BBOX(8, 46, 9, 47))",
    "T_INTERSECTS(datetime, INTERVAL('2022-01-01T00:00:00Z', '2022-01-31T23:59:59Z'))",
    "T_DURING(datetime, INTERVAL('2022-01-01', '2022-12-31'))",
    "T_BEFORE(datetime, TIMESTAMP('2015-12-06T00:00:00Z'))",
    "T_AFTER(datetime, DATE('2023-10-09'))",
    "T_EQUALS(datetime, INTERVAL('2012-01-01T00:00:00Z', '2018-12-31T23:59:59Z'))",
    "T_MEETS(datetime, INTERVAL('2022-01-31T23:59:59Z', '..'))",
    "datetime > TIMESTAMP('2023-01-01T00:00:00Z')",
    "datetime = DATE('2022-01-08')",
    "datetime < DATE('2022-01-08')",
    "datetime <= DATE('2022-01-08')",
    "datetime > DATE('2022-01-08')",
    "datetime >= DATE('2022-01-08')",
    "A_CONTAINS(instruments, ('msi'))",
    "A_OVERLAPS(instruments, ('msi', 'olci'))",
    "A_EQUALS(instruments, ('msi'))",
    "A_CONTAINEDBY(instruments, ('msi', 'olci'))",
    "max_elevation - min_elevation > 3500",
    "\"eo:cloud_cover\" * 2 < \"view:sun_elevation\"",
    "platform <> constellation",
    "\"properties.gsd\" = 30",
    "collection = 'dem-alps' OR id = 'aerial-wageningen-2021'",
    "\"no:such\" = 1",
    "NOT (\"no:such\" = 1)",
    "\"no:such\" IS NULL",
    "TRUE",
    "FALSE",
    # property-property and literal-literal forms (CQL2 Property-Property Comparisons)
    "T_DURING(INTERVAL(start_datetime, end_datetime), INTERVAL('2020-01-01T00:00:00Z','2023-01-01T00:00:00Z'))",
    "T_INTERSECTS(start_datetime, end_datetime)",
    "T_BEFORE(start_datetime, end_datetime)",
    "T_INTERSECTS(INTERVAL('..', end_datetime), DATE('2020-01-01'))",
    "T_CONTAINS(INTERVAL(start_datetime, '..'), datetime)",
    "T_EQUALS(INTERVAL(datetime, datetime), datetime)",
    "S_EQUALS(geometry, geometry)",
    "S_TOUCHES(geometry, geometry)",
    "S_INTERSECTS(POINT(1 1), POINT(1 1))",
    "S_DISJOINT(POINT(1 1), POINT(1 1))",
    "id LIKE id",
    "CASEI(title) LIKE CASEI(title)",
    "'NDVI 2022' LIKE title",
    "A_OVERLAPS(instruments, instruments)",
    "A_EQUALS(instruments, instruments)",
    "'a' = 'a'",
    "'a' = 'b'",
    "CASEI('abc') = CASEI('ABC')",
    "1 < 2",
    "NULL IS NULL",
    "NULL IS NOT NULL",
    "1 IS NULL",
    "NULL = 1",
    "T_INTERSECTS(TIMESTAMP('2020-01-01T00:00:00Z'), TIMESTAMP('2020-01-01T00:00:00Z'))",
    "T_BEFORE(TIMESTAMP('2020-01-01T00:00:00Z'), DATE('2020-01-01'))",
    "TIMESTAMP('2020-01-01T12:00:00Z') = DATE('2020-01-01')",
]

FIXED_JSON: list[dict[str, Any]] = [
    {"op": "t_intersects", "args": [{"property": "start_datetime"}, {"property": "end_datetime"}]},
    {"op": "t_during", "args": [{"interval": [{"property": "start_datetime"}, {"property": "end_datetime"}]},
                                {"interval": ["2020-01-01T00:00:00Z", "2023-01-01T00:00:00Z"]}]},
    {"op": "like", "args": [{"property": "id"}, {"property": "id"}]},
    {"op": "a_overlaps", "args": [{"property": "eo:bands"}, {"property": "eo:bands"}]},
    {"op": "a_overlaps", "args": [{"property": "instruments"}, {"property": "instruments"}]},
    {"op": "s_equals", "args": [{"property": "geometry"}, {"property": "geometry"}]},
    {"op": "=", "args": ["a", "a"]},
    {"op": "isNull", "args": [None]},
]


@pytest.mark.parametrize("text", FIXED_TEXT)
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_cql2_fixed_cases(sample_env: Env, text: str, method: str) -> None:
    node = cql2.parse_text(text).to_json()
    expected = expected_items(sample_env.oracle, sample_env.items, filter=node)
    limit = max(4, len(expected) // 4)
    params = {"filter": text, "limit": limit} if method == "GET" else {"filter": node, "limit": limit}
    check_item_search(sample_env.client, method, "/search", params, expected, f"{method} {text}")


@pytest.mark.parametrize("node", FIXED_JSON, ids=lambda n: json.dumps(n)[:60])
def test_cql2_fixed_json_cases(sample_env: Env, node: dict[str, Any]) -> None:
    expected = expected_items(sample_env.oracle, sample_env.items, filter=node)
    params = {"filter": node, "limit": max(4, len(expected) // 4)}
    check_item_search(sample_env.client, "POST", "/search", params, expected, f"POST {node}")
    get = {"filter": json.dumps(node), "filter-lang": "cql2-json", "limit": max(4, len(expected) // 4)}
    check_item_search(sample_env.client, "GET", "/search", get, expected, f"GET {node}")


def test_property_property_forms_select_what_they_should(sample_env: Env) -> None:
    """Spot checks by hand of the forms that answered 400 before."""
    def keys(text: str) -> set[str]:
        return {k[1] for k in expected_items(sample_env.oracle, sample_env.items, filter=cql2.parse_text(text).to_json())}

    everything = {r.id for r in sample_env.items}
    with_geometry = {r.id for r in sample_env.items if r.geometry is not None}
    assert with_geometry and with_geometry != everything
    assert keys("S_EQUALS(geometry, geometry)") == keys("S_WITHIN(geometry, geometry)") == with_geometry
    assert keys("S_OVERLAPS(geometry, geometry)") == keys("S_DISJOINT(geometry, geometry)") == set()
    assert keys("'a' = 'a'") == keys("NULL IS NULL") == keys("S_INTERSECTS(POINT(1 1), POINT(1 1))") == everything
    assert keys("'a' = 'b'") == keys("NULL IS NOT NULL") == keys("NULL = NULL") == set()
    assert keys("T_INTERSECTS(TIMESTAMP('2020-01-01T00:00:00Z'), TIMESTAMP('2020-01-01T00:00:00Z'))") == everything
    ranged = {r.id for r in sample_env.items if r.members.get("start_datetime") and r.members.get("end_datetime")}
    assert ranged and keys("T_EQUALS(INTERVAL(start_datetime, end_datetime), INTERVAL(start_datetime, end_datetime))") == ranged
    during = keys("T_DURING(INTERVAL(start_datetime, end_datetime), INTERVAL('2020-01-01T00:00:00Z','2023-01-01T00:00:00Z'))")
    assert during and during < ranged


def test_tutorial_filters_select_something(sample_env: Env) -> None:
    """The fixed cases are not all vacuous: spot-check a few answers by hand."""
    def keys(text: str) -> set[str]:
        return {k[1] for k in expected_items(sample_env.oracle, sample_env.items, filter=cql2.parse_text(text).to_json())}

    assert keys("datetime = DATE('2022-01-08')") == {"S2B_MSIL2A_20220108T104929_T32ULC"}
    assert "S2B_MSIL2A_20220108T104929_T32ULC" not in keys("datetime > DATE('2022-01-08')")
    assert "S2B_MSIL2A_20220108T104929_T32ULC" in keys("datetime >= DATE('2022-01-08')")
    assert keys("NOT (\"no:such\" = 1)") == set()
    assert keys("geometry IS NULL") == {"dem-alps-void-fill-report"}
    assert "aerial-wageningen-2021" in keys("S_CONTAINS(geometry, POINT(5.665 51.97))")


# -- errors ----------------------------------------------------------------------------------------

MALFORMED = [
    {"filter": "gsd >"},
    {"filter": "S_INTERSECTS(geometry)"},
    {"filter": "gsd BETWEEN 'a' AND 3"},
    {"filter": "((gsd = 1)"},
    {"filter": "{\"op\": \"nope\", \"args\": []}", "filter-lang": "cql2-json"},
    {"filter": "{not json", "filter-lang": "cql2-json"},
    {"filter": "gsd = 1", "filter-lang": "cql2-xml"},
    {"filter": "gsd = 1", "filter-crs": "http://www.opengis.net/def/crs/EPSG/0/3857"},
    {"filter": "T_INTERSECTS(datetime, TIMESTAMP('2020-13-45T00:00:00Z'))"},
    # beyond a double: the parser gives infinity, which became null (no match) rather than a 400
    {"filter": "eo:cloud_cover < 1e999"},
    {"filter": "gsd IN (1, -1e400)"},
]


@pytest.mark.parametrize("params", MALFORMED, ids=lambda p: p["filter"][:30])
def test_malformed_cql2_is_400(client, params: dict[str, str]) -> None:
    for response in (client.get("/search", params=params), client.post("/search", json=params)):
        assert response.status_code == 400, response.text
        body = response.json()
        assert set(body) >= {"code", "description"} and body["description"], body


def test_cql2_json_object_malformed_is_400(client) -> None:
    for body in ({"filter": {"op": "=", "args": [{"property": "gsd"}]}},
                 {"filter": {"op": "and", "args": "x"}},
                 {"filter": {"op": "s_intersects", "args": [{"property": "geometry"}, {"type": "Point"}]}},
                 {"filter": [1, 2]}):
        response = client.post("/search", json=body)
        assert response.status_code == 400, (body, response.text)
        assert {"code", "description"} <= set(response.json())


def test_temporal_interval_of_properties_is_answered(sample_env: Env) -> None:
    """INTERVAL with property ends is CQL2 (instantParameter may be a property): answered."""
    text = "T_INTERSECTS(INTERVAL(start_datetime, end_datetime), INTERVAL('2022-01-01', '2022-02-01'))"
    expected = expected_items(sample_env.oracle, sample_env.items, filter=cql2.parse_text(text).to_json())
    assert expected
    check_item_search(sample_env.client, "GET", "/search", {"filter": text, "limit": 5}, expected, text)


ILL_FITTING = [
    "T_AFTER(datetime, INTERVAL('2022-01-01', '2020-01-01'))",
    "T_AFTER(datetime, INTERVAL(gsd + 1, '2020-01-01'))",
    "S_INTERSECTS(gsd, geometry)",
    "gsd LIKE 5",
    "POINT(1 1) = POINT(1 1)",
    "INTERVAL(start_datetime, end_datetime) = 1",
]


@pytest.mark.parametrize("text", ILL_FITTING)
def test_ill_fitting_arguments_are_400(client, text: str) -> None:
    for response in (client.get("/search", params={"filter": text}),
                     client.post("/search", json={"filter": text, "filter-lang": "cql2-text"})):
        assert response.status_code == 400, (text, response.text)
        assert response.json()["description"], response.text


@pytest.mark.parametrize("crs", ["http://www.opengis.net/def/crs/OGC/1.3/CRS84", "https://www.opengis.net/def/crs/OGC/1.3/CRS84"])
def test_filter_crs84_is_accepted(sample_env: Env, crs: str) -> None:
    text = "S_INTERSECTS(geometry, BBOX(5.6, 51.9, 5.7, 52.0)) AND gsd < 50"
    expected = expected_items(sample_env.oracle, sample_env.items, filter=cql2.parse_text(text).to_json())
    assert expected
    for method, params in (("GET", {"filter": text, "filter-crs": crs, "limit": 3}),
                           ("POST", {"filter": text, "filter-lang": "cql2-text", "filter-crs": crs, "limit": 3})):
        check_item_search(sample_env.client, method, "/search", params, expected, f"{method} {crs}")


MIXED_TIME_FILTERS = [
    "created = DATE('2020-01-01')", "created <> DATE('2020-01-01')", "created < DATE('2020-01-02')",
    "created >= DATE('2020-01-02')", "created = TIMESTAMP('2020-01-01T06:00:00Z')", "created > TIMESTAMP('2020-01-01T06:00:00Z')",
]


@pytest.mark.parametrize("text", MIXED_TIME_FILTERS + [f"NOT ({t})" for t in MIXED_TIME_FILTERS])
def test_time_literals_against_a_property_of_mixed_types(tmp_path: Path, make_client, text: str) -> None:
    """A time property (by its name here; or by all its strings being date-times) holding
    date-times on some items and numbers, other strings or booleans on others:
    against a TIMESTAMP or DATE, the values of other types are FALSE for every operator (so
    their NOT is TRUE), the items without it NULL; '=' and '<>' with a DATE once left them NULL."""
    from tests.helpers import CatalogDir, catalog, collection, item, link

    values: list[Any] = ["2020-01-01T06:00:00Z", "2020-01-01T23:00:00Z", "2020-01-02T00:00:00Z", 5, "abc", True, None]
    folder = CatalogDir(tmp_path / "mixed")
    items = []
    for k, value in enumerate(values + ["absent"]):
        properties = {} if value == "absent" else {"created": value}
        links = [link("collection", "./collection.json")]
        folder.write(f"c/i{k}.json", item(f"i{k}", collection="c", properties=properties, links=links))
        items.append(link("item", f"./i{k}.json"))
    folder.write("c/collection.json", collection("c", items))
    folder.write("catalog.json", catalog("root", [link("child", "./c/collection.json")]))
    index, report = load_catalogs([str(folder.root / "catalog.json")])
    assert index.size == len(values) + 1, report.summary()
    oracle = Oracle.from_root(folder.root / "catalog.json")
    records = item_records(oracle)
    node = cql2.parse_text(text).to_json()
    expected = expected_items(oracle, records, filter=node)
    with make_client(index=index) as client:
        check_item_search(client, "GET", "/search", {"filter": text, "limit": 3}, expected, text)
        check_item_search(client, "POST", "/search", {"filter": node, "limit": 3}, expected, text)


def test_a_geometry_literal_is_not_replaced_by_its_bbox_member(client) -> None:
    """A GeoJSON geometry may carry a "bbox" member (RFC 7946 §5); cql2's JSON parser read such
    an object as the BBOX literal, so the filter tested that box, not the geometry."""
    point = {"type": "Point", "coordinates": [5.665, 51.97]}  # the sample's aerial photo of Wageningen
    def found(geometry: dict[str, Any], method: str) -> list[str]:
        node = {"op": "s_intersects", "args": [{"property": "geometry"}, geometry]}
        if method == "GET":
            response = client.get("/search", params={"filter": json.dumps(node), "filter-lang": "cql2-json", "limit": 100})
        else:
            response = client.post("/search", json={"filter": node, "limit": 100})
        assert response.status_code == 200, response.text
        return sorted(f["id"] for f in response.json()["features"])
    for method in ("GET", "POST"):
        expected = found(point, method)
        assert "aerial-wageningen-2021" in expected
        assert found({**point, "bbox": [0, 0, 1, 1]}, method) == expected  # a wrong box: was nothing
        assert found({**point, "bbox": [5.665, 51.97, 5.665, 51.97]}, method) == expected
        collection = {"type": "GeometryCollection", "bbox": [0, 0, 1, 1], "geometries": [{**point, "bbox": [0, 0, 1, 1]}]}
        assert found(collection, method) == expected


_BOWTIE = {"type": "Polygon", "coordinates": [[[4, 50], [7, 53], [7, 50], [4, 53], [4, 50]]]}
_OVERLAPPING = {"type": "MultiPolygon", "coordinates": [[[[4, 50], [6, 50], [6, 52], [4, 52], [4, 50]]],
                                                        [[[5, 51], [7, 51], [7, 53], [5, 53], [5, 51]]]]}


def assert_error(response: Any, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"] and isinstance(body.get("description"), str)
    return body


@pytest.mark.parametrize("geometry", [_BOWTIE, _OVERLAPPING], ids=["bowtie", "overlapping-multipolygon"])
def test_an_invalid_geometry_literal_is_a_400_as_in_intersects(client, geometry: dict[str, Any]) -> None:
    """The same geometry as ``intersects`` is a 400 naming why; in a filter it was repaired
    (make_valid) and evaluated. Now one rule (values.checked_geometry) for both: cql2-text and
    cql2-json, GET and POST, whatever else the filter says (FALSE AND ... too)."""
    reason = assert_error(client.post("/search", json={"intersects": geometry}), 400)["description"].split(": ", 1)[1]
    text = f"S_INTERSECTS(geometry, {wkt(geometry)})"
    node = {"op": "s_intersects", "args": [{"property": "geometry"}, geometry]}
    answers = [
        client.get("/search", params={"filter": text, "filter-lang": "cql2-text"}),
        client.get("/search", params={"filter": f"FALSE AND S_WITHIN({wkt(geometry)}, geometry)"}),
        client.post("/search", json={"filter": text, "filter-lang": "cql2-text"}),
        client.get("/search", params={"filter": json.dumps(node), "filter-lang": "cql2-json"}),
        client.post("/search", json={"filter": node}),
        client.post("/search", json={"filter": {"op": "not", "args": [
            {"op": "s_disjoint", "args": [geometry, {"property": "geometry"}]}]}}),
        client.get("/collections/dem-alps/items", params={"filter": text}),
    ]
    for response in answers:
        description = assert_error(response, 400)["description"]
        assert description == f"Invalid filter geometry: {reason}", description
    repaired = shapely.make_valid(shapely.geometry.shape(geometry))  # what was evaluated before: valid, so served
    fine = client.get("/search", params={"filter": f"S_INTERSECTS(geometry, {repaired.wkt})", "limit": 100})
    assert fine.status_code == 200 and fine.json()["features"], fine.text


def test_a_geometry_literal_is_read_by_geos_once(client, monkeypatch: pytest.MonkeyPatch) -> None:
    """The literal checked at parse time (values.checked_geometry) is the one evaluated: GEOS
    read it again for the evaluation, once more per literal per request. Same answer as the
    geometry sent as ``intersects`` (read once there too), in text and JSON, GET and POST."""
    ring = [[5.0, 44.0], [12.0, 44.0], [12.0, 48.5], [5.0, 48.5], [5.0, 44.0]]
    geometry = {"type": "Polygon", "coordinates": [ring]}
    reads: list[bytes] = []
    real = shapely.from_geojson

    def counted(value: Any, *args: Any, **kwargs: Any) -> Any:
        reads.append(value)
        return real(value, *args, **kwargs)

    monkeypatch.setattr(shapely, "from_geojson", counted)
    expected = client.post("/search", json={"intersects": geometry, "limit": 100}).json()
    assert len(reads) == 1 and expected["features"]
    want = sorted(f["id"] for f in expected["features"])
    node = {"op": "s_intersects", "args": [{"property": "geometry"}, geometry]}
    disjoint = {"op": "s_disjoint", "args": [geometry, {"property": "geometry"}]}
    twice = {"op": "and", "args": [node, {"op": "not", "args": [disjoint]}]}
    requests = [  # (a distinct limit each: no answer from the response cache)
        (lambda: client.get("/search", params={"filter": f"S_INTERSECTS(geometry, {wkt(geometry)})", "limit": 99}), 1),
        (lambda: client.post("/search", json={"filter": node, "limit": 98}), 1),
        (lambda: client.post("/search", json={"filter": twice, "limit": 97}), 2),
        (lambda: client.get("/collections/dem-alps/items", params={"filter": json.dumps(twice), "filter-lang": "cql2-json"}), 2),
    ]
    for request, literals in requests:
        reads.clear()
        response = request()
        assert response.status_code == 200, response.text
        assert len(reads) == literals, reads
        if "/search" in str(response.url):
            assert sorted(f["id"] for f in response.json()["features"]) == want
