"""The pages' map data across the antimeridian (server/api/mapdata.py): what crosses 180° is
drawn in one piece, shifted by 360°; what does not is drawn as written; nothing a catalog
writes makes it fail."""

from __future__ import annotations

from typing import Any

import pytest

from server.api.mapdata import box, drawable, extent_features, footprints, gather_shifts

JUMP = {"type": "Polygon", "coordinates": [[[175, -5], [-175, -5], [-175, 5], [175, 5], [175, -5]]]}
SPLIT = {"type": "MultiPolygon", "coordinates": [[[[170, 10], [180, 10], [180, 15], [170, 15], [170, 10]]],
                                                 [[[-180, 10], [-172, 10], [-172, 15], [-180, 15], [-180, 10]]]]}
WORLD = {"type": "Polygon", "coordinates": [[[-180, -90], [180, -90], [180, 90], [-180, 90], [-180, -90]]]}


def xs(geometry: dict[str, Any]) -> list[float]:
    def walk(c: Any) -> Any:
        if isinstance(c[0], int | float):
            yield c[0]
        else:
            for part in c:
                yield from walk(part)
    return sorted(set(walk(geometry["coordinates"])))


def test_a_box_with_minx_over_maxx_reaches_past_180() -> None:
    assert xs(box([170, -20, -170, 20])) == [170, 190]
    assert xs(box([170, -20, 0, -170, 20, 10])) == [170, 190]  # with elevations
    assert xs(box([-10, 40, 30, 70])) == [-10, 30]


def test_a_ring_jumping_across_180_becomes_continuous() -> None:
    assert xs(drawable(JUMP, True)) == [175, 185]
    assert xs(drawable(JUMP)) == [175, 185]  # no bbox to say: over 180° wide, 10° once continuous
    starts_west = {"type": "Polygon", "coordinates": [[[-175, 0], [175, 0], [175, 1], [-175, 1], [-175, 0]]]}
    assert xs(drawable(starts_west)) == [-185, -175]
    line = {"type": "LineString", "coordinates": [[178, 0], [-179, 1], [-177, 2]]}
    assert xs(drawable(line)) == [178, 181, 183]


def test_parts_split_at_180_are_gathered() -> None:
    assert xs(drawable(SPLIT, True)) == [170, 180, 188]
    collection = {"type": "GeometryCollection", "geometries": [
        {"type": "Point", "coordinates": [179, 0]}, {"type": "Point", "coordinates": [-179, 0]}]}
    assert [g["coordinates"][0] for g in drawable(collection, True)["geometries"]] == [179, 181]


def test_what_does_not_cross_is_drawn_as_written() -> None:
    assert drawable(WORLD) == WORLD  # a box over the world: flat once "continuous", so not crossing
    assert drawable(JUMP, False) == JUMP  # its bbox says it does not cross: 350° wide, as written
    europe = {"type": "Polygon", "coordinates": [[[5, 50], [6, 50], [6, 51], [5, 51], [5, 50]]]}
    assert drawable(europe) == europe


def test_an_items_bbox_says_whether_it_crosses() -> None:
    crossing = {"id": "a", "geometry": JUMP, "bbox": [175, -5, -175, 5], "links": []}
    wide = {"id": "b", "geometry": JUMP, "bbox": [-175, -5, 175, 5], "links": []}
    assert xs(footprints([crossing])[0]["geometry"]) == [175, 185]
    assert xs(footprints([wide])[0]["geometry"]) == [-175, 175]
    no_geometry = {"id": "c", "geometry": None, "bbox": [170, 0, -170, 1],
                   "links": [{"rel": "self", "href": "http://x/c"}]}
    feature = footprints([no_geometry])[0]
    assert xs(feature["geometry"]) == [170, 190] and feature["properties"] == {"href": "http://x/c", "title": "c"}


def test_the_features_of_one_map_are_gathered() -> None:
    east = {"id": "e", "geometry": box([176, 0, 178, 1]), "links": []}
    west = {"id": "w", "geometry": box([-178, 0, -176, 1]), "links": []}
    assert [xs(f["geometry"]) for f in footprints([east, west])] == [[176, 178], [182, 184]]
    europe = {"id": "eu", "geometry": box([5, 50, 6, 51]), "links": []}
    americas = {"id": "am", "geometry": box([-100, 40, -99, 41]), "links": []}
    assert [xs(f["geometry"]) for f in footprints([europe, americas])] == [[5, 6], [-100, -99]]  # not astride 180°
    extents = extent_features([{"id": "x", "extent": {"spatial": {"bbox": [[170, -20, -170, 20]]}}, "links": []},
                               {"id": "y", "extent": {"spatial": {"bbox": [[-179, 0, -175, 5]]}}, "links": []}])
    assert [xs(f["geometry"]) for f in extents] == [[170, 190], [181, 185]]


def test_gather_shifts() -> None:
    assert gather_shifts([179, -179, None]) == [0, 360, 0]
    assert gather_shifts([0, 180]) == [0, 0]
    assert gather_shifts([-170, 10, 170]) == [360, 0, 0]  # -170 is nearer 170 than 10 is
    assert gather_shifts([-120, 0, 120]) == [0, 0, 0]  # spread round the world: moving brings nothing closer
    assert gather_shifts([]) == []


@pytest.mark.parametrize("geometry", [
    None, "x", 5, [], {}, {"type": "Polygon"}, {"type": "Polygon", "coordinates": "x"},
    {"type": "Polygon", "coordinates": [[["a", "b"], [1]]]}, {"type": "MultiPolygon", "coordinates": [1, [2]]},
    {"type": "GeometryCollection", "geometries": [None, {"type": "Point"}, {"type": "Point", "coordinates": [200, 0]}]},
    {"type": "LineString", "coordinates": [[0, 0], [None, 1]]}, {"type": "Point", "coordinates": [float("inf"), 0]},
])
def test_whatever_a_catalog_writes_does_not_fail(geometry: Any) -> None:
    footprints([{"id": "odd", "geometry": geometry, "links": "not a list"}])
    footprints([{"id": "odd", "geometry": geometry, "bbox": [170, 0, -170, 1], "links": []}])
    extent_features([{"id": "odd", "extent": {"spatial": {"bbox": [[170, 0, "x", 1]]}}}])


# qa16: geometries the loader takes (GEOS reads them) that Leaflet 1.9.3 throws on, which left
# the whole map of a page blank (its other footprints undrawn): a collection inside a collection
# ("t.getElement is not a function", binding the tooltip) and an empty Point ("Invalid LatLng
# object"). The map draws their members, flat, and leaves an empty point out.
NESTED = {"type": "GeometryCollection", "geometries": [
    {"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [0.5, 0.5]},
                                                   {"type": "GeometryCollection", "geometries": []}]},
    {"type": "Point", "coordinates": []},
    {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}]}


def test_a_collection_in_a_collection_is_drawn_flat_and_an_empty_point_left_out() -> None:
    drawn = {f["properties"]["title"]: f["geometry"] for f in footprints([
        {"id": "nested", "geometry": NESTED}, {"id": "empty", "geometry": {"type": "Point", "coordinates": []}},
        {"id": "multi", "geometry": {"type": "MultiPoint", "coordinates": [[], [2, 2]]}}])}
    assert drawn == {
        "nested": {"type": "GeometryCollection", "geometries": [
            {"type": "Point", "coordinates": [0.5, 0.5]}, {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}]},
        "multi": {"type": "MultiPoint", "coordinates": [[2, 2]]}}  # "empty": nothing to draw
    # across the antimeridian: flattened, then drawn in one piece
    crossing = {"type": "GeometryCollection", "geometries": [{"type": "GeometryCollection", "geometries": [JUMP]}]}
    (feature,) = footprints([{"id": "x", "geometry": crossing, "bbox": [175, -5, -175, 5]}])
    assert [xs(g) for g in feature["geometry"]["geometries"]] == [[175, 185]]
