"""Many small byte strings kept in one buffer, addressed by start/end offset arrays.

One ``bytes`` object per item costs ~33 bytes of header, a pointer and, worse, a small
long-lived allocation that pins the allocator's arenas; one buffer costs nothing per item
and can be written to a snapshot file as is. Records can be re-ordered by permuting the
offset arrays, without copying the buffer.
"""

from __future__ import annotations

import pickle
from array import array

import numpy as np


class BlobWriter:
    """Appends blobs to one growing buffer."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.ends = array("q")

    def append(self, blob: bytes) -> None:
        self.data += blob
        self.ends.append(len(self.data))

    def __len__(self) -> int:
        return len(self.ends)

    def freeze(self, order: np.ndarray | None = None) -> BlobColumn:
        """The blobs, position i holding blob ``order[i]`` when an order is given."""
        ends = np.frombuffer(self.ends, dtype=np.int64).copy() if len(self.ends) else np.zeros(0, np.int64)
        starts = np.concatenate(([0], ends[:-1])).astype(np.int64) if len(ends) else ends.copy()
        if order is not None:
            starts, ends = starts[order], ends[order]
        return BlobColumn(self.data, starts, ends)


class BlobColumn:
    __slots__ = ("data", "starts", "ends")

    def __init__(self, data: bytes | bytearray, starts: np.ndarray, ends: np.ndarray) -> None:
        self.data = memoryview(data)
        self.starts = starts
        self.ends = ends

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
