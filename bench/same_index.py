"""Whether two snapshots hold the same index: every array, column, text posting, tree node,
collection and load report, and the items' and footprints' bytes in position order (hashed in
slices: no list of a million items in memory). For builds that must agree (issue 18: a build
indexed by forked processes against one process's, or main's).

    python bench/same_index.py A.idx B.idx

Exit status 0 and "same index: N items", or 1 and the first difference.

Two 1M snapshots are ~2.7 GB each: ``--save A.json A.idx`` writes the digests of everything the
comparison reads (a few KB; A.idx can then be deleted), ``--against A.json B.idx`` compares
B.idx with them (the same parts; a difference is named by its part).
"""

from __future__ import annotations

import argparse
import hashlib
import json
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


def _array_digest(values: Any) -> str:
    values = np.ascontiguousarray(values)
    return hashlib.blake2b(str(values.dtype).encode() + repr(values.shape).encode() + values.tobytes()).hexdigest()


def _texts_digest(texts: Any) -> str:
    h = hashlib.blake2b()
    for text in texts:
        raw = text.encode("utf-8", "surrogatepass")
        h.update(len(raw).to_bytes(8, "little"))
        h.update(raw)
    return h.hexdigest()


def _json_digest(value: Any) -> str:
    return hashlib.blake2b(json.dumps(value, sort_keys=True, default=repr).encode()).hexdigest()


def digests(index: Any) -> dict[str, Any]:
    """Digests of the parts ``differences`` compares, by part."""
    out: dict[str, Any] = {"size": index.size, "ids": digest(index.ids.blobs)}
    for name in ("codes", "start", "end", "sort_time", "bounds"):
        out[name] = _array_digest(getattr(index, name))
    for name in ("json", "wkb"):
        out[f"{name} bytes"] = digest(getattr(index, name))
    out["column keys"] = sorted(index.columns)
    for key, col in sorted(index.columns.items()):
        for part in ("number", "string", "boolean", "objects", "time"):
            x = getattr(col, part)
            if x is None:
                out[f"column {key} {part}"] = None
                continue
            out[f"column {key} {part}"] = _array_digest(x.rows)
            if part == "string":
                out[f"column {key} {part} values"] = [_texts_digest(x.vocab), _array_digest(x.codes)]
            elif part == "objects":
                out[f"column {key} {part} values"] = digest(x.blobs)
            else:
                out[f"column {key} {part} values"] = _array_digest(x.values)
    out["text index"] = [_texts_digest(index.text.vocab), [_array_digest(p) for p in index.text.postings]]
    out["collections"] = _json_digest([index.collections, index.root])
    out["tree"] = [_json_digest([[n.kind, n.id, list(n.children)] for n in index.tree.nodes]), _array_digest(index.tree.items)]
    out["load report"] = _json_digest({**(index.load_report or {}), "seconds": 0})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("a", help="a snapshot (or, with --save / --against, the snapshot)")
    parser.add_argument("b", nargs="?")
    parser.add_argument("--save", metavar="JSON", help="write the digests of snapshot A to JSON")
    parser.add_argument("--against", metavar="JSON", help="compare snapshot A with digests --save wrote")
    args = parser.parse_args()
    if args.save or args.against:
        mine = digests(read_snapshot(args.a)[0])
        if args.save:
            with open(args.save, "w") as f:
                json.dump(mine, f)
            print(f"digests of {mine['size']} items saved")
            return
        with open(args.against) as f:
            saved = json.load(f)
        mine = json.loads(json.dumps(mine))  # (tuples as lists, as saved)
        found = next((part for part in [*saved, *mine] if saved.get(part) != mine.get(part)), None)
        if found is not None:
            print(f"different: {found}")
            sys.exit(1)
        print(f"same index: {mine['size']} items (against {args.against})")
        return
    if args.b is None:
        parser.error("two snapshots, or one with --save / --against")
    a, b = read_snapshot(args.a)[0], read_snapshot(args.b)[0]
    found = differences(a, b)
    if found is not None:
        print(f"different: {found}")
        sys.exit(1)
    print(f"same index: {a.size} items")


if __name__ == "__main__":
    main()
