"""The Aggregation extension over the index's columns: counts, datetime extremes and histograms,
term and range frequencies, and spatial grids, computed with numpy over the matched positions
(nothing per item in Python).

Names, bucket keys and limits are those stac-server and stac-fastapi-elasticsearch-opensearch
serve (they pass Elasticsearch's aggregations through), so clients built for them work:

- total_count (integer), datetime_min / datetime_max (the `datetime` property; items whose
  datetime is null are not counted, as Elasticsearch's min/max skip missing values; the value is
  RFC 3339 with milliseconds, "2020-01-02T03:04:05.000Z"; null when no item has one);
- datetime_frequency: a calendar histogram of `datetime` (datetime_frequency_interval, month by
  default; weeks start on Monday), keys the bucket starts as above, empty buckets between the
  first and the last included, as date_histogram does;
- collection_frequency, and `<property>_frequency` for every other string or number property:
  term counts, the 100 most frequent (count descending, then key), `overflow` the rest;
- cloud_cover_frequency: eo:cloud_cover in the ranges <5, 5-15, 15-40, >=40 (keys "*-5.0",
  "5.0-15.0", ...; `from` inclusive, `to` exclusive), or cloud_cover_frequency_interval wide
  ranges from 0 (the last one open);
- centroid_{geohash,geotile,geohex}_grid_frequency: the cell of each item's centroid, here the
  centre of its geometry's bounding box (items have no proj:centroid to rely on);
  geometry_{geohash,geotile}_grid_frequency: every cell the geometry's bounding box has a point
  in (an item counts once in each). Cells are half-open ([west, east) x [south, north), the
  last row and column closed). The 10,000 most frequent cells, count descending then key.

Items with a null geometry are in no grid; null, array and object values in no term count.
"""

from __future__ import annotations

import math
import threading
import weakref
from datetime import UTC, datetime, timedelta
from typing import Any

import h3.api.basic_int as h3
import numpy as np

from server.errors import InvalidQueryParameter
from server.query.model import SearchQuery, check_deadline
from server.query.parameters import DEFAULT_DATETIME_INTERVAL, GRID_PRECISIONS

DAY = 86_400_000_000
WEEK = 7 * DAY
MONDAY = -3 * DAY  # 1969-12-29, the Monday before the epoch (a Thursday)
FIXED_WIDTHS = {"week": WEEK, "day": DAY, "hour": 3_600_000_000, "minute": 60_000_000, "second": 1_000_000}
MONTHS = {"year": 12, "quarter": 3, "month": 1}
MISSING_TIME = np.iinfo(np.int64).min

TERMS_SIZE = 100  # Elasticsearch terms "size" those servers give collection_frequency and platform_frequency
GRID_SIZE = 10_000  # geohash_grid's and geotile_grid's default size
MAX_BUCKETS = 65_536  # Elasticsearch's search.max_buckets: a longer histogram is a 400
MAX_GRID_CELLS = 20_000_000  # (item, cell) pairs a geometry grid may expand to
CLOUD_COVER = "eo:cloud_cover"
CLOUD_RANGES: list[tuple[float | None, float | None]] = [(None, 5.0), (5.0, 15.0), (15.0, 40.0), (40.0, None)]
GEOHASH_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"  # in ASCII order: code order is key order
MAX_MERCATOR_LAT = 85.0511287798066

FIXED: list[tuple[str, str, str | None]] = [  # name, data_type, the buckets' data_type
    ("total_count", "integer", None),
    ("datetime_min", "datetime", None),
    ("datetime_max", "datetime", None),
    ("datetime_frequency", "frequency_distribution", "datetime"),
    ("collection_frequency", "frequency_distribution", "string"),
]
GRIDS = list(GRID_PRECISIONS)
DEFAULT_NAMES = [name for name, _, _ in FIXED]  # what /aggregate computes without `aggregations`
# Properties that have aggregations of their own (or none): no <key>_frequency for them.
NOT_TERMS = {"datetime", CLOUD_COVER}


def _describe(name: str, data_type: str, buckets: str | None) -> dict[str, Any]:
    out = {"name": name, "data_type": data_type}
    if buckets is not None:
        out["frequency_distribution_data_type"] = buckets
    return out


def available(index: Any, collection: str | None = None) -> list[dict[str, Any]]:
    """The aggregations /aggregations lists (of one collection's items, when given): name,
    data_type and, for frequency distributions, the buckets' data type."""
    out = [_describe(*fixed) for fixed in FIXED]
    members = index.collection_positions(collection) if collection is not None else None

    def present(rows: np.ndarray) -> bool:
        if not len(rows):
            return False
        return members is None or bool(np.intersect1d(rows, members, assume_unique=True).size)

    cloud = index.columns.get(CLOUD_COVER)
    if cloud is not None and cloud.number is not None and present(cloud.number.rows):
        out.append(_describe("cloud_cover_frequency", "frequency_distribution", "numeric"))
    taken = {entry["name"] for entry in out} | set(GRIDS)
    for key, column in index.columns.items():
        name = f"{key}_frequency"
        if key in NOT_TERMS or column.time is not None or name in taken:
            continue
        kinds = [kind for kind, part in (("string", column.string), ("numeric", column.number))
                 if part is not None and present(part.rows)]
        if kinds:
            out.append(_describe(name, "frequency_distribution", kinds[0] if len(kinds) == 1 else "string"))
    out += [_describe(name, "frequency_distribution", "string") for name in GRIDS]
    return out


def aggregate(index: Any, query: SearchQuery, names: list[str] | None, options: dict[str, Any],
              positions: np.ndarray) -> list[dict[str, Any]]:
    """Each named aggregation of the records at ``positions`` (sorted, the query's matches);
    ``options``: the aggregation parameters (query.extra). Unknown names are a 400."""
    known = {entry["name"]: entry for entry in available(index)}
    wanted = names if names else DEFAULT_NAMES
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise InvalidQueryParameter(f"Unknown aggregations: {', '.join(unknown)}; /aggregations lists them")
    data = _Data(index, positions)
    out = []
    for name in wanted:
        out.append(_one(data, name, known[name], options))
        check_deadline(query)
    return out


def _one(data: _Data, name: str, entry: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    if name == "total_count":
        return {"name": name, "data_type": "integer", "value": len(data.positions)}
    if name in ("datetime_min", "datetime_max"):
        times = data.datetimes()
        times = times[times != MISSING_TIME]
        value = None
        if len(times):
            value = iso_millis(int(times.min() if name == "datetime_min" else times.max()))
        return {"name": name, "data_type": "datetime", "value": value}
    if name == "datetime_frequency":
        buckets = _date_histogram(data.datetimes(), options.get("datetime_frequency_interval") or DEFAULT_DATETIME_INTERVAL)
        return _frequency(name, buckets, 0)
    if name == "collection_frequency":
        codes = data.take(data.index.codes)
        return _terms(name, codes, data.index.collection_names, None)
    if name == "cloud_cover_frequency":
        return _frequency(name, _ranges(data.numbers(CLOUD_COVER), options.get("cloud_cover_frequency_interval")), 0)
    if name in GRID_PRECISIONS:
        lo, hi, default = GRID_PRECISIONS[name]
        precision = options.get(f"{name}_precision")
        return _grid(data, name, default if precision is None else int(precision))
    key = name[: -len("_frequency")]
    codes, vocab = data.strings(key)
    return _terms(name, codes, vocab, data.numbers(key))


# -- the matched records' values ------------------------------------------------------------------

# Per index (immutable): each position's value of a column, dense, made on first use. Kept out of
# the index itself, so snapshots do not carry them; dropped with the index.
_DENSE: weakref.WeakKeyDictionary[Any, dict[Any, Any]] = weakref.WeakKeyDictionary()
_DENSE_LOCK = threading.Lock()


def _cached(index: Any, key: Any, make: Any) -> Any:
    with _DENSE_LOCK:
        per = _DENSE.setdefault(index, {})
        found = per.get(key)
    if found is None:
        found = make()
        with _DENSE_LOCK:
            per[key] = found
    return found


class _Data:
    def __init__(self, index: Any, positions: np.ndarray) -> None:
        self.index = index
        self.positions = positions
        self.everything = len(positions) == index.size  # sorted and unique: all of them

    def take(self, dense: np.ndarray) -> np.ndarray:
        return dense if self.everything else dense[self.positions]

    def datetimes(self) -> np.ndarray:
        def make() -> np.ndarray:
            out = np.full(self.index.size, MISSING_TIME, dtype=np.int64)
            column = self.index.columns.get("datetime")
            if column is not None and column.time is not None:
                out[column.time.rows] = column.time.values
            return out

        return self.take(_cached(self.index, "datetime", make))

    def numbers(self, key: str) -> np.ndarray:
        def make() -> np.ndarray:
            out = np.full(self.index.size, np.nan)
            column = self.index.columns.get(key)
            if column is not None and column.number is not None:
                out[column.number.rows] = column.number.values
            return out

        return self.take(_cached(self.index, ("number", key), make))

    def strings(self, key: str) -> tuple[np.ndarray, list[str]]:
        column = self.index.columns.get(key)
        if column is None or column.string is None:
            return np.zeros(0, dtype=np.int32), []
        part = column.string

        def make() -> np.ndarray:
            out = np.full(self.index.size, -1, dtype=np.int32)
            out[part.rows] = part.codes
            return out

        return self.take(_cached(self.index, ("string", key), make)), part.vocab

    def centroids(self) -> tuple[np.ndarray, np.ndarray]:
        def make() -> tuple[np.ndarray, np.ndarray]:
            b = self.index.bounds
            return (b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2

        x, y = _cached(self.index, "centroid", make)
        return self.take(x), self.take(y)

    def boxes(self) -> np.ndarray:
        return self.take(self.index.bounds)

    def geohex(self, resolution: int) -> np.ndarray:
        """Each position's H3 cell of its centroid (0: none). The h3 call is per point (~1.3 us;
        h3ronpy's vectorised call measured only ~2x faster, not worth a dependency), so the cells
        of the whole index are made once per resolution and kept; until they are, a match of under
        an eighth of the index gets its own cells only (a bbox over 1M items does not pay ~1.3 s)."""
        key = ("geohex", resolution)
        with _DENSE_LOCK:
            kept = _DENSE.get(self.index, {}).get(key)
        if kept is not None:
            return self.take(kept)
        if not self.everything and len(self.positions) * 8 < self.index.size:
            return _h3_cells(self.index.bounds[self.positions], resolution)
        return self.take(_cached(self.index, key, lambda: _h3_cells(self.index.bounds, resolution)))


def _h3_cells(bounds: np.ndarray, resolution: int) -> np.ndarray:
    x, y = (bounds[:, 0] + bounds[:, 2]) / 2, (bounds[:, 1] + bounds[:, 3]) / 2
    out = np.zeros(len(bounds), dtype=np.int64)  # cells are below 2**63
    has = np.flatnonzero(~np.isnan(x))
    out[has] = np.fromiter(map(h3.latlng_to_cell, y[has].tolist(), x[has].tolist(), [resolution] * len(has)),
                           dtype=np.int64, count=len(has))
    return out


# -- bucket documents ---------------------------------------------------------------------------


def _frequency(name: str, buckets: list[dict[str, Any]], overflow: int) -> dict[str, Any]:
    return {"name": name, "data_type": "frequency_distribution", "overflow": overflow, "buckets": buckets}


def _bucket(key: Any, data_type: str, frequency: int, **ranges: Any) -> dict[str, Any]:
    out = {"key": key, "data_type": data_type, "frequency": frequency}
    out.update({k: v for k, v in ranges.items() if v is not None})
    return out


def iso_millis(micros: int) -> str:
    """Elasticsearch's rendering of a date: milliseconds (truncated), Z."""
    millis = micros // 1000
    d = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=millis)
    return f"{d.year:04d}-{d.month:02d}-{d.day:02d}T{d.hour:02d}:{d.minute:02d}:{d.second:02d}.{millis % 1000:03d}Z"


def _date_histogram(times: np.ndarray, interval: str) -> list[dict[str, Any]]:
    times = times[times != MISSING_TIME]
    if not len(times):
        return []
    if interval in FIXED_WIDTHS:
        width = FIXED_WIDTHS[interval]
        origin = MONDAY if interval == "week" else 0
        slots = (times - origin) // width
        first, last = int(slots.min()), int(slots.max())
        _check_buckets(last - first + 1, interval)
        counts = np.bincount(slots - first, minlength=last - first + 1)
        starts = [origin + (first + i) * width for i in range(len(counts))]
    else:
        # Calendar buckets: the month of each day, from a table over the days spanned.
        days = times // DAY
        lo_day, hi_day = int(days.min()), int(days.max())
        table = np.arange(lo_day, hi_day + 1, dtype=np.int64).astype("datetime64[D]").astype("datetime64[M]")
        step = MONTHS[interval]
        months = table.astype(np.int64) // step  # months since 1970-01, grouped by the interval
        slots = months[days - lo_day]
        first, last = int(months[0]), int(months[-1])
        _check_buckets(last - first + 1, interval)
        counts = np.bincount(slots - first, minlength=last - first + 1)
        starts = [_month_start((first + i) * step) for i in range(len(counts))]
    return [_bucket(iso_millis(start), "datetime", int(n)) for start, n in zip(starts, counts.tolist())]


def _month_start(month: int) -> int:
    """Microseconds at the start of month number ``month`` since 1970-01."""
    return int(np.datetime64(month, "M").astype("datetime64[us]").astype(np.int64))


def _check_buckets(count: int, interval: str) -> None:
    if count > MAX_BUCKETS:
        raise InvalidQueryParameter(
            f"datetime_frequency would have {count} buckets, over the limit of {MAX_BUCKETS}: "
            f"use a longer datetime_frequency_interval than {interval!r} or a narrower datetime")


def _number_key(value: float) -> Any:
    return int(value) if value.is_integer() and abs(value) < 2**53 else value


def _terms(name: str, codes: np.ndarray, vocab: list[str], numbers: np.ndarray | None) -> dict[str, Any]:
    """Term counts of string codes (-1: none) and numbers (NaN: none), most frequent first."""
    entries: list[tuple[int, int, Any]] = []  # (-count, kind: numbers first, key)
    if len(vocab) and len(codes):
        counts = np.bincount(codes[codes >= 0], minlength=len(vocab))
        found = np.flatnonzero(counts)
        entries += [(-int(counts[i]), 1, vocab[i]) for i in found.tolist()]
    if numbers is not None and len(numbers):
        values, counts = np.unique(numbers[~np.isnan(numbers)], return_counts=True)
        entries += [(-int(n), 0, _number_key(v)) for v, n in zip(values.tolist(), counts.tolist())]
    if len(entries) > TERMS_SIZE:
        entries.sort(key=lambda e: (e[0], e[1], e[2]))
    else:
        entries.sort()
    kept, rest = entries[:TERMS_SIZE], entries[TERMS_SIZE:]
    buckets = [_bucket(key, "string" if kind else "numeric", -count) for count, kind, key in kept]
    return _frequency(name, buckets, -sum(e[0] for e in rest))


def _number_text(value: float) -> str:
    """Java's Double.toString for the plain values range keys use: 5.0, 12.5."""
    return repr(float(value))


def _ranges(values: np.ndarray, width: float | None) -> list[dict[str, Any]]:
    values = values[~np.isnan(values)]
    if width is None:
        ranges = CLOUD_RANGES
    else:
        starts = [i * width for i in range(int(math.ceil(100 / width - 1e-9)))]
        ranges = [(s, starts[i + 1] if i + 1 < len(starts) else None) for i, s in enumerate(starts)]
    out = []
    for lo, hi in ranges:
        inside = np.ones(len(values), dtype=bool)
        if lo is not None:
            inside &= values >= lo
        if hi is not None:
            inside &= values < hi
        key = f"{'*' if lo is None else _number_text(lo)}-{'*' if hi is None else _number_text(hi)}"
        out.append(_bucket(key, "numeric", int(inside.sum()), **{"from": lo, "to": hi}))
    return out


# -- grids ------------------------------------------------------------------------------------------


def _cell_index(values: np.ndarray, lo: float, span: float, bits: int) -> np.ndarray:
    """The half-open cell [lo + k*w, lo + (k+1)*w) of each value, w = span / 2**bits (the last cell
    closed): what bisecting the range ``bits`` times gives. Cell edges are exact doubles, so the
    float division's rounding is corrected against them."""
    n = 1 << bits
    width = span / n
    k = np.clip(np.floor((values - lo) / width), 0, n - 1).astype(np.int64)
    k -= (values < lo + k * width) & (k > 0)
    k += (values >= lo + (k + 1) * width) & (k < n - 1)
    return k


def _tile_y(lat: np.ndarray, zoom: int) -> np.ndarray:
    n = 1 << zoom
    s = np.sin(np.radians(np.clip(lat, -MAX_MERCATOR_LAT, MAX_MERCATOR_LAT)))
    y = np.floor((0.5 - np.log((1 + s) / (1 - s)) / (4 * math.pi)) * n)
    return np.clip(y, 0, n - 1).astype(np.int64)


def _interleave(x: np.ndarray, y: np.ndarray, precision: int) -> np.ndarray:
    """Geohash bits: longitude first, then alternating; x has ceil(5p/2) bits, y floor(5p/2)."""
    bits = 5 * precision
    code = np.zeros(len(x), dtype=np.int64)
    xb, yb = (bits + 1) // 2, bits // 2
    for i in range(bits):
        if i % 2 == 0:
            xb -= 1
            code = (code << 1) | ((x >> xb) & 1)
        else:
            yb -= 1
            code = (code << 1) | ((y >> yb) & 1)
    return code


def _geohash_text(code: int, precision: int) -> str:
    return "".join(GEOHASH_ALPHABET[(code >> (5 * (precision - 1 - i))) & 31] for i in range(precision))


def _grid(data: _Data, name: str, precision: int) -> dict[str, Any]:
    source, kind = name.split("_")[0], name.split("_")[1]
    if source == "centroid":
        if kind == "geohex":
            cells = data.geohex(precision)
            cells = cells[cells != 0]
            unique, counts = np.unique(cells, return_counts=True)
            return _top(name, unique, counts, lambda code: h3.int_to_str(int(code)))
        x, y = data.centroids()
        keep = ~np.isnan(x)
        x, y = x[keep], y[keep]
        if kind == "geohash":
            xi, yi = _cell_index(x, -180.0, 360.0, (5 * precision + 1) // 2), _cell_index(y, -90.0, 180.0, 5 * precision // 2)
        else:
            xi, yi = _cell_index(x, -180.0, 360.0, precision), _tile_y(y, precision)
    else:
        boxes = data.boxes()
        boxes = boxes[~np.isnan(boxes[:, 0])]
        if kind == "geohash":
            xbits, ybits = (5 * precision + 1) // 2, 5 * precision // 2
            x0, x1 = _cell_index(boxes[:, 0], -180.0, 360.0, xbits), _cell_index(boxes[:, 2], -180.0, 360.0, xbits)
            y0, y1 = _cell_index(boxes[:, 1], -90.0, 180.0, ybits), _cell_index(boxes[:, 3], -90.0, 180.0, ybits)
        else:
            x0, x1 = _cell_index(boxes[:, 0], -180.0, 360.0, precision), _cell_index(boxes[:, 2], -180.0, 360.0, precision)
            y0, y1 = _tile_y(boxes[:, 3], precision), _tile_y(boxes[:, 1], precision)  # tile rows count southwards
        xi, yi = _expand(x0, x1, y0, y1)
    ybits = 5 * precision // 2 if kind == "geohash" else precision
    unique, counts = np.unique((xi << ybits) | yi, return_counts=True)
    ux, uy = unique >> ybits, unique & ((1 << ybits) - 1)
    if kind == "geohash":
        codes = _interleave(ux, uy, precision)
        return _top(name, codes, counts, lambda code: _geohash_text(int(code), precision))
    # geotile keys z/x/y: tie order by (x, y), the packed code's order
    return _top(name, unique, counts, lambda code: f"{precision}/{int(code) >> ybits}/{int(code) & ((1 << ybits) - 1)}")


def _expand(x0: np.ndarray, x1: np.ndarray, y0: np.ndarray, y1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every (x, y) cell of each box of cells [x0, x1] x [y0, y1]."""
    nx, ny = x1 - x0 + 1, y1 - y0 + 1
    sizes = nx * ny  # each at most 2**60 (30 bits a side)
    # Each box checked first: their int64 sum wraps (qa19: 16 world-wide boxes at geohash
    # precision 12, 2**60 cells each, summed to 0, and np.repeat then took the process down
    # with a segfault; 8 of them summed negative, a ValueError and a 500). Once each is under
    # the limit, the sum cannot wrap.
    total = MAX_GRID_CELLS + 1 if (sizes > MAX_GRID_CELLS).any() else int(sizes.sum())
    if total > MAX_GRID_CELLS:
        raise InvalidQueryParameter(
            f"The geometry grid would count over {MAX_GRID_CELLS} cells of items: "
            "lower its precision or narrow the search")
    owner = np.repeat(np.arange(len(sizes)), sizes)
    offset = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(sizes) - sizes, sizes)
    width = nx[owner]
    return x0[owner] + offset % width, y0[owner] + offset // width


def _top(name: str, codes: np.ndarray, counts: np.ndarray, text: Any) -> dict[str, Any]:
    """The GRID_SIZE most frequent cells (ties: in code order), count descending then key."""
    order = np.lexsort((codes, -counts))
    kept, rest = order[:GRID_SIZE], order[GRID_SIZE:]
    entries = sorted((-int(counts[i]), text(codes[i])) for i in kept.tolist())
    buckets = [_bucket(key, "string", -count) for count, key in entries]
    return _frequency(name, buckets, int(counts[rest].sum()))


def cell_bounds(name: str, key: Any) -> tuple[float, float, float, float] | None:
    """The (west, south, east, north) in degrees of a grid aggregation's bucket key (a
    geohash, a geotile "z/x/y", an H3 cell), for a page to say where the cell is; None for
    another aggregation or a key that is not such a cell."""
    if name not in GRIDS or not isinstance(key, str):
        return None
    kind = name.split("_")[1]
    try:
        if kind == "geohash":
            west, south, east, north = -180.0, -90.0, 180.0, 90.0
            bit = 0
            for char in key:
                code = GEOHASH_ALPHABET.index(char)
                for shift in range(4, -1, -1):
                    half = (code >> shift) & 1
                    if bit % 2 == 0:
                        mid = (west + east) / 2
                        west, east = (mid, east) if half else (west, mid)
                    else:
                        mid = (south + north) / 2
                        south, north = (mid, north) if half else (south, mid)
                    bit += 1
            return west, south, east, north
        if kind == "geotile":
            zoom, x, y = (int(part) for part in key.split("/"))
            n = 1 << zoom
            def lat(row: int) -> float:
                return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))
            return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)
        return _h3_bounds(h3.str_to_int(key))
    except (ValueError, TypeError):
        return None


def _unit(lat: float, lng: float) -> tuple[float, float, float]:
    phi, lam = math.radians(lat), math.radians(lng)
    return math.cos(phi) * math.cos(lam), math.cos(phi) * math.sin(lam), math.sin(phi)


def _cross(u: tuple[float, float, float], v: tuple[float, float, float]) -> tuple[float, float, float]:
    return u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]


def _arc_extreme_latitudes(a: tuple[float, float], b: tuple[float, float]) -> list[float]:
    """The latitudes, in degrees, of the points of the great-circle arc from a to b (lat, lng)
    farthest north and south of its ends (an H3 edge is such an arc: near a pole it bulges
    poleward of both its vertices); none when the extremes are the ends."""
    u, v = _unit(*a), _unit(*b)
    n = _cross(u, v)
    size = math.sqrt(n[0] ** 2 + n[1] ** 2 + n[2] ** 2)
    if size < 1e-15:
        return []
    nx, ny, nz = n[0] / size, n[1] / size, n[2] / size
    top = (-nz * nx, -nz * ny, 1.0 - nz * nz)  # the circle's northernmost point (unnormalised)
    if top[2] < 1e-15:
        return []  # the equator or close to it: the ends are the extremes
    out = []
    for p in (top, (-top[0], -top[1], -top[2])):
        on_arc = sum(x * y for x, y in zip(_cross(u, p), n)) >= 0 and sum(x * y for x, y in zip(_cross(p, v), n)) >= 0
        if on_arc:
            out.append(math.degrees(math.asin(p[2] / math.sqrt(top[0] ** 2 + top[1] ** 2 + top[2] ** 2))))
    return out


def _h3_bounds(cell: int) -> tuple[float, float, float, float]:
    """An H3 cell's box as STAC writes one (RFC 7946 §5.2): west > east for a cell crossing
    the antimeridian, every longitude for a cell holding a pole (min/max of the vertices'
    longitudes made a box around the globe of both). The ring's longitudes are followed edge
    by edge (each step the shorter way round), so the box is the longitudes the ring passes;
    its latitudes include the edges' own extremes (a geodesic bulges towards the pole)."""
    ring = h3.cell_to_boundary(cell)
    lats = [lat for lat, _ in ring]
    for a, b in zip(ring, [*ring[1:], ring[0]]):
        lats.extend(_arc_extreme_latitudes(a, b))
    x = west = east = ring[0][1]
    for (_, a), (_, b) in zip(ring, [*ring[1:], ring[0]]):
        x += (b - a + 180.0) % 360.0 - 180.0
        west, east = min(west, x), max(east, x)
    if abs(x - ring[0][1]) > 180.0:  # the ring went once round: it holds a pole
        return (-180.0, min(lats), 180.0, 90.0) if sum(lats) > 0 else (-180.0, -90.0, 180.0, max(lats))
    if west < -180.0:
        west += 360.0
    if east > 180.0:
        east -= 360.0
    return west, min(lats), east, max(lats)
