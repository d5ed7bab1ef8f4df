"""Conformance classes: one list per capability, each implemented in full."""

from __future__ import annotations

STAC = "https://api.stacspec.org/v1.0.0"
STAC_RC1 = "https://api.stacspec.org/v1.0.0-rc.1"
OGC_FEATURES = "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf"
OGC_FILTER = "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf"
CQL2 = "http://www.opengis.net/spec/cql2/1.0/conf"

CORE = [f"{STAC}/core"]
COLLECTIONS = [f"{STAC}/collections"]
FEATURES = [
    f"{STAC}/ogcapi-features",
    f"{OGC_FEATURES}/core",
    f"{OGC_FEATURES}/oas30",
    f"{OGC_FEATURES}/geojson",
    f"{OGC_FEATURES}/html",  # the pages (server/api/pages.py), by ?f=html or Accept
]
ITEM_SEARCH = [f"{STAC}/item-search"]
# Sort, fields, query and filter apply to /search and /collections/{id}/items alike.
SEARCH_EXTENSIONS = [
    f"{STAC}/{scope}#{ext}" for scope in ("item-search", "ogcapi-features") for ext in ("sort", "fields", "query", "filter")
]
FREE_TEXT = [
    f"{STAC_RC1}/{scope}#{ext}"
    for scope in ("item-search", "ogcapi-features", "collection-search")
    for ext in ("free-text", "advanced-free-text")
]
COLLECTION_SEARCH = [
    f"{STAC_RC1}/collection-search",
    "http://www.opengis.net/spec/ogcapi-common-2/1.0/conf/simple-query",
    *(f"{STAC_RC1}/collection-search#{ext}" for ext in ("filter", "sort", "fields")),
]
FILTER = [
    f"{OGC_FILTER}/filter",
    f"{OGC_FILTER}/features-filter",
    *(
        f"{CQL2}/{cls}"
        for cls in (
            "cql2-text", "cql2-json", "basic-cql2", "advanced-comparison-operators",
            "case-insensitive-comparison", "basic-spatial-functions", "basic-spatial-functions-plus",
            "spatial-functions", "temporal-functions", "array-functions", "property-property", "arithmetic",
            # the names these classes had in CQL2 drafts, still read by clients and validators
            "basic-spatial-operators", "spatial-operators", "temporal-operators", "array-operators",
        )
    ),
]


# The Aggregation extension, with the query and filter extensions on /aggregate.
AGGREGATION_SPEC = "https://api.stacspec.org/v0.3.0/aggregation"
AGGREGATION = [AGGREGATION_SPEC, f"{AGGREGATION_SPEC}#query", f"{AGGREGATION_SPEC}#filter"]


# The static catalog's tree (server.index.tree, server.api.browse): /children below the landing
# page and every catalog and collection with children, with the type filter; browseable when
# every item can be reached by child and item links from the landing page (Tree.complete).
CHILDREN = ["https://api.stacspec.org/v1.0.0-rc.2/children", "https://api.stacspec.org/v1.0.0-rc.2/children#type-filter"]
BROWSEABLE = ["https://api.stacspec.org/v1.0.0-rc.3/browseable"]


def conformance_classes(browseable: bool = False) -> list[str]:
    """What this API conforms to; ``browseable``: whether every item is reachable through the
    tree's child and item links (not so when some were read from bulk files nobody links)."""
    return (CORE + COLLECTIONS + FEATURES + ITEM_SEARCH + SEARCH_EXTENSIONS + FREE_TEXT + COLLECTION_SEARCH + FILTER
            + AGGREGATION + CHILDREN + (BROWSEABLE if browseable else []))
