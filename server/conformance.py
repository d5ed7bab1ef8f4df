"""Conformance classes, derived from what the server really implements."""

from __future__ import annotations

STAC = "https://api.stacspec.org/v1.0.0"
OGC_FEATURES = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"

CORE = [f"{STAC}/core"]
COLLECTIONS = [f"{STAC}/collections"]
FEATURES = [
    f"{STAC}/ogcapi-features",
    f"{OGC_FEATURES}/core",
    f"{OGC_FEATURES}/oas30",
    f"{OGC_FEATURES}/geojson",
]
ITEM_SEARCH = [f"{STAC}/item-search"]


def conformance_classes() -> list[str]:
    return CORE + COLLECTIONS + FEATURES + ITEM_SEARCH
