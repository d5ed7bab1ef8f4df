"""Item documents read and normalized by a forked process while this one indexes them:
local files, and remote ones through libcurl (a session of the child's own).

Loading a local catalog is CPU-bound in one interpreter: per item, reading the file (open,
fstat, the real-path check, read), parsing it and making it servable cost about as much as
indexing it. A child forked after the walk (so it has the same scope, fetcher and rules)
does the first half for every item and streams the servable items back as compact JSON, in
order; this process parses them again (orjson, a few microseconds) and indexes them. Two
cores then share the work.

Anything but the common case (an error, a document that needs migration, is not a single
Feature, an ndjson file) comes back raw for the loader's usual path, so the rules live in
one place. If the child dies, the loader reads the rest itself.

Remote items (issue 18): at a bucket's latency, with hundreds of transfers in flight, the
loader's process was the bound (libcurl, parsing, normalizing and indexing: ~100 us of CPU
per item); the child now fetches, parses and normalizes, and sends back what the parent's
RemoteCache and metrics need (the validators and raw body of each new document, its fetch
counts at the end).

Bulk files of items (stac-geoparquet: formats.Reader.items_only) go the same way one level up
(read_bulk_forked): the child reads each file through its format's reader and sends every
item servable, one record each, then a "done" record per file; the parent indexes them. At
100k items from one parquet file the reading (decoding, Arrow columns to dicts) and making
servable cost about as much as parsing the JSON again and indexing (bench/parquet_read.py).
"""

from __future__ import annotations

import fcntl
import os
import pickle
import struct
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

import orjson

from server.catalog.formats import FormatError, Skip
from server.catalog.normalize import servable
from server.catalog.public import PublicHrefs
from server.catalog.sources import Fetcher
from server.catalog.versions import needs_migration
from server.index import exact_json

# One record: kind (b"n" servable item JSON, b"r" raw bytes, b"e" error text, b"m" the
# validators (JSON [etag, last-modified]), a NUL and the raw body of a remote document, before
# its own record; b"s" the pickled files read, count of hrefs not made public and remote fetch
# counts, b"z" the end; for bulk files also b"v" a value for the loader's usual path as JSON,
# b"x" a value skipped "label\0reason", b"k" a skipped part of the file (not a value), b"f"
# refused by policy, b"d" the file done), the position in the input list, the payload length.
HEADER = struct.Struct("<cII")
MIN_ITEMS = 2000  # below this, starting a process costs more than it saves
MIN_BULK_BYTES = 1 << 20  # the same for bulk files: ~3,000 items of stac-geoparquet


def usable(count: int) -> bool:
    """Fork only where it can pay: many items, more than one core, nothing but this thread
    running (a fork copies no other thread and could inherit a lock one of them holds)."""
    return (count >= MIN_ITEMS and hasattr(os, "fork") and (os.cpu_count() or 1) > 1
            and threading.active_count() == 1)


def usable_bulk(paths: list[str]) -> bool:
    """The same for bulk files, by their size."""
    try:
        size = sum(os.stat(path).st_size for path in paths)
    except OSError:
        return False  # the loader's own path reports it
    return size >= MIN_BULK_BYTES and usable(MIN_ITEMS)


Read = Callable[[str], tuple[str, bytes | None, str | None]]


def _send(out: BinaryIO, kind: bytes, position: int, payload: bytes) -> None:
    out.write(HEADER.pack(kind, position, len(payload)))
    out.write(payload)


def _child(out: BinaryIO, locations: list[str], fetcher: Fetcher, hrefs: PublicHrefs) -> None:
    for i, (location, data, error) in enumerate(fetcher.read_in_child(locations)):
        if data is not None:
            validators = fetcher.child_validators(location)
            if validators is not None:
                head = orjson.dumps(validators) + b"\0"
                out.write(HEADER.pack(b"m", i, len(head) + len(data)))
                out.write(head)
                out.write(data)
        if data is None:
            kind, payload = b"e", (error or "unreadable").encode()
        else:
            kind, payload = b"r", data
            try:
                doc = exact_json.loads(data)
            except orjson.JSONDecodeError:
                doc = None  # maybe ndjson: the loader's path decides
            if isinstance(doc, dict) and doc.get("type") == "Feature" and not needs_migration(doc):
                try:
                    kind, payload = b"n", exact_json.dumps(servable(doc, location, hrefs))
                except (TypeError, orjson.JSONEncodeError):
                    pass  # the loader's path reports it
        _send(out, kind, i, payload)


def _bulk_child(out: BinaryIO, locations: list[str], read: Read,
                values: Callable[[str, bytes, Skip], Iterable[Any]], refused: Callable[[str], bool],
                hrefs: PublicHrefs) -> None:
    for i, location in enumerate(locations):
        _, data, error = read(location)
        if data is None:
            _send(out, b"f" if refused(location) else b"e", i, (error or "unreadable").encode())
            _send(out, b"d", i, b"")
            continue

        def skip(label: str, reason: str, i: int = i) -> None:
            _send(out, b"k", i, f"{label}\0{reason}".encode())

        try:
            for value in values(location, data, skip):
                kind = b"v"
                if isinstance(value, dict) and value.get("type") == "Feature" and not needs_migration(value):
                    try:
                        payload = exact_json.dumps(servable(value, location, hrefs))
                        kind = b"n"
                    except (TypeError, orjson.JSONEncodeError):
                        pass
                if kind == b"v":
                    try:
                        payload = exact_json.dumps(value)
                    except (TypeError, orjson.JSONEncodeError) as exc:
                        name = value.get("id") if isinstance(value, dict) else None
                        kind, payload = b"x", f"{location}\0item {name!r}: cannot serialize: {exc}".encode()
                _send(out, kind, i, payload)
        except FormatError as exc:
            _send(out, b"e", i, str(exc).encode())
        _send(out, b"d", i, b"")


def read_forked(locations: list[str], fetcher: Fetcher, hrefs: PublicHrefs) -> Iterator[tuple[int, bytes, bytes]]:
    """(position, kind, payload) for the locations, in order, read by a forked child through
    ``fetcher``. Stops early (the caller reads the rest itself) if the child dies; the files
    the child read are added to the fetcher's ``sources`` at the end, the hrefs it could not
    make public to ``hrefs``, remote validators to its RemoteCache as they come."""
    return _forked(lambda out: _child(out, locations, fetcher, hrefs), locations, fetcher, hrefs)


def read_bulk_forked(locations: list[str], read: Read, values: Callable[[str, bytes, Skip], Iterable[Any]],
                     refused: Callable[[str], bool], fetcher: Fetcher,
                     hrefs: PublicHrefs) -> Iterator[tuple[int, bytes, bytes]]:
    """(position, kind, payload) of every item of the bulk files at the locations, in order,
    read by a forked child: ``read`` fetches a file, ``values`` yields its JSON values
    (formats.read), ``refused`` says whether a failed read was the scope's refusal. Each file
    ends with a b"d" record; a file the child could not finish has none (the caller reads it
    again, without the items it already had)."""
    return _forked(lambda out: _bulk_child(out, locations, read, values, refused, hrefs), locations, fetcher, hrefs)


def _forked(work: Callable[[BinaryIO], None], locations: list[str], fetcher: Fetcher,
            hrefs: PublicHrefs) -> Iterator[tuple[int, bytes, bytes]]:
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
            sources = fetcher.sources
            already = len(sources.paths)
            not_public = hrefs.not_public
            out = os.fdopen(write_fd, "wb", buffering=1 << 16)
            work(out)
            read_here = (sources.paths[already:], sources.sizes[already:], sources.mtimes[already:],
                         hrefs.not_public - not_public, fetcher.child_tally())
            _send(out, b"s", 0, pickle.dumps(read_here, protocol=5))
            _send(out, b"z", 0, b"")
            out.flush()
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
                if kind == b"m":
                    head, _, body = payload.partition(b"\0")
                    etag, modified = orjson.loads(head)
                    fetcher.keep_validators(locations[position], etag, modified, body)
                    continue
                if kind == b"s":
                    paths, sizes, mtimes, not_public, tally = pickle.loads(payload)
                    for path, size_, mtime in zip(paths, sizes, mtimes):
                        fetcher.sources.add(path, size_, mtime)
                    hrefs.not_public += not_public
                    fetcher.add_child_tally(tally)
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
