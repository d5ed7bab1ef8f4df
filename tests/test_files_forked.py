"""Item files read and indexed by forked processes (issue 18, target 1; STAC_STATIC_INDEX_PROCESSES):
each child reads a chunk of the item links' files and indexes them into a builder of its own, the
loader appends the chunks in link order, so the index is the one a single process makes: the same
rows, bytes, columns, words, tree, skips and report, and the same origins (the files' sizes and
mtimes, which a reload compares to reuse unchanged files). Files a child cannot index alone go
back to the loader in their place: an item needing migration, a FeatureCollection linked as an
item, items naming a collection not loaded or none (a collection is made for them); a file read
through a symlink to one another chunk read is found when the chunks are joined."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from server.catalog import forked_reader
from server.catalog.loader import LoadOptions, load_catalogs
from server.index import Index
from server.runtime.snapshot import read_snapshot
from tests.helpers import CatalogDir, catalog, collection, item, link, run_cli
from tests.test_incremental import differences

COUNT = 2400  # over the loader's FILES_MIN_ITEMS: chunks of 300 files, 4 for each of two children


def files_catalog(cat: CatalogDir, outside: Path) -> list[str]:
    """Two collections of item files and a plain catalog, with the odd cases among them."""
    words = ["alpha beta", "gamma", "Delta epsilon alpha"]
    links: dict[str, list[dict[str, str]]] = {"c": [], "d": []}
    for n in range(COUNT):
        cid = "c" if n % 3 else "d"
        doc = item(f"i{n}", collection=cid, bbox=(n % 50, n % 40, n % 50 + 1, n % 40 + 2),
                   datetime=f"2020-{1 + n % 12:02d}-{1 + n % 28:02d}T00:00:00Z",
                   properties={"title": words[n % 3], "eo:cloud_cover": n % 101, "tags": ["x", str(n % 7)]},
                   assets={"data": {"href": f"./i{n}.tif" if n % 10 == 0 else f"https://example.com/i{n}.tif"}})
        cat.write(f"{cid}/i{n}/i{n}.json", doc)
        links[cid].append(link("item", f"./i{n}/i{n}.json"))
    c = links["c"]
    # a duplicate id in a later chunk (the first kept), an invalid geometry, a bad datetime
    cat.write("c/dup/dup.json", item("i1", collection="c", bbox=(5, 5, 6, 6)))
    c.insert(1200, link("item", "./dup/dup.json"))
    cat.write("c/bad/bad.json", item("bad", collection="c", geometry={"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}))
    c.insert(300, link("item", "./bad/bad.json"))
    cat.write("c/late/late.json", item("late", collection="c", datetime="yesterday"))
    c.insert(310, link("item", "./late/late.json"))
    # not read: invalid JSON, gone, a symlink out of the roots, and one to a file read already
    cat.write_text("c/broken/broken.json", "{not json")
    c.insert(50, link("item", "./broken/broken.json"))
    c.insert(700, link("item", "./gone/gone.json"))
    (outside / "away.json").write_text(json.dumps(item("away", collection="c")))
    os.symlink(outside / "away.json", cat.path("c/away.json"))
    c.insert(900, link("item", "./away.json"))
    os.symlink(cat.path("c/i4/i4.json"), cat.path("c/again.json"))
    c.insert(1000, link("item", "./again.json"))
    # two symlinks to one file that is not linked itself, in chunks of the two children: the
    # second is a duplicate only the loader can see (the other child read the first)
    cat.write("c/hidden/hidden.json", item("hidden", collection="c"))
    os.symlink(cat.path("c/hidden/hidden.json"), cat.path("c/one.json"))
    os.symlink(cat.path("c/hidden/hidden.json"), cat.path("c/two.json"))
    c.insert(20, link("item", "./one.json"))
    c.insert(330, link("item", "./two.json"))
    # left to the loader: an item needing migration, a FeatureCollection, one naming a
    # collection not loaded, one of another collection that is loaded
    old = item("old", collection="c")
    old["stac_version"] = "0.9.0"
    cat.write("c/old/old.json", old)
    c.insert(400, link("item", "./old/old.json"))
    cat.write("c/fc/fc.json", {"type": "FeatureCollection", "features": [item("f1", collection="c"), item("f2")]})
    c.insert(800, link("item", "./fc/fc.json"))
    cat.write("c/elsewhere/elsewhere.json", item("elsewhere", collection="nope"))
    c.insert(1500, link("item", "./elsewhere/elsewhere.json"))
    cat.write("c/of-d/of-d.json", item("of-d", collection="d"))
    c.insert(1600, link("item", "./of-d/of-d.json"))
    cat.write("c/collection.json", collection("c", c))
    cat.write("d/collection.json", collection("d", links["d"]))
    # items of no collection in a plain catalog (a collection is made for them)
    cat.write("loose/l1.json", item("l1"))
    cat.write("loose/l2.json", item("l2", datetime="2019-01-01T00:00:00Z"))
    cat.write("loose/catalog.json", catalog("loose", [link("item", "./l1.json"), link("item", "./l2.json")]))
    cat.write("catalog.json", catalog("root", [link("child", "./c/collection.json"), link("child", "./d/collection.json"),
                                               link("child", "./loose/catalog.json")]))
    return [str(cat.path("catalog.json"))]


def one_process(roots: list[str], monkeypatch: pytest.MonkeyPatch) -> tuple[Index, object]:
    """The index of one process reading every file itself (no forked reader either: each
    item's local hrefs counted alone, as the forked children count them)."""
    with monkeypatch.context() as patch:
        patch.setattr(forked_reader, "MIN_ITEMS", 10**9)
        return load_catalogs(roots, LoadOptions(index_processes=1))


def forked_build(roots: list[str], tmp_path: Path, name: str = "forked.idx") -> tuple[Index, str]:
    result = run_cli(["index", *roots, "-o", str(tmp_path / name), "--log-level", "info"], timeout=120,
                     env={"STAC_STATIC_INDEX_PROCESSES": "2"})
    assert result.returncode == 0, result.stderr
    return read_snapshot(str(tmp_path / name))[0], result.stderr


def test_item_files_indexed_by_forked_processes_are_the_one_process_index(
        catalog_dir: CatalogDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    roots = files_catalog(catalog_dir, outside)
    one, report = one_process(roots, monkeypatch)
    by_reason = report.skipped_by_reason
    assert (by_reason["duplicate"], by_reason["invalid_json"], by_reason["unreadable"], by_reason["out_of_scope"]) \
        == (3, 1, 1, 1), report.skips  # dup, again.json, two.json; broken; gone; away
    assert by_reason["invalid_item"] == 2 and by_reason["not_stac"] == 0
    assert report.reassigned == {("nope", "c"): 1} and "loose" in one.collections
    assert {"old", "f1", "f2", "hidden", "of-d", "l1", "l2"} <= set(one.ids) and "away" not in set(one.ids)
    assert one.load_report is not None and one.load_report["hrefs_not_public"] == COUNT // 10
    forked, log = forked_build(roots, tmp_path)
    assert f"indexing {COUNT + 15} item files in 2 processes (9 chunks)" in log, log
    assert differences(forked, one) == []
    # the same, loaded in this process (the skips in the order one process meets them)
    index, forked_report = load_catalogs(roots, LoadOptions(index_processes=2))
    assert differences(index, one) == []
    assert sorted(forked_report.skips) == sorted(report.skips)
    assert forked_report.reassigned == report.reassigned


def test_a_reload_recognises_the_files_forked_processes_read(catalog_dir: CatalogDir, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The origins of a forked build (sizes, mtimes, hrefs not public) let a reload reuse every
    unchanged file, and the reload equals a full load."""
    outside = tmp_path / "outside"
    outside.mkdir()
    roots = files_catalog(catalog_dir, outside)
    forked, _ = forked_build(roots, tmp_path)
    one, _ = one_process(roots, monkeypatch)
    changed = catalog_dir.path("c/i5/i5.json")
    doc = json.loads(changed.read_text())
    doc["properties"]["eo:cloud_cover"] = 55.5
    changed.write_text(json.dumps(doc, indent=2))
    reloaded, report = load_catalogs(roots, LoadOptions(previous=forked, index_processes=2))
    full, _ = one_process(roots, monkeypatch)
    assert differences(reloaded, full) == []
    # as many reused as after one process's build: every file but the changed one and those
    # whose rows depend on more than the file (items of a made collection, a FeatureCollection)
    _, after_one = load_catalogs(roots, LoadOptions(previous=one, index_processes=2))
    assert report.reused == after_one.reused
    assert forked.size - 5 <= report.reused < forked.size


def test_a_root_named_through_a_symlink_is_indexed_by_forked_processes_alike(
        catalog_dir: CatalogDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every file's real path differs from its name (the root's folder is a symlink): each is
    checked against the files read through other names in other chunks, none is one."""
    outside = tmp_path / "outside"
    outside.mkdir()
    files_catalog(catalog_dir, outside)
    alias = tmp_path / "alias"
    os.symlink(catalog_dir.root, alias)
    roots = [str(alias / "catalog.json")]
    one, report = one_process(roots, monkeypatch)
    forked, log = forked_build(roots, tmp_path)
    assert "in 2 processes" in log, log
    assert differences(forked, one) == []
    assert report.skipped_by_reason["duplicate"] == 3


def test_the_locations_a_child_sends_are_held_once() -> None:
    """A piece's unpickled paths and rows' labels (new strings where the child's were other
    objects) are replaced by its origins' strings of the same value, all of them or (a file
    skipped) those that match, so a location is held once until the origins are settled, not
    two or three times (~1.4 GB at 10M files). The loader holds no string of its own a link
    (ItemLinks)."""
    from server.catalog.loader import FilesPiece, _share_locations  # noqa: PLC0415
    from server.catalog.sources import SourceLog  # noqa: PLC0415
    from server.index.origins import OriginsBuilder  # noqa: PLC0415

    own = [f"/cat/c/i{n}/i{n}.json" for n in range(5)]

    def copied(values: list[str]) -> list[str]:
        return [("x" + v)[1:] for v in values]  # equal, not the same objects

    whole, gapped = FilesPiece(0, 5, [], 0), FilesPiece(0, 5, [], 0)
    for piece, kept in ((whole, own), (gapped, [own[0], own[2], own[4]])):
        piece.origins, piece.sources = OriginsBuilder(), SourceLog()
        piece.chunk = SimpleNamespace(labels=copied(own))  # type: ignore[assignment]
        piece.origins.locations = kept
        piece.sources.paths = copied(kept) + ["/cat/c/elsewhere.json"]
        assert not any(a is b for a, b in zip(piece.sources.paths, kept))
        _share_locations(piece)
        assert piece.origins.locations is kept
        assert piece.sources.paths[:-1] == kept and all(a is b for a, b in zip(piece.sources.paths, kept))
        assert piece.sources.paths[-1] == "/cat/c/elsewhere.json"
        assert piece.chunk.labels == own
        assert all((a is b) == (a in kept) for a, b in zip(piece.chunk.labels, [x if x in kept else None for x in own]))


def test_the_fingerprint_made_in_the_links_block_is_the_one_process_one(
        catalog_dir: CatalogDir, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every item file read in order (no odd case): the fingerprint's paths are made in the
    item links' block (ItemLinks.joined), equal to those one process joins. Loaded in a
    process of its own: no thread an earlier test left keeps it from forking."""
    for cid in ("c", "d"):
        names = [f"{cid}{n}" for n in range(COUNT // 2)]
        for name in names:
            catalog_dir.write(f"{cid}/{name}/{name}.json", item(name, collection=cid))
        catalog_dir.write(f"{cid}/collection.json", collection(cid, [link("item", f"./{n}/{n}.json") for n in names]))
    children = [link("child", "./c/collection.json"), link("child", "./d/collection.json")]
    catalog_dir.write("catalog.json", catalog("root", children))
    roots = [str(catalog_dir.path("catalog.json"))]
    one, _ = one_process(roots, monkeypatch)
    out = tmp_path / "made"
    script = (
        "import sys\n"
        "from server.catalog.links import ItemLinks\n"
        "from server.catalog.loader import LoadOptions, load_catalogs\n"
        "from server.index.origins import OriginsBuilder\n"
        "made, joined = [], ItemLinks.joined\n"
        "ItemLinks.joined = lambda self, paths: made.append(bool(r := joined(self, paths))) or r\n"
        "held, settle = [], OriginsBuilder.settle\n"
        "OriginsBuilder.settle = lambda self, *a: held.append(self.locations._parts[:]) or settle(self, *a)\n"
        "spool = open(sys.argv[3], 'w+b') if len(sys.argv) > 3 else None\n"
        "index, _ = load_catalogs([sys.argv[1]], LoadOptions(index_processes=2, item_spool=spool))\n"
        "open(sys.argv[2], 'wb').write(repr(made).encode() + b'\\0' + bytes(index.fingerprint.paths) + b'\\0'"
        " + bytes(index.origins.locations) + b'\\0' + repr(held).encode() + b'\\0'"
        " + type(index.fingerprint.paths.base.obj).__name__.encode())\n")  # (np.frombuffer's base: a memoryview of it)
    assert one.fingerprint is not None and one.origins is not None
    # in the block's memory; then as `index -o` loads (a spool file): written beside it and mapped
    for spool, kind in (None, b"bytearray"), (tmp_path / "spool", b"mmap"):
        subprocess.run([sys.executable, "-c", script, roots[0], str(out), *([str(spool)] if spool else [])], check=True,
                       timeout=120, env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
        made, paths, locations, held, base = out.read_bytes().split(b"\0")
        assert made == b"[True]" and base == kind
        # the origins held every item file as its link's position, the chunks' as one range (RunList)
        assert held == f"[[range(0, {COUNT})]]".encode()
        assert paths == bytes(one.fingerprint.paths) and locations == bytes(one.origins.locations)
        lines = paths.decode().split("\n")
        assert len(lines) == COUNT + 3 and lines[0] == roots[0] and lines[-1].endswith(f"d{COUNT // 2 - 1}.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["catalog", "made", "spool"]  # the mapped file: unnamed
