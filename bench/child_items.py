"""CPU per item of what a forked ndjson indexing child does (issue 18, target 1), in this
process: the first lines of each ndjson file given, parsed (orjson), made servable and added to
a builder one at a time, a builder of LINES per chunk as the children's 8 MB chunks
(IndexBuilder.chunk at its end), the cyclic collector off as in a load. Prints the best of
--reps: us an item for the whole path and for the parse alone (process CPU time, not wall).

    python bench/child_items.py DIR/*/items.ndjson --lines 25000 --reps 3 [--chunk-dir /tmp/somewhere]

Run it in two checkouts in turns (PYTHONPATH=. from each) to compare a change of the per-item
path; `bench/same_index.py` checks that the index is unchanged."""

from __future__ import annotations

import argparse
import gc
import inspect
import itertools
import os
import time

import orjson

from server.catalog.normalize import servable
from server.catalog.public import PublicHrefs
from server.index.builder import IndexBuilder
from server.index.tree import NO_NODE


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("files", nargs="+", help="ndjson files of items")
    parser.add_argument("--lines", type=int, default=25000, help="lines read from each file")
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--chunk", type=int, default=3500, help="items a builder (a child's 8 MB chunk: ~3,500)")
    parser.add_argument("--chunk-dir", help="leave each chunk's items' bytes in a file here, as `index -o`'s "
                        "children do (IndexBuilder.chunk(path)), removed after")
    args = parser.parse_args()
    files = []
    for name in args.files:
        with open(name, "rb") as f:
            files.append((name, list(itertools.islice(f, args.lines))))
    n = sum(len(lines) for _, lines in files)
    hrefs, loads = PublicHrefs(), orjson.loads
    path = os.path.join(args.chunk_dir, "chunk") if args.chunk_dir else None
    # a tree whose builder writes the items' bytes to the chunk's file as they come (json_path),
    # or one that writes them at chunk() (older trees): either way what its children do
    streams = path is not None and "json_path" in inspect.signature(IndexBuilder).parameters
    gc.disable()
    whole = parse = float("inf")
    for _ in range(args.reps):
        start = time.process_time()
        for name, lines in files:
            for at in range(0, len(lines), args.chunk):
                builder = IndexBuilder(json_path=path) if streams else IndexBuilder()
                for line in lines[at:at + args.chunk]:
                    builder.add_item(servable(loads(line), name, hrefs), name, NO_NODE)
                builder.chunk(path)
                del builder
                if path is not None:
                    os.unlink(path)
        whole = min(whole, time.process_time() - start)
        start = time.process_time()
        for _, lines in files:
            for line in lines:
                loads(line)
        parse = min(parse, time.process_time() - start)
    print(f"{n} items: {whole / n * 1e6:.2f} us an item (parse and free {parse / n * 1e6:.2f})")


if __name__ == "__main__":
    main()
