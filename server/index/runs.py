"""A list whose runs of consecutive ints are held as ranges (RunList), for the values the loader
keeps per item file: a location string, or the position of the item link it came from.

A forked process indexes item files a chunk of links at a time; each chunk read in order is
logged by the origins and the log of files read as its links' positions (an int each, made into
the path only when needed: server.catalog.links.ItemLinks). As a list, each position was an int
object (32 B) and a slot in each of the lists holding it (8 B each, three lists): ~56 B an item
file, ~0.5 GB at ten million, held through the load (issue 18). Given as a ``range``, a chunk's
positions are held here as that range, merged with the one before when they follow it: a few
hundred bytes for all of them.
"""

from __future__ import annotations

import itertools
import operator
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, overload


class RunList(Sequence[Any]):
    """A sequence of values held as parts: lists of values, and ranges (step 1) of ints given
    by ``extend(range(...))`` (a range following the last one is merged with it). Reads as the
    list of its values (indexing, slices as lists, iteration, ``==`` with any sequence,
    ``index``); changed by ``append``, ``extend`` and, at its end only, ``del runs[k:]`` and
    ``runs[k:] = values``."""

    __slots__ = ("_parts", "_starts", "_size")

    def __init__(self, values: Iterable[Any] = ()) -> None:
        self._parts: list[list[Any] | range] = []
        self._starts: list[int] = []  # where each part starts
        self._size = 0
        self.extend(values)

    def __len__(self) -> int:
        return self._size

    def __repr__(self) -> str:
        return f"RunList({self._parts!r})"

    # -- changing ----------------------------------------------------------------------------------

    def append(self, value: Any) -> None:
        parts = self._parts
        if parts and type(parts[-1]) is list:
            parts[-1].append(value)
        else:
            parts.append([value])
            self._starts.append(self._size)
        self._size += 1

    def extend(self, values: Iterable[Any]) -> None:
        if isinstance(values, RunList):
            for part in values._parts:
                self.extend(part if isinstance(part, range) else part[:])
            return
        parts = self._parts
        if isinstance(values, range) and values.step == 1:
            if not values:
                return
            last = parts[-1] if parts else None
            if isinstance(last, range) and last.stop == values.start:
                parts[-1] = range(last.start, values.stop)
            else:
                parts.append(values)
                self._starts.append(self._size)
            self._size += len(values)
            return
        values = values if isinstance(values, list) else list(values)
        if not values:
            return
        if parts and type(parts[-1]) is list:
            parts[-1].extend(values)
        else:
            parts.append(values[:])
            self._starts.append(self._size)
        self._size += len(values)

    def _truncate(self, size: int) -> None:
        """Only the first ``size`` values kept."""
        if size >= self._size:
            return
        size = max(size, 0)
        k = bisect_right(self._starts, size) - 1  # the part holding value ``size`` (k >= 0: size < self._size)
        if self._starts[k] == size:
            del self._parts[k:], self._starts[k:]
        else:
            part = self._parts[k]
            cut = size - self._starts[k]
            if isinstance(part, range):
                self._parts[k] = part[:cut]
            else:
                del part[cut:]
            del self._parts[k + 1 :], self._starts[k + 1 :]
        self._size = size

    def _tail_from(self, i: slice) -> int:
        start, stop, step = i.indices(self._size)
        if step != 1 or stop != self._size:
            raise TypeError("only the values from an index to the end can be replaced or deleted")
        return start

    def __delitem__(self, i: slice) -> None:
        if not isinstance(i, slice):
            raise TypeError("only the values from an index to the end can be deleted")
        self._truncate(self._tail_from(i))

    def __setitem__(self, i: slice, values: Iterable[Any]) -> None:
        if not isinstance(i, slice):
            raise TypeError("only the values from an index to the end can be replaced")
        start = self._tail_from(i)
        values = values if isinstance(values, (range, RunList)) else list(values)  # may be a view of this one's
        self._truncate(start)
        self.extend(values)

    # -- reading -----------------------------------------------------------------------------------

    @overload
    def __getitem__(self, i: int) -> Any: ...
    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...

    def __getitem__(self, i: int | slice) -> Any:
        if isinstance(i, slice):
            start, stop, step = i.indices(self._size)
            if step != 1:
                return list(self)[i]
            return list(itertools.chain.from_iterable(self._pieces(start, stop)))
        if i < 0:
            i += self._size
        if not 0 <= i < self._size:
            raise IndexError(i)
        k = bisect_right(self._starts, i) - 1
        return self._parts[k][i - self._starts[k]]

    def _pieces(self, start: int, stop: int) -> Iterator[list[Any] | range]:
        """The values from ``start`` to ``stop`` as slices of the parts (lists, ranges)."""
        if start >= stop:
            return
        k = bisect_right(self._starts, start) - 1
        for part, first in zip(self._parts[k:], self._starts[k:]):
            if first >= stop:
                return
            yield part[max(start - first, 0) : stop - first]

    def __iter__(self) -> Iterator[Any]:
        return itertools.chain.from_iterable(self._parts)

    def __contains__(self, value: object) -> bool:
        return any(value in part for part in self._parts)

    def index(self, value: Any, start: int = 0, stop: int | None = None) -> int:
        start, stop, _ = slice(start, stop).indices(self._size)
        at = start
        for piece in self._pieces(start, stop):
            try:
                return at + piece.index(value)
            except ValueError:
                at += len(piece)
        raise ValueError(f"{value!r} is not in the list")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(other) == self._size and tail_is(self, 0, other)

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = None  # type: ignore[assignment]


def _pieces(values: Sequence[Any], start: int) -> Iterator[Any]:
    """``values[start:]`` as pieces (a RunList's parts, a range, or the sequence as it is,
    read from ``start`` by the caller)."""
    if isinstance(values, RunList):
        return values._pieces(start, len(values))
    if isinstance(values, range):
        return iter((values[start:],))
    return iter((_From(values, start),))


class _From:
    """``values[start:]`` read without a copy."""

    __slots__ = ("values", "start")

    def __init__(self, values: Sequence[Any], start: int) -> None:
        self.values, self.start = values, start

    def __len__(self) -> int:
        return len(self.values) - self.start


def _run(piece: Any, skip: int, count: int) -> Iterator[Any] | range:
    """``count`` values of ``piece`` (from ``_pieces``) after its first ``skip``."""
    if isinstance(piece, range):
        return piece[skip : skip + count]
    if isinstance(piece, _From):
        skip += piece.start
        piece = piece.values
    if isinstance(piece, list):
        return iter(piece if skip == 0 and count == len(piece) else piece[skip : skip + count])
    return itertools.islice(piece, skip, skip + count)


def tail_is(logged: Sequence[Any], start: int, values: Sequence[Any]) -> bool:
    """``logged[start:] == values`` (as lists), compared without the slice, in C, and a run of
    ints against a run by its ends: a chunk of 2,048 positions is one comparison, not 2,048."""
    if len(logged) - start != len(values):
        return False
    left = filter(len, _pieces(logged, start))
    right = filter(len, _pieces(values, 0))
    a = b = None
    a_at = b_at = 0  # values of the current pieces already compared
    while True:
        if a is None or a_at == len(a):
            a, a_at = next(left, None), 0
        if b is None or b_at == len(b):
            b, b_at = next(right, None), 0
        if a is None or b is None:
            return a is None and b is None
        count = min(len(a) - a_at, len(b) - b_at)
        x, y = _run(a, a_at, count), _run(b, b_at, count)
        if isinstance(x, range) and isinstance(y, range):
            if x != y:
                return False
        elif not all(map(operator.eq, x, y)):
            return False
        a_at += count
        b_at += count
