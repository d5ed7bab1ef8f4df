"""The item links a walk admitted, in order, held compactly: each link's location as UTF-8 in
one block (the part after a prefix shared by a document's links: its folder), its context as a
code, and a hash table of their positions, for "was this location admitted already?".

A list of (location, context) tuples and a set of the locations cost ~250 B an item file (the
location as a str ~150 B, its tuple 64 B, the set's slots 32-64 B): ~2.5 GB at ten million item
files, held from the walk through the load (issue 18). Here: the bytes after the prefix (~40 B
for generate.py's layout), 8 B of end, 4 B of code, 8 B of hash and 4-8 B of table a link.

Membership is exact: the table holds positions; a location's hash leads to candidates whose
stored hash is equal, and a candidate is a match only when its bytes are (so two locations
whose hashes collide are still told apart, tests/test_item_links.py forces that).
"""

from __future__ import annotations

import mmap
import tempfile
from array import array
from collections.abc import Callable, Iterator, Sequence
from typing import Any, Generic, TypeVar

import numpy as np

from server.index.runs import tail_is
from server.index.vocab import Decoded, TextTable

C = TypeVar("C")

FIRST_SLOTS = 1 << 12
CHUNK = 1 << 16  # links decoded at once by iteration


def _encode(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


class ItemLinks(Decoded[tuple[str, C]], Generic[C]):
    """Item links in the order they were admitted: ``links[i]`` is ``(location, context)``
    (made when asked: no string is held a link), ``location in links`` whether it was ever
    appended (links let go with ``del links[:k]`` included, until ``clear``)."""

    def __init__(self, hash_text: Callable[[str], int] = hash) -> None:
        self._hash = hash_text  # str's own hash: kept in the string (made once), stable in forked children
        # the bytes after each link's prefix, their ends, the whole locations' hashes and their
        # table: a link's code there is its position
        self._texts = TextTable(FIRST_SLOTS)
        self._groups = array("i")  # per link: its (prefix, context) code
        self._group_of: dict[tuple[int, str], int] = {}  # (id(context), prefix) -> code
        self._prefixes: list[str] = []
        self._contexts: list[C] = []  # by code; holds them alive (their ids are keys above)
        self._first = 0  # links before it let go (del links[:k]): still members
        self._members = True  # False after forget_members: nothing more can be appended
        self._origin, self._gap = 0, 0  # after joined(): where link 0 starts, the newline between links
        # joined() writes the joined paths to a file here and maps it, when given (`index`'s
        # load: the snapshot's folder), instead of making them in the block's memory
        self.spill_folder: str | None = None

    # -- the sequence ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._texts.ends) - self._first

    def _location(self, at: int) -> str:
        texts = self._texts
        ends = texts.ends
        start = ends[at - 1] + self._gap if at else self._origin
        return self._prefixes[self._groups[at]] + texts.data[start : ends[at]].decode("utf-8", "surrogateescape")

    def _link(self, at: int) -> tuple[str, C]:
        return self._location(at), self._contexts[self._groups[at]]

    def _locations(self, a: int, b: int) -> list[str]:
        """The locations of links ``a`` to ``b`` (positions): their bytes decoded at once and cut
        by their ends, each prefix put back (a reload's million links were read twice, one call
        a link each: ~0.8 CPU-s); one at a time where the bytes are not all ASCII."""
        if b <= a:
            return []
        texts = self._texts
        ends = texts.ends[a:b]  # (a copy: a view would keep the array from growing)
        first = texts.ends[a - 1] + self._gap if a else self._origin
        block = texts.data[first : ends[-1]]
        if not block.isascii():
            return [self._location(at) for at in range(a, b)]
        text = block.decode("ascii")
        stops = np.frombuffer(ends, dtype=np.int64) - first
        starts = np.empty_like(stops)
        starts[0] = 0
        starts[1:] = stops[:-1] + self._gap
        groups = self._groups[a:b]
        prefixes = self._prefixes
        if groups.count(groups[0]) == len(groups):  # one document's links: one prefix
            prefix = prefixes[groups[0]]
            if not prefix:
                return [text[s:e] for s, e in zip(starts.tolist(), stops.tolist())]
            return [prefix + text[s:e] for s, e in zip(starts.tolist(), stops.tolist())]
        return [prefixes[g] + text[s:e] for g, s, e in zip(groups, starts.tolist(), stops.tolist())]

    def _links(self, a: int, b: int) -> list[tuple[str, C]]:
        contexts = self._contexts
        return list(zip(self._locations(a, b), [contexts[g] for g in self._groups[a:b]]))

    def _span(self, first: int, stop: int) -> list[tuple[str, C]]:  # [a:b] (Decoded): decoded at once
        return self._links(self._first + first, self._first + stop)

    def _item(self, i: int) -> tuple[str, C]:  # [i] (Decoded)
        return self._link(self._first + i)

    def __iter__(self) -> Iterator[tuple[str, C]]:
        return self._chunks(self._first, len(self._texts.ends))

    def _chunks(self, a: int, b: int) -> Iterator[tuple[str, C]]:
        for at in range(a, b, CHUNK):
            yield from self._links(at, min(at + CHUNK, b))

    def __delitem__(self, i: slice) -> None:
        """Only ``del links[:k]``: the first k let go (their bytes stay until ``clear``; they
        stay members)."""
        if not isinstance(i, slice) or i.start not in (None, 0) or i.step not in (None, 1):
            raise TypeError("only the first links can be let go")
        self._first += len(range(*i.indices(len(self))))

    def locations(self, start: int = 0, end: int | None = None) -> LocationsView:
        """The locations of links ``start`` to ``end`` as a sequence made when read."""
        count = len(self._texts.ends)
        first, stop = start + self._first, count if end is None else min(end + self._first, count)
        return LocationsView(self, first, max(first, stop))

    def position(self, i: int) -> int:
        """Link ``i``'s position for ``resolve`` (the same after ``del links[:k]``)."""
        return self._first + i

    def resolve(self, values: Sequence[Any]) -> list[str]:
        """``values`` with each int (a link's ``position``) replaced by its location."""
        location = self._location
        return [v if isinstance(v, str) else location(v) for v in values]

    def joined(self, paths: Sequence[Any], part: int = 8192) -> bytearray | mmap.mmap | None:
        """``"\\n".join(paths)`` as UTF-8 bytes (``paths``: a log of files read, some strings then
        every link's position in order) made in this block, in place: each link's prefix put back
        and a newline after it, moved from the last link back (each link only moves forward), the
        strings put before; None (nothing done) when ``paths`` are not so. The block is the
        fingerprint's paths then (the links still read from it): the paths were made beside it,
        ~76 B a file beside ~40 (1M item files: 72 + 40 MB at the settle, the build's peak)."""
        count, data, ends = len(self._texts.ends), self._texts.data, self._texts.ends
        if not count or self._gap or self._members or len(paths) < count:
            return None
        skip = len(paths) - count
        head = paths[:skip]
        if not all(isinstance(p, str) for p in head) or not tail_is(paths, skip, range(count)):
            return None  # (a RunList's range of positions: compared by its ends)
        head_bytes = "\n".join(head).encode("utf-8", "surrogateescape") + b"\n" if skip else b""
        if self.spill_folder is not None:
            return self._joined_in_file(head_bytes, part)
        prefixes = [_encode(p) for p in self._prefixes]
        lengths = np.array([len(p) for p in prefixes], dtype=np.int64)
        groups = np.frombuffer(self._groups, dtype=np.int32)
        old_ends = np.frombuffer(ends, dtype=np.int64)
        old_size = len(data)
        # link i moves forward by its shift: the head, then the prefixes and newlines before it
        after_last = len(head_bytes) + int(lengths[groups].sum()) + count  # link count's shift
        grow = after_last - 1  # no newline after the last link
        step = bytes(1 << 20)
        while grow > 0:  # grown a MiB at a time: one zeroed bytes of it all was as big as the paths' part added
            data += step[: min(grow, len(step))]
            grow -= len(step)
        shift_end = after_last
        for a in range(((count - 1) // part) * part, -1, -part):
            b = min(a + part, count)
            g = groups[a:b]
            sizes = lengths[g] + 1
            shifts = shift_end - np.cumsum(sizes[::-1])[::-1]  # each link's shift: the end's less those from it on
            starts = np.empty(b - a, dtype=np.int64)
            starts[0] = old_ends[a - 1] if a else 0
            starts[1:] = old_ends[a : b - 1]
            stops = old_ends[a:b].copy()
            old = bytes(memoryview(data)[int(starts[0]) : int(stops[-1])])  # the slices: bytes, one allocation each
            rel = (starts - starts[0]).tolist()
            rel_stops = (stops - starts[0]).tolist()
            pieces = []
            for code, s, e in zip(g.tolist(), rel, rel_stops):
                pieces.append(prefixes[code])
                pieces.append(old[s:e])
                pieces.append(b"\n")
            if b == count:
                pieces.pop()
            new = b"".join(pieces)
            at = int(starts[0] + shifts[0])
            data[at : at + len(new)] = new
            old_ends[a:b] = stops + shifts + lengths[g]  # each link's end (before its newline) there
            shift_end = int(shifts[0])
        assert shift_end == len(head_bytes) and len(data) == old_size + after_last - 1
        data[: len(head_bytes)] = head_bytes
        self._origin, self._gap = len(head_bytes), 1
        self._prefixes = [""] * len(self._prefixes)
        return data

    def _joined_in_file(self, head_bytes: bytes, part: int) -> mmap.mmap:
        """``joined`` written to an unnamed file in ``spill_folder``, a part at a time, and
        mapped (read-only, shared) as the block: the block's own memory (~60 B a link) is let
        go instead of growing by its prefixes and newlines (~40 B a link) through the settle,
        the build and the snapshot's writing; the fingerprint's paths and the origins'
        locations are then pages of the file the kernel reads back only where they are read
        (10M item files: ~1 GB of anonymous memory less from the settle on)."""
        count, data = len(self._texts.ends), self._texts.data
        prefixes = [_encode(p) for p in self._prefixes]
        lengths = np.array([len(p) for p in prefixes], dtype=np.int64)
        groups = np.frombuffer(self._groups, dtype=np.int32)
        old_ends = np.frombuffer(self._texts.ends, dtype=np.int64)
        new_ends = array("q")
        with tempfile.TemporaryFile(dir=self.spill_folder) as out:
            out.write(head_bytes)
            at = len(head_bytes)
            for a in range(0, count, part):
                b = min(a + part, count)
                g = groups[a:b]
                first = int(old_ends[a - 1]) if a else 0
                stops = old_ends[a:b]
                old = bytes(memoryview(data)[first : int(stops[-1])])
                rel = np.empty(b - a, dtype=np.int64)
                rel[0] = 0
                rel[1:] = stops[:-1] - first
                rel_stops = (stops - first).tolist()
                pieces = []
                for code, s, e in zip(g.tolist(), rel.tolist(), rel_stops):
                    pieces.append(prefixes[code])
                    pieces.append(old[s:e])
                    pieces.append(b"\n")
                if b == count:
                    pieces.pop()
                sizes = lengths[g] + (stops - first - rel) + 1  # each link's bytes there, its newline included
                new_ends.frombytes((at + np.cumsum(sizes) - 1).tobytes())  # each link's end (before its newline)
                new = b"".join(pieces)
                out.write(new)
                at += len(new)
            out.flush()
            mapped = mmap.mmap(out.fileno(), at, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
        self._texts.data = mapped  # read like the bytearray; nothing is appended any more
        self._texts.ends = new_ends
        self._origin, self._gap = len(head_bytes), 1
        self._prefixes = [""] * len(self._prefixes)
        return mapped

    def contexts(self) -> Iterator[C]:
        groups, contexts = self._groups, self._contexts
        return (contexts[groups[at]] for at in range(self._first, len(self._texts.ends)))

    def forget_members(self) -> None:
        """The hashes and their table let go (16-24 B a link) once no more is asked whether a
        location was admitted: the links stay readable; none is a member any more."""
        self._texts.forget_hashes()
        self._members = False

    def clear(self) -> None:
        """Every link let go, and the memory of them: no longer members."""
        self.__init__(self._hash)  # type: ignore[misc]

    # -- adding ----------------------------------------------------------------------------------

    def _group(self, ctx: C, prefix: str) -> int:
        key = (id(ctx), prefix)
        code = self._group_of.get(key)
        if code is None:
            code = self._group_of[key] = len(self._contexts)
            self._contexts.append(ctx)
            self._prefixes.append(prefix)
        return code

    def append(self, location: str, ctx: C, prefix: str = "") -> None:
        """One link (not checked: ``location in links`` first); ``prefix``: a start of
        ``location`` shared by many links (kept once)."""
        if not self._members:
            raise RuntimeError("links cannot be added once their members are forgotten")
        if not location.startswith(prefix):
            prefix = ""
        self._texts.append(_encode(location[len(prefix):]), self._hash(location))
        self._groups.append(self._group(ctx, prefix))

    def extend_new(self, locations: list[str], ctx: C, prefix: str = "") -> None:
        """Links none of which is a member nor appears twice (the caller checked: ``disjoint``
        and a set of them), all starting with ``prefix``: added at once."""
        if not locations:
            return
        if not self._members:
            raise RuntimeError("links cannot be added once their members are forgotten")
        cut = len(prefix)
        if cut and not all(loc.startswith(prefix) for loc in locations):
            prefix, cut = "", 0
        # in this order (ends, bytes joined while the parts live, codes, hashes into the table):
        # the block joined and the parts let go first, then TextTable.extend, held the same but
        # left the 1M files walk at 217 MiB of RSS, not 196, and the load's peak at 700-728 MiB,
        # not 664-677 (glibc's heap placement: equal with a fixed MALLOC_MMAP_THRESHOLD_)
        texts = self._texts
        parts = [_encode(loc[cut:]) for loc in locations]
        lengths = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
        texts.ends.frombytes((np.cumsum(lengths) + len(texts.data)).tobytes())
        texts.data += b"".join(parts)
        del parts
        self._groups.frombytes(np.full(len(locations), self._group(ctx, prefix), dtype=np.int32).tobytes())
        texts.hashed(np.fromiter(map(self._hash, locations), dtype=np.int64, count=len(locations)))

    # -- membership ------------------------------------------------------------------------------

    def _same(self, at: int, location: str) -> bool:
        return self._location(at) == location

    def __contains__(self, location: object) -> bool:
        return isinstance(location, str) and self._texts.has(self._hash(location), self._same, location)

    def disjoint(self, locations: list[str]) -> bool:
        """Whether none of ``locations`` is a member (vectorized: a collection's 250k links)."""
        if not locations or not len(self._texts.hashes):
            return True
        hashes = np.fromiter(map(self._hash, locations), dtype=np.int64, count=len(locations))

        def same(queries: np.ndarray, found: np.ndarray) -> np.ndarray:  # rare: the same hash, compared
            return np.array([self._same(at, locations[i]) for i, at in zip(queries.tolist(), found.tolist())], dtype=bool)

        return not bool((self._texts.probe(hashes, same) >= 0).any())

    def nbytes(self) -> int:
        """The memory held, B (for tests and benchmarks)."""
        return self._texts.nbytes() + self._groups.itemsize * len(self._groups)


class LocationsView(Decoded[str]):
    """Some links' locations, each made when read."""

    def __init__(self, links: ItemLinks[Any], start: int, end: int) -> None:
        self._links, self._start, self._end = links, start, end

    def __len__(self) -> int:
        return self._end - self._start

    def _span(self, first: int, stop: int) -> list[str]:  # [a:b] (Decoded): decoded at once
        return self._links._locations(self._start + first, self._start + stop)

    def _item(self, i: int) -> str:
        return self._links._location(self._start + i)

    def __iter__(self) -> Iterator[str]:
        for a in range(self._start, self._end, CHUNK):
            yield from self._links._locations(a, min(a + CHUNK, self._end))
