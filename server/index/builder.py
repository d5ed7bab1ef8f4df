"""Turns normalized item dicts into the columnar, immutable Index."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import shapely

from server.index.blobs import BlobColumn
from server.index.builder_helpers import ItemRejected, item_geometry, item_interval
from server.index.columns import ColumnsBuilder
from server.index.index import Index
from server.index.text import TextIndexBuilder, document_text

__all__ = ["IndexBuilder", "ItemRejected"]


class IndexBuilder:
    """Collects items (in any order), then freezes them into an Index.

    Items are keyed by (collection, id): the first one loaded wins, later ones are
    reported as duplicates and dropped, never merged.
    """

    def __init__(self) -> None:
        self._json: list[bytes] = []
        self._wkb: list[bytes] = []
        self._bounds: list[tuple[float, float, float, float]] = []
        self._times: list[tuple[int, int, int]] = []
        self._ids: list[str] = []
        self._collections: list[str | None] = []
        self._keys: set[tuple[str | None, str]] = set()
        self._columns = ColumnsBuilder()
        self._text = TextIndexBuilder()
        self.collections: dict[str, dict[str, Any]] = {}
        self.root: dict[str, Any] = {}

    def __len__(self) -> int:
        return len(self._ids)

    def add_collection(self, collection: dict[str, Any]) -> bool:
        cid = collection["id"]
        if cid in self.collections:
            return False
        self.collections[cid] = collection
        return True

    def add_item(self, item: dict[str, Any]) -> None:
        """Index one normalized item. Raises ItemRejected with the reason."""
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
        key = (collection, item_id)
        if key in self._keys:
            raise ItemRejected(f"duplicate id {item_id!r} in collection {collection!r}; kept the first")
        times = item_interval(props)
        geom = item_geometry(item)
        if geom is not None and not isinstance(item.get("bbox"), list):
            item["bbox"] = list(geom.bounds)
        try:
            blob = orjson.dumps(item)
        except (TypeError, orjson.JSONEncodeError) as exc:
            raise ItemRejected(f"cannot serialize: {exc}") from None
        row = len(self._ids)
        self._keys.add(key)
        self._ids.append(item_id)
        self._collections.append(collection)
        self._times.append(times)
        self._json.append(blob)
        self._columns.add(row, props)
        self._text.add(row, document_text(props))
        if geom is None:
            self._wkb.append(b"")
            self._bounds.append((np.nan, np.nan, np.nan, np.nan))
        else:
            self._wkb.append(shapely.to_wkb(geom))
            self._bounds.append(geom.bounds)

    def build(self) -> Index:
        n = len(self._ids)
        times = np.array(self._times, dtype=np.int64).reshape(n, 3)
        bounds = np.array(self._bounds, dtype=np.float64).reshape(n, 4)
        coll_names = sorted({c for c in self._collections if c is not None} | set(self.collections))
        coll_code = {name: code for code, name in enumerate(coll_names)}
        codes = np.array([coll_code.get(c, -1) for c in self._collections], dtype=np.int32)
        # Default order: newest first, then collection, then id, so pages are stable.
        ids_arr = np.array(self._ids, dtype=object)
        order = np.lexsort((ids_arr, codes, -times[:, 2])) if n else np.zeros(0, dtype=np.int64)
        new_position = np.empty(n, dtype=np.int64)
        new_position[order] = np.arange(n, dtype=np.int64)
        return Index(
            ids=[self._ids[i] for i in order],
            codes=codes[order],
            collection_names=coll_names,
            start=times[order, 0].copy(),
            end=times[order, 1].copy(),
            sort_time=times[order, 2].copy(),
            bounds=bounds[order],
            json=BlobColumn.from_list([self._json[i] for i in order]),
            wkb=BlobColumn.from_list([self._wkb[i] for i in order]),
            columns=self._columns.freeze(new_position),
            text=self._text.freeze(new_position),
            collections=self.collections,
            root=self.root,
        )
