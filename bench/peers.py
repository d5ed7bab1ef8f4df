"""The same query mix against the peer STAC servers and against us (issue 4, target 7).

    python bench/peers.py --items 10000 [--peers ours,rustac,pgstac,static,floor,ours-parquet,rustac-parquet]
                          [--runs 30] [--budget 20] [--json OUT]

See bench/peers/README.md for how each peer is installed (each in its own virtualenv under
/tmp/peers) and what had to be worked around. Data: the catalog is generated with
bench/generate.py (same seed) in the layout each server needs, under /tmp/peers/data:

* ours and rustac: ``--layout ndjson`` (collection.json files + items.ndjson);
* ours-parquet and rustac-parquet: the same collection.json files and the same items as one
  stac-geoparquet file, ``all-items.parquet``, written by our ``export`` (stac-geoparquet's
  writer). rustac serves it with its memory backend (``--use-duckdb false``): its DuckDB
  backend installs DuckDB's spatial, icu and httpfs extensions from extensions.duckdb.org at
  start, which cannot be reached here (PyPI's duckdb-extension-* wheels stop at 1.5.5, rustac
  0.9.18 bundles DuckDB 1.5.6, and an extension of another DuckDB version is refused), so
  every request answered 500 "Timed out in bb8" after 30 s;
* stac-fastapi-static: ``--layout files`` (a real static catalog), served from a copy of the
  root catalog without its ``self`` link;
* stac-fastapi-pgstac: the ndjson items and the collections loaded with ``pypgstac load``
  into a private PostgreSQL+PostGIS cluster on 127.0.0.1:55432 (see the README).

``floor`` is no STAC server: a bare ASGI app under the same uvicorn as ours (httptools, uvloop)
that answers GET /collections/{c}/items/{id} with the item's stored bytes and nothing else: what
an item GET costs in this HTTP stack before any work of ours (the other query types: "error").

Every server is started by this script and stopped by its PID/process group. Latency is the
client-side median over HTTP on loopback (one keep-alive connection, sequential requests), so
each server pays for its own HTTP stack. Searches are POST /search with JSON bodies for every
server (rustac's GET /search answers 500 whenever a next page exists with bbox/collections;
stac-fastapi-static's GET next links drop ``limit``); the item is GET
/collections/{c}/items/{id}. Agreement: for the first variant of each query type the whole
result set is fetched (limit 500 pages, following ``next``) and its ids compared with ours.
"""

from __future__ import annotations

import argparse
import glob
import http.client
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import serverproc  # noqa: E402
from latency import BBOXES, DATETIMES, POLYGONS, polygon, sample_items  # noqa: E402
from serverproc import free_port, spawn, start_server, stop, wait_ready  # noqa: E402

PEERS = "/tmp/peers"
DATA = os.path.join(PEERS, "data")
OURS_PY = os.environ.get("OURS_PY", "/tmp/venv/bin/python")  # the server's interpreter (its venv)
PG = {"host": "127.0.0.1", "port": "55432", "user": "postgres", "db": "stac"}
LIMIT = 10

FILTER_JSON = {
    "op": "and",
    "args": [
        {"op": "<", "args": [{"property": "eo:cloud_cover"}, 10]},
        {"op": "=", "args": [{"property": "platform"}, "sentinel-2a"]},
    ],
}
PAGING_BBOX = [0.0, 40.0, 20.0, 60.0]


def mix(root: str) -> dict[str, list[tuple[str, str, dict[str, Any] | None]]]:
    """Query type -> variants (method, path, body)."""
    items = sample_items(root)
    ids = [i for _, i in items]
    s = "/search"
    return {
        "bbox": [("POST", s, {"bbox": list(b), "limit": LIMIT}) for b in BBOXES],
        "bbox+datetime": [("POST", s, {"bbox": list(b), "datetime": d, "limit": LIMIT}) for b, d in zip(BBOXES, DATETIMES)],
        "datetime": [("POST", s, {"datetime": d, "limit": LIMIT}) for d in DATETIMES],
        "intersects": [("POST", s, {"intersects": polygon(r), "limit": LIMIT}) for r in POLYGONS],
        "ids (10)": [("POST", s, {"ids": ids[k : k + 10], "limit": LIMIT}) for k in range(0, 40, 10)],
        "item GET": [("GET", f"/collections/{c}/items/{i}", None) for c, i in items[:5]],
        "filter (cql2-json)": [("POST", s, {"filter": FILTER_JSON, "filter-lang": "cql2-json", "limit": LIMIT})],
        "sortby": [("POST", s, {"sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}], "limit": LIMIT})],
        "q": [("POST", s, {"q": "sentinel", "limit": LIMIT})],
        "paging p1": [("POST", s, {"bbox": PAGING_BBOX, "limit": LIMIT})],
    }


# -- data ---------------------------------------------------------------------------------------


def generate(items: int) -> dict[str, str]:
    out = {}
    for layout in ("ndjson", "files"):
        d = os.path.join(DATA, f"{layout}-{items}")
        if not os.path.exists(os.path.join(d, "bench-manifest.json")):
            subprocess.run([OURS_PY, os.path.join(HERE, "generate.py"), d, "--items", str(items), "--layout", layout,
                            "--force", "-q"], check=True)
        out[layout] = d
    nd = out["ndjson"]
    # rustac / pgstac inputs: one items.ndjson, one collections.ndjson
    all_items = os.path.join(nd, "all-items.ndjson")
    if not os.path.exists(all_items):
        with open(all_items + ".tmp", "wb") as w:
            for p in sorted(glob.glob(os.path.join(nd, "*", "items.ndjson"))):
                with open(p, "rb") as r:
                    while chunk := r.read(1 << 24):
                        w.write(chunk)
        os.rename(all_items + ".tmp", all_items)
    cols = os.path.join(nd, "collections.ndjson")
    with open(cols, "w") as w:
        for p in sorted(glob.glob(os.path.join(nd, "*", "collection.json"))):
            with open(p) as r:
                doc = json.load(r)
            doc["links"] = [link for link in doc["links"] if link["rel"] not in ("root", "parent", "self")]
            w.write(json.dumps(doc) + "\n")
    # stac-fastapi-static: a root without its self link
    root = os.path.join(out["files"], "catalog.json")
    with open(root) as r:
        doc = json.load(r)
    doc["links"] = [link for link in doc["links"] if link["rel"] != "self"]
    with open(os.path.join(out["files"], "catalog-noself.json"), "w") as w:
        json.dump(doc, w)
    parquet = os.path.join(nd, "all-items.parquet")
    if not os.path.exists(parquet):  # the same items as stac-geoparquet, for the -parquet peers
        roots = sorted(glob.glob(os.path.join(nd, "*", "collection.json"))) + [all_items]
        subprocess.run([OURS_PY, "-m", "server", "export", *roots, "-o", parquet], check=True, capture_output=True)
    return out


# -- servers ------------------------------------------------------------------------------------


def clean_env(extra: dict[str, str]) -> dict[str, str]:
    return serverproc.clean_env(extra, drop=("STAC_STATIC_", "PG", "POSTGRES_"))


def start(name: str, data: dict[str, str], port: int, logdir: str) -> subprocess.Popen:
    nd = data["ndjson"]
    if name == "ours":
        roots = sorted(glob.glob(os.path.join(nd, "*", "collection.json")))
        roots += sorted(glob.glob(os.path.join(nd, "*", "items.ndjson")))
        env = clean_env({"STAC_STATIC_RESPONSE_CACHE_BYTES": "0", "STAC_STATIC_MATCH_CACHE_BYTES": "0",
                         "STAC_STATIC_MAX_DOCUMENT_BYTES": str(4 << 30)})
        return start_server(roots, port, env=env, log=os.path.join(logdir, f"{name}.log"), python=OURS_PY)
    elif name == "ours-parquet":
        roots = sorted(glob.glob(os.path.join(nd, "*", "collection.json"))) + [os.path.join(nd, "all-items.parquet")]
        env = clean_env({"STAC_STATIC_RESPONSE_CACHE_BYTES": "0", "STAC_STATIC_MATCH_CACHE_BYTES": "0"})
        return start_server(roots, port, env=env, log=os.path.join(logdir, f"{name}.log"), python=OURS_PY)
    elif name in ("rustac", "rustac-parquet"):
        cols = sorted(glob.glob(os.path.join(nd, "*", "collection.json")))
        items = ["all-items.ndjson"] if name == "rustac" else ["all-items.parquet", "--use-duckdb", "false"]
        cmd = [f"{PEERS}/rustac/bin/rustac", "serve", *cols, os.path.join(nd, items[0]), *items[1:],
               "-a", f"127.0.0.1:{port}"]
        env, cwd = clean_env({}), PEERS
    elif name == "static":
        href = "file://" + os.path.join(data["files"], "catalog-noself.json")
        cmd = [f"{PEERS}/static/bin/uvicorn", "stac_fastapi.static.app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
        env, cwd = clean_env({"catalog_href": href}), PEERS
    elif name == "pgstac":
        cmd = [f"{PEERS}/pgstac/bin/uvicorn", "stac_fastapi.pgstac.app:create_app", "--factory", "--host", "127.0.0.1",
               "--port", str(port), "--log-level", "warning", "--no-access-log"]
        env = clean_env({
            "PGHOST": PG["host"], "PGPORT": PG["port"], "PGUSER": PG["user"], "PGDATABASE": PG["db"], "PGPASSWORD": "x",
            "POSTGRES_HOST_READER": PG["host"], "POSTGRES_HOST_WRITER": PG["host"], "POSTGRES_PORT": PG["port"],
            "POSTGRES_USER": PG["user"], "POSTGRES_PASS": "x", "POSTGRES_DBNAME": PG["db"],
            "ENABLE_TRANSACTIONS_EXTENSIONS": "false",
        })
        cwd = PEERS
    elif name == "floor":
        app = os.path.join(logdir, "floor_app.py")
        with open(app, "w") as f:
            f.write(FLOOR_APP)
        cmd = [OURS_PY, "-m", "uvicorn", "floor_app:app", "--app-dir", logdir, "--host", "127.0.0.1", "--port", str(port),
               "--http", "httptools", "--loop", "uvloop", "--log-level", "warning", "--no-access-log"]
        env, cwd = clean_env({"FLOOR_ITEMS": os.path.join(nd, "all-items.ndjson")}), PEERS
    else:
        raise SystemExit(f"unknown peer {name}")
    return spawn(cmd, cwd=cwd, env=env, log=os.path.join(logdir, f"{name}.log"))


FLOOR_APP = r'''
import json, os

ITEMS = {}
with open(os.environ["FLOOR_ITEMS"], "rb") as f:
    for line in f:
        doc = json.loads(line)
        ITEMS[f"/collections/{doc['collection']}/items/{doc['id']}"] = line.rstrip()
HEADERS = [(b"content-type", b"application/geo+json")]


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = ITEMS.get(scope["path"]) if scope["method"] == "GET" else None
    status = 200 if body is not None else 404
    body = body if body is not None else b'{"code":"NotFound"}'
    await send({"type": "http.response.start", "status": status,
                "headers": HEADERS + [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
'''


def load_pgstac(data: dict[str, str], items: int) -> str:
    """Load the catalog into pgstac once per size (a marker table records what is loaded)."""
    dsn = f"postgresql://{PG['user']}@{PG['host']}:{PG['port']}/{PG['db']}"
    psql = ["psql", "-h", PG["host"], "-p", PG["port"], "-U", PG["user"], "-d", PG["db"], "-tAc"]
    have = subprocess.run(psql + ["select n from bench_loaded"], capture_output=True, text=True).stdout.strip()
    if have == str(items):
        return "already loaded"
    py = f"{PEERS}/pgstac/bin/pypgstac"
    t0 = time.perf_counter()
    subprocess.run([py, "migrate", "--dsn", dsn], check=True, capture_output=True)
    subprocess.run(psql + ["drop table if exists bench_loaded"], check=True, capture_output=True)
    subprocess.run(psql + ["delete from pgstac.items"], check=True, capture_output=True)
    subprocess.run(psql + ["delete from pgstac.collections"], check=True, capture_output=True)
    nd = data["ndjson"]
    subprocess.run([py, "load", "collections", os.path.join(nd, "collections.ndjson"), "--dsn", dsn,
                    "--method", "insert_ignore"], check=True, capture_output=True)
    subprocess.run([py, "load", "items", os.path.join(nd, "all-items.ndjson"), "--dsn", dsn,
                    "--method", "insert_ignore"], check=True, capture_output=True)
    subprocess.run(psql + ["vacuum analyze"], check=True, capture_output=True)
    subprocess.run(psql + [f"create table bench_loaded as select {items} as n"], check=True, capture_output=True)
    return f"loaded in {time.perf_counter() - t0:.0f} s"


# -- client -------------------------------------------------------------------------------------


class Client:
    def __init__(self, port: int, timeout: float) -> None:
        self.port, self.timeout = port, timeout
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, bytes, float]:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data else {}
        for attempt in (0, 1):
            try:
                t0 = time.perf_counter()
                self.conn.request(method, path, body=data, headers=headers)
                r = self.conn.getresponse()
                payload = r.read()
                return r.status, payload, time.perf_counter() - t0
            except (TimeoutError, http.client.HTTPException, ConnectionError):
                self.conn.close()
                self.conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout)
                if attempt:
                    raise
        raise AssertionError


def next_request(
    doc: dict[str, Any], method: str, path: str, body: dict[str, Any] | None
) -> tuple[str, str, dict[str, Any] | None] | None:
    for link in doc.get("links", []):
        if link.get("rel") != "next":
            continue
        href = urllib.parse.urlsplit(link["href"])
        target = href.path + ("?" + href.query if href.query else "")
        if link.get("method", "GET").upper() == "POST" or link.get("body"):
            nb = dict(link.get("body") or {})
            if link.get("merge", False) or method == "POST" and "token" in nb and len(nb) == 1:
                nb = {**(body or {}), **nb}
            return "POST", href.path, nb
        return "GET", target, None
    return None


def all_ids(
    client: Client, method: str, path: str, body: dict[str, Any] | None, deadline: float
) -> tuple[list[str], int | None, str]:
    """Every id of a result (limit 500 pages), its numberMatched, and a note if cut short."""
    if body is not None:
        body = {**body, "limit": 500}
    ids: list[str] = []
    matched = None
    req: tuple[str, str, dict[str, Any] | None] | None = (method, path, body)
    while req is not None:
        if time.perf_counter() > deadline:
            return ids, matched, "time budget exhausted"
        status, payload, _ = client.request(*req)
        if status != 200:
            return ids, matched, f"HTTP {status}: {payload[:160]!r}"
        doc = json.loads(payload)
        if doc.get("type") == "Feature":
            return [doc["id"]], 1, ""
        if matched is None:
            matched = doc.get("numberMatched", doc.get("context", {}).get("matched"))
        ids += [f["id"] for f in doc["features"]]
        if not doc["features"]:
            break
        req = next_request(doc, *req)
        if len(ids) > 200000:
            return ids, matched, "too many pages"
    return ids, matched, ""


def measure(name: str, client: Client, queries: dict[str, list], runs: int, budget: float) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for qname, variants in queries.items():
        times, statuses, note = [], set(), ""
        deadline = time.perf_counter() + budget
        method, path, body = variants[0]
        try:
            status, payload, _ = client.request(method, path, body)  # warm-up + check
        except Exception as exc:
            out[qname] = {"error": f"{type(exc).__name__}: {exc}"}
            continue
        if status != 200:
            out[qname] = {"error": f"HTTP {status}: {payload[:200].decode(errors='replace')}"}
            continue
        for k in range(runs):
            m, p, b = variants[k % len(variants)]
            try:
                status, payload, dt = client.request(m, p, b)
            except Exception as exc:
                note = f"{type(exc).__name__} after {k} runs"
                break
            statuses.add(status)
            times.append(dt)
            if time.perf_counter() > deadline and k >= 2:
                break
        row: dict[str, Any] = {"runs": len(times), "statuses": sorted(statuses)}
        if times:
            row["median_ms"] = statistics.median(times) * 1e3
        if note:
            row["note"] = note
        out[qname] = row
        print(f"  {name:7s} {qname:20s} {row.get('median_ms', float('nan')):10.2f} ms  {row['runs']} runs {sorted(statuses)}",
              file=sys.stderr)
    return out


def deep_page(client: Client, body: dict[str, Any], runs: int, budget: float) -> dict[str, Any]:
    """Follow 49 next links from page 1, then time page 50's request."""
    req: tuple[str, str, dict[str, Any] | None] | None = ("POST", "/search", body)
    t0 = time.perf_counter()
    for _ in range(49):
        status, payload, _ = client.request(*req)
        if status != 200:
            return {"error": f"HTTP {status} while paging: {payload[:160]!r}"}
        req = next_request(json.loads(payload), *req)
        if req is None:
            return {"error": "fewer than 50 pages"}
        if time.perf_counter() - t0 > budget:
            return {"error": f"reaching page 50 took over {budget:.0f} s"}
    times = []
    first_ids = None
    deadline = time.perf_counter() + budget
    for k in range(runs):
        status, payload, dt = client.request(*req)
        times.append(dt)
        if first_ids is None:
            first_ids = [f["id"] for f in json.loads(payload)["features"]]
        if time.perf_counter() > deadline and k >= 2:
            break
    return {"runs": len(times), "median_ms": statistics.median(times) * 1e3, "statuses": [status], "ids": first_ids}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--peers", default="ours,rustac,pgstac,static")
    parser.add_argument("--runs", type=int, default=30, help="timed runs per query type")
    parser.add_argument("--budget", type=float, default=20, help="seconds per query type and server")
    parser.add_argument("--ready-timeout", type=float, default=600)
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    os.makedirs(DATA, exist_ok=True)
    data = generate(args.items)
    queries = mix(data["ndjson"])
    logdir = os.path.join(PEERS, "logs")
    os.makedirs(logdir, exist_ok=True)
    results: dict[str, Any] = {"items": args.items, "servers": {}}
    for name in args.peers.split(","):
        entry: dict[str, Any] = {}
        results["servers"][name] = entry
        proc = None
        try:
            if name == "pgstac":
                entry["load"] = load_pgstac(data, args.items)
            port = free_port()
            proc = start(name, data, port, logdir)
            client = Client(port, timeout=max(60.0, args.budget * 3))
            ready_path = queries["item GET"][0][1] if name == "floor" else "/collections"
            entry["ready_s"] = wait_ready(port, proc, args.ready_timeout, ready_path, interval=0.5,
                                          request_timeout=client.timeout)
            print(f"# {name}: ready in {entry['ready_s']:.1f} s", file=sys.stderr)
            entry["latency"] = measure(name, client, queries, args.runs, args.budget)
            entry["paging p50"] = deep_page(client, queries["paging p1"][0][2], args.runs, args.budget)
            print(f"  {name:7s} paging p50            {entry['paging p50'].get('median_ms', float('nan')):10.2f} ms "
                  f"{entry['paging p50'].get('error', '')}", file=sys.stderr)
            agree: dict[str, Any] = {}
            for qname, variants in queries.items():
                if "error" in entry["latency"].get(qname, {}):
                    continue
                ids, matched, note = all_ids(client, *variants[0], time.perf_counter() + args.budget * 3)
                agree[qname] = {"ids": sorted(set(ids)), "count": len(ids), "matched": matched, "note": note}
            entry["sets"] = agree
        except Exception as exc:
            entry["error"] = f"{type(exc).__name__}: {exc}"
            print(f"# {name}: {entry['error']}", file=sys.stderr)
        finally:
            if proc is not None:
                stop(proc)

    # agreement with ours
    ours = results["servers"].get("ours", {}).get("sets", {})
    for name, entry in results["servers"].items():
        for qname, s in entry.get("sets", {}).items():
            if name == "ours" or qname not in ours:
                continue
            a, b = set(ours[qname]["ids"]), set(s["ids"])
            s["agree"] = None if (s["note"] or ours[qname]["note"]) else a == b  # None: a fetch was cut short
            s["only_ours"] = sorted(a - b)[:5]
            s["only_peer"] = sorted(b - a)[:5]
            s["n_only_ours"], s["n_only_peer"] = len(a - b), len(b - a)
    print_table(results)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


def print_table(results: dict[str, Any]) -> None:
    names = list(results["servers"])
    rows = []
    any_entry = next((e for e in results["servers"].values() if "latency" in e), None)
    if any_entry is None:
        print("no server ran")
        return
    qnames = list(any_entry["latency"]) + ["paging p50"]
    print(f"\n{results['items']:,} items: median ms per query type (POST /search unless noted); "
          f"[=] same id set as ours, [≠ a/b] a only ours, b only the peer, [cut] set fetch cut short by --budget")
    print(f"{'query':20s}" + "".join(f"{n:>22s}" for n in names))
    for q in qnames:
        cells = []
        for n in names:
            e = results["servers"][n]
            if "error" in e and "latency" not in e:
                cells.append("not run")
                continue
            r = e["paging p50"] if q == "paging p50" else e["latency"].get(q, {})
            if "error" in r:
                cells.append("error")
                continue
            cell = f"{r['median_ms']:.2f}"
            if r.get("statuses") not in ([200], None):
                cell += f" {r['statuses']}"
            s = e.get("sets", {}).get(q)
            if s and "agree" in s:
                if s["agree"] is None:
                    cell += " [cut]"
                else:
                    cell += " [=]" if s["agree"] else f" [≠ {s['n_only_ours']}/{s['n_only_peer']}]"
            cells.append(cell)
        rows.append(cells)
        print(f"{q:20s}" + "".join(f"{c:>22s}" for c in cells))
    for n in names:
        e = results["servers"][n]
        if "error" in e:
            print(f"{n}: {e['error']}")
        for q, r in e.get("latency", {}).items():
            if "error" in r:
                print(f"{n} {q}: {r['error'][:200]}")
        if "error" in e.get("paging p50", {}):
            print(f"{n} paging p50: {e['paging p50']['error'][:200]}")
        for q, s in e.get("sets", {}).items():
            if s.get("note"):
                print(f"{n} {q} set: {s['note'][:200]}")


if __name__ == "__main__":
    main()
