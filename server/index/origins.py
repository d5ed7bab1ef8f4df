"""Where the index's items came from, for a reload that re-reads only what changed.

For each item read from a document of its own (the target of an `item` link holding one item),
the index keeps that document's location, what it was when read (a local file's size and mtime;
a remote document's MD5) and what the reload needs to tell whether the stored row is still the
one a full read would make: the collection the item named itself (which collection serves it is
decided again at each load) and how many of its local hrefs could not be made public (counted in
the load report). Items from bulk files (ndjson, FeatureCollection, stac-geoparquet) have no
origin: a reload re-reads them.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

NO_COLLECTION = -1  # the item named no collection
UNKNOWN = -1  # not_public not known (a forked read counted its file's hrefs together): not reused
TO_FIND = -2  # a size not known yet (OriginsBuilder)


# (locations, sizes, mtimes, indices of those read by this load) -> locations joined, or None
Within = Callable[[list[str], np.ndarray, np.ndarray, list[int]], "np.ndarray | None"]


@dataclass
class Origins:
    # the locations newline-joined as UTF-8 bytes in an array: one mapped buffer, not a million strings
    locations: np.ndarray
    positions: np.ndarray  # int64: the item's position in the index
    declared: np.ndarray  # int32: the collection the item named, a code into ``names`` (NO_COLLECTION: none)
    names: list[str]
    sizes: np.ndarray  # int64: a local file's size when read (-1: remote)
    mtimes: np.ndarray  # int64: a local file's st_mtime_ns when read
    digests: np.ndarray  # (n, 16) uint8: a remote document's MD5 (zeros: local)
    not_public: np.ndarray  # int32: its local hrefs left as written (UNKNOWN: not counted alone)

    def __len__(self) -> int:
        return len(self.positions)

    def location_list(self) -> list[str]:
        return self.locations.tobytes().decode("utf-8", "surrogateescape").split("\n") if len(self.positions) else []


class OriginsBuilder:
    """Collects the origins of builder rows as the loader indexes them."""

    def __init__(self) -> None:
        self.rows = array("q")
        self.locations: list[str] = []
        self.declared = array("i")
        self._names: dict[str, int] = {}
        self.not_public = array("i")
        self.sizes = array("q")  # TO_FIND: looked up when frozen (a document read by this load)
        self.mtimes = array("q")
        self.digests = bytearray()  # 16 bytes a row

    def add(self, row: int, location: str, declared: str | None, not_public: int) -> None:
        self.rows.append(row)
        self.locations.append(location)
        self.declared.append(NO_COLLECTION if declared is None else self._names.setdefault(declared, len(self._names)))
        self.not_public.append(not_public)
        self.sizes.append(TO_FIND)
        self.mtimes.append(0)
        self.digests += bytes(16)

    def extend(self, first_row: int, locations: list[str], declared: np.ndarray, names: list[str],
               not_public: np.ndarray, sizes: np.ndarray, mtimes: np.ndarray, digests: np.ndarray) -> None:
        """Consecutive rows from ``first_row`` whose origins are known (taken from a previous
        index's), ``declared`` as codes into ``names``."""
        renumber = np.array([self._names.setdefault(name, len(self._names)) for name in names] + [NO_COLLECTION],
                            dtype=np.int32)  # a code of -1 (none) reads the last entry
        self.rows.frombytes(np.arange(first_row, first_row + len(locations), dtype=np.int64).tobytes())
        self.locations.extend(locations)
        self.declared.frombytes(renumber[declared].astype(np.int32).tobytes())
        self.not_public.frombytes(np.asarray(not_public, dtype=np.int32).tobytes())
        self.sizes.frombytes(np.asarray(sizes, dtype=np.int64).tobytes())
        self.mtimes.frombytes(np.asarray(mtimes, dtype=np.int64).tobytes())
        self.digests += np.ascontiguousarray(digests, dtype=np.uint8).tobytes()

    def append(self, other: OriginsBuilder, first_row: int) -> None:
        """The origins ``other`` collected for rows numbered from 0, as rows from ``first_row``
        here: item files indexed by a forked process into a builder of its own (the loader's
        _index_files), appended after this one's rows."""
        if not len(other.rows):
            return
        renumber = np.array([self._names.setdefault(name, len(self._names)) for name in other._names] + [NO_COLLECTION],
                            dtype=np.int32)  # a code of -1 (none) reads the last entry
        self.rows.frombytes((np.frombuffer(other.rows, dtype=np.int64) + first_row).tobytes())
        self.locations.extend(other.locations)
        self.declared.frombytes(renumber[np.frombuffer(other.declared, dtype=np.int32)].tobytes())
        self.not_public.extend(other.not_public)
        self.sizes.extend(other.sizes)
        self.mtimes.extend(other.mtimes)
        self.digests += other.digests

    def freeze(self, row_positions: np.ndarray, read: Callable[[list[str]], list[tuple[int, int]]],
               digests: dict[str, bytes], within: Within | None = None) -> Origins:
        """The origins of the rows that made it into the index (``row_positions``: builder row ->
        index position, -1 dropped); ``read(paths)``: the (size, mtime_ns) each of those local
        files had when read, (-1, 0) for one not read from the disk; ``digests``: a remote
        document's MD5. ``within(locations, sizes, mtimes, read)``: the locations newline-joined as
        UTF-8 bytes when a buffer holding them exists (a view of the Fingerprint's paths: a
        snapshot writes those bytes once, ~100 MB at a million items), else None (``read``:
        the indices of those whose stats ``read`` gave: read by this load)."""
        rows = np.frombuffer(self.rows, dtype=np.int64) if len(self.rows) else np.zeros(0, np.int64)
        positions = row_positions[rows] if len(rows) else rows
        keep = np.flatnonzero(positions >= 0)
        locations = [self.locations[i] for i in keep.tolist()]
        sizes = np.frombuffer(self.sizes, dtype=np.int64)[keep] if len(keep) else np.zeros(0, np.int64)
        mtimes = np.frombuffer(self.mtimes, dtype=np.int64)[keep] if len(keep) else np.zeros(0, np.int64)
        found = np.frombuffer(bytes(self.digests), dtype=np.uint8).reshape(-1, 16)[keep]
        todo = np.flatnonzero(sizes == TO_FIND).tolist()
        stats = read([locations[i] for i in todo]) if todo else []
        for i, stat in zip(todo, stats):
            location = locations[i]
            sizes[i], mtimes[i] = stat
            digest = digests.get(location)
            if digest is not None:
                found[i] = np.frombuffer(digest, dtype=np.uint8)
        declared = np.frombuffer(self.declared, dtype=np.int32)[keep] if len(keep) else np.zeros(0, np.int32)
        not_public = np.frombuffer(self.not_public, dtype=np.int32)[keep] if len(keep) else np.zeros(0, np.int32)
        return Origins(
            locations=_joined(locations, within(locations, sizes, mtimes, todo) if within is not None and locations else None),
            positions=positions[keep].astype(np.int64),
            declared=declared.copy(),
            names=list(self._names),
            sizes=sizes.copy(),
            mtimes=mtimes.copy(),
            digests=found.copy(),
            not_public=not_public.copy(),
        )


def _joined(locations: list[str], joined: np.ndarray | None) -> np.ndarray:
    """``locations`` newline-joined as UTF-8 bytes (``joined`` when given)."""
    if joined is not None:
        return joined
    return np.frombuffer("\n".join(locations).encode("utf-8", "surrogateescape"), dtype=np.uint8)
