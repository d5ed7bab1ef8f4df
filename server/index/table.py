"""What every searchable set of records shares (items, and collections for collection search):
bounds and exact geometries, time intervals, property columns, a text index, and the
search, filter and sort machinery over them.

Positions are record numbers in the table's default order; every result is a sorted
array of positions until a sortby re-orders it.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import shapely

from server.errors import InvalidQueryParameter
from server.index.bitmap import BITMAP_MIN_RECORDS, Bitmap, Unsorted
from server.index.columns import Column
from server.index.filter_bits import BitsFilter, FilterBits
from server.index.filtering import FilterEvaluator
from server.index.spatial import (
    BoxIndex,
    CellGrid,
    Groups,
    bbox_geometry,
    extreme_fractions,
    grid_cells,
)
from server.index.text import TextIndex
from server.query.model import SearchQuery, SortField, check_deadline


@dataclass
class SearchResult:
    """One page: its positions in order, the count of all matches, the key of its last record
    when a page follows (a next token), the key of its first when one precedes (a prev token),
    and whether any match precedes it at all (not page 1: a first link)."""

    positions: np.ndarray
    matched: int
    next_key: list[Any] | None
    prev_key: list[Any] | None = None
    has_prev: bool = False


MISSING_RANK = 9
MAX_BOX_PARTS = 64
GEOMETRY_CHUNK = 65_536
REFINE_CHUNK = 16_384
# Sorted pages are read off an order of the whole table kept per sortby (4 or 8 bytes per
# record each, SortOrders) on tables this large, when at least 1/PRESORT_DENSITY of it matches.
PRESORT_MIN_RECORDS = 50_000
PRESORT_DENSITY = 100
# A search for one box (and a datetime) alone on a table this large is counted (Table._counted)
# when the box index's nodes it meets hold this many records: below, its groups' extra levels
# cost what they save (1,000,000 items: a 5-degree box over half a year reaches ~60,000 and is
# as fast either way; at 10,000,000, ~450,000: 0.6x; a bbox alone at 1M, ~350,000: 0.75x).
COUNTED_MIN_RECORDS = 200_000
COUNTED_MIN_REACH = 131_072


class SortOrders(dict):
    """The sort orders a table has computed, by sortby; the last few only. Never pickled
    into a snapshot (an empty one is): they are cheap to recompute and large."""

    MAX = 4

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()  # sorted searches run in worker threads

    def __setitem__(self, key: Any, value: np.ndarray) -> None:
        with self.lock:
            while len(self) >= self.MAX:
                del self[next(iter(self))]
            super().__setitem__(key, value)

    def __reduce__(self) -> tuple[Any, ...]:
        return (SortOrders, ())


# Matches of at least 1/DENSE_MATCHES of the table are put in order by flagging, not sorting.
DENSE_MATCHES = 8
PROPERTIES = "properties."  # the filter extension's fully qualified form of a property's name (Table.property_key)
VERTEX_CHUNK = 65_536  # records whose vertices are read at once: bounded temporaries, deadline checks


class Table:
    size: int
    start: np.ndarray
    end: np.ndarray
    bounds: np.ndarray
    columns: dict[str, Column]
    text: TextIndex
    _sort_orders: SortOrders | None = None  # made on the first sorted search (see _sort_order)
    _filter_bits: FilterBits | None = None  # made on the first filter (see match_set)
    _groups: Groups | None = None  # made on the first box search of a large table (see _counted)

    def _init_spatial(self, extremes: np.ndarray | None = None) -> None:
        """The box index; ``extremes`` (per record, from spatial.extreme_fractions) are read
        from the geometries when not given."""
        has_geom = ~np.isnan(self.bounds[:, 0]) if len(self.bounds) else np.zeros(0, bool)
        self.geometry_positions = np.flatnonzero(has_geom)
        # every record with a geometry (the usual case): the arrays themselves, not copies of
        # them (52 bytes a record, 0.5 GB at 10M, held while the box index is made: a build's peak)
        every = len(self.geometry_positions) == len(has_geom)
        bounds = self.bounds if every else self.bounds[has_geom]
        start, end = (self.start, self.end) if every else (self.start[has_geom], self.end[has_geom])
        if extremes is not None:
            extremes = extremes if every else extremes[has_geom]
        else:
            parts = [np.zeros((0, 4), dtype=np.uint8)]
            for i in range(0, len(bounds), GEOMETRY_CHUNK):  # in chunks: decoded geometries are large
                chunk = self.geometry_positions[i : i + GEOMETRY_CHUNK]
                parts.append(extreme_fractions(self.geometries(chunk), bounds[i : i + len(chunk)]))
            extremes = np.concatenate(parts)
        del has_geom
        self._boxes = BoxIndex(self.geometry_positions, bounds, start, end, extremes)

    # -- to be provided by each kind of table -----------------------------------------------

    def geometries(self, positions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def texts_of(self, pos: int) -> list[str]:
        raise NotImplementedError

    def vertex_in_boxes(self, positions: np.ndarray, boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
        """True where a record surely intersects one of ``boxes`` because a vertex of its
        geometry lies in it; False where that needs the exact test (the default: always)."""
        return np.zeros(len(positions), dtype=bool)

    def vertex_in_grid(self, positions: np.ndarray, grid: CellGrid) -> np.ndarray:
        """True where a record surely intersects ``grid``'s geometry because a vertex of its
        geometry lies in it; False where that needs the exact test (the default: always)."""
        return np.zeros(len(positions), dtype=bool)

    def corner_legs(self, positions: np.ndarray) -> np.ndarray | None:
        """spatial.corner_legs of the records at ``positions`` (None: not known)."""
        return None

    def default_key(self, pos: int) -> list[Any]:
        raise NotImplementedError

    def column(self, name: str) -> Column | None:
        """The column a filter, sortby or query names (``property_key``); None: no record has
        such a property (NULL everywhere: /queryables says additionalProperties). A 400 for a
        path into a property holding objects or arrays (``nested.deep.x`` of ``{"nested":
        {"deep": {"x": 1}}}``), which answering NULL (no match, where the data exists) would
        hide (qa16): such values are kept whole, as JSON; reading the path out of each would be
        a scan in Python on every request, and a column for every member of every object
        would grow the index with objects no one filters on (`proj:projjson`: 27 members an
        item in the landsat and modis examples, x 12 bytes (a row, a value) ~0.3 KB: ~3 GB at 10M
        items, issue 18's bound being 6 GiB in all)."""
        key = self.property_key(name)
        col = self._column(key)
        if col is None and "." in key:
            self._no_path_into(name, key)
        return col

    def property_key(self, name: str) -> str:
        """The one place a property's name in a request (filter, sortby, query) is mapped to
        the records' key: the name itself when a column has it (so every name /queryables
        lists is found as listed, `properties.x` too when an item has a property literally
        so named, qa16), else without a leading `properties.` (the filter extension's fully
        qualified form, `properties.eo:cloud_cover`)."""
        if name.startswith(PROPERTIES) and self._column(name) is None:
            return name[len(PROPERTIES):]
        return name

    def _column(self, key: str) -> Column | None:
        """The column of the key as the records hold it (Index adds `id` and `collection`)."""
        return self.columns.get(key)

    def _no_path_into(self, name: str, key: str) -> None:
        """A 400 when ``key`` is a dotted path whose head is a property holding objects or
        arrays; nothing when no such property exists."""
        at = key.find(".")
        while at > 0:
            head = self._column(key[:at])
            if head is not None and head.objects is not None:
                raise InvalidQueryParameter(
                    f"Property {name!r} is a path into {key[:at]!r}, which holds objects or arrays: a path into a "
                    f"property is not queryable; the queryable properties are those /queryables lists, by those names")
            at = key.find(".", at + 1)

    # -- matching ------------------------------------------------------------------------------

    def match(self, query: SearchQuery, candidates: np.ndarray | None = None) -> np.ndarray:
        """Sorted positions of every record the query selects (within ``candidates``)."""
        spatial = query.intersects
        if spatial is None and query.bbox is not None:
            spatial = bbox_geometry(query.bbox)
            if spatial.is_empty:  # wholly beyond the world
                return np.empty(0, dtype=np.int64)
        in_box = surely = None  # the box index's candidates, and whether each surely intersects
        kind = _spatial_kind(spatial) if spatial is not None else "other"
        if spatial is not None:
            # The box index applies the datetime window too, before gathering anything.
            in_box, surely = self._classified_candidates(spatial, query.datetime, kind)
            candidates = self._intersect(candidates, in_box)
        check_deadline(query)
        if query.datetime is not None and spatial is None:
            lo, hi = query.datetime
            if candidates is None:
                candidates = np.flatnonzero((self.start <= hi) & (self.end >= lo))
            else:
                keep = (self.start[candidates] <= hi) & (self.end[candidates] >= lo)
                candidates = candidates[keep]
        if query.q is not None:
            candidates = self._intersect(candidates, self.text_match(query.q))
            check_deadline(query)
        if query.filter is not None:
            truth, _ = FilterEvaluator(self, query).evaluate(query.filter)
            candidates = np.flatnonzero(truth) if candidates is None else candidates[truth[candidates]]
            check_deadline(query)
        if spatial is not None and candidates is not None and len(candidates):
            sure = None
            if surely is not None and in_box is not None:
                sure = surely if candidates is in_box else surely[np.searchsorted(in_box, candidates)]
            candidates = self._refine(candidates, spatial, query, sure, kind)
        if candidates is None:
            return np.arange(self.size, dtype=np.int64)
        return candidates

    def match_set(self, query: SearchQuery) -> np.ndarray | Bitmap | Unsorted:
        """What ``match`` selects, for a page of it (``page``): for a CQL2 filter alone on a
        large table, a Bitmap, never listed (counting it and reading a page off it costs a
        fraction of np.flatnonzero: 1 ms against 14 at 10,000,000 records), from the column
        bit indexes where they answer it (server.index.filter_bits), else from
        FilterEvaluator's mask; for one box (and a datetime) alone on a large table, the
        matches unsorted (_counted); otherwise the sorted positions."""
        alone = query.bbox is None and query.intersects is None and query.datetime is None and query.q is None
        if query.filter is not None and alone and self.size >= BITMAP_MIN_RECORDS:
            if self._filter_bits is None:
                self._filter_bits = FilterBits()
            bits = BitsFilter(self.column, self.size, self._filter_bits).truth(query.filter)
            if bits is not None:
                return Bitmap(self.size, bits=bits)
            truth, _ = FilterEvaluator(self, query).evaluate(query.filter)
            check_deadline(query)
            return Bitmap(self.size, mask=truth)
        if query.filter is None and query.q is None and self.size >= COUNTED_MIN_RECORDS:
            counted = self._counted(query)
            if counted is not None:
                return counted
        return self.match(query)

    def _counted(self, query: SearchQuery) -> Unsorted | None:
        """The matches of one box (a bbox, or an intersects polygon that is a box; a datetime
        too, maybe) in no order, or None when the query is another or the box index's groups
        are not made yet. Whole leaves and groups of the box index are taken as they are
        (BoxIndex.decided), never listed one by one in order nor classified record by record:
        at 10,000,000 records a 5-degree box over half a year (40,000 matches) is decided from
        ~1,200 leaves, ~4,000 groups and ~10,000 records of its own."""
        if query.intersects is not None:
            geom = query.intersects
            if not isinstance(geom, shapely.Polygon) or _spatial_kind(geom) != "boxes":
                return None
        elif query.bbox is not None:
            geom = bbox_geometry(query.bbox)  # (a box: a Polygon, or two across the antimeridian)
            if not isinstance(geom, shapely.Polygon):
                return None
        else:
            return None
        x0, y0, x1, y1 = geom.bounds if not geom.is_empty else (0.0, 0.0, 0.0, 0.0)
        if not (x1 > x0 and y1 > y0):  # (empty, or a box of no width: a line, decided the other way)
            return None
        q = geom.bounds
        if self._boxes.reach(q, query.datetime) < COUNTED_MIN_REACH:  # (few records to read: listing is as fast)
            return None
        if self._groups is None:
            self._groups = Groups()
        groups = self._groups.of(self._boxes, self.corner_legs)
        if groups is None:
            return None
        blocks, candidates, flags = self._boxes.decided(q, query.datetime, groups)
        rest = np.flatnonzero(~flags)
        rest = rest[np.argsort(candidates[rest])]  # (their geometries read in storage order: ~30% faster)
        flags[rest] = self.vertex_in_boxes(candidates[rest], [q])
        unsure = candidates[~flags]
        exact = np.zeros(len(unsure), dtype=bool)
        if len(unsure):
            shapely.prepare(geom)
        for start in range(0, len(unsure), REFINE_CHUNK):  # in chunks, to honour the deadline
            chunk = unsure[start : start + REFINE_CHUNK]
            exact[start : start + len(chunk)] = shapely.intersects(geom, self.geometries(chunk))
            check_deadline(query)
        return Unsorted(self.size, np.concatenate((candidates[flags], unsure[exact])), blocks)

    def _intersect(self, candidates: np.ndarray | None, positions: np.ndarray) -> np.ndarray:
        if candidates is None:
            return positions
        if len(candidates) < len(positions):
            candidates, positions = positions, candidates
        mask = np.zeros(self.size, dtype=bool)
        mask[positions] = True
        return candidates[mask[candidates]]

    # -- spatial -------------------------------------------------------------------------------

    def _box_candidates(self, geom: shapely.Geometry, window: tuple[int, int] | None = None) -> np.ndarray:
        """Sorted positions whose box meets the box of ``geom`` (of each part, for a few parts)
        and, given a ``window`` (lo, hi), whose time interval meets it."""
        parts = getattr(geom, "geoms", None)
        if parts is None or len(parts) > MAX_BOX_PARTS:
            parts = [geom]
        hits = [self._boxes.query(part.bounds, window) for part in parts if not part.is_empty]
        if not hits:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(hits)) if len(hits) > 1 else np.sort(hits[0])

    def _classified_candidates(
        self, geom: shapely.Geometry, window: tuple[int, int] | None, kind: str
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """_box_candidates, and for a query of boxes or polygons (``kind``, _spatial_kind)
        whether each surely intersects it; for polygons, less those whose box surely misses it."""
        parts = getattr(geom, "geoms", [geom])
        if kind == "grid":
            bounds = [part.bounds for part in parts if not part.is_empty] if len(parts) <= MAX_BOX_PARTS else [geom.bounds]
            slots = [self._boxes.slots(b, window) for b in bounds]
            grid = _polygon_grid(geom, sum(len(s) for s in slots))
            found = [self._boxes.classify_slots(s, grid) for s in slots]
        elif kind == "boxes":
            found = [self._boxes.classify(part.bounds, window) for part in parts]
        else:
            return self._box_candidates(geom, window), None
        if not found:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=bool)
        if sum(len(p) for p, _ in found) * DENSE_MATCHES >= self.size:
            return _flagged_in_order(found, self.size)
        return _sorted_in_order(found, self.size)

    def _refine(
        self,
        candidates: np.ndarray,
        geom: shapely.Geometry,
        query: SearchQuery | None = None,
        sure: np.ndarray | None = None,
        kind: str | None = None,
    ) -> np.ndarray:
        """Exact intersection test, skipped for records known to intersect the query: their
        box lies inside it, or a vertex does (``sure``, from _classified_candidates, says so
        for some); and for a polygon, for records whose box surely misses it. ``kind``:
        _spatial_kind(geom), when the caller has it."""
        kind = kind or _spatial_kind(geom)
        if kind == "grid":
            sure, known = self._grid_decided(candidates, _polygon_grid(geom, len(candidates)), sure, query)
        elif sure is not None or kind == "boxes":  # (sure is only ever given for boxes or polygons)
            sure = known = self._box_decided(candidates, geom, sure)
        else:
            sure = known = np.zeros(len(candidates), dtype=bool)
        unsure = candidates[~known]
        if not len(unsure):
            return candidates[sure]
        shapely.prepare(geom)
        exact = np.empty(len(unsure), dtype=bool)
        for start in range(0, len(unsure), REFINE_CHUNK):  # in chunks, to honour the deadline
            chunk = unsure[start : start + REFINE_CHUNK]
            exact[start : start + len(chunk)] = shapely.intersects(geom, self.geometries(chunk))
            if query is not None:
                check_deadline(query)
        keep = sure.copy()
        keep[~known] = exact
        return candidates[keep]

    def _box_decided(self, candidates: np.ndarray, geom: shapely.Geometry, sure: np.ndarray | None) -> np.ndarray:
        """Which candidates surely intersect a query of boxes: their box lies inside one, or a
        vertex does."""
        boxes = [part.bounds for part in getattr(geom, "geoms", [geom])]
        if sure is None:
            b = self.bounds[candidates]
            sure = np.zeros(len(candidates), dtype=bool)
            for x0, y0, x1, y1 in boxes:
                sure |= (b[:, 0] >= x0) & (b[:, 1] >= y0) & (b[:, 2] <= x1) & (b[:, 3] <= y1)
        else:
            sure = sure.copy()
        # Of the records still straddling a box's edge, most have some vertex inside it.
        straddling = np.flatnonzero(~sure)
        sure[straddling] = self.vertex_in_boxes(candidates[straddling], boxes)
        return sure

    def _grid_decided(
        self, candidates: np.ndarray, grid: CellGrid, sure: np.ndarray | None, query: SearchQuery | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """(sure, known) for a polygon query: which candidates surely intersect it (box or a
        vertex in it), and which are decided either way (also: box surely misses it)."""
        if sure is None:
            sure, known = grid.boxes(self.bounds[candidates])
            known |= sure
        else:
            sure, known = sure.copy(), sure.copy()
        rest = np.flatnonzero(~known)
        for start in range(0, len(rest), VERTEX_CHUNK):  # in chunks: a vertex takes ~40 bytes of temporaries
            chunk = rest[start : start + VERTEX_CHUNK]
            sure[chunk] = self.vertex_in_grid(candidates[chunk], grid)
            if query is not None:
                check_deadline(query)
        return sure, known | sure

    def spatial_positions(self, geom: shapely.Geometry, predicate: str) -> np.ndarray:
        """Sorted positions whose geometry satisfies ``predicate(record, geom)`` exactly."""
        candidates = self._box_candidates(geom)
        if not len(candidates):
            return candidates
        shapes = self.geometries(candidates)
        shapely.prepare(geom)
        tests: dict[str, Callable[[], np.ndarray]] = {
            "intersects": lambda: shapely.intersects(geom, shapes),
            "equals": lambda: shapely.equals(shapes, geom),
            "touches": lambda: shapely.touches(shapes, geom),
            "within": lambda: shapely.within(shapes, geom),
            "overlaps": lambda: shapely.overlaps(shapes, geom),
            "crosses": lambda: shapely.crosses(shapes, geom),
            "contains": lambda: shapely.contains(shapes, geom),
        }
        return candidates[np.asarray(tests[predicate](), dtype=bool)]

    # -- free text -------------------------------------------------------------------------------

    def text_match(self, node: tuple[Any, ...]) -> np.ndarray:
        kind = node[0]
        if kind == "term":
            return self.text.term(node[1], self.texts_of)
        if kind == "all":
            return np.arange(self.size, dtype=np.int64)
        if kind == "not":
            mask = np.ones(self.size, dtype=bool)
            mask[self.text_match(node[1])] = False
            return np.flatnonzero(mask)
        parts = [self.text_match(n) for n in node[1]]
        if kind == "and":
            out = parts[0]
            for p in parts[1:]:
                out = np.intersect1d(out, p, assume_unique=True)
            return out
        return np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)

    # -- sorting ---------------------------------------------------------------------------------

    def sortable(self, field: SortField) -> Column:
        col = self.column(field.name)
        if col is None or (col.number is None and col.string is None and col.boolean is None):
            raise InvalidQueryParameter(f"Cannot sort by {field.name!r}: not a sortable property")
        return col

    def _field_keys(self, col: Column, positions: np.ndarray, descending: bool) -> tuple[np.ndarray, np.ndarray]:
        """(type rank, value) arrays for lexsort; missing values always sort last."""
        rank = np.full(len(positions), MISSING_RANK, dtype=np.int64)
        value = np.zeros(len(positions), dtype=np.float64)
        parts = [(0, col.time or col.number), (1, col.string), (2, col.boolean)]
        for r, part in parts:
            if part is None:
                continue
            if len(part.rows) == self.size:  # every record has one: its row is its position
                idx_clipped = positions
                hit = rank == MISSING_RANK
            else:
                idx = np.searchsorted(part.rows, positions)
                idx_clipped = np.minimum(idx, len(part.rows) - 1)
                hit = (idx < len(part.rows)) & (part.rows[idx_clipped] == positions) & (rank == MISSING_RANK)
            vals = part.codes if r == 1 else part.values  # type: ignore[union-attr]
            rank[hit] = -r if descending else r
            value[hit] = vals[idx_clipped[hit]].astype(np.float64)
        if descending:
            value = -value
        return rank, value

    def sort_key(self, pos: int, sortby: list[SortField]) -> list[Any]:
        """JSON-able key of one record under ``sortby``, for keyset page tokens."""
        key: list[Any] = []
        for field in sortby:
            col = self.sortable(field)
            entry: list[Any] = [MISSING_RANK, None]
            for r, part in ((0, col.time or col.number), (1, col.string), (2, col.boolean)):
                if part is None:
                    continue
                i = int(np.searchsorted(part.rows, pos))
                if i < len(part.rows) and part.rows[i] == pos:
                    v = part.vocab[part.codes[i]] if r == 1 else part.values[i].item()  # type: ignore[union-attr]
                    entry = [-r if field.descending else r, v]
                    break
            key.append(entry)
        return key + [self.default_key(pos)]

    def page(
        self, positions: np.ndarray | Bitmap | Unsorted, query: SearchQuery, after: list[Any] | None = None,
        before: list[Any] | None = None,
    ) -> SearchResult:
        """One page of the ordered matches: the ``limit`` records right after the record with
        key ``after`` (a next token; from the start without one), or right before the record
        with key ``before`` (a prev token), in the same order. Either is a keyset: the cost
        does not depend on how deep the page is. In the default order positions are already
        sorted: the token's place is a search (in a Bitmap: a scan from it, see _bitmap_page)."""
        if isinstance(positions, (Bitmap, Unsorted)):
            if not query.sortby:
                return self._bitmap_page(positions, query, after, before)
            positions = positions.positions()
        if query.sortby:
            return self._sorted_page(positions, query, after, before)
        limit = query.limit
        if before is not None:
            end = int(np.searchsorted(positions, self._token_target(before, [], backward=True)[-1]))
            begin = max(0, end - limit)
        else:
            begin = 0
            if after is not None:
                begin = int(np.searchsorted(positions, self._token_target(after, [])[-1]))
            end = begin + limit
        return self._result(positions[begin:end], len(positions), query, begin > 0, end < len(positions))

    def _bitmap_page(
        self, matches: Bitmap | Unsorted, query: SearchQuery, after: list[Any] | None, before: list[Any] | None
    ) -> SearchResult:
        """``page`` in the default order from a Bitmap (or Unsorted): the same page, counts and tokens as from
        the sorted positions it flags, read from the token's place on (before it, for a prev
        token), whatever its depth."""
        limit = query.limit
        if before is not None:
            end = int(self._token_target(before, [], backward=True)[-1])  # the page ends before it
            found = matches.nearest(end, limit + 1, backward=True)  # one more: does a page precede?
            has_prev, has_next = len(found) > limit, end <= matches.last
            return self._result(found[-limit:] if limit else found[:0], matches.count, query, has_prev, has_next)
        begin = int(self._token_target(after, [])[-1]) if after is not None else 0
        found = matches.nearest(begin, limit + 1)
        has_prev = begin > 0 and matches.count > 0 and matches.first < begin
        return self._result(found[:limit], matches.count, query, has_prev, len(found) > limit)

    def _result(self, page: np.ndarray, matched: int, query: SearchQuery, has_prev: bool, has_next: bool) -> SearchResult:
        """A page and the keys its next and prev tokens name (its last and first records)."""
        next_key = self.sort_key(int(page[-1]), query.sortby) if has_next and len(page) else None
        prev_key = self.sort_key(int(page[0]), query.sortby) if has_prev and len(page) else None
        return SearchResult(positions=page, matched=matched, next_key=next_key, prev_key=prev_key, has_prev=has_prev)

    # -- sorted pages in linear time ----------------------------------------------------------

    def _sorted_page(
        self, positions: np.ndarray, query: SearchQuery, after: list[Any] | None, before: list[Any] | None
    ) -> SearchResult:
        if self.size >= PRESORT_MIN_RECORDS and len(positions) * PRESORT_DENSITY >= self.size:
            return self._presorted_page(positions, query, after, before)
        return self._selected_page(positions, query, after, before)

    def _selected_page(
        self, positions: np.ndarray, query: SearchQuery, after: list[Any] | None, before: list[Any] | None
    ) -> SearchResult:
        """The ``limit`` matches under ``sortby`` next to the token without sorting them all:
        select what comes after the token (before it, for a prev token) with vectorized
        comparisons, keep the candidates that can be among the ``limit`` nearest it
        (np.partition on the primary key), and sort only those."""
        keys = self._keys(positions, query.sortby)
        backward = before is not None
        token = before if backward else after
        selected = np.arange(len(positions))
        if token is not None:
            target = self._token_target(token, query.sortby, backward)
            beyond = np.zeros(len(positions), dtype=bool)  # strictly on the page's side of the token
            tied = np.ones(len(positions), dtype=bool)
            for column, bound in zip(keys, target[:-1]):
                beyond |= tied & ((column < bound) if backward else (column > bound))
                tied &= column == bound
            beyond |= tied & ((positions < target[-1]) if backward else (positions >= target[-1]))
            selected = np.flatnonzero(beyond)
        limit = query.limit
        candidates = selected
        if len(selected) > limit:
            ranks = keys[0][selected]
            edge_rank = selected[ranks == (ranks.max() if backward else ranks.min())]
            if len(edge_rank) >= limit:
                values = keys[1][edge_rank]
                if backward:  # the ``limit`` largest, ties included
                    cut = np.partition(values, len(values) - limit)[len(values) - limit]
                    candidates = edge_rank[values >= cut]
                else:
                    cut = np.partition(values, limit - 1)[limit - 1]
                    candidates = edge_rank[values <= cut]
        order = np.lexsort([positions[candidates], *(key[candidates] for key in reversed(keys))])
        ordered = candidates[order]
        chosen = ordered[max(0, len(ordered) - limit) :] if backward else ordered[:limit]
        more, rest = len(selected) > limit, len(selected) < len(positions)  # beyond the page; on the token's side
        has_prev, has_next = (more, rest) if backward else (rest, more)
        return self._result(positions[chosen], len(positions), query, has_prev, has_next)

    # -- sorted pages from an order computed once ------------------------------------------------

    def _sort_order(self, sortby: list[SortField]) -> np.ndarray:
        """Every position in ``sortby`` order (ties in the default order), computed on first
        use and kept for the next searches with the same sortby (a few, see SortOrders)."""
        orders = self._sort_orders
        if orders is None:
            orders = self._sort_orders = SortOrders()
        key = tuple((self.property_key(f.name), f.descending) for f in sortby)
        order = orders.get(key)
        if order is None:
            everything = np.arange(self.size, dtype=np.int64)
            keys = self._keys(everything, sortby)
            dtype = np.int32 if self.size < 2**31 else np.int64
            order = orders[key] = np.lexsort([everything, *reversed(keys)]).astype(dtype)
        return order

    def _keys(self, positions: np.ndarray, sortby: list[SortField]) -> list[np.ndarray]:
        keys: list[np.ndarray] = []  # rank, value per field, primary first
        for field in sortby:
            keys += self._field_keys(self.sortable(field), positions, field.descending)
        return keys

    def _presorted_page(
        self, positions: np.ndarray, query: SearchQuery, after: list[Any] | None, before: list[Any] | None
    ) -> SearchResult:
        """The ``limit`` matches next to the token read off the table's order under ``sortby``:
        from the token's place (a binary search), the first matches met going forward (going
        backward, for a prev token). Costs O(limit / density of the matches) instead of
        O(matches): for large result sets, where sorting them is what takes the time (sortby
        over everything at 1,000,000 records: ~30 ms)."""
        order = self._sort_order(query.sortby)
        backward = before is not None
        token = before if backward else after
        start = 0  # the slot the page begins at (ends before, going backward)
        if token is not None:
            target = tuple(self._token_target(token, query.sortby, backward))

            def slot_key(slot: int) -> tuple[float, ...]:
                pos = order[slot : slot + 1].astype(np.int64)
                return (*(float(k[0]) for k in self._keys(pos, query.sortby)), float(pos[0]))

            start = bisect.bisect_left(range(len(order)), target, key=slot_key)
        wanted = None
        if len(positions) < self.size:
            wanted = np.zeros(self.size, dtype=bool)
            wanted[positions] = True
        limit = query.limit
        found = self._scan(order, wanted, len(positions), start, limit + 1, backward)  # one more: is there a page beyond?
        page = found[max(0, len(found) - limit) :] if backward else found[:limit]
        more = len(found) > limit
        # Whether a match lies on the token's side at all (a first or next link): one is met at once, usually.
        rest = start > 0 if not backward else start < len(order)
        if rest and wanted is not None:
            rest = len(self._scan(order, wanted, len(positions), start, 1, not backward)) > 0
        has_prev, has_next = (more, rest) if backward else (rest, more)
        return self._result(page, len(positions), query, has_prev, has_next)

    def _scan(
        self, order: np.ndarray, wanted: np.ndarray | None, matched: int, start: int, need: int, backward: bool
    ) -> np.ndarray:
        """Up to ``need`` matches (``wanted``; None: every record) in ``order`` nearest slot
        ``start``: from it on, or (``backward``) before it; in order either way. Read in
        chunks growing from the expected distance between matches."""
        if wanted is None:
            found = order[max(0, start - need) : start] if backward else order[start : start + need]
            return found.astype(np.int64)
        parts, total = [], 0
        step = max(1024, 2 * need * self.size // max(matched, 1))
        while total < need and (start > 0 if backward else start < len(order)):
            chunk = order[max(0, start - step) : start] if backward else order[start : start + step]
            hits = chunk[wanted[chunk]]
            parts.append(hits)
            total += len(hits)
            start = start - len(chunk) if backward else start + len(chunk)
            step *= 2
        if not parts:
            return np.zeros(0, np.int64)
        if backward:
            return np.concatenate(parts[::-1])[-need:].astype(np.int64)
        return np.concatenate(parts)[:need].astype(np.int64)

    def _token_target(self, after: list[Any], sortby: list[SortField], backward: bool = False) -> list[float]:
        """A page token's key in the form of _field_keys' arrays, ending with the position
        of the first record after the token's record in the default order (``backward``: of
        the token's record itself; where it would stand, if it is gone)."""
        if len(after) != len(sortby) + 1 or not all(isinstance(e, list) and len(e) == 2 for e in after[:-1]):
            raise InvalidQueryParameter("Invalid token: it belongs to another sort order")
        target: list[float] = []
        try:
            for field, (rank, value) in zip(sortby, after[:-1]):
                col = self.sortable(field)
                if value is None:
                    number = 0.0
                elif isinstance(value, str):
                    vocab = col.string.vocab if col.string is not None else []
                    i = bisect.bisect_left(vocab, value)
                    number = float(i) if i < len(vocab) and vocab[i] == value else i - 0.5
                else:
                    number = float(value)
                target += [int(rank), -number if field.descending and value is not None else number]
            default = list(after[-1])
            place = bisect.bisect_left if backward else bisect.bisect_right
            target.append(place(range(self.size), default, key=self.default_key))
        except (TypeError, ValueError):
            raise InvalidQueryParameter("Invalid token") from None
        return target


_grids: dict[int, tuple[weakref.ref[shapely.Geometry], CellGrid]] = {}


def _spatial_kind(geom: shapely.Geometry) -> str:
    """How a query geometry is decided, found once per search (_is_boxes compares with GEOS):
    "boxes" (up to MAX_BOX_PARTS axis-aligned boxes, which have their own shortcuts), "grid"
    (any other polygon with an area to lay a CellGrid over; a bbox query of no width makes a
    polygon of none) or "other" (exact tests only)."""
    boxes = len(getattr(geom, "geoms", [geom])) <= MAX_BOX_PARTS and _is_boxes(geom)
    if boxes or not isinstance(geom, (shapely.Polygon, shapely.MultiPolygon)) or geom.is_empty:
        return "boxes" if boxes else "other"
    x0, y0, x1, y1 = geom.bounds
    return "grid" if x1 > x0 and y1 > y0 else "other"


def _polygon_grid(geom: shapely.Geometry, records: int) -> CellGrid:
    """The CellGrid of a polygonal query, as fine as is worth it for ``records`` candidates,
    built once per geometry object: match asks twice, for the candidates and for refining them.
    Keyed by identity, not equality, so that no two requests (threads) share a prepared geometry."""
    key = id(geom)
    cached = _grids.get(key)
    if cached is not None and cached[0]() is geom:
        return cached[1]
    grid = CellGrid(geom, grid_cells(records))
    if len(_grids) >= 16:
        _grids.clear()
    _grids[key] = (weakref.ref(geom), grid)
    return grid


def _sorted_in_order(found: list[tuple[np.ndarray, np.ndarray]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """The (positions, sure) pairs of the box index's parts as one sorted set, a record met
    twice sure if either says so. Sorted with the flag in the lowest bit: one np.sort, not an
    argsort (32-bit keys where positions allow: they sort in about half the time)."""
    kind = np.uint32 if size < 2**31 else np.int64
    keys = np.sort(np.concatenate([((p << 1) | s).astype(kind) for p, s in found]))
    positions, sure = (keys >> 1).astype(np.int64), (keys & 1).astype(bool)
    if len(found) > 1 and len(positions):  # a record met by two boxes: once, sure if either says so
        first = np.flatnonzero(np.concatenate(([True], positions[1:] != positions[:-1])))
        positions, sure = positions[first], np.logical_or.reduceat(sure, first)
    return positions, sure


def _flagged_in_order(found: list[tuple[np.ndarray, np.ndarray]], size: int) -> tuple[np.ndarray, np.ndarray]:
    """As _sorted_in_order, through a flag per record of the table: faster when the matches
    are a good part of it (a bbox matching 332k of 1M records: 24.3 -> 19.6 ms per search;
    at 50k of 1M the two are even)."""
    flags = np.zeros(size, dtype=np.uint8)
    for positions, _ in found:
        flags[positions] = 1
    for positions, sure in found:
        flags[positions[sure]] = 2
    positions = np.flatnonzero(flags)
    return positions, flags[positions] == 2


def _is_boxes(geom: shapely.Geometry) -> bool:
    if not isinstance(geom, (shapely.Polygon, shapely.MultiPolygon)):
        return False
    parts = getattr(geom, "geoms", [geom])
    return all(shapely.equals(p, shapely.box(*p.bounds)) for p in parts)

