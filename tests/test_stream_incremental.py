"""A reload that reuses the previous index's rows and streams into its snapshot (issue 18,
targets 1 and 3 together, as a reload built in the child process runs): the reused items' bytes
and footprints are copied into the new snapshot, which then stands alone (the previous one is
deleted), and equals a full load, whether the previous buffer is copied whole or only its live
rows, and over a chain of reloads each reusing the last one's snapshot."""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import shapely

from server.catalog.loader import LoadOptions, load_catalogs
from server.index import Index, blobs, reuse
from server.index.spatial import NO_INNER, CellGrid
from server.runtime.snapshot import SnapshotCheck, SnapshotError, SnapshotWriter, read_snapshot, write_snapshot
from tests.test_incremental import CHANGES, add_and_delete, differences, edit_items, move_item, prepare


def spooled_reload(roots: list[str], previous_path: Path, output: Path) -> tuple[Index, int]:
    """A reload as child_build runs it: the previous snapshot mapped, the new one spooled; then
    the previous snapshot removed before the new one is read."""
    previous, _ = read_snapshot(str(previous_path), verify=False)
    writer = SnapshotWriter(str(output))
    index, report = load_catalogs(roots, LoadOptions(previous=previous, item_spool=writer.spool))
    writer.finish(index, roots)
    del index, previous
    previous_path.unlink()
    return read_snapshot(str(output), verify=False)[0], report.reused


@pytest.mark.parametrize("compact_below", [0.0, 1.01], ids=["whole buffer", "live rows"])
def test_a_spooled_reload_stands_alone_and_equals_a_full_load(sample_copy: Path, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch,
                                                              compact_below: float) -> None:
    monkeypatch.setattr(reuse, "COMPACT_BELOW", compact_below)
    tmp_path = tmp_path / "snapshots"
    tmp_path.mkdir()
    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    first, _ = load_catalogs(roots)
    write_snapshot(str(tmp_path / "0.idx"), first, roots)
    for step, change in enumerate(CHANGES.values()):  # each reload reuses the one before's snapshot
        change(sample_copy)
        index, reused = spooled_reload(roots, tmp_path / f"{step}.idx", tmp_path / f"{step + 1}.idx")
        full, _ = load_catalogs(roots)
        assert differences(index, full) == [], change.__name__
        assert 0 < reused < index.size
        assert sorted(p.name for p in tmp_path.iterdir()) == [f"{step + 1}.idx"]  # nothing else left behind


def test_an_unchanged_catalog_reloads_to_the_same_snapshot_contents(sample_copy: Path, tmp_path: Path) -> None:
    """Every row reused: the new snapshot's items are the previous one's, byte for byte."""
    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    writer = SnapshotWriter(str(tmp_path / "0.idx"))
    streamed, _ = load_catalogs(roots, LoadOptions(item_spool=writer.spool))
    writer.finish(streamed, roots)
    before = read_snapshot(str(tmp_path / "0.idx"), verify=False)[0]
    items = [before.json[p] for p in range(before.size)]
    index, reused = spooled_reload(roots, tmp_path / "0.idx", tmp_path / "1.idx")
    assert reused == index.size == len(items)
    assert [index.json[p] for p in range(index.size)] == items
    edit_items(sample_copy)
    index, reused = spooled_reload(roots, tmp_path / "1.idx", tmp_path / "2.idx")
    assert 0 < reused < index.size
    assert differences(index, load_catalogs(roots)[0]) == []


@pytest.mark.parametrize("compact_below", [0.0, 1.01], ids=["whole buffer", "live rows"])
def test_the_reused_bytes_are_copied_from_the_previous_snapshot_file(sample_copy: Path, tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch,
                                                                    compact_below: float) -> None:
    """The previous snapshot's columns know where their bytes are in its file, and a spooled
    reload copies the reused item bytes and footprints from there (the kernel's
    copy_file_range), in one piece or in runs of consecutive live rows, not row by row."""
    monkeypatch.setattr(reuse, "COMPACT_BELOW", compact_below)
    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    write_snapshot(str(tmp_path / "0.idx"), load_catalogs(roots)[0], roots)
    previous, _ = read_snapshot(str(tmp_path / "0.idx"), verify=False)
    for column in (previous.json, previous.wkb, previous.ids.blobs):
        assert column.placed is not None
        source, at = column.placed
        assert os.pread(source.fileno(), 64, at) == column.data[:64].tobytes()
    del previous
    copies: list[tuple[int, int]] = []
    append_range = blobs.FileBlobWriter.append_range

    def counted(self: blobs.FileBlobWriter, source: int, offset: int, size: int) -> None:
        copies.append((offset, size))
        append_range(self, source, offset, size)

    monkeypatch.setattr(blobs.FileBlobWriter, "append_range", counted)
    edit_items(sample_copy)
    index, reused = spooled_reload(roots, tmp_path / "0.idx", tmp_path / "1.idx")
    assert differences(index, load_catalogs(roots)[0]) == []
    assert 2 <= len(copies) < reused  # item bytes and footprints, whole or in runs
    if compact_below == 0.0:
        assert len(copies) == 2


# -- a reload's snapshot that refers to the previous one's file (the server's reloads) ------------


def referring_reload(roots: list[str], previous_path: Path, output: Path) -> tuple[Index, dict[str, Any], int]:
    """A reload as child_build runs it: the previous snapshot mapped, the new one spooled and
    allowed to refer to the previous one's file; the new one read back as the server does."""
    previous, _ = read_snapshot(str(previous_path), verify=False)
    writer = SnapshotWriter(str(output))
    index, report = load_catalogs(roots, LoadOptions(previous=previous, item_spool=writer.spool, refer_previous=True))
    header = writer.finish(index, roots, refer=True)
    del index, previous
    return read_snapshot(str(output), verify=False)[0], header, report.reused


def test_a_chain_of_reloads_refers_to_the_first_snapshot_and_equals_full_loads(sample_copy: Path, tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Each reload's snapshot holds the bytes of the items read again and refers to the snapshot
    `index` wrote for all the others (the same one all along the chain: the reload before may
    be deleted once replaced), and serves what a full load of the changed catalog serves."""
    monkeypatch.setattr(reuse, "COMPACT_BELOW", 0.0)  # these changes leave a third of the sample's rows dead
    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    base = tmp_path / "0.idx"
    write_snapshot(str(base), load_catalogs(roots)[0], roots)
    base_bytes = base.stat().st_size
    for step, change in enumerate(CHANGES.values()):
        change(sample_copy)
        index, header, reused = referring_reload(roots, tmp_path / f"{step}.idx", tmp_path / f"{step + 1}.idx")
        assert header["base"]["path"] == str(base), change.__name__
        assert (tmp_path / f"{step + 1}.idx").stat().st_size < base_bytes
        assert isinstance(index.json, blobs.SplitBlobColumn) and isinstance(index.wkb, blobs.SplitBlobColumn)
        assert 0 < reused < index.size
        full = load_catalogs(roots)[0]
        assert differences(index, full) == [], change.__name__
        _same_footprint_reads(index, full)
        del full
        if change in (edit_items, add_and_delete):  # every file read is an item's (a broken one is not)
            assert _written_once(index.origins.locations, index.fingerprint.paths, header), change.__name__
        if step:
            (tmp_path / f"{step}.idx").unlink()  # a reload's previous one: nothing refers to it
        del index


def _same_footprint_reads(split: Index, full: Index) -> None:
    """The readers of the footprints' raw bytes (the box search's vertex test, the corner legs,
    the polygon search's grid test) answer on a reload's footprints in two buffers (the previous
    snapshot's, referred to, and the ones read since) as on a full load's one buffer, for
    positions from both buffers mixed in any order."""
    positions = np.random.default_rng(7).permutation(split.size)
    in_more = split.wkb.starts[positions] >= split.wkb.split
    assert in_more.any() and not in_more.all()  # both buffers read
    bounds = full.bounds[positions]
    boxes = [tuple(b) for b in bounds[~np.isnan(bounds[:, 0])][:: 3].tolist()]
    sure = split.vertex_in_boxes(positions, boxes)
    assert sure.any() and np.array_equal(sure, full.vertex_in_boxes(positions, boxes))
    legs = split.corner_legs(positions)
    assert np.array_equal(legs, full.corner_legs(positions)) and (legs != NO_INNER).any()
    grid = CellGrid(shapely.box(-180, -90, 180, 90).difference(shapely.box(-10, -10, 10, 10)), 256)
    inside = split.vertex_in_grid(positions, grid)
    assert inside.any() and np.array_equal(inside, full.vertex_in_grid(positions, grid))


def _written_once(view: Any, whole: Any, header: dict[str, Any]) -> bool:
    """Whether ``view``'s bytes (the origins' locations) lie inside ``whole``'s (the
    fingerprint's paths) as mapped, and the snapshot's layout holds them once: a buffer inside
    another, not a copy of them of its own."""
    start, end = whole.ctypes.data, whole.ctypes.data + whole.nbytes
    inside = start <= view.ctypes.data and view.ctypes.data + view.nbytes <= end
    spans = [(at, at + size) for at, size, *_ in header["buffers"]]
    return inside and any(a <= c and d <= b and (a, b) != (c, d) and d - c == view.nbytes
                          for a, b in spans for c, d in spans)


@pytest.mark.parametrize("limit", ["dead rows", "bytes held beside"])
def test_a_reload_compacts_when_the_referred_bytes_are_mostly_dead_or_too_few(
        sample_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, limit: str) -> None:
    """Past COMPACT_BELOW live bytes in the base, or MORE_AT_MOST (and MORE_AT_LEAST) of it held
    beside, the reload writes a snapshot that stands alone again; the next one refers to it."""
    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    write_snapshot(str(tmp_path / "0.idx"), load_catalogs(roots)[0], roots)
    edit_items(sample_copy)
    _, header, _ = referring_reload(roots, tmp_path / "0.idx", tmp_path / "1.idx")
    assert "base" in header
    if limit == "dead rows":
        monkeypatch.setattr(reuse, "COMPACT_BELOW", 1.01)
    else:
        monkeypatch.setattr(reuse, "MORE_AT_MOST", 0.0)
        monkeypatch.setattr(reuse, "MORE_AT_LEAST", 0)
    add_and_delete(sample_copy)
    index, header, _ = referring_reload(roots, tmp_path / "1.idx", tmp_path / "2.idx")
    assert "base" not in header and not isinstance(index.json, blobs.SplitBlobColumn)
    assert not isinstance(index.wkb, blobs.SplitBlobColumn)
    assert differences(index, load_catalogs(roots)[0]) == []
    del index
    (tmp_path / "0.idx").unlink()  # nothing refers to the first one any more
    (tmp_path / "1.idx").unlink()
    monkeypatch.undo()
    move_item(sample_copy)
    index, header, _ = referring_reload(roots, tmp_path / "2.idx", tmp_path / "3.idx")
    assert header["base"]["path"] == str(tmp_path / "2.idx")
    assert differences(index, load_catalogs(roots)[0]) == []


def test_the_footprints_refer_to_the_previous_file_only_while_the_item_bytes_do(sample_copy: Path, tmp_path: Path,
                                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """Item bytes due to be compacted (their _referable says so: the first asked) take the
    footprints with them, though these alone could still be referred to: the snapshot stands
    alone again, as the compaction means."""
    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    write_snapshot(str(tmp_path / "0.idx"), load_catalogs(roots)[0], roots)
    edit_items(sample_copy)
    asked: list[blobs.BlobColumn] = []
    referable = reuse._referable

    def item_bytes_compacted(writer: Any, old: blobs.BlobColumn, starts: Any, ends: Any) -> Any:
        asked.append(old)
        return None if len(asked) == 1 else referable(writer, old, starts, ends)

    monkeypatch.setattr(reuse, "_referable", item_bytes_compacted)
    index, header, _ = referring_reload(roots, tmp_path / "0.idx", tmp_path / "1.idx")
    assert len(asked) == 1 and "base" not in header
    assert not isinstance(index.json, blobs.SplitBlobColumn) and not isinstance(index.wkb, blobs.SplitBlobColumn)
    assert differences(index, load_catalogs(roots)[0]) == []


def test_a_reload_snapshot_whose_base_is_gone_or_replaced_is_refused_with_the_reason(sample_copy: Path,
                                                                                    tmp_path: Path) -> None:
    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    write_snapshot(str(tmp_path / "0.idx"), load_catalogs(roots)[0], roots)
    edit_items(sample_copy)
    referring_reload(roots, tmp_path / "0.idx", tmp_path / "1.idx")
    write_snapshot(str(tmp_path / "0.idx"), load_catalogs(roots)[0], roots)  # another file under its name
    with pytest.raises(SnapshotError, match=r"1\.idx refers to the snapshot .*0\.idx for its items, which was replaced"):
        read_snapshot(str(tmp_path / "1.idx"), verify=False)
    (tmp_path / "0.idx").unlink()
    with pytest.raises(SnapshotError, match=r"refers to the snapshot .*0\.idx for its items, which cannot be read"):
        read_snapshot(str(tmp_path / "1.idx"), verify=False)


def test_a_reload_snapshot_is_never_taken_as_a_download(sample_copy: Path, tmp_path: Path) -> None:
    """It does not stand alone: a replica must be given one `index` wrote (SnapshotCheck)."""
    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    write_snapshot(str(tmp_path / "0.idx"), load_catalogs(roots)[0], roots)
    edit_items(sample_copy)
    referring_reload(roots, tmp_path / "0.idx", tmp_path / "1.idx")
    for name, refused in (("0.idx", False), ("1.idx", True)):
        check = SnapshotCheck(name, io.BytesIO())
        data = (tmp_path / name).read_bytes()
        for at in range(0, len(data), 1 << 16):
            check.write(data[at : at + (1 << 16)])
        if refused:
            with pytest.raises(SnapshotError, match="refers to another file for its items"):
                check.finish()
        else:
            assert check.finish()["items"] > 0


def test_a_reload_whose_previous_snapshot_is_on_another_filesystem(sample_copy: Path, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The kernel refuses copy_file_range between two filesystems (EXDEV, Linux >= 5.19): a
    server whose --index is on another filesystem than its temporary folder, where the reload's
    snapshot is written, copies the reused items' bytes and footprints from the --index file.
    Before, every such reload failed ("Invalid cross-device link", found with a tmpfs --index)
    and the server kept the index it started with. Now the bytes are read and written instead,
    and the reloads (copying and compacting, then referring) equal full loads."""
    calls: list[int] = []

    def refused(*args: Any) -> int:
        calls.append(1)
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    prepare(sample_copy)
    roots = [str(sample_copy / "catalog.json")]
    write_snapshot(str(tmp_path / "0.idx"), load_catalogs(roots)[0], roots)
    monkeypatch.setattr(os, "copy_file_range", refused)
    monkeypatch.setattr(blobs, "COPY_BLOCK", 1000)  # several blocks a copy
    edit_items(sample_copy)
    index, reused = spooled_reload(roots, tmp_path / "0.idx", tmp_path / "1.idx")  # copied, standing alone
    assert calls and 0 < reused < index.size
    assert differences(index, load_catalogs(roots)[0]) == []
    del index
    add_and_delete(sample_copy)
    index, _, reused = referring_reload(roots, tmp_path / "1.idx", tmp_path / "2.idx")
    assert 0 < reused < index.size
    assert differences(index, load_catalogs(roots)[0]) == []


def test_copy_to_end_reads_and_writes_where_the_kernel_will_not_copy(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "source"
    source.write_bytes(bytes(range(256)) * 40)
    monkeypatch.setattr(os, "copy_file_range", lambda *args: (_ for _ in ()).throw(OSError(errno.EXDEV, "x")))
    monkeypatch.setattr(blobs, "COPY_BLOCK", 999)
    with open(source, "rb") as src, open(tmp_path / "out", "w+b") as out:
        out.write(b"head")
        blobs.copy_to_end(src.fileno(), 7, 5000, out)
        out.write(b"tail")
    assert (tmp_path / "out").read_bytes() == b"head" + source.read_bytes()[7:5007] + b"tail"
