"""Index snapshots: `stac-static-api index ROOT... -o FILE` writes one, `serve --index FILE`
starts from it in seconds instead of re-reading every catalog file.

File: a magic line, a JSON header (format and package version, roots, counts, when, buffer
layout), then a pickle (protocol 5) of the Index, which carries the fingerprint of its local
sources (every file read, with its size and mtime), then the large buffers raw, which reading
maps. A snapshot from another format version is refused; one whose local files changed is
reported stale (serve then rebuilds from the roots). Remote sources cannot be checked without
re-reading them: such a snapshot is served with a warning, and a reload re-reads the source.
"""

from __future__ import annotations

import logging
import mmap
import os
import pickle
import time
from typing import Any

import orjson

from server import __version__
from server.catalog.fingerprint import Fingerprint
from server.catalog.sources import SourceLog
from server.index import Index

log = logging.getLogger("stac_static_api.snapshot")

MAGIC = b"stac-static-api index snapshot\n"
# 3: the box index holds time slabs (server/index/spatial.py); 4: the fingerprint is the
# index's own (paths in one mapped buffer), no longer beside a second copy in its SourceLog;
# 5: the fingerprint's class moved to server.catalog.fingerprint (pickles name it); 6: public
# hrefs (no server paths), collections made for items of none, the index's hrefs_config; 7: the
# index carries the catalogs' own tree (server.index.tree)
FORMAT_VERSION = 7


class SnapshotError(Exception):
    """The snapshot cannot be used; the message says why."""


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
        if not isinstance(index.fingerprint, Fingerprint):
            raise SnapshotError(f"{path} has no fingerprint of its files")
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, KeyError, ValueError) as exc:
        raise SnapshotError(f"{path} is damaged or from an incompatible version: {exc}") from None
    if verify:
        stale = stale_reason(index, header, path)
        if stale is not None:
            raise SnapshotError(stale)
    index.loaded_at = time.time()
    return index, header


def stale_reason(index: Index, header: dict[str, Any], path: str) -> str | None:
    """Why the snapshot at ``path`` (read as ``index``, ``header``) is stale (a local file
    it was read from changed), or None; remote roots cannot be checked: a warning says so."""
    changed = index.fingerprint.changed(processes=min(4, os.cpu_count() or 1))
    if changed:
        return f"{path} is stale: its source files changed since it was written, e.g. {', '.join(changed)}"
    if any("://" in root for root in header["roots"]):
        log.warning("%s includes remote roots, which a snapshot cannot verify: serving them as of %s",
                    path, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(header["created"])))
    return None
