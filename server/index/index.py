"""The immutable, queryable index of one load of the catalogs.

Records are kept in the default sort order (newest first, then collection, then id), so a
sorted array of record positions is also a sorted page sequence, and a page token only
needs to name the last key it returned.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson
import shapely
from shapely import STRtree

from server.index.blobs import BlobColumn
from server.query.model import SearchQuery

SortKey = tuple[int, str, str]


@dataclass
class SearchResult:
    positions: np.ndarray
    matched: int
    next_key: SortKey | None


class Index:
    def __init__(
        self,
        *,
        ids: list[str],
        codes: np.ndarray,
        collection_names: list[str],
        start: np.ndarray,
        end: np.ndarray,
        sort_time: np.ndarray,
        bounds: np.ndarray,
        json: BlobColumn,
        wkb: BlobColumn,
        collections: dict[str, dict[str, Any]],
        root: dict[str, Any],
    ) -> None:
        self.ids = ids
        self.codes = codes
        self.collection_names = collection_names
        self.start = start
        self.end = end
        self.sort_time = sort_time
        self.bounds = bounds
        self.json = json
        self.wkb = wkb
        self.collections = collections
        self.root = root
        self.loaded_at = time.time()
        self.size = len(ids)
        self._code_of = {name: code for code, name in enumerate(collection_names)}
        self._by_id: dict[str, int | list[int]] = {}
        for pos, item_id in enumerate(ids):
            seen = self._by_id.get(item_id)
            if seen is None:
                self._by_id[item_id] = pos
            elif isinstance(seen, list):
                seen.append(pos)
            else:
                self._by_id[item_id] = [seen, pos]
        self._by_collection = {
            name: np.flatnonzero(codes == code) for code, name in enumerate(collection_names)
        }
        has_geom = ~np.isnan(bounds[:, 0])
        self._geom_positions = np.flatnonzero(has_geom)
        boxes = shapely.box(*bounds[has_geom].T) if has_geom.any() else np.array([], dtype=object)
        self._tree = STRtree(boxes)

    # -- lookups -------------------------------------------------------------------------

    def item_json(self, pos: int) -> bytes:
        return self.json[pos]

    def item(self, pos: int) -> dict[str, Any]:
        return orjson.loads(self.json[pos])

    def find(self, collection: str | None, item_id: str) -> int | None:
        for pos in self._positions_of_id(item_id):
            if self.collection_of(pos) == collection:
                return pos
        return None

    def collection_of(self, pos: int) -> str | None:
        code = int(self.codes[pos])
        return self.collection_names[code] if code >= 0 else None

    def item_count(self, collection: str) -> int:
        positions = self._by_collection.get(collection)
        return 0 if positions is None else len(positions)

    def sort_key(self, pos: int) -> SortKey:
        code = int(self.codes[pos])
        return (-int(self.sort_time[pos]), self.collection_names[code] if code >= 0 else "", self.ids[pos])

    def _positions_of_id(self, item_id: str) -> list[int]:
        found = self._by_id.get(item_id)
        if found is None:
            return []
        return found if isinstance(found, list) else [found]

    # -- search --------------------------------------------------------------------------

    def search(self, query: SearchQuery, after: SortKey | None = None) -> SearchResult:
        matched = self.match(query)
        begin = 0
        if after is not None:
            first_after = bisect.bisect_right(range(self.size), after, key=self.sort_key)
            begin = int(np.searchsorted(matched, first_after))
        page = matched[begin : begin + query.limit]
        has_more = begin + query.limit < len(matched)
        next_key = self.sort_key(int(page[-1])) if has_more and len(page) else None
        return SearchResult(positions=page, matched=len(matched), next_key=next_key)

    def match(self, query: SearchQuery) -> np.ndarray:
        """Sorted positions of every record the query selects."""
        candidates: np.ndarray | None = None
        if query.ids is not None:
            found = {p for i in query.ids for p in self._positions_of_id(i)}
            candidates = np.array(sorted(found), dtype=np.int64)
        if query.collections is not None:
            parts = [self._by_collection[c] for c in set(query.collections) if c in self._by_collection]
            in_collections = np.sort(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
            candidates = self._intersect(candidates, in_collections)
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

    def _box_candidates(self, geom: shapely.Geometry) -> np.ndarray:
        hits = self._tree.query(geom)
        return np.sort(self._geom_positions[hits])

    def _refine(self, candidates: np.ndarray, geom: shapely.Geometry) -> np.ndarray:
        """Exact geometry test, skipped for records whose box lies inside a query box."""
        if isinstance(geom, (shapely.Polygon, shapely.MultiPolygon)) and _is_boxes(geom):
            b = self.bounds[candidates]
            sure = np.zeros(len(candidates), dtype=bool)
            for part in getattr(geom, "geoms", [geom]):
                x0, y0, x1, y1 = part.bounds
                sure |= (b[:, 0] >= x0) & (b[:, 1] >= y0) & (b[:, 2] <= x1) & (b[:, 3] <= y1)
        else:
            sure = np.zeros(len(candidates), dtype=bool)
        unsure = candidates[~sure]
        if len(unsure):
            shapely.prepare(geom)
            shapes = shapely.from_wkb([self.wkb[int(p)] for p in unsure])
            ok = shapely.intersects(geom, shapes)
            keep = sure.copy()
            keep[~sure] = ok
            return candidates[keep]
        return candidates


def _is_boxes(geom: shapely.Geometry) -> bool:
    parts = getattr(geom, "geoms", [geom])
    return all(shapely.equals(p, shapely.box(*p.bounds)) for p in parts)


def bbox_geometry(bbox: tuple[float, float, float, float]) -> shapely.Geometry:
    """A bbox as a (multi)polygon; one crossing the antimeridian (minx > maxx) splits in two."""
    minx, miny, maxx, maxy = bbox
    if minx > maxx:
        return shapely.MultiPolygon([shapely.box(minx, miny, 180.0, maxy), shapely.box(-180.0, miny, maxx, maxy)])
    return shapely.box(minx, miny, maxx, maxy)
