"""`stac-static-api export ROOT... -o FILE`: the loaded items as stac-geoparquet or ndjson, the
hand-off to DuckDB (`read_parquet`), pgstac (`pypgstac load items FILE.ndjson`) or another engine.

The items are the index's, in its order, as the server stores them (the JSON a client gets from
/collections/{c}/items/{id}, links as the loader made them absolute). They are taken from the
index a chunk at a time (CHUNK items as dicts in memory, not all of them):
- ndjson: one compact item per line (orjson), written as each chunk is made;
- parquet: stac-geoparquet's conversion, one chunk at a time (what its "ChunksToDisk" schema
  does, done here so that the order and null geometries survive): each chunk becomes Arrow and a
  temporary parquet file beside the output, the chunks' schemas are unified (a property that
  only later items have becomes a column of the whole file), then the chunk files, in order,
  are streamed into the output by stac-geoparquet's writer (GeoParquet metadata). Peak memory is
  about one chunk in Arrow and as dicts; the disk needs about twice the output's size while it
  runs. stac-geoparquet converts no null geometry: such an item goes in with a placeholder
  point that is then set to null in its chunk, so the file has a null in the geometry column
  (GeoParquet allows it; DuckDB reads it as NULL, and the server reads the item back with
  "geometry": null).

Which format: the output's suffix (.parquet/.geoparquet, .ndjson/.jsonl/.geojsonl), or --format.
"""

from __future__ import annotations

import itertools
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import orjson
import pyarrow as pa  # the `parquet` extra
import pyarrow.compute as pc
import pyarrow.dataset
from stac_geoparquet.arrow import parse_stac_items_to_arrow, to_parquet

from server.index import Index, exact_json
from server.index.served import with_base_bytes

log = logging.getLogger("stac_static_api")

CHUNK = 10_000
PARQUET_SUFFIXES = (".parquet", ".geoparquet", ".pq")
NDJSON_SUFFIXES = (".ndjson", ".jsonl", ".geojsonl")


class ExportError(ValueError):
    pass


def format_of(output: str, given: str | None = None) -> str:
    if given:
        return given
    lower = output.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        return "parquet"
    if lower.endswith(NDJSON_SUFFIXES):
        return "ndjson"
    raise ExportError(f"{output}: say --format parquet or ndjson (or end the name in .parquet or .ndjson)")


def _as_written(index: Index) -> Callable[[int], Any]:
    """Each item's JSON bytes as the catalog wrote them: the hrefs the API completes with its
    base URL per request (server.index.served: the sample's thumbnails) root-relative, as
    written (there is no base URL here)."""
    if index.served_hrefs:
        return lambda pos: with_base_bytes(index.json[pos], b"")
    return index.json.__getitem__


def item_chunks(index: Index, chunk: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    written = _as_written(index)
    for start in range(0, index.size, chunk):
        yield [exact_json.loads(written(pos)) for pos in range(start, min(start + chunk, index.size))]


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1  # parquet's integers
DOUBLE_EXACT = 2**53  # integers of at most this size are doubles exactly


def items_of(index: Index) -> Iterator[dict[str, Any]]:
    """The items for parquet, whose integers are signed 64 bits: an integer beyond (exact in
    the index and in ndjson, exact_json; 2**63 .. 2**64 - 1 included, which orjson reads as
    an unsigned int that Arrow refuses) goes in as a double, said in a warning, not silently.
    Only an item with a run of 19 digits can hold one (exact_json.has_long_digits)."""
    written, beyond = _as_written(index), 0
    for pos in range(index.size):
        data = written(pos)
        if not exact_json.has_long_digits(data):
            yield orjson.loads(data)
            continue
        found: list[int] = []
        yield exact_json.integers_outside(exact_json.exact_loads(data), INT64_MIN, INT64_MAX, float, found)
        beyond += bool(found)
    if beyond:
        log.warning("%d items hold integers beyond 64 bits: written to parquet as doubles (its integers are signed "
                    "64 bits; ndjson keeps them exact)", beyond)


def export(index: Index, output: str, fmt: str | None = None, chunk: int = CHUNK) -> int:
    """Write the index's items to output; the number written. The file appears whole or not
    at all (written beside it, then renamed)."""
    kind = format_of(output, fmt)
    if index.size == 0:
        raise ExportError("no items to export")
    folder = os.path.dirname(os.path.abspath(output))
    fd, partial = tempfile.mkstemp(prefix=".export-", suffix=os.path.splitext(output)[1], dir=folder)
    os.close(fd)
    try:
        if kind == "ndjson":
            with open(partial, "wb") as f:
                for items in item_chunks(index, chunk):
                    f.write(b"".join(exact_json.dumps(item) + b"\n" for item in items))
        elif kind == "parquet":
            write_parquet(items_of(index), partial, chunk, folder)
        else:
            raise ExportError(f"unknown format {kind!r}: parquet or ndjson")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)  # mkstemp made it private
        os.replace(partial, output)
        return index.size
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


# Stand in for a null geometry (and the bbox it lacks) while stac-geoparquet converts the item
# (it converts every geometry with shapely.geometry.shape); the row's are then set to null.
PLACEHOLDER = {"type": "Point", "coordinates": [0.0, 0.0]}
PLACEHOLDER_BBOX = [0.0, 0.0, 0.0, 0.0]


def write_parquet(items: Iterable[dict[str, Any]], output: str, chunk: int = CHUNK, workdir: str | None = None) -> int:
    """The items as one stac-geoparquet file, in order; how many were written."""
    logging.getLogger("stac_geoparquet").setLevel(logging.WARNING)  # its INFO lines speak of PgSTAC
    written = 0
    with tempfile.TemporaryDirectory(prefix=".export-chunks-", dir=workdir) as chunks:
        files: list[str] = []
        schema: pa.Schema | None = None
        source = iter(items)
        while batch_items := list(itertools.islice(source, chunk)):
            batch = _arrow_chunk(batch_items)
            schema = batch.schema if schema is None else pa.unify_schemas([schema, batch.schema],
                                                                           promote_options="permissive")
            files.append(os.path.join(chunks, f"{len(files):09d}.parquet"))
            to_parquet(pa.RecordBatchReader.from_batches(batch.schema, [batch]), output_path=files[-1])
            written += batch.num_rows
        if schema is None:
            raise ExportError("no items to export")
        batches = pyarrow.dataset.dataset(files, schema=schema, format="parquet").to_batches(batch_size=chunk)
        to_parquet(pa.RecordBatchReader.from_batches(schema, batches), output_path=output)
    return written


def _arrow_batch(items: list[dict[str, Any]]) -> pa.RecordBatch:
    return pa.Table.from_batches(list(parse_stac_items_to_arrow(items, schema="FullFile"))).combine_chunks().to_batches()[0]


def _arrow_chunk(items: list[dict[str, Any]]) -> pa.RecordBatch:
    """One chunk as stac-geoparquet's Arrow; null geometries stay null."""
    without = [i for i, item in enumerate(items) if item.get("geometry") is None]
    for i in without:  # (a bbox too: a chunk of items without any bbox is another error there)
        items[i] = {**items[i], "geometry": PLACEHOLDER, "bbox": PLACEHOLDER_BBOX}
    try:
        batch = _arrow_batch(items)
    except pa.ArrowInvalid as exc:
        if "exactly representable" not in str(exc):
            raise
        # A field holding doubles and integers beyond 2**53 in one chunk is a double column,
        # which Arrow refuses to fill with them inexactly: they go in as doubles, said so.
        found: list[int] = []
        items = [exact_json.integers_outside(item, -DOUBLE_EXACT, DOUBLE_EXACT, float, found) for item in items]
        log.warning("%d integers beyond 2**53 in fields that also hold doubles: written to parquet as doubles "
                    "(ndjson keeps them exact)", len(found))
        batch = _arrow_batch(items)
    if without:
        null = pa.array(np.isin(np.arange(batch.num_rows), without))
        for name in ("geometry", "bbox"):
            where = batch.schema.get_field_index(name)
            column = pc.if_else(null, pa.scalar(None, batch.column(where).type), batch.column(where))
            batch = batch.set_column(where, batch.schema.field(where), column)
    return batch
