"""Items met during the walk that wait for the collection they go to (Loader._inline_item),
kept as bytes in an unnamed temporary file instead of as parsed documents in memory.

An item of a bulk file waits when the collection it names is not loaded yet (a later document
may hold it), and every item read after a waiting one waits too, so that items are indexed in
the order they were read. With ``index catalog.json items.ndjson`` (the collections being the
catalog's children, read at the next level) that is every item of the file: at ten million,
held as dicts, they took 15 GB within 30 s. Here each waits as its JSON (~1x its size, on
disk) with 13 bytes of bookkeeping in memory, and is parsed again when the walk is over, in
the same order, as the same value.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from array import array
from collections.abc import Iterator
from typing import IO, Any, Generic, TypeVar

import orjson

C = TypeVar("C")

JSON, PICKLE = 0, 1
BUFFER = 1 << 20


class WaitingItems(Generic[C]):
    """(item, location, context, whole) records in the order appended; read back once (``drain``).
    ``directory``: where the temporary file goes (None: the system's temporary folder)."""

    def __init__(self, directory: str | None = None) -> None:
        self._directory = directory
        self._reset()

    def _reset(self) -> None:
        self._file: IO[bytes] | None = None
        self._ends = array("q")
        self._keys = array("i")
        self._kinds = array("B")
        self._key_codes: dict[tuple[str, C, bool], int] = {}
        self._key_list: list[tuple[str, C, bool]] = []

    def __len__(self) -> int:
        return len(self._ends)

    def append(self, item: Any, location: str, context: C, whole: bool) -> None:
        key = (location, context, whole)
        code = self._key_codes.get(key)
        if code is None:
            code = self._key_codes[key] = len(self._key_list)
            self._key_list.append(key)
        try:  # a subclass (formats.LeanLinks) or an integer past 64 bits: kept whole by pickle
            data, kind = orjson.dumps(item, option=orjson.OPT_PASSTHROUGH_SUBCLASS), JSON
        except (TypeError, orjson.JSONEncodeError):
            data, kind = pickle.dumps(item, protocol=5), PICKLE
        if self._file is None:
            self._file = tempfile.TemporaryFile(dir=self._directory, buffering=BUFFER)
        self._file.write(data)
        self._ends.append((self._ends[-1] if self._ends else 0) + len(data))
        self._keys.append(code)
        self._kinds.append(kind)

    def drain(self) -> Iterator[tuple[Any, str, C, bool]]:
        """Every record, in order, parsed again; afterwards (or when abandoned) this is empty."""
        stream, ends, keys, kinds, key_list = self._file, self._ends, self._keys, self._kinds, self._key_list
        self._reset()
        if stream is None:
            return
        try:
            stream.flush()
            stream.seek(0)
            reader = os.fdopen(os.dup(stream.fileno()), "rb", buffering=BUFFER)
            with reader:
                start = 0
                for end, code, kind in zip(ends, keys, kinds):
                    data = reader.read(end - start)
                    start = end
                    location, context, whole = key_list[code]
                    yield (orjson.loads(data) if kind == JSON else pickle.loads(data)), location, context, whole
        finally:
            stream.close()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        self._reset()
