"""Loading static catalogs: structure, hrefs, cycles, bad input, duplicates, bulk input, versions.

Each test lays out a small catalog in tmp_path, loads it with load_catalogs() and checks the
index (and, where it matters, what the API serves from it).
"""

from __future__ import annotations

import gc
import json
import os
import re
import tracemalloc
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server.catalog import forked_reader
from server.catalog.loader import Loader, LoadError, LoadOptions, LoadReport, load_catalogs
from server.index import Index, IndexBuilder
from server.runtime.export import write_parquet
from tests.helpers import (
    SHARED,
    CatalogDir,
    catalog,
    collection,
    free_port,
    item,
    link,
    run_cli,
    serve_folder,
    shared_roots,
)
from tests.oracles.search import Oracle


@pytest.fixture(autouse=True, params=["in-process", "forked-reader"])
def item_reader(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every loader test twice: items read here, and read by the forked reader (which only
    starts for thousands of items on its own)."""
    if request.param == "forked-reader":
        monkeypatch.setattr(forked_reader, "usable", lambda count: count > 0)
        monkeypatch.setattr(forked_reader, "MIN_BULK_BYTES", 0)
    else:
        monkeypatch.setattr(forked_reader, "usable_bulk", lambda paths: False)
    return request.param


def keys_of(index: Index) -> set[tuple[str | None, str]]:
    return {(index.collection_of(p), index.ids[p]) for p in range(index.size)}


def load(*roots: Path | str) -> tuple[Index, LoadReport]:
    return load_catalogs([str(r) for r in roots])


def served(index: Index, key: tuple[str | None, str]) -> dict[str, Any]:
    collection_id, item_id = key
    pos = index.find(collection_id, item_id)
    assert pos is not None, key
    return index.item(pos)


def skip_reasons(report: LoadReport) -> dict[str, str]:
    return {os.path.realpath(path): reason for path, reason in report.skips}


# -- structure -------------------------------------------------------------------------------------


def test_nested_catalogs_at_depth(catalog_dir: CatalogDir) -> None:
    depth = 12
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./deep/collection.json")]))
    catalog_dir.write("deep/collection.json", collection("deep", [link("child", "./l1/catalog.json")]))
    prefix = "deep"
    for level in range(1, depth + 1):
        prefix += f"/l{level}"
        links = [link("item", f"./item-{level}/item-{level}.json")]
        if level < depth:
            links.append(link("child", f"./l{level + 1}/catalog.json"))
        catalog_dir.write(f"{prefix}/catalog.json", catalog(f"level-{level}", links))
        catalog_dir.write(f"{prefix}/item-{level}/item-{level}.json", item(f"item-{level}"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("deep", f"item-{n}") for n in range(1, depth + 1)}
    assert report.catalogs == depth + 1 and report.collections == 1 and report.items == depth
    assert report.skipped == 0
    # items below plain sub-catalogs take the nearest collection above them
    assert served(index, ("deep", f"item-{depth}"))["collection"] == "deep"


def test_items_under_a_plain_catalog(catalog_dir: CatalogDir, make_client) -> None:
    """Items of no collection get one made for them per catalog, named from it, with the extent
    of its items, so each is served at the self link it carries."""
    catalog_dir.write("catalog.json", catalog("root", [link("item", "./a/a.json"), link("child", "./sub/catalog.json")],
                                              title="The root"))
    catalog_dir.write("a/a.json", item("a"))
    catalog_dir.write("sub/catalog.json", catalog("sub", [link("item", "./b/b.json"), link("item", "./c/c.json")]))
    catalog_dir.write("sub/b/b.json", item("b", bbox=(10, 10, 11, 11)))
    catalog_dir.write("sub/c/c.json", item("c", bbox=(12, 9, 13, 10), datetime=None, properties={
        "start_datetime": "2021-01-01T00:00:00Z", "end_datetime": "2021-06-30T12:00:00.5Z"}))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("root", "a"), ("sub", "b"), ("sub", "c")}
    assert keys_of(index) == Oracle.from_root(catalog_dir.path("catalog.json")).keys()
    assert report.collections == 2 and report.catalogs == 2
    assert report.made_collections == {"root": "catalog 'root'", "sub": "catalog 'sub'"}
    assert "made 2 collections" in report.summary()
    assert served(index, ("root", "a"))["collection"] == "root"
    sub = index.collections["sub"]
    assert sub["extent"] == {"spatial": {"bbox": [[10.0, 9.0, 13.0, 11.0]]},
                             "temporal": {"interval": [["2020-01-01T00:00:00Z", "2021-06-30T12:00:00.5Z"]]}}
    assert index.collections["root"]["title"] == "The root" and sub["title"] == "sub"
    assert sub["description"].startswith("catalog sub\n\nMade by stac-static-api")
    with make_client(index=index) as c:
        assert sorted(col["id"] for col in c.get("/collections").json()["collections"]) == ["root", "sub"]
        doc = c.get("/search").json()
        assert doc["numberMatched"] == 3 and {f["id"] for f in doc["features"]} == {"a", "b", "c"}
        for feature in doc["features"]:
            self_href = next(ln["href"] for ln in feature["links"] if ln["rel"] == "self")
            assert c.get(self_href).json()["id"] == feature["id"]
        assert [f["id"] for f in c.get("/search", params={"bbox": "9,9,10.5,10.5"}).json()["features"]] == ["b"]
        assert c.get("/collections", params={"bbox": "10.5,10.5,10.6,10.6"}).json()["collections"][0]["id"] == "sub"


def test_made_collection_ids_avoid_loaded_ones_and_each_other(catalog_dir: CatalogDir) -> None:
    """A catalog id that names a loaded collection, or another catalog's made collection: -2, -3."""
    catalog_dir.write("catalog.json", catalog("x", [link("item", "./a.json"), link("child", "./one/catalog.json"),
                                                    link("child", "./two/catalog.json"), link("child", "./c/collection.json")]))
    catalog_dir.write("a.json", item("a"))
    catalog_dir.write("one/catalog.json", catalog("x", [link("item", "./b.json")]))
    catalog_dir.write("one/b.json", item("b"))
    catalog_dir.write("two/catalog.json", catalog("x-2", [link("item", "./d.json")]))
    catalog_dir.write("two/d.json", item("d"))
    catalog_dir.write("c/collection.json", collection("x", [link("item", "./e.json")]))
    catalog_dir.write("c/e.json", item("e"))
    index, report = load(catalog_dir.path("catalog.json"))
    # met in this order: the root "x", then "x" (one/), then "x-2" (two/); "x" is the loaded collection's
    assert keys_of(index) == {("x-2", "a"), ("x-3", "b"), ("x-2-2", "d"), ("x", "e")}
    assert keys_of(index) == Oracle.from_root(catalog_dir.path("catalog.json")).keys()
    assert set(report.made_collections) == {"x-2", "x-3", "x-2-2"}


def test_collection_nested_in_collection(catalog_dir: CatalogDir, make_client) -> None:
    catalog_dir.write("collection.json", collection("outer", [
        link("item", "./o1/o1.json"), link("child", "./inner/collection.json")]))
    catalog_dir.write("o1/o1.json", item("o1"))
    catalog_dir.write("inner/collection.json", collection("inner", [
        link("item", "./i1/i1.json"), link("child", "./more/catalog.json")]))
    catalog_dir.write("inner/i1/i1.json", item("i1"))
    catalog_dir.write("inner/more/catalog.json", catalog("more", [link("item", "./i2/i2.json")]))
    catalog_dir.write("inner/more/i2/i2.json", item("i2"))
    index, report = load(catalog_dir.path("collection.json"))
    assert keys_of(index) == {("outer", "o1"), ("inner", "i1"), ("inner", "i2")}
    assert set(index.collections) == {"outer", "inner"}
    assert keys_of(index) == Oracle.from_root(catalog_dir.path("collection.json")).keys()
    with make_client(index=index) as c:
        assert sorted(col["id"] for col in c.get("/collections").json()["collections"]) == ["inner", "outer"]
        inner = c.get("/collections/inner/items").json()
        assert sorted(f["id"] for f in inner["features"]) == ["i1", "i2"]
        assert c.get("/collections/inner/items/i2").status_code == 200
        assert c.get("/collections/outer/items/i2").status_code == 404


def test_relative_and_absolute_hrefs(catalog_dir: CatalogDir) -> None:
    root = catalog_dir.root
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", str(root / "by-path" / "catalog.json")),          # absolute path
        link("child", (root / "by-url" / "catalog.json").as_uri()),     # file:// URL
        link("child", "plain/catalog.json"),                            # relative, no ./
        link("child", "./with%20space/catalog.json"),                    # percent-encoded
        link("item", "./items/../items/r.json"),                        # .. that stays inside
    ]))
    catalog_dir.write("by-path/catalog.json", catalog("by-path", [link("item", str(root / "by-path" / "p.json"))]))
    catalog_dir.write("by-path/p.json", item("p"))
    catalog_dir.write("by-url/catalog.json", catalog("by-url", [link("item", "u.json")]))
    catalog_dir.write("by-url/u.json", item("u"))
    catalog_dir.write("plain/catalog.json", catalog("plain", [link("item", "../shared-items/s.json")]))
    catalog_dir.write("shared-items/s.json", item("s"))
    catalog_dir.write("with space/catalog.json", catalog("spaced", [link("item", "./w.json")]))
    catalog_dir.write("with space/w.json", item("w"))
    catalog_dir.write("items/r.json", item("r"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert report.skips == []
    assert {i for _, i in keys_of(index)} == {"p", "u", "s", "w", "r"}
    assert report.catalogs == 5


def test_link_cycles_terminate(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./catalog.json"),                   # self-loop
        link("child", "./a/collection.json"),
        link("item", "./a/x/x.json"),                      # the same item as below, linked twice
    ]))
    catalog_dir.write("a/collection.json", collection("a", [
        link("child", "../catalog.json"),                  # back to an ancestor
        link("child", "./collection.json"),                # self-loop
        link("child", "./b/catalog.json"),
        link("item", "./x/x.json"),
    ]))
    catalog_dir.write("a/b/catalog.json", catalog("b", [
        link("child", "../collection.json"),               # back to its parent
        link("child", "../../catalog.json"),               # back to the root
        link("item", "./y.json"),
        link("item", "./y.json"),
    ]))
    catalog_dir.write("a/x/x.json", item("x", collection="a"))
    catalog_dir.write("a/b/y.json", item("y"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("a", "x"), ("a", "y")}
    assert report.catalogs == 2 and report.collections == 1


# -- unreadable input ---------------------------------------------------------------------------------


def test_bad_documents_are_skipped_and_reported(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./missing/catalog.json"),
        link("child", "./broken/catalog.json"),
        link("child", "./array/catalog.json"),
        link("child", "./good/collection.json"),
    ]))
    catalog_dir.write_text("broken/catalog.json", '{"type": "Catalog", "id": "broken", ')
    catalog_dir.write_text("array/catalog.json", "[1, 2, 3]")
    catalog_dir.write("good/collection.json", collection("good", [
        link("item", "./ok/ok.json"),
        link("item", "./gone.json"),
        link("item", "./bad-json.json"),
        link("item", "./string.json"),
        link("item", "./no-id.json"),
        link("item", "./bad-time.json"),
        link("item", "./not-a-feature.json"),
        link("item", "./ok2/ok2.json"),
    ]))
    catalog_dir.write("good/ok/ok.json", item("ok"))
    catalog_dir.write("good/ok2/ok2.json", item("ok2"))
    catalog_dir.write_text("good/bad-json.json", "{nope")
    catalog_dir.write_text("good/string.json", '"just a string"')
    no_id = item("x")
    del no_id["id"]
    catalog_dir.write("good/no-id.json", no_id)
    catalog_dir.write("good/bad-time.json", item("bad-time", datetime="yesterday"))
    catalog_dir.write("good/not-a-feature.json", {"hello": "world"})
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("good", "ok"), ("good", "ok2")}
    reasons = skip_reasons(report)
    bad = ["missing/catalog.json", "broken/catalog.json", "array/catalog.json", "good/gone.json",
           "good/bad-json.json", "good/string.json", "good/no-id.json", "good/bad-time.json",
           "good/not-a-feature.json"]
    assert set(reasons) == {os.path.realpath(catalog_dir.path(p)) for p in bad}
    assert report.skipped == len(bad)
    for path, reason in reasons.items():
        assert reason.strip(), path
    r = lambda rel: reasons[os.path.realpath(catalog_dir.path(rel))]  # noqa: E731
    assert report.skipped_by_reason == {
        "unreadable": 2, "invalid_json": 2, "not_stac": 3, "invalid_item": 2,  # no-id, bad-time
        "out_of_scope": 0, "limit": 0, "too_large": 0, "missing_id": 0, "duplicate": 0}
    assert report.problems()["skipped_by_reason"] == report.skipped_by_reason  # /_mgmt/ready's load
    assert re.search(r"no such file|not found|exist", r("missing/catalog.json"), re.I)
    assert "json" in r("broken/catalog.json").lower()
    assert "object" in r("array/catalog.json").lower()
    assert "datetime" in r("good/bad-time.json")
    assert "id" in r("good/no-id.json")
    summary = report.summary()
    for number in (report.catalogs, report.collections, report.items, report.skipped):
        assert str(number) in summary
    assert report.seconds >= 0


def test_bad_root_among_good_roots(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("good/catalog.json", catalog("good", [link("item", "./a.json")]))
    catalog_dir.write("good/a.json", item("a"))
    catalog_dir.write_text("bad/catalog.json", "not json")
    index, report = load(catalog_dir.path("good/catalog.json"), catalog_dir.path("bad/catalog.json"),
                         catalog_dir.path("nowhere/catalog.json"))
    assert keys_of(index) == {("good", "a")}
    assert report.skipped == 2


@pytest.mark.parametrize(
    "content",
    [None, "", "not json", "[]", '"text"', "42", '{"hello": "world"}', '{"type": "Catalog"}'],
    ids=["missing", "empty", "not-json", "array", "string", "number", "not-stac", "no-id"],
)
def test_nothing_loadable_raises(catalog_dir: CatalogDir, content: str | None) -> None:
    root = catalog_dir.path("catalog.json")
    if content is not None:
        catalog_dir.write_text("catalog.json", content)
    with pytest.raises(LoadError, match=re.escape(str(root))):
        load(root)


def test_empty_folder_raises(catalog_dir: CatalogDir) -> None:
    with pytest.raises(LoadError):
        load(catalog_dir.root)


def test_cli_exits_1_when_nothing_loads(tmp_path: Path) -> None:
    result = run_cli(["serve", str(tmp_path / "no-such-catalog.json"), "--host", "127.0.0.1",
                      "--port", str(free_port())])
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "nothing could be loaded" in result.stderr


# -- duplicates and collection membership -----------------------------------------------------------


def test_duplicate_ids_keep_the_first(catalog_dir: CatalogDir, make_client) -> None:
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./c1/collection.json"), link("child", "./c2/collection.json")]))
    catalog_dir.write("c1/collection.json", collection("c1", [
        link("item", "./first/x.json"), link("item", "./second/x.json")]))
    catalog_dir.write("c1/first/x.json", item("x", properties={"which": "first"}))
    catalog_dir.write("c1/second/x.json", item("x", bbox=(50, 50, 51, 51), properties={"which": "second"}))
    catalog_dir.write("c2/collection.json", collection("c2", [link("item", "./x.json")]))
    catalog_dir.write("c2/x.json", item("x", properties={"which": "other collection"}))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("c1", "x"), ("c2", "x")}
    assert served(index, ("c1", "x"))["properties"]["which"] == "first"
    assert served(index, ("c2", "x"))["properties"]["which"] == "other collection"
    reasons = skip_reasons(report)
    assert list(reasons) == [os.path.realpath(catalog_dir.path("c1/second/x.json"))]
    assert "duplicate" in next(iter(reasons.values()))
    with make_client(index=index) as c:
        assert c.get("/collections/c1/items/x").json()["properties"]["which"] == "first"
        assert c.get("/collections/c2/items/x").json()["properties"]["which"] == "other collection"
        doc = c.get("/search", params={"ids": "x"}).json()
        assert doc["numberMatched"] == 2
        # the dropped duplicate is not searchable by its own footprint either
        assert c.get("/search", params={"bbox": "50,50,51,51"}).json()["numberMatched"] == 0


def test_duplicate_collection_ids_keep_the_first(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./one/collection.json"), link("child", "./two/collection.json")]))
    catalog_dir.write("one/collection.json", collection("same", [link("item", "./a.json")], title="one"))
    catalog_dir.write("one/a.json", item("a"))
    catalog_dir.write("two/collection.json", collection("same", [link("item", "./b.json")], title="two"))
    catalog_dir.write("two/b.json", item("b"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert index.collections["same"]["title"] == "one"
    assert list(skip_reasons(report)) == [os.path.realpath(catalog_dir.path("two/collection.json"))]
    assert keys_of(index) == {("same", "a")}


def test_item_collection_field_disagreeing_with_parent(catalog_dir: CatalogDir, make_client) -> None:
    """The item's own `collection` wins over its parent when that collection exists; one naming
    a collection that is not loaded is served under the nearest collection above it (the
    loader's documented rule, so that its collection link resolves) and is still found."""
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./a/collection.json"), link("child", "./b/collection.json")]))
    catalog_dir.write("a/collection.json", collection("a", [
        link("item", "./y.json"), link("item", "./z.json"), link("item", "./n.json")]))
    catalog_dir.write("b/collection.json", collection("b"))
    catalog_dir.write("a/y.json", item("y", collection="b"))
    catalog_dir.write("a/z.json", item("z", collection="not-loaded"))
    catalog_dir.write("a/n.json", item("n"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("b", "y"), ("a", "z"), ("a", "n")}
    assert keys_of(index) == Oracle.from_root(catalog_dir.path("catalog.json"), only_loaded_collections=True).keys()
    assert report.skipped == 0
    # reported: how many items, naming which collection, served under which
    assert report.reassigned == {("not-loaded", "a"): 1}
    assert "1 items naming collection 'not-loaded' served under 'a'" in report.summary()
    with make_client(index=index) as c:
        ready = c.get("/_mgmt/ready").json()
        assert ready["status"] == "ready"
        assert ready["load"]["reassigned"] == [{"collection": "not-loaded", "served_under": "a", "items": 1}]
        assert c.get("/collections/b/items/y").json()["collection"] == "b"
        assert c.get("/collections/a/items/y").status_code == 404
        assert c.get("/search", params={"collections": "b"}).json()["numberMatched"] == 1


def test_item_naming_an_unloaded_collection_without_parent_collection(catalog_dir: CatalogDir, make_client) -> None:
    """No collection to fall back on: served under the one made for its catalog, never with a
    dangling collection link."""
    catalog_dir.write("catalog.json", catalog("root", [link("item", "./i.json")]))
    catalog_dir.write("i.json", item("i", collection="elsewhere"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("root", "i")}
    assert report.skipped == 0 and report.reassigned == {("elsewhere", "root"): 1}
    with make_client(index=index) as c:
        feature = c.get("/search", params={"ids": "i"}).json()["features"][0]
        assert feature["collection"] == "root"
        for ln in feature["links"]:
            if ln["rel"] in ("collection", "parent", "self"):
                assert c.get(ln["href"]).status_code == 200, ln


@pytest.mark.parametrize("declared", [["good"], {"id": "good"}, 5, True])
def test_an_item_whose_collection_is_not_a_string_is_skipped(catalog_dir: CatalogDir, declared: Any) -> None:
    """Found by QA: a list or object there crashed the whole load (unhashable), and so every
    reload after one such file appeared."""
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./good/collection.json")]))
    catalog_dir.write("good/collection.json", collection("good", [link("item", "./a.json"), link("item", "./b.json")]))
    catalog_dir.write("good/a.json", item("a", collection="good"))
    bad = item("b")
    bad["collection"] = declared
    catalog_dir.write("good/b.json", bad)
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("good", "a")}
    reasons = skip_reasons(report)
    assert "collection is not a string" in reasons[os.path.realpath(catalog_dir.path("good/b.json"))]


def test_a_collection_id_with_a_slash_is_loaded_with_everything_below_it(catalog_dir: CatalogDir, make_client) -> None:
    """Such ids were once skipped at load (no URL could name them); the API now routes on the raw
    path, where "/" in an id is %2F: the collection, its child catalog's items and its links load
    and are served like any other."""
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./a/collection.json"),
                                                       link("child", "./b/collection.json")]))
    catalog_dir.write("a/collection.json", collection("planet/fusion/14N/29E-188N",
                                                      [link("item", "./i.json"), link("child", "./sub/catalog.json")]))
    catalog_dir.write("a/i.json", item("i", collection="planet/fusion/14N/29E-188N"))
    catalog_dir.write("a/sub/catalog.json", catalog("sub", [link("item", "./k.json")]))
    catalog_dir.write("a/sub/k.json", item("k/1"))
    catalog_dir.write("b/collection.json", collection("fine", [link("item", "./j.json")]))
    catalog_dir.write("b/j.json", item("j", collection="fine"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("fine", "j"), ("planet/fusion/14N/29E-188N", "i"), ("planet/fusion/14N/29E-188N", "k/1")}
    assert not skip_reasons(report)
    with make_client(index=index) as client:
        assert [c["id"] for c in client.get("/collections").json()["collections"]] == ["fine", "planet/fusion/14N/29E-188N"]
        got = client.get("/collections/planet%2Ffusion%2F14N%2F29E-188N/items/k%2F1")
        assert got.status_code == 200, got.text
        assert (got.json()["collection"], got.json()["id"]) == ("planet/fusion/14N/29E-188N", "k/1")


# -- roots ---------------------------------------------------------------------------------------------


def test_folder_root_finds_catalog_json(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [link("item", "./a.json")]))
    catalog_dir.write("a.json", item("a"))
    index, _ = load(catalog_dir.root)
    assert keys_of(index) == {("root", "a")}


def test_folder_root_finds_collection_json(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("collection.json", collection("c", [link("item", "./a.json")]))
    catalog_dir.write("a.json", item("a"))
    index, _ = load(catalog_dir.root)
    assert keys_of(index) == {("c", "a")}


def test_folder_root_finds_a_nested_root(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("release-1/catalog.json", catalog("root", [link("item", "./a.json")]))
    catalog_dir.write("release-1/a.json", item("a"))
    catalog_dir.write_text("README.md", "a catalog is in release-1/")
    index, _ = load(catalog_dir.root)
    assert keys_of(index) == {("root", "a")}


def _bulk_items(n: int, collection_id: str | None) -> list[dict[str, Any]]:
    return [
        item(f"bulk-{i}", bbox=(i, 0, i + 0.5, 0.5), datetime=f"2021-01-{i + 1:02d}T00:00:00Z", collection=collection_id)
        for i in range(n)
    ]


def test_feature_collection_with_a_collection_file(catalog_dir: CatalogDir, make_client) -> None:
    catalog_dir.write("collection.json", collection("bulk"))
    catalog_dir.write("index.geojson", {"type": "FeatureCollection", "features": _bulk_items(12, "bulk")})
    index, report = load(catalog_dir.path("collection.json"), catalog_dir.path("index.geojson"))
    assert keys_of(index) == {("bulk", f"bulk-{i}") for i in range(12)}
    assert report.skipped == 0
    with make_client(index=index) as c:
        assert c.get("/collections/bulk/items", params={"limit": 100}).json()["numberMatched"] == 12
        doc = c.get("/collections/bulk/items", params={"bbox": "2.2,0,3.2,1"}).json()
        assert sorted(f["id"] for f in doc["features"]) == ["bulk-2", "bulk-3"]
        assert c.get("/collections/bulk/items/bulk-7").status_code == 200


def test_ndjson_items_with_a_collection_file(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("collection.json", collection("bulk"))
    lines = "\n".join(json.dumps(i) for i in _bulk_items(9, "bulk")) + "\n"
    catalog_dir.write_text("items.ndjson", lines)
    index, report = load(catalog_dir.path("collection.json"), catalog_dir.path("items.ndjson"))
    assert keys_of(index) == {("bulk", f"bulk-{i}") for i in range(9)}
    assert report.skipped == 0


def test_documents_starting_with_a_utf8_byte_order_mark_are_read(catalog_dir: CatalogDir) -> None:
    """A catalog, a collection, an item file and an ndjson file each starting with a UTF-8 BOM
    (as editors on Windows save them; RFC 8259 lets a parser ignore it): all read, nothing
    skipped (qa16: such a document was skipped as invalid JSON, and everything under it lost)."""
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./c/collection.json")]))
    catalog_dir.write("c/collection.json", collection("c", [link("item", "./a/a.json"), link("item", "./b/b.json")]))
    catalog_dir.write("c/a/a.json", item("a"))
    catalog_dir.write("c/b/b.json", item("b"))
    for name in ("catalog.json", "c/collection.json", "c/a/a.json"):
        path = Path(catalog_dir.path(name))
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    lines = "".join(json.dumps(i) + "\n" for i in _bulk_items(3, "c"))
    Path(catalog_dir.path("c/items.ndjson")).write_bytes(b"\xef\xbb\xbf" + lines.encode())
    index, report = load(catalog_dir.path("catalog.json"), catalog_dir.path("c/items.ndjson"))
    assert report.skipped == 0, report.skips
    assert keys_of(index) == {("c", "a"), ("c", "b"), *(("c", f"bulk-{i}") for i in range(3))}
    assert served(index, ("c", "a"))["id"] == "a"


def test_bulk_items_without_collection_field(catalog_dir: CatalogDir) -> None:
    """A bulk file given as a root, its items of no collection: a collection named from the file."""
    catalog_dir.write("items.geojson", {"type": "FeatureCollection", "features": _bulk_items(3, None)})
    index, report = load(catalog_dir.path("items.geojson"))
    assert keys_of(index) == {("items", f"bulk-{i}") for i in range(3)}
    assert report.made_collections == {"items": "file 'items.geojson'"}
    assert index.collections["items"]["extent"]["spatial"]["bbox"] == [[0.0, 0.0, 2.5, 0.5]]


def test_bulk_items_naming_a_collection_read_later_wait_for_it(catalog_dir: CatalogDir) -> None:
    """Bulk items are indexed as they are read, unless the collection they name is not loaded
    yet (a later root holds it): then they wait for the end of the walk. One rejected while
    the walk goes on is an item's skip, not the bulk file's."""
    names = ["bulk-0", "bulk-1", "bulk-0", "late-2", "late-3", "bulk-4", "bulk-5"]
    lines = [item(name, collection="late" if name.startswith("late") else None) for name in names]
    catalog_dir.write_text("items.ndjson", "".join(json.dumps(i) + "\n" for i in lines))
    catalog_dir.write("late/collection.json", collection("late"))
    index, report = load(catalog_dir.path("items.ndjson"), catalog_dir.path("late/collection.json"))
    assert report.skipped == 1 and report.structure_skipped == 0
    assert keys_of(index) == {("items", "bulk-0"), ("items", "bulk-1"), ("late", "late-2"), ("late", "late-3"),
                              ("items", "bulk-4"), ("items", "bulk-5")}  # "items": made for the file's items of none


def _catalog_and_bulk_root(catalog_dir: CatalogDir, n: int) -> list[dict[str, Any]]:
    """A catalog of collections c1, c2 (children: read at the walk's second level) and a bulk
    root items.ndjson of ``n`` items of theirs, given after it: every item waits for them."""
    catalog_dir.write("catalog.json", catalog("root", [link("child", f"./{c}/collection.json") for c in ("c1", "c2")]))
    for cid in ("c1", "c2"):
        catalog_dir.write(f"{cid}/collection.json", collection(cid))
    assets = {f"B{k}": {"href": f"https://data.example/{k}.tif", "type": "image/tiff", "roles": ["data"]} for k in range(8)}
    items = [item(f"i{i}", bbox=(i % 90, 0, i % 90 + 1, 1), datetime=f"2021-01-{i % 28 + 1:02d}T00:00:00Z",
                  collection=("c1", "c2")[i % 2], properties={f"p{k}": k * 1.5 + i for k in range(20)}, assets=assets)
             for i in range(n)]
    return items


def test_bulk_root_items_waiting_for_a_catalogs_collections_are_not_held_in_memory(catalog_dir: CatalogDir) -> None:
    """`index catalog.json items.ndjson`: the file's items wait for the collections the walk
    reaches next; as parsed dicts that was ~7x the file in memory (15 GB within 30 s at ten
    million), now they wait as bytes on disk (waiting.py)."""
    items = _catalog_and_bulk_root(catalog_dir, 3000)
    catalog_dir.write_text("items.ndjson", "".join(json.dumps(i) + "\n" for i in items))
    size = catalog_dir.path("items.ndjson").stat().st_size
    tracemalloc.start()
    try:
        index, report = load(catalog_dir.path("catalog.json"), catalog_dir.path("items.ndjson"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert index.size == 3000 and report.skipped == 0 and not report.made_collections
    assert peak < 4 * size  # the file's bytes, the index's (in memory here); not the items as dicts


def test_bulk_root_items_that_waited_are_indexed_as_if_their_collections_came_first(catalog_dir: CatalogDir) -> None:
    """The items that waited (as bytes) are the same values, in the same order, as when the
    collections are given first and nothing waits: the same index, the same duplicate kept,
    the same skips with their reasons, reassignments and made collection."""
    items = _catalog_and_bulk_root(catalog_dir, 40)
    items[5]["properties"]["big"] = 2**70  # past 64 bits: waits pickled
    items[7] = item("i3", collection="c2", properties={"second": True})  # a duplicate of i3: the first kept
    items[9]["collection"] = "gone"  # never loaded: served under the file's made collection
    del items[11]["collection"]  # of no collection: likewise
    items[13]["properties"] = "not an object"  # invalid: skipped with its reason
    lines = [json.dumps(i) for i in items]
    lines[15] = '{"type": "Feature", "id": '  # not JSON
    lines[17] = json.dumps(catalog("inner", [link("child", "./c3/collection.json")]))  # structure in the file
    catalog_dir.write("c3/collection.json", collection("c3"))
    catalog_dir.write_text("items.ndjson", "".join(line + "\n" for line in lines))
    waited = load(catalog_dir.path("catalog.json"), catalog_dir.path("items.ndjson"))
    first = load(catalog_dir.path("c1/collection.json"), catalog_dir.path("c2/collection.json"),
                 catalog_dir.path("items.ndjson"))
    (index, report), (want, want_report) = waited, first
    assert [index.json[p] for p in range(index.size)] == [want.json[p] for p in range(want.size)]
    assert index.size == 40 - 4  # the duplicate, the invalid, the line not JSON, the catalog: skipped
    assert served(index, ("c2", "i3"))["properties"].get("second") is None
    assert served(index, ("c2", "i5"))["properties"]["big"] == 2**70
    assert report.skips == want_report.skips and report.skipped_by_reason == want_report.skipped_by_reason
    assert {reason for _, reason in report.skips} >= {"item 'i13': missing properties object"}
    assert report.reassigned == want_report.reassigned == {("gone", "items"): 1}
    assert report.made_collections == want_report.made_collections == {"items": "file 'items.ndjson'"}


def test_the_collector_is_paused_while_loading(catalog_dir: CatalogDir, monkeypatch: pytest.MonkeyPatch) -> None:
    catalog_dir.write("items.geojson", {"type": "FeatureCollection", "features": _bulk_items(3, None)})
    during: list[bool] = []
    real = IndexBuilder.add_item
    monkeypatch.setattr(IndexBuilder, "add_item", lambda self, *a: during.append(gc.isenabled()) or real(self, *a))
    load(catalog_dir.path("items.geojson"))
    assert during == [False] * 3 and gc.isenabled()
    gc.disable()
    try:  # off before: left off
        load(catalog_dir.path("items.geojson"))
        assert not gc.isenabled()
    finally:
        gc.enable()


def _parquet_layout(catalog_dir: CatalogDir) -> list[Path]:
    """A collection whose items are a parquet asset, a parquet root of more items of it (one
    a duplicate), a file named .parquet that is not one, and an asset that is missing."""
    catalog_dir.write("catalog.json", catalog("root", [link("child", f"./{c}/collection.json") for c in "cd"]))
    asset = {"href": "./items.parquet", "type": "application/vnd.apache.parquet", "roles": ["stac-items"]}
    catalog_dir.write("c/collection.json", collection("c") | {"assets": {"geoparquet-items": asset}})
    catalog_dir.write("d/collection.json", collection("d") | {"assets": {"geoparquet-items": asset}})  # no such file
    write_parquet(iter(_bulk_items(12, "c")), str(catalog_dir.path("c/items.parquet")))
    more = [item(f"more-{i}", bbox=(i, 1, i + 1, 2), collection="c", properties={"n": i}) for i in range(9)]
    write_parquet(iter(more + _bulk_items(1, "c")), str(catalog_dir.path("more.parquet")))
    catalog_dir.write_text("broken.parquet", "PAR1 but not parquet")
    return [catalog_dir.path(name) for name in ("catalog.json", "more.parquet", "broken.parquet")]


def _loaded_in_process(roots: list[Path], monkeypatch: pytest.MonkeyPatch) -> tuple[Index, LoadReport]:
    monkeypatch.setattr(forked_reader, "usable_bulk", lambda paths: False)
    expected = load(*roots)
    monkeypatch.setattr(forked_reader, "usable_bulk", lambda paths: True)
    return expected


def _same_load(got: tuple[Index, LoadReport], expected: tuple[Index, LoadReport]) -> None:
    (index, report), (want, want_report) = got, expected
    assert [index.json[p] for p in range(index.size)] == [want.json[p] for p in range(want.size)]
    assert sorted(report.skips) == sorted(want_report.skips)
    assert report.structure_skips == want_report.structure_skips
    assert sorted(report.sources.path_list()) == sorted(want_report.sources.path_list())


def test_parquet_files_read_by_a_forked_child_build_the_same_index(
    catalog_dir: CatalogDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = _parquet_layout(catalog_dir)
    expected = _loaded_in_process(roots, monkeypatch)
    index, report = expected
    assert index.size == 12 + 9 and report.skipped == 3 and report.structure_skipped == 2
    assert any("duplicate id 'bulk-0'" in reason for _, reason in report.skips)
    calls: list[int] = []
    real = forked_reader.read_bulk_forked
    monkeypatch.setattr(forked_reader, "read_bulk_forked",
                        lambda locations, *a: calls.append(len(locations)) or real(locations, *a))
    _same_load(load(*roots), expected)
    assert calls == [4]  # more, broken (roots), then the two assets


def test_items_of_a_bulk_file_a_dead_child_did_not_send_are_read_here(
    catalog_dir: CatalogDir, monkeypatch: pytest.MonkeyPatch
) -> None:
    roots = _parquet_layout(catalog_dir)
    expected = _loaded_in_process(roots, monkeypatch)
    real_send = forked_reader._send

    def send_now(out: Any, kind: bytes, position: int, payload: bytes) -> None:
        real_send(out, kind, position, payload)
        out.flush()  # what the child sent before it died reaches this process

    parent = os.getpid()
    real_values = Loader._bulk_values
    sent: list[int] = []

    def dies_in_the_fourth_item(self: Loader, location: str, data: bytes, skip: Any) -> Iterator[Any]:
        for n, value in enumerate(real_values(self, location, data, skip)):
            if os.getpid() != parent and location.endswith("more.parquet") and n == 3:
                os._exit(3)
            yield value

    def received(*args: Any) -> Iterator[tuple[int, bytes, bytes]]:
        for record in real_read(*args):
            sent.append(record[0])
            yield record

    real_read = forked_reader.read_bulk_forked
    monkeypatch.setattr(forked_reader, "_send", send_now)
    monkeypatch.setattr(Loader, "_bulk_values", dies_in_the_fourth_item)
    monkeypatch.setattr(forked_reader, "read_bulk_forked", received)
    _same_load(load(*roots), expected)
    assert sent == [0, 0, 0]  # three items of the first file, then the child was gone


def test_single_item_root(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("one.json", item("one", geometry=None, bbox=None))
    index, _ = load(catalog_dir.path("one.json"))
    assert keys_of(index) == {("one", "one")}
    assert served(index, ("one", "one"))["geometry"] is None
    # no footprint to bound: the whole world
    assert index.collections["one"]["extent"]["spatial"]["bbox"] == [[-180.0, -90.0, 180.0, 90.0]]


# -- scope -----------------------------------------------------------------------------------------------


def test_links_escaping_the_root_folder_are_refused(tmp_path: Path) -> None:
    root = CatalogDir(tmp_path / "root")
    outside = CatalogDir(tmp_path / "outside")
    outside.write("catalog.json", catalog("outside", [link("item", "./o.json")]))
    outside.write("o.json", item("o"))
    outside.write("x.json", item("x"))
    root.write("catalog.json", catalog("root", [
        link("child", "../outside/catalog.json"),
        link("child", "./sub/../../outside/catalog.json"),
        link("item", "../outside/x.json"),
        link("item", str(outside.path("x.json"))),            # absolute path outside
        link("item", "./in.json"),
    ]))
    root.write("in.json", item("in"))
    index, report = load(root.path("catalog.json"))
    assert keys_of(index) == {("root", "in")}
    reasons = skip_reasons(report)
    assert set(reasons) == {os.path.realpath(outside.path("catalog.json")), os.path.realpath(outside.path("x.json"))}
    assert all("outside" in reason for reason in reasons.values())


def test_symlink_escaping_the_root_folder_is_refused(tmp_path: Path) -> None:
    root = CatalogDir(tmp_path / "root")
    outside = CatalogDir(tmp_path / "outside")
    outside.write("secret.json", item("secret"))
    os.symlink(outside.path("secret.json"), root.path("link.json"))
    root.write("catalog.json", catalog("root", [link("item", "./link.json"), link("item", "./in.json")]))
    root.write("in.json", item("in"))
    index, report = load(root.path("catalog.json"))
    assert keys_of(index) == {("root", "in")}
    assert report.skipped == 1


def test_symlinks_met_after_many_plain_files_are_judged_as_the_first(tmp_path: Path) -> None:
    """Plain files of one folder are opened below it by name (LocalFiles anchors it after two),
    and so are folders of items (the files layout, ITEM/ITEM.json): a symlink met later, a file
    or a folder, out of the root or an alias of a file read, is refused or read as before."""
    root = CatalogDir(tmp_path / "root")
    outside = CatalogDir(tmp_path / "outside")
    outside.write("secret.json", item("secret"))
    outside.write("folder/away.json", item("away"))
    links = []
    for i in range(6):  # flat: the catalog's own folder
        root.write(f"flat{i}.json", item(f"flat{i}"))
        links.append(link("item", f"./flat{i}.json"))
    for i in range(6):  # the files layout: the folder above
        root.write(f"nested{i}/nested{i}.json", item(f"nested{i}"))
        links.append(link("item", f"./nested{i}/nested{i}.json"))
    os.symlink(outside.path("secret.json"), root.path("secret.json"))  # a file out of the root
    os.symlink(root.path("flat0.json"), root.path("again.json"))  # an alias of a file read
    os.symlink(outside.path("folder"), root.path("away"))  # a folder out of the root
    os.symlink(root.path("nested0"), root.path("alias"))  # a folder inside: the file read again
    os.symlink(root.path("nested1"), root.path("other"))  # a folder inside, its file read once here
    links += [link("item", "./secret.json"), link("item", "./again.json"), link("item", "./away/away.json"),
              link("item", "./alias/nested0.json"), link("item", "./other/nested1.json"), link("item", "./flat5.json")]
    root.write("catalog.json", catalog("root", links[:7] + links[12:] + links[7:12]))
    index, report = load(root.path("catalog.json"))
    assert keys_of(index) == {("root", f"flat{i}") for i in range(6)} | {("root", f"nested{i}") for i in range(6)}
    reasons = {path: reason for path, reason in report.skips}
    assert set(reasons) == {str(root.path(name)) for name in (
        "secret.json", "again.json", "away/away.json", "alias/nested0.json", "other/nested1.json")}
    assert "outside" in reasons[str(root.path("secret.json"))]
    assert "outside" in reasons[str(root.path("away/away.json"))]
    assert "symlink" in reasons[str(root.path("again.json"))]
    assert "symlink" in reasons[str(root.path("alias/nested0.json"))]
    # linked under its own name too, further on: that one is read, this one is the alias
    assert "symlink" in reasons[str(root.path("other/nested1.json"))]
    assert served(index, ("root", "nested1"))["id"] == "nested1"


def test_remote_links_from_a_local_catalog_are_refused(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "http://127.0.0.1:9/catalog.json"),
        link("item", "http://169.254.169.254/latest/meta-data/item.json"),
        link("item", "./in.json"),
    ]))
    catalog_dir.write("in.json", item("in"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("root", "in")}
    assert report.skipped == 2


# -- versions and hrefs ----------------------------------------------------------------------------------


def _legacy(catalog_dir: CatalogDir, version: str, with_types: bool) -> Path:
    root = catalog(f"old-{version}", [link("child", "./c/collection.json")])
    col = collection("oldcol", [link("item", "./i/i.json")])
    it = item("olditem", bbox=(5, 50, 6, 51), datetime="2019-06-01T00:00:00Z", collection="oldcol",
              assets={"data": {"href": "./data.tif"}})
    for doc in (root, col, it):
        doc["stac_version"] = version
    if not with_types:
        root.pop("type")
        col.pop("type")
    base = f"v{version}"
    catalog_dir.write(f"{base}/catalog.json", root)
    catalog_dir.write(f"{base}/c/collection.json", col)
    catalog_dir.write(f"{base}/c/i/i.json", it)
    return catalog_dir.path(f"{base}/catalog.json")


@pytest.mark.parametrize("version,with_types", [
    ("0.8.1", False), ("0.9.0", False), ("1.0.0-beta.2", False), ("1.0.0-rc.2", True), ("1.1.0", True),
])
def test_older_versions_are_migrated(catalog_dir: CatalogDir, make_client, version: str, with_types: bool) -> None:
    index, report = load(_legacy(catalog_dir, version, with_types))
    assert report.skipped == 0, report.skips
    assert keys_of(index) == {("oldcol", "olditem")}
    served_item = served(index, ("oldcol", "olditem"))
    assert served_item["stac_version"].startswith("1.")
    assert served_item["assets"]["data"]["href"] == "./data.tif"  # a local path: as the catalog wrote it
    assert index.collections["oldcol"]["type"] == "Collection"
    with make_client(index=index) as c:
        doc = c.get("/search", params={"bbox": "5.5,50.5,7,52", "datetime": "2019-06-01T00:00:00Z"}).json()
        assert [f["id"] for f in doc["features"]] == ["olditem"]
        assert c.get("/collections/oldcol").json()["stac_version"].startswith("1.")


def test_unknown_version_is_refused_with_its_name(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./odd/catalog.json"), link("item", "./in.json")]))
    catalog_dir.write("odd/catalog.json", {"stac_version": "banana", "id": "odd", "description": "d", "links": []})
    catalog_dir.write("in.json", item("in"))
    index, report = load(catalog_dir.path("catalog.json"))
    assert keys_of(index) == {("root", "in")}
    assert "banana" in skip_reasons(report)[os.path.realpath(catalog_dir.path("odd/catalog.json"))]


def _hrefs_catalog(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./c/collection.json")]))
    catalog_dir.write("c/collection.json", collection(
        "c", [link("item", "./items/a/a.json"), link("license", "./LICENSE.txt")],
        assets={"thumb": {"href": "./thumb.png"}},
    ))
    catalog_dir.write("c/items/a/a.json", item("a", collection="c", links=[
        link("license", "../../LICENSE.txt"), link("via", "https://example.com/about"),
        link("self", "./a.json"), link("parent", "../../collection.json"), link("author", "mailto:someone@example.com"),
    ], assets={
        "here": {"href": "./data/a.tif", "type": "image/tiff"},
        "up": {"href": "../shared/b.tif"},
        "plain": {"href": "c.tif"},
        "spaced": {"href": "./my%20file.tif"},
        "absolute": {"href": str(catalog_dir.path("c/items/a/abs.tif"))},
        "file-url": {"href": catalog_dir.path("c/items/a/url.tif").as_uri()},
        "root-relative": {"href": "/sample/thumbnails/x.png"},
        "web": {"href": "https://data.example.com/a.tif"},
        "s3": {"href": "s3://bucket/key/a.tif"},
    }))


def test_local_hrefs_stay_as_the_catalog_wrote_them(catalog_dir: CatalogDir, make_client) -> None:
    """Without --public-href or --serve-assets a local href is no server path: relative ones as
    written, absolute ones into the root's folder made relative, and the summary counts them."""
    _hrefs_catalog(catalog_dir)
    index, report = load(catalog_dir.path("catalog.json"))
    doc = served(index, ("c", "a"))
    hrefs = {k: v["href"] for k, v in doc["assets"].items()}
    assert hrefs == {
        "here": "./data/a.tif", "up": "../shared/b.tif", "plain": "c.tif", "spaced": "./my%20file.tif",
        "absolute": "abs.tif", "file-url": "url.tif",
        "root-relative": "/sample/thumbnails/x.png",  # outside the roots: the catalog's own text (a URL path?)
        "web": "https://data.example.com/a.tif", "s3": "s3://bucket/key/a.tif",
    }
    assert doc["assets"]["here"]["type"] == "image/tiff"
    by_rel = {ln["rel"]: ln["href"] for ln in doc["links"]}
    assert by_rel == {"license": "../../LICENSE.txt", "via": "https://example.com/about", "author": "mailto:someone@example.com"}
    assert index.collections["c"]["assets"]["thumb"]["href"] == "./thumb.png"
    # 6 item assets, the item's license, the collection's license and thumbnail
    assert report.hrefs_not_public == 9 and index.load_report["hrefs_not_public"] == 9
    assert "9 local hrefs could not be made public" in report.summary()
    with make_client(index=index) as c:
        served_doc = c.get("/collections/c/items/a").json()
        assert served_doc["assets"]["here"]["href"] == "./data/a.tif"
        # the static self/parent links are replaced by the API's own
        assert {ln["href"] for ln in served_doc["links"] if ln["rel"] == "self"} == {
            "http://testserver/collections/c/items/a"}
        assert c.get("/collections/c").json()["assets"]["thumb"]["href"] == "./thumb.png"


def test_a_local_folder_mapped_to_its_public_url(catalog_dir: CatalogDir, make_client, tmp_path: Path) -> None:
    _hrefs_catalog(catalog_dir)
    mappings = ((os.path.join(str(catalog_dir.root), ""), "https://pub.example/stac/"),
                (os.path.join(str(catalog_dir.path("c/items")), ""), "https://items.example/"),  # longer: wins below it
                ("s3://bucket/", "https://bucket.s3.example/"))
    index, report = load_catalogs([str(catalog_dir.path("catalog.json"))], LoadOptions(public_hrefs=mappings))
    hrefs = {k: v["href"] for k, v in served(index, ("c", "a"))["assets"].items()}
    assert hrefs == {
        "here": "https://items.example/a/data/a.tif", "up": "https://items.example/shared/b.tif",
        "plain": "https://items.example/a/c.tif", "spaced": "https://items.example/a/my%20file.tif",
        "absolute": "https://items.example/a/abs.tif", "file-url": "https://items.example/a/url.tif",
        "root-relative": "/sample/thumbnails/x.png",
        "web": "https://data.example.com/a.tif", "s3": "https://bucket.s3.example/key/a.tif",
    }
    assert index.collections["c"]["assets"]["thumb"]["href"] == "https://pub.example/stac/c/thumb.png"
    assert report.hrefs_not_public == 0 and "could not be made public" not in report.summary()


def test_time_forms(catalog_dir: CatalogDir, make_client) -> None:
    """Instants, ranges with datetime null, open-ended ranges, offsets and fractions in documents."""
    docs = {
        "instant": item("instant", datetime="2020-05-01T12:00:00Z"),
        "range": item("range", datetime=None, properties={
            "start_datetime": "2020-01-01T00:00:00Z", "end_datetime": "2020-12-31T23:59:59Z"}),
        "open-end": item("open-end", datetime=None, properties={"start_datetime": "2022-01-01T00:00:00Z"}),
        "offset": item("offset", datetime="2020-05-01T14:00:00.5+02:00"),
    }
    catalog_dir.write("catalog.json", catalog("root", [link("item", f"./{k}.json") for k in docs]))
    for name, doc in docs.items():
        catalog_dir.write(f"{name}.json", doc)
    index, report = load(catalog_dir.path("catalog.json"))
    assert report.skipped == 0
    oracle = Oracle.from_root(catalog_dir.path("catalog.json"))
    with make_client(index=index) as c:
        for dt in ["2020-05-01T12:00:00Z", "2020-05-01T12:00:00.5Z", "2030-01-01T00:00:00Z", "../2019-12-31T23:59:59Z",
                   "2020-12-31T23:59:59Z/..", "2021-06-01T00:00:00Z/2022-01-01T00:00:00Z"]:
            got = {f["id"] for f in c.get("/search", params={"datetime": dt}).json()["features"]}
            assert got == {i for _, i in oracle.evaluate({"datetime": dt})}, dt


# -- the shared real-world catalogs ---------------------------------------------------------------------


# (collections, items) at least, from the README's description of each root
MINIMUMS = {
    "stac-spec-examples-1.0/catalog.json": (2, 2),
    "stac-spec-examples-1.0/collection.json": (1, 1),
    "stac-spec-examples-1.1/catalog.json": (2, 2),
    "pystac-catalogs/test-case-1/catalog.json": (1, 1),
    "pystac-catalogs/test-case-2/catalog.json": (0, 1),
    "pystac-catalogs/test-case-4/catalog.json": (7, 62),
    "pystac-catalogs/test-case-5/catalog.json": (1, 1),
    "pystac-catalogs/test-case-6/catalog.json": (1, 1),
    "pystac-catalogs/cbers-partial/catalog.json": (1, 0),
    "pystac-catalogs/label_catalog-v0.8.1/catalog.json": (1, 62),
    "pystac-catalogs/planet-example-v1.0.0-beta.2/collection.json": (1, 1),
    "stactools-modis-examples/catalog.json": (36, 56),
    "stactools-landsat-examples/landsat-c2-l1/collection.json": (1, 5),
    "stactools-landsat-examples/landsat-c2-l2/collection.json": (1, 5),
    "fabdem-brazil-south/catalog.json": (0, 77),
    "joplin-itemcollection/collection.json": (1, 30),
    "loose-items/null-geom-item.json": (0, 1),
}

SHARED_ROOTS = shared_roots()
needs_shared = pytest.mark.skipif(not SHARED_ROOTS, reason="shared catalogs not present")


def _name(roots: list[str]) -> str:
    return os.path.relpath(roots[0], SHARED)


@needs_shared
def test_shared_readme_lists_the_known_roots() -> None:
    assert {_name(r) for r in SHARED_ROOTS} >= set(MINIMUMS) - {"joplin-itemcollection/collection.json"}


@needs_shared
@pytest.mark.parametrize("roots", SHARED_ROOTS or [[]], ids=_name if SHARED_ROOTS else None)
def test_shared_catalog_loads(roots: list[str]) -> None:
    index, report = load_catalogs(roots)
    assert report.items == index.size and report.collections == len(index.collections)
    min_collections, min_items = MINIMUMS.get(_name(roots), (0, 0))
    assert len(index.collections) >= min_collections, report.summary()
    assert index.size >= min_items, report.summary()
    assert index.size + len(index.collections) > 0
    # every item is reachable the way the API reaches it
    for pos in range(index.size):
        assert index.find(index.collection_of(pos), index.ids[pos]) is not None
    # the same items the brute-force walk of the files finds (the loader's rule for an item
    # naming a collection that is not loaded: its nearest collection above)
    assert keys_of(index) == Oracle.from_roots(roots, only_loaded_collections=True).keys()


# -- catalogs given by URL ---------------------------------------------------------------------------------


def test_remote_catalog_loads_like_the_local_one(oracle: Oracle) -> None:
    from server.sample import SAMPLE_DIR

    with serve_folder(SAMPLE_DIR) as base:
        index, report = load(f"{base}/catalog.json")
    assert report.skipped == 0, report.skips
    assert keys_of(index) == oracle.keys()
    assert set(index.collections) == set(oracle.collections)


def test_remote_hrefs_scope_and_failures(catalog_dir: CatalogDir) -> None:
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./c/collection.json"),
        link("child", "http://192.0.2.1/elsewhere/catalog.json"),     # another host: refused
        link("item", catalog_dir.path("c/a/a.json").as_uri()),        # a local file from a remote catalog
        link("item", "./missing.json"),                               # 404
        link("item", "./flaky.json"),                                 # 500 every time
    ]))
    catalog_dir.write("c/collection.json", collection("c", [link("item", "./a/a.json")]))
    catalog_dir.write("c/a/a.json", item("a", assets={"data": {"href": "./a.tif"}, "up": {"href": "../shared.tif"}},
                                         links=[link("license", "../LICENSE")]))
    catalog_dir.write("flaky.json", item("flaky"))
    from server.catalog.loader import LoadOptions

    with serve_folder(catalog_dir.root, fail={"/flaky.json": 500}) as base:
        index, report = load_catalogs([f"{base}/catalog.json"], LoadOptions(fetch_retries=1, fetch_timeout=5))
    assert keys_of(index) == {("c", "a")}
    doc = served(index, ("c", "a"))
    assert doc["assets"]["data"]["href"] == f"{base}/c/a/a.tif"
    assert doc["assets"]["up"]["href"] == f"{base}/c/shared.tif"
    assert {ln["rel"]: ln["href"] for ln in doc["links"]}["license"] == f"{base}/c/LICENSE"
    reasons = dict(report.skips)
    assert "host" in reasons["http://192.0.2.1/elsewhere/catalog.json"]
    assert "404" in reasons[f"{base}/missing.json"]
    assert "500" in reasons[f"{base}/flaky.json"]
    assert any("local" in r for p, r in report.skips if not p.startswith("http")), report.skips
    assert report.skipped == 4


def _layout_with_bad_items(catalog_dir: CatalogDir, monkeypatch: pytest.MonkeyPatch
                           ) -> tuple[Path, Index, LoadReport]:
    """30 items, a missing and a broken one; with the index and report read in-process, after
    which the forked reader is forced on."""
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./c/collection.json")]))
    names = [f"i{n}" for n in range(30)]
    catalog_dir.write("c/collection.json", collection("c", [link("item", f"./{n}.json") for n in names]
                                                       + [link("item", "./gone.json"), link("item", "./bad.json")]))
    for n in names:
        catalog_dir.write(f"c/{n}.json", item(n))
    catalog_dir.write_text("c/bad.json", "{nope")
    root = catalog_dir.path("catalog.json")
    monkeypatch.setattr(forked_reader, "usable", lambda count: False)
    expected, report = load(root)
    monkeypatch.setattr(forked_reader, "usable", lambda count: True)
    return root, expected, report


def test_the_forked_reader_is_used_and_builds_the_same_index(
    catalog_dir: CatalogDir, item_reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, expected, expected_report = _layout_with_bad_items(catalog_dir, monkeypatch)
    calls: list[int] = []
    real = forked_reader.read_forked
    monkeypatch.setattr(forked_reader, "read_forked", lambda locations, *a: calls.append(len(locations)) or real(locations, *a))
    index, report = load(root)
    assert calls == [32]
    assert [index.json[p] for p in range(index.size)] == [expected.json[p] for p in range(expected.size)]
    assert sorted(report.skips) == sorted(expected_report.skips)
    assert sorted(report.sources.path_list()) == sorted(expected_report.sources.path_list())


def test_items_a_dead_forked_reader_did_not_send_are_read_here(
    catalog_dir: CatalogDir, item_reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, expected, _ = _layout_with_bad_items(catalog_dir, monkeypatch)

    def dies_after_five(out: Any, locations: list[str], *args: Any) -> None:
        for i in range(5):  # five records, then the end of the stream
            out.write(forked_reader.HEADER.pack(b"e", i, 4) + b"lost")
        out.flush()
        os._exit(3)

    monkeypatch.setattr(forked_reader, "_child", dies_after_five)
    index, report = load(root)
    assert keys_of(index) == keys_of(expected) - {("c", f"i{n}") for n in range(5)}
    assert sum(reason == "lost" for _, reason in report.skips) == 5 and len(report.skips) == 7
