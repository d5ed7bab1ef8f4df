"""stac-geoparquet in: items as STAC JSON dicts from one parquet file (a path or its bytes) or a
folder of them (hive-partitioned or not), in file order, one record batch at a time.

    read_batches(source, batch_size=8192) -> Iterator[list[dict]]   # the items of each record batch
    read_items(source) -> Iterator[dict]                              # the same, one by one
    is_parquet(head) -> bool                                          # b"PAR1", the format's magic

pyarrow reads and decodes the file (the `parquet` extra); the Arrow columns become dicts here,
column by column rather than row by row: each leaf column turns into a Python list in one call,
structs are zipped from their children's lists (or converted by pyarrow's to_pylist when they
hold no null and only JSON types), lists are cut from their values' list by offsets, absent
assets (null structs in a union schema) are dropped before they are converted, and geometries
go WKB -> shapely (vectorised) -> coordinate lists cut by the ragged offsets; an item's
``geometry`` is a ReadGeometry, which also carries its shapely geometry for the index builder
(which would otherwise read the coordinates back into shapely: ~3 us an item, issue 18); with
``assets_json`` (the loader's forked row-group readers), assets that are the same in every item
but for an http(s) href come as each item's JSON text (_assets_json), not as dicts; with
``json_only`` (the same readers: items only made servable and serialized) geometries'
coordinates come as JSON text, links servable would drop all are not converted, and a value
the same in every row of a batch is converted once (batch_items).

Measured (bench/parquet_read.py, bench/README.md): stac-geoparquet's own `stac_table_to_items`
and rustac's reader did 4,300 and 3,900-4,500 items/s on 100k items (row by row as_py(), and
serde through a whole-file ItemCollection; `rustac translate` to ndjson 5,900), this module
~45,000 with the garbage collector paused as the loader pauses it (~21 us of CPU per item,
~3x orjson's per ndjson line: every value becomes a Python object here, in C there). Building
each item's JSON text with Arrow compute kernels instead (to parse it with orjson) measured
slower still (~50 us per item: string concatenation kernels). The loader reads local parquet
files in a forked child while it indexes (forked_reader.read_bulk_forked).

The items are those the JSON gave, with the normalisations a columnar file cannot avoid:
- a null is an absent key (parquet has one schema per file: a key one item lacks is a null
  column value for it), except ``properties.datetime``, which STAC requires, and ``geometry``,
  which GeoJSON requires: they stay, null or not; ``links`` and ``assets`` are ``[]``/``{}``
  when null;
- timestamps (stac-geoparquet stores datetime, start/end_datetime, created, updated... as
  timestamp[us, UTC]) come back as RFC 3339 UTC with a ``Z`` and 0, 3, 6 or 9 fraction digits,
  the fewest that keep the value (rustac's AutoSi form): ``2021-03-13T16:51:53.205Z``,
  ``2021-03-13T16:51:53Z``; a JSON ``+00:00`` offset or ``.205000`` fraction is written so;
- numbers keep the column's type: an integer property in a column that other items made a
  double comes back as a float (equal in Python, ``10.0`` in JSON);
- the key order is the file's, not the JSON's.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import shapely
import shapely.geometry

from server.catalog.normalize import STRUCTURAL_RELS
from server.index.builder import ReadGeometry

PARQUET_MEDIA_TYPE = "application/vnd.apache.parquet"
MAGIC = b"PAR1"
DEFAULT_BATCH_SIZE = 8192

# Columns that are the item's own keys; every other column is a property (stac-geoparquet spec).
TOP_LEVEL = ("type", "stac_version", "stac_extensions", "id", "collection", "geometry", "bbox", "links", "assets")
# The hive partition value for a null (Spark's and pyarrow's spelling).
HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"

Source = str | os.PathLike[str] | bytes | bytearray | memoryview


class ParquetError(ValueError):
    """The source is not a readable parquet file, or not one of STAC items."""


def is_parquet(head: bytes) -> bool:
    """Whether a document's first bytes are parquet's (a file also ends in them)."""
    return bytes(head[:4]) == MAGIC


def read_items(source: Source, batch_size: int = DEFAULT_BATCH_SIZE) -> Iterator[dict[str, Any]]:
    """The items of a parquet file (path or bytes) or of a folder of them, in file order."""
    for batch in read_batches(source, batch_size):
        yield from batch


def read_batches(source: Source, batch_size: int = DEFAULT_BATCH_SIZE,
                 location: str | None = None, row_groups: list[int] | None = None,
                 threads: bool = True, assets_json: bool = False,
                 json_only: bool = False, rows: tuple[int, int] | None = None) -> Iterator[list[dict[str, Any]]]:
    """The items of each record batch, a list at a time: at most batch_size items in memory
    as dicts (plus the file's decoded row group, pyarrow's unit of reading). For bytes,
    `location` is where they came from: its `key=value` folders are hive partition values;
    ``row_groups``: only these row groups of them (row_group_rows); ``threads``: pyarrow may
    decode with its threads (not in a process of several that each decode row groups: under
    load they cost ~20% more CPU and several times the wall clock, issue 18); ``assets_json``:
    items' ``assets`` may be their JSON text (an orjson.Fragment, see _assets_json) when every
    asset href is an http(s) URL, for a caller that serves such hrefs as written;
    ``json_only``: the items are only made servable (normalize.servable) and serialized, as
    the index builder does (see batch_items); ``rows``: (first, end) of the rows read (bytes
    only), the others decoded and dropped: a row group shared by forked processes."""
    if isinstance(source, bytes | bytearray | memoryview):
        partition = hive_partition(location) if location else {}
        yield from _file_batches(pa.BufferReader(source), partition, batch_size, location or "<bytes>", row_groups,
                                 threads, assets_json, json_only, rows)
        return
    path = Path(source)
    if path.is_dir():
        for file, partition in _folder_files(path):
            yield from _file_batches(str(file), partition, batch_size, str(file), assets_json=assets_json,
                                     json_only=json_only)
    else:
        yield from _file_batches(str(path), {}, batch_size, str(path), assets_json=assets_json, json_only=json_only)


def row_group_rows(source: bytes | bytearray | memoryview, location: str = "<bytes>") -> list[int]:
    """The rows of each row group of a parquet file's bytes."""
    try:
        metadata = pq.ParquetFile(pa.BufferReader(source)).metadata
    except (pa.ArrowException, OSError) as exc:
        raise ParquetError(f"{location}: not a readable parquet file: {exc}") from exc
    _import_pandas_here()
    return [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)]


def _import_pandas_here() -> None:
    """Have pyarrow import pandas (when it is installed) in this process, now. pyarrow's
    pandas shim imports it the first time an array is converted to numpy (to_numpy,
    np.asarray: every batch here does), whether or not pandas is used; row_group_rows runs
    in the process that then forks the readers of a file's row groups (loader
    _index_parquet_forked), and without this each forked child imported pandas on its own:
    ~0.3 CPU-s each on a quiet machine, 20% of the children's samples at 100k under load
    (issue 18). After the first call this is a few microseconds. A process that reads a
    parquet file itself imports it anyway (the small files of a catalog are read there)."""
    pa.array([0], pa.int8()).to_numpy()


def hive_partition(location: str) -> dict[str, str | None]:
    """The hive partition values (`key=value` folders) in a file's path or URL."""
    partition: dict[str, str | None] = {}
    for part in location.split("?", 1)[0].split("/")[:-1]:
        key, sep, value = part.partition("=")
        if sep and key:
            value = unquote(value)
            partition[unquote(key)] = None if value == HIVE_NULL else value
    return partition


def _folder_files(folder: Path) -> list[tuple[Path, dict[str, str | None]]]:
    """Parquet files under folder in path order, each with its hive partition values
    (`key=value` folders). Hidden and `_`-prefixed entries are skipped (_SUCCESS, _metadata)
    as pyarrow's datasets do; other files are taken when they start with parquet's magic."""
    found: list[tuple[Path, dict[str, str | None]]] = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        here = Path(dirpath)
        partition: dict[str, str | None] = {}
        for part in here.relative_to(folder).parts:
            key, sep, value = part.partition("=")
            if sep:
                value = unquote(value)
                partition[unquote(key)] = None if value == HIVE_NULL else value
        for name in sorted(filenames):
            if name.startswith((".", "_")):
                continue
            file = here / name
            with open(file, "rb") as f:
                if not is_parquet(f.read(4)):
                    continue
            found.append((file, partition))
    found.sort(key=lambda entry: entry[0].parts)
    return found


def _file_batches(where: Any, partition: dict[str, str | None], batch_size: int,
                  name: str, row_groups: list[int] | None = None, threads: bool = True,
                  assets_json: bool = False, json_only: bool = False,
                  rows: tuple[int, int] | None = None) -> Iterator[list[dict[str, Any]]]:
    try:
        file = pq.ParquetFile(where)
    except (pa.ArrowException, OSError) as exc:
        raise ParquetError(f"{name}: not a readable parquet file: {exc}") from exc
    names = file.schema_arrow.names
    if "id" not in names:
        raise ParquetError(f"{name}: no `id` column: not stac-geoparquet")
    extra = {key: value for key, value in partition.items() if key not in names}
    first, end = rows if rows is not None else (0, 0)
    seen = 0  # rows of the batches before this one
    try:
        for batch in file.iter_batches(batch_size=batch_size, row_groups=row_groups, use_threads=threads):
            if rows is not None:
                at, seen = seen, seen + batch.num_rows
                if seen <= first:
                    continue
                if at >= end:
                    break
                batch = batch.slice(max(first - at, 0), min(end, seen) - max(first, at))
            for key, value in extra.items():
                batch = batch.append_column(key, pa.array([value] * batch.num_rows, pa.string()))
            yield batch_items(batch, assets_json, json_only)
    except pa.ArrowException as exc:
        raise ParquetError(f"{name}: {exc}") from exc


def batch_items(batch: pa.RecordBatch, assets_json: bool = False, json_only: bool = False) -> list[dict[str, Any]]:
    """One record batch of stac-geoparquet as STAC item dicts (``assets_json``: read_batches).
    ``json_only`` (read_batches): for a caller that only makes the items servable
    (normalize.servable) and serializes them, as the index builder does (the loader's forked
    row-group readers): each geometry's ``coordinates`` is its JSON text (an orjson.Fragment,
    _coordinates_text), not lists of floats; ``links`` is absent in a batch where every link
    has a rel servable drops (_links_dropped); a string, list or struct column whose value is
    the same in every row is converted once and that value shared by the items (_constant).
    The serialized items are the same bytes (tests/test_parquet.py)."""
    n = batch.num_rows
    columns = dict(zip(batch.schema.names, batch.columns))

    def convert(name: str, column: pa.Array | pa.ChunkedArray) -> list[Any]:
        if json_only:
            shared = _constant(column, name, n)
            if shared is not None:
                return shared
        return _values(column, name, as_text=json_only)

    props = [(name, convert(name, column)) for name, column in columns.items() if name not in TOP_LEVEL]
    if "datetime" not in columns:
        props.append(("datetime", [None] * n))
    properties = _rows(n, props, keep=("datetime",))

    def top(name: str) -> list[Any] | None:
        column = columns.get(name)
        if column is None or (json_only and name == "links" and _links_dropped(column)):
            return None
        return convert(name, column)

    geometry = top("geometry") or [None] * n
    links = top("links") or [None] * n
    assets = (assets_json and "assets" in columns and _assets_json(columns["assets"])) or top("assets") or [None] * n
    items: list[dict[str, Any]] = [
        {"type": "Feature", "geometry": g, "properties": p, "links": lk if lk is not None else [],
         "assets": a if a is not None else {}}
        for g, p, lk, a in zip(geometry, properties, links, assets)
    ]
    for name in ("type", "stac_version", "stac_extensions", "id", "collection", "bbox"):
        values = top(name)
        if values is None:
            continue
        for item, value in zip(items, values):
            if value is not None:
                item[name] = value
    return items


def _one_chunk(array: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A column's chunks as one array (a row group's column may come in several)."""
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _constant(array: pa.Array | pa.ChunkedArray, name: str, n: int) -> list[Any] | None:
    """``[value] * n`` when a string, list, struct or timestamp column holds the same value in
    each of its n rows (a batch's collection, stac_extensions, platform, created...): converted
    once, the one Python value shared by every item, for a caller that only serializes them
    (batch_items' json_only: nothing changes a value in place there). None otherwise, or for
    a null, or a -0.0 inside (Arrow's equality takes it for 0.0; JSON does not)."""
    if n < 2:
        return None
    array = _one_chunk(array)
    kind = array.type
    if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_list(kind)
            or pa.types.is_large_list(kind) or pa.types.is_struct(kind) or pa.types.is_timestamp(kind)) \
            or array.null_count:
        return None
    first = array.slice(0, 1)
    if pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_timestamp(kind):
        if len(array.unique()) != 1:  # a hash pass, no copy of the column
            return None
    elif not array.equals(first.take(pa.array(np.zeros(n, np.int64)))) or _negative_zero(array):
        return None
    return _values(first, name) * n


def _links_dropped(array: pa.Array | pa.ChunkedArray) -> bool:
    """Whether every link in a ``links`` column has a rel that normalize.servable drops (a
    static root, parent, collection...: STRUCTURAL_RELS), so that no item keeps one: then
    they need not become dicts (~1 us an item; the generated catalogs' and stac-geoparquet's
    usual links)."""
    array = _one_chunk(array)
    kind = array.type
    if not (pa.types.is_list(kind) or pa.types.is_large_list(kind)) or not pa.types.is_struct(kind.value_type):
        return False
    links = array.flatten()  # the links of the rows (a null row's: none)
    at = links.type.get_field_index("rel")
    if at < 0:
        return len(links) == 0
    rel = links.field(at)
    if links.null_count or rel.null_count or not (pa.types.is_string(rel.type) or pa.types.is_large_string(rel.type)):
        return False
    return set(rel.unique().to_pylist()) <= STRUCTURAL_RELS


def _rows(n: int, fields: list[tuple[str, list[Any]]], keep: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """Dicts zipped from columns of values, their keys in the columns' order whatever the batch;
    a None is an absent key unless the name is in keep. (Keys of the columns without a None
    first, then the others', made an item's JSON depend on its batch: a property or asset that
    a few items lack was last when the file was read at once and in its place in a row group
    where every item has it, so an item's bytes and ETag followed the core count.) The leading
    columns without a None are zipped at once (all of them, in the common case)."""
    full = [name in keep or None not in values for name, values in fields]
    lead = full.index(False) if False in full else len(fields)
    if lead:
        names = tuple(name for name, _ in fields[:lead])
        rows = [dict(zip(names, row)) for row in zip(*(values for _, values in fields[:lead]))]
    else:
        rows = [{} for _ in range(n)]
    for (name, values), every in zip(fields[lead:], full[lead:]):
        if every:
            for row, value in zip(rows, values):
                row[name] = value
        else:
            for row, value in zip(rows, values):
                if value is not None:
                    row[name] = value
    return rows


def _values(array: pa.Array | pa.ChunkedArray, name: str = "", as_text: bool = False) -> list[Any]:
    """An Arrow array as a list of JSON values (None for nulls); ``as_text``: a ``geometry``
    column's coordinates as JSON text (batch_items' json_only)."""
    array = _one_chunk(array)
    if isinstance(array, pa.ExtensionArray):
        array = array.storage
    if array.null_count == len(array):  # e.g. a batch's start_datetime when its items have a datetime
        return [None] * len(array)
    kind = array.type
    if name in ("geometry", "proj:geometry") and (pa.types.is_binary(kind) or pa.types.is_large_binary(kind)):
        return _geojson(array, keep_shapes=name == "geometry", as_text=as_text and name == "geometry")
    if pa.types.is_dictionary(kind):
        return _values(array.dictionary_decode(), name)
    if pa.types.is_struct(kind):
        return _structs(array, name)
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _lists(array)
    if pa.types.is_timestamp(kind):
        return _timestamps(array)
    if array.null_count == 0 and (pa.types.is_floating(kind) or pa.types.is_integer(kind) or pa.types.is_boolean(kind)):
        return array.to_numpy(zero_copy_only=False).tolist()
    return array.to_pylist()


def _structs(array: pa.StructArray, name: str) -> list[Any]:
    n = len(array)
    if array.null_count == n:
        return [None] * n
    valid: np.ndarray | None = None
    if array.null_count:  # e.g. an asset most items lack: convert only the items that have it
        valid = np.flatnonzero(array.is_valid().to_numpy(zero_copy_only=False))
        array = array.take(pa.array(valid))
    if name == "bbox" and array.type.num_fields in (4, 6):
        rows: list[Any] = np.column_stack([child.to_numpy(zero_copy_only=False) for child in array.flatten()]).tolist()
    elif _plain(array):  # pyarrow's own conversion, when it gives what the code below would
        rows = array.to_pylist()
    else:
        fields = [(array.type.field(i).name, _values(child, array.type.field(i).name))
                  for i, child in enumerate(array.flatten())]
        rows = _rows(len(array), fields)
    if valid is None:
        return rows
    out: list[Any] = [None] * n
    for i, row in zip(valid.tolist(), rows):
        out[i] = row
    return out


# hrefs served as written unless URL mappings are set (public.PublicHrefs.as_written); checked in
# Python, not with pyarrow.compute: importing that costs every reader ~8 MiB of RSS
_WEB = ("https://", "http://")


def _assets_json(array: pa.Array | pa.ChunkedArray) -> list[Any] | None:
    """Each item's ``assets`` as its JSON text (an orjson.Fragment: the bytes main's dicts
    serialize to), or None when this does not apply. Applies when each asset (a struct with a
    string ``href``) is, in every item that has it, the same but for its href, which is an
    http(s) URL: the asset's JSON is then a template around the href, made from one item's
    asset converted as every item's would be (_values), the assets in the struct's order (as
    _rows gives them). ~100 Python objects an item fewer: the assets of the 1M
    bench's s2 file took ~30 us an item as dicts under load, ~5 this way (issue 18). Not
    applied when a float in them is -0.0 (Arrow compares it equal to 0.0; JSON does not)."""
    array = _one_chunk(array)
    if not pa.types.is_struct(array.type) or array.null_count:
        return None
    n = len(array)
    dense: list[list[bytes]] = []  # each asset every item has: its hrefs' JSON texts, unquoted
    arounds: list[tuple[bytes, bytes]] = []  # and its JSON text before and after them
    templates: list[bytes] = []  # the same for bytes formatting (%s)
    sparse: list[list[bytes | None]] = []
    order: list[tuple[bool, int]] = []  # the assets in the struct's order: (sparse, which)
    for i, column in enumerate(array.flatten()):
        key, kind = array.type.field(i).name, column.type
        if not pa.types.is_struct(kind) or kind.get_field_index("href") < 0:
            return None
        if column.null_count == n:
            continue  # no item has it
        valid = np.flatnonzero(column.is_valid().to_numpy(zero_copy_only=False)) if column.null_count else None
        present = column if valid is None else column.take(pa.array(valid))
        fields = present.flatten()
        at = kind.get_field_index("href")
        href = fields[at]
        if not pa.types.is_string(href.type) or href.null_count:
            return None
        hrefs: list[str] = href.to_pylist()
        if not all(h.startswith(_WEB) for h in hrefs):
            return None
        others = [field for j, field in enumerate(fields) if j != at]
        if others:
            rest = pa.StructArray.from_arrays(others, names=[kind.field(j).name for j in range(kind.num_fields) if j != at])
            if not rest.equals(rest.take(pa.array(np.zeros(len(rest), np.int64)))) or _negative_zero(rest):
                return None
        first = _values(present.slice(0, 1), key)[0]
        first["href"] = "\x00"
        around = orjson.dumps(first).split(b'"\\u0000"')
        if len(around) != 2:
            return None
        before, after = orjson.dumps(key) + b":" + around[0] + b'"', b'"' + around[1]
        # every href's JSON text from one orjson call: a string's own quotes are escaped in
        # it, so '","' is only ever where one ends and the next starts
        texts = orjson.dumps(hrefs)[2:-2].split(b'","')
        order.append((valid is not None, len(sparse) if valid is not None else len(dense)))
        if valid is None:
            dense.append(texts)
            arounds.append((before, after))
            templates.append(before.replace(b"%", b"%%") + b"%s" + after.replace(b"%", b"%%"))
        else:
            spread: list[bytes | None] = [None] * n
            for row, text in zip(valid.tolist(), texts):
                spread[row] = before + text + after
            sparse.append(spread)
    if not sparse:  # each item's text one bytes formatting of the hrefs into the assets' template
        template = b"{" + b",".join(templates) + b"}"
        return [orjson.Fragment(template % row) for row in zip(*dense)] if dense else [orjson.Fragment(b"{}")] * n
    dense = [[before + text + after for text in texts] for texts, (before, after) in zip(dense, arounds)]
    rows = zip(*((sparse if is_sparse else dense)[k] for is_sparse, k in order))
    return [orjson.Fragment(b"{" + b",".join(part for part in row if part is not None) + b"}") for row in rows]


def _negative_zero(array: pa.Array) -> bool:
    """Whether a float anywhere in the array is -0.0."""
    kind = array.type
    if pa.types.is_struct(kind):
        return any(_negative_zero(child) for child in array.flatten())
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _negative_zero(array.flatten())
    if pa.types.is_floating(kind):
        values = array.to_numpy(zero_copy_only=False)
        return bool(np.any((values == 0) & np.signbit(values)))
    return False


def _plain(array: pa.Array) -> bool:
    """Whether ``to_pylist()`` gives the JSON values themselves: only strings, numbers,
    booleans, lists and structs, and no null anywhere inside (a null is an absent key here,
    a None there)."""
    if array.null_count:
        return False
    kind = array.type
    if pa.types.is_struct(kind):
        return all(_plain(child) for child in array.flatten())
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        offsets = array.offsets
        return _plain(array.values.slice(offsets[0].as_py(), offsets[-1].as_py() - offsets[0].as_py()))
    return (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_boolean(kind)
            or pa.types.is_integer(kind) or pa.types.is_floating(kind))


def _object_array(values: list[Any]) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        out[i] = value
    return out


def _lists(array: pa.Array) -> list[Any]:
    n = len(array)
    if pa.types.is_fixed_size_list(array.type):
        size = array.type.list_size
        offsets = np.arange(n + 1, dtype=np.int64) * size
        values = array.flatten()  # a fixed-size list's flatten includes null slots' values
    else:
        offsets = array.offsets.to_numpy().astype(np.int64)
        values = array.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
        offsets -= offsets[0]
    flat = _values(values)
    starts, ends = offsets[:-1].tolist(), offsets[1:].tolist()
    lists: list[Any] = [flat[a:b] for a, b in zip(starts, ends)]
    if array.null_count:
        for i in np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)).tolist():
            lists[i] = None
    return lists


_FRACTION = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}


def _timestamps(array: pa.TimestampArray) -> list[Any]:
    """RFC 3339 UTC strings with the fewest of 0, 3, 6, 9 fraction digits that keep the value."""
    unit = array.type.unit
    ticks = array.cast(pa.int64()).fill_null(0).to_numpy()
    stamps = ticks.astype(f"datetime64[{unit}]")
    out = np.empty(len(ticks), dtype=object)
    per_second = _FRACTION[unit]
    remainder = ticks % per_second
    todo = np.ones(len(ticks), dtype=bool)
    for digits_unit, step in (("s", 1), ("ms", 1_000), ("us", 1_000_000), ("ns", 1_000_000_000)):
        if step > per_second:
            break
        scale = per_second // step
        pick = todo & (remainder % scale == 0)
        if pick.any():  # numpy writes the Z (not np.char.add: a pass over numpy's unicode arrays)
            out[pick] = np.datetime_as_string(stamps[pick], unit=digits_unit, timezone="UTC")  # type: ignore[call-overload]
            todo &= ~pick
    values: list[Any] = out.tolist()
    if array.null_count:
        for i in np.flatnonzero(array.is_null().to_numpy(zero_copy_only=False)).tolist():
            values[i] = None
    return values


def _geojson(array: pa.Array, keep_shapes: bool = False, as_text: bool = False) -> list[Any]:
    """WKB to GeoJSON geometry dicts, vectorised per geometry type (and dimension);
    ``keep_shapes``: each a ReadGeometry holding its shapely geometry, for the index builder
    (an item's footprint, not read back from the coordinates there); ``as_text``: with the
    coordinates as JSON text (_coordinates_text)."""
    geoms = shapely.from_wkb(array.to_numpy(zero_copy_only=False))
    out = np.full(len(geoms), None, dtype=object)
    kinds = shapely.get_type_id(geoms)
    with_z = shapely.has_z(geoms)
    for kind in np.unique(kinds).tolist():
        if kind < 0:  # missing
            continue
        for z in (False, True):
            pick = np.flatnonzero((kinds == kind) & (with_z == z))
            if len(pick) == 0:
                continue
            if kind in _RAGGED_TYPES:
                out[pick] = _object_array(_ragged(geoms[pick], z, keep_shapes, as_text))
            else:  # GeometryCollection, LinearRing: rare, one at a time
                out[pick] = _object_array([_mapping(g, keep_shapes) for g in geoms[pick]])
    return out.tolist()


_RAGGED_TYPES = {0: "Point", 1: "LineString", 3: "Polygon", 4: "MultiPoint", 5: "MultiLineString", 6: "MultiPolygon"}


def _ragged(geoms: np.ndarray, z: bool, keep_shapes: bool = False, as_text: bool = False) -> list[dict[str, Any]]:
    """Geometries of one type as GeoJSON: coordinates cut out of one list by the offsets
    (``as_text``: out of their JSON text, _coordinates_text)."""
    kind, coords, offsets = shapely.to_ragged_array(geoms, include_z=z)
    name = _RAGGED_TYPES[int(shapely.get_type_id(geoms[0]))]
    nested: list[Any]
    if as_text:
        nested = _coordinates_text(coords, offsets)
    else:
        nested = coords.tolist()
        for level in offsets:
            bounds = level.tolist()
            nested = [nested[a:b] for a, b in zip(bounds[:-1], bounds[1:])]
    if not keep_shapes:
        return [{"type": name, "coordinates": c} for c in nested]
    out: list[dict[str, Any]] = []
    for c, shape in zip(nested, geoms.tolist()):
        geometry = ReadGeometry(type=name, coordinates=c)
        geometry.shape = shape
        out.append(geometry)
    return out


def _coordinates_text(coords: np.ndarray, offsets: tuple[np.ndarray, ...]) -> list[orjson.Fragment]:
    """Each geometry's ``coordinates`` as JSON text (what orjson writes for the lists _ragged
    makes: orjson writes a float64 array's numbers as it writes Python floats, NaN as null),
    without a Python float or list per position (~2 us an item for a footprint of 8 vertices,
    issue 18): all positions written by orjson at once, each position's text found by its
    brackets (numbers have none), a ring's positions one slice of that text, the levels
    above joined by the offsets."""
    text = orjson.dumps(np.ascontiguousarray(coords, dtype=np.float64), option=orjson.OPT_SERIALIZE_NUMPY)
    raw = np.frombuffer(text, dtype=np.uint8)
    starts = np.flatnonzero(raw == ord("["))[1:].tolist()  # each position's "[" (not the whole array's)
    ends = (np.flatnonzero(raw == ord("]"))[:-1] + 1).tolist()  # just past each position's "]"
    if not offsets:  # points: a position each
        return [orjson.Fragment(text[a:b]) for a, b in zip(starts, ends)]
    bounds = offsets[0].tolist()
    parts = [b"[" + text[starts[a]:ends[b - 1]] + b"]" if b > a else b"[]" for a, b in zip(bounds[:-1], bounds[1:])]
    for level in offsets[1:]:
        bounds = level.tolist()
        parts = [b"[" + b",".join(parts[a:b]) + b"]" for a, b in zip(bounds[:-1], bounds[1:])]
    return [orjson.Fragment(part) for part in parts]


def _mapping(geom: Any, keep_shapes: bool = False) -> dict[str, Any]:
    mapping = _lists_of(shapely.geometry.mapping(geom))
    if not keep_shapes:
        return mapping
    geometry = ReadGeometry(mapping)
    geometry.shape = geom
    return geometry


def _lists_of(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_lists_of(v) for v in value]
    if isinstance(value, dict):
        return {k: _lists_of(v) for k, v in value.items()}
    return value
