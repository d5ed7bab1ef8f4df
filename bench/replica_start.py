"""Time to ready of a replica (`serve --index URL`) against `serve --index FILE`, same snapshot.

    python bench/replica_start.py SNAPSHOT [--rounds 3] [--timeout 600]

SNAPSHOT is a file written by `stac-static-api index ... -o SNAPSHOT`. Its folder is served over
loopback HTTP by a thread of this script (http.server: Last-Modified, and 304 to
If-Modified-Since, as a static web server or a bucket answers). Each round, interleaved, starts
the real server three ways and times it from the spawn to GET / answering 200:

- ``file``: `serve --index SNAPSHOT` (today's fast start);
- ``url, cold``: `serve --index http://127.0.0.1:P/NAME` with an empty cache folder: the
  download, checked as it arrives (header checksum, body length and SHA-256), then the same
  mapping;
- ``url, 304``: the same again with that cache: a conditional request answered 304, no transfer.

It prints each start, then the medians with the server's memory once ready (VmRSS, and RssAnon:
the anonymous memory, which the mapped item bytes are not), and the SHA-256 throughput of this
machine on the snapshot's body (the check's own cost). Only 127.0.0.1 is used; the cache folders
are temporary and removed.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import http.server
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import serverproc  # noqa: E402 (bench/ is not a package)


def memory(pid: int) -> tuple[float, float]:
    """VmRSS and RssAnon of ``pid``, MiB."""
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            name, _, value = line.partition(":")
            fields[name] = value.split()[0] if value.split() else "0"
    return int(fields.get("VmRSS", 0)) / 1024, int(fields.get("RssAnon", 0)) / 1024


def start(index: str, timeout: float, env: dict[str, str]) -> tuple[float, float, float]:
    """Seconds to ready, VmRSS and RssAnon (MiB) of one `serve --index INDEX`."""
    port = serverproc.free_port()
    log = tempfile.NamedTemporaryFile(prefix="replica-start-", suffix=".log", delete=False)
    log.close()
    proc = serverproc.start_server([], port, index=index, env=serverproc.clean_env(env), log=log.name)
    try:
        seconds = serverproc.wait_ready(port, proc, timeout, interval=0.05)
        rss, anon = memory(proc.pid)
    except RuntimeError:
        with open(log.name) as f:
            sys.stderr.write(f.read()[-3000:])
        raise
    finally:
        serverproc.stop(proc)
        os.unlink(log.name)
    return seconds, rss, anon


def body_hash_seconds(path: str) -> tuple[float, int]:
    """Seconds to SHA-256 the whole file (page cache warm after the starts), and its size."""
    digest = hashlib.sha256()
    started = time.perf_counter()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return time.perf_counter() - started, os.path.getsize(path)


STATUSES: list[int] = []  # of the snapshot server's answers, to show what each start asked


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        STATUSES.append(int(code))

    def log_message(self, *args: object) -> None:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("snapshot")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds a start may take")
    args = parser.parse_args()
    snapshot = os.path.abspath(args.snapshot)
    folder, name = os.path.split(snapshot)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{httpd.server_address[1]}/{name}"
    results: dict[str, list[tuple[float, float, float]]] = {"file": [], "url, cold": [], "url, 304": []}
    cache = tempfile.mkdtemp(prefix="replica-cache-")
    try:
        for round_ in range(1, args.rounds + 1):
            shutil.rmtree(cache)
            env = {"STAC_STATIC_INDEX_CACHE_DIR": cache}
            for label, index in (("file", snapshot), ("url, cold", url), ("url, 304", url)):
                del STATUSES[:]
                seconds, rss, anon = start(index, args.timeout, env)
                results[label].append((seconds, rss, anon))
                print(f"round {round_} {label:10s} ready in {seconds:6.2f} s, VmRSS {rss:7.0f} MiB, "
                      f"RssAnon {anon:6.0f} MiB, snapshot requests answered {STATUSES or 'none'}", flush=True)
    finally:
        httpd.shutdown()
        httpd.server_close()
        shutil.rmtree(cache, ignore_errors=True)
    print(f"\nmedians of {args.rounds} rounds, {os.path.getsize(snapshot) / 2**20:,.0f} MiB snapshot:")
    for label, runs in results.items():
        print(f"  {label:10s} ready {statistics.median(r[0] for r in runs):6.2f} s   "
              f"VmRSS {statistics.median(r[1] for r in runs):7.0f} MiB   "
              f"RssAnon {statistics.median(r[2] for r in runs):6.0f} MiB")
    seconds, size = body_hash_seconds(snapshot)
    print(f"  SHA-256 of the whole file: {seconds:.2f} s ({size / seconds / 1e9:.2f} GB/s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
