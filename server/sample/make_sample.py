"""Generate the small sample STAC catalog that ships inside the stac-static-api package.

What it makes
-------------
A static STAC 1.0.0 catalog in ``server/sample/catalog/`` (the folder is deleted and written
again on every run)::

    catalog.json                                  root Catalog "sample"
    sentinel-2-l2a-nl/collection.json             40 Sentinel-2 style L2A scenes (NL / BE), 2019-2023
    ndvi-europe-monthly/collection.json           12 monthly NDVI composites over Europe, 2022
    corine-land-cover/collection.json             4 CORINE style land cover layers (open-ended extent)
    dem-alps/collection.json                      8 elevation items over the Alps (one with geometry null)
    dem-alps/tiles-extra/catalog.json             nested plain Catalog with 3 more dem-alps items
    misc/catalog.json                             plain Catalog with 1 "loose" item (no collection)

Items live at ``<folder>/<item-id>/<item-id>.json``. Every href inside the catalog is relative and
no file carries a ``self`` link, so the folder can be moved or packaged anywhere; data asset
hrefs are absolute URLs to a fictional host (https://data.example.com). Every item with a
geometry has a real thumbnail, a small PNG drawn here into ``server/sample/thumbnails/``, which
the server serves at ``/sample/thumbnails/<item-id>.png`` (the href written, root-relative),
and the projection extension's ``proj:epsg``, ``proj:shape``, ``proj:transform`` and
``proj:bbox`` (the pixel grid covering its footprint), so odc-stac, stackstac or GDAL's STACIT
driver can lay out an array without being told a CRS or a resolution. All values are invented:
this is our own made-up data, not a copy of any real catalog.

Why
---
The server needs a quick-start catalog (``stac-static-api`` with no arguments, docs, tests) that
is small (well under 400 KB), valid against the STAC JSON schemas and that exercises the awkward
corners of the spec: items with ``datetime: null`` and a start/end range, an item with
``geometry: null`` (and so no bbox), an open-ended temporal extent, a sub-catalog nested inside a
collection, a loose item with no collection, rotated non-rectangular footprints and several
scenes overlapping one point of interest (Wageningen, 5.65-5.68 E, 51.95-51.98 N).

The output is deterministic byte for byte: one seeded ``random.Random`` whose only method used is
``random()`` (stable across Python versions), fixed dates, rounded numbers, insertion-ordered
JSON with a trailing newline; the thumbnails draw from their own generators, seeded by the
item id, so adding one leaves every other value as it was. Only the standard library is used.

Run it with ``python server/sample/make_sample.py`` and commit the result.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import random
import shutil
import struct
import zlib
from collections.abc import Sequence
from pathlib import Path

OUT = Path(__file__).resolve().parent / "catalog"
# Thumbnails: real PNGs drawn here, served by stac-static-api itself at /sample/thumbnails/
# (server.api.static_files). Their hrefs are root-relative: the loader stores them as served
# hrefs (server.index.served), which the API writes below its base URL (a proxy's prefix
# included); an export writes them root-relative, as here.
THUMBS_OUT = Path(__file__).resolve().parent / "thumbnails"
THUMBS_HREF = "/sample/thumbnails"
THUMB_SIZE = 64
SEED = 20240611
HOST = "https://data.example.com"
STAC_VERSION = "1.0.0"

EXT_EO = "https://stac-extensions.github.io/eo/v1.1.0/schema.json"
EXT_PROJ = "https://stac-extensions.github.io/projection/v1.1.0/schema.json"
EXT_VIEW = "https://stac-extensions.github.io/view/v1.0.0/schema.json"
EXT_ITEM_ASSETS = "https://stac-extensions.github.io/item-assets/v1.0.0/schema.json"

COG = "image/tiff; application=geotiff; profile=cloud-optimized"
PNG = "image/png"

PROVIDER = {
    "name": "Example Earth Observation Lab (fictional)",
    "description": "Made-up provider of the stac-static-api sample data.",
    "roles": ["producer", "processor", "host"],
    "url": HOST,
}

rng = random.Random(SEED)


# --------------------------------------------------------------------------- helpers


def rand(lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * rng.random()


def rand_int(lo: int, hi: int) -> int:
    """Integer in [lo, hi], from random() only (stable across Python versions)."""
    return lo + min(int(rng.random() * (hi - lo + 1)), hi - lo)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, second, tzinfo=dt.UTC)


def footprint(cx: float, cy: float, hw: float, hh: float, angle_deg: float = 0.0,
              extra: int = 0, bump: float = 0.0, ndigits: int = 5) -> dict:
    """Counter-clockwise polygon: a (rotated) rectangle with `extra` (0-4) mid-edge vertices
    pushed outwards by `bump` degrees, so rings have 5-9 positions and stay simple."""
    a = math.radians(angle_deg)
    ca, sa = math.cos(a), math.sin(a)
    corners = [(-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh)]
    outward = [(0.0, -1.0), (1.0, 0.0), (0.0, 1.0), (-1.0, 0.0)]  # normal of edge i -> i+1
    local: list[tuple[float, float]] = []
    for i, (x, y) in enumerate(corners):
        local.append((x, y))
        if i < extra:
            nx, ny = corners[(i + 1) % 4]
            ox, oy = outward[i]
            local.append(((x + nx) / 2 + ox * bump, (y + ny) / 2 + oy * bump))
    ring = [[round(cx + x * ca - y * sa, ndigits), round(cy + x * sa + y * ca, ndigits)]
            for x, y in local]
    ring.append(list(ring[0]))
    return {"type": "Polygon", "coordinates": [ring]}


def polygon(points: list[list[float]]) -> dict:
    ring = [list(p) for p in points] + [list(points[0])]
    return {"type": "Polygon", "coordinates": [ring]}


def bbox_of(geom: dict | None) -> list[float] | None:
    if geom is None:
        return None
    xs = [p[0] for ring in geom["coordinates"] for p in ring]
    ys = [p[1] for ring in geom["coordinates"] for p in ring]
    return [min(xs), min(ys), max(xs), max(ys)]


def union_bbox(boxes: list[list[float]]) -> list[float]:
    return [min(b[0] for b in boxes), min(b[1] for b in boxes),
            max(b[2] for b in boxes), max(b[3] for b in boxes)]


def item_interval(item: dict) -> tuple[str, str]:
    p = item["properties"]
    if p.get("datetime") is not None:
        start = end = p["datetime"]
        # a composite with a nominal datetime still covers its start/end range
        start = min(start, p.get("start_datetime", start))
        end = max(end, p.get("end_datetime", end))
        return start, end
    return p["start_datetime"], p["end_datetime"]


def make_item(item_id: str, geometry: dict | None, properties: dict, assets: dict,
              extensions: list[str], collection: str | None = None) -> dict:
    item: dict = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": item_id,
    }
    if geometry is None:
        item["geometry"] = None  # no bbox then, as the item spec allows
    else:
        item["bbox"] = bbox_of(geometry)
        item["geometry"] = geometry
    item["properties"] = properties
    item["links"] = []  # filled in by attach()
    item["assets"] = assets
    if collection is not None:
        item["collection"] = collection
    return item


def make_catalog(cat_id: str, title: str, description: str) -> dict:
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": cat_id,
        "title": title,
        "description": description,
        "links": [],
    }


def make_collection(coll_id: str, title: str, description: str, items: list[dict], *,
                    keywords: list[str], license_: str, summaries: dict,
                    extensions: list[str], open_end: bool = False,
                    license_link: dict | None = None, item_assets: dict | None = None) -> dict:
    boxes = [it["bbox"] for it in items if "bbox" in it]
    intervals = [item_interval(it) for it in items]
    start = min(s for s, _ in intervals)
    end = None if open_end else max(e for _, e in intervals)
    coll: dict = {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "stac_extensions": extensions,
        "id": coll_id,
        "title": title,
        "description": description,
        "keywords": keywords,
        "license": license_,
        "providers": [PROVIDER],
        "extent": {
            "spatial": {"bbox": [union_bbox(boxes)]},
            "temporal": {"interval": [[start, end]]},
        },
        "summaries": summaries,
    }
    if item_assets is not None:
        coll["item_assets"] = item_assets
    coll["links"] = [license_link] if license_link else []
    return coll


def minmax(values: list[float]) -> dict:
    return {"minimum": min(values), "maximum": max(values)}


# --------------------------------------------------------------------------- projection


def utm(lon: float, lat: float, zone: int) -> tuple[float, float]:
    """WGS 84 longitude/latitude to UTM (northern hemisphere) easting/northing in metres:
    the transverse Mercator series (Snyder 1987, eq. 8-9 to 8-10), well under a metre off."""
    a, f, k0 = 6378137.0, 1 / 298.257223563, 0.9996
    e2 = f * (2 - f)
    ep2 = e2 / (1 - e2)
    phi, lam = math.radians(lat), math.radians(lon - (zone * 6 - 183))
    n = a / math.sqrt(1 - e2 * math.sin(phi) ** 2)
    t, c = math.tan(phi) ** 2, ep2 * math.cos(phi) ** 2
    aa = lam * math.cos(phi)
    m = a * ((1 - e2 / 4 - 3 * e2 ** 2 / 64 - 5 * e2 ** 3 / 256) * phi
             - (3 * e2 / 8 + 3 * e2 ** 2 / 32 + 45 * e2 ** 3 / 1024) * math.sin(2 * phi)
             + (15 * e2 ** 2 / 256 + 45 * e2 ** 3 / 1024) * math.sin(4 * phi)
             - (35 * e2 ** 3 / 3072) * math.sin(6 * phi))
    x = k0 * n * (aa + (1 - t + c) * aa ** 3 / 6 + (5 - 18 * t + t * t + 72 * c - 58 * ep2) * aa ** 5 / 120)
    y = k0 * (m + n * math.tan(phi) * (aa * aa / 2 + (5 - t + 9 * c + 4 * c * c) * aa ** 4 / 24
                                       + (61 - 58 * t + t * t + 600 * c - 330 * ep2) * aa ** 6 / 720))
    return x + 500000.0, y


def proj_grid(geom: dict, epsg: int, res: float) -> dict:
    """The projection extension's fields of a north-up grid of `res` sized pixels (in the CRS's
    units) that covers `geom`: its corners snapped outwards to the pixel size."""
    points = [p for ring in geom["coordinates"] for p in ring]
    if epsg == 4326:
        xy = [(p[0], p[1]) for p in points]
    else:
        xy = [utm(p[0], p[1], epsg % 100) for p in points]
    xmin = math.floor(min(x for x, _ in xy) / res + 1e-9) * res
    ymin = math.floor(min(y for _, y in xy) / res + 1e-9) * res
    xmax = math.ceil(max(x for x, _ in xy) / res - 1e-9) * res
    ymax = math.ceil(max(y for _, y in xy) / res - 1e-9) * res
    cols, rows = round((xmax - xmin) / res), round((ymax - ymin) / res)
    nd = 2 if epsg != 4326 else 9
    return {"proj:epsg": epsg, "proj:shape": [rows, cols],
            "proj:transform": [float(round(res, 12)), 0.0, float(round(xmin, nd)), 0.0, float(round(-res, 12)),
                               float(round(ymax, nd)), 0.0, 0.0, 1.0],
            "proj:bbox": [float(round(v, nd)) for v in (xmin, ymin, xmax, ymax)]}


# --------------------------------------------------------------------------- thumbnails

THUMBNAILS: dict[str, bytes] = {}  # file name -> PNG, written by main()


def png(width: int, height: int, pixels: bytes | bytearray, channels: int = 3) -> bytes:
    """An 8-bit RGB (``channels`` 3) or RGBA (4) PNG (no filter, zlib level 9): deterministic
    bytes. Also the server's favicon (static_files.py)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    stride, color_type = width * channels, {3: 2, 4: 6}[channels]
    raw = b"".join(b"\x00" + bytes(pixels[y * stride:(y + 1) * stride]) for y in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b""))


def draw_thumbnail(item_id: str, kind: str, level: float = 0.0) -> dict:
    """Draw a THUMB_SIZE square picture of the item (`kind`: s2 fields with `level` % clouds,
    ndvi greenness `level`, dem relief, landcover patches, aerial town blocks) and return its
    thumbnail asset. Its own generator, seeded by the id: the sample's other values stay put."""
    g = random.Random(zlib.crc32(item_id.encode()))
    n = THUMB_SIZE
    img = bytearray(n * n * 3)

    def put(x: int, y: int, c: tuple[float, float, float]) -> None:
        if 0 <= x < n and 0 <= y < n:
            img[(y * n + x) * 3:(y * n + x) * 3 + 3] = bytes(max(0, min(255, round(v))) for v in c)

    def rect(x0: int, y0: int, x1: int, y1: int, c: tuple[float, float, float]) -> None:
        for y in range(y0, y1):
            for x in range(x0, x1):
                put(x, y, c)

    def patches(palette: Sequence[tuple[float, float, float]], x0: int, y0: int, x1: int, y1: int, depth: int) -> None:
        """Split the box at random (a patchwork of fields or land cover classes)."""
        if depth == 0 or (x1 - x0) < 6 or (y1 - y0) < 6:
            rect(x0, y0, x1, y1, palette[int(g.random() * len(palette))])
            return
        if (x1 - x0) >= (y1 - y0):
            cut = x0 + 2 + int(g.random() * (x1 - x0 - 4))
            patches(palette, x0, y0, cut, y1, depth - 1)
            patches(palette, cut, y0, x1, y1, depth - 1)
        else:
            cut = y0 + 2 + int(g.random() * (y1 - y0 - 4))
            patches(palette, x0, y0, x1, cut, depth - 1)
            patches(palette, x0, cut, x1, y1, depth - 1)

    if kind in ("s2", "landcover"):
        palette = ([(92, 128, 60), (120, 150, 70), (160, 150, 95), (70, 105, 55), (180, 170, 120), (110, 95, 70)]
                   if kind == "s2" else
                   [(230, 0, 77), (255, 255, 168), (128, 255, 0), (0, 166, 0), (166, 230, 77), (0, 204, 242)])
        patches(palette, 0, 0, n, n, 7)
        if kind == "s2":  # clouds: white discs until about `level` % of the picture is covered
            covered: set[tuple[int, int]] = set()
            while len(covered) < level / 100 * n * n:
                cx, cy, r = g.random() * n, g.random() * n, 4 + g.random() * 10
                for y in range(max(0, int(cy - r)), min(n, int(cy + r) + 1)):
                    for x in range(max(0, int(cx - r)), min(n, int(cx + r) + 1)):
                        if (x - cx) ** 2 + (y - cy) ** 2 <= r * r:
                            put(x, y, (245, 245, 248))
                            covered.add((x, y))
    elif kind == "ndvi":  # Europe in the item's bbox, greener as the month's mean NDVI rises
        ring = EUROPE["coordinates"][0]
        phase = g.random() * 6
        for y in range(n):
            for x in range(n):
                lon, lat = -10 + 40 * (x + 0.5) / n, 70 - 35 * (y + 0.5) / n
                inside = False
                for (ax, ay), (bx, by) in zip(ring, ring[1:]):
                    if (ay > lat) != (by > lat) and lon < ax + (lat - ay) * (bx - ax) / (by - ay):
                        inside = not inside
                v = level + round(2 * math.sin(x * 0.2 + phase) * math.cos(y * 0.15)) * 0.08  # few tones: small PNG
                put(x, y, (200 - 180 * v, 170 + 60 * v, 90 - 60 * v) if inside else (40, 70, 120))
    elif kind == "dem":  # ridges: a sum of random waves, shaded from white (high) to green (low)
        waves = [(g.random() * 0.4, g.random() * 0.4, g.random() * 6) for _ in range(4)]
        for y in range(n):
            for x in range(n):
                h = round((sum(math.sin(fx * x + fy * y + p) for fx, fy, p in waves) / 8 + 0.5) * 6) / 6  # contour bands
                put(x, y, (90 + 160 * h, 120 + 130 * h, 70 + 180 * h))
    else:  # aerial: town blocks between streets
        rect(0, 0, n, n, (150, 150, 145))
        for by in range(2, n, 12):
            for bx in range(2, n, 12):
                rect(bx, by, bx + 9, by + 9, [(170, 70, 55), (95, 140, 70), (120, 120, 125)][int(g.random() * 3)])
    name = f"{item_id}.png"
    THUMBNAILS[name] = png(n, n, img)
    return {"href": f"{THUMBS_HREF}/{name}", "type": PNG, "title": "Thumbnail", "roles": ["thumbnail"]}


# --------------------------------------------------------------------------- sentinel-2

S2_BANDS = {
    "B02": {"name": "B02", "common_name": "blue", "center_wavelength": 0.49,
            "full_width_half_max": 0.098},
    "B03": {"name": "B03", "common_name": "green", "center_wavelength": 0.56,
            "full_width_half_max": 0.045},
    "B04": {"name": "B04", "common_name": "red", "center_wavelength": 0.665,
            "full_width_half_max": 0.038},
    "B08": {"name": "B08", "common_name": "nir", "center_wavelength": 0.842,
            "full_width_half_max": 0.145},
}

# (tile, centre lon, centre lat, EPSG). Roughly 1 x 1 degree footprints over NL/BE;
# 31UFT and 32ULC both cover Wageningen (5.65-5.68 E, 51.95-51.98 N).
S2_TILES = [
    ("31UFT", 5.40, 52.00, 32631),
    ("32ULC", 6.10, 51.85, 32632),
    ("31UET", 4.30, 52.05, 32631),
    ("31UFU", 5.55, 52.95, 32631),
    ("31UES", 4.20, 51.10, 32631),
    ("31UFS", 5.35, 51.05, 32631),
    ("31UDS", 3.10, 51.10, 32631),
    ("31UFR", 5.20, 50.20, 32631),
]


def sun_elevation(t: dt.datetime, lon: float, lat: float) -> float:
    doy = t.timetuple().tm_yday
    decl = math.radians(23.44) * math.sin(2 * math.pi * (284 + doy) / 365)
    solar_hours = t.hour + t.minute / 60 + lon / 15
    hour_angle = math.radians(15 * (solar_hours - 12))
    phi = math.radians(lat)
    s = math.sin(phi) * math.sin(decl) + math.cos(phi) * math.cos(decl) * math.cos(hour_angle)
    return round(math.degrees(math.asin(s)), 2)


def s2_items() -> list[dict]:
    items = []
    for i in range(40):
        tile, cx, cy, epsg = S2_TILES[i % len(S2_TILES)]
        year = 2019 + i // len(S2_TILES)  # one scene per tile per year
        day = rand_int(0, 364)
        t = utc(year, 1, 1, 10, 30) + dt.timedelta(days=day, seconds=rand_int(0, 1200))
        sat = "sentinel-2a" if rng.random() < 0.5 else "sentinel-2b"
        letter = sat[-1].upper()
        item_id = f"S2{letter}_MSIL2A_{t.strftime('%Y%m%dT%H%M%S')}_T{tile}"
        rotated = rng.random() < 0.6
        geom = footprint(
            cx + rand(-0.04, 0.04), cy + rand(-0.03, 0.03),
            hw=rand(0.5, 0.56), hh=rand(0.47, 0.52),
            angle_deg=round(rand(-4.0, 4.0), 2) if rotated else 0.0,
            extra=rand_int(0, 4), bump=rand(0.005, 0.02),
        )
        cloud = round(100 * rng.random() ** 2, 2)
        props = {
            "title": f"Sentinel-2 L2A scene {tile} {t.date().isoformat()}",
            "datetime": iso(t),
            "platform": sat,
            "constellation": "sentinel-2",
            "instruments": ["msi"],
            "gsd": 10,
            "eo:cloud_cover": cloud,
            "proj:epsg": epsg,
            "view:sun_elevation": sun_elevation(t, cx, cy),
        }
        base = (f"{HOST}/sentinel-2-l2a/tiles/{tile[:2]}/{tile[2]}/{tile[3:]}/"
                f"{t.year}/{t.month}/{item_id}")
        assets = {
            "B04": {"href": f"{base}/B04.tif", "type": COG, "title": "Red (band 4) - 10m",
                    "roles": ["data", "reflectance"], "gsd": 10, "eo:bands": [S2_BANDS["B04"]]},
            "B08": {"href": f"{base}/B08.tif", "type": COG, "title": "NIR 1 (band 8) - 10m",
                    "roles": ["data", "reflectance"], "gsd": 10, "eo:bands": [S2_BANDS["B08"]]},
            "visual": {"href": f"{base}/TCI.tif", "type": COG, "title": "True color image",
                       "roles": ["visual"],
                       "eo:bands": [S2_BANDS["B04"], S2_BANDS["B03"], S2_BANDS["B02"]]},
            "thumbnail": draw_thumbnail(item_id, "s2", cloud),
        }
        props.update(proj_grid(geom, epsg, 10))
        items.append(make_item(item_id, geom, props, assets,
                               [EXT_EO, EXT_PROJ, EXT_VIEW], "sentinel-2-l2a-nl"))
    return items


def s2_collection(items: list[dict]) -> dict:
    props = [it["properties"] for it in items]
    return make_collection(
        "sentinel-2-l2a-nl",
        "Sentinel-2 L2A scenes, Netherlands and Belgium (sample)",
        "Optical imagery: Sentinel-2 style Level-2A surface reflectance scenes over the "
        "Netherlands and Belgium, 2019-2023, on roughly 1 x 1 degree tiles. Made-up sample "
        "data for stac-static-api; asset links point to a fictional host.",
        items,
        keywords=["sentinel-2", "optical", "multispectral", "L2A", "netherlands", "belgium"],
        license_="CC-BY-4.0",
        summaries={
            "platform": ["sentinel-2a", "sentinel-2b"],
            "constellation": ["sentinel-2"],
            "instruments": ["msi"],
            "gsd": [10],
            "proj:epsg": sorted({p["proj:epsg"] for p in props}),
            "eo:cloud_cover": minmax([p["eo:cloud_cover"] for p in props]),
            "view:sun_elevation": minmax([p["view:sun_elevation"] for p in props]),
            "eo:bands": [S2_BANDS[b] for b in ("B02", "B03", "B04", "B08")],
        },
        extensions=[EXT_EO, EXT_PROJ, EXT_VIEW, EXT_ITEM_ASSETS],
        item_assets={
            "B04": {"type": COG, "title": "Red (band 4) - 10m", "roles": ["data", "reflectance"],
                    "eo:bands": [S2_BANDS["B04"]]},
            "B08": {"type": COG, "title": "NIR 1 (band 8) - 10m",
                    "roles": ["data", "reflectance"], "eo:bands": [S2_BANDS["B08"]]},
            "visual": {"type": COG, "title": "True color image", "roles": ["visual"]},
            "thumbnail": {"type": PNG, "title": "Thumbnail", "roles": ["thumbnail"]},
        },
    )


# --------------------------------------------------------------------------- NDVI

# Europe, -10..30 E, 35..70 N, with two corners cut (7 ring positions).
EUROPE = polygon([[-10.0, 38.0], [-6.0, 35.0], [30.0, 35.0], [30.0, 62.0], [22.0, 70.0],
                  [-10.0, 70.0]])


def ndvi_items() -> list[dict]:
    items = []
    for month in range(1, 13):
        start = utc(2022, month, 1)
        nxt = utc(2023, 1, 1) if month == 12 else utc(2022, month + 1, 1)
        end = nxt - dt.timedelta(seconds=1)
        item_id = f"ndvi-europe-2022-{month:02d}"
        props: dict = {"title": f"NDVI monthly composite, Europe, 2022-{month:02d}"}
        # odd months: datetime null (range only); even months: a nominal mid-month datetime
        props["datetime"] = None if month % 2 else iso(start + dt.timedelta(days=14))
        props["start_datetime"] = iso(start)
        props["end_datetime"] = iso(end)
        props["gsd"] = 1000
        props["ndvi_mean"] = round(0.25 + 0.35 * math.sin(math.pi * (month - 1) / 11)
                                   + rand(-0.02, 0.02), 3)
        base = f"{HOST}/ndvi-europe-monthly/2022/{month:02d}/{item_id}"
        assets = {
            "ndvi": {"href": f"{base}/ndvi.tif", "type": COG,
                     "title": "NDVI (-1..1, scaled by 10000)", "roles": ["data"]},
            "thumbnail": draw_thumbnail(item_id, "ndvi", props["ndvi_mean"]),
        }
        props.update(proj_grid(EUROPE, 4326, 0.01))  # ~1 km
        items.append(make_item(item_id, EUROPE, props, assets, [EXT_PROJ], "ndvi-europe-monthly"))
    return items


def ndvi_collection(items: list[dict]) -> dict:
    return make_collection(
        "ndvi-europe-monthly",
        "Monthly NDVI composites, Europe 2022 (sample)",
        "Monthly NDVI (Normalized Difference Vegetation Index) maximum-value composites over "
        "Europe for 2022, one layer per month at 1 km. A vegetation index layer; made-up sample "
        "data for stac-static-api.",
        items,
        keywords=["NDVI", "vegetation"],
        license_="CC-BY-4.0",
        summaries={"gsd": [1000], "proj:epsg": [4326],
                   "ndvi_mean": minmax([it["properties"]["ndvi_mean"] for it in items])},
        extensions=[EXT_PROJ],
    )


# --------------------------------------------------------------------------- CORINE


def corine_items() -> list[dict]:
    # (id, datetime or None, start, end, west, south, east, north, description)
    layers = [
        ("clc-2006", utc(2006, 1, 1), None, None, -24.5, 34.5, 35.0, 71.2,
         "Land cover layer, reference year 2006"),
        ("clc-2012", utc(2012, 1, 1), None, None, -25.0, 34.0, 40.0, 71.5,
         "Land cover layer, reference year 2012"),
        ("clc-2018", utc(2018, 1, 1), None, None, -25.0, 34.0, 45.0, 71.5,
         "Land cover layer, reference year 2018"),
        ("clc-change-2012-2018", None, utc(2012, 1, 1), utc(2018, 12, 31, 23, 59, 59),
         -25.0, 34.0, 40.0, 71.5, "Land cover changes between 2012 and 2018"),
    ]
    items = []
    for item_id, when, start, end, w, s, e, n, desc in layers:
        cut = round(rand(2.0, 4.0), 1)
        geom = polygon([[w, s], [e - cut, s], [e, s + cut], [e, n], [w + cut, n],
                        [w, n - cut]])
        props: dict = {"title": desc, "description": f"{desc} (made-up sample data).",
                       "datetime": iso(when) if when else None}
        if when is None:
            assert start is not None and end is not None
            props["start_datetime"] = iso(start)
            props["end_datetime"] = iso(end)
        props["gsd"] = 100
        base = f"{HOST}/corine-land-cover/{item_id}"
        assets = {
            "landcover": {"href": f"{base}/{item_id}.tif", "type": COG,
                          "title": desc, "roles": ["data"]},
            "legend": {"href": f"{base}/legend.png", "type": PNG, "title": "Legend",
                       "roles": ["metadata"]},
            "thumbnail": draw_thumbnail(item_id, "landcover"),
        }
        props.update(proj_grid(geom, 4326, 0.001))  # ~100 m
        items.append(make_item(item_id, geom, props, assets, [EXT_PROJ], "corine-land-cover"))
    return items


def corine_collection(items: list[dict]) -> dict:
    return make_collection(
        "corine-land-cover",
        "CORINE style land cover, Europe (sample)",
        "Pan-European land cover layers for the reference years 2006, 2012 and 2018 and a "
        "2012-2018 change layer, 100 m. The series is ongoing, so the temporal extent has an "
        "open end. Made-up sample data for stac-static-api.",
        items,
        keywords=["land cover", "corine", "europe"],
        license_="proprietary",
        license_link={"rel": "license", "href": f"{HOST}/licenses/sample-land-cover.html",
                      "type": "text/html", "title": "Sample land cover data licence"},
        summaries={"gsd": [100], "proj:epsg": [4326]},
        extensions=[EXT_PROJ],
        open_end=True,
    )


# --------------------------------------------------------------------------- DEM

DEM_MAIN = [(45, 6), (45, 7), (46, 7), (46, 8), (46, 9), (46, 10), (47, 10)]
DEM_EXTRA = [(46, 11), (47, 12), (47, 13)]
DEM_NULL_GEOMETRY_ID = "dem-alps-void-fill-report"


def dem_tile_item(lat: int, lon: int) -> dict:
    item_id = f"dem-alps-n{lat:02d}e{lon:03d}"
    t = utc(2015, 1, 1) + dt.timedelta(days=rand_int(0, 5 * 365))
    geom = footprint(lon + 0.5, lat + 0.5, 0.5, 0.5, extra=0)
    props = {
        "title": f"Elevation tile N{lat:02d}E{lon:03d}",
        "datetime": iso(t),
        "gsd": 30,
        "proj:epsg": 4326,
        "min_elevation": round(rand(150, 900)),
        "max_elevation": round(rand(2400, 4700)),
        **proj_grid(geom, 4326, 1 / 3600),  # one arc-second, ~30 m
    }
    base = f"{HOST}/dem-alps/{item_id}"
    assets = {
        "elevation": {"href": f"{base}/{item_id}.tif", "type": COG,
                      "title": "Elevation (m above EGM2008)", "roles": ["data"]},
        "hillshade": {"href": f"{base}/hillshade.png", "type": PNG, "title": "Hillshade",
                      "roles": ["overview", "visual"]},
        "thumbnail": draw_thumbnail(item_id, "dem"),
    }
    return make_item(item_id, geom, props, assets, [EXT_PROJ], "dem-alps")


def dem_items() -> tuple[list[dict], list[dict]]:
    main = [dem_tile_item(lat, lon) for lat, lon in DEM_MAIN]
    report = make_item(
        DEM_NULL_GEOMETRY_ID, None,
        {"title": "Void filling report for the Alps elevation tiles",
         "description": "A non-spatial item: processing report, hence geometry null.",
         "datetime": iso(utc(2020, 11, 30, 12))},
        {"report": {"href": f"{HOST}/dem-alps/{DEM_NULL_GEOMETRY_ID}.pdf",
                    "type": "application/pdf", "title": "Report", "roles": ["metadata"]}},
        [], "dem-alps")
    extra = [dem_tile_item(lat, lon) for lat, lon in DEM_EXTRA]
    return main + [report], extra


def dem_collection(items: list[dict]) -> dict:
    props = [it["properties"] for it in items if it["geometry"] is not None]
    return make_collection(
        "dem-alps",
        "Digital elevation model tiles, Alps (sample)",
        "1 x 1 degree elevation (DEM) tiles over the Alps at 30 m, plus a non-spatial "
        "processing report. Some tiles sit in the nested catalog tiles-extra. Made-up sample "
        "data for stac-static-api.",
        items,
        keywords=["elevation", "DEM", "alps"],
        license_="CC-BY-4.0",
        summaries={"gsd": [30], "proj:epsg": [4326],
                   "min_elevation": minmax([p["min_elevation"] for p in props]),
                   "max_elevation": minmax([p["max_elevation"] for p in props])},
        extensions=[EXT_PROJ],
    )


# --------------------------------------------------------------------------- misc (loose item)

LOOSE_ID = "aerial-wageningen-2021"


def loose_item() -> dict:
    geom = footprint(5.665, 51.973, 0.018, 0.012, angle_deg=2.5, extra=1, bump=0.002)
    props = {
        "title": "Aerial photo of Wageningen, spring 2021",
        "datetime": iso(utc(2021, 5, 12, 11, 20)),
        "gsd": 0.25,
    }
    assets = {
        "image": {"href": f"{HOST}/aerial/{LOOSE_ID}/{LOOSE_ID}.tif", "type": COG,
                  "title": "RGB orthophoto, 25 cm", "roles": ["data", "visual"]},
        "thumbnail": draw_thumbnail(LOOSE_ID, "aerial"),
    }
    props.update(proj_grid(geom, 32631, 0.25))
    return make_item(LOOSE_ID, geom, props, assets, [EXT_PROJ])  # no collection


# --------------------------------------------------------------------------- writing


def link(rel: str, href: str, mtype: str = "application/json", title: str | None = None) -> dict:
    out = {"rel": rel, "href": href, "type": mtype}
    if title:
        out["title"] = title
    return out


def write(path: Path, obj: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(obj, indent=2, ensure_ascii=False) + "\n"
    path.write_text(text, encoding="utf-8", newline="\n")


def attach_items(parent: dict, parent_dir: Path, items: list[dict], depth: int,
                 collection_href: str | None) -> None:
    """Write `items` under `parent_dir/<id>/<id>.json`; `depth` = folders between the root
    catalog and parent_dir. Adds item links to `parent`."""
    root_href = "../" * (depth + 1) + "catalog.json"
    parent_file = "collection.json" if parent["type"] == "Collection" else "catalog.json"
    for item in sorted(items, key=lambda it: it["id"]):
        item["links"] = [link("root", root_href, title="stac-static-api sample catalog"),
                         link("parent", f"../{parent_file}")]
        if collection_href is not None:
            item["links"].append(link("collection", collection_href))
        write(parent_dir / item["id"] / f"{item['id']}.json", item)
        parent["links"].append(link("item", f"./{item['id']}/{item['id']}.json",
                                    "application/geo+json"))


def main() -> None:
    for folder in (OUT, THUMBS_OUT):
        if folder.exists():
            shutil.rmtree(folder)

    root = make_catalog(
        "sample", "stac-static-api sample catalog",
        "A small made-up STAC catalog of European layers and scenes that ships with "
        "stac-static-api for quick starts, demos and tests: Sentinel-2 style scenes, monthly "
        "NDVI composites, land cover layers, Alpine elevation tiles and one loose aerial photo.")
    root["links"].append(link("root", "./catalog.json", title=root["title"]))

    s2 = s2_items()
    ndvi = ndvi_items()
    clc = corine_items()
    dem_main, dem_extra = dem_items()
    collections = [
        (s2_collection(s2), s2, None),
        (ndvi_collection(ndvi), ndvi, None),
        (corine_collection(clc), clc, None),
        (dem_collection(dem_main + dem_extra), dem_main, dem_extra),
    ]

    for coll, items, extra in collections:
        cdir = OUT / coll["id"]
        coll["links"][:0] = [link("root", "../catalog.json", title=root["title"]),
                             link("parent", "../catalog.json", title=root["title"])]
        if extra is not None:
            sub = make_catalog(
                "dem-alps-tiles-extra", "Extra Alps elevation tiles",
                "A plain sub-catalog nested inside the dem-alps collection; its items still "
                "belong to the dem-alps collection.")
            sub["links"] = [link("root", "../../catalog.json", title=root["title"]),
                            link("parent", "../collection.json", title=coll["title"])]
            attach_items(sub, cdir / "tiles-extra", extra, depth=2,
                         collection_href="../../collection.json")
            write(cdir / "tiles-extra" / "catalog.json", sub)
            coll["links"].append(link("child", "./tiles-extra/catalog.json", title=sub["title"]))
        attach_items(coll, cdir, items, depth=1, collection_href="../collection.json")
        write(cdir / "collection.json", coll)
        root["links"].append(link("child", f"./{coll['id']}/collection.json",
                                  title=coll["title"]))

    misc = make_catalog("misc", "Miscellaneous",
                        "A plain catalog holding items that belong to no collection.")
    misc["links"] = [link("root", "../catalog.json", title=root["title"]),
                     link("parent", "../catalog.json", title=root["title"])]
    attach_items(misc, OUT / "misc", [loose_item()], depth=1, collection_href=None)
    write(OUT / "misc" / "catalog.json", misc)
    root["links"].append(link("child", "./misc/catalog.json", title=misc["title"]))

    write(OUT / "catalog.json", root)
    THUMBS_OUT.mkdir(parents=True)
    for name, data in sorted(THUMBNAILS.items()):
        (THUMBS_OUT / name).write_bytes(data)
    n = sum(1 for _ in OUT.rglob("*.json"))
    print(f"wrote {n} JSON files under {OUT} and {len(THUMBNAILS)} thumbnails under {THUMBS_OUT}")


if __name__ == "__main__":
    main()
