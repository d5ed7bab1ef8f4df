"""`stac-static-api export ROOT... -o FILE`: the loaded items as stac-geoparquet or ndjson, the
hand-off to DuckDB (`read_parquet`), pgstac (`pypgstac load items FILE.ndjson`) or another engine.

The items are the index's, in its order, as the server stores them (the JSON a client gets from
/collections/{c}/items/{id}, links as the loader made them absolute). They are taken from the
index a chunk at a time (CHUNK items as dicts in memory, not all of them):
- ndjson: one compact item per line (orjson), written as each chunk is made;
- parquet: stac-geoparquet's writer with its "ChunksToDisk" schema, which converts each chunk to
  Arrow and writes it to a temporary parquet file beside the output, unifies the chunks' schemas
  (a property that only later items have becomes a column of the whole file), then streams the
  chunk files into the output. Peak memory is about one chunk in Arrow and as dicts; the disk
  needs about twice the output's size while it runs.

Which format: the output's suffix (.parquet/.geoparquet, .ndjson/.jsonl/.geojsonl), or --format.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import orjson
from stac_geoparquet.arrow import parse_stac_items_to_parquet  # the `parquet` extra

from server.index import Index

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


def item_chunks(index: Index, chunk: int = CHUNK) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, index.size, chunk):
        yield [index.item(pos) for pos in range(start, min(start + chunk, index.size))]


def items_of(index: Index, chunk: int = CHUNK) -> Iterator[dict[str, Any]]:
    for items in item_chunks(index, chunk):
        yield from items


def export(index: Index, output: str, fmt: str | None = None, chunk: int = CHUNK) -> int:
    """Write the index's items to output; the number written. The file appears whole or not
    at all (written beside it, then renamed)."""
    kind = format_of(output, fmt)
    without = [0]
    if index.size == 0:
        raise ExportError("no items to export")
    folder = os.path.dirname(os.path.abspath(output))
    fd, partial = tempfile.mkstemp(prefix=".export-", suffix=os.path.splitext(output)[1], dir=folder)
    os.close(fd)
    try:
        if kind == "ndjson":
            with open(partial, "wb") as f:
                for items in item_chunks(index, chunk):
                    f.write(b"".join(orjson.dumps(item) + b"\n" for item in items))
        elif kind == "parquet":
            def located() -> Iterator[dict[str, Any]]:
                for item in items_of(index, chunk):
                    if item.get("geometry") is None:  # stac-geoparquet's writer takes no null geometry
                        without[0] += 1
                        continue
                    yield item

            write_parquet(located(), partial, chunk, folder)
            if without[0]:
                log.warning("%d items without geometry left out: stac-geoparquet's writer cannot write them", without[0])
        else:
            raise ExportError(f"unknown format {kind!r}: parquet or ndjson")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(partial, 0o666 & ~umask)  # mkstemp made it private
        os.replace(partial, output)
        return index.size - without[0] if kind == "parquet" else index.size
    finally:
        if os.path.exists(partial):
            os.unlink(partial)


def write_parquet(items: Iterator[dict[str, Any]], output: str, chunk: int = CHUNK, workdir: str | None = None) -> None:
    logging.getLogger("stac_geoparquet").setLevel(logging.WARNING)  # its INFO lines speak of PgSTAC
    with tempfile.TemporaryDirectory(prefix=".export-chunks-", dir=workdir) as chunks:
        parse_stac_items_to_parquet(items, output_path=output, chunk_size=chunk, schema="ChunksToDisk", tmpdir=chunks)
