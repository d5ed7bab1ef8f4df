"""Issue 5: loading a remote catalog (10,000 items on a local HTTP server) versus pystac's
sequential walk of the same URL, in the same run.

    python bench/remote_ingest.py /tmp/bench-data/files-10000 [--repeat 3]

The catalog folder comes from `python bench/generate.py OUT --items 10000`. It is served on
127.0.0.1 by nginx when installed (`apt-get install nginx-light`: as fast as a real bucket),
else by Python's ThreadingHTTPServer in its own process (which then caps both sides near
1,500 requests/s). No other host is ever contacted. Prints the
median seconds and items/s of each, and the ratio.

Issue 18 (remote at a bucket's latency): with `--latency-ms`, the catalog is served by
`bench/ttfb_server.py` (one asyncio loop that answers each request after the latency, so
thousands wait at once; the http.server of earlier rows capped near 1,800 requests/s), and
`--tree NAME=PATH` (repeatable) loads it with each checkout's own `server` package in a fresh
process, the checkouts taking turns in each of `--repeat` rounds (medians), so that a shared
machine weighs on each alike. `--latency-ms 10,20,50` makes one row per latency, each with a
fresh server; `--floor` adds, in each round, a load of the same folder from local files by the
last checkout (the loader's own cost, no network). `--https` serves TLS (HTTP/2 when the `h2` package is installed; `--http1` to
refuse it) with a throwaway certificate made by the openssl command.

    python bench/remote_ingest.py /tmp/rf-bench/files-100k --latency-ms 10,20,50 --repeat 3 \
        --tree main=/tmp/base-remote --tree branch=. --no-pystac
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from server.catalog.loader import LoadOptions, load_catalogs  # noqa: E402


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as a real bucket would
    # Without these, headers and body leave in separate small writes and Nagle's algorithm
    # meets delayed ACKs: ~40 ms per keep-alive request, which would measure only the server.
    disable_nagle_algorithm = True
    wbufsize = 1 << 16

    latency = 0.0

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        if self.latency:
            time.sleep(self.latency)  # a bucket's time to first byte
        super().do_GET()

    def log_message(self, *args: object) -> None:
        pass


def serve_forever(folder: str, port_file: str, latency: float) -> None:
    """The static server, run in its own process so it does not share a GIL with the loader."""
    QuietHandler.latency = latency
    class Server(http.server.ThreadingHTTPServer):
        # a listen backlog the loader's transfers fit in: http.server's 5 drops connections
        # past it, each retried by the kernel a second later
        request_queue_size = 1024

    server = Server(("127.0.0.1", 0), functools.partial(QuietHandler, directory=folder))
    server.daemon_threads = True
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


NGINX_CONF = """
daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
    types {{ application/json json; }}
    server {{
        listen 127.0.0.1:{port};
        root {root};
    }}
}}
"""


@contextlib.contextmanager
def serve_nginx(folder: Path, nginx: str) -> Iterator[str]:
    """nginx (Debian's package) on a loopback port: a static server as fast as a real bucket."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        conf = Path(tmp) / "nginx.conf"
        text = NGINX_CONF.format(tmp=tmp, port=port, root=folder.resolve())
        if os.geteuid() == 0:  # else nginx's workers run as nobody and cannot read a private folder
            text = "user root;\n" + text
        conf.write_text(text)
        proc = subprocess.Popen([nginx, "-c", str(conf), "-e", f"{tmp}/error.log"])
        try:
            import httpx

            deadline = time.monotonic() + 10
            while True:
                try:
                    httpx.get(f"http://127.0.0.1:{port}/catalog.json", timeout=1)
                    break
                except httpx.TransportError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise RuntimeError("nginx did not start") from None
                    time.sleep(0.05)
            yield f"http://127.0.0.1:{port}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def serving(command: list[str], port_file: Path, what: str, scheme: str = "http") -> Iterator[str]:
    """``command`` in its own process until the block ends; its base URL once it has written
    its port to ``port_file``."""
    proc = subprocess.Popen(command)
    try:
        deadline = time.monotonic() + 30
        while not port_file.exists() or not port_file.read_text():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.05)
        yield f"{scheme}://127.0.0.1:{port_file.read_text()}"
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@contextlib.contextmanager
def serve_ttfb(folder: Path, latency: float, tls: tuple[str, str] | None = None, http1: bool = False,
               bucket: bool = False) -> Iterator[str]:
    """bench/ttfb_server.py in its own process: `latency` seconds before each answer (``bucket``:
    as an S3-style bucket endpoint, MD5 ETags and ListObjectsV2 at /)."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        command = [sys.executable, str(Path(__file__).with_name("ttfb_server.py")), str(folder),
                   "--latency-ms", str(latency * 1000), "--port-file", str(port_file)]
        if tls:
            command += ["--tls", *tls] + (["--http1"] if http1 else [])
        if bucket:
            command.append("--bucket")
        with serving(command, port_file, "ttfb_server.py", "https" if tls else "http") as base:
            yield base


def self_signed(folder: str) -> tuple[str, str]:
    cert, key = f"{folder}/cert.pem", f"{folder}/key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", cert,
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    return cert, key


# One load by a checkout's own `server` package, in a fresh process; one JSON line out.
LOAD = """
import json, logging, resource, sys, time
sys.path.insert(0, sys.argv[1])
from server.catalog.loader import LoadOptions, load_catalogs
logging.disable(logging.WARNING)
started = time.perf_counter()
index, report = load_catalogs([sys.argv[2]], LoadOptions(progress=False, **json.loads(sys.argv[3])))
seconds = time.perf_counter() - started
own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": seconds, "items": index.size, "skipped": report.skipped,
                  "cpu": own.ru_utime + own.ru_stime, "child_cpu": children.ru_utime + children.ru_stime}))
"""


def load_in(tree: str, url: str, options: dict[str, object], env: dict[str, str]) -> dict[str, float]:
    """One load of `url` by the checkout at `tree`, in a fresh process: seconds, items, CPU."""
    out = subprocess.run([sys.executable, "-c", LOAD, str(Path(tree).resolve()), url, json.dumps(options)],
                         env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.splitlines()[-1])


def compare_trees(args: argparse.Namespace) -> None:
    trees = [tuple(t.split("=", 1)) for t in args.tree]
    latencies = [float(x) for x in str(args.latency_ms).split(",")]
    env = {**os.environ}
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tls = self_signed(tmp) if args.https else None
        if tls:
            env["SSL_CERT_FILE"] = tls[0]
        for latency in latencies:
            runs: dict[str, list[dict[str, float]]] = {name: [] for name, _ in trees}
            with serve_ttfb(args.folder, latency / 1000, tls, args.http1) as base:
                url = f"{base}/catalog.json"
                for round_ in range(args.repeat):
                    order = trees[round_ % len(trees):] + trees[:round_ % len(trees)]
                    for name, tree in order:
                        options: dict[str, object] = {"fetch_concurrency": args.concurrency}
                        if args.max_concurrency and name != args.fixed:
                            options["fetch_max_concurrency"] = args.max_concurrency
                        result = load_in(tree, url, options, env)
                        runs[name].append(result)
                        print(f"  {latency:g} ms, {name}: {result['items'] / result['seconds']:8.0f} items/s "
                              f"({result['seconds']:.2f} s, CPU {result['cpu']:.1f} s + child {result['child_cpu']:.1f} s,"
                              f" load average {os.getloadavg()[0]:.1f})", flush=True)
                    if args.floor:  # the same catalog from local files: what the loader costs without a network
                        name, tree = trees[-1]
                        result = load_in(tree, str(args.folder.resolve() / "catalog.json"), {}, env)
                        runs.setdefault(f"{name}, local files", []).append(result)
                        print(f"  local files, {name}: {result['items'] / result['seconds']:8.0f} items/s "
                              f"({result['seconds']:.2f} s, load average {os.getloadavg()[0]:.1f})", flush=True)
            for name in runs:
                got = runs[name]
                assert all(r["items"] == got[0]["items"] and not r["skipped"] for r in got), got
                seconds = statistics.median(r["seconds"] for r in got)
                rows.append((latency, name, got[0]["items"], seconds, statistics.median(r["cpu"] for r in got),
                             statistics.median(r["child_cpu"] for r in got), len(got)))
    scheme = "https" + ("/1.1" if args.http1 else "") if args.https else "http/1.1"
    print(f"\n| time to first byte | checkout | items | seconds | items/s | CPU s (+ fetch process) | runs ({scheme}) |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for latency, name, items, seconds, cpu, child, count in rows:
        print(f"| {latency:g} ms | {name} | {items:,} | {seconds:.2f} | {items / seconds:,.0f} | {cpu:.1f} (+{child:.1f}) "
              f"| median of {count} |")


@contextlib.contextmanager
def serve(folder: Path, latency: float = 0.0) -> Iterator[str]:
    nginx = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if nginx and not latency:
        with serve_nginx(folder, nginx) as base:
            yield base
        return
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        with serving([sys.executable, __file__, "--serve", str(folder), str(port_file), str(latency)], port_file,
                     "the static server") as base:
            yield base


def ours(url: str, concurrency: int) -> tuple[float, int]:
    started = time.perf_counter()
    index, _ = load_catalogs([url], LoadOptions(fetch_concurrency=concurrency, progress=False))
    return time.perf_counter() - started, index.size


def pystac_walk(url: str) -> tuple[float, int]:
    import pystac

    started = time.perf_counter()
    count = sum(1 for _ in pystac.Catalog.from_file(url).get_items(recursive=True))
    return time.perf_counter() - started, count


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve":
        serve_forever(sys.argv[2], sys.argv[3], float(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32, help="fetch_concurrency (the start, with libcurl)")
    parser.add_argument("--latency-ms", default="0",
                        help="added time to first byte per request, as a real bucket has (ttfb_server.py); "
                             "with --tree, a comma-separated list: a row each")
    parser.add_argument("--tree", action="append", default=[], metavar="NAME=PATH",
                        help="compare checkouts (each a fresh process per run, taking turns)")
    parser.add_argument("--max-concurrency", type=int, default=0,
                        help="fetch_max_concurrency for the checkouts that have it (default: theirs)")
    parser.add_argument("--fixed", default="", help="the --tree NAME that has no fetch_max_concurrency (main)")
    parser.add_argument("--https", action="store_true", help="serve TLS (HTTP/2 if the h2 package is installed)")
    parser.add_argument("--http1", action="store_true", help="with --https: HTTP/1.1 only")
    parser.add_argument("--no-pystac", action="store_true")
    parser.add_argument("--floor", action="store_true",
                        help="with --tree: each round also loads the folder from local files with the last tree")
    args = parser.parse_args()
    if args.tree:
        compare_trees(args)
        return
    args.latency_ms = float(args.latency_ms)
    logging.disable(logging.WARNING)
    server = serve_ttfb(args.folder, args.latency_ms / 1000) if args.latency_ms else serve(args.folder)
    with server as base:
        url = f"{base}/catalog.json"
        baseline_seconds, baseline_items = pystac_walk(url)
        runs = [ours(url, args.concurrency) for _ in range(args.repeat)]
    seconds = statistics.median(r[0] for r in runs)
    items = runs[0][1]
    assert items == baseline_items, (items, baseline_items)
    server = "ttfb_server.py" if args.latency_ms else "nginx" if shutil.which("nginx") else "Python http.server"
    print(f"remote catalog of {items} items served on {base} ({server}, +{args.latency_ms:g} ms per request)")
    print(f"pystac sequential walk : {baseline_seconds:8.2f} s {baseline_items / baseline_seconds:9.0f} items/s (1 run)")
    print(f"stac-static-api load   : {seconds:8.2f} s {items / seconds:9.0f} items/s (median of {len(runs)})")
    print(f"ratio                  : {baseline_seconds / seconds:8.1f}x")


if __name__ == "__main__":
    main()
