"""Issue 5: loading a remote catalog (10,000 items on a local HTTP server) versus pystac's
sequential walk of the same URL, in the same run.

    python bench/remote_ingest.py /tmp/bench-data/files-10000 [--repeat 3]

The catalog folder comes from `python bench/generate.py OUT --items 10000`. It is served on
127.0.0.1 by nginx when installed (`apt-get install nginx-light`: as fast as a real bucket),
else by Python's ThreadingHTTPServer in its own process (which then caps both sides near
1,500 requests/s). No other host is ever contacted. Prints the
median seconds and items/s of each, and the ratio.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
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
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=folder))
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
def serve(folder: Path, latency: float = 0.0) -> Iterator[str]:
    nginx = shutil.which("nginx") or (os.path.exists("/usr/sbin/nginx") and "/usr/sbin/nginx")
    if nginx and not latency:
        with serve_nginx(folder, nginx) as base:
            yield base
        return
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([sys.executable, __file__, "--serve", str(folder), str(port_file), str(latency)])
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("the static server did not start")
                time.sleep(0.05)
            yield f"http://127.0.0.1:{port_file.read_text()}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


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
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--latency-ms", type=float, default=0.0,
                        help="added time to first byte per request, as a real bucket has (Python server)")
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    with serve(args.folder, args.latency_ms / 1000) as base:
        url = f"{base}/catalog.json"
        baseline_seconds, baseline_items = pystac_walk(url)
        runs = [ours(url, args.concurrency) for _ in range(args.repeat)]
    seconds = statistics.median(r[0] for r in runs)
    items = runs[0][1]
    assert items == baseline_items, (items, baseline_items)
    server = "Python http.server" if args.latency_ms or not shutil.which("nginx") else "nginx"
    print(f"remote catalog of {items} items served on {base} ({server}, +{args.latency_ms:g} ms per request)")
    print(f"pystac sequential walk : {baseline_seconds:8.2f} s {baseline_items / baseline_seconds:9.0f} items/s (1 run)")
    print(f"stac-static-api load   : {seconds:8.2f} s {items / seconds:9.0f} items/s (median of {len(runs)})")
    print(f"ratio                  : {baseline_seconds / seconds:8.1f}x")


if __name__ == "__main__":
    main()
