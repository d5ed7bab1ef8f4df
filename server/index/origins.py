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
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from server.index.runs import RunList

NO_COLLECTION = -1  # the item named no collection
UNKNOWN = -1  # not_public not known (a forked read counted its file's hrefs together): not reused
TO_FIND = -2  # a size not known yet (OriginsBuilder)


# (locations, sizes, mtimes, indices of those read by this load) -> locations joined, or None
Within = Callable[[Sequence[Any], np.ndarray, np.ndarray, np.ndarray], "np.ndarray | None"]
# paths -> the size and mtime_ns each had when read (-1 and 0: not read from the disk)
Read = Callable[[Sequence[Any]], "tuple[np.ndarray, np.ndarray]"]


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

    def placed(self, row_positions: np.ndarray) -> Origins:
        """These origins (``positions``: builder rows, OriginsBuilder.settle) of the rows that
        made it into the index, at their index positions (``row_positions``: builder row ->
        index position, -1 dropped). The locations stay the buffer they are when no row was
        dropped (the common case), else the kept ones are cut out of it (no strings)."""
        positions = row_positions[self.positions] if len(self.positions) else self.positions
        keep = positions >= 0
        if keep.all():
            self.positions = positions.astype(np.int64)
            return self
        return Origins(
            locations=_kept_lines(self.locations, len(self.positions), keep),
            positions=positions[keep].astype(np.int64),
            declared=self.declared[keep],
            names=self.names,
            sizes=self.sizes[keep],
            mtimes=self.mtimes[keep],
            digests=self.digests[keep],
            not_public=self.not_public[keep],
        )


class OriginsBuilder:
    """Collects the origins of builder rows as the loader indexes them."""

    def __init__(self) -> None:
        self.rows = array("q")
        # a location, or an int ``resolve`` gives the location of (the loader's item link
        # positions: no string held an item file through the load, ~150 B each; a forked
        # chunk's as one range: RunList)
        self.locations = RunList()
        self.resolve: Callable[[Sequence[Any]], list[str]] | None = None
        self.declared = array("i")
        self._names: dict[str, int] = {}
        self.not_public = array("i")
        self.sizes = array("q")  # TO_FIND: looked up when frozen (a document read by this load)
        self.mtimes = array("q")
        # the rows' MD5s known when added (a previous index's remote documents): runs of rows
        # taken at once as (first row, their (n, 16) MD5s), one array a run (a dict by row made a
        # 1M bucket reload's take and settle ~1 CPU-s of bytes and dict entries); the others' are
        # zeros or found when settled (16 B a row as a bytearray: 160 MB at 10M files)
        self.digest_runs: list[tuple[int, np.ndarray]] = []

    def add(self, row: int, location: str, declared: str | None, not_public: int) -> None:
        self.rows.append(row)
        self.locations.append(location)
        self.declared.append(NO_COLLECTION if declared is None else self._names.setdefault(declared, len(self._names)))
        self.not_public.append(not_public)
        self.sizes.append(TO_FIND)
        self.mtimes.append(0)

    def extend(self, first_row: int, locations: Sequence[str], declared: np.ndarray, names: list[str],
               not_public: np.ndarray, sizes: np.ndarray, mtimes: np.ndarray, digests: np.ndarray) -> None:
        """Consecutive rows from ``first_row`` whose origins are known (taken from a previous
        index's), ``declared`` as codes into ``names``."""
        renumber = np.array([self._names.setdefault(name, len(self._names)) for name in names] + [NO_COLLECTION],
                            dtype=np.int32)  # a code of -1 (none) reads the last entry
        first = len(self.rows)
        digests = np.ascontiguousarray(digests, dtype=np.uint8).reshape(-1, 16)
        if digests.any():  # (local files' are all zeros: nothing held)
            self.digest_runs.append((first, digests))
        self.rows.frombytes(np.arange(first_row, first_row + len(locations), dtype=np.int64).tobytes())
        self.locations.extend(locations)
        self.declared.frombytes(renumber[declared].astype(np.int32).tobytes())
        self.not_public.frombytes(np.asarray(not_public, dtype=np.int32).tobytes())
        self.sizes.frombytes(np.asarray(sizes, dtype=np.int64).tobytes())
        self.mtimes.frombytes(np.asarray(mtimes, dtype=np.int64).tobytes())

    def append(self, other: OriginsBuilder, first_row: int) -> None:
        """The origins ``other`` collected for rows numbered from 0, as rows from ``first_row``
        here: item files indexed by a forked process into a builder of its own (the loader's
        _index_files), appended after this one's rows."""
        if not len(other.rows):
            return
        renumber = np.array([self._names.setdefault(name, len(self._names)) for name in other._names] + [NO_COLLECTION],
                            dtype=np.int32)  # a code of -1 (none) reads the last entry
        first = len(self.rows)
        self.digest_runs.extend((first + at, run) for at, run in other.digest_runs)
        self.rows.frombytes((np.frombuffer(other.rows, dtype=np.int64) + first_row).tobytes())
        self.locations.extend(other.locations)
        self.declared.frombytes(renumber[np.frombuffer(other.declared, dtype=np.int32)].tobytes())
        self.not_public.extend(other.not_public)
        self.sizes.extend(other.sizes)
        self.mtimes.extend(other.mtimes)

    def freeze(self, row_positions: np.ndarray, read: Read,
               digests: dict[str, bytes], within: Within | None = None) -> Origins:
        """The origins of the rows that made it into the index (``row_positions``: builder row ->
        index position, -1 dropped): ``settle`` then ``Origins.placed``."""
        return self.settle(read, digests, within).placed(row_positions)

    def settle(self, read: Read, digests: dict[str, bytes],
               within: Within | None = None) -> Origins:
        """Every row's origin, its ``positions`` the builder's rows (``Origins.placed`` makes
        them index positions once the index is built), the locations as one buffer: made before
        the build so that the locations' strings (~150 B an item file) are not held through
        its peak. ``read(paths)``: the sizes and mtime_ns those local files had when read
        (arrays; -1 and 0 for one not read from the disk); ``digests``: a remote document's MD5.
        ``within(locations, sizes, mtimes, read)``: the locations newline-joined as UTF-8 bytes
        when a buffer holding them exists (a view of the Fingerprint's paths: a snapshot writes
        those bytes once, ~100 MB at a million items), else None (``read``: the indices of those
        whose stats ``read`` gave: read by this load)."""
        # views of this builder's arrays, not copies (32 B a row beside them: 320 MB at 10M
        # item files, at the load's peak): it can no longer grow (a settled builder is let go)
        rows = np.frombuffer(self.rows, dtype=np.int64) if len(self.rows) else np.zeros(0, np.int64)
        locations = self.locations
        sizes = np.frombuffer(self.sizes, dtype=np.int64) if len(rows) else np.zeros(0, np.int64)
        mtimes = np.frombuffer(self.mtimes, dtype=np.int64) if len(rows) else np.zeros(0, np.int64)
        found = np.zeros((len(rows), 16), dtype=np.uint8)  # calloc: pages untouched (local files) cost no memory
        for at, run in self.digest_runs:
            found[at : at + len(run)] = run
        todo = np.flatnonzero(sizes == TO_FIND)
        if len(todo):  # arrays, not a tuple of ints a file: 1M files read made ~120 MB of them at once
            sizes[todo], mtimes[todo] = read(locations if len(todo) == len(locations) else [locations[i] for i in todo.tolist()])
        for i in todo.tolist() if digests else ():
            digest = digests.get(locations[i])
            if digest is not None:
                found[i] = np.frombuffer(digest, dtype=np.uint8)
        declared = np.frombuffer(self.declared, dtype=np.int32) if len(rows) else np.zeros(0, np.int32)
        not_public = np.frombuffer(self.not_public, dtype=np.int32) if len(rows) else np.zeros(0, np.int32)
        return Origins(
            locations=_joined(locations, within(locations, sizes, mtimes, todo) if within is not None and locations else None,
                              self.resolve),
            positions=rows,
            declared=declared,
            names=list(self._names),
            sizes=sizes,
            mtimes=mtimes,
            digests=found,
            not_public=not_public,
        )


def _joined(locations: Sequence[Any], joined: np.ndarray | None,
            resolve: Callable[[Sequence[Any]], list[str]] | None = None) -> np.ndarray:
    """``locations`` newline-joined as UTF-8 bytes (``joined`` when given; ``resolve``: the
    strings of ints among them, a part at a time)."""
    if joined is not None:
        return joined
    if resolve is None:
        return np.frombuffer("\n".join(locations).encode("utf-8", "surrogateescape"), dtype=np.uint8)
    out = bytearray()
    for start in range(0, len(locations), 8192):
        if start:
            out += b"\n"
        out += "\n".join(resolve(locations[start : start + 8192])).encode("utf-8", "surrogateescape")
    return np.frombuffer(out, dtype=np.uint8)


def _kept_lines(joined: np.ndarray, count: int, keep: np.ndarray) -> np.ndarray:
    """The lines of ``joined`` (``count`` newline-separated UTF-8 lines) where ``keep``,
    newline-joined again: one mask over the bytes, no string made."""
    ends = np.append(np.flatnonzero(joined == 10), len(joined))  # each line's end (its newline's place)
    if len(ends) != count:  # a location holding a newline (a file name may): by the lines as split, as location_list does
        lines = joined.tobytes().split(b"\n")
        return np.frombuffer(b"\n".join(lines[i] for i in np.flatnonzero(keep).tolist() if i < len(lines)), dtype=np.uint8)
    starts = np.concatenate(([0], ends[:-1] + 1))
    kept = np.flatnonzero(keep)
    if not len(kept):
        return np.zeros(0, np.uint8)
    # +1 where a kept line starts, -1 past its newline: the running sum marks the kept bytes
    size = len(joined) + 2
    marks = np.bincount(starts[kept], minlength=size) - np.bincount(ends[kept] + 1, minlength=size)
    mask = np.cumsum(marks[: len(joined) + 1]) > 0
    out = np.append(joined, np.uint8(10))[mask]
    return out[:-1].copy()  # the last kept line's newline
