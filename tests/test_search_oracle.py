"""Randomised searches: the server's answer, over all pages, equals the brute-force oracle's.

Each case draws one query from its own seeded random.Random (reproducible one by one: the
seed is the test id), runs it as GET /search and as POST /search with a small limit, follows
every next link, and checks: the union of pages equals the oracle's set, no item repeats,
numberMatched equals the oracle's count on every page, every page but the last is full.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shapely
from shapely.geometry import shape

from server.catalog.loader import load_catalogs
from tests import helpers
from tests.helpers import CatalogDir, search_all
from tests.oracles.search import Oracle, to_micros

SEED = "stac-static-api-search-oracle-v1"
N_SEARCH = 300
N_ITEMS_ENDPOINT = 60

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
YEAR_LO, YEAR_HI = 2004, 2026


@pytest.fixture(scope="module")
def sample_oracle(oracle: Oracle) -> Oracle:
    assert len(oracle.items) >= 50  # the generator below assumes the sample catalog
    return oracle


# -- random query parts ----------------------------------------------------------------------------


def _r(x: float) -> float:
    return round(x, 4)


def _clip_lon(x: float) -> float:
    return max(-180.0, min(180.0, x))


def _clip_lat(y: float) -> float:
    return max(-90.0, min(90.0, y))


def random_box(rng: random.Random) -> list[float]:
    """Mostly over Europe (where the sample data is), any size from metres to a continent."""
    cx, cy = rng.uniform(-30, 50), rng.uniform(30, 75)
    w, h = math.exp(rng.uniform(math.log(0.001), math.log(70))), math.exp(rng.uniform(math.log(0.001), math.log(40)))
    return [_r(_clip_lon(cx - w / 2)), _r(_clip_lat(cy - h / 2)), _r(_clip_lon(cx + w / 2)), _r(_clip_lat(cy + h / 2))]


def random_point(rng: random.Random, oracle: Oracle) -> list[float]:
    """A point near the data; often exactly a vertex of an item footprint (touching counts)."""
    if rng.random() < 0.4:
        it = rng.choice([i for i in oracle.items if i.geometry is not None])
        coords = it.doc["geometry"]["coordinates"][0]
        return list(rng.choice(coords))
    if rng.random() < 0.3:  # around Wageningen, where many scenes overlap
        return [_r(rng.uniform(5.6, 5.75)), _r(rng.uniform(51.9, 52.0))]
    return [_r(rng.uniform(-30, 50)), _r(rng.uniform(30, 75))]


def random_bbox(rng: random.Random) -> list[float]:
    kind = rng.choices(["box", "antimeridian", "grid", "degenerate", "six", "world"], [8, 3, 2, 1, 1, 1])[0]
    if kind == "antimeridian":
        # minx > maxx: the box wraps from minx east over 180 to maxx (which may reach Europe)
        minx, maxx = _r(rng.uniform(60, 179.9)), _r(rng.uniform(-180, 30))
        miny = _r(rng.uniform(-60, 60))
        return [minx, miny, maxx, _r(rng.uniform(miny, 85))]
    if kind == "grid":
        # Integer boxes on the 1-degree dem-alps tiles: exact shared edges and corners
        x0, y0 = rng.randint(5, 14), rng.randint(44, 48)
        return [x0, y0, x0 + rng.randint(0, 2), y0 + rng.randint(0, 1)]
    if kind == "degenerate":
        x0, y0 = _r(rng.uniform(4, 6)), _r(rng.uniform(50, 53))
        return rng.choice([[x0, y0, x0, y0 + 0.5], [x0, y0, x0 + 0.5, y0], [x0, y0, x0, y0]])
    if kind == "six":
        b = random_box(rng)
        return [b[0], b[1], -100.0, b[2], b[3], 4000.0]
    if kind == "world":
        return [-180, -90, 180, 90]
    return random_box(rng)


def random_geometry(rng: random.Random, oracle: Oracle) -> dict[str, Any]:
    kind = rng.choice(["Point", "MultiPoint", "LineString", "Polygon", "Triangle", "MultiPolygon", "GeometryCollection"])
    if kind == "Point":
        return {"type": "Point", "coordinates": random_point(rng, oracle)}
    if kind == "MultiPoint":
        return {"type": "MultiPoint", "coordinates": [random_point(rng, oracle) for _ in range(rng.randint(1, 4))]}
    if kind == "LineString":
        return {"type": "LineString", "coordinates": [random_point(rng, oracle) for _ in range(rng.randint(2, 4))]}
    if kind == "Triangle":
        a = random_point(rng, oracle)
        b = [_r(a[0] + rng.uniform(0.01, 5)), _r(a[1] + rng.uniform(-2, 2))]
        c = [_r(a[0] + rng.uniform(-2, 2)), _r(a[1] + rng.uniform(0.01, 5))]
        if (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]) == 0:
            c = [c[0] + 0.5, c[1]]
        return {"type": "Polygon", "coordinates": [[a, b, c, a]]}
    if kind == "GeometryCollection":
        return {"type": "GeometryCollection", "geometries": [
            {"type": "Point", "coordinates": random_point(rng, oracle)},
            _box_polygon(random_box(rng)),
        ]}
    if kind == "MultiPolygon":
        boxes = [random_box(rng) for _ in range(2)]
        polys = [_box_polygon(b)["coordinates"] for b in boxes if b[0] < b[2] and b[1] < b[3]]
        if len(polys) == 2 and shape(_box_polygon(boxes[0])).intersects(shape(_box_polygon(boxes[1]))):
            polys = polys[:1]  # a valid MultiPolygon's parts do not overlap
        if polys:
            return {"type": "MultiPolygon", "coordinates": polys}
    box = random_box(rng)
    if box[0] == box[2] or box[1] == box[3]:
        box = [box[0], box[1], box[0] + 0.1, box[1] + 0.1]
    return _box_polygon(box)


def _box_polygon(b: list[float]) -> dict[str, Any]:
    x0, y0, x1, y1 = b
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def format_instant(rng: random.Random, micros: int) -> str:
    """The same instant in one of several RFC 3339 spellings: Z, fractions, numeric offsets."""
    dt = _EPOCH + timedelta(microseconds=micros)
    style = rng.choice(["Z", "Z", "fraction", "offset", "offset-fraction", "lower"])
    if style in ("offset", "offset-fraction"):
        minutes = rng.choice([-600, -330, -60, 0, 60, 120, 345, 840])
        local = dt + timedelta(minutes=minutes)
        sign = "+" if minutes >= 0 else "-"
        offset = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        frac = f".{local.microsecond:06d}" if style == "offset-fraction" else ""
        if not frac and local.microsecond:
            frac = f".{local.microsecond:06d}"
        return local.strftime("%Y-%m-%dT%H:%M:%S") + frac + offset
    if style == "fraction" or dt.microsecond:
        digits = rng.choice([1, 3, 6]) if dt.microsecond == 0 else 6
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + "." + f"{dt.microsecond:06d}"[:digits] + "Z"
    if style == "lower":
        return dt.strftime("%Y-%m-%dt%H:%M:%Sz")
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def random_time(rng: random.Random, oracle: Oracle) -> int:
    """Often exactly an item's instant or interval end (inclusive bounds), else anywhere."""
    r = rng.random()
    if r < 0.35:
        it = rng.choice([i for i in oracle.items if i.start is not None])
        choices = [t for t in (it.start, it.end) if t is not None and math.isfinite(t)]
        t = int(rng.choice(choices))
        return t + rng.choice([0, 0, 0, -1, 1])  # one microsecond either side of an edge
    lo = to_micros(f"{YEAR_LO}-01-01T00:00:00Z")
    hi = to_micros(f"{YEAR_HI}-01-01T00:00:00Z")
    return rng.randrange(lo, hi) // 1_000_000 * 1_000_000  # whole seconds


def random_datetime(rng: random.Random, oracle: Oracle) -> str:
    kind = rng.choices(["instant", "closed", "open-start", "open-end"], [3, 4, 2, 2])[0]
    if kind == "instant":
        return format_instant(rng, random_time(rng, oracle))
    a, b = sorted((random_time(rng, oracle), random_time(rng, oracle)))
    if kind == "closed":
        return f"{format_instant(rng, a)}/{format_instant(rng, b)}"
    if kind == "open-start":
        return f"{rng.choice(['..', ''])}/{format_instant(rng, b)}"
    return f"{format_instant(rng, a)}/{rng.choice(['..', ''])}"


def random_query(rng: random.Random, oracle: Oracle) -> dict[str, Any]:
    query: dict[str, Any] = {}
    all_ids = sorted({it.id for it in oracle.items})
    spatial = rng.choices(["none", "bbox", "intersects"], [3, 4, 3])[0]
    if spatial == "bbox":
        query["bbox"] = random_bbox(rng)
    elif spatial == "intersects":
        query["intersects"] = random_geometry(rng, oracle)
    if rng.random() < 0.5:
        query["datetime"] = random_datetime(rng, oracle)
    if rng.random() < 0.2:
        ids = rng.sample(all_ids, rng.randint(1, 8))
        if rng.random() < 0.3:
            ids.append("no-such-item")
        query["ids"] = ids
    if rng.random() < 0.35:
        names = sorted(oracle.collections)
        cols = rng.sample(names, rng.randint(1, len(names)))
        if rng.random() < 0.2:
            cols.append("no-such-collection")
        query["collections"] = cols
    query["limit"] = rng.choice([1, 2, 3, 4, 5, 7, 10, 25, 100])
    return query


def check_pages(keys: list, pages: list[dict[str, Any]], expected: set, limit: int, label: str) -> None:
    assert len(keys) == len(set(keys)), f"{label}: an item repeats across pages"
    assert set(keys) == expected, (
        f"{label}: server-only {sorted(set(keys) - expected, key=str)}, "
        f"oracle-only {sorted(expected - set(keys), key=str)}"
    )
    for page in pages:
        assert page["numberMatched"] == len(expected), label
    for page in pages[:-1]:
        assert page["numberReturned"] == limit, f"{label}: a page before the last is not full"
    assert len(pages) == max(1, math.ceil(len(expected) / limit)), f"{label}: wrong number of pages"


# -- the comparisons -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", range(N_SEARCH), ids=lambda i: f"q{i:03d}")
def test_search_matches_oracle(client, sample_oracle: Oracle, case: int) -> None:
    rng = random.Random(f"{SEED}/search/{case}")
    query = random_query(rng, sample_oracle)
    expected = sample_oracle.evaluate(query)
    for method in ("GET", "POST"):
        keys, pages = search_all(client, method, "/search", query)
        check_pages(keys, pages, expected, query["limit"], f"{method} {json.dumps(query)}")


@pytest.mark.parametrize("case", range(N_ITEMS_ENDPOINT), ids=lambda i: f"c{i:03d}")
def test_collection_items_match_oracle(client, sample_oracle: Oracle, case: int) -> None:
    rng = random.Random(f"{SEED}/items/{case}")
    cid = rng.choice(sorted(sample_oracle.collections))
    query: dict[str, Any] = {"limit": rng.choice([1, 2, 3, 5, 10])}
    if rng.random() < 0.6:
        query["bbox"] = random_bbox(rng)
    if rng.random() < 0.6:
        query["datetime"] = random_datetime(rng, sample_oracle)
    expected = sample_oracle.evaluate({**query, "collections": [cid]})
    keys, pages = search_all(client, "GET", f"/collections/{cid}/items", query)
    check_pages(keys, pages, expected, query["limit"], f"/collections/{cid}/items {json.dumps(query)}")
    assert all(c == cid for c, _ in keys)


def test_queries_are_varied(sample_oracle: Oracle) -> None:
    """Guard against a generator that only ever asks for nothing or everything."""
    sizes = []
    for case in range(N_SEARCH):
        query = random_query(random.Random(f"{SEED}/search/{case}"), sample_oracle)
        sizes.append(len(sample_oracle.evaluate(query)))
    total = len(sample_oracle.items)
    assert sum(1 for s in sizes if s == 0) >= 20
    assert sum(1 for s in sizes if 0 < s < total) >= 100
    assert sum(1 for s in sizes if s > 10) >= 30


# -- fixed edge cases, same comparison ------------------------------------------------------------

EDGE_QUERIES = [
    {"bbox": [170, -90, -170, 90]},                          # antimeridian, nothing there
    {"bbox": [100, 30, 15, 75]},                             # antimeridian box reaching Europe
    {"bbox": [179.5, 40, 10, 60]},
    {"bbox": [8, 46, 9, 47]},                                # one dem tile: neighbours touch it
    {"bbox": [9, 47, 9, 47]},                                # a shared tile corner (a point)
    {"bbox": [5.66, 51.96, 5.67, 51.97]},                    # Wageningen
    {"bbox": [5.66, 51.96, -100, 5.67, 51.97, 100]},         # the same with elevations
    {"intersects": {"type": "Point", "coordinates": [5.665, 51.97]}},
    {"intersects": {"type": "Point", "coordinates": [10.0, 47.0]}},
    {"intersects": {"type": "LineString", "coordinates": [[-30, 60], [50, 60]]}},
    {"datetime": "2022-02-15T00:00:00Z"},                    # ndvi item with datetime + range
    {"datetime": "2022-02-28T23:59:59Z"},                    # inclusive end of a range
    {"datetime": "2022-02-28T23:59:59.000001Z"},             # one microsecond after
    {"datetime": "2022-03-01T01:00:00+01:00"},               # the same instant as 00:00Z
    {"datetime": "../2015-12-31T23:59:59Z"},
    {"datetime": "/2015-12-31T23:59:59Z"},
    {"datetime": "2023-06-01T00:00:00Z/.."},
    {"datetime": "2023-06-01T00:00:00Z/"},
    {"datetime": "2012-06-01T00:00:00Z/2012-06-01T00:00:00Z"},  # inside clc-change's range
    {"ids": ["dem-alps-void-fill-report", "aerial-wageningen-2021"]},  # null geometry, no collection
    {"ids": ["aerial-wageningen-2021"], "collections": ["misc"]},     # a catalog is not a collection
    {"collections": ["no-such-collection"]},
    {"collections": ["dem-alps", "no-such-collection"], "bbox": [0, 40, 20, 50]},
    {"ids": ["dem-alps-void-fill-report"], "bbox": [-180, -90, 180, 90]},  # null geometry never matches
]


@pytest.mark.parametrize("query", EDGE_QUERIES, ids=lambda q: json.dumps(q, separators=(",", ":"))[:60])
@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("limit", [1, 4, 1000])
def test_edge_queries_match_oracle(client, sample_oracle: Oracle, query: dict[str, Any], method: str, limit: int) -> None:
    query = {**query, "limit": limit}
    expected = sample_oracle.evaluate(query)
    keys, pages = search_all(client, method, "/search", query)
    check_pages(keys, pages, expected, limit, f"{method} {json.dumps(query)}")


# -- a generated worldwide catalog: antimeridian, poles, points, lines, open time ranges ---------------


def _world_catalog(folder: Path) -> Path:
    """Items the sample lacks: footprints on and across the antimeridian (as GeoJSON splits
    them), at the poles, points and lines, open-ended and offset times, fractions."""
    rng = random.Random(f"{SEED}/world-catalog")
    d = CatalogDir(folder)
    items: dict[str, dict[str, Any]] = {}
    items["am-split"] = helpers.item("am-split", bbox=(170, -20, -170, -10), geometry={
        "type": "MultiPolygon", "coordinates": [
            [[[170, -20], [180, -20], [180, -10], [170, -10], [170, -20]]],
            [[[-180, -20], [-170, -20], [-170, -10], [-180, -10], [-180, -20]]]]})
    items["am-east-edge"] = helpers.item("am-east-edge", bbox=(175, 0, 180, 5))
    items["am-west-edge"] = helpers.item("am-west-edge", bbox=(-180, 30, -175, 35))
    items["point-180"] = helpers.item("point-180", bbox=(180, 10, 180, 10),
                                      geometry={"type": "Point", "coordinates": [180, 10]})
    items["point--180"] = helpers.item("point--180", bbox=(-180, -40, -180, -40),
                                       geometry={"type": "Point", "coordinates": [-180, -40]})
    items["north-pole"] = helpers.item("north-pole", bbox=(-180, 85, 180, 90))
    items["south-line"] = helpers.item("south-line", bbox=(-60, -89, 60, -80), geometry={
        "type": "LineString", "coordinates": [[-60, -80], [0, -89], [60, -80]]})
    items["null-geom"] = helpers.item("null-geom", bbox=None, geometry=None)
    items["open-end"] = helpers.item("open-end", datetime=None, properties={"start_datetime": "2021-06-01T00:00:00Z"})
    items["open-start"] = helpers.item("open-start", datetime=None, properties={"end_datetime": "2001-01-01T00:00:00Z"})
    items["offset-time"] = helpers.item("offset-time", datetime="2020-03-01T01:30:00.25+05:30")
    for n in range(60):
        x, y = rng.uniform(-180, 179), rng.uniform(-89, 88)
        w, h = rng.uniform(0.01, 30), rng.uniform(0.01, 15)
        box = (round(x, 3), round(y, 3), round(min(180, x + w), 3), round(min(90, y + h), 3))
        t = to_micros("2000-01-01T00:00:00Z") + rng.randrange(0, 25 * 365 * 86400) * 1_000_000
        props = {}
        when = format_instant(rng, t)
        if rng.random() < 0.3:
            props = {"start_datetime": when, "end_datetime": format_instant(rng, t + rng.randrange(1, 10**14))}
            when = None
        items[f"box-{n}"] = helpers.item(f"box-{n}", bbox=box, datetime=when, properties=props)
    names = sorted(items)
    loose = names[::9]  # some items live under a plain catalog, with no collection
    d.write("catalog.json", helpers.catalog("world", [
        helpers.link("child", "./a/collection.json"), helpers.link("child", "./b/collection.json"),
        *[helpers.link("item", f"./loose/{n}.json") for n in loose]]))
    rest = [n for n in names if n not in loose]
    for cid, part in (("a", rest[::2]), ("b", rest[1::2])):
        d.write(f"{cid}/collection.json", helpers.collection(cid, [helpers.link("item", f"./{n}.json") for n in part]))
        for n in part:
            d.write(f"{cid}/{n}.json", items[n])
    for n in loose:
        d.write(f"loose/{n}.json", items[n])
    return d.path("catalog.json")


@pytest.fixture(scope="module")
def world(tmp_path_factory, make_client) -> Iterator[tuple[Oracle, Any]]:
    root = _world_catalog(tmp_path_factory.mktemp("world"))
    index, report = load_catalogs([str(root)])
    assert report.skipped == 0, report.skips
    with make_client(index=index) as c:
        yield Oracle.from_root(root), c


def random_query_for(rng: random.Random, oracle: Oracle) -> dict[str, Any]:
    """A query shaped by whatever catalog the oracle holds: boxes around and between its
    footprints, antimeridian boxes, vertices as points, its items' own time edges."""
    query: dict[str, Any] = {}
    with_geom = [i for i in oracle.items if i.geometry is not None]
    kind = rng.choices(["none", "near", "antimeridian", "random", "point", "polygon"], [2, 3, 2, 2, 2, 1])[0]
    if kind == "near" and with_geom:
        x0, y0, x1, y1 = rng.choice(with_geom).geometry.bounds
        pad = rng.choice([0.0, 0.0, 0.001, 0.5, 5.0, -0.25 * (x1 - x0)])
        box = [x0 - pad, y0 - pad, x1 + pad, y1 + pad]
        box = [_clip_lon(box[0]), _clip_lat(box[1]), _clip_lon(box[2]), _clip_lat(box[3])]
        if box[0] > box[2]:
            box[0], box[2] = box[2], box[0]
        if box[1] > box[3]:
            box[1], box[3] = box[3], box[1]
        query["bbox"] = [_r(v) for v in box]
    elif kind == "antimeridian":
        minx, maxx = rng.uniform(-170, 180), rng.uniform(-180, 170)
        if minx <= maxx:
            minx, maxx = max(minx, maxx), min(minx, maxx)
        if minx == maxx:
            minx += 1
        miny = rng.uniform(-90, 80)
        query["bbox"] = [_r(minx), _r(miny), _r(maxx), _r(rng.uniform(miny, 90))]
    elif kind == "random":
        x0, y0 = rng.uniform(-180, 170), rng.uniform(-90, 80)
        query["bbox"] = [_r(x0), _r(y0), _r(min(180, x0 + rng.uniform(0, 90))), _r(min(90, y0 + rng.uniform(0, 45)))]
    elif kind in ("point", "polygon") and with_geom:
        geom = rng.choice(with_geom).geometry
        coords = list(shapely.get_coordinates(geom))
        x, y = (float(v) for v in rng.choice(coords))
        if kind == "point":
            query["intersects"] = {"type": "Point", "coordinates": [x, y]}
        else:
            s = rng.uniform(0.001, 3)
            ring = [[x - s, y - s], [x + s, y - s], [x, y + s], [x - s, y - s]]
            query["intersects"] = {"type": "Polygon", "coordinates": [[[_r(a), _r(b)] for a, b in ring]]}
    timed = [i for i in oracle.items if i.start is not None]
    if timed and rng.random() < 0.5:
        edges = [t for i in timed for t in (i.start, i.end) if math.isfinite(t)]
        a, b = sorted(int(rng.choice(edges)) + rng.choice([0, -1, 1, 86_400_000_000]) for _ in range(2))
        form = rng.choice(["instant", "closed", "open-start", "open-end"])
        query["datetime"] = {
            "instant": format_instant(rng, a),
            "closed": f"{format_instant(rng, a)}/{format_instant(rng, b)}",
            "open-start": f"../{format_instant(rng, b)}",
            "open-end": f"{format_instant(rng, a)}/..",
        }[form]
    if oracle.collections and rng.random() < 0.25:
        query["collections"] = rng.sample(sorted(oracle.collections), rng.randint(1, len(oracle.collections)))
    if rng.random() < 0.15:
        query["ids"] = rng.sample(sorted({i.id for i in oracle.items}), min(len(oracle.items), rng.randint(1, 6)))
    query["limit"] = rng.choice([1, 2, 3, 5, 10, 50])
    return query


@pytest.mark.parametrize("case", range(120), ids=lambda i: f"w{i:03d}")
def test_world_catalog_matches_oracle(world: tuple[Oracle, Any], case: int) -> None:
    oracle, client = world
    query = random_query_for(random.Random(f"{SEED}/world/{case}"), oracle)
    expected = oracle.evaluate(query)
    for method in ("GET", "POST"):
        keys, pages = search_all(client, method, "/search", query)
        check_pages(keys, pages, expected, query["limit"], f"{method} {json.dumps(query)}")


def test_world_queries_are_varied(world: tuple[Oracle, Any]) -> None:
    oracle, _ = world
    queries = [random_query_for(random.Random(f"{SEED}/world/{case}"), oracle) for case in range(120)]
    sizes = [len(oracle.evaluate(q)) for q in queries]
    assert sum(1 for s in sizes if s == 0) >= 10 and sum(1 for s in sizes if 0 < s < len(oracle.items)) >= 50
    assert sum(1 for q in queries if "bbox" in q and q["bbox"][0] > q["bbox"][2]) >= 10
    assert sum(1 for q in queries if "am-split" in {i for _, i in oracle.evaluate(q)} and ("bbox" in q or "intersects" in q)) >= 3


WORLD_EDGES = [
    ({"bbox": [179, -15, -179, -14]}, {"am-split"}),
    ({"bbox": [179.5, -90, 179.9, 90]}, {"am-split", "am-east-edge"}),
    ({"bbox": [-179.9, -90, -179.5, 90]}, {"am-split", "am-west-edge"}),
    ({"bbox": [-180, 10, -180, 10]}, set()),   # planar, as GeoJSON: -180 does not touch a point at 180
    ({"bbox": [180, 10, 180, 10]}, {"point-180"}),
    ({"bbox": [0, 89, 1, 90]}, {"north-pole"}),
    ({"intersects": {"type": "Point", "coordinates": [0, -89]}}, {"south-line"}),
    ({"datetime": "2030-01-01T00:00:00Z"}, {"open-end"}),
    ({"datetime": "1990-01-01T00:00:00Z"}, {"open-start"}),
    ({"datetime": "2020-02-29T20:00:00.25Z"}, {"offset-time"}),
]


@pytest.mark.parametrize("query,must", WORLD_EDGES, ids=lambda v: json.dumps(v)[:50] if isinstance(v, dict) else "")
def test_world_edges(world: tuple[Oracle, Any], query: dict[str, Any], must: set[str]) -> None:
    oracle, client = world
    query = {**query, "limit": 100}
    expected = oracle.evaluate(query)
    assert must <= {i for _, i in expected}  # the oracle itself agrees with the hand-made answer
    for method in ("GET", "POST"):
        keys, pages = search_all(client, method, "/search", query)
        check_pages(keys, pages, expected, 100, f"{method} {json.dumps(query)}")


# -- the shared real-world catalogs ---------------------------------------------------------------------

from tests.test_loader import SHARED_ROOTS, _name, needs_shared  # noqa: E402


@pytest.fixture(scope="module")
def shared_clients(make_client) -> Iterator[dict[str, tuple[Oracle, Any]]]:
    opened: dict[str, tuple[Oracle, Any]] = {}
    clients = []
    for roots in SHARED_ROOTS:
        index, _ = load_catalogs(roots)
        client = make_client(index=index)
        clients.append(client)
        opened[_name(roots)] = (Oracle.from_roots(roots, only_loaded_collections=True), client)
    yield opened
    for client in clients:
        client.close()


@needs_shared
@pytest.mark.parametrize("name", [_name(r) for r in SHARED_ROOTS] or ["none"])
def test_shared_catalog_searches_match_oracle(shared_clients: dict[str, tuple[Oracle, Any]], name: str) -> None:
    oracle, client = shared_clients[name]
    for case in range(12):
        query = random_query_for(random.Random(f"{SEED}/shared/{name}/{case}"), oracle)
        expected = oracle.evaluate(query)
        method = "GET" if case % 2 else "POST"
        keys, pages = search_all(client, method, "/search", query)
        check_pages(keys, pages, expected, query["limit"], f"{name}: {method} {json.dumps(query)}")
