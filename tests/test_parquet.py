"""stac-geoparquet in (server/catalog/parquet.py) and out (`export`): the items read back from
parquet are the items of the JSON, up to the normalisations the module's docstring lists."""

from __future__ import annotations

import copy
import datetime as dt
import os
import subprocess
import sys
from typing import Any

import numpy as np
import orjson
import pyarrow.parquet as pq
from stac_geoparquet.arrow import parse_stac_items_to_parquet

from server.catalog.configured import load_options
from server.catalog.loader import LoadOptions, load_catalogs
from server.catalog.normalize import servable
from server.catalog.parquet import is_parquet, read_batches, read_items
from server.catalog.public import PublicHrefs
from server.index.builder import ReadGeometry
from server.runtime.cli import main
from server.runtime.export import write_parquet
from server.sample import SAMPLE_ROOT
from server.settings import Settings

TIME_KEYS = ("datetime", "start_datetime", "end_datetime", "created", "updated")


def autosi(value: str) -> str:
    """RFC 3339 as the reader writes it: UTC, Z, 0/3/6 fraction digits."""
    t = dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond % 1_000_000 == 0:
        return text + "Z"
    if t.microsecond % 1000 == 0:
        return f"{text}.{t.microsecond // 1000:03d}Z"
    return f"{text}.{t.microsecond:06d}Z"


def normalised(item: dict[str, Any]) -> dict[str, Any]:
    """The JSON item as parquet can give it back: nulls are absent keys (but datetime and
    geometry), times in one form."""
    def drop_nulls(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: drop_nulls(v) for k, v in value.items() if v is not None}
        if isinstance(value, list):
            return [drop_nulls(v) for v in value]
        return value

    out = copy.deepcopy(item)
    props = out["properties"]
    datetime = props.get("datetime")
    out = drop_nulls(out)
    out["properties"]["datetime"] = datetime
    out["geometry"] = item["geometry"]  # a GeoJSON member, null or not
    for key in TIME_KEYS:
        if out["properties"].get(key) is not None:
            out["properties"][key] = autosi(out["properties"][key])
    return out


def item(n: int, **changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "type": "Feature", "stac_version": "1.0.0", "stac_extensions": [], "id": f"item-{n}", "collection": "c1",
        "geometry": {"type": "Polygon", "coordinates": [[[0.1, 0.2], [1.0, 0.2], [1.0, 1.3], [0.1, 0.2]]]},
        "bbox": [0.1, 0.2, 1.0, 1.3],
        "properties": {"datetime": "2021-03-13T16:51:53.205Z", "eo:cloud_cover": 12.5, "gsd": 10.0,
                       "nested": {"a": {"b": [1, 2, 3]}, "s": "x\"y\\z\u00e9"}, "tags": ["a", "b"], "flag": True},
        "links": [{"rel": "self", "href": f"https://example.com/{n}.json", "type": "application/json"},
                  {"rel": "license", "href": "https://example.com/license"}],
        "assets": {"data": {"href": f"https://example.com/{n}.tif", "roles": ["data"],
                            "eo:bands": [{"name": "B1", "center_wavelength": 0.665}]}},
    }
    base.update(changes)
    return base


VARIED = [
    item(0),
    item(1, properties={"datetime": None, "start_datetime": "2020-01-01T00:00:00Z",
                        "end_datetime": "2020-12-31T23:59:59.123456Z", "gsd": 30.0}),
    item(2, geometry={"type": "Point", "coordinates": [12.345678901234567, -45.1]}, bbox=[12.345678901234567, -45.1] * 2,
         assets={"thumb": {"href": "t.png"}}),
    item(3, geometry={"type": "MultiPolygon", "coordinates": [
        [[[0.0, 0.0], [4.0, 0.0], [4.0, 4.0], [0.0, 0.0]], [[1.0, 0.5], [3.0, 0.5], [3.0, 2.5], [1.0, 0.5]]],
        [[[10.0, 10.0], [11.0, 10.0], [11.0, 11.0], [10.0, 10.0]]]]}, bbox=[0.0, 0.0, 11.0, 11.0],
        properties={"datetime": "2022-06-01T10:00:00+00:00", "created": "2022-06-02T00:00:00.5Z", "gsd": 0.3}),
    item(4, geometry={"type": "LineString", "coordinates": [[0.0, 0.0, 5.0], [1.0, 1.0, 6.5]]}, bbox=[0.0, 0.0, 1.0, 1.0]),
    item(5, geometry={"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": [1.0, 2.0]}]},
         bbox=[1.0, 2.0, 1.0, 2.0], links=[]),
]


def write(items: list[dict[str, Any]], path: str) -> str:
    parse_stac_items_to_parquet(items, output_path=path)
    return path


def test_every_item_equal_after_a_round_trip(tmp_path: Any) -> None:
    path = write(copy.deepcopy(VARIED), str(tmp_path / "items.parquet"))
    got = list(read_items(path))
    assert [g["id"] for g in got] == [i["id"] for i in VARIED]
    for original, back in zip(VARIED, got):
        assert back == normalised(original)
    assert got[1]["properties"]["datetime"] is None  # kept: STAC requires the key
    assert got[1]["properties"]["end_datetime"] == "2020-12-31T23:59:59.123456Z"
    assert got[3]["properties"]["created"] == "2022-06-02T00:00:00.500Z"
    assert orjson.dumps(got[2]["geometry"]["coordinates"]) == b"[12.345678901234567,-45.1]"  # exact doubles


def test_bytes_batches_and_magic(tmp_path: Any) -> None:
    path = write(copy.deepcopy(VARIED), str(tmp_path / "items.parquet"))
    data = (tmp_path / "items.parquet").read_bytes()
    assert is_parquet(data) and not is_parquet(b'{"type"')
    assert list(read_items(data)) == list(read_items(path))
    batches = list(read_batches(data, batch_size=4))
    assert [len(b) for b in batches] == [4, 2]


def test_row_group_rows_leaves_pandas_imported_for_the_forked_readers(tmp_path: Any) -> None:
    """pyarrow imports pandas (stac-geoparquet brings it) on its first conversion to numpy;
    row_group_rows runs in the process that forks a file's row-group readers, so it has that
    import done there once, and each forked reader does not do it again (issue 18)."""
    write(copy.deepcopy(VARIED), str(tmp_path / "items.parquet"))
    script = (
        "import sys\n"
        "from server.catalog import parquet\n"
        "before = 'pandas' in sys.modules\n"
        f"rows = parquet.row_group_rows(open({str(tmp_path / 'items.parquet')!r}, 'rb').read())\n"
        "print(before, 'pandas' in sys.modules, sum(rows))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.split() == ["False", "True", str(len(VARIED))]


def test_footprints_read_from_the_wkb_index_as_from_the_json(tmp_path: Any) -> None:
    """The parquet reader hands the builder each item's footprint as read from the column's
    WKB (a ReadGeometry: the GeoJSON dict and its shapely geometry), not read back from the
    coordinates there (issue 18): the index stores the same footprints, bounds and items as
    from the same items as JSON, for every geometry type, with Z, a hole, a self-intersecting
    ring (searched as repaired) and none."""
    items = copy.deepcopy(VARIED) + [
        item(6, geometry={"type": "Polygon", "coordinates": [[[0.0, 0.0], [2.0, 2.0], [2.0, 0.0], [0.0, 2.0], [0.0, 0.0]]]},
             bbox=[0.0, 0.0, 2.0, 2.0]),
        item(7, geometry={"type": "Polygon",
                          "coordinates": [[[0.0, 0.0, 1.0], [3.0, 0.0, 1.0], [3.0, 3.0, 2.0], [0.0, 0.0, 1.0]]]},
             bbox=[0.0, 0.0, 3.0, 3.0]),
        item(8, geometry={"type": "Polygon", "coordinates": [[[0.0, 0.0], [9.0, 0.0], [9.0, 9.0], [0.0, 9.0], [0.0, 0.0]],
                                                             [[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 1.0]]]},
             bbox=[0.0, 0.0, 9.0, 9.0]),
        item(9, geometry=None),
    ]
    items[9].pop("bbox")
    collection = {"type": "Collection", "stac_version": "1.0.0", "id": "c1", "description": "c1", "license": "proprietary",
                  "extent": {"spatial": {"bbox": [[-180, -90, 180, 90]]}, "temporal": {"interval": [[None, None]]}},
                  "links": []}
    roots = {}
    for kind in ("json", "parquet"):
        folder = tmp_path / kind
        folder.mkdir()
        (folder / "collection.json").write_bytes(orjson.dumps(collection))
        if kind == "json":
            (folder / "items.ndjson").write_bytes(b"".join(orjson.dumps(normalised(i)) + b"\n" for i in items))
        else:
            write_parquet(iter(copy.deepcopy(items)), str(folder / "items.parquet"))
        roots[kind] = [str(folder / "collection.json"), str(folder / ("items.ndjson" if kind == "json" else "items.parquet"))]
    read = list(read_items(str(tmp_path / "parquet" / "items.parquet")))
    assert {type(i["geometry"]) for i in read} == {ReadGeometry, type(None)}
    indexes = {}
    for kind, paths in roots.items():
        index, report = load_catalogs(paths, LoadOptions(progress=False))
        assert not report.skips, report.skips
        indexes[kind] = index
    got, expected = indexes["parquet"], indexes["json"]
    assert got.size == expected.size == len(items)
    assert list(got.ids) == list(expected.ids)
    for pos in range(got.size):
        assert got.wkb.many(np.array([pos])) == expected.wkb.many(np.array([pos])), got.ids[pos]
        assert got.item(pos) == expected.item(pos)


def asset_items(**changes: Any) -> list[dict[str, Any]]:
    """Items whose assets differ only by href (some lack one, one asset no item... has)."""
    items = []
    for n in range(12):
        assets: dict[str, Any] = {
            "data": {"href": f"https://example.com/{n}/data.tif", "type": "image/tiff", "roles": ["data"], "gsd": 10.0,
                     "eo:bands": [{"name": "B1", "center_wavelength": 0.665}, {"name": "B2", "common_name": "red"}]},
            "thumb": {"href": f"http://example.com/{n}/t%20.png", "title": "Thumb \"q\" \u00e9 100%s %%"},
        }
        if n % 3:
            assets["extra"] = {"href": f"https://example.com/{n}/x.json?a=\"b\"&c=\u00e9", "roles": ["metadata"]}
        items.append(item(n, assets=assets, **changes))
    return items


def test_assets_as_json_text_are_the_bytes_of_the_dicts(tmp_path: Any) -> None:
    """read_batches(assets_json=True) (the forked row-group readers, hrefs served as written)
    gives each item's assets as its JSON text when every asset is the same but for its
    http(s) href: the bytes the dicts serialize to, keys in the same order (the struct's);
    otherwise the dicts (issue 18)."""
    cases = {
        "same but the href": (asset_items(), True),
        "same but the href, every item each asset": ([i | {"assets": {k: v for k, v in i["assets"].items() if k != "extra"}}
                                                      for i in asset_items()], True),
        "a relative href": ([i | {"assets": {**i["assets"], "thumb": {"href": "t.png"}}} for i in asset_items()], False),
        "an asset that differs": ([i | {"assets": {**i["assets"], "thumb": {"href": "https://x/t.png", "title": str(n)}}}
                                   for n, i in enumerate(asset_items())], False),
        "a -0.0": ([i | {"assets": {"a": {"href": "https://x/a", "v": -0.0 if n else 0.0}}}
                    for n, i in enumerate(asset_items())], False),
        "no assets": ([i | {"assets": {}} for i in asset_items()], False),
    }
    for name, (items, as_text) in cases.items():
        path = str(tmp_path / "items.parquet")
        write_parquet(iter(copy.deepcopy(items)), path)
        dicts = [orjson.dumps(i) for i in read_items(path)]
        read = [i for batch in read_batches(path, batch_size=5, assets_json=True) for i in batch]
        assert [orjson.dumps(i) for i in read] == dicts, name
        assert {type(i["assets"]) is orjson.Fragment for i in read} == {as_text}, name
        assert [orjson.loads(d)["assets"] for d in dicts] == [normalised(i)["assets"] for i in items], name


def test_an_items_keys_do_not_depend_on_its_batch(tmp_path: Any) -> None:
    """An item's JSON is the same bytes however the file is cut into batches (the loader reads a
    file at once in one process, by row groups in forked ones): its properties' and assets' keys
    in the columns' order. Before, the keys every item of the batch has came first, so a property
    or an asset that a few items lack moved with the batch (session 15's QA: 20 of 3,000 items,
    ETags that followed the core count)."""
    items = asset_items()
    for n, i in enumerate(items):
        i["properties"] = {"datetime": i["properties"]["datetime"], **({"a": n} if n % 7 else {}), "b": "x",
                           **({"c": [n]} if n % 3 else {}), "d": n * 0.5}
        if n % 4 == 0:
            i["assets"] = {k: v for k, v in i["assets"].items() if k != next(iter(i["assets"]))}
    path = str(tmp_path / "items.parquet")
    write_parquet(iter(copy.deepcopy(items)), path)
    for assets_json in (False, True):
        whole = [orjson.dumps(i) for b in read_batches(path, batch_size=10_000, assets_json=assets_json) for i in b]
        assert len(whole) == len(items)
        for size in (1, 2, 3, 7):
            cut = [orjson.dumps(i) for b in read_batches(path, batch_size=size, assets_json=assets_json) for i in b]
            assert cut == whole, (assets_json, size)
    assert [orjson.loads(d)["properties"] for d in whole] == [normalised(i)["properties"] for i in items]


def json_only_cases() -> dict[str, list[dict[str, Any]]]:
    """Row groups for read_batches(json_only=True): each fast path, and what makes it fall back."""
    structural = [{"rel": "root", "href": "../catalog.json", "type": "application/json"},
                  {"rel": "parent", "href": "./collection.json"}, {"rel": "collection", "href": "./collection.json"}]
    empty = {"type": "Polygon", "coordinates": []}
    return {
        "every geometry type, nulls, nested, non-UTC": [
            *copy.deepcopy(VARIED),
            item(6, geometry={"type": "MultiPoint", "coordinates": [[1.0, 2.0], [-0.0, 1e-07]]}, bbox=[-0.0, 1e-07, 1.0, 2.0],
                 properties={"datetime": "2021-03-13T18:51:53.205+02:00", "nested": {"a": None, "b": [[1.5, None]]}}),
            item(7, geometry={"type": "MultiLineString", "coordinates": [[[0.0, 0.0], [1.0, 1.0]], [[2.0, 2.0], [3.0, 3.5]]]},
                 bbox=[0.0, 0.0, 3.0, 3.5]),
            item(8, geometry={"type": "Polygon", "coordinates": [[[0.0, 0.0], [9.0, 0.0], [9.0, 9.0], [0.0, 0.0]],
                                                                 [[1.0, 1.0], [2.0, 1.0], [2.0, 2.0], [1.0, 1.0]]]},
                 bbox=[0.0, 0.0, 9.0, 9.0]),
            item(9, geometry=None),
            item(10, geometry={"type": "Point", "coordinates": [1e300, -123456789.123456789]},
                 bbox=[1e300, -1.2e8, 1e300, -1.2e8]),
        ],
        "constant columns, structural links": [
            item(n, links=copy.deepcopy(structural), stac_extensions=["https://x/eo.json"],
                 properties={"datetime": "2021-01-01T00:00:00Z", "platform": "p1", "instruments": ["msi"],
                             "nested": {"a": {"b": [1, 2]}, "z": -0.0}, "n": 1.0}) for n in range(6)],
        "a -0.0 in a constant-looking column, links kept": [
            item(n, links=[*copy.deepcopy(structural), {"rel": "license", "href": "../LICENSE"}],
                 properties={"datetime": "2021-01-01T00:00:00Z", "v": [-0.0 if n % 2 else 0.0], "s": "x" if n < 5 else "y"})
            for n in range(6)],
        "links without a rel, empty polygons": [
            item(n, links=[{"href": f"./{n}.json"}] if n % 2 else [], geometry=empty if n % 3 == 0 else item(n)["geometry"])
            for n in range(6)],
    }


def test_json_only_items_serialize_to_the_bytes_of_the_dicts(tmp_path: Any) -> None:
    """read_batches(json_only=True) (the forked row-group readers: items only made servable and
    serialized) gives each geometry's coordinates as JSON text, no links where servable would
    drop them all, and a value the same in every row once, shared: servable() then orjson
    give the bytes of the items read without it, for every geometry type (Z, holes, empty,
    none), nulls, nested properties, -0.0, non-UTC times, relative and rel-less links,
    with and without public-href mappings (issue 18)."""
    for name, items in json_only_cases().items():
        path = str(tmp_path / "items.parquet")
        write_parquet(iter(copy.deepcopy(items)), path)
        for hrefs in (PublicHrefs(), PublicHrefs([("https://example.com/", "https://public.example/")])):
            base = f"{tmp_path}/c/items.parquet"
            plain = [orjson.dumps(servable(i, base, hrefs)) for batch in read_batches(path, batch_size=6) for i in batch]
            fast = [i for batch in read_batches(path, batch_size=6, json_only=True) for i in batch]
            assert [orjson.dumps(servable(i, base, hrefs)) for i in fast] == plain, name
        kinds = {type(i["geometry"]["coordinates"]) for i in fast if i["geometry"] and "coordinates" in i["geometry"]}
        assert kinds == {orjson.Fragment}, name
    fast = [i for batch in read_batches(path, batch_size=6, json_only=True) for i in batch]
    assert [bool(i["links"]) for i in fast] == [n % 2 == 1 for n in range(6)]  # no rel: kept
    path = str(tmp_path / "constant.parquet")
    write_parquet(iter(json_only_cases()["constant columns, structural links"]), path)
    fast = [i for batch in read_batches(path, batch_size=6, json_only=True) for i in batch]
    assert all(i["links"] == [] for i in fast)  # all structural: not converted
    assert len({id(i["stac_extensions"]) for i in fast}) == len({id(i["properties"]["instruments"]) for i in fast}) == 1
    assert len({id(i["properties"]["nested"]) for i in fast}) == 6  # a -0.0 inside: each its own
    path = str(tmp_path / "kept.parquet")
    write_parquet(iter(json_only_cases()["a -0.0 in a constant-looking column, links kept"]), path)
    fast = [i for batch in read_batches(path, batch_size=6, json_only=True) for i in batch]
    assert all(i["links"] and len({id(i["properties"]["v"]) for i in fast}) == 6 for i in fast)


def test_hive_partitioned_folder(tmp_path: Any) -> None:
    for collection in ("b", "a"):
        items = [item(i, id=f"{collection}-{i}") for i in range(3)]
        for it in items:
            del it["collection"]
        folder = tmp_path / f"collection={collection}"
        folder.mkdir()
        write(items, str(folder / "part-0.parquet"))
    (tmp_path / "_SUCCESS").write_text("")
    got = list(read_items(tmp_path))
    assert [g["id"] for g in got] == ["a-0", "a-1", "a-2", "b-0", "b-1", "b-2"]
    assert {g["collection"] for g in got[:3]} == {"a"}


def sample_index() -> Any:
    index, _ = load_catalogs([str(SAMPLE_ROOT)], load_options(Settings()))
    return index


def exported(index: Any, pos: int) -> dict[str, Any]:
    """The item as an export writes it: as stored, but the hrefs the API writes below its base
    URL (the sample's thumbnails, server.index.served) root-relative, as the sample writes them."""
    item = index.item(pos)
    for asset in item.get("assets", {}).values():
        if asset["href"].startswith("\x1f"):
            asset["href"] = asset["href"][1:]
    return item


def test_export_parquet_round_trip_and_duckdb(tmp_path: Any) -> None:
    import duckdb

    out = str(tmp_path / "sample.parquet")
    assert main(["export", str(SAMPLE_ROOT), "-o", out]) == 0
    index = sample_index()
    expected = [normalised(exported(index, pos)) for pos in range(index.size)]
    assert sum(it["assets"].get("thumbnail", {}).get("href", "").startswith("/sample/thumbnails/") for it in expected) > 60
    without = [i["id"] for i in expected if i["geometry"] is None]
    assert without  # the sample has items without a geometry: they are written too
    got = list(read_items(out))
    assert got == expected
    assert pq.ParquetFile(out).metadata.metadata[b"geo"]  # GeoParquet metadata for other engines
    rows = duckdb.sql(f"select id, datetime, geometry is null from read_parquet('{out}')").fetchall()
    assert [r[0] for r in rows] == [i["id"] for i in expected]
    assert [r[0] for r in rows if r[2]] == without
    for (_, when, _), it in zip(rows, expected):
        text = it["properties"]["datetime"]
        assert (when is None) == (text is None)
        if when is not None:
            assert when.astimezone(dt.UTC) == dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_export_keeps_the_order_and_null_geometries_across_chunks(tmp_path: Any) -> None:
    """More chunks than one digit (stac-geoparquet's own chunk files came back as 0, 1, 10, 11,
    2, ...), and a chunk whose only item has no geometry nor bbox."""
    items = [copy.deepcopy(VARIED[n % 3]) | {"id": f"item-{n}"} for n in range(23)]
    items[21] = {**items[21], "geometry": None}
    items[21].pop("bbox")
    path = str(tmp_path / "out.parquet")
    assert write_parquet(iter(copy.deepcopy(items)), path, chunk=2) == 23
    got = list(read_items(path))
    assert [g["id"] for g in got] == [i["id"] for i in items]
    assert got == [normalised(i) for i in items]
    assert got[21]["geometry"] is None and "bbox" not in got[21]


def test_export_ndjson_is_pgstacs_format(tmp_path: Any) -> None:
    """pypgstac's `load items` reads a file line by line, one item JSON per line (load.read_json);
    tests/test_pgstac_export.py runs it into a database where PostgreSQL and PostGIS are here."""
    out = str(tmp_path / "sample.ndjson")
    assert main(["export", str(SAMPLE_ROOT), "-o", out]) == 0
    index = sample_index()
    lines = (tmp_path / "sample.ndjson").read_bytes().splitlines()
    assert len(lines) == index.size
    for pos, line in enumerate(lines):
        doc = orjson.loads(line)
        assert doc == exported(index, pos) and b"\\u001f" not in line
        assert doc["type"] == "Feature" and doc["id"]  # pgstac also needs "collection"; catalog-only items lack it
    assert oct(os.stat(out).st_mode & 0o044) != "0o0"


def test_export_needs_a_format(tmp_path: Any) -> None:
    assert main(["export", str(SAMPLE_ROOT), "-o", str(tmp_path / "out.bin")]) == 1
    assert not os.listdir(tmp_path)
