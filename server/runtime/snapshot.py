"""Index snapshots: `stac-static-api index ROOT... -o FILE` writes one, `serve --index FILE`
starts from it in seconds instead of re-reading every catalog file.

File: a magic line, a line giving where the header is, then the body: the large buffers raw at
aligned offsets (item JSON, WKB, ids, numpy arrays), which reading maps, and a pickle (protocol
5) of the Index, which carries the fingerprint of its local sources (every file read, with its
size and mtime); last the JSON header (format and package version, checksums, roots, counts,
when, where the pickle and each buffer are). The header comes last because `index` writes the
items' bytes into the file as it reads them (SnapshotWriter.spool), before anything else is
known: the build never holds them in memory. A snapshot from another format version is
refused; one whose local files changed is reported stale (serve then rebuilds from the roots).
Remote sources cannot be checked without re-reading them: such a snapshot is served with a
warning, and a reload re-reads the source.

The header carries the SHA-256 of itself and of the body (and the body's length): every read
checks the header's (and that the header ends the file), a download (runtime/remote_snapshot.py)
hashes the body as the bytes arrive and checks it against the header at the end (SnapshotCheck),
so a truncated or corrupted copy is refused before it replaces a good one; a snapshot of format
7 or before (its header on the second line) is refused as soon as that line is in. The writer
hashes the body by reading it back (the items' bytes went to the file during the build, some
buffers are copied by the kernel), in a thread that follows the file as it grows
(FollowingHash), so most of it is hashed while the build runs: SHA-256 with the CPU's SHA
extensions, ~1.6 GB/s here. A local file is not hashed on every start (the fast start).

A server's reload writes a snapshot that does not stand alone (SnapshotWriter.finish's
``refer``): the items whose documents did not change keep their bytes where they are, in the
previous snapshot's file, and the new one names that file as its "base" (its absolute path, size
and header checksum) and holds only the rest (blobs.SplitBlobColumn: ~0.1% of a million items'
2.3 GB after a hundred changed files, instead of copying it all). The base is always a snapshot
that stands alone: a chain of reloads refers to the same one until the reload compacts
(server.index.reuse). Reading checks that the base is still the file it was; such a snapshot is
never downloaded (SnapshotCheck refuses it: `index` writes those to publish).
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

import numpy as np
import orjson

from server import __version__
from server.catalog.fingerprint import Fingerprint
from server.catalog.parallel import fork_safe
from server.catalog.sources import SourceLog
from server.index import Index
from server.index.blobs import SourceFile, copy_to_end

log = logging.getLogger("stac_static_api.snapshot")

MAGIC = b"stac-static-api index snapshot\n"
# 3: the box index holds time slabs (server/index/spatial.py); 4: the fingerprint is the
# index's own (paths in one mapped buffer), no longer beside a second copy in its SourceLog;
# 5: the fingerprint's class moved to server.catalog.fingerprint (pickles name it); 6: public
# hrefs (no server paths), collections made for items of none, the index's hrefs_config; 7: the
# index carries the catalogs' own tree (server.index.tree); 8: the header last (the items are
# written as they are read), absolute offsets, ids as a blob column (server.index.ids); the
# header holds header_sha256, body_sha256 and body_bytes (SnapshotCheck); 9: a reload's snapshot
# may refer to its previous one's file for most item bytes (the header's "base", a buffer's
# third value IN_BASE, blobs.SplitBlobColumn); 10: a vocabulary of 256 texts or more may be a
# server.index.vocab.TextBlock (session 14; written as 9 then, so an older server refused such a
# snapshot as "damaged or from an incompatible version: No module named server.index.vocab"
# instead of naming its format)
FORMAT_VERSION = 10
# The formats this code reads: 9 is 10 without TextBlocks (its vocabularies are lists, which
# this code reads as ever), so a replica or a start from a snapshot written before still works.
READ_FORMATS = (9, 10)


class SnapshotError(Exception):
    """The snapshot cannot be used; the message says why."""


ALIGN = 64
IN_BASE = 1  # a buffer's third value in the header: it is in the base snapshot's file
HOLE = "0" * 64  # a checksum's place in the header while it is computed
MAX_HEADER_BYTES = 64 * 1024 * 1024  # a longer header is not a snapshot's
POINTER = b"%020d\n"  # the second line: the header's offset in the file
BODY_START = len(MAGIC) + len(POINTER % 0)  # the body: from here to the header
HASH_CHUNK = 16 * 1024 * 1024
SPOOL_BUFFER = 1 << 20


class SnapshotWriter:
    """A snapshot being written under a temporary name beside ``path``: a build may write the
    items' bytes into ``spool`` as it reads them (server.index.IndexBuilder), then ``finish``
    adds the rest and puts the file in place; ``abort`` removes it."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.tmp = f"{path}.tmp-{os.getpid()}"
        # a large buffer: the items' bytes come ~2 KB at a time, one write call per few items
        # with the default 8 KB was ~3 us an item of the loading process
        self.spool = open(self.tmp, "w+b", buffering=SPOOL_BUFFER)  # noqa: SIM115 (closed by finish or abort)
        self.spool.write(MAGIC + POINTER % 0)
        self.spool.flush()
        self._hash = FollowingHash(self.spool.fileno(), BODY_START)

    def finish(self, index: Index, roots: list[str], refer: bool = False) -> dict[str, Any]:
        """Write every large buffer raw at an aligned offset (those already in this file stay
        where they are; those in another file are copied by the kernel; one that is a view of
        a buffer written before is not written again), the pickle of the
        Python objects (pickle protocol 5, out-of-band buffers), then the header. ``refer``:
        a buffer in a snapshot that stands alone (SourceFile.base: a reload's previous one) is
        not copied but referred to, that snapshot named in the header as this one's "base"."""
        if index.fingerprint is None:
            index.fingerprint = Fingerprint.of(SourceLog())
        f = self.spool
        f.flush()
        placed = _placed_buffers(index)
        layout: list[list[int]] = []
        base: dict[str, Any] | None = None
        written: list[tuple[int, int, int]] = []  # (address, size, offset in the file) of the buffers written
        # and the buffers themselves, held to the end: a buffer made only for the pickle (a
        # vocabulary's joined bytes, columns.StringPart) freed once written could have its
        # address taken by a later one, which would then pass for a view of it
        owners: list[pickle.PickleBuffer] = []
        # every buffer the pickle named and the view of it taken here: released if this fails
        # (_release), so no traceback kept holds one that an exporter's view still counts
        named: list[tuple[pickle.PickleBuffer, memoryview]] = []
        # The buffers are written by a thread of their own as the pickle names them (the writes
        # release the GIL and often wait on the disk; the pickle holds it): ~1 s of a 1M build's
        # serial tail overlapped. Only that thread touches the file until it is joined; this one
        # keeps the offsets, so the layout is the same as writing them one after another.
        writer = _BufferWriter(f)
        end = f.seek(0, os.SEEK_END)

        def place(buffer: pickle.PickleBuffer) -> None:
            nonlocal base, end
            raw = buffer.raw()
            named.append((buffer, raw))
            address = _address(raw) if raw.nbytes else 0
            where = placed.get(address) if raw.nbytes else None
            if where is not None and where[0] is f:
                layout.append([where[1], raw.nbytes])
                return
            inside = next((at + address - start for start, size, at in written
                           if start <= address and address + raw.nbytes <= start + size), None) if raw.nbytes else None
            if inside is not None:  # a view of a buffer written above (origins' locations, of the fingerprint's paths)
                layout.append([inside, raw.nbytes])
                return
            if refer and where is not None and isinstance(where[0], SourceFile) and where[0].base is not None \
                    and base in (None, where[0].base):
                base = where[0].base
                layout.append([where[1], raw.nbytes, IN_BASE])
                return
            at = end + -end % ALIGN
            writer.pad(at - end)
            if where is not None:
                writer.copy(where[0].fileno(), where[1], raw.nbytes)
            else:
                writer.write(buffer, raw)
                written.append((address, raw.nbytes, at))
                owners.append(buffer)
            layout.append([at, raw.nbytes])
            end = at + raw.nbytes

        try:
            try:
                payload = pickle.dumps(index, protocol=5, buffer_callback=place)
                pickle_at = end + -end % ALIGN
                writer.pad(pickle_at - end)
                writer.write(None, memoryview(payload))
            finally:
                writer.join()
        except BaseException:
            _release(named)
            del named[:], owners[:]
            raise
        header_at = f.tell()
        if header_at != pickle_at + len(payload):
            raise OSError(f"the snapshot's buffers end at {header_at}, not at {pickle_at + len(payload)} as laid out")
        header: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "header_sha256": HOLE,  # first: nothing before them in the line can look like them
            "body_sha256": HOLE,
            "body_bytes": header_at - BODY_START,
            "package_version": __version__,
            "roots": roots,
            "created": time.time(),
            "items": index.size,
            "collections": len(index.collections),
            "local_files": len(index.fingerprint.sizes),
            "pickle": [pickle_at, len(payload)],
            # [offset in the file, size] of each out-of-band buffer, in pickle order; a third
            # value, IN_BASE: the offset is in the base snapshot's file
            "buffers": layout,
        }
        if base is not None:
            header["base"] = base
        f.flush()
        sealed = seal_header(orjson.dumps(header) + b"\n", self._hash.hexdigest(header_at))
        header.update(orjson.loads(sealed))
        f.write(sealed)
        f.seek(len(MAGIC))
        f.write(POINTER % header_at)
        f.close()
        for column in (index.json, index.wkb, index.ids.blobs):  # the spooled files: their mappings stay
            for attribute in ("placed", "more_placed"):
                where = getattr(column, attribute, None)
                if where is None or isinstance(where[0], SourceFile):  # a mapped snapshot's: it stays
                    continue
                if where[0] is not f:
                    where[0].close()  # the footprints' unnamed file, copied in above
                setattr(column, attribute, None)  # closed: a later snapshot of this index writes from the mapping
        os.replace(self.tmp, self.path)  # never a half-written snapshot under the real name
        return header

    def abort(self) -> None:
        # the file goes whatever closing it says: on a full disk the spool's buffered bytes
        # raise ENOSPC again as it closes (the fd is closed all the same), and an error here
        # left the half-written file (by then most of the disk) and hid the build's own error
        try:
            self._hash.close()
        finally:
            with contextlib.suppress(OSError):
                self.spool.close()
            with contextlib.suppress(OSError):
                os.unlink(self.tmp)


class _BufferWriter:
    """Writes, pads and kernel copies appended to a snapshot's file by a thread of its own, in
    the order given (SnapshotWriter.finish: while the pickle runs). ``join`` waits for them and
    raises the first error; after one, the rest are dropped (the snapshot is aborted)."""

    def __init__(self, f: Any) -> None:
        self._f = f
        self._work: queue.SimpleQueue[tuple[Any, ...] | None] = queue.SimpleQueue()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="snapshot-buffers", daemon=True)
        self._thread.start()

    def pad(self, size: int) -> None:
        if size:
            self._work.put((b"\0" * size,))

    def write(self, owner: Any, raw: memoryview) -> None:
        """Append ``raw`` (``owner``: what keeps it valid until it is written)."""
        self._work.put((raw, owner))

    def copy(self, source: int, offset: int, size: int) -> None:
        self._work.put((source, offset, size))

    def _run(self) -> None:
        while (task := self._work.get()) is not None:
            if self._error is not None:
                continue
            try:
                if len(task) == 3:
                    copy_to_end(task[0], task[1], task[2], self._f)
                else:
                    self._f.write(task[0])
            except BaseException as exc:  # noqa: BLE001 (join raises it in the writing thread)
                self._error = exc

    def join(self) -> None:
        self._work.put(None)
        self._thread.join()
        if self._error is not None:
            raise self._error


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
    """The header of a snapshot (its header line; of format 7 and before, its second line),
    checked: magic, format version, and the header's own checksum (so a damaged byte in the
    layout never maps the wrong bytes)."""
    if magic != MAGIC:
        raise SnapshotError(f"{name} is not a stac-static-api index snapshot")
    try:
        header = orjson.loads(line)
    except orjson.JSONDecodeError:
        raise SnapshotError(f"{name}: damaged snapshot header (unreadable)") from None
    if not isinstance(header, dict):
        raise SnapshotError(f"{name}: damaged snapshot header (unreadable)")
    if header.get("format") not in READ_FORMATS:
        raise SnapshotError(
            f"{name} has snapshot format {header.get('format')}, this server reads formats "
            f"{' and '.join(map(str, READ_FORMATS))}: rebuild it with `stac-static-api index` (of this version)"
        )
    try:
        at = _hole(line, "header_sha256")
    except SnapshotError:
        raise SnapshotError(f"{name}: damaged snapshot header (no checksum)") from None
    expected = line[at : at + 64]
    if hashlib.sha256(line[:at] + HOLE.encode() + line[at + 64 :]).hexdigest().encode() != expected:
        raise SnapshotError(f"{name}: damaged snapshot header (its checksum does not match)")
    return header


class FollowingHash:
    """SHA-256 of a file being written, from ``start``, read back by a thread of its own as the
    file grows: a snapshot's body is only ever appended to (items spooled, buffers copied in
    by the kernel, aligned), so what is in the file below its size is final. ``hexdigest(end)``
    stops the thread and hashes what is left up to ``end``; the body of a 1M-item snapshot
    (~3 GB, ~1.6 GB/s) is then mostly hashed while the build still runs, not after it."""

    POLL_SECONDS = 0.05

    def __init__(self, fd: int, start: int) -> None:
        self._fd = fd
        self._at = start
        self._digest = hashlib.sha256()
        self._chunk = bytearray(HASH_CHUNK)
        self._stop = threading.Event()
        self._error: OSError | None = None
        # fork_safe: the loader may fork indexing children while it runs (it holds no lock they use)
        self._thread: threading.Thread | None = fork_safe(threading.Thread(target=self._run, name="snapshot-hash", daemon=True))
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                size = os.fstat(self._fd).st_size
                if size - self._at >= HASH_CHUNK:  # whole chunks only: the rest when it is all there
                    self._hash_to(self._at + (size - self._at) // HASH_CHUNK * HASH_CHUNK)
                else:
                    self._stop.wait(self.POLL_SECONDS)
        except OSError as exc:  # hexdigest raises it
            self._error = exc

    def _hash_to(self, end: int) -> None:
        chunk, at = memoryview(self._chunk), self._at
        while at < end:
            got = os.preadv(self._fd, [chunk[: min(HASH_CHUNK, end - at)]], at)
            if got <= 0:
                raise OSError(f"reading back the snapshot at {at} failed")
            self._digest.update(chunk[:got])
            at += got
            self._at = at

    def close(self) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None

    def hexdigest(self, end: int) -> str:
        self.close()
        if self._error is not None:
            raise self._error
        if self._at > end:
            raise OSError(f"the snapshot was hashed to {self._at}, past its body's end {end}")
        self._hash_to(end)
        return self._digest.hexdigest()


def write_snapshot(path: str, index: Index, roots: list[str]) -> dict[str, Any]:
    """Write ``index`` (built in memory) as a snapshot at ``path``."""
    writer = SnapshotWriter(path)
    try:
        return writer.finish(index, roots)
    except BaseException:
        writer.abort()
        raise


def _release(named: list[tuple[pickle.PickleBuffer, memoryview]]) -> None:
    """The views of a failed SnapshotWriter.finish's pickle buffers released, then the buffers.
    Its error's traceback holds them (finish()'s frames, the writer thread's, a write's
    argument) in one cycle with the exporters they count against (a vocabulary's memoryview,
    an array); collected later (the error dropped, as a server does after a failed write),
    an exporter cleared first while a view was left crashed the interpreter in gc.collect
    (memoryview tp_clear: "has 1 exported buffer", then SIGSEGV; session 14, which dropped
    write_snapshot's traceback instead). Released, they hold nothing."""
    for buffer, raw in reversed(named):
        with contextlib.suppress(BufferError):  # a view of it still held elsewhere: left
            raw.release()
        buffer.release()


def _address(buffer: memoryview) -> int:
    return int(np.frombuffer(buffer, dtype=np.uint8).ctypes.data)


def _placed_buffers(index: Index) -> dict[int, tuple[Any, int]]:
    """The index's buffers already in a file (server.index.blobs.FileBlobWriter, or a snapshot
    mapped: SourceFile), by address: (that file, offset)."""
    columns = (index.json, index.wkb, index.ids.blobs)
    return {_address(buffer): placed for c in columns for buffer, _, placed in c.parts()
            if placed is not None and buffer.nbytes}


def read_header(f: Any, path: str) -> dict[str, Any]:
    """The header of the snapshot open as ``f``, checked (parse_header), and the file complete:
    the header ends it and the body is the length it gives. Leaves ``f`` at the end."""
    magic = f.readline(len(MAGIC))
    line = f.readline(MAX_HEADER_BYTES)
    if magic != MAGIC or line.startswith(b"{"):  # not a snapshot, or format 7 and before
        return parse_header(magic, line, path)
    try:
        header_at = int(line)
    except ValueError:
        raise SnapshotError(f"{path}: damaged snapshot header (unreadable)") from None
    size = os.fstat(f.fileno()).st_size
    if not BODY_START <= header_at < size:
        raise SnapshotError(f"{path} is truncated or damaged: no header where it says")
    f.seek(header_at)
    header = parse_header(magic, f.readline(MAX_HEADER_BYTES), path)
    if f.tell() != size or header.get("body_bytes") != header_at - BODY_START:
        raise SnapshotError(f"{path} is truncated or damaged: not the length its header gives")
    return header


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
    """Checks a snapshot's bytes as they arrive (a download), passing them on to ``sink``: the
    magic line and the header's place as soon as they are in (a snapshot of format 7 or before,
    whose header is its second line, is refused then, before its body is transferred), the body
    hashed as it arrives, then at ``finish()`` the header that ends the file: its own checksum,
    the body's length and SHA-256. Raises SnapshotError with the reason. The body is hashed in a
    thread, overlapping the transfer: a chunk written must not change afterwards (bytes), and
    ``close()`` ends that thread when the download is given up before ``finish()``."""

    def __init__(self, name: str, sink: Any) -> None:
        self.name = name
        self.sink = sink
        self.header: dict[str, Any] | None = None
        self._head = bytearray()
        self._header_at: int | None = None  # once the second line is in
        self._tail = bytearray()  # the header, after the body
        self._digest = BackgroundHash()
        self.received = 0

    def write(self, data: bytes | memoryview) -> None:
        self.sink.write(data)
        at = self.received
        self.received += len(data)
        if self._header_at is not None:
            self._body(memoryview(data), at)
            return
        self._head += data
        if not MAGIC.startswith(bytes(self._head[: len(MAGIC)])):
            raise SnapshotError(f"{self.name} is not a stac-static-api index snapshot")
        if self._head[len(MAGIC) : len(MAGIC) + 1] == b"{":  # format 7 and before: the header here
            end = self._head.find(b"\n", len(MAGIC))
            if end < 0 and len(self._head) <= MAX_HEADER_BYTES:
                return
            parse_header(MAGIC, bytes(self._head[len(MAGIC) : end + 1 if end >= 0 else None]), self.name)
            raise SnapshotError(f"{self.name}: damaged snapshot header")  # a JSON second line of this format
        if len(self._head) < BODY_START:
            return
        pointer = bytes(self._head[len(MAGIC) : BODY_START])
        if not pointer[:-1].isdigit() or not pointer.endswith(b"\n") or int(pointer) < BODY_START:
            raise SnapshotError(f"{self.name}: damaged snapshot header (unreadable)")
        self._header_at = int(pointer)
        rest, self._head = memoryview(bytes(self._head[BODY_START:])), bytearray()
        self._body(rest, BODY_START)

    def _body(self, data: memoryview, at: int) -> None:
        """``data``, starting at offset ``at`` of the file: body bytes are hashed, the rest is
        the header."""
        assert self._header_at is not None
        body = max(0, min(len(data), self._header_at - at))
        if body:
            self._digest.update(data[:body])
        if body < len(data):
            self._tail += data[body:]
            newline = self._tail.find(b"\n")
            if 0 <= newline < len(self._tail) - 1:
                raise SnapshotError(f"{self.name} is longer than its header says: damaged")
            if len(self._tail) > MAX_HEADER_BYTES:
                raise SnapshotError(f"{self.name}: no snapshot header in the last {MAX_HEADER_BYTES} bytes")

    def close(self) -> None:
        """Stop the hashing thread (finish() does; call it when giving up on the download)."""
        self._digest.close()

    def finish(self) -> dict[str, Any]:
        """The header, once every byte is in and checked."""
        if self._header_at is None:
            raise SnapshotError(f"{self.name} is truncated ({self.received} bytes, no complete header)")
        if self.received <= self._header_at or not self._tail.endswith(b"\n"):
            self.close()
            missing = f": {self._header_at - self.received} bytes of its body missing" if self.received < self._header_at else ""
            raise SnapshotError(f"{self.name} is truncated (its header, which ends it, is not complete){missing}")
        header = parse_header(MAGIC, bytes(self._tail), self.name)
        if "base" in header:
            self.close()
            raise SnapshotError(f"{self.name} is a server's reload snapshot, which refers to another file for its items: "
                                "publish one written by `stac-static-api index`")
        if header.get("body_bytes") != self._header_at - BODY_START:
            self.close()
            raise SnapshotError(f"{self.name} is damaged: its body is not the length its header gives")
        if self._digest.hexdigest() != header.get("body_sha256"):
            raise SnapshotError(f"{self.name} is damaged: the checksum of its body does not match its header's")
        self.header = header
        return header

def _mapped(path: str) -> tuple[dict[str, Any], memoryview, int]:
    """A snapshot's checked header, the whole file mapped, and a descriptor of its own."""
    with open(path, "rb") as f:
        header = read_header(f, path)
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        return header, memoryview(mapped), os.dup(f.fileno())  # the file mapped, even if renamed over since


def _base_of(path: str, base: dict[str, Any], name: str | None = None) -> tuple[memoryview, SourceFile]:
    """The snapshot a reload's snapshot at ``path`` refers to for most of its items' bytes
    (``base``, from its header; read as ``name`` when given), mapped, when it is still the one
    it was (its header's checksum and its size)."""
    try:
        header, view, fd = _mapped(name or base["path"])
    except (OSError, SnapshotError) as exc:
        raise SnapshotError(f"{path} refers to the snapshot {base['path']} for its items, which cannot be read "
                            f"({getattr(exc, 'strerror', None) or exc})") from None
    source = SourceFile(fd, base)  # the next reload's snapshot may refer to it too
    if header.get("header_sha256") != base.get("header_sha256") or len(view) != base.get("size") or "base" in header:
        raise SnapshotError(f"{path} refers to the snapshot {base['path']} for its items, which was replaced since")
    return view, source


def snapshot_base(path: str) -> str | None:
    """The path of the snapshot the one at ``path`` refers to for most of its items (a
    reload's, see SnapshotWriter.finish), or None: it stands alone."""
    with open(path, "rb") as f:
        base = read_header(f, path).get("base")
    return str(base["path"]) if base else None


def read_snapshot(path: str, verify: bool = True, base: str | None = None) -> tuple[Index, dict[str, Any]]:
    """The index in the snapshot, its large buffers mapped from the file (read-only, shared
    by every process that maps it); those of a reload's snapshot that refers to a base one
    (its header's "base", SnapshotWriter.finish) mapped from that file, or from ``base`` when
    given (another name of it: /proc/self/fd/N). Raises SnapshotError when it is unusable or stale."""
    try:
        header, view, fd = _mapped(path)
        # a snapshot that stands alone may be referred to by the next reload's (SourceFile.base)
        source = SourceFile(fd, None if "base" in header else
                            {"path": os.path.abspath(path), "size": len(view), "header_sha256": header["header_sha256"]})
        views = [(view, source)]
        if "base" in header:
            views.append(_base_of(path, header["base"], base))
        buffers = [views[int(entry[2]) if len(entry) > 2 else 0][0][entry[0] : entry[0] + entry[1]]
                   for entry in header["buffers"]]
        pickle_at, pickle_size = header["pickle"]
        if any(len(b) != entry[1] for b, entry in zip(buffers, header["buffers"])) or \
                len(view) < pickle_at + pickle_size:
            raise SnapshotError(f"{path} is truncated")
        index = pickle.loads(view[pickle_at : pickle_at + pickle_size], buffers=buffers)
        if not isinstance(index.fingerprint, Fingerprint):
            raise SnapshotError(f"{path} has no fingerprint of its files")
        _place_columns(index, views)
    except OSError as exc:
        raise SnapshotError(f"cannot read {path}: {exc.strerror or exc}") from None
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, TypeError, KeyError, ValueError) as exc:
        raise SnapshotError(f"{path} is damaged or from an incompatible version: {exc}") from None
    if verify:
        stale = stale_reason(index.fingerprint, header, path)
        if stale is not None:
            raise SnapshotError(stale)
    index.loaded_at = time.time()
    return index, header


def _place_columns(index: Index, views: list[tuple[memoryview, SourceFile]]) -> None:
    """Tell the item bytes, footprints and ids where they are in the snapshot files (placed):
    a reload that reuses them (server.index.reuse) or a snapshot written of this index copies
    them from the file by the kernel (or refers to it) instead of out of the mapping."""
    for column in (index.json, index.wkb, index.ids.blobs):
        for (buffer, _, _), attribute in zip(column.parts(), ("placed", "more_placed")):
            if not buffer.nbytes:
                continue
            for view, source in views:
                at = _address(buffer) - _address(view)
                if 0 <= at and at + buffer.nbytes <= len(view):
                    setattr(column, attribute, (source, at))
                    break


def stale_reason(fingerprint: Fingerprint, header: dict[str, Any], path: str, processes: int = 0) -> str | None:
    """Why the snapshot at ``path`` (its index's ``fingerprint``, its ``header``) is stale (a
    local file it was read from changed), or None; remote roots cannot be checked: a warning
    says so. ``processes``: forked checkers (0: up to 4, one per core; only before serving)."""
    changed = fingerprint.changed(processes=processes or min(4, os.cpu_count() or 1))
    if changed:
        return f"{path} is stale: its source files changed since it was written, e.g. {', '.join(changed)}"
    if any("://" in root for root in header["roots"]):
        log.warning("%s includes remote roots, which a snapshot cannot verify: serving them as of %s",
                    path, time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(header["created"])))
    return None
