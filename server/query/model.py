"""The query model every search endpoint parses its input into."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from shapely.geometry.base import BaseGeometry


@dataclass
class SearchQuery:
    ids: list[str] | None = None
    collections: list[str] | None = None
    bbox: tuple[float, float, float, float] | None = None
    intersects: BaseGeometry | None = None
    datetime: tuple[int, int] | None = None
    limit: int = 10
    token: str | None = None
    # The request's own parameters, as given, for writing the next link.
    raw: dict[str, Any] = field(default_factory=dict)
