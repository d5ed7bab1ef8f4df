"""Records: what a CQL2 filter, free text ``q`` and ``sortby`` see of one item or collection.

- A name in a filter, query or sortby means the member so named when any record of the set
  searched (all items, or all collections) has one, else the name without a leading
  ``properties.`` (the filter extension's fully qualified form): a property literally named
  ``properties.x`` is found by that name. This is the server's rule (Table.property_key), stated
  over the catalog's records here, not per record: so the oracle checks the server's mapping.
- An item: its properties, plus ``id``,
  ``collection`` (the effective collection, as tests/oracles/search.py works it out) and
  ``geometry``. Its interval is [start_datetime, end_datetime] when it has them (an absent
  end is open), else [datetime, datetime]. Its texts are title, description and keywords.
  Its default order (STAC API - Item Search: no sortby) is datetime descending
  (start_datetime when datetime is null; no time last), then collection, then id.
- A collection: its top-level members but links and assets; its geometry is the first
  extent bbox (minx > maxx crosses the antimeridian), its interval the first temporal
  interval (null ends open); its default order is by id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import shapely

from tests.oracles.search import NEG_INF, POS_INF, Oracle, to_micros

DAY = 86_400_000_000
PROPERTIES = "properties."
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


@dataclass
class Record:
    kind: str  # "item" or "collection"
    id: str
    collection: str | None
    members: dict[str, Any]  # an item's properties, a collection's top-level members
    geometry: Any  # shapely geometry or None
    start: float | None
    end: float | None
    texts: list[str]
    doc: dict[str, Any]
    default_key: tuple[Any, ...]
    # every member name of the records searched with this one (all items, or all collections)
    names: frozenset[str] = frozenset()

    @property
    def key(self) -> Any:
        return (self.collection, self.id) if self.kind == "item" else self.id

    def property_key(self, name: str) -> str:
        """The member a name means: itself when some record of the set has it, else without a
        leading ``properties.``."""
        if name.startswith(PROPERTIES) and name not in self.names:
            return name[len(PROPERTIES):]
        return name

    def value(self, name: str) -> Any:
        name = self.property_key(name)
        if name == "id":
            return self.id
        if name == "collection" and self.kind == "item":
            return self.collection
        return self.members.get(name)


def instant(text: Any) -> int | None:
    """An RFC 3339 date-time string (with an offset) as microseconds, else None."""
    if isinstance(text, str) and _INSTANT.fullmatch(text):
        return to_micros(text)
    return None


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def searchable_texts(doc: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("title", "description", "keywords"):
        v = doc.get(key)
        if isinstance(v, str):
            out.append(v)
        elif isinstance(v, list):
            out.extend(x for x in v if isinstance(x, str))
    return out


def item_records(oracle: Oracle) -> list[Record]:
    out = []
    names = frozenset(name for it in oracle.items for name in it.doc.get("properties") or {})
    for it in oracle.items:
        props = it.doc.get("properties") or {}
        dt = instant(props.get("datetime"))
        if dt is not None:
            sort_time = float(dt)
        elif props.get("start_datetime") is not None:
            sort_time = float(to_micros(props["start_datetime"]))
        else:
            sort_time = NEG_INF
        out.append(Record(
            kind="item", id=it.id, collection=it.collection, members=props, geometry=it.geometry,
            start=it.start, end=it.end, texts=searchable_texts(props), doc=it.doc,
            default_key=(-sort_time, it.collection or "", it.id), names=names,
        ))
    return out


def collection_extent_geometry(doc: dict[str, Any]) -> Any:
    try:
        b = [float(v) for v in doc["extent"]["spatial"]["bbox"][0]]
    except (KeyError, IndexError, TypeError, ValueError):
        return None
    return bbox_shape(b)


def bbox_shape(b: list[float]) -> Any:
    """A bbox of 4 or 6 numbers as a shape; one crossing the antimeridian (minx > maxx) in two parts."""
    if len(b) == 6:
        b = [b[0], b[1], b[3], b[4]]
    minx, miny, maxx, maxy = b
    if minx > maxx:
        return shapely.union(shapely.box(minx, miny, 180.0, maxy), shapely.box(-180.0, miny, maxx, maxy))
    return shapely.box(minx, miny, maxx, maxy)


def collection_extent_interval(doc: dict[str, Any]) -> tuple[float | None, float | None]:
    try:
        lo, hi = doc["extent"]["temporal"]["interval"][0]
    except (KeyError, IndexError, TypeError, ValueError):
        return None, None
    start = NEG_INF if lo is None else float(to_micros(lo))
    end = POS_INF if hi is None else float(to_micros(hi))
    return (start, end) if start <= end else (None, None)


def collection_records(collections: dict[str, dict[str, Any]]) -> list[Record]:
    out = []
    names = frozenset(k for doc in collections.values() for k in doc if k not in ("links", "assets"))
    for cid in sorted(collections):
        doc = collections[cid]
        start, end = collection_extent_interval(doc)
        out.append(Record(
            kind="collection", id=cid, collection=None,
            members={k: v for k, v in doc.items() if k not in ("links", "assets")},
            geometry=collection_extent_geometry(doc), start=start, end=end,
            texts=searchable_texts(doc), doc=doc, default_key=(cid,), names=names,
        ))
    return out
