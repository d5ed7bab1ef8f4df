"""Index snapshots: `stac-static-api index ROOT... -o FILE` writes one, `serve --index FILE`
starts from it in seconds instead of re-reading every catalog file.

File: a magic line, a JSON header (format and package version, checksums, roots, counts,
when, buffer layout), then the body: a pickle (protocol 5) of the Index, which carries the
fingerprint of its local sources (every file read, with its size and mtime), then the large
buffers raw, which reading maps. A snapshot from another format version is refused; one whose
local files changed is reported stale (serve then rebuilds from the roots). Remote sources
cannot be checked without re-reading them: such a snapshot is served with a warning, and a
reload re-reads the source.

The header carries the SHA-256 of itself and of the body (and the body's length): every read
checks the header's (and the file's length), a download (runtime/remote_snapshot.py) checks
the body's as the bytes arrive (SnapshotCheck), so a truncated or corrupted copy is refused
before it replaces a good one. SHA-256 with the CPU's SHA extensions: ~1.6 GB/s here, less
than the write itself costs; a local file is not hashed on every start (the fast start).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import pickle
import queue
import threading
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
# index carries the catalogs' own tree (server.index.tree);
# 8: the header holds header_sha256, body_sha256 and body_bytes (SnapshotCheck)
FORMAT_VERSION = 8


class SnapshotError(Exception):
    """The snapshot cannot be used; the message says why."""


ALIGN = 64
HOLE = "0" * 64  # a checksum's place in the header while it is computed
MAX_HEADER_BYTES = 64 * 1024 * 1024  # a longer first two lines is not a snapshot


def write_snapshot(path: str, index: Index, roots: list[str]) -> dict[str, Any]:
    """Header line, then a pickle of the Python objects, then every large buffer (item JSON,
    WKB, numpy arrays) raw at an aligned offset, so that reading maps them instead of
    copying them (pickle protocol 5, out-of-band buffers). The body is hashed as it is
    written, and its checksum (then the header's) written into the header's places for them."""
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
    header: dict[str, Any] = {
        "format": FORMAT_VERSION,
        "header_sha256": HOLE,  # first: nothing before them in the line can look like them
        "body_sha256": HOLE,
        "body_bytes": offset,  # from the start of the pickle to the end of the file
        "package_version": __version__,
        "roots": roots,
        "created": time.time(),
        "items": index.size,
        "collections": len(index.collections),
        "local_files": len(index.fingerprint.sizes),
        "pickle_bytes": len(payload),
        "buffers": layout,  # offsets from the start of the pickle
    }
    line = orjson.dumps(header) + b"\n"
    # hashed while written: at 1M (2.6 GB, loaded machine) +2.2 s on a 10.6 s write; in line it was +6.5 s on 8.2
    digest = BackgroundHash()
    tmp = f"{path}.tmp-{os.getpid()}"
    with open(tmp, "wb") as f, contextlib.closing(digest):
        f.write(MAGIC)
        f.write(line)
        start = f.tell()
        pad = -start % ALIGN  # so buffer offsets relative to the pickle stay aligned in the file
        f.write(b" " * pad)
        digest.update(payload)
        f.write(payload)
        for (at, _), raw in zip(layout, raws):
            gap = b"\0" * (start + pad + at - f.tell())
            digest.update(gap)
            f.write(gap)
            digest.update(raw)
            f.write(raw)
        header["body_sha256"] = body_sha256 = digest.hexdigest()
        sealed = seal_header(line, body_sha256)
        header["header_sha256"] = orjson.loads(sealed)["header_sha256"]
        f.seek(len(MAGIC))
        f.write(sealed)  # the same length: the checksums took the places of their holes
    os.replace(tmp, path)  # never a half-written snapshot under the real name
    return header


def _hole(line: bytes, key: str) -> int:
    """Where the value of ``key`` (a 64-character hex checksum) starts in the header line."""
    at = line.find(b'"%s":"' % key.encode())
    if at < 0:
        raise SnapshotError(f"the snapshot header has no {key}")
    return at + len(key) + 4


def seal_header(line: bytes, body_sha256: str) -> bytes:
    """The header line with the body's checksum in its place, then the SHA-256 of that line
    (its own place still zeros) in the header's."""
    at = _hole(line, "body_sha256")
    line = line[:at] + body_sha256.encode() + line[at + 64 :]
    own = hashlib.sha256(line).hexdigest().encode()
    at = _hole(line, "header_sha256")
    return line[:at] + own + line[at + 64 :]


def parse_header(magic: bytes, line: bytes, name: str) -> dict[str, Any]:
    """The header of a snapshot from its first two lines, checked: magic, format version, and
    the header's own checksum (so a damaged byte in the layout never maps the wrong bytes)."""
    if magic != MAGIC:
        raise SnapshotError(f"{name} is not a stac-static-api index snapshot")
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise SnapshotError(f"{name}: unreadable snapshot header") from None
    if not isinstance(header, dict):
        raise SnapshotError(f"{name}: unreadable snapshot header")
    if header.get("format") != FORMAT_VERSION:
        raise SnapshotError(
            f"{name} has snapshot format {header.get('format')}, this server reads format {FORMAT_VERSION}: "
            "rebuild it with `stac-static-api index`"
        )
    try:
        at = _hole(line, "header_sha256")
    except SnapshotError:
        raise SnapshotError(f"{name}: damaged snapshot header (no checksum)") from None
    expected = line[at : at + 64]
    if hashlib.sha256(line[:at] + HOLE.encode() + line[at + 64 :]).hexdigest().encode() != expected:
        raise SnapshotError(f"{name}: damaged snapshot header (its checksum does not match)")
    return header


def read_header(f: Any, path: str) -> dict[str, Any]:
    return parse_header(f.readline(len(MAGIC)), f.readline(MAX_HEADER_BYTES), path)


def body_start(header_end: int) -> int:
    """Where the body starts in the file, the header's two lines ending at ``header_end``."""
    return header_end + (-header_end % ALIGN)


class BackgroundHash:
    """SHA-256 of the chunks given to ``update``, computed in a thread of its own while the
    caller goes on writing them (hashlib lets go of the GIL on large updates): at 1M items
    on 2 loaded cores, a download checked in line took 8.9 s, in the thread 6.5 s (3.4 s
    unchecked). A chunk must not change once given (bytes, or a view of an immutable buffer);
    ``hexdigest`` waits for the last one, ``close`` gives up."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._chunks: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=16)
        self._thread: threading.Thread | None = None

    def update(self, data: bytes | memoryview) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="snapshot-check", daemon=True)
            self._thread.start()
        self._chunks.put(data)

    def _run(self) -> None:
        while (chunk := self._chunks.get()) is not None:
            self._digest.update(chunk)

    def close(self) -> None:
        if self._thread is not None:
            self._chunks.put(None)
            self._thread.join()
            self._thread = None

    def hexdigest(self) -> str:
        self.close()
        return self._digest.hexdigest()


class SnapshotCheck:
    """Checks a snapshot's bytes as they arrive (a download), passing them on to ``sink``:
    magic, format and the header's checksum as soon as the header is in (a snapshot of
    another format is refused before its body is transferred), then the body's length and
    SHA-256 at ``finish()``. Raises SnapshotError with the reason. The body is hashed in a
    thread, overlapping the transfer: a chunk written must not change afterwards (bytes), and
    ``close()`` ends that thread when the download is given up before ``finish()``."""

    def __init__(self, name: str, sink: Any) -> None:
        self.name = name
        self.sink = sink
        self.header: dict[str, Any] | None = None
        self._head = bytearray()
        self._skip = 0
        self._left = 0
        self._digest = BackgroundHash()
        self.received = 0

    def write(self, data: bytes | memoryview) -> None:
        self.sink.write(data)
        self.received += len(data)
        if self.header is not None:
            self._body(memoryview(data))
            return
        self._head += data
        if not MAGIC.startswith(bytes(self._head[: len(MAGIC)])):
            raise SnapshotError(f"{self.name} is not a stac-static-api index snapshot")
        end = self._head.find(b"\n", len(MAGIC))
        if end < 0:
            if len(self._head) > MAX_HEADER_BYTES:
                raise SnapshotError(f"{self.name}: no snapshot header in its first {MAX_HEADER_BYTES} bytes")
            return
        header_end = end + 1
        self.header = parse_header(bytes(self._head[: len(MAGIC)]), bytes(self._head[len(MAGIC) : header_end]),
                                   self.name)
        self._skip = body_start(header_end) - header_end
        self._left = int(self.header.get("body_bytes", 0))
        rest, self._head = memoryview(bytes(self._head[header_end:])), bytearray()
        self._body(rest)

    def _body(self, data: memoryview) -> None:
        if self._skip:
            skipped = min(self._skip, len(data))
            self._skip -= skipped
            data = data[skipped:]
        if len(data) > self._left:
            raise SnapshotError(f"{self.name} is longer than its header says: damaged")
        self._left -= len(data)
        self._digest.update(data)

    def close(self) -> None:
        """Stop the hashing thread (finish() does; call it when giving up on the download)."""
        self._digest.close()

    def finish(self) -> dict[str, Any]:
        """The header, once every byte is in and checked."""
        if self.header is None:
            raise SnapshotError(f"{self.name} is truncated ({self.received} bytes, no complete header)")
        if self._left or self._skip:
            self.close()
            raise SnapshotError(f"{self.name} is truncated: {self._left + self._skip} bytes missing")
        if self._digest.hexdigest() != self.header.get("body_sha256"):
            raise SnapshotError(f"{self.name} is damaged: the checksum of its body does not match its header's")
        return self.header


def read_snapshot(path: str, verify: bool = True) -> tuple[Index, dict[str, Any]]:
    """The index in the snapshot, its large buffers mapped from the file (read-only, shared
    by every process that maps it). Raises SnapshotError when it is unusable or stale."""
    try:
        with open(path, "rb") as f:
            header = read_header(f, path)
            start = body_start(f.tell())
            if os.fstat(f.fileno()).st_size != start + header.get("body_bytes", -1):
                raise SnapshotError(f"{path} is truncated or damaged: not the length its header gives")
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
