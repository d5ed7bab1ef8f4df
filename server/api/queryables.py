"""/queryables: a JSON Schema of the properties a filter can use, derived from the indexed items."""

from __future__ import annotations

from typing import Any

import numpy as np

from server.index import Index

CORE = {
    "id": {"title": "Item id", "type": "string"},
    "collection": {"title": "Collection id", "type": "string"},
    # A geometry the way OGC API - Features (Part 3 queryables, Part 5 schemas) declares one, not a
    # $ref to geojson.org: a client that dereferences the schema (STAC Browser does, on every
    # search form) would fetch from a third host, which an air-gapped site cannot reach.
    "geometry": {"title": "Footprint", "format": "geometry-any", "x-ogc-role": "primary-geometry"},
    "datetime": {"title": "Acquisition time", "type": "string", "format": "date-time"},
}


def queryables_document(index: Index, href: str, collection: str | None) -> dict[str, Any]:
    properties: dict[str, Any] = dict(CORE)
    members = index.collection_positions(collection) if collection is not None else None
    for name, column in index.columns.items():
        if name in properties:
            continue
        present = column.present_rows
        if not present.size:
            continue  # null in every item: nothing to filter on, and no type to declare
        if members is not None and not np.intersect1d(present, members, assume_unique=True).size:
            continue
        properties[name] = {"title": name, **column.json_type()}
    return {
        "$schema": "https://json-schema.org/draft/2019-09/schema",
        "$id": href,
        "type": "object",
        "title": f"Queryables of {collection}" if collection else "Queryables",
        "properties": properties,
        "additionalProperties": True,
    }
