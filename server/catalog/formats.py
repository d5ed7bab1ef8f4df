"""How the bytes of one document become STAC documents: one reader class per format, chosen
by the document's name (its extension), then its media type (the `type` of the link that led
to it), then its content (the first bytes), from a small registry.

A reader turns one fetched document into the JSON values it holds, in order: a STAC JSON
document is one value (a catalog, a collection or an item); a FeatureCollection is its
features; newline-delimited JSON is one value per line. The loader decides what each value is
(catalog, collection, item) and where it belongs; a reader only reads. A document a reader
cannot read at all raises FormatError with the reason (the loader skips the document); a part
of it that cannot be read (one line of an ndjson file) goes to ``skip`` with its own label, and
the rest is read.

A new format is one Reader subclass and one ``register()`` line. A reader of a binary bulk
format (stac-geoparquet, say) declares its extensions, media types and magic bytes (``sniff``)
and yields item dicts from ``read``; it gets the body as bytes (a buffer it may wrap in a file
object, e.g. ``pyarrow.BufferReader``). Bulk formats are reached as roots or child links and
so are read within the structural size bound (LoadOptions.max_structure_bytes), not the item
bound. (Reading from a stream instead of a buffer would need the sources to hand out file
objects; sources.Source.open is where that goes.)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar, TypeVar

import orjson

from server.index import exact_json

Skip = Callable[[str, str], None]  # (label, reason): one unreadable part of a document

HEAD_BYTES = 4096  # how much of a document content sniffing looks at
# A JSON document at least this large is parsed with its item links kept as bare hrefs
# (lean_document): a collection listing 250,000 items is ~35 MB.
LEAN_BYTES = 8 * 1024 * 1024
ORJSON_LEAN_BYTES = 32 * 1024 * 1024  # a lean document up to this is parsed whole by orjson (lean_document)


class FormatError(Exception):
    """The document cannot be read in this format; the message says why."""


class Reader:
    """One format. Subclasses set ``name`` and what chooses them, and implement ``read``."""

    name: ClassVar[str] = ""
    extensions: ClassVar[tuple[str, ...]] = ()  # lower case, without the dot
    media_types: ClassVar[tuple[str, ...]] = ()  # lower case, without parameters
    # Its documents hold items and nothing else: the loader reads them after the walk (a
    # forked child may read them while this process indexes), not during it.
    items_only: ClassVar[bool] = False

    def sniff(self, head: bytes) -> bool:
        """Whether a document starting with ``head`` (up to HEAD_BYTES) is in this format."""
        return False

    def read(self, data: bytes, location: str, skip: Skip) -> Iterable[Any]:
        """The JSON values the document holds; FormatError if it holds none readable."""
        raise NotImplementedError


class JsonDocument(Reader):
    """One JSON value: a STAC catalog, collection or item (or a FeatureCollection, whose
    reader then reads it). A file named .json that is really newline-delimited JSON is read as
    such, as before there was a registry."""

    name = "json"
    extensions = ("json", "geojson")
    media_types = ("application/json", "application/geo+json")

    def sniff(self, head: bytes) -> bool:
        return head.lstrip()[:1] in (b"{", b"[")

    def read(self, data: bytes, location: str, skip: Skip) -> Iterable[Any]:
        if len(data) >= LEAN_BYTES and data.lstrip()[:1] == b"{":
            lean = lean_document(data)
            if lean is not None:
                return (lean,)
        try:
            doc = exact_json.loads(data)  # (integers beyond 64 bits exact)
        except orjson.JSONDecodeError as exc:
            if NDJSON.sniff(data[:HEAD_BYTES]) and NDJSON.first_is_object(data):
                return NDJSON.values(data, location, skip)
            raise FormatError(f"invalid JSON: {exc}") from None
        if type(doc) is dict and doc.get("type") == "FeatureCollection":
            return FEATURE_COLLECTION.features(doc)
        return (doc,)


class FeatureCollection(Reader):
    """A GeoJSON FeatureCollection: its features, each an item. No extension or media type
    says a document is one (.geojson and application/geo+json name single Features too), so
    it is chosen by content, or found by the JSON reader once parsed."""

    name = "FeatureCollection"

    def sniff(self, head: bytes) -> bool:
        return head.lstrip()[:1] == b"{" and b'"FeatureCollection"' in head

    def read(self, data: bytes, location: str, skip: Skip) -> Iterable[Any]:
        return JSON_DOCUMENT.read(data, location, skip)  # not one after all: read as what it is

    def features(self, doc: dict[str, Any]) -> list[Any]:
        features = doc.get("features")
        if not isinstance(features, list):
            raise FormatError("FeatureCollection without a features array")
        return features


class Ndjson(Reader):
    """Newline-delimited JSON, one value (an item, usually) per line, parsed one at a time: a
    bulk file of a million items never becomes a list of a million dicts. A line that is not
    JSON is skipped with its number; a file whose first line is not a JSON object is read as
    one JSON document instead (a pretty-printed .ndjson)."""

    name = "ndjson"
    extensions = ("ndjson", "jsonl", "geojsonl", "ndgeojson")
    media_types = ("application/x-ndjson", "application/ndjson", "application/jsonl", "application/geo+json-seq")

    def sniff(self, head: bytes) -> bool:
        first, newline, rest = head.lstrip().partition(b"\n")
        return first[:1] == b"{" and bool(newline) and bool(rest.strip())

    @staticmethod
    def first_is_object(data: bytes) -> bool:
        first = next(_lines(data), None)
        try:
            return first is not None and isinstance(orjson.loads(first[1]), dict)
        except orjson.JSONDecodeError:
            return False

    def read(self, data: bytes, location: str, skip: Skip) -> Iterable[Any]:
        if not self.first_is_object(data):
            return JSON_DOCUMENT.read(data, location, skip)
        return self.values(data, location, skip)

    def values(self, data: bytes, location: str, skip: Skip) -> NdjsonValues:
        return NdjsonValues(data, location, skip)


class NdjsonValues:
    """The values of an ndjson document, parsed one line at a time as they are iterated; also
    its bytes (``data``), for a reader of its own lines (the loader's parallel indexing:
    server.catalog.parallel) that numbers and labels them as this does (``values_from``)."""

    __slots__ = ("data", "location", "skip")

    def __init__(self, data: bytes, location: str, skip: Skip) -> None:
        self.data = data
        self.location = location
        self.skip = skip

    def __iter__(self) -> Iterator[Any]:
        return self.values_from(0, 0)

    def values_from(self, start: int, number: int, end: int | None = None, skip: Skip | None = None) -> Iterator[Any]:
        """The values of the lines from byte ``start`` (a line's first byte; ``number`` lines
        before it) to ``end``, an unreadable one reported to ``skip`` (default: the reader's)."""
        data, location, skip = self.data, self.location, skip or self.skip
        view = memoryview(data)
        loads = lines_loads(data, start, end)
        for line, line_start, line_end in line_spans(data, start, number, end):
            try:
                yield loads(view[line_start:line_end])
            except orjson.JSONDecodeError as exc:
                skip(f"{location} line {line}", f"invalid JSON: {exc}")


def lines_loads(data: bytes | memoryview, start: int = 0, end: int | None = None) -> Callable[[Any], Any]:
    """How to parse the lines of ``data[start:end]``: orjson.loads, unless a line may hold an
    integer beyond 64 bits (exact_json: one test of the lines' bytes, not one a line)."""
    return exact_json.loads if exact_json.has_long_digits(data, start, end) else orjson.loads


class LeanLinks(list[Any]):
    """A document's ``links`` read by lean_document: the links that are not items, as dicts
    (the list itself), and the item links as bare hrefs (``item_hrefs``), with the media type
    of those whose type is not plain JSON (``item_types``, by position)."""

    def __init__(self) -> None:
        super().__init__()
        self.item_hrefs: list[str] = []
        self.item_types: dict[int, str] = {}

    @classmethod
    def like(cls, lean: LeanLinks, links: Iterable[Any]) -> LeanLinks:
        """``links`` (a migrated document's) with ``lean``'s item links."""
        out = cls()
        out.extend(link for link in links if not (isinstance(link, dict) and link.get("rel") == "item"))
        out.item_hrefs, out.item_types = lean.item_hrefs, lean.item_types
        return out


_PLAIN_JSON = frozenset({"application/json", "application/geo+json"})


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")  # as orjson: NaN and Infinity are refused


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_SPACE = json.decoder.WHITESPACE.match  # type: ignore[attr-defined]


def lean_document(data: bytes) -> dict[str, Any] | None:
    """A large JSON object parsed member by member, its ``links`` one link at a time, each item
    link kept as its href only (LeanLinks): a 35 MB collection of 250,000 item links takes
    ~40 MB of hrefs instead of ~120 MB of link dicts (the loader drops item links from what it
    stores anyway). The same values and errors as orjson (NaN and Infinity refused), or None
    when it is not an object (orjson's path then reads it). Up to ORJSON_LEAN_BYTES, orjson
    parses it whole and the item links are made bare after: ~2.5x faster (a 28 MB collection
    of 250k links: 0.15 s instead of 0.37 s), for a passing ~5x its size in link dicts."""
    if len(data) <= ORJSON_LEAN_BYTES:
        try:
            whole = exact_json.loads(data)
        except orjson.JSONDecodeError as exc:
            raise FormatError(f"invalid JSON: {exc}") from None
        if type(whole) is not dict:
            return None
        if type(whole.get("links")) is list:
            whole["links"] = _bare_item_links(whole["links"])
        return whole
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FormatError(f"invalid JSON: {exc}") from None
    decode, space = _DECODER.raw_decode, _SPACE
    try:
        at = space(text, 0).end()
        if text[at : at + 1] != "{":
            return None
        doc: dict[str, Any] = {}
        at = space(text, at + 1).end()
        if text[at] == "}":
            at += 1
        else:
            while True:
                if text[at] != '"':
                    raise ValueError(f"expected a member name at character {at}")
                key, at = decode(text, at)
                at = space(text, at).end()
                if text[at] != ":":
                    raise ValueError(f"expected ':' at character {at}")
                at = space(text, at + 1).end()
                if key == "links" and text[at] == "[":
                    doc[key], at = _lean_links(text, at + 1)
                else:
                    doc[key], at = decode(text, at)
                at = space(text, at).end()
                if text[at] == ",":
                    at = space(text, at + 1).end()
                elif text[at] == "}":
                    at += 1
                    break
                else:
                    raise ValueError(f"expected ',' or '}}' at character {at}")
        if space(text, at).end() != len(text):
            raise ValueError(f"trailing characters at character {at}")
    except (ValueError, IndexError) as exc:  # json.JSONDecodeError is a ValueError
        raise FormatError(f"invalid JSON: {exc or 'unexpected end of data'}") from None
    return doc


def _bare_item_links(parsed: list[Any]) -> LeanLinks:
    """``links`` parsed whole, as _lean_links keeps them."""
    links = LeanLinks()
    hrefs, types = links.item_hrefs, links.item_types
    for link in parsed:
        href = link.get("href") if type(link) is dict and link.get("rel") == "item" else None
        if type(href) is str:
            media_type = link.get("type")
            if isinstance(media_type, str) and media_type not in _PLAIN_JSON:
                types[len(hrefs)] = media_type
            hrefs.append(href)
        else:
            links.append(link)
    return links


def _lean_links(text: str, at: int) -> tuple[LeanLinks, int]:
    links = LeanLinks()
    hrefs, types = links.item_hrefs, links.item_types
    decode, space = _DECODER.raw_decode, _SPACE
    at = space(text, at).end()
    if text[at] == "]":
        return links, at + 1
    while True:
        link, at = decode(text, at)
        href = link.get("href") if type(link) is dict and link.get("rel") == "item" else None
        if type(href) is str:
            media_type = link.get("type")
            if media_type is not None and media_type not in _PLAIN_JSON and isinstance(media_type, str):
                types[len(hrefs)] = media_type
            hrefs.append(href)
        else:
            links.append(link)
        at = space(text, at).end()
        if text[at] == ",":
            at = space(text, at + 1).end()
        elif text[at] == "]":
            return links, at + 1
        else:
            raise ValueError(f"expected ',' or ']' at character {at}")


def _lines(data: bytes) -> Iterator[tuple[int, memoryview]]:
    """(line number, line) of the non-blank lines, without copying the whole file."""
    view = memoryview(data)
    for number, start, end in line_spans(data):
        yield number, view[start:end]


def newlines(data: bytes, start: int, end: int) -> int:
    """The newlines in ``data[start:end]``: counted in place in bytes, a MiB at a time in a
    mapped file (an mmap has no count: server.catalog.sources.LocalFiles.map)."""
    if isinstance(data, bytes):
        return data.count(b"\n", start, end)
    return sum(data[at:min(end, at + (1 << 20))].count(b"\n") for at in range(start, end, 1 << 20))


def line_spans(data: bytes, start: int = 0, number: int = 0, end: int | None = None) -> Iterator[tuple[int, int, int]]:
    """(line number, first byte, end) of the non-blank lines from byte ``start`` (the first
    byte of a line, ``number`` lines before it) up to ``end`` (the end of a line, or of the
    data), numbered from 1."""
    size = len(data) if end is None else end
    find = data.find
    while start < size:
        stop = find(b"\n", start, size)
        stop = size if stop < 0 else stop
        number += 1
        # blank or not: the first byte tells, unless it is whitespace (no copy of the line)
        if stop > start and (data[start] > 32 or data[start:stop].strip()):
            yield number, start, stop
        start = stop + 1


# -- the registry ------------------------------------------------------------------------------

_READERS: list[Reader] = []
class GeoParquet(Reader):
    """stac-geoparquet: one item per row, read a record batch at a time (server.catalog.parquet,
    on pyarrow: the optional `parquet` extra)."""

    name = "stac-geoparquet"
    extensions = ("parquet", "geoparquet")
    media_types = ("application/vnd.apache.parquet", "application/x-parquet")
    items_only = True  # one item per row (the stac-geoparquet spec)

    def sniff(self, head: bytes) -> bool:
        return head[:4] == b"PAR1"

    def read(self, data: bytes, location: str, skip: Skip) -> Iterable[Any]:
        try:
            # Only here: pyarrow is an optional extra, and most catalogs hold no parquet.
            from server.catalog import parquet  # noqa: PLC0415
        except ImportError:
            raise FormatError("stac-geoparquet needs pyarrow: pip install 'stac-static-api[parquet]'") from None
        return self._items(parquet, data, location)

    def row_groups(self, data: bytes, location: str) -> list[int]:
        """The rows of each of the file's row groups (its unit of reading): for a reader of some
        of them (``read_row_groups``); FormatError as ``read`` would raise it."""
        parquet = self._module()
        try:
            rows: list[int] = parquet.row_group_rows(data, location)
        except parquet.ParquetError as exc:
            raise FormatError(str(exc)) from None
        return rows

    def read_row_groups(self, data: bytes, location: str, row_groups: list[int], assets_json: bool = False,
                        json_only: bool = False, rows: tuple[int, int] | None = None) -> Iterator[Any]:
        """The items of these row groups, as ``read`` gives them, decoded in this thread (for a
        process of several, each reading row groups); ``assets_json``, ``json_only``, ``rows``:
        parquet.read_batches'."""
        return self._items(self._module(), data, location, row_groups, assets_json, json_only, rows)

    @staticmethod
    def _module() -> Any:
        try:
            from server.catalog import parquet  # noqa: PLC0415
        except ImportError:
            raise FormatError("stac-geoparquet needs pyarrow: pip install 'stac-static-api[parquet]'") from None
        return parquet

    @staticmethod
    def _items(parquet: Any, data: bytes, location: str, row_groups: list[int] | None = None,
               assets_json: bool = False, json_only: bool = False, rows: tuple[int, int] | None = None
               ) -> Iterator[Any]:
        try:
            for batch in parquet.read_batches(data, location=location, row_groups=row_groups,
                                              threads=row_groups is None, assets_json=assets_json,
                                              json_only=json_only, rows=rows):
                yield from batch
        except parquet.ParquetError as exc:
            raise FormatError(str(exc)) from None


_BY_EXTENSION: dict[str, Reader] = {}
_BY_MEDIA_TYPE: dict[str, Reader] = {}


R = TypeVar("R", bound=Reader)


def register(reader: R) -> R:
    """Add a format. Content sniffing asks readers in registration order (the most specific
    first); a later reader's extensions and media types replace an earlier one's."""
    _READERS.append(reader)
    for extension in reader.extensions:
        _BY_EXTENSION[extension] = reader
    for media_type in reader.media_types:
        _BY_MEDIA_TYPE[media_type] = reader
    return reader


GEOPARQUET = register(GeoParquet())
FEATURE_COLLECTION = register(FeatureCollection())
NDJSON = register(Ndjson())
JSON_DOCUMENT = register(JsonDocument())


def extension(location: str) -> str:
    """The lower-case extension of the last path segment, or ''; a URL's path ends at its
    query or fragment."""
    end = len(location)
    scheme_end = location.find("://", 0, 16)
    if scheme_end >= 0:
        for mark in ("?", "#"):
            at = location.find(mark, scheme_end + 3, end)
            if at >= 0:
                end = at
    dot = location.rfind(".", 0, end)
    if dot < 0 or location.find("/", dot, end) >= 0:
        return ""
    found = location[dot + 1 : end]
    return found if found.islower() else found.lower()


def by_name(location: str, media_type: str | None = None) -> Reader | None:
    """The reader the document's name, else its media type, names; None when neither does."""
    reader = _BY_EXTENSION.get(extension(location))
    if reader is None and media_type:
        reader = _BY_MEDIA_TYPE.get(media_type.partition(";")[0].strip().lower())
    return reader


def choose(location: str, data: bytes, media_type: str | None = None) -> Reader:
    """The reader for a document: by name, by media type, by content; JSON when nothing
    says (its error then says why the document is unreadable)."""
    reader = by_name(location, media_type)
    if reader is not None:
        return reader
    head = data[:HEAD_BYTES]
    for candidate in _READERS:
        if candidate.sniff(head):
            return candidate
    return JSON_DOCUMENT


UTF8_BOM = b"\xef\xbb\xbf"


def whole_document(docs: Iterable[Any]) -> bool:
    """Whether what ``read`` returned is one whole document (the JSON reader's 1-tuple), not
    the values of a bulk file (a FeatureCollection's features, ndjson lines, parquet rows)."""
    return type(docs) is tuple and len(docs) == 1


def read(location: str, data: bytes, skip: Skip, media_type: str | None = None) -> Iterable[Any]:
    """The JSON values of one document, through the reader chosen for it. A UTF-8 byte order
    mark at its start is ignored (RFC 8259 §8.1 lets a parser; editors on Windows write one,
    and such a document was skipped as invalid JSON)."""
    if data[:3] == UTF8_BOM:
        data = bytes(data[3:])  # (a copy, only of such a document)
    reader = _BY_EXTENSION.get(extension(location)) or choose(location, data, media_type)
    return reader.read(data, location, skip)
