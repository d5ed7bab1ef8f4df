"""Collection and item ids that need percent-encoding in a URL, against the real server (uvicorn,
which decodes %2F into the `path` it routes on; the server matches the raw path instead).

Public catalogs name collections like `planet/fusion/14N/29E-188N`: such a collection, and every
item below it, must load and be reachable through every endpoint, by plain HTTP with the id
encoded per segment and through pystac-client as it is.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from pystac_client import Client

from tests.helpers import CatalogDir, collection, item, run_server, search_all

pytestmark = pytest.mark.filterwarnings("error")

SLASHED = "planet/fusion/14N/29E-188N"
COLLECTIONS = [
    SLASHED, "ü/中", "trail/", "nest", "nest/items", "nest/queryables",
    "a b", "c%d", "p%41", "h#x", "q?r", "p+s", ".", "..", "x,y",
]
ITEMS = ["plain", "i/1", "a b", "p%20q", "%2F", "h#x", "x?y", "plus+", "ä", ".", "..", "s/l/", "c,d"]

# What pystac-client 0.9 cannot ask for: it joins ids into URLs without encoding them, so "#" and
# "?" end the URL, "." and ".." are resolved away, "%41" is sent as an escape, and
# /collections/nest/items is the items of "nest". Those ids are reached through the links the API
# writes (tested below), not through a URL the client builds.
CLIENT_CANNOT_NAME = {"h#x", "q?r", "x?y", ".", "..", "p%41", "p%20q", "%2F", "nest/items", "nest/queryables"}


def encode(value: str) -> str:
    """`value` as one path segment, as the API's links write it."""
    return value.replace(".", "%2E") if value in (".", "..") else quote(value, safe="")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = CatalogDir(tmp_path_factory.mktemp("odd-ids") / "catalog")
    children = []
    for n, cid in enumerate(COLLECTIONS):
        children.append({"rel": "child", "href": f"./c{n}/collection.json"})
        links = [{"rel": "item", "href": f"./i{k}.json"} for k in range(len(ITEMS))]
        folder.write(f"c{n}/collection.json", collection(cid, links, title=f"collection {n}"))
        for k, iid in enumerate(ITEMS):
            folder.write(f"c{n}/i{k}.json", item(iid, collection=cid, properties={"n": k}))
    folder.write("catalog.json", {"type": "Catalog", "stac_version": "1.0.0", "id": "odd", "description": "odd ids",
                                  "links": children})
    with run_server([str(folder.path("catalog.json"))]) as url:
        yield url


@pytest.fixture(scope="module")
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=10.0) as client:
        yield client


def get_json(http: httpx.Client, path: str, status: int = 200) -> Any:
    response = http.get(path)
    assert response.status_code == status, (path, response.status_code, response.text)
    return response.json()


# -- plain HTTP ----------------------------------------------------------------------------------


def test_every_collection_and_item_loads(http: httpx.Client) -> None:
    listed = get_json(http, "/collections?limit=100")["collections"]
    assert sorted(c["id"] for c in listed) == sorted(COLLECTIONS)
    ready = get_json(http, "/_mgmt/ready")
    assert (ready["collections"], ready["items"]) == (len(COLLECTIONS), len(COLLECTIONS) * len(ITEMS))
    found, _ = search_all(http, "POST", "/search", {"limit": 100})
    assert sorted(found) == sorted((c, i) for c in COLLECTIONS for i in ITEMS)


def test_each_endpoint_names_every_collection_by_its_encoded_segment(http: httpx.Client) -> None:
    for cid in COLLECTIONS:
        path = f"/collections/{encode(cid)}"
        assert get_json(http, path)["id"] == cid
        assert get_json(http, path + "/queryables")["$id"].endswith(path + "/queryables")
        page = get_json(http, path + "/items?limit=100")
        assert sorted(f["id"] for f in page["features"]) == sorted(ITEMS), cid
        assert {f["collection"] for f in page["features"]} == {cid}
        for iid in ITEMS:
            got = get_json(http, f"{path}/items/{encode(iid)}")
            assert (got["collection"], got["id"]) == (cid, iid)


def test_each_collection_aggregates_at_the_links_it_gives(http: httpx.Client) -> None:
    """The aggregate and aggregations links of a collection whose id holds "/", "." or ".."
    answer as any other collection's (they were routed on the decoded path: a 404)."""
    for cid in COLLECTIONS:
        links = {link["rel"]: link["href"] for link in get_json(http, f"/collections/{encode(cid)}")["links"]}
        assert links["aggregate"].endswith(f"/collections/{encode(cid)}/aggregate"), cid
        total = get_json(http, links["aggregate"] + "?aggregations=total_count,collection_frequency")["aggregations"]
        assert total[0]["value"] == len(ITEMS), cid
        assert total[1]["buckets"] == [{"key": cid, "data_type": "string", "frequency": len(ITEMS)}], cid
        posted = http.post(links["aggregate"], json={"aggregations": ["total_count"]})
        assert posted.status_code == 200 and posted.json()["aggregations"][0]["value"] == len(ITEMS), (cid, posted.text)
        names = {entry["name"] for entry in get_json(http, links["aggregations"])["aggregations"]}
        assert {"total_count", "n_frequency"} <= names, cid


def test_raw_encodings_are_decoded_once_per_segment(http: httpx.Client) -> None:
    """Each escape by hand (lower-case hex too): the raw path, not the decoded one, is routed."""
    cases = {
        "/collections/planet%2Ffusion%2F14N%2F29E-188N": SLASHED,
        "/collections/planet%2ffusion%2f14N%2f29E-188N": SLASHED,
        "/collections/%C3%BC%2F%E4%B8%AD": "ü/中",
        "/collections/trail%2F": "trail/",
        "/collections/nest%2Fitems": "nest/items",
        "/collections/nest%2Fqueryables": "nest/queryables",
        "/collections/a%20b": "a b",
        "/collections/c%25d": "c%d",
        "/collections/p%2541": "p%41",
        "/collections/h%23x": "h#x",
        "/collections/q%3Fr": "q?r",
        "/collections/p%2Bs": "p+s",
        "/collections/%2E": ".",
        "/collections/%2E%2E": "..",
        "/collections/x%2Cy": "x,y",
        "/collections/x,y": "x,y",
    }
    for path, cid in cases.items():
        assert get_json(http, path)["id"] == cid, path
    items = {
        "i%2F1": "i/1", "a%20b": "a b", "p%2520q": "p%20q", "%252F": "%2F", "h%23x": "h#x", "x%3Fy": "x?y",
        "plus%2B": "plus+", "plus+": "plus+", "%C3%A4": "ä", "%2E": ".", "%2E%2E": "..", "s%2Fl%2F": "s/l/",
    }
    for segment, iid in items.items():
        got = get_json(http, f"/collections/planet%2Ffusion%2F14N%2F29E-188N/items/{segment}")
        assert (got["collection"], got["id"]) == (SLASHED, iid), segment
    # "nest/items" encoded is that collection; unencoded, the items of "nest"
    assert get_json(http, "/collections/nest/items")["type"] == "FeatureCollection"
    assert get_json(http, "/collections/nest/queryables")["$id"].endswith("/collections/nest/queryables")
    # no decoding twice: %2541 is "%41", not "A"
    get_json(http, "/collections/pA", 404)
    get_json(http, "/collections/planet%2Ffusion", 404)
    get_json(http, "/collections/planet%2Ffusion%2F14N%2F29E-188N/items/nope", 404)
    get_json(http, "/collections/%FF", 404)  # not UTF-8: names nothing
    assert http.head("/collections/planet%2Ffusion%2F14N%2F29E-188N").status_code == 200
    assert http.post("/collections/planet%2Ffusion%2F14N%2F29E-188N/items").status_code == 405


def test_ids_written_unencoded_are_read_leniently(http: httpx.Client) -> None:
    """What a client that does not encode ids sends (pystac-client's get_collection, get_item)."""
    assert get_json(http, "/collections/planet/fusion/14N/29E-188N")["id"] == SLASHED
    assert get_json(http, "/collections/planet/fusion/14N/29E-188N/queryables")["$id"].endswith(
        "/collections/planet%2Ffusion%2F14N%2F29E-188N/queryables")
    page = get_json(http, "/collections/planet/fusion/14N/29E-188N/items?limit=100")
    assert {f["collection"] for f in page["features"]} == {SLASHED} and len(page["features"]) == len(ITEMS)
    got = get_json(http, "/collections/planet/fusion/14N/29E-188N/items/s/l/")
    assert (got["collection"], got["id"]) == (SLASHED, "s/l/")
    assert get_json(http, "/collections/trail/")["id"] == "trail/"
    assert get_json(http, "/collections/ü/中/items/i/1")["id"] == "i/1"


def test_the_response_cache_keeps_encoded_and_unencoded_paths_apart(http: httpx.Client) -> None:
    """/collections/nest%2Fitems and /collections/nest/items decode to the same path but are
    different resources: neither may be answered (or revalidated) with the other's body."""
    for _ in range(2):
        one = http.get("/collections/nest%2Fitems")
        two = http.get("/collections/nest/items")
        assert one.json()["id"] == "nest/items" and two.json()["type"] == "FeatureCollection"
        assert one.headers["etag"] != two.headers["etag"]
    assert http.get("/collections/nest/items", headers={"if-none-match": one.headers["etag"]}).status_code == 200


def test_links_round_trip_and_next_links_page_through_the_collection(http: httpx.Client, base: str) -> None:
    for cid in (SLASHED, "ü/中", "trail/", "h#x", "..", "c%d", "p+s"):
        check_links_and_paging(http, base, cid)


def check_links_and_paging(http: httpx.Client, base: str, cid: str) -> None:
    col = get_json(http, f"/collections/{encode(cid)}")
    links = {ln["rel"]: ln["href"] for ln in col["links"]}
    assert links["self"] == f"{base}/collections/{encode(cid)}"
    assert get_json(http, links["self"])["id"] == cid
    assert get_json(http, links["http://www.opengis.net/def/rel/ogc/1.0/queryables"])["$id"].startswith(links["self"])
    features, pages = search_all(http, "GET", links["items"], {"limit": 3})
    assert len(pages) == -(-len(ITEMS) // 3)
    assert sorted(features) == sorted((cid, i) for i in ITEMS)
    for page in pages:
        nxt = [ln["href"] for ln in page["links"] if ln["rel"] == "next"]
        assert all(href.startswith(links["items"] + "?") for href in nxt), nxt
        for feature in page["features"]:
            flinks = {ln["rel"]: ln["href"] for ln in feature["links"]}
            assert flinks["self"] == f"{links['items']}/{encode(feature['id'])}"
            got = get_json(http, flinks["self"])
            assert (got["collection"], got["id"]) == (cid, feature["id"])
            assert get_json(http, flinks["collection"])["id"] == cid
            assert get_json(http, flinks["parent"])["id"] == cid
    # the same through a search, GET and POST, paged by next links
    for method in ("GET", "POST"):
        features, pages = search_all(http, method, "/search", {"collections": [cid], "limit": 4})
        assert sorted(features) == sorted((cid, i) for i in ITEMS), method
        assert len(pages) == -(-len(ITEMS) // 4)
    landing = get_json(http, "/")
    assert f"{base}/collections/{encode(cid)}" in [ln["href"] for ln in landing["links"] if ln["rel"] == "child"]


def test_search_by_collection_ids_holding_slashes_and_commas(http: httpx.Client) -> None:
    both = sorted((c, i) for c in (SLASHED, "ü/中") for i in ITEMS)
    page = get_json(http, "/search?" + str(httpx.QueryParams({"collections": f"{SLASHED},ü/中", "limit": 100})))
    assert sorted((f["collection"], f["id"]) for f in page["features"]) == both
    page = get_json(http, "/search?collections=planet/fusion/14N/29E-188N&ids=i/1,a%20b&limit=100")
    assert sorted(f["id"] for f in page["features"]) == ["a b", "i/1"]
    # GET's list is comma-separated: "x,y" there is two ids (README); POST's array names it
    assert get_json(http, "/search?collections=x,y&limit=100")["numberMatched"] == 0
    body = http.post("/search", json={"collections": ["x,y"], "ids": ["c,d"]}).json()
    assert [(f["collection"], f["id"]) for f in body["features"]] == [("x,y", "c,d")]


# -- pystac-client -------------------------------------------------------------------------------


def test_pystac_client_reaches_every_collection_and_item(base: str) -> None:
    client = Client.open(base)
    listed = {c.id: c for c in client.get_collections()}
    assert sorted(listed) == sorted(COLLECTIONS)
    expected_items = sorted(ITEMS)
    for cid in COLLECTIONS:
        if cid in CLIENT_CANNOT_NAME:
            col = listed[cid]  # its links, written by the API, are encoded
        else:
            col = client.get_collection(cid)
            assert col is not None and col.id == cid, cid
        assert sorted(i.id for i in col.get_items()) == expected_items, cid
        assert {i.collection_id for i in col.get_items()} == {cid}
        for method in ("POST", "GET"):
            if method == "GET" and "," in cid:
                continue  # a comma list in GET (README)
            found = client.search(collections=[cid], method=method, limit=5)
            assert sorted(i.id for i in found.items()) == expected_items, (cid, method)
        for iid in ITEMS:
            if iid in CLIENT_CANNOT_NAME:
                continue
            got = col.get_item(iid)
            assert got is not None and (got.collection_id, got.id) == (cid, iid), (cid, iid)
        queryables = col.get_queryables()
        assert queryables["$id"] == f"{base}/collections/{encode(cid)}/queryables"
        assert "n" in queryables["properties"], cid


def test_pystac_client_follows_item_links_for_ids_it_cannot_write(base: str) -> None:
    """The ids pystac-client cannot put into a URL itself are still reached by the links the API
    writes: search results' self links, read back with pystac."""
    client = Client.open(base)
    found = {(i.collection_id, i.id): i for i in client.search(collections=[SLASHED, ".."], limit=100).items()}
    for cid in (SLASHED, ".."):
        for iid in ITEMS:
            href = found[(cid, iid)].get_self_href()
            assert href == f"{base}/collections/{encode(cid)}/items/{encode(iid)}"
            assert httpx.get(href).json()["id"] == iid


# -- the matching itself, in-process ---------------------------------------------------------------


def scope_of(raw_path: bytes | None, root_path: str = "") -> dict[str, Any]:
    from urllib.parse import unquote

    path = root_path + unquote((raw_path or b"").decode("latin-1")[len(root_path):])
    scope: dict[str, Any] = {"type": "http", "method": "GET", "path": path, "root_path": root_path}
    if raw_path is not None:
        scope["raw_path"] = raw_path
    return scope


def test_resolve_splits_the_raw_path_below_the_root_path_then_decodes_each_segment() -> None:
    from server.api.paths import ITEM, QUERYABLES, resolve

    got = resolve(scope_of(b"/stac/collections/a%2Fb/items/x%2Fy%3F", root_path="/stac"))
    assert got == (ITEM, {"collection_id": "a/b", "item_id": "x/y?"})
    assert resolve(scope_of(b"/collections/%E4%B8%AD/queryables")) == (QUERYABLES, {"collection_id": "中"})
    # a server that gives no raw path: the decoded path is all there is
    assert resolve(scope_of(None) | {"path": "/collections/a/items/b/c"}) == (ITEM, {"collection_id": "a", "item_id": "b/c"})
    for raw in (b"/collections/%FF", b"/collections/", b"/collections//items", b"/collections/a/items/", b"/collectionsx/a",
                b"/collections/a/b", b"/search"):
        assert resolve(scope_of(raw)) is None, raw


# -- the pages' own links --------------------------------------------------------------------------


def test_each_page_links_its_json_and_its_form_at_its_encoded_url(http: httpx.Client, base: str) -> None:
    """A page's JSON link (header, footer, <link rel=alternate>) and its search form's action are
    the URL the page was asked at, encoded as the API's links are, and on the public host. They
    were the decoded path on the server's own host: "c%d"'s JSON link named "c" + 0xd, "p%41"'s
    the collection "pA" (a 404), "h#x"'s ended at "#", and behind a proxy they led to 127.0.0.1."""
    import re
    from html import unescape

    html = {"accept": "text/html"}
    for cid in COLLECTIONS:
        path = f"/collections/{encode(cid)}"
        for tail, key, want in (("", "id", cid), ("/items?limit=2", "type", "FeatureCollection"),
                                (f"/items/{encode(ITEMS[1])}", "id", ITEMS[1]), ("/queryables", "type", "object"),
                                ("/aggregate?aggregations=total_count", "type", "AggregationCollection")):
            page = http.get(path + tail, headers=html)
            assert page.status_code == 200, (cid, tail)
            hrefs = {unescape(h) for h in re.findall(r'<link rel="alternate" type="application/json" href="([^"]*)"', page.text)}
            assert len(hrefs) == 1, (cid, tail, hrefs)
            href = hrefs.pop()
            assert href.startswith(base + path), (cid, tail, href)
            assert get_json(http, href)[key] == want, (cid, tail, href)
        form = http.get(path + "/items", headers=html).text
        assert f'action="{base}{path}/items"' in form, cid
        missing = http.get(path + "/items/nope%2F1", headers=html)
        assert missing.status_code == 404
        json_link = unescape(re.findall(r'<link rel="alternate" type="application/json" href="([^"]*)"', missing.text)[0])
        assert json_link == f"{base}{path}/items/nope%2F1?f=json"
    # behind a proxy: the public host, as in the JSON's links
    proxied = http.get(f"/collections/{encode(SLASHED)}/items", headers={**html, "x-forwarded-host": "stac.example.org",
                                                                          "x-forwarded-proto": "https"}).text
    assert '<link rel="alternate" type="application/json" href="https://stac.example.org/collections/' \
        f'{encode(SLASHED)}/items?f=json">' in proxied
    assert f'action="https://stac.example.org/collections/{encode(SLASHED)}/items"' in proxied
