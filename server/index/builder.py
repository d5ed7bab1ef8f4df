"""Turns normalized item dicts into the columnar, immutable Index."""

from __future__ import annotations

import contextlib
import itertools
import os
import tempfile
from array import array
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np
import orjson
import shapely

from server.index import exact_json, heap
from server.index.blobs import AppendBlobWriter, BlobColumn, BlobWriter, FileBlobWriter
from server.index.columns import ColumnsBuilder
from server.index.ids import IdColumn, bytes_hash
from server.index.index import Index
from server.index.space_time import ItemRejected, item_geometry, item_interval, items_extent
from server.index.spatial import extreme_fractions
from server.index.text import TextIndexBuilder, document_text
from server.index.tree import LANDING, NO_NODE, TreeBuilder

__all__ = ["Chunk", "IndexBuilder", "ItemRejected", "ReadGeometry"]

GEOMETRY_BATCH = 4096
COLLECTION_MIX = np.uint64(0x9E3779B97F4A7C15)  # (collection load code, id hash) -> one hash (as server.index.reuse)
# Footprints past this are rejected: repairing or testing them could take minutes.
MAX_ITEM_VERTICES = 100_000


class ReadGeometry(dict[str, Any]):
    """A GeoJSON geometry object (served as such: orjson writes a dict subclass as the dict)
    that carries its shapely geometry, already read by whoever decoded it (the parquet reader
    from the column's WKB, vectorised over a row group): the builder takes ``shape`` instead of
    reading the coordinates back into shapely (~3 us an item, issue 18). ``shape`` (set
    after it is made) must be the geometry the coordinates describe."""

    __slots__ = ("shape",)
    shape: shapely.Geometry | None


class IndexBuilder:
    """Collects items (in any order), then freezes them into an Index.

    Items are keyed by (collection, id): the first one loaded wins, later ones are
    reported as duplicates (through ``on_reject``, when the index is built) and dropped,
    never merged.

    ``spool``: an open file the items' bytes are written to as they come (a snapshot being
    made, server/runtime/snapshot.py) instead of being held in memory; the index maps them.
    """

    def __init__(self, on_reject: Callable[..., None] | None = None, spool: BinaryIO | None = None,
                 json_path: str | None = None, json_append: str | None = None) -> None:
        self._report: Callable[..., None] = on_reject or (lambda label, reason, duplicate=False: None)
        # Per-item state lives in flat buffers and arrays, not in per-item Python objects:
        # millions of small long-lived objects would pin the allocator's arenas between
        # the parsed documents freed around them.
        self._json = FileBlobWriter(spool) if spool is not None else BlobWriter()
        # json_path: a forked process's builder whose chunk() leaves the items' bytes in that
        # new file (chunk(json_path)): written there as they come, through the file's buffer,
        # not gathered in a growing bytearray (~8 MB a chunk: fresh pages faulted in, then
        # read again to be written; issue 18)
        self._json_path = json_path
        if json_path is not None:
            self._json = FileBlobWriter(open(json_path, "wb", buffering=1 << 16))  # noqa: SIM115 (closed by chunk())
        # json_append: a forked process's builder whose items' bytes are appended to the spool
        # at that path as they come (AppendBlobWriter), where the loading process's builder
        # places them (add_chunk): not copied again
        if json_append is not None:
            self._json = AppendBlobWriter(json_append)
        # the footprints too (~10% of the items' bytes): in an unnamed file beside it, which
        # the snapshot writer copies in
        self._wkb = FileBlobWriter(tempfile.TemporaryFile(dir=os.path.dirname(os.path.abspath(spool.name)))) \
            if spool is not None else BlobWriter()
        self._bounds: list[np.ndarray] = []
        self._extremes: list[np.ndarray] = []  # for the box index: read while the geometries are decoded
        # a batch's footprints: (row, what _taken_geometry kept, label), the simple polygons'
        # numbers in _ring_xy
        self._geoms: list[tuple[int, Any, str]] = []
        self._ring_xy = array("d")
        self._rejected: dict[int, str] = {}
        self._start = array("q")
        self._end = array("q")
        self._sort_time = array("q")
        # ids as UTF-8 bytes, and per row the id's hash (ids.bytes_hash: the IdColumn's, made
        # as items are added, so a forked process's chunk brings them and the build does not
        # hash a million ids in one process) and where the item came from: duplicates are found
        # when the index is built, by sorting the hashes mixed with the collection (a set of ten
        # million ids would cost ~1 GB), and reported with their label then
        self._ids = BlobWriter()
        self._id_hashes = array("Q")
        # a row's label (asked only to report a duplicate), but for the rows of chunks whose
        # labels came as a range (a forked process's item files in order: their item links'
        # positions): those have no entry; ``label_of(row)`` gives theirs. An entry each was an
        # int and a slot (~40 B an item file: 0.4 GB at 10M) held through the load
        self._labels: list[Any] = []
        self._unlabeled_first = array("q")  # runs of rows without an entry: the first row of each,
        self._unlabeled_count = array("q")  # its rows,
        self._unlabeled_before = array("q")  # and the rows of the runs before it
        self.label_of: Callable[[int], str] = str
        self._collection_code = array("i")
        self._collection_codes: dict[str | None, int] = {}
        self._columns = ColumnsBuilder()
        self._text = TextIndexBuilder()
        self.collections: dict[str, dict[str, Any]] = {}
        self._extents_from_items: set[str] = set()
        self.root: dict[str, Any] = {}
        self.tree = TreeBuilder()  # the catalogs' own arrangement (server.index.tree)
        self.positions = np.zeros(0, dtype=np.int64)  # after build(): each row's index position (-1: dropped)

    def __len__(self) -> int:
        return len(self._ids) - len(self._rejected)

    @property
    def rows(self) -> int:
        """Rows added so far (items a later geometry batch rejects included): the next
        item's row number; after build(), ``positions[row]`` is its index position (-1: dropped)."""
        return len(self._ids)

    def add_collection(self, collection: dict[str, Any], extent_from_items: bool = False) -> bool:
        """Add a collection unless its id is taken; ``extent_from_items``: its extent is
        computed from its items when the index is built (a collection the loader made)."""
        cid = collection["id"]
        if cid in self.collections:
            return False
        self.collections[cid] = collection
        if extent_from_items:
            self._extents_from_items.add(cid)
        return True

    def add_node(self, kind: str, node_id: str, parent: int = LANDING, document: dict[str, Any] | None = None,
                 source: str | None = None) -> int:
        """A catalog's or collection's node in the tree (server.index.tree), under the node
        ``parent``; ``document``: a catalog's own (servable) document; ``source``: the public
        href of the file it was read from (Node.source)."""
        return self.tree.add(kind, node_id, parent, document, source)

    def add_item(self, item: dict[str, Any], label: str = "", node: int = NO_NODE) -> None:
        """Index one normalized item; ``node``: the tree node whose item link led to it (none:
        it was not linked, e.g. read from a bulk file). Raises ItemRejected with the reason; a
        geometry found unreadable later (in a batch) is reported through ``on_reject`` with ``label``."""
        item_id = item.get("id")
        if not isinstance(item_id, str) or not item_id:
            raise ItemRejected("missing or non-string id")
        props = item.get("properties")
        if not isinstance(props, dict):
            raise ItemRejected("missing properties object")
        if "geometry" not in item:
            raise ItemRejected("missing geometry member")
        collection = item.get("collection")
        if collection is not None and not isinstance(collection, str):
            raise ItemRejected("collection is not a string")
        times = item_interval(props)
        geometry = item["geometry"]
        if geometry is not None and not isinstance(geometry, dict):
            raise ItemRejected("geometry is not a GeoJSON object")
        if geometry is not None and not isinstance(item.get("bbox"), list):
            geom = item_geometry(item)  # rare: only to fill in the missing bbox
            if geom is not None:
                item["bbox"] = list(geom.bounds)
        # "links" goes last, always a list: responses append the API's links to the stored
        # bytes without parsing them (Index.links_last, routes.render_item).
        links = item.pop("links", None)
        item["links"] = links if isinstance(links, list) else []
        try:
            blob = exact_json.dumps(item)  # (integers beyond 64 bits written exactly)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise ItemRejected(f"cannot serialize: {exc}") from None
        row = len(self._ids)
        code = self._collection_codes.setdefault(collection, len(self._collection_codes))
        encoded = item_id.encode()
        self._ids.append(encoded)
        self._id_hashes.append(bytes_hash(encoded))
        self._labels.append(label)
        self.tree.row_nodes.append(node)
        self._collection_code.append(code)
        self._start.append(times[0])
        self._end.append(times[1])
        self._sort_time.append(times[2])
        self._json.append(blob)
        self._columns.add(row, props)
        self._text.add(row, document_text(props))
        self._geoms.append((row, _taken_geometry(geometry, self._ring_xy), label))
        if len(self._geoms) >= GEOMETRY_BATCH:
            self._flush_geometries()

    def chunk(self, json_path: str | None = None) -> Chunk:
        """What was added, as one picklable piece (this builder's rows 0..n-1) for another
        builder's ``add_chunk``: items indexed by a forked process (server.catalog.parallel).
        Only for a builder that was given items only (no collections, no spool). ``json_path``:
        the items' bytes are written to a new file there instead of carried in the chunk (for a
        builder that spools them: add_chunk has the kernel copy them, no pickling, no pipe)."""
        self._flush_geometries()
        self._columns.parse_times()  # here, in the forked process, not in the build's serial tail
        names: list[str | None] = [None] * len(self._collection_codes)
        for name, code in self._collection_codes.items():
            names[code] = name
        json_in, json_placed = None, None
        if isinstance(self._json, AppendBlobWriter):
            self._json.close()  # its bytes are in the spool already
            json_placed = self._json.pieces
        elif self._json_path is not None and isinstance(self._json, FileBlobWriter):
            self._json.file.close()  # its bytes are in its file already
            if json_path is None:  # carried in the chunk after all
                with open(self._json_path, "rb") as f:
                    self._json = BlobWriter.of(f.read(), self._json.ends)
                os.unlink(self._json_path)
            else:
                if json_path != self._json_path:
                    os.replace(self._json_path, json_path)
                json_in = (json_path, self._json.size)
            self._json_path = None
        elif json_path is not None:
            with open(json_path, "wb") as out:
                out.write(self._json.data)
            json_in = (json_path, len(self._json.data))
            self._json.data = bytearray()
        return Chunk(
            ids=(self._ids.data, self._ids.ends), id_hashes=self._id_hashes, labels=self._labels,
            row_nodes=self.tree.row_nodes, collections=names, codes=self._collection_code,
            start=self._start, end=self._end, sort_time=self._sort_time,
            json=(self._json.data, self._json.ends), wkb=(self._wkb.data, self._wkb.ends),
            bounds=np.concatenate(self._bounds) if self._bounds else np.zeros((0, 4)),
            extremes=np.concatenate(self._extremes) if self._extremes else np.zeros((0, 4), np.uint8),
            rejected=self._rejected, columns=self._columns, text=self._text, json_in=json_in,
            json_placed=json_placed)

    def add_chunk(self, chunk: Chunk) -> None:
        """Append the rows of ``chunk`` (another builder's ``chunk()``) after this one's, as if
        their items had been added here one by one: the same index results. Rows its geometry
        batches rejected were reported where it was made; the caller reports them (they are in
        ``chunk.rejected``)."""
        self._flush_geometries()  # the footprints' arrays stay in row order
        first = len(self._ids)
        if not len(chunk.codes):
            return
        load = np.array([self._collection_codes.setdefault(name, len(self._collection_codes))
                         for name in chunk.collections], dtype=np.int32)
        self._collection_code.frombytes(load[np.frombuffer(chunk.codes, dtype=np.int32)].tobytes())
        self._ids.extend(*chunk.ids)
        self._id_hashes.extend(chunk.id_hashes)
        if isinstance(chunk.labels, range):
            self._unlabeled(first, len(chunk.labels))
        else:
            self._labels.extend(chunk.labels)
        self.tree.row_nodes.extend(chunk.row_nodes)
        self._start.extend(chunk.start)
        self._end.extend(chunk.end)
        self._sort_time.extend(chunk.sort_time)
        if chunk.json_placed is not None:  # appended to this builder's spool by the forked process
            if not isinstance(self._json, FileBlobWriter):
                raise TypeError("a chunk whose items' bytes are in a spool, added to a builder without it")
            self._json.place(chunk.json_placed, chunk.json[1])
        elif chunk.json_in is None:
            self._json.extend(*chunk.json)
        else:
            path, size = chunk.json_in
            source = os.open(path, os.O_RDONLY)
            try:
                self._json.extend_from(source, size, chunk.json[1])
            finally:
                os.close(source)
        self._wkb.extend(*chunk.wkb)
        self._bounds.append(chunk.bounds)
        self._extremes.append(chunk.extremes)
        for row, reason in chunk.rejected.items():
            self._rejected[first + row] = reason
        self._columns.merge(chunk.columns, first)
        self._text.merge(chunk.text, first)

    def spool_appended(self) -> None:
        """Forked processes appended items' bytes to this builder's spool (``json_append``) and
        are done (ended): what this process writes goes after them."""
        if isinstance(self._json, FileBlobWriter):
            self._json.appended()

    def _flush_geometries(self) -> None:
        """Parse, bound and WKB-encode a batch of geometries at once: shapely is several
        times faster vectorized. An item whose geometry GEOS cannot read is dropped."""
        if not self._geoms:
            return
        geoms = _read_geometries([g for _, g, _ in self._geoms], self._ring_xy)
        given = np.array([g is not None for _, g, _ in self._geoms], dtype=bool)
        for i in np.flatnonzero(shapely.is_missing(geoms) & given):
            row, _, label = self._geoms[int(i)]
            self._rejected[row] = "invalid geometry"
            self._report(label, "invalid geometry (GEOS cannot read it)")
        geoms[shapely.is_empty(geoms)] = None
        too_big = shapely.get_num_coordinates(geoms) > MAX_ITEM_VERTICES
        for i in np.flatnonzero(too_big):
            row, _, label = self._geoms[int(i)]
            self._rejected[row] = "geometry too large"
            self._report(label, f"geometry has more than {MAX_ITEM_VERTICES} vertices")
        geoms[too_big] = None
        # Self-intersecting rings and the like: searched as their repaired shape (the item
        # is served as written), so no spatial predicate meets an invalid geometry.
        invalid = ~shapely.is_valid(geoms) & ~shapely.is_missing(geoms)
        if invalid.any():
            geoms[invalid] = shapely.make_valid(geoms[invalid])
        bounds = shapely.bounds(geoms)
        bounds[~np.isfinite(bounds).all(axis=1)] = np.nan
        self._bounds.append(bounds)
        self._extremes.append(extreme_fractions(geoms, bounds))
        # the batch's WKB at once, not an append each (~0.3 us an item: issue 18)
        blobs = [b"" if wkb is None else wkb for wkb in shapely.to_wkb(geoms).tolist()]
        self._wkb.extend(b"".join(blobs), array("q", itertools.accumulate(map(len, blobs))))
        self._geoms = []
        self._ring_xy = array("d")

    def _reject_duplicates(self, ids: BlobColumn) -> None:
        """Drop every item whose (collection, id) an earlier one had, reporting it: rows of
        equal hashes are compared exactly (rare but for real duplicates), the first kept. One
        already dropped for its geometry is not reported twice."""
        hashes = np.frombuffer(self._id_hashes, dtype=np.int64) if len(self._id_hashes) else np.zeros(0, np.int64)
        ordered = np.sort(hashes)  # no two equal (the common case): no argsort (1M: ~0.06 s of ~0.12)
        if not (ordered[1:] == ordered[:-1]).any():
            return
        del ordered
        by_hash = np.argsort(hashes, kind="stable")
        same = np.flatnonzero(hashes[by_hash][1:] == hashes[by_hash][:-1])
        if not len(same):
            return
        load_codes = np.frombuffer(self._collection_code, dtype=np.int32)
        names = {code: name for name, code in self._collection_codes.items()}
        first: dict[tuple[int, bytes], int] = {}
        for row in sorted(by_hash[np.union1d(same, same + 1)].tolist()):
            key = (int(load_codes[row]), ids[row])
            if key not in first:
                first[key] = row
            elif row not in self._rejected:
                self._rejected[row] = "duplicate"
                item_id = key[1].decode()
                self._report(self._label(row), f"item {item_id!r}: duplicate id {item_id!r} in collection "
                             f"{names[key[0]]!r}; kept the first", duplicate=True)

    def _unlabeled(self, first: int, count: int) -> None:
        """Rows ``first`` to ``first + count`` (the last ones) have no entry in ``_labels``."""
        firsts, counts = self._unlabeled_first, self._unlabeled_count
        if not count:
            return
        if firsts and firsts[-1] + counts[-1] == first:  # right after the last run: one run
            counts[-1] += count
            return
        self._unlabeled_before.append(self._unlabeled_before[-1] + counts[-1] if firsts else 0)
        firsts.append(first)
        counts.append(count)

    def _label(self, row: int) -> str:
        firsts = self._unlabeled_first
        skipped = 0
        k = bisect_right(firsts, row) - 1  # the last run starting at or before the row
        if k >= 0:
            count = self._unlabeled_count[k]
            if row < firsts[k] + count:
                return self.label_of(row)
            skipped = self._unlabeled_before[k] + count
        label = self._labels[row - skipped]
        return label if isinstance(label, str) else self.label_of(row)

    def discard(self) -> None:
        """A failed load's builder: the unnamed file its footprints were spooled to closed now,
        not whenever a kept traceback lets the builder go (a ResourceWarning then, in whatever
        runs next: session 15's full-disk test left one to a later test)."""
        if isinstance(self._wkb, FileBlobWriter):
            with contextlib.suppress(OSError):
                self._wkb.file.close()

    def build(self) -> Index:
        """The Index of the items added. Once: the builder's state is handed over or released
        part by part as the index takes shape, so the build's peak is not the builder's state
        and the index's side by side (10M items: ~8.5 GB before this, bench/README.md); the
        heap trimmed after each part (heap.trim), or what a part freed stays in RSS to the end."""
        self._flush_geometries()
        n = len(self._ids)

        def by_row(values: array) -> np.ndarray:
            return np.frombuffer(values, dtype=np.int64) if n else np.zeros(0, np.int64)

        coll_names = sorted({c for c in self._collection_codes if c is not None} | set(self.collections))
        final_code = {name: code for code, name in enumerate(coll_names)}
        remap = np.full(max(len(self._collection_codes), 1), -1, dtype=np.int32)
        for name, load_code in self._collection_codes.items():
            remap[load_code] = final_code.get(name, -1) if name is not None else -1
        codes = remap[np.frombuffer(self._collection_code, dtype=np.int32)] if n else np.zeros(0, np.int32)
        ids = self._ids.freeze()
        id_hashes = np.frombuffer(self._id_hashes, dtype=np.uint64) if n else np.zeros(0, np.uint64)
        # (collection, id) for the duplicates: the collection mixed in in place, and out again
        # after (XOR), so no second array of a hash per row is made
        mix = np.frombuffer(self._collection_code, dtype=np.int32).astype(np.uint64) * COLLECTION_MIX if n else 0
        id_hashes ^= mix
        self._reject_duplicates(ids)
        id_hashes ^= mix
        del mix
        self._labels = []
        self._unlabeled_first, self._unlabeled_count, self._unlabeled_before = array("q"), array("q"), array("q")
        order = _default_order(ids, codes, by_row(self._sort_time))
        del ids
        heap.trim()
        if self._rejected:
            order = order[~np.isin(order, np.fromiter(self._rejected, dtype=np.int64))]
        new_position = np.full(n, -1, dtype=np.int64)
        new_position[order] = np.arange(len(order), dtype=np.int64)
        self.positions = new_position
        bounds = np.concatenate(self._bounds) if self._bounds else np.zeros((0, 4))
        self._bounds = []
        for cid in sorted(self._extents_from_items):
            rows = order[codes[order] == final_code[cid]]
            self.collections[cid]["extent"] = items_extent(bounds[rows], by_row(self._start)[rows], by_row(self._end)[rows])
        bounds = bounds[order]
        extremes = np.concatenate(self._extremes)[order] if self._extremes else np.zeros((0, 4), np.uint8)
        self._extremes = []
        start, end, sort_time = (by_row(values)[order] for values in (self._start, self._end, self._sort_time))
        self._start, self._end, self._sort_time = array("q"), array("q"), array("q")
        hashes = id_hashes[order]
        del id_hashes
        self._id_hashes = array("Q")
        heap.trim()
        id_column = IdColumn(self._ids.freeze(order), hashes)
        del hashes
        self._ids = BlobWriter()
        heap.trim()
        json, wkb = self._json.freeze(order), self._wkb.freeze(order)
        heap.trim()
        columns = self._columns.freeze(new_position)  # each key's builder released once frozen (and the heap trimmed)
        text = self._text.freeze(new_position)
        heap.trim()
        tree = self.tree.freeze(new_position, len(order))
        del new_position
        heap.trim()
        return Index(
            ids=id_column,
            codes=codes[order],
            collection_names=coll_names,
            start=start,
            end=end,
            sort_time=sort_time,
            bounds=bounds,
            extremes=extremes,
            json=json,
            wkb=wkb,
            columns=columns,
            text=text,
            collections=self.collections,
            root=self.root,
            links_last=True,
            tree=tree,
        )


@dataclass
class Chunk:
    """The rows a builder was given (IndexBuilder.chunk), numbered from 0: flat buffers and
    arrays, cheap to pickle from a forked process and to append (IndexBuilder.add_chunk)."""

    ids: tuple[bytes | bytearray, array]  # (UTF-8 bytes, ends), as BlobWriter
    id_hashes: array
    labels: list[Any] | range  # a str each, or an int IndexBuilder.label_of reads; a range: none kept (_unlabeled)
    row_nodes: array
    collections: list[str | None]  # by the chunk's own collection code
    codes: array
    start: array
    end: array
    sort_time: array
    json: tuple[bytes | bytearray, array]
    wkb: tuple[bytes | bytearray, array]
    bounds: np.ndarray
    extremes: np.ndarray
    rejected: dict[int, str]
    columns: ColumnsBuilder
    text: TextIndexBuilder
    json_in: tuple[str, int] | None = None  # the items' bytes are in this file (path, size), not in ``json``
    # the items' bytes were appended to the loading process's spool (AppendBlobWriter.pieces), not in ``json``
    json_placed: array | None = None


MAX_SAFE_INT = 2**53


def _closed_ring(geometry: dict[str, Any]) -> list[Any] | None:
    """The ring of a GeoJSON Polygon without holes, of at least 4 positions, its first and last
    equal; its positions not checked (_plain_positions: _simple_ring's checks, a batch at once)."""
    if geometry.get("type") != "Polygon":
        return None
    rings = geometry.get("coordinates")
    if type(rings) is not list or len(rings) != 1:
        return None
    ring = rings[0]
    if type(ring) is not list or len(ring) < 4 or ring[0] != ring[-1]:
        return None
    return ring


def _plain_positions(rings: list[list[Any]]) -> bool:
    """Whether every position of ``rings`` is [x, y] of floats or integers a double holds
    exactly (as _simple_ring checks them), by maps over the whole batch (C loops: ~1 us an
    item less than a Python loop over its positions, issue 18)."""
    return _plain_numbers(list(itertools.chain.from_iterable(rings))) is not None


def _plain_numbers(positions: list[Any]) -> list[Any] | None:
    """The numbers of ``positions`` in order (x, y, x, y, ...) when each is [x, y] of floats or
    integers a double holds exactly; else None."""
    if set(map(type, positions)) != {list} or set(map(len, positions)) != {2}:
        return None
    numbers = list(itertools.chain.from_iterable(positions))
    kinds = set(map(type, numbers))
    if kinds == {float}:
        return numbers
    if kinds <= {float, int} and all(-MAX_SAFE_INT < v < MAX_SAFE_INT for v in numbers if type(v) is int):
        return numbers
    return None


def _taken_geometry(geometry: dict[str, Any] | None, xy: array) -> Any:
    """What IndexBuilder.add_item keeps of an item's geometry for its batch (_read_geometries):
    a simple polygon's (_simple_ring) position count, its numbers appended to ``xy`` now, while
    the item's objects are still in the cache (checked and copied at the batch's flush, 4,096
    items later, they were read from memory again: ~4.8 us an item against ~2 here, issue 18),
    and nothing of the dict held until then; else the geometry itself (None, a ReadGeometry,
    any other GeoJSON object: read at the flush as before)."""
    if geometry is None or type(geometry) is ReadGeometry:
        return geometry
    ring = _closed_ring(geometry)
    if ring is None:
        return geometry
    numbers = _plain_numbers(ring)
    if numbers is None:
        return geometry
    xy.extend(numbers)  # floats, or integers a double holds exactly: the same doubles as np.fromiter's
    return len(ring)


def _simple_ring(geometry: dict[str, Any]) -> list[Any] | None:
    """The ring of a GeoJSON Polygon without holes, when GEOS would read it as is: closed, at
    least 4 positions, each [x, y] of floats (or integers a double holds exactly); else None."""
    ring = _closed_ring(geometry)
    return ring if ring is not None and _plain_positions([ring]) else None


def _read_geometries(geometries: list[Any], xy: array | None = None) -> np.ndarray:
    """Shapely geometries of GeoJSON geometry objects (None: missing, or GEOS cannot read it).
    Simple polygons (the common footprint: _simple_ring, checked as _closed_ring and
    _plain_positions) are made from their coordinates at
    once (shapely.linearrings, polygons); the rest through GEOS's GeoJSON reader, serialized
    first (orjson): ~8-10 us a footprint that way, ~4 the simple way (8 vertices; issue 18).
    An int in ``geometries`` is a simple polygon taken already (_taken_geometry): that many
    positions, the next of ``xy``'s (in order)."""
    out = np.full(len(geometries), None, dtype=object)
    rings: list[list[Any]] = []
    simple: list[int] = []
    other: list[int] = []
    taken: list[int] = []
    for i, geometry in enumerate(geometries):
        if geometry is None:
            continue
        if type(geometry) is int:
            taken.append(i)
            continue
        if type(geometry) is ReadGeometry:
            out[i] = geometry.shape
            continue
        ring = _closed_ring(geometry)
        if ring is None:
            other.append(i)
        else:
            simple.append(i)
            rings.append(ring)
    flat = itertools.chain.from_iterable
    if rings and not _plain_positions(rings):  # one is not: each ring checked on its own
        kept = [(i, ring) for i, ring in zip(simple, rings) if _plain_positions([ring])]
        other = sorted(other + sorted(set(simple) - {i for i, _ in kept}))
        simple, rings = [i for i, _ in kept], [ring for _, ring in kept]  # _simple_ring's
    if taken and xy is not None:
        sizes = [geometries[i] for i in taken]
        coords = np.frombuffer(xy, dtype=np.float64).reshape(-1, 2)
        which = np.repeat(np.arange(len(taken)), sizes)
        out[taken] = shapely.polygons(shapely.linearrings(coords, indices=which))
    if rings:
        coords = np.fromiter(flat(flat(rings)), dtype=np.float64).reshape(-1, 2)  # numbers checked: no conversion
        which = np.repeat(np.arange(len(rings)), [len(ring) for ring in rings])
        out[simple] = shapely.polygons(shapely.linearrings(coords, indices=which))
    if other:
        texts = np.array([orjson.dumps(geometries[i]) for i in other], dtype=object)
        out[other] = shapely.from_geojson(texts, on_invalid="ignore")
    return out


def _default_order(ids: BlobColumn, codes: np.ndarray, sort_time: np.ndarray) -> np.ndarray:
    """Rows in the default order: newest first, then collection, then id, so pages are stable.
    Sorted on the numbers first; only rows tied on both are then ordered by their ids' bytes
    (UTF-8 byte order is code point order, as Python compares strings), without a Python
    string per row."""
    n = len(ids)
    if not n:
        return np.zeros(0, dtype=np.int64)
    # np.lexsort((codes, -sort_time)) as two stable sorts: by the codes as int16 (a radix sort),
    # then by time (1M: ~0.11 s vs ~0.17, the build's serial tail, issue 18)
    order = np.argsort(codes.astype(np.int16) if len(codes) and -2**15 <= codes.min() and codes.max() < 2**15 else codes,
                       kind="stable")
    times = sort_time[order]
    np.negative(times, out=times)
    order = order[np.argsort(times, kind="stable")]
    del times
    t, c = sort_time[order], codes[order]
    tie = (t[1:] == t[:-1]) & (c[1:] == c[:-1])
    if tie.any():
        in_run = np.zeros(n, dtype=bool)
        in_run[:-1] |= tie
        in_run[1:] |= tie
        where = np.flatnonzero(in_run)
        run = np.cumsum(np.concatenate(([True], ~tie)))[where]
        rows = order[where]
        keys = np.array(ids.many(rows), dtype=object)
        order[where] = rows[np.lexsort((keys, run))]
    return order
