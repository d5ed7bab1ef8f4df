"""Every search extension driven through pystac-client against the real server (sample catalog).

pystac-client reads the conformance classes and must run filter, sortby, fields, query and
collection search server-side: any DoesNotConformTo/fallback warning is an error here
(pyproject: filterwarnings = error). Answers are compared with the brute-force oracle, in
order, across the pages pystac-client follows. pystac-client's Client.search() has no `q`
argument (0.9.x): free text on items is added by its request_modifier hook.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import pytest
from pystac_client import Client

from tests.oracles.expected import expected_collections, expected_items
from tests.oracles.fields import ITEM_FIELD_DEFAULTS, drop_empty, project
from tests.oracles.random_inputs import (
    Vocabulary,
    random_predicate,
    random_q,
    random_sortby,
    to_text,
)
from tests.oracles.records import Record, collection_records, item_records
from tests.oracles.search import Oracle

SEED = "stac-static-api-ext-pystac-client-v1"
WAGENINGEN_BBOX = [5.65, 51.95, 5.68, 51.98]


@pytest.fixture(scope="module")
def api(live_server: str) -> Iterator[Client]:
    yield Client.open(live_server)


@pytest.fixture(scope="module")
def records(oracle: Oracle) -> tuple[list[Record], list[Record], Vocabulary]:
    items = item_records(oracle)
    return items, collection_records(oracle.collections), Vocabulary(items)


def keys(dicts: Any) -> list[tuple[str | None, str]]:
    return [(d.get("collection"), d["id"]) for d in dicts]


def sort_strings(sort: list[tuple[str, bool]]) -> list[str]:
    return [("-" if desc else "+") + name for name, desc in sort]


def test_conformance_is_read_by_pystac_client(api: Client) -> None:
    for name in ("ITEM_SEARCH", "FILTER", "SORT", "FIELDS", "QUERY", "COLLECTION_SEARCH", "COLLECTION_SEARCH_FREE_TEXT"):
        assert api.conforms_to(name), name


@pytest.mark.parametrize("case", range(16), ids=lambda i: f"f{i:02d}")
def test_search_filter_and_sortby(api: Client, oracle: Oracle, records, case: int) -> None:
    items, _, vocab = records
    rng = random.Random(f"{SEED}/filter/{case}")
    node = random_predicate(rng, vocab)
    sort = random_sortby(rng, items) if case % 2 else None
    method = "GET" if case % 4 < 2 else "POST"
    as_text = case % 3 == 0
    search = api.search(
        method=method,
        filter=to_text(node) if as_text else node,
        filter_lang="cql2-text" if as_text else "cql2-json",
        sortby=sort_strings(sort) if sort else None,
        limit=7,
    )
    expected = expected_items(oracle, items, filter=node, sortby=sort)
    got = keys(search.items_as_dicts())
    assert got == expected, f"{method} {to_text(node)} sortby={sort}"
    assert search.matched() == len(expected)


@pytest.mark.parametrize("query", [
    {"eo:cloud_cover": {"lt": 10}},
    {"eo:cloud_cover": {"gte": 20, "lte": 50}, "platform": {"eq": "sentinel-2b"}},
    ["eo:cloud_cover<10"],                 # pystac-client sends "10" as a string
    ["platform=sentinel-2a", "gsd>=10"],
    {"title": {"startsWith": "Elevation"}},
    {"proj:epsg": {"in": [4326]}},
], ids=lambda q: json.dumps(q)[:40])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_search_query_extension(api: Client, oracle: Oracle, records, query: Any, method: str) -> None:
    items, _, _ = records
    search = api.search(method=method, query=query, limit=5)
    expected = expected_items(oracle, items, query=search.get_parameters()["query"] if method == "POST"
                              else json.loads(search.get_parameters()["query"]))
    assert expected, "a query that selects nothing proves little"
    assert keys(search.items_as_dicts()) == expected


@pytest.mark.parametrize("fields", [
    ["properties.gsd", "-links"],
    ["-assets", "-geometry"],
    ["+properties", "-properties.title"],
    ["id", "collection", "properties.eo:cloud_cover"],
    {"include": [], "exclude": ["bbox"]},
], ids=lambda f: json.dumps(f)[:40])
@pytest.mark.parametrize("method", ["GET", "POST"])
def test_search_fields(api: Client, oracle: Oracle, records, fields: Any, method: str) -> None:
    items, _, _ = records
    kwargs = {"collections": ["sentinel-2-l2a-nl", "corine-land-cover"], "sortby": ["-datetime"], "limit": 9}
    full = list(api.search(method=method, **kwargs).items_as_dicts())
    search = api.search(method=method, fields=fields, **kwargs)
    spec = search.get_parameters()["fields"]
    if isinstance(spec, str):  # GET: "+a,-b"
        include = [p[1:] if p.startswith("+") else p for p in spec.split(",") if p and not p.startswith("-")]
        exclude = [p[1:] for p in spec.split(",") if p.startswith("-")]
        include_given = False
    else:
        include, exclude, include_given = spec.get("include", []), spec.get("exclude", []), "include" in spec
    got = list(search.items_as_dicts())
    assert len(got) == len(full) == len(expected_items(oracle, items, collections=kwargs["collections"]))
    for g, f in zip(got, full):
        assert drop_empty(g) == drop_empty(project(f, include, exclude, ITEM_FIELD_DEFAULTS, include_given)), (spec, g)


def with_q(q: str) -> Any:
    """A pystac-client request_modifier adding `q` to /search requests (Client.search has no q)."""

    def modify(request: Any) -> Any:
        if request.url.split("?")[0].endswith("/search"):
            if request.method == "POST":
                request.json = {**(request.json or {}), "q": [q]}
            else:
                request.params = {**(request.params or {}), "q": q}
        return request

    return modify


@pytest.mark.parametrize("case", range(8), ids=lambda i: f"q{i}")
def test_search_free_text(live_server: str, oracle: Oracle, records, case: int) -> None:
    items, _, _ = records
    rng = random.Random(f"{SEED}/q/{case}")
    q = ["NDVI", "elevation tile", "sentinel -31UES", "\"land cover\" OR report"][case % 4] if case < 4 \
        else random_q(rng, items, advanced=case % 2 == 0)
    method = "GET" if case % 2 else "POST"
    api = Client.open(live_server, request_modifier=with_q(q))
    sort = [("datetime", True)] if case % 3 == 0 else None
    search = api.search(method=method, limit=6, sortby=sort_strings(sort) if sort else None)
    expected = expected_items(oracle, items, q=q, sortby=sort)
    assert expected or case >= 4
    assert keys(search.items_as_dicts()) == expected, q


# -- collection search ---------------------------------------------------------------------------


def _ids(search: Any) -> list[str]:
    # Once per search: pystac-client caches the collections_as_dicts generator (lru_cache).
    return [c["id"] for c in search.collections_as_dicts()]


def test_collection_search_tutorial_filters(api: Client, records) -> None:
    _, collections, _ = records
    day = "2022-01-01T00:00:00Z"
    ndvi = api.collection_search(q="NDVI")
    assert _ids(ndvi) == expected_collections(collections, q="NDVI") == ["ndvi-europe-monthly"]
    area = _ids(api.collection_search(bbox=WAGENINGEN_BBOX))
    assert area == expected_collections(collections, bbox=WAGENINGEN_BBOX)
    assert area == ["corine-land-cover", "misc", "ndvi-europe-monthly", "sentinel-2-l2a-nl"]  # misc: a photo of Wageningen
    when = _ids(api.collection_search(datetime=day))
    assert when == expected_collections(collections, datetime=day)
    assert when == ["corine-land-cover", "ndvi-europe-monthly", "sentinel-2-l2a-nl"]
    both = api.collection_search(q="NDVI", bbox=WAGENINGEN_BBOX, datetime=day)
    assert _ids(both) == ["ndvi-europe-monthly"]
    assert both.matched() == 1


@pytest.mark.parametrize("case", range(12), ids=lambda i: f"c{i:02d}")
def test_collection_search_random(api: Client, records, case: int) -> None:
    _, collections, _ = records
    rng = random.Random(f"{SEED}/collections/{case}")
    vocab = Vocabulary(collections)
    kwargs: dict[str, Any] = {"limit": rng.choice([1, 2, 10])}
    oracle_kwargs: dict[str, Any] = {}
    if rng.random() < 0.4:
        oracle_kwargs["bbox"] = kwargs["bbox"] = rng.choice([WAGENINGEN_BBOX, [7.0, 46.0, 8.0, 47.0], [-20.0, 30.0, -10.0, 40.0],
                                                             [100.0, -10.0, 120.0, 10.0]])
    if rng.random() < 0.4:
        oracle_kwargs["datetime"] = kwargs["datetime"] = rng.choice(
            ["2010-01-01T00:00:00Z", "2021-01-01T00:00:00Z/..", "../2016-01-01T00:00:00Z", "2024-01-01T00:00:00Z/.."])
    if rng.random() < 0.4:
        oracle_kwargs["q"] = kwargs["q"] = random_q(rng, collections, advanced=False)
    if rng.random() < 0.5:
        node = random_predicate(rng, vocab)
        oracle_kwargs["filter"] = node
        kwargs["filter"], kwargs["filter_lang"] = to_text(node), "cql2-text"
    if rng.random() < 0.5:
        sort = random_sortby(rng, collections)
        oracle_kwargs["sortby"] = sort
        kwargs["sortby"] = sort_strings(sort)
    search = api.collection_search(**kwargs)
    expected = expected_collections(collections, **oracle_kwargs)
    assert _ids(search) == expected, kwargs
    assert search.matched() == len(expected)


def test_collection_search_fields(api: Client, records) -> None:
    search = api.collection_search(fields=["id", "title", "-links"], limit=2)
    docs = list(search.collections_as_dicts())
    assert [d["id"] for d in docs] == sorted(r.id for r in records[1])
    for d in docs:
        assert set(d) == {"id", "type", "stac_version", "title"}, d


# -- queryables ------------------------------------------------------------------------------------


def test_get_queryables(api: Client, records) -> None:
    items, _, _ = records
    seen = {k for r in items for k, v in r.members.items() if v is not None}
    schema = api.get_queryables()
    assert set(schema["properties"]) == {"id", "collection", "geometry", "datetime"} | seen
    assert schema["type"] == "object" and schema["$id"].endswith("/queryables")
    for cid in ("dem-alps", "sentinel-2-l2a-nl"):
        collection = api.get_collection(cid)
        per = collection.get_queryables()
        mine = {k for r in items if r.collection == cid for k, v in r.members.items() if v is not None}
        assert set(per["properties"]) == {"id", "collection", "geometry", "datetime"} | mine
        assert per["$id"].endswith(f"/collections/{cid}/queryables")
