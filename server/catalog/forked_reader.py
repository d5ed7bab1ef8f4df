"""Local item files read and normalized by a forked process while this one indexes them.

Loading a local catalog is CPU-bound in one interpreter: per item, reading the file (open,
fstat, the real-path check, read), parsing it and making it servable cost about as much as
indexing it. A child forked after the walk (so it has the same scope, fetcher and rules)
does the first half for every item and streams the servable items back as compact JSON, in
order; this process parses them again (orjson, a few microseconds) and indexes them. Two
cores then share the work.

Anything but the common case (an error, a document that needs migration, is not a single
Feature, an ndjson file) comes back raw for the loader's usual path, so the rules live in
one place. If the child dies, the loader reads the rest itself.
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
import threading
from collections.abc import Callable, Iterator

import orjson

from server.catalog.normalize import servable
from server.catalog.public import PublicHrefs
from server.catalog.sources import SourceLog
from server.catalog.versions import needs_migration

# One record: kind (b"n" servable item JSON, b"r" raw bytes, b"e" error text, b"s" the
# pickled files read and count of hrefs not made public, b"z" the end), the position in the
# input list, the payload length.
HEADER = struct.Struct("<cII")
MIN_ITEMS = 2000  # below this, starting a process costs more than it saves


def usable(count: int) -> bool:
    """Fork only where it can pay: many items, more than one core, nothing but this thread
    running (a fork copies no other thread and could inherit a lock one of them holds)."""
    return (count >= MIN_ITEMS and hasattr(os, "fork") and (os.cpu_count() or 1) > 1
            and threading.active_count() == 1)


def _child(write_fd: int, locations: list[str], read: Callable[[str], tuple[str, bytes | None, str | None]],
           sources: SourceLog, hrefs: PublicHrefs) -> None:
    already = len(sources.paths)
    not_public = hrefs.not_public
    out = os.fdopen(write_fd, "wb", buffering=1 << 16)
    for i, location in enumerate(locations):
        _, data, error = read(location)
        if data is None:
            kind, payload = b"e", (error or "unreadable").encode()
        else:
            kind, payload = b"r", data
            try:
                doc = orjson.loads(data)
            except orjson.JSONDecodeError:
                doc = None  # maybe ndjson: the loader's path decides
            if isinstance(doc, dict) and doc.get("type") == "Feature" and not needs_migration(doc):
                try:
                    kind, payload = b"n", orjson.dumps(servable(doc, location, hrefs))
                except (TypeError, orjson.JSONEncodeError):
                    pass  # the loader's path reports it
        out.write(HEADER.pack(kind, i, len(payload)))
        out.write(payload)
    read_here = (sources.paths[already:], sources.sizes[already:], sources.mtimes[already:],
                 hrefs.not_public - not_public)
    payload = pickle.dumps(read_here, protocol=5)
    out.write(HEADER.pack(b"s", 0, len(payload)))
    out.write(payload)
    out.write(HEADER.pack(b"z", 0, 0))
    out.flush()


def read_forked(locations: list[str], read: Callable[[str], tuple[str, bytes | None, str | None]],
                sources: SourceLog, hrefs: PublicHrefs) -> Iterator[tuple[int, bytes, bytes]]:
    """(position, kind, payload) for the locations, in order, read by a forked child. Stops
    early (the caller reads the rest itself) if the child dies; the files the child read are
    added to ``sources`` at the end, the hrefs it could not make public to ``hrefs``."""
    read_fd, write_fd = os.pipe()
    try:  # a larger pipe: fewer hand-offs between the two processes (Linux)
        fcntl.fcntl(write_fd, 1031, 1 << 20)  # F_SETPIPE_SZ
    except (ImportError, OSError):
        pass
    pid = os.fork()
    if pid == 0:  # the child: read, then leave without running the parent's cleanup
        status = 1
        try:
            os.close(read_fd)
            _child(write_fd, locations, read, sources, hrefs)
            status = 0
        finally:
            os._exit(status)
    os.close(write_fd)
    try:
        with os.fdopen(read_fd, "rb", buffering=1 << 20) as stream:
            while True:
                head = stream.read(HEADER.size)
                if len(head) < HEADER.size:
                    return  # the child died: what it did not send, the caller reads
                kind, position, size = HEADER.unpack(head)
                payload = stream.read(size)
                if len(payload) < size:
                    return
                if kind == b"z":
                    return
                if kind == b"s":
                    paths, sizes, mtimes, not_public = pickle.loads(payload)
                    for path, size_, mtime in zip(paths, sizes, mtimes):
                        sources.add(path, size_, mtime)
                    hrefs.not_public += not_public
                    continue
                yield position, kind, payload
    finally:
        _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.kill(pid, 9)  # done or abandoned: either way it has nothing more to do
    except ProcessLookupError:
        pass
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
