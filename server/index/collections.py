"""Collections as a searchable table, for collection search (`/collections?bbox=&q=&filter=`).

A collection's footprint is the union of its extent's bboxes and its time the first
temporal interval (open ends stay open).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from server.index.columns import ColumnsBuilder
from server.index.space_time import extent_geometry, extent_interval
from server.index.table import Table
from server.index.text import TextIndexBuilder, document_text


class CollectionTable(Table):
    def __init__(self, collections: dict[str, dict[str, Any]]) -> None:
        self.ids = sorted(collections)
        self.docs = [collections[i] for i in self.ids]
        self.size = len(self.ids)
        self._geoms = np.array([extent_geometry(d) for d in self.docs], dtype=object)
        self.bounds = np.array(
            [g.bounds if g is not None else (np.nan,) * 4 for g in self._geoms], dtype=np.float64
        ).reshape(self.size, 4)
        times = np.array([extent_interval(d) for d in self.docs], dtype=np.int64).reshape(self.size, 2)
        self.start, self.end = times[:, 0].copy(), times[:, 1].copy()
        identity = np.arange(self.size, dtype=np.int64)
        columns = ColumnsBuilder()
        text = TextIndexBuilder()
        for row, doc in enumerate(self.docs):
            columns.add(row, {k: v for k, v in doc.items() if k not in ("links", "assets")})
            text.add(row, document_text(doc))
        self.columns = columns.freeze(identity)
        self.text = text.freeze(identity)
        self._init_spatial()

    def geometries(self, positions: np.ndarray) -> np.ndarray:
        return self._geoms[positions]

    def texts_of(self, pos: int) -> list[str]:
        return document_text(self.docs[pos])

    def default_key(self, pos: int) -> list[Any]:
        return [self.ids[pos]]

