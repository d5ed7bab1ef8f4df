"""The pages over plain HTTP: catalog text escaped, links to JSON, usable without JavaScript,
Leaflet and the tiles setting, the HTML conformance class."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import h3.api.basic_int as h3
import httpx
import pytest

from server.catalog.loader import load_catalogs
from server.settings import Settings
from tests.conftest import TestClient
from tests.helpers import CatalogDir, catalog, collection, item, link, run_server

HOSTILE = '<script>alert(1)</script><img src=x onerror=alert(2)>"quoted"'
PAGE = {"Accept": "text/html"}


@pytest.fixture
def hostile(catalog_dir: CatalogDir, make_client: Callable[..., TestClient]) -> TestClient:
    catalog_dir.write("collection.json", collection(
        "evil", title=HOSTILE, description=HOSTILE + "\n\n[x](javascript:alert(3))", keywords=[HOSTILE],
        providers=[{"name": HOSTILE, "url": "javascript:alert(4)"}], summaries={HOSTILE: [HOSTILE]},
        links=[{"rel": "item", "href": "./i.json"}]))
    catalog_dir.write("i.json", item(
        "i<b>", collection="evil", properties={"title": HOSTILE, HOSTILE: HOSTILE},
        assets={"a": {"href": "javascript:alert(5)", "title": HOSTILE, "roles": ["thumbnail"]}}))
    index, _ = load_catalogs([str(catalog_dir.path("collection.json"))])
    return make_client(index=index)


@pytest.mark.parametrize("path", ["/", "/collections", "/collections/evil", "/collections/evil/items",
                                  "/collections/evil/items/i%3Cb%3E", "/search?q=nothing", "/collections?q=evil",
                                  "/collections/evil/queryables", "/queryables", "/conformance", "/api"])
def test_catalog_text_is_escaped(hostile: TestClient, path: str) -> None:
    with hostile:
        page = hostile.get(path, headers=PAGE)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "<script>alert" not in html and "<img src=x" not in html
    assert 'href="javascript' not in html and 'src="javascript' not in html  # shown as text at most


def test_escaped_title_is_shown_as_text(hostile: TestClient) -> None:
    with hostile:
        html = hostile.get("/collections/evil", headers=PAGE).text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_map_data_cannot_close_its_script(hostile: TestClient) -> None:
    with hostile:
        html = hostile.get("/collections/evil/items", headers=PAGE).text
    data = html.split('<script type="application/json" id="map-data">', 1)[1].split("</script>", 1)[0]
    assert "<" not in data and "i\\u003cb\\u003e" in data


def test_pages_link_their_json_and_work_without_javascript(client: TestClient) -> None:
    html = client.get("/collections/sentinel-2-l2a-nl/items", params={"limit": 2}, headers=PAGE).text
    json_href = "http://testserver/collections/sentinel-2-l2a-nl/items?limit=2&amp;f=json"
    assert f'<link rel="alternate" type="application/json" href="{json_href}">' in html
    assert 'rel="next"' in html  # the next page is a plain link
    assert html.count("/collections/sentinel-2-l2a-nl/items/S2") >= 2  # the table links the items
    assert '<form class="search wide" method="get" action="http://testserver/collections/sentinel-2-l2a-nl/items">' in html


def test_leaflet_and_our_files_are_served(client: TestClient) -> None:
    for path in ("/static/leaflet/leaflet.js", "/static/leaflet/leaflet.css", "/static/pages/map.js",
                 "/static/pages/style.css"):
        response = client.get(path)
        assert response.status_code == 200, path
    html = client.get("/collections/dem-alps", headers=PAGE).text
    assert 'src="http://testserver/static/leaflet/leaflet.js"' in html
    assert "https://" not in html.split("<main>")[0]  # nothing from another host in the head


def test_tiles_setting(make_client: Callable[..., TestClient], client: TestClient) -> None:
    default = client.get("/collections/dem-alps", headers=PAGE).text
    assert 'data-tiles="https://tile.openstreetmap.org/{z}/{x}/{y}.png"' in default
    assert "OpenStreetMap</a> contributors" in default.replace("&lt;", "<").replace("&gt;", ">").replace("&#34;", '"')
    with make_client(Settings(html_tiles="")) as none:
        assert 'data-tiles=""' in none.get("/collections/dem-alps", headers=PAGE).text


def test_conformance_has_the_html_class(client: TestClient) -> None:
    assert "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/html" in client.get("/conformance").json()["conformsTo"]


def test_the_sample_thumbnail_shows_on_its_item_page(client: TestClient) -> None:
    """The sample's thumbnails are served here (below the API's base URL): the page shows them; a
    local file path or a javascript: href never becomes an image or a link."""
    item = client.get("/search", params={"limit": 1, "collections": "sentinel-2-l2a-nl"}).json()["features"][0]
    href = item["assets"]["thumbnail"]["href"]
    page = client.get(f"/collections/sentinel-2-l2a-nl/items/{item['id']}", headers={"accept": "text/html"}).text
    assert f'src="{href}"' in page
    assert client.get(href).headers["content-type"] == "image/png"


def _main(html: str) -> str:
    return html.split("<main>", 1)[1].split("</main>", 1)[0]


def test_every_kind_of_document_has_a_real_page(client: TestClient) -> None:
    """No page is a dump of its JSON: each kind has its template."""
    from server.api import documents, pages

    kinds = {documents.LANDING, documents.CONFORMANCE, documents.COLLECTIONS, documents.COLLECTION,
             documents.ITEMS, documents.ITEM, documents.QUERYABLES, documents.API, documents.CATALOG,
             documents.CHILDREN, documents.AGGREGATE, documents.AGGREGATIONS}
    assert set(pages.PAGES) == kinds
    for template in pages.PAGES.values():
        assert (Path(pages.HERE) / "templates" / template).is_file()
    for path in ("/", "/conformance", "/api", "/collections", "/collections/dem-alps", "/queryables",
                 "/collections/dem-alps/queryables", "/collections/dem-alps/items", "/search", "/children",
                 "/aggregate", "/aggregations", "/collections/dem-alps/aggregate", "/collections/dem-alps/aggregations"):
        html = client.get(path, headers=PAGE).text
        assert "<pre" not in html, path


def test_conformance_page_links_every_class(client: TestClient) -> None:
    classes = client.get("/conformance").json()["conformsTo"]
    main = _main(client.get("/conformance", headers=PAGE).text)
    assert sorted(re.findall(r'<li><a href="([^"]+)">\1</a></li>', main)) == sorted(classes)  # grouped
    for heading in ("STAC API", "OGC API - Features - Part 1: Core", "Common Query Language (CQL2)"):
        assert f"<h2>{heading}</h2>" in main


def test_queryables_page_is_a_table_of_them(client: TestClient) -> None:
    for path, collection_id in (("/queryables", None), ("/collections/sentinel-2-l2a-nl/queryables", "sentinel-2-l2a-nl")):
        schema = client.get(path).json()
        main = _main(client.get(path, headers=PAGE).text)
        rows = re.findall(r"<tr>\s*<td><code>([^<]*)</code></td>\s*<td>([^<]*)</td>\s*<td>(.*?)</td>", main, re.S)
        assert [name for name, _, _ in rows] == list(schema["properties"])
        by_name = {name: (title, kind) for name, title, kind in rows}
        assert by_name["datetime"] == ("Acquisition time", "string (date-time)")
        assert by_name["geometry"][1] == '<a href="https://geojson.org/schema/Geometry.json">GeoJSON geometry</a>'
        assert by_name["eo:cloud_cover"][1] == "number"
        if collection_id:
            assert f'href="http://testserver/collections/{collection_id}/items">items form</a>' in main


def test_a_hostile_queryable_stays_text(hostile: TestClient) -> None:
    with hostile:
        main = _main(hostile.get("/collections/evil/queryables", headers=PAGE).text)
    assert "<code>&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;&#34;quoted&#34;</code>" in main


def test_queryable_types_and_values_read_as_text() -> None:
    from server.api.pages import schema_type, schema_values

    assert schema_type({"type": "string", "format": "date-time"}) == "string (date-time)"
    assert schema_type({"type": ["number", "string"]}) == "number or string"
    assert schema_type({"type": "array", "items": {"type": "string"}}) == "array of string"
    assert schema_type({"$ref": "https://geojson.org/schema/Geometry.json"}) == "GeoJSON geometry"
    assert schema_type("not a schema") == ""
    assert schema_values({"type": "string", "enum": ["a", "b", 3]}) == "a, b, 3"
    assert schema_values({"type": "number", "minimum": 0, "maximum": 100}) == "≥ 0, ≤ 100"
    assert schema_values({"type": "number", "exclusiveMinimum": 0.5}) == "> 0.5"
    assert schema_values({"type": "string"}) == ""


def test_api_page_lists_every_operation(client: TestClient) -> None:
    openapi = client.get("/api").json()
    main = _main(client.get("/api", headers=PAGE).text)
    listed = re.findall(r"<td><code>([A-Z]+)</code></td>\s*<td><code>(?:<a href=\"[^\"]+\">)?([^<]+)", main)
    expected = [(m.upper(), path) for path, item in openapi["paths"].items() for m in item
                if m in ("get", "post", "put", "patch", "delete")]
    assert listed == expected
    assert 'href="http://testserver/api.html">Try it (Swagger UI)</a>' in main
    assert '<a href="http://testserver/collections">/collections</a>' in main


@pytest.mark.parametrize(("path", "wording"), [
    ("/", ["<strong>1</strong> collection</li>", "<strong>1</strong> item</li>"]),
    ("/collections", ["1 collection."]),
])
def test_one_of_a_kind_is_counted_in_the_singular(hostile: TestClient, path: str, wording: list[str]) -> None:
    page = hostile.get(path, headers=PAGE).text
    for words in wording:
        assert words in page
    assert not re.search(r"\b1</strong> (collections|items)\b|\b1 (collections|items|children)\b", page)


def test_many_are_counted_in_the_plural(client: TestClient) -> None:
    page = client.get("/", headers=PAGE).text
    assert re.search(r"<strong>[\d,]+</strong> collections</li>", page)
    assert re.search(r"<strong>[\d,]+</strong> items</li>", page)
    assert "properties a search" in client.get("/queryables", headers=PAGE).text


def test_a_catalog_of_one_item_says_so(catalog_dir: CatalogDir, make_client: Callable[..., TestClient]) -> None:
    catalog_dir.write("catalog.json", catalog("one", links=[link("child", "./c/collection.json"), link("item", "./i.json")]))
    catalog_dir.write("c/collection.json", collection("c"))
    catalog_dir.write("i.json", item("lonely"))
    index, _ = load_catalogs([str(catalog_dir.path("catalog.json"))])
    page = make_client(index=index).get("/", headers=PAGE).text
    assert "1 item." in page and "lonely" in page
    assert "1 items" not in page


def test_an_h3_cell_across_the_antimeridian_or_round_a_pole_has_its_own_box(tmp_path: Path) -> None:
    """The aggregate page gives each grid cell the box it covers: an H3 cell crossing 180°
    showed one around the whole globe (min and max of its vertices' longitudes, -175.8 and
    175.5) and a cell near a pole left out the part of it its geodesic edges bulge into. Now
    STAC's rule: west > east across the antimeridian, every longitude round a pole. Each box
    must hold the centres of the items counted in its cell and be no wider than the cell."""
    places = {"fiji": (179.9, -17.0), "samoa": (-179.95, -16.9), "alps": (11.0, 47.5), "south": (10.0, -89.9),
              "north": (-45.0, 89.95)}
    cat = CatalogDir(tmp_path / "cat")
    cat.write("catalog.json", catalog("root", links=[link("child", "./c/collection.json")]))
    cat.write("c/collection.json", collection("c", links=[link("item", f"./{k}.json") for k in places]))
    for k, (x, y) in places.items():
        cat.write(f"c/{k}.json", item(k, bbox=(x - 0.01, y - 0.01, x + 0.01, y + 0.01), collection="c"))
    with run_server([str(cat.path("catalog.json"))]) as base:
        for precision in (0, 1, 2, 4):
            params = {"aggregations": "centroid_geohex_grid_frequency",
                      "centroid_geohex_grid_frequency_precision": str(precision)}
            answer = httpx.get(f"{base}/aggregate", params=params).json()
            keys = [b["key"] for b in answer["aggregations"][0]["buckets"]]
            page = httpx.get(f"{base}/aggregate", params={**params, "f": "html"}).text
            rows = re.findall(r"<tr>\s*<td><code>([0-9a-f]+)</code></td>.*?<td class=\"cell\">([^<]*)</td>", page, re.S)
            assert [key for key, _ in rows] == keys, page
            for key, cell in rows:
                west, south, east, north = (float(v) for v in cell.split(", "))
                width = east - west if west <= east else east + 360 - west
                members = [(x, y) for x, y in places.values()
                           if h3.int_to_str(h3.latlng_to_cell(y, x, precision)) == key]
                assert members, key
                round_a_pole = (west, east) == (-180, 180) and (north == 90 or south == -90)
                assert round_a_pole or width < 180, (precision, key, cell)  # (a cell beside a pole: ~180°)
                for x, y in members:
                    assert south <= y <= north, (precision, key, cell, y)
                    assert (west <= x <= east) if west <= east else (x >= west or x <= east), (precision, key, cell, x)


def test_a_distribution_of_thousands_of_buckets_shows_the_first_thousand(client: TestClient) -> None:
    """datetime_frequency by day over the sample (2006-2023) is ~6,500 buckets; by hour over the
    100k benchmark, 61,368: an HTML page of 8.7 MB built in 4.7 s, a table no person reads. The
    page shows the first PAGE_BUCKETS, says how many there are, and the JSON has them all."""
    from server.api.pages import PAGE_BUCKETS

    query = {"aggregations": "datetime_frequency,total_count", "datetime_frequency_interval": "day"}
    buckets = client.get("/aggregate", params=query).json()["aggregations"][0]["buckets"]
    assert len(buckets) > 2 * PAGE_BUCKETS
    page = client.get("/aggregate", params=query, headers=PAGE).text
    table = page[page.index('id="datetime_frequency"'):]
    assert table.count("<tr") == PAGE_BUCKETS + 1  # and its heading
    assert f"{PAGE_BUCKETS:,} of {len(buckets):,} buckets shown" in table
    assert f"{sum(b['frequency'] for b in buckets):,} counted" in table
    # fewer: all of them, as before
    query["datetime_frequency_interval"] = "year"
    years = client.get("/aggregate", params=query).json()["aggregations"][0]["buckets"]
    table = client.get("/aggregate", params=query, headers=PAGE).text
    assert table[table.index('id="datetime_frequency"'):].count("<tr") == len(years) + 1


def test_protocol_relative_links_in_descriptions_take_the_documents_scheme() -> None:
    """`//host/...` in a description: another host's address, kept like an absolute link, with
    the scheme of the remote document it was written in, else the page's (left to the
    browser); never another scheme (an s3:// document's). Decided in session 15 (session 14's
    QA found them kept as written whatever the document)."""
    from server.api.pages import markdown, resolve_description_href

    remote = ("https://example.com/stac/catalog.json", None)
    served = ("http://api.test/_assets/0/catalog.json", "http://api.test/_assets/0/")
    assert resolve_description_href("//cdn.test/a.png", remote) == "https://cdn.test/a.png"
    assert resolve_description_href("//cdn.test/a.png", served) == "http://cdn.test/a.png"  # not refused as out of the root
    assert resolve_description_href("//cdn.test/a.png", None) == "//cdn.test/a.png"
    assert resolve_description_href("//cdn.test/a.png", ("s3://bucket/catalog.json", None)) == "//cdn.test/a.png"
    assert resolve_description_href("http://x.test/", remote) == "http://x.test/"  # absolute: as written
    html = markdown("[docs](//docs.test/x) ![pic](//cdn.test/p.png)", remote)
    assert 'href="https://docs.test/x"' in html and 'src="https://cdn.test/p.png"' in html
    for hostile in ("[a](//javascript:alert(1))", "[a](///etc/passwd)", "![a](//%0ajavascript:alert(1))", "[a](//)"):
        rendered = markdown(hostile, remote)
        hrefs = re.findall(r'(?:href|src)="([^"]*)"', rendered)
        assert hrefs and all(h.startswith("https://") for h in hrefs), rendered


def test_a_collection_of_members_of_other_shapes_has_its_pages(tmp_path: Path) -> None:
    """qa19: the loader takes a collection with any members beside its id, and serves them as
    written; its page laid them out as STAC's shapes: "providers": 5, an extent "x", an
    "interval": 5, summaries or item_assets that are no object were each a 500 on the
    collection's page and on every /collections page listing it; an item's asset with
    "roles": 5 on the item's page. Each page now shows such a value as text where it would be."""
    cat = CatalogDir(tmp_path / "cat")
    cat.write("catalog.json", catalog("root", links=[link("child", f"./{c}/collection.json") for c in ("odd", "lists", "null")]))
    cat.write("odd/collection.json", collection(
        "odd", links=[link("item", "./i.json")], keywords="one keyword", providers=5, summaries=[1, 2], item_assets=7,
        license={"a": "b"},
        extent={"spatial": {"bbox": "x"}, "temporal": {"interval": 5}}))
    cat.write("odd/i.json", item("i", collection="odd", assets={"a": {"href": "https://e.example/a.tif", "roles": 5},
                                                               "b": {"href": "https://e.example/b.png", "roles": "thumbnail"},
                                                               "c": 3}))
    cat.write("lists/collection.json", collection(
        "lists", providers=[{"name": "P", "roles": "producer"}, "just a name"], item_assets={"x": {"roles": 2}, "y": 3},
        extent=["not", "an", "object"]))
    cat.write("null/collection.json", collection("null", extent={"spatial": 5, "temporal": None}))
    with run_server([str(cat.path("catalog.json"))]) as base, httpx.Client(base_url=base, timeout=10.0) as http:
        for path in ("/collections", "/collections/odd", "/collections/lists", "/collections/null", "/children",
                     "/collections/odd/items/i", "/collections?q=odd"):
            page = http.get(path, headers=PAGE)
            assert page.status_code == 200, (path, page.text[-1500:])
        odd = http.get("/collections/odd", headers=PAGE).text
        assert "<tr><th>Time</th><td>5 – ..<br></td></tr>" in odd and "<tr><th>Bbox</th><td>x<br></td></tr>" in odd
        assert '<span class="tag"><bdi>one keyword</bdi></span>' in odd and "<bdi>5</bdi>" in odd  # keywords, provider
        assert "<tr><th></th><td>[1,2]</td></tr>" in odd and "<tr><td></td><td>7</td>" in odd  # summaries, item_assets
        assert "<tr><th>License</th><td>{&#34;a&#34;:&#34;b&#34;}</td></tr>" in odd  # as JSON, not Python's {'a': 'b'}
        lists = http.get("/collections/lists", headers=PAGE).text
        assert "(<bdi>producer</bdi>)" in lists and "<bdi>just a name</bdi>" in lists
        assert '<tr><th>Bbox</th><td>[&#34;not&#34;,&#34;an&#34;,&#34;object&#34;]<br></td></tr>' in lists
        item_page = http.get("/collections/odd/items/i", headers=PAGE).text
        assert '<figure class="thumb"><img src="https://e.example/b.png"' in item_page  # "roles": "thumbnail"
        assert "<td></td><td>5</td>" in item_page  # roles 5, as text
        assert http.get("/collections/odd").json()["providers"] == 5  # the JSON as written


def test_every_forms_placeholder_is_a_value_the_api_takes() -> None:
    # qa16, found by typing the search page's own example into its Datetime box in Chromium:
    # "2023-01-01/2023-12-31" (and the collections form's "2020-01-01/..") came back as a 400,
    # "not an RFC 3339 date-time". A placeholder is the example a person copies: each one,
    # submitted alone to its form's action on the real server, must be a search the API answers.
    forms = re.compile(r'<form class="search[^"]*" method="get" action="([^"]+)">(.*?)</form>', re.S)
    fields = re.compile(r'<input name="([^"]+)"[^>]*placeholder="([^"]+)"')
    with run_server() as base, httpx.Client(base_url=base, timeout=10.0) as http:
        tried = []
        for path in ("/search", "/collections/sentinel-2-l2a-nl/items", "/collections"):
            page = http.get(path, headers=PAGE)
            assert page.status_code == 200, (path, page.text[:300])
            for action, form in forms.findall(page.text):
                for name, example in fields.findall(form):
                    if name in ("bbox", "collections"):  # "west,south,east,north", "id,id": the syntax, named
                        continue
                    example = example.replace("&lt;", "<").replace("&amp;", "&")
                    answer = http.get(action, params={name: example})
                    tried.append((path, name))
                    assert answer.status_code == 200, (path, name, example, answer.text[:300])
        expected = {("/search", "datetime"), ("/collections", "datetime"), ("/search", "filter"), ("/search", "sortby")}
        assert expected <= set(tried), tried


# -- bidi controls (qa16: an id with U+202E RIGHT-TO-LEFT OVERRIDE displayed reversed) ---------------

RLO, RLM, PDF = "\u202e", "\u200f", "\u202c"
EXPLICIT = re.compile("[\u202a-\u202e\u2066-\u2069]")
ALWAYS_SHOWN = re.compile("[\u202d\u202e]")  # the overrides: never obeyed
RLE = "\u202b"
LRI, RLI, FSI, PDI = "\u2066", "\u2067", "\u2068", "\u2069"
SPOOF_ID = f"evil{RLO}gnp.exe"  # shown as "evilexe.png"


def _closed_embeddings(text: str) -> bool:
    """Every embedding (LRE, RLE) and isolate (LRI, RLI, FSI) in ``text`` closed, in order, by
    its own PDF or PDI within its line, and no closer closing nothing or the other kind."""
    expected: list[str] = []
    for c in re.findall("[\u202a-\u202c\u2066-\u2069\n]", text):
        if c in "\u202a\u202b":
            expected.append(PDF)
        elif c in LRI + RLI + FSI:
            expected.append(PDI)
        elif c == "\n":
            if expected:
                return False
        elif not expected or expected.pop() != c:
            return False
    return not expected


RTL_TITLE = f"خريطة الغطاء الأرضي{RLM}"  # Arabic with a mark, as RTL text uses them: kept


@pytest.fixture
def spoofing(catalog_dir: CatalogDir, make_client: Callable[..., TestClient]) -> TestClient:
    """Every kind of catalog text a page shows holds an explicit bidi control (an override,
    an embedding, an isolate); one id a mark."""
    def odd(text: str) -> str:
        return f"{text}{RLO}x\u202by\u2067z{PDF}"

    catalog_dir.write("catalog.json", catalog("root", [link("child", "./sub/catalog.json")], title=odd("root")))
    catalog_dir.write("sub/catalog.json", catalog("sub", [link("child", "./c/collection.json")], title=odd("sub")))
    catalog_dir.write("sub/c/collection.json", collection(
        f"lane{RLO}", title=odd("collection"), description=odd("about") + f" `{odd('code')}` [{odd('l')}](https://e.example/)",
        keywords=[odd("kw")], license=odd("lic"), providers=[{"name": odd("prov"), "roles": [odd("role")]}],
        summaries={odd("sum"): [odd("v")]}, links=[{"rel": "item", "href": "./i.json"}, {"rel": "item", "href": "./m.json"},
                                                   {"rel": odd("rel"), "href": "https://e.example/", "title": odd("lt")}]))
    catalog_dir.write("sub/c/i.json", item(SPOOF_ID, collection=f"lane{RLO}", properties={odd("k"): odd("v")},
                                       assets={odd("a"): {"href": "https://e.example/a.tif", "title": odd("at")}}))
    catalog_dir.write("sub/c/m.json", item(f"ma{RLM}rk", collection=f"lane{RLO}", properties={"title": RTL_TITLE}))
    index, _ = load_catalogs([str(catalog_dir.path("catalog.json"))])
    return make_client(index=index)


def test_bidi_controls_in_catalog_text_are_shown_on_pages_not_obeyed(spoofing: TestClient) -> None:
    """No page holds an override of the catalog's as such: each is shown as its escape (ids
    inside a <bdi>, marks too); an embedding or isolate closed in order within its text is
    kept (qa18, qa19: right-to-left titles use them), never one left open (here: RLE, RLI, then
    a PDF, all shown); the JSON keeps them; a right-to-left title's mark stays (its text, isolated)."""
    from urllib.parse import quote

    lane, spoof, mark = (quote(v, safe="") for v in (f"lane{RLO}", SPOOF_ID, f"ma{RLM}rk"))
    paths = ["/", "/collections", f"/collections/{lane}", f"/collections/{lane}/items", f"/collections/{lane}/items/{spoof}",
             f"/collections/{lane}/items/{mark}", "/search", "/children", "/catalogs/sub", "/catalogs/sub/children",
             f"/collections/{lane}/queryables", "/queryables", f"/collections/{lane}/aggregate", "/collections?q=about"]
    shown = '<span class="control" title="U+202E RIGHT-TO-LEFT OVERRIDE">\\u202E</span>'
    with spoofing:
        for path in paths:
            page = spoofing.get(path, headers=PAGE)
            assert page.status_code == 200, path
            html = page.text
            raw = [html[max(0, m.start() - 80):m.end()] for m in ALWAYS_SHOWN.finditer(html)]
            assert not raw, (path, raw[:3])
            # each text (an attribute, a text between tags; a shown control's box is in the text)
            runs = re.split('[<>"]', re.sub('<span class="control"[^>]*>[^<]*</span>', "", html))
            assert [run for run in runs if not _closed_embeddings(run)] == [], path
        item_page = spoofing.get(f"/collections/{lane}/items/{spoof}", headers=PAGE).text
        assert f'<p class="id"><bdi>evil{shown}gnp.exe</bdi></p>' in item_page
        assert f"<h1><bdi>evil{shown}gnp.exe</bdi></h1>" in item_page  # no title: the id
        assert f"<bdi>lane{shown}</bdi></a> ›" in item_page  # the crumbs' collection
        assert "<title>evil\\u202Egnp.exe ·" in item_page  # no markup in a title: the escape as text
        marked = spoofing.get(f"/collections/{lane}/items/{mark}", headers=PAGE).text
        assert f"<h1><bdi>{RTL_TITLE}</bdi></h1>" in marked  # a title's mark: as written, isolated
        assert '<p class="id"><bdi>ma<span class="control" title="U+200F RIGHT-TO-LEFT MARK">\\u200F</span>rk</bdi></p>' in marked
        items = spoofing.get(f"/collections/{lane}/items", headers=PAGE).text
        assert f">Items of <bdi>lane{shown}</bdi></h1>" in items
        data = items.split('<script type="application/json" id="map-data">', 1)[1].split("</script>", 1)[0]
        assert "evil\\\\u202Egnp.exe" in data  # the map's tooltip: the escape as text (tojson escapes its backslash)
        # the JSON is the catalog's
        assert spoofing.get(f"/collections/{lane}/items/{spoof}").json()["id"] == SPOOF_ID
        assert spoofing.get(f"/collections/{lane}").json()["title"] == f"collection{RLO}x\u202by\u2067z{PDF}"


RLE_TITLE = f"{RLE}خريطة الغطاء الأرضي 2024{PDF}"  # Arabic written with RLE ... PDF


@pytest.fixture
def right_to_left(catalog_dir: CatalogDir, make_client: Callable[..., TestClient]) -> TestClient:
    """Two roots: one titled in Arabic with RLE ... PDF, one with an override; an item titled
    with an embedding left open."""
    catalog_dir.write("a/collection.json", collection("a", title=RLE_TITLE, links=[{"rel": "item", "href": "./i.json"}]))
    catalog_dir.write("a/i.json", item("i", collection="a", properties={"title": f"{RLE}مفتوح"}))
    catalog_dir.write("b/collection.json", collection("b", title=f"Lane {RLO}sdrawkcab"))
    index, _ = load_catalogs([str(catalog_dir.path("a/collection.json")), str(catalog_dir.path("b/collection.json"))])
    return make_client(index=index)


def test_right_to_left_titles_with_closed_embeddings_read_as_written(right_to_left: TestClient) -> None:
    """qa17: an Arabic title written with RLE ... PDF showed "\\u202B" and "\\u202C" boxes in
    its heading and the page's <title>; now it reads as written (the embedding ends at its PDF),
    while an override is still shown and an embedding never closed too."""
    shown_rlo = '<span class="control" title="U+202E RIGHT-TO-LEFT OVERRIDE">\\u202E</span>'
    with right_to_left:
        page = right_to_left.get("/collections/a", headers=PAGE).text
        assert f"<h1><bdi>{RLE_TITLE}</bdi></h1>" in page
        assert f"<title>{RLE_TITLE} ·" in page
        assert f"<h1><bdi>Lane {shown_rlo}sdrawkcab</bdi></h1>" in right_to_left.get("/collections/b", headers=PAGE).text
        opened = right_to_left.get("/collections/a/items/i", headers=PAGE).text
        assert '<h1><bdi><span class="control" title="U+202B RIGHT-TO-LEFT EMBEDDING">\\u202B</span>مفتوح</bdi></h1>' in opened
        assert "<title>\\u202Bمفتوح ·" in opened


ISOLATED_TITLE = f"Map {RLI}خريطة الغطاء 2024{PDI} v2"  # an Arabic name isolated in an English title


@pytest.fixture
def isolates(catalog_dir: CatalogDir, make_client: Callable[..., TestClient]) -> TestClient:
    """A collection titled and described with isolates closed by their PDIs; items titled with
    isolates that do not close so."""
    titles = {"open": f"{LRI}open", "stray": f"x{PDI}y", "crossed": f"{RLI}a{PDF}b{PDI}",
              "nested": f"{RLE}a{FSI}b{PDI}c{PDF}", "deep": LRI * 61 + "d" + PDI * 61, "lines": f"{RLI}a\nb{PDI}"}
    catalog_dir.write("collection.json", collection(
        "iso", title=ISOLATED_TITLE, description=f"About {LRI}Sentinel-2{PDI} and {FSI}עברית{PDI}.",
        links=[{"rel": "item", "href": f"./{name}.json"} for name in titles]))
    for name, title in titles.items():
        catalog_dir.write(f"{name}.json", item(name, collection="iso", properties={"title": title}))
    index, _ = load_catalogs([str(catalog_dir.path("collection.json"))])
    return make_client(index=index)


def test_isolates_closed_in_order_read_as_written(isolates: TestClient) -> None:
    """qa18 left: an isolate (RLI ... PDI, what Unicode recommends for a name of the other
    direction inside a text) showed "\\u2067" and "\\u2069" boxes even when closed. Closed in
    order within its line it is obeyed, as a closed embedding is; left open, a stray PDI, a PDF
    or PDI closing the other kind, nesting past 60 or a line break inside: every control shown."""
    def boxed(code: str, name: str) -> str:
        return f'<span class="control" title="U+{code} {name}">\\u{code}</span>'

    lri, pdi = boxed("2066", "LEFT-TO-RIGHT ISOLATE"), boxed("2069", "POP DIRECTIONAL ISOLATE")
    rli, pdf = boxed("2067", "RIGHT-TO-LEFT ISOLATE"), boxed("202C", "POP DIRECTIONAL FORMATTING")
    with isolates:
        page = isolates.get("/collections/iso", headers=PAGE).text
        assert f"<h1><bdi>{ISOLATED_TITLE}</bdi></h1>" in page
        assert f"<title>{ISOLATED_TITLE} ·" in page
        assert f"About {LRI}Sentinel-2{PDI} and {FSI}עברית{PDI}." in page  # the description's too
        shown = {"open": f"{lri}open", "stray": f"x{pdi}y", "crossed": f"{rli}a{pdf}b{pdi}", "deep": lri * 61 + "d" + pdi * 61}
        for name, heading in shown.items():
            item_page = isolates.get(f"/collections/iso/items/{name}", headers=PAGE).text
            assert f"<h1><bdi>{heading}</bdi></h1>" in item_page, (name, item_page[item_page.find("<h1>"):][:300])
        nested = isolates.get("/collections/iso/items/nested", headers=PAGE).text
        assert f"<h1><bdi>{RLE}a{FSI}b{PDI}c{PDF}</bdi></h1>" in nested
        lines = isolates.get("/collections/iso/items/lines", headers=PAGE).text
        assert f"<h1><bdi>{rli}a\nb{pdi}</bdi></h1>" in lines
        items = isolates.get("/collections/iso/items", headers=PAGE).text
        runs = re.split('[<>"]', re.sub('<span class="control"[^>]*>[^<]*</span>', "", items))
        assert [run for run in runs if not _closed_embeddings(run)] == []
        assert isolates.get("/collections/iso").json()["title"] == ISOLATED_TITLE  # the JSON as written


def test_the_landing_page_isolates_each_root_title(right_to_left: TestClient) -> None:
    """qa17: "serves 2 roots: A, B" and the heading "A and B" were one text, so a right-to-left
    title took its neighbours' commas and words into its direction; each is a <bdi> now."""
    shown_rlo = '<span class="control" title="U+202E RIGHT-TO-LEFT OVERRIDE">\\u202E</span>'
    with right_to_left:
        page = right_to_left.get("/", headers=PAGE).text
    both = f"<bdi>{RLE_TITLE}</bdi> and <bdi>Lane {shown_rlo}sdrawkcab</bdi>"
    assert f"<h1>{both}</h1>" in page
    assert f'class="brand" href="http://testserver/">{both}</a>' in page
    assert f"This API serves 2 roots: <bdi>{RLE_TITLE}</bdi>, <bdi>Lane {shown_rlo}sdrawkcab</bdi>." in page
    assert f"<title>Home · {RLE_TITLE} and Lane \\u202Esdrawkcab</title>" in page


@pytest.mark.parametrize("path", ["/search", "/collections/a/items", "/collections", "/search?bbox=1,2"])
def test_a_typed_value_comes_back_in_its_field_as_typed(right_to_left: TestClient, path: str) -> None:
    """qa17: a q (or filter) holding U+202E came back in its form field as the six characters
    "\\u202E", so submitting the form again searched for those. A field's value is now the
    parameter as sent, escaped for HTML only; the page shows no other copy of it raw."""
    from urllib.parse import urlencode

    typed = {"q": f"a{RLO}b", "filter": f"title = 'x{RLO}y\"<'", "datetime": f"2020{RLO}"}
    if path == "/collections":
        typed = {"q": typed["q"], "datetime": typed["datetime"]}
    sep = "&" if "?" in path else "?"
    with right_to_left:
        page = right_to_left.get(path + sep + urlencode(typed), headers=PAGE)
    html = page.text
    for name, value in typed.items():
        escaped = value.replace("&", "&amp;").replace('"', "&#34;").replace("'", "&#39;").replace("<", "&lt;")
        assert f'name="{name}"' in html and f'value="{escaped}"' in html, (path, name, html[html.find(f'name="{name}"'):][:200])
    assert html.count(RLO) == len(typed), path  # the fields' own, and none elsewhere
