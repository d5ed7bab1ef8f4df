"""Large vocabularies kept as one UTF-8 block (server.index.vocab.TextBlock, issue 18 target 2):
the block reads as the sorted list it replaces (items, slices, iteration, bisect), a snapshot
gives it back as views of the mapped file (no str per text in the serving process), and a
server answers string and date-time filters, sorts, aggregations and queryables the same over
blocks as over lists."""

from __future__ import annotations

import bisect
import copy
import pickle
import random
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from starlette.testclient import TestClient

from server.index import vocab as vocab_module
from server.index.builder import IndexBuilder
from server.index.vocab import BLOCK_MIN, TextBlock, compact
from server.runtime.app import create_app
from server.runtime.snapshot import read_snapshot, write_snapshot
from server.settings import Settings


def test_block_reads_as_the_sorted_list() -> None:
    rng = random.Random(14)
    alphabet = "aZé中\U0001f600b\ud800"  # ASCII, 2-, 3-, 4-byte UTF-8 and a lone surrogate
    texts = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))) for _ in range(20000)})
    assert len(texts) > 2 * 4096  # iteration crosses its chunks
    block = TextBlock.of(texts)
    assert block is not None and len(block) == len(texts)
    assert list(block) == texts and block == texts and block == TextBlock.of(texts) and block != texts[:-1]
    assert [block[i] for i in (0, 1, 4095, 4096, -1, -len(texts))] == [texts[i] for i in (0, 1, 4095, 4096, -1, -len(texts))]
    assert block[3:9000] == texts[3:9000] and block[9000:3] == [] and block[::1000] == texts[::1000]
    with pytest.raises(IndexError):
        block[len(texts)]
    for probe in ["", "a", "b\ud800", "zzz", "中中", texts[77], texts[-1] + "a"]:
        assert bisect.bisect_left(block, probe) == bisect.bisect_left(texts, probe)
        assert bisect.bisect_right(block, probe) == bisect.bisect_right(texts, probe)
        assert (probe in block) == (probe in texts)
    buffers: list[pickle.PickleBuffer] = []
    payload = pickle.dumps(block, protocol=5, buffer_callback=buffers.append)
    assert len(payload) < 500 and len(buffers) == 2  # the texts and their starts, out of band
    back = pickle.loads(payload, buffers=[b.raw() for b in buffers])
    assert isinstance(back.data, memoryview) and back == texts  # the given buffer itself, not a copy
    assert copy.deepcopy(block) == texts and pickle.loads(pickle.dumps(block)) == texts
    assert TextBlock.of(["a", "b\0c"]) is None  # a NUL in a text: stays a list
    assert compact(["a\0", *texts[:BLOCK_MIN]]) == ["a\0", *texts[:BLOCK_MIN]]
    assert isinstance(compact(texts[: BLOCK_MIN - 1]), list) and isinstance(compact(texts[:BLOCK_MIN]), TextBlock)


def _index(n: int) -> Any:
    builder = IndexBuilder()
    for row in range(n):
        x, y = row % 90, row % 45
        when = f"2020-{row % 12 + 1:02d}-{row % 28 + 1:02d}T{row % 24:02d}:{row // 24 % 60:02d}:{row % 60:02d}.{row:03d}Z"
        builder.add_item({
            "type": "Feature", "stac_version": "1.0.0", "id": f"i{row:04d}", "collection": "c",
            "geometry": {"type": "Point", "coordinates": [x, y]}, "bbox": [x, y, x, y], "assets": {}, "links": [],
            "properties": {
                "datetime": when, "name": f"Nom-É-{row * 7919 % n}", "tile": f"T{row % 300:04d}",
                "odd": f"x\0{row}" if row % 2 else f"y{row}"}})
    return builder.build()


QUERIES: list[tuple[str, str, dict[str, Any] | None]] = [
    ("GET", "/search?filter=datetime<TIMESTAMP('2020-06-01T00:00:00Z')&limit=20&sortby=-datetime", None),
    ("GET", "/search?filter=T_AFTER(datetime,TIMESTAMP('2020-11-20T12:00:00Z'))&limit=30", None),
    ("GET", "/search?datetime=2020-03-01T00:00:00Z/2020-04-15T00:00:00Z&limit=40&sortby=name", None),
    ("POST", "/search", {"filter-lang": "cql2-json", "limit": 25, "sortby": [{"field": "tile", "direction": "desc"}],
                         "filter": {"op": "and", "args": [{"op": ">=", "args": [{"property": "name"}, "Nom-É-5"]},
                                                          {"op": "<", "args": [{"property": "tile"}, "T0150"]}]}}),
    ("POST", "/search", {"filter-lang": "cql2-json", "limit": 50,
                         "filter": {"op": "like", "args": [{"property": "name"}, "Nom-É-1%7"]}}),
    ("POST", "/search", {"filter-lang": "cql2-json", "limit": 50,
                         "filter": {"op": "=", "args": [{"op": "casei", "args": [{"property": "name"}]},
                                                        {"op": "casei", "args": ["nom-é-123"]}]}}),
    ("POST", "/search", {"filter-lang": "cql2-json", "limit": 50,
                         "filter": {"op": "in", "args": [{"property": "tile"}, ["T0007", "T0299", "T9999"]]}}),
    ("POST", "/search", {"filter-lang": "cql2-json", "limit": 50,
                         "filter": {"op": "<", "args": [{"property": "name"}, {"property": "tile"}]}}),
    ("POST", "/search", {"filter-lang": "cql2-json", "limit": 10, "sortby": [{"field": "odd", "direction": "asc"}],
                         "filter": {"op": "=", "args": [{"property": "id"}, "i0042"]}}),
    ("GET", "/search?filter=name='Nom-É-42' OR tile='T0042'&limit=50", None),
    ("GET", "/search?filter=id>'i0600' AND id<='i0650'&sortby=-id&limit=20", None),  # the ids' vocabulary (ids.py)
    ("GET", "/aggregate?aggregations=total_count,datetime_frequency,datetime_max,datetime_min", None),
    ("GET", "/queryables", None),
]


def _answers(index: Any) -> list[Any]:
    out = []
    with TestClient(create_app(Settings(), index=index), base_url="http://testserver") as client:
        for method, url, body in QUERIES:
            response = client.request(method, url, json=body)
            out.append((url, response.status_code, response.json()))
    return out


@pytest.mark.parametrize("seed", range(6))
def test_a_block_merged_as_bytes_is_the_block_of_the_merged_list(seed: int) -> None:
    """A reload's merge of a large vocabulary (vocab.merge_block: runs of the block's bytes, the
    few new words spliced in) gives the block TextBlock.of would make of the merged list, byte
    for byte, with where each kept text and each word lands; texts no longer used are left out
    (at the ends, in runs, all of them), words already there are found, not added twice."""
    rng = random.Random(seed)
    alphabet = "aZé中\U0001f600b\ud800"
    texts = sorted({"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 7))) for _ in range(3000)})
    block = TextBlock.of(texts)
    assert block is not None
    keep = [rng.random() < 0.97 for _ in texts]  # a few gone, some in runs
    keep[0], keep[-1] = seed % 2 == 0, seed % 3 == 0
    if seed == 5:
        keep = [True] * len(texts)
    used = np.flatnonzero(keep)
    outside = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 9))) for _ in range(40)]
    words = sorted(set(rng.sample(texts, 15) + outside + ["", "\U0001f600" * 9, "a" * 3]))
    merged = sorted({texts[i] for i in used} | set(words))
    got = vocab_module.merge_block(block, used, words)
    assert got is not None
    out, landed, codes = got
    expected = TextBlock.of(merged)
    assert expected is not None and bytes(out.data) == bytes(expected.data) and np.array_equal(out.starts, expected.starts)
    assert [merged[i] for i in landed.tolist()] == [texts[i] for i in used.tolist()]
    assert [merged[i] for i in codes.tolist()] == words
    assert vocab_module.merge_block(block, used, ["with a \0 NUL"]) is None  # (kept as a list: no block holds it)
    assert vocab_module.merge_block(block, used[: BLOCK_MIN // 2], []) is None  # too few for a block


def test_served_blocks_answer_as_lists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    n = 1200
    index = _index(n)
    for key in ("datetime", "name", "tile"):
        assert isinstance(index.columns[key].string.vocab, TextBlock), key
    assert isinstance(index.columns["odd"].string.vocab, list)  # a NUL in its texts
    write_snapshot(str(tmp_path / "v.idx"), index, ["x"])
    served, _ = read_snapshot(str(tmp_path / "v.idx"), verify=False)
    for key in ("datetime", "name", "tile"):
        block = served.columns[key].string.vocab
        # views of the mapped file: no str per text, no copy in the serving process's heap
        assert isinstance(block, TextBlock) and isinstance(block.data, memoryview), key
        assert isinstance(block.starts, np.ndarray) and not block.starts.flags.owndata, key
        assert block == index.columns[key].string.vocab and len(block) >= 300
    monkeypatch.setattr(vocab_module, "BLOCK_MIN", 10**9)  # the same catalog, vocabularies as lists
    as_lists = _index(n)
    assert isinstance(as_lists.columns["datetime"].string.vocab, list)
    want = _answers(as_lists)
    assert [status for _, status, _ in want] == [200] * len(QUERIES), want
    assert all(answer["features"] for _, _, answer in want if "features" in answer)  # each query finds items
    assert _answers(index) == want
    assert _answers(served) == want
