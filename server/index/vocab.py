"""A large sorted vocabulary as one UTF-8 block, not a str per text.

A key's string vocabulary (columns.StringPart.vocab) was a list[str]: ~80 bytes a text in
every serving process's anonymous memory (a str object ~70 B, a list slot 8 B). A catalog's
`datetime` has one text per item (each scene its own instant): ~80 MB at 1M items, ~0.8 GB at
10M, per process (issue 18, target 2). TextBlock keeps the texts as their UTF-8 bytes joined by
NULs plus an array of where each starts: ~25 + 8 bytes a `datetime` text, and both pickle out of
band, so a served snapshot maps them from its file (shared page cache, not anonymous memory).
It is a read-only sequence of str: len, [i] and [a:b] (decoded on demand), iteration (a chunk
at a time, split as one str), bisect (the query code's bisect_left/bisect_right: ~20 decodes
at 1M), == against a list or another block.
"""

from __future__ import annotations

import pickle
from bisect import bisect_left
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar, overload

import numpy as np

# fewer texts stay a list (their str objects are few; a block's fixed cost is not worth it)
BLOCK_MIN = 256
_CHUNK = 4096  # texts decoded at once by iteration

T = TypeVar("T")


class Decoded(Sequence[T]):
    """A read-only sequence whose items are made when read, from a block of UTF-8 with offsets
    (TextBlock here; server.catalog.links's ItemLinks and LocationsView): a subclass gives
    ``__len__`` and ``_item(i)`` (0 <= i < len), and may give ``_span(first, stop)`` (items
    first to stop - 1 at once, faster); [i] (negative too), [a:b:c] and iteration (a chunk at
    a time) are read through them."""

    __slots__ = ()

    def _item(self, i: int) -> T:
        raise NotImplementedError

    def _span(self, first: int, stop: int) -> list[T]:
        return [self._item(k) for k in range(first, stop)]

    @overload
    def __getitem__(self, i: int) -> T: ...

    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            first, stop, step = i.indices(len(self))
            if step != 1:
                return [self._item(k) for k in range(first, stop, step)]
            return self._span(first, stop) if first < stop else []
        n = len(self)
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        return self._item(i)

    def __iter__(self) -> Iterator[T]:
        n = len(self)
        for first in range(0, n, _CHUNK):
            yield from self._span(first, min(first + _CHUNK, n))


class TextBlock(Decoded[str]):
    """Texts (none holding a NUL) as ``data``, their UTF-8 bytes each followed by a NUL but
    the last, and ``starts`` (n + 1 int64: text i is data[starts[i]:starts[i + 1] - 1])."""

    __slots__ = ("data", "starts")

    def __init__(self, data: Any, starts: np.ndarray) -> None:
        self.data = data
        self.starts = starts

    @classmethod
    def of(cls, texts: list[str]) -> TextBlock | None:
        """The block of ``texts``; None when one holds a NUL (kept as a list)."""
        joined = "\0".join(texts)
        if joined.count("\0") != max(len(texts) - 1, 0):
            return None
        data = joined.encode("utf-8", "surrogatepass")
        del joined
        ends = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 0)  # no NUL byte in a text's UTF-8
        starts = np.empty(len(texts) + 1, dtype=np.int64)
        starts[0] = 0
        starts[1:-1] = ends + 1
        starts[-1] = len(data) + 1
        return cls(data, starts)

    def __len__(self) -> int:
        return len(self.starts) - 1

    def _item(self, i: int) -> str:
        starts = self.starts
        return str(self.data[int(starts[i]) : int(starts[i + 1]) - 1], "utf-8", "surrogatepass")

    def _span(self, first: int, stop: int) -> list[str]:
        if stop <= first:
            return []
        text = str(self.data[int(self.starts[first]) : int(self.starts[stop]) - 1], "utf-8", "surrogatepass")
        return text.split("\0")

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, str):
            return False
        i = bisect_left(self, value)
        return i < len(self) and self[i] == value

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TextBlock):
            return len(self) == len(other) and bytes(self.data) == bytes(other.data)
        if isinstance(other, list):
            return len(self) == len(other) and list(self) == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"TextBlock({len(self)} texts, {len(self.data)} bytes)"

    def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
        # the bytes out of band (protocol 5: a snapshot writes them raw and maps them back),
        # the starts a numpy array (out of band too)
        data = pickle.PickleBuffer(self.data) if protocol >= 5 else bytes(self.data)  # (deepcopy: protocol 4)
        return (TextBlock, (data, self.starts))


def compact(texts: list[str]) -> Sequence[str]:
    """A sorted vocabulary as it is kept: a TextBlock from BLOCK_MIN texts on, else the list."""
    if len(texts) < BLOCK_MIN:
        return texts
    block = TextBlock.of(texts)
    return block if block is not None else texts
