"""The TRUE set of common CQL2 filters from per-column indexes, as packed bits, without
reading every value.

FilterEvaluator compares every value of each column the filter names: at 10,000,000 records
``eo:cloud_cover < 10 AND platform = 'sentinel-2a'`` reads ~120 MB and writes a dozen 10 MB
masks (~25 ms). Here, ANDs and ORs (and BETWEEN, IN) of comparisons of a property with a
number (=, <>, <, <=, >, >=) or a string (=, <>) are answered in bits (np.packbits order,
1.25 MB at 10M) from structures made on a column's first such use and kept:

* numbers (NumberBits, made in a thread of their own on a column's first use, while
  FilterEvaluator answers): the records in value order, cut into PREFIX_STEPS buckets of equal
  count, and the bits of every prefix of buckets; "value < v" is the prefix of the buckets
  wholly below v with the records of v's own bucket that qualify set in (or, nearer the next
  prefix, those that do not cleared from it): at most 1/(2 * PREFIX_STEPS) of the records
  are read. 12 bytes + PREFIX_STEPS bits a record (~200 MB at 10M);
* strings: the bits of each value asked for (1 bit a record), the last MAX_VALUE_BITS ones.

Only the TRUE set is needed for a filter's matches (AND and OR of TRUE sets are the TRUE sets
of AND and OR in CQL2's three-valued logic); NOT needs the FALSE set, and everything else
(LIKE, times, arrays, geometries, case-insensitive or coerced comparisons, other tables'
kinds of input) goes to FilterEvaluator, which also reports every malformed filter.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import numpy as np

from server.index.bitmap import pack
from server.index.columns import Column, NumberPart, StringPart
from server.index.cql2_terms import ARITY, COMPARISONS, is_expression, property_name, time_literal, unwrap_case
from server.query.extensions import COERCE

PREFIX_STEPS = 64
MAX_NUMBER_COLUMNS = 4  # the columns whose NumberBits are kept (the last used)
MAX_VALUE_BITS = 64  # the (column, string value) bit sets kept (the last used)
IN_ONE_BY_ONE = 8  # an IN of more values is answered in one pass over the column (BitsFilter._in_at_once)
BUILD_IN_BACKGROUND = True  # NumberBits are made in a thread while the evaluator answers
FLIPPED = {"<": ">", ">": "<", "<=": ">=", ">=": "<="}


def _set_sorted(bits: np.ndarray, rows: np.ndarray, on: bool) -> None:
    """Set (``on``) or clear the bits of ascending ``rows`` in place: one update per byte."""
    if not len(rows):
        return
    at = rows >> 3
    flags = (np.uint8(128) >> (rows & 7).astype(np.uint8)).astype(np.uint8)
    first = np.flatnonzero(np.concatenate(([True], at[1:] != at[:-1])))
    merged = np.bitwise_or.reduceat(flags, first)
    if on:
        bits[at[first]] |= merged
    else:
        bits[at[first]] &= ~merged


class NumberBits:
    """The bit index of one column's numbers (see the module docstring)."""

    def __init__(self, part: NumberPart, size: int) -> None:
        n = len(part.values)
        order = np.argsort(part.values, kind="stable")
        sorted_values = part.values[order]
        self.step = max(1, -(-n // PREFIX_STEPS))
        rows = part.rows[order].astype(np.int32 if size < 2**31 else np.int64)
        self.bucket_rows: list[np.ndarray] = []  # each bucket's records, ascending
        self.bucket_values: list[np.ndarray] = []  # and their values, in the same order
        mask = np.zeros(size, dtype=bool)
        prefixes = [np.packbits(mask)]
        for lo in range(0, n, self.step):
            members = rows[lo : lo + self.step]
            by_row = np.argsort(members, kind="stable")
            self.bucket_rows.append(members[by_row])
            self.bucket_values.append(sorted_values[lo : lo + self.step][by_row])
            mask[members] = True
            prefixes.append(np.packbits(mask))
        self.prefixes = np.stack(prefixes)
        # Each bucket's smallest value, ascending: which bucket a value's edge falls in.
        self._firsts = sorted_values[:: self.step].copy()
        # NaN (which JSON cannot say, but a column might hold) compares as no number does.
        self.usable = not bool(np.isnan(sorted_values[-1])) if n else True
        self.size = size

    def below(self, value: float, inclusive: bool) -> np.ndarray:
        """Bits of the records whose value is < ``value`` (<= when ``inclusive``)."""
        # The buckets are in value order: those whose smallest value qualifies may hold some;
        # the last of them is the one to look into (every earlier one qualifies wholly).
        j = int(np.searchsorted(self._firsts, value, side="right" if inclusive else "left")) - 1  # the bucket holding the edge
        if j < 0:
            return self.prefixes[0].copy()
        values, rows = self.bucket_values[j], self.bucket_rows[j]
        qualify = values <= value if inclusive else values < value
        count = int(np.count_nonzero(qualify))
        if count * 2 <= len(values):  # fewer set into the prefix below than cleared from the one above
            out = self.prefixes[j].copy()
            _set_sorted(out, rows[qualify], True)
        else:
            out = self.prefixes[j + 1].copy()
            _set_sorted(out, rows[~qualify], False)
        return out

    def compare(self, op: str, value: float) -> np.ndarray:
        """Bits of the records whose value ``op`` ``value`` holds (op one of COMPARISONS)."""
        if op == "<":
            return self.below(value, False)
        if op == "<=":
            return self.below(value, True)
        everything = self.prefixes[-1]
        if op == ">":
            return everything & ~self.below(value, True)
        if op == ">=":
            return everything & ~self.below(value, False)
        equal = self.below(value, True) & ~self.below(value, False)
        return equal if op == "=" else everything & ~equal


class FilterBits:
    """The bit indexes of one table's columns, made on first use; never pickled into a
    snapshot (an empty one is), as SortOrders."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.numbers: OrderedDict[str, NumberBits] = OrderedDict()
        self.building: set[str] = set()  # the columns whose NumberBits are being made
        self.values: OrderedDict[tuple[str, str | None], np.ndarray] = OrderedDict()

    def __reduce__(self) -> tuple[Any, ...]:
        return (FilterBits, ())

    def number_bits(self, name: str, part: NumberPart, size: int) -> NumberBits | None:
        """The column's NumberBits; None while they are being made (in a thread of their own
        when BUILD_IN_BACKGROUND: ~1 s a 1,000,000 values, which no search should wait for)."""
        with self.lock:
            found = self.numbers.get(name)
            if found is not None and found.size == size:
                self.numbers.move_to_end(name)
                return found
            if name in self.building:  # one build per column, even when two searches ask at once
                return None
            self.building.add(name)
        if not BUILD_IN_BACKGROUND:
            return self._build(name, part, size)
        threading.Thread(target=self._build, args=(name, part, size), name=f"filter-bits {name}", daemon=True).start()
        return None

    def _build(self, name: str, part: NumberPart, size: int) -> NumberBits:
        try:
            made = NumberBits(part, size)
            with self.lock:
                self.numbers[name] = made
                while len(self.numbers) > MAX_NUMBER_COLUMNS:
                    self.numbers.popitem(last=False)
            return made
        finally:
            with self.lock:
                self.building.discard(name)

    def value_bits(self, name: str, part: StringPart, value: str | None, size: int) -> np.ndarray:
        """Bits of the records holding string ``value`` (None: any string)."""
        key = (name, value)
        with self.lock:
            found = self.values.get(key)
            if found is None:
                if value is None:
                    found = pack(part.rows, size)
                else:
                    code = part.code_of(value)
                    found = pack(part.rows[part.codes == code] if code is not None else part.rows[:0], size)
                self.values[key] = found
                while len(self.values) > MAX_VALUE_BITS:
                    self.values.popitem(last=False)
            self.values.move_to_end(key)
            return found


class BitsFilter:
    """Answers one filter over one table in bits, or says it cannot (None)."""

    def __init__(self, column: Any, size: int, store: FilterBits) -> None:
        self.column = column  # name -> Column | None, the table's (Table.column: its names mapped, a 400 for a path)
        self.size = size
        self.store = store

    def truth(self, node: Any) -> np.ndarray | None:
        """Packed bits of the records for which ``node`` is TRUE, or None: not answerable here."""
        if not isinstance(node, dict) or "op" not in node or not isinstance(node.get("args"), list):
            return None
        op, args = str(node["op"]).lower(), node["args"]
        arity = ARITY.get(op)
        if arity is None or not arity[0] <= len(args) <= arity[1] or node.get(COERCE):
            return None
        if op in ("and", "or"):
            out: np.ndarray | None = None
            for arg in args:
                bits = self.truth(arg)
                if bits is None:
                    return None
                out = bits if out is None else (out & bits if op == "and" else out | bits)
            return out
        if op == "between":
            if len(args) == 2 and isinstance(args[1], list) and len(args[1]) == 2:
                args = [args[0], *args[1]]
            if len(args) != 3 or not all(_number(b) for b in args[1:]):
                return None
            low, high = self._compare(">=", args[0], args[1]), self._compare("<=", args[0], args[2])
            return None if low is None or high is None else low & high
        if op == "in":
            if not isinstance(args[1], list) or not args[1]:
                return None
            if len(args[1]) > IN_ONE_BY_ONE:
                return self._in_at_once(args[0], args[1])
            out = None
            for value in args[1]:
                bits = self._compare("=", args[0], value)
                if bits is None:
                    return None
                out = bits if out is None else out | bits
            return out
        if op in COMPARISONS:
            return self._compare(op, args[0], args[1])
        return None

    def _in_at_once(self, left: Any, values: list[Any]) -> np.ndarray | None:
        """A property IN a long list of strings, or of numbers, in one pass over its column
        (np.isin), where the loop above makes (and caches, evicting the others) the bits of each
        value: O(values x records), 10,000 values ~50 s at 10,000,000 records (qa16)."""
        left, casei = unwrap_case(left)
        name = property_name(left)
        col: Column | None = self.column(name) if name is not None and not casei else None
        if col is None:
            return None
        if all(type(v) is str for v in values):
            part = col.string
            if part is None:
                return None
            codes = [c for c in map(part.code_of, set(values)) if c is not None]
            return pack(part.rows[np.isin(part.codes, np.array(codes, dtype=part.codes.dtype))], self.size)
        if all(_number(v) for v in values):
            if col.number is None:
                return None
            numbers = np.array([float(v) for v in values], dtype=np.float64)
            return pack(col.number.rows[np.isin(col.number.values, numbers)], self.size)
        return None

    def _compare(self, op: str, left: Any, right: Any) -> np.ndarray | None:
        left, casei_left = unwrap_case(left)
        right, casei_right = unwrap_case(right)
        if casei_left or casei_right:
            return None
        name = property_name(left)
        if name is None and property_name(right) is not None:
            left, right, name, op = right, left, property_name(right), FLIPPED.get(op, op)
        if name is None or property_name(right) is not None or is_expression(right):
            return None
        col: Column | None = self.column(name)
        if col is None:
            return None
        if _number(right):
            if col.number is None:
                return None
            # (stores keyed by the column's key: `properties.gsd` and `gsd` share one)
            bits = self.store.number_bits(col.key, col.number, self.size)
            return bits.compare(op, float(right)) if bits is not None and bits.usable else None
        if isinstance(right, str) and op in ("=", "<>") and time_literal(right) is None:
            if col.string is None:
                return None
            equal = self.store.value_bits(col.key, col.string, right, self.size)
            return equal if op == "=" else self.store.value_bits(col.key, col.string, None, self.size) & ~equal
        return None


def _number(value: Any) -> bool:
    """A finite number literal (too large an integer is left to FilterEvaluator to report)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return bool(np.isfinite(float(value)))
    except OverflowError:
        return False

