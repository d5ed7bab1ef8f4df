"""Where and when a STAC document is, as the index holds it: item geometry and time interval,
collection extents (rejecting what cannot be read, with the reason)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import orjson
import shapely

from server.query.datetime import MAX_TIME, MIN_TIME, parse_document_datetime


class ItemRejected(ValueError):
    """The item cannot be indexed; the message says why. ``duplicate``: because an item of
    that collection and id is already indexed (the rest: the item itself is invalid)."""

    def __init__(self, message: str, duplicate: bool = False) -> None:
        super().__init__(message)
        self.duplicate = duplicate


def _time(props: dict[str, Any], key: str) -> int | None:
    value = props.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise ItemRejected(f"properties.{key} is not a string: {value!r}")
    try:
        return parse_document_datetime(value)
    except (ValueError, OverflowError) as exc:
        raise ItemRejected(f"properties.{key} is not a date-time: {value!r} ({exc})") from None


def item_interval(props: dict[str, Any]) -> tuple[int, int, int]:
    """(start, end, sort key) of an item; an item with no time at all never matches a
    datetime filter and sorts last."""
    instant = _time(props, "datetime")
    start = _time(props, "start_datetime")
    end = _time(props, "end_datetime")
    if start is not None or end is not None:
        lo = MIN_TIME if start is None else start
        hi = MAX_TIME if end is None else end
        if lo > hi:
            raise ItemRejected("start_datetime is after end_datetime")
        return lo, hi, instant if instant is not None else lo
    if instant is not None:
        return instant, instant, instant
    return MAX_TIME, MIN_TIME, MIN_TIME


def item_geometry(item: dict[str, Any]) -> shapely.Geometry | None:
    geometry = item.get("geometry")
    if geometry is None:
        return None
    if not isinstance(geometry, dict):
        raise ItemRejected("geometry is not a GeoJSON object")
    try:
        geom = shapely.from_geojson(orjson.dumps(geometry))
    except Exception as exc:  # GEOS raises its own error types
        raise ItemRejected(f"invalid geometry: {exc}") from None
    if geom is None or geom.is_empty:
        return None
    return geom


def extent_geometry(collection: dict[str, Any]) -> shapely.Geometry | None:
    try:
        boxes = collection["extent"]["spatial"]["bbox"]
        parts = []
        for b in boxes[:1]:  # the first bbox is the overall extent
            b = [float(v) for v in b]
            minx, miny, maxx, maxy = (b[0], b[1], b[3], b[4]) if len(b) == 6 else b
            if minx > maxx:
                parts += [shapely.box(minx, miny, 180.0, maxy), shapely.box(-180.0, miny, maxx, maxy)]
            else:
                parts.append(shapely.box(minx, miny, maxx, maxy))
        return shapely.union_all(parts) if parts else None
    except (KeyError, TypeError, ValueError, IndexError):
        return None


def extent_interval(collection: dict[str, Any]) -> tuple[int, int]:
    try:
        lo, hi = collection["extent"]["temporal"]["interval"][0]
        start = MIN_TIME if lo is None else parse_document_datetime(lo)
        end = MAX_TIME if hi is None else parse_document_datetime(hi)
        return (start, end) if start <= end else (MAX_TIME, MIN_TIME)
    except (KeyError, TypeError, ValueError, IndexError):
        return MAX_TIME, MIN_TIME


def _instant(micros: int) -> str:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=micros)
    fraction = f".{moment.microsecond:06d}".rstrip("0") if moment.microsecond else ""
    return moment.strftime("%Y-%m-%dT%H:%M:%S") + fraction + "Z"


def items_extent(bounds: np.ndarray, start: np.ndarray, end: np.ndarray) -> dict[str, Any]:
    """A collection's extent from its items' boxes and (start, end) times (as the index holds
    them): the box around every footprint (the whole world when none has one), the interval
    from the first start to the last end (an open end stays open; null when no item has a time)."""
    boxes = bounds[np.isfinite(bounds).all(axis=1)] if len(bounds) else bounds
    bbox = ([float(boxes[:, 0].min()), float(boxes[:, 1].min()), float(boxes[:, 2].max()), float(boxes[:, 3].max())]
            if len(boxes) else [-180.0, -90.0, 180.0, 90.0])
    timed = start <= end  # an item without any time has start MAX_TIME, end MIN_TIME
    interval: list[str | None] = [None, None]
    if timed.any():
        first, last = int(start[timed].min()), int(end[timed].max())
        interval = [None if first == MIN_TIME else _instant(first), None if last == MAX_TIME else _instant(last)]
    return {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval]}}
