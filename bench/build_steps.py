"""Run `stac-static-api ARGS` in this process with the steps of the build's serial tail timed:
wall seconds and CPU seconds of the loading process's main thread (thread_time: the snapshot
writer's buffer and hash threads are not in it) for IndexBuilder.build and its parts, Index()
with the box index, SnapshotWriter.finish and its pickle.dumps (issue 18, target 1).

    STAC_STATIC_MAX_DOCUMENT_BYTES=1000000000 python bench/build_steps.py index ROOT... -o F --log-level warning

prints (to stderr, after the command) the whole run's wall, the loading process's CPU-s and its
children's (forked indexing processes), its peak RSS, then a line per step (calls counted; a
step inside another is indented; when it first started, s from this script's start), the
finish's waits (buffer writes joined, the hash thread joined, os.replace) and the hash's
backlog at the digest. Each forked child says, as it ends, its main thread's wall, run,
runqueue wait and the rest: slept (blocked on its pipe or the disk: children that wait for
each other, issue 18). Run it from the checkout to measure (PYTHONPATH=.): the first line
names the server package it timed."""

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

STEPS: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0, 0, -1.0])
MAIN = os.getpid()
STARTED = time.perf_counter()
BACKLOG: list[int] = []  # bytes of the body the hash thread had not read when the main thread asked for the digest


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
            if step[3] < 0:
                step[3] = wall - STARTED

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
    timed(snapshot._BufferWriter, "join", "  buffer writes joined")
    timed(snapshot.FollowingHash, "close", "  hash thread joined")
    timed(snapshot.os, "replace", "  os.replace")
    digest = snapshot.FollowingHash.hexdigest

    def backlog(self: Any, end: int) -> str:
        BACKLOG.append(end - self._at)
        return digest(self, end)

    snapshot.FollowingHash.hexdigest = backlog  # type: ignore[method-assign]
    timed(snapshot.FollowingHash, "hexdigest", "  hash's rest")
    # the snapshot module's pickle.dumps only (forked children pickle their chunks too)
    shim = types.SimpleNamespace(PickleBuffer=pickle.PickleBuffer, dumps=pickle.dumps, loads=pickle.loads)
    snapshot.pickle = shim  # type: ignore[assignment]
    timed(shim, "dumps", "  pickle.dumps")
    exit_now = os._exit
    said: list[int] = []

    def child_stats() -> None:
        """A forked child's end: its main thread's wall, run, runqueue wait and sleep (blocked:
        on the pipe, the disk), s; said once (where a child hands its last result to a thread
        of its own, parallel._Sender, when it does: this process may end it once that is read)."""
        if said:
            return
        said.append(1)
        try:
            with open("/proc/self/schedstat") as f:
                run, wait = (int(v) / 1e9 for v in f.read().split()[:2])
            with open("/proc/self/stat") as f:
                began = int(f.read().rsplit(")", 1)[1].split()[19]) / os.sysconf("SC_CLK_TCK")
            with open("/proc/uptime") as f:
                wall = float(f.read().split()[0]) - began
            sys.stderr.write(f"child {os.getpid()} wall {wall:.2f} run {run:.2f} wait {wait:.2f} "
                             f"slept {wall - run - wait:.2f}\n")
            sys.stderr.flush()
        except OSError:
            pass

    def child_exit(status: int) -> None:
        child_stats()
        exit_now(status)

    os._exit = child_exit  # type: ignore[assignment]  # only forked children call it
    import server.catalog.parallel as parallel
    sender = getattr(parallel, "_Sender", None)
    if sender is not None:
        close = sender.close

        def sender_close(self: Any) -> None:
            child_stats()
            close(self)

        sender.close = sender_close
    wall = time.perf_counter()
    try:
        return cli(sys.argv[1:])
    finally:
        own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        print(f"wall {time.perf_counter() - wall:.2f} s, loading process {own.ru_utime + own.ru_stime:.2f} CPU-s, "
              f"children {children.ru_utime + children.ru_stime:.2f} CPU-s, peak RSS {own.ru_maxrss // 1024} MiB",
              file=sys.stderr)
        for label, (seconds, cpu, calls, first) in STEPS.items():
            print(f"{label:26s} wall {seconds:7.3f} s  cpu {cpu:7.3f} s  calls {calls}  first at {first:7.2f} s",
                  file=sys.stderr)
        if BACKLOG:
            print(f"hash backlog at the digest: {BACKLOG[0] / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
