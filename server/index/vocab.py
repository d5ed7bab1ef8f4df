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
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterator, Sequence
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


def block_of(data: Any, ends: np.ndarray, order: np.ndarray) -> TextBlock:
    """The TextBlock of texts ``order`` of a block (``encoded``'s form; no text holding a NUL),
    in that order, made from the bytes (no str per text)."""
    n = len(order)
    flat = np.frombuffer(data, dtype=np.uint8)[: int(ends[-1]) if len(ends) else 0]
    lengths_all = np.diff(ends, prepend=0)
    width = int(lengths_all[0]) if len(ends) else 0
    if n and width and len(flat) == width * len(ends) and bool((lengths_all == width).all()):  # (datetimes) rows of a matrix
        block = bytearray(n * (width + 1))  # (zeros: the NULs between)
        rows = np.frombuffer(block, dtype=np.uint8).reshape(n, width + 1)
        source = flat.reshape(-1, width)
        for first in range(0, n, _BATCH_ROWS):
            rows[first : first + _BATCH_ROWS, :width] = source[order[first : first + _BATCH_ROWS]]
        del rows
        del block[-1]  # no NUL after the last
        starts = np.arange(0, (n + 1) * (width + 1), width + 1, dtype=np.int64)
        return TextBlock(block, starts)
    lengths = lengths_all[order]
    starts = np.cumsum(lengths + 1) - lengths - 1
    block = bytearray(max(int(lengths.sum()) + n - 1, 0))
    out = np.frombuffer(block, dtype=np.uint8)
    gathered(flat, (ends - lengths_all)[order], lengths, out, starts)
    del out
    return TextBlock(block, np.append(starts, len(block) + 1))


def compact(texts: list[str]) -> Sequence[str]:
    """A sorted vocabulary as it is kept: a TextBlock from BLOCK_MIN texts on, else the list."""
    if len(texts) < BLOCK_MIN:
        return texts
    block = TextBlock.of(texts)
    return block if block is not None else texts


# -- while building ------------------------------------------------------------------------------

EMPTY = -1
MAX_LOAD = 0.7  # table slots used at most (linear probing: ~2 probes a miss at 0.7)
FIRST_SLOTS = 1 << 10
_PLACE_BATCH = 1 << 20  # codes placed into the table at once (bounds the transient arrays of a rehash)
# bytes of texts copied or compared at once (gathered, _same_bytes): each byte costs ~4 int64
# indexes while it is (a batch of 65,536 datetimes was a 50 MB spike in the 100k build's peak)
_BATCH_BYTES = 1 << 18
_BATCH_ROWS = 1 << 16  # texts of one width copied at once (rows of a matrix: no index a byte)
# Python's str hash (SipHash, salted per interpreter: a forked child's is its parent's): the
# hashes a child sends are used where they are equal on both sides, else made again
HASH_CHECK = hash("stac-static-api TextTable")


def encoded(texts: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """``texts`` as one block of their UTF-8 bytes one after another, and where each ends
    (int64; text i is block[ends[i - 1]:ends[i]], the first from 0)."""
    n = len(texts)
    joined = "".join(texts)
    if joined.isascii():  # the common vocabulary (date-times, codes, names): a byte a character
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=n)
        data = joined.encode("ascii")
    else:
        parts = [t.encode("utf-8", "surrogatepass") for t in texts]
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=n)
        data = b"".join(parts)
    del joined
    return data, np.cumsum(lengths) if n else np.zeros(0, np.int64)


def decoded(data: Any, ends: np.ndarray, first: int = 0, stop: int | None = None) -> list[str]:
    """Texts ``first`` to ``stop`` of a block (``encoded``'s form) as str."""
    stop = len(ends) if stop is None else stop
    if stop <= first:
        return []
    base = int(ends[first - 1]) if first else 0
    span = bytes(memoryview(data)[base : int(ends[stop - 1])])
    bounds = (ends[first:stop] - base).tolist()
    starts = [0, *bounds[:-1]]
    if span.isascii():  # a character a byte: one decode, str slices
        text = span.decode("ascii")
        return [text[a:b] for a, b in zip(starts, bounds)]
    return [str(span[a:b], "utf-8", "surrogatepass") for a, b in zip(starts, bounds)]


def starts_of(ends: np.ndarray) -> np.ndarray:
    starts = np.empty(len(ends), dtype=np.int64)
    if len(ends):
        starts[0] = 0
        starts[1:] = ends[:-1]
    return starts


def _starts_at(ends: np.ndarray, which: np.ndarray) -> np.ndarray:
    """Where texts ``which`` of a block start (its ``ends`` given)."""
    return np.where(which > 0, ends[np.maximum(which - 1, 0)], 0)


def _batches(lengths: np.ndarray) -> Iterator[tuple[int, int]]:
    """(first, stop) of consecutive texts of about _BATCH_BYTES in all (one at least)."""
    n = len(lengths)
    ends = np.cumsum(lengths)
    first = 0
    while first < n:
        stop = int(np.searchsorted(ends, int(ends[first] - lengths[first]) + _BATCH_BYTES, side="right"))
        stop = max(stop, first + 1)
        yield first, stop
        first = stop


def _batch_bytes(lengths: np.ndarray) -> Iterator[tuple[int, int, np.ndarray, np.ndarray]]:
    """_batches' (first, stop) of texts with bytes, their lengths, and each byte's place within
    its text (0, 1, ... for each text of the batch, one after another): the indexes that copy or
    compare a batch's bytes at once."""
    for first, stop in _batches(lengths):
        size = lengths[first:stop]
        total = int(size.sum())
        if total:
            yield first, stop, size, np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(size) - size, size)


def gathered(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, out: np.ndarray, at: np.ndarray) -> None:
    """Copy the bytes of texts (``flat[starts[i]:starts[i] + lengths[i]]``) to ``out[at[i]:]``,
    a batch at a time (an index a byte: bounded)."""
    for first, stop, size, within in _batch_bytes(lengths):
        out[np.repeat(at[first:stop], size) + within] = flat[np.repeat(starts[first:stop], size) + within]


def _same_bytes(a: np.ndarray, a_starts: np.ndarray, b: np.ndarray, b_starts: np.ndarray,
                lengths: np.ndarray) -> np.ndarray:
    """Whether text i of ``a`` (from ``a_starts[i]``) and of ``b`` (from ``b_starts[i]``), both
    ``lengths[i]`` bytes, are the same bytes."""
    same = np.ones(len(lengths), dtype=bool)
    for first, stop, size, within in _batch_bytes(lengths):
        differ = a[np.repeat(a_starts[first:stop], size) + within] != b[np.repeat(b_starts[first:stop], size) + within]
        if differ.any():
            text = np.repeat(np.arange(len(size)), size)
            same[first + np.unique(text[differ])] = False
    return same


class TextTable:
    """Texts numbered in the order they came (their codes), held as one block of their UTF-8
    bytes, where each ends, each one's hash and an open-addressing table of codes by hash: ~25 +
    8 + 8 + 4-12 B a `datetime` text against ~140 B as a dict[str, int] key (the str ~70 B, the
    dict's entry and index). The build's vocabularies (columns._KeyBuilder) and the walk's item
    links (server.catalog.links.ItemLinks: the bytes of a location after its folder, the hash of
    the whole location) are such tables.

    Texts are added and looked up a block at a time (numpy over the block, no str per text) or
    one at a time (``append``, ``has``); a lookup is exact: a candidate of equal hash is a match
    only when ``same`` says so, by default when its bytes are the text's (``add``, ``find``)."""

    __slots__ = ("data", "ends", "hashes", "table")

    def __init__(self, first_slots: int = FIRST_SLOTS) -> None:
        self.data: Any = bytearray()  # (an mmap once ItemLinks.joined moved it to a file)
        self.ends = array("q")
        self.hashes = array("q")
        self.table = np.full(first_slots, EMPTY, dtype=np.int32)

    def __len__(self) -> int:
        return len(self.ends)

    def texts(self, first: int = 0, stop: int | None = None) -> list[str]:
        """Texts ``first`` to ``stop`` as str (made when asked)."""
        if not len(self.ends):
            return []
        return decoded(self.data, np.frombuffer(self.ends, dtype=np.int64), first, stop)

    def add(self, data: Any, ends: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """The codes (int64) of texts given as a block (``encoded``'s form, distinct texts) and
        their hashes; those not here yet are added, in their order, with the next codes."""
        n = len(ends)
        codes = self.find(data, ends, hashes)
        new = np.flatnonzero(codes < 0)
        if not len(new):
            return codes
        first = len(self.ends)
        codes[new] = np.arange(first, first + len(new), dtype=np.int64)
        if len(new) == n:  # all new (a datetime's texts): the block as it is
            self.extend(data, ends, hashes)
            return codes
        lengths = np.diff(ends, prepend=0)
        kept = lengths[new]
        more = np.empty(int(kept.sum()), dtype=np.uint8)
        gathered(np.frombuffer(data, dtype=np.uint8), starts_of(ends)[new], kept, more, np.cumsum(kept) - kept)
        self.extend(more.data, np.cumsum(kept), hashes[new])
        return codes

    def extend(self, data: Any, ends: np.ndarray, hashes: np.ndarray) -> None:
        """Texts none of which is here (the caller knows: ``find``), given as a block
        (``encoded``'s form) and their hashes, added with the next codes."""
        n = len(ends)
        if not n:
            return
        size = len(self.data)
        self.data += memoryview(data)[: int(ends[-1])]
        self.ends.frombytes((ends + size).astype(np.int64, copy=False).tobytes())
        self.hashed(hashes)

    def hashed(self, hashes: np.ndarray) -> None:
        """The hashes of the texts last appended to ``data`` and ``ends`` (none hashed yet), into
        the table (ItemLinks.extend_new appends its bytes itself: see there)."""
        first = len(self.hashes)
        self.hashes.frombytes(hashes.astype(np.int64, copy=False).tobytes())
        if len(self.ends) > MAX_LOAD * len(self.table):
            self._grow()
        else:
            self._place(hashes, np.arange(first, len(self.hashes), dtype=np.int64))

    def append(self, text: bytes, h: int) -> None:
        """One text not here (the caller knows: ``has``) and its hash, with the next code."""
        code = len(self.ends)
        self.data += text
        self.ends.append(len(self.data))
        self.hashes.append(h)
        if code + 1 > MAX_LOAD * len(self.table):
            self._grow()
            return
        table = self.table
        mask = len(table) - 1
        slot = h & mask
        while table[slot] != EMPTY:
            slot = (slot + 1) & mask
        table[slot] = code

    def has(self, h: int, same: Callable[[int, T], bool], value: T) -> bool:
        """Whether a text of hash ``h`` here is ``value`` (``same(code, value)``), one text."""
        if not len(self.hashes):
            return False
        table, hashes = self.table, self.hashes
        mask = len(table) - 1
        slot = h & mask
        while True:
            at = int(table[slot])
            if at == EMPTY:
                return False
            if hashes[at] == h and same(at, value):
                return True
            slot = (slot + 1) & mask

    def find(self, data: Any, ends: np.ndarray, hashes: np.ndarray) -> np.ndarray:
        """Each text's code (texts given as a block, ``encoded``'s form, and their hashes), -1
        where it is not here: a candidate of equal hash is one when its bytes are the text's."""
        flat = np.frombuffer(data, dtype=np.uint8)

        def same(queries: np.ndarray, found: np.ndarray) -> np.ndarray:
            mine = np.frombuffer(self.ends, dtype=np.int64)
            query_starts, my_starts = _starts_at(ends, queries), _starts_at(mine, found)
            lengths = ends[queries] - query_starts
            equal = lengths == mine[found] - my_starts
            which = np.flatnonzero(equal)
            equal[which] = _same_bytes(flat, query_starts[which], np.frombuffer(self.data, dtype=np.uint8),
                                       my_starts[which], lengths[which])
            return equal

        return self.probe(hashes, same)

    def probe(self, hashes: np.ndarray, same: Callable[[np.ndarray, np.ndarray], np.ndarray]) -> np.ndarray:
        """The code of each of the texts of ``hashes`` (int64), -1 where none here is it: all
        at once, a probe a round; a candidate (its stored hash equal) is a match where
        ``same(queries, codes)`` (the texts' indexes, the candidates' codes) is True."""
        n = len(hashes)
        codes = np.full(n, -1, dtype=np.int64)
        if not n or not len(self.hashes):
            return codes
        table, mask = self.table, len(self.table) - 1
        stored = np.frombuffer(self.hashes, dtype=np.int64)
        todo = np.arange(n, dtype=np.int64)
        slots = hashes & mask
        while len(todo):
            at = table[slots[todo]].astype(np.int64)
            filled = at != EMPTY
            todo, at = todo[filled], at[filled]  # an empty slot: not here
            candidate = np.flatnonzero(stored[at] == hashes[todo])
            if len(candidate):  # compared (equal hashes: nearly always the same text)
                queries, found = todo[candidate], at[candidate]
                equal = same(queries, found)
                codes[queries[equal]] = found[equal]
                keep = np.ones(len(todo), dtype=bool)
                keep[candidate[equal]] = False
                todo = todo[keep]
            slots[todo] = (slots[todo] + 1) & mask
        return codes

    def _place(self, hashes: np.ndarray, codes: np.ndarray) -> None:
        """Codes into the table's free slots by linear probing, a batch at once: in each round
        each code not placed yet is written to the slot it aims at when free; where several
        aim at one, the one that stayed takes it (read back), the others move on."""
        table = self.table
        mask = len(table) - 1
        for first in range(0, len(codes), _PLACE_BATCH):
            todo = codes[first : first + _PLACE_BATCH].astype(table.dtype)
            slots = hashes[first : first + _PLACE_BATCH] & mask
            while len(todo):
                free = table[slots] == EMPTY
                table[slots[free]] = todo[free]
                placed = free & (table[slots] == todo)
                todo, slots = todo[~placed], (slots[~placed] + 1) & mask

    def _grow(self) -> None:
        size = len(self.table)
        while len(self.ends) > MAX_LOAD * size:
            size *= 2
        self.table = np.full(size, EMPTY, dtype=np.int32 if len(self.ends) < 2**31 - 1 else np.int64)
        self._place(np.frombuffer(self.hashes, dtype=np.int64), np.arange(len(self.ends), dtype=np.int64))

    def forget_hashes(self) -> None:
        """The hashes and their table let go (16-24 B a text) once nothing more is looked up nor
        added: the texts stay readable."""
        self.hashes = array("q")
        self.table = np.full(1, EMPTY, dtype=np.int32)

    def nbytes(self) -> int:
        """The memory held, B (for tests and benchmarks)."""
        return len(self.data) + 8 * len(self.ends) + 8 * len(self.hashes) + self.table.nbytes


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
