"""How fast `serve --index FILE` is ready and how much of its memory is its own (issue 18).

    python bench/snapshot_start.py FILE [--tree DIR] [--repeat 3] [--port P] [--warm URL...]

Starts ``python -m server serve --index FILE`` from the checkout ``--tree`` (default this one;
another worktree's code reads its own snapshot format), times it to the first 200 of GET /,
then reads the server's /proc/PID/smaps_rollup: ``Anonymous`` is the memory that is the
process's own (Python objects, copied arrays), the rest of ``Rss`` is pages of the mapped
snapshot (page cache: shared with other workers and replicas, reclaimable). After ``--warm``
URLs (GET, each once) it reads them again. Each repeat a fresh process; median ready time.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import serverproc  # noqa: E402


def rollup(pid: int) -> dict[str, int]:
    """smaps_rollup's kB figures, in MiB."""
    out = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) == 3 and parts[2] == "kB":
                out[parts[0].rstrip(":")] = int(parts[1]) // 1024
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("snapshot")
    parser.add_argument("--tree", default=serverproc.REPO, help="checkout whose `python -m server` to run")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--warm", nargs="*", default=[], help="paths to GET once after ready")
    args = parser.parse_args()
    readies, rows = [], []
    for _ in range(args.repeat):
        port = args.port or serverproc.free_port()
        cmd = [args.python, "-m", "server", "serve", "--index", args.snapshot, "--port", str(port),
               "--log-level", "warning"]
        proc = serverproc.spawn(cmd, cwd=args.tree, env=serverproc.clean_env({}), log=f"/tmp/snapshot-start-{port}.log")
        try:
            ready = serverproc.wait_ready(port, proc, timeout=600, interval=0.05)
            mem = rollup(proc.pid)
            for path in args.warm:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=60) as r:
                    r.read()
            warm = rollup(proc.pid) if args.warm else {}
        finally:
            serverproc.stop(proc)
        readies.append(ready)
        rows.append({"ready_s": round(ready, 2), "rss_mib": mem.get("Rss"), "anonymous_mib": mem.get("Anonymous"),
                     "after_warm_rss_mib": warm.get("Rss"), "after_warm_anonymous_mib": warm.get("Anonymous")})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"snapshot": args.snapshot, "tree": args.tree, "ready_median_s": round(statistics.median(readies), 2),
                      "anonymous_mib_max": max(r["anonymous_mib"] or 0 for r in rows)}))


if __name__ == "__main__":
    main()
