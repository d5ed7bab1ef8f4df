"""Against the real server: `python -m server serve` under uvicorn on a free loopback port.

Calls go through pystac-client, the reference STAC API client in Python, with warnings as errors
(pyproject sets filterwarnings = error; the mark below makes it explicit). Results are compared
with the brute-force oracle over the sample catalog's files.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pystac_client import Client
from pystac_client.conformance import ConformanceClasses

from tests.helpers import GEOJSON, CatalogDir, collection, item, run_server, search_all
from tests.oracles.search import Oracle
from tests.test_search_oracle import SEED, random_query

pytestmark = pytest.mark.filterwarnings("error")

JSON = "application/json"


@pytest.fixture(scope="module")
def stac(live_server: str) -> Client:
    return Client.open(live_server)


@pytest.fixture(scope="module")
def http(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=10.0) as client:
        yield client


def oracle_query(parameters: dict[str, Any]) -> dict[str, Any]:
    """pystac-client's request parameters (GET or POST shape) as an oracle query."""
    query: dict[str, Any] = {}
    for name, value in parameters.items():
        if name == "intersects" and isinstance(value, str):
            value = json.loads(value)
        elif name in ("bbox", "ids", "collections"):
            value = value.split(",") if isinstance(value, str) else list(value)
            if name == "bbox":
                value = [float(v) for v in value]
        query[name] = value
    return query


def keys(items: Any) -> list[tuple[str | None, str]]:
    return [(i.collection_id, i.id) for i in items]


# -- pystac-client ---------------------------------------------------------------------------------


def test_client_open(stac: Client, live_server: str) -> None:
    assert stac.id == "sample"
    assert stac.get_self_href().rstrip("/") == live_server
    for conformance in (ConformanceClasses.CORE, ConformanceClasses.ITEM_SEARCH,
                        ConformanceClasses.COLLECTIONS, ConformanceClasses.FEATURES):
        assert stac.conforms_to(conformance), conformance


def test_get_collections(stac: Client, oracle: Oracle) -> None:
    found = list(stac.get_collections())
    assert sorted(c.id for c in found) == sorted(oracle.collections)
    for c in found:
        assert c.get_self_href().startswith(stac.get_self_href().rstrip("/") + "/collections/")
        assert c.extent.spatial.bboxes


@pytest.mark.parametrize("cid", ["corine-land-cover", "dem-alps", "ndvi-europe-monthly", "sentinel-2-l2a-nl"])
def test_get_collection_items(stac: Client, oracle: Oracle, cid: str) -> None:
    col = stac.get_collection(cid)
    assert col.id == cid
    got = keys(col.get_items())
    assert len(got) == len(set(got))
    assert set(got) == {k for k in oracle.keys() if k[0] == cid}
    one = next(col.get_items())
    assert col.get_item(one.id).id == one.id


LIVE_SEARCHES = [
    {"bbox": [5.6, 51.9, 5.7, 52.0]},
    {"bbox": [100, 30, 15, 75]},                                       # crosses the antimeridian
    {"intersects": {"type": "Point", "coordinates": [10.0, 47.0]}},    # four dem tiles' corner
    {"intersects": {"type": "Polygon", "coordinates": [[[4, 50], [6, 50], [5, 53], [4, 50]]]}},
    {"datetime": "2022-02-28T23:59:59Z"},
    {"datetime": "2021"},                                              # pystac-client widens a year
    {"datetime": "2023-01-01T00:00:00Z/.."},
    {"datetime": "../2016-01-01T00:00:00+01:00"},
    {"ids": ["dem-alps-void-fill-report", "aerial-wageningen-2021", "clc-2018"]},
    {"collections": ["sentinel-2-l2a-nl", "no-such-collection"], "bbox": [5, 51, 6, 52]},
    {"collections": ["ndvi-europe-monthly"], "datetime": "2022-03-15T00:00:00Z/2022-06-01T00:00:00Z"},
]


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("query", LIVE_SEARCHES, ids=lambda q: json.dumps(q)[:50])
def test_search(stac: Client, oracle: Oracle, query: dict[str, Any], method: str) -> None:
    search = stac.search(**query, limit=3, method=method)
    expected = oracle.evaluate(oracle_query(search.get_parameters()))
    assert search.matched() == len(expected)
    got = keys(search.item_collection())
    assert len(got) == len(set(got))
    assert set(got) == expected


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_item_collection_over_many_pages(stac: Client, oracle: Oracle, method: str) -> None:
    search = stac.search(limit=2, method=method)
    assert search.matched() == len(oracle.items)
    pages = list(search.pages())
    assert len(pages) == (len(oracle.items) + 1) // 2
    got = keys(search.item_collection())
    assert len(got) == len(set(got)) == len(oracle.items)
    assert set(got) == oracle.keys()


@pytest.mark.parametrize("case", range(20), ids=lambda i: f"q{i:03d}")
def test_random_searches(stac: Client, oracle: Oracle, case: int) -> None:
    """The in-process randomised queries, now through pystac-client and the network."""
    query = random_query(random.Random(f"{SEED}/search/{case}"), oracle)
    method = "GET" if case % 2 else "POST"
    search = stac.search(**query, method=method)
    expected = oracle.evaluate(oracle_query(search.get_parameters()))
    assert search.matched() == len(expected)
    got = keys(search.items())
    assert len(got) == len(set(got)) and set(got) == expected


def test_max_items_stops_early(stac: Client) -> None:
    got = list(stac.search(limit=4, max_items=9).items())
    assert len(got) == 9


# -- plain HTTP ------------------------------------------------------------------------------------


def test_landing_over_http(http: httpx.Client, live_server: str) -> None:
    r = http.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith(JSON)
    links = r.json()["links"]
    assert all(ln["href"].startswith(live_server + "/") for ln in links)
    api = http.get("/api")
    assert api.headers["content-type"].replace(" ", "") == "application/vnd.oai.openapi+json;version=3.0"
    assert api.json()["servers"][0]["url"] == live_server


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_paging_over_http(http: httpx.Client, oracle: Oracle, method: str) -> None:
    query = {"limit": 5, "bbox": [-10, 40, 20, 60], "datetime": "2019-01-01T00:00:00Z/.."}
    got, pages = search_all(http, method, "/search", query)
    assert len(got) == len(set(got)) and set(got) == oracle.evaluate(query)
    assert all(p["numberMatched"] == len(got) for p in pages)


def test_errors_over_http(http: httpx.Client) -> None:
    cases = [
        (http.get("/search", params={"bbox": "1,2,3"}), 400),
        (http.get("/search", params={"datetime": "yesterday"}), 400),
        (http.post("/search", json={"bbox": [0, 0, 1, 1], "intersects": {"type": "Point", "coordinates": [0, 0]}}), 400),
        (http.get("/collections/nope"), 404),
        (http.get("/collections/dem-alps/items/nope"), 404),
        (http.put("/search", json={}), 405),
        (http.post("/search", content=b"limit=1", headers={"content-type": "application/x-www-form-urlencoded"}), 415),
    ]
    for response, status in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.headers["content-type"].startswith(JSON)
        assert set(response.json()) >= {"code", "description"}


def test_proxy_headers_over_http(http: httpx.Client) -> None:
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "stac.example.org", "X-Forwarded-Prefix": "/v1"}
    for path in ("/", "/collections", "/collections/dem-alps/items?limit=2", "/search?limit=2"):
        doc = http.get(path, headers=headers).json()
        nav = [ln for ln in doc["links"] if ln["rel"] in ("self", "root", "next", "child", "data", "search")]
        assert nav and all(ln["href"].startswith("https://stac.example.org/v1/") for ln in nav), (path, nav)
    doc = http.get("/", headers={"Forwarded": "proto=https;host=fwd.example.org"}).json()
    assert {ln["href"] for ln in doc["links"] if ln["rel"] == "self"} == {"https://fwd.example.org/"}


def test_item_media_type_over_http(http: httpx.Client) -> None:
    r = http.get("/collections/dem-alps/items/dem-alps-void-fill-report")
    assert r.status_code == 200 and r.headers["content-type"].startswith(GEOJSON)
    assert r.json()["geometry"] is None


# -- the CLI with roots and options ------------------------------------------------------------------


def test_serve_given_roots_and_base_url(tmp_path: Path) -> None:
    """`serve COLLECTION ITEMS.geojson --base-url URL`: bulk input, links under the configured URL."""
    folder = CatalogDir(tmp_path / "bulk")
    folder.write("collection.json", collection("bulk"))
    features = [item(f"b{i}", bbox=(i, 0, i + 0.5, 0.5), collection="bulk") for i in range(7)]
    folder.write("items.geojson", {"type": "FeatureCollection", "features": features})
    public = "https://public.example/stac"
    roots = [str(folder.path("collection.json")), str(folder.path("items.geojson"))]
    with run_server(roots, ["--base-url", public]) as base, httpx.Client(base_url=base, timeout=10.0) as http:
        landing = http.get("/").json()
        assert {ln["href"] for ln in landing["links"] if ln["rel"] == "child"} == {f"{public}/collections/bulk"}
        doc = http.get("/collections/bulk/items", params={"limit": 3}).json()
        assert doc["numberMatched"] == 7
        assert all(ln["href"].startswith(public + "/") for f in doc["features"] for ln in f["links"])
        nxt = [ln for ln in doc["links"] if ln["rel"] == "next"][0]
        assert nxt["href"].startswith(f"{public}/collections/bulk/items?")
        r = http.get(nxt["href"][len(public):])
        assert r.status_code == 200 and r.json()["numberReturned"] == 3


ODD_IDS = ["a b", "ä-ö", "x?y", "h#x", "p%20q", "plus+sign", "sl/ash", "semi;colon", "amp&er=1", "tilde~", "dot."]
ODD_COLLECTIONS = ["col one", "col%three", "c?d&e", "ü"]


def test_links_resolve_for_ids_that_need_escaping(tmp_path: Path) -> None:
    """Every self/parent/collection/items link of items and collections whose ids need
    percent-escaping leads back to the same document (over uvicorn, which decodes paths
    once; starlette's TestClient decodes them twice, so this needs the real server)."""
    folder = CatalogDir(tmp_path / "odd")
    children = []
    for n, cid in enumerate(ODD_COLLECTIONS):
        children.append({"rel": "child", "href": f"./c{n}/collection.json"})
        folder.write(f"c{n}/collection.json", collection(cid, [{"rel": "item", "href": f"./i{k}.json"}
                                                               for k in range(len(ODD_IDS))]))
        for k, iid in enumerate(ODD_IDS):
            folder.write(f"c{n}/i{k}.json", item(iid, collection=cid))
    folder.write("catalog.json", {"type": "Catalog", "stac_version": "1.0.0", "id": "odd", "description": "odd ids",
                                  "links": children})
    with run_server([str(folder.path("catalog.json"))]) as base, httpx.Client(timeout=10.0) as http:
        def fetch(href: str) -> dict[str, Any]:
            assert href.startswith(base + "/"), href
            r = http.get(href)
            assert r.status_code == 200, (href, r.text)
            return r.json()

        cols = fetch(base + "/collections")["collections"]
        assert sorted(c["id"] for c in cols) == sorted(ODD_COLLECTIONS)
        for col in cols:
            links = {ln["rel"]: ln["href"] for ln in col["links"]}
            assert fetch(links["self"])["id"] == col["id"]
            features, _ = search_all(http, "GET", links["items"], {"limit": 4})
            assert sorted(i for _, i in features) == sorted(ODD_IDS)
        features, _ = search_all(http, "POST", base + "/search", {"limit": 100})
        assert len(features) == len(ODD_IDS) * len(ODD_COLLECTIONS)
        for f in fetch(base + "/search?limit=100")["features"]:
            links = {ln["rel"]: ln["href"] for ln in f["links"]}
            got = fetch(links["self"])
            assert (got["collection"], got["id"]) == (f["collection"], f["id"])
            assert fetch(links["collection"])["id"] == f["collection"]
            assert fetch(links["parent"])["id"] == f["collection"]
        got = fetch(base + "/search?" + httpx.QueryParams({"ids": "sl/ash,a b", "collections": "col one,ü"}).__str__())
        assert sorted((f["collection"], f["id"]) for f in got["features"]) == sorted(
            (c, i) for c in ("col one", "ü") for i in ("sl/ash", "a b"))


# -- requests the HTTP parser refuses ------------------------------------------------------------


def _raw(base: str, request: bytes) -> tuple[int, dict[str, Any]]:
    """``request`` sent as bytes (no client would send these), and the status and JSON body read back."""
    import socket
    from urllib.parse import urlsplit

    url = urlsplit(base)
    with socket.create_connection((url.hostname, url.port), timeout=10) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head.lower(), head
    return int(head.split(b" ", 2)[1]), json.loads(body)


def test_unparseable_requests_say_why(live_server: str) -> None:
    """qa16: every request the parser refuses got "malformed, or its request line is over 64
    KiB", an unknown method too. Each says which it was now (still a 400, as JSON)."""
    status, body = _raw(live_server, b"FOO / HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400 and body["code"] == "BadRequest" and "method" in body["description"], body
    assert "64 KiB" not in body["description"]
    status, body = _raw(live_server, b"GET /search?ids=" + b"a" * 70_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 400 and "over 64 KiB" in body["description"] and "method" not in body["description"], body
    status, body = _raw(live_server, b"GET / HTTP/1.1\r\nHost x\r\n\r\n")
    assert status == 400 and body["description"].startswith("Invalid HTTP request: malformed ("), body
    assert "64 KiB" not in body["description"] and "method" not in body["description"]
    # the server goes on answering
    assert httpx.get(live_server + "/_mgmt/health", timeout=10).status_code == 200
