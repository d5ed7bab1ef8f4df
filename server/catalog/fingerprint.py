"""The local files a load read, with their sizes and mtimes: how a watch (and a snapshot
given with its roots) tells that the catalog changed on disk."""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.catalog.sources import SourceLog

# The paths are checked a slice of the newline-joined buffer at a time: 4 MiB is ~40,000 paths
# decoded into str at once, where decoding all of them made a list of 10,000,000 strings
# (~1.2 GB at 10M files: 4.05M took 117 s and ~0.5 GB before serving).
CHUNK_BYTES = 4 << 20


@dataclass
class Fingerprint:
    # The paths newline-joined, as UTF-8 bytes in an array: one buffer instead of a million
    # strings, which a snapshot maps instead of unpickling.
    paths: np.ndarray
    sizes: np.ndarray
    mtimes: np.ndarray

    @classmethod
    def of(cls, sources: SourceLog, share: bool = False) -> Fingerprint:
        """``share``: the sizes and mtimes are views of the log's arrays (which can then no
        longer grow: no file is read after), not copies held beside them through the build
        (16 B a file, 160 MB at 10M item files)."""
        def values(logged: Any) -> np.ndarray:
            view = np.frombuffer(logged, dtype=np.int64) if len(logged) else np.zeros(0, np.int64)
            return view if share else view.copy()

        return cls(np.frombuffer(sources.joined_paths(), dtype=np.uint8), values(sources.sizes), values(sources.mtimes))

    def __len__(self) -> int:
        return len(self.sizes)

    def chunks(self) -> list[tuple[int, int, int]]:
        """(first byte, end byte, first file) of consecutive slices of the paths, each about
        CHUNK_BYTES and cut at a newline: found by one rfind per slice, not a scan in Python."""
        paths = self.paths
        out = []
        start, first, total = 0, 0, len(paths)
        while start < total:
            end = min(start + CHUNK_BYTES, total)
            if end < total:
                cut = paths[start:end].tobytes().rfind(b"\n")
                end = start + cut if cut > 0 else end
                while end < total and paths[end] != 0x0A:  # one path longer than a chunk: read on
                    end += 1
            out.append((start, end, first))
            first += int(np.count_nonzero(paths[start:end] == 0x0A)) + 1
            start = end + 1
        return out

    def changed(self, max_report: int = 5, processes: int = 1) -> list[str]:
        """Files that are gone or differ in size or mtime (at most ``max_report``).

        A million stats take seconds of Python: ``processes`` > 1 forks checkers that share
        the arrays copy-on-write (only where nothing else runs yet, as at start-up); each
        decodes its own slices of the paths."""
        global _PENDING
        chunks = self.chunks()
        results = []
        if processes > 1 and len(self) > 50_000 and len(chunks) > 1 and hasattr(os, "fork"):
            _PENDING = (self, max_report)
            try:
                with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
                    results = list(pool.map(_check_pending, chunks))
            finally:
                _PENDING = None
        else:  # (a thread beside the server's: nothing global) one slice at a time, until enough found
            for chunk in chunks:
                results.append(_check_chunk(self, max_report, chunk))
                if sum(map(len, results)) >= max_report:
                    break
        return [p for chunk in results for p in chunk][:max_report]

    def paths_of(self, chunk: tuple[int, int, int]) -> Iterator[tuple[str, int, int]]:
        """(path, size, mtime) of the files of one of ``chunks()``."""
        start, end, first = chunk
        paths = self.paths[start:end].tobytes().decode("utf-8", "surrogateescape").split("\n")
        return zip(paths, self.sizes[first : first + len(paths)].tolist(),
                   self.mtimes[first : first + len(paths)].tolist())


_PENDING: tuple[Fingerprint, int] | None = None  # what forked checkers inherit


def _check_pending(chunk: tuple[int, int, int]) -> list[str]:
    assert _PENDING is not None
    return _check_chunk(*_PENDING, chunk)


def _check_chunk(fingerprint: Fingerprint, max_report: int, chunk: tuple[int, int, int]) -> list[str]:
    bad = []
    stat = os.stat
    for path, size, mtime in fingerprint.paths_of(chunk):
        try:
            info = stat(path)
        except OSError:
            bad.append(f"{path} (gone)")
        else:
            if info.st_size != size or info.st_mtime_ns != mtime:
                bad.append(f"{path} (changed)")
        if len(bad) >= max_report:
            break
    return bad
