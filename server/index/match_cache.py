"""The matches of recent searches, so the next pages of a search cost no search.

A client paging through a result (pystac-client's ``items()``, STAC Browser) sends the same
query again with each page's token; the response cache cannot help (every URL differs by its
token) but the sorted positions the query matched are the same. They are kept here by index
and query, bounded by bytes: at 1,000,000 items a large bbox matching 332,000 records takes
~30 ms to match and 2.6 MB to keep, and each further page then costs a binary search.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np
from cachetools import LRUCache

from server.index.bitmap import BITMAP_MIN_RECORDS, Bitmap, Unsorted
from server.query.model import SearchQuery
from server.query.parameters import MatchCriteria


class Matcher(Protocol):
    """An index as the cache sees it: what it matches, and what tells one index from another."""

    version: int
    loaded_at: float
    size: int

    def match_set(self, query: SearchQuery) -> np.ndarray | Bitmap | Unsorted: ...

ENTRY_OVERHEAD = 256  # bytes counted per entry beyond its positions (key, array header)


class MatchCache:
    """Sorted match positions by (index, query): an LRU of at most ``max_bytes``. Entries are
    read-only arrays shared by every request that finds them; safe across threads (searches
    that may take long run in worker threads)."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._lock = threading.Lock()
        self._entries: LRUCache[tuple[Any, ...], np.ndarray | Bitmap | Unsorted] = LRUCache(
            maxsize=max(max_bytes, 1), getsizeof=lambda matches: matches.nbytes + ENTRY_OVERHEAD
        )

    def match(self, index: Matcher, query: SearchQuery) -> np.ndarray | Bitmap | Unsorted:
        """``index.match_set(query)``, from the cache when this index answered the same query."""
        if self.max_bytes <= 0:
            return index.match_set(query)
        # Not the index itself, which would keep a replaced one alive: its identity, and the
        # server clears the cache when it swaps indexes.
        key = (id(index), index.version, index.loaded_at, MatchCriteria.of(query))
        with self._lock:
            found = self._entries.get(key)
        if found is not None:
            return found
        found = index.match_set(query)
        kept = _compact(found, index.size)
        if kept.nbytes + ENTRY_OVERHEAD <= self.max_bytes // 4:  # no single result crowds out the rest
            with self._lock:
                self._entries[key] = kept
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def _compact(found: np.ndarray | Bitmap | Unsorted, size: int) -> np.ndarray | Bitmap | Unsorted:
    """The smaller form of a result, read-only: its positions (8 bytes a match), or when the
    matches are more than 1/64 of a table of ``size`` records, BITMAP_MIN_RECORDS or more, a
    packed Bitmap (1 bit a record): 1.25 MB at 10,000,000 records where 3,300,000 positions
    take 26 MB, so that the pages after the first of a large result find it."""
    count = found.count if isinstance(found, (Bitmap, Unsorted)) else len(found)
    if size >= BITMAP_MIN_RECORDS and count * 64 >= size:
        return found.packed() if isinstance(found, (Bitmap, Unsorted)) else Bitmap.of_positions(found, size)
    if isinstance(found, Unsorted):  # kept unsorted: each page is a selection from it anyway
        found.read_only()
        return found
    positions = found.positions() if isinstance(found, Bitmap) else found
    positions.flags.writeable = False
    return positions
