"""Server-side latency per query type through the real ASGI app (issue 4, target 3).

    python bench/latency.py ROOT [--snapshot FILE] [--runs N] [--json OUT]

ROOT is a generated catalog (``bench/generate.py``), either layout: for ``--layout ndjson`` the
roots handed to the loader are every ``*/collection.json`` plus every ``*/items.ndjson``; for
``--layout files`` and ``--layout parquet`` it is the folder itself (the sample ids of a parquet
layout are read from a few of its ``items.parquet``). With ``--snapshot FILE`` the index is read from that
snapshot when it exists (and written there after a load when it does not), which is how the
1,000,000-item run starts in seconds instead of minutes.

Every query runs through ``server.runtime.app.create_app(Settings(), index=...)`` called as a raw ASGI
app in-process (a scope, one ``http.request`` message, the ``send`` messages collected): that
is the server-side cost from the request scope to the last body byte, without an HTTP client's
own overhead. ``--driver httpx`` drives it through ``httpx.ASGITransport`` instead.

Reported per query type (all limit 10, numberMatched always computed):

* ours: median and p95 ms through the app with its response and match caches off (every request
  searches, renders and serializes); cached: the same URLs with the default response cache (a repeat of a URL
  is answered from memory);
* index: median ms of ``parse_search(params)`` + ``index.search(query)`` alone (for the item GET,
  ``index.find``), i.e. what the numpy index costs without routing, rendering and JSON;
* bare: median ms of a trivial Starlette endpoint returning the *same response bytes* for the
  same URL (no middleware, no work), timed interleaved with ours so both see the same noise;
* ratio: ours / bare. Deep paging: page 50 (reached by following 49 ``next`` tokens) vs page 1;
  then pages 2-50 of the same search through an app with the match cache on (the default),
  where the pages after the first reuse page 1's matches.

``--metrics on|off`` (default on, as the server) sets STAC_STATIC_METRICS for the apps above.
``--metrics-overhead ROUNDS`` measures instead what the metrics cost (issue 17): the same URLs
through an app with metrics on and one with them off, interleaved request by request (which goes
first alternates), ``--runs`` requests each per round, for item GET and bbox+datetime with the
caches off and, for reference, with the response cache on (every repeat a hit: the cheapest
request there is); per round the medians, then the median of the rounds. ``--multiprocess``
first sets PROMETHEUS_MULTIPROC_DIR to a fresh folder, as ``serve --workers N`` does (the
library's multiprocess mode: values in shared files).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import glob
import json
import math
import os
import random
import statistics
import sys
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

LIMIT = 10
HOST = "testserver"
# Headers every raw ASGI request adds (ab_latency --accept-encoding: a browser's "gzip, deflate, br").
EXTRA_HEADERS: list[tuple[bytes, bytes]] = []

# A handful of bounding boxes over the generated region (lon -10..30, lat 36..70).
BBOXES = [
    (5.0, 45.0, 10.0, 50.0),
    (-5.0, 40.0, 0.0, 44.0),
    (12.0, 55.0, 18.0, 60.0),
    (20.0, 38.0, 26.0, 42.0),
    (0.0, 60.0, 8.0, 66.0),
]
DATETIMES = [
    "2020-01-01T00:00:00Z/2020-12-31T23:59:59Z",
    "2019-03-01T00:00:00Z/2019-08-31T23:59:59Z",
    "2022-01-01T00:00:00Z/2022-06-30T23:59:59Z",
    "2023-05-01T00:00:00Z/2024-04-30T23:59:59Z",
    "2018-06-01T00:00:00Z/2018-12-31T23:59:59Z",
]
POLYGONS = [
    [[6.0, 46.0], [11.0, 47.0], [10.0, 51.0], [5.5, 50.0], [6.0, 46.0]],
    [[-4.0, 40.5], [1.0, 41.0], [-1.0, 44.5], [-4.0, 40.5]],
    [[13.0, 55.5], [18.0, 56.0], [17.5, 59.5], [12.5, 59.0], [13.0, 55.5]],
]
PAGING_BBOX = (0.0, 40.0, 20.0, 60.0)  # about 30% of the items: a large result to page through
FILTER = "eo:cloud_cover < 10 AND platform = 'sentinel-2a'"


def bbox_str(b: tuple[float, ...]) -> str:
    return ",".join(f"{v:g}" for v in b)


def polygon(ring: list[list[float]]) -> dict[str, Any]:
    return {"type": "Polygon", "coordinates": [ring]}


def polygon_filter(ring: list[list[float]]) -> str:
    """A CQL2 text filter with a polygon literal (the geometry a map client draws) and a property."""
    wkt = ", ".join(f"{x:g} {y:g}" for x, y in ring)
    return f"S_INTERSECTS(geometry, POLYGON(({wkt}))) AND eo:cloud_cover < 30"


def circle(x: float, y: float, r: float, n: int = 64) -> list[list[float]]:
    ring = [[round(x + r * math.cos(2 * math.pi * k / n), 5), round(y + r * math.sin(2 * math.pi * k / n), 5)]
            for k in range(n)]
    return [*ring, ring[0]]


def sample_items(root: str, n: int = 40, seed: int = 4) -> list[tuple[str, str]]:
    """(collection, id) of a few items, read from the catalog files (so peers can use them too)."""
    rng = random.Random(seed)
    out: list[tuple[str, str]] = []
    ndjsons = sorted(glob.glob(os.path.join(root, "*", "items.ndjson")))
    if len(ndjsons) > n:  # bench/replicate.py's copies: a few of them, spread
        ndjsons = ndjsons[:: len(ndjsons) // 4][:4]
    if ndjsons:
        for path in ndjsons:
            with open(path, "rb") as f:
                lines = [line for line, _ in zip(f, range(400))]  # (a small collection has fewer)
            with open(os.path.join(os.path.dirname(path), "collection.json")) as f:
                served_under = json.load(f)["id"]  # a copy's items name the original collection
            for line in rng.sample(lines, min(n // len(ndjsons), len(lines))):
                doc = json.loads(line)
                out.append((served_under, doc["id"]))
        return out
    parquets = sorted(glob.glob(os.path.join(root, "*", "items.parquet")))
    if parquets:  # stac-geoparquet beside each collection (generate.py --layout parquet, replicate.py)
        import pyarrow.parquet as pq

        parquets = [p for p in parquets if pq.ParquetFile(p).metadata.num_rows >= 400]  # the large ones
        parquets = parquets[:: max(1, len(parquets) // 4)][:4]
        for path in parquets:
            ids = pq.ParquetFile(path).read_row_group(0, columns=["id"]).column("id").to_pylist()[:400]
            with open(os.path.join(os.path.dirname(path), "collection.json")) as f:
                served_under = json.load(f)["id"]
            out.extend((served_under, i) for i in rng.sample(ids, n // len(parquets)))
        return out
    for coll in sorted(glob.glob(os.path.join(root, "*", "collection.json"))):
        with open(coll) as f:
            doc = json.load(f)
        links = [link["href"] for link in doc["links"] if link["rel"] == "item"][:400]
        for href in rng.sample(links, n // 4):
            item_id = os.path.splitext(os.path.basename(href))[0]
            out.append((doc["id"], item_id))
    return out


def query_mix(root: str) -> dict[str, list[tuple[str, dict[str, str]]]]:
    """Query type -> variants, each (path, GET params). Deterministic for a given catalog."""
    items = sample_items(root)
    ids = [i for _, i in items]
    mix: dict[str, list[tuple[str, dict[str, str]]]] = {
        "bbox": [("/search", {"bbox": bbox_str(b), "limit": str(LIMIT)}) for b in BBOXES],
        "bbox+datetime": [
            ("/search", {"bbox": bbox_str(b), "datetime": d, "limit": str(LIMIT)}) for b, d in zip(BBOXES, DATETIMES)
        ],
        "datetime": [("/search", {"datetime": d, "limit": str(LIMIT)}) for d in DATETIMES],
        "intersects": [
            ("/search", {"intersects": json.dumps(polygon(r), separators=(",", ":")), "limit": str(LIMIT)})
            for r in POLYGONS
        ],
        "ids (10)": [("/search", {"ids": ",".join(ids[k : k + 10]), "limit": str(LIMIT)}) for k in range(0, 40, 10)],
        "item GET": [(f"/collections/{c}/items/{i}", {}) for c, i in items[:5]],
        "filter (cql2-text)": [("/search", {"filter": FILTER, "filter-lang": "cql2-text", "limit": str(LIMIT)})],
        "filter (polygon)": [("/search", {"filter": polygon_filter(r), "filter-lang": "cql2-text", "limit": str(LIMIT)})
                             for r in [*POLYGONS, circle(10.0, 50.0, 3.0)]],
        "sortby": [("/search", {"sortby": "-properties.eo:cloud_cover", "limit": str(LIMIT)})],
        "q": [("/search", {"q": "sentinel", "limit": str(LIMIT)})],
        "paging p1": [("/search", {"bbox": bbox_str(PAGING_BBOX), "limit": str(LIMIT)})],
    }
    return mix


def url_of(path: str, params: dict[str, str]) -> str:
    return path + ("?" + urlencode(params) if params else "")


# -- raw ASGI driving -------------------------------------------------------------------------


def make_scope(url: str) -> dict[str, Any]:
    parts = urlsplit(url)
    return {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": parts.path,
        "raw_path": parts.path.encode(),
        "query_string": parts.query.encode(),
        "root_path": "",
        "headers": [(b"host", HOST.encode()), (b"accept", b"*/*"), (b"user-agent", b"bench"), *EXTRA_HEADERS],
        "client": ("127.0.0.1", 50000),
        "server": (HOST, 80),
        "state": {},
    }


async def call(app: Any, url: str, returned: list[float] | None = None) -> tuple[int, bytes, float]:
    """(status, body, seconds to the last body byte) of one GET through ``app``; with
    ``returned``, the seconds until the app returned are appended to it (what it did after
    the last byte included: the metrics count then)."""
    scope = make_scope(url)
    status = 0
    chunks: list[bytes] = []
    last_byte = 0.0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, last_byte
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                last_byte = time.perf_counter()

    t0 = time.perf_counter()
    await app(scope, receive, send)
    if returned is not None:
        returned.append(time.perf_counter() - t0)
    return status, b"".join(chunks), (last_byte or time.perf_counter()) - t0


class HttpxDriver:
    def __init__(self, app: Any) -> None:
        import httpx

        self.client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url=f"http://{HOST}")

    async def __call__(self, url: str) -> tuple[int, bytes, float]:
        t0 = time.perf_counter()
        r = await self.client.get(url)
        return r.status_code, r.content, time.perf_counter() - t0


def bare_app(responses: dict[str, tuple[int, bytes, str]]) -> Any:
    """A trivial Starlette app answering each known URL with fixed bytes: the stack's floor."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        key = request.url.path + ("?" + request.url.query if request.url.query else "")
        status, body, media = responses[key]
        return Response(body, status_code=status, media_type=media)

    return Starlette(routes=[Route("/{path:path}", endpoint)])


# -- loading ------------------------------------------------------------------------------------


def roots_for(root: str) -> list[str]:
    ndjsons = sorted(glob.glob(os.path.join(root, "*", "items.ndjson")))
    if ndjsons:
        return sorted(glob.glob(os.path.join(root, "*", "collection.json"))) + ndjsons
    return [root]


def load_index(root: str, snapshot: str | None) -> tuple[Any, str, float]:
    from server.catalog.loader import load_catalogs
    from server.runtime.snapshot import read_snapshot, write_snapshot

    t0 = time.perf_counter()
    if snapshot and os.path.exists(snapshot):
        index, _ = read_snapshot(snapshot)
        return index, f"snapshot {snapshot}", time.perf_counter() - t0
    from server.catalog.configured import load_options
    from server.settings import Settings

    # Settings() reads STAC_STATIC_* variables: an ndjson root over 32 MiB needs
    # STAC_STATIC_MAX_DOCUMENT_BYTES raised (each 1M-item collection file is ~580 MB).
    index, report = load_catalogs(roots_for(root), load_options(Settings()))
    took = time.perf_counter() - t0
    how = f"load_catalogs ({report.summary()})"
    if snapshot:
        write_snapshot(snapshot, index, roots_for(root))
        how += f", snapshot written to {snapshot}"
    return index, how, took


# -- measuring ------------------------------------------------------------------------------------


def settle(timeout: float = 600.0) -> None:
    """Wait for what a server makes in the background on first use (threads named
    ``filter-bits ...``: a filter's column bit indexes; ``box-groups``: the groups a box search
    is counted from, ~20 CPU-seconds at 10,000,000 items: minutes on a loaded machine), so that
    the timed requests measure the steady state. Nothing to wait
    for in checkouts without them."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(t.name.startswith(("filter-bits", "box-groups")) for t in threading.enumerate()):
        time.sleep(0.05)


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(p / 100 * (len(s) - 1))))]


def index_only(index: Any, settings: Any, path: str, params: dict[str, str]) -> Callable[[], Any]:
    from server.api.pagination import decode_page_token
    from server.query.parse import parse_search

    if path.startswith("/collections/"):
        _, _, coll, _, item_id = path.split("/")
        return lambda: index.find(coll, item_id)

    def run() -> Any:
        q = parse_search(params, default_limit=settings.default_limit, max_limit=settings.max_limit)
        after, before = decode_page_token(q.token)
        return index.search(q, after=after, before=before)

    return run


OVERHEAD_QUERIES = ("item GET", "bbox+datetime")


async def metrics_overhead(index: Any, mix: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Medians with metrics on and off, interleaved (see the module's docstring)."""
    from server.runtime.app import create_app
    from server.settings import Settings

    rows = []
    for cached in (False, True):
        caches = {} if cached else {"response_cache_bytes": 0, "match_cache_bytes": 0}
        apps = {on: create_app(Settings(metrics=on, **caches), index=index) for on in (True, False)}
        for name in OVERHEAD_QUERIES:
            urls = [url_of(p, q) for p, q in mix[name]]
            for u in urls:  # warm: pages, label children, the cache's entries
                for app in apps.values():
                    for _ in range(3):
                        await call(app, u)
            rounds = []
            paired: list[float] = []  # on - off of each pair of requests, one just after the other
            paired_returned: list[float] = []
            for _ in range(args.metrics_overhead):
                times: dict[bool, list[float]] = {True: [], False: []}
                spent: dict[bool, list[float]] = {True: [], False: []}  # until the app returned
                gc.collect()
                for k in range(args.runs):
                    u = urls[k % len(urls)]
                    for on in ((True, False) if k % 2 == 0 else (False, True)):
                        status, _, dt = await call(apps[on], u, spent[on])
                        assert status == 200, (u, status)
                        times[on].append(dt)
                    paired.append(times[True][-1] - times[False][-1])
                    paired_returned.append(spent[True][-1] - spent[False][-1])
                rounds.append([statistics.median(x) * 1e3 for x in (times[True], times[False], spent[True], spent[False])])
            on_ms, off_ms, on_all, off_all = (statistics.median(r[i] for r in rounds) for i in range(4))
            row = {"query": name + (" (cache hit)" if cached else ""), "on_ms": on_ms, "off_ms": off_ms,
                   "added_pct": (on_ms / off_ms - 1) * 100, "added_us": (on_ms - off_ms) * 1e3,
                   "paired_added_us": statistics.median(paired) * 1e6,
                   "paired_returned_added_us": statistics.median(paired_returned) * 1e6,
                   "returned_on_ms": on_all, "returned_off_ms": off_all, "returned_added_us": (on_all - off_all) * 1e3,
                   "rounds": rounds}
            rows.append(row)
            print(f"  {row['query']:26s} to the last byte: on {on_ms:.4f} ms, off {off_ms:.4f} ms: "
                  f"{row['added_pct']:+.1f}% ({row['added_us']:+.2f} us; paired {row['paired_added_us']:+.2f} us, "
                  f"{row['paired_added_us'] / off_ms / 10:+.1f}%); until the app returned (the counting "
                  f"after the last byte too): paired {row['paired_returned_added_us']:+.2f} us, "
                  f"{row['paired_returned_added_us'] / off_all / 10:+.1f}%  (rounds on/off: "
                  f"{', '.join(f'{r[0]:.4f}/{r[1]:.4f}' for r in rounds)})", file=sys.stderr)
    return {"items": index.size, "multiprocess": bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR")),
            "runs": args.runs, "rows": rows}


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    from server.runtime.app import create_app
    from server.settings import Settings

    index, how, load_s = load_index(args.root, args.snapshot)
    size = index.size
    print(f"# {size:,} items via {how} in {load_s:.1f} s", file=sys.stderr)
    if args.metrics_overhead:
        return await metrics_overhead(index, query_mix(args.root), args)
    # The response cache (server/api/caching.py) would answer every repeat of a URL from memory, and
    # the match cache every repeat of a query without searching: "ours" is measured with both
    # off, so each request does the real work; "cached" with the defaults.
    metrics = args.metrics == "on"
    settings = Settings(response_cache_bytes=0, match_cache_bytes=0, metrics=metrics)
    app = create_app(settings, index=index)
    cached_app = create_app(Settings(metrics=metrics), index=index)
    ours = HttpxDriver(app) if args.driver == "httpx" else (lambda url: call(app, url))

    mix = query_mix(args.root)
    # deep paging: follow next links from page 1 to page 50
    path, params = mix["paging p1"][0]
    url = url_of(path, params)
    for _ in range(49):
        status, body, _ = await call(app, url)
        nxt = [link for link in json.loads(body)["links"] if link["rel"] == "next"]
        assert status == 200 and nxt, "the paging query must have at least 50 pages"
        parts = urlsplit(nxt[0]["href"])
        url = parts.path + "?" + parts.query
    mix["paging p50"] = [(urlsplit(url).path, dict(parse_qsl(urlsplit(url).query)))]

    # capture the response bytes of every URL for the bare endpoint
    responses: dict[str, tuple[int, bytes, str]] = {}
    info: dict[str, dict[str, Any]] = {}
    for name, variants in mix.items():
        matched, nbytes = [], []
        for path, params in variants:
            u = url_of(path, params)
            status, body, _ = await call(app, u)
            if status != 200:
                raise SystemExit(f"{name}: {u} answered {status}: {body[:300]!r}")
            doc = json.loads(body)
            media = "application/geo+json"
            responses[u] = (status, body, media)
            matched.append(doc.get("numberMatched", 1))
            nbytes.append(len(body))
        info[name] = {"matched": matched, "bytes": int(statistics.mean(nbytes))}
    bare = bare_app(responses)

    if args.profile:
        await profile(app, mix, args)
        return {}

    rows = []
    gc.collect()
    for name, variants in mix.items():
        urls = [url_of(p, q) for p, q in variants]
        idx_fns = [index_only(index, settings, p, q) for p, q in variants]
        runs = args.runs
        for k in range(min(10, runs)):  # warm-up
            await ours(urls[k % len(urls)])
            await call(bare, urls[k % len(urls)])
        settle()
        t_ours, t_bare, t_idx, t_cached = [], [], [], []
        deadline = time.perf_counter() + args.max_seconds
        for k in range(runs):
            u = urls[k % len(urls)]
            status, body, dt = await ours(u)
            t_ours.append(dt)
            _, body2, dt2 = await call(bare, u)
            t_bare.append(dt2)
            _, _, dt3 = await call(cached_app, u)
            t_cached.append(dt3)
            t0 = time.perf_counter()
            idx_fns[k % len(urls)]()
            t_idx.append(time.perf_counter() - t0)
            if time.perf_counter() > deadline and k >= 20:
                break
        row = {
            "query": name,
            "runs": len(t_ours),
            "matched": info[name]["matched"],
            "bytes": info[name]["bytes"],
            "ours_median_ms": statistics.median(t_ours) * 1e3,
            "ours_p95_ms": pct(t_ours, 95) * 1e3,
            "cached_median_ms": statistics.median(t_cached) * 1e3,
            "index_median_ms": statistics.median(t_idx) * 1e3,
            "bare_median_ms": statistics.median(t_bare) * 1e3,
            "bare_p95_ms": pct(t_bare, 95) * 1e3,
        }
        row["ratio"] = row["ours_median_ms"] / row["bare_median_ms"]
        rows.append(row)
        print(f"  {name:20s} {row['ours_median_ms']:8.3f} ms", file=sys.stderr)
    matches_app = create_app(Settings(response_cache_bytes=0, metrics=metrics), index=index)  # the match cache on
    next_pages = [await next_pages_ms(matches_app, url_of(*mix["paging p1"][0])) for _ in range(3)][-1]
    return {"items": size, "load": how, "load_seconds": load_s, "driver": args.driver, "rows": rows,
            "next_pages_match_cache_ms": next_pages,
            "variants": {k: [url_of(p, q) for p, q in v] for k, v in mix.items()}}


async def next_pages_ms(app: Any, url: str, pages: int = 49) -> list[float]:
    """ms per request of page 1 and the next ``pages`` pages of a search, following its next
    links through ``app`` (the caller keeps the last of three passes: item bytes paged in, and
    with a match cache every page of it, the first too, served from the cached matches)."""
    times = []
    for _ in range(pages + 1):
        status, body, dt = await call(app, url)
        times.append(dt * 1e3)
        nxt = [link for link in json.loads(body)["links"] if link["rel"] == "next"]
        assert status == 200 and nxt, "the paging query must have more pages"
        parts = urlsplit(nxt[0]["href"])
        url = parts.path + "?" + parts.query
    return times


async def profile(app: Any, mix: dict[str, Any], args: argparse.Namespace) -> None:
    """cProfile of --profile-runs requests of each named query type through the app (cache off)."""
    import cProfile
    import pstats

    for name in args.profile.split(","):
        urls = [url_of(p, q) for p, q in mix[name]]
        prof = cProfile.Profile()
        t0 = time.perf_counter()
        prof.enable()
        for k in range(args.profile_runs):
            await call(app, urls[k % len(urls)])
        prof.disable()
        took = time.perf_counter() - t0
        print(f"\n=== {name}: {args.profile_runs} requests, {took / args.profile_runs * 1e3:.3f} ms each under cProfile")
        pstats.Stats(prof).sort_stats("tottime").print_stats(args.profile_top)


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{result['items']:,} items ({result['driver']} driver; {result['load']}, "
          f"{result['load_seconds']:.1f} s)")
    head = f"{'query':20s} {'matched':>10s} {'bytes':>7s} {'ours med':>9s} {'ours p95':>9s} " \
           f"{'cached':>8s} {'index med':>9s} {'bare med':>9s} {'ratio':>6s}"
    print(head)
    print("-" * len(head))
    for r in result["rows"]:
        m = r["matched"]
        matched = str(m[0]) if len(set(m)) == 1 else f"{min(m)}-{max(m)}"
        print(f"{r['query']:20s} {matched:>10s} {r['bytes']:7d} {r['ours_median_ms']:9.3f} {r['ours_p95_ms']:9.3f} "
              f"{r['cached_median_ms']:8.3f} {r['index_median_ms']:9.3f} {r['bare_median_ms']:9.3f} {r['ratio']:6.1f}")
    by = {r["query"]: r for r in result["rows"]}
    p1, p50 = by["paging p1"]["ours_median_ms"], by["paging p50"]["ours_median_ms"]
    print(f"deep paging: page 50 / page 1 = {p50 / p1:.2f}")
    pages = result.get("next_pages_match_cache_ms")
    if pages:
        print(f"paging with the match cache (the default): pages 2-{len(pages)} median "
              f"{statistics.median(pages[1:]):.3f} ms per page (vs paging p50 above, without it)")
    print("targets (issue 4 #3, at 1,000,000 items): bbox+datetime <= 2 ms: "
          f"{by['bbox+datetime']['ours_median_ms']:.2f}; filter <= 2 ms: "
          f"{by['filter (cql2-text)']['ours_median_ms']:.2f}; ids <= 1 ms: {by['ids (10)']['ours_median_ms']:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="generated catalog folder (files, ndjson or parquet layout)")
    parser.add_argument("--snapshot", help="read the index from this snapshot (written after a load if missing)")
    parser.add_argument("--runs", type=int, default=300, help="timed runs per query type (default 300)")
    parser.add_argument("--max-seconds", type=float, default=30.0, help="stop a query type after this long")
    parser.add_argument("--driver", choices=("asgi", "httpx"), default="asgi")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--profile", metavar="TYPES",
                        help="instead of timing, cProfile these query types (comma-separated names of the table)")
    parser.add_argument("--profile-runs", type=int, default=300)
    parser.add_argument("--profile-top", type=int, default=15)
    parser.add_argument("--metrics", choices=("on", "off"), default="on", help="STAC_STATIC_METRICS of the apps")
    parser.add_argument("--metrics-overhead", type=int, metavar="ROUNDS", default=0,
                        help="instead: metrics on vs off, interleaved, in ROUNDS rounds of --runs requests each")
    parser.add_argument("--multiprocess", action="store_true",
                        help="the metrics in the library's multiprocess mode (as serve --workers N)")
    args = parser.parse_args()
    folder = None
    if args.multiprocess:  # before prometheus_client is imported (server.runtime.cli.metrics_mode)
        import tempfile

        folder = tempfile.mkdtemp(prefix="bench-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = folder
    try:
        result = asyncio.run(measure(args))
    finally:
        if folder:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)
    if args.metrics_overhead:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=1)
        return
    if args.profile:
        return
    print_table(result)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=1)


if __name__ == "__main__":
    main()
