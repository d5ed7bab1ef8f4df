"""Run `stac-static-api ARGS` in this process with the steps of the build's serial tail timed:
wall seconds and CPU seconds of the loading process's main thread (thread_time: the snapshot
writer's buffer and hash threads are not in it) for IndexBuilder.build and its parts, Index()
with the box index, SnapshotWriter.finish and its pickle.dumps (issue 18, target 1).

    STAC_STATIC_MAX_DOCUMENT_BYTES=1000000000 python bench/build_steps.py index ROOT... -o F --log-level warning

prints (to stderr, after the command) the whole run's wall, the loading process's CPU-s and its
children's (forked indexing processes), its peak RSS, then a line per step (calls counted; a
step inside another is indented). Run it from the checkout to measure (PYTHONPATH=.): the
first line names the server package it timed."""

from __future__ import annotations

import functools
import os
import pickle
import resource
import sys
import time
import types
from collections import defaultdict
from collections.abc import Callable
from typing import Any

STEPS: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0])
MAIN = os.getpid()


def timed(owner: Any, name: str, label: str) -> None:
    """Replace ``owner.name`` by a wrapper adding its wall and thread CPU time to STEPS[label]
    (in this process only: forked children run the plain function)."""
    function: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if os.getpid() != MAIN:
            return function(*args, **kwargs)
        wall, cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            step = STEPS[label]
            step[0] += time.perf_counter() - wall
            step[1] += time.thread_time() - cpu
            step[2] += 1

    setattr(owner, name, wrapper)


def main() -> int:
    import server
    import server.index.blobs as blobs
    import server.index.builder as builder
    import server.index.columns as columns
    import server.index.heap as heap
    import server.index.ids as ids
    import server.index.index as index
    import server.index.spatial as spatial
    import server.index.text as text
    import server.index.tree as tree
    import server.runtime.snapshot as snapshot
    from server.runtime.cli import main as cli

    print(f"timing {os.path.dirname(server.__file__)}", file=sys.stderr)
    timed(builder.IndexBuilder, "build", "build")
    timed(builder.IndexBuilder, "_reject_duplicates", "  duplicate ids")
    timed(builder, "_default_order", "  default order")
    timed(ids.IdColumn, "__init__", "  IdColumn")
    timed(blobs.BlobWriter, "freeze", "  blobs frozen (memory)")
    timed(blobs.FileBlobWriter, "freeze", "  blobs frozen (file)")
    timed(columns.ColumnsBuilder, "freeze", "  columns")
    timed(text.TextIndexBuilder, "freeze", "  text")
    timed(tree.TreeBuilder, "freeze", "  tree")
    timed(heap, "trim", "  heap trims")
    timed(index.Index, "__init__", "  Index()")
    timed(spatial.BoxIndex, "__init__", "    BoxIndex")
    timed(snapshot.SnapshotWriter, "finish", "finish")
    # the snapshot module's pickle.dumps only (forked children pickle their chunks too)
    shim = types.SimpleNamespace(PickleBuffer=pickle.PickleBuffer, dumps=pickle.dumps, loads=pickle.loads)
    snapshot.pickle = shim  # type: ignore[assignment]
    timed(shim, "dumps", "  pickle.dumps")
    wall = time.perf_counter()
    try:
        return cli(sys.argv[1:])
    finally:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"wall {time.perf_counter() - wall:.2f} s, loading process {own.ru_utime + own.ru_stime:.2f} CPU-s, "
              f"children {children.ru_utime + children.ru_stime:.2f} CPU-s, peak RSS {own.ru_maxrss // 1024} MiB",
              file=sys.stderr)
        for label, (seconds, cpu, calls) in STEPS.items():
            print(f"{label:26s} wall {seconds:7.3f} s  cpu {cpu:7.3f} s  calls {calls}", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
