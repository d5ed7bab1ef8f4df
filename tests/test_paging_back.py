"""prev and first links vs the brute-force oracles: page forward to the end, then back.

Each case draws a random search (bbox or intersects, datetime, ids, collections, a CQL2
filter, free text, sortby over mixed, tied and missing values; small limits, so that every
page boundary is a keyset token), follows every next link from the first page to the last
(those pages must be the oracle's records in the oracle's order), then every prev link from
the last page back to the first: each page on the way back must equal the forward page of
the same number (the same records in the same order, numberMatched, and the same paging
links). prev and first appear from page 2 on only; first leads to page 1. GET and POST on
/search, GET on /collections/{id}/items and on /collections (collection search), which
have no POST. With sortby, both ways of reading a sorted page are checked (selecting the
matches, and reading the table's presorted order).
"""

from __future__ import annotations

import base64
import json
import random
from typing import Any

import orjson
import pytest

from tests.conftest import Env
from tests.helpers import check_item_search, check_paging_back, collection_pages, link_of
from tests.oracles.expected import expected_items
from tests.oracles.freetext import QSyntaxError, q_predicate
from tests.oracles.random_inputs import random_predicate, random_q, random_sortby, sortby_get, sortby_post, to_text
from tests.oracles.sort import sort_records
from tests.test_ext_collections import random_collection_search
from tests.test_ext_sort_fields import presorted, random_sort_search  # noqa: F401  (presorted: a fixture)
from tests.test_search_oracle import random_query, random_query_for

SEED = "stac-static-api-paging-back-v1"
MAX_PAGES = 25  # limits are raised so that no case pages more than this (each page is two requests)


def expected_keys(env: Env, query: dict[str, Any], node: Any, q: str | None, sort: list[tuple[str, bool]] | None) -> list[Any]:
    """The keys a search must return, in order (the oracles of tests/oracles/expected.py)."""
    base = {k: query[k] for k in ("bbox", "intersects", "datetime", "ids", "collections") if k in query}
    return expected_items(env.oracle, env.items, **base, filter=node, q=q, sortby=sort)


def random_search(env: Env, rng: random.Random, sample: bool, items_endpoint: bool = False) -> tuple[
    dict[str, Any], dict[str, Any], list[Any]
]:
    """(GET query, POST body, expected keys) of a random search with every kind of criterion."""
    query = random_query(rng, env.oracle) if sample else random_query_for(rng, env.oracle)
    if items_endpoint:  # what /collections/{id}/items takes (its collection is the path's)
        query = {k: v for k, v in query.items() if k in ("bbox", "datetime", "limit")}
    node = random_predicate(rng, env.vocab) if rng.random() < 0.3 else None
    q = random_text(env, rng) if rng.random() < 0.25 else None
    sort = random_sortby(rng, env.items) if rng.random() < 0.5 else None
    get, post = dict(query), dict(query)
    if node is not None:
        get["filter"], post["filter"] = to_text(node), node
    if q is not None:
        get["q"] = post["q"] = q
    if sort is not None:
        get["sortby"], post["sortby"] = sortby_get(sort, rng), sortby_post(sort, rng)
    return get, post, expected_keys(env, query, node, q, sort)


def random_text(env: Env, rng: random.Random) -> str | None:
    """A free-text query, or None for one the oracle calls a syntax error (a word AND, say)."""
    q = random_q(rng, env.items, advanced=rng.random() < 0.5)
    try:
        q_predicate(q)
    except QSyntaxError:
        return None
    return q


def bounded(query: dict[str, Any], expected: list[Any]) -> int:
    query["limit"] = max(query["limit"], -(-len(expected) // MAX_PAGES))
    return query["limit"]


def run_search_case(env: Env, rng: random.Random, sample: bool) -> None:
    get, post, expected = random_search(env, rng, sample)
    post["limit"] = bounded(get, expected)
    for method, query in (("GET", get), ("POST", post)):
        label = f"{method} /search {json.dumps(query)}"
        pages = check_item_search(env.client, method, "/search", query, expected, label)
        check_paging_back(env.client, method, query, pages, label)


@pytest.mark.parametrize("case", range(60), ids=lambda i: f"s{i:02d}")
def test_search_back_sample(sample_env: Env, case: int) -> None:
    run_search_case(sample_env, random.Random(f"{SEED}/search-sample/{case}"), sample=True)


@pytest.mark.parametrize("case", range(40), ids=lambda i: f"y{i:02d}")
def test_search_back_synthetic(synth_env: Env, case: int) -> None:
    run_search_case(synth_env, random.Random(f"{SEED}/search-synth/{case}"), sample=False)


@pytest.mark.parametrize("case", range(20), ids=lambda i: f"p{i:02d}")
def test_search_back_synthetic_presorted(synth_env: Env, presorted: None, case: int) -> None:  # noqa: F811
    run_search_case(synth_env, random.Random(f"{SEED}/search-synth-presorted/{case}"), sample=False)


def test_search_cases_are_varied(sample_env: Env) -> None:
    """Guard against a generator whose cases never reach a second page, or never sort."""
    pages, sorted_ = [], 0
    for case in range(60):
        get, _, expected = random_search(sample_env, random.Random(f"{SEED}/search-sample/{case}"), sample=True)
        pages.append(-(-len(expected) // bounded(get, expected)))
        sorted_ += "sortby" in get
    assert sum(1 for p in pages if p >= 3) >= 15 and sum(1 for p in pages if p >= 10) >= 5, pages
    assert sorted_ >= 20


def run_items_case(env: Env, rng: random.Random, sample: bool) -> None:
    cid = rng.choice(sorted(env.oracle.collections))
    query = random_query(rng, env.oracle) if sample else random_query_for(rng, env.oracle)
    get = {k: v for k, v in query.items() if k in ("bbox", "datetime", "limit")}  # what the endpoint takes
    node = random_predicate(rng, env.vocab) if rng.random() < 0.3 else None
    q = random_text(env, rng) if rng.random() < 0.25 else None
    sort = random_sortby(rng, env.items) if rng.random() < 0.6 else None
    expected = expected_keys(env, {**get, "collections": [cid]}, node, q, sort)
    if node is not None:
        get["filter"] = to_text(node)
    if q is not None:
        get["q"] = q
    if sort is not None:
        get["sortby"] = sortby_get(sort, rng)
    bounded(get, expected)
    url = f"/collections/{cid}/items"
    label = f"GET {url} {json.dumps(get)}"
    pages = check_item_search(env.client, "GET", url, get, expected, label)
    check_paging_back(env.client, "GET", get, pages, label)


@pytest.mark.parametrize("case", range(20), ids=lambda i: f"c{i:02d}")
def test_collection_items_back_sample(sample_env: Env, case: int) -> None:
    run_items_case(sample_env, random.Random(f"{SEED}/items-sample/{case}"), sample=True)


@pytest.mark.parametrize("case", range(20), ids=lambda i: f"i{i:02d}")
def test_collection_items_back_synthetic(synth_env: Env, case: int) -> None:
    run_items_case(synth_env, random.Random(f"{SEED}/items-synth/{case}"), sample=False)


# -- sortby: ties, missing values, both ways of reading a sorted page -------------------------------


def run_sort_back_case(env: Env, rng: random.Random, url: str = "/search", collection: str | None = None) -> None:
    get, post, expected = random_sort_search(env, rng, collection)
    get["limit"] = post["limit"] = min(get["limit"], rng.choice([1, 2, 3, 5]))
    post["limit"] = bounded(get, expected)
    for method, query in (("GET", get), ("POST", post)) if url == "/search" else (("GET", get),):
        label = f"{method} {url} {json.dumps(query)}"
        pages = check_item_search(env.client, method, url, query, expected, label)
        check_paging_back(env.client, method, query, pages, label)


@pytest.mark.parametrize("case", range(20), ids=lambda i: f"s{i:02d}")
def test_sort_back_sample(sample_env: Env, case: int) -> None:
    run_sort_back_case(sample_env, random.Random(f"{SEED}/sort-sample/{case}"))


@pytest.mark.parametrize("case", range(20), ids=lambda i: f"y{i:02d}")
def test_sort_back_synthetic(synth_env: Env, case: int) -> None:
    run_sort_back_case(synth_env, random.Random(f"{SEED}/sort-synth/{case}"))


@pytest.mark.parametrize("case", range(20), ids=lambda i: f"p{i:02d}")
def test_sort_back_synthetic_presorted(synth_env: Env, presorted: None, case: int) -> None:  # noqa: F811
    run_sort_back_case(synth_env, random.Random(f"{SEED}/sort-synth-presorted/{case}"))


@pytest.mark.parametrize("case", range(10), ids=lambda i: f"q{i:02d}")
def test_sort_back_sample_presorted(sample_env: Env, presorted: None, case: int) -> None:  # noqa: F811
    run_sort_back_case(sample_env, random.Random(f"{SEED}/sort-sample-presorted/{case}"))


@pytest.mark.parametrize("case", range(8), ids=lambda i: f"r{i:02d}")
def test_sort_back_collection_items_presorted(synth_env: Env, presorted: None, case: int) -> None:  # noqa: F811
    rng = random.Random(f"{SEED}/sort-items-presorted/{case}")
    cid = rng.choice(sorted(synth_env.oracle.collections))
    run_sort_back_case(synth_env, rng, f"/collections/{cid}/items", cid)


@pytest.mark.parametrize("sortby", [
    "-eo:cloud_cover", "+eo:cloud_cover", "-datetime", "datetime", "title", "-title", "collection,-id",
    "-collection,gsd,-datetime", "-gsd,+title", "platform,-view:sun_elevation", "min_elevation,-max_elevation",
])
@pytest.mark.parametrize("layout", ["selected", "presorted"])
def test_sort_back_fixed(sample_env: Env, sortby: str, layout: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Sort keys with many ties and missing values (sorted last either way), limits from 1."""
    if layout == "presorted":
        import server.index.table as table

        monkeypatch.setattr(table, "PRESORT_MIN_RECORDS", 0)
        monkeypatch.setattr(table, "PRESORT_DENSITY", 10**9)
    fields = [(p.lstrip("+-"), p.startswith("-")) for p in sortby.split(",")]
    expected = [r.key for r in sort_records(sample_env.items, fields)]
    for limit in (1, 3, 7):
        for method, query in (("GET", {"sortby": sortby, "limit": limit}),
                              ("POST", {"sortby": sortby_post(fields, random.Random(0)), "limit": limit})):
            label = f"{method} {json.dumps(query)}"
            pages = check_item_search(sample_env.client, method, "/search", query, expected, label)
            check_paging_back(sample_env.client, method, query, pages, label)


# -- collection search ----------------------------------------------------------------------------------


def run_collections_case(env: Env, rng: random.Random) -> None:
    params, expected = random_collection_search(env, rng)
    params["limit"] = min(params["limit"], rng.choice([1, 2, 3]))
    label = f"GET /collections {json.dumps(params)}"
    pages = collection_pages(env.client, params, label)
    assert [c["id"] for p in pages for c in p["collections"]] == expected, label
    check_paging_back(env.client, "GET", params, pages, label, what="collections")


@pytest.mark.parametrize("case", range(20), ids=lambda i: f"s{i:02d}")
def test_collection_search_back_sample(sample_env: Env, case: int) -> None:
    run_collections_case(sample_env, random.Random(f"{SEED}/collections-sample/{case}"))


@pytest.mark.parametrize("case", range(30), ids=lambda i: f"y{i:02d}")
def test_collection_search_back_synthetic(synth_env: Env, case: int) -> None:
    run_collections_case(synth_env, random.Random(f"{SEED}/collections-synth/{case}"))


# -- the links and tokens themselves ----------------------------------------------------------------------


def test_first_page_and_single_page_have_no_prev_or_first(client) -> None:
    for response in (client.get("/search", params={"limit": 3}), client.post("/search", json={"limit": 3}),
                     client.get("/search", params={"limit": 1000}), client.get("/collections"),
                     client.get("/search", params={"ids": "no-such-item"})):
        page = response.json()
        assert link_of(page, "prev") is None and link_of(page, "first") is None, page["links"]


def test_prev_and_first_link_shapes(client) -> None:
    body = {"limit": 3, "collections": ["dem-alps"]}
    first = client.post("/search", json=body).json()
    second = client.post("/search", json={**body, **link_of(first, "next")["body"]}).json()  # type: ignore[index]
    for rel in ("prev", "first"):
        link = link_of(second, rel)
        assert link is not None and link["method"] == "POST" and link["merge"] is True
        assert link["href"].endswith("/search") and link["type"] == "application/geo+json"
    assert isinstance(link_of(second, "prev")["body"]["token"], str)  # type: ignore[index]
    assert link_of(second, "first")["body"] == {"token": None}  # type: ignore[index]
    page = client.get("/search", params={"limit": 3, "collections": "dem-alps"}).json()
    page = client.get(link_of(page, "next")["href"]).json()  # type: ignore[index]
    assert link_of(page, "first")["href"].endswith("/search?limit=3&collections=dem-alps")  # type: ignore[index]
    assert "token=" in link_of(page, "prev")["href"]  # type: ignore[index]


def _token_of(link: dict[str, Any]) -> Any:
    token = link["href"].split("token=")[1]
    return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))


def _encode(value: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


def test_tokens_say_their_direction_and_old_next_tokens_still_work(client) -> None:
    page = client.get("/search", params={"limit": 5, "sortby": "-eo:cloud_cover"}).json()
    second = client.get(link_of(page, "next")["href"]).json()  # type: ignore[index]
    third = client.get(link_of(second, "next")["href"]).json()  # type: ignore[index]
    nxt, prev = _token_of(link_of(second, "next")), _token_of(link_of(third, "prev"))  # type: ignore[arg-type]
    assert set(nxt) == {"after"} and set(prev) == {"before"}
    # A next token as it was before tokens had directions (a bare key): clients keep them.
    old = client.get("/search", params={"limit": 5, "sortby": "-eo:cloud_cover", "token": _encode(nxt["after"])})
    assert old.status_code == 200 and old.json()["features"] == third["features"]
    back = client.get("/search", params={"limit": 5, "sortby": "-eo:cloud_cover", "token": _encode(prev)}).json()
    assert back["features"] == second["features"]


@pytest.mark.parametrize("value", [{"sideways": [[1]]}, {"after": "x"}, {"before": [[1]], "after": [[1]]}, {},
                                   {"before": []}, ["x"]])
def test_malformed_tokens_are_400(client, value: Any) -> None:
    assert client.get("/search", params={"token": _encode(value)}).status_code == 400
    assert client.post("/search", json={"token": _encode(value)}).status_code == 400
    assert client.get("/collections", params={"token": _encode(value)}).status_code == 400


def test_prev_from_beyond_the_end_and_before_the_start(client, sample_index) -> None:
    """Tokens a reload may leave stale: a prev token from the first match is an empty first
    page; a next token from the last match an empty page that still links to the first."""
    everything = client.get("/search", params={"limit": 1000}).json()["features"]
    first_key = sample_index.default_key(sample_index.find(everything[0]["collection"], everything[0]["id"]))
    empty = client.get("/search", params={"token": _encode({"before": [first_key]})}).json()
    assert empty["features"] == [] and empty["numberMatched"] == len(everything)
    assert link_of(empty, "prev") is None and link_of(empty, "first") is None
    last = everything[-1]
    last_key = sample_index.default_key(sample_index.find(last["collection"], last["id"]))
    beyond = client.get("/search", params={"token": _encode({"after": [last_key]})}).json()
    assert beyond["features"] == [] and link_of(beyond, "first") is not None and link_of(beyond, "next") is None


def test_presorted_scan_either_way_matches_brute_force() -> None:
    """Table._scan, which reads a presorted page in growing chunks (more than one only on
    tables of thousands of records): the ``need`` matches nearest a slot, after it or before
    it, in order, at every density of matches."""
    import numpy as np

    from server.index.table import Table

    rng = np.random.default_rng(7)
    table = Table.__new__(Table)
    table.size = 60_000
    order = rng.permutation(table.size).astype(np.int32)
    clustered = np.zeros(table.size, dtype=bool)  # matches in runs far apart in the order: several chunks
    for first in range(1_000, table.size, 15_000):
        clustered[order[first : first + 150]] = True
    for density in (1.0, 0.3, 0.01, 0.0005, 0.0, "clustered"):
        wanted = clustered if density == "clustered" else rng.random(table.size) < density
        matched = int(wanted.sum())
        hits_in_order = order[wanted[order]].astype(np.int64)
        slots_of_hits = np.flatnonzero(wanted[order])
        for k in range(60):
            start, need = int(rng.integers(0, table.size + 1)), int(rng.integers(1, 30))
            if k % 2 and density == "clustered":  # just inside or past a run
                start = int(rng.choice(np.arange(1_000, table.size, 15_000))) + int(rng.choice([5, 140, 160]))
            before = np.searchsorted(slots_of_hits, start)  # hits in slots < start
            want_back = hits_in_order[max(0, before - need) : before]
            want_fwd = hits_in_order[before : before + need]
            assert np.array_equal(table._scan(order, wanted, matched, start, need, True), want_back), (density, start)
            assert np.array_equal(table._scan(order, wanted, matched, start, need, False), want_fwd), (density, start)
            if density == 1.0:
                assert np.array_equal(table._scan(order, None, matched, start, need, True), want_back)
                assert np.array_equal(table._scan(order, None, matched, start, need, False), want_fwd)
