"""The immutable, queryable index of the items of one load of the catalogs.

Records are kept in the default sort order (newest first, then collection, then id), so a
sorted array of record positions is also a sorted page sequence, and a page token only
needs to name the key it pages from (the last returned, or the first, going back).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import orjson
import shapely

from server.index import aggregation, exact_json
from server.index.bitmap import Bitmap, Unsorted
from server.index.blobs import BlobColumn
from server.index.collections import CollectionTable
from server.index.columns import Column, StringPart
from server.index.ids import IdColumn
from server.index.match_cache import MatchCache
from server.index.origins import Origins
from server.index.spatial import CORNER_CHUNK, CORNER_COLUMNS, CellGrid, corner_legs, wkb_exterior_vertices, wkb_vertex_in_boxes
from server.index.table import SearchResult, Table
from server.index.text import TextIndex, document_text
from server.index.tree import Tree
from server.query.model import SearchQuery

__all__ = ["Index", "SearchResult"]


def degraded_reason(load_report: dict[str, Any] | None) -> str | None:
    """Why a load is degraded, from its report as an index keeps it (Index.load_report, the
    loader's LoadReport.problems()): catalogs, collections or bulk files not read, their items
    missing; None when it is not. The one predicate: `index` writes no snapshot of such a load
    (LoadReport.degraded), `serve --index` neither rewrites its file with one (a stale
    snapshot's rebuild, the start check's reload), and /_mgmt/ready says "degraded". A snapshot
    of one would be served at the next start as complete, unchecked if its files are unchanged."""
    skipped = (load_report or {}).get("structure_skipped")
    if not skipped:
        return None
    skips = (load_report or {}).get("structure_skips") or []
    missing = [str(skip.get("location")) for skip in skips if isinstance(skip, dict)]
    shown = f": {', '.join(missing[:3])}{' and more' if len(missing) > 3 else ''}" if missing else ""
    return f"{skipped} catalogs, collections or bulk files not read{shown}"


def newly_missing(previous: dict[str, Any] | None, load_report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The catalogs, collections or bulk files a load could not read (load_report's structure
    skips) that the load before it did not miss (``previous``, as kept by the index it would
    replace): what a reload would stop serving through a failure rather than a change. A
    location the previous load's report did not list, kept in full (under MAX_SKIPS_KEPT), was
    read or not yet linked then."""
    before = {str(skip.get("location")) for skip in (previous or {}).get("structure_skips") or []
              if isinstance(skip, dict)}
    return [skip for skip in (load_report or {}).get("structure_skips") or []
            if isinstance(skip, dict) and str(skip.get("location")) not in before]


class Index(Table):
    # The real local folders the API serves files from (--serve-assets), numbered as in the
    # /_assets/{root}/ hrefs the load stored (server/index/served.py); empty: none. Class
    # attributes, so a snapshot pickled before they existed reads as "none".
    asset_roots: tuple[str, ...] = ()
    # The load stored hrefs of the sample's thumbnails below the base URL (server/index/served.py).
    sample_hrefs: bool = False
    # The href settings the load applied ({"public_hrefs": [...], "serve_assets": bool}): a
    # snapshot made with others is not served as is (server/runtime/cli.py).
    hrefs_config: dict[str, Any] | None = None
    # Where the items read from documents of their own came from (server.index.origins), for a
    # reload that re-reads only what changed; None: unknown (nothing is reused).
    origins: Origins | None = None

    def __init__(
        self,
        *,
        ids: IdColumn | list[str],
        codes: np.ndarray,
        collection_names: list[str],
        start: np.ndarray,
        end: np.ndarray,
        sort_time: np.ndarray,
        bounds: np.ndarray,
        json: BlobColumn,
        wkb: BlobColumn,
        columns: dict[str, Column],
        text: TextIndex,
        collections: dict[str, dict[str, Any]],
        root: dict[str, Any],
        extremes: np.ndarray | None = None,
        links_last: bool = False,
        tree: Tree | None = None,
    ) -> None:
        """``extremes``: each record's spatial.extreme_fractions, when the caller has them
        (else they are read from the WKB). ``links_last``: every stored item ends with its
        "links" array, so links can be appended to the bytes without parsing them. ``tree``:
        the catalogs' own arrangement (server.index.tree; none known: only the landing page)."""
        self.ids = ids if isinstance(ids, IdColumn) else IdColumn.of(ids)
        self.codes = codes
        self.collection_names = collection_names
        self.start = start
        self.end = end
        self.sort_time = sort_time
        self.bounds = bounds
        self.json = json
        self.wkb = wkb
        self.columns = columns
        self.text = text
        self.collections = collections
        self.root = root
        self.links_last = links_last
        self.tree = tree if tree is not None else Tree.empty(len(ids))
        self.loaded_at = time.time()
        self.version = 1
        # catalog.fingerprint.Fingerprint of the local files read (paths, sizes, mtimes): for watching them
        # and for checking a snapshot; compact, unlike the loader's list of a million paths
        self.fingerprint: Any = None
        # What the load that built it reports (JSON: skipped structural documents, items served
        # under another collection); /_mgmt/ready shows it. Set by the loader; None when unknown.
        self.load_report: dict[str, Any] | None = None
        self.size = len(ids)
        self._by_collection = {
            name: np.flatnonzero(codes == code) for code, name in enumerate(collection_names)
        }
        self._virtual: dict[str, Column] = {}
        self._init_spatial(extremes)
        self.collection_table = CollectionTable(collections)

    @property
    def served_hrefs(self) -> bool:
        """Whether stored documents hold hrefs the API completes with the request's base URL
        (server/index/served.py): files it serves (--serve-assets) or the sample's thumbnails."""
        return bool(self.asset_roots) or self.sample_hrefs

    def serves_as(self, previous: Index) -> bool:
        """Whether this index (a reload's) serves what ``previous`` served: every item reused
        from it (its document unchanged: the same bytes, hence the same columns) and in the same
        places, the same collections, catalogs and load report. Cheap, as it is asked only once
        every item was reused; a reload that read any item again (an ndjson or parquet file's
        items always are) is taken as changed, whatever it read."""
        report, before = self.load_report or {}, previous.load_report or {}
        if report.get("reused") != self.size or previous.size != self.size:
            return False
        same = ("skipped", "skipped_by_reason", "structure_skips", "reassigned", "made_collections", "hrefs_not_public")
        if any(report.get(key) != before.get(key) for key in same):
            return False
        nodes = [(n.kind, n.id, n.parent, n.segments, n.children, n.document) for n in self.tree.nodes]
        return (np.array_equal(self.codes, previous.codes) and self.collection_names == previous.collection_names
                and np.array_equal(self.ids.hash_sorted, previous.ids.hash_sorted)
                and np.array_equal(self.ids.hash_order, previous.ids.hash_order)
                and exact_json.dumps(self.collections) == exact_json.dumps(previous.collections)
                and list(self.collections) == list(previous.collections)
                and exact_json.dumps(self.root) == exact_json.dumps(previous.root)
                and nodes == [(n.kind, n.id, n.parent, n.segments, n.children, n.document) for n in previous.tree.nodes]
                and np.array_equal(self.tree.items, previous.tree.items)
                and np.array_equal(self.tree.item_starts, previous.tree.item_starts)
                and self.tree.complete == previous.tree.complete)

    # -- lookups -------------------------------------------------------------------------

    def item(self, pos: int) -> dict[str, Any]:
        item: dict[str, Any] = exact_json.loads(self.json[pos])  # (integers beyond 64 bits exact)
        return item

    def find(self, collection: str | None, item_id: str) -> int | None:
        for pos in self._positions_of_id(item_id):
            if self.collection_of(pos) == collection:
                return pos
        return None

    def collection_of(self, pos: int) -> str | None:
        code = int(self.codes[pos])
        return self.collection_names[code] if code >= 0 else None

    def collections_of(self, positions: np.ndarray) -> list[str | None]:
        """``collection_of`` each of ``positions``, their codes read at once."""
        names = self.collection_names
        return [names[code] if code >= 0 else None for code in self.codes[positions].tolist()]

    def collection_positions(self, collection: str) -> np.ndarray:
        found = self._by_collection.get(collection)
        return found if found is not None else np.zeros(0, dtype=np.int64)

    def default_key(self, pos: int) -> list[Any]:
        return [-int(self.sort_time[pos]), self.collection_of(pos) or "", self.ids[pos]]

    def _positions_of_id(self, item_id: str) -> list[int]:
        return self.ids.positions([item_id]).tolist()

    def _positions_of_ids(self, item_ids: list[str]) -> np.ndarray:
        """Sorted positions of the records with any of ``item_ids``: one vectorized lookup
        for all of them (an id may be in several collections)."""
        return self.ids.positions(item_ids)

    # -- what the shared Table machinery needs ------------------------------------------------

    def geometries(self, positions: np.ndarray) -> np.ndarray:
        return shapely.from_wkb(self.wkb.many(positions))

    def vertex_in_boxes(self, positions: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
        out = np.zeros(len(positions), dtype=bool)
        for data, which, starts, ends in self.wkb.by_buffer(positions):  # a reload's: two buffers
            found = wkb_vertex_in_boxes(data, starts, ends, boxes)
            out[slice(None) if which is None else which] = found
        return out

    def corner_legs(self, positions: np.ndarray) -> np.ndarray:
        """Read in the footprints' storage order, a chunk at a time (bounded temporaries)."""
        out = np.empty((len(positions), CORNER_COLUMNS), dtype=np.uint8)
        order = np.argsort(self.wkb.starts[positions])
        for at in range(0, len(order), CORNER_CHUNK):
            part = order[at : at + CORNER_CHUNK]
            chunk = positions[part]
            for data, which, starts, ends in self.wkb.by_buffer(chunk):  # a reload's: two buffers
                rows = part if which is None else part[which]
                out[rows] = corner_legs(data, starts, ends, self.bounds[chunk if which is None else chunk[which]])
        return out

    def vertex_in_grid(self, positions: np.ndarray, grid: CellGrid) -> np.ndarray:
        out = np.zeros(len(positions), dtype=bool)
        for data, which, starts, ends in self.wkb.by_buffer(positions):  # a reload's: two buffers
            rows, first, x, y = wkb_exterior_vertices(data, starts, ends)
            if len(rows):
                out[rows if which is None else which[rows]] = np.logical_or.reduceat(grid.points(x, y), first)
        return out

    def texts_of(self, pos: int) -> list[str]:
        # orjson alone (not item: no exact integers needed for texts, no test of the bytes for them)
        return document_text(orjson.loads(self.json[pos]).get("properties", {}))

    def _column(self, key: str) -> Column | None:
        if key in ("id", "collection"):
            if key not in self._virtual:
                self._virtual[key] = self._id_column() if key == "id" else self._collection_column()
            return self._virtual[key]
        return self.columns.get(key)

    def _id_column(self) -> Column:
        rows = np.arange(self.size, dtype=np.int64)
        vocab, codes = self.ids.vocab()
        return Column("id", string=StringPart(rows, codes, vocab))

    def _collection_column(self) -> Column:
        rows = np.flatnonzero(self.codes >= 0)
        return Column("collection", string=StringPart(rows, self.codes[rows].astype(np.int64), self.collection_names))

    # -- search --------------------------------------------------------------------------

    def search(
        self, query: SearchQuery, after: list[Any] | None = None, matches: MatchCache | None = None,
        before: list[Any] | None = None,
    ) -> SearchResult:
        """One page of the query's results, after the key ``after`` or before ``before`` (see
        Table.page); its matches from ``matches`` when given (the other pages of a search,
        next or prev, find them there)."""
        positions = matches.match(self, query) if matches is not None else self.match_set(query)
        return self.page(positions, query, after, before)

    def match_set(self, query: SearchQuery) -> np.ndarray | Bitmap | Unsorted:
        if query.ids is not None or query.collections is not None:
            return self.match(query)
        return super().match_set(query)

    def match(self, query: SearchQuery, candidates: np.ndarray | None = None) -> np.ndarray:
        if query.ids is not None:
            candidates = self._positions_of_ids(query.ids)
        if query.collections is not None:
            parts = [self._by_collection[c] for c in set(query.collections) if c in self._by_collection]
            in_collections = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
            candidates = self._intersect(candidates, in_collections)
        return super().match(query, candidates)

    # -- aggregation -----------------------------------------------------------------------

    def aggregations(self, collection: str | None = None) -> list[dict[str, Any]]:
        """What /aggregations lists (for one collection's items, when given)."""
        return aggregation.available(self, collection)

    def aggregate(
        self, query: SearchQuery, names: list[str] | None, options: dict[str, Any], matches: MatchCache | None = None
    ) -> list[dict[str, Any]]:
        """The named aggregations (server.index.aggregation) of the query's matches."""
        positions = matches.match(self, query) if matches is not None else self.match(query)
        if isinstance(positions, (Bitmap, Unsorted)):
            positions = positions.positions()
        return aggregation.aggregate(self, query, names, options, positions)
