"""Many small byte strings kept in one buffer, addressed by start/end offset arrays.

One ``bytes`` object per item costs ~33 bytes of header, a pointer and, worse, a small
long-lived allocation that pins the allocator's arenas; one buffer costs nothing per item
and can be written to a snapshot file as is. Records can be re-ordered by permuting the
offset arrays, without copying the buffer.
"""

from __future__ import annotations

import contextlib
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

    def freeze(self, order: np.ndarray | None = None) -> BlobColumn:
        """The blobs, position i holding blob ``order[i]`` when an order is given."""
        return BlobColumn(self.data, *_offsets(self.ends, order))


def copy_to_end(source: int, offset: int, size: int, f: BinaryIO) -> None:
    """``size`` bytes of the open file ``source`` from ``offset`` appended to the file object
    ``f``, copied by the kernel (os.copy_file_range: they never pass through this process, nor
    fault in a mapping of them page by page)."""
    f.flush()
    at = f.seek(0, os.SEEK_END)
    out = f.fileno()
    while size:
        done = os.copy_file_range(source, out, size, offset, at)
        if done <= 0:
            raise OSError(f"copying {size} bytes at {offset} of a file failed")
        offset, at, size = offset + done, at + done, size - done
    f.seek(0, os.SEEK_END)


class FileBlobWriter(BlobWriter):
    """Appends blobs to an open file instead of memory, from its current position (rounded up
    to a page, so the blobs can be mapped): an index build whose items would not fit in memory
    writes their bytes straight into the snapshot being made (server/runtime/snapshot.py), and
    freezing maps them back. The file's own buffering batches the writes."""

    def __init__(self, file: BinaryIO) -> None:
        super().__init__()
        self.file = file
        _WRITERS.add(self)
        at = file.seek(0, os.SEEK_END)
        self.offset = at + -at % mmap.ALLOCATIONGRANULARITY
        file.write(b"\0" * (self.offset - at))
        self.size = 0

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

    def freeze(self, order: np.ndarray | None = None) -> BlobColumn:
        self.file.flush()
        if self.size:
            data: bytes | mmap.mmap = mmap.mmap(self.file.fileno(), self.size, access=mmap.ACCESS_READ, offset=self.offset)
        else:
            data = b""
        column = BlobColumn(data, *_offsets(self.ends, order))
        column.placed = (self.file, self.offset)  # the file object: it stays open while the column lives
        return column


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


def _offsets(ends_array: array, order: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the blobs ending at ``ends_array``, position i holding blob ``order[i]``.
    Gathered straight from the ends (a blob starts where the one before it ends): no array of
    all the starts, nor a copy of the ends, beside the gathered ones (1M: ~0.02 s less a column,
    three columns in the build's serial tail; 16 bytes a blob less at once, issue 18)."""
    ends = np.frombuffer(ends_array, dtype=np.int64) if len(ends_array) else np.zeros(0, np.int64)
    if order is None:
        ends = ends.copy()
        starts = np.empty_like(ends)
        starts[:1] = 0
        starts[1:] = ends[:-1]
        return starts, ends
    starts = ends.take(order - 1)  # blob 0's: ends[-1], set to 0 below
    starts[order == 0] = 0
    return starts, ends.take(order)


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
