"""Reading 100k items: stac-geoparquet (server/catalog/parquet.py) vs ndjson vs JSON files.

    python bench/generate.py /tmp/pq-100k --items 100000 --layout ndjson
    cat /tmp/pq-100k/*/items.ndjson > /tmp/pq-100k/all.ndjson
    stac-static-api export /tmp/pq-100k/all.ndjson -o /tmp/pq-100k/all.parquet
    python bench/parquet_read.py --parquet /tmp/pq-100k/all.parquet --ndjson /tmp/pq-100k/all.ndjson \
                                 [--files /tmp/bench-data/files-100k] [--loader]

Each reader runs in a fresh process with the garbage collector paused (as the loader pauses
it): items/s from first byte to the last item dict, CPU seconds, and the process's peak RSS
(VmHWM). ndjson and files are parsed with orjson, as the loader does; the parquet reader is
called directly. --loader also times server.catalog.loader.load_catalogs (reading + indexing:
the whole ingest) over the ndjson and over the parquet file; bench/ingest_formats.py compares
whole ingests of generated catalogs in each layout.
"""

from __future__ import annotations

import argparse
import subprocess
import sys

READERS = {
    "parquet": "from server.catalog.parquet import read_items\nn = sum(1 for _ in read_items(PATH))",
    "ndjson": "import orjson\nn = 0\nfor line in open(PATH, 'rb'):\n    orjson.loads(line); n += 1",
    "files": ("import orjson, os\nn = 0\nfor d, _, fs in os.walk(PATH):\n    for f in fs:\n"
              "        if f.endswith('.json') and f not in ('catalog.json', 'collection.json'):\n"
              "            orjson.loads(open(os.path.join(d, f), 'rb').read()); n += 1"),
    "loader": "from server.catalog.loader import load_catalogs\nn = load_catalogs([PATH])[0].size",
    "loader-parquet": "from server.catalog.loader import load_catalogs\nn = load_catalogs([PATH])[0].size",
}

RUN = """
import gc, time
gc.disable()
PATH = {path!r}
t, c = time.perf_counter(), time.process_time()
{code}
took, cpu = time.perf_counter() - t, time.process_time() - c
peak = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0].split()[1]
print(n, took, int(peak) // 1024, cpu)
"""


def run(kind: str, path: str) -> None:
    out = subprocess.run([sys.executable, "-c", RUN.format(path=path, code=READERS[kind])],
                         capture_output=True, text=True, check=True).stdout.split()
    n, took, peak, cpu = int(out[0]), float(out[1]), int(out[2]), float(out[3])
    print(f"{kind:14} {n:>8,} items {took:7.2f} s {n / took:>10,.0f} items/s  CPU {cpu:6.2f} s "
          f"({1e6 * cpu / n:5.1f} us/item)  peak RSS {peak:,} MiB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parquet")
    parser.add_argument("--ndjson")
    parser.add_argument("--files")
    parser.add_argument("--loader", action="store_true")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    for _ in range(args.repeat):
        for kind, path in (("parquet", args.parquet), ("ndjson", args.ndjson), ("files", args.files)):
            if path:
                run(kind, path)
        if args.loader and args.ndjson:
            run("loader", args.ndjson)
        if args.loader and args.parquet:
            run("loader-parquet", args.parquet)


if __name__ == "__main__":
    main()
