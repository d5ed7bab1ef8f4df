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
from typing import Any, overload

import numpy as np

# fewer texts stay a list (their str objects are few; a block's fixed cost is not worth it)
BLOCK_MIN = 256
_CHUNK = 4096  # texts decoded at once by iteration


class TextBlock(Sequence[str]):
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

    @overload
    def __getitem__(self, i: int) -> str: ...

    @overload
    def __getitem__(self, i: slice) -> list[str]: ...

    def __getitem__(self, i: int | slice) -> str | list[str]:
        if isinstance(i, slice):
            first, stop, step = i.indices(len(self))
            if step != 1:
                return [self[k] for k in range(first, stop, step)]
            return self._span(first, stop)
        n = len(self.starts) - 1
        if i < 0:
            i += n
        if not 0 <= i < n:
            raise IndexError("TextBlock index out of range")
        starts = self.starts
        return str(self.data[int(starts[i]) : int(starts[i + 1]) - 1], "utf-8", "surrogatepass")

    def _span(self, first: int, stop: int) -> list[str]:
        if stop <= first:
            return []
        text = str(self.data[int(self.starts[first]) : int(self.starts[stop]) - 1], "utf-8", "surrogatepass")
        return text.split("\0")

    def __iter__(self) -> Iterator[str]:
        n = len(self)
        for first in range(0, n, _CHUNK):
            yield from self._span(first, min(first + _CHUNK, n))

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


class _Picked(Sequence[str]):
    """The texts of ``block`` at ``at`` (sorted indices), for bisect: decoded one by one."""

    def __init__(self, block: TextBlock, at: np.ndarray) -> None:
        self.block, self.at = block, at

    def __len__(self) -> int:
        return len(self.at)

    def __getitem__(self, i: Any) -> Any:
        return self.block[int(self.at[i])]


def merge_block(block: TextBlock, used: np.ndarray, words: list[str]) -> tuple[TextBlock, np.ndarray, np.ndarray] | None:
    """The sorted union of ``block``'s texts at ``used`` (sorted indices: those still used) and
    ``words`` (sorted, distinct) as a block, the same a TextBlock.of the union would be, made
    from runs of the block's bytes: its texts are not decoded (but the ~20 a word's binary
    search reads). A reload's `datetime` vocabulary, a text per item: decoded, merged as a list
    and encoded again, ~0.3 CPU-s at 1M (server.index.reuse). Also where each used text lands
    in it and each word's index in it; None when a word holds a NUL (no block holds it) or the
    union is too small for a block (vocab.compact)."""
    n = len(used)
    kept = _Picked(block, used)
    cut_of, absent = [], []
    for word in words:
        if "\0" in word:
            return None
        i = bisect_left(kept, word)
        cut_of.append(i)
        absent.append(i == n or kept[i] != word)
    if n + sum(absent) < BLOCK_MIN:
        return None
    cuts = np.array(cut_of, dtype=np.int64)
    is_absent = np.array(absent, dtype=bool)
    absent_cuts = cuts[is_absent]
    landed = np.arange(n, dtype=np.int64) + np.searchsorted(absent_cuts, np.arange(n), side="right")
    codes = np.empty(len(words), dtype=np.int64)
    codes[is_absent] = absent_cuts + np.arange(len(absent_cuts))  # (sorted: the absent words before it come first)
    present = ~is_absent
    codes[present] = landed[cuts[present]]
    # the bytes: runs of consecutive used texts, cut where a word goes in, joined by NULs with the words
    data, starts = block.data, block.starts
    bounds = sorted({0, n, *(np.flatnonzero(np.diff(used) != 1) + 1).tolist(), *absent_cuts.tolist()})
    added = [word.encode("utf-8", "surrogatepass") for word, new in zip(words, absent) if new]
    pieces: list[Any] = []
    a = 0
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        while a < len(added) and absent_cuts[a] <= lo:
            pieces.append(added[a])
            a += 1
        pieces.append(data[int(starts[used[lo]]) : int(starts[used[hi - 1] + 1]) - 1])
    pieces += added[a:]
    joined = b"\0".join(pieces)
    ends = np.flatnonzero(np.frombuffer(joined, dtype=np.uint8) == 0)
    out = np.empty(len(ends) + 2, dtype=np.int64)
    out[0], out[1:-1], out[-1] = 0, ends + 1, len(joined) + 1
    if len(out) - 1 != n + len(added):
        raise AssertionError(f"merged {len(out) - 1} texts, not {n + len(added)}")
    return TextBlock(joined, out), landed, codes
