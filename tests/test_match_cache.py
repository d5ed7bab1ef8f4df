"""The match cache: the same positions as a fresh search, shared by the pages of one search,
bounded, and never the previous index's after a reload."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import shapely

from server.index import Index
from server.index.match_cache import ENTRY_OVERHEAD, MatchCache
from server.query.parse import parse_search
from server.runtime.app import create_app
from server.settings import Settings
from tests.conftest import TestClient
from tests.helpers import drop_misc_catalog
from tests.test_reload import TOKEN, wait_ready


def random_params(rng: random.Random, index: Index) -> dict[str, str]:
    params: dict[str, str] = {}
    x, y = rng.uniform(-10, 20), rng.uniform(35, 60)
    if rng.random() < 0.5:
        params["bbox"] = f"{x},{y},{x + rng.uniform(0.1, 30)},{y + rng.uniform(0.1, 20)}"
    elif rng.random() < 0.3:
        params["intersects"] = shapely.to_geojson(shapely.Point(x, y).buffer(rng.uniform(0.5, 8)))
    if rng.random() < 0.5:
        year = rng.randint(2015, 2024)
        params["datetime"] = f"{year}-01-01T00:00:00Z/{year + rng.randint(0, 3)}-06-30T00:00:00Z"
    if rng.random() < 0.3:
        params["collections"] = ",".join(rng.sample(sorted(index.collections), rng.randint(1, 2)))
    if rng.random() < 0.2:
        params["ids"] = ",".join(rng.sample(list(index.ids), 3))
    if rng.random() < 0.3:
        params["filter"] = f"eo:cloud_cover < {rng.randint(0, 100)}"
    if rng.random() < 0.2:
        params["q"] = rng.choice(["landsat", "sentinel,dem", "forest"])
    return params


def parsed(params: dict[str, str]):  # type: ignore[no-untyped-def]
    return parse_search(params, default_limit=10, max_limit=1000)


def test_cached_matches_are_the_fresh_ones_and_read_only(sample_index: Index) -> None:
    cache = MatchCache(1 << 20)
    rng = random.Random(11)
    for _ in range(300):
        params = random_params(rng, sample_index)
        fresh = sample_index.match(parsed(params))
        first = cache.match(sample_index, parsed(params))
        again = cache.match(sample_index, parsed(params))
        assert np.array_equal(first, fresh), params
        assert again is first and not first.flags.writeable


def test_the_pages_of_one_search_share_its_matches(sample_index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[object] = []
    real = Index.match
    monkeypatch.setattr(Index, "match", lambda self, query, candidates=None: calls.append(query) or real(self, query))
    cache = MatchCache(1 << 20)
    base = {"bbox": "-10,35,30,70"}
    result = sample_index.search(parsed({**base, "limit": "5"}), None, cache)
    pages = 1
    while result.next_key is not None:  # every page as its next link asks, with other fields and sortby
        result = sample_index.search(parsed({**base, "limit": "5", "fields": "id"}), result.next_key, cache)
        pages += 1
    sample_index.search(parsed({**base, "sortby": "-datetime"}), None, cache)
    assert pages > 3 and len(calls) == 1
    sample_index.search(parsed({"bbox": "-10,35,30,71"}), None, cache)  # another query: another match
    assert len(calls) == 2


@pytest.mark.parametrize("sortby", [None, "-eo:cloud_cover", "title,-id"])
def test_the_pages_of_one_search_share_its_matches_going_back(
    sample_index: Index, monkeypatch: pytest.MonkeyPatch, sortby: str | None
) -> None:
    """Forward to the last page, then back by prev keys: one match for all of them, and
    every page back the same as forward."""
    calls: list[object] = []
    real = Index.match
    monkeypatch.setattr(Index, "match", lambda self, query, candidates=None: calls.append(query) or real(self, query))
    cache = MatchCache(1 << 20)
    params = {"bbox": "-10,35,30,70", "limit": "4", **({"sortby": sortby} if sortby else {})}
    forward = [sample_index.search(parsed(params), None, cache)]
    while forward[-1].next_key is not None:
        forward.append(sample_index.search(parsed(params), forward[-1].next_key, cache))
    result, n = forward[-1], len(forward) - 1
    while result.prev_key is not None:
        result, n = sample_index.search(parsed({**params, "fields": "id"}), None, cache, before=result.prev_key), n - 1
        assert result.positions.tolist() == forward[n].positions.tolist() and result.next_key == forward[n].next_key
    assert n == 0 and len(forward) > 3 and len(calls) == 1


def test_the_cache_is_bounded_and_can_be_off(sample_index: Index, monkeypatch: pytest.MonkeyPatch) -> None:
    everything = parsed({})
    size = sample_index.match(everything).nbytes + ENTRY_OVERHEAD
    small = MatchCache(4 * size - 1)  # one entry may use a quarter of the cache at most
    assert small.match(sample_index, everything) is not small.match(sample_index, everything)
    roomy = MatchCache(4 * size)
    assert roomy.match(sample_index, everything) is roomy.match(sample_index, everything)
    rng = random.Random(5)
    for _ in range(200):
        roomy.match(sample_index, parsed(random_params(rng, sample_index)))
    assert roomy._entries.currsize <= roomy.max_bytes
    off = MatchCache(0)
    assert off.match(sample_index, everything) is not off.match(sample_index, everything)


def test_a_reload_never_serves_the_previous_indexs_matches(sample_copy: Path) -> None:  # noqa: F811
    settings = Settings(roots=[str(sample_copy / "catalog.json")], admin_token=TOKEN, response_cache_bytes=0,
                        reload_in_child=False)
    app = create_app(settings)
    with TestClient(app) as client:
        def matched() -> int:
            return client.get("/search", params={"limit": 1}).json()["numberMatched"]

        wait_ready(client)
        assert matched() == 68 == matched()
        assert app.state.match_cache._entries.currsize > 0
        drop_misc_catalog(sample_copy)
        assert client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        assert app.state.match_cache._entries.currsize == 0
        assert matched() == 67
