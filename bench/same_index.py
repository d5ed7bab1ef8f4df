"""Whether two snapshots hold the same index: every array, column, text posting, tree node,
collection and load report, and the items' and footprints' bytes in position order (hashed in
slices: no list of a million items in memory). For builds that must agree (issue 18: a build
indexed by forked processes against one process's, or main's).

    python bench/same_index.py A.idx B.idx

Exit status 0 and "same index: N items", or 1 and the first difference.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from typing import Any

import numpy as np

from server.runtime.snapshot import read_snapshot

SLICE = 50_000


def digest(blobs: Any) -> str:
    """BLAKE2b of a BlobColumn's blobs in position order, each with its length."""
    h = hashlib.blake2b()
    for lo in range(0, len(blobs), SLICE):
        for view in blobs.views(np.arange(lo, min(lo + SLICE, len(blobs)))):
            h.update(len(view).to_bytes(8, "little"))
            h.update(view)
    return h.hexdigest()


def differences(a: Any, b: Any) -> str | None:
    """The first difference between two indexes, or None."""
    if a.size != b.size:
        return f"size {a.size} != {b.size}"
    if digest(a.ids.blobs) != digest(b.ids.blobs):
        return "ids"
    for name in ("codes", "start", "end", "sort_time"):
        if not np.array_equal(getattr(a, name), getattr(b, name)):
            return name
    if not np.array_equal(a.bounds, b.bounds, equal_nan=True):
        return "bounds"
    for name in ("json", "wkb"):
        if digest(getattr(a, name)) != digest(getattr(b, name)):
            return f"{name} bytes"
    if sorted(a.columns) != sorted(b.columns):
        return "column keys"
    for key, col in a.columns.items():
        other = b.columns[key]
        for part in ("number", "string", "boolean", "objects", "time"):
            x, y = getattr(col, part), getattr(other, part)
            if (x is None) != (y is None) or (x is not None and not np.array_equal(x.rows, y.rows)):
                return f"column {key} {part}"
            if x is None:
                continue
            if part == "string":
                same = x.vocab == y.vocab and np.array_equal(x.codes, y.codes)
            elif part == "objects":
                same = digest(x.blobs) == digest(y.blobs)
            else:
                same = np.array_equal(x.values, y.values)
            if not same:
                return f"column {key} {part} values"
    if a.text.vocab != b.text.vocab or not all(np.array_equal(x, y) for x, y in zip(a.text.postings, b.text.postings)):
        return "text index"
    if a.collections != b.collections or a.root != b.root:
        return "collections"
    nodes = [[(n.kind, n.id, n.children) for n in index.tree.nodes] for index in (a, b)]
    if nodes[0] != nodes[1] or not np.array_equal(a.tree.items, b.tree.items):
        return "tree"
    # (not its seconds, nor how many rows a reload took from the index before: a full build took none)
    if {**(a.load_report or {}), "seconds": 0, "reused": 0} != {**(b.load_report or {}), "seconds": 0, "reused": 0}:
        return "load report"
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a")
    parser.add_argument("b")
    args = parser.parse_args()
    a, b = read_snapshot(args.a)[0], read_snapshot(args.b)[0]
    found = differences(a, b)
    if found is not None:
        print(f"different: {found}")
        sys.exit(1)
    print(f"same index: {a.size} items")


if __name__ == "__main__":
    main()
