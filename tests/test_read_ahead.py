"""Local files read with the next ones opened and asked for ahead (LocalFiles.fetch_many):
the same results, in order, as reading them one by one; each file checked and logged only in
its turn (the forked file readers' bookkeeping counts on it); no descriptor left open."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from server.catalog import sources
from server.catalog.sources import Fetcher

LIMIT = 1000


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _tree(tmp_path: Path) -> tuple[list[str], Fetcher]:
    """A root folder of files in the files layout and flat, with a missing file, a folder, a
    file over the limit, a symlink out of the root and one to a file inside among them."""
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.json").write_text('{"secret": true}')
    root.mkdir()
    locations = []
    for i in range(3 * sources.READ_AHEAD):
        path = root / f"i{i}" / f"i{i}.json" if i % 2 else root / f"f{i}.json"
        path.parent.mkdir(exist_ok=True)
        path.write_text(f'{{"n": {i}}}')
        locations.append(str(path))
    (root / "big.json").write_bytes(b" " * (LIMIT + 1))
    (root / "folder.json").mkdir()
    os.symlink(outside / "secret.json", root / "out.json")
    os.symlink(root / "f0.json", root / "alias.json")
    odd = [str(root / name) for name in ("missing.json", "big.json", "folder.json", "out.json", "alias.json")]
    for at, location in zip((5, 70, 71, 100, 150), odd, strict=True):
        locations.insert(at, location)

    def check(path: str, real: str) -> str | None:
        if not real.startswith(str(root) + "/"):
            return "outside the root"
        return "a symlink" if os.path.realpath(path) != path else None

    return locations, Fetcher(max_bytes=LIMIT, real_path_check=check)


def test_results_logs_and_order_are_those_of_reading_one_by_one(tmp_path: Path) -> None:
    locations, fetcher = _tree(tmp_path)
    one_by_one = [fetcher.fetch_result(location, LIMIT) for location in locations]
    log = list(fetcher.sources.paths)
    fetcher.sources = sources.SourceLog()
    assert list(fetcher.fetch_all(locations, LIMIT)) == one_by_one
    assert list(fetcher.sources.paths) == log
    reasons = {location: error for location, data, error in one_by_one if data is None}
    assert len(reasons) == 5 and "outside" in reasons[locations[100]] and "symlink" in reasons[locations[150]]
    fetcher.close()


def test_each_file_is_read_and_logged_only_when_asked_for(tmp_path: Path) -> None:
    locations, fetcher = _tree(tmp_path)
    readable = [location for location, data, _ in map(fetcher.fetch_result, locations) if data is not None]
    fetcher.sources = sources.SourceLog()
    results = fetcher.fetch_all(locations, LIMIT)
    for asked in range(1, len(locations) + 1):
        assert next(results)[0] == locations[asked - 1]
        assert list(fetcher.sources.paths) == [loc for loc in readable if loc in locations[:asked]]
    assert next(results, None) is None
    fetcher.close()


@pytest.mark.parametrize("taken", [0, 1, sources.READ_AHEAD + 3])
def test_no_descriptor_is_left_open_by_a_read_given_up(tmp_path: Path, taken: int) -> None:
    locations, fetcher = _tree(tmp_path)
    fetcher.fetch_result(locations[0], LIMIT)  # the anchors of the folders opened: they stay until close
    fetcher.fetch_result(locations[2], LIMIT)
    before = _open_fds()
    results = fetcher.fetch_all(locations, LIMIT)
    for _ in range(taken):
        next(results)
    if taken:
        assert _open_fds() > before  # read ahead: the next files are open
    results.close()  # type: ignore[attr-defined]
    assert _open_fds() == before
    fetcher.close()


@pytest.mark.parametrize("cold", [False, True])
def test_files_found_in_the_page_cache_are_not_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         cold: bool) -> None:
    """Files just written are in the page cache: after the first probe (one file in
    PROBE_EVERY, read without waiting for the disk), none is asked for. Where the probe says
    the disk would be read (``cold``: the kernel's answer, as dropped caches give it), every
    file but the probes is."""
    count = 3 * sources.PROBE_EVERY
    locations = []
    for i in range(count):
        path = tmp_path / f"f{i}.json"
        path.write_text("{}")
        locations.append(str(path))
    asked: list[int] = []
    real_fadvise = sources._FADVISE
    assert real_fadvise is not None

    def fadvise(fd: int, offset: int, length: int, advice: int) -> None:
        asked.append(fd)
        real_fadvise(fd, offset, length, advice)

    monkeypatch.setattr(sources, "_FADVISE", fadvise)
    if cold:
        monkeypatch.setattr(sources, "_cached", lambda fd: False)
    fetcher = Fetcher(max_bytes=LIMIT)
    assert all(data == b"{}" for _, data, _ in fetcher.fetch_all(locations, LIMIT))
    probes = count // sources.PROBE_EVERY
    # the first probe is read READ_AHEAD files after it was opened: those were asked for
    assert len(asked) == (count - probes if cold else sources.PROBE_EVERY - 1 + sources.READ_AHEAD)
    fetcher.close()


def test_a_probe_reads_nothing_from_a_file_it_would_not_read(tmp_path: Path) -> None:
    """The probe's one-byte read comes after the checks: a FIFO (or a device) in a probe's
    place, or a file out of the roots, is not read from, as fetch never reads them."""
    root = tmp_path / "root"
    root.mkdir()
    (tmp_path / "secret.json").write_text("{}")
    locations = []
    for i in range(2 * sources.PROBE_EVERY):
        path = root / f"f{i}.json"
        path.write_text("{}")
        locations.append(str(path))
    fifo = root / "fifo.json"
    os.mkfifo(fifo)
    reader = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
    writer = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
    os.write(writer, b"x")
    os.symlink(tmp_path / "secret.json", root / "out.json")
    locations[sources.PROBE_EVERY - 1] = str(fifo)  # the first probe
    locations[2 * sources.PROBE_EVERY - 1] = str(root / "out.json")  # the second
    probed: list[int] = []
    real_cached = sources._cached

    def cached(fd: int) -> bool | None:
        probed.append(fd)
        return real_cached(fd)

    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(sources, "_cached", cached)
            fetcher = Fetcher(max_bytes=LIMIT, real_path_check=lambda path, real: (
                None if real.startswith(str(root) + "/") else "outside the root"))
            results = {location: error for location, _, error in fetcher.fetch_all(locations, LIMIT)}
        assert results[str(fifo)] == "not a regular file"
        assert "outside" in (results[str(root / "out.json")] or "")
        assert probed == []
        assert os.read(reader, 10) == b"x"  # still in the FIFO
    finally:
        os.close(reader)
        os.close(writer)
        fetcher.close()
