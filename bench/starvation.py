"""Issue 6: a CPU-heavy query must not stall other clients. Measures cheap requests (one item
by id) alone, then while other connections keep sending heavy ones (`LIKE '%a%'` over every
id, a large-area search sorted by a property), on the real server over loopback.

    python bench/starvation.py ROOT... [--index FILE] [--seconds 10]

Prints the median and p95 of the cheap request in both phases and how many heavy requests ran.
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time

import httpx

# bench/, this script's folder, is on sys.path
from serverproc import free_port, start_server, stop, wait_ready

HEAVY = [
    {"filter": "id LIKE '%a%'", "limit": "10"},
    {"bbox": "-10,36,30,70", "sortby": "-eo:cloud_cover", "limit": "10"},
]


def cheap_latencies(base: str, item_url: str, seconds: float) -> list[float]:
    out = []
    with httpx.Client(base_url=base, timeout=60) as client:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            started = time.perf_counter()
            assert client.get(item_url).status_code == 200
            out.append((time.perf_counter() - started) * 1000)
            time.sleep(0.01)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*")
    parser.add_argument("--index", dest="index_file")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--heavy-clients", type=int, default=2)
    args = parser.parse_args()
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, STAC_STATIC_RESPONSE_CACHE_BYTES="0", STAC_STATIC_MATCH_CACHE_BYTES="0")
    server = start_server(args.roots, port, index=args.index_file, env=env)
    try:
        try:
            wait_ready(port, server, 300, "/_mgmt/ready", interval=0.3, request_timeout=5)
        except RuntimeError as exc:
            raise SystemExit(f"server did not start: {exc}") from None
        feature = httpx.get(base + "/search", params={"limit": 1}).json()["features"][0]
        item_url = f"/collections/{feature['collection']}/items/{feature['id']}"
        alone = cheap_latencies(base, item_url, args.seconds)

        stop_heavy = threading.Event()
        heavy_times: list[float] = []

        def heavy() -> None:
            with httpx.Client(base_url=base, timeout=120) as client:
                i = 0
                while not stop_heavy.is_set():
                    started = time.perf_counter()
                    client.get("/search", params=HEAVY[i % len(HEAVY)])
                    heavy_times.append((time.perf_counter() - started) * 1000)
                    i += 1

        threads = [threading.Thread(target=heavy, daemon=True) for _ in range(args.heavy_clients)]
        for t in threads:
            t.start()
        time.sleep(0.5)
        during = cheap_latencies(base, item_url, args.seconds)
        stop_heavy.set()
        for t in threads:
            t.join(timeout=120)
    finally:
        stop(server, timeout=30)

    def stats(values: list[float]) -> str:
        values = sorted(values)
        return f"median {statistics.median(values):7.2f} ms  p95 {values[int(len(values) * 0.95) - 1]:7.2f} ms  (n={len(values)})"

    print(f"cheap request alone          : {stats(alone)}")
    print(f"cheap request during heavy   : {stats(during)}")
    print(f"heavy requests ({args.heavy_clients} clients)   : {stats(heavy_times)}")


if __name__ == "__main__":
    main()
