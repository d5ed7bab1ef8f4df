"""The build's hash table (server.index.vocab.TextTable) under its two users, CPU-s and memory,
through their APIs only (so the same script measures any tree: PYTHONPATH=TREE for an A/B):

    PYTHONPATH=. python bench/hash_table.py links|linkscalar|table [--trace]

links: 1M item links admitted as a 1M files walk admits them (4 x 250k `disjoint` +
`extend_new`, 8 x 25), read back, members forgotten; linkscalar: the bucket reload's per-link
path (500k `in` + `append`, 250k `in`, 500k `[i]`); table: a `datetime` vocabulary of 1M
distinct texts merged from 3,000-text blocks (`TextTable.add`, a tenth repeating half of the
previous block) beside a 3-value key's. --trace: tracemalloc's peak (slower CPU)."""

from __future__ import annotations

import resource
import sys
import time
import tracemalloc

import numpy as np


def links() -> int:
    from server.catalog.links import ItemLinks

    made: ItemLinks[int] = ItemLinks()
    for c, (size, name) in enumerate([(250_000, "col")] * 4 + [(25, "small")] * 8):
        folder = f"/tmp/i1m/m1/files/{name}-{c}/"
        targets = [f"{folder}item-{i:07d}/item-{i:07d}.json" for i in range(size)]
        assert made.disjoint(targets)
        made.extend_new(targets, c, folder)
    assert not made.disjoint(["/x", "/tmp/i1m/m1/files/col-2/item-0000007/item-0000007.json"])
    count = sum(1 for _ in made.locations())
    made.forget_members()
    return count


def linkscalar() -> int:
    from server.catalog.links import ItemLinks

    made: ItemLinks[int] = ItemLinks()
    folder = "s3://bucket/cat/col/"
    for i in range(500_000):
        target = f"{folder}item-{i:07d}/item-{i:07d}.json"
        if target not in made:
            made.append(target, 1, folder)
    assert all(f"{folder}item-{i:07d}/item-{i:07d}.json" in made for i in range(0, 500_000, 2))
    return sum(len(made[i][0]) for i in range(500_000))


def table() -> int:
    from server.index.vocab import TextTable, encoded

    def add(into: TextTable, texts: list[str]) -> None:
        data, ends = encoded(texts)
        into.add(data, ends, np.fromiter(map(hash, texts), dtype=np.int64, count=len(texts)))

    times, small = TextTable(), TextTable()
    base = np.datetime64("2015-01-01T00:00:00.000")

    def moments(first: int, stop: int) -> list[str]:
        return [str(m) + "Z" for m in base + (np.arange(first, stop, dtype=np.int64) * 23_017).astype("timedelta64[ms]")]

    for first in range(0, 1_000_000, 3000):
        texts = moments(first, first + 3000)
        if first % 30_000 == 0:  # a tenth of the blocks repeat half of the previous block's texts
            texts = texts[:1500] + moments(first - 1500, first)
        add(times, list(dict.fromkeys(texts)))
        add(small, ["sentinel-2a", "sentinel-2b", "landsat-8"])
    return len(times)


def main() -> None:
    what = sys.argv[1]
    trace = "--trace" in sys.argv
    if trace:
        tracemalloc.start()
    started = time.process_time()
    count = {"links": links, "linkscalar": linkscalar, "table": table}[what]()
    cpu = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1] / 2**20 if trace else 0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{what} n={count} cpu={cpu:.3f}s maxrss={rss:.0f}MiB tracepeak={peak:.1f}MiB")


if __name__ == "__main__":
    main()
