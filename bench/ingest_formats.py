"""Ingest of the same items from JSON files, ndjson and stac-geoparquet (issue 14).

    python bench/generate.py DIR/files   --items 100000
    python bench/generate.py DIR/ndjson  --items 100000 --layout ndjson
    python bench/generate.py DIR/parquet --items 100000 --layout parquet
    python bench/ingest_formats.py DIR [--layouts files,ndjson,parquet] [--repeat 3]

The same arguments (seed) give the same items in each layout. What is loaded: files and
parquet: DIR/LAYOUT/catalog.json (the parquet layout's collections carry a `geoparquet-items`
asset); ndjson: every DIR/ndjson/*/collection.json, then every DIR/ndjson/*/items.ndjson (the
collections first, so the items are indexed as they are read).

Each load runs in a fresh process through load_catalogs(), as `serve` and `index` do (progress
off), and reports items/s (wall clock, start to built index), CPU seconds (the loader process
and the forked reader it may start), the loader's peak RSS (VmHWM) and its forked reader's
(ru_maxrss of the children), and the load average when it started. The layouts take turns,
--repeat times; the summary gives medians.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import statistics
import subprocess
import sys

RUN = """
import json, logging, os, resource, sys, time
logging.disable(logging.WARNING)
from server.catalog.loader import LoadOptions, load_catalogs
roots = json.loads(sys.argv[1])
load = os.getloadavg()[0]
wall, cpu = time.perf_counter(), time.process_time()
index, report = load_catalogs(roots, LoadOptions(progress=False))
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
children = resource.getrusage(resource.RUSAGE_CHILDREN)
peak = [line for line in open("/proc/self/status") if line.startswith("VmHWM")][0].split()[1]
print(json.dumps({"items": index.size, "skipped": report.skipped, "wall": wall,
                  "cpu": cpu + children.ru_utime + children.ru_stime, "child_cpu": children.ru_utime + children.ru_stime,
                  "peak_mib": int(peak) // 1024, "child_peak_mib": children.ru_maxrss // 1024, "load": load}))
"""


def roots(folder: str, layout: str) -> list[str]:
    where = os.path.join(folder, layout)
    if layout == "ndjson":
        return sorted(glob.glob(os.path.join(where, "*", "collection.json"))) + \
            sorted(glob.glob(os.path.join(where, "*", "items.ndjson")))
    return [os.path.join(where, "catalog.json")]


def run(folder: str, layout: str) -> dict[str, float]:
    out = subprocess.run([sys.executable, "-c", RUN, json.dumps(roots(folder, layout))],
                         capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="holding files/, ndjson/ and parquet/ from bench/generate.py")
    parser.add_argument("--layouts", default="files,ndjson,parquet")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    layouts = args.layouts.split(",")
    results: dict[str, list[dict[str, float]]] = {layout: [] for layout in layouts}
    for _ in range(args.repeat):
        for layout in layouts:
            r = run(args.folder, layout)
            results[layout].append(r)
            print(f"{layout:8} {r['items']:>9,} items {r['wall']:7.1f} s {r['items'] / r['wall']:>8,.0f} items/s  "
                  f"CPU {r['cpu']:6.1f} s (forked reader {r['child_cpu']:5.1f})  peak RSS {r['peak_mib']:,} MiB "
                  f"(forked reader {r['child_peak_mib']:,})  load avg {r['load']:.1f}  skipped {r['skipped']}",
                  flush=True)
    print("medians:")
    for layout, runs in results.items():
        rate = statistics.median(r["items"] / r["wall"] for r in runs)
        cpu = statistics.median(r["cpu"] for r in runs)
        peak = statistics.median(r["peak_mib"] for r in runs)
        print(f"{layout:8} {rate:>8,.0f} items/s  CPU {cpu:6.1f} s  peak RSS {peak:,.0f} MiB  ({len(runs)} runs)")


if __name__ == "__main__":
    main()
