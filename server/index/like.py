"""CQL2 LIKE over values and patterns of any length (server/index/filtering.py).

``like_regex`` (cql2_terms) reads a pattern as segments between `%`s: the first where the value
starts, the last where it ends, each middle one at its leftmost fit, never reconsidered. The
regex engine is linear in all but the middle segments, which it tries at each character it
skips, up to their length there: O(value x longest middle). A request's pattern is at most
LIKE_PATTERN_MAX characters, but a pattern that is a catalog property (``LIKE(a, b)``, ``b`` a
property; or a literal against each record's pattern) is not: a 20,000-character middle segment
over a 100,000-character value took 4.9 CPU-s CASEI (1.5 plain) in one regex call, holding the
GIL (bench/like_cost.py; a pattern longer than the value fails at once: the regex's minimum width).

So ``like_matcher`` keeps the regex for a pattern within LIKE_PATTERN_MAX whose middle segments
are at most REGEX_MIDDLE characters (every ordinary one: a C call a value, ~0.1 us for a
datetime over a whole vocabulary; at most REGEX_MIDDLE steps a character of a hostile value);
any other pattern is a LikeMatcher, the same reading in Python: the value's length against the
segments' first, the first and last segments compared in place (str.startswith), each middle
one found at its leftmost fit by str.find when it has no `_` (CPython's two-way search: linear),
by a regex search when it is short, else by a bit-parallel shift-and over the value's
characters (Python ints as bit sets: value x segment / 64 word operations, a segment no longer
than the value). CASEI compares characters as re.IGNORECASE does (``fold``), so the answers are
the regex's (tests/test_like.py compares them over random patterns).
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable

import numpy as np

from server.index.cql2_terms import LIKE_PATTERN_MAX, like_regex, like_tokens

REGEX_MIDDLE = 64  # characters of a middle segment the regex engine may try at each character of a value

# What re.IGNORECASE compares (re/_compiler.py, 3.11+): a character's simple lowercase
# (_sre.unicode_tolower), the lowercase letters re also takes as one (re._casefix: s and ſ, σ
# and ς, ...) made one. Both modules are CPython's own (private, with no stubs: looked up here).
_tolower: Callable[[int], int] = importlib.import_module("_sre").unicode_tolower
_EXTRA_CASES: dict[int, tuple[int, ...]] = importlib.import_module("re._casefix")._EXTRA_CASES


class _Folds(dict[int, int]):
    """A character's code -> the code standing for every character re.IGNORECASE takes as equal
    to it (str.translate's table, filled as characters are met). Uncased characters stand for
    themselves alone: no other character lowers to one (checked over all of Unicode when written)."""

    def __missing__(self, code: int) -> int:
        lower = _tolower(code)
        folded = self[code] = min((lower, *_EXTRA_CASES.get(lower, ())))
        return folded


_FOLDS = _Folds()


def fold(text: str) -> str:
    """``text`` with each character replaced by its re.IGNORECASE class's (same length)."""
    return text.translate(_FOLDS)


def like_matcher(pattern: str, case_insensitive: bool = False) -> Callable[[str], object]:
    """A function of a value, true (truthy) when it is LIKE ``pattern``: like_regex's fullmatch
    where that is bounded (see the module's doc), else a LikeMatcher."""
    segments = like_tokens(pattern)
    if len(pattern) <= LIKE_PATTERN_MAX and all(len(segment) <= REGEX_MIDDLE for segment in segments[1:-1]):
        return like_regex(pattern, case_insensitive).fullmatch
    return LikeMatcher(pattern, case_insensitive)


class _Segment:
    """A segment between `%`s: its length and its runs of characters (offset, text) between
    its `_`s."""

    __slots__ = ("size", "pieces", "search")

    def __init__(self, tokens: list[str | None], regex_middle: int = REGEX_MIDDLE) -> None:
        self.size = len(tokens)
        self.pieces: list[tuple[int, str]] = []
        start = None
        for i, ch in enumerate([*tokens, None]):
            if ch is not None and start is None:
                start = i
            elif ch is None and start is not None:
                self.pieces.append((start, "".join(tokens[start:i])))  # type: ignore[arg-type]
                start = None
        # a short segment with `_`s: the regex engine's search costs at most its length a character
        self.search = re.compile("".join("." if ch is None else re.escape(ch) for ch in tokens), re.DOTALL).search \
            if len(self.pieces) > 1 and self.size <= regex_middle else None

    def at(self, value: str, position: int) -> bool:
        """Whether it matches ``value`` at ``position`` (where it fits)."""
        return all(value.startswith(text, position + offset) for offset, text in self.pieces)

    def find(self, value: str, start: int, stop: int) -> int:
        """The leftmost position from ``start`` where it matches ``value`` and ends by ``stop``; -1."""
        last = stop - self.size
        if last < start:
            return -1
        pieces = self.pieces
        if not pieces:
            return start
        if len(pieces) == 1:
            offset, text = pieces[0]
            found = value.find(text, start + offset, last + offset + len(text))
            return found - offset if found >= 0 else -1
        if self.search is not None:
            match = self.search(value, start, stop)
            return match.start() if match is not None else -1
        return self._shift_and(value, start, stop)

    def _shift_and(self, value: str, start: int, stop: int) -> int:
        """find by bits: bit p of ``alike`` is whether it can start at ``start + p``; for each of
        its characters, the bits of where the value has that character, shifted by its offset,
        and ``alike`` together. A segment of m characters over n: m big-int operations of n bits."""
        region = np.frombuffer(value[start:stop].encode("utf-32-le", "surrogatepass"), dtype="<u4")
        alike = (1 << (len(region) - self.size + 1)) - 1
        where: dict[str, int] = {}
        for offset, text in self.pieces:
            for k, ch in enumerate(text):
                bits = where.get(ch)
                if bits is None:
                    bits = where[ch] = int.from_bytes(np.packbits(region == ord(ch), bitorder="little").tobytes(), "little")
                alike &= bits >> (offset + k)
                if not alike:
                    return -1
        return start + (alike & -alike).bit_length() - 1


class LikeMatcher:
    """LIKE ``pattern`` as like_regex reads it, in time linear in the value but for the
    shift-and of long middle segments with `_`s (see the module's doc). Called with a value:
    whether it is alike. ``regex_middle``: REGEX_MIDDLE (tests set 0 to see the shift-and on
    every middle segment with `_`s)."""

    __slots__ = ("casei", "first", "middle", "last", "least")

    def __init__(self, pattern: str, case_insensitive: bool = False, regex_middle: int = REGEX_MIDDLE) -> None:
        tokens = like_tokens(pattern)
        if case_insensitive:
            tokens = [[None if ch is None else fold(ch) for ch in segment] for segment in tokens]
        segments = [_Segment(segment, regex_middle) for segment in tokens]
        self.casei = case_insensitive
        self.first = segments[0]
        self.last = segments[-1] if len(segments) > 1 else None
        self.middle = segments[1:-1]
        self.least = sum(segment.size for segment in segments)  # the shortest value alike

    def __call__(self, value: str) -> bool:
        if self.casei:
            value = fold(value)
        size = len(value)
        if size < self.least or not self.first.at(value, 0):
            return False
        last = self.last
        if last is None:
            return size == self.first.size
        end = size - last.size
        if not last.at(value, end):
            return False
        position = self.first.size
        for segment in self.middle:
            found = segment.find(value, position, end)
            if found < 0:
                return False
            position = found + segment.size
        return True
