"""The build's string vocabulary of one key with a distinct text per item (`datetime`, issue 18):
its memory while the load merges the forked processes' chunks, the freeze's peak over it, and
the CPU-s of each side, through the ColumnsBuilder API only (so the same script measures any tree:
run it with PYTHONPATH=TREE for an A/B).

    PYTHONPATH=. python bench/vocab_build.py --items 1000000 --chunk 3000

Each chunk is made as a forked indexing process makes it (ColumnsBuilder.add per item, with a
`platform` of three values beside, parse_times, pickled with protocol 5) and merged into one
ColumnsBuilder as the loading process does (unpickled, merge); then frozen. Memory by tracemalloc
(Python's allocations, numpy's included): "held" after the merges (the builders' state at the
load's end), "freeze peak" over the state before it (what the freeze adds on top)."""

from __future__ import annotations

import argparse
import pickle
import time
import tracemalloc

import numpy as np


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--chunk", type=int, default=3000, help="items a chunk (an 8 MB ndjson chunk: ~3,300)")
    parser.add_argument("--no-trace", action="store_true", help="CPU-s only (tracemalloc slows allocations)")
    args = parser.parse_args()
    from server.index.columns import ColumnsBuilder

    platforms = ["sentinel-2a", "sentinel-2b", "landsat-8"]
    base = np.datetime64("2015-01-01T00:00:00.000")

    def texts(first: int, stop: int) -> list[str]:
        # one instant per item, ~23 s apart with ms: distinct, as generate.py's (millisecond, Z)
        moments = base + (np.arange(first, stop, dtype=np.int64) * 23_017).astype("timedelta64[ms]")
        return [str(m) + "Z" for m in moments]

    if not args.no_trace:
        tracemalloc.start()
    whole = ColumnsBuilder()
    child_cpu = parent_cpu = 0.0
    for first in range(0, args.items, args.chunk):
        stop = min(first + args.chunk, args.items)
        rows = [{"datetime": t, "platform": platforms[i % 3]} for i, t in enumerate(texts(first, stop))]
        started = time.process_time()
        part = ColumnsBuilder()
        for row, props in enumerate(rows):
            part.add(row, props)
        part.parse_times()
        payload = pickle.dumps(part, protocol=5)
        del part
        child_cpu += time.process_time() - started
        del rows
        started = time.process_time()
        whole.merge(pickle.loads(payload), first)
        parent_cpu += time.process_time() - started
        del payload
    held = tracemalloc.get_traced_memory()[0] if not args.no_trace else 0
    if not args.no_trace:
        tracemalloc.reset_peak()
    started = time.process_time()
    columns = whole.freeze(np.arange(args.items, dtype=np.int64))
    freeze_cpu = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1] if not args.no_trace else 0
    after = tracemalloc.get_traced_memory()[0] if not args.no_trace else 0
    vocab = columns["datetime"].string.vocab  # type: ignore[union-attr]
    print(f"{args.items} items, chunks of {args.chunk}: {len(vocab)} datetime texts ({type(vocab).__name__})")
    print(f"CPU-s: chunks made + pickled {child_cpu:.2f}, merged {parent_cpu:.2f}, freeze {freeze_cpu:.2f}")
    if not args.no_trace:
        print(f"held after the merges {held / 2**20:.1f} MiB ({held / args.items:.0f} B an item), "
              f"freeze peak +{(peak - held) / 2**20:.1f} MiB over it, frozen columns {after / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
