"""The hostile request corpus (tests/hostile_requests.py) from N clients for a while, against a
real server on loopback, timing /_mgmt/health meanwhile.

    python bench/hostile_soak.py [--items 10000] [--clients 8] [--seconds 60] [--budget 10]

Generates a catalog of ``--items`` items in one collection named as the corpus expects (ndjson,
in a temporary folder, beside the files the corpus's served-file requests ask for, and its
collection of thousands of properties), serves it
with --serve-assets, and has ``--clients`` threads send the corpus in a loop, each from its own
shuffled order, until ``--seconds`` pass; one more process asks /_mgmt/health every 50 ms and
scrapes /_mgmt/metrics every second. Prints, per status code, how many answers and the slowest;
the hostile requests that ran past the budget + 1 s; 5xx answers, transport errors (a crash or a
hang shows as these); the health check's p50/p99/max; the scrape's p50/max and its size, first
and last; tracebacks in the server's log. Exits non-zero if any request failed, any ran over
budget + 1 s, a 5xx was answered, the server logged a traceback, or it died. Loopback only;
bounded in time.
"""

from __future__ import annotations

import argparse
import collections
import json
import multiprocessing
import os
import random
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.serverproc import clean_env, free_port, start_server, stop, wait_ready  # noqa: E402
from tests.helpers import collection, item  # noqa: E402
from tests.hostile_requests import (  # noqa: E402
    COLLECTION,
    HostileRequest,
    corpus,
    lay_out_served_files,
    write_wide_collection,
)
from tests.test_hostile_requests import send  # noqa: E402


def write_catalog(folder: str, n: int) -> list[str]:
    lay_out_served_files(folder)
    with open(os.path.join(folder, "collection.json"), "w") as out:
        json.dump(collection(COLLECTION), out)
    with open(os.path.join(folder, "items.ndjson"), "w") as out:
        for i in range(n):
            x, y = (i % 60) - 10, 36 + (i // 60) % 30
            props = {"gsd": 10 + i % 3, "platform": f"sat-{i % 4}", "title": f"scene {i} over tile {i % 97}"}
            doc = item(f"item-{i:07d}-{'a' * 32}", (x, y, x + 1, y + 1), f"20{18 + i % 7}-{1 + i % 12:02d}-01T00:00:00Z",
                       COLLECTION, properties=props)
            out.write(json.dumps(doc) + "\n")
    return [os.path.join(folder, "collection.json"), os.path.join(folder, "items.ndjson"), *write_wide_collection(folder)]


def health_check(base: str, end: float, results: multiprocessing.Queue) -> None:
    """GET /_mgmt/health every 50 ms, and /_mgmt/metrics every second, until `end`
    (time.monotonic is system-wide on Linux)."""
    probe = HostileRequest("health", "GET", "/_mgmt/health")
    scrape = HostileRequest("metrics", "GET", "/_mgmt/metrics")
    times: list[float] = []
    scrapes: list[tuple[float, int]] = []  # seconds, bytes
    failures: list[str] = []
    next_scrape = 0.0
    while time.monotonic() < end:
        for case in (probe, scrape) if time.monotonic() >= next_scrape else (probe,):
            try:
                answer = send(base, case)
                if case is probe:
                    times.append(answer.seconds)
                else:
                    scrapes.append((answer.seconds, len(answer.body)))
                    next_scrape = time.monotonic() + 1
                if answer.status != 200:
                    failures.append(f"{case.name}: {answer.status}")
            except Exception as exc:
                failures.append(f"{case.name}: {type(exc).__name__}: {exc}")
        time.sleep(0.05)
    results.put((times, scrapes, failures))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=10_000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--budget", type=float, default=10, help="STAC_STATIC_QUERY_TIME_BUDGET")
    args = ap.parse_args()

    cases = corpus()
    stats: dict[int, list[float]] = collections.defaultdict(list)
    over: list[tuple[str, float]] = []
    failures: list[str] = []
    health: list[float] = []
    lock = threading.Lock()
    with tempfile.TemporaryDirectory() as folder:
        roots = write_catalog(folder, args.items)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        log = os.path.join(os.path.dirname(folder), os.path.basename(folder) + ".log")  # not a served file
        proc = start_server(roots, port, env=clean_env({"STAC_STATIC_QUERY_TIME_BUDGET": str(args.budget),
                                                        "STAC_STATIC_SERVE_ASSETS": "true"}), log=log)
        try:
            wait_ready(port, proc, 120)
            end = time.monotonic() + args.seconds

            def client(seed: int) -> None:
                order = list(cases)
                random.Random(seed).shuffle(order)
                while time.monotonic() < end:
                    for case in order:
                        if time.monotonic() >= end:
                            return
                        try:
                            answer = send(base, case)
                        except Exception as exc:  # a crash or a hang: counted, never raised
                            with lock:
                                failures.append(f"{case.name}: {type(exc).__name__}: {exc}")
                            continue
                        with lock:
                            stats[answer.status].append(answer.seconds)
                            if answer.seconds > args.budget + 1:
                                over.append((case.name, answer.seconds))
                            if answer.status >= 500:
                                failures.append(f"{case.name}: {answer.status}")

            # Health is timed from a process of its own: in this one it would wait for the
            # clients' threads to let go of the GIL, and time that, not the server.
            results: multiprocessing.Queue = multiprocessing.Queue()
            checker = multiprocessing.Process(target=health_check, args=(base, end, results))
            threads = [threading.Thread(target=client, args=(i,)) for i in range(args.clients)]
            checker.start()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            times, scrapes, health_failures = results.get(timeout=60)
            checker.join()
            health.extend(times)
            failures.extend(health_failures)
            alive = proc.poll() is None
        finally:
            stop(proc)
            with open(log, errors="replace") as output:
                tracebacks = output.read().count("Traceback")
            os.unlink(log)
    total = sum(len(v) for v in stats.values())
    print(f"{args.clients} clients x {args.seconds:.0f} s, {args.items} items, budget {args.budget} s: "
          f"{total} hostile requests answered ({len(cases)} in the corpus)")
    for status in sorted(stats):
        print(f"  {status}: {len(stats[status])} answers, slowest {max(stats[status]):.2f} s")
    health.sort()
    if health:
        print(f"  /_mgmt/health: {len(health)} checks, p50 {1000 * statistics.median(health):.1f} ms, "
              f"p99 {1000 * health[int(0.99 * (len(health) - 1))]:.1f} ms, max {1000 * health[-1]:.1f} ms")
    if scrapes:
        took = sorted(t for t, _ in scrapes)
        print(f"  /_mgmt/metrics: {len(scrapes)} scrapes, p50 {1000 * statistics.median(took):.1f} ms, "
              f"max {1000 * took[-1]:.1f} ms, {scrapes[0][1]} bytes first, {scrapes[-1][1]} last")
    print(f"  over budget + 1 s: {len(over)}; failures (5xx, transport errors): {len(failures)}; "
          f"tracebacks logged: {tracebacks}; server alive: {alive}")
    for line in failures[:10] + [f"over: {name} {took:.2f} s" for name, took in over[:10]]:
        print("   ", line)
    return 0 if alive and not failures and not over and not tracebacks else 1


if __name__ == "__main__":
    sys.exit(main())
