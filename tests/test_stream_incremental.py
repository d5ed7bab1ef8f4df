"""A reload that reuses the previous index's rows and streams into its snapshot (issue 18,
targets 1 and 3 together, as a reload built in the child process runs): the reused items' bytes
and footprints are copied into the new snapshot, which then stands alone (the previous one is
deleted), and equals a full load, whether the previous buffer is copied whole or only its live
rows, and over a chain of reloads each reusing the last one's snapshot."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.catalog.loader import LoadOptions, load_catalogs
from server.index import Index, blobs, reuse
from server.runtime.snapshot import SnapshotWriter, read_snapshot, write_snapshot
from tests.test_incremental import CHANGES, differences, edit_items, prepare


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
