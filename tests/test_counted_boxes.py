"""Box searches counted from whole leaves and groups (Table._counted, BoxIndex.decided,
LeafGroups) against a brute-force reference: shapely per item.

A bbox (or an intersects box), with or without a datetime, alone on a large table is answered
as an unsorted set of its matches, whole groups of the box index decided at once. The size
threshold is lowered (and the time slabs made small, so that a catalog of a few thousand items
has many) so that the path runs on generated data: footprints of every kind (rotated and cut
rectangles with collinear vertices, holes, multipolygons, points, lines, none), instants,
ranges (open ones too) and no time at all. Every page, count and token must be those of
Table.page over the positions shapely finds one item at a time, walked forward by next tokens
and back by prev tokens; through the HTTP API of a real server too.
"""

from __future__ import annotations

import functools
import json
import math
import pickle
import random
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import shapely
import shapely.affinity
import shapely.geometry

from server.catalog.loader import LoadOptions, load_catalogs
from server.index import Index, bitmap, match_cache, spatial, table
from server.index.bitmap import Bitmap, Unsorted
from server.index.match_cache import MatchCache
from server.index.table import Table
from tests.helpers import http_pages, parsed, run_server, walk_pages

ITEMS = 3_001  # (not a multiple of a group nor of a leaf: the last ones are short)
SLAB = 300  # records per time slab of the box index here (the real one: 65,536)


def _ring(rng: random.Random, cx: float, cy: float) -> list[list[float]]:
    """A footprint like bench/generate.py's: a rectangle, maybe rotated, maybe with a cut
    corner, with collinear vertices along its edges."""
    hw, hh = rng.uniform(0.05, 2.0), rng.uniform(0.05, 1.2)
    corners = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
    if rng.random() < 0.3:
        cut = min(hw, hh) * 0.4
        corners = [(-hw, -hh), (hw - cut, -hh), (hw, -hh + cut), (hw, hh), (-hw, hh)]
    points: list[tuple[float, float]] = []
    for (ax, ay), (bx, by) in zip(corners, corners[1:] + corners[:1]):
        points.append((ax, ay))
        if rng.random() < 0.5:
            points.append(((ax + bx) / 2, (ay + by) / 2))
    angle = rng.uniform(0, math.pi) if rng.random() < 0.35 else 0.0
    c, s = math.cos(angle), math.sin(angle)
    ring = [[cx + x * c - y * s, cy + x * s + y * c] for x, y in points]
    return ring + [ring[0]]


def _geometry(rng: random.Random) -> dict[str, Any] | None:
    cx, cy = rng.uniform(-12, 32), rng.uniform(34, 72)
    kind = rng.random()
    if kind < 0.7:
        return {"type": "Polygon", "coordinates": [_ring(rng, cx, cy)]}
    if kind < 0.77:
        outer = [[cx - 1, cy - 1], [cx + 1, cy - 1], [cx + 1, cy + 1], [cx - 1, cy + 1], [cx - 1, cy - 1]]
        hole = [[cx - 0.6, cy - 0.6], [cx - 0.6, cy + 0.6], [cx + 0.6, cy + 0.6], [cx + 0.6, cy - 0.6], [cx - 0.6, cy - 0.6]]
        return {"type": "Polygon", "coordinates": [outer, hole]}
    if kind < 0.84:
        return {"type": "MultiPolygon", "coordinates": [[_ring(rng, cx, cy)], [_ring(rng, cx + 3, cy + 2)]]}
    if kind < 0.9:
        return {"type": "Point", "coordinates": [cx, cy]}
    if kind < 0.96:
        return {"type": "LineString", "coordinates": [[cx, cy], [cx + rng.uniform(-2, 2), cy + rng.uniform(-2, 2)]]}
    return None


def _times(rng: random.Random) -> dict[str, Any]:
    day = f"20{rng.randint(17, 24)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    at = f"{day}T{rng.choice(['00:00:00', '10:30:00'])}Z"  # (many ties)
    kind = rng.random()
    if kind < 0.75:
        return {"datetime": at}
    if kind < 0.85:
        return {"datetime": None, "start_datetime": at, "end_datetime": f"20{rng.randint(25, 26)}-06-01T00:00:00Z"}
    if kind < 0.92:
        return {"datetime": None, "start_datetime": at}  # open-ended
    return {"datetime": None}  # no time at all: in no window


def _write_catalog(folder: Path) -> list[str]:
    rng = random.Random("counted-boxes")
    roots = []
    for c, share in (("alpha", 0.7), ("beta", 0.3)):
        sub = folder / c
        sub.mkdir(parents=True)
        (sub / "collection.json").write_text(json.dumps({
            "type": "Collection", "id": c, "stac_version": "1.0.0", "description": c, "license": "CC-BY-4.0",
            "links": [], "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
        }))
        with (sub / "items.ndjson").open("w") as f:
            for i in range(round(ITEMS * share)):
                geometry = _geometry(rng)
                doc = {"type": "Feature", "stac_version": "1.0.0", "id": f"{c}-{i:05d}", "collection": c,
                       "geometry": geometry, "properties": _times(rng), "links": [], "assets": {}}
                if geometry is not None:
                    doc["bbox"] = list(shapely.from_geojson(json.dumps(geometry)).bounds)
                f.write(json.dumps(doc) + "\n")
        roots += [str(sub / "collection.json"), str(sub / "items.ndjson")]
    return roots


@pytest.fixture(scope="module")
def roots(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    return _write_catalog(tmp_path_factory.mktemp("counted-boxes"))


@pytest.fixture(scope="module")
def index(roots: list[str]) -> Index:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(table, "BoxIndex", functools.partial(spatial.BoxIndex, slab=SLAB))
        loaded, _ = load_catalogs(roots, LoadOptions(index_processes=1))
    assert loaded.size == ITEMS and len(np.unique(loaded._boxes.start[::SLAB])) > 5  # many slabs
    return loaded


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "COUNTED_MIN_RECORDS", 0)
    monkeypatch.setattr(table, "COUNTED_MIN_REACH", 0)
    monkeypatch.setattr(spatial, "GROUPS_IN_BACKGROUND", False)



def brute_force(index: Index, query: Any) -> np.ndarray:
    """Sorted positions of the items whose geometry intersects the query's (one shapely test
    per item) and whose interval meets its datetime window."""
    geom = query.intersects if query.intersects is not None else spatial.bbox_geometry(query.bbox)
    everything = np.arange(index.size)
    has = ~np.isnan(index.bounds[:, 0])
    keep = np.zeros(index.size, dtype=bool)
    keep[has] = [shapely.intersects(geom, g) for g in index.geometries(everything[has])]
    if query.datetime is not None:
        lo, hi = query.datetime
        keep &= (index.start <= hi) & (index.end >= lo)
    return np.flatnonzero(keep)



def _iso(rng: random.Random) -> str:
    return f"20{rng.randint(16, 25)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.choice(['00:00:00', '10:30:00'])}Z"


def random_query(rng: random.Random) -> dict[str, str]:
    x, y = rng.uniform(-20, 35), rng.uniform(30, 75)
    w, h = rng.choice([rng.uniform(0.01, 1), rng.uniform(1, 8), rng.uniform(8, 60)]), rng.uniform(0.01, 30)
    box = [x, y, x + w, y + h]
    params: dict[str, str] = {"limit": str(rng.choice([1, 3, 10, 50]))}
    if rng.random() < 0.25:
        params["intersects"] = json.dumps(shapely.geometry.mapping(shapely.box(*box)))
    else:
        params["bbox"] = ",".join(f"{v:.6f}" for v in box)
    kind = rng.random()
    if kind < 0.6:
        a, b = sorted([_iso(rng), _iso(rng)])
        params["datetime"] = f"{a}/{b}"
    elif kind < 0.7:
        params["datetime"] = rng.choice([f"../{_iso(rng)}", f"{_iso(rng)}/.."])
    elif kind < 0.8:
        params["datetime"] = _iso(rng)
    return params


def test_unsorted_finds_the_positions_nearest_any_place() -> None:
    rng = np.random.default_rng(5)
    for size in (0, 1, 9, 5_000):
        for density in (0.0, 0.01, 0.5, 1.0):
            positions = np.flatnonzero(rng.random(size) < density)
            found = Unsorted(size, rng.permutation(positions))
            assert found.count == len(positions) and found.positions().tolist() == positions.tolist()
            assert (found.first, found.last) == ((positions[0], positions[-1]) if len(positions) else (-1, -1))
            assert found.packed().positions().tolist() == positions.tolist()
            for start in {0, size, *rng.integers(0, size + 1, 10).tolist()}:
                need = int(rng.integers(1, 30))
                assert found.nearest(start, need).tolist() == positions[positions >= start][:need].tolist()
                assert found.nearest(start, need, backward=True).tolist() == positions[positions < start][-need:].tolist()


def test_unsorted_blocks_give_the_first_page_without_listing_them() -> None:
    """Matches held as runs of a permuted array (whole leaves and groups) with their least
    entry: the first page read from the few runs that can hold it is the sorted set's, and
    every other page too, forward and back (the runs listed then)."""
    rng = np.random.default_rng(11)
    for size in (1, 70, 3_000):
        for width in (1, 8, 64):
            held = rng.permutation(size)
            starts = np.arange(0, size, width)
            for share in (0.0, 0.05, 0.5, 1.0):
                chosen = starts[rng.random(len(starts)) < share]
                blocks = bitmap.Blocks(held, chosen, width, np.array([held[s : s + width].min() for s in chosen], dtype=np.int64))
                in_runs = blocks.members()
                rest = np.setdiff1d(np.arange(size), in_runs)
                loose = rng.permutation(rest[rng.random(len(rest)) < 0.2])
                truth = np.sort(np.concatenate((in_runs, loose)))
                for need in (1, 2, 11, 51):
                    found = Unsorted(size, loose.copy(), (blocks,))
                    assert found.count == len(truth)
                    assert found.first == (truth[0] if len(truth) else -1)
                    assert found.nearest(0, need).tolist() == truth[:need].tolist(), (size, width, share, need)
                    assert found._all is None or not len(chosen) or len(loose) + len(chosen) <= need  # (nothing listed)
                    start = int(truth[len(truth) // 2]) if len(truth) else 0
                    assert found.nearest(start, need).tolist() == truth[truth >= start][:need].tolist()
                    assert found.nearest(start, need, backward=True).tolist() == truth[truth < start][-need:].tolist()
                    assert found.positions().tolist() == truth.tolist() and found.last == (truth[-1] if len(truth) else -1)


def test_counted_box_searches_are_shapelys_per_item(index: Index, counted: None) -> None:
    rng = random.Random("counted-box-queries")
    checked = nonempty = decided_whole = one_by_one = 0
    for _ in range(160):
        params = random_query(rng)
        query = parsed(params)
        truth = brute_force(index, query)
        found = index.match_set(query)
        assert isinstance(found, Unsorted), params  # the counted path, not the listed one
        assert found.positions().tolist() == truth.tolist(), params
        assert index.match(query).tolist() == truth.tolist(), params  # (the path it replaces agrees)
        expected = walk_pages(lambda after, before, q=query, t=truth: Table.page(index, t, q, after, before), 40)
        assert walk_pages(lambda after, before, q=query: index.search(q, after, before=before), 40) == expected, params
        # Groups decided whole: some matches were never tested one by one.
        groups = index._groups.of(index._boxes)  # type: ignore[union-attr]
        q = shapely.box(*query.intersects.bounds) if query.intersects is not None else spatial.bbox_geometry(query.bbox)
        if isinstance(q, shapely.Polygon) and not q.is_empty:
            blocks, candidates, _ = index._boxes.decided(q.bounds, query.datetime, groups)  # type: ignore[arg-type]
            decided_whole += sum(b.count() for b in blocks) > 0
            one_by_one += len(candidates) > 0
        checked += 1
        nonempty += len(truth) > 0
    assert nonempty > 80 and decided_whole > 15 and one_by_one > 80


def test_boxes_it_does_not_count_keep_the_listed_path(index: Index, counted: None) -> None:
    """Across the antimeridian (two boxes), of no width, beyond the world, or with a filter:
    sorted positions as before, and still shapely's answer."""
    for params in ({"bbox": "170,40,-170,60"}, {"bbox": "5,40,5,60"}, {"bbox": "181,91,182,92"},
                   {"bbox": "0,40,20,60", "filter": "id <> 'x'"}, {"bbox": "0,40,20,60", "q": "alpha"}):
        query = parsed(params)
        found = index.match_set(query)
        assert isinstance(found, np.ndarray), params
        if "filter" not in params and "q" not in params:
            assert found.tolist() == brute_force(index, query).tolist(), params


def test_a_box_reaching_few_records_keeps_the_listed_path(index: Index, counted: None,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    query = parsed({"bbox": "0,40,3,43", "datetime": "2020-01-01T00:00:00Z/2020-03-01T00:00:00Z"})
    reach = index._boxes.reach(query.bbox, query.datetime)
    assert reach > 0
    monkeypatch.setattr(table, "COUNTED_MIN_REACH", reach + 1)
    assert isinstance(index.match_set(query), np.ndarray)
    monkeypatch.setattr(table, "COUNTED_MIN_REACH", reach)
    assert isinstance(index.match_set(query), Unsorted)


def test_the_groups_are_made_in_the_background_while_classify_answers(roots: list[str], counted: None,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spatial, "GROUPS_IN_BACKGROUND", True)
    fresh, _ = load_catalogs(roots, LoadOptions(index_processes=1))
    query = parsed({"bbox": "0,40,12,52", "datetime": "2019-01-01T00:00:00Z/2022-12-31T00:00:00Z"})
    first = fresh.match_set(query)
    assert isinstance(first, np.ndarray)  # not waiting for the groups
    groups = fresh._groups
    assert groups is not None
    deadline = time.monotonic() + 30
    while groups.made is None and time.monotonic() < deadline:
        time.sleep(0.01)
    later = fresh.match_set(query)
    assert isinstance(later, Unsorted) and later.positions().tolist() == first.tolist()
    assert pickle_roundtrip_drops_groups(fresh)


def pickle_roundtrip_drops_groups(index: Index) -> bool:
    """The groups never go into a snapshot: an empty holder does."""
    held = pickle.loads(pickle.dumps(index._groups))
    return held.made is None and not held.building


def test_the_cache_keeps_counted_results_and_pages_alike(index: Index, counted: None,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(match_cache, "BITMAP_MIN_RECORDS", 0)
    rng = random.Random("counted-cache")
    cache = MatchCache(1 << 22)
    kinds = set()
    for _ in range(40):
        query = parsed(random_query(rng))
        truth = brute_force(index, query)
        expected = walk_pages(lambda after, before, q=query, t=truth: Table.page(index, t, q, after, before), 40)
        cache.match(index, query)
        assert walk_pages(lambda after, before, q=query: index.search(q, after, cache, before), 40) == expected
        kept = cache.match(index, query)
        kinds.add(type(kept))
        assert isinstance(kept, Bitmap) == (len(truth) * 64 >= index.size)
    assert kinds == {Bitmap, Unsorted}


def _http_walk(base: str, method: str, query: dict[str, Any]) -> list[tuple[Any, ...]]:
    with httpx.Client(base_url=base, timeout=30) as client:
        return http_pages(client, method, query)


LOWERED = """\
import functools
import server.index.spatial as spatial
import server.index.table as table
table.COUNTED_MIN_RECORDS = 0
table.COUNTED_MIN_REACH = 0
spatial.GROUPS_IN_BACKGROUND = False
table.BoxIndex = functools.partial(spatial.BoxIndex, slab={slab})
_counted = table.Table._counted


def counted_and_told(self, query):
    found = _counted(self, query)
    if found is not None:
        with open({marker!r}, "a") as f:
            f.write("counted\\n")
    return found


table.Table._counted = counted_and_told
"""


def test_http_pages_of_counted_boxes_are_shapelys(roots: list[str], index: Index, tmp_path: Path) -> None:
    """A real server with the thresholds lowered (a sitecustomize on its path) against one as
    shipped (whose sample is under them: the listed path), GET and POST, every page forward
    and back, and numberMatched against shapely per item."""
    marker = tmp_path / "counted.log"
    (tmp_path / "sitecustomize.py").write_text(LOWERED.format(slab=SLAB, marker=str(marker)))
    rng = random.Random("counted-http")
    queries: list[dict[str, Any]] = []
    while len(queries) < 8:
        params = random_query(rng)
        params["limit"] = str(rng.choice([7, 40]))
        truth = brute_force(index, parsed(params))
        if 0 < len(truth) <= 400:
            queries.append(params)
    posts = []
    for params in queries:
        body: dict[str, Any] = {"limit": int(params["limit"])}
        if "bbox" in params:
            body["bbox"] = [float(v) for v in params["bbox"].split(",")]
        else:
            body["intersects"] = json.loads(params["intersects"])
        if "datetime" in params:
            body["datetime"] = params["datetime"]
        posts.append(body)
    env = {"PYTHONPATH": f"{tmp_path}:{Path(__file__).resolve().parents[1]}"}
    with run_server(roots, env=env) as lowered, run_server(roots) as shipped:
        for params, body in zip(queries, posts):
            truth = [index.ids[p] for p in brute_force(index, parsed(params))]  # in the default order
            for method, query in (("GET", params), ("POST", body)):
                got = _http_walk(lowered, method, query)
                assert got == _http_walk(shipped, method, query), (method, query)
                assert {matched for _, matched, _ in got} == {len(truth)}, (method, query)
                assert [i for ids, _, _ in got for i in ids] == truth, (method, query)
    assert marker.read_text().count("counted") >= len(queries)  # the lowered server took the counted path


# -- footprints decided by their corners (spatial.corner_legs, corners_decided) ------------------


def _rounded(geom: shapely.Geometry) -> shapely.Geometry:
    """As catalogs write them: coordinates to 6 decimals (collinear vertices off their line)."""
    return shapely.transform(geom, lambda c: np.round(c, 6))


def _odd_footprints(rng: random.Random) -> list[shapely.Geometry]:
    """Footprints of every shape the corner rules must get right: rotated and cut rectangles
    with collinear vertices (as bench/generate.py writes), triangles, convex hulls of random
    points, concave ones (L, U, a star, a comb), holes (one near a corner), multipolygons,
    slivers, and polygons of no width or height."""
    out: list[shapely.Geometry] = []
    for _ in range(60):
        cx, cy = rng.uniform(-20, 40), rng.uniform(-60, 70)
        ring = _ring(rng, cx, cy)
        out.append(shapely.Polygon(ring))
        angle = rng.choice([0.0, math.pi / 4, rng.uniform(0, math.pi)])
        w, h = rng.uniform(0.01, 3), rng.uniform(0.01, 3)
        out.append(shapely.affinity.rotate(shapely.box(cx - w, cy - h, cx + w, cy + h), angle, use_radians=True))
        out.append(shapely.Polygon([(cx, cy), (cx + w, cy + rng.uniform(-h, h)), (cx + rng.uniform(-w, w), cy + h)]))
        points = [(cx + rng.uniform(-w, w), cy + rng.uniform(-h, h)) for _ in range(rng.randint(3, 12))]
        out.append(shapely.MultiPoint(points).convex_hull)
    for _ in range(25):
        x, y, s = rng.uniform(-20, 40), rng.uniform(-60, 70), rng.uniform(0.05, 2)
        out.append(shapely.Polygon([(x, y), (x + 2 * s, y), (x + 2 * s, y + s), (x + s, y + s),
                                    (x + s, y + 2 * s), (x, y + 2 * s)]))  # L
        out.append(shapely.Polygon([(x, y), (x + 3 * s, y), (x + 3 * s, y + 3 * s), (x + 2 * s, y + 3 * s), (x + 2 * s, y + s),
                                    (x + s, y + s), (x + s, y + 3 * s), (x, y + 3 * s)]))  # U: its centre in the notch
        radii = [(1.0 if k % 2 == 0 else 0.3, k * math.pi / 5) for k in range(10)]
        star = [(x + s * (1 + r * math.cos(a)), y + s * (1 + r * math.sin(a))) for r, a in radii]
        out.append(shapely.Polygon(star))
        out.append(shapely.Polygon([(x, y), (x + 4 * s, y), (x + 4 * s, y + s), (x + 3 * s, y + 0.2 * s), (x + 2 * s, y + s),
                                    (x + s, y + 0.2 * s), (x, y + s)]))  # comb
        out.append(shapely.box(x, y, x + s, y + s).difference(shapely.box(x + 0.3 * s, y + 0.3 * s, x + 0.7 * s, y + 0.7 * s)))
        out.append(shapely.box(x, y, x + s, y + s).difference(shapely.box(x + 0.01 * s, y + 0.6 * s, x + 0.4 * s, y + 0.99 * s)))
        out.append(shapely.MultiPolygon([shapely.box(x, y, x + s, y + s),
                                         shapely.box(x + 2 * s, y + 2 * s, x + 3 * s, y + 3 * s)]))
        out.append(shapely.Polygon([(x, y), (x + 5 * s, y + 5 * s), (x + 5 * s + 1e-4, y + 5 * s), (x + 1e-4, y)]))  # sliver
        out.append(shapely.Polygon([(x, y), (x, y + s), (x, y + 2 * s), (x, y)]))  # no width
        out.append(shapely.Polygon([(x, y), (x + s, y), (x + 2 * s, y), (x, y)]))  # no height
    return [_rounded(g) for g in out]


def _boxes_around(rng: random.Random, geom: shapely.Geometry) -> list[tuple[float, float, float, float]]:
    """Query boxes meeting the footprint's box, most holding one of its box's corners or
    none: random ones, and ones whose corner or edge is a vertex of it, a point on an edge of
    it (rounded: on either side), or where the inner octagon's or an outer triangle's edge
    would be."""
    minx, miny, maxx, maxy = geom.bounds
    w, h = maxx - minx, maxy - miny
    coords = shapely.get_coordinates(geom)
    out = []
    for _ in range(30):
        px, py = rng.uniform(minx - 0.1 * w, maxx + 0.1 * w), rng.uniform(miny - 0.1 * h, maxy + 0.1 * h)
        if rng.random() < 0.3:
            px, py = coords[rng.randrange(len(coords))]
        elif rng.random() < 0.3:
            a, b = coords[rng.randrange(len(coords))], coords[rng.randrange(len(coords))]
            f = rng.random()
            px, py = a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])
        far = rng.uniform(0.5, 3) * max(w, h, 1e-6)
        dx, dy = rng.choice([-1, 1]), rng.choice([-1, 1])
        x0, x1 = sorted((px, px + dx * far))
        y0, y1 = sorted((py, py + dy * far))
        if rng.random() < 0.2:  # a thin box across the footprint's box
            y0, y1 = py, py + rng.choice([0.0, 1e-7, 0.01 * h])
            x0, x1 = minx - w, maxx + w
        out.append((float(x0), float(y0), float(x1), float(y1)))
    return out


def test_corner_rules_agree_with_shapely_on_odd_footprints() -> None:
    rng = random.Random("corner-footprints")
    geoms = _odd_footprints(rng)
    blobs = [shapely.to_wkb(g, byte_order=1) for g in geoms]
    ends = np.cumsum([len(b) for b in blobs])
    starts = ends - [len(b) for b in blobs]
    bounds = shapely.bounds(np.array(geoms))
    legs = spatial.corner_legs(memoryview(b"".join(blobs)), starts, ends, bounds)
    kinds = {"hit": 0, "miss": 0, "open": 0}
    for geom, box, row in zip(geoms, bounds, legs):
        if isinstance(geom, shapely.Polygon) and (len(geom.interiors) or box[0] == box[2] or box[1] == box[3]):
            assert (row[:8] == spatial.CORNER_UNITS).all()  # no inner octagon: holes, no width or height
        if not isinstance(geom, shapely.Polygon):
            assert (row == spatial.NO_INNER).all()  # (only Polygons are read)
        for q in _boxes_around(rng, geom):
            if not (box[0] <= q[2] and box[2] >= q[0] and box[1] <= q[3] and box[3] >= q[1]):
                continue
            hit, miss = spatial.corners_decided(box[None, :], row[None, :], q)
            truth = shapely.intersects(shapely.box(*q), geom)
            assert not (hit[0] and not truth), (geom.wkt, q)
            assert not (miss[0] and truth), (geom.wkt, q)
            kinds["hit" if hit[0] else "miss" if miss[0] else "open"] += 1
    assert kinds["hit"] > 2000 and kinds["miss"] > 200, kinds


def test_a_ring_around_no_octagon_gives_none() -> None:
    """A U whose box's centre lies in its notch, and a polygon whose ring dips into where its
    octagon would be: no inner octagon (a query box in the notch would otherwise be a hit)."""
    u_shape = shapely.Polygon([(0, 0), (3, 0), (3, 3), (2, 3), (2, 1), (1, 1), (1, 3), (0, 3)])
    dipped = shapely.Polygon([(0, 0), (4, 0), (4, 4), (2.5, 4), (2, 1.5), (1.5, 4), (0, 4)])
    blobs = [shapely.to_wkb(g, byte_order=1) for g in (u_shape, dipped)]
    ends = np.cumsum([len(b) for b in blobs])
    legs = spatial.corner_legs(memoryview(b"".join(blobs)), ends - [len(b) for b in blobs], ends,
                               shapely.bounds(np.array([u_shape, dipped])))
    assert (legs[:, :8] == spatial.CORNER_UNITS).all()
    for geom, row, q in ((u_shape, legs[0], (1.2, 1.5, 1.8, 5.0)), (dipped, legs[1], (1.9, 2.5, 2.1, 5.0))):
        hit, miss = spatial.corners_decided(np.array([geom.bounds]), row[None, :], q)
        assert not hit[0] and not shapely.intersects(geom, shapely.box(*q))


def test_corner_rules_decide_rotated_footprints_at_a_query_corner() -> None:
    """A footprint rotated 30 degrees, and a query box with its corner just inside, on and
    just outside each edge near each corner of the footprint's box: decided, and right."""
    geom = shapely.affinity.rotate(shapely.box(0, 0, 4, 2), 30, origin=(0, 0))
    blob = shapely.to_wkb(geom, byte_order=1)
    row = spatial.corner_legs(memoryview(blob), np.array([0]), np.array([len(blob)]), np.array([geom.bounds]))[0]
    assert (row[:8] < spatial.CORNER_UNITS).any() and (row[8:] > 0).any()
    minx, miny, maxx, maxy = geom.bounds
    ring = shapely.get_coordinates(geom.exterior)
    decided = 0
    for (ax, ay), (bx, by) in zip(ring[:-1], ring[1:]):
        mx, my = (ax + bx) / 2, (ay + by) / 2
        nx, ny = by - ay, ax - bx  # (outward for a counter-clockwise ring)
        norm = math.hypot(nx, ny)
        for off in (-0.05, -1e-6, 0.0, 1e-6, 0.05):
            px, py = mx + off * nx / norm, my + off * ny / norm
            # The query box reaches from the point away from the footprint's centre.
            x0, x1 = sorted((px, px + (5 if nx > 0 else -5)))
            y0, y1 = sorted((py, py + (5 if ny > 0 else -5)))
            q = (x0, y0, x1, y1)
            hit, miss = spatial.corners_decided(np.array([geom.bounds]), row[None, :], q)
            truth = shapely.intersects(geom, shapely.box(*q))
            assert truth == (off <= 0) or abs(off) < 1e-5
            assert not (hit[0] and not truth) and not (miss[0] and truth), (off, q)
            decided += abs(off) > 0.01 and (hit[0] or miss[0])
    assert decided == 8  # every edge, 0.05 inside and outside
