"""A corpus of hostile catalogs: each loads what is loadable, skips the rest with a reason,
and the server keeps answering."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.catalog.loader import LoadError, LoadOptions, load_catalogs
from server.runtime.app import create_app
from server.settings import Settings
from tests.conftest import TestClient
from tests.helpers import http_server, in_thread, run_server


def collection_doc(cid: str, links: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "type": "Collection", "id": cid, "stac_version": "1.0.0", "description": cid, "license": "CC0-1.0",
        "links": links, "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
    }


def item_doc(iid: str, geometry: Any = None, **props: Any) -> dict[str, Any]:
    item = {"type": "Feature", "stac_version": "1.0.0", "id": iid, "geometry": geometry, "links": [], "assets": {},
            "properties": {"datetime": "2021-06-01T00:00:00Z", **props}}
    if geometry is not None:
        item["bbox"] = [-1, -1, 1, 1]
    return item


def square(x: float = 0, y: float = 0, size: float = 1) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [[[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]]}


def write(path: Path, doc: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc))


def serve_and_probe(roots: list[str]) -> None:
    """The server answers searches over whatever loaded, without a 500."""
    index, _ = load_catalogs(roots)
    with TestClient(create_app(Settings(), index=index)) as client:
        for params in ({}, {"bbox": "-10,-10,10,10"}, {"datetime": "2000-01-01T00:00:00Z/.."},
                       {"filter": "id LIKE '%a%'"}, {"intersects": json.dumps(square(-5, -5, 10))}):
            response = client.get("/search", params=params)
            assert response.status_code == 200, (params, response.text)
        for params in ({}, {"aggregations": "datetime_frequency", "datetime_frequency_interval": "year"}):
            response = client.get("/aggregate", params=params)
            assert response.status_code == 200, (params, response.text)


def test_cycles_and_self_loops_terminate(tmp_path: Path) -> None:
    write(tmp_path / "catalog.json", {"type": "Catalog", "id": "root", "stac_version": "1.0.0", "description": "r",
                                      "links": [{"rel": "child", "href": "./a/catalog.json"},
                                                {"rel": "child", "href": "./catalog.json"}]})
    write(tmp_path / "a" / "catalog.json", {"type": "Catalog", "id": "a", "stac_version": "1.0.0", "description": "a",
                                            "links": [{"rel": "child", "href": "../catalog.json"},
                                                      {"rel": "item", "href": "./i.json"},
                                                      {"rel": "item", "href": "./i.json"}]})
    write(tmp_path / "a" / "i.json", item_doc("i", square()))
    index, _ = load_catalogs([str(tmp_path / "catalog.json")])
    assert index.size == 1
    serve_and_probe([str(tmp_path / "catalog.json")])


def test_nesting_deeper_than_the_limit_is_cut_with_a_reason(tmp_path: Path) -> None:
    depth = 200
    for level in range(depth):
        folder = tmp_path.joinpath(*["d"] * level)
        links = [{"rel": "child", "href": "./d/catalog.json"}] if level < depth - 1 else []
        links.append({"rel": "item", "href": "./item.json"})
        write(folder / "catalog.json", {"type": "Catalog", "id": f"c{level}", "stac_version": "1.0.0",
                                        "description": "deep", "links": links})
        write(folder / "item.json", item_doc(f"item-{level}", square()))
    index, report = load_catalogs([str(tmp_path / "catalog.json")], LoadOptions(max_depth=20))
    assert 15 <= index.size <= 25
    assert any("deeper than 20" in why for _, why in report.skips)


def test_bad_documents_are_skipped_each_with_a_reason(tmp_path: Path) -> None:
    bad: dict[str, Any] = {
        "utf8.json": b'{"type": "Feature", "id": "\xff\xfe"}',
        "nan.json": '{"type": "Feature", "id": "nan", "geometry": null, "properties": {"x": NaN}}',
        "inf.json": '{"type": "Feature", "id": "inf", "geometry": null, "properties": {"x": Infinity}}',
        "no-id.json": {k: v for k, v in item_doc("x").items() if k != "id"},
        "no-geometry.json": {k: v for k, v in item_doc("x").items() if k != "geometry"},
        "no-properties.json": {k: v for k, v in item_doc("x").items() if k != "properties"},
        "naive-time-ok.json": item_doc("naive", square(), datetime="2021-06-01T00:00:00"),
        "year-10000.json": item_doc("far", square(), datetime="10000-01-01T00:00:00Z"),
        "year-0-in-utc.json": item_doc("year0", square(), datetime="0001-01-01T00:00:00+01:00"),
        "leap-second-ending-9999.json": item_doc("leap9999", square(), end_datetime="9999-12-31T23:59:60Z"),
        "bad-geometry.json": item_doc("badgeom", {"type": "Polygon", "coordinates": [[1, 2]]}),
        "bowtie.json": item_doc("bowtie", {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}),
        "empty.json": item_doc("empty", {"type": "Polygon", "coordinates": []}),
        "out-of-range.json": item_doc("wild", square(500, 100)),
        "not-json.json": "{{{",
        "array.json": "[1, 2, 3]",
        "huge.json": item_doc("huge", square(), blob="z" * 300_000),
        "passwd": "root:x:0:0",
    }
    links = [{"rel": "item", "href": f"./{name}"} for name in bad]
    links += [
        {"rel": "item", "href": "file:///etc/passwd"},
        {"rel": "item", "href": "http://169.254.169.254/latest/meta-data/"},
        {"rel": "item", "href": "https://elsewhere.example.com/item.json"},
        {"rel": "item", "href": "../../../../etc/passwd"},
    ]
    for name, doc in bad.items():
        path = tmp_path / name
        path.write_bytes(doc) if isinstance(doc, bytes) else write(path, doc)
    write(tmp_path / "collection.json", collection_doc("hostile", links))
    index, report = load_catalogs([str(tmp_path / "collection.json")], LoadOptions(max_document_bytes=100_000))
    loaded = set(index.ids)
    assert loaded == {"naive", "bowtie", "empty", "wild"}
    reasons = dict(report.skips)
    for name in ("utf8.json", "nan.json", "inf.json", "not-json.json", "array.json", "huge.json", "passwd",
                 "no-id.json", "no-geometry.json", "no-properties.json", "year-10000.json", "bad-geometry.json",
                 "year-0-in-utc.json", "leap-second-ending-9999.json"):
        assert str(tmp_path / name) in reasons, name
    assert "outside the catalog root" in reasons["/etc/passwd"]
    assert "not allowed" in reasons["http://169.254.169.254/latest/meta-data/"]
    assert "not allowed" in reasons["https://elsewhere.example.com/item.json"]
    serve_and_probe([str(tmp_path / "collection.json")])


def test_a_time_beyond_the_years_1_to_9999_in_utc_is_a_skipped_item(tmp_path: Path) -> None:
    """qa19: "0001-01-01T00:00:00+01:00" (the last hour of year 0 in UTC) and a leap second
    ending 9999 were read as instants that could not be written back: in an item of a plain
    catalog, the collection made for it (its extent) stopped the whole load with an
    OverflowError (the server never started); in a collection, /aggregate answered 500. Each is
    now an invalid item, skipped with its reason; the rest is served, /aggregate too."""
    write(tmp_path / "catalog.json", {"type": "Catalog", "id": "root", "stac_version": "1.0.0", "description": "r",
                                      "links": [{"rel": "item", "href": "./year0.json"},
                                                {"rel": "item", "href": "./fine.json"},
                                                {"rel": "child", "href": "./c/collection.json"}]})
    write(tmp_path / "year0.json", item_doc("year0", square(), datetime="0001-01-01T00:30:00+01:00"))
    write(tmp_path / "fine.json", item_doc("fine", square()))
    write(tmp_path / "c" / "collection.json", collection_doc("c", [{"rel": "item", "href": "./leap.json"},
                                                                   {"rel": "item", "href": "./late.json"}]))
    write(tmp_path / "c" / "leap.json", item_doc("leap", square(), datetime="9999-12-31T23:59:60Z"))
    write(tmp_path / "c" / "late.json", item_doc("late", square(), datetime="9999-12-31T23:59:59-01:00"))
    with run_server([str(tmp_path / "catalog.json")]) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert client.get("/search").json()["numberMatched"] == 1
        skipped = client.get("/_mgmt/ready").json()["load"]["skipped_by_reason"]
        assert skipped.get("invalid_item") == 3, skipped
        for params in ({}, {"aggregations": "datetime_min,datetime_max"},
                       {"aggregations": "datetime_frequency", "datetime_frequency_interval": "week"}):
            answer = client.get("/aggregate", params=params)
            assert answer.status_code == 200, (params, answer.text)


def test_links_that_are_no_array_are_no_links(tmp_path: Path) -> None:
    """qa19: a collection or catalog whose "links" is a number or true (not iterable) was a
    TypeError that stopped the whole load: the server never started. Such links are none, as
    for an item (whose "links" were already so read); what the rest links is served."""
    write(tmp_path / "catalog.json", {"type": "Catalog", "id": "root", "stac_version": "1.0.0", "description": "r",
                                      "links": [{"rel": "child", "href": "./c/collection.json"},
                                                {"rel": "child", "href": "./s/catalog.json"},
                                                {"rel": "item", "href": "./i.json"}, 5, None]})
    write(tmp_path / "c" / "collection.json", {**collection_doc("c", []), "links": 5})
    write(tmp_path / "s" / "catalog.json", {"type": "Catalog", "id": "s", "stac_version": "1.0.0", "description": "s",
                                            "links": True})
    write(tmp_path / "i.json", {**item_doc("i", square()), "links": 7})
    with run_server([str(tmp_path / "catalog.json")]) as base, httpx.Client(base_url=base, timeout=30) as client:
        assert sorted(c["id"] for c in client.get("/collections").json()["collections"]) == ["c", "root"]
        assert client.get("/catalogs/s").status_code == 200
        assert client.get("/collections/root/items/i").json()["id"] == "i"
        assert client.get("/collections/c").json()["links"]  # the API's own


def test_five_thousand_collections(tmp_path: Path) -> None:
    links = []
    for i in range(5000):
        write(tmp_path / f"c{i}" / "collection.json", collection_doc(f"c{i}", []))
        links.append({"rel": "child", "href": f"./c{i}/collection.json"})
    write(tmp_path / "catalog.json", {"type": "Catalog", "id": "many", "stac_version": "1.0.0",
                                      "description": "many", "links": links})
    index, _ = load_catalogs([str(tmp_path / "catalog.json")])
    assert len(index.collections) == 5000
    with TestClient(create_app(Settings(), index=index)) as client:
        page = client.get("/collections", params={"limit": 100}).json()
        assert page["numberMatched"] == 5000 and len(page["collections"]) == 100
        assert client.get("/collections", params={"q": "c4999"}).json()["numberMatched"] == 1


def test_a_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write(outside / "secret.json", item_doc("secret", square()))
    root = tmp_path / "root"
    write(root / "collection.json", collection_doc("c", [{"rel": "item", "href": "./link.json"},
                                                         {"rel": "item", "href": "./dir/secret.json"}]))
    os.symlink(outside / "secret.json", root / "link.json")
    os.symlink(outside, root / "dir")
    index, report = load_catalogs([str(root / "collection.json")])
    assert index.size == 0
    assert all("symlink" in why for _, why in report.skips)


def test_nothing_loadable_is_an_error(tmp_path: Path) -> None:
    write(tmp_path / "catalog.json", "garbage")
    with pytest.raises(LoadError):
        load_catalogs([str(tmp_path / "catalog.json")])


def test_a_remote_body_that_never_ends_or_trickles_is_cut(tmp_path: Path) -> None:
    """A server that streams forever hits the size limit; one that sends a byte at a time
    hits the overall deadline (3 x fetch timeout). The rest of the catalog loads."""
    import http.server
    import time

    class Hostile(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/catalog.json":
                body = json.dumps(collection_doc("remote", [
                    {"rel": "item", "href": "./endless.json"},
                    {"rel": "item", "href": "./trickle.json"},
                    {"rel": "item", "href": "./fine.json"},
                ])).encode()
            elif self.path == "/fine.json":
                body = json.dumps(item_doc("fine", square())).encode()
            else:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                try:
                    deadline = time.monotonic() + 20
                    while time.monotonic() < deadline:
                        chunk = b"x" * (65536 if self.path == "/endless.json" else 1)
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        self.wfile.flush()
                        if self.path == "/trickle.json":
                            time.sleep(0.2)
                except OSError:
                    pass
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = http_server(Hostile)
    server.daemon_threads = True
    with in_thread(server) as base:
        started = time.monotonic()
        index, report = load_catalogs([f"{base}/catalog.json"],
                                      LoadOptions(max_document_bytes=1_000_000, fetch_timeout=1.0, fetch_retries=0))
        assert time.monotonic() - started < 15
    assert index.ids == ["fine"]
    reasons = dict(report.skips)
    assert "byte limit" in reasons[f"{base}/endless.json"]
    # Cut by the overall deadline, or (when a loaded machine stalls the trickle for over the
    # fetch timeout) by the per-request read timeout: either way within the bound above.
    trickle = reasons[f"{base}/trickle.json"]
    assert "not complete after" in trickle or "too slow" in trickle or "timed out" in trickle.lower(), trickle


def test_a_million_vertex_polygon_is_refused_quickly(tmp_path: Path) -> None:
    """Within the size limit (about 20 MB) but a self-intersecting zig-zag of a million
    vertices: repairing it would take minutes, so the vertex limit refuses it first."""
    import time

    ring = [[i * 1e-6, (i % 2) * 1e-6] for i in range(1_000_000)] + [[0, 0]]
    write(tmp_path / "big.json", item_doc("big", {"type": "Polygon", "coordinates": [ring]}))
    write(tmp_path / "ok.json", item_doc("ok", square()))
    write(tmp_path / "collection.json", collection_doc("c", [{"rel": "item", "href": "./big.json"},
                                                             {"rel": "item", "href": "./ok.json"}]))
    started = time.monotonic()
    index, report = load_catalogs([str(tmp_path / "collection.json")])
    assert time.monotonic() - started < 30
    assert index.ids == ["ok"]
    assert "vertices" in dict(report.skips)[str(tmp_path / "big.json")]
