"""A brute-force search evaluator over the SOURCE JSON files of a static catalog.

Deliberately independent of the server's code (no server imports): it walks the catalog
files with json + os, keeps every item as a plain dict, and answers a search by testing each
item one by one with shapely and exact integer-microsecond time comparisons. The server's
index (STRtree, numpy arrays, sort keys, page tokens) must give exactly the same set.

Rules, from STAC API - Item Search §Query Parameters and the server's documented catalog walk:
- an item's collection is its ``collection`` field, else the nearest collection above it;
  an item with neither belongs to the collection made for its nearest plain catalog (or, for
  an item file given as a root, for that file): the catalog's id (the file's name without its
  extension), -2, -3 ... when taken, in the order the walk meets them; its extent is the box
  around its items' footprints (the world when none has one) and their first start to last end;
- duplicates: the first (collection, id) met in a breadth-first walk is kept;
- bbox: 4 or 6 numbers; minx > maxx crosses the antimeridian (two boxes); a bbox or an
  ``intersects`` geometry matches an item whose geometry intersects it (touching counts);
  an item with ``geometry: null`` never matches a spatial filter;
- datetime: an instant or ``start/end`` with ``..`` or empty for an open end; an item's time is
  [start_datetime, end_datetime] when it has them (an absent end is open), else
  [datetime, datetime]; inclusive overlap; an item with no time never matches;
- ids / collections: membership.
"""

from __future__ import annotations

import json
import os
import re
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import shapely
from shapely.geometry import shape

Key = tuple[str | None, str]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})?"
)
NEG_INF = float("-inf")
POS_INF = float("inf")


def to_micros(text: str) -> int:
    """RFC 3339 date-time → integer microseconds since the epoch, UTC (no offset means UTC)."""
    m = _DT.fullmatch(text.strip())
    if not m:
        raise ValueError(f"not a date-time: {text!r}")
    y, mo, d, h, mi, s = (int(g) for g in m.groups()[:6])
    dt = datetime(y, mo, d, h, mi, s, tzinfo=UTC)
    delta = dt - _EPOCH
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000
    if m.group(7):
        micros += int((m.group(7) + "000000")[:6])
    offset = m.group(8)
    if offset and offset not in ("Z", "z"):
        sign = 1 if offset[0] == "+" else -1
        micros -= sign * (int(offset[1:3]) * 3600 + int(offset[4:6]) * 60) * 1_000_000
    return micros


def bbox_shape(bbox: list[float]) -> Any:
    """A 4- or 6-number bbox as a shapely geometry; minx > maxx wraps over the antimeridian."""
    if len(bbox) == 6:
        minx, miny, maxx, maxy = bbox[0], bbox[1], bbox[3], bbox[4]
    else:
        minx, miny, maxx, maxy = bbox
    if minx > maxx:
        return shapely.union(_box(minx, miny, 180.0, maxy), _box(-180.0, miny, maxx, maxy))
    return _box(minx, miny, maxx, maxy)


def _box(minx: float, miny: float, maxx: float, maxy: float) -> Any:
    # A box with no width or height is a line or a point, not a collapsed polygon.
    if minx == maxx and miny == maxy:
        return shapely.Point(minx, miny)
    if minx == maxx or miny == maxy:
        return shapely.LineString([(minx, miny), (maxx, maxy)])
    return shapely.box(minx, miny, maxx, maxy)


def interval(text: str) -> tuple[float, float]:
    """A datetime parameter → inclusive (start, end) microseconds; open ends are ±inf."""
    if "/" not in text:
        t = to_micros(text)
        return t, t
    start, end = text.split("/")
    lo = NEG_INF if start in ("", "..") else to_micros(start)
    hi = POS_INF if end in ("", "..") else to_micros(end)
    return lo, hi


@dataclass
class OracleItem:
    collection: str | None
    id: str
    doc: dict[str, Any]
    geometry: Any  # shapely geometry or None
    start: float | None
    end: float | None

    @property
    def key(self) -> Key:
        return (self.collection, self.id)


def _item_time(props: dict[str, Any]) -> tuple[float | None, float | None]:
    start, end = props.get("start_datetime"), props.get("end_datetime")
    if start is not None or end is not None:
        return (NEG_INF if start is None else to_micros(start)), (POS_INF if end is None else to_micros(end))
    if props.get("datetime") is not None:
        t = to_micros(props["datetime"])
        return t, t
    return None, None


def _read(path: str) -> list[dict[str, Any]]:
    """The JSON object(s) in a file: one document or newline-delimited ones; [] if unreadable."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError):
        return []
    try:
        docs = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            docs = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError:
            return []
    return [d for d in docs if isinstance(d, dict)]


def _home_ids(homes: dict[str, dict[str, Any] | None], taken: set[str]) -> dict[str, str]:
    """Each home's collection id: its catalog's id, or its file's name without the extension;
    -2, -3 ... when taken."""
    ids = {}
    for path, catalog in homes.items():
        name = os.path.basename(path)
        base = catalog["id"] if catalog else (name.rsplit(".", 1)[0] if "." in name[1:] else name)
        cid, n = base, 1
        while cid in taken:
            n += 1
            cid = f"{base}-{n}"
        taken.add(cid)
        ids[path] = cid
    return ids


def _made_collection(cid: str, catalog: dict[str, Any] | None, path: str) -> dict[str, Any]:
    """The documented made collection: title, description (the catalog's, then the note), license."""
    name = str(catalog.get("title") or catalog["id"]) if catalog else os.path.basename(path)
    note = (f"Made by stac-static-api for the items of {'the catalog' if catalog else 'the file'} {name!r}, "
            f"which belong to no collection; its extent is computed from them.")
    description = (catalog or {}).get("description")
    return {"type": "Collection", "stac_version": "1.0.0",
            "id": cid, "title": name, "license": "other", "links": [],
            "description": f"{description}\n\n{note}" if description else note}


def _iso(micros: float) -> str:
    return (_EPOCH + timedelta(microseconds=int(micros))).isoformat().replace("+00:00", "Z")


def _extent(items: list[OracleItem]) -> dict[str, Any]:
    boxes = [it.geometry.bounds for it in items if it.geometry is not None and not it.geometry.is_empty]
    bbox = ([min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes)]
            if boxes else [-180.0, -90.0, 180.0, 90.0])
    timed = [it for it in items if it.start is not None]
    interval_: list[str | None] = [None, None]
    if timed:
        first, last = min(it.start for it in timed), max(it.end for it in timed)
        interval_ = [None if first == NEG_INF else _iso(first), None if last == POS_INF else _iso(last)]
    return {"spatial": {"bbox": [bbox]}, "temporal": {"interval": [interval_]}}


class Oracle:
    def __init__(self) -> None:
        self.items: list[OracleItem] = []
        self.collections: dict[str, dict[str, Any]] = {}
        self.catalogs: list[dict[str, Any]] = []

    # -- reading the files ----------------------------------------------------------------------

    @classmethod
    def from_root(cls, root: str | os.PathLike[str], **options: Any) -> Oracle:
        return cls.from_roots([root], **options)

    @classmethod
    def from_roots(cls, roots: list[str | os.PathLike[str]], *, only_loaded_collections: bool = False) -> Oracle:
        """Walk local catalog.json / collection.json files breadth first (child, then item
        links); a root may also be an item, a FeatureCollection or newline-delimited items.

        ``only_loaded_collections``: an item naming a collection that is not in the catalog
        gets the nearest collection above it instead, or none (the server's documented
        refinement of the rule, so that every served item's collection link resolves).
        """
        oracle = cls()
        seen: set[str] = set()
        queue: deque[tuple[str, str | None, str | None]] = deque()  # path, collection above, catalog above
        item_refs: list[tuple[dict[str, Any], str | None, str]] = []  # item, collection above, home
        homes: dict[str, None] = {}  # where items of no collection live (catalogs, root files), in walk order
        catalog_docs: dict[str, dict[str, Any]] = {}
        for root in roots:
            real = os.path.realpath(root)
            if real not in seen:
                seen.add(real)
                queue.append((real, None, None))
        while queue:
            path, parent_collection, parent_catalog = queue.popleft()
            for doc in _read(path):
                kind = doc.get("type")
                if kind in ("Feature", "FeatureCollection") and parent_collection is None:
                    homes.setdefault(parent_catalog or path, None)
                if kind == "Feature":
                    item_refs.append((doc, parent_collection, parent_catalog or path))
                    continue
                if kind == "FeatureCollection":
                    item_refs += [(f, parent_collection, parent_catalog or path) for f in doc.get("features", [])]
                    continue
                current, catalog_path = parent_collection, parent_catalog
                if kind == "Collection" or (kind is None and "extent" in doc):
                    oracle.collections.setdefault(doc["id"], doc)
                    current = doc["id"]
                else:
                    oracle.catalogs.append(doc)
                    catalog_path = path
                    catalog_docs[path] = doc
                for ln in doc.get("links", []):
                    href = ln.get("href", "")
                    if ln.get("rel") not in ("child", "item") or "://" in href:
                        continue
                    target = os.path.realpath(href if os.path.isabs(href) else os.path.join(os.path.dirname(path), href))
                    if target in seen:
                        continue
                    seen.add(target)
                    if ln["rel"] == "child":
                        queue.append((target, current, catalog_path))
                    else:
                        if current is None:
                            homes.setdefault(path, None)
                        item_refs += [(d, current, catalog_path or target) for d in _read(target)]
        home_ids = _home_ids({home: catalog_docs.get(home) for home in homes}, set(oracle.collections))
        keys: set[Key] = set()
        loaded = set(oracle.collections)
        made: dict[str, dict[str, Any]] = {}
        for doc, parent_collection, home in item_refs:
            collection = doc.get("collection") or parent_collection
            if only_loaded_collections and collection not in loaded:
                collection = parent_collection
            if collection is None:
                collection = home_ids[home]
                made.setdefault(collection, _made_collection(collection, catalog_docs.get(home), home))
            oracle._add(doc, collection, keys)
        for cid, doc in made.items():
            doc["extent"] = _extent([it for it in oracle.items if it.collection == cid])
            oracle.collections[cid] = doc
        return oracle

    def _add(self, doc: dict[str, Any], collection: str | None, keys: set[Key]) -> None:
        geometry = None if doc.get("geometry") is None else shape(doc["geometry"])
        start, end = _item_time(doc.get("properties") or {})
        entry = OracleItem(collection, doc["id"], doc, geometry, start, end)
        if entry.key in keys:
            return  # a duplicate: the first one met is kept
        keys.add(entry.key)
        self.items.append(entry)

    # -- answering ------------------------------------------------------------------------------

    def made_collections(self) -> set[str]:
        """The collections made for items of no collection (their docs say so)."""
        return {cid for cid, doc in self.collections.items() if "Made by stac-static-api" in doc.get("description", "")}

    def keys(self) -> set[Key]:
        return {it.key for it in self.items}

    def evaluate(self, query: dict[str, Any]) -> set[Key]:
        """Keys of every item the query selects. ``query`` uses POST /search JSON shapes."""
        ids = query.get("ids")
        collections = query.get("collections")
        spatial = None
        if query.get("bbox") is not None:
            spatial = bbox_shape(query["bbox"])
        if query.get("intersects") is not None:
            spatial = shape(query["intersects"])
        time_range = interval(query["datetime"]) if query.get("datetime") else None
        out = set()
        for it in self.items:
            if ids is not None and it.id not in ids:
                continue
            if collections is not None and it.collection not in collections:
                continue
            if spatial is not None and (it.geometry is None or not it.geometry.intersects(spatial)):
                continue
            if time_range is not None:
                if it.start is None or it.end is None:
                    continue
                if not (it.start <= time_range[1] and it.end >= time_range[0]):
                    continue
            out.add(it.key)
        return out
