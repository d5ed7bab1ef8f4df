"""Many small byte strings kept in one buffer plus an offsets array.

One ``bytes`` object per item costs ~33 bytes of header and a pointer; one buffer costs
nothing per item and can later be written to (or mapped from) a snapshot file as is.
"""

from __future__ import annotations

import numpy as np


class BlobColumn:
    __slots__ = ("data", "offsets")

    def __init__(self, data: bytes, offsets: np.ndarray) -> None:
        self.data = data
        self.offsets = offsets

    @classmethod
    def from_list(cls, blobs: list[bytes]) -> "BlobColumn":
        offsets = np.zeros(len(blobs) + 1, dtype=np.int64)
        if blobs:
            np.cumsum([len(b) for b in blobs], out=offsets[1:])
        return cls(b"".join(blobs), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return self.data[self.offsets[i] : self.offsets[i + 1]]

    @property
    def nbytes(self) -> int:
        return len(self.data) + self.offsets.nbytes
