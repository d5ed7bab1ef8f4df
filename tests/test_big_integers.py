"""Integers beyond 64 bits in a catalog are served exactly (qa16: orjson read them as doubles, so
`"big": 123456789012345678901234567890` was served as 1.2345678901234568e+29, silently).

Through the real server (uvicorn, plain HTTP): an item file, ndjson lines and a collection
holding such integers, at the top of the properties, nested, in assets, negative; each
response read with the standard library's json (exact integers) must hold them. Through the
loader's other paths (the forked reader of item files and bulk files, forked indexing of item
files and of ndjson lines): the stored item bytes hold them. A property holding one is
filtered and sorted on as a double, as every number is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.catalog import forked_reader, loader, parallel
from server.catalog.loader import LoadOptions, load_catalogs
from server.index import Index
from tests.helpers import CatalogDir, catalog, collection, item, link, run_server

BIG = 123456789012345678901234567890
PROPERTIES: dict[str, Any] = {
    "big": BIG,
    "negative": -9223372036854775809,  # one below what orjson holds
    "u64": 18446744073709551615,  # the largest it holds: exact before too
    "nested": {"deep": [2**70, 1]},
    "text": "digits 1234567890123456789012345 in a string",
    "fraction": 0.12345678901234568,  # written with a long fraction (text()): the double it always was
}
LONG_FRACTION = "0.1234567890123456789012"
ASSETS = {"data": {"href": "https://example.com/d.tif", "file:size": 2**65}}
SUMMARY = {"big": {"minimum": 0, "maximum": 2**80}}


def item_with_big(iid: str, cid: str, links: list[dict[str, str]] = ()) -> dict[str, Any]:
    return item(iid, collection=cid, properties=PROPERTIES, assets=ASSETS, links=list(links))


def text(doc: Any) -> str:
    """The document as JSON, its fraction written with more digits than a double holds."""
    return json.dumps(doc).replace(repr(PROPERTIES["fraction"]), LONG_FRACTION)


def write_catalog(folder: CatalogDir, files: int = 1, lines: int = 3, pad: int = 0) -> list[str]:
    """A catalog of ``files`` item files (collection c, summaries holding 2**80) and a bulk
    ndjson file of ``lines`` items (collection d); the roots to load."""
    links = []
    for n in range(files):
        folder.write_text(f"c/i{n}.json", text(item_with_big(f"i{n}", "c", [link("collection", "./collection.json")])))
        links.append(link("item", f"./i{n}.json"))
    folder.write("c/collection.json", collection("c", links, summaries=SUMMARY))
    root = folder.write("catalog.json", catalog("root", [link("child", "./c/collection.json")]))
    docs = [item(f"n{n}", collection="d", properties={"pad": "p" * pad, "n": n}) for n in range(lines)]
    docs[lines // 2] = item_with_big(f"n{lines // 2}", "d")
    docs[lines // 2]["properties"]["pad"] = "p" * pad
    folder.write_text("d/items.ndjson", "\n".join(text(d) for d in docs) + "\n")
    folder.write("d/collection.json", collection("d"))
    return [str(root), str(folder.path("d/collection.json")), str(folder.path("d/items.ndjson"))]


def exact(text: str | bytes) -> Any:
    return json.loads(text)  # the standard library's: integers exact


def assert_exact_item(doc: dict[str, Any]) -> None:
    properties = {k: v for k, v in doc["properties"].items() if k in PROPERTIES}
    assert properties == PROPERTIES, properties
    assert type(properties["big"]) is int and type(properties["nested"]["deep"][0]) is int
    assert doc["assets"]["data"]["file:size"] == 2**65


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    roots = write_catalog(CatalogDir(tmp_path_factory.mktemp("big")))
    with run_server(roots) as url:
        yield url


@pytest.fixture(scope="module")
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as client:
        yield client


@pytest.mark.parametrize(("collection_id", "item_id"), [("c", "i0"), ("d", "n1")])
def test_an_item_is_served_with_its_integers_exact(http: httpx.Client, collection_id: str, item_id: str) -> None:
    response = http.get(f"/collections/{collection_id}/items/{item_id}")
    assert response.status_code == 200, response.text
    assert str(BIG) in response.text and str(2**70) in response.text
    assert_exact_item(exact(response.text))


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_searches_and_fields_serve_them_exactly(http: httpx.Client, method: str) -> None:
    def send(params: dict[str, Any]) -> dict[str, Any]:
        if method == "GET":
            response = http.get("/search", params={k: v if isinstance(v, str) else ",".join(v) for k, v in params.items()})
        else:
            response = http.post("/search", json=params)
        assert response.status_code == 200, response.text
        return exact(response.text)

    found = send({"ids": ["i0", "n1"]})["features"]
    assert sorted(f["id"] for f in found) == ["i0", "n1"]
    for feature in found:
        assert_exact_item(feature)
    fields = {"fields": "properties.big,properties.nested"} if method == "GET" else {
        "fields": {"include": ["properties.big", "properties.nested"]}}
    for feature in send({"ids": ["i0", "n1"], **fields})["features"]:
        assert feature["properties"]["big"] == BIG and feature["properties"]["nested"] == {"deep": [2**70, 1]}


def test_a_collection_is_served_with_its_integers_exact(http: httpx.Client) -> None:
    for url in ("/collections/c", "/collections"):
        response = http.get(url)
        assert response.status_code == 200, response.text
        assert str(2**80) in response.text
    assert exact(http.get("/collections/c").text)["summaries"] == SUMMARY


def test_they_are_filtered_and_sorted_as_doubles(http: httpx.Client) -> None:
    for text in ("big > 1e29", f"big = {BIG}", "negative < -9e18"):
        response = http.get("/search", params={"filter": text})
        assert response.status_code == 200, response.text
        assert sorted(f["id"] for f in response.json()["features"]) == ["i0", "n1"], text
    response = http.get("/search", params={"sortby": "-big", "limit": 2})
    assert sorted(f["id"] for f in exact(response.text)["features"]) == ["i0", "n1"]


def test_the_item_page_shows_them(http: httpx.Client) -> None:
    response = http.get("/collections/c/items/i0", params={"f": "html"})
    assert response.status_code == 200
    assert str(BIG) in response.text


# -- the loader's other paths ----------------------------------------------------------------------


def stored(index: Index, collection_id: str, item_id: str) -> dict[str, Any]:
    from server.index import exact_json  # (here: the HTTP cases above also run, and fail, before it)

    pos = index.find(collection_id, item_id)
    assert pos is not None, (collection_id, item_id)
    assert exact_json.loads(index.json[pos]) == exact(bytes(index.json[pos]))  # what Index.item serves
    return exact(bytes(index.json[pos]))


def check_loaded(index: Index, files: int, lines: int) -> None:
    from server.index import exact_json

    assert index.size == files + lines
    for n in range(files):
        assert_exact_item(stored(index, "c", f"i{n}"))
    assert_exact_item(stored(index, "d", f"n{lines // 2}"))
    assert exact_json.dumps(index.collections["c"]["summaries"]) == json.dumps(SUMMARY, separators=(",", ":")).encode()


def test_read_by_the_forked_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    roots = write_catalog(CatalogDir(tmp_path), files=3, lines=5)
    monkeypatch.setattr(forked_reader, "usable", lambda count: count > 0)
    monkeypatch.setattr(forked_reader, "MIN_BULK_BYTES", 0)
    index, report = load_catalogs(roots, LoadOptions(index_processes=1))
    assert not report.skips, report.skips
    check_loaded(index, 3, 5)


def test_indexed_by_forked_processes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Item files in chunks and ndjson lines in chunks, each indexed by a forked process."""
    files, lines = 40, 400
    roots = write_catalog(CatalogDir(tmp_path), files=files, lines=lines, pad=200)
    monkeypatch.setattr(loader, "FILES_MIN_ITEMS", 8)
    monkeypatch.setattr(loader, "FILES_MIN_CHUNK", 4)
    monkeypatch.setattr(loader, "LINES_MIN_BYTES", 16 << 10)
    monkeypatch.setattr(loader, "LINES_CHUNK_BYTES", 8 << 10)
    monkeypatch.setattr(loader, "LINES_MIN_CHUNK_BYTES", 8 << 10)
    monkeypatch.setattr(parallel, "forkable", lambda: True)  # (a forked child takes no lock of this process)
    monkeypatch.setattr(forked_reader, "usable_bulk", lambda paths: False)
    index, report = load_catalogs(roots, LoadOptions(index_processes=2))
    assert not report.skips, report.skips
    check_loaded(index, files, lines)


@pytest.mark.parametrize("slices", [0, 3])
@pytest.mark.parametrize("extra", [1, 100])
def test_a_run_of_digits_is_found_wherever_it_lies(slices: int, extra: int) -> None:
    """has_long_digits over slices: a run across a slice's edge, at the start, at the end."""
    from server.index import exact_json

    edge = exact_json._SLICE
    size = slices * edge + extra
    for at in sorted({0, max(0, size // 2 - 9), edge - 10, 2 * edge - 18, size}):
        if at > size:
            continue
        data = bytearray(b"x" * (size + 19))
        data[at : at + 19] = b"1" * 19
        assert exact_json.has_long_digits(bytes(data)), (size, at)
        assert exact_json.has_long_digits(memoryview(bytes(data)), at, at + 19)
        assert not exact_json.has_long_digits(bytes(data), at, at + 18)
        assert not exact_json.has_long_digits(bytes(data), at + 1)
        data[at + 9] = ord(".")
        assert not exact_json.has_long_digits(bytes(data)), (size, at)


def test_export_keeps_them_in_ndjson_and_says_parquet_cannot(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    import pyarrow.parquet as pq

    from server.runtime.export import export

    index, _ = load_catalogs(write_catalog(CatalogDir(tmp_path / "cat")), LoadOptions(index_processes=1))
    export(index, str(tmp_path / "out.ndjson"))
    lines = [exact(line) for line in (tmp_path / "out.ndjson").read_text().splitlines()]
    assert_exact_item(next(d for d in lines if d["id"] == "i0"))
    folder = CatalogDir(tmp_path / "plain")
    folder.write("c/a.json", item("a", collection="c", properties={"big": BIG}, links=[link("collection", "./collection.json")]))
    folder.write("c/b.json", item("b", collection="c", properties={"big": 7}, links=[link("collection", "./collection.json")]))
    # orjson holds 2**63 .. 2**64 - 1 (unsigned): parquet's integers are signed (export crashed on them)
    edges = {"u0": 2**63, "u1": 2**64 - 1, "s0": 2**63 - 1, "s1": -(2**63)}
    for name, value in edges.items():
        folder.write(f"c/{name}.json", item(name, collection="c", properties={"big": value},
                                            links=[link("collection", "./collection.json")]))
    names = ["a", "b", *edges]
    folder.write("c/collection.json", collection("c", [link("item", f"./{n}.json") for n in names]))
    index, _ = load_catalogs([str(folder.path("c/collection.json"))], LoadOptions(index_processes=1))
    with caplog.at_level("WARNING", logger="stac_static_api"):
        export(index, str(tmp_path / "out.parquet"))
    assert "3 items hold integers beyond 64 bits" in caplog.text
    # the column holds doubles, so those of 64 bits beyond 2**53 go in as doubles too (Arrow
    # refuses to make them inexact silently), said so
    assert "2 integers beyond 2**53 in fields that also hold doubles" in caplog.text
    table = pq.read_table(tmp_path / "out.parquet").to_pylist()
    rows = {r["id"]: r.get("big", (r.get("properties") or {}).get("big")) for r in table}
    assert rows == {"a": float(BIG), "b": 7, "u0": float(2**63), "u1": float(2**64 - 1),
                    "s0": float(2**63 - 1), "s1": float(-(2**63))}
    # without a double beside them, integers of 64 bits stay exact integers
    exact_only = CatalogDir(tmp_path / "exact")
    for name, value in (("s0", 2**63 - 1), ("s1", -(2**63)), ("b", 7)):
        exact_only.write(f"c/{name}.json", item(name, collection="c", properties={"big": value},
                                                links=[link("collection", "./collection.json")]))
    exact_only.write("c/collection.json", collection("c", [link("item", f"./{n}.json") for n in ("s0", "s1", "b")]))
    index, _ = load_catalogs([str(exact_only.path("c/collection.json"))], LoadOptions(index_processes=1))
    export(index, str(tmp_path / "exact.parquet"))
    table = pq.read_table(tmp_path / "exact.parquet").to_pylist()
    rows = {r["id"]: r.get("big", (r.get("properties") or {}).get("big")) for r in table}
    assert rows == {"s0": 2**63 - 1, "s1": -(2**63), "b": 7} and all(type(v) is int for v in rows.values())
