"""Index snapshots: `stac-static-api index ROOT... -o FILE` writes one, `serve --index FILE`
starts from it in seconds instead of re-reading every catalog file.

File: a magic line, a JSON header (format and package version, roots, counts, when, buffer
layout), then a pickle (protocol 5) of the Index, which carries the fingerprint of its local sources
(every file read, with its size and mtime), then the large buffers raw, which reading maps. A snapshot from another format version is refused; one whose
local files changed is reported stale (serve then rebuilds from the roots). Remote sources
cannot be checked without re-reading them: such a snapshot is served with a warning, and a
reload re-reads the source.
"""

from __future__ import annotations

import logging
import mmap
import os
import pickle
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from server import __version__
from server.catalog.sources import SourceLog
from server.index import Index

log = logging.getLogger("stac_static_api.snapshot")

MAGIC = b"stac-static-api index snapshot\n"
# 3: the box index holds time slabs (server/index/spatial.py); 4: the fingerprint is the
# index's own (paths in one mapped buffer), no longer beside a second copy in its SourceLog
FORMAT_VERSION = 4


class SnapshotError(Exception):
    """The snapshot cannot be used; the message says why."""


@dataclass
class Fingerprint:
    # The paths newline-joined, as UTF-8 bytes in an array: one buffer instead of a million
    # strings, which a snapshot maps instead of unpickling.
    paths: np.ndarray
    sizes: np.ndarray
    mtimes: np.ndarray

    @classmethod
    def of(cls, sources: SourceLog) -> "Fingerprint":
        return cls(
            np.frombuffer("\n".join(sources.paths).encode("utf-8", "surrogateescape"), dtype=np.uint8),
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
                import multiprocessing
                from concurrent.futures import ProcessPoolExecutor

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


ALIGN = 64


def write_snapshot(path: str, index: Index, roots: list[str]) -> dict[str, Any]:
    """Header line, then a pickle of the Python objects, then every large buffer (item JSON,
    WKB, numpy arrays) raw at an aligned offset, so that reading maps them instead of
    copying them (pickle protocol 5, out-of-band buffers)."""
    buffers: list[pickle.PickleBuffer] = []
    if index.fingerprint is None:
        index.fingerprint = Fingerprint.of(SourceLog())
    payload = pickle.dumps(index, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    layout, offset = [], len(payload)
    for raw in raws:
        offset += -offset % ALIGN
        layout.append([offset, raw.nbytes])
        offset += raw.nbytes
    header = {
        "format": FORMAT_VERSION,
        "package_version": __version__,
        "roots": roots,
        "created": time.time(),
        "items": index.size,
        "collections": len(index.collections),
        "local_files": len(index.fingerprint.sizes),
        "pickle_bytes": len(payload),
        "buffers": layout,  # offsets from the start of the pickle
    }
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f:
        f.write(MAGIC)
        f.write(orjson.dumps(header) + b"\n")
        start = f.tell()
        pad = -start % ALIGN  # so buffer offsets relative to the pickle stay aligned in the file
        f.write(b" " * pad)
        f.write(payload)
        for (at, _), raw in zip(layout, raws):
            f.write(b"\0" * (start + pad + at - f.tell()))
            f.write(raw)
    os.replace(tmp, path)  # never a half-written snapshot under the real name
    return header


def read_header(f: Any, path: str) -> dict[str, Any]:
    if f.readline() != MAGIC:
        raise SnapshotError(f"{path} is not a stac-static-api index snapshot")
    try:
        header = orjson.loads(f.readline())
    except orjson.JSONDecodeError:
        raise SnapshotError(f"{path}: unreadable snapshot header") from None
    if header.get("format") != FORMAT_VERSION:
        raise SnapshotError(
            f"{path} has snapshot format {header.get('format')}, this server reads format {FORMAT_VERSION}: "
            "rebuild it with `stac-static-api index`"
        )
    return header


def read_snapshot(path: str, verify: bool = True) -> tuple[Index, dict[str, Any]]:
    """The index in the snapshot, its large buffers mapped from the file (read-only, shared
    by every process that maps it). Raises SnapshotError when it is unusable or stale."""
    try:
        with open(path, "rb") as f:
            header = read_header(f, path)
            start = f.tell()
            start += -start % ALIGN
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(mapped)
        body = view[start:]
        buffers = [body[at : at + size] for at, size in header["buffers"]]
        if any(len(b) != size for b, (_, size) in zip(buffers, header["buffers"])):
            raise SnapshotError(f"{path} is truncated")
        index = pickle.loads(body[: header["pickle_bytes"]], buffers=buffers)
        fingerprint: Fingerprint = index.fingerprint
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, KeyError, ValueError) as exc:
        raise SnapshotError(f"{path} is damaged or from an incompatible version: {exc}") from None
    if verify:
        changed = fingerprint.changed(processes=min(4, os.cpu_count() or 1))
        if changed:
            raise SnapshotError(f"{path} is stale: its source files changed since it was written, e.g. {', '.join(changed)}")
        if any("://" in root for root in header["roots"]):
            log.warning("%s includes remote roots, which a snapshot cannot verify: serving them as of %s",
                        path, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(header["created"])))
    index.loaded_at = time.time()
    return index, header
