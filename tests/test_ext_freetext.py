"""Free text `q` vs the brute-force oracle: basic comma lists and the advanced syntax.

Terms are words, word prefixes, phrases taken from the records' own titles, descriptions and
keywords (sometimes reversed or cut), upper case, punctuation-joined; advanced queries add
AND, OR, NOT, parentheses, "quoted phrases", +must and -mustnot. Sent on GET /search (a
comma list), POST /search (an array of pieces, or the same string), /collections/{id}/items
and collection search; paged to the end and compared in order.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pytest

from tests.conftest import Env
from tests.helpers import check_item_search, collection_pages
from tests.oracles.expected import expected_collections, expected_items
from tests.oracles.freetext import QSyntaxError, q_parse, split_q_commas
from tests.oracles.random_inputs import random_q, random_sortby, sortby_get
from tests.test_ext_cql2 import page_limit

SEED = "stac-static-api-ext-freetext-v1"
N_CASES = 80


def run_q_case(env: Env, rng: random.Random) -> None:
    q = random_q(rng, env.items, advanced=rng.random() < 0.6)
    sort = random_sortby(rng, env.items) if rng.random() < 0.25 else None
    expected = expected_items(env.oracle, env.items, q=q, sortby=sort)
    limit = page_limit(rng, len(expected))
    get: dict[str, Any] = {"limit": limit, "q": q}
    post: dict[str, Any] = {"limit": limit, "q": split_q_commas(q) if rng.random() < 0.7 else q}
    if sort:
        get["sortby"] = sortby_get(sort, rng)
        post["sortby"] = [{"field": n, "direction": "desc" if d else "asc"} for n, d in sort]
    check_item_search(env.client, "GET", "/search", get, expected, f"GET {json.dumps(get)}")
    check_item_search(env.client, "POST", "/search", post, expected, f"POST {json.dumps(post)}")


@pytest.mark.parametrize("case", range(N_CASES), ids=lambda i: f"s{i:03d}")
def test_free_text_sample(sample_env: Env, case: int) -> None:
    run_q_case(sample_env, random.Random(f"{SEED}/sample/{case}"))


@pytest.mark.parametrize("case", range(N_CASES), ids=lambda i: f"y{i:03d}")
def test_free_text_synthetic(synth_env: Env, case: int) -> None:
    run_q_case(synth_env, random.Random(f"{SEED}/synth/{case}"))


@pytest.mark.parametrize("case", range(25), ids=lambda i: f"c{i:02d}")
def test_free_text_collection_items(synth_env: Env, case: int) -> None:
    rng = random.Random(f"{SEED}/items/{case}")
    cid = rng.choice(sorted(synth_env.oracle.collections))
    q = random_q(rng, synth_env.items)
    expected = expected_items(synth_env.oracle, synth_env.items, q=q, collections=[cid])
    params = {"q": q, "limit": page_limit(rng, len(expected))}
    check_item_search(synth_env.client, "GET", f"/collections/{cid}/items", params, expected, f"{cid} {q!r}")


@pytest.mark.parametrize("case", range(40), ids=lambda i: f"k{i:02d}")
def test_free_text_collection_search(sample_env: Env, synth_env: Env, case: int) -> None:
    rng = random.Random(f"{SEED}/collections/{case}")
    env = synth_env if case % 3 else sample_env
    q = random_q(rng, env.collections, advanced=rng.random() < 0.6)
    expected = expected_collections(env.collections, q=q)
    params = {"q": q, "limit": rng.choice([1, 2, 3, 100])}
    pages = collection_pages(env.client, params, f"q={q!r}")
    got = [c["id"] for p in pages for c in p["collections"]]
    assert got == expected, f"q={q!r}"


def test_free_text_cases_are_varied(sample_env: Env, synth_env: Env) -> None:
    for env, tag in ((sample_env, "sample"), (synth_env, "synth")):
        sizes = []
        for case in range(N_CASES):
            rng = random.Random(f"{SEED}/{tag}/{case}")
            sizes.append(len(expected_items(env.oracle, env.items, q=random_q(rng, env.items, advanced=rng.random() < 0.6))))
        assert sum(1 for s in sizes if 0 < s < len(env.items)) >= N_CASES // 3, (tag, sizes)
        assert sum(1 for s in sizes if s == 0) >= 5, (tag, sizes)


# -- by hand ---------------------------------------------------------------------------------------

SAMPLE_Q = {
    "NDVI": {"ndvi-europe-2022-01", "ndvi-europe-2022-12"},  # subset checks: a word
    "ndv": {"ndvi-europe-2022-06"},                           # a prefix
    "\"elevation tile\"": {"dem-alps-n45e006"},              # a phrase
    "\"tile elevation\"": set(),                              # words in the wrong order
    "elevation AND N47": {"dem-alps-n47e010"},
    "sentinel -31UES": {"S2A_MSIL2A_20190810T104525_T31UFT"},
    "+land -changes": {"clc-2006"},
}


@pytest.mark.parametrize("q", sorted(SAMPLE_Q))
def test_free_text_by_hand(sample_env: Env, q: str) -> None:
    expected = expected_items(sample_env.oracle, sample_env.items, q=q)
    ids = {k[1] for k in expected}
    if SAMPLE_Q[q]:
        assert SAMPLE_Q[q] & ids or not ids, (q, ids)
    else:
        assert not ids, (q, ids)
    check_item_search(sample_env.client, "GET", "/search", {"q": q, "limit": 100}, expected, q)


def test_free_text_hand_answers(sample_env: Env) -> None:
    def ids(q: str) -> set[str]:
        return {k[1] for k in expected_items(sample_env.oracle, sample_env.items, q=q)}

    assert len(ids("NDVI")) == 12
    assert ids("ndvi") == ids("NDVI") == ids("ndv")
    assert ids("\"tile elevation\"") == set()
    assert ids("+land -changes") == {"clc-2006", "clc-2012", "clc-2018"}
    assert ids("NDVI,land") == ids("NDVI") | ids("land")
    assert ids("NDVI AND land") == set()
    assert "S2A_MSIL2A_20190601T104421_T31UES" not in ids("sentinel -31UES")
    assert len(ids("sentinel -31UES")) == len(ids("sentinel")) - len(ids("31UES")) > 0
    assert "dem-alps-void-fill-report" in ids("report")  # description and title count


@pytest.mark.parametrize("q", ['(ndvi', 'ndvi)', '"ndvi', 'AND ndvi', '()', 'ndvi AND'])
def test_invalid_q_is_400(client, q: str) -> None:
    with pytest.raises(QSyntaxError):
        q_parse(q)
    for response in (client.get("/search", params={"q": q}), client.post("/search", json={"q": [q]}),
                     client.get("/collections", params={"q": q})):
        assert response.status_code == 400, (q, response.text)
        assert {"code", "description"} <= set(response.json())
