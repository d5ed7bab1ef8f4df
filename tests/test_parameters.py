"""The search parameters are declared once (server/query/parameters.py): the parser, the OpenAPI
document (STAC API - Item Search §Query Parameters and Fields; OpenAPI 3.0 §Parameter Object),
the routes and the match cache's key all follow that table."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from server.api.openapi import openapi_document
from server.index.match_cache import MatchCache
from server.query import parameters
from server.query.model import SearchQuery
from server.query.parameters import ITEM_SEARCH, ITEMS, PARAMETERS, MatchCriteria, Parameter
from server.query.parse import parse_search

CLOUD = Parameter(
    "max-cloud", "Most cloud cover in percent", {"type": "number"}, {"type": "number"},
    lambda value, ctx: None if value in (None, "") else float(value),
    endpoints=frozenset({ITEM_SEARCH, ITEMS}), matching=True,
)


@pytest.fixture
def with_cloud() -> Iterator[Parameter]:
    """CLOUD added to the table, and nowhere else."""
    PARAMETERS.append(CLOUD)
    try:
        yield CLOUD
    finally:
        PARAMETERS.remove(CLOUD)


def parse(params: dict[str, Any], **kwargs: Any) -> SearchQuery:
    return parse_search(params, default_limit=10, max_limit=100, **kwargs)


def test_an_added_parameter_is_parsed_on_its_endpoints_only(with_cloud: Parameter) -> None:
    assert parse({"max-cloud": "20"}).extra["max-cloud"] == 20.0
    assert parse({"max-cloud": 35}, body=True).extra["max-cloud"] == 35.0
    assert parse({"max-cloud": "20"}, endpoint=ITEMS).extra["max-cloud"] == 20.0
    assert "max-cloud" not in parse({"max-cloud": "20"}, endpoint=parameters.COLLECTION_SEARCH).extra


def test_an_added_parameter_is_documented(with_cloud: Parameter) -> None:
    doc = openapi_document("http://testserver")
    ref = {"$ref": "#/components/parameters/max-cloud"}
    assert doc["components"]["parameters"]["max-cloud"]["schema"] == {"type": "number"}
    assert ref in doc["paths"]["/search"]["get"]["parameters"]
    assert ref in doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    assert ref not in doc["paths"]["/collections"]["get"]["parameters"]
    body = doc["paths"]["/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert body["properties"]["max-cloud"] == {"type": "number", "nullable": True}


class CountingIndex:
    version, loaded_at, size = 1, 0.0, 3

    def __init__(self) -> None:
        self.calls = 0

    def match_set(self, query: SearchQuery) -> np.ndarray:
        self.calls += 1
        return np.arange(3)


def test_an_added_matching_parameter_is_part_of_the_match_key(with_cloud: Parameter) -> None:
    low, high = parse({"max-cloud": "10"}), parse({"max-cloud": "90"})
    assert MatchCriteria.of(low) != MatchCriteria.of(high)
    assert MatchCriteria.of(low) == MatchCriteria.of(parse({"max-cloud": "10", "limit": "5"}))
    cache, index = MatchCache(1 << 20), CountingIndex()
    cache.match(index, low)
    cache.match(index, high)  # another value: another search, not the first one's matches
    cache.match(index, parse({"max-cloud": 10.0}, body=True))  # the same criteria: from the cache
    assert index.calls == 2


def test_only_matching_parameters_are_in_the_key() -> None:
    """Order, page and fields do not change which records match (Sort, Fields extensions)."""
    base = MatchCriteria.of(parse({"bbox": "0,0,1,1"}))
    for other in ({"limit": "3"}, {"token": "abc"}, {"sortby": "-datetime"}, {"fields": "id"}):
        assert MatchCriteria.of(parse({"bbox": "0,0,1,1", **other})) == base
    for other in ({"datetime": "2020-01-01T00:00:00Z"}, {"ids": "a"}, {"collections": "c"}, {"q": "x"},
                  {"filter": "gsd = 1"}, {"query": '{"gsd": {"eq": 1}}'}):
        assert MatchCriteria.of(parse({"bbox": "0,0,1,1", **other})) != base, other


def test_every_parameter_is_documented_once_where_it_is_taken() -> None:
    doc = openapi_document("http://testserver")
    names = [p.name for p in PARAMETERS]
    assert len(names) == len(set(names))
    paths = {ITEM_SEARCH: "/search", ITEMS: "/collections/{collectionId}/items",
             parameters.COLLECTION_SEARCH: "/collections"}
    for endpoint, path in paths.items():
        listed = [ref["$ref"].rsplit("/", 1)[1] for ref in doc["paths"][path]["get"]["parameters"]]
        assert [n for n in listed if n not in ("collectionId", "f")] == [p.name for p in parameters.taken_by(endpoint)]
