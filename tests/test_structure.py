"""Formats and sources (their registries), and large structural documents: a catalog, collection
or bulk file is read within its own bound, and one that cannot be read is an error (load report,
/_mgmt/ready "degraded", `stac-static-api index` exit status), not a quiet skip."""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

from server.catalog import formats, sources
from server.catalog.formats import FormatError
from server.catalog.loader import LoadOptions, load_catalogs
from server.catalog.sources import Fetcher, FetchError
from server.index.index import degraded_reason
from tests.helpers import REPO, CatalogDir, catalog, collection, item, link, server_env

# -- the format registry ----------------------------------------------------------------------


def test_a_reader_is_chosen_by_name_then_media_type_then_content() -> None:
    lines = b'{"type": "Feature", "id": "a"}\n{"type": "Feature", "id": "b"}\n'
    assert formats.choose("/x/items.ndjson", b"") is formats.NDJSON
    assert formats.choose("https://h/x/items.JSONL?sig=1.json", b"") is formats.NDJSON  # the path's own extension
    assert formats.choose("/x/c.json", lines) is formats.JSON_DOCUMENT  # by name, whatever the content
    assert formats.choose("/x/items", b"", "application/x-ndjson; charset=utf-8") is formats.NDJSON
    assert formats.choose("/x/items", lines) is formats.NDJSON
    assert formats.choose("/x/fc", b'{"type": "FeatureCollection", "features": []}') is formats.FEATURE_COLLECTION
    assert formats.choose("/x/c", b'{"type": "Catalog"}') is formats.JSON_DOCUMENT
    assert formats.choose("/x/folder.d/file", b"") is formats.JSON_DOCUMENT  # a dot in a folder is no extension


def test_readers_read_and_fall_back_as_before() -> None:
    skipped: list[tuple[str, str]] = []

    def skip(where: str, why: str) -> None:
        skipped.append((where, why))

    def read(location: str, data: bytes) -> list[Any]:
        return list(formats.read(location, data, skip))

    fc = json.dumps({"type": "FeatureCollection", "features": [{"id": 1}, {"id": 2}]}).encode()
    assert read("/a.geojson", fc) == [{"id": 1}, {"id": 2}]
    assert read("/a.json", b'{"id": 1}\n{"id": 2}\nnot json\n') == [{"id": 1}, {"id": 2}]  # .json that is ndjson
    assert skipped == [("/a.json line 3", skipped[0][1])]
    assert read("/a.ndjson", b'{\n  "id": 1\n}\n') == [{"id": 1}]  # a pretty-printed .ndjson
    with pytest.raises(FormatError, match="invalid JSON"):
        read("/a.json", b"{{{")
    with pytest.raises(FormatError, match="without a features array"):
        read("/a.json", b'{"type": "FeatureCollection"}')


class _Packed(formats.Reader):
    """A made-up binary bulk format: magic, count, then (id length, id) records. What a
    stac-geoparquet reader will be: a class, a registration, items out of a binary file."""

    name = "packed"
    extensions = ("packed",)
    media_types = ("application/x-packed-items",)
    MAGIC = b"PKD1"

    def sniff(self, head: bytes) -> bool:
        return head.startswith(self.MAGIC)

    def read(self, data: bytes, location: str, skip: formats.Skip) -> Iterable[Any]:
        if not data.startswith(self.MAGIC):
            raise FormatError("not a packed file")
        (count,), at = struct.unpack_from("<I", data, 4), 8
        for _ in range(count):
            (size,) = struct.unpack_from("<H", data, at)
            item_id = data[at + 2 : at + 2 + size].decode()
            at += 2 + size
            yield item(item_id, collection="packed")


def _packed(ids: list[str]) -> bytes:
    body = b"".join(struct.pack("<H", len(i)) + i.encode() for i in ids)
    return _Packed.MAGIC + struct.pack("<I", len(ids)) + body


@pytest.fixture
def packed_format(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(formats, "_READERS", list(formats._READERS))
    monkeypatch.setattr(formats, "_BY_EXTENSION", dict(formats._BY_EXTENSION))
    monkeypatch.setattr(formats, "_BY_MEDIA_TYPE", dict(formats._BY_MEDIA_TYPE))
    formats.register(_Packed())  # the one line a new format adds (at the end of formats.py)


def test_a_new_format_is_one_class_and_one_registration(catalog_dir: CatalogDir, packed_format: None) -> None:
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./packed/collection.json"),
    ]))
    catalog_dir.write("packed/collection.json", collection("packed", [
        link("child", "./by-name.packed"),
        link("child", "./by-type", "application/x-packed-items"),
        link("child", "./by-content"),
    ]))
    catalog_dir.path("packed/by-name.packed").write_bytes(_packed(["a", "b"]))
    catalog_dir.path("packed/by-type").write_bytes(_packed(["c"]))
    catalog_dir.path("packed/by-content").write_bytes(_packed(["d", "e"]))
    index, report = load_catalogs([str(catalog_dir.path("catalog.json"))])
    assert sorted(index.ids) == ["a", "b", "c", "d", "e"], report.skips
    assert not report.degraded


# -- the source registry ----------------------------------------------------------------------


def test_a_source_per_scheme() -> None:
    assert sources.scheme("/data/c.json") == "" and sources.scheme("HTTPS://h/c.json") == "https"
    with Fetcher(max_bytes=1000, use_curl=False) as fetcher:
        assert isinstance(fetcher.source("/data/c.json"), sources.LocalFiles)
        assert isinstance(fetcher.source("http://h/c.json"), sources.HttpSource)
        assert fetcher.source("https://h/c.json") is fetcher.source("http://h/d.json")
        assert isinstance(fetcher.source("s3://b/c.json"), sources.S3Source)
        with pytest.raises(FetchError, match="unsupported scheme"):
            fetcher.fetch("ftp://h/c.json")
        assert fetcher.fetch_result("ftp://h/c.json")[2] is not None


# -- structural documents: their own bound, and an error when not read -------------------------


def _big_collection(catalog_dir: CatalogDir, links: int, items: int = 3) -> Path:
    """catalog.json -> big/collection.json with ``links`` item links, of which the first
    ``items`` exist (the others are skipped as unreadable)."""
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./big/collection.json"),
                                                       link("child", "./small/collection.json")]))
    catalog_dir.write("big/collection.json", collection("big", [
        link("item", f"./items/item-{n:07d}-with-a-longer-name-as-real-ones-have.json", "application/geo+json")
        for n in range(links)]))
    for n in range(items):
        catalog_dir.write(f"big/items/item-{n:07d}-with-a-longer-name-as-real-ones-have.json",
                          item(f"i{n}", collection="big"))
    catalog_dir.write("small/collection.json", collection("small", [link("item", "./s.json")]))
    catalog_dir.write("small/s.json", item("s", collection="small"))
    return catalog_dir.path("catalog.json")


def test_a_collection_over_the_item_limit_is_read_within_the_structural_bound(catalog_dir: CatalogDir) -> None:
    root = _big_collection(catalog_dir, links=300)
    assert catalog_dir.path("big/collection.json").stat().st_size > 20_000
    index, report = load_catalogs([str(root)], LoadOptions(max_document_bytes=20_000, max_structure_bytes=1 << 20))
    assert sorted(index.ids) == ["i0", "i1", "i2", "s"]
    assert not report.degraded and report.structure_skips == []
    assert degraded_reason(index.load_report) is None and degraded_reason(None) is None
    assert report.skipped == 297  # the item links with no file


def test_a_collection_over_the_structural_bound_is_an_error(catalog_dir: CatalogDir, make_client) -> None:
    root = _big_collection(catalog_dir, links=300)
    index, report = load_catalogs([str(root)], LoadOptions(max_document_bytes=20_000, max_structure_bytes=20_000))
    assert index.ids == ["s"]
    assert report.degraded and report.structure_skipped == 1
    [skip] = report.structure_skips
    assert skip.location == str(catalog_dir.path("big/collection.json"))
    assert "byte limit" in skip.reason and skip.items is None  # not read: how many it held is unknown
    assert "ERROR: 1 catalog/collection/bulk documents not read" in report.summary()
    with make_client(index=index) as client:
        ready = client.get("/_mgmt/ready")
        assert ready.status_code == 200
        body = ready.json()
        assert body["status"] == "degraded"
        assert body["load"]["structure_skipped"] == 1
        assert body["load"]["structure_skips"][0]["location"] == skip.location
    # one predicate (index.degraded_reason) behind `index`, serve --index's rewrites and the
    # ready status: the reason names what was not read
    reason = degraded_reason(index.load_report)
    assert reason is not None and skip.location in reason and reason.startswith("1 catalogs, collections")


def test_an_item_over_the_item_limit_is_an_ordinary_skip(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("collection.json", collection("c", [link("item", "./big.json"), link("item", "./ok.json")]))
    catalog_dir.write("big.json", item("big", properties={"blob": "x" * 30_000}))
    catalog_dir.write("ok.json", item("ok"))
    index, report = load_catalogs([str(catalog_dir.path("collection.json"))],
                                  LoadOptions(max_document_bytes=20_000, max_structure_bytes=1 << 20))
    assert index.ids == ["ok"]
    assert report.skipped == 1 and not report.degraded
    assert "byte limit" in dict(report.skips)[str(catalog_dir.path("big.json"))]


def test_what_a_skipped_structural_document_held_is_counted_when_known(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./a/collection.json"),
                                                       link("child", "./b/collection.json"),
                                                       link("child", "./gone/catalog.json"),
                                                       link("child", "https://elsewhere.example.com/c.json")]))
    catalog_dir.write("a/collection.json", collection("dup", [link("item", "./x.json")]))
    catalog_dir.write("a/x.json", item("x"))
    catalog_dir.write("b/collection.json", collection("dup", [link("item", "./y.json"), link("item", "./z.json")]))
    index, report = load_catalogs([str(catalog_dir.path("catalog.json"))])
    assert index.ids == ["x"]
    held = {s.location: s.items for s in report.structure_skips}
    assert held == {str(catalog_dir.path("b/collection.json")): 2, str(catalog_dir.path("gone/catalog.json")): None}
    # a link the scope rules refuse is policy, not a loss
    assert "not allowed" in dict(report.skips)["https://elsewhere.example.com/c.json"]
    assert report.skipped == 3 and report.structure_skipped == 2
    assert report.problems()["items_missing_at_least"] == 2


def test_a_bad_bulk_file_root_or_child_is_structural(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("collection.json", collection("c", [link("child", "./bulk.ndjson")]))
    catalog_dir.write_text("bulk.ndjson", "not json at all\n{}\n")
    catalog_dir.write_text("other.ndjson", json.dumps(item("o", collection="c")) + "\nnot json\n")
    index, report = load_catalogs([str(catalog_dir.path("collection.json")), str(catalog_dir.path("other.ndjson"))])
    assert index.ids == ["o"]
    assert [s.location for s in report.structure_skips] == [str(catalog_dir.path("bulk.ndjson"))]
    assert any(where.endswith("other.ndjson line 2") for where, _ in report.skips)  # a bad line: an item skip


def test_index_exits_non_zero_when_a_structural_document_was_not_read(catalog_dir: CatalogDir, tmp_path: Path) -> None:
    root = _big_collection(catalog_dir, links=300)
    out = tmp_path / "snapshot.idx"
    env_run = _run_index(root, out, max_structure_bytes=20_000)
    assert env_run.returncode == 1, env_run.stderr
    assert "big/collection.json" in env_run.stderr and "no snapshot written" in env_run.stderr
    assert not out.exists()
    ok = _run_index(root, out, max_structure_bytes=1 << 20)
    assert ok.returncode == 0, ok.stderr
    assert out.exists()


def _run_index(root: Path, out: Path, **settings: int) -> subprocess.CompletedProcess[str]:
    env = {**server_env(), "STAC_STATIC_MAX_DOCUMENT_BYTES": "20000"}
    env.update({f"STAC_STATIC_{k.upper()}": str(v) for k, v in settings.items()})
    return subprocess.run([sys.executable, "-m", "server", "index", str(root), "--output", str(out)],
                          capture_output=True, text=True, timeout=120, cwd=REPO, env={**os.environ, **env})


def test_a_realistic_35_mb_collection_loads_with_the_defaults(tmp_path: Path) -> None:
    """The issue's case at its real size: 250,000 item links, ~35 MB, under a root catalog,
    with the default settings. (Only a few item files exist; the rest are skipped quietly.)"""
    folder = tmp_path / "big"
    folder.mkdir()
    links = ",".join(
        f'{{"rel":"item","href":"./items/2023/S2B_MSIL2A_{n:08d}_N0509_R008_T31UFQ/S2B_MSIL2A_{n:08d}_T31UFQ.json",'
        f'"type":"application/geo+json"}}' for n in range(250_000))
    doc = json.dumps(collection("big")).replace('"links": []', '"links": [' + links + "]")
    (folder / "collection.json").write_text(doc)
    assert (folder / "collection.json").stat().st_size > 32 * 1024 * 1024  # over the item limit
    (tmp_path / "catalog.json").write_text(json.dumps(catalog("root", [link("child", "./big/collection.json")])))
    loader_log = logging.getLogger("stac_static_api.loader")
    loader_log.disabled = True  # 250,000 missing item files
    try:
        started = time.monotonic()
        index, report = load_catalogs([str(tmp_path / "catalog.json")], LoadOptions(progress=False))
    finally:
        loader_log.disabled = False
    assert list(index.collections) == ["big"]
    assert not report.degraded
    assert report.skipped == 250_000
    assert time.monotonic() - started < 60


def test_the_structural_bound_setting() -> None:
    from server.catalog.configured import load_options
    from server.catalog.loader import default_structure_bytes
    from server.settings import Settings

    assert load_options(Settings(max_structure_bytes=1234)).max_structure_bytes == 1234
    assert load_options(Settings()).max_structure_bytes == default_structure_bytes()
    assert 256 * 1024**2 <= default_structure_bytes() <= 8 * 1024**3


# -- large JSON documents: item links kept as bare hrefs ----------------------------------------


@pytest.mark.parametrize("text", [
    '{}', ' { } ', '{"a": 1, "b": [1, 2.5, -3e2, true, false, null], "c": {"d": "\\u00e9\\n"}}',
    '{"links": []}', '{"links": [ ]}', '{"id": "x", "links": [{"rel": "self", "href": "s"}, {"rel": "item"}, 5]}',
    '{"links": [{"rel": "item", "href": "a"}, {"rel": "child", "href": "c"}, {"rel": "item", "href": "b", "type": "t"}]}',
    '{"a": 1, "a": 2}', '\n{\n  "links" : [ {"rel":"item","href":"x"} ] ,\n  "z" : "é"\n}\n',
])
@pytest.mark.parametrize("whole", [True, False], ids=["parsed whole", "link by link"])
def test_a_lean_document_holds_what_orjson_reads(text: str, whole: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import orjson

    one_by_one: list[int] = []
    lean_links = formats._lean_links
    monkeypatch.setattr(formats, "_lean_links", lambda text, at: (one_by_one.append(at), lean_links(text, at))[1])
    if not whole:  # a document over ORJSON_LEAN_BYTES
        monkeypatch.setattr(formats, "ORJSON_LEAN_BYTES", -1)
    lean = formats.lean_document(text.encode())
    assert bool(one_by_one) == (not whole and '"links": [' in text.replace('" : [', '": ['))
    full = orjson.loads(text)
    assert lean is not None
    links = lean.get("links")
    if isinstance(links, formats.LeanLinks):  # the item links come back as bare hrefs
        items = [ln for ln in full["links"] if isinstance(ln, dict) and ln.get("rel") == "item"
                 and isinstance(ln.get("href"), str)]
        assert links.item_hrefs == [ln["href"] for ln in items]
        assert links.item_types == {n: ln["type"] for n, ln in enumerate(items) if "type" in ln}
        full["links"] = [ln for ln in full["links"] if ln not in items]
    assert lean == full


@pytest.mark.parametrize("data", [
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1} x', b'{"a": 1', b'{"a" 1}', b'{1: 2}', b'{"a": 1,}',
    b'{"links": [1, 2}', b'{"links": [1 2]}', b'{"a": "\xff"}', b'{"links": [{"rel": "item", "href": "a"},]}',
])
@pytest.mark.parametrize("whole", [True, False], ids=["parsed whole", "link by link"])
def test_a_lean_document_refuses_what_orjson_refuses(data: bytes, whole: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    import orjson

    if not whole:
        monkeypatch.setattr(formats, "ORJSON_LEAN_BYTES", -1)
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(data)
    with pytest.raises(FormatError, match="invalid JSON"):
        formats.lean_document(data)


def test_a_catalog_read_lean_loads_the_same(monkeypatch: pytest.MonkeyPatch, catalog_dir: CatalogDir) -> None:
    from server.sample import SAMPLE_ROOT

    def keys(index: Any) -> list[tuple[Any, str]]:
        return [(index.collection_of(pos), index.ids[pos]) for pos in range(index.size)]

    catalog_dir.write("old/collection.json", {
        "stac_version": "0.9.0", "id": "old", "description": "d", "license": "CC0-1.0",
        "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        "links": [link("item", "./a.json"), link("license", "https://example.com/l")]})
    catalog_dir.write("old/a.json", item("a", collection="old"))
    roots = [str(SAMPLE_ROOT), str(catalog_dir.path("old/collection.json"))]
    usual, usual_report = load_catalogs(roots)
    monkeypatch.setattr(formats, "LEAN_BYTES", 0)  # every JSON object read lean
    lean, lean_report = load_catalogs(roots)
    assert keys(lean) == keys(usual) and lean.size > 0 and ("old", "a") in keys(lean)
    assert lean.collections == usual.collections
    assert lean_report.skips == usual_report.skips == []


@pytest.mark.parametrize("use_curl", [True, False])
def test_the_bounds_over_http(catalog_dir: CatalogDir, monkeypatch: pytest.MonkeyPatch, use_curl: bool) -> None:
    from tests.helpers import serve_folder

    if use_curl and sources.CurlPool is None:
        pytest.skip("pycurl is not installed")
    if not use_curl:
        monkeypatch.setattr(sources, "CurlPool", None)
    _big_collection(catalog_dir, links=60)
    assert catalog_dir.path("big/collection.json").stat().st_size > 5_000
    with serve_folder(catalog_dir.root) as base:
        root = f"{base}/catalog.json"
        index, report = load_catalogs([root], LoadOptions(max_document_bytes=5_000, max_structure_bytes=1 << 20,
                                                          fetch_retries=0))
        assert sorted(index.ids) == ["i0", "i1", "i2", "s"] and not report.degraded
        index, report = load_catalogs([root], LoadOptions(max_document_bytes=5_000, max_structure_bytes=5_000,
                                                          fetch_retries=0))
    assert index.ids == ["s"]
    assert [s.location for s in report.structure_skips] == [f"{base}/big/collection.json"]
    assert "byte limit" in report.structure_skips[0].reason


@pytest.mark.parametrize("lean", [False, True])
def test_remote_links_resolve_as_urljoin_whatever_the_documents_url(
    catalog_dir: CatalogDir, monkeypatch: pytest.MonkeyPatch, lean: bool
) -> None:
    """A remote document's plain relative links are appended to its folder URL only where that
    is what urljoin gives (the loader checks one), item links read lean or not; a query, an
    empty or dot segment in the document's URL, or an href that is not plain (`..`, `%`) is
    resolved one by one: the same items, nothing skipped, whatever the root's URL."""
    from tests.helpers import serve_folder

    hrefs = ["./i0.json", "i1.json", "sub/i2.json", "../c/i3.json", "%69%34.json"]
    for name in ("i0", "i1", "sub/i2", "i3", "i4"):
        catalog_dir.write(f"c/{name}.json", item(name.rsplit("/", 1)[-1], collection="c"))
    catalog_dir.write("c/collection.json", collection("c", [link("item", href) for href in hrefs]))
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./c/collection.json")]))
    if lean:
        monkeypatch.setattr(formats, "LEAN_BYTES", 0)  # every JSON object read lean
    with serve_folder(catalog_dir.root) as base:
        for root in (f"{base}/catalog.json", f"{base}/c/collection.json", f"{base}/catalog.json?v=1",
                     f"{base}/c/./collection.json", f"{base}/c//collection.json"):
            index, report = load_catalogs([root])
            assert sorted(index.ids) == ["i0", "i1", "i2", "i3", "i4"], root
            assert report.skips == [], root


def test_item_links_repeated_in_a_collection_are_admitted_at_once_as_one_by_one(
    catalog_dir: CatalogDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A large collection whose item links repeat (bench/reload.py's added items, run after run)
    is admitted at once, each link's first kept (loader._admit_items): the index and report of
    the per-link path, which keeps the first too."""
    from server.catalog import loader

    hrefs = ["./a.json", "b.json", "./a.json", "c.json", "b.json", "./c.json"]
    for name in ("a", "b", "c"):
        catalog_dir.write(f"col/{name}.json", item(name, collection="col"))
    catalog_dir.write("col/collection.json", collection("col", [link("item", href) for href in hrefs]))
    monkeypatch.setattr(formats, "LEAN_BYTES", 0)  # read lean: its item links kept bare
    root = [str(catalog_dir.path("col/collection.json"))]
    at_once, report = load_catalogs(root)
    calls: list[int] = []
    real = loader._plain_targets
    monkeypatch.setattr(loader, "_plain_targets", lambda *a: calls.append(1) or real(*a))
    assert load_catalogs(root)[0].ids == at_once.ids and calls  # (it went this way)
    monkeypatch.setattr(loader, "_plain_targets", lambda *a: None)  # one by one
    one_by_one, by_one_report = load_catalogs(root)
    assert list(at_once.ids) == list(one_by_one.ids) and sorted(at_once.ids) == ["a", "b", "c"]
    assert report.summary().rsplit(";", 1)[0] == by_one_report.summary().rsplit(";", 1)[0]  # (not the seconds)
    assert report.skips == by_one_report.skips == []


@pytest.mark.parametrize("hrefs", [["./a/b.json", "c/d.json", "é f/ü.json"], ["./a/./b.json"], ["a//b"], ["/abs"], ["a/"],
                                   ["./"], [""], ["././x"], ["a/.hidden"], [".x"], ["a?b"], ["a#b"], ["a%20b"], ["a:b"],
                                   ["a\\b"], ["x", "./y", ".."], ["a/..", "b"], ["a\nb"], []])
def test_item_links_admitted_at_once_are_those_admitted_one_by_one(hrefs: list[str]) -> None:
    """loader._plain_targets (a large collection's item links admitted at once): what the
    per-link path makes of them when every href is plain relative (_PLAIN_RELATIVE), else None
    (an href with a newline too: read one by one)."""
    from server.catalog import loader

    targets = loader._plain_targets("/f/", hrefs)
    plain = bool(hrefs) and all(loader._PLAIN_RELATIVE.fullmatch(h) for h in hrefs) and not any("\n" in h for h in hrefs)
    assert (targets is not None) == plain
    if targets is not None:
        assert targets == ["/f/" + (h[2:] if h.startswith("./") else h) for h in hrefs]
