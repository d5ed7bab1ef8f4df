"""stac-geoparquet served like JSON (stac-geoparquet spec; STAC API - Item Search): a collection
whose items are a parquet asset, and a parquet root beside its collections, answer every search
as the same items served from JSON do — GET and POST, paged to the end — read from disk, from a
loopback HTTP server and from an S3 server (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.catalog.loader import LoadOptions, load_catalogs
from server.index import Index
from server.runtime.app import create_app
from server.runtime.export import write_parquet
from server.sample import SAMPLE_ROOT
from server.settings import Settings
from tests.conftest import TestClient
from tests.helpers import collect_pages, serve_folder

QUERIES: list[dict[str, Any]] = [
    {"limit": 4},
    {"limit": 3, "bbox": [3.0, 50.0, 8.0, 54.0]},
    {"limit": 5, "datetime": "2022-01-01T00:00:00Z/2022-12-31T23:59:59Z"},
    {"limit": 2, "collections": ["sentinel-2-l2a-nl"]},
    {"limit": 3, "filter": "eo:cloud_cover < 30", "filter-lang": "cql2-text"},
    {"limit": 4, "sortby": [{"field": "properties.datetime", "direction": "asc"}]},
    {"limit": 3, "q": "NDVI"},
]


def sample_items() -> tuple[list[dict[str, Any]], dict[str, dict[str, Any]]]:
    """The sample's items that belong to a collection (a collection-less item has no place in
    these layouts), and its collections."""
    index, _ = load_catalogs([str(SAMPLE_ROOT)], LoadOptions(progress=False))
    items = [index.item(pos) for pos in range(index.size)]
    items = [item for item in items if item.get("collection")]
    for item in items:
        item["links"] = [link for link in item["links"] if link.get("rel") not in ("self", "root", "parent", "collection")]
    collections = {cid: {k: v for k, v in doc.items() if k != "links"} | {"links": []}
                   for cid, doc in index.collections.items()}
    return items, collections


def write_layouts(folder: Path) -> tuple[Path, Path, Path]:
    """json/: each collection beside its items as ndjson; parquet/: each collection with a
    geoparquet-items asset; bulk/: the collections, and one parquet file of every item."""
    items, collections = sample_items()
    for layout in ("json", "parquet", "bulk"):
        (folder / layout).mkdir(parents=True)
    catalog = {"type": "Catalog", "stac_version": "1.0.0", "id": "root", "description": "root", "links": []}
    for cid, doc in collections.items():
        mine = [item for item in items if item["collection"] == cid]
        for layout in ("json", "parquet", "bulk"):
            (folder / layout / cid).mkdir()
        (folder / "json" / cid / "collection.json").write_text(json.dumps(doc))
        (folder / "json" / cid / "items.ndjson").write_text("".join(json.dumps(i) + "\n" for i in mine))
        (folder / "bulk" / cid / "collection.json").write_text(json.dumps(doc))
        asset = {"href": "./items.parquet", "type": "application/vnd.apache.parquet", "roles": ["stac-items"]}
        with_asset = {**doc, "assets": {**doc.get("assets", {}), "geoparquet-items": asset}}
        (folder / "parquet" / cid / "collection.json").write_text(json.dumps(with_asset))
        if mine:
            write_parquet(iter(mine), str(folder / "parquet" / cid / "items.parquet"))
        catalog["links"].append({"rel": "child", "href": f"./{cid}/collection.json"})
    (folder / "parquet" / "catalog.json").write_text(json.dumps(catalog))
    write_parquet(iter(items), str(folder / "bulk" / "items.parquet"))
    return folder / "json", folder / "parquet", folder / "bulk"


@pytest.fixture(scope="module")
def layouts(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    return write_layouts(tmp_path_factory.mktemp("parquet-serving"))


def json_roots(folder: Path) -> list[str]:
    return sorted(str(p) for p in folder.glob("*/collection.json")) + sorted(str(p) for p in folder.glob("*/items.ndjson"))


def load(roots: list[str]) -> Index:
    index, report = load_catalogs(roots, LoadOptions(progress=False))
    assert not report.skips, report.skips
    return index


def answers(index: Index) -> Iterator[tuple[str, str, list[Any]]]:
    with TestClient(create_app(Settings(), index=index), base_url="http://testserver") as client:
        for query in QUERIES:
            for method in ("GET", "POST"):
                sent = query
                if method == "GET" and "sortby" in query:  # GET's form: +field,-field
                    sent = {**query, "sortby": ",".join(("-" if s["direction"] == "desc" else "+") + s["field"]
                                                        for s in query["sortby"])}
                pages = collect_pages(client, method, "/search", sent)
                ids = [(f["collection"], f["id"]) for page in pages for f in page["features"]]
                yield method, json.dumps(query), [pages[0]["numberMatched"], ids]


def items_by_key(index: Index) -> dict[tuple[str | None, str], dict[str, Any]]:
    return {(index.collection_of(pos), index.ids[pos]): index.item(pos) for pos in range(index.size)}


def test_a_parquet_asset_and_a_parquet_root_answer_as_json(layouts: tuple[Path, Path, Path]) -> None:
    json_folder, parquet_folder, bulk_folder = layouts
    from_json = load(json_roots(json_folder))
    from_asset = load([str(parquet_folder / "catalog.json")])
    from_root = load(sorted(str(p) for p in bulk_folder.glob("*/collection.json")) + [str(bulk_folder / "items.parquet")])
    assert from_json.size > 20
    expected = list(answers(from_json))
    assert sum(len(ids) for _, _, (_, ids) in expected) > 50
    assert list(answers(from_asset)) == expected
    assert list(answers(from_root)) == expected
    reference = items_by_key(from_json)
    for index in (from_asset, from_root):
        got = items_by_key(index)
        assert got.keys() == reference.keys()
        for key, item in got.items():
            assert item["geometry"] == reference[key]["geometry"], key
            assert item["assets"] == reference[key]["assets"], key
            assert item.get("bbox") == reference[key].get("bbox"), key


def test_parquet_assets_can_be_turned_off(layouts: tuple[Path, Path, Path]) -> None:
    _, parquet_folder, _ = layouts
    index, _ = load_catalogs([str(parquet_folder / "catalog.json")], LoadOptions(progress=False, parquet_assets=False))
    assert index.size == 0 and len(index.collections) > 3


def test_a_parquet_asset_over_http_loads_as_from_disk(layouts: tuple[Path, Path, Path]) -> None:
    _, parquet_folder, _ = layouts
    local = items_by_key(load([str(parquet_folder / "catalog.json")]))
    with serve_folder(parquet_folder) as base:
        remote = items_by_key(load([f"{base}/catalog.json"]))
    assert remote.keys() == local.keys()
    for key, item in remote.items():  # hrefs resolve against where the file was read: not compared
        assert {k: v for k, v in item.items() if k not in ("links", "assets")} == \
            {k: v for k, v in local[key].items() if k not in ("links", "assets")}
        assert item["assets"].keys() == local[key]["assets"].keys()


def test_a_parquet_root_in_s3_loads_as_from_disk(layouts: tuple[Path, Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    boto3 = pytest.importorskip("boto3", reason="boto3 comes with the test extra")
    moto_server = pytest.importorskip("moto.server", reason="moto[server] comes with the test extra")
    _, _, bulk_folder = layouts
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        for name, value in (("AWS_ENDPOINT_URL", f"http://{host}:{port}"), ("AWS_ACCESS_KEY_ID", "testing"),
                            ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_DEFAULT_REGION", "us-east-1")):
            monkeypatch.setenv(name, value)
        client = boto3.client("s3")
        client.create_bucket(Bucket="pq-bucket")
        for path in bulk_folder.rglob("*"):
            if path.is_file():
                key = f"stac/{path.relative_to(bulk_folder).as_posix()}"
                client.put_object(Bucket="pq-bucket", Key=key, Body=path.read_bytes())
        names = sorted(p.relative_to(bulk_folder).as_posix() for p in bulk_folder.glob("*/collection.json"))
        roots = [f"s3://pq-bucket/stac/{name}" for name in names]
        remote = items_by_key(load([*roots, "s3://pq-bucket/stac/items.parquet"]))
    finally:
        server.stop()
    collections = [str(p) for p in sorted(bulk_folder.glob("*/collection.json"))]
    local = items_by_key(load([*collections, str(bulk_folder / "items.parquet")]))
    assert remote.keys() == local.keys() and len(local) > 20


def test_a_folder_of_parquet_files_is_a_root(layouts: tuple[Path, Path, Path], tmp_path: Path) -> None:
    """A hive-partitioned folder: the partition value (collection=...) names each file's collection."""
    _, parquet_folder, _ = layouts
    for source in parquet_folder.glob("*/items.parquet"):
        target = tmp_path / "hive" / f"collection={source.parent.name}" / "part-0.parquet"
        target.parent.mkdir(parents=True)
        target.write_bytes(source.read_bytes())
    index = load([str(tmp_path / "hive")])
    expected = items_by_key(load([str(parquet_folder / "catalog.json")]))
    assert sorted(index.ids) == sorted(item_id for _, item_id in expected)
