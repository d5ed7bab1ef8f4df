"""A reload re-reads only what changed (issue 18, target 3): the items of unchanged documents are
taken from the previous index by position (server.index.reuse), and the result is the index a
full load of the changed catalog makes: the same arrays, bytes, columns, words, tree and report,
hence the same answers. Locally (size + mtime), over HTTP (the MD5 of what is fetched) and from
S3 (a listing's ETags), in a thread, in a child process, and for a stale snapshot at start."""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest

from server.catalog import formats, listing, parallel, reuse
from server.catalog.loader import STATS_LOOKAHEAD, LoadOptions, LoadReport, _read_stats, load_catalogs
from server.catalog.sources import SourceLog
from server.index import Index
from tests.helpers import http_server, in_thread, run_cli, run_server, serve_folder, ttfb_server, uploaded

TOKEN = "incremental-token"


# -- the catalog and its changes -------------------------------------------------------------------


def _doc(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _put(path: Path, doc: Any) -> None:
    """Rewrite a file: another size or a later mtime, as an editor leaves it."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc, indent=1))
    if path.stat().st_mtime_ns == before:  # same size within the clock's tick: not seen as changed
        os.utime(path, ns=(before + 1_000_000, before + 1_000_000))


def _item_files(root: Path, collection: str) -> list[Path]:
    return sorted(p for p in (root / collection).glob("*/*.json") if p.name != "collection.json"
                  and p.parent.name != "tiles-extra")


def _unlink_item(root: Path, collection: str, path: Path) -> None:
    coll = root / collection / "collection.json"
    doc = _doc(coll)
    doc["links"] = [link for link in doc["links"] if not (link["rel"] == "item" and path.name in link["href"])]
    _put(coll, doc)


def _link_item(root: Path, collection: str, rel: str, at: int = 3) -> None:
    coll = root / collection / "collection.json"
    doc = _doc(coll)
    doc["links"].insert(at, {"rel": "item", "href": rel, "type": "application/geo+json"})
    _put(coll, doc)


def prepare(root: Path) -> None:
    """Before the first load: an item whose asset href is local and relative (counted among the
    hrefs that cannot be made public, per item) and a second link to an item from another
    collection's folder (a duplicate id: kept once, reported)."""
    path = _item_files(root, "dem-alps")[0]
    doc = _doc(path)
    doc["id"] = "relative-asset"
    doc["assets"] = {"data": {"href": "./data.tif", "type": "image/tiff"}}
    _put(root / "dem-alps" / "relative-asset" / "relative-asset.json", doc)
    _link_item(root, "dem-alps", "./relative-asset/relative-asset.json")


def edit_items(root: Path) -> None:
    """Properties, a datetime (the item moves in the default order), new words in a title."""
    for n, path in enumerate(_item_files(root, "sentinel-2-l2a-nl")[:4]):
        doc = _doc(path)
        doc["properties"]["eo:cloud_cover"] = 99.5 + n
        doc["properties"]["datetime"] = f"2031-0{n + 1}-01T00:00:00Z"
        doc["properties"]["title"] = f"freshly edited scene {n}"
        doc["properties"]["new:flag"] = n % 2 == 0
        _put(path, doc)


def add_and_delete(root: Path) -> None:
    files = _item_files(root, "corine-land-cover")
    for path in files[:2]:
        _unlink_item(root, "corine-land-cover", path)
        shutil.rmtree(path.parent)
    template = _doc(files[-1])
    for n in range(3):
        template["id"] = f"added-{n}"
        template["properties"]["datetime"] = f"2020-0{n + 1}-15T10:00:00Z"
        _put(root / "corine-land-cover" / f"added-{n}" / f"added-{n}.json", template)
        _link_item(root, "corine-land-cover", f"./added-{n}/added-{n}.json", at=2 + 2 * n)


def break_items(root: Path) -> None:
    """Invalid JSON, a file gone but still linked, an item that becomes a duplicate of an
    unchanged one linked after it (the changed one, first in link order, is kept)."""
    files = _item_files(root, "ndvi-europe-monthly")
    files[0].write_text("{not json")
    files[1].unlink()
    later = _doc(files[-1])
    doc = _doc(files[2])
    doc["id"] = later["id"]
    _put(files[2], doc)


def move_item(root: Path) -> None:
    """An item file moved into another collection's folder and links (its own collection field too)."""
    path = _item_files(root, "sentinel-2-l2a-nl")[-1]
    doc = _doc(path)
    _unlink_item(root, "sentinel-2-l2a-nl", path)
    doc["collection"] = "dem-alps"
    shutil.rmtree(path.parent)
    _put(root / "dem-alps" / path.parent.name / path.name, doc)
    _link_item(root, "dem-alps", f"./{path.parent.name}/{path.name}")


def delete_collection(root: Path) -> None:
    """A collection gone from the catalog while an item of it stays linked from the misc catalog:
    unchanged, that item is now served under the collection made for misc's items."""
    path = _item_files(root, "corine-land-cover")[-1]
    misc = root / "misc" / "catalog.json"
    doc = _doc(misc)
    doc["links"].append({"rel": "item", "href": f"../corine-land-cover/{path.parent.name}/{path.name}",
                         "type": "application/geo+json"})
    _put(misc, doc)
    catalog = root / "catalog.json"
    doc = _doc(catalog)
    doc["links"] = [link for link in doc["links"] if "corine-land-cover" not in link["href"]]
    _put(catalog, doc)


CHANGES: dict[str, Callable[[Path], None]] = {
    "edit": edit_items, "add-and-delete": add_and_delete, "broken": break_items, "move": move_item,
    "delete-collection": delete_collection,
}


def change_all(root: Path) -> None:
    for change in CHANGES.values():
        change(root)


# -- comparing indexes ---------------------------------------------------------------------------------


def _blobs(column: Any) -> list[bytes]:
    return [column[i] for i in range(len(column))]


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        x, y = np.asarray(a), np.asarray(b)
        return x.dtype.kind == y.dtype.kind and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")
    return bool(a == b)


def differences(a: Index, b: Index) -> list[str]:
    """What differs between two indexes, in everything a request can reach."""
    out = []

    def check(name: str, x: Any, y: Any) -> None:
        if not _same(x, y):
            out.append(name)

    for name in ("ids", "codes", "collection_names", "start", "end", "sort_time", "bounds", "root"):
        check(name, getattr(a, name), getattr(b, name))
    check("id hashes", a.ids.hash_sorted, b.ids.hash_sorted)
    check("id hash order", a.ids.hash_order, b.ids.hash_order)
    check("json", _blobs(a.json), _blobs(b.json))
    check("wkb", _blobs(a.wkb), _blobs(b.wkb))
    check("column keys", sorted(a.columns), sorted(b.columns))
    for key in set(a.columns) & set(b.columns):
        for part in ("number", "string", "boolean", "objects", "time"):
            x, y = getattr(a.columns[key], part), getattr(b.columns[key], part)
            if (x is None) != (y is None):
                out.append(f"{key}.{part}")
            elif x is not None:
                check(f"{key}.{part}.rows", x.rows, y.rows)
                if part == "string":
                    check(f"{key}.vocab", x.vocab, y.vocab)
                    check(f"{key}.codes", x.codes, y.codes)
                elif part == "objects":
                    check(f"{key}.objects", _blobs(x.blobs), _blobs(y.blobs))
                else:
                    check(f"{key}.{part}.values", x.values, y.values)
    check("words", a.text.vocab, b.text.vocab)
    if a.text.vocab == b.text.vocab:
        check("postings", [p.tolist() for p in a.text.postings], [p.tolist() for p in b.text.postings])
    check("collections", orjson.dumps(a.collections), orjson.dumps(b.collections))
    check("collection order", list(a.collections), list(b.collections))
    check("tree", [(n.kind, n.id, n.parent, n.segments, n.children, n.document) for n in a.tree.nodes],
          [(n.kind, n.id, n.parent, n.segments, n.children, n.document) for n in b.tree.nodes])
    check("tree items", a.tree.items, b.tree.items)
    check("tree starts", a.tree.item_starts, b.tree.item_starts)
    check("tree complete", a.tree.complete, b.tree.complete)
    check("boxes", a._boxes.positions, b._boxes.positions)
    check("extremes", a._boxes.extremes, b._boxes.extremes)

    def report(index: Index) -> dict[str, Any]:
        return {k: v for k, v in (index.load_report or {}).items() if k not in ("seconds", "reused")}

    check("load report", report(a), report(b))
    assert a.origins is not None and b.origins is not None
    check("origin locations", a.origins.location_list(), b.origins.location_list())
    # the files read, with their sizes and mtimes (their order is the reading's: a reload puts
    # the few files it read among its reused rows in the items' order, server.catalog.loader)
    check("fingerprint", _fingerprint(a), _fingerprint(b))
    for name in ("positions", "not_public", "digests", "sizes"):
        check(f"origin {name}", getattr(a.origins, name), getattr(b.origins, name))
    return out


def _fingerprint(index: Index) -> list[tuple[str, int, int]]:
    paths = index.fingerprint.paths.tobytes().decode("utf-8", "surrogateescape").split("\n")
    return sorted(zip(paths, index.fingerprint.sizes.tolist(), index.fingerprint.mtimes.tolist()))


def reload_and_full(roots: list[str], previous: Index) -> tuple[Index, Index, Any, Any]:
    incremental, report = load_catalogs(roots, LoadOptions(previous=previous))
    full, full_report = load_catalogs(roots)
    return incremental, full, report, full_report


# -- locally, by the loader ----------------------------------------------------------------------------


@pytest.fixture
def catalog(sample_copy: Path) -> Path:
    prepare(sample_copy)
    return sample_copy


@pytest.mark.parametrize("name", [*CHANGES, "all", "all, lean"])
def test_a_reload_of_changed_local_files_equals_a_full_load(catalog: Path, name: str,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    if name.endswith("lean"):  # collections parsed as large ones are (item hrefs kept bare, admitted in bulk)
        monkeypatch.setattr(formats, "LEAN_BYTES", 0)
    roots = [str(catalog / "catalog.json")]
    previous, _ = load_catalogs(roots)
    assert previous.load_report is not None and previous.load_report["hrefs_not_public"] == 1
    (change_all if name.startswith("all") else CHANGES[name])(catalog)
    incremental, full, report, full_report = reload_and_full(roots, previous)
    assert differences(incremental, full) == []
    assert report.skips == full_report.skips
    assert report.skipped_by_reason == full_report.skipped_by_reason
    assert report.reassigned == full_report.reassigned
    assert 0 < report.reused < incremental.size  # reused the unchanged, read the rest
    assert full_report.reused == 0


def test_item_files_are_checked_in_the_background_as_the_walk_links_them(catalog: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """In a process that may not fork (threads of its own: a reload in the server's process),
    each document's item links go to the lstat threads as soon as it is walked (check_soon), so
    the disk waits overlap the walk; the check after the walk only collects them."""
    monkeypatch.setattr(parallel, "forkable", lambda: False)
    roots = [str(catalog / "catalog.json")]
    previous, _ = load_catalogs(roots)
    edit_items(catalog)
    calls: list[tuple[str, int]] = []
    soon, check = reuse.ReusePlan.check_soon, reuse.ReusePlan.check

    def spy_soon(self: reuse.ReusePlan, locations: list[str], max_bytes: int) -> None:
        calls.append(("soon", len(locations)))
        soon(self, locations, max_bytes)

    def spy_check(self: reuse.ReusePlan, locations: list[str], *args: Any) -> None:
        calls.append(("check", len(locations)))
        check(self, locations, *args)

    monkeypatch.setattr(reuse.ReusePlan, "check_soon", spy_soon)
    monkeypatch.setattr(reuse.ReusePlan, "check", spy_check)
    monkeypatch.setattr(reuse, "STAT_CHUNK", 3)  # several tasks a document
    incremental, full, report, _ = reload_and_full(roots, previous)
    assert differences(incremental, full) == []
    assert calls[-1] == ("check", 0)  # every link was given during the walk
    assert len(calls) > 3  # document by document
    assert sum(n for kind, n in calls if kind == "soon") >= report.reused > 0


@pytest.mark.parametrize("cached", [True, False])
def test_the_lstat_threads_are_few_when_the_first_files_answer_from_the_cache(
        catalog: Path, monkeypatch: pytest.MonkeyPatch, cached: bool) -> None:
    """The first chunk of lstats is timed: answered from the kernel's cache, a few threads do
    the rest (more would only contend for the GIL); waiting for the disk, many."""
    roots = [str(catalog / "catalog.json")]
    previous, _ = load_catalogs(roots)
    edit_items(catalog)
    sizes: list[int] = []

    class Pool(reuse.ThreadPoolExecutor):
        def __init__(self, max_workers: int, **kwargs: Any) -> None:
            sizes.append(max_workers)
            super().__init__(max_workers, **kwargs)

    monkeypatch.setattr(parallel, "forkable", lambda: False)  # the pool in this process, where it can be seen
    monkeypatch.setattr(reuse, "ThreadPoolExecutor", Pool)
    monkeypatch.setattr(reuse, "STAT_CHUNK", 3)
    monkeypatch.setattr(reuse, "CACHED_STAT_SECONDS", 1.0 if cached else 0.0)
    incremental, full, _, _ = reload_and_full(roots, previous)
    assert differences(incremental, full) == []
    assert sizes == [reuse.STAT_THREADS_CACHED if cached else reuse.STAT_THREADS]


@pytest.mark.parametrize("child", ["checks", "dies"])
@pytest.mark.parametrize("processes", [1, 2])
def test_every_item_file_is_checked_by_a_process_forked_as_the_reload_starts(
        catalog: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, child: str, processes: int) -> None:
    """Where it may fork, the reload lstats every file of the previous index in processes of
    its own (LSTAT_PROCESSES, each a part of the files) while it walks (none goes to
    check_soon); should they die, their files are checked after the walk in this one. Either
    way the index is a full load's."""
    monkeypatch.setattr(reuse, "STAT_CHUNK", 2 if processes == 2 else 10**6)  # parts of at least STAT_CHUNK files
    roots = [str(catalog / "catalog.json")]
    previous, _ = load_catalogs(roots)
    change_all(catalog)
    checked_by = tmp_path / "checked-by"
    changed_in_range = reuse._changed_in_range

    def spy(pending: Any, bounds: tuple[int, int]) -> list[int]:
        with open(checked_by, "a") as f:
            f.write(f"{os.getpid()} {bounds[1] - bounds[0]}\n")
        if child == "dies" and os.getpid() != parent:
            os._exit(3)
        return changed_in_range(pending, bounds)

    parent = os.getpid()
    monkeypatch.setattr(reuse, "_changed_in_range", spy)
    monkeypatch.setattr(reuse.ReusePlan, "check_soon", lambda *a: pytest.fail("a file given to check_soon"))
    # Threads other tests leave for the session (the TestClient's idle anyio portal) would make
    # parallel.forkable() say no in the whole suite; they hold no lock a forked lstat could want.
    monkeypatch.setattr(parallel, "forkable", lambda: True)
    incremental, full, report, _ = reload_and_full(roots, previous)
    assert differences(incremental, full) == []
    assert report.reused > 0
    lines = [line.split() for line in checked_by.read_text().splitlines()]
    assert lines[0][0] != str(parent)
    here = sum(int(n) for pid, n in lines if pid == str(parent))
    assert here == (len(previous.origins) if child == "dies" else 0)
    if child == "checks":  # (one that dies may end the other before it starts: all are checked here then)
        assert len({pid for pid, _ in lines if pid != str(parent)}) == processes


@pytest.mark.parametrize("run", [1, 3, 256])
def test_the_previous_origins_are_found_by_order_as_a_map_finds_them(monkeypatch: pytest.MonkeyPatch, run: int) -> None:
    """reuse.Locations (the links compared in runs with the previous load's order, the runs
    that differ looked up by hash) gives what a dict of the locations gives, the last of two
    equal ones included, whatever was added, deleted or moved between the loads."""
    monkeypatch.setattr(reuse.Locations, "RUN", run)
    rnd = random.Random(run)
    for attempt in range(300):
        spread = 10**9 if attempt % 3 else 400  # every third: locations met twice
        previous = [f"/c/{rnd.randrange(spread)}/item.json" for _ in range(rnd.randrange(0, 600))]
        found = reuse.Locations(previous)
        by_dict = {location: i for i, location in enumerate(previous)}
        links = list(previous)
        for _ in range(rnd.randrange(0, 20)):
            change = rnd.random()
            if change < 0.3 and links:
                del links[rnd.randrange(len(links))]
            elif change < 0.6:
                links.insert(rnd.randint(0, len(links)), f"/new/{rnd.random()}.json")
            elif links:
                i, j = rnd.randrange(len(links)), rnd.randrange(len(links))
                links[i], links[j] = links[j], links[i]
        for at in range(0, len(links), 250):  # chunk by chunk, as the loader asks
            chunk = links[at : at + 250]
            assert found.find(chunk).tolist() == [by_dict.get(link, -1) for link in chunk]
        assert [int(found.find([link])[0]) for link in links[:20] + ["/not/there.json"]] == \
            [by_dict.get(link, -1) for link in links[:20] + ["/not/there.json"]]


def test_the_files_read_are_found_in_the_log_ahead_of_the_reused_ones() -> None:
    """loader._read_stats: a reload's few files read among many reused ones (further on in the
    log than its lookahead) get the stats they were read with, as out-of-order, remote and
    unlogged paths do."""
    log = SourceLog()
    paths = [f"/c/{i}.json" for i in range(STATS_LOOKAHEAD * 20)]
    for i, path in enumerate(paths):
        log.add(path, i, i * 10)
    asked = [paths[5], paths[STATS_LOOKAHEAD * 3], paths[STATS_LOOKAHEAD * 9], "https://x/y.json", paths[7],
             "/not/read.json", paths[-1]]
    assert list(zip(*(a.tolist() for a in _read_stats(log, asked)))) == [(5, 50), (STATS_LOOKAHEAD * 3, STATS_LOOKAHEAD * 30),
                                       (STATS_LOOKAHEAD * 9, STATS_LOOKAHEAD * 90), (-1, 0), (7, 70), (-1, 0),
                                       (len(paths) - 1, (len(paths) - 1) * 10)]
    tail = paths[-3:]  # the log's last files, in order (a first load's item files): its arrays' tail
    assert [a.tolist() for a in _read_stats(log, tail)] == [[len(paths) - 3, len(paths) - 2, len(paths) - 1],
                                                          [10 * (len(paths) - 3), 10 * (len(paths) - 2), 10 * (len(paths) - 1)]]


def test_the_first_of_two_items_with_one_id_wins_whichever_was_reused(catalog: Path) -> None:
    """An unchanged item (reused) before a changed one that takes its id: the reused one stays."""
    roots = [str(catalog / "catalog.json")]
    previous, _ = load_catalogs(roots)
    files = _item_files(catalog, "ndvi-europe-monthly")
    first = _doc(files[0])
    doc = _doc(files[-1])
    doc["id"] = first["id"]
    doc["properties"]["title"] = "the second of two"
    _put(files[-1], doc)
    incremental, full, report, full_report = reload_and_full(roots, previous)
    assert differences(incremental, full) == []
    assert report.skipped_by_reason["duplicate"] == full_report.skipped_by_reason["duplicate"] == 1
    assert report.skips == full_report.skips


def test_reloads_chain_and_a_touched_but_equal_file_is_read_again(catalog: Path) -> None:
    roots = [str(catalog / "catalog.json")]
    index, _ = load_catalogs(roots)
    for change in CHANGES.values():
        change(catalog)
        index, report = load_catalogs(roots, LoadOptions(previous=index))
        full, _ = load_catalogs(roots)
        assert differences(index, full) == []
    path = _item_files(catalog, "dem-alps")[2]
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 5_000_000_000))
    again, report = load_catalogs(roots, LoadOptions(previous=index))
    assert report.reused == again.size - 1  # the touched one is read again, not reused
    assert [d for d in differences(again, index) if d != "fingerprint"] == []  # (the touched file's mtime is new)


def test_other_href_settings_reuse_nothing(catalog: Path) -> None:
    roots = [str(catalog / "catalog.json")]
    previous, _ = load_catalogs(roots)
    options = LoadOptions(previous=previous, public_hrefs=((str(catalog), "https://data.example.org/"),))
    index, report = load_catalogs(roots, options)
    assert report.reused == 0
    assert differences(index, load_catalogs(roots, LoadOptions(public_hrefs=options.public_hrefs))[0]) == []


# -- remote: over HTTP and from S3 --------------------------------------------------------------------


def test_a_reload_over_http_reuses_documents_with_the_same_bytes(catalog: Path) -> None:
    with serve_folder(catalog) as base:
        roots = [f"{base}/catalog.json"]
        previous, _ = load_catalogs(roots)
        change_all(catalog)
        incremental, full, report, full_report = reload_and_full(roots, previous)
    assert differences(incremental, full) == []
    assert report.skips == full_report.skips
    assert 0 < report.reused < incremental.size


def _requests(base: str) -> int:
    return int(httpx.get(f"{base}/_stats", timeout=10).json()["requests"])


def _listed_reload(base: str, catalog: Path, caplog: pytest.LogCaptureFixture, level: str = "INFO",
                   upload: bool = False, count: bool = False, **options: Any) -> tuple[LoadReport, str, int, int]:
    """``catalog`` served at ``base`` loaded, every item changed (through the bench bucket's
    upload when ``upload``), then reloaded with ``base`` as a bucket endpoint to list: checked
    equal to a full load (differences, skips, some but not all items reused). Gives the reload's
    report, the loader's "bucket listing of" line, the requests the server answered during the
    reload (``count``: bench/ttfb_server.py's /_stats) and the items."""
    roots = [f"{base}/catalog.json"]
    previous, _ = load_catalogs(roots)
    with uploaded(base, catalog) if upload else contextlib.nullcontext():
        change_all(catalog)
    before = _requests(base) if count else 0
    with caplog.at_level(level, logger="stac_static_api.loader"):
        incremental, report = load_catalogs(roots, LoadOptions(previous=previous, bucket_listings=(f"{base}/",), **options))
    during = _requests(base) - before - 1 if count else 0  # (the /_stats answer counts itself)
    full, full_report = load_catalogs(roots)
    assert differences(incremental, full) == []
    assert report.skips == full_report.skips
    assert 0 < report.reused < incremental.size  # (a fallback fetches the same bytes again: reused by their MD5)
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("bucket listing of")]
    return report, line, during, incremental.size


@pytest.mark.parametrize(("part_keys", "forks"), [(5_000, True), (5, True), (5_000, False)])
def test_a_reload_from_a_bucket_endpoint_lists_it_instead_of_requesting_unchanged_items(
        catalog: Path, part_keys: int, forks: bool, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """An http(s) root under a bucket endpoint named in bucket_listings (bench/ttfb_server.py
    --bucket: MD5 ETags, ListObjectsV2): one listing (or, 5 keys a part, a dozen parts listed at
    once) instead of a request per item document; only the changed and added ones are fetched.
    Also where the loader may not fork (a reload in a server thread: the documents are given to
    the listing as the walk finds them)."""
    monkeypatch.setattr(listing, "LIST_PART_KEYS", part_keys)
    monkeypatch.setattr(parallel, "forkable", lambda: forks)
    with ttfb_server(catalog, "--latency-ms", "0", "--bucket") as base:
        report, line, during, size = _listed_reload(base, catalog, caplog, upload=True, count=True)
    unchanged, _, documents = line.rpartition(" item documents")[0].split(", ")[-1].split()[:3]
    assert report.reused <= int(unchanged) < int(documents)
    # the listing's pages, the catalogs and collections, and the few changed or added items: not all
    assert during < size // 2


def _record_listings(monkeypatch: pytest.MonkeyPatch, name: str, calls: Path, dies: bool) -> None:
    """reuse.NAME (a bucket's listing) made to write the pid of each process that calls it to
    ``calls``, and, with ``dies``, to end a process other than this one (the forked lister) first."""
    me, real = os.getpid(), getattr(reuse, name)

    def recorded(*args: Any, **kwargs: Any) -> Any:
        with calls.open("a") as out:
            out.write(f"{os.getpid()}\n")
        if dies and os.getpid() != me:
            os._exit(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(reuse, name, recorded)


@pytest.mark.parametrize("child", ["lists", "dies"])
def test_a_reload_lists_the_bucket_endpoint_in_a_process_forked_before_the_walk(
        catalog: Path, child: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """The documents a reload checks by listing are the previous index's, so the listing starts
    in a process forked before the walk (ReusePlan.list_all_soon) and this one only takes its
    answers; a listing process that dies leaves the listing to this one. Either way the result
    is a full load's."""
    me, calls = os.getpid(), tmp_path / "listed-by"
    _record_listings(monkeypatch, "http_listing", calls, dies=child == "dies")
    monkeypatch.setattr(parallel, "forkable", lambda: True)
    with ttfb_server(catalog, "--latency-ms", "0", "--bucket") as base:
        report, line, _, _ = _listed_reload(base, catalog, caplog, upload=True)
    pids = [int(pid) for pid in calls.read_text().split()]
    messages = [r.getMessage() for r in caplog.records]
    assert pids[0] != me  # listed in the forked process first
    if child == "lists":
        assert len(pids) == 1
    else:
        assert pids[1:] == [me] and any("listing the bucket endpoints ended early" in m for m in messages)
    assert int(line.split(", ")[-1].split()[0]) >= report.reused


@pytest.mark.parametrize("answer", ["html", 403])
def test_a_bucket_endpoint_that_answers_no_listing_falls_back_to_requests(
        catalog: Path, answer: str | int, caplog: pytest.LogCaptureFixture) -> None:
    """http.server answers the listing's URL with its HTML folder page, or (here) 403: logged,
    and the item documents are fetched as without a listing; the result is still a full load's."""
    fail = {} if answer == "html" else {"/?list-type=2&prefix=": int(answer)}
    with serve_folder(catalog, fail=fail) as base:
        _, line, _, _ = _listed_reload(base, catalog, caplog, "WARNING")
    expected = "not a ListObjectsV2 answer" if answer == "html" else "HTTP 403"
    assert expected in line and "conditional requests instead" in line


class _DrippingListing(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; its ListObjectsV2 answer (an empty listing, valid) comes a byte every
    10 ms: each read well within the fetch timeout, the whole answer ~3 s."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self.path.startswith("/?list-type=2"):
            super().do_GET()
            return
        body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>b</Name><Prefix></Prefix>'
                b"<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>").ljust(300)
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        with contextlib.suppress(OSError):  # the client gave up
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(0.01)

    def log_message(self, *args: Any) -> None:
        pass


class _EmptyListing(http.server.SimpleHTTPRequestHandler):
    """Serves a folder; its ListObjectsV2 answer is a valid listing of no object."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if not self.path.startswith("/?list-type=2"):
            super().do_GET()
            return
        body = (b'<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult><Name>b</Name><Prefix></Prefix>'
                b"<KeyCount>0</KeyCount><IsTruncated>false</IsTruncated></ListBucketResult>")
        self.send_response(200)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_a_bucket_listing_of_none_of_the_documents_is_a_warning(catalog: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A listing that lists none of the documents asked for (here: an empty one) leaves them
    all to be fetched, as before, but not silently: at a million documents that is a million
    requests instead of a thousand pages."""
    server = http_server(functools.partial(_EmptyListing, directory=str(catalog)))
    with in_thread(server) as base:
        _, line, _, _ = _listed_reload(base, catalog, caplog, "WARNING")
    assert "lists none of its" in line and "conditional requests" in line, line


def test_a_bucket_listing_past_its_deadline_falls_back_to_requests(catalog: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A listing endpoint that sends its answer slowly, never slower than the per-read timeout:
    given up at listing_timeout (STAC_STATIC_LISTING_TIMEOUT), logged, and the documents fetched
    as without a listing; the result is still a full load's."""
    server = http_server(functools.partial(_DrippingListing, directory=str(catalog)))
    with in_thread(server) as base:
        _, line, _, _ = _listed_reload(base, catalog, caplog, "WARNING", listing_timeout=0.5)
    assert "not done within 0.5 s" in line and "conditional requests instead" in line, line


boto3 = pytest.importorskip("boto3", reason="boto3 is the s3:// client; it comes with the test extra")
moto_server = pytest.importorskip("moto.server", reason="moto[server] comes with the test extra")


@pytest.fixture
def bucket(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket="stac")
        yield client
    finally:
        server.stop()


def _upload(client: Any, folder: Path) -> None:
    """The folder as it is now: changed files put, removed ones deleted."""
    keys = {f"cat/{p.relative_to(folder).as_posix()}": p for p in folder.rglob("*.json")}
    listed = client.list_objects_v2(Bucket="stac", Prefix="cat/").get("Contents", [])
    for entry in listed:
        if entry["Key"] not in keys:
            client.delete_object(Bucket="stac", Key=entry["Key"])
    for key, path in keys.items():
        client.put_object(Bucket="stac", Key=key, Body=path.read_bytes())


@pytest.mark.parametrize("part_keys", [5_000, 5])
def test_a_reload_from_s3_lists_the_prefix_instead_of_reading_unchanged_items(
        catalog: Path, bucket: Any, part_keys: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """One listing, or (5 keys a part) a dozen parts listed at once from after each other's keys."""
    monkeypatch.setattr(listing, "LIST_PART_KEYS", part_keys)
    listings: list[tuple[list[str], listing.Listing]] = []
    s3_listing = reuse.s3_listing

    def spy(client: Any, bucket: str, keys: list[str], timeout: float, retries: int, **more: Any) -> listing.Listing:
        listings.append((keys, s3_listing(client, bucket, keys, timeout, retries, **more)))
        return listings[-1][1]

    monkeypatch.setattr(reuse, "s3_listing", spy)
    _upload(bucket, catalog)
    roots = ["s3://stac/cat/catalog.json"]
    previous, _ = load_catalogs(roots)
    change_all(catalog)
    _upload(bucket, catalog)
    incremental, full, report, full_report = reload_and_full(roots, previous)
    assert differences(incremental, full) == []
    assert report.skips == full_report.skips
    assert 0 < report.reused < incremental.size
    [(keys, listed)] = listings
    present = {k for k in keys if (Path(catalog) / k.removeprefix("cat/")).exists()}
    assert present and present <= set(listed.as_dict())  # every part found its keys


@pytest.mark.parametrize("child", ["lists", "dies"])
def test_a_reload_from_s3_lists_the_buckets_in_a_process_forked_before_the_walk(
        catalog: Path, bucket: Any, child: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """As a bucket endpoint's (ReusePlan.list_all_soon), an s3:// root's listing starts in a
    process forked before the walk, its boto3 client made there; one that dies leaves the listing
    to this process. Either way the reload equals a full load."""
    me, calls = os.getpid(), tmp_path / "listed-by"
    _record_listings(monkeypatch, "s3_listing", calls, dies=child == "dies")
    monkeypatch.setattr(parallel, "forkable", lambda: True)  # (moto's server thread is not the loader's)
    _upload(bucket, catalog)
    roots = ["s3://stac/cat/catalog.json"]
    previous, _ = load_catalogs(roots)
    calls.unlink(missing_ok=True)
    change_all(catalog)
    _upload(bucket, catalog)
    with caplog.at_level("INFO", logger="stac_static_api.loader"):
        incremental, report = load_catalogs(roots, LoadOptions(previous=previous))
    full, full_report = load_catalogs(roots)
    assert differences(incremental, full) == []
    assert report.skips == full_report.skips and 0 < report.reused < incremental.size
    pids = [int(pid) for pid in calls.read_text().split()]
    messages = [r.getMessage() for r in caplog.records]
    assert pids[0] != me  # listed in the forked process first
    assert pids[1:] == ([] if child == "lists" else [me])
    assert (child == "dies") == any("listing the bucket endpoints ended early" in m for m in messages)
    [line] = [m for m in messages if m.startswith("S3 listing of s3://stac")]
    assert int(line.split(", ")[-1].split()[0]) >= report.reused


# -- the running server: SIGHUP / POST /_mgmt/reload, in a child process, and a stale snapshot ---------


QUERIES: list[dict[str, Any]] = [
    {"limit": 7},
    {"limit": 5, "bbox": "3,50,8,54"},
    {"limit": 4, "datetime": "2020-01-01T00:00:00Z/.."},
    {"limit": 6, "q": "scene"},
    {"limit": 3, "collections": "dem-alps,sentinel-2-l2a-nl", "sortby": "-properties.eo:cloud_cover"},
    {"limit": 5, "filter": "\"eo:cloud_cover\" > 50", "filter-lang": "cql2-text"},
    {"limit": 10, "ids": "added-0,added-2,relative-asset"},
]


def _all_pages(client: httpx.Client, base: str, params: dict[str, Any]) -> list[Any]:
    pages = []
    page = client.get(f"{base}/search", params=params).json()
    while True:
        pages.append([(f["collection"], f["id"], f) for f in page["features"]] + [page.get("numberMatched")])
        url = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        if url is None:
            return pages
        assert len(pages) < 100, "paging does not end"
        page = client.get(url).json()


def answers(base: str) -> dict[str, Any]:
    """What a client sees: a query mix paged to the end, every item's bytes, the collections,
    the catalogs' tree and the load's report."""
    with httpx.Client(timeout=30) as client:
        out: dict[str, Any] = {str(q): _all_pages(client, base, q) for q in QUERIES}
        collections = client.get(f"{base}/collections").json()["collections"]
        out["collections"] = collections
        for c in collections:
            items = client.get(f"{base}/collections/{c['id']}/items", params={"limit": 1000}).json()
            out[f"items {c['id']}"] = items["features"]
        out["children"] = client.get(f"{base}/children").json()
        out["landing"] = client.get(f"{base}/").json()
        load = client.get(f"{base}/_mgmt/ready").json()["load"]
        out["load"] = {k: v for k, v in load.items() if k not in ("seconds", "reused")}
    return json.loads(json.dumps(out).replace(base, "http://server"))  # two servers, two ports


def _reload(base: str) -> dict[str, Any]:
    response = httpx.post(f"{base}/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
    assert response.status_code == 200, response.text
    return httpx.get(f"{base}/_mgmt/ready").json()


@pytest.mark.parametrize(("in_child", "bucket"), [(True, False), (False, False), (True, True), (False, True)])
def test_a_running_servers_reload_answers_as_a_fresh_server(catalog: Path, in_child: bool, bucket: bool) -> None:
    """Local files, or (bucket) a bucket endpoint the server lists (bucket_listings) served by
    bench/ttfb_server.py --bucket: the same answers, paging tokens from before still page."""
    env = {"STAC_STATIC_ADMIN_TOKEN": TOKEN, "STAC_STATIC_RELOAD_IN_CHILD": str(in_child).lower()}
    with contextlib.ExitStack() as stack:
        if bucket:  # (the changes uploaded to it: its listing changes through its API only)
            endpoint = stack.enter_context(ttfb_server(catalog, "--latency-ms", "0", "--bucket"))
            env["STAC_STATIC_BUCKET_LISTINGS"] = json.dumps([f"{endpoint}/"])
            roots = [f"{endpoint}/catalog.json"]
            changing = functools.partial(uploaded, endpoint, catalog)
        else:
            roots = [str(catalog / "catalog.json")]
            changing = contextlib.nullcontext
        _reload_and_compare(roots, env, catalog, changing)


def _reload_and_compare(roots: list[str], env: dict[str, str], catalog: Path,
                        changing: Callable[[], contextlib.AbstractContextManager[Any]] = contextlib.nullcontext) -> None:
    with run_server(roots, env=env) as base:
        first = httpx.get(f"{base}/search", params={"limit": 5}).json()
        token_link = next(link["href"] for link in first["links"] if link["rel"] == "next")
        with changing():
            change_all(catalog)
        ready = _reload(base)
        assert ready["load"]["reused"] > 0
        change_all_again = _item_files(catalog, "dem-alps")[3]  # a second reload reuses the first one's index
        doc = _doc(change_all_again)
        doc["properties"]["title"] = "changed between two reloads"
        with changing():
            _put(change_all_again, doc)
        ready = _reload(base)
        assert ready["load"]["reused"] > 0 and ready["last_reload"]["ok"]
        assert httpx.get(token_link).status_code == 200  # a paging token from before still pages
        reloaded = answers(base)
    with run_server(roots, env=env) as fresh:
        assert reloaded == answers(fresh)


@pytest.mark.parametrize("in_child", [True, False], ids=["child-process", "thread"])
def test_a_reload_that_finds_every_document_unchanged_says_so(catalog: Path, in_child: bool) -> None:
    """From a bucket endpoint the server lists: a reload with nothing changed answers
    "changed": false (every item reused; the version still goes up: a reload's index is a new
    version, as ETags say), a reload after one item changed "changed": true."""
    env = {"STAC_STATIC_ADMIN_TOKEN": TOKEN, "STAC_STATIC_RELOAD_IN_CHILD": str(in_child).lower()}
    with ttfb_server(catalog, "--latency-ms", "0", "--bucket") as endpoint:
        env["STAC_STATIC_BUCKET_LISTINGS"] = json.dumps([f"{endpoint}/"])
        with run_server([f"{endpoint}/catalog.json"], env=env) as base:
            headers = {"Authorization": f"Bearer {TOKEN}"}
            for _ in range(2):  # (the first reload of an index loaded from the roots writes a snapshot first)
                answer = httpx.post(f"{base}/_mgmt/reload", headers=headers, timeout=120).json()
                ready = httpx.get(f"{base}/_mgmt/ready").json()
                assert answer["ok"] is True and answer["changed"] is False, answer
                assert ready["last_reload"]["changed"] is False and ready["load"]["reused"] == ready["items"]
            assert ready["version"] == 3
            path = _item_files(catalog, "dem-alps")[1]
            with uploaded(endpoint, catalog):
                doc = _doc(path)
                doc["properties"]["title"] = "changed in the bucket"
                _put(path, doc)
            answer = httpx.post(f"{base}/_mgmt/reload", headers=headers, timeout=120).json()
            assert answer["ok"] is True and answer["changed"] is True, answer
            answer = httpx.post(f"{base}/_mgmt/reload", headers=headers, timeout=120).json()
            assert answer["changed"] is False, answer  # unchanged since that one


def test_a_failed_reload_keeps_serving_and_the_next_one_reuses(catalog: Path) -> None:
    env = {"STAC_STATIC_ADMIN_TOKEN": TOKEN}
    roots = [str(catalog / "catalog.json")]
    with run_server(roots, env=env) as base:
        before = answers(base)
        (catalog / "catalog.json").rename(catalog / "gone.json")  # nothing loadable
        response = httpx.post(f"{base}/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)
        assert response.status_code >= 400
        assert answers(base) == before
        (catalog / "gone.json").rename(catalog / "catalog.json")
        edit_items(catalog)
        assert _reload(base)["load"]["reused"] > 0
        reloaded = answers(base)
    with run_server(roots, env=env) as fresh:
        assert reloaded == answers(fresh)


def test_a_stale_snapshot_at_start_is_rebuilt_reusing_its_unchanged_files(catalog: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "index.snapshot"
    roots = [str(catalog / "catalog.json")]
    assert run_cli(["index", *roots, "-o", str(snapshot)]).returncode == 0
    change_all(catalog)
    time.sleep(0.01)
    log = tmp_path / "serve.log"
    with run_server(roots, ["--index", str(snapshot)], log_path=log) as base:
        assert "is stale" in log.read_text()
        assert "items of unchanged documents reused" in log.read_text()
        rebuilt = answers(base)
    with run_server(roots) as fresh:
        assert rebuilt == answers(fresh)


def test_documents_all_under_one_bucket_endpoint_are_told_at_once() -> None:
    """reuse._all_under (a reload's documents taken as listed at once): every location starts
    with the endpoint, a newline in one is no separator."""
    from server.catalog.reuse import _all_under

    base = "http://b/k/"
    assert _all_under(base, [f"{base}a.json", f"{base}c/d.json"])
    assert not _all_under(base, [f"{base}a.json", "http://b/other/d.json"])
    assert not _all_under(base, [f"{base}a\n{base}b", "http://x/y"])
    assert not _all_under(base, ["http://x/y\n" + base, f"{base}a"])
    assert not _all_under(base, [])
