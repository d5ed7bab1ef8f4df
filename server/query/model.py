"""The query model every search endpoint parses its input into."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry

from server.errors import QueryTooExpensive


@dataclass(frozen=True)
class SortField:
    name: str
    descending: bool = False


@dataclass
class FieldsSpec:
    include: list[str] = field(default_factory=list)
    exclude: list[str] = field(default_factory=list)
    include_given: bool = False  # POST named `include` (even empty or null)


@dataclass
class SearchQuery:
    ids: list[str] | None = None
    collections: list[str] | None = None
    bbox: tuple[float, float, float, float] | None = None
    intersects: BaseGeometry | None = None
    datetime: tuple[int, int] | None = None
    filter: Any = None  # CQL2 JSON, already parsed and validated (the legacy query's included)
    legacy_filter: Any = None  # the legacy query extension's conditions, as CQL2 JSON
    q: Any = None  # free-text tree from server.query.freetext
    sortby: list[SortField] = field(default_factory=list)
    fields: FieldsSpec | None = None
    limit: int = 10
    token: str | None = None
    deadline: float | None = None  # time.monotonic() by which the search must be done
    extra: dict[str, Any] = field(default_factory=dict)  # parameters without an attribute of their own


def check_deadline(query: SearchQuery) -> None:
    if query.deadline is not None and time.monotonic() > query.deadline:
        raise QueryTooExpensive(
            "The search ran over its time budget; narrow it (bbox, datetime, collections, a simpler filter)"
        )
