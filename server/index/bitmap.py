"""Matches as a flag per record instead of a sorted array of their positions.

A search that matches a good part of a large table (a CQL2 filter selecting 300,000 of
10,000,000 records) has its answer as a boolean mask first; listing the positions
(np.flatnonzero) costs more than the search (~14 ms at 10M) only to count them and read 10.
A Bitmap counts the mask (np.count_nonzero, ~1 ms) and reads a page off it from a position
on, in chunks growing from the expected distance between matches: the cost of a page does
not depend on how deep it is. Packed (np.packbits, one bit a record: 1.25 MB at 10M whatever
the count) it is what the match cache keeps of a dense result, so that every next page finds it.
"""

from __future__ import annotations

import numpy as np

# A filter alone over a table of at least this many records is answered as its mask (a
# Bitmap) instead of the list of its positions (Table.match_set), and the match cache keeps a
# result this large as a packed Bitmap when it matches 1/64 of the records or more.
BITMAP_MIN_RECORDS = 200_000  # (at 100,000 the sorted positions are as fast)
MIN_CHUNK = 4096  # records read at once at least (a multiple of 8: whole bytes when packed)


def pack(rows: np.ndarray, size: int) -> np.ndarray:
    """The packed bits of ``rows`` among ``size`` records."""
    mask = np.zeros(size, dtype=bool)
    mask[rows] = True
    return np.packbits(mask)


class Bitmap:
    """The set of positions (< ``size``) whose flag is set: ``mask`` (bool, one byte a record)
    or ``bits`` (np.packbits of such a mask, big-endian within a byte)."""

    def __init__(self, size: int, *, mask: np.ndarray | None = None, bits: np.ndarray | None = None,
                 count: int | None = None) -> None:
        if (mask is None) == (bits is None):
            raise ValueError("a Bitmap is made of a mask or of packed bits")
        self.size = size
        self.mask = mask
        self.bits = bits
        if count is None:
            count = int(np.count_nonzero(mask)) if mask is not None else _popcount(bits)  # type: ignore[arg-type]
        self.count = count
        self._ends: tuple[int, int] | None = None

    @property
    def first(self) -> int:
        """The first match (-1: none)."""
        return self._first_last()[0]

    @property
    def last(self) -> int:
        """The last match (-1: none): whether any match follows a page is then a comparison,
        never a scan over the empty end of the table."""
        return self._first_last()[1]

    def _first_last(self) -> tuple[int, int]:
        if self._ends is None:
            self._ends = (-1, -1)
            if self.count:
                self._ends = (0, self.size - 1)  # (no bound on the two scans that find them)
                self._ends = (int(self.nearest(0, 1)[0]), int(self.nearest(self.size, 1, backward=True)[0]))
        return self._ends

    @classmethod
    def of_positions(cls, positions: np.ndarray, size: int) -> Bitmap:
        return cls(size, bits=pack(positions, size), count=len(positions))

    @property
    def nbytes(self) -> int:
        return int(self.mask.nbytes if self.mask is not None else self.bits.nbytes)  # type: ignore[union-attr]

    def packed(self) -> Bitmap:
        """The same set, one bit a record (for keeping)."""
        if self.bits is not None:
            return self
        out = Bitmap(self.size, bits=np.packbits(self.mask), count=self.count)  # type: ignore[arg-type]
        out._ends = self._ends
        return out

    def positions(self) -> np.ndarray:
        """Every position in the set, ascending."""
        if self.mask is not None:
            return np.flatnonzero(self.mask)
        return np.flatnonzero(np.unpackbits(self.bits, count=self.size))  # type: ignore[arg-type]

    def _flags(self, lo: int, hi: int) -> np.ndarray:
        """Positions in [lo, hi) of the set (lo a multiple of 8 when packed), ascending."""
        if self.mask is not None:
            return lo + np.flatnonzero(self.mask[lo:hi])
        chunk = self.bits[lo // 8 : (hi + 7) // 8]  # type: ignore[index]
        nonzero = np.flatnonzero(chunk)  # most bytes are 0 in a sparse set: unpack only the others
        rows, bit = np.nonzero(np.unpackbits(chunk[nonzero]).reshape(-1, 8))
        found = lo + (nonzero[rows] * 8 + bit)
        return found[found < hi]

    def nearest(self, start: int, need: int, backward: bool = False) -> np.ndarray:
        """Up to ``need`` positions of the set nearest ``start``: from it on, or (``backward``)
        before it; ascending either way."""
        start = min(max(start, 0), self.size)
        if self._ends is not None and self.count:  # (never past the last match, nor before the first)
            start = min(start, self._ends[1] + 1) if backward else max(start, self._ends[0])
        parts: list[np.ndarray] = []
        total = 0
        step = max(MIN_CHUNK, 2 * need * self.size // max(self.count, 1))
        step = (step + 7) // 8 * 8
        at = start
        while total < need and (at > 0 if backward else at < self.size) and self.count:
            if backward:
                lo = max(0, (at - step) // 8 * 8)
                found = self._flags(lo, at)
                at = lo
            else:
                lo = at // 8 * 8
                found = self._flags(lo, min(lo + step, self.size))
                found = found[found >= at]
                at = min(lo + step, self.size)
            parts.append(found)
            total += len(found)
            step *= 2
        if not parts:
            return np.zeros(0, dtype=np.int64)
        if backward:
            return np.concatenate(parts[::-1])[-need:].astype(np.int64)
        return np.concatenate(parts)[:need].astype(np.int64)


class Blocks:
    """Runs of ``width`` consecutive entries of ``held`` (the last run of ``held`` may be
    short) beginning at ``starts``, with the least entry of each run (``least``): whole
    leaves or groups of a box index that a counted search takes without listing them."""

    def __init__(self, held: np.ndarray, starts: np.ndarray, width: int, least: np.ndarray) -> None:
        self.held = held
        self.starts = starts
        self.width = width
        self.least = least

    def count(self) -> int:
        return int((np.minimum(self.starts + self.width, len(self.held)) - self.starts).sum())

    def members(self, which: np.ndarray | None = None) -> np.ndarray:
        """The entries of every run (of the runs ``which`` selects)."""
        starts = self.starts if which is None else self.starts[which]
        at = (starts[:, None] + np.arange(self.width)).ravel()
        return self.held[at[at < len(self.held)]]


class Unsorted:
    """A set of positions (< ``size``) held in no particular order: what a counted box search
    finds (Table._counted), as a Bitmap serves it (count, first, last, nearest, positions).
    Listing a result in order costs a sort of all of it (~0.5 ms a 40,000 positions); a page
    needs only the ``need`` nearest a position: a selection (np.partition), whatever its depth.
    Most of a counted search's matches come as ``blocks`` (whole leaves and groups, with
    their least position each), listed only when a page needs them: the first page needs
    only the runs whose least position can be on it (see _first)."""

    def __init__(self, size: int, values: np.ndarray, blocks: tuple[Blocks, ...] = ()) -> None:
        self.size = size
        self._values = values
        self.blocks = tuple(b for b in blocks if len(b.starts))
        self.count = len(values) + sum(b.count() for b in self.blocks)
        self._all: np.ndarray | None = None if self.blocks else values

    @property
    def values(self) -> np.ndarray:
        """Every position in the set, in no order (the blocks listed once, on first need)."""
        if self._all is None:
            listed = np.concatenate([self._values, *(b.members() for b in self.blocks)])
            listed.flags.writeable = self._values.flags.writeable
            self._all = listed
        return self._all

    def read_only(self) -> None:
        """Make what it holds read-only (as the match cache keeps it), listing nothing."""
        self._values.flags.writeable = False
        if self._all is not None:
            self._all.flags.writeable = False

    @property
    def first(self) -> int:
        if not self.count:
            return -1
        if self._all is not None:
            return int(self._all.min())
        return int(min([*(int(b.least.min()) for b in self.blocks), *([self._values.min()] if len(self._values) else [])]))

    @property
    def last(self) -> int:
        return int(self.values.max()) if self.count else -1

    @property
    def nbytes(self) -> int:
        return 8 * self.count  # (what it takes once listed)

    def packed(self) -> Bitmap:
        return Bitmap.of_positions(self.values, self.size)

    def positions(self) -> np.ndarray:
        return np.sort(self.values)

    def nearest(self, start: int, need: int, backward: bool = False) -> np.ndarray:
        """As Bitmap.nearest: up to ``need`` positions from ``start`` on, or (``backward``)
        before it; ascending either way."""
        if need <= 0:
            return np.zeros(0, dtype=np.int64)
        if not backward and self._all is None and (start <= 0 or start <= self.first):
            return self._first(need)
        v = self.values
        if backward:
            found = v[v < start] if start < self.size else v
        else:
            found = v[v >= start] if start > 0 else v  # (the first page: no copy)
        if len(found) > need and backward:
            found = np.partition(found, len(found) - need)[len(found) - need :]
        elif len(found) > need:
            found = np.partition(found, need - 1)[:need]
        return np.sort(found).astype(np.int64)

    def _first(self, need: int) -> np.ndarray:
        """The ``need`` least positions without listing every block: each run's least and
        each loose value is a distinct member, so the ``need``-th least of them (t) bounds
        the answer (``need`` members are <= t); only the runs whose least is <= t can hold
        members <= t."""
        pool = np.concatenate([self._values, *(b.least for b in self.blocks)])
        if len(pool) <= need:
            found = self.values
        else:
            t = np.partition(pool, need - 1)[need - 1]
            found = np.concatenate([self._values[self._values <= t], *(b.members(b.least <= t) for b in self.blocks)])
            found = found[found <= t]
        if len(found) > need:
            found = np.partition(found, need - 1)[:need]
        return np.sort(found).astype(np.int64)


def _popcount(bits: np.ndarray) -> int:
    """Set bits in packed ``bits``, counted 64 at a time."""
    whole = len(bits) // 8 * 8
    words = np.ascontiguousarray(bits[:whole]).view(np.uint64)
    return int(np.bitwise_count(words).sum(dtype=np.int64)) + int(np.bitwise_count(bits[whole:]).sum(dtype=np.int64))
