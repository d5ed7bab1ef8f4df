"""Polygon `intersects` searches decided without decoding geometries (spatial.CellGrid, the
box index's classify_slots, Table._refine) against brute-force shapely.intersects: query
polygons with holes and several parts, records touching them only on their boundary, lying in
their holes, points and lines, on a grid so that edges and vertices coincide exactly."""

from __future__ import annotations

import random
import time

import numpy as np
import pytest
import shapely

from server.errors import QueryTooExpensive
from server.index import table as table_module
from server.index.builder import IndexBuilder
from server.index.spatial import UNKNOWN, BoxIndex, CellGrid, extreme_fractions
from server.query.model import SearchQuery


def query_polygon(rng: random.Random) -> shapely.Geometry:
    """A star-shaped polygon, often on the half-degree grid, often with a hole or two, or a
    multipolygon of two such (apart, or touching at a point)."""
    def star(cx: float, cy: float, r: float) -> shapely.Geometry:
        k = rng.randint(3, 12)
        ring = [(cx + rng.uniform(0.3, 1) * r * np.cos(a), cy + rng.uniform(0.3, 1) * r * np.sin(a))
                for a in sorted(rng.uniform(0, 2 * np.pi) for _ in range(k))]
        if rng.random() < 0.5:
            ring = [(round(2 * x) / 2, round(2 * y) / 2) for x, y in ring]
        geom = shapely.make_valid(shapely.Polygon(ring))
        if rng.random() < 0.4:  # holes: a box (on the grid) and a rough circle
            hole = shapely.box(round(cx) - 1, round(cy) - 1, round(cx) + 0.5, round(cy) + 1)
            geom = geom.difference(hole)
            if rng.random() < 0.5:
                geom = geom.difference(shapely.Point(cx + r / 2, cy).buffer(r / 5, 4))
        return geom

    cx, cy = rng.uniform(-5, 5), rng.uniform(-5, 5)
    geom = star(cx, cy, rng.uniform(2, 8))
    if rng.random() < 0.25:
        other = star(cx + 12, cy + rng.uniform(-3, 3), rng.uniform(1, 4))
        geom = shapely.union(geom, other)
    polygons = [g for g in shapely.get_parts(geom) if isinstance(g, shapely.Polygon) and not g.is_empty]
    geom = shapely.MultiPolygon(polygons) if len(polygons) > 1 else polygons[0]
    assert geom.is_valid
    return geom


def records_near(rng: random.Random, geom: shapely.Geometry, n: int) -> list[shapely.Geometry]:
    """Records around ``geom``: small polygons (some with holes, on the grid or not), boxes,
    points and lines, and pieces built to touch it only along its boundary or at a vertex,
    or to lie in its holes."""
    x0, y0, x1, y1 = geom.bounds
    coords = shapely.get_coordinates(geom)
    out: list[shapely.Geometry] = []
    for _ in range(n):
        cx, cy = rng.uniform(x0 - 2, x1 + 2), rng.uniform(y0 - 2, y1 + 2)
        kind = rng.random()
        if kind < 0.35:
            k = rng.randint(3, 9)
            ring = [(cx + rng.uniform(0.05, 1.5) * np.cos(a), cy + rng.uniform(0.05, 1.5) * np.sin(a))
                    for a in sorted(rng.uniform(0, 2 * np.pi) for _ in range(k))]
            if rng.random() < 0.4:
                ring = [(round(2 * x) / 2, round(2 * y) / 2) for x, y in ring]
            g = shapely.make_valid(shapely.Polygon(ring))
        elif kind < 0.45:
            a, b = round(2 * cx) / 2, round(2 * cy) / 2
            g = shapely.box(a, b, a + rng.randint(0, 4) / 2, b + rng.randint(0, 4) / 2)
        elif kind < 0.55:  # a polygon with a hole that the query may lie in
            g = shapely.Polygon(shapely.box(cx - 3, cy - 3, cx + 3, cy + 3).exterior.coords,
                                [shapely.box(cx - 2, cy - 2, cx + 2, cy + 2).exterior.coords])
        elif kind < 0.62:
            g = shapely.Point(round(2 * cx) / 2, round(2 * cy) / 2) if rng.random() < 0.5 else shapely.Point(cx, cy)
        elif kind < 0.7:
            g = shapely.LineString([(cx, cy), (cx + rng.uniform(-2, 2), cy + rng.uniform(-2, 2))])
        elif kind < 0.8:  # a triangle on one of the query's vertices, pointing away or not
            vx, vy = coords[rng.randrange(len(coords))]
            d = rng.choice([-1, 1]) * rng.uniform(0.1, 1)
            g = shapely.Polygon([(vx, vy), (vx + d, vy + rng.uniform(0.1, 1)), (vx + d, vy - rng.uniform(0.1, 1))])
        elif kind < 0.9:  # the query's boundary, offset a little or not at all: touching it only
            edge = shapely.LineString(coords[(i := rng.randrange(len(coords) - 1)) : i + 2])
            g = shapely.make_valid(edge.buffer(rng.choice([0.0, 1e-9, 0.3]), single_sided=True, cap_style="flat"))
            if g.is_empty:
                g = edge
        else:  # a piece of the query itself, or of its envelope less the query
            piece = shapely.box(cx - 1, cy - 1, cx + 1, cy + 1)
            g = shapely.make_valid(piece.intersection(geom) if rng.random() < 0.5 else piece.difference(geom))
        if not g.is_empty:
            out.append(g)
    return out


# -- the grid itself ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(12))
def test_cell_grid_agrees_with_geos(seed: int) -> None:
    rng = random.Random(f"grid/{seed}")
    geom = query_polygon(rng)
    grid = CellGrid(geom, rng.choice([1, 16, 300, 4096, 16_384]))
    shapely.prepare(geom)
    ny, nx = len(grid.ye) - 1, len(grid.xe) - 1
    rows, cols = (a.ravel() for a in np.indices((ny, nx)))
    cells = shapely.box(grid.xe[cols], grid.ye[rows], grid.xe[cols + 1], grid.ye[rows + 1])
    status = grid.status
    assert not (status == 2)[~shapely.covers(geom, cells)].any(), "a covered cell must be covered"
    assert not (status == 0)[shapely.intersects(geom, cells)].any(), "a disjoint cell must be disjoint"
    if nx * ny >= 300:
        assert (status != 1).mean() > 0.5  # most cells are decided

    # Boxes: random, on the grid (touching edges and vertices exactly), degenerate (points, lines).
    b = np.array([_random_box(rng, geom.bounds) for _ in range(3_000)])
    inside, outside = grid.boxes(b)
    boxes = shapely.box(b[:, 0], b[:, 1], b[:, 2], b[:, 3])
    assert not (inside & ~shapely.covers(geom, boxes)).any()
    assert not (outside & shapely.intersects(geom, boxes)).any()
    assert not (inside & outside).any()
    assert outside.any()
    if nx * ny >= 300:
        assert inside.any()

    # Points: the exact answer, always.
    x, y = _points_near(rng, geom, 5_000)
    assert np.array_equal(grid.points(x, y), shapely.intersects_xy(geom, x, y))


def _random_box(rng: random.Random, bounds: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = bounds
    x, y = rng.uniform(x0 - 1, x1 + 1), rng.uniform(y0 - 1, y1 + 1)
    if rng.random() < 0.5:
        x, y = round(2 * x) / 2, round(2 * y) / 2
    w, h = rng.choice([0.0, 0.5, rng.uniform(0, 3)]), rng.choice([0.0, 0.5, rng.uniform(0, 3)])
    return (x, y, x + w, y + h)


def _points_near(rng: random.Random, geom: shapely.Geometry, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Points around ``geom``, its vertices, points on its edges (as near as floats get) and
    on the half-degree grid."""
    x0, y0, x1, y1 = geom.bounds
    gen = np.random.default_rng(rng.randrange(1 << 30))
    x, y = gen.uniform(x0 - 1, x1 + 1, n), gen.uniform(y0 - 1, y1 + 1, n)
    grid = gen.random(n) < 0.3
    x[grid], y[grid] = np.round(2 * x[grid]) / 2, np.round(2 * y[grid]) / 2
    coords = shapely.get_coordinates(geom)
    on_edge = shapely.get_coordinates(shapely.line_interpolate_point(geom.boundary, gen.random(200), normalized=True))
    return np.concatenate([x, coords[:, 0], on_edge[:, 0], [np.nan]]), np.concatenate([y, coords[:, 1], on_edge[:, 1], [0.0]])


@pytest.mark.parametrize(
    "geom",
    [
        shapely.Polygon([(179.9999, 10), (179.99991, 10.00002), (179.99990, 10.00004)]),  # tiny, far out
        shapely.Polygon([(0, 0), (1e-9, 40), (2e-9, 0)]),  # steep edges, almost vertical
        shapely.Polygon([(0, 0), (40, 1e-9), (0, 2e-9)]),  # almost horizontal
        shapely.Polygon([(-10, -10), (10, -10), (10, 10), (-10, 10)], [[(-5, -5), (5, -5), (5, 5), (-5, 5)]]),
        shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(1, 1, 2, 2)]),  # parts touching at a point
    ],
)
def test_cell_grid_of_awkward_polygons(geom: shapely.Geometry) -> None:
    grid = CellGrid(geom, 4096)
    shapely.prepare(geom)
    ny, nx = len(grid.ye) - 1, len(grid.xe) - 1
    rows, cols = (a.ravel() for a in np.indices((ny, nx)))
    cells = shapely.box(grid.xe[cols], grid.ye[rows], grid.xe[cols + 1], grid.ye[rows + 1])
    assert not (grid.status == 2)[~shapely.covers(geom, cells)].any()
    assert not (grid.status == 0)[shapely.intersects(geom, cells)].any()
    rng = random.Random(geom.wkt)
    x, y = _points_near(rng, geom, 3_000)
    assert np.array_equal(grid.points(x, y), shapely.intersects_xy(geom, x, y))


def test_cell_grid_of_a_sliver_decides_nothing_wrongly() -> None:
    sliver = shapely.Polygon([(10, 10), (10 + 1e-13, 10), (10 + 1e-13, 11), (10, 10)])
    grid = CellGrid(sliver, 4096)
    x, y = np.array([10.0, 10 + 5e-14, 11.0]), np.array([10.0, 10.5, 10.0])
    assert np.array_equal(grid.points(x, y), shapely.intersects_xy(sliver, x, y))
    inside, outside = grid.boxes(np.array([[9.0, 9.0, 10.0, 10.0], [10.0, 10.2, 10.0, 10.3], [11.0, 9.0, 12.0, 12.0]]))
    assert inside.tolist() == [False, False, False]
    assert outside.tolist()[0] is False and outside.tolist()[1] is False  # both touch it


# -- the box index's classification ------------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_classify_slots_never_misjudges(seed: int) -> None:
    rng = random.Random(f"classify/{seed}")
    geom = query_polygon(rng)
    records = np.array(records_near(rng, geom, 3_000), dtype=object)
    bounds = shapely.bounds(records)
    fractions = extreme_fractions(records, bounds)
    n = len(records)
    positions = np.arange(n, dtype=np.int64) * 2
    index = BoxIndex(positions, bounds, np.zeros(n, np.int64), np.zeros(n, np.int64), fractions, slab=512)
    grid = CellGrid(geom, rng.choice([64, 4096]))
    slots = index.slots(geom.bounds)
    found, sure = index.classify_slots(slots, grid)
    exact = shapely.intersects(geom, records)
    in_box = np.sort(index.query(geom.bounds))
    assert set(found.tolist()) <= set(in_box.tolist())
    assert not (exact[in_box // 2] & ~np.isin(in_box, found)).any(), "a record left out must miss the query"
    assert not (sure & ~exact[found // 2]).any(), "sure must mean the record intersects the query"
    # The extreme vertices decide records whose box straddles the query's boundary.
    rows = found // 2
    inside, _ = grid.boxes(bounds[rows])
    assert (sure & ~inside).sum() > 20


def test_extremes_in_reads_each_side() -> None:
    square = shapely.box(0, 0, 10, 10)
    grid = CellGrid(square, 400)  # cells of 0.5 by 0.5
    # Each record's box straddles the square's edge; its one vertex inside is on a different side.
    records = np.array([
        shapely.Polygon([(1.3, 5.4), (-2, 4.2), (-2, 6.1)]),  # right vertex inside
        shapely.Polygon([(9.3, 5.4), (12, 4.2), (12, 6.1)]),  # left vertex inside
        shapely.Polygon([(5.4, 9.3), (4.2, 12), (6.1, 12)]),  # bottom vertex inside
        shapely.Polygon([(5.4, 1.3), (4.2, -2), (6.1, -2)]),  # top vertex inside
        shapely.Polygon([(11.3, 5.4), (12, 4.2), (12, 6.1)]),  # no vertex inside (nor the polygon)
    ], dtype=object)
    bounds = shapely.bounds(records)
    fractions = extreme_fractions(records, bounds)
    _, _, cells = grid.box_cells(bounds)
    got = grid.extremes_in(bounds, fractions, cells)
    assert got.tolist() == [True, True, True, True, False]
    unknown = np.full_like(fractions, UNKNOWN)
    assert not grid.extremes_in(bounds, unknown, cells).any()


# -- whole searches ----------------------------------------------------------------------------


def _item(i: int, geom: shapely.Geometry) -> dict:
    return {"type": "Feature", "stac_version": "1.0.0", "id": f"r{i}", "collection": "c",
            "geometry": shapely.geometry.mapping(geom), "properties": {"datetime": "2020-01-01T00:00:00Z"},
            "links": [], "assets": {}}


@pytest.fixture(scope="module")
def scene_index() -> tuple[object, list[shapely.Geometry], list[shapely.Geometry]]:
    rng = random.Random("search")
    queries = [query_polygon(rng) for _ in range(30)]
    records: list[shapely.Geometry] = []
    for q in queries[:10]:
        records += records_near(rng, q, 600)
    records += [shapely.MultiPolygon([shapely.box(0, 0, 1, 1), shapely.box(3, 3, 4, 4)]),
                shapely.MultiPoint([(0.5, 0.5), (7, 7)])]
    builder = IndexBuilder()
    for i, g in enumerate(records):
        builder.add_item(_item(i, g))
    index = builder.build()
    # The builder may have re-ordered records: map them back by id.
    by_position = [records[int(index.ids[p][1:])] for p in range(index.size)]
    return index, by_position, queries


def _brute_force(records: list[shapely.Geometry], geom: shapely.Geometry) -> np.ndarray:
    return np.flatnonzero(shapely.intersects(geom, np.array(records, dtype=object)))


def test_polygon_search_matches_shapely(scene_index) -> None:
    index, records, queries = scene_index
    decided = 0
    for geom in queries:
        got = index.match(SearchQuery(intersects=geom, limit=10))
        assert np.array_equal(got, _brute_force(records, geom)), geom.wkt[:200]
        # The same from _refine alone (no classification from the box index given).
        candidates = index._box_candidates(geom)
        assert np.array_equal(index._refine(candidates, geom), got)
        # Most records are decided without GEOS's exact test.
        grid = table_module._polygon_grid(geom, len(candidates))
        sure, known = index._grid_decided(candidates, grid, None, None)
        assert not (sure & ~np.isin(candidates, got)).any()
        assert not (known & ~sure & np.isin(candidates, got)).any()
        decided += int(known.sum())
    assert decided > 0.5 * sum(len(index._box_candidates(g)) for g in queries)


def test_touching_only_the_boundary_and_lying_in_a_hole() -> None:
    outer = shapely.Polygon([(0, 0), (10, 0), (10, 10), (0, 10)], [[(2, 2), (8, 2), (8, 8), (2, 8)]])
    cases = {
        "edge": (shapely.box(10, 3, 12, 4), True),  # shares part of the right edge
        "vertex": (shapely.Polygon([(10, 10), (11, 12), (12, 11)]), True),  # a corner only
        "hole edge": (shapely.box(3, 3, 8, 4), True),  # touches the hole's edge from inside
        "in hole": (shapely.box(3, 3, 7, 7), False),  # box inside the polygon's bounds, in the hole
        "near": (shapely.box(10 + 1e-9, 3, 12, 4), False),
        "point on edge": (shapely.Point(10, 5), True),
        "point in hole": (shapely.Point(5, 5), False),
        "line across hole": (shapely.LineString([(3, 5), (7, 5)]), False),
        "line into ring": (shapely.LineString([(5, 5), (5, 9)]), True),
        "around": (shapely.box(-1, -1, 11, 11), True),  # no vertex inside, the query is within it
        "ring around": (shapely.Polygon(shapely.box(-2, -2, 12, 12).exterior.coords,
                                        [shapely.box(-1, -1, 11, 11).exterior.coords]), False),
    }
    builder = IndexBuilder()
    names = list(cases)
    for i, name in enumerate(names):
        builder.add_item(_item(i, cases[name][0]))
    small = builder.build()
    got = {small.ids[p] for p in small.match(SearchQuery(intersects=outer, limit=10))}
    want = {f"r{i}" for i, name in enumerate(names) if cases[name][1]}
    assert got == want, {names[int(r[1:])] for r in got ^ want}
    assert want == {f"r{i}" for i in _brute_force([cases[n][0] for n in names], outer)}


def test_multipolygon_and_datetime(scene_index) -> None:
    index, records, queries = scene_index
    multi = [q for q in queries if isinstance(q, shapely.MultiPolygon)]
    assert multi
    for geom in multi:
        window = (0, 2**62)
        got = index.match(SearchQuery(intersects=geom, datetime=window, limit=10))
        assert np.array_equal(got, _brute_force(records, geom))


def test_deadline_is_checked_between_vertex_chunks(scene_index, monkeypatch: pytest.MonkeyPatch) -> None:
    index, _, queries = scene_index
    geom = queries[0]
    candidates = index._box_candidates(geom)
    calls = []
    real = table_module.check_deadline

    def counting(query: SearchQuery) -> None:
        calls.append(1)
        real(query)

    monkeypatch.setattr(table_module, "VERTEX_CHUNK", 8)
    monkeypatch.setattr(table_module, "check_deadline", counting)
    grid = table_module._polygon_grid(geom, len(candidates))
    index._grid_decided(candidates, grid, None, SearchQuery(limit=10))
    assert len(calls) >= (~grid.boxes(index.bounds[candidates])[0]).sum() // 8 // 2
    with pytest.raises(QueryTooExpensive):
        index._refine(candidates, geom, SearchQuery(limit=10, deadline=time.monotonic() - 1))
