"""The build's compact string vocabularies (issue 18): server.index.vocab.TextTable (texts as
one UTF-8 block, their ends, hashes and an open-addressing table) finds exactly what a dict
would, hashes colliding or not, for any text (non-ASCII, empty, holding a NUL); a key builder
that turns compact (columns.SPILL) and merges pickled chunks as blocks freezes to the same
columns as one that keeps a dict, and an index built either way is the same."""

from __future__ import annotations

import pickle
import random
from typing import Any

import numpy as np
import pytest

from server.index import columns as columns_module
from server.index import vocab as vocab_module
from server.index.builder import IndexBuilder
from server.index.columns import ColumnsBuilder, _block_order, _KeyBuilder
from server.index.vocab import FIRST_SLOTS, HASH_CHECK, TextBlock, TextTable, block_of, decoded, encoded

ODD = ["", "\0", "a\0b", "\0\0", "é", "中文", "\U0001f600", "\ud800", "a", "ab", "b", " ", "Z" * 300]


def _added(table: TextTable, texts: list[str], hash_text: Any = hash) -> list[int]:
    data, ends = encoded(texts)
    hashes = np.fromiter(map(hash_text, texts), dtype=np.int64, count=len(texts))
    return table.add(data, ends, hashes).tolist()


def _check_like_a_dict(batches: list[list[str]], hash_text: Any = hash) -> TextTable:
    table, reference = TextTable(), {}
    for batch in batches:
        codes = _added(table, batch, hash_text)
        assert codes == [reference.setdefault(text, len(reference)) for text in batch]
        assert len(table) == len(reference)
    assert table.texts() == list(reference)
    assert table.texts(3, 7) == list(reference)[3:7]
    return table


def test_encoded_and_decoded_round_trip_every_kind_of_text() -> None:
    data, ends = encoded(ODD)
    assert decoded(data, ends) == ODD
    assert decoded(data, ends, 2, 5) == ODD[2:5]
    data, ends = encoded([])
    assert data == b"" and len(ends) == 0 and decoded(data, ends) == []


@pytest.mark.parametrize("hash_text", [hash, lambda text: 7, lambda text: len(text) % 3 - 2, lambda text: -(2**63)])
def test_lookups_are_exact_whatever_the_hashes(hash_text: Any) -> None:
    """All texts one hash (or three): every lookup goes through the byte comparison, and texts
    that are prefixes of each other, empty, or differ only past a NUL are told apart."""
    rng = random.Random(15)
    pool = ODD + [f"{rng.randint(0, 10**6)}{rng.choice(ODD)}" for _ in range(400)]
    pool = list(dict.fromkeys(pool))
    batches = [list(dict.fromkeys(rng.sample(pool, rng.randint(0, 120)))) for _ in range(12)]
    _check_like_a_dict([ODD, *batches, pool], hash_text)


def test_grows_past_its_first_table() -> None:
    """More texts than the first table holds (rehashed as it grows), half of each batch seen before."""
    texts = [f"2024-01-01T00:{n // 60 % 60:02d}:{n % 60:02d}.{n:06d}Z" for n in range(6 * FIRST_SLOTS)]
    batches = [texts[k * 1000 : k * 1000 + 1500] for k in range(len(texts) // 1000)]
    table = _check_like_a_dict(batches)
    assert len(table.table) >= len(table) / 0.7 and len(table.table) > FIRST_SLOTS
    assert table.nbytes() < 80 * len(table)  # a dict of these: ~140 B a text


@pytest.mark.parametrize("hash_text", [hash, lambda text: 3])
def test_texts_added_one_at_a_time_or_known_new_are_found_as_added_ones(hash_text: Any) -> None:
    """The table ItemLinks keeps its links in (append, has, extend: no lookup by the caller's
    word) and the build's (add) are one: a text added any way is found by each lookup, the
    others are not, past the first table and through colliding hashes."""
    table, reference = TextTable(first_slots=8), {}
    rng = random.Random(16)
    for n in range(200):
        text = f"t{n}" + rng.choice(ODD)
        if text in reference:
            continue
        if n % 3 == 0:
            table.append(text.encode("utf-8", "surrogatepass"), hash_text(text))
            reference[text] = len(reference)
        else:
            batch = [text, f"u{n}"]
            data, ends = encoded(batch)
            table.extend(data, ends, np.fromiter(map(hash_text, batch), dtype=np.int64, count=2))
            for t in batch:
                reference[t] = len(reference)
    assert table.texts() == list(reference) and len(table.table) > 8

    def same(code: int, text: str) -> bool:
        return table.texts(code, code + 1) == [text]

    absent = ["", "t", "u", "v1", "é"]
    assert all(table.has(hash_text(t), same, t) for t in reference)
    assert not any(table.has(hash_text(t), same, t) for t in absent)
    assert _added(table, [*absent, *reference], hash_text) == [*range(len(reference), len(reference) + 5),
                                                               *reference.values()]
    table.forget_hashes()
    assert not table.has(hash_text("t1"), same, "t1") and table.texts()[:2] == list(reference)[:2]


def _rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    rows = []
    for row in range(n):
        props: dict[str, Any] = {
            "datetime": f"20{rng.randint(10, 29)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}T0{rng.randint(0, 9)}:"
                        f"{rng.randint(10, 59)}:{rng.randint(10, 59)}.{rng.randint(0, 999):03d}Z",
            "platform": rng.choice(["s2a", "s2b", "l8"]),
            "title": rng.choice(ODD) + str(rng.randint(0, n // 2)),  # repeats, NULs, non-ASCII
            "created": rng.choice(["2020-01-01T00:00:00Z", "nonsense", "2021-02-03T04:05:06+01:00"]),
        }
        if row % 7 == 0:
            props["mixed"] = rng.choice([1.5, "x", True, ["a"], "y" * rng.randint(0, 3)])
        rows.append(props)
    return rows


def _frozen(rows: list[dict[str, Any]], chunk: int, pickled: bool, positions: np.ndarray) -> dict[str, Any]:
    """Columns of ``rows`` added in chunks of ``chunk`` rows (each its own builder, as a forked
    process's, pickled or not, its times parsed there) merged into one."""
    whole = ColumnsBuilder()
    for first in range(0, len(rows), chunk):
        part = ColumnsBuilder()
        for row, props in enumerate(rows[first : first + chunk]):
            part.add(row, props)
        part.parse_times()
        whole.merge(pickle.loads(pickle.dumps(part, protocol=5)) if pickled else part, first)
    return whole.freeze(positions)


def _same_columns(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert a.keys() == b.keys()
    for key in a:
        for part in ("number", "string", "boolean", "time"):
            pa, pb = getattr(a[key], part), getattr(b[key], part)
            assert (pa is None) == (pb is None), (key, part)
            if pa is None:
                continue
            assert pa.rows.tolist() == pb.rows.tolist(), (key, part)
            if part == "string":
                assert list(pa.vocab) == list(pb.vocab) and pa.codes.tolist() == pb.codes.tolist(), key
                assert type(pa.vocab) is type(pb.vocab), key
            else:
                assert pa.values.tolist() == pb.values.tolist(), (key, part)


@pytest.mark.parametrize(("spill", "chunk", "pickled"), [(8, 3000, False), (8, 97, True), (300, 512, True), (8, 1, True)])
def test_compact_vocabularies_freeze_as_dicts_do(monkeypatch: pytest.MonkeyPatch, spill: int, chunk: int,
                                                  pickled: bool) -> None:
    """The same columns, the vocabularies turning compact (SPILL small: in `add`, in merges of
    pickled chunks, in chunks themselves) or not (one dict, one process), with rows dropped."""
    n = 3000
    rows = _rows(n, 3)
    rng = np.random.default_rng(4)
    positions = np.full(n, -1, dtype=np.int64)
    kept = np.sort(rng.choice(n, n - 41, replace=False))
    positions[kept] = rng.permutation(len(kept))
    plain = _frozen(rows, n, False, positions)
    assert isinstance(plain["datetime"].string.vocab, TextBlock) and isinstance(plain["title"].string.vocab, list)
    monkeypatch.setattr(columns_module, "SPILL", spill)
    _same_columns(_frozen(rows, chunk, pickled, positions), plain)


def test_a_pickled_key_carries_its_texts_as_a_block(monkeypatch: pytest.MonkeyPatch) -> None:
    """No str per text in a chunk's pickle: the texts as one block, their ends and hashes; one
    hashed by a process of another salt is hashed again where merged."""
    monkeypatch.setattr(columns_module, "SPILL", 16)
    builder = ColumnsBuilder()
    texts = [f"t{n}é" for n in range(100)]
    for row, text in enumerate(texts + texts[::-1]):
        builder.add(row, {"k": text})
    assert builder.keys["k"].table is not None and len(builder.keys["k"].vocab) < 16
    moved = pickle.loads(pickle.dumps(builder.keys["k"], protocol=5))
    assert moved.vocab == {} and moved.table is None and moved.incoming is not None
    data, ends, hashes, check = moved.incoming
    assert isinstance(data, (bytes, bytearray)) and decoded(data, ends) == texts and check == HASH_CHECK
    moved.incoming = (data, ends, hashes[::-1].copy(), HASH_CHECK + 1)  # wrong hashes, told by the check
    into = _KeyBuilder()
    for row, text in enumerate(["t5é", "new"]):
        into.add(row, text)
    into.merge(moved, 2)
    into._spill()  # noqa: SLF001 (the table's codes for all)
    assert into.table is not None
    codes = np.frombuffer(into.str_codes, dtype=np.int32).tolist()
    assert [into.table.texts()[c] for c in codes] == ["t5é", "new", *texts, *texts[::-1]]
    assert into.table.texts()[:3] == ["t5é", "new", "t0é"]


@pytest.mark.parametrize("widths", [(24, 24), (0, 9), (23, 25)])
def test_a_block_made_from_the_bytes_is_the_one_made_from_the_texts(monkeypatch: pytest.MonkeyPatch,
                                                                   widths: tuple[int, int]) -> None:
    """block_of (one width: rows of a matrix; else gathered a batch of bytes at a time, batches
    made small here) against TextBlock.of of the same texts in the same order."""
    monkeypatch.setattr(vocab_module, "_BATCH_BYTES", 100)
    rng = random.Random(widths[1])
    texts = list(dict.fromkeys("".join(rng.choice("0123456789é") for _ in range(rng.randint(*widths))) for _ in range(2000)))
    data, ends = encoded(texts)
    for order in (np.arange(len(texts)), np.array(rng.sample(range(len(texts)), len(texts) // 3)), np.zeros(1, np.int64)):
        expected = TextBlock.of([texts[i] for i in order.tolist()])
        made = block_of(data, ends, order)
        assert expected is not None and bytes(made.data) == bytes(expected.data)
        assert made.starts.tolist() == expected.starts.tolist() and made == expected


def test_block_order_of_utf8_is_str_order() -> None:
    rng = random.Random(9)
    texts = list(dict.fromkeys("".join(rng.choice("aé中\U0001f600\ud800z") for _ in range(rng.randint(0, 6)))
                               for _ in range(3000)))
    data, ends = encoded(texts)
    assert _block_order(data, ends).tolist() == sorted(range(len(texts)), key=texts.__getitem__)


def _item(n: int, rng: random.Random) -> dict[str, Any]:
    x, y = rng.uniform(-170, 170), rng.uniform(-80, 80)
    return {"type": "Feature", "stac_version": "1.0.0", "id": f"i{n % 700}", "collection": "c",
            "bbox": [x, y, x + 1, y + 1],
            "geometry": {"type": "Polygon", "coordinates": [[[x, y], [x + 1, y], [x + 1, y + 1], [x, y + 1], [x, y]]]},
            "properties": {"datetime": f"2021-0{1 + n % 9}-1{n % 10}T00:00:{n % 60:02d}.{n:06d}Z",
                           "platform": rng.choice(["a", "b"]), "label": f"é{n % 300}"},
            "links": [], "assets": {}}


def _index(chunks: int, rng_seed: int) -> Any:
    rng = random.Random(rng_seed)
    items = [_item(n, rng) for n in range(1000)]  # 300 duplicate ids: rows dropped
    whole = IndexBuilder()
    whole.add_collection({"type": "Collection", "id": "c", "description": "", "license": "x",
                          "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
                          "links": []})
    size = len(items) // chunks
    for first in range(0, len(items), size):
        part = IndexBuilder()
        for item in items[first : first + size]:
            part.add_item(item)
        whole.add_chunk(pickle.loads(pickle.dumps(part.chunk(), protocol=5)))
    return whole.build()


def test_an_index_built_with_compact_vocabularies_is_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = _index(4, 1)
    monkeypatch.setattr(columns_module, "SPILL", 32)
    compact = _index(4, 1)
    assert list(plain.ids) == list(compact.ids) and len(list(plain.ids)) == 700
    _same_columns(plain.columns, compact.columns)
    assert isinstance(compact.columns["datetime"].string.vocab, TextBlock)


def test_a_str_subclass_is_coded_as_its_text(monkeypatch: pytest.MonkeyPatch) -> None:
    """_KeyBuilder.add: a str subclass (numpy's str_; never one from JSON) takes the str branch
    as its plain text, spills included (SPILL small): the same codes and vocabulary as plain
    texts, and no subclass kept in the vocabulary."""
    monkeypatch.setattr(columns_module, "SPILL", 8)
    texts = [f"t{n % 23}é" for n in range(200)]
    plain, mixed = _KeyBuilder(), _KeyBuilder()
    for row, text in enumerate(texts):
        plain.add(row, text)
        mixed.add(row, np.str_(text) if row % 3 else text)
    assert mixed.table is not None and all(type(text) is str for text in mixed.vocab)
    for builder in (plain, mixed):
        builder._spill()  # noqa: SLF001 (the table's codes for all)
    assert mixed.table.texts() == plain.table.texts() == list(dict.fromkeys(texts))  # type: ignore[union-attr]
    assert mixed.str_codes == plain.str_codes and mixed.str_rows == plain.str_rows
