"""Item ids in index order, without a Python string per item.

A list of ten million id strings costs ~0.8 GB of the server's own memory and seconds to
unpickle; here the ids are UTF-8 bytes in one BlobColumn (mapped from a snapshot like the
items) and are found through a 64-bit hash of their bytes: the hashes sorted, with the
positions in that order, looked up by binary search and confirmed on the bytes (two ids may
share a hash). The sorted vocabulary of ids (the `id` column of CQL2 filters and sortby) is
made only when a query needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from server.index.blobs import BlobColumn, BlobWriter

_PRIME = np.uint64(0x100000001B3)
_MIX = np.uint64(0xBF58476D1CE4E5B9)


def bytes_hashes(blobs: BlobColumn) -> np.ndarray:
    """A 64-bit hash of each blob's bytes (FNV-style over 8-byte words, then mixed), computed
    for all of them at once: a few numpy passes, not a Python call per blob."""
    n = len(blobs)
    hashes = np.full(n, 0xCBF29CE484222325, dtype=np.uint64)
    if n == 0:
        return hashes
    lengths = blobs.ends - blobs.starts
    # every 8-byte word of the buffer at every byte offset (a strided view, no copy), over a
    # copy padded with 8 zero bytes so the last blob's last word can be read
    data = np.zeros(len(blobs.data) + 8, dtype=np.uint8)
    data[: len(blobs.data)] = np.frombuffer(blobs.data, dtype=np.uint8)
    words = np.ndarray(shape=(len(data) - 7,), dtype="<u8", buffer=data, strides=(1,))
    with np.errstate(over="ignore"):
        for k in range(0, int(lengths.max(initial=0)), 8):
            left = lengths - k
            live = left > 0
            word = words[blobs.starts[live] + k]
            keep = np.minimum(left[live], 8).astype(np.uint64) * np.uint64(8)
            mask = np.where(keep == 64, np.uint64(0xFFFFFFFFFFFFFFFF), (np.uint64(1) << (keep % np.uint64(64))) - np.uint64(1))
            hashes[live] = (hashes[live] ^ (word & mask)) * _PRIME
        hashes ^= lengths.astype(np.uint64)
        hashes ^= hashes >> np.uint64(31)
        hashes *= _MIX
        hashes ^= hashes >> np.uint64(29)
    return hashes


class IdColumn:
    """The ids of an index's records: ``ids[pos]`` is a str, as a list's would be."""

    __slots__ = ("blobs", "hash_sorted", "hash_order", "_vocab")

    def __init__(self, blobs: BlobColumn) -> None:
        self.blobs = blobs
        hashes = bytes_hashes(blobs)
        self.hash_order = np.argsort(hashes, kind="stable")
        self.hash_sorted = hashes[self.hash_order]
        self._vocab: tuple[list[str], np.ndarray] | None = None

    @classmethod
    def of(cls, ids: Iterable[str]) -> IdColumn:
        writer = BlobWriter()
        for item_id in ids:
            writer.append(item_id.encode())
        return cls(writer.freeze())

    def __reduce__(self) -> tuple[Any, ...]:
        return (_restore, (self.blobs, self.hash_sorted, self.hash_order))

    def __len__(self) -> int:
        return len(self.blobs)

    def __getitem__(self, pos: int) -> str:
        return self.blobs.view(pos).tobytes().decode()

    def __iter__(self) -> Iterator[str]:
        data = self.blobs.data
        for s, e in zip(self.blobs.starts.tolist(), self.blobs.ends.tolist()):
            yield data[s:e].tobytes().decode()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, tuple, IdColumn)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def positions(self, item_ids: Iterable[str]) -> np.ndarray:
        """Sorted positions of the records with any of ``item_ids``."""
        wanted = list({i.encode() for i in item_ids})
        if not wanted or not len(self):
            return np.zeros(0, dtype=np.int64)
        keys = bytes_hashes(_column_of(wanted))
        lo = np.searchsorted(self.hash_sorted, keys, "left")
        hi = np.searchsorted(self.hash_sorted, keys, "right")
        found = []
        for want, a, b in zip(wanted, lo.tolist(), hi.tolist()):
            for pos in self.hash_order[a:b].tolist():
                if self.blobs.view(pos) == want:
                    found.append(pos)
        return np.array(sorted(found), dtype=np.int64)

    def vocab(self) -> tuple[list[str], np.ndarray]:
        """The sorted distinct ids and each position's code in them (made once, on demand:
        ~1 GB at ten million items)."""
        if self._vocab is None:
            ids = np.array(list(self), dtype=object)
            vocab, codes = np.unique(ids, return_inverse=True)
            self._vocab = (vocab.tolist(), codes.astype(np.int64))
        return self._vocab


def _column_of(values: list[bytes]) -> BlobColumn:
    writer = BlobWriter()
    for value in values:
        writer.append(value)
    return writer.freeze()


def _restore(blobs: BlobColumn, hash_sorted: np.ndarray, hash_order: np.ndarray) -> IdColumn:
    column = IdColumn.__new__(IdColumn)
    column.blobs, column.hash_sorted, column.hash_order, column._vocab = blobs, hash_sorted, hash_order, None
    return column
