"""Brute-force aggregations (the Aggregation extension) of a list of item Records, one item at a
time in plain Python: no numpy, no server code. Rules (those of stac-server and
stac-fastapi-elasticsearch-opensearch, i.e. of the Elasticsearch aggregations they run):

- total_count: the number of items;
- datetime_min / datetime_max: of the items' `datetime` property (null: not counted), as
  "YYYY-MM-DDTHH:MM:SS.mmmZ" (milliseconds, truncated); null when none has one;
- datetime_frequency: items by the calendar year / quarter / month / ISO week (from Monday) /
  day / hour / minute / second of their datetime, every bucket from the first to the last, keys
  as above;
- collection_frequency and <property>_frequency: the items' string and number values (not
  booleans, arrays, objects or null), count descending then numbers before strings then value;
  the first 100, `overflow` the count of the rest;
- cloud_cover_frequency: eo:cloud_cover in [*,5) [5,15) [15,40) [40,*), or ranges of a width;
- grids: geohash by bisection (a value on a cell edge belongs to the cell above it), geotile by
  the Web Mercator formula, H3 by the h3 package; a centroid is the centre of the geometry's
  bounding box; a geometry grid counts an item in every cell its bounding box has a point in.
"""

from __future__ import annotations

import math
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import h3

from tests.oracles.records import Record, instant

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
GEOHASH = "0123456789bcdefghjkmnpqrstuvwxyz"


def iso_millis(micros: int) -> str:
    millis = micros // 1000
    d = EPOCH + timedelta(milliseconds=millis)
    return d.strftime("%Y-%m-%dT%H:%M:%S").rjust(19, "0") + f".{millis % 1000:03d}Z"


def _micros(d: datetime) -> int:
    delta = d - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _bucket_start(d: datetime, interval: str) -> datetime:
    if interval == "year":
        return datetime(d.year, 1, 1, tzinfo=UTC)
    if interval == "quarter":
        return datetime(d.year, (d.month - 1) // 3 * 3 + 1, 1, tzinfo=UTC)
    if interval == "month":
        return datetime(d.year, d.month, 1, tzinfo=UTC)
    day = datetime(d.year, d.month, d.day, tzinfo=UTC)
    if interval == "week":
        return day - timedelta(days=d.weekday())
    if interval == "day":
        return day
    if interval == "hour":
        return day + timedelta(hours=d.hour)
    if interval == "minute":
        return day + timedelta(hours=d.hour, minutes=d.minute)
    return day + timedelta(hours=d.hour, minutes=d.minute, seconds=d.second)


def _next(d: datetime, interval: str) -> datetime:
    if interval in ("year", "quarter", "month"):
        months = d.year * 12 + d.month - 1 + {"year": 12, "quarter": 3, "month": 1}[interval]
        return datetime(months // 12, months % 12 + 1, 1, tzinfo=UTC)
    return d + {"week": timedelta(days=7), "day": timedelta(days=1), "hour": timedelta(hours=1),
                "minute": timedelta(minutes=1), "second": timedelta(seconds=1)}[interval]


def _datetimes(records: list[Record]) -> list[int]:
    return [t for t in (instant(r.members.get("datetime")) for r in records) if t is not None]


def _frequency(name: str, buckets: list[dict[str, Any]], overflow: int = 0) -> dict[str, Any]:
    return {"name": name, "data_type": "frequency_distribution", "overflow": overflow, "buckets": buckets}


def _terms(name: str, values: list[Any]) -> dict[str, Any]:
    counts = Counter(values)
    order = sorted(counts.items(), key=lambda kv: (-kv[1], isinstance(kv[0], str), kv[0]))
    buckets = [{"key": k, "data_type": "string" if isinstance(k, str) else "numeric", "frequency": n}
               for k, n in order[:100]]
    return _frequency(name, buckets, sum(n for _, n in order[100:]))


def _scalar(v: Any) -> bool:
    return isinstance(v, str) or (isinstance(v, (int, float)) and not isinstance(v, bool))


def _number_text(v: float) -> str:
    return repr(float(v))


def _cell(v: float, lo: float, hi: float, bits: int) -> int:
    """The bisection index of v in [lo, hi]: bit 1 when v >= the middle."""
    k = 0
    for _ in range(bits):
        mid = (lo + hi) / 2
        k <<= 1
        if v >= mid:
            k |= 1
            lo = mid
        else:
            hi = mid
    return k


def _geohash(x: int, y: int, precision: int) -> str:
    bits, xb, yb, code = 5 * precision, (5 * precision + 1) // 2, 5 * precision // 2, 0
    for i in range(bits):
        if i % 2 == 0:
            xb -= 1
            code = code << 1 | (x >> xb) & 1
        else:
            yb -= 1
            code = code << 1 | (y >> yb) & 1
    return "".join(GEOHASH[(code >> 5 * (precision - 1 - i)) & 31] for i in range(precision))


def _tile_y(lat: float, zoom: int) -> int:
    n = 2**zoom
    lat = max(-85.0511287798066, min(85.0511287798066, lat))
    s = math.sin(math.radians(lat))
    return int(max(0, min(n - 1, math.floor((0.5 - math.log((1 + s) / (1 - s)) / (4 * math.pi)) * n))))


def _cells(kind: str, minx: float, miny: float, maxx: float, maxy: float, precision: int) -> list[str]:
    if kind == "geohash":
        xb, yb = (5 * precision + 1) // 2, 5 * precision // 2
        xs = range(_cell(minx, -180, 180, xb), _cell(maxx, -180, 180, xb) + 1)
        ys = range(_cell(miny, -90, 90, yb), _cell(maxy, -90, 90, yb) + 1)
        return [_geohash(x, y, precision) for x in xs for y in ys]
    xs = range(_cell(minx, -180, 180, precision), _cell(maxx, -180, 180, precision) + 1)
    ys = range(_tile_y(maxy, precision), _tile_y(miny, precision) + 1)
    return [f"{precision}/{x}/{y}" for x in xs for y in ys]


def _grid(name: str, records: list[Record], precision: int) -> dict[str, Any]:
    source, kind = name.split("_")[:2]
    counts: Counter[str] = Counter()
    for r in records:
        if r.geometry is None:
            continue
        minx, miny, maxx, maxy = r.geometry.bounds
        if source == "centroid":
            cx, cy = (minx + maxx) / 2, (miny + maxy) / 2
            if kind == "geohex":
                counts[h3.latlng_to_cell(cy, cx, precision)] += 1
            else:
                counts.update(_cells(kind, cx, cy, cx, cy, precision))
        else:
            counts.update(_cells(kind, minx, miny, maxx, maxy, precision))
    order = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return _frequency(name, [{"key": k, "data_type": "string", "frequency": n} for k, n in order[:10_000]],
                      sum(n for _, n in order[10_000:]))


GRID_DEFAULTS = {"centroid_geohash_grid_frequency": 1, "centroid_geotile_grid_frequency": 0,
                 "centroid_geohex_grid_frequency": 0, "geometry_geohash_grid_frequency": 1,
                 "geometry_geotile_grid_frequency": 0}


def aggregate(records: list[Record], names: list[str], options: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each named aggregation of ``records`` (the items a search matched); ``options``: the
    /aggregate parameters (datetime_frequency_interval, cloud_cover_frequency_interval, precisions)."""
    options = options or {}
    out = []
    for name in names:
        if name == "total_count":
            out.append({"name": name, "data_type": "integer", "value": len(records)})
        elif name in ("datetime_min", "datetime_max"):
            times = _datetimes(records)
            value = iso_millis((min if name == "datetime_min" else max)(times)) if times else None
            out.append({"name": name, "data_type": "datetime", "value": value})
        elif name == "datetime_frequency":
            interval = options.get("datetime_frequency_interval") or "month"
            starts = Counter(_micros(_bucket_start(EPOCH + timedelta(microseconds=t), interval))
                             for t in _datetimes(records))
            buckets = []
            if starts:
                d, last = EPOCH + timedelta(microseconds=min(starts)), max(starts)
                while _micros(d) <= last:
                    buckets.append({"key": iso_millis(_micros(d)), "data_type": "datetime", "frequency": starts[_micros(d)]})
                    d = _next(d, interval)
            out.append(_frequency(name, buckets))
        elif name == "collection_frequency":
            out.append(_terms(name, [r.collection for r in records if r.collection is not None]))
        elif name == "cloud_cover_frequency":
            values = [v for v in (r.members.get("eo:cloud_cover") for r in records) if _scalar(v) and not isinstance(v, str)]
            width = options.get("cloud_cover_frequency_interval")
            if width is None:
                ranges: list[tuple[Any, Any]] = [(None, 5.0), (5.0, 15.0), (15.0, 40.0), (40.0, None)]
            else:
                starts_ = [i * width for i in range(math.ceil(100 / width - 1e-9))]
                ranges = [(s, starts_[i + 1] if i + 1 < len(starts_) else None) for i, s in enumerate(starts_)]
            buckets = []
            for lo, hi in ranges:
                n = sum(1 for v in values if (lo is None or v >= lo) and (hi is None or v < hi))
                bucket = {"key": f"{'*' if lo is None else _number_text(lo)}-{'*' if hi is None else _number_text(hi)}",
                          "data_type": "numeric", "frequency": n}
                if lo is not None:
                    bucket["from"] = lo
                if hi is not None:
                    bucket["to"] = hi
                buckets.append(bucket)
            out.append(_frequency(name, buckets))
        elif name in GRID_DEFAULTS:
            precision = options.get(f"{name}_precision")
            out.append(_grid(name, records, GRID_DEFAULTS[name] if precision is None else int(precision)))
        else:
            key = name[: -len("_frequency")]
            out.append(_terms(name, [v for v in (r.members.get(key) for r in records) if _scalar(v)]))
    return out
