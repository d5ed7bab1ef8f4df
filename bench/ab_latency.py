"""Latency of the same requests on several checkouts of the server, interleaved (A/B/C).

    python bench/ab_latency.py ROOT --tree before=/tmp/wt-lat-before:/tmp/jl/before.idx \\
        --tree main=/tmp/wt-lat-main:/tmp/jl/main.idx --tree after=.:/tmp/jl/after.idx \\
        [--rounds 6] [--runs 400] [--queries "item GET,bbox+datetime"] [--callgrind 200]

Each ``--tree NAME=DIR:SNAPSHOT`` is a checkout (a ``git worktree``) and the index snapshot it
reads (written by that checkout's own ``bench/latency.py ROOT --snapshot SNAPSHOT`` first: the
snapshot format changes between commits). Every round starts one fresh process per tree, in
an order rotated per round, so all trees see the same moments of a shared machine; each
process imports that tree's ``server`` package, builds its app with the response and match
caches off (as ``bench/latency.py``'s "ours"), and times ``--runs`` requests per query type
through the raw ASGI app, the query types and their URLs being ``bench/latency.py``'s
(``query_mix``, this checkout's copy, so every tree answers the same URLs). Reported: per tree
and query type, the median of the rounds' medians, and each round's.

``--callgrind N`` instead counts instructions under ``valgrind --tool=callgrind`` (immune to
the other processes on the machine): per tree and query type, one process answers 50 warm-up
requests and then N more, another only the warm-up, and the difference divided by N is the
instructions one request costs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
WARMUP = 50


def _import_tree(tree: str) -> tuple[Any, Any, Any]:
    """create_app, Settings and read_snapshot of the checkout at ``tree`` (the modules moved
    into packages in the layout issue)."""
    sys.path.insert(0, os.path.abspath(tree))
    for name in [m for m in sys.modules if m == "server" or m.startswith("server.")]:
        del sys.modules[name]
    from server.settings import Settings

    try:
        from server.runtime.app import create_app
        from server.runtime.snapshot import read_snapshot
    except ImportError:
        from server.app import create_app  # type: ignore[no-redef]
        from server.snapshot import read_snapshot  # type: ignore[no-redef]
    return create_app, Settings, read_snapshot


def child(args: argparse.Namespace) -> None:
    sys.path.insert(0, HERE)
    import latency  # noqa: PLC0415 (this checkout's query mix and ASGI driver)

    if args.accept_encoding:
        latency.EXTRA_HEADERS.append((b"accept-encoding", args.accept_encoding.encode()))
    create_app, Settings, read_snapshot = _import_tree(args.child_tree)
    index, _ = read_snapshot(args.child_snapshot, verify=not args.stale_ok)
    app = create_app(Settings(response_cache_bytes=0, match_cache_bytes=0), index=index)
    mix = latency.query_mix(args.root)
    names = [q.strip() for q in args.queries.split(",")]

    # Everything loaded so far is kept out of the collector's way (as a server that forks its
    # workers after loading), so a full collection landing in one tree's run and not in
    # another's does not decide the comparison.
    gc.collect()
    gc.freeze()

    async def run() -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in names:
            urls = [latency.url_of(p, q) for p, q in mix[name]]
            for k in range(WARMUP):
                status, body, _ = await latency.call(app, urls[k % len(urls)])
                assert status == 200, (name, status, body[:200])
            latency.settle()  # (a filter's bit indexes, made in the background on first use)
            times = []
            for k in range(args.runs):
                _, _, dt = await latency.call(app, urls[k % len(urls)])
                times.append(dt)
            if times:
                out[name] = {"median_ms": statistics.median(times) * 1e3, "p95_ms": latency.pct(times, 95) * 1e3,
                             "bytes": len(body)}
        return out

    print(json.dumps(asyncio.run(run())))


def child_cmd(args: argparse.Namespace, tree: str, snapshot: str, runs: int, queries: str) -> list[str]:
    return [sys.executable, os.path.abspath(__file__), args.root, "--child-tree", tree, "--child-snapshot", snapshot,
            "--runs", str(runs), "--queries", queries, *(["--stale-ok"] if args.stale_ok else []),
            *(["--accept-encoding", args.accept_encoding] if args.accept_encoding else [])]


def instructions(cmd: list[str]) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "callgrind.out")
        subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *cmd], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "PYTHONHASHSEED": "0"})
        with open(out) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    return int(line.split()[1])
    raise SystemExit("no totals in the callgrind output")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="the generated catalog (for the query mix)")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=DIR:SNAPSHOT")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--runs", type=int, default=400, help="timed requests per query type per round")
    parser.add_argument("--queries", default="item GET,bbox+datetime")
    parser.add_argument("--callgrind", type=int, metavar="N", help="count instructions of N requests instead")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--accept-encoding", metavar="VALUE",
                        help='send this Accept-Encoding with every request (e.g. "gzip, deflate, br")')
    parser.add_argument("--stale-ok", action="store_true",
                        help="read the snapshots even when ROOT's files changed since (e.g. truncated for disk: "
                             "the query mix reads only the first lines of each items file)")
    parser.add_argument("--child-tree", help=argparse.SUPPRESS)
    parser.add_argument("--child-snapshot", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_tree:
        child(args)
        return
    trees = []
    for spec in args.tree:
        name, _, rest = spec.partition("=")
        tree, _, snapshot = rest.rpartition(":")
        trees.append((name, tree, snapshot))
    names = [q.strip() for q in args.queries.split(",")]

    if args.callgrind:
        result: dict[str, Any] = {}
        print(f"{'query':16s} " + " ".join(f"{n:>14s}" for n, _, _ in trees) + "   (instructions per request)")
        for q in names:
            row = {}
            for name, tree, snapshot in trees:
                base = instructions(child_cmd(args, tree, snapshot, 0, q))
                full = instructions(child_cmd(args, tree, snapshot, args.callgrind, q))
                row[name] = (full - base) / args.callgrind
            result[q] = row
            print(f"{q:16s} " + " ".join(f"{row[n]:14,.0f}" for n, _, _ in trees), flush=True)
    else:
        rounds: list[dict[str, dict[str, Any]]] = []
        for r in range(args.rounds):
            order = trees[r % len(trees):] + trees[: r % len(trees)]
            got: dict[str, dict[str, Any]] = {}
            for name, tree, snapshot in order:
                t0 = time.perf_counter()
                proc = subprocess.run(child_cmd(args, tree, snapshot, args.runs, args.queries), check=True,
                                      capture_output=True, text=True)
                got[name] = json.loads(proc.stdout.strip().splitlines()[-1])
                print(f"round {r + 1} {name}: " + ", ".join(f"{q} {got[name][q]['median_ms']:.4f}" for q in names)
                      + f" ms ({time.perf_counter() - t0:.0f} s)", file=sys.stderr, flush=True)
            rounds.append(got)
        result = {q: {name: {"median_of_medians_ms": statistics.median(rd[name][q]["median_ms"] for rd in rounds),
                             "rounds_ms": [rd[name][q]["median_ms"] for rd in rounds],
                             "bytes": rounds[0][name][q]["bytes"]} for name, _, _ in trees} for q in names}
        print(f"\nmedian of {args.rounds} rounds' medians ({args.runs} requests each), ms; bytes of the last response")
        print(f"{'query':16s} " + " ".join(f"{n:>16s}" for n, _, _ in trees))
        for q in names:
            print(f"{q:16s} " + " ".join(f"{result[q][n]['median_of_medians_ms']:9.4f} ({result[q][n]['bytes']:4d})"
                                         for n, _, _ in trees))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
