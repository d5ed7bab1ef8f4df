"""Aggregation timings over a generated catalog (bench/README.md): the median of repeated
Index.aggregate calls, in process (no HTTP), for the Aggregation extension's targets.

    python bench/aggregate.py ROOT [ROOT ...] [--repeat 21]   (ndjson layout: OUT/*/items.ndjson)

Rows: total_count + datetime_frequency (month) + collection_frequency over everything and over a
bbox + datetime match; the centroid geohex grid at precision 3 (the first call per resolution
computes every item's H3 cell once; it is reported apart), geohash 5 and geotile 8 grids, and
geometry geohash 3.
"""

from __future__ import annotations

import argparse
import statistics
import time

from server.catalog.loader import load_catalogs
from server.query.datetime import parse_datetime_interval
from server.query.model import SearchQuery

CORE = ["total_count", "datetime_frequency", "collection_frequency"]


def timed(fn, repeat: int) -> tuple[float, float]:
    """(first call, median of the next ``repeat``) in milliseconds."""
    t = time.perf_counter()
    fn()
    first = (time.perf_counter() - t) * 1000
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append((time.perf_counter() - t) * 1000)
    return first, statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("roots", nargs="+", help="catalog roots, or items.ndjson files")
    ap.add_argument("--repeat", type=int, default=21)
    args = ap.parse_args()
    t = time.perf_counter()
    index, _ = load_catalogs(args.roots)
    print(f"loaded {index.size} items in {time.perf_counter() - t:.1f} s")
    everything = SearchQuery()
    half_year = parse_datetime_interval("2021-01-01T00:00:00Z/2021-06-30T23:59:59Z")
    window = SearchQuery(bbox=(5.0, 45.0, 10.0, 50.0), datetime=half_year)
    print(f"bbox+datetime matches {len(index.match(window))} items")
    rows = [
        ("core (total, datetime month, collection) over everything", everything, CORE, {}),
        ("core over bbox 5,45,10,50 + first half of 2021", window, CORE, {}),
        ("centroid_geohex_grid_frequency precision 3, everything", everything, ["centroid_geohex_grid_frequency"],
         {"centroid_geohex_grid_frequency_precision": 3}),
        ("centroid_geohash_grid_frequency precision 5, everything", everything, ["centroid_geohash_grid_frequency"],
         {"centroid_geohash_grid_frequency_precision": 5}),
        ("centroid_geotile_grid_frequency precision 8, everything", everything, ["centroid_geotile_grid_frequency"],
         {"centroid_geotile_grid_frequency_precision": 8}),
        ("geometry_geohash_grid_frequency precision 3, everything", everything, ["geometry_geohash_grid_frequency"],
         {"geometry_geohash_grid_frequency_precision": 3}),
        ("cloud_cover + platform frequency, everything", everything, ["cloud_cover_frequency", "platform_frequency"], {}),
    ]
    print(f"| aggregation | first call ms | median ms ({args.repeat} runs) |")
    print("| --- | --- | --- |")
    for label, query, names, options in rows:
        first, median = timed(lambda q=query, n=names, o=options: index.aggregate(q, n, o), args.repeat)
        print(f"| {label} | {first:.1f} | {median:.2f} |")


if __name__ == "__main__":
    main()
