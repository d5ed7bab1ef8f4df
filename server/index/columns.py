"""Item properties as sparse typed columns, for filtering and sorting without parsing items.

Each property key has up to four typed parts, because one key may hold numbers in one item
and strings in another: numbers (float64), strings (codes into a sorted vocabulary, so code
order is string order), booleans, and anything else (arrays, objects) as JSON blobs. Each
part lists the record positions that have a value of its type, sorted.
"""

from __future__ import annotations

import itertools
import operator
import re
from array import array
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from server.index import exact_json, heap
from server.index import vocab as vocab_module
from server.index.blobs import BlobColumn, BlobWriter
from server.index.vocab import HASH_CHECK, TextTable, block_of, compact, decoded, encoded
from server.query.datetime import parse_document_datetime

TIME_KEYS = {"datetime", "start_datetime", "end_datetime", "created", "updated"}
# a key present in at least 1/SCATTER_FRACTION of the records is placed by a scatter over all
# records rather than an argsort of its rows (_KeyBuilder.freeze)
SCATTER_FRACTION = 8
# a key's string vocabulary is a dict[str, int] while it has fewer texts (a dict lookup a value:
# the cheapest `add`, and most keys have a few texts: `platform`, `constellation`); the dict's
# texts go to a TextTable (vocab.py: ~45 B a text instead of ~140) when it reaches this many,
# and a merge that would make it larger puts them all there (a `datetime` per item: ~1.4 GB of
# dict at 10M items, issue 18)
SPILL = 1 << 16


@dataclass
class NumberPart:
    rows: np.ndarray
    values: np.ndarray


@dataclass
class StringPart:
    rows: np.ndarray
    codes: np.ndarray
    vocab: Sequence[str]  # sorted: a list, or a TextBlock when large (vocab.compact)
    _lower: list[str] | None = None

    def code_of(self, value: str) -> int | None:
        i = bisect_left(self.vocab, value)
        return i if i < len(self.vocab) and self.vocab[i] == value else None

    @property
    def lower_vocab(self) -> list[str]:
        if self._lower is None:
            self._lower = [v.lower() for v in self.vocab]
        return self._lower

    def __reduce__(self) -> tuple[Any, ...]:
        # A large vocabulary pickled as a TextBlock (its texts' UTF-8 bytes and where each
        # starts, out of band: a snapshot writes them raw and a server maps them back, instead
        # of a str per text: 1M `datetime` texts ~80 MB of each serving process's anonymous
        # memory, issue 18). The lowercased vocabulary is a cache: not kept.
        vocab = self.vocab
        if isinstance(vocab, list):
            vocab = compact(vocab)
        return (StringPart, (self.rows, self.codes, vocab))


@dataclass
class BoolPart:
    rows: np.ndarray
    values: np.ndarray


@dataclass
class ObjectPart:
    rows: np.ndarray
    blobs: BlobColumn

    def value(self, i: int) -> Any:
        return orjson.loads(self.blobs[i])


@dataclass
class Column:
    key: str
    number: NumberPart | None = None
    string: StringPart | None = None
    boolean: BoolPart | None = None
    objects: ObjectPart | None = None
    time: NumberPart | None = None  # RFC 3339 strings, as int64 microseconds

    @property
    def parts(self) -> list[Any]:
        return [p for p in (self.number, self.string, self.boolean, self.objects) if p is not None]

    @property
    def present_rows(self) -> np.ndarray:
        """Sorted positions with a value of any type (computed once: columns never change)."""
        cached = self.__dict__.get("_present_rows")
        if cached is None:
            parts = [p.rows for p in self.parts]
            if len(parts) == 1:
                cached = parts[0]
            else:
                cached = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
            self.__dict__["_present_rows"] = cached
        return cached

    def json_type(self) -> dict[str, Any]:
        """A JSON Schema fragment for /queryables (computed once: columns never change)."""
        cached = self.__dict__.get("_json_type")
        if cached is None:
            cached = self.__dict__["_json_type"] = self._json_type()
        return dict(cached)

    def _json_type(self) -> dict[str, Any]:
        types = []
        if self.number is not None:
            integral = bool(len(self.number.values)) and bool(np.all(np.mod(self.number.values, 1) == 0))
            types.append("integer" if integral else "number")
        if self.string is not None:
            types.append("string")
        if self.boolean is not None:
            types.append("boolean")
        if self.objects is not None and len(self.objects.rows):
            # Every value's first JSON byte, not just the first value's: a key may hold both.
            blobs = self.objects.blobs
            first = set(np.frombuffer(blobs.data, dtype=np.uint8)[blobs.starts].tolist())
            types += [name for byte, name in ((ord("["), "array"), (ord("{"), "object")) if byte in first]
        if self.time is not None and types == ["string"]:
            return {"type": "string", "format": "date-time"}
        return {"type": types[0]} if len(types) == 1 else {"type": types}


class _KeyBuilder:
    """A key's values while building. Its strings are coded by ``vocab``, a dict, until it has
    SPILL texts; then by ``table`` (a TextTable) for ``str_codes[:mark]``, while ``vocab``
    codes those added since (``str_codes[mark:]``, texts not looked up in the table yet: they
    go there, and their codes are made the table's, a dict at a time: ``_spill``). Pickled (a
    forked process's chunk, IndexBuilder.chunk) its texts go as one block of bytes, their ends
    and their hashes (``incoming``), no str per text; merged as such (TextTable.add)."""

    __slots__ = ("num_rows", "num_vals", "str_rows", "str_codes", "vocab", "table", "mark", "incoming",
                 "bool_rows", "bool_vals", "obj_rows", "obj_blobs", "times", "times_ok", "times_lost")

    def __init__(self) -> None:
        # rows and codes as int32 (4 bytes a value less, ~0.4 GB at ten million items of ten
        # properties; up to 2**31 items)
        self.num_rows = array("i")
        self.num_vals = array("d")
        self.str_rows = array("i")
        self.str_codes = array("i")
        self.vocab: dict[str, int] = {}
        self.table: TextTable | None = None
        self.mark = 0
        # a pickled builder's texts in code order: (UTF-8 block, ends, hashes, HASH_CHECK where hashed)
        self.incoming: tuple[Any, np.ndarray, np.ndarray, int] | None = None
        self.bool_rows = array("i")
        self.bool_vals = array("b")
        self.obj_rows = array("i")
        self.obj_blobs = BlobWriter()
        # a time key's texts parsed ahead (parse_times: by a forked indexing process, off the
        # build's serial tail), by code: int64 microseconds, int8 whether one; appended to as
        # merges add texts; good while they are a prefix of ``vocab`` (texts added in this
        # process since are parsed at the next merge or freeze); None: freeze parses them all
        self.times: array | None = None
        self.times_ok: array | None = None
        self.times_lost = False  # a merge came without them: freeze parses (no catch-up at each merge)

    def __getstate__(self) -> dict[str, Any]:
        state = {name: getattr(self, name) for name in self.__slots__}
        if self.str_rows:
            data, ends, hashes = self._texts()
            state.update(vocab={}, table=None, mark=0, incoming=(data, ends, hashes, HASH_CHECK))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            setattr(self, name, value)

    def _count(self) -> int:
        """The texts coded so far (after ``_spill`` when there is a table)."""
        if self.incoming is not None:
            return len(self.incoming[1])
        return len(self.table) if self.table is not None else len(self.vocab)

    def _spill(self) -> None:
        """The dict's texts into the table (made if none), their codes made the table's."""
        vocab = self.vocab
        if self.table is None:
            self.table = TextTable()
            self.mark = 0
        if vocab:
            texts = list(vocab)  # in code order (insertion order)
            data, ends = encoded(texts)
            hashes = np.fromiter(map(hash, texts), dtype=np.int64, count=len(texts))
            del texts
            remap = self.table.add(data, ends, hashes).astype(np.int32)
            del data, ends, hashes
            tail = np.frombuffer(self.str_codes, dtype=np.int32)[self.mark:]
            tail[:] = remap[tail]
            del tail
            vocab.clear()
        self.mark = len(self.str_codes)

    def _texts(self) -> tuple[Any, np.ndarray, np.ndarray]:
        """Every text in code order as a block (vocab.encoded's form) and their hashes (this
        process's str hash)."""
        if self.incoming is not None:
            data, ends, hashes, check = self.incoming
            if check != HASH_CHECK:  # pickled by a process of another hash salt: hashed again here
                hashes = np.fromiter(map(hash, decoded(data, ends)), dtype=np.int64, count=len(ends))
                self.incoming = (data, ends, hashes, HASH_CHECK)
            return data, ends, hashes
        if self.table is not None:
            self._spill()
            table = self.table
            if not len(table):
                return b"", np.zeros(0, np.int64), np.zeros(0, np.int64)
            return table.data, np.frombuffer(table.ends, dtype=np.int64), np.frombuffer(table.hashes, dtype=np.int64)
        texts = list(self.vocab)
        data, ends = encoded(texts)
        return data, ends, np.fromiter(map(hash, texts), dtype=np.int64, count=len(texts))

    def parse_times(self) -> None:
        """Parse the vocabulary's texts as date-times now (a time key's, TIME_KEYS), so freeze
        need not; merge carries them along. Only the texts not parsed yet (those added since)."""
        if self.times is None or self.times_ok is None:
            self.times, self.times_ok = array("q"), array("b")
        if self.table is not None:
            self._spill()
        count = self._count()
        missing = count - len(self.times)
        if missing > 0:
            # the newest texts, read from the end (codes are in insertion order): the cost is
            # theirs, not the vocabulary's, however often a merge catches up
            if self.incoming is not None:
                texts = decoded(self.incoming[0], self.incoming[1], len(self.times), count)
            elif self.table is not None:
                texts = self.table.texts(len(self.times), count)
            else:
                texts = list(itertools.islice(reversed(self.vocab), missing))
                texts.reverse()
            parsed, ok = _parse_date_times(texts)
            self.times.frombytes(parsed.tobytes())
            self.times_ok.frombytes(ok.view(np.int8).tobytes())

    def _parsed_times(self) -> bool:
        if self.times is None:
            return False
        if self.table is not None:
            self._spill()
        return len(self.times) == self._count()

    def add(self, row: int, value: Any) -> None:
        kind = type(value)
        if kind is float:  # the common cases first, by exact type: this runs per property
            self.num_rows.append(row)
            self.num_vals.append(value)
        elif kind is str:
            code = self.vocab.get(value)
            if code is None:
                code = len(self.vocab)
                if code >= SPILL:
                    self._spill()
                    code = 0
                self.vocab[value] = code
            self.str_rows.append(row)
            self.str_codes.append(code)
        elif isinstance(value, bool):
            self.bool_rows.append(row)
            self.bool_vals.append(value)
        elif isinstance(value, (int, float)):
            if isinstance(value, int) and abs(value) > 2**53:
                value = float(value)
            self.num_rows.append(row)
            self.num_vals.append(value)
        elif isinstance(value, str):  # a subclass (never from JSON): as its plain text, by the branch above
            self.add(row, str.__str__(value))
        elif value is not None:
            self.obj_rows.append(row)
            self.obj_blobs.append(exact_json.dumps(value))

    def merge(self, other: _KeyBuilder, offset: int) -> None:
        """Append ``other``'s values (its rows numbered from 0) as rows ``offset`` on: the same
        state as had they been added here (string codes are in first-seen order either way; a
        column's vocabulary is sorted when frozen)."""
        if other.num_rows:
            self.num_rows.extend(_shifted(other.num_rows, offset))
            self.num_vals.extend(other.num_vals)
        if other.str_rows:
            carried = other._parsed_times() and not self.times_lost  # a time key's, parsed where the chunk was made
            if carried:
                self.parse_times()  # texts added here, if any: parsed to catch up (few)
            data, ends, hashes = other._texts()  # other's codes are 0, 1, ... in this order
            vocab = self.vocab
            if self.table is None and len(vocab) + len(ends) <= SPILL:  # a small vocabulary: a dict
                had = len(vocab)
                remap = np.fromiter((vocab.setdefault(text, len(vocab)) for text in decoded(data, ends)),
                                    dtype=np.int32, count=len(ends))
            else:
                self._spill()
                assert self.table is not None
                had = len(self.table)
                remap = self.table.add(data, ends, hashes).astype(np.int32)
            del data, ends, hashes
            self.str_rows.extend(_shifted(other.str_rows, offset))
            self.str_codes.frombytes(remap[np.frombuffer(other.str_codes, dtype=np.int32)].tobytes())
            if self.table is not None:
                self.mark = len(self.str_codes)
            if carried and other.times is not None and other.times_ok is not None:
                new = remap >= had  # other's texts new here, in code order (both number them so)
                if self.times is None or self.times_ok is None:
                    self.times, self.times_ok = array("q"), array("b")
                self.times.frombytes(np.frombuffer(other.times, dtype=np.int64)[new].tobytes())
                self.times_ok.frombytes(np.frombuffer(other.times_ok, dtype=np.int8)[new].tobytes())
            else:
                self.times = self.times_ok = None
                self.times_lost = True
        if other.bool_rows:
            self.bool_rows.extend(_shifted(other.bool_rows, offset))
            self.bool_vals.extend(other.bool_vals)
        if other.obj_rows:
            self.obj_rows.extend(_shifted(other.obj_rows, offset))
            self.obj_blobs.extend(other.obj_blobs.data, other.obj_blobs.ends)

    def freeze(self, key: str, new_position: np.ndarray, size: int, every: EveryRow | None = None) -> Column:
        """The column of the key; ``new_position``: each row's index position (-1: dropped),
        ``size``: the index's records; ``every``: the placing of a part every row has, shared
        by the columns (made once)."""
        col = Column(key)
        every = every if every is not None else EveryRow(new_position, size)

        def placed(rows: array) -> tuple[np.ndarray, np.ndarray]:
            """Final positions of the rows, sorted, and the order that sorts them; rows
            dropped from the index (position -1) are left out."""
            shared = every.placed() if every.has(rows) else None
            if shared is not None:
                return shared
            positions = new_position[np.frombuffer(rows, dtype=np.int32)] if len(rows) else np.zeros(0, np.int64)
            if len(positions) * SCATTER_FRACTION < size:  # a sparse key: sorting its few rows is cheaper
                order = np.argsort(positions, kind="stable")
                order = order[positions[order] >= 0]
                return positions[order], order
            # positions are distinct (one per row kept): each row's index put at its position,
            # then read in position order, is the sort in one pass (argsort: ~5x the time)
            kept = np.flatnonzero(positions >= 0)
            slot: np.ndarray = np.full(size, -1, dtype=np.int32 if len(positions) < 2**31 else np.int64)
            slot[positions[kept]] = kept
            del kept
            sorted_positions = np.flatnonzero(slot >= 0)
            return sorted_positions, slot[sorted_positions].astype(np.int64)

        if self.num_rows:
            rows, order = placed(self.num_rows)
            col.number = NumberPart(rows, np.frombuffer(self.num_vals, dtype=np.float64)[order])
        if self.str_rows:
            rows, order = placed(self.str_rows)
            if key in TIME_KEYS and self.times is not None:
                self.parse_times()  # texts added in this process since the last merge, if any (few)
            parsed = key in TIME_KEYS and self._parsed_times()
            # codes are given in first-seen order (add, merge): the texts in code order as one
            # block, sorted as indexes (_block_order), then copied in that order (no str per
            # text: ~10M `datetime` texts at 10M items); the table's hashes freed first
            data, ends = self._texts()[:2]  # (the hashes let go with the table)
            self.vocab, self.table, self.incoming = {}, None, None
            count = len(ends)
            by_text_codes = _block_order(data, ends)
            remap = np.empty(count, dtype=np.int32)
            remap[by_text_codes] = np.arange(count, dtype=np.int32)
            times = (np.frombuffer(self.times, dtype=np.int64)[by_text_codes],
                     np.frombuffer(self.times_ok, dtype=np.bool_)[by_text_codes]) \
                if parsed and self.times is not None and self.times_ok is not None else None
            self.times = self.times_ok = None
            codes = remap[np.frombuffer(self.str_codes, dtype=np.int32)[order]]
            del remap
            used = np.flatnonzero(np.bincount(codes, minlength=count)) if len(codes) else codes
            if len(used) < count:  # values only dropped rows had (duplicates, bad geometries) are not offered
                by_text_codes = by_text_codes[used]
                codes = np.searchsorted(used, codes).astype(np.int32)
                if times is not None:
                    times = (times[0][used], times[1][used])
            # kept as one block (vocab.TextBlock): ~1/3 of the memory of a str per text
            vocab = _sorted_vocabulary(data, ends, by_text_codes)
            del data, ends, by_text_codes
            col.string = StringPart(rows, codes, vocab)
            if key in TIME_KEYS or _all_date_times(vocab):
                col.time = _time_part(col.string, times)
            del vocab
        if self.bool_rows:
            rows, order = placed(self.bool_rows)
            col.boolean = BoolPart(rows, np.frombuffer(self.bool_vals, dtype=np.int8)[order].astype(bool))
        if self.obj_rows:
            rows, order = placed(self.obj_rows)
            col.objects = ObjectPart(rows, self.obj_blobs.freeze(order))
        return col


# a vocabulary of fewer texts is sorted by Python (sorted); more, of texts no wider than this
# (in UTF-8 bytes, none holding a NUL), by numpy (_block_order)
_ORDER_MIN = 1024
_ORDER_WIDTH = 128
_ORDER_BLOCK = 1 << 16  # texts copied into the matrix at once (non-uniform widths)


def _block_order(data: Any, ends: np.ndarray) -> np.ndarray:
    """The codes of distinct texts given as a block (vocab.encoded's form) in str order
    (Python's: by code point, which is UTF-8's byte order). By numpy (the common vocabulary:
    date-times, codes, names): each text a row of bytes padded with NULs (no text holds one,
    so a shorter text sorts before its extensions), the columns that vary packed as
    mixed-radix digits into as few uint64 keys as hold them, and those sorted (1M `datetime`
    texts: ~0.25 s vs ~0.75 s for `sorted` with a key and the list of a million ints it makes,
    issue 18; and no str per text); other vocabularies (fewer than _ORDER_MIN texts, a NUL,
    long texts) by `sorted`."""
    n = len(ends)
    if n >= _ORDER_MIN:
        flat = np.frombuffer(data, dtype=np.uint8)[: int(ends[-1])]
        lengths = np.diff(ends, prepend=0).astype(np.int32)
        width = int(lengths.max())
        if 0 < width <= _ORDER_WIDTH and n * width <= 2 * len(flat) + 8 * n and flat.all():  # (all: no NUL byte)
            return _byte_rows_order(_byte_rows(flat, lengths, width))
    texts = decoded(data, ends)
    return np.array(sorted(range(n), key=texts.__getitem__), dtype=np.int64)


def _byte_rows(flat: np.ndarray, lengths: np.ndarray, width: int) -> np.ndarray:
    """The texts whose bytes are ``flat`` one after another (``lengths`` each) as the rows of a
    matrix of ``width`` columns, padded with zeros."""
    n = len(lengths)
    if len(flat) == n * width:  # all of one width: the bytes themselves
        return flat.reshape(n, width)
    out = np.zeros((n, width), dtype=np.uint8)
    columns = np.arange(width, dtype=np.int32)
    at = 0
    for first in range(0, n, _ORDER_BLOCK):
        part = lengths[first:first + _ORDER_BLOCK]
        size = int(part.sum())
        out[first:first + len(part)][columns < part[:, None]] = flat[at:at + size]  # row-major: text after text
        at += size
    return out


def _byte_rows_order(rows: np.ndarray) -> np.ndarray:
    """The indexes of the distinct rows of the uint8 matrix ``rows`` in lexicographic order."""
    n = len(rows)
    low, high = rows.min(axis=0), rows.max(axis=0)
    keys: list[np.ndarray] = []
    key, span = None, 1
    for j in np.flatnonzero(high > low).tolist():  # a column that never varies orders nothing
        radix = int(high[j]) - int(low[j]) + 1
        digits = rows[:, j] - low[j]
        if key is None or span * radix > 2**64:
            key, span = digits.astype(np.uint64), radix
            keys.append(key)
        else:
            key *= np.uint64(radix)
            key += digits
            span *= radix
    if not keys:  # one row
        return np.zeros(n, dtype=np.int64)
    if len(keys) > 1:
        return np.lexsort(keys[::-1])
    key = keys[0]
    if span * n <= 2**64:  # the row number in the low digits: a sort of values, not an argsort
        key *= np.uint64(n)
        key += np.arange(n, dtype=np.uint64)
        key.sort()
        key %= np.uint64(n)
        return key.view(np.int64)  # (below n: the same numbers)
    return np.argsort(key)


def _sorted_vocabulary(data: Any, ends: np.ndarray, order: np.ndarray) -> Sequence[str]:
    """Texts ``order`` of a block (vocab.encoded's form), in that order, as a sorted
    vocabulary is kept (vocab.compact): a TextBlock made from the bytes from BLOCK_MIN texts on
    (none holding a NUL), else a list."""
    n = len(order)
    flat = np.frombuffer(data, dtype=np.uint8)[: int(ends[-1]) if len(ends) else 0]
    if n >= vocab_module.BLOCK_MIN and flat.all():  # (BLOCK_MIN read here: tests set it; all: no NUL)
        return block_of(data, ends, order)
    if n < 2:
        return [decoded(data, ends, i, i + 1)[0] for i in order.tolist()]
    texts = decoded(data, ends)
    return list(operator.itemgetter(*order.tolist())(texts))


class EveryRow:
    """The placing of a part that every row has (most keys of a catalog's items: `platform`,
    `gsd`, ...): its positions are all of the index's, and the order that sorts its values is
    the index's own, so both are made once for all such parts and shared by their columns
    instead of a scatter each (~0.05 s per key at 1M) and an array of positions each (8 bytes a
    record less per such key but one: 64 MB at 1M items of nine such keys, in memory and in the
    snapshot)."""

    __slots__ = ("new_position", "size", "_placed", "_shared")

    def __init__(self, new_position: np.ndarray, size: int) -> None:
        self.new_position = new_position
        self.size = size
        self._placed: tuple[np.ndarray, np.ndarray] | None = None
        self._shared = True  # until placed() finds it is not

    def has(self, rows: array) -> bool:
        """Whether ``rows`` (a part's, increasing) is every row."""
        n = len(self.new_position)
        if not n or len(rows) != n or rows[0] != 0 or rows[-1] != n - 1:
            return False
        return bool((np.diff(np.frombuffer(rows, dtype=np.int32)) == 1).all())

    def placed(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(positions, the rows in position order) of every row, as _KeyBuilder.freeze's placed,
        read-only (the columns share them); None when the rows kept are not at positions 0 to
        size - 1 (not an index's own placing: each part is placed by itself)."""
        if self._placed is None and self._shared:
            kept = np.flatnonzero(self.new_position >= 0)
            if len(kept) != self.size:
                self._shared = False
                return None
            order = np.empty(self.size, dtype=np.int64)
            order[self.new_position[kept]] = kept
            del kept
            positions = np.arange(self.size, dtype=np.int64)
            positions.flags.writeable = order.flags.writeable = False
            self._placed = (positions, order)
        return self._placed


def _shifted(rows: array, offset: int) -> array:
    """int32 rows plus ``offset``, as an array of the same type."""
    out = array("i")
    out.frombytes((np.frombuffer(rows, dtype=np.int32) + np.int32(offset)).tobytes())
    return out


_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")


def _all_date_times(vocab: Sequence[str]) -> bool:
    """Every string of the key is an RFC 3339 date-time (`published`, `expires`,
    `sat:anx_datetime`, ...): it is a time property like `datetime`, whatever its name."""
    return bool(vocab) and all(_DATE_TIME.fullmatch(v) for v in vocab)


def _time_part(strings: StringPart, parsed_ahead: tuple[np.ndarray, np.ndarray] | None = None) -> NumberPart | None:
    """The time column of a key's strings; ``parsed_ahead``: its vocabulary already parsed
    (_parse_date_times's two arrays, in vocabulary order)."""
    if parsed_ahead is not None:
        parsed, ok = parsed_ahead
    else:  # a slice of the vocabulary at a time (a TextBlock's texts made as str a slice at a time)
        vocab = strings.vocab
        pieces = [_parse_date_times(list(vocab[first:first + _PARSE_SLICE])) for first in range(0, len(vocab), _PARSE_SLICE)]
        parsed = np.concatenate([p for p, _ in pieces]) if pieces else np.zeros(0, np.int64)
        ok = np.concatenate([o for _, o in pieces]) if pieces else np.zeros(0, bool)
        del pieces
    keep = ok[strings.codes]
    if not keep.any():
        return None
    return NumberPart(strings.rows[keep], parsed[strings.codes[keep]])


@dataclass
class ColumnsBuilder:
    keys: dict[str, _KeyBuilder] = field(default_factory=dict)

    def add(self, row: int, properties: dict[str, Any]) -> None:
        keys = self.keys
        for key, value in properties.items():
            builder = keys.get(key)
            if builder is None:
                builder = keys[key] = _KeyBuilder()
            kind = type(value)
            if kind is float:  # _KeyBuilder.add's two common cases, without a call per property
                builder.num_rows.append(row)
                builder.num_vals.append(value)
            elif kind is str:
                vocab = builder.vocab
                code = vocab.get(value)
                if code is None:
                    code = len(vocab)
                    if code >= SPILL:  # (emptied in place)
                        builder._spill()
                        code = 0
                    vocab[value] = code
                builder.str_rows.append(row)
                builder.str_codes.append(code)
            else:
                builder.add(row, value)

    def merge(self, other: ColumnsBuilder, offset: int) -> None:
        """Append another builder's rows (numbered from 0) as rows ``offset`` on."""
        keys = self.keys
        for key, builder in other.keys.items():
            mine = keys.get(key)
            if mine is None:
                mine = keys[key] = _KeyBuilder()
            mine.merge(builder, offset)

    def parse_times(self) -> None:
        """Parse the time keys' texts now (IndexBuilder.chunk, in a forked indexing process:
        ~0.7 s of a 1M build's serial tail, issue 18), not when frozen."""
        for key in TIME_KEYS & self.keys.keys():
            self.keys[key].parse_times()

    def freeze(self, new_position: np.ndarray) -> dict[str, Column]:
        """The columns; each key's builder is dropped once its column is made (once only), and
        the heap trimmed (heap.trim: what it freed no longer counts in the build's peak)."""
        size = int(new_position.max()) + 1 if len(new_position) else 0
        every = EveryRow(new_position, size)
        frozen = {}
        for key in sorted(self.keys):
            frozen[key] = self.keys.pop(key).freeze(key, new_position, size, every)
            heap.trim()
        return frozen


# The common spellings of a date-time in catalogs, read by numpy a block of texts at a time
# (_parse_date_times): YYYY-MM-DDTHH:MM:SS, then Z, .fffZ or .ffffffZ (told by the length)
_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9, 11, 12, 14, 15, 17, 18]
_SEPARATORS = {4: "-", 7: "-", 10: "T", 13: ":", 16: ":"}
_FRACTIONS = {20: 0, 24: 3, 27: 6}  # length -> fraction digits (then the Z)
_VECTOR_MIN = 256  # fewer texts: one at a time
_VECTOR_BLOCK = 1 << 16  # texts read at once (a few MB of arrays)
_PARSE_SLICE = 1 << 18  # texts of a frozen vocabulary parsed at once (_time_part)
_MONTH_DAYS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31])


def _parse_date_times(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Each text's instant in microseconds (parse_document_datetime) and whether it is one. The
    common spellings (_FRACTIONS) are read by numpy from their ASCII bytes, one length at a
    time (one at a time was ~0.5 s per million texts of the build's serial tail: `datetime` is
    one text per item); the rest, and any such text that is no real date-time (a month 13,
    February 30, a second 60), one at a time."""
    n = len(texts)
    parsed = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    done = np.zeros(n, dtype=bool)
    if n >= _VECTOR_MIN:
        lengths = np.fromiter(map(len, texts), dtype=np.int32, count=n)
        lengths[~np.fromiter(map(str.isascii, texts), dtype=bool, count=n)] = 0  # a character past a byte: one at a time
        for size, digits in _FRACTIONS.items():
            of_size = np.flatnonzero(lengths == size)
            for first in range(0, len(of_size), _VECTOR_BLOCK):
                where = of_size[first:first + _VECTOR_BLOCK]
                joined = "".join([texts[i] for i in where.tolist()]).encode("ascii")
                chars = np.frombuffer(joined, dtype=np.uint8).reshape(-1, size)
                micros, good = _common_date_times(chars, digits)
                taken = where[good]
                parsed[taken] = micros[good]
                ok[taken] = done[taken] = True
    for i in np.flatnonzero(~done).tolist():
        try:
            parsed[i] = parse_document_datetime(texts[i])
            ok[i] = True
        except (ValueError, OverflowError):
            pass
    return parsed, ok


def _common_date_times(chars: np.ndarray, digits: int) -> tuple[np.ndarray, np.ndarray]:
    """(microseconds, whether read) of ASCII texts of one length of _FRACTIONS (a row of
    ``chars`` each; ``digits`` of fraction), as parse_document_datetime reads them."""
    count, size = chars.shape
    digit = (chars >= ord("0")) & (chars <= ord("9"))

    def number_at(*positions: int) -> np.ndarray:
        out = np.zeros(count, dtype=np.int64)
        for at in positions:
            out = out * 10 + (chars[:, at].astype(np.int64) - ord("0"))
        return out

    good = digit[:, _DIGITS].all(axis=1) & (chars[:, size - 1] == ord("Z"))
    for at, char in _SEPARATORS.items():
        good &= chars[:, at] == ord(char)
    fraction = np.zeros(count, dtype=np.int64)
    if digits:
        good &= (chars[:, 19] == ord(".")) & digit[:, 20:20 + digits].all(axis=1)
        fraction = number_at(*range(20, 20 + digits)) * 10 ** (6 - digits)
    year, month, day = number_at(0, 1, 2, 3), number_at(5, 6), number_at(8, 9)
    hour, minute, second = number_at(11, 12), number_at(14, 15), number_at(17, 18)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    month_days = _MONTH_DAYS[np.clip(month, 0, 12)] + ((month == 2) & leap)
    good &= (year >= 1) & (month >= 1) & (month <= 12) & (day >= 1) & (day <= month_days)
    good &= (hour <= 23) & (minute <= 59) & (second <= 59)
    # days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's days_from_civil)
    y = year - (month <= 2)
    era = y // 400
    of_era = y - era * 400
    of_year = (153 * ((month + 9) % 12) + 2) // 5 + day - 1
    days = era * 146097 + of_era * 365 + of_era // 4 - of_era // 100 + of_year - 719468
    return (days * 86400 + hour * 3600 + minute * 60 + second) * 1_000_000 + fraction, good
