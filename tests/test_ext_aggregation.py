"""The Aggregation extension: /aggregate (GET, POST, per collection) vs the brute-force oracle
(tests/oracles/aggregation.py) on the sample and the synthetic catalogs, every aggregation
/aggregations lists, with and without filters; the links, conformance, /aggregations and 400s."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.conftest import Env
from tests.oracles.aggregation import aggregate as oracle_aggregate
from tests.oracles.expected import expected_items

# (filters as POST members, options): the filters also go through expected_items
CASES: list[tuple[dict[str, Any], dict[str, Any]]] = [
    ({}, {}),
    ({"bbox": [0, 40, 20, 60]}, {}),
    ({"bbox": [-180, -90, 180, 90], "datetime": "2018-01-01T00:00:00Z/2021-06-30T00:00:00Z"},
     {"datetime_frequency_interval": "hour"}),
    ({"datetime": "../2020-01-01T00:00:00Z"}, {"datetime_frequency_interval": "year"}),
    ({"collections": ["sentinel-2-l2a-nl", "misc"]}, {"datetime_frequency_interval": "day"}),
    ({"ids": ["nope"]}, {}),  # nothing matches
    ({"filter": {"op": ">", "args": [{"property": "eo:cloud_cover"}, 20]}}, {"cloud_cover_frequency_interval": 25}),
    ({"query": {"platform": {"eq": "sentinel-2a"}}}, {"datetime_frequency_interval": "week"}),
    ({"q": "alps,river"}, {"datetime_frequency_interval": "quarter"}),
    # a precision no other case asks for, over a small match: the cells of the matched items only
    ({"bbox": [0, 40, 10, 50]}, {"centroid_geohex_grid_frequency_precision": 6}),
    ({}, {"centroid_geohash_grid_frequency_precision": 4, "centroid_geotile_grid_frequency_precision": 7,
          "centroid_geohex_grid_frequency_precision": 3, "geometry_geohash_grid_frequency_precision": 2,
          "geometry_geotile_grid_frequency_precision": 4, "datetime_frequency_interval": "day"}),
]


def _get_params(filters: dict[str, Any], options: dict[str, Any], names: list[str]) -> dict[str, str]:
    params = {"aggregations": ",".join(names)}
    for k, v in {**filters, **options}.items():
        if k in ("bbox", "ids", "collections"):
            params[k] = ",".join(str(x) for x in v)
        elif k in ("filter", "query"):
            params[k] = json.dumps(v)
            if k == "filter":
                params["filter-lang"] = "cql2-json"
        else:
            params[k] = str(v)
    return params


def _expected(env: Env, filters: dict[str, Any], options: dict[str, Any], names: list[str]) -> list[dict[str, Any]]:
    keys = set(expected_items(env.oracle, env.items, **filters))
    records = [r for r in env.items if r.key in keys]
    return oracle_aggregate(records, names, options)


def _names(env: Env, path: str = "/aggregations") -> list[str]:
    r = env.client.get(path)
    assert r.status_code == 200, r.text
    return [a["name"] for a in r.json()["aggregations"]]


@pytest.mark.parametrize("env_name", ["sample_env", "synth_env"])
@pytest.mark.parametrize("case", range(len(CASES)))
def test_aggregate_matches_the_oracle(request, env_name: str, case: int) -> None:
    env: Env = request.getfixturevalue(env_name)
    filters, options = CASES[case]
    if env_name == "synth_env" and "collections" in filters:
        filters = {"collections": sorted(env.oracle.collections)[:2]}
    names = _names(env)
    expected = _expected(env, filters, options, names)
    get = env.client.get("/aggregate", params=_get_params(filters, options, names))
    assert get.status_code == 200, get.text
    post = env.client.post("/aggregate", json={**filters, **options, "aggregations": names,
                                               **({"filter-lang": "cql2-json"} if "filter" in filters else {})})
    assert post.status_code == 200, post.text
    for response in (get, post):
        body = response.json()
        assert body["type"] == "AggregationCollection"
        got = {a["name"]: a for a in body["aggregations"]}
        assert list(got) == names
        for want in expected:
            assert got[want["name"]] == want, want["name"]


def test_collection_aggregate_is_the_collection_filter(sample_env: Env) -> None:
    env = sample_env
    for cid in sorted(env.oracle.collections):
        names = _names(env, f"/collections/{cid}/aggregations")
        assert set(names) <= set(_names(env))
        r = env.client.get(f"/collections/{cid}/aggregate", params={"aggregations": ",".join(names)})
        assert r.status_code == 200, r.text
        want = _expected(env, {"collections": [cid]}, {}, names)
        assert r.json()["aggregations"] == want
        post = env.client.post(f"/collections/{cid}/aggregate", json={"aggregations": names, "collections": ["misc"]})
        assert post.json()["aggregations"] == want  # the path's collection, whatever the body says


def test_defaults_errors_and_null_datetimes(sample_env: Env) -> None:
    c = sample_env.client
    r = c.get("/aggregate")
    assert [a["name"] for a in r.json()["aggregations"]] == [
        "total_count", "datetime_min", "datetime_max", "datetime_frequency", "collection_frequency"]
    total = r.json()["aggregations"][0]["value"]
    counted = sum(b["frequency"] for b in r.json()["aggregations"][3]["buckets"])
    assert total == len(sample_env.items) > counted  # items whose datetime is null are in no bucket
    for params in ({"aggregations": "nope"}, {"datetime_frequency_interval": "fortnight"},
                   {"aggregations": "centroid_geohash_grid_frequency", "centroid_geohash_grid_frequency_precision": "13"},
                   {"centroid_geotile_grid_frequency_precision": "x"},
                   {"centroid_geotile_grid_frequency_precision": "\u00b2"},  # isdigit, not int() (qa19: a 500)
                   {"centroid_geotile_grid_frequency_precision": "9" * 5000},  # over int()'s 4,300 digits (a 500)
                   {"bbox": "0,0,1,1", "intersects": '{"type": "Point", "coordinates": [0, 0]}'},
                   {"aggregations": "datetime_frequency", "datetime_frequency_interval": "second"}):
        assert c.get("/aggregate", params=params).status_code == 400, params
    assert c.get("/collections/nope/aggregate").status_code == 404
    assert c.get("/collections/nope/aggregations").status_code == 404
    assert c.get("/collections/dem-alps/aggregate", params={"aggregations": "cloud_cover_frequency"}).status_code == 400


def test_links_conformance_and_openapi(sample_env: Env) -> None:
    c = sample_env.client
    landing = c.get("/").json()
    rels = [(link["rel"], link.get("method")) for link in landing["links"]]
    assert ("aggregate", "GET") in rels and ("aggregate", "POST") in rels and ("aggregations", None) in rels
    aggregate_link = next(link for link in landing["links"] if link["rel"] == "aggregate")
    assert aggregate_link["aggregations"] == _names(sample_env)
    assert "https://api.stacspec.org/v0.3.0/aggregation" in c.get("/conformance").json()["conformsTo"]
    cid = sorted(sample_env.oracle.collections)[0]
    collection = c.get(f"/collections/{cid}").json()
    hrefs = {link["rel"]: link["href"] for link in collection["links"]}
    assert hrefs["aggregate"].endswith(f"/collections/{cid}/aggregate")
    assert hrefs["aggregations"].endswith(f"/collections/{cid}/aggregations")
    paths = c.get("/api").json()["paths"]
    assert {"get", "post"} <= set(paths["/aggregate"]) and "/collections/{collectionId}/aggregations" in paths
    listed = [p["$ref"].rsplit("/", 1)[1] for p in paths["/aggregate"]["get"]["parameters"]]
    assert "aggregations" in listed and "centroid_geohex_grid_frequency_precision" in listed and "limit" not in listed


def test_an_unknown_f_is_a_400_json_for_json_and_a_page_for_html(sample_env: Env) -> None:
    """As on every other route, an f the API does not have is a 400; f=json, no f or a JSON
    client's Accept get the JSON document (without a link added), f=html or a browser's Accept
    a page (tests/test_pages_browser.py looks at it)."""
    c = sample_env.client
    cid = sorted(sample_env.oracle.collections)[0]
    for path in ("/aggregate", "/aggregations", f"/collections/{cid}/aggregate", f"/collections/{cid}/aggregations"):
        r = c.get(path, params={"f": "bogus"})
        assert r.status_code == 400, (path, r.text)
        assert set(r.json()) >= {"code", "description"} and "f" in r.json()["description"]
        answers = [c.get(path, params=params, headers=headers) for params, headers in
                   (({"f": "json"}, {}), ({}, {}), ({}, {"Accept": "application/json"}))]
        for r in answers:
            assert r.status_code == 200 and r.json()["type"] == "AggregationCollection", (path, r.text)
            assert "alternate" not in [link["rel"] for link in r.json()["links"]]
        assert answers[1].content == answers[2].content
        for params, headers in (({"f": "html"}, {}), ({}, {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})):
            r = c.get(path, params=params, headers=headers)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (path, params)
            assert "<h1>Aggregations" in r.text and 'type="application/json"' in r.text
    r = c.post("/aggregate?f=bogus", json={"aggregations": ["total_count"]})
    assert r.status_code == 400, r.text


def test_a_posted_aggregate_asked_by_a_browser_is_a_page_of_its_parameters(sample_env: Env) -> None:
    """A POST's page lists the body's parameters (escaped) and its counts; its JSON stays JSON."""
    c = sample_env.client
    body = {"aggregations": ["total_count", "collection_frequency"], "filter": "'<b>x</b>' = '<b>x</b>'",
            "filter-lang": "cql2-text"}
    as_json = c.post("/aggregate", json=body).json()
    page = c.post("/aggregate", json=body, headers={"Accept": "text/html"})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "&#39;&lt;b&gt;x&lt;/b&gt;&#39; = &#39;&lt;b&gt;x&lt;/b&gt;&#39;" in page.text and "<b>x</b>" not in page.text
    total = next(a["value"] for a in as_json["aggregations"] if a["name"] == "total_count")
    assert f"<td>{total:,}</td>" in page.text
    for bucket in next(a for a in as_json["aggregations"] if a["name"] == "collection_frequency")["buckets"]:
        assert f"<td>{bucket['key']}</td>" in page.text


def test_a_geometry_grid_of_world_wide_boxes_is_a_400_not_a_crash(tmp_path) -> None:
    """qa19: each box's count of cells is at most 2**60 (geohash precision 12) or 2**58
    (geotile 29), and the int64 sum over 64 world-wide items wrapped to 0: under the limit,
    np.repeat then crashed the server process (a segfault: every client's connection gone).
    Over fewer it wrapped negative (a 500). Now a 400, and the server answers on."""
    import httpx

    from tests.helpers import CatalogDir, collection, item, link, run_server

    cat = CatalogDir(tmp_path / "world")
    cat.write("collection.json", collection("world", links=[link("item", f"./w{i}.json") for i in range(64)]))
    for i in range(64):
        cat.write(f"w{i}.json", item(f"w{i}", bbox=(-180.0, -90.0, 180.0, 90.0), collection="world"))
    with run_server([str(cat.path("collection.json"))]) as base, httpx.Client(base_url=base, timeout=30) as http:
        for name, precision in (("geometry_geotile_grid_frequency", 29), ("geometry_geohash_grid_frequency", 12)):
            for ids in (None, ",".join(f"w{i}" for i in range(32))):  # 2**64 cells in all, and 2**63
                params = {"aggregations": name, f"{name}_precision": str(precision), **({"ids": ids} if ids else {})}
                answer = http.get("/aggregate", params=params)
                assert answer.status_code == 400, (params, answer.status_code, answer.text[:300])
                assert "cells" in answer.json()["description"]
        assert http.get("/_mgmt/health").status_code == 200
        low = http.get("/aggregate", params={"aggregations": "geometry_geotile_grid_frequency",
                                             "geometry_geotile_grid_frequency_precision": "1"}).json()
        assert [b["frequency"] for b in low["aggregations"][0]["buckets"]] == [64] * 4  # every item in all 4 tiles
