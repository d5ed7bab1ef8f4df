"""sortby and fields vs the brute-force oracle.

sortby: random lists of one to three fields (numbers, strings, booleans, mixed-type and
partly missing properties, id, collection, datetime), ascending and descending, GET and POST,
often with a filter, with page sizes down to 1 so every page boundary is a keyset token:
the concatenated pages must be exactly the oracle's order (missing values last, ties in the
default order), with nothing repeated or skipped. Unsortable fields are a 400.

fields: random include/exclude sets of dotted paths, GET and POST, over items and
collections; every returned document must be the oracle's projection of the same document
fetched without fields, on every page.
"""

from __future__ import annotations

import json
import random
from typing import Any

import numpy as np
import pytest

from tests.conftest import Env
from tests.helpers import check_item_search, collect_pages, collection_pages
from tests.oracles.expected import expected_collections, expected_items
from tests.oracles.fields import (
    COLLECTION_FIELD_DEFAULTS,
    ITEM_FIELD_DEFAULTS,
    drop_empty,
    project,
)
from tests.oracles.random_inputs import (
    random_predicate,
    random_sortby,
    sortby_get,
    sortby_post,
    to_text,
)
from tests.oracles.records import Record
from tests.oracles.sort import sortable

SEED = "stac-static-api-ext-sort-fields-v1"
N_SORT = 45
N_FIELDS = 25


# -- sortby ----------------------------------------------------------------------------------------


def random_sort_search(
    env: Env, rng: random.Random, collection: str | None = None
) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """A random sorted search (often filtered) as GET parameters and as a POST body, and the
    keys it must return in order."""
    sort = random_sortby(rng, env.items)
    node = random_predicate(rng, env.vocab) if rng.random() < 0.3 else None
    expected = expected_items(env.oracle, env.items, filter=node, sortby=sort,
                              collections=[collection] if collection else None)
    limit = max(rng.choice([1, 2, 3, 4, 7, 50]), -(-len(expected) // 8))
    get: dict[str, Any] = {"limit": limit, "sortby": sortby_get(sort, rng)}
    post: dict[str, Any] = {"limit": limit, "sortby": sortby_post(sort, rng)}
    if node is not None:
        get["filter"] = to_text(node)
        post["filter"] = node
    return get, post, expected


def run_sort_case(env: Env, rng: random.Random, url: str = "/search", collection: str | None = None) -> None:
    get, post, expected = random_sort_search(env, rng, collection)
    check_item_search(env.client, "GET", url, get, expected, f"GET {url} {json.dumps(get)}")
    if url == "/search":
        check_item_search(env.client, "POST", url, post, expected, f"POST {json.dumps(post)}")


@pytest.mark.parametrize("case", range(N_SORT), ids=lambda i: f"s{i:02d}")
def test_sortby_sample(sample_env: Env, case: int) -> None:
    run_sort_case(sample_env, random.Random(f"{SEED}/sort-sample/{case}"))


@pytest.mark.parametrize("case", range(N_SORT), ids=lambda i: f"y{i:02d}")
def test_sortby_synthetic(synth_env: Env, case: int) -> None:
    run_sort_case(synth_env, random.Random(f"{SEED}/sort-synth/{case}"))


@pytest.fixture
def presorted(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every sorted page read off the table's cached order (large tables only, by default)."""
    import server.index.table as table

    monkeypatch.setattr(table, "PRESORT_MIN_RECORDS", 0)
    monkeypatch.setattr(table, "PRESORT_DENSITY", 10**9)


@pytest.mark.parametrize("case", range(N_SORT), ids=lambda i: f"p{i:02d}")
def test_sortby_synthetic_presorted(synth_env: Env, presorted: None, case: int) -> None:
    run_sort_case(synth_env, random.Random(f"{SEED}/sort-synth-presorted/{case}"))


@pytest.mark.parametrize("case", range(N_SORT // 3), ids=lambda i: f"q{i:02d}")
def test_sortby_sample_presorted(sample_env: Env, presorted: None, case: int) -> None:
    run_sort_case(sample_env, random.Random(f"{SEED}/sort-sample-presorted/{case}"))


@pytest.mark.parametrize("case", range(8), ids=lambda i: f"r{i:02d}")
def test_sortby_collection_items_presorted(synth_env: Env, presorted: None, case: int) -> None:
    rng = random.Random(f"{SEED}/sort-items-presorted/{case}")
    cid = rng.choice(sorted(synth_env.oracle.collections))
    run_sort_case(synth_env, rng, f"/collections/{cid}/items", cid)


def test_sort_orders_are_bounded_and_never_pickled() -> None:
    import pickle

    from server.index.table import SortOrders

    orders = SortOrders()
    for k in range(10):
        orders[(("f", k),)] = np.arange(3)
    assert len(orders) == SortOrders.MAX and (("f", 9),) in orders and (("f", 0),) not in orders
    assert pickle.loads(pickle.dumps(orders)) == {}


@pytest.mark.parametrize("case", range(15), ids=lambda i: f"c{i:02d}")
def test_sortby_collection_items(synth_env: Env, case: int) -> None:
    rng = random.Random(f"{SEED}/sort-items/{case}")
    cid = rng.choice(sorted(synth_env.oracle.collections))
    run_sort_case(synth_env, rng, f"/collections/{cid}/items", cid)


@pytest.mark.parametrize("sortby", [
    "-eo:cloud_cover", "+eo:cloud_cover", "properties.eo:cloud_cover", "-datetime", "datetime",
    "-start_datetime", "title", "-title", "collection,-id", "-collection,gsd,-datetime", "-gsd,+title",
    "description", "-description", "min_elevation,-max_elevation", "platform,-view:sun_elevation",
])
def test_sortby_fixed(sample_env: Env, sortby: str) -> None:
    fields = [(p.lstrip("+-").removeprefix("properties."), p.startswith("-")) for p in sortby.split(",")]
    expected = expected_items(sample_env.oracle, sample_env.items, sortby=fields)
    for limit in (1, 6, 100):
        check_item_search(sample_env.client, "GET", "/search", {"sortby": sortby, "limit": limit}, expected,
                          f"sortby={sortby} limit={limit}")


@pytest.mark.parametrize("sortby", ["geometry", "-geometry", "no:such", "properties.no_such", "title,geometry",
                                    "instruments"])
def test_unsortable_field_is_400(sample_env: Env, sortby: str) -> None:
    assert all(not sortable(sample_env.items, p.lstrip("+-")) for p in sortby.split(",")
               if p.lstrip("+-") != "title")
    response = sample_env.client.get("/search", params={"sortby": sortby})
    assert response.status_code == 400, response.text
    body = [{"field": p.lstrip("+-"), "direction": "desc" if p.startswith("-") else "asc"} for p in sortby.split(",")]
    response = sample_env.client.post("/search", json={"sortby": body})
    assert response.status_code == 400, response.text
    assert {"code", "description"} <= set(response.json())


@pytest.mark.parametrize("body", [[{"field": "gsd", "direction": "up"}], [{"direction": "asc"}], [["gsd"]], 7],
                         ids=str)
def test_malformed_sortby_is_400(client, body: Any) -> None:
    response = client.post("/search", json={"sortby": body})
    assert response.status_code == 400, response.text


# -- fields ----------------------------------------------------------------------------------------

ITEM_PATHS = [
    "properties", "assets", "assets.thumbnail", "assets.data.href", "assets.thumbnail.type", "bbox", "links",
    "geometry", "geometry.type", "no_such", "no_such.deeper", "properties.no_such", "stac_extensions", "id", "type",
    "collection", "stac_version", "properties.datetime", "properties.meta.a", "properties.meta",
]
COLLECTION_PATHS = [
    "keywords", "providers", "summaries", "extent.spatial", "extent.temporal.interval", "extent", "links",
    "rank", "tier", "experimental", "license", "title", "description", "item_assets", "summaries.gsd", "no_such",
    "stac_extensions", "id",
]


def random_fields(rng: random.Random, records: list[Record], paths: list[str], item: bool) -> tuple[list[str], list[str]]:
    pool = list(paths)
    if item:
        names = sorted({k for r in records for k in r.members})
        pool += [f"properties.{n}" for n in rng.sample(names, min(4, len(names)))]
    include = rng.sample(pool, rng.randint(0, 4))
    exclude = rng.sample(pool, rng.randint(0, 3)) if rng.random() < 0.7 else []
    return include, exclude


def fields_get(include: list[str], exclude: list[str], rng: random.Random) -> str:
    parts = [rng.choice(["", "+"]) + p for p in include] + ["-" + p for p in exclude]
    rng.shuffle(parts)
    return ",".join(parts)


def _docs(pages: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    return [d for p in pages for d in p[key]]


def run_fields_case(env: Env, rng: random.Random) -> None:
    include, exclude = random_fields(rng, env.items, ITEM_PATHS, item=True)
    base: dict[str, Any] = {"limit": 1000}
    if rng.random() < 0.5:
        base["filter"] = to_text(random_predicate(rng, env.vocab))
    if rng.random() < 0.4:
        base["sortby"] = sortby_get(random_sortby(rng, env.items), rng)
    full = _docs(collect_pages(env.client, "GET", "/search", base), "features")
    base["limit"] = max(rng.choice([2, 5, 20]), -(-len(full) // 5))  # several pages, not too many
    # Every full document is the source item, with the API's links added.
    source = {r.key: r.doc for r in env.items}
    for doc in full:
        src = source[(doc.get("collection"), doc["id"])]
        assert doc["properties"] == src["properties"] and doc["geometry"] == src["geometry"], doc["id"]
    label = f"include={include} exclude={exclude} {json.dumps(base)}"
    for method in ("GET", "POST"):
        include_given = False
        if method == "GET":
            params = {**base, "fields": fields_get(include, exclude, rng)}
        else:
            spec: dict[str, Any] = {"exclude": exclude}
            if include or rng.random() < 0.5:
                spec["include"] = include
                include_given = True
            params = {**base, "fields": spec}
            if "filter" in base:
                params["filter-lang"] = "cql2-text"
            if "sortby" in base:
                params["sortby"] = [{"field": p.lstrip("+-"), "direction": "desc" if p.startswith("-") else "asc"}
                                    for p in base["sortby"].split(",")]
        want = [drop_empty(project(d, include, exclude, ITEM_FIELD_DEFAULTS, include_given)) for d in full]
        got = _docs(collect_pages(env.client, method, "/search", params), "features")
        assert len(got) == len(want), label
        for g, w in zip(got, want):
            assert drop_empty(g) == w, (
                f"{method} {json.dumps(params['fields'])} {label}\n server {json.dumps(g)[:700]}\n oracle {json.dumps(w)[:700]}"
            )


@pytest.mark.parametrize("case", range(N_FIELDS), ids=lambda i: f"s{i:02d}")
def test_fields_sample(sample_env: Env, case: int) -> None:
    run_fields_case(sample_env, random.Random(f"{SEED}/fields-sample/{case}"))


@pytest.mark.parametrize("case", range(N_FIELDS), ids=lambda i: f"y{i:02d}")
def test_fields_synthetic(synth_env: Env, case: int) -> None:
    run_fields_case(synth_env, random.Random(f"{SEED}/fields-synth/{case}"))


def test_fields_defaults_and_examples(sample_env: Env) -> None:
    """The default set, include-only, exclude-only and the nested rescue, spelled out by hand."""
    c = sample_env.client
    defaults = {"id", "type", "geometry", "bbox", "links", "assets", "properties", "collection", "stac_version",
                "stac_extensions"}
    for page in (c.get("/search", params={"fields": "", "ids": "clc-2006"}).json(),
                 c.post("/search", json={"fields": {}, "ids": ["clc-2006"]}).json(),
                 c.post("/search", json={"fields": {"include": []}, "ids": ["clc-2006"]}).json()):
        feature = page["features"][0]
        assert set(feature) == defaults
        assert feature["properties"] == {"datetime": "2006-01-01T00:00:00Z"}
    feature = c.get("/search", params={"fields": "properties.gsd,-links", "ids": "clc-2006"}).json()["features"][0]
    assert feature == {"id": "clc-2006", "type": "Feature", "stac_version": "1.0.0", "properties": {"gsd": 100}}
    feature = c.get("/search", params={"fields": "-assets,-geometry", "ids": "clc-2006"}).json()["features"][0]
    assert "assets" not in feature and "geometry" not in feature and "title" in feature["properties"]
    feature = c.get("/search", params={"fields": "-properties,properties.gsd", "ids": "clc-2006"}).json()["features"][0]
    assert feature["properties"] == {"gsd": 100}


@pytest.mark.parametrize("case", range(25), ids=lambda i: f"c{i:02d}")
def test_fields_collections(sample_env: Env, synth_env: Env, case: int) -> None:
    rng = random.Random(f"{SEED}/fields-collections/{case}")
    env = synth_env if case % 2 else sample_env
    include, exclude = random_fields(rng, env.collections, COLLECTION_PATHS, item=False)
    base = {"limit": rng.choice([1, 3, 100])}
    full = _docs(collection_pages(env.client, base, "full"), "collections")
    assert [d["id"] for d in full] == expected_collections(env.collections)
    spec = fields_get(include, exclude, rng)
    got = _docs(collection_pages(env.client, {**base, "fields": spec}, spec), "collections")
    want = [drop_empty(project(d, include, exclude, COLLECTION_FIELD_DEFAULTS)) for d in full]
    assert [drop_empty(g) for g in got] == want, f"fields={spec}"


@pytest.mark.parametrize("spec", ["-properties.meta.a,-properties,properties.meta",
                                  "-properties,-properties.meta.a,properties.meta",
                                  "properties.meta,-properties.meta.a,-properties"])
def test_fields_most_specific_path_wins_in_any_order(synth_env: Env, spec: str) -> None:
    items = [r for r in synth_env.items if isinstance(r.members.get("meta"), dict)]
    assert items
    params = {"ids": [r.id for r in items], "fields": spec + ",collection", "limit": 100}
    for page in collect_pages(synth_env.client, "GET", "/search", params):
        for feature in page["features"]:
            if (feature.get("collection"), feature["id"]) not in {r.key for r in items}:
                continue  # the same id in another collection, without meta
            assert set(feature["properties"]) == {"meta"} and set(feature["properties"]["meta"]) == {"b"}, (spec, feature)


def test_fields_of_collections_whose_properties_are_no_object(tmp_path) -> None:
    """qa19: a collection may hold any member, "properties" too; one holding null (or a number)
    made /collections?fields=properties.a a 500 (`in` on None while telling whether
    `properties.a` names the property `a`). Such a path names nothing there."""
    import httpx

    from tests.helpers import CatalogDir, catalog, collection, link, run_server

    cat = CatalogDir(tmp_path / "cat")
    cat.write("catalog.json", catalog("root", links=[link("child", f"./{c}/collection.json") for c in ("n", "five", "ok")]))
    cat.write("n/collection.json", collection("n", properties=None))
    cat.write("five/collection.json", collection("five", properties=5))
    cat.write("ok/collection.json", collection("ok", properties={"a": 1, "b": 2}))
    with run_server([str(cat.path("catalog.json"))]) as base, httpx.Client(base_url=base, timeout=10.0) as http:
        for fields, want in (("properties.a", {"ok": {"a": 1}}), ("-properties.a", {"ok": {"b": 2}, "five": 5, "n": None}),
                             ("id,properties", {"ok": {"a": 1, "b": 2}, "five": 5, "n": None})):
            answer = http.get("/collections", params={"fields": fields, "sortby": "id"})
            assert answer.status_code == 200, (fields, answer.text)
            got = {c["id"]: c["properties"] for c in answer.json()["collections"] if "properties" in c}
            assert got == want, (fields, got)
