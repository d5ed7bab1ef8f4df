"""What every searchable set of records shares (items, and collections for collection search):
bounds and exact geometries, time intervals, property columns, a text index, and the
search, filter and sort machinery over them.

Positions are record numbers in the table's default order; every result is a sorted
array of positions until a sortby re-orders it.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import shapely

from server.errors import InvalidQueryParameter
from server.index.columns import Column
from server.index.spatial import BoxIndex
from server.index.text import TextIndex
from server.query.model import SearchQuery, SortField


@dataclass
class SearchResult:
    positions: np.ndarray
    matched: int
    next_key: list[Any] | None


class _Desc:
    """Reverses the order of a value inside a sort key tuple."""

    __slots__ = ("v",)

    def __init__(self, v: Any) -> None:
        self.v = v

    def __lt__(self, other: "_Desc") -> bool:
        return other.v < self.v

    def __gt__(self, other: "_Desc") -> bool:
        return other.v > self.v

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Desc) and self.v == other.v


MISSING_RANK = 9
MAX_BOX_PARTS = 64


class Table:
    size: int
    start: np.ndarray
    end: np.ndarray
    bounds: np.ndarray
    columns: dict[str, Column]
    text: TextIndex

    def _init_spatial(self) -> None:
        has_geom = ~np.isnan(self.bounds[:, 0]) if len(self.bounds) else np.zeros(0, bool)
        self.geometry_positions = np.flatnonzero(has_geom)
        self._boxes = BoxIndex(self.geometry_positions, self.bounds[has_geom])

    # -- to be provided by each kind of table -----------------------------------------------

    def geometries(self, positions: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def texts_of(self, pos: int) -> list[str]:
        raise NotImplementedError

    def default_key(self, pos: int) -> list[Any]:
        raise NotImplementedError

    def column(self, name: str) -> Column | None:
        return self.columns.get(name)

    # -- matching ------------------------------------------------------------------------------

    def match(self, query: SearchQuery, candidates: np.ndarray | None = None) -> np.ndarray:
        """Sorted positions of every record the query selects (within ``candidates``)."""
        spatial = query.intersects
        if spatial is None and query.bbox is not None:
            spatial = bbox_geometry(query.bbox)
        if spatial is not None:
            candidates = self._intersect(candidates, self._box_candidates(spatial))
        if query.datetime is not None:
            lo, hi = query.datetime
            if candidates is None:
                candidates = np.flatnonzero((self.start <= hi) & (self.end >= lo))
            else:
                keep = (self.start[candidates] <= hi) & (self.end[candidates] >= lo)
                candidates = candidates[keep]
        if query.q is not None:
            candidates = self._intersect(candidates, self.text_match(query.q))
        if query.filter is not None:
            from server.index.filtering import FilterEvaluator

            truth, _ = FilterEvaluator(self).evaluate(query.filter)
            candidates = np.flatnonzero(truth) if candidates is None else candidates[truth[candidates]]
        if spatial is not None and len(candidates):
            candidates = self._refine(candidates, spatial)
        if candidates is None:
            return np.arange(self.size, dtype=np.int64)
        return candidates

    def _intersect(self, candidates: np.ndarray | None, positions: np.ndarray) -> np.ndarray:
        if candidates is None:
            return positions
        if len(candidates) < len(positions):
            candidates, positions = positions, candidates
        mask = np.zeros(self.size, dtype=bool)
        mask[positions] = True
        return candidates[mask[candidates]]

    # -- spatial -------------------------------------------------------------------------------

    def _box_candidates(self, geom: shapely.Geometry) -> np.ndarray:
        """Sorted positions whose box meets the box of ``geom`` (of each part, for a few parts)."""
        parts = getattr(geom, "geoms", None)
        if parts is None or len(parts) > MAX_BOX_PARTS:
            parts = [geom]
        hits = [self._boxes.query(part.bounds) for part in parts if not part.is_empty]
        if not hits:
            return np.zeros(0, dtype=np.int64)
        return np.unique(np.concatenate(hits)) if len(hits) > 1 else np.sort(hits[0])

    def _refine(self, candidates: np.ndarray, geom: shapely.Geometry) -> np.ndarray:
        """Exact intersection test, skipped for records whose box lies inside a query box."""
        sure = np.zeros(len(candidates), dtype=bool)
        if _is_boxes(geom):
            b = self.bounds[candidates]
            for part in getattr(geom, "geoms", [geom]):
                x0, y0, x1, y1 = part.bounds
                sure |= (b[:, 0] >= x0) & (b[:, 1] >= y0) & (b[:, 2] <= x1) & (b[:, 3] <= y1)
        unsure = candidates[~sure]
        if not len(unsure):
            return candidates
        shapely.prepare(geom)
        keep = sure.copy()
        keep[~sure] = shapely.intersects(geom, self.geometries(unsure))
        return candidates[keep]

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
            idx = np.searchsorted(part.rows, positions)
            idx_clipped = np.minimum(idx, len(part.rows) - 1)
            hit = (idx < len(part.rows)) & (part.rows[idx_clipped] == positions) & (rank == MISSING_RANK)
            vals = part.codes if r == 1 else part.values  # type: ignore[union-attr]
            rank[hit] = -r if descending else r
            value[hit] = vals[idx_clipped[hit]].astype(np.float64)
        if descending:
            value = -value
        return rank, value

    def order(self, positions: np.ndarray, sortby: list[SortField]) -> np.ndarray:
        if not sortby or not len(positions):
            return positions
        keys: list[np.ndarray] = [positions]
        for field in reversed(sortby):
            rank, value = self._field_keys(self.sortable(field), positions, field.descending)
            keys += [value, rank]
        return positions[np.lexsort(keys)]

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

    def _comparable(self, key: list[Any], sortby: list[SortField]) -> tuple[Any, ...]:
        out: list[Any] = []
        for field, (rank, value) in zip(sortby, key[:-1]):
            out.append(rank)
            if value is None:
                out.append(0)
            elif isinstance(value, str):
                out.append(_Desc(value) if field.descending else value)
            else:
                out.append(-float(value) if field.descending else float(value))
        out.append(tuple(key[-1]))
        return tuple(out)

    def page(self, positions: np.ndarray, query: SearchQuery, after: list[Any] | None) -> SearchResult:
        """One page of the ordered matches, starting after the record with key ``after``."""
        ordered = self.order(positions, query.sortby)
        begin = 0
        if after is not None:
            if len(after) != len(query.sortby) + 1:
                raise InvalidQueryParameter("Invalid token: it belongs to another sort order")
            try:
                target = self._comparable(after, query.sortby)
                begin = bisect.bisect_right(
                    range(len(ordered)), target,
                    key=lambda i: self._comparable(self.sort_key(int(ordered[i]), query.sortby), query.sortby),
                )
            except (TypeError, ValueError):
                raise InvalidQueryParameter("Invalid token") from None
        page = ordered[begin : begin + query.limit]
        has_more = begin + query.limit < len(ordered)
        next_key = self.sort_key(int(page[-1]), query.sortby) if has_more and len(page) else None
        return SearchResult(positions=page, matched=len(ordered), next_key=next_key)


def _is_boxes(geom: shapely.Geometry) -> bool:
    if not isinstance(geom, (shapely.Polygon, shapely.MultiPolygon)):
        return False
    parts = getattr(geom, "geoms", [geom])
    return all(shapely.equals(p, shapely.box(*p.bounds)) for p in parts)


def bbox_geometry(bbox: tuple[float, float, float, float]) -> shapely.Geometry:
    """A bbox as a (multi)polygon; one crossing the antimeridian (minx > maxx) splits in two."""
    minx, miny, maxx, maxy = bbox
    if minx > maxx:
        return shapely.MultiPolygon([shapely.box(minx, miny, 180.0, maxy), shapely.box(-180.0, miny, maxx, maxy)])
    return shapely.box(minx, miny, maxx, maxy)
