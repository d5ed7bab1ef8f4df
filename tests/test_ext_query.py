"""The legacy query extension: random {property: {op: value}} objects vs the brute-force oracle.

Operators eq, neq, lt, lte, gt, gte, startsWith, endsWith, contains and in, on numbers,
strings (with LIKE's special characters in them), booleans, mixed-type, null and unknown
properties, alone or ANDed with a CQL2 filter; GET (JSON text) and POST (object), paged.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tests.conftest import Env
from tests.helpers import check_item_search
from tests.oracles.expected import expected_items
from tests.oracles.random_inputs import (
    Vocabulary,
    random_predicate,
    random_sortby,
    sortby_get,
    sortby_post,
    to_text,
)
from tests.test_ext_cql2 import page_limit

SEED = "stac-static-api-ext-query-v1"
N_CASES = 70

NUMBER_OPS = ["eq", "neq", "lt", "lte", "gt", "gte", "in"]
STRING_OPS = ["eq", "neq", "startsWith", "endsWith", "contains", "in", "lt", "gte"]


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def random_query_object(rng: random.Random, vocab: Vocabulary) -> dict[str, dict[str, Any]]:
    scalars = vocab.of_type(lambda v: v is not None and not isinstance(v, (list, dict)))
    arrays = vocab.of_type(lambda v: isinstance(v, list))
    out: dict[str, dict[str, Any]] = {}
    for _ in range(rng.choice([1, 1, 1, 2, 3])):
        if arrays and rng.random() < 0.15:  # "in" on an array property: any shared value
            name = rng.choice(arrays)
            elems = [e for v in vocab.values[name] if isinstance(v, list) for e in v if not isinstance(e, (list, dict))]
            out[name] = {"in": rng.sample(elems, min(len(elems), rng.randint(1, 2))) + rng.choice([[], ["zzz"]]) or ["zzz"]}
            continue
        name = rng.choice(scalars + ["id", "collection", "no:such"])
        value = vocab.sample(rng, name, lambda v: v is not None and not isinstance(v, (list, dict)))
        if value is None:
            value = rng.choice([1, "x"])
        ops: dict[str, Any] = {}
        for _ in range(rng.choice([1, 1, 2])):
            if isinstance(value, str):
                op = rng.choice(STRING_OPS)
                if op in ("startsWith", "endsWith", "contains"):
                    k = rng.randint(0, len(value))
                    part = {"startsWith": value[:k], "endsWith": value[k:], "contains": value[k // 2 : k]}[op]
                    ops[op] = part.swapcase() if rng.random() < 0.1 else part
                elif op == "in":
                    ops[op] = [vocab.sample(rng, name, lambda v: isinstance(v, str)) for _ in range(rng.randint(1, 3))]
                else:
                    ops[op] = value
            elif isinstance(value, bool):
                op = rng.choice(["eq", "neq"])
                ops[op] = value if rng.random() < 0.8 else not value
            else:
                op = rng.choice(NUMBER_OPS)
                if op == "in":
                    ops[op] = [vocab.sample(rng, name, _is_number) for _ in range(rng.randint(1, 3))]
                else:
                    ops[op] = value + rng.choice([0, 0, 1, -1, 0.5]) if _is_number(value) else value
                if _is_number(ops[op]) and rng.random() < 0.2:
                    ops[op] = str(ops[op])  # clients send numbers as strings: {"gsd": {"lt": "20"}}
            if rng.random() < 0.05 and op not in ("startsWith", "endsWith", "contains"):
                ops[op] = rng.choice([True, 3, "3"]) if op != "in" else [True, "3"]  # another type
        prefixed = name not in ("id", "collection") and rng.random() < 0.25
        out[f"properties.{name}" if prefixed else name] = ops
    return out


def run_query_case(env: Env, rng: random.Random) -> None:
    query = random_query_object(rng, env.vocab)
    node = random_predicate(rng, env.vocab) if rng.random() < 0.25 else None
    sort = random_sortby(rng, env.items) if rng.random() < 0.3 else None
    expected = expected_items(env.oracle, env.items, query=query, filter=node, sortby=sort)
    limit = page_limit(rng, len(expected))
    get: dict[str, Any] = {"limit": limit, "query": json.dumps(query)}
    post: dict[str, Any] = {"limit": limit, "query": query}
    if node is not None:
        get["filter"] = to_text(node)
        post["filter"] = node
    if sort:
        get["sortby"] = sortby_get(sort, rng)
        post["sortby"] = sortby_post(sort, rng)
    check_item_search(env.client, "GET", "/search", get, expected, f"GET {json.dumps(get)}")
    check_item_search(env.client, "POST", "/search", post, expected, f"POST {json.dumps(post)}")


@pytest.mark.parametrize("case", range(N_CASES), ids=lambda i: f"s{i:02d}")
def test_query_extension_sample(sample_env: Env, case: int) -> None:
    run_query_case(sample_env, random.Random(f"{SEED}/sample/{case}"))


@pytest.mark.parametrize("case", range(N_CASES), ids=lambda i: f"y{i:02d}")
def test_query_extension_synthetic(synth_env: Env, case: int) -> None:
    run_query_case(synth_env, random.Random(f"{SEED}/synth/{case}"))


def test_query_cases_are_varied(sample_env: Env, synth_env: Env) -> None:
    for env, tag in ((sample_env, "sample"), (synth_env, "synth")):
        sizes = []
        for case in range(N_CASES):
            rng = random.Random(f"{SEED}/{tag}/{case}")
            sizes.append(len(expected_items(env.oracle, env.items, query=random_query_object(rng, env.vocab))))
        assert sum(1 for s in sizes if 0 < s < len(env.items)) >= N_CASES // 3, (tag, sizes)


FIXED = [
    {"eo:cloud_cover": {"lt": 10}},
    {"eo:cloud_cover": {"gte": 10, "lte": 50}, "platform": {"eq": "sentinel-2a"}},
    {"properties.gsd": {"in": [30, 100]}},
    {"title": {"startsWith": "NDVI"}},
    {"title": {"endsWith": "2022-01"}},
    {"title": {"contains": "tile N46"}},
    {"id": {"startsWith": "dem-"}, "collection": {"neq": "x"}},
    {"description": {"neq": "x"}},  # items without a description are not selected
    {"no:such": {"eq": 1}},
]


@pytest.mark.parametrize("query", FIXED, ids=lambda q: json.dumps(q)[:50])
def test_query_extension_fixed(sample_env: Env, query: dict[str, Any]) -> None:
    expected = expected_items(sample_env.oracle, sample_env.items, query=query)
    check_item_search(sample_env.client, "POST", "/search", {"query": query, "limit": 5}, expected, json.dumps(query))
    check_item_search(sample_env.client, "GET", "/search", {"query": json.dumps(query), "limit": 5}, expected,
                      json.dumps(query))


def test_query_special_characters_are_literal(synth_env: Env) -> None:
    """startsWith/contains must not treat % _ and backslash in the operand as wildcards."""
    for op, text in (("startsWith", "a_"), ("contains", "%"), ("contains", "_"), ("startsWith", "back\\"),
                     ("endsWith", "_"), ("contains", "0% p"), ("startsWith", "%_")):
        query = {"pattern": {op: text}}
        expected = expected_items(synth_env.oracle, synth_env.items, query=query)
        check_item_search(synth_env.client, "POST", "/search", {"query": query, "limit": 50}, expected, json.dumps(query))


@pytest.mark.parametrize("query", [
    {"gsd": {"between": [1, 2]}},
    {"gsd": 10},
    {"title": {"startsWith": 3}},
    {"gsd": {"in": 10}},
    {"gsd": {"eq": [1]}},
    "not json",
    [1, 2],
], ids=str)
def test_query_extension_invalid_is_400(client, query: Any) -> None:
    params = {"query": query if isinstance(query, str) else json.dumps(query)}
    response = client.get("/search", params=params)
    assert response.status_code == 400, response.text
    if not isinstance(query, str):
        response = client.post("/search", json={"query": query})
        assert response.status_code == 400, response.text
    assert {"code", "description"} <= set(response.json())
