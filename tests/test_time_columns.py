"""Time properties read a vocabulary at a time (server.index.columns._parse_date_times): the
common spellings by numpy, the rest one at a time. A real server's CQL2 time comparisons on
`created` (a time key) over texts of every kind, valid and not, agree with the one-at-a-time
parser the index used before (parse_document_datetime)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np
import pytest

from server.index.columns import ColumnsBuilder
from server.query.datetime import from_micros, parse_document_datetime
from tests.helpers import CatalogDir, collection, item, run_server

ITEMS = 900  # over _VECTOR_MIN texts: the vocabulary is read by numpy


def _texts() -> list[str]:
    rng = random.Random(18)
    texts = ["2024-02-29T23:59:59.999999Z", "2023-02-29T00:00:00Z", "2000-02-29T12:00:00.500Z",
             "1900-02-29T00:00:00Z", "0001-01-01T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z",
             "2021-13-01T00:00:00Z", "2021-04-31T00:00:00Z", "2021-01-01T24:00:00Z", "2021-01-01T00:60:00Z",
             "2021-01-01T00:00:60Z", "2021-01-01t00:00:00z", "2021-01-01 00:00:00Z", "2021-01-01T00:00:00+05:30",
             "2021-01-01T00:00:00.12Z", "2021-01-01T00:00:00.1234567Z", "2021-01-01T00:00:00", "not a time at all!!!",
             "2021-01-01T00:00:0٣Z", "1969-12-31T23:59:59.999999Z", "1970-01-01T00:00:00Z"]
    while len(texts) < ITEMS:
        year = rng.choice([rng.randint(1, 9999), rng.randint(1950, 2050), 1600, 2000, 2100])
        text = (f"{year:04d}-{rng.randint(0, 13):02d}-{rng.randint(0, 32):02d}T{rng.randint(0, 24):02d}:"
                f"{rng.randint(0, 60):02d}:{rng.randint(0, 60):02d}")
        text += rng.choice(["", ".", f".{rng.randint(0, 999):03d}", f".{rng.randint(0, 999_999):06d}"])
        texts.append(text + rng.choice(["Z", "Z", "Z", "", "z", "+01:00"]))
    return texts


def _instant(text: str) -> int | None:
    try:
        return parse_document_datetime(text)
    except (ValueError, OverflowError):
        return None


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int | None]]]:
    folder = CatalogDir(tmp_path_factory.mktemp("time-columns"))
    texts = _texts()
    folder.write("collection.json", collection("times"))
    lines = [json.dumps(item(f"i{n}", collection="times", properties={"created": text}))
             for n, text in enumerate(texts)]
    folder.write_text("items.ndjson", "\n".join(lines) + "\n")
    with run_server([str(folder.path("collection.json")), str(folder.path("items.ndjson"))]) as url:
        yield url, {f"i{n}": _instant(text) for n, text in enumerate(texts)}


def _matching(url: str, cql2: dict[str, Any]) -> set[str]:
    response = httpx.post(f"{url}/search", json={"filter-lang": "cql2-json", "filter": cql2, "limit": 10_000},
                          timeout=30)
    assert response.status_code == 200, response.text
    page = response.json()
    assert len(page["features"]) == page["numberMatched"]
    return {feature["id"] for feature in page["features"]}


def test_time_comparisons_agree_with_the_one_at_a_time_parser(served: tuple[str, dict[str, int | None]]) -> None:
    url, instants = served
    parsed = sorted({value for value in instants.values() if value is not None})
    assert 300 < len(parsed) < ITEMS  # many texts are times, many are not
    picks = [parsed[0], parsed[len(parsed) // 3], parsed[len(parsed) // 2], parsed[-1]]
    for micros in picks:
        stamp = from_micros(micros).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
        for op, keep in ((">=", lambda v, m=micros: v >= m), ("=", lambda v, m=micros: v == m),
                         ("<", lambda v, m=micros: v < m)):
            expected = {iid for iid, value in instants.items() if value is not None and keep(value)}
            got = _matching(url, {"op": op, "args": [{"property": "created"}, {"timestamp": stamp}]})
            assert got == expected, (op, stamp)


def test_time_keys_parsed_by_the_chunks_freeze_as_parsed_at_freeze() -> None:
    """A time key's texts parsed where each chunk is made (ColumnsBuilder.parse_times, in the
    forked indexing processes) and carried through merges, with texts added in between by the
    merging builder itself, freeze to the same time column as texts parsed all at freeze."""
    texts = _texts()
    rows = [{"created": text, "title": text} for text in texts[::3] + texts]  # repeats: codes reused across chunks
    whole = ColumnsBuilder()
    for row, properties in enumerate(rows):
        whole.add(row, properties)
    merged = ColumnsBuilder()
    for at, properties in enumerate(rows[:3]):  # rows added by the merging builder before any chunk
        merged.add(at, properties)
    at = 3
    for size in (5, 300, 1, 400):  # chunks, then a few rows added by the merging builder itself
        chunk = ColumnsBuilder()
        for row, properties in enumerate(rows[at:at + size]):
            chunk.add(row, properties)
        chunk.parse_times()
        merged.merge(chunk, at)
        at += size
        for properties in rows[at:at + 3]:
            merged.add(at, properties)
            at += 1
    for properties in rows[at:]:
        merged.add(at, properties)
        at += 1
    builder = merged.keys["created"]
    assert builder.times is not None and 0 < len(builder.times) < len(builder.vocab)  # carried; the last adds not yet
    assert merged.keys["title"].times is None  # not a time key: not parsed ahead
    positions = np.arange(len(rows), dtype=np.int64)[::-1].copy()  # an order other than the rows'
    expected, got = whole.freeze(positions), merged.freeze(positions)
    for key in ("created", "title"):
        a, b = expected[key], got[key]
        assert a.string is not None and b.string is not None
        assert a.string.vocab == b.string.vocab
        assert np.array_equal(a.string.rows, b.string.rows) and np.array_equal(a.string.codes, b.string.codes)
        assert (a.time is None) == (b.time is None)
        if a.time is not None and b.time is not None:
            assert np.array_equal(a.time.rows, b.time.rows) and np.array_equal(a.time.values, b.time.values)
    assert got["created"].time is not None and len(got["created"].time.rows) > len(rows) // 4
