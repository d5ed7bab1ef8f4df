"""The values of single search parameters (limit, bbox, intersects, lists of ids), parsed from a
GET string or a POST JSON value, or a 400 saying why."""

from __future__ import annotations

import math
import re
from typing import Any

import orjson
import shapely

from server.errors import InvalidQueryParameter
from server.settings import RequestLimits

GEOMETRY_TYPES = {
    "Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon", "GeometryCollection",
}


def parse_limit(value: Any, default: int, maximum: int) -> int:
    if value is None or value == "":
        return default
    if isinstance(value, bool) or isinstance(value, float) and not value.is_integer():
        raise InvalidQueryParameter(f"Invalid limit {value!r}: expected an integer")
    if isinstance(value, str) and not value.strip().lstrip("+").isascii():
        raise InvalidQueryParameter(f"Invalid limit {value!r}: expected an integer")
    try:
        limit = int(value)
    except (TypeError, ValueError):
        raise InvalidQueryParameter(f"Invalid limit {value!r}: expected an integer") from None
    if limit < 1:
        raise InvalidQueryParameter(f"Invalid limit {limit}: must be at least 1")
    return min(limit, maximum)


_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


def parse_bbox(value: Any) -> tuple[float, float, float, float]:
    """4 or 6 finite numbers (a comma list on GET); minx > maxx crosses the antimeridian. A box
    beyond ±180/±90 is well-formed: it matches what it intersects of the world (nothing, when
    it lies wholly beyond)."""
    if isinstance(value, str):
        parts: Any = [p.strip() for p in value.split(",")]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        raise InvalidQueryParameter("Invalid bbox: expected 4 or 6 numbers")
    if len(parts) not in (4, 6):
        raise InvalidQueryParameter(f"Invalid bbox: expected 4 or 6 numbers, got {len(parts)}")
    if any(isinstance(p, str) and not _DECIMAL.fullmatch(p) for p in parts):  # not "1_0", "١٠" or "nan"
        raise InvalidQueryParameter(f"Invalid bbox {value!r}: not all numbers")
    try:
        numbers = [float(p) for p in parts if not isinstance(p, bool)]
    except (TypeError, ValueError):
        raise InvalidQueryParameter(f"Invalid bbox {value!r}: not all numbers") from None
    if len(numbers) != len(parts) or not all(math.isfinite(n) for n in numbers):
        raise InvalidQueryParameter(f"Invalid bbox {value!r}: not all finite numbers")
    if len(numbers) == 6:
        minx, miny, _, maxx, maxy, _ = numbers
        if numbers[2] > numbers[5]:
            raise InvalidQueryParameter("Invalid bbox: minimum elevation is above the maximum")
    else:
        minx, miny, maxx, maxy = numbers
    if miny > maxy:
        raise InvalidQueryParameter("Invalid bbox: south edge is north of the north edge")
    return minx, miny, maxx, maxy


def parse_geometry(value: Any, max_vertices: int = RequestLimits.max_vertices) -> shapely.Geometry:
    """A GeoJSON geometry (object, or JSON text on GET) as a valid shapely geometry."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError:
            raise InvalidQueryParameter("Invalid intersects: not JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str) or value["type"] not in GEOMETRY_TYPES:
        raise InvalidQueryParameter(
            f"Invalid intersects: expected a GeoJSON geometry, one of {sorted(GEOMETRY_TYPES)}"
        )
    geom = geojson_geometry(value, "intersects")
    if geom is None or geom.is_empty:
        raise InvalidQueryParameter("Invalid intersects: empty geometry")
    vertices = shapely.get_num_coordinates(geom)
    if vertices > max_vertices:
        raise InvalidQueryParameter(f"Invalid intersects: {vertices} vertices, over the limit of {max_vertices}")
    return checked_geometry(geom, "intersects")


def geojson_geometry(value: dict[str, Any], what: str) -> shapely.Geometry:
    """A GeoJSON geometry object read by GEOS; what it cannot read is a 400."""
    try:
        return shapely.from_geojson(orjson.dumps(value))
    except Exception as exc:  # GEOS reports its own error types
        raise InvalidQueryParameter(f"Invalid {what} geometry: {exc}") from None


class GeometryLiteral(dict[str, Any]):
    """A geometry literal of a parsed CQL2 filter: the GeoJSON object as parsed (it serializes
    as the plain dict it is) carrying the geometry GEOS read and ``checked_geometry`` passed, so
    evaluating the filter does not read and check the literal again."""

    __slots__ = ("geometry",)

    def __init__(self, value: dict[str, Any], geometry: shapely.Geometry) -> None:
        super().__init__(value)
        self.geometry = geometry


def checked_geometry(geom: shapely.Geometry, what: str) -> shapely.Geometry:
    """The one rule for a geometry a request sends (``intersects``, and every geometry literal
    of a CQL2 filter): finite coordinates and valid as OGC Simple Features define it (GEOS
    is_valid: no self-intersecting ring such as a bowtie, no overlapping MultiPolygon parts),
    else a 400 that says why. Spatial predicates on an invalid geometry have no defined
    answer, so it is refused rather than repaired."""
    if not geom.is_empty and not all(math.isfinite(c) for c in geom.bounds):
        raise InvalidQueryParameter(f"Invalid {what}: non-finite coordinates")
    if not geom.is_valid:
        raise InvalidQueryParameter(f"Invalid {what} geometry: {shapely.is_valid_reason(geom)}")
    return geom


def parse_string_list(value: Any, name: str) -> list[str]:
    if isinstance(value, str):
        items = [v.strip() for v in value.split(",")]
        return [v for v in items if v]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return value
    raise InvalidQueryParameter(f"Invalid {name}: expected a list of strings")
