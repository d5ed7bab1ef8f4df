"""Generate a large, realistic, deterministic static STAC catalog for the benchmarks.

    python bench/generate.py OUT_DIR --items N [--collections K] [--seed S]
                                     [--layout files|ndjson|parquet] [--workers W] [--indent 0|2] [--force]
    python bench/generate.py OUT_DIR --sizes N1,N2,... [...]      # N1 items in the first collection, ...

What it writes (STAC 1.0.0, all values invented; asset hrefs point at a fictional host)::

    OUT_DIR/catalog.json                         root Catalog linking the K collections
    OUT_DIR/<collection>/collection.json         Collection with extent, license, summaries, item_assets
    --layout files (a real static catalog, every href relative):
    OUT_DIR/<collection>/<id>/<id>.json          one Item per file, linked from collection.json
    --layout ndjson (for peers such as rustac that read item collections):
    OUT_DIR/<collection>/items.ndjson            one Item per line (collection.json has no item links)
    --layout parquet (stac-geoparquet, as published beside collections):
    OUT_DIR/<collection>/items.parquet           the items of the ndjson layout, written by the server's
                                                 `export` writer (stac-geoparquet); collection.json has
                                                 no item links and a `geoparquet-items` asset for it
    OUT_DIR/bench-manifest.json                  what was generated, with the compact JSON size

Items look like optical EO scenes over Europe (lon -10..30, lat 36..70): polygon footprints
with 5-9 distinct vertices (rectangles, some with a cut corner, about a third rotated), datetimes
spread over 2018-2024, ``eo:cloud_cover``, ``platform`` (2-4 values per collection),
``constellation``, ``instruments``, ``gsd``, ``proj:epsg`` (UTM zone), sun angles, and 4-6
assets with absolute hrefs, roles and media types. About 2% of the items have
``datetime: null`` and a ``start_datetime``/``end_datetime`` range instead. The N items are
shared evenly among the K collections (the first N mod K collections get one more); ids are
unique (they end in the item's number within its collection).

Determinism: the output is the same byte for byte for the same (items, collections, seed,
layout, indent), whatever the number of workers: items are made in fixed chunks of CHUNK, each
from its own ``random.Random`` seeded with a string naming (seed, collection, chunk), and only
``random()`` is used (stable across Python versions).

Speed: chunks are made in parallel worker processes (``--workers``, default: all CPUs); in the
files layout the workers write the item files themselves, the parent only appends the item
links of each chunk (in order) to a side file that becomes the collection's ``links`` at the end,
so memory stays flat at any size. Uses orjson when installed, else the json module.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

try:
    import orjson

    def dumps(obj: Any) -> bytes:
        return orjson.dumps(obj)

    def dumps_indented(obj: Any) -> bytes:
        return orjson.dumps(obj, option=orjson.OPT_INDENT_2)

except ImportError:  # pragma: no cover - orjson is a dependency of the server
    import json

    def dumps(obj: Any) -> bytes:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()

    def dumps_indented(obj: Any) -> bytes:
        return json.dumps(obj, indent=2, ensure_ascii=False).encode()


STAC_VERSION = "1.0.0"
CHUNK = 1000  # items per seeded chunk: part of the determinism contract, do not change lightly
HOST = "https://data.example.com"
LON_RANGE = (-10.0, 30.0)
LAT_RANGE = (36.0, 70.0)
TIME_START = dt.datetime(2018, 1, 1)
TIME_SPAN_S = int((dt.datetime(2025, 1, 1) - TIME_START).total_seconds())
NULL_DATETIME_SHARE = 0.02
ROTATED_SHARE = 0.35
CREATED = "2025-01-15T08:00:00.000Z"

EXT_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
EXT_PROJ = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
EXT_VIEW = "https://stac-extensions.github.io/view/v1.0.0/schema.json"
EXT_ITEM_ASSETS = "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"
ITEM_EXTENSIONS = [EXT_EO, EXT_PROJ, EXT_VIEW]

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
PNG = "image/png"
XML = "application/xml"
JSON_TYPE = "application/json"
GEOJSON = "application/geo+json"

PROVIDER = {
    "name": "Example Earth Observation Lab (fictional)",
    "description": "Made-up provider of the stac-static-api benchmark data.",
    "roles": ["producer", "processor", "host"],
    "url": HOST,
}

# Bands: (asset key, common name, centre wavelength in micrometres)
S2_BANDS = [("B02", "blue", 0.49), ("B03", "green", 0.56), ("B04", "red", 0.665), ("B08", "nir", 0.842),
            ("B11", "swir16", 1.61), ("B12", "swir22", 2.19)]
LS_BANDS = [("SR_B2", "blue", 0.48), ("SR_B3", "green", 0.56), ("SR_B4", "red", 0.655),
            ("SR_B5", "nir08", 0.865), ("SR_B6", "swir16", 1.61), ("ST_B10", "lwir11", 10.9)]
SS_BANDS = [("blue", "blue", 0.49), ("green", "green", 0.565), ("red", "red", 0.665), ("nir", "nir", 0.865)]
SPOT_BANDS = [("B0", "blue", 0.49), ("B1", "green", 0.56), ("B2", "red", 0.66), ("B3", "nir", 0.825)]


@dataclass(frozen=True)
class Template:
    """What a family of collections looks like."""

    key: str
    title: str
    prefix: str  # of item ids
    constellation: str
    platforms: tuple[str, ...]
    instruments: tuple[str, ...]
    gsd: float
    size_deg: tuple[float, float]  # footprint width (km-ish, in degrees at the equator), height
    bands: list[tuple[str, str, float]]
    license: str
    keywords: tuple[str, ...]


TEMPLATES = [
    Template("s2-l2a", "Sentinel-2 style L2A scenes", "S2", "sentinel-2",
             ("sentinel-2a", "sentinel-2b", "sentinel-2c"), ("msi",), 10.0, (1.0, 0.99),
             S2_BANDS, "proprietary", ("sentinel", "optical", "surface reflectance")),
    Template("landsat-c2l2", "Landsat style collection 2 level 2 scenes", "LC", "landsat",
             ("landsat-8", "landsat-9"), ("oli", "tirs"), 30.0, (1.9, 1.7),
             LS_BANDS, "CC0-1.0", ("landsat", "optical", "thermal")),
    Template("smallsat-sr", "Small-satellite style surface reflectance strips", "SS", "dove",
             ("dove-1", "dove-2", "dove-3", "superdove"), ("psb.sd",), 3.0, (0.35, 0.22),
             SS_BANDS, "CC-BY-4.0", ("smallsat", "optical", "high resolution")),
    Template("spot-ortho", "SPOT style orthoimages", "SP", "spot",
             ("spot-6", "spot-7"), ("naomi",), 6.0, (0.8, 0.55),
             SPOT_BANDS, "CC-BY-NC-4.0", ("spot", "optical", "orthoimage")),
]

LICENSE_URLS = {
    "CC0-1.0": "https://creativecommons.org/publicdomain/zero/1.0/",
    "CC-BY-4.0": "https://creativecommons.org/licenses/by/4.0/",
    "CC-BY-NC-4.0": "https://creativecommons.org/licenses/by-nc/4.0/",
}

MGRS_BANDS = "CDEFGHJKLMNPQRSTUVWX"
MGRS_SQ = "ABCDEFGHJKLMNPQRSTUVWXYZ"


def collection_ids(k: int) -> list[tuple[str, Template]]:
    """The K collections: the templates in turn, numbered once they repeat."""
    out = []
    for c in range(k):
        t = TEMPLATES[c % len(TEMPLATES)]
        cid = f"bench-{t.key}" if k <= len(TEMPLATES) else f"bench-{t.key}-{c // len(TEMPLATES) + 1:02d}"
        out.append((cid, t))
    return out


def items_in_collection(n: int, k: int, c: int) -> int:
    return n // k + (1 if c < n % k else 0)


# --------------------------------------------------------------------------- one item


def _iso(t: dt.datetime) -> str:
    return t.isoformat(timespec="milliseconds") + "Z"


def footprint(r: random.Random, t: Template) -> tuple[list[list[float]], list[float], float, float]:
    """A counter-clockwise polygon ring (closed), its bbox, and the centre."""
    rnd = r.random
    cx = LON_RANGE[0] + (LON_RANGE[1] - LON_RANGE[0]) * rnd()
    cy = LAT_RANGE[0] + (LAT_RANGE[1] - LAT_RANGE[0]) * rnd()
    kx = 1.0 / math.cos(math.radians(cy))
    hw = t.size_deg[0] * (0.85 + 0.3 * rnd()) / 2  # half sizes in "equator degrees"
    hh = t.size_deg[1] * (0.85 + 0.3 * rnd()) / 2
    pts = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
    # Cut one corner (a partial scene at the swath edge): 5 vertices at least.
    target = 5 + min(int(rnd() * 5), 4)  # 5..9 distinct vertices
    corner = min(int(rnd() * 4), 3)
    f1, f2 = 0.15 + 0.5 * rnd(), 0.15 + 0.5 * rnd()
    x, y = pts[corner]
    px, py = pts[corner - 1]
    nx, ny = pts[(corner + 1) % 4]
    pts[corner : corner + 1] = [(x + (px - x) * f1, y + (py - y) * f1), (x + (nx - x) * f2, y + (ny - y) * f2)]
    # Extra vertices along edges (collinear, as footprints traced from rasters often have).
    while len(pts) < target:
        i = min(int(rnd() * len(pts)), len(pts) - 1)
        (ax, ay), (bx, by) = pts[i], pts[(i + 1) % len(pts)]
        f = 0.3 + 0.4 * rnd()
        pts.insert(i + 1, (ax + (bx - ax) * f, ay + (by - ay) * f))
    if rnd() < ROTATED_SHARE:
        a = math.radians(-14.0 + 28.0 * rnd())
        ca, sa = math.cos(a), math.sin(a)
        pts = [(x * ca - y * sa, x * sa + y * ca) for x, y in pts]
    ring = [[round(cx + x * kx, 6), round(cy + y, 6)] for x, y in pts]
    xs = [p[0] for p in ring]
    ys = [p[1] for p in ring]
    ring.append(list(ring[0]))
    return ring, [min(xs), min(ys), max(xs), max(ys)], cx, cy


def _band_assets(t: Template) -> list[tuple[str, dict[str, Any]]]:
    return [
        (key, {"type": COG, "title": f"Band {key} ({common})", "roles": ["data"], "gsd": t.gsd,
               "eo:bands": [{"name": key, "common_name": common, "center_wavelength": wl}]})
        for key, common, wl in t.bands
    ]


BAND_ASSETS = {t.key: _band_assets(t) for t in TEMPLATES}
THUMBNAIL = {"type": PNG, "title": "Thumbnail", "roles": ["thumbnail"]}
METADATA = {"type": XML, "title": "Product metadata", "roles": ["metadata"]}
_timedelta = dt.timedelta


def make_item(r: random.Random, cid: str, t: Template, seq: int, links: list[dict[str, str]]) -> dict[str, Any]:
    rnd = r.random
    ring, bbox, cx, cy = footprint(r, t)
    start = TIME_START + _timedelta(seconds=int(rnd() * TIME_SPAN_S), milliseconds=int(rnd() * 1000))
    start_iso = start.isoformat(timespec="milliseconds") + "Z"
    y, m, d = start_iso[0:4], start_iso[5:7], start_iso[8:10]
    zone = int((cx + 180.0) // 6) + 1
    band = MGRS_BANDS[min(int((cy + 80.0) // 8), len(MGRS_BANDS) - 1)]
    item_id = f"{t.prefix}_{zone:02d}{band}{MGRS_SQ[int(rnd() * 24)]}{MGRS_SQ[int(rnd() * 24)]}_{y}{m}{d}_{seq:07d}"
    if rnd() < NULL_DATETIME_SHARE:
        end = start + _timedelta(days=1 + int(rnd() * 30), hours=int(rnd() * 24))
        props: dict[str, Any] = {"datetime": None, "start_datetime": start_iso, "end_datetime": _iso(end)}
    else:
        props = {"datetime": start_iso}
    props["platform"] = t.platforms[int(rnd() * len(t.platforms))]
    props["constellation"] = t.constellation
    props["instruments"] = t.instruments
    props["gsd"] = t.gsd
    props["eo:cloud_cover"] = round(100.0 * rnd() ** 2.2, 2)
    props["proj:epsg"] = 32600 + zone
    props["view:sun_elevation"] = round(10.0 + 50.0 * rnd(), 2)
    props["view:sun_azimuth"] = round(130.0 + 60.0 * rnd(), 2)
    props["created"] = CREATED
    # Assets: 2-4 bands, a thumbnail and a metadata file: 4-6 in total.
    base = f"{HOST}/{cid}/{y}/{m}/{d}/{item_id}/"
    n_assets = 4 + min(int(rnd() * 3), 2)
    bands = BAND_ASSETS[t.key]
    n_bands = min(n_assets - 2, len(bands))
    first = min(int(rnd() * (len(bands) - n_bands + 1)), len(bands) - n_bands)
    assets: dict[str, Any] = {key: {"href": base + key + ".tif", **rest} for key, rest in bands[first : first + n_bands]}
    assets["thumbnail"] = {"href": base + "thumbnail.png", **THUMBNAIL}
    assets["metadata"] = {"href": base + "metadata.xml", **METADATA}
    return {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": ITEM_EXTENSIONS,
        "id": item_id,
        "collection": cid,
        "bbox": bbox,
        "geometry": {"type": "Polygon", "coordinates": [ring]},
        "properties": props,
        "links": links,
        "assets": assets,
    }


# --------------------------------------------------------------------------- chunks


@dataclass(frozen=True)
class Job:
    out: str
    layout: str
    indent: int
    seed: int
    c: int
    cid: str
    chunk: int
    first: int  # sequence number of the first item of the chunk within its collection
    count: int
    lean: bool = False


@dataclass
class ChunkResult:
    c: int
    count: int
    compact_bytes: int
    written_bytes: int
    null_datetime: int
    bbox: list[float]
    tmin: str
    tmax: str
    payload: bytes  # files: comma-joined item links for collection.json; ndjson: the lines


FILES_LINKS = [
    {"rel": "root", "href": "../../catalog.json", "type": JSON_TYPE},
    {"rel": "parent", "href": "../collection.json", "type": JSON_TYPE},
    {"rel": "collection", "href": "../collection.json", "type": JSON_TYPE},
]
NDJSON_LINKS = [
    {"rel": "root", "href": "../catalog.json", "type": JSON_TYPE},
    {"rel": "parent", "href": "./collection.json", "type": JSON_TYPE},
    {"rel": "collection", "href": "./collection.json", "type": JSON_TYPE},
]


def run_chunk(job: Job) -> ChunkResult:
    t = TEMPLATES[job.c % len(TEMPLATES)]
    r = random.Random(f"stac-static-api-bench:{job.seed}:{job.c}:{job.chunk}")
    files = job.layout == "files"
    links = FILES_LINKS if files else NDJSON_LINKS
    coll_dir = os.path.join(job.out, job.cid)
    compact = written = nulls = 0
    x0 = y0 = math.inf
    x1 = y1 = -math.inf
    tmin, tmax = "9999", "0000"
    parts: list[bytes] = []
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    for seq in range(job.first, job.first + job.count):
        item = make_item(r, job.cid, t, seq, links)
        if job.lean:  # the same item with its thumbnail only: ~1.2 KB, as replicate.py --lean
            item["assets"] = {"thumbnail": item["assets"]["thumbnail"]}
        data = dumps(item)
        compact += len(data)
        b = item["bbox"]
        x0, y0, x1, y1 = min(x0, b[0]), min(y0, b[1]), max(x1, b[2]), max(y1, b[3])
        p = item["properties"]
        lo = p["datetime"] or p["start_datetime"]
        hi = p["datetime"] or p["end_datetime"]
        if p["datetime"] is None:
            nulls += 1
        tmin, tmax = min(tmin, lo), max(tmax, hi)
        iid = item["id"]
        if files:
            if job.indent:
                data = dumps_indented(item) + b"\n"
            d = os.path.join(coll_dir, iid)
            os.mkdir(d)
            fd = os.open(os.path.join(d, iid + ".json"), flags, 0o644)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            written += len(data)
            parts.append(b'{"rel":"item","href":"./%s/%s.json","type":"application/geo+json"}'
                         % (iid.encode(), iid.encode()))
        else:
            parts.append(data)
            parts.append(b"\n")
            written += len(data) + 1
    payload = b",".join(parts) if files else b"".join(parts)
    return ChunkResult(job.c, job.count, compact, written, nulls, [x0, y0, x1, y1], tmin, tmax, payload)


def jobs(out: str, n: int, k: int, seed: int, layout: str, indent: int,
         sizes: list[int] | None = None, lean: bool = False) -> Iterator[Job]:
    """All chunks, taking the collections in turn: workers running at the same time then mostly
    create entries in different directories (mkdir in one directory serializes on its lock)."""
    colls = collection_ids(k)
    totals = sizes or [items_in_collection(n, k, c) for c in range(k)]
    for chunk in range(-(-max(totals, default=0) // CHUNK)):
        first = chunk * CHUNK
        for c, (cid, _) in enumerate(colls):
            if first < totals[c]:
                yield Job(out, layout, indent, seed, c, cid, chunk, first, min(CHUNK, totals[c] - first), lean)


# --------------------------------------------------------------------------- documents


def collection_doc(cid: str, t: Template, count: int, bbox: list[float], tmin: str, tmax: str) -> dict[str, Any]:
    links = [
        {"rel": "root", "href": "../catalog.json", "type": JSON_TYPE},
        {"rel": "parent", "href": "../catalog.json", "type": JSON_TYPE},
    ]
    if t.license in LICENSE_URLS:
        links.append({"rel": "license", "href": LICENSE_URLS[t.license], "type": "text/html",
                      "title": f"{t.license} license"})
    item_assets: dict[str, Any] = {
        key: {"type": COG, "title": f"Band {key} ({common})", "roles": ["data"], "gsd": t.gsd,
              "eo:bands": [{"name": key, "common_name": common, "center_wavelength": wl}]}
        for key, common, wl in t.bands
    }
    item_assets["thumbnail"] = {"type": PNG, "title": "Thumbnail", "roles": ["thumbnail"]}
    item_assets["metadata"] = {"type": XML, "title": "Product metadata", "roles": ["metadata"]}
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": [EXT_ITEM_ASSETS],
        "id": cid,
        "title": f"{t.title} (benchmark, {count} items)",
        "description": f"Generated benchmark collection of {count} invented {t.title.lower()} over Europe, "
                       f"2018-2024. Not real data.",
        "keywords": list(t.keywords) + ["benchmark", "europe"],
        "license": t.license,
        "providers": [PROVIDER],
        "extent": {
            "spatial": {"bbox": [bbox]},
            "temporal": {"interval": [[tmin, tmax]]},
        },
        "summaries": {
            "platform": list(t.platforms),
            "constellation": [t.constellation],
            "instruments": list(t.instruments),
            "gsd": [t.gsd],
            "eo:cloud_cover": {"minimum": 0, "maximum": 100},
        },
        "item_assets": item_assets,
        "links": links,
    }


def write_collection(path: str, doc: dict[str, Any], item_links: str | None, indent: int) -> None:
    """collection.json, with the item links streamed from a side file (they can be many MB)."""
    if item_links is None:
        with open(path, "wb") as f:
            f.write((dumps_indented(doc) if indent else dumps(doc)) + b"\n")
        return
    head = dumps(doc)
    assert head.endswith(b"]}")
    with open(path, "wb") as f, open(item_links, "rb") as links:
        f.write(head[:-2])
        first = links.read(1 << 20)
        if first and len(doc["links"]):
            f.write(b",")
        while first:
            f.write(first)
            first = links.read(1 << 20)
        f.write(b"]}\n")


def _ndjson_to_parquet(path: str) -> int:
    """One collection's items.ndjson -> items.parquet beside it (the ndjson is removed); its size."""
    import orjson as json_lib  # only this layout needs the server (its `parquet` extra)

    from server.runtime.export import write_parquet

    target = os.path.join(os.path.dirname(path), "items.parquet")
    with open(path, "rb") as f:
        write_parquet((json_lib.loads(line) for line in f), target, workdir=os.path.dirname(path))
    os.unlink(path)
    return os.path.getsize(target)


def to_parquet(paths: list[str], workers: int) -> int:
    """The ndjson files as stac-geoparquet, in parallel; the bytes written."""
    if workers > 1 and len(paths) > 1:
        with multiprocessing.get_context("fork").Pool(min(workers, len(paths))) as pool:
            return sum(pool.map(_ndjson_to_parquet, paths, chunksize=1))
    return sum(map(_ndjson_to_parquet, paths))


def root_doc(k: int, n: int) -> dict[str, Any]:
    links = [{"rel": "root", "href": "./catalog.json", "type": JSON_TYPE}]
    for cid, t in collection_ids(k):
        links.append({"rel": "child", "href": f"./{cid}/collection.json", "type": JSON_TYPE, "title": t.title})
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": "stac-static-api-bench",
        "title": "stac-static-api benchmark catalog",
        "description": f"Generated by bench/generate.py: {n} invented items in {k} collections. Not real data.",
        "links": links,
    }


@dataclass
class Summary:
    out: str
    layout: str
    items: int
    collections: int
    seed: int
    compact_json_bytes: int
    written_bytes: int
    null_datetime_items: int
    seconds: float
    sizes: list[int] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "generator": "bench/generate.py",
            "layout": self.layout,
            "items": self.items,
            "collections": self.collections,
            "seed": self.seed,
            "compact_json_bytes": self.compact_json_bytes,
            "written_bytes": self.written_bytes,
            "null_datetime_items": self.null_datetime_items,
        } | ({"sizes": self.sizes} if self.sizes else {})


def generate(out: str, n: int, k: int = 4, seed: int = 42, layout: str = "files", indent: int = 0,
             workers: int | None = None, force: bool = False, progress: bool = False,
             sizes: list[int] | None = None, lean: bool = False) -> Summary:
    if sizes:  # items per collection, as given: the catalog of 4 large and 8 small ones
        n, k = sum(sizes), len(sizes)
    if n < 0 or k < 1:
        raise ValueError("need items >= 0 and collections >= 1")
    if layout not in ("files", "ndjson", "parquet"):
        raise ValueError(f"unknown layout {layout!r}")
    out = os.path.abspath(out)
    if os.path.exists(out) and os.listdir(out):
        if not force:
            raise FileExistsError(f"{out} exists and is not empty (use --force to replace it)")
        shutil.rmtree(out)
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()
    colls = collection_ids(k)
    for cid, _ in colls:
        os.mkdir(os.path.join(out, cid))
    workers = workers or os.cpu_count() or 1
    compact = written = nulls = done = 0
    per_coll: dict[int, list[Any]] = {}
    side = tempfile.TemporaryDirectory(prefix="bench-links-", dir=out)
    sinks: dict[int, Any] = {}

    def sink(c: int) -> Any:
        if c not in sinks:
            name = "links" if layout == "files" else "items"
            path = os.path.join(side.name, f"{c}.{name}") if layout == "files" else \
                os.path.join(out, colls[c][0], "items.ndjson")
            sinks[c] = open(path, "wb")
        return sinks[c]

    all_jobs = jobs(out, n, k, seed, layout, indent, sizes, lean)
    pool = multiprocessing.get_context("fork").Pool(workers) if workers > 1 else None
    try:
        results = pool.imap(run_chunk, all_jobs, chunksize=1) if pool else map(run_chunk, all_jobs)
        last_shown = 0.0
        for res in results:
            f = sink(res.c)
            if layout == "files" and f.tell():
                f.write(b",")
            f.write(res.payload)
            compact += res.compact_bytes
            written += res.written_bytes
            nulls += res.null_datetime
            done += res.count
            acc = per_coll.get(res.c)
            if acc is None:
                per_coll[res.c] = [res.count, list(res.bbox), res.tmin, res.tmax]
            else:
                acc[0] += res.count
                b = acc[1]
                acc[1] = [min(b[0], res.bbox[0]), min(b[1], res.bbox[1]), max(b[2], res.bbox[2]),
                          max(b[3], res.bbox[3])]
                acc[2], acc[3] = min(acc[2], res.tmin), max(acc[3], res.tmax)
            if progress and time.perf_counter() - last_shown > 1.0:
                last_shown = time.perf_counter()
                rate = done / (last_shown - started)
                print(f"\r{done}/{n} items, {rate:,.0f} items/s", end="", file=sys.stderr, flush=True)
        if progress:
            print(file=sys.stderr)
    finally:
        if pool:
            pool.close()
            pool.join()
        for f in sinks.values():
            f.close()
    if layout == "parquet":
        written = to_parquet([os.path.join(out, cid, "items.ndjson") for c, (cid, _) in enumerate(colls) if c in sinks],
                             workers)
    for c, (cid, t) in enumerate(colls):
        count, bbox, tmin, tmax = per_coll.get(c, [0, [LON_RANGE[0], LAT_RANGE[0], LON_RANGE[1], LAT_RANGE[1]],
                                                   _iso(TIME_START), _iso(TIME_START)])
        doc = collection_doc(cid, t, count, bbox, tmin, tmax)
        if layout == "parquet" and c in sinks:
            doc["assets"] = {"geoparquet-items": {
                "href": "./items.parquet", "type": "application/vnd.apache.parquet", "roles": ["stac-items"],
                "title": "The collection's items (stac-geoparquet)"}}
        links = os.path.join(side.name, f"{c}.links") if layout == "files" and c in sinks else None
        write_collection(os.path.join(out, cid, "collection.json"), doc, links, indent)
    side.cleanup()
    with open(os.path.join(out, "catalog.json"), "wb") as f:
        root = root_doc(k, n)
        f.write((dumps_indented(root) if indent else dumps(root)) + b"\n")
    summary = Summary(out, layout, n, k, seed, compact, written, nulls, time.perf_counter() - started, sizes)
    with open(os.path.join(out, "bench-manifest.json"), "wb") as f:
        f.write(dumps_indented(summary.as_dict()) + b"\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", metavar="OUT_DIR")
    ap.add_argument("--items", type=int, help="number of items (N)")
    ap.add_argument("--collections", type=int, default=4, help="number of collections (K, default 4)")
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--layout", choices=["files", "ndjson", "parquet"], default="files")
    ap.add_argument("--indent", type=int, choices=[0, 2], default=0,
                    help="2: pretty-print documents as pystac does (default 0: compact)")
    ap.add_argument("--workers", type=int, default=None, help="processes (default: all CPUs)")
    ap.add_argument("--force", action="store_true", help="replace OUT_DIR if it is not empty")
    ap.add_argument("--sizes", help="items per collection, comma-separated (instead of --items and "
                    "--collections): 249950,249950,249950,249950,25,25,25,25,25,25,25,25 is 1M items in 4 "
                    "collections of ~250k item links and 8 of 25")
    ap.add_argument("--lean", action="store_true",
                    help="items with their thumbnail asset only (~1.2 KB instead of 2.4; same ids, geometry and "
                    "properties), as bench/replicate.py --lean: 10M item files in 1 KiB blocks take 2 each")
    ap.add_argument("-q", "--quiet", action="store_true")
    args = ap.parse_args(argv)
    sizes = [int(x) for x in args.sizes.split(",")] if args.sizes else None
    if args.items is None and not sizes:
        ap.error("give --items (or --sizes)")
    try:
        s = generate(args.out, args.items or 0, args.collections, args.seed, args.layout, args.indent,
                     args.workers, args.force, progress=not args.quiet and sys.stderr.isatty(), sizes=sizes,
                     lean=args.lean)
    except (FileExistsError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    rate = s.items / s.seconds if s.seconds else 0.0
    print(f"wrote {s.items} items ({s.null_datetime_items} with datetime null) in {s.collections} collections "
          f"to {s.out} ({s.layout} layout) in {s.seconds:.1f} s, {rate:,.0f} items/s")
    print(f"compact JSON bytes of the items: {s.compact_json_bytes} ({s.compact_json_bytes / 2**20:,.1f} MiB, "
          f"{s.compact_json_bytes / max(s.items, 1):,.0f} B/item); item bytes written: {s.written_bytes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
