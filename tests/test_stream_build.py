"""The streaming build (`index -o FILE` writes the items' bytes into the snapshot as it reads
them) gives the same index as a load held in memory, record for record; ids found by hash."""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import random
from array import array
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pyarrow.parquet as pq
import pytest
import shapely

from server.catalog import loader, parallel
from server.catalog.loader import LINES_MIN_BYTES, Loader, LoadOptions, load_catalogs
from server.catalog.sources import Fetcher
from server.index import Index, blobs
from server.index.builder import _read_geometries, _simple_ring, _taken_geometry
from server.index.ids import IdColumn, bytes_hash, bytes_hashes
from server.runtime.cli import main as cli_main
from server.runtime.export import write_parquet
from server.runtime.snapshot import read_snapshot
from server.sample import SAMPLE_ROOT
from tests.helpers import CatalogDir, catalog, collection, item, link, run_cli, run_server, shared_roots


def same_index(a: Index, b: Index) -> None:
    """Every record, column, text posting and tree node of ``a`` is ``b``'s."""
    assert a.size == b.size
    assert list(a.ids) == list(b.ids)
    assert a.collection_names == b.collection_names
    for name in ("codes", "start", "end", "sort_time", "extremes" if hasattr(a, "extremes") else "codes"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert np.array_equal(a.bounds, b.bounds, equal_nan=True)
    assert [a.json[p] for p in range(a.size)] == [b.json[p] for p in range(b.size)]
    assert [a.wkb[p] for p in range(a.size)] == [b.wkb[p] for p in range(b.size)]
    assert sorted(a.columns) == sorted(b.columns)
    for key, col in a.columns.items():
        other = b.columns[key]
        for part in ("number", "string", "boolean", "objects", "time"):
            mine, theirs = getattr(col, part), getattr(other, part)
            assert (mine is None) == (theirs is None), (key, part)
            if mine is None:
                continue
            assert np.array_equal(mine.rows, theirs.rows), (key, part)
            if part == "objects":
                assert [mine.value(i) for i in range(len(mine.rows))] == [theirs.value(i) for i in range(len(theirs.rows))]
            elif part == "string":
                assert mine.vocab == theirs.vocab and np.array_equal(mine.codes, theirs.codes), key
            else:
                assert np.array_equal(mine.values, theirs.values), (key, part)
    assert a.text.vocab == b.text.vocab
    assert all(np.array_equal(x, y) for x, y in zip(a.text.postings, b.text.postings))
    assert [(n.kind, n.id, n.segments, n.children, n.document) for n in a.tree.nodes] == \
           [(n.kind, n.id, n.segments, n.children, n.document) for n in b.tree.nodes]
    assert np.array_equal(a.tree.items, b.tree.items) and a.tree.complete == b.tree.complete
    assert a.collections == b.collections and a.root == b.root
    assert {**(a.load_report or {}), "seconds": 0} == {**(b.load_report or {}), "seconds": 0}


def streamed(roots: list[str], tmp_path: Path) -> Index:
    snapshot = tmp_path / "streamed.idx"
    result = run_cli(["index", *roots, "-o", str(snapshot)], timeout=120)
    assert result.returncode == 0, result.stderr
    return read_snapshot(str(snapshot))[0]


def odd_catalog(cat: CatalogDir) -> list[str]:
    """Duplicates (first kept), an invalid geometry, items tied on time (ordered by id: unicode,
    a prefix of another), items of no collection (one is made), an id in two collections."""
    bad_ring = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}  # GEOS cannot read it
    items = {
        "a/é.json": item("é", collection="c1"),
        "a/e.json": item("e", collection="c1"),
        "a/ee.json": item("ee", collection="c1"),
        "a/dup.json": item("e", collection="c1", bbox=(5, 5, 6, 6)),  # a duplicate: dropped
        "a/bad.json": item("bad", collection="c1", geometry=bad_ring),
        "a/bad2.json": item("bad", collection="c1"),  # the id of a rejected item: a duplicate still
        "a/x.json": item("x", collection="c1", datetime="2021-05-01T00:00:00Z"),
        "b/e.json": item("e", collection="c2"),  # the same id in another collection: kept
        "loose/l1.json": item("l1"),
        "loose/l2.json": item("l2", datetime="2019-01-01T00:00:00Z"),
    }
    for rel, doc in items.items():
        cat.write(rel, doc)
    cat.write("c1/collection.json", collection("c1", [link("item", f"../{r}") for r in items if r.startswith("a/")]))
    cat.write("c2/collection.json", collection("c2", [link("item", "../b/e.json")]))
    cat.write("loose/catalog.json", catalog("loose", [link("item", "./l1.json"), link("item", "./l2.json")]))
    cat.write("catalog.json", catalog("root", [link("child", "./c1/collection.json"), link("child", "./c2/collection.json"),
                                               link("child", "./loose/catalog.json")]))
    return [str(cat.path("catalog.json"))]


def test_odd_catalog_streams_to_the_same_index(catalog_dir: CatalogDir, tmp_path: Path) -> None:
    roots = odd_catalog(catalog_dir)
    in_memory, report = load_catalogs(roots)
    assert report.skipped_by_reason["duplicate"] == 2 and report.skipped_by_reason["invalid_item"] == 1
    assert sorted(in_memory.ids) == ["e", "e", "ee", "l1", "l2", "x", "é"]
    assert in_memory.item(in_memory.find("c1", "e"))["bbox"] == [0, 0, 1, 1]  # the first kept
    same_index(streamed(roots, tmp_path), in_memory)


@pytest.mark.parametrize("roots", [[str(SAMPLE_ROOT)], *shared_roots()], ids=lambda r: Path(r[0]).parent.name)
def test_catalogs_stream_to_the_same_index(roots: list[str], tmp_path: Path) -> None:
    in_memory, report = load_catalogs(roots)
    if not report.degraded:
        same_index(streamed(roots, tmp_path), in_memory)
        return
    # a structural document not read: no snapshot, and nothing half-written left behind
    result = run_cli(["index", *roots, "-o", str(tmp_path / "x.idx")], timeout=120)
    assert result.returncode == 1 and "no snapshot written" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_bulk_files_stream_to_the_same_index(catalog_dir: CatalogDir, tmp_path: Path) -> None:
    """ndjson read as a root, with a duplicate line and one of no collection (a made one)."""
    catalog_dir.write("c/collection.json", collection("c"))
    lines = [item(f"i{n}", collection="c", datetime=f"2020-01-{1 + n % 3:02d}T00:00:00Z") for n in range(40)]
    lines.append(item("i7", collection="c"))
    lines.append(item("free"))
    catalog_dir.write_text("items.ndjson", "\n".join(json.dumps(doc) for doc in lines) + "\n")
    roots = [str(catalog_dir.path("c/collection.json")), str(catalog_dir.path("items.ndjson"))]
    in_memory, report = load_catalogs(roots)
    assert in_memory.size == 41 and report.skipped_by_reason["duplicate"] == 1
    same_index(streamed(roots, tmp_path), in_memory)


def test_ndjson_indexed_by_forked_processes_is_the_same_index(catalog_dir: CatalogDir, tmp_path: Path) -> None:
    """A 2 MB ndjson file whose lines two forked processes index (STAC_STATIC_INDEX_PROCESSES):
    the index, skips and report of one process. Among the lines: duplicates across chunks (the
    first kept), invalid JSON, blank lines, a geometry GEOS cannot read, a bad datetime, words;
    lines the children leave to the loader (an item needing migration, then more forked lines;
    a catalog line; at the end an item of a collection not loaded and one of none)."""
    catalog_dir.write("c/collection.json", collection("c"))
    catalog_dir.write("d/collection.json", collection("d"))
    words = ["alpha beta", "gamma", "Delta epsilon alpha"]
    lines = [json.dumps(item(f"i{n}", collection="c" if n % 5 else "d", bbox=(n % 50, n % 40, n % 50 + 1, n % 40 + 2),
                             datetime=f"2020-{1 + n % 12:02d}-{1 + n % 28:02d}T00:00:00Z",
                             properties={"title": words[n % 3], "eo:cloud_cover": n % 101, "flag": n % 2 == 0,
                                         "tags": ["x", str(n % 7)], "pad": "p" * 300}))
             for n in range(4000)]
    lines[10] = "{not json"
    lines[11] = ""
    lines[2600] = lines[3333] = "[1,"  # in later chunks: named by their line in the file
    lines[1500] = json.dumps(item("i3", collection="c"))  # a duplicate of an earlier chunk's
    lines[3900] = json.dumps(item("i21", collection="c"))
    lines[2000] = json.dumps(item("bad", collection="c", geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}))
    lines[2100] = json.dumps(item("late", collection="c", datetime="yesterday"))
    old = item("old", collection="c")
    old["stac_version"] = "0.9.0"
    lines[1200] = json.dumps(old)
    lines[1300] = json.dumps(catalog("in-the-middle", []))
    lines[3990] = json.dumps(item("elsewhere", collection="nope"))
    lines[3995] = json.dumps(item("free"))
    catalog_dir.write_text("items.ndjson", "\n".join(lines) + "\n")
    roots = [str(catalog_dir.path("c/collection.json")), str(catalog_dir.path("d/collection.json")),
             str(catalog_dir.path("items.ndjson"))]
    one, report = load_catalogs(roots, LoadOptions(index_processes=1))
    assert report.skipped_by_reason["duplicate"] == 2 and report.skipped_by_reason["invalid_json"] == 3
    assert report.skipped_by_reason["invalid_item"] == 2 and report.catalogs == 1
    assert one.size == 4000 - 9 and report.reassigned == {("nope", "items"): 1} and "items" in one.collections
    result = run_cli(["index", *roots, "-o", str(tmp_path / "forked.idx"), "--log-level", "info"], timeout=120,
                     env={"STAC_STATIC_INDEX_PROCESSES": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("indexing its lines in 2 processes") >= 2, result.stderr  # forked again after "old"
    invalid = [location for location, reason in report.skips if reason.startswith("invalid JSON")]
    assert [location.rpartition(" ")[2] for location in invalid] == ["11", "2601", "3334"]
    for location in invalid:  # each named by its line in the file, as one process names it
        assert f"skipped {location}: invalid JSON" in result.stderr, result.stderr
    forked = read_snapshot(str(tmp_path / "forked.idx"))[0]
    same_index(forked, one)
    assert not list(tmp_path.glob(".chunks-*"))  # the folder of the chunks' item files beside it is gone


def test_large_ndjson_is_mapped_by_index_only(tmp_path: Path) -> None:
    """`index` maps a local ndjson file of LINES_MIN_BYTES or more (LoadOptions.map_bulk), within the
    same checks as a read: the size limit, regular files only; a smaller one, or a load without
    map_bulk (a server's), reads it into bytes."""
    big, small = tmp_path / "big.ndjson", tmp_path / "small.ndjson"
    big.write_bytes(b"{}\n" * (LINES_MIN_BYTES // 3 + 1))
    small.write_bytes(b"{}\n")
    with Fetcher(max_bytes=1 << 30) as fetcher:
        location, data, error = fetcher.map_result(str(big), 1 << 30, LINES_MIN_BYTES)
        assert isinstance(data, mmap.mmap) and error is None and data[:3] == b"{}\n" and len(data) == big.stat().st_size
        data.close()
        assert fetcher.map_result(str(small), 1 << 30, LINES_MIN_BYTES)[1] == b"{}\n"
        assert "over the 1000 byte limit" in str(fetcher.map_result(str(big), 1000, LINES_MIN_BYTES)[2])
        assert fetcher.map_result(str(tmp_path), 1 << 30, LINES_MIN_BYTES)[2] == "not a regular file"
        assert fetcher.map_result(str(tmp_path / "none.ndjson"), 1 << 30, LINES_MIN_BYTES)[1] is None
        assert fetcher.fetch_result(str(big), 1 << 30)[1] == big.read_bytes()


def test_mapped_ndjson_that_is_one_json_document(catalog_dir: CatalogDir, tmp_path: Path) -> None:
    """A large .ndjson file whose first line is not a JSON object (a pretty-printed
    FeatureCollection) is read as one JSON document by `index` (mapped, then copied), as by a
    load that reads it."""
    catalog_dir.write("c/collection.json", collection("c"))
    features = [item(f"f{n}", collection="c", properties={"pad": "p" * 500}) for n in range(3000)]
    text = json.dumps({"type": "FeatureCollection", "features": features}, indent=2)
    assert len(text) > LINES_MIN_BYTES
    catalog_dir.write_text("items.ndjson", text)
    roots = [str(catalog_dir.path("c/collection.json")), str(catalog_dir.path("items.ndjson"))]
    read, _ = load_catalogs(roots, LoadOptions(index_processes=1))
    assert read.size == 3000
    same_index(streamed(roots, tmp_path), read)


def test_ndjson_linked_as_an_item_is_indexed_by_forked_processes(catalog_dir: CatalogDir, tmp_path: Path) -> None:
    """An ndjson file a collection links with an `item` link (bench/replicate.py's layout): its
    lines indexed by forked processes, the items placed under the collection's tree node as
    one process places them; invalid JSON named by its line, an item needing migration and
    one of another collection handled by the loader, then forking again."""
    catalog_dir.write("d/collection.json", collection("d"))
    lines = [json.dumps(item(f"i{n}", collection="c", bbox=(n % 50, n % 40, n % 50 + 1, n % 40 + 2),
                             properties={"title": f"t{n % 7}", "pad": "p" * 400}))
             for n in range(4000)]
    lines[5] = "{not json"
    lines[2500] = "[1,"
    old = item("old", collection="c")
    old["stac_version"] = "0.9.0"
    lines[1200] = json.dumps(old)
    lines[1300] = json.dumps(item("other", collection="d"))
    lines[1400] = json.dumps(item("i7", collection="c"))  # a duplicate of the first chunk's
    catalog_dir.write_text("c/items.ndjson", "\n".join(lines) + "\n")
    catalog_dir.write("c/collection.json", collection("c", [link("item", "./items.ndjson", "application/x-ndjson")]))
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./c/collection.json"),
                                                       link("child", "./d/collection.json")]))
    roots = [str(catalog_dir.path("catalog.json"))]
    one, report = load_catalogs(roots, LoadOptions(index_processes=1))
    assert one.size == 4000 - 3 and report.skipped_by_reason["invalid_json"] == 2
    assert report.skipped_by_reason["duplicate"] == 1
    result = run_cli(["index", *roots, "-o", str(tmp_path / "forked.idx"), "--log-level", "info"], timeout=120,
                     env={"STAC_STATIC_INDEX_PROCESSES": "2"})
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("items.ndjson: indexing its lines in 2 processes") >= 2, result.stderr
    assert "items.ndjson line 2501: invalid JSON" in result.stderr, result.stderr
    same_index(read_snapshot(str(tmp_path / "forked.idx"))[0], one)


@pytest.mark.parametrize("mapped", [False, True], ids=["hrefs-as-written", "public-href-mapping"])
def test_parquet_indexed_by_forked_processes_is_the_same_index(catalog_dir: CatalogDir, tmp_path: Path,
                                                               mapped: bool) -> None:
    """A collection's stac-geoparquet asset of 8 row groups, indexed a row group at a time by
    two forked processes: the index and report of one process. A duplicate across row groups
    (the first kept); near the end an item of a collection not loaded, which the children
    leave to the loader (it and the items after it are indexed there). The children read
    the assets (the same but their https hrefs) as JSON text when hrefs are served as
    written; with a --public-href mapping they are rewritten as one process does."""
    def pad(n: int) -> str:  # text parquet cannot compress away: the file is over 1 MiB
        return "".join(hashlib.sha512(f"{n}-{k}".encode()).hexdigest() for k in range(3))

    items = [item(f"i{n}", collection="c", bbox=(n % 50, n % 40, n % 50 + 1, n % 40 + 2),
                  datetime=f"2020-{1 + n % 12:02d}-{1 + n % 28:02d}T00:00:00Z",
                  properties={"title": ["alpha beta", "gamma"][n % 2], "eo:cloud_cover": n % 101, "pad": pad(n)},
                  assets={"data": {"href": f"https://bucket.example/{n}.tif", "roles": ["data"], "gsd": 10.0}})
             for n in range(4000)]
    items[2500] = item("i7", collection="c")
    items[3900] = item("elsewhere", collection="nope")
    asset = {"href": "./items.parquet", "type": "application/vnd.apache.parquet", "roles": ["stac-items"]}
    catalog_dir.write("c/collection.json", {**collection("c"), "assets": {"geoparquet-items": asset}})
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./c/collection.json")]))
    target = str(catalog_dir.path("c/items.parquet"))
    write_parquet(iter(items), target)
    pq.write_table(pq.read_table(target), target, row_group_size=500)  # 8 row groups
    assert pq.ParquetFile(target).metadata.num_row_groups == 8 and os.path.getsize(target) > 1 << 20
    roots = [str(catalog_dir.path("catalog.json"))]
    mapping = (("https://bucket.example/", "https://data.example.org/"),) if mapped else ()
    one, report = load_catalogs(roots, LoadOptions(index_processes=1, public_hrefs=mapping))
    assert one.size == 3999 and report.skipped_by_reason["duplicate"] == 1 and report.reassigned
    hrefs = {one.item(pos)["assets"]["data"]["href"].rsplit("/", 1)[0] for pos in range(one.size) if one.item(pos)["assets"]}
    assert hrefs == {"https://data.example.org" if mapped else "https://bucket.example"}
    env = {"STAC_STATIC_INDEX_PROCESSES": "2"} | ({"STAC_STATIC_PUBLIC_HREFS": "=".join(mapping[0])} if mapped else {})
    result = run_cli(["index", *roots, "-o", str(tmp_path / "forked.idx"), "--log-level", "info"], timeout=120,
                     env=env)
    assert result.returncode == 0, result.stderr
    assert "indexing its items in 2 processes (8 row groups)" in result.stderr, result.stderr
    same_index(read_snapshot(str(tmp_path / "forked.idx"))[0], one)
    assert not list(tmp_path.glob(".chunks-*"))


def test_small_parquet_first_does_not_stop_forking_the_large_ones(catalog_dir: CatalogDir, tmp_path: Path) -> None:
    """A catalog listing a collection of a small stac-geoparquet file (under LINES_MIN_BYTES)
    before one of a large file: `index -o` still indexes the large one's row groups in forked
    processes (each file judged on its own, not only a leading run of large ones), and the
    snapshot is the one-process index of the same catalog, record for record; so is that of
    the catalog listing them the other way round (the order that forked before)."""
    def pad(n: int) -> str:  # text parquet cannot compress away: the large file is over 1 MiB
        return "".join(hashlib.sha512(f"{n}-{k}".encode()).hexdigest() for k in range(3))

    def items(cid: str, count: int, padded: bool) -> list[dict[str, Any]]:
        return [item(f"{cid}{n}", collection=cid, bbox=(n % 50, n % 40, n % 50 + 1, n % 40 + 2),
                     datetime=f"2020-{1 + n % 12:02d}-{1 + n % 28:02d}T00:00:00Z",
                     properties={"eo:cloud_cover": n % 101, **({"pad": pad(n)} if padded else {})})
                for n in range(count)]

    asset = {"href": "./items.parquet", "type": "application/vnd.apache.parquet", "roles": ["stac-items"]}
    for cid, count, padded in (("small", 30, False), ("large", 3000, True)):
        catalog_dir.write(f"{cid}/collection.json", {**collection(cid), "assets": {"geoparquet-items": asset}})
        target = str(catalog_dir.path(f"{cid}/items.parquet"))
        write_parquet(iter(items(cid, count, padded)), target)
        pq.write_table(pq.read_table(target), target, row_group_size=500)
    assert os.path.getsize(catalog_dir.path("small/items.parquet")) < LINES_MIN_BYTES
    assert os.path.getsize(catalog_dir.path("large/items.parquet")) > LINES_MIN_BYTES
    env = {"STAC_STATIC_INDEX_PROCESSES": "2"}
    for name, order in (("small-first", ["small", "large"]), ("large-first", ["large", "small"])):
        catalog_dir.write(f"{name}.json", catalog(name, [link("child", f"./{cid}/collection.json") for cid in order]))
        roots = [str(catalog_dir.path(f"{name}.json"))]
        one, _ = load_catalogs(roots, LoadOptions(index_processes=1))
        assert one.size == 3030
        snapshot = tmp_path / f"{name}.idx"
        result = run_cli(["index", *roots, "-o", str(snapshot), "--log-level", "info"], timeout=120, env=env)
        assert result.returncode == 0, result.stderr
        assert "large/items.parquet: indexing its items in 2 processes (6 row groups)" in result.stderr, result.stderr
        assert "small/items.parquet: indexing" not in result.stderr, result.stderr
        same_index(read_snapshot(str(snapshot))[0], one)
        snapshot.unlink()


def test_streamed_snapshot_serves_with_workers(catalog_dir: CatalogDir, tmp_path: Path) -> None:
    roots = odd_catalog(catalog_dir)
    snapshot = tmp_path / "odd.idx"
    assert run_cli(["index", *roots, "-o", str(snapshot)]).returncode == 0
    queries: list[dict[str, Any]] = [{"limit": 2}, {"ids": "e,é,nope"}, {"filter": "id LIKE 'e%'"}, {"sortby": "id"},
                                     {"collections": "c1", "limit": 1}]

    def answers(base: str) -> list[list[str]]:
        out = []
        for query in queries:
            page = httpx.get(base + "/search", params=query).json()
            out.append([f"{f['collection']}/{f['id']}" for f in page["features"]] + [page["numberMatched"]])
        out.append([httpx.get(base + "/collections/c1/items/é").json()["id"]])
        return out

    with run_server(roots) as direct:
        expected = answers(direct)
    with run_server(extra_args=["--index", str(snapshot), "--workers", "2"]) as base:
        assert answers(base) == answers(base) == expected
    assert expected[1][:-1] == ["c1/e", "c2/e", "c1/é"] or sorted(expected[1][:-1]) == ["c1/e", "c1/é", "c2/e"]


def test_footprints_are_read_as_geos_reads_their_geojson() -> None:
    """Simple polygons are made from their coordinates (builder._read_geometries), not through
    GEOS's GeoJSON reader: the same geometries (WKB), and None where that reader refuses one."""
    ring = [[0.5, 0.25], [2, 0.25], [2.0, 1.75], [0.5, 1.75], [0.5, 0.25]]
    cases: list[Any] = [
        {"type": "Polygon", "coordinates": [ring]},
        {"type": "Polygon", "coordinates": [[[int(x), int(y)] for x, y in ring]]},
        {"type": "Polygon", "coordinates": [ring], "bbox": [0.5, 0.25, 2, 1.75]},
        {"type": "Polygon", "coordinates": [ring[:-1]]},  # not closed
        {"type": "Polygon", "coordinates": [[[0, 0], [1, 1], [0, 0]]]},  # too few positions
        {"type": "Polygon", "coordinates": [ring, [[1, 0.5], [1.5, 0.5], [1.5, 1], [1, 0.5]]]},  # a hole
        {"type": "Polygon", "coordinates": [[[*p, 7.0] for p in ring]]},  # 3D
        {"type": "Polygon", "coordinates": [[[True, False], [1, 0], [1, 1], [True, False]]]},
        {"type": "Polygon", "coordinates": [[["0", "0"], ["1", "0"], ["1", "1"], ["0", "0"]]]},
        {"type": "Polygon", "coordinates": [[[2**60, 0], [2**60 + 1, 0], [2**60, 1], [2**60, 0]]]},
        {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]},  # a bow tie
        {"type": "Polygon", "coordinates": []},
        {"type": "Polygon", "coordinates": [[]]},
        {"type": "Polygon"},
        {"type": "MultiPolygon", "coordinates": [[ring]]},
        {"type": "Point", "coordinates": [1, 2]},
        {"type": "LineString", "coordinates": [[1, 2], [3, 4]]},
        {"type": "Nope", "coordinates": [ring]},
        None,
    ]
    geos = [None if g is None else shapely.from_geojson(orjson.dumps(g), on_invalid="ignore") for g in cases]
    assert sum(1 for g in cases if g is not None and _simple_ring(g) is not None) == 4  # the first three, the bow tie
    # all in one batch (the simple ones told apart one by one), the simple ones alone (checked
    # as one batch), and each simple one with each other case (the batch check refused or not)
    batches = [list(range(len(cases))), [0, 1, 2, 10]] + [[s, k] for s in (0, 1, 10) for k in range(len(cases))]
    for batch in batches:
        read = _read_geometries([cases[k] for k in batch])
        for k, mine in zip(batch, read.tolist()):
            theirs = geos[k]
            assert (mine is None) == (theirs is None), cases[k]
            if mine is not None:
                assert shapely.to_wkb(mine) == shapely.to_wkb(theirs), cases[k]
        # as IndexBuilder.add_item takes them (_taken_geometry: a simple polygon's numbers
        # copied as the item comes, the rest kept for the flush), the same geometries
        xy = array("d")
        taken = [_taken_geometry(cases[k], xy) for k in batch]
        assert [type(t) is int for t in taken] == [cases[k] is not None and _simple_ring(cases[k]) is not None
                                                  for k in batch]
        for k, mine in zip(batch, _read_geometries(taken, xy).tolist()):
            assert (mine is None) == (geos[k] is None), cases[k]
            if mine is not None:
                assert shapely.to_wkb(mine) == shapely.to_wkb(geos[k]), cases[k]


def test_ids_are_found_by_their_bytes() -> None:
    ids = ["a", "a\x00", "ab", "é", "", "a" * 40, "a" * 41, "x/y z%", "a"]
    column = IdColumn.of(ids)
    assert list(column) == ids and column == ids and column[3] == "é"
    for value in set(ids):
        assert column.positions([value]).tolist() == [i for i, v in enumerate(ids) if v == value]
    assert column.positions(["nope", "a" * 39]).tolist() == []
    assert column.positions(["ab", "é", "ab"]).tolist() == [2, 3]
    assert column.hash_sorted.tolist() == sorted(bytes_hash(i.encode()) for i in ids)  # lookups hash as the build
    assert len(set(bytes_hashes(column.blobs).tolist())) == len(set(ids))
    vocab, codes = column.vocab()
    assert vocab == sorted(set(ids)) and [vocab[c] for c in codes] == ids


@pytest.mark.parametrize("seed", range(4))
def test_ids_merged_from_a_previous_column_are_the_column_built_anew(seed: int) -> None:
    """A reload's id column (IdColumn.merged: the previous hash order with the few new ids merged
    in) holds the arrays a column built from scratch would, ids repeated (equal hashes, ordered
    by position) and ids dropped included."""
    rng = random.Random(seed)
    before = [f"id{rng.randint(0, 120)}" for _ in range(300)]
    previous = IdColumn.of(before)
    final: list[str] = []
    previous_at = np.full(len(before), -1, dtype=np.int64)
    for p, value in enumerate(before):
        while rng.random() < 0.05:
            final.append(f"id{rng.randint(0, 200)}")  # new, some equal to kept ones
        if rng.random() < 0.9:
            previous_at[p] = len(final)
            final.append(value)
    final += [f"id{rng.randint(0, 200)}" for _ in range(seed)]
    blobs = IdColumn.of(final).blobs
    hashes = bytes_hashes(blobs)
    merged, built = IdColumn.merged(blobs, hashes, previous, previous_at), IdColumn(blobs, hashes)
    assert np.array_equal(merged.hash_order, built.hash_order) and np.array_equal(merged.hash_sorted, built.hash_sorted)
    assert list(merged) == final and merged.positions(["id7"]).tolist() == [i for i, v in enumerate(final) if v == "id7"]


@pytest.mark.parametrize("layout", ["root", "linked"])
@pytest.mark.parametrize("dies", ["first", "later"])
def test_ndjson_lines_a_dead_child_left_are_indexed_here_to_the_same_index(
    catalog_dir: CatalogDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dies: str, layout: str
) -> None:
    """`index` (the CLI's own main, here, so a child can be made to die): when a forked child
    dies, the loader indexes the chunks it did not receive itself, walking their lines. That
    fallback must give the forked build's snapshot: same records, WKB, columns, report (a
    session saw different WKB bytes from it once, with every child dying)."""
    catalog_dir.write("c/collection.json", collection("c", [link("item", "./items.ndjson")] if layout == "linked" else []))
    bulk = "c/items.ndjson" if layout == "linked" else "items.ndjson"
    lines = [json.dumps(item(f"i{n}", collection="c", bbox=(n % 170 - 85.5, n % 80 - 40.25, n % 170 - 84.5, n % 80 - 39),
                             datetime=f"2020-{1 + n % 12:02d}-{1 + n % 28:02d}T{n % 24:02d}:00:00.5Z",
                             geometry={"type": "Polygon", "coordinates": [[[n % 170 - 85.5, n % 80 - 40.25],
                                       [n % 170 - 84.5, n % 80 - 40.25], [n % 170 - 84.75, n % 80 - 39],
                                       [n % 170 - 85.5, n % 80 - 40.25]]]} if n % 3 else None,
                             properties={"title": f"t{n % 9}", "eo:cloud_cover": n % 101 / 3, "pad": "p" * 300}))
             for n in range(4000)]
    lines[2700] = json.dumps(item("i5", collection="c"))  # a duplicate of the first chunk's
    odd = [  # every way of reading a geometry the builder has: simple rings at once, the rest through GEOS
        {"type": "Point", "coordinates": [1, 2, 3]},
        {"type": "Polygon", "coordinates": [[[0, 0], [4, 0], [4, 4], [0, 4], [0, 0]], [[1, 1], [2, 1], [2, 2], [1, 1]]]},
        {"type": "MultiPolygon", "coordinates": [[[[0, 0], [1, 0], [1, 1], [0, 0]]], [[[5, 5], [6, 5], [6, 6], [5, 5]]]]},
        {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]},  # a bowtie: repaired
        {"type": "Polygon", "coordinates": [[[0.1, -0.0], [1e-9, 3], [-2.5, 1.0, 7.0], [0.1, -0.0]]]},
        {"type": "LineString", "coordinates": [[-179.5, 10], [179.5, 11]]},
        {"type": "Polygon", "coordinates": []},
        {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [3, 4]}]},
    ]
    for n in range(7, 4000, 97):
        doc = json.loads(lines[n])
        doc["geometry"] = odd[n % len(odd)]
        lines[n] = json.dumps(doc)
    catalog_dir.write_text(bulk, "\n".join(lines) + "\n")
    roots = [str(catalog_dir.path("c/collection.json"))] + ([str(catalog_dir.path(bulk))] if layout == "root" else [])
    result = run_cli(["index", *roots, "-o", str(tmp_path / "forked.idx"), "--log-level", "info"], timeout=120,
                     env={"STAC_STATIC_INDEX_PROCESSES": "2"})
    assert "indexing its lines in 2 processes" in result.stderr, result.stderr
    assert result.returncode == 0, result.stderr
    forked = read_snapshot(str(tmp_path / "forked.idx"))[0]

    parent, real = os.getpid(), Loader._index_lines
    started: list[int] = []

    def dying(self: Loader, values: Any, task: tuple[int, int], *args: Any) -> Any:
        if os.getpid() != parent and (dies == "first" or task[0] > 0):
            os._exit(3)
        return real(self, values, task, *args)

    monkeypatch.setattr(Loader, "_index_lines", dying)
    monkeypatch.setattr(parallel, "forkable", lambda: True)  # (a forked child takes no lock of this process)
    monkeypatch.setenv("STAC_STATIC_INDEX_PROCESSES", "2")
    fallback = "_structure_document" if layout == "root" else "_add_item"
    real_fallback = getattr(Loader, fallback)
    monkeypatch.setattr(Loader, fallback, lambda self, *a, **k: started.append(1) or real_fallback(self, *a, **k))
    assert cli_main(["index", *roots, "-o", str(tmp_path / "fallback.idx")]) in (0, None)
    assert len(started) > 1000  # the lines went through the walk here
    same_index(read_snapshot(str(tmp_path / "fallback.idx"))[0], forked)


def test_footprints_survive_forks_at_any_chunking(catalog_dir: CatalogDir, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """`index -o` (the CLI's own main, here, so the chunks can be made small) over three ndjson
    files, each indexed by forked processes in chunks of ~16 KB: the footprints are one
    process's. The spooled footprints' file is written through a buffer: a fork while the
    buffer held the last chunk's tail gave the child a copy, which the child wrote into the
    shared file when it dropped the builder it inherited, shifting every later footprint (a
    chunking-dependent corruption found in session 13: 75,000 of 100,000 WKB unreadable at
    64 KB chunks)."""
    roots = []
    for f in range(3):
        catalog_dir.write(f"c{f}/collection.json", collection(f"c{f}"))
        lines = [json.dumps(item(f"i{f}-{n}", collection=f"c{f}", datetime=f"2020-01-{1 + n % 28:02d}T00:00:00Z",
                                 geometry={"type": "Polygon", "coordinates": [[[n % 90, f], [n % 90 + 1, f],
                                           [n % 90 + 0.5, f + 1 + n % 7], [n % 90, f]]]},
                                 properties={"pad": "p" * 200})) for n in range(700 + 37 * f)]
        catalog_dir.write_text(f"c{f}/items.ndjson", "\n".join(lines) + "\n")
        roots += [str(catalog_dir.path(f"c{f}/collection.json")), str(catalog_dir.path(f"c{f}/items.ndjson"))]
    one, _ = load_catalogs(roots, LoadOptions(index_processes=1))
    monkeypatch.setattr(loader, "LINES_MIN_BYTES", 64 << 10)
    monkeypatch.setattr(loader, "LINES_CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(loader, "LINES_MIN_CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(parallel, "forkable", lambda: True)  # (a forked child takes no lock of this process)
    monkeypatch.setenv("STAC_STATIC_INDEX_PROCESSES", "2")
    assert cli_main(["index", *roots, "-o", str(tmp_path / "small-chunks.idx")]) in (0, None)
    forked = read_snapshot(str(tmp_path / "small-chunks.idx"))[0]
    assert [forked.wkb[p] for p in range(forked.size)] == [one.wkb[p] for p in range(one.size)]
    same_index(forked, one)


def _small_appended_chunks(monkeypatch: pytest.MonkeyPatch, min_bytes: int) -> None:
    """Two forked indexing processes on chunks of 16 KB of lines (files from ``min_bytes``),
    appending to the spool in pieces of 2 KB: many chunks of several pieces at small sizes."""
    monkeypatch.setattr(loader, "LINES_MIN_BYTES", min_bytes)
    monkeypatch.setattr(loader, "LINES_CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(loader, "LINES_MIN_CHUNK_BYTES", 16 << 10)
    monkeypatch.setattr(blobs.AppendBlobWriter, "PIECE", 2 << 10)
    monkeypatch.setattr(parallel, "forkable", lambda: True)  # (a forked child takes no lock of this process)
    monkeypatch.setenv("STAC_STATIC_INDEX_PROCESSES", "2")


def test_items_appended_to_the_spool_by_forked_children(catalog_dir: CatalogDir, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """`index -o` over two ndjson files indexed by forked processes in small chunks, each
    child appending its items' bytes to the snapshot's spool in small pieces (AppendBlobWriter:
    the two children's pieces interleaved in the file), the second file with an item to migrate
    in its middle (the children stop there, those ahead of it have appended chunks no one
    takes, this process reads on and forks again): the index is one process's."""
    roots = []
    for f in range(2):
        catalog_dir.write(f"c{f}/collection.json", collection(f"c{f}"))
        docs = [item(f"i{f}-{n}", collection=f"c{f}", datetime=f"2020-01-{1 + n % 28:02d}T00:00:00Z",
                     properties={"pad": "p" * (50 + n % 300)}) for n in range(900)]
        if f == 1:
            docs[400]["stac_version"] = "0.9.0"
        catalog_dir.write_text(f"c{f}/items.ndjson", "\n".join(json.dumps(d) for d in docs) + "\n")
        roots += [str(catalog_dir.path(f"c{f}/collection.json")), str(catalog_dir.path(f"c{f}/items.ndjson"))]
    one, _ = load_catalogs(roots, LoadOptions(index_processes=1))
    _small_appended_chunks(monkeypatch, min_bytes=32 << 10)
    placed: list[int] = []
    place = blobs.FileBlobWriter.place

    def counted(self: blobs.FileBlobWriter, pieces: array, ends: array) -> None:
        placed.append(len(pieces) // 2)
        place(self, pieces, ends)

    monkeypatch.setattr(blobs.FileBlobWriter, "place", counted)
    assert cli_main(["index", *roots, "-o", str(tmp_path / "appended.idx")]) in (0, None)
    assert len(placed) > 10 and sum(placed) > 2 * len(placed)  # chunks of several pieces each
    forked = read_snapshot(str(tmp_path / "appended.idx"))[0]
    same_index(forked, one)


@pytest.mark.parametrize("layout", ["ndjson", "parquet"])
def test_a_child_killed_mid_chunk_leaves_pieces_no_one_places(catalog_dir: CatalogDir, tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch, layout: str) -> None:
    """`index -o` whose forked children append items' bytes to the spool (AppendBlobWriter), one
    child killed (os._exit) after it appended two pieces of a chunk: those pieces stay in the
    file, no chunk names them, the loading process reads that chunk and the rest itself after
    the children's last bytes (FileBlobWriter.appended), and other files are forked again: the
    index is one process's. (The other test's children die before they append anything.)"""
    roots = []
    for f in range(2):
        catalog_dir.write(f"c{f}/collection.json", collection(f"c{f}"))
        docs = [item(f"i{f}-{n}", collection=f"c{f}", datetime=f"2020-01-{1 + n % 28:02d}T00:{n % 60:02d}:00Z",
                     properties={"pad": "p" * (50 + n % 300), "title": f"t{n % 13}é"}) for n in range(900)]
        docs[17] = docs[5]  # a duplicate id: the first kept
        if layout == "ndjson":
            catalog_dir.write_text(f"c{f}/items.ndjson", "\n".join(json.dumps(d) for d in docs) + "\n")
            roots += [str(catalog_dir.path(f"c{f}/collection.json")), str(catalog_dir.path(f"c{f}/items.ndjson"))]
        else:
            del docs[17]
            target = str(catalog_dir.path(f"c{f}/items.parquet"))
            write_parquet(iter(docs), target)
            pq.write_table(pq.read_table(target), target, row_group_size=60)  # row groups: the children's tasks
            roots += [str(catalog_dir.path(f"c{f}/collection.json")), target]
    one, _ = load_catalogs(roots, LoadOptions(index_processes=1))
    _small_appended_chunks(monkeypatch, min_bytes=16 << 10)
    parent, real, marker = os.getpid(), blobs.AppendBlobWriter._write, str(tmp_path / "killed")
    written = [0]

    def dying(self: blobs.AppendBlobWriter) -> None:
        real(self)
        written[0] += 1
        if os.getpid() != parent and written[0] == 2:
            try:  # the first child to get here only
                os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
            os._exit(3)

    monkeypatch.setattr(blobs.AppendBlobWriter, "_write", dying)
    assert cli_main(["index", *roots, "-o", str(tmp_path / "killed.idx")]) in (0, None)
    assert os.path.exists(marker)  # a child died with pieces appended
    killed = read_snapshot(str(tmp_path / "killed.idx"))[0]
    same_index(killed, one)
