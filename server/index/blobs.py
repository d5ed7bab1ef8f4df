"""Many small byte strings kept in one buffer, addressed by start/end offset arrays.

One ``bytes`` object per item costs ~33 bytes of header, a pointer and, worse, a small
long-lived allocation that pins the allocator's arenas; one buffer costs nothing per item
and can be written to a snapshot file as is. Records can be re-ordered by permuting the
offset arrays, without copying the buffer.
"""

from __future__ import annotations

import contextlib
import errno
import mmap
import os
import pickle
import weakref
from array import array
from typing import Any, BinaryIO

import numpy as np


class BlobWriter:
    """Appends blobs to one growing buffer."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends = array("q")

    @classmethod
    def of(cls, data: bytearray | bytes, ends: array) -> BlobWriter:
        """A writer holding the blobs ``data`` and ``ends`` already."""
        writer = cls()
        writer.data, writer.ends = bytearray(data), ends
        return writer

    def append(self, blob: bytes) -> None:
        self.data += blob
        self.ends.append(len(self.data))

    def __len__(self) -> int:
        return len(self.ends)

    def extend(self, data: bytes | bytearray, ends: array) -> None:
        """Append another writer's blobs at once: its buffer and ends (``ends[i]``: where its
        blob i ends in ``data``)."""
        self.ends.frombytes((np.frombuffer(ends, dtype=np.int64) + len(self.data)).tobytes())
        self.data += data

    def extend_from(self, source: int, size: int, ends: array) -> None:
        """``extend`` with the first ``size`` bytes of the open file ``source`` as the buffer."""
        data = bytearray()
        while len(data) < size:
            part = os.pread(source, size - len(data), len(data))
            if not part:
                raise OSError(f"reading {size} bytes of a file found {len(data)}")
            data += part
        self.extend(data, ends)

    def offsets(self, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(starts, ends) of the blobs in the buffer, position i holding blob ``order[i]`` when an
        order is given."""
        return _offsets(self.ends, order)

    def freeze(self, order: np.ndarray | None = None) -> BlobColumn:
        """The blobs, position i holding blob ``order[i]`` when an order is given."""
        return BlobColumn(self.data, *self.offsets(order))


def copy_to_end(source: int, offset: int, size: int, f: BinaryIO) -> None:
    """``size`` bytes of the open file ``source`` from ``offset`` appended to the file object
    ``f``, copied by the kernel (os.copy_file_range: they never pass through this process, nor
    fault in a mapping of them page by page)."""
    f.flush()
    at = f.seek(0, os.SEEK_END)
    out = f.fileno()
    kernel = True
    while size:
        if kernel:
            try:
                done = os.copy_file_range(source, out, size, offset, at)
            except OSError as exc:
                if exc.errno not in _NO_KERNEL_COPY:
                    raise
                kernel = False  # read and written here from now on
                continue
        else:
            block = os.pread(source, min(size, COPY_BLOCK), offset)
            done = os.pwrite(out, block, at) if block else 0
        if done <= 0:
            raise OSError(f"copying {size} bytes at {offset} of a file failed")
        offset, at, size = offset + done, at + done, size - done
    f.seek(0, os.SEEK_END)


# copy_file_range refused (Linux >= 5.19: two files on different filesystems, EXDEV; some
# filesystems: EINVAL, EOPNOTSUPP, ENOSYS): a server whose --index is on another filesystem than
# its temporary folder could never reload (the reload's snapshot is written in the temporary
# folder, copying the reused items' bytes from the --index file; session 15's QA, a tmpfs
# --index): the bytes are then read and written here, COPY_BLOCK at a time
_NO_KERNEL_COPY = frozenset({errno.EXDEV, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS})
COPY_BLOCK = 1 << 20


class FileBlobWriter(BlobWriter):
    """Appends blobs to an open file instead of memory, from its current position (rounded up
    to a page, so the blobs can be mapped): an index build whose items would not fit in memory
    writes their bytes straight into the snapshot being made (server/runtime/snapshot.py), and
    freezing maps them back. The file's own buffering batches the writes. Forked processes may
    append blobs to the same file meanwhile (AppendBlobWriter, taken by ``place``); ``ends``
    count from ``offset``, and a blob that does not start where the one before it ended (the
    first of a piece another process appended, or this process's first after them) is listed in
    ``jumps``."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self.file = file
        _WRITERS.add(self)
        at = file.seek(0, os.SEEK_END)
        self.offset = at + -at % mmap.ALLOCATIONGRANULARITY
        file.write(b"\0" * (self.offset - at))
        self.size = 0  # where this process's next blob goes, from ``offset``
        self.jumps = array("q")  # (blob, its start from ``offset``) pairs, by blob

    def _jump(self, blob: int, start: int) -> None:
        if self.jumps and self.jumps[-2] == blob:
            self.jumps[-1] = start
        else:
            self.jumps.extend((blob, start))

    def appended(self) -> None:
        """Other processes appended to the file (AppendBlobWriter) and are done: this process's
        next blob goes at its end."""
        self.file.flush()
        end = self.file.seek(0, os.SEEK_END) - self.offset
        if end != self.size:
            self.size = end
            self._jump(len(self.ends), end)

    def place(self, pieces: array, ends: array) -> None:
        """Append blobs another process appended to this file (an AppendBlobWriter's: its
        ``ends`` and ``pieces``); their bytes stay where they are. Call ``appended`` once the
        others are done, before this process writes again."""
        if not len(ends):
            return
        stream_ends = np.frombuffer(ends, dtype=np.int64)
        at = np.frombuffer(pieces, dtype=np.int64).reshape(-1, 2)
        stream_starts = np.empty_like(stream_ends)
        stream_starts[0] = 0
        stream_starts[1:] = stream_ends[:-1]
        piece = np.searchsorted(at[:, 0], stream_starts, side="right") - 1
        shift = at[:, 1] - self.offset - at[:, 0]  # a piece's stream offset to its place from ``offset``
        first = len(self.ends)
        self.ends.frombytes((stream_ends + shift[piece]).tobytes())
        rows = np.flatnonzero(np.diff(piece, prepend=-1))  # each piece's first blob
        self._jump(first, int(stream_starts[0] + shift[piece[0]]))
        self.jumps.frombytes(np.stack((rows[1:] + first, stream_starts[rows[1:]] + shift[piece[rows[1:]]]), axis=1).tobytes())

    def append(self, blob: bytes) -> None:
        self.file.write(blob)
        self.size += len(blob)
        self.ends.append(self.size)

    def append_range(self, source: int, offset: int, size: int) -> None:
        """One blob: ``size`` bytes of the open file ``source`` from ``offset`` (copy_to_end)."""
        copy_to_end(source, offset, size, self.file)
        self.size += size
        self.ends.append(self.size)

    def extend(self, data: bytes | bytearray, ends: array) -> None:
        self.file.write(data)
        self.ends.frombytes((np.frombuffer(ends, dtype=np.int64) + self.size).tobytes())
        self.size += len(data)

    def extend_from(self, source: int, size: int, ends: array) -> None:
        # copied by the kernel (copy_to_end): the bytes never pass through this process
        copy_to_end(source, 0, size, self.file)
        self.ends.frombytes((np.frombuffer(ends, dtype=np.int64) + self.size).tobytes())
        self.size += size

    def offsets(self, order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        return _offsets(self.ends, order, self.jumps)

    def freeze(self, order: np.ndarray | None = None) -> BlobColumn:
        self.file.flush()
        size = max(self.size, int(np.frombuffer(self.ends, dtype=np.int64).max()) if len(self.ends) else 0)
        if size:
            data: bytes | mmap.mmap = mmap.mmap(self.file.fileno(), size, access=mmap.ACCESS_READ, offset=self.offset)
        else:
            data = b""
        column = BlobColumn(data, *self.offsets(order))
        column.placed = (self.file, self.offset)  # the file object: it stays open while the column lives
        return column


class AppendBlobWriter(BlobWriter):
    """In a forked process: blobs appended to the file at ``path`` that other processes append
    to as well (a snapshot's spool, where the loading process's FileBlobWriter ``place``s them),
    a piece of about PIECE bytes at a time, each piece one write of whole blobs (O_APPEND: the
    kernel puts it at the end of the file as a whole, whatever the others write). ``ends``
    count through the pieces as if they were one buffer; ``pieces``: (where a piece starts in
    that count, where the kernel put it in the file) pairs. The items' bytes of an ndjson chunk
    or a parquet row group go straight where the snapshot keeps them: no file of the chunk's
    own that the loading process then has the kernel copy into the spool and unlinks (1M
    ndjson: ~1 CPU-s of that process's, and 2 GB written once less; issue 18)."""

    # 64 KB, as the chunk files' buffer wrote: a page cache folio is allocated as large as the
    # write (ext4's large folios), and 1 MiB ones had the kernel compact memory in the children's
    # writes where the page cache fills it (perf, 1M ndjson: 0.65 s vs 0.14 at 64 KB writes)
    PIECE = 64 << 10

    def __init__(self, path: str) -> None:
        super().__init__()
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.size = 0
        self.pieces = array("q")

    def append(self, blob: bytes) -> None:
        self.data += blob
        self.size += len(blob)
        self.ends.append(self.size)
        if len(self.data) >= self.PIECE:
            self._write()

    def extend(self, data: bytes | bytearray, ends: array) -> None:
        self.ends.frombytes((np.frombuffer(ends, dtype=np.int64) + self.size).tobytes())
        self.data += data
        self.size += len(data)
        self._write()

    def _write(self) -> None:
        size = len(self.data)
        if not size:
            return
        if os.write(self.fd, self.data) != size:  # a piece split by a full disk cannot be placed
            raise OSError(f"appending {size} bytes to the spool wrote fewer")
        self.pieces.extend((self.size - size, os.lseek(self.fd, 0, os.SEEK_CUR) - size))
        del self.data[:]

    def close(self) -> None:
        """Write what is left; no more blobs after."""
        if self.fd >= 0:
            try:
                self._write()
            finally:
                os.close(self.fd)
                self.fd = -1

    def freeze(self, order: np.ndarray | None = None) -> BlobColumn:
        raise TypeError("an AppendBlobWriter's blobs are placed by the file's FileBlobWriter")


# Every FileBlobWriter's file is flushed before any fork: a forked child inherits the file's
# buffer, and a child that drops the builder it inherited (the loader's forked indexing makes a
# builder of its own) writes that copy into the shared file at the shared offset, shifting every
# blob after it. Session 13 found it: at 64 KB ndjson chunks, 75,000 of 100,000 footprints read
# as another item's bytes; with 8 MB chunks, whenever a file's last chunk left under the buffer's
# 8 KB in it before the next file forked.
_WRITERS: weakref.WeakSet[FileBlobWriter] = weakref.WeakSet()


def _flush_before_fork() -> None:
    for writer in list(_WRITERS):
        with contextlib.suppress(ValueError, OSError):  # closed, or its disk full: its own writes say so
            writer.file.flush()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(before=_flush_before_fork)


def _offsets(ends_array: array, order: np.ndarray | None, jumps: array | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the blobs ending at ``ends_array``, position i holding blob ``order[i]``.
    Gathered straight from the ends (a blob starts where the one before it ends, but for the
    ``jumps``: (blob, its start)): no array of all the starts, nor a copy of the ends, beside
    the gathered ones (1M: ~0.02 s less a column, three columns in the build's serial tail; 16
    bytes a blob less at once, issue 18)."""
    ends = np.frombuffer(ends_array, dtype=np.int64) if len(ends_array) else np.zeros(0, np.int64)
    if order is None:
        ends = ends.copy()
        starts = np.empty_like(ends)
        starts[:1] = 0
        starts[1:] = ends[:-1]
    else:
        starts = ends.take(order - 1)  # blob 0's: ends[-1], set to 0 below
        starts[order == 0] = 0
        ends = ends.take(order)
    pairs = np.frombuffer(jumps, dtype=np.int64).reshape(-1, 2) if jumps else np.zeros((0, 2), np.int64)
    pairs = pairs[pairs[:, 0] < len(ends_array)]
    if len(pairs):
        blobs, jump_starts = pairs[:, 0], pairs[:, 1]  # blobs ascending
        if order is None:
            starts[blobs] = jump_starts
        else:
            jumps_at = np.zeros(len(ends_array), dtype=bool)
            jumps_at[blobs] = True
            at = np.flatnonzero(jumps_at[order])
            starts[at] = jump_starts[np.searchsorted(blobs, order[at])]
    return starts, ends


class SourceFile:
    """A file held open (read-only) for the columns mapped from it (a snapshot read), so that
    their bytes can be copied from it by the kernel (BlobColumn.placed); closed when the last
    column referring to it goes. ``base``: what a snapshot written later names to refer to
    this file's bytes instead of copying them (server/runtime/snapshot.py: the path and
    checksum of a snapshot that stands alone); None: not to be referred to."""

    def __init__(self, fd: int, base: dict[str, Any] | None = None) -> None:
        self.fd = fd  # its own: closed here
        self.base = base

    def fileno(self) -> int:
        return self.fd

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        self.close()


class BlobColumn:
    __slots__ = ("data", "starts", "ends", "placed")

    def __init__(self, data: bytes | bytearray | mmap.mmap, starts: np.ndarray, ends: np.ndarray) -> None:
        self.data = memoryview(data)
        self.starts = starts
        self.ends = ends
        # (open file, offset) when the bytes are already in a file (FileBlobWriter, or the
        # snapshot they are mapped from: SourceFile): a snapshot writer or a reload's merge
        # copies them from there, or finds them in place, instead of writing them out of
        # memory. Never pickled.
        self.placed: tuple[BinaryIO | SourceFile, int] | None = None

    def __reduce__(self) -> tuple[object, ...]:
        # The buffer goes into the pickle as is (protocol 5), without a copy to bytes first.
        return (BlobColumn, (pickle.PickleBuffer(self.data), self.starts, self.ends))

    def many(self, positions: np.ndarray) -> list[bytes]:
        """The blobs at ``positions``, for vectorized decoders (shapely.from_wkb)."""
        data = self.data
        return [data[s:e].tobytes() for s, e in zip(self.starts[positions].tolist(), self.ends[positions].tolist())]

    def __len__(self) -> int:
        return len(self.starts)

    def __getitem__(self, i: int) -> bytes:
        return self.data[self.starts[i] : self.ends[i]].tobytes()

    def views(self, positions: np.ndarray) -> list[memoryview]:
        """``view`` of each of ``positions``, their bounds read at once."""
        data = self.data
        return [data[s:e] for s, e in zip(self.starts[positions].tolist(), self.ends[positions].tolist())]

    def view(self, i: int) -> memoryview:
        """The blob at ``i`` without a copy, for a caller that copies it into something else
        right away (a spliced response); keeping it keeps the buffer from being released."""
        return self.data[self.starts[i] : self.ends[i]]

    @property
    def nbytes(self) -> int:
        return self.data.nbytes + self.starts.nbytes + self.ends.nbytes

    def parts(self) -> list[tuple[memoryview, int, tuple[BinaryIO | SourceFile, int] | None]]:
        """Its buffers, each with the offset its blobs' starts and ends count from and where
        it is in a file: one here (SplitBlobColumn: two)."""
        return [(self.data, 0, self.placed)]

    def by_buffer(self, positions: np.ndarray) -> list[tuple[memoryview, np.ndarray | None, np.ndarray, np.ndarray]]:
        """The blobs at ``positions`` grouped by the buffer they are in, for readers of the raw
        bytes (Index.vertex_in_boxes): (buffer, which of ``positions`` (None: all of them), their
        starts and ends in that buffer). One group here (SplitBlobColumn: up to two)."""
        return [(self.data, None, self.starts[positions], self.ends[positions])]


class SplitBlobColumn(BlobColumn):
    """Blobs in two buffers: ``data`` (offsets below ``split``, its length) and ``more``
    (offsets from ``split`` on, counted as if it followed ``data``). A reload's item bytes
    (server.index.reuse): ``data`` stays the previous snapshot's buffer, mapped from that file
    and never copied, ``more`` holds the items read since (a few); the snapshot written of it
    refers to the first file instead of holding a copy of its gigabytes."""

    __slots__ = ("more", "split", "more_placed")

    def __init__(self, data: bytes | bytearray | mmap.mmap | memoryview, starts: np.ndarray, ends: np.ndarray,
                 more: bytes | bytearray | mmap.mmap | memoryview) -> None:
        super().__init__(data, starts, ends)  # type: ignore[arg-type]  # memoryview(memoryview) is fine
        self.more = memoryview(more)
        self.split = len(self.data)
        self.more_placed: tuple[BinaryIO | SourceFile, int] | None = None  # as ``placed``, for ``more``

    def __reduce__(self) -> tuple[object, ...]:
        return (SplitBlobColumn, (pickle.PickleBuffer(self.data), self.starts, self.ends, pickle.PickleBuffer(self.more)))

    def _slice(self, s: int, e: int) -> memoryview:
        split = self.split
        return self.data[s:e] if s < split else self.more[s - split : e - split]

    def many(self, positions: np.ndarray) -> list[bytes]:
        return [self._slice(s, e).tobytes() for s, e in zip(self.starts[positions].tolist(), self.ends[positions].tolist())]

    def __getitem__(self, i: int) -> bytes:
        return self._slice(int(self.starts[i]), int(self.ends[i])).tobytes()

    def views(self, positions: np.ndarray) -> list[memoryview]:
        return [self._slice(s, e) for s, e in zip(self.starts[positions].tolist(), self.ends[positions].tolist())]

    def view(self, i: int) -> memoryview:
        return self._slice(int(self.starts[i]), int(self.ends[i]))

    @property
    def nbytes(self) -> int:
        return super().nbytes + self.more.nbytes

    def parts(self) -> list[tuple[memoryview, int, tuple[BinaryIO | SourceFile, int] | None]]:
        return [(self.data, 0, self.placed), (self.more, self.split, self.more_placed)]

    def by_buffer(self, positions: np.ndarray) -> list[tuple[memoryview, np.ndarray | None, np.ndarray, np.ndarray]]:
        starts, ends = self.starts[positions], self.ends[positions]
        first = starts < self.split  # as _slice: an empty blob at the split is read from ``more``
        if first.all():
            return [(self.data, None, starts, ends)]
        rest = np.flatnonzero(~first)
        if len(rest) == len(first):
            return [(self.more, None, starts - self.split, ends - self.split)]
        head = np.flatnonzero(first)
        return [(self.data, head, starts[head], ends[head]),
                (self.more, rest, starts[rest] - self.split, ends[rest] - self.split)]
