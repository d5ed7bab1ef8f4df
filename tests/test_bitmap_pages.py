"""Pages read off a Bitmap (server/index/bitmap.py) against pages of sorted positions.

A CQL2 filter alone on a large table is answered from its mask, never listed, and the match
cache keeps large results as packed bits; both are switched on here at any size (the size
thresholds lowered), and every page, count and token must be those of Table.page over
Table.match's sorted positions, the path they replace: forward by next tokens to the last
page, then back by prev tokens, on random filters, limits and sort orders.
"""

from __future__ import annotations

import json
import random
import time
from typing import Any

import numpy as np
import pytest

from server.errors import InvalidQueryParameter
from server.index import Index, filter_bits, match_cache, table
from server.index.bitmap import Bitmap
from server.index.filtering import FilterEvaluator
from server.index.match_cache import MatchCache
from server.index.table import Table
from server.settings import Settings
from tests.helpers import http_pages, parsed, walk_pages
from tests.oracles.random_inputs import Vocabulary, random_predicate
from tests.oracles.records import item_records
from tests.oracles.search import Oracle


@pytest.fixture
def bitmaps_at_any_size(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table, "BITMAP_MIN_RECORDS", 0)
    monkeypatch.setattr(match_cache, "BITMAP_MIN_RECORDS", 0)
    monkeypatch.setattr(filter_bits, "BUILD_IN_BACKGROUND", False)





def reference(index: Index, query: Any) -> list[tuple[Any, ...]]:
    positions = index.match(query)
    return walk_pages(lambda after, before: Table.page(index, positions, query, after, before))


@pytest.mark.parametrize("size", [0, 1, 7, 8, 9, 100, 5_000, 70_001])
def test_a_bitmap_finds_the_positions_nearest_any_place(size: int) -> None:
    rng = np.random.default_rng(size)
    for density in (0.0, 0.0005, 0.02, 0.5, 1.0):
        mask = rng.random(size) < density
        positions = np.flatnonzero(mask)
        for bitmap in (Bitmap(size, mask=mask), Bitmap(size, mask=mask).packed(), Bitmap.of_positions(positions, size)):
            assert bitmap.count == len(positions)
            assert (bitmap.first, bitmap.last) == ((positions[0], positions[-1]) if len(positions) else (-1, -1))
            assert bitmap.positions().tolist() == positions.tolist()
            for start in {0, size, *rng.integers(0, size + 1, 12).tolist()}:
                need = int(rng.integers(1, 30))
                after = positions[positions >= start][:need]
                before = positions[positions < start][-need:]
                assert bitmap.nearest(start, need).tolist() == after.tolist()
                assert bitmap.nearest(start, need, backward=True).tolist() == before.tolist()


def test_a_packed_bitmap_takes_a_bit_a_record() -> None:
    mask = np.zeros(80_000, dtype=bool)
    mask[::3] = True
    assert Bitmap(80_000, mask=mask).packed().nbytes == 10_000


def test_filter_pages_from_the_mask_are_the_sorted_positions_pages(
    sample_index: Index, oracle: Oracle, bitmaps_at_any_size: None
) -> None:
    vocab = Vocabulary(item_records(oracle))
    rng = random.Random("bitmap-filter-pages")
    checked = nonempty = 0
    while checked < 150:
        params = {"filter": json.dumps(random_predicate(rng, vocab)), "filter-lang": "cql2-json",
                  "limit": str(rng.randint(1, 7))}
        if rng.random() < 0.2:
            params["sortby"] = rng.choice(["-eo:cloud_cover", "datetime,-id", "title"])
        query = parsed(params)
        try:
            expected = reference(sample_index, query)
        except InvalidQueryParameter:
            with pytest.raises(InvalidQueryParameter):
                sample_index.search(query)
            continue
        assert isinstance(sample_index.match_set(query), Bitmap)  # the mask, never listed
        got = walk_pages(lambda after, before, q=query: sample_index.search(q, after, before=before))
        assert got == expected, params
        checked += 1
        nonempty += expected[0][1] > 0
    assert nonempty > 50


def test_the_cache_keeps_large_results_as_bits_and_pages_alike(sample_index: Index, bitmaps_at_any_size: None) -> None:
    rng = random.Random("bitmap-cache-pages")
    cache = MatchCache(1 << 20)
    as_bits = 0
    for _ in range(60):
        x, y = rng.uniform(-10, 20), rng.uniform(35, 60)
        params = {"bbox": f"{x},{y},{x + rng.uniform(1, 40)},{y + rng.uniform(1, 30)}", "limit": str(rng.randint(1, 6))}
        if rng.random() < 0.4:
            params["filter"] = f"eo:cloud_cover < {rng.randint(0, 100)}"
        query = parsed(params)
        expected = reference(sample_index, query)
        cache.match(sample_index, query)  # (the first page: the result as found; then the kept one)
        got = walk_pages(lambda after, before, q=query: sample_index.search(q, after, cache, before))
        assert got == expected, params
        kept = cache.match(sample_index, query)
        dense = expected[0][1] * 64 >= sample_index.size
        assert isinstance(kept, Bitmap) == dense
        as_bits += dense
    assert as_bits > 10


def _random_comparison(rng: random.Random, vocab: Vocabulary) -> dict[str, Any]:
    numbers = vocab.of_type(lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
    strings = vocab.of_type(lambda v: isinstance(v, str))
    if rng.random() < 0.6:
        name = rng.choice(numbers)
        value = vocab.sample(rng, name, lambda v: isinstance(v, (int, float)) and not isinstance(v, bool))
        value = value if rng.random() < 0.6 else rng.uniform(-10, 120)
        op = rng.choice(["=", "<>", "<", "<=", ">", ">=", "between", "in"])
    else:
        name = rng.choice(strings)
        value = vocab.sample(rng, name, lambda v: isinstance(v, str)) if rng.random() < 0.8 else "no such value"
        op = rng.choice(["=", "<>", "in"])
    prop = {"property": f"properties.{name}" if rng.random() < 0.2 else name}
    if op == "between":
        return {"op": "between", "args": [prop, value, value + rng.uniform(0, 30)]}
    if op == "in":
        return {"op": "in", "args": [prop, [value, vocab.sample(rng, name)]]}
    return {"op": op, "args": [value, prop] if rng.random() < 0.2 else [prop, value]}  # (literal first: flipped)


@pytest.mark.parametrize("steps", [64, 3])
def test_filters_answered_in_bits_match_the_evaluators(
    sample_index: Index, oracle: Oracle, bitmaps_at_any_size: None, monkeypatch: pytest.MonkeyPatch, steps: int
) -> None:
    """ANDs and ORs of number and string comparisons come from the column bit indexes
    (server/index/filter_bits.py): the same records as FilterEvaluator's, with buckets of a
    few records or of many (PREFIX_STEPS)."""
    monkeypatch.setattr(filter_bits, "PREFIX_STEPS", steps)
    monkeypatch.setattr(sample_index, "_filter_bits", None)  # (built afresh with these steps)
    vocab = Vocabulary(item_records(oracle))
    rng = random.Random(f"filter-bits-{steps}")
    sizes = set()
    for _ in range(200):
        node: Any = _random_comparison(rng, vocab)
        for _ in range(rng.randint(0, 2)):
            node = {"op": rng.choice(["and", "or"]), "args": [node, _random_comparison(rng, vocab)]}
        query = parsed({"filter": json.dumps(node), "filter-lang": "cql2-json", "limit": "5"})
        found = sample_index.match_set(query)
        assert isinstance(found, Bitmap) and found.bits is not None, node  # from the bits, not a mask
        assert found.positions().tolist() == sample_index.match(query).tolist(), node
        assert found.count == len(sample_index.match(query))
        sizes.add(found.count)
    assert len(sizes) > 15  # all kinds of results, empty to everything


def test_what_bits_cannot_say_goes_to_the_evaluator(sample_index: Index, bitmaps_at_any_size: None) -> None:
    for text in ("NOT (eo:cloud_cover < 10)", "title LIKE 'S%'", "eo:cloud_cover < gsd",
                 "CASEI(platform) = 'LANDSAT-8'", "datetime > TIMESTAMP('2020-01-01T00:00:00Z')"):
        query = parsed({"filter": text, "limit": "5"})
        found = sample_index.match_set(query)
        assert isinstance(found, Bitmap) and found.mask is not None, text  # the evaluator's mask
        assert found.positions().tolist() == sample_index.match(query).tolist()
    with pytest.raises(InvalidQueryParameter):
        sample_index.match_set(parsed({"filter": json.dumps({"op": "<", "args": [{"property": "gsd"}, 10**400]}),
                                       "filter-lang": "cql2-json"}))


def test_number_bits_are_made_in_the_background_while_the_evaluator_answers(
    sample_index: Index, bitmaps_at_any_size: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(filter_bits, "BUILD_IN_BACKGROUND", True)
    monkeypatch.setattr(sample_index, "_filter_bits", None)
    query = parsed({"filter": "eo:cloud_cover <= 30", "limit": "5"})
    first = sample_index.match_set(query)
    assert isinstance(first, Bitmap) and first.mask is not None  # not waiting for the bits
    deadline = time.monotonic() + 30
    while sample_index._filter_bits.building and time.monotonic() < deadline:  # type: ignore[union-attr]
        time.sleep(0.01)
    later = sample_index.match_set(query)
    assert isinstance(later, Bitmap) and later.bits is not None
    assert later.positions().tolist() == first.positions().tolist() == sample_index.match(query).tolist()


def _http_walk(make_client: Any, method: str, query: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every page of a search through the app: by next links to the end, then back by prev."""
    with make_client(Settings(response_cache_bytes=0)) as client:
        return http_pages(client, method, query)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_http_pages_of_a_filter_are_the_same_from_the_bits(
    make_client: Any, monkeypatch: pytest.MonkeyPatch, method: str
) -> None:
    """Through the app (match cache on, as served): pages, numberMatched and links of filter
    searches with the sorted-positions path (the sample's size is under the thresholds), then
    with the Bitmap and bit-index paths."""
    queries = [{"filter": "eo:cloud_cover < 40 AND platform <> 'x'", "limit": 4},
               {"filter": "gsd >= 10 OR eo:cloud_cover BETWEEN 5 AND 20", "limit": 3},
               {"filter": "NOT (eo:cloud_cover > 50)", "limit": 5}]
    expected = [_http_walk(make_client, method, q) for q in queries]
    read_from_bits: list[int] = []
    real = Table._bitmap_page
    monkeypatch.setattr(Table, "_bitmap_page", lambda *a: read_from_bits.append(1) or real(*a))
    monkeypatch.setattr(table, "BITMAP_MIN_RECORDS", 0)
    monkeypatch.setattr(match_cache, "BITMAP_MIN_RECORDS", 0)
    monkeypatch.setattr(filter_bits, "BUILD_IN_BACKGROUND", False)
    assert [_http_walk(make_client, method, q) for q in queries] == expected
    assert len(read_from_bits) > 10 and all(len(pages) > 2 for pages in expected)


def test_a_long_in_list_is_one_pass_over_its_column_with_the_same_records(
    sample_index: Index, oracle: Oracle, bitmaps_at_any_size: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """qa16: IN made a full-size mask per value (FilterEvaluator), or the bits of each value
    (filter_bits, each cached, evicting the others): O(values x records); 200,000 ids in a
    1 MiB POST ran 11 s at 100,000 records, to the time budget. A list of strings or of numbers
    is now one pass over the column (np.isin). Counted in masks and value bits made (never
    timed); its TRUE and FALSE sets (NOT IN) are those of the per-value loop and of the bits."""
    vocab = Vocabulary(item_records(oracle))
    made = {"masks": 0, "value bits": 0}
    empty, value_bits = FilterEvaluator._empty, filter_bits.FilterBits.value_bits

    def counted_empty(self: FilterEvaluator) -> np.ndarray:
        made["masks"] += 1
        return empty(self)

    def counted_value_bits(self: filter_bits.FilterBits, *args: Any) -> np.ndarray:
        made["value bits"] += 1
        return value_bits(self, *args)

    monkeypatch.setattr(FilterEvaluator, "_empty", counted_empty)
    monkeypatch.setattr(filter_bits.FilterBits, "value_bits", counted_value_bits)
    rng = random.Random("long-in")
    is_number = lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)  # noqa: E731
    names = [(n, str) for n in ["id", "collection", *vocab.of_type(lambda v: isinstance(v, str))[:6]]] + \
            [(n, float) for n in vocab.of_type(is_number)[:6]]
    for name, kind in names:
        if name in ("id", "collection"):
            hits = [key[name == "id"] for key in rng.sample(sorted(oracle.keys()), 5)]
            values = [*hits, *(f"absent {i}" for i in range(3000))]
        elif kind is str:
            hits = [vocab.sample(rng, name, lambda v: isinstance(v, str)) for _ in range(5)]
            values = [*hits, *(f"absent {i}" for i in range(3000))]
        else:
            hits = [vocab.sample(rng, name, is_number) for _ in range(5)]
            values = [*hits, *(rng.uniform(-1e6, 1e6) for _ in range(3000))]
        rng.shuffle(values)
        within = {"op": "in", "args": [{"property": name}, values]}
        results = []
        for node in (within, {"op": "not", "args": [within]}):
            query = parsed({"filter": json.dumps(node), "filter-lang": "cql2-json", "limit": "5"})
            made.update({"masks": 0, "value bits": 0})
            found = sample_index.match_set(query).positions().tolist()
            assert made["value bits"] == 0 and made["masks"] <= 8, (name, made)  # one pass, not 3,005
            with monkeypatch.context() as loop:  # the per-value loop, as before (no cache between)
                loop.setattr(FilterEvaluator, "_in_at_once", lambda *_: None)
                assert found == Table.match(sample_index, query).tolist(), name
            results.append(found)
        assert results[0] and not set(results[0]) & set(results[1]), name  # its 5 values are held
