"""/queryables: a JSON Schema of the properties a filter can use, derived from the indexed items."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.index import Index

CORE = {
    "id": {"title": "Item id", "type": "string"},
    "collection": {"title": "Collection id", "type": "string"},
    # The $ref is what this server answered first (and what the STAC filter extension's examples
    # write): JSON clients keep it. format + x-ogc-role are how OGC API - Features (Part 3) declares
    # a geometry without another host, for clients that read those (pygeoapi, QGIS Server write
    # them). STAC Browser dereferences the $ref on every search form: offline, that one request
    # fails (a console error, nothing else).
    "geometry": {"title": "Footprint", "$ref": "https://geojson.org/schema/Geometry.json",
                 "format": "geometry-any", "x-ogc-role": "primary-geometry"},
    "datetime": {"title": "Acquisition time", "type": "string", "format": "date-time"},
}


# A property holding objects or arrays is kept whole (JSON), not a column per member: a path
# into it (`nested.deep.x`, `tags.0`) is a 400 (Table.column, filter17), which a client learns
# here, where it reads the names, as well as from the 400 (qa18; filter17 left /queryables
# silent about it). Only a description is added: no field changes meaning.
_WHOLE = {
    "array": "An array, filtered as a whole: A_EQUALS, A_CONTAINS, A_CONTAINEDBY, A_OVERLAPS, IS NULL. "
             "A path into it ({name}.0) is not queryable: a 400.",
    "object": "An object, filtered as a whole (IS NULL). A path into it ({name}.member) is not queryable: a 400.",
    "both": "Objects or arrays, filtered as a whole (IS NULL; the arrays by A_EQUALS, A_CONTAINS, A_CONTAINEDBY, "
            "A_OVERLAPS). A path into it ({name}.member, {name}.0) is not queryable: a 400.",
}


def _holds(schema: dict[str, Any]) -> str:
    """"array", "object", "both" or "" (neither): what of a property's JSON type is kept whole."""
    types = schema.get("type")
    kinds = {t for t in (types if isinstance(types, list) else [types]) if t in ("array", "object")}
    return "both" if len(kinds) == 2 else kinds.pop() if kinds else ""


def queryables_document(index: Index, href: str, collection: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = dict(CORE)
    member: np.ndarray | None = None  # the collection's rows, as a mask: one gather per column, no sort
    if collection is not None:
        member = np.zeros(index.size, dtype=bool)
        member[index.collection_positions(collection)] = True
    for name, column in index.columns.items():
        if name in properties:
            continue
        present = column.present_rows
        if not present.size:
            continue  # null in every item: nothing to filter on, and no type to declare
        if member is not None and not member[present].any():
            continue
        schema = {"title": name, **column.json_type()}
        whole = _WHOLE.get(_holds(schema))
        if whole:
            schema["description"] = whole.format(name=name)
        properties[name] = schema
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": href,
        "type": "object",
        "title": f"Queryables of {collection}" if collection else "Queryables",
        "properties": properties,
        "additionalProperties": True,
    }
