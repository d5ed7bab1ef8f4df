"""What a forked indexing child hands back for a chunk (issue 18, session 14): the newlines it
counts from its own lines, the items' bytes it writes to the chunk's file as they come, the
footprints' WKB of a batch appended at once: each the same as the way it replaced."""

from __future__ import annotations

import json
import mmap
import random
from pathlib import Path
from typing import BinaryIO

import numpy as np
import orjson
import pytest
import shapely

from server.catalog import formats
from server.catalog.loader import _chunk_newlines
from server.index.builder import GEOMETRY_BATCH, IndexBuilder, ItemRejected
from tests.helpers import item


def _newlines_as_the_child_counts(data: bytes | mmap.mmap, start: int, end: int) -> int:
    """_index_lines' count: the last non-blank line of line_spans, then _chunk_newlines."""
    last = (0, 0, start)
    for last in formats.line_spans(data, start, 0, end):  # noqa: B007 (the last one is wanted)
        pass
    return _chunk_newlines(data, start, end, last[0], last[2])


def test_a_chunks_newlines_are_counted_from_its_lines(tmp_path: Path) -> None:
    """Every chunk of files of lines, blank lines, lines of whitespace, trailing blank lines,
    no newline at the end, nothing but blank lines: the newlines of the chunk's bytes (as
    formats.newlines counted them), in bytes and in a mapped file."""
    rng = random.Random(14)
    pieces = [b'{"a":1}', b"", b"   ", b"\t", b"\r", b'{"b":[1,2]}', b" {}", b"x" * 50]
    texts = [b"", b"\n", b"\n\n\n", b"{}", b"{}\n", b"\n{}", b"  \n  ", b'{"a":1}\n\n  \n']
    for _ in range(300):
        lines = [rng.choice(pieces) for _ in range(rng.randrange(1, 30))]
        texts.append(b"\n".join(lines) + rng.choice([b"", b"\n", b"\n\n", b"\n \n"]))
    checked = 0
    for k, text in enumerate(texts):
        path = tmp_path / f"{k}.ndjson"
        path.write_bytes(text)
        with open(path, "rb") as f:
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) if text else None
        for data in (text, mapped) if mapped is not None else (text,):
            # chunks as _index_lines_forked cuts them: from a line's start to just after a newline, or the end
            for size in (1, 3, 7, 20, 1 << 20):
                start = 0
                while start < len(text):
                    newline = text.find(b"\n", start + size)
                    end = len(text) if newline < 0 else newline + 1
                    assert _newlines_as_the_child_counts(data, start, end) == text.count(b"\n", start, end), \
                        (text, start, end)
                    checked += 1
                    start = end
        if mapped is not None:
            mapped.close()
    assert checked > 2000


def _items(count: int) -> list[dict]:
    out = []
    for n in range(count):
        out.append(item(f"i{n}-é", collection="c", bbox=(n % 50, n % 40, n % 50 + 1, n % 40 + 2),
                        properties={"title": "t\u00e9\n\"q\"", "n": n, "x": n / 3}))
    out[5]["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0], [2, 2], [2, 0], [0, 2], [0, 0]]]}  # repaired
    out[6]["geometry"] = {"type": "Polygon", "coordinates": [[[0, 0], [1, 1]]]}  # GEOS cannot read it
    out[7]["geometry"] = None
    out[8]["geometry"] = {"type": "Point", "coordinates": [1.5, 2.5]}
    del out[9]["properties"]  # rejected by add_item: no bytes written for it
    return out


def test_a_chunks_items_written_as_they_come_are_the_bytes_it_gathered(tmp_path: Path) -> None:
    """A builder given ``json_path`` (a forked child under `index -o`) leaves the same items'
    bytes and ends in the chunk's file as one that gathers them and writes them at chunk(),
    over more than one footprint batch; the WKB of a batch appended at once is each
    footprint's shapely.to_wkb, '' for none."""
    items = _items(GEOMETRY_BATCH + 300)
    chunks = []
    # gathered; streamed to the chunk's file (as the loader's children: json_path is chunk()'s);
    # streamed, then carried in the chunk; streamed, then left in another file
    for json_path, chunk_path in ((None, "gathered"), ("streamed", "streamed"), ("carried", None), ("first", "moved")):
        builder = IndexBuilder(json_path=json_path and str(tmp_path / json_path))
        for doc in items:
            try:
                builder.add_item(json.loads(json.dumps(doc)), "label")
            except ItemRejected:
                pass
        chunks.append(builder.chunk(chunk_path and str(tmp_path / chunk_path)))
    gathered, streamed, carried, moved = chunks
    assert streamed.json_in == (str(tmp_path / "streamed"), gathered.json_in[1])  # type: ignore[index]
    assert moved.json_in == (str(tmp_path / "moved"), gathered.json_in[1])  # type: ignore[index]
    for chunk in (streamed, moved):
        assert Path(chunk.json_in[0]).read_bytes() == Path(gathered.json_in[0]).read_bytes()  # type: ignore[index]
        assert len(chunk.json[0]) == 0 and chunk.json[1] == gathered.json[1]
    assert carried.json_in is None and bytes(carried.json[0]) == Path(gathered.json_in[0]).read_bytes()  # type: ignore[index]
    assert carried.json[1] == gathered.json[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gathered", "moved", "streamed"]
    assert streamed.json[1] == gathered.json[1] and len(gathered.json[1]) == len(items) - 1
    kept = [doc for doc in items if "properties" in doc]
    data = Path(gathered.json_in[0]).read_bytes()  # type: ignore[index]
    starts = [0, *gathered.json[1][:-1]]
    assert [orjson.loads(data[s:e])["id"] for s, e in zip(starts, gathered.json[1])] == [d["id"] for d in kept]
    wkb, ends = streamed.wkb
    starts = [0, *ends[:-1]]
    blobs = [bytes(wkb[s:e]) for s, e in zip(starts, ends)]
    assert blobs == [bytes(b) for b in (gathered.wkb[0][s:e] for s, e in zip(starts, gathered.wkb[1]))]
    for doc, blob in zip(kept, blobs):
        geometry = doc["geometry"]
        if geometry is None or doc["id"].startswith("i6-"):
            assert blob == b""
            continue
        shape = shapely.from_geojson(orjson.dumps(geometry))
        if not shapely.is_valid(shape):
            shape = shapely.make_valid(shape)
        assert blob == shapely.to_wkb(shape), doc["id"]


def test_blobs_appended_by_forked_builders_are_placed_where_they_are(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A spool's FileBlobWriter with blobs of its own before and after two AppendBlobWriters
    (the children's) appended pieces to the same file, interleaved, and a third's pieces that
    no chunk names (a child ahead of one that stopped): every blob read back where it is, in
    load order and in a shuffled order, and the offsets a reload's merge reads the same."""
    from server.index.blobs import AppendBlobWriter

    monkeypatch.setattr(AppendBlobWriter, "PIECE", 300)
    rng = random.Random(15)
    path = tmp_path / "spool"
    with open(path, "w+b", buffering=1 << 16) as spool:
        _place_appended(spool, path, rng)


def _place_appended(spool: BinaryIO, path: Path, rng: random.Random) -> None:
    from array import array

    from server.index.blobs import AppendBlobWriter, FileBlobWriter

    def blob() -> bytes:
        return bytes(rng.randrange(97, 123) for _ in range(rng.randrange(1, 120)))

    spool.write(b"head")
    writer = FileBlobWriter(spool)
    expected: list[bytes] = []
    for _ in range(7):
        expected.append(blob())
        writer.append(expected[-1])
    spool.flush()  # as before a fork
    children = [AppendBlobWriter(str(path)) for _ in range(3)]
    chunks: list[list[bytes]] = [[], [], []]
    for _ in range(400):  # the children's appends interleave, a piece at a time
        k = rng.randrange(3)
        chunks[k].append(blob())
        children[k].append(chunks[k][-1])
    for k in (0, 1, 2):
        children[k].close()
        assert len(children[k].pieces) // 2 > 5  # pieces of each, between the others'
    for k in (1, 0):  # the third child's chunk is not taken
        writer.place(children[k].pieces, children[k].ends)
        expected += chunks[k]
    writer.appended()
    for _ in range(5):
        expected.append(blob())
        writer.append(expected[-1])
    writer.extend(b"xyz", array("q", [1, 3]))
    expected += [b"x", b"yz"]
    starts, ends = writer.offsets()
    column = writer.freeze()
    assert [column[i] for i in range(len(expected))] == expected
    assert [bytes(column.data[s:e]) for s, e in zip(starts.tolist(), ends.tolist())] == expected
    order = np.array(rng.sample(range(len(expected)), len(expected)), dtype=np.int64)
    shuffled = writer.freeze(order)
    assert [shuffled[i] for i in range(len(expected))] == [expected[i] for i in order.tolist()]
