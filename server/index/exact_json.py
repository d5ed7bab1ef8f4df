"""JSON read and written with integers beyond 64 bits kept exact.

orjson reads an integer outside -2**63 .. 2**64 - 1 as a double, silently
(123456789012345678901234567890 became 1.2345678901234568e+29 in a served item, qa16), and
cannot write one. Every such integer has at least LONG_RUN digits, so a document without a run
of that many digits is read by orjson alone (the common case; the test is one pass of
bytes.translate and a search, ~0.85 ms a MB, a tenth or less of orjson's parse); one with such
a run (a long integer, or a long fraction, or digits in a string) is read by orjson, for its
checks and errors, and then again by the standard library's json, whose integers are exact
(its other values are orjson's: the same doubles, strings, objects). Writing is orjson's, and
for a value it cannot write (an integer beyond 64 bits: only from such a document) orjson's
again with those integers as fragments of their digits: the same bytes, the integers exact.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import orjson

LONG_RUN = 19  # digits of the shortest integer orjson cannot hold (-9223372036854775809)
_RUN = b"0" * LONG_RUN
_AS_DIGITS = bytes(48 if 48 <= b <= 57 else 32 for b in range(256))  # a digit as "0", anything else as " "
# bytes tested at once (a slice's copy and its translation: bounded temporaries). 256 KiB (in the
# cache): 0.85 ms a MB of ndjson; 4 MiB 1.6, 16 MiB 1.2-2.5 (translate 0.62, the search 0.22)
_SLICE = 1 << 18
_LOW, _HIGH = -(2**63), 2**64 - 1


def has_long_digits(data: bytes | memoryview, start: int = 0, end: int | None = None) -> bool:
    """Whether ``data[start:end]`` holds a run of LONG_RUN digits (an integer orjson may not
    hold exactly is one). By slices, overlapping by LONG_RUN - 1 bytes."""
    end = len(data) if end is None else end
    if start == 0 and end == len(data) and type(data) is bytes and end <= _SLICE:
        return _RUN in data.translate(_AS_DIGITS)
    view = memoryview(data)
    at = start
    while at < end:
        upto = min(end, at + _SLICE)
        if _RUN in bytes(view[at:upto]).translate(_AS_DIGITS):
            return True
        if upto == end:
            break
        at = upto - (LONG_RUN - 1)
    return False


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def loads(data: bytes | memoryview) -> Any:
    """The JSON value of ``data``: orjson's (its errors, orjson.JSONDecodeError), with any
    integer beyond 64 bits exact."""
    value = orjson.loads(data)
    if has_long_digits(data):
        return exact_loads(data)
    return value


def exact_loads(data: bytes | memoryview) -> Any:
    """``data`` (which orjson has read: valid JSON, no NaN) by the standard library: exact integers."""
    return json.loads(bytes(data), parse_constant=_refuse_constant)


def dumps(value: Any, option: int | None = None) -> bytes:
    """orjson.dumps, also of a value holding integers beyond 64 bits (written exactly)."""
    try:
        return orjson.dumps(value, option=option)
    except orjson.JSONEncodeError:
        return orjson.dumps(_long_as_fragments(value), option=option)  # as orjson, or its error


def integers_outside(value: Any, low: int, high: int, by: Callable[[int], Any], found: list[int] | None = None) -> Any:
    """``value`` with each integer (not a bool) outside ``low`` .. ``high`` replaced by ``by(it)``
    (objects and arrays copied, as dicts and lists), each one appended to ``found`` if given."""
    if isinstance(value, dict):
        return {k: integers_outside(v, low, high, by, found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [integers_outside(v, low, high, by, found) for v in value]
    if isinstance(value, int) and not isinstance(value, bool) and not low <= value <= high:
        if found is not None:
            found.append(value)
        return by(value)
    return value


def _long_as_fragments(value: Any) -> Any:
    """``value`` with each integer orjson cannot write as a fragment of its digits."""
    return integers_outside(value, _LOW, _HIGH, lambda long: orjson.Fragment(int.__repr__(long).encode()))
