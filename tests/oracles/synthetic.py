"""A seeded heterogeneous catalog, to run the oracle comparisons on data nastier than the sample's.

Mixed-type, null, array and object properties; open time intervals; null geometries, points,
lines, boxes sharing edges; collections with antimeridian and world extents; items with the
same id in several collections; items with no collection; accented and punctuated texts.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from shapely.geometry import shape

from tests.oracles.records import DAY
from tests.oracles.search import to_micros

VOCAB = [
    "alpha", "alpine", "alps", "river", "riverine", "delta", "deltaic", "forest", "forestry", "urban",
    "ndvi", "vegetation", "crop", "cropland", "snow", "glacier", "coast", "coastal", "water", "flood",
    "land", "cover", "change", "night", "light", "lights", "radar", "élan", "zürich", "école", "2019",
    "2020", "s2", "l2a", "a_b", "mosaic",
]
PLATFORMS = ["Alpha", "alpha", "ALPHA", "Beta", "beta-2", "gamma_ray", "Délta", "delta"]
PATTERNS = ["50%", "a_b", "a%b", "back\\slash", "under_score_", "100% pure", "x", "A_B", "%_%"]
LICENSES = ["CC-BY-4.0", "proprietary", "MIT", "various", "CC0-1.0"]
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
T_LO = to_micros("2015-01-01T00:00:00Z")
T_HI = to_micros("2025-01-01T00:00:00Z")


def rfc3339(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_time(rng: random.Random) -> int:
    # Whole days or seconds, so DATE literals and exact-edge comparisons both get hit.
    t = rng.randrange(T_LO, T_HI)
    return t // DAY * DAY if rng.random() < 0.3 else t // 1_000_000 * 1_000_000


def _sentence(rng: random.Random, n: int) -> str:
    words = [rng.choice(VOCAB) for _ in range(n)]
    words = [w.upper() if rng.random() < 0.1 else w.capitalize() if rng.random() < 0.2 else w for w in words]
    seps = [rng.choice([" ", " ", " ", "-", ", ", "/"]) for _ in range(n - 1)] + [""]
    return "".join(w + s for w, s in zip(words, seps))


def _geometry(rng: random.Random, cx: float, cy: float) -> dict[str, Any] | None:
    kind = rng.choices(["box", "triangle", "point", "line", "null"], [10, 4, 2, 2, 1])[0]
    if kind == "null":
        return None
    x, y = round(cx + rng.uniform(-8, 8), 3), round(cy + rng.uniform(-5, 5), 3)
    if kind == "point":
        return {"type": "Point", "coordinates": [x, y]}
    if kind == "line":
        end = [round(x + rng.uniform(0.1, 3), 3), round(y + rng.uniform(-2, 2), 3)]
        return {"type": "LineString", "coordinates": [[x, y], end]}
    if kind == "triangle":
        return {"type": "Polygon", "coordinates": [[[x, y], [round(x + 2, 3), y], [x, round(y + 2, 3)], [x, y]]]}
    if rng.random() < 0.3:  # integer grid boxes: shared edges and corners
        x, y = float(round(x)), float(round(y))
    w, h = rng.choice([1.0, 0.5, 2.0, round(rng.uniform(0.05, 4), 3)]), rng.choice([1.0, 0.5, round(rng.uniform(0.05, 3), 3)])
    x1, y1 = round(x + w, 3), round(y + h, 3)
    return {"type": "Polygon", "coordinates": [[[x, y], [x1, y], [x1, y1], [x, y1], [x, y]]]}


def _item_properties(rng: random.Random) -> dict[str, Any]:
    p: dict[str, Any] = {}
    r = rng.random()
    if r < 0.72:
        p["datetime"] = rfc3339(random_time(rng))
    elif r < 0.97:
        a, b = sorted((random_time(rng), random_time(rng)))
        p["datetime"] = rfc3339(random_time(rng)) if rng.random() < 0.3 else None
        kind = rng.choices(["closed", "open-start", "open-end"], [6, 1, 1])[0]
        if kind != "open-start":
            p["start_datetime"] = rfc3339(a)
        if kind != "open-end":
            p["end_datetime"] = rfc3339(b)
    else:
        p["datetime"] = None
    if rng.random() < 0.9:
        p["title"] = _sentence(rng, rng.randint(2, 6))
    if rng.random() < 0.5:
        p["description"] = _sentence(rng, rng.randint(3, 10))
    if rng.random() < 0.3:
        p["keywords"] = [rng.choice(VOCAB) for _ in range(rng.randint(0, 3))]
    if rng.random() < 0.6:
        p["created"] = rfc3339(random_time(rng))
    if rng.random() < 0.5:
        p["published"] = rfc3339(random_time(rng))
    r = rng.random()
    if r < 0.7:
        p["cloud"] = round(rng.uniform(0, 100), 2)
    elif r < 0.8:
        p["cloud"] = None
    if rng.random() < 0.5:
        p["eo:cloud_cover"] = rng.choice([0, 5, 10.5, 50, 99.99, 100])
    if rng.random() < 0.8:
        p["n"] = rng.randint(-5, 50)
    if rng.random() < 0.7:
        p["platform"] = rng.choice(PLATFORMS)
    if rng.random() < 0.6:
        p["flag"] = rng.random() < 0.5
    if rng.random() < 0.6:
        p["tags"] = rng.sample(VOCAB[:12], rng.randint(0, 3))
    if rng.random() < 0.4:
        p["bands"] = [rng.randint(1, 5) for _ in range(rng.randint(1, 3))]
    r = rng.random()
    if r < 0.8:
        p["mixed"] = rng.choice([
            rng.randint(0, 20), round(rng.uniform(0, 20), 1), rng.choice(["7", "abc", "Abc", "10"]),
            rng.random() < 0.5, [1, 2], None, {"k": 1},
        ])
    if rng.random() < 0.3:
        p["meta"] = {"a": rng.randint(0, 3), "b": rng.choice(["x", "y"])}
    if rng.random() < 0.3:
        p["always_null"] = None
    if rng.random() < 0.4:
        p["pattern"] = rng.choice(PATTERNS)
    if rng.random() < 0.5:
        p["gsd"] = rng.choice([10, 10.0, 20, 30, 0.5, 60])
    return p


def _extent(rng: random.Random, i: int, cx: float, cy: float) -> dict[str, Any]:
    if i == 0:
        bbox = [-180.0, -90.0, 180.0, 90.0]
    elif i == 1:
        bbox = [170.0, -20.0, -170.0, 20.0]  # crosses the antimeridian
    else:
        bbox = [round(cx - 9, 2), round(cy - 6, 2), round(cx + 9, 2), round(cy + 6, 2)]
    boxes = [bbox] + ([[cx - 1, cy - 1, cx + 1, cy + 1]] if rng.random() < 0.3 else [])
    a, b = sorted((random_time(rng), random_time(rng)))
    kind = rng.choice(["closed", "closed", "open-end", "open-start", "open"])
    lo = None if kind in ("open-start", "open") else rfc3339(a)
    hi = None if kind in ("open-end", "open") else rfc3339(b)
    return {"spatial": {"bbox": boxes}, "temporal": {"interval": [[lo, hi]]}}


def write_synthetic_catalog(root: Path, seed: str, n_collections: int = 10, items_per: tuple[int, int] = (8, 20)) -> None:
    """A seeded catalog with varied collections and items (see the module docstring)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)

    def write(rel: str, doc: dict[str, Any]) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1, ensure_ascii=False))

    def base_item(iid: str, geometry: Any, props: dict[str, Any], collection: str | None) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [], "id": iid,
            "geometry": geometry, "properties": props, "links": [],
            "assets": {"data": {"href": f"https://example.com/{iid}.tif", "title": "Data", "roles": ["data"]},
                       "thumbnail": {"href": f"https://example.com/{iid}.png", "type": "image/png"}},
        }
        if geometry is not None:
            doc["bbox"] = list(shape(geometry).bounds)
        if collection is not None:
            doc["collection"] = collection
        return doc

    root_links = [{"rel": "root", "href": "./catalog.json"}]
    for i in range(n_collections):
        cid = f"coll-{i:02d}"
        cx, cy = rng.uniform(-150, 150), rng.uniform(-60, 60)
        coll: dict[str, Any] = {
            "type": "Collection", "stac_version": "1.0.0", "stac_extensions": [], "id": cid,
            "description": _sentence(rng, rng.randint(4, 12)), "license": rng.choice(LICENSES),
            "extent": _extent(rng, i, cx, cy), "links": [{"rel": "root", "href": "../catalog.json"}],
        }
        if rng.random() < 0.8:
            coll["title"] = _sentence(rng, rng.randint(2, 5))
        if rng.random() < 0.6:
            coll["keywords"] = [rng.choice(VOCAB) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.7:
            coll["rank"] = rng.randint(0, 5)
        if rng.random() < 0.7:
            coll["tier"] = rng.choice(["gold", "silver", "Bronze"])
        if rng.random() < 0.6:
            coll["experimental"] = rng.random() < 0.5
        if i == 0:
            cx, cy = 10.0, 50.0
        for k in range(rng.randint(*items_per)):
            iid = f"shared-{k}" if k < 2 and i % 3 == 0 else f"{cid}-it{k:02d}"
            doc = base_item(iid, _geometry(rng, cx, cy), _item_properties(rng), cid if rng.random() < 0.8 else None)
            doc["links"] = [{"rel": "parent", "href": "../collection.json"}, {"rel": "root", "href": "../../catalog.json"}]
            write(f"{cid}/{iid}/{iid}.json", doc)
            coll["links"].append({"rel": "item", "href": f"./{iid}/{iid}.json"})
        write(f"{cid}/collection.json", coll)
        root_links.append({"rel": "child", "href": f"./{cid}/collection.json"})
    loose = {"type": "Catalog", "stac_version": "1.0.0", "id": "loose", "description": "items with no collection",
             "links": [{"rel": "root", "href": "../catalog.json"}]}
    for k in range(6):
        iid = f"loose-{k}"
        write(f"loose/{iid}.json", base_item(iid, _geometry(rng, 10.0, 50.0), _item_properties(rng), None))
        loose["links"].append({"rel": "item", "href": f"./{iid}.json"})
    write("loose/catalog.json", loose)
    root_links.append({"rel": "child", "href": "./loose/catalog.json"})
    write("catalog.json", {"type": "Catalog", "stac_version": "1.0.0", "id": "synthetic",
                           "description": "synthetic test catalog", "links": root_links})
