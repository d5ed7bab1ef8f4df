"""Index snapshots: `stac-static-api index ROOT... -o FILE` writes one, `serve --index FILE`
starts from it in seconds instead of re-reading every catalog file.

File: a magic line, a line giving where the header is, then the data: the large buffers raw at
aligned offsets (item JSON, WKB, ids, numpy arrays), which reading maps, and a pickle (protocol
5) of the Index, which carries the fingerprint of its local sources (every file read, with its
size and mtime); last the JSON header (format and package version, roots, counts, when, where
the pickle and each buffer are). The header comes last because `index` writes the items' bytes
into the file as it reads them (SnapshotWriter.spool), before anything else is known: the build
never holds them in memory. A snapshot from another format version is refused; one whose local
files changed is reported stale (serve then rebuilds from the roots). Remote sources cannot be
checked without re-reading them: such a snapshot is served with a warning, and a reload
re-reads the source.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import pickle
import time
from typing import Any

import numpy as np
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
# index carries the catalogs' own tree (server.index.tree); 8: the header last (the items are
# written as they are read), absolute offsets, ids as a blob column (server.index.ids)
FORMAT_VERSION = 8


class SnapshotError(Exception):
    """The snapshot cannot be used; the message says why."""


ALIGN = 64


POINTER = b"%020d\n"  # the second line: the header's offset in the file


class SnapshotWriter:
    """A snapshot being written under a temporary name beside ``path``: a build may write the
    items' bytes into ``spool`` as it reads them (server.index.IndexBuilder), then ``finish``
    adds the rest and puts the file in place; ``abort`` removes it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp = f"{path}.tmp-{os.getpid()}"
        self.spool = open(self.tmp, "w+b")  # noqa: SIM115 (closed by finish or abort)
        self.spool.write(MAGIC + POINTER % 0)

    def finish(self, index: Index, roots: list[str]) -> dict[str, Any]:
        """Write every large buffer raw at an aligned offset (those already in this file stay
        where they are; those in another file are copied by the kernel), the pickle of the
        Python objects (pickle protocol 5, out-of-band buffers), then the header."""
        buffers: list[pickle.PickleBuffer] = []
        if index.fingerprint is None:
            index.fingerprint = Fingerprint.of(SourceLog())
        payload = pickle.dumps(index, protocol=5, buffer_callback=buffers.append)
        f = self.spool
        placed = _placed_buffers(index)
        layout = []
        for buffer in buffers:
            raw = buffer.raw()
            where = placed.get(_address(raw)) if raw.nbytes else None
            if where is not None and where[0] == f.fileno():
                layout.append([where[1], raw.nbytes])
                continue
            at = _align(f)
            if where is not None:
                _copy_range(where[0], where[1], raw.nbytes, f)
            else:
                f.write(raw)
            layout.append([at, raw.nbytes])
        pickle_at = _align(f)
        f.write(payload)
        header = {
            "format": FORMAT_VERSION,
            "package_version": __version__,
            "roots": roots,
            "created": time.time(),
            "items": index.size,
            "collections": len(index.collections),
            "local_files": len(index.fingerprint.sizes),
            "pickle": [pickle_at, len(payload)],
            "buffers": layout,  # [offset in the file, size] of each out-of-band buffer, in pickle order
        }
        header_at = f.tell()
        f.write(orjson.dumps(header) + b"\n")
        f.seek(len(MAGIC))
        f.write(POINTER % header_at)
        f.close()
        for column in (index.json, index.wkb, index.ids.blobs):  # the spooled files: their mappings stay
            if column.placed is not None:
                if column.placed[0] is not f:
                    column.placed[0].close()  # the footprints' unnamed file, copied in above
                column.placed = None  # closed: a later snapshot of this index writes from the mapping
        os.replace(self.tmp, self.path)  # never a half-written snapshot under the real name
        return header

    def abort(self) -> None:
        self.spool.close()
        with contextlib.suppress(OSError):
            os.unlink(self.tmp)


def write_snapshot(path: str, index: Index, roots: list[str]) -> dict[str, Any]:
    """Write ``index`` (built in memory) as a snapshot at ``path``."""
    writer = SnapshotWriter(path)
    try:
        return writer.finish(index, roots)
    except BaseException:
        writer.abort()
        raise


def _align(f: Any) -> int:
    at = f.seek(0, os.SEEK_END)
    pad = -at % ALIGN
    f.write(b"\0" * pad)
    return at + pad


def _address(buffer: memoryview) -> int:
    return int(np.frombuffer(buffer, dtype=np.uint8).ctypes.data)


def _placed_buffers(index: Index) -> dict[int, tuple[int, int]]:
    """The index's buffers already in a file (server.index.blobs.FileBlobWriter), by address."""
    columns = (index.json, index.wkb, index.ids.blobs)
    return {_address(c.data): (c.placed[0].fileno(), c.placed[1]) for c in columns
            if c.placed is not None and c.data.nbytes}


def _copy_range(fd: int, offset: int, size: int, f: Any) -> None:
    """``size`` bytes of the file ``fd`` from ``offset`` to the end of ``f``, copied by the
    kernel (no pass through this process's memory)."""
    f.flush()
    out = f.fileno()
    while size:
        done = os.copy_file_range(fd, out, size, offset)
        if done <= 0:
            raise OSError(f"copying {size} bytes of a spooled buffer failed")
        offset += done
        size -= done
    f.seek(0, os.SEEK_END)


def read_header(f: Any, path: str) -> dict[str, Any]:
    if f.readline() != MAGIC:
        raise SnapshotError(f"{path} is not a stac-static-api index snapshot")
    line = f.readline()
    try:
        if not line.startswith(b"{"):  # format 8 on: where the header is
            f.seek(int(line))
            line = f.readline()
        header = orjson.loads(line)
    except (ValueError, OSError):
        raise SnapshotError(f"{path}: unreadable snapshot header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT_VERSION:
        found = header.get("format") if isinstance(header, dict) else None
        raise SnapshotError(
            f"{path} has snapshot format {found}, this server reads format {FORMAT_VERSION}: "
            "rebuild it with `stac-static-api index`"
        )
    return header


def read_snapshot(path: str, verify: bool = True) -> tuple[Index, dict[str, Any]]:
    """The index in the snapshot, its large buffers mapped from the file (read-only, shared
    by every process that maps it). Raises SnapshotError when it is unusable or stale."""
    try:
        with open(path, "rb") as f:
            header = read_header(f, path)
            mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        view = memoryview(mapped)
        buffers = [view[at : at + size] for at, size in header["buffers"]]
        pickle_at, pickle_size = header["pickle"]
        if any(len(b) != size for b, (_, size) in zip(buffers, header["buffers"])) or \
                len(view) < pickle_at + pickle_size:
            raise SnapshotError(f"{path} is truncated")
        index = pickle.loads(view[pickle_at : pickle_at + pickle_size], buffers=buffers)
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
