"""A catalog of K x the items of a generated ndjson or parquet layout, without K x the disk.

    python bench/replicate.py SRC OUT --copies 10

SRC is a folder from bench/generate.py (--layout ndjson or parquet). OUT gets a root
catalog.json linking K copies of every collection, each copy with its own id
(``<id>-c<k>``) and its items file hard-linked from SRC (the same bytes, no new disk). The
items name their original collection, which no copy has, so the loader serves each under the
copy that links it (an item `collection` not loaded: the nearest collection above): K x N items,
unique per collection. ndjson copies link their file with an `item` link typed
application/x-ndjson (read within STAC_STATIC_MAX_DOCUMENT_BYTES: raise it to the file's size);
parquet copies name it as their `geoparquet-items` asset, as generate.py does.

``--lean``: every asset but the thumbnail dropped (1.2 KB a generated item instead of 2.4: the
10M snapshot fits the disk; the properties, geometry and links, all that is indexed, are
unchanged). ndjson copies share one rewritten file. parquet copies each get a file of their own
(~150 MB a million lean items), written a row group at a time with pyarrow (same row groups, same
schema metadata, the `assets` struct cut to its `thumbnail` field), whose items name the copy as
their collection and carry ids of their own (``<id>-c<k>``): 10M unique ids, as a real archive.

``--as-roots`` (ndjson only): the layout of generate.py's ndjson instead, to be given as ROOTs
(`index OUT/*/collection.json OUT/*/items.ndjson`): each copy gets a file of its own (K x the
disk) whose items name the copy, and no `item` link; this is the layout the forked indexing
of ndjson lines applies to (a file linked by an `item` link is read as item documents are).

``--distinct-times``: copy k's times (`datetime`, `start_datetime`, `end_datetime`, `created`,
`updated`) shifted k seconds later, still RFC 3339 (the same spelling: fraction and offset kept),
so the copies' datetimes are distinct as a real archive's (a datetime per scene) and not the
source's repeated: the build's vocabularies are then as large as they would be (issue 18). Each
copy then gets a file of its own (copy 0 is the source's, unshifted): ndjson rewritten a line at
a time, parquet a row group at a time (its timestamp columns plus k seconds; without --lean,
nothing else changed).

10M items for the issue-18 bench from the 1M layouts: 2.2 GB of ndjson or 0.3 GB of parquet
on disk instead of 22 GB / 3 GB (the snapshot itself is ~22 GB).

    python bench/replicate.py /tmp/i1m/m1/parquet /tmp/scale10m/p10m --copies 10 --lean   # 10M lean parquet, ~1.6 GB, ~2 min
    python bench/replicate.py /tmp/i1m/m1/ndjson /tmp/X/n10m --copies 10 --lean --as-roots --distinct-times
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import json
import os
import re

TIME_KEYS = ("datetime", "start_datetime", "end_datetime", "created", "updated")
# a time member of an ndjson line: its key, then the date, separator and time of day (a fraction
# and an offset after it are kept as they are: the instant moves by whole seconds)
_TIME_MEMBER = re.compile(rb'"(%s)":"(\d{4}-\d{2}-\d{2})([Tt ])(\d{2}:\d{2}:\d{2})' % "|".join(TIME_KEYS).encode())


def shifted_times(data: bytes, seconds: int) -> bytes:
    """ndjson lines with every time member (TIME_KEYS, as a JSON member anywhere in an item)
    ``seconds`` later; one that is no date (a February 30) or would leave the years 1-9999 kept."""
    if not seconds:
        return data
    delta = dt.timedelta(seconds=seconds)

    def shift(match: re.Match[bytes]) -> bytes:
        try:
            moment = dt.datetime.fromisoformat(f"{match[2].decode()}T{match[4].decode()}") + delta
        except (ValueError, OverflowError):
            return match[0]
        return b'"%s":"%s%s%s' % (match[1], moment.date().isoformat().encode(), match[3], moment.time().isoformat().encode())

    return _TIME_MEMBER.sub(shift, data)


def _parquet_copy(source: str, target: str, collection: str | None, suffix: str | None, lean: bool, seconds: int) -> None:
    """SOURCE's items as TARGET, a row group at a time: ``lean``: assets cut to the thumbnail;
    ``collection``: their collection; ``suffix``: added to their ids; ``seconds``: added to
    their timestamp columns (TIME_KEYS)."""
    import pyarrow as pa  # only this layout needs pyarrow (the server's `parquet` extra)
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    reader = pq.ParquetFile(source)
    schema = reader.schema_arrow
    assets_at = schema.get_field_index("assets")
    if lean:
        assets_type = schema.field(assets_at).type
        thumb = assets_type.get_field_index("thumbnail")
        lean_type = pa.struct([assets_type.field(thumb)])
        schema = schema.set(assets_at, schema.field(assets_at).with_type(lean_type))
    times = [name for name in TIME_KEYS if name in schema.names and pa.types.is_timestamp(schema.field(name).type)]
    with pq.ParquetWriter(target + ".part", schema) as writer:
        for group in range(reader.num_row_groups):
            table = reader.read_row_group(group)
            if lean:
                assets = table.column("assets").combine_chunks()
                cut = pa.StructArray.from_arrays([assets.field(thumb)], fields=[assets_type.field(thumb)], mask=assets.is_null())
                table = table.set_column(assets_at, schema.field(assets_at), cut)
            if suffix is not None:
                at = table.schema.get_field_index("id")
                table = table.set_column(at, table.schema.field(at), pc.binary_join_element_wise(table.column("id"), suffix, ""))
            if collection is not None:
                at = table.schema.get_field_index("collection")
                table = table.set_column(at, table.schema.field(at), pa.array([collection] * table.num_rows, pa.string()))
            for name in times if seconds else []:
                at = table.schema.get_field_index(name)
                kind = table.schema.field(at).type
                later = pc.add(table.column(name), pa.scalar(dt.timedelta(seconds=seconds), pa.duration(kind.unit)))
                table = table.set_column(at, table.schema.field(at), later.cast(kind))
            writer.write_table(table.cast(schema) if table.schema != schema else table, row_group_size=table.num_rows)
    os.replace(target + ".part", target)


def _child_order(src: str) -> dict[str, int]:
    """Folder name -> position among SRC/catalog.json's child links (empty without one)."""
    try:
        with open(os.path.join(src, "catalog.json")) as f:
            links = json.load(f).get("links", [])
    except OSError:
        return {}
    folders = [os.path.basename(os.path.dirname(link["href"])) for link in links if link.get("rel") == "child"]
    return {folder: k for k, folder in enumerate(folders)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src")
    parser.add_argument("out")
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--lean", action="store_true",
                        help="drop every asset but the thumbnail (parquet: a file per copy, ids and collection its own)")
    parser.add_argument("--as-roots", action="store_true",
                        help="ndjson: a file per copy naming the copy, no item link (index */collection.json */items.ndjson)")
    parser.add_argument("--distinct-times", action="store_true",
                        help="copy k's datetime/start/end/created/updated k seconds later (a file per copy)")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    children = []
    for path in sorted(glob.glob(os.path.join(args.src, "*", "collection.json"))):
        folder = os.path.dirname(path)
        doc = json.load(open(path))
        items = [name for name in ("items.ndjson", "items.parquet") if os.path.exists(os.path.join(folder, name))]
        if not items:
            continue
        source = os.path.join(folder, items[0])
        if args.lean and items[0] == "items.ndjson":
            source = os.path.join(args.out, f".lean-{doc['id']}.ndjson")
            with open(os.path.join(folder, items[0]), "rb") as f, open(source, "wb") as out:
                for line in f:
                    item = json.loads(line)
                    item["assets"] = {k: v for k, v in item.get("assets", {}).items() if k == "thumbnail"}
                    out.write(json.dumps(item, separators=(",", ":")).encode() + b"\n")
        for k in range(args.copies):
            cid = f"{doc['id']}-c{k}"
            target = os.path.join(args.out, cid)
            os.makedirs(target, exist_ok=True)
            as_roots = args.as_roots and items[0] == "items.ndjson"
            seconds = k if args.distinct_times else 0
            if as_roots or (seconds and items[0] == "items.ndjson"):
                with open(source, "rb") as f, open(os.path.join(target, items[0]), "wb") as out:
                    for line in f:  # (a line at a time: the 1M source is ~2 GB)
                        if as_roots:
                            line = line.replace(b'"collection":"%s"' % doc["id"].encode(), b'"collection":"%s"' % cid.encode())
                        out.write(shifted_times(line, seconds))
            elif items[0] == "items.parquet" and (args.lean or seconds):
                _parquet_copy(source, os.path.join(target, items[0]), cid if args.lean else None,
                              f"-c{k}" if args.lean else None, args.lean, seconds)
            elif not os.path.exists(os.path.join(target, items[0])):
                os.link(source, os.path.join(target, items[0]))
            copy = {**doc, "id": cid, "title": f"{doc.get('title', cid)} (copy {k})"}
            copy["links"] = [link for link in doc.get("links", []) if link.get("rel") not in ("item", "self")]
            if items[0] == "items.ndjson" and not as_roots:
                copy["links"].append({"rel": "item", "href": "./items.ndjson", "type": "application/x-ndjson"})
            with open(os.path.join(target, "collection.json"), "w") as f:
                json.dump(copy, f)
            children.append({"rel": "child", "href": f"./{cid}/collection.json", "type": "application/json"})
    root = {"type": "Catalog", "stac_version": "1.0.0", "id": "replicated", "description": f"{args.copies} copies of {args.src}",
            "links": [{"rel": "root", "href": "./catalog.json", "type": "application/json"}, *children]}
    # the copies in the order of SRC's catalog.json children (generate.py lists the large
    # collections first): the loader forks its indexing of parquet files only up to the first
    # small one in that order, the rest go through one process (bench/README, branch scale10m)
    order = _child_order(args.src)
    children.sort(key=lambda link: order.get(link["href"].split("/")[1].rsplit("-c", 1)[0], len(order)))
    with open(os.path.join(args.out, "catalog.json"), "w") as f:
        json.dump(root, f)
    print(f"{len(children)} collections in {args.out}")


if __name__ == "__main__":
    main()
