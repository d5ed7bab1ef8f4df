"""The origins kept for a reload: settled before the build, placed after it (server.index.origins)."""

from __future__ import annotations

import numpy as np

from server.index.origins import OriginsBuilder


def _ones(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return np.ones(len(paths), np.int64), np.ones(len(paths), np.int64)


def _built(locations: list[str]) -> OriginsBuilder:
    origins = OriginsBuilder()
    for row, location in enumerate(locations):
        origins.add(row, location, "c" if row % 2 else None, row)
    return origins


def test_rows_dropped_by_the_build_leave_their_locations() -> None:
    locations = ["/a/é.json", "/b/x.json", "/c/y.json", "/d/z.json"]
    settled = _built(locations).settle(lambda paths: (np.array([len(p) for p in paths]), np.full(len(paths), 7)), {})
    assert settled.location_list() == locations
    placed = settled.placed(np.array([2, -1, 0, -1], dtype=np.int64))
    assert placed.location_list() == ["/a/é.json", "/c/y.json"]
    assert placed.positions.tolist() == [2, 0]
    assert placed.sizes.tolist() == [len("/a/é.json"), len("/c/y.json")]
    assert placed.not_public.tolist() == [0, 2]
    assert placed.declared.tolist() == [-1, -1]
    assert placed.digests.shape == (2, 16)


def test_the_last_and_every_row_dropped() -> None:
    settled = _built(["/a.json", "/b.json"]).settle(_ones, {})
    assert settled.placed(np.array([0, -1])).location_list() == ["/a.json"]
    settled = _built(["/a.json", "/b.json"]).settle(_ones, {})
    none = settled.placed(np.array([-1, -1]))
    assert len(none) == 0 and none.location_list() == []


def test_every_row_kept_keeps_the_buffer_given() -> None:
    joined = np.frombuffer(b"/a.json\n/b.json", dtype=np.uint8)
    settled = _built(["/a.json", "/b.json"]).settle(_ones, {},
                                                     lambda locations, sizes, mtimes, read: joined)
    placed = settled.placed(np.array([1, 0]))
    assert placed.locations is joined and placed.positions.tolist() == [1, 0]


def test_a_location_holding_a_newline_does_not_stop_the_build() -> None:
    settled = _built(["/a\nb.json", "/c.json"]).settle(_ones, {})
    placed = settled.placed(np.array([0, -1]))
    assert len(placed) == 1 and len(placed.locations) > 0


def test_digests_taken_from_a_previous_index_stay_with_their_rows() -> None:
    origins = _built(["/a.json"])
    md5 = np.arange(32, dtype=np.uint8).reshape(2, 16)
    md5[0] = 0  # a local file's: none
    origins.extend(1, ["http://x/b.json", "http://x/c.json"], np.array([-1, -1]), [], np.zeros(2), np.full(2, -1),
                   np.zeros(2), md5)
    child = _built(["/d.json"])
    origins.append(child, 3)
    settled = origins.settle(_ones, {"/d.json": bytes(range(100, 116))})
    assert settled.digests[2].tolist() == list(range(16, 32))
    assert settled.digests[3].tolist() == list(range(100, 116))
    assert not settled.digests[:2].any()
    assert settled.positions.tolist() == [0, 1, 2, 3]


def test_the_log_of_files_read_joins_its_paths_a_part_at_a_time() -> None:
    from server.catalog.sources import SourceLog  # noqa: PLC0415

    log = SourceLog()
    paths = [f"/c/é{i}.json" for i in range(7)]
    for path in paths:
        log.add(path, 1, 1)
    assert bytes(log.joined_paths(part=3)) == "\n".join(paths).encode()
    assert bytes(SourceLog().joined_paths()) == b""
    log.compact(np.frombuffer(log.joined_paths(), dtype=np.uint8))
    assert log.paths == [] and log.path_list() == paths
