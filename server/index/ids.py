"""Item ids in index order, without a Python string per item.

A list of ten million id strings costs ~0.8 GB of the server's own memory and seconds to
unpickle; here the ids are UTF-8 bytes in one BlobColumn (mapped from a snapshot like the
items) and are found through a 64-bit hash of their bytes: the hashes sorted, with the
positions in that order, looked up by binary search and confirmed on the bytes (two ids may
share a hash). The sorted vocabulary of ids (the `id` column of CQL2 filters and sortby) is
made only when a query needs it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from hashlib import blake2b
from typing import Any

import numpy as np

from server.index.blobs import BlobColumn, BlobWriter
from server.index.vocab import compact


def bytes_hash(value: bytes | memoryview) -> int:
    """A 64-bit hash of an id's bytes, the same in every process (unlike ``hash``): BLAKE2b
    from hashlib, ~1 us (the per-id Python loop of a hand-written one cost 2-4x that; a
    numpy pass over all ids at once, ~100 us for the one id of a lookup)."""
    return int.from_bytes(blake2b(value, digest_size=8).digest(), "little")


def bytes_hashes(blobs: BlobColumn) -> np.ndarray:
    """``bytes_hash`` of every blob (~1 s per million)."""
    data = blobs.data
    return np.fromiter((bytes_hash(data[s:e]) for s, e in zip(blobs.starts.tolist(), blobs.ends.tolist())),
                       dtype=np.uint64, count=len(blobs))


class IdColumn:
    """The ids of an index's records: ``ids[pos]`` is a str, as a list's would be."""

    __slots__ = ("blobs", "hash_sorted", "hash_order", "_vocab")

    def __init__(self, blobs: BlobColumn, hashes: np.ndarray | None = None) -> None:
        """``hashes``: ``bytes_hashes(blobs)`` when the caller has them (an index merged from a
        previous one's rows, server.index.reuse: hashing a million ids again is seconds)."""
        self.blobs = blobs
        hashes = bytes_hashes(blobs) if hashes is None else hashes
        self.hash_order = np.argsort(hashes, kind="stable")
        self.hash_sorted = hashes[self.hash_order]
        self._vocab: tuple[Sequence[str], np.ndarray] | None = None

    @classmethod
    def merged(cls, blobs: BlobColumn, hashes: np.ndarray, previous: IdColumn, previous_at: np.ndarray) -> IdColumn:
        """The column of ``blobs`` (``hashes``: each one's bytes_hash) whose positions
        ``previous_at[p]`` hold the ids of ``previous``'s positions p (-1: not kept; kept ones in
        the same order), the others new: its hash order is ``previous``'s with the new ones
        merged in, no argsort of them all (a reload's merge, server.index.reuse: ~0.1 CPU-s at 1M).
        The same arrays as ``IdColumn(blobs, hashes)``."""
        mapped = previous_at[previous.hash_order]
        kept = mapped >= 0
        order, sorted_hashes = mapped[kept], previous.hash_sorted[kept]
        n = len(hashes)
        is_new = np.ones(n, dtype=bool)
        is_new[order] = False
        if len(order) + int(is_new.sum()) != n:  # a position held twice: not such a merge
            return cls(blobs, hashes)
        new = np.flatnonzero(is_new)
        new = new[np.argsort(hashes[new], kind="stable")]
        at = np.searchsorted(sorted_hashes, hashes[new])
        places = at.tolist()
        for k, (row, h) in enumerate(zip(new.tolist(), hashes[new].tolist())):  # equal hashes: by position
            i = places[k]
            while i < len(order) and int(sorted_hashes[i]) == h and int(order[i]) < row:
                i += 1
            places[k] = i
        column = cls.__new__(cls)
        column.blobs, column._vocab = blobs, None
        column.hash_order = np.insert(order, places, new)
        column.hash_sorted = np.insert(sorted_hashes, places, hashes[new])
        return column

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
        blobs = self.blobs  # decoded straight from the buffer: no bytes copy (an item GET's id)
        return str(blobs.data[blobs.starts[pos] : blobs.ends[pos]], "utf-8")

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
        keys = [bytes_hash(w) for w in wanted]
        hashes, order, view = self.hash_sorted, self.hash_order, self.blobs.view
        found = []
        for want, key, at in zip(wanted, keys, self.hash_sorted.searchsorted(np.array(keys, dtype=np.uint64)).tolist()):
            while at < len(hashes) and int(hashes[at]) == key:  # one id, or more sharing its hash
                pos = int(order[at])
                if view(pos) == want:
                    found.append(pos)
                at += 1
        found.sort()
        return np.array(found, dtype=np.int64)

    def vocab(self) -> tuple[Sequence[str], np.ndarray]:
        """The sorted distinct ids (a vocab.TextBlock: ~33 B an id, not a str of ~80) and each
        position's code in them (made once, on demand: ~0.4 GB at ten million items)."""
        if self._vocab is None:
            ids = np.array(list(self), dtype=object)
            vocab, codes = np.unique(ids, return_inverse=True)
            del ids
            self._vocab = (compact(vocab.tolist()), codes.astype(np.int64))
        return self._vocab

    def hashes(self) -> np.ndarray:
        """``bytes_hash`` of each position's id (uint64), from the sorted ones."""
        out = np.empty(len(self.hash_order), dtype=np.uint64)
        out[self.hash_order] = self.hash_sorted
        return out


def _restore(blobs: BlobColumn, hash_sorted: np.ndarray, hash_order: np.ndarray) -> IdColumn:
    column = IdColumn.__new__(IdColumn)
    column.blobs, column.hash_sorted, column.hash_order, column._vocab = blobs, hash_sorted, hash_order, None
    return column
