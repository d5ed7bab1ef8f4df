"""Run `stac-static-api index ARGS` in this process and print, at each phase's start and end (the
walk, the item files indexed by forked processes, OriginsBuilder.settle, IndexBuilder.build,
SnapshotWriter.finish), the loading process's highest RSS since the previous mark (VmHWM, reset
through /proc/self/clear_refs) and its RSS now (issue 18: where an item-files build's memory goes).

    STAC_STATIC_MAX_DOCUMENT_BYTES=1000000000 PYTHONPATH=. python bench/phase_memory.py index ROOT -o F --log-level warning

The peaks reset the process's own high-water mark: /usr/bin/time's maximum RSS of the same run is
not the build's peak (take the highest "peak-in-phase"). Linux only."""

from __future__ import annotations

import functools
import os
import sys
import time
from collections.abc import Callable
from typing import Any

MAIN = os.getpid()
STARTED = time.perf_counter()


def status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmHWM", "VmRSS")):
                key, value = line.split(":")
                out[key] = int(value.split()[0]) // 1024
    return out


def reset() -> None:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak RSS back to the RSS now


def mark(label: str) -> None:
    if os.getpid() != MAIN:  # a forked child runs the wrapped functions plain
        return
    s, c = status(), os.times()
    print(f"[{time.perf_counter() - STARTED:8.1f}s cpu {c.user + c.system:7.1f}] {label:28s} "
          f"peak-in-phase {s['VmHWM']:6d} MiB  now {s['VmRSS']:6d} MiB", file=sys.stderr, flush=True)
    reset()


def wrap(owner: Any, name: str, label: str) -> None:
    function: Callable[..., Any] = getattr(owner, name)

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        mark(f"before {label}")
        try:
            return function(*args, **kwargs)
        finally:
            mark(f"after {label}")

    setattr(owner, name, wrapper)


def main() -> int:
    import server.catalog.loader as loader  # noqa: PLC0415
    import server.index.builder as builder  # noqa: PLC0415
    import server.runtime.snapshot as snapshot  # noqa: PLC0415
    from server.runtime.cli import main as cli  # noqa: PLC0415

    wrap(loader.Loader, "_name_homes", "walk (name_homes)")
    wrap(loader.Loader, "_load_files_forked", "files forked")
    wrap(loader.OriginsBuilder, "settle", "settle")
    wrap(builder.IndexBuilder, "build", "build")
    wrap(snapshot.SnapshotWriter, "finish", "finish")
    reset()
    rc = cli(sys.argv[1:])
    mark("end")
    c = os.times()
    print(f"cpu self {c.user + c.system:.1f} children {c.children_user + c.children_system:.1f}", file=sys.stderr)
    return rc


if __name__ == "__main__":
    sys.exit(main())
