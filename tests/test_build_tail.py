"""The build's serial tail done by numpy (issue 18): a column's vocabulary sorted as rows of
bytes (columns._block_order), the parts every row has placed once for all columns
(columns.EveryRow), the box index's (slab, Z-order) sort packed into one key
(spatial._slab_z_order): each the same as the plain Python or numpy way it replaces."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from server.index.columns import _ORDER_MIN, ColumnsBuilder, _block_order
from server.index.spatial import _slab_z_order
from server.index.vocab import encoded


def _vocabulary(rng: random.Random, alphabet: str, widths: tuple[int, int], n: int) -> list[str]:
    texts: set[str] = set()
    while len(texts) < n:
        texts.add("".join(rng.choice(alphabet) for _ in range(rng.randint(*widths))))
    out = list(texts)
    rng.shuffle(out)
    return out


def _text_order(texts: list[str]) -> np.ndarray:
    """The indexes of ``texts`` (distinct) in str order, as the build sorts a vocabulary."""
    return _block_order(*encoded(texts))


@pytest.mark.parametrize(("alphabet", "widths"), [
    ("0123456789", (24, 24)),  # one width: the bytes as they are, one key
    ("ab", (0, 14)),  # prefixes of each other and the empty text: padding sorts first
    ("".join(map(chr, range(1, 128))), (1, 40)),  # every ASCII but NUL, wide: several keys (lexsort)
    ("aé中\U0001f600", (1, 6)),  # not ASCII: by its UTF-8 bytes (their order is code point order)
    ("a\0b", (1, 12)),  # a NUL in a text: sorted by Python
])
def test_text_order_is_python_str_order(alphabet: str, widths: tuple[int, int]) -> None:
    rng = random.Random(13)
    for n in (0, 1, 2, _ORDER_MIN - 1, _ORDER_MIN, 3 * _ORDER_MIN + 7):
        if len(alphabet) ** widths[1] < 2 * n:
            continue
        texts = _vocabulary(rng, alphabet, widths, n)
        order = _text_order(texts)
        assert order.dtype == np.int64
        assert order.tolist() == sorted(range(n), key=texts.__getitem__)


def test_date_times_of_mixed_spellings_sorted_as_texts() -> None:
    """A `datetime` vocabulary of the common spellings and others (the time key's texts)."""
    rng = random.Random(7)
    texts = set()
    while len(texts) < 5000:
        text = f"{rng.randint(1990, 2030)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:" \
               f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}"
        texts.add(text + rng.choice(["Z", ".123Z", f".{rng.randint(0, 999_999):06d}Z", "+01:00", ""]))
    vocab = list(texts)
    assert _text_order(vocab).tolist() == sorted(range(len(vocab)), key=vocab.__getitem__)


def _expected(rows: list[dict[str, Any]], positions: np.ndarray, key: str, kind: type) -> tuple[list[int], list[Any]]:
    """(sorted positions, values in that order) of the rows whose ``key`` is of ``kind``."""
    placed = sorted((int(positions[row]), props[key]) for row, props in enumerate(rows)
                    if type(props.get(key)) is kind and positions[row] >= 0)
    return [p for p, _ in placed], [v for _, v in placed]


def test_parts_every_row_has_share_their_placing_and_agree_with_each_rows() -> None:
    """Keys every row has (a number, a string) share one positions array (read-only) and hold
    the values in position order; a key most rows have, and one of mixed types, are placed by
    themselves; rows dropped from the index (-1) are left out of all of them."""
    rng = random.Random(5)
    n = 4000
    rows = [{"gsd": float(rng.randint(1, 60)), "platform": rng.choice(["s2a", "s2b", "l8", "l9"]),
             "cloud": float(row) if row % 9 else None, "mixed": rng.choice([1.5, "x", True])} for row in range(n)]
    builder = ColumnsBuilder()
    for row, props in enumerate(rows):
        builder.add(row, props)
    positions = np.full(n, -1, dtype=np.int64)
    kept = np.array(sorted(rng.sample(range(n), n - 37)))  # 37 rows dropped (duplicates, bad footprints)
    positions[kept] = np.random.default_rng(5).permutation(len(kept))
    columns = builder.freeze(positions)
    gsd, platform = columns["gsd"].number, columns["platform"].string
    assert gsd is not None and platform is not None
    assert gsd.rows is platform.rows and not gsd.rows.flags.writeable
    want_rows, want_values = _expected(rows, positions, "gsd", float)
    assert gsd.rows.tolist() == want_rows == list(range(n - 37)) and gsd.values.tolist() == want_values
    want_rows, want_values = _expected(rows, positions, "platform", str)
    assert platform.rows.tolist() == want_rows and [platform.vocab[c] for c in platform.codes] == want_values
    cloud = columns["cloud"].number
    assert cloud is not None and cloud.rows is not gsd.rows
    assert (cloud.rows.tolist(), cloud.values.tolist()) == _expected(rows, positions, "cloud", float)
    mixed = columns["mixed"]
    assert mixed.number is not None and mixed.string is not None and mixed.boolean is not None
    assert (mixed.number.rows.tolist(), mixed.number.values.tolist()) == _expected(rows, positions, "mixed", float)
    assert (mixed.boolean.rows.tolist(), mixed.boolean.values.tolist()) == _expected(rows, positions, "mixed", bool)


def test_a_placing_not_onto_every_position_is_not_shared() -> None:
    """Positions that leave gaps (a reload's new rows among the previous index's): each part
    placed by itself, as before."""
    builder = ColumnsBuilder()
    for row in range(10):
        builder.add(row, {"a": float(row), "b": float(-row)})
    positions = np.arange(10, dtype=np.int64) * 3
    columns = builder.freeze(positions)
    a, b = columns["a"].number, columns["b"].number
    assert a is not None and b is not None and a.rows is not b.rows
    assert a.rows.tolist() == b.rows.tolist() == positions.tolist() and a.values.tolist() == list(map(float, range(10)))


def test_slab_z_order_is_lexsort() -> None:
    rng = np.random.default_rng(3)
    for n in (1, 2, 3, 64, 5000):
        slabs = rng.integers(0, 5, n)
        z = rng.integers(0, 40, n).astype(np.uint64)  # many ties: record order kept
        assert np.array_equal(_slab_z_order(slabs, z), np.lexsort((z, slabs)))
    slabs = rng.integers(0, 2**40, 1000)  # too many bits to pack with the record numbers: lexsort
    z = rng.integers(0, 2**32, 1000).astype(np.uint64)
    assert np.array_equal(_slab_z_order(slabs, z), np.lexsort((z, slabs)))


def test_large_vocabularies_go_out_of_band_and_come_back(tmp_path: Any) -> None:
    """A snapshot of an index with several large vocabularies (UTF-8, one with a NUL in a
    text, which stays a pickled list): read back, every column the same, and the pickle
    itself no longer holds the texts (they are buffers beside it)."""
    from server.index.builder import IndexBuilder
    from server.runtime.snapshot import read_snapshot, write_snapshot

    builder = IndexBuilder()
    for row in range(1500):
        builder.add_item({"type": "Feature", "stac_version": "1.0.0", "id": f"i{row}", "collection": "c",
                          "geometry": {"type": "Point", "coordinates": [row % 90, row % 45]},
                          "bbox": [row % 90, row % 45, row % 90, row % 45], "assets": {}, "links": [],
                          "properties": {"datetime": f"2020-01-01T00:{row // 60 % 60:02d}:{row % 60:02d}Z",
                                         "name": f"nom-é-{row * 7919 % 1500}", "tile": f"T{row % 700:04d}",
                                         "odd": f"x\0{row}" if row % 2 else f"y{row}"}})
    index = builder.build()
    header = write_snapshot(str(tmp_path / "v.idx"), index, ["x"])
    assert header["pickle"][1] < 30_000  # "odd"'s ~1,500 texts in band; the others not
    read, _ = read_snapshot(str(tmp_path / "v.idx"), verify=False)
    for key in ("datetime", "name", "tile", "odd"):
        a, b = index.columns[key].string, read.columns[key].string
        assert a is not None and b is not None and len(a.vocab) >= 700
        assert a.vocab == b.vocab and np.array_equal(a.codes, b.codes) and np.array_equal(a.rows, b.rows)
