"""Collection Search, /queryables, and the STAC tutorials' three collection filters, vs the oracle.

Collection search: random combinations of bbox (the first extent bbox intersects it),
datetime (the first temporal interval, null ends open, overlaps it), q, filter (over the
collections' top-level members), sortby and limit on GET /collections, paged to the end,
compared in order with a brute-force loop over the collection files.

Queryables: /queryables and /collections/{id}/queryables list exactly id, collection,
geometry, datetime and every property that has a value in the (collection's) items, with
JSON Schema types that cover every value seen.
"""

from __future__ import annotations

import json
import random
from typing import Any

import cql2
import pytest

from tests.conftest import Env
from tests.helpers import collection_pages
from tests.oracles.expected import expected_collections
from tests.oracles.random_inputs import (
    Vocabulary,
    random_bbox_near,
    random_predicate,
    random_q,
    random_sortby,
    sortby_get,
    to_text,
)
from tests.oracles.records import Record, instant
from tests.test_ext_cql2 import random_datetime

SEED = "stac-static-api-ext-collections-v1"
N_CASES = 64

WAGENINGEN = {"type": "Polygon", "coordinates": [[[5.65, 51.95], [5.68, 51.95], [5.68, 51.98], [5.65, 51.98], [5.65, 51.95]]]}
WAGENINGEN_BBOX = [5.65, 51.95, 5.68, 51.98]


def random_collection_search(env: Env, rng: random.Random) -> tuple[dict[str, Any], list[str]]:
    """A random collection search's GET parameters, and the ids it must return in order."""
    records = env.collections
    vocab = Vocabulary(records)
    params: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if rng.random() < 0.4:
        kwargs["bbox"] = random_bbox_near(rng, records)
        params["bbox"] = ",".join(str(v) for v in kwargs["bbox"])
    if rng.random() < 0.4:
        kwargs["datetime"] = params["datetime"] = random_datetime(rng, vocab)
    if rng.random() < 0.3:
        kwargs["q"] = params["q"] = random_q(rng, records, advanced=rng.random() < 0.5)
    if rng.random() < 0.5:
        node = random_predicate(rng, vocab)
        kwargs["filter"] = node
        if rng.random() < 0.5:
            params["filter"] = to_text(node)
        else:
            params["filter"], params["filter-lang"] = json.dumps(node), "cql2-json"
    if rng.random() < 0.4:
        kwargs["sortby"] = random_sortby(rng, records)
        params["sortby"] = sortby_get(kwargs["sortby"], rng)
    params["limit"] = rng.choice([1, 2, 3, 5, 100])
    return params, expected_collections(records, **kwargs)


def run_collection_case(env: Env, rng: random.Random) -> None:
    params, expected = random_collection_search(env, rng)
    label = json.dumps(params)
    pages = collection_pages(env.client, params, label)
    got = [c["id"] for p in pages for c in p["collections"]]
    assert got == expected, f"{label}\n server {got}\n oracle {expected}"
    for page in pages:
        assert page["numberMatched"] == len(expected), label
    for page in pages[:-1]:
        assert page["numberReturned"] == params["limit"], label


@pytest.mark.parametrize("case", range(N_CASES // 2), ids=lambda i: f"s{i:02d}")
def test_collection_search_sample(sample_env: Env, case: int) -> None:
    run_collection_case(sample_env, random.Random(f"{SEED}/sample/{case}"))


@pytest.mark.parametrize("case", range(N_CASES), ids=lambda i: f"y{i:02d}")
def test_collection_search_synthetic(synth_env: Env, case: int) -> None:
    run_collection_case(synth_env, random.Random(f"{SEED}/synth/{case}"))


def test_collection_search_cases_are_varied(synth_env: Env) -> None:
    sizes = []
    for case in range(N_CASES):
        rng = random.Random(f"{SEED}/synth/{case}")
        records = synth_env.collections
        vocab = Vocabulary(records)
        kw: dict[str, Any] = {}
        if rng.random() < 0.4:
            kw["bbox"] = random_bbox_near(rng, records)
        if rng.random() < 0.4:
            kw["datetime"] = random_datetime(rng, vocab)
        if rng.random() < 0.3:
            kw["q"] = random_q(rng, records, advanced=rng.random() < 0.5)
        if rng.random() < 0.5:
            kw["filter"] = random_predicate(rng, vocab)
        sizes.append(len(expected_collections(records, **kw)))
    assert sum(1 for s in sizes if 0 < s < len(synth_env.collections)) >= N_CASES // 4, sizes


def test_collection_search_unsortable_and_malformed(sample_env: Env) -> None:
    c = sample_env.client
    for params in ({"sortby": "extent"}, {"sortby": "no:such"}, {"filter": "title ="}, {"bbox": "1,2,3"},
                   {"datetime": "not-a-date"}, {"q": "(ndvi"}, {"limit": "0"}):
        response = c.get("/collections", params=params)
        assert response.status_code == 400, (params, response.text)
        assert {"code", "description"} <= set(response.json())


# -- the tutorials' three filters, and their combination: one request each -----------------------


def _one_request(env: Env, params: dict[str, Any]) -> list[str]:
    response = env.client.get("/collections", params=params)
    assert response.status_code == 200, response.text
    page = response.json()
    assert not [ln for ln in page["links"] if ln["rel"] == "next"], "one request must be enough"
    return [c["id"] for c in page["collections"]]


def brute_force_loop(env: Env, *, words: str | None = None, covers: Any = None, on: str | None = None) -> list[str]:
    """What the tutorials do today: load every collection and test it in a Python loop."""
    from shapely.geometry import shape

    out = []
    for rec in env.collections:  # one per collection.json, straight from the files
        doc = rec.doc
        if words is not None and words.lower() not in doc.get("description", "").lower():
            continue
        if covers is not None:
            x0, y0, x1, y1 = doc["extent"]["spatial"]["bbox"][0]
            from shapely.geometry import box

            if not box(x0, y0, x1, y1).intersects(shape(covers)):
                continue
        if on is not None:
            lo, hi = doc["extent"]["temporal"]["interval"][0]
            t = instant(on)
            if (lo is not None and instant(lo) > t) or (hi is not None and instant(hi) < t):
                continue
        out.append(doc["id"])
    return sorted(out)


def test_tutorial_filters(sample_env: Env) -> None:
    env = sample_env
    day = "2022-01-01T00:00:00Z"
    ndvi = _one_request(env, {"q": "NDVI"})
    assert ndvi == brute_force_loop(env, words="NDVI") == ["ndvi-europe-monthly"]

    area = _one_request(env, {"bbox": ",".join(map(str, WAGENINGEN_BBOX))})
    # misc: the collection made for the sample's loose aerial photo of Wageningen, whose extent is that photo's
    assert area == brute_force_loop(env, covers=WAGENINGEN) == ["corine-land-cover", "misc", "ndvi-europe-monthly",
                                                                "sentinel-2-l2a-nl"]
    # The same area as a polygon, through the filter: extent contains the whole study area (the photo does not).
    polygon = "S_CONTAINS(geometry, " + "POLYGON((5.65 51.95, 5.68 51.95, 5.68 51.98, 5.65 51.98, 5.65 51.95))" + ")"
    contains = [cid for cid in area if cid != "misc"]
    assert _one_request(env, {"filter": polygon}) == contains
    assert _one_request(env, {"filter": json.dumps(cql2.parse_text(polygon).to_json()), "filter-lang": "cql2-json"}) == contains

    when = _one_request(env, {"datetime": day})
    assert when == brute_force_loop(env, on=day) == ["corine-land-cover", "ndvi-europe-monthly", "sentinel-2-l2a-nl"]
    assert _one_request(env, {"filter": f"T_INTERSECTS(datetime, TIMESTAMP('{day}'))"}) == when

    combined = _one_request(env, {"q": "NDVI", "bbox": ",".join(map(str, WAGENINGEN_BBOX)), "datetime": day})
    assert combined == brute_force_loop(env, words="NDVI", covers=WAGENINGEN, on=day) == ["ndvi-europe-monthly"]
    # Everything but the free text, with the spatial and temporal parts as one CQL2 filter.
    both = f"{polygon} AND T_INTERSECTS(datetime, TIMESTAMP('{day}'))"
    assert _one_request(env, {"filter": both}) == brute_force_loop(env, covers=WAGENINGEN, on=day)
    assert _one_request(env, {"filter": both, "q": "NDVI"}) == ["ndvi-europe-monthly"]


# -- queryables ------------------------------------------------------------------------------------

CORE = {"id", "collection", "geometry", "datetime"}


def _json_types(value: Any) -> set[str]:
    if isinstance(value, bool):
        return {"boolean"}
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer()):
        return {"integer", "number"}
    if isinstance(value, float):
        return {"number"}
    if isinstance(value, str):
        return {"string"}
    if isinstance(value, list):
        return {"array"}
    return {"object"}


def check_queryables(env: Env, url: str, records: list[Record], exact_types: bool = True) -> None:
    """The listed names are exact; the types cover every value (and, with exact_types, each
    declared type is some value's: per collection the server may declare the catalog-wide ones)."""
    response = env.client.get(url)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == "application/schema+json"
    doc = response.json()
    assert doc["$schema"].startswith("https://json-schema.org/")
    assert doc["$id"] == f"http://testserver{url}"
    assert doc["type"] == "object"
    values: dict[str, list[Any]] = {}
    for r in records:
        for k, v in r.members.items():
            if v is not None:
                values.setdefault(k, []).append(v)
    assert set(doc["properties"]) == CORE | set(values), url
    for name, schema in doc["properties"].items():
        if name in ("id", "collection", "geometry") or name not in values:
            continue
        declared = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        assert declared, (url, name, schema)
        for v in values[name]:
            assert _json_types(v) & set(declared), (url, name, v, schema)
        for t in declared if exact_types else ():  # no type that no value has
            assert any(t in _json_types(v) for v in values[name]), (url, name, t, schema)
        if all(instant(v) is not None for v in values[name]):
            assert schema.get("format") == "date-time", (url, name, schema)


def test_queryables_sample(sample_env: Env) -> None:
    check_queryables(sample_env, "/queryables", sample_env.items)
    for cid in sample_env.oracle.collections:
        check_queryables(sample_env, f"/collections/{cid}/queryables", [r for r in sample_env.items if r.collection == cid],
                         exact_types=False)


def test_queryables_synthetic(synth_env: Env) -> None:
    check_queryables(synth_env, "/queryables", synth_env.items)
    for cid in synth_env.oracle.collections:
        check_queryables(synth_env, f"/collections/{cid}/queryables", [r for r in synth_env.items if r.collection == cid],
                         exact_types=False)


def test_queryables_unknown_collection_is_404(client) -> None:
    response = client.get("/collections/no-such-collection/queryables")
    assert response.status_code == 404


def test_queryables_are_linked(client) -> None:
    root = client.get("/").json()
    rels = {ln["rel"]: ln for ln in root["links"]}
    assert rels["http://www.opengis.net/def/rel/ogc/1.0/queryables"]["href"] == "http://testserver/queryables"
