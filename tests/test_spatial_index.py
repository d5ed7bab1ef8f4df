"""The box index (time slabs, leaves, nodes) and the vectorized refinement of box queries,
against brute force at sizes the sample-catalog oracles never reach (thousands of records,
many slabs, leaves wholly inside a query, records touching its edges)."""

from __future__ import annotations

import random
import struct

import numpy as np
import pytest
import shapely

from server.index.builder import IndexBuilder
from server.index.spatial import (
    UNKNOWN,
    BoxIndex,
    extreme_fractions,
    wkb_vertex_in_boxes,
)
from server.query.datetime import MAX_TIME, MIN_TIME
from server.query.model import SearchQuery

DAY = 86_400_000_000  # microseconds


def random_records(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Boxes on a coarse grid (so that many touch each other and the queries exactly), points
    among them, and times: instants, ranges, open ranges and no time at all."""
    x0 = rng.integers(-40, 40, n) / 2.0
    y0 = rng.integers(-30, 30, n) / 2.0
    w = rng.integers(0, 6, n) / 2.0
    h = rng.integers(0, 6, n) / 2.0
    bounds = np.column_stack([x0, y0, x0 + w, y0 + h]).astype(np.float64)
    start = rng.integers(0, 1000, n).astype(np.int64) * DAY
    end = start + np.where(rng.random(n) < 0.2, rng.integers(0, 60, n) * DAY, 0)
    odd = rng.random(n)
    start[odd < 0.02] = MIN_TIME
    end[(odd >= 0.02) & (odd < 0.04)] = MAX_TIME
    none = (odd >= 0.04) & (odd < 0.06)
    start[none], end[none] = MAX_TIME, MIN_TIME
    return bounds, start, end


def random_query_box(rng: random.Random) -> tuple[float, float, float, float]:
    x = rng.randint(-44, 40) / 2.0
    y = rng.randint(-34, 30) / 2.0
    return (x, y, x + rng.randint(0, 16) / 2.0, y + rng.randint(0, 16) / 2.0)


def random_window(rng: random.Random) -> tuple[int, int]:
    a, b = sorted((rng.randint(-10, 1010) * DAY, rng.randint(-10, 1010) * DAY))
    return rng.choice([(a, b), (a, a), (MIN_TIME, b), (a, MAX_TIME), (MIN_TIME, MAX_TIME)])


@pytest.mark.parametrize("n,slab", [(0, 64), (1, 64), (63, 64), (5_000, 512), (20_000, 4_096), (20_000, 1 << 20)])
def test_box_index_matches_brute_force(n: int, slab: int) -> None:
    gen = np.random.default_rng(n + slab)
    bounds, start, end = random_records(gen, n)
    positions = np.sort(gen.choice(10 * n + 1, n, replace=False)).astype(np.int64)
    index = BoxIndex(positions, bounds, start, end, slab=slab)
    rng = random.Random(f"box-index/{n}/{slab}")
    for _ in range(60):
        q = random_query_box(rng)
        in_box = (bounds[:, 0] <= q[2]) & (bounds[:, 2] >= q[0]) & (bounds[:, 1] <= q[3]) & (bounds[:, 3] >= q[1])
        got = index.query(q)
        assert len(got) == len(np.unique(got))
        assert np.array_equal(np.sort(got), positions[in_box])
        lo, hi = random_window(rng)
        got = index.query(q, (lo, hi))
        assert len(got) == len(np.unique(got))
        assert np.array_equal(np.sort(got), positions[in_box & (start <= hi) & (end >= lo)])


def random_polygons(rng: random.Random, n: int) -> list[shapely.Geometry]:
    """Star-shaped polygons, some snapped to a grid (vertices on query edges, shared sides),
    some multi-part, a few points and lines."""
    out = []
    for _ in range(n):
        cx, cy = rng.uniform(-20, 20), rng.uniform(-20, 20)
        k = rng.randint(3, 10)
        ring = [(cx + rng.uniform(0.2, 3) * np.cos(a), cy + rng.uniform(0.2, 3) * np.sin(a))
                for a in sorted(rng.uniform(0, 2 * np.pi) for _ in range(k))]
        if rng.random() < 0.3:
            ring = [(round(x), round(y)) for x, y in ring]
        geom = shapely.Polygon(ring)
        kind = rng.random()
        if kind < 0.1:
            geom = shapely.MultiPolygon([shapely.box(cx, cy, cx + 1, cy + 1), shapely.box(cx + 3, cy + 2, cx + 4, cy + 5)])
        elif kind < 0.15:
            geom = shapely.Point(round(cx), round(cy))
        elif kind < 0.2:
            geom = shapely.LineString(ring[:2])
        out.append(shapely.make_valid(geom))
    return out


def test_classify_matches_query_and_sure_means_intersects() -> None:
    rng = random.Random("classify")
    geoms = np.array(random_polygons(rng, 4_000), dtype=object)
    bounds = shapely.bounds(geoms)
    fractions = extreme_fractions(geoms, bounds)
    assert (fractions != UNKNOWN).all()
    n = len(geoms)
    start = np.array([rng.randint(0, 100) for _ in range(n)], dtype=np.int64)
    end = start + 3
    positions = np.arange(n, dtype=np.int64) * 3
    index = BoxIndex(positions, bounds, start, end, fractions, slab=512)
    decided = 0
    for _ in range(80):
        q = tuple(float(v) for v in random_query_box(rng))
        window = random_window(rng) if rng.random() < 0.5 else None
        found, sure = index.classify(q, window)
        assert np.array_equal(np.sort(found), np.sort(index.query(q, window)))
        rows = found // 3
        exact = shapely.intersects(geoms[rows], shapely.box(*q))
        assert not (sure & ~exact).any(), "sure must mean the geometry intersects the box"
        inside = (bounds[rows, 0] >= q[0]) & (bounds[rows, 1] >= q[1]) & (bounds[rows, 2] <= q[2]) & (bounds[rows, 3] <= q[3])
        assert not (inside & ~sure).any()
        decided += int((sure & ~inside).sum())
    assert decided > 100  # the extreme vertices do decide records straddling an edge


def test_extreme_fractions_locate_a_vertex_on_each_side() -> None:
    geoms = np.array([
        shapely.Polygon([(0, 0), (10, 2), (4, 10), (0, 0)]),
        shapely.Point(3, 4),
        None,
        shapely.box(0, 0, 1, 1),
    ], dtype=object)
    bounds = shapely.bounds(geoms)
    got = extreme_fractions(geoms, bounds)
    assert got[0].tolist() == [0, 51, 0, 102]  # left (0, 0), right (10, 2), bottom (0, 0), top (4, 10)
    assert got[1].tolist() == [0, 0, 0, 0]
    assert got[2].tolist() == [UNKNOWN] * 4
    wrong = bounds.copy()
    wrong[3] = [0.5, 0, 1, 1]  # bounds that are not the geometry's: no vertex on the left side
    assert extreme_fractions(geoms, wrong)[3, 0] == UNKNOWN


def test_slabs_split_by_time_only_where_time_differs() -> None:
    gen = np.random.default_rng(7)
    bounds, _, _ = random_records(gen, 10_000)
    positions = np.arange(10_000, dtype=np.int64)
    one_date = np.full(10_000, 5 * DAY, dtype=np.int64)
    flat = BoxIndex(positions, bounds, one_date, one_date, slab=1 << 30)
    same = BoxIndex(positions, bounds, one_date, one_date, slab=512)
    assert np.array_equal(same.positions, flat.positions)  # one slab: the same spatial leaves
    two_dates = np.where(np.arange(10_000) % 2 == 0, DAY, 2 * DAY)
    split = BoxIndex(positions, bounds, two_dates, two_dates, slab=512)
    assert (np.diff(split.start) >= 0).all()  # two slabs, one per date
    assert not np.array_equal(split.positions, flat.positions)


def _wkb(geom: shapely.Geometry, **kwargs) -> bytes:
    return shapely.to_wkb(geom, **kwargs)


def vertex_answers(blobs: list[bytes], boxes: list[tuple[float, float, float, float]]) -> np.ndarray:
    pad = b"\x07" * 5  # blobs at odd offsets, as in the real buffer
    data, starts, ends = bytearray(pad), [], []
    for blob in blobs:
        starts.append(len(data))
        data += blob
        ends.append(len(data))
        data += pad[: len(data) % 3]
    return wkb_vertex_in_boxes(memoryview(bytes(data)), np.array(starts, np.int64), np.array(ends, np.int64), boxes)


def test_vertex_test_is_never_wrong_and_usually_decides() -> None:
    rng = random.Random("vertex")
    for _ in range(30):
        geoms, blobs = [], []
        for _ in range(200):
            cx, cy = rng.uniform(-20, 20), rng.uniform(-20, 20)
            k = rng.randint(3, 12)
            ring = [(cx + rng.uniform(0, 3) * np.cos(a), cy + rng.uniform(0, 3) * np.sin(a))
                    for a in sorted(rng.uniform(0, 2 * np.pi) for _ in range(k))]
            if rng.random() < 0.3:  # on the grid, to touch query edges exactly
                ring = [(round(x), round(y)) for x, y in ring]
            geom = shapely.Polygon(ring)
            geoms.append(geom)
            blobs.append(_wkb(geom))
        boxes = [tuple(float(v) for v in random_query_box(rng)) for _ in range(rng.choice([1, 2]))]
        got = vertex_answers(blobs, boxes)
        exact = np.zeros(len(geoms), dtype=bool)
        for b in boxes:  # as the server's query: a box of no width is still a (degenerate) box
            exact |= shapely.intersects(np.array(geoms), shapely.box(*b))
        assert not (got & ~exact).any(), "a vertex in the box must mean the footprint intersects it"
        coords_in = np.array([
            any(b[0] <= x <= b[2] and b[1] <= y <= b[3] for x, y in shapely.get_coordinates(g.exterior) for b in boxes)
            for g in geoms
        ])
        assert np.array_equal(got, coords_in)


def test_vertex_test_declines_what_it_does_not_read() -> None:
    box = [(0.0, 0.0, 10.0, 10.0)]
    inside = shapely.box(1, 1, 2, 2)
    with_hole = shapely.Polygon([(-5, -5), (15, -5), (15, 15), (-5, 15)], [[(1, 1), (2, 1), (2, 2), (1, 2)]])
    blobs = [
        _wkb(inside),  # 0: yes
        _wkb(inside, byte_order=0),  # 1: big-endian: not read
        _wkb(shapely.Polygon([(1, 1, 5), (2, 1, 5), (2, 2, 5), (1, 1, 5)])),  # 2: 3D: not read
        _wkb(shapely.MultiPolygon([inside])),  # 3: not read
        _wkb(shapely.Point(1, 1)),  # 4: not read
        _wkb(with_hole),  # 5: only the hole's vertices are inside: not found (exact test decides)
        b"",  # 6: no geometry
        _wkb(inside)[:20],  # 7: truncated
        _wkb(shapely.box(10, 10, 12, 12)),  # 8: a corner on the box's corner: yes
        _wkb(shapely.box(10.000000000000002, 0, 12, 12)),  # 9: just outside: no
    ]
    assert vertex_answers(blobs, box).tolist() == [True, False, False, False, False, False, False, False, True, False]
    assert vertex_answers([], box).tolist() == []
    assert struct.unpack("<I", _wkb(inside)[1:5])[0] == 3


def scene(rng: random.Random, i: int) -> dict:
    cx, cy = rng.uniform(-10, 30), rng.uniform(36, 70)
    w, h = rng.choice([0.2, 0.5, 1.0, 2.0]), rng.choice([0.2, 0.5, 1.0])
    ring = [[cx, cy], [cx + w, cy + 0.1], [cx + w, cy + h], [cx + 0.3 * w, cy + h], [cx, cy + 0.5 * h], [cx, cy]]
    if rng.random() < 0.05:
        geometry = None
    elif rng.random() < 0.02:  # across the globe: met by both halves of an antimeridian bbox
        geometry = {"type": "Polygon", "coordinates": [[[-179, cy], [179, cy], [179, cy + h], [-179, cy], [-179, cy]]]}
    elif rng.random() < 0.1:
        islet = [[cx + 3, cy], [cx + 3.5, cy], [cx + 3, cy + 0.5], [cx + 3, cy]]
        geometry = {"type": "MultiPolygon", "coordinates": [[ring], [islet]]}
    else:
        geometry = {"type": "Polygon", "coordinates": [ring]}
    day = rng.randint(0, 2000)
    props = {"datetime": f"{2015 + day // 365:04d}-{1 + day % 365 // 31:02d}-{1 + day % 28:02d}T00:00:00Z"}
    if rng.random() < 0.1:
        props = {"datetime": None, "start_datetime": props["datetime"], "end_datetime": "2030-01-01T00:00:00Z"}
    return {"type": "Feature", "stac_version": "1.0.0", "id": f"s{i}", "collection": "c", "geometry": geometry,
            "properties": props, "links": [], "assets": {}}


def test_bbox_datetime_search_matches_shapely_on_many_items(monkeypatch: pytest.MonkeyPatch) -> None:
    """Many slabs (a small SLAB), queries both inside one slab and across all of them."""
    from tests.oracles.search import to_micros

    monkeypatch.setattr(BoxIndex.__init__, "__kwdefaults__", {"slab": 256})
    rng = random.Random("many")
    builder = IndexBuilder()
    items = [scene(rng, i) for i in range(6_000)]
    for item in items:
        builder.add_item(dict(item))
    index = builder.build()
    from_builder = index._boxes.extremes.copy()
    index._init_spatial()  # as without the builder's: read back from the WKB
    assert np.array_equal(index._boxes.extremes, from_builder)
    geoms = np.array([None if it["geometry"] is None else shapely.geometry.shape(it["geometry"]) for it in items])
    times = []
    for it in items:
        p = it["properties"]
        times.append((to_micros(p["start_datetime"]), to_micros(p["end_datetime"])) if p["datetime"] is None
                     else (to_micros(p["datetime"]),) * 2)
    start, end = np.array(times).T
    for k in range(40):
        x, y = rng.uniform(-12, 30), rng.uniform(34, 70)
        bbox = (x, y, x + rng.uniform(0, 8), y + rng.uniform(0, 6))
        if k % 5 == 0:  # over the antimeridian: two boxes, from x eastwards and westwards to x - 2
            bbox = (x, bbox[1], x - 2, bbox[3])
        a, b = sorted((rng.randint(0, 2100), rng.randint(0, 2100)))
        lo, hi = to_micros("2015-01-01T00:00:00Z") + a * DAY, to_micros("2015-01-01T00:00:00Z") + b * DAY
        window = (lo, hi) if k % 4 else None
        query = SearchQuery(bbox=bbox, datetime=window, limit=10)
        got = sorted(index.ids[p] for p in index.match(query))
        boxes = [shapely.box(*bbox)] if bbox[0] <= bbox[2] else [
            shapely.box(bbox[0], bbox[1], 180, bbox[3]), shapely.box(-180, bbox[1], bbox[2], bbox[3])]
        hit = np.array([g is not None and any(g.intersects(b) for b in boxes) for g in geoms])
        if window:
            hit &= (start <= hi) & (end >= lo)
        assert got == sorted(items[i]["id"] for i in np.flatnonzero(hit)), (bbox, window)


def test_flagging_and_sorting_put_the_same_matches_in_order() -> None:
    """_classified_candidates orders the box index's matches by flagging (dense) or sorting
    (sparse): the same positions, each once, sure if any part says so."""
    from server.index.table import _flagged_in_order, _sorted_in_order

    rng = np.random.default_rng(3)
    for _ in range(200):
        size = int(rng.integers(1, 3000))
        found = []
        for _ in range(int(rng.integers(1, 4))):  # parts of a query, possibly overlapping
            positions = rng.choice(size, size=int(rng.integers(0, size + 1)), replace=False)
            found.append((positions.astype(np.int64), rng.random(len(positions)) < 0.5))
        flagged, sorted_ = _flagged_in_order(found, size), _sorted_in_order(found, size)
        assert np.array_equal(flagged[0], sorted_[0]) and np.array_equal(flagged[1], sorted_[1])
        every = np.unique(np.concatenate([p for p, _ in found]))
        assert np.array_equal(flagged[0], every)
        sure = {int(p) for positions, s in found for p in positions[s]}
        assert {int(p) for p in flagged[0][flagged[1]]} == sure
