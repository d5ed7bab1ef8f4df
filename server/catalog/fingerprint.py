"""The local files a load read, with their sizes and mtimes: how a watch (and a snapshot
given with its roots) tells that the catalog changed on disk."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from server.catalog.sources import SourceLog


@dataclass
class Fingerprint:
    # The paths newline-joined, as UTF-8 bytes in an array: one buffer instead of a million
    # strings, which a snapshot maps instead of unpickling.
    paths: np.ndarray
    sizes: np.ndarray
    mtimes: np.ndarray

    @classmethod
    def of(cls, sources: SourceLog) -> Fingerprint:
        return cls(
            np.frombuffer(sources.joined_paths(), dtype=np.uint8),
            np.frombuffer(sources.sizes, dtype=np.int64).copy(),
            np.frombuffer(sources.mtimes, dtype=np.int64).copy(),
        )

    def changed(self, max_report: int = 5, processes: int = 1) -> list[str]:
        """Files that are gone or differ in size or mtime (at most ``max_report``).

        A million stats take seconds of Python: ``processes`` > 1 forks checkers that share
        the lists copy-on-write (only where nothing else runs yet, as at start-up)."""
        global _PENDING
        paths = self.paths.tobytes().decode("utf-8", "surrogateescape").split("\n") if len(self.paths) else []
        _PENDING = (paths, self.sizes.tolist(), self.mtimes.tolist(), max_report)
        try:
            n = len(paths)
            parts = max(1, processes) * 4
            ranges = [(i, min(i + n // parts + 1, n)) for i in range(0, n, n // parts + 1)] if n else []
            if processes > 1 and n > 50_000 and hasattr(os, "fork"):
                with ProcessPoolExecutor(processes, mp_context=multiprocessing.get_context("fork")) as pool:
                    results = list(pool.map(_check_range, ranges))
            else:
                results = [_check_range(r) for r in ranges]
        finally:
            _PENDING = None
        return [p for chunk in results for p in chunk][:max_report]


_PENDING: tuple[list[str], list[int], list[int], int] | None = None  # what forked checkers inherit


def _check_range(bounds: tuple[int, int]) -> list[str]:
    assert _PENDING is not None
    paths, sizes, mtimes, max_report = _PENDING
    bad = []
    stat = os.stat
    for i in range(*bounds):
        try:
            info = stat(paths[i])
        except OSError:
            bad.append(f"{paths[i]} (gone)")
        else:
            if info.st_size != sizes[i] or info.st_mtime_ns != mtimes[i]:
                bad.append(f"{paths[i]} (changed)")
        if len(bad) >= max_report:
            break
    return bad
