"""What a page's map draws: footprints and extents as GeoJSON features for Leaflet, each drawn
in one piece where it crosses the antimeridian.

Leaflet joins consecutive vertices by straight lines in longitude, so a footprint whose ring
goes from 175° to -175° becomes a band around the whole world, a collection extent whose
west edge is east of its east edge (minx > maxx: it crosses 180°) a box over everything else,
and the two halves of a footprint split at 180° (RFC 7946 §3.1.9) lie at opposite ends of the
map. Here longitudes are shifted by 360° instead (Leaflet draws 190° east of 180°, as it
should): a crossing box reaches past 180°, the rings of a crossing footprint are made
continuous and its parts gathered on one side, and so are the features of one map, so the view
fits them all. An item says it crosses by its bbox (minx > maxx, as RFC 7946 §5.2 writes it);
a ring spanning more than 180° is otherwise drawn as written (a box over the whole world is
one). Only the page's map data changes; the documents keep the catalog's coordinates.

Catalog geometries are untrusted: whatever does not have the shape of GeoJSON coordinates is
drawn as given (Leaflet skips what it cannot read)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def _link(doc: dict[str, Any], rel: str) -> str | None:
    return next((link["href"] for link in doc.get("links", []) if isinstance(link, dict) and link.get("rel") == rel), None)


def box(bbox: list[Any]) -> dict[str, Any]:
    """A bbox (4 or 6 numbers) as a Polygon; one whose minx > maxx reaches past 180° east."""
    x0, y0, x1, y1 = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox[:4]
    if x0 > x1:
        x1 += 360
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def _is_position(value: Any) -> bool:
    return isinstance(value, list) and len(value) >= 2 and all(isinstance(v, int | float) for v in value[:2])


def _positions(coordinates: Any) -> Iterator[list[Any]]:
    if _is_position(coordinates):
        yield coordinates
    elif isinstance(coordinates, list):
        for part in coordinates:
            yield from _positions(part)


def _shifted(coordinates: Any, dx: float) -> Any:
    if not dx:
        return coordinates
    if _is_position(coordinates):
        return [coordinates[0] + dx, *coordinates[1:]]
    return [_shifted(part, dx) for part in coordinates] if isinstance(coordinates, list) else coordinates


def _center(coordinates: Any) -> float | None:
    xs = [p[0] for p in _positions(coordinates)]
    return (min(xs) + max(xs)) / 2 if xs else None


def _continuous(line: list[Any]) -> list[Any]:
    """A ring or line whose steps of more than 180° in longitude go the short way round."""
    if not line or not all(_is_position(p) for p in line):
        return line
    out, shift = [line[0]], 0.0
    for before, position in zip(line, line[1:]):
        step = position[0] - before[0]
        shift += -360 if step > 180 else 360 if step < -180 else 0
        out.append([position[0] + shift, *position[1:]] if shift else position)
    return out


def gather_shifts(centers: list[float | None]) -> list[float]:
    """Shifts (0 or 360) that bring things centred at ``centers`` together: when they lie more
    than 180° apart and moving the western ones by 360° puts them closer (a cluster astride
    the antimeridian), those move east of 180°."""
    known = [c for c in centers if c is not None]
    if not known or max(known) - min(known) <= 180:
        return [0.0] * len(centers)
    moved = [c + 360 if c < 0 else c for c in known]
    if max(moved) - min(moved) >= max(known) - min(known):
        return [0.0] * len(centers)
    return [360.0 if c is not None and c < 0 else 0.0 for c in centers]


def _gathered(parts: list[Any]) -> list[Any]:
    return [_shifted(part, dx) for part, dx in zip(parts, gather_shifts([_center(p) for p in parts]))]


def drawable(geometry: Any, crosses: bool | None = None) -> Any:
    """``geometry`` as drawn: when it ``crosses`` the antimeridian, with its rings and lines
    continuous and its parts (polygons of a MultiPolygon, rings of a Polygon, members of a
    collection) gathered on one side. An item says so by its bbox (minx > maxx); without one
    (None), a geometry wider than 180° that is narrower once continuous is taken to cross:
    read as written, a ring from 175° to -175° would span 350° the long way round."""
    if crosses is None:
        crosses = _looks_crossing(geometry)
    if not crosses or not isinstance(geometry, dict):
        return geometry
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    if kind == "GeometryCollection" and isinstance(geometry.get("geometries"), list):
        members = [drawable(g, True) for g in geometry["geometries"]]
        shifts = gather_shifts([_center(g.get("coordinates")) if isinstance(g, dict) else None for g in members])
        return {**geometry, "geometries": [{**g, "coordinates": _shifted(g.get("coordinates"), dx)}
                                           if dx and isinstance(g, dict) and "coordinates" in g else g
                                           for g, dx in zip(members, shifts)]}
    if not isinstance(coordinates, list):
        return geometry
    if kind == "LineString":
        coordinates = _continuous(coordinates)
    elif kind in ("Polygon", "MultiLineString"):
        coordinates = _gathered([_continuous(line) if isinstance(line, list) else line for line in coordinates])
    elif kind == "MultiPolygon":
        coordinates = _gathered([_gathered([_continuous(ring) if isinstance(ring, list) else ring for ring in polygon])
                                 if isinstance(polygon, list) else polygon for polygon in coordinates])
    elif kind == "MultiPoint":
        coordinates = _gathered(coordinates)
    return {**geometry, "coordinates": coordinates}


def _width(geometry: Any) -> float:
    if not isinstance(geometry, dict):
        return 0.0
    if isinstance(geometry.get("geometries"), list):
        xs = [x for g in geometry["geometries"] if isinstance(g, dict) for x in _xs(g.get("coordinates"))]
    else:
        xs = list(_xs(geometry.get("coordinates")))
    return max(xs) - min(xs) if xs else 0.0


def _xs(coordinates: Any) -> Iterator[float]:
    return (p[0] for p in _positions(coordinates))


def _looks_crossing(geometry: Any) -> bool:
    """Wider than 180°, and narrower (but not flat: a box over the whole world is not) once
    drawn as crossing."""
    return _width(geometry) > 180 and 0 < _width(drawable(geometry, True)) < 180


def leaflet_safe(geometry: Any) -> Any:
    """``geometry`` less what Leaflet 1.9.3 throws on, which leaves the whole map blank (the
    other features undrawn): a GeometryCollection inside one (binding a tooltip to it raises
    "t.getElement is not a function") gives its members in its place, and an empty Point
    ("Invalid LatLng object"), a point of a MultiPoint that is not a position, nothing. GEOS,
    and so the loader, reads both (qa16). None when nothing is left to draw."""
    if not isinstance(geometry, dict):
        return geometry
    kind = geometry.get("type")
    if kind == "GeometryCollection" and isinstance(geometry.get("geometries"), list):
        members: list[Any] = []
        for member in map(leaflet_safe, geometry["geometries"]):
            if isinstance(member, dict) and member.get("type") == "GeometryCollection":
                inner = member.get("geometries")
                members += inner if isinstance(inner, list) else []
            elif member is not None:
                members.append(member)
        return {**geometry, "geometries": members}
    coordinates = geometry.get("coordinates")
    if kind == "Point" and not _is_position(coordinates):
        return None
    if kind == "MultiPoint" and isinstance(coordinates, list) and not all(map(_is_position, coordinates)):
        return {**geometry, "coordinates": [p for p in coordinates if _is_position(p)]}
    return geometry


def _feature(geometry: Any, href: str, title: str) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": {"href": href, "title": title}}


def _together(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The features of one map, gathered on one side of the antimeridian (see gather_shifts)."""
    shifts = gather_shifts([_center(f["geometry"].get("coordinates")) if isinstance(f["geometry"], dict) else None
                            for f in features])
    return [{**f, "geometry": {**f["geometry"], "coordinates": _shifted(f["geometry"]["coordinates"], dx)}}
            if dx and "coordinates" in f["geometry"] else f for f, dx in zip(features, shifts)]


def extent_features(collections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The first spatial extent box of each collection (drawn past 180° when it crosses), linking to it."""
    out = []
    for c in collections:
        boxes = (c.get("extent") or {}).get("spatial", {}).get("bbox") or []
        if boxes and isinstance(boxes[0], list) and len(boxes[0]) in (4, 6) and \
                all(isinstance(v, int | float) for v in boxes[0]):
            out.append(_feature(box(boxes[0]), _link(c, "self") or "", str(c.get("title") or c.get("id"))))
    return _together(out)


def footprints(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each item's geometry (else its bbox), linking to it."""
    out = []
    for f in features:
        geometry, bbox = f.get("geometry"), f.get("bbox")
        if not (isinstance(bbox, list) and len(bbox) in (4, 6) and all(isinstance(v, int | float) for v in bbox)):
            bbox = None
        if geometry is not None and (geometry := leaflet_safe(geometry)) is None:
            continue  # nothing to draw (an empty Point): not its bbox either, which it has none of
        if geometry is None and bbox is not None:
            geometry = box(bbox)
        elif geometry is not None:
            geometry = drawable(geometry, None if bbox is None else bbox[0] > bbox[len(bbox) // 2])
        if geometry is not None:
            out.append(_feature(geometry, _link(f, "self") or "", str(f.get("id"))))
    return _together(out)
