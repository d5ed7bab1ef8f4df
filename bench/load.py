"""Sustained load (issue 6): a realistic query mix at 32 connections for minutes, with a reload
in the middle; reports requests/s, p50/p99 latency, errors and RSS at start and end.

    python bench/load.py ROOT... [--index FILE] [--duration 300] [--connections 32] [--warmup 20]

Starts ``python -m server serve ROOT... --port P`` on 127.0.0.1 (or from ``--index FILE``),
warms it up, then runs ``wrk`` (``apt-get install -y wrk``) with a Lua script that draws
each request from a mix: small and large bboxes over Europe, bbox+datetime, a CQL2 property
filter, free text, a sort, an item by id, collections and the landing page. Half way through
it sends SIGHUP (``--reload-at`` moves it), so the index is rebuilt and swapped under load. Every non-2xx answer and
socket error counts as an error. RSS is read from /proc for the server's PID after the
warm-up and at the end. Only loopback is used; the server is stopped by its PID.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import tempfile
import threading
import time
import urllib.request

# bench/, this script's folder, is on sys.path
from serverproc import free_port, start_server, stop, wait_ready

LUA = r"""
math.randomseed(42)
local ids = {IDS}
local collection = "{COLLECTION}"
local function bbox(size)
  local x = -10 + math.random() * (30 - size)
  local y = 36 + math.random() * (30 - size)
  return string.format("%.3f,%.3f,%.3f,%.3f", x, y, x + size, y + size)
end
local function year()
  local y = 2015 + math.random(0, 9)
  return string.format("%d-01-01T00:00:00Z/%d-12-31T23:59:59Z", y, y)
end
request = function()
  local r = math.random(100)
  local path
  if r <= 25 then path = "/search?limit=10&bbox=" .. bbox(1)
  elseif r <= 45 then path = "/search?limit=10&bbox=" .. bbox(3) .. "&datetime=" .. year()
  elseif r <= 55 then path = "/search?limit=10&bbox=" .. bbox(10)
  elseif r <= 65 then path = "/search?limit=10&filter=eo%3Acloud_cover%20%3C%20" .. math.random(1, 50)
  elseif r <= 72 then path = "/search?limit=10&q=sentinel"
  elseif r <= 80 then path = "/search?limit=10&sortby=-eo:cloud_cover&bbox=" .. bbox(2)
  elseif r <= 92 then path = "/collections/" .. collection .. "/items/" .. ids[math.random(#ids)]
  elseif r <= 97 then path = "/collections"
  else path = "/" end
  return wrk.format("GET", path)
end
response = function(status, headers, body)
  if status >= 300 then bad = (bad or 0) + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("p50_us %d\np99_us %d\nrequests %d\nsocket_errors %d\n",
    latency:percentile(50), latency:percentile(99), summary.requests,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def serving_pids(pid: int) -> list[int]:
    """The server and its workers; not a reload's build process (``python -m server.runtime.child_build``),
    which exits when its index is handed over."""
    children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    pids = [pid]
    for child in map(int, children):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                if b"server.runtime.child_build" in f.read():
                    continue
        except OSError:
            continue
        pids.append(child)
    return pids


def rss_mib(pid: int, field: str = "VmRSS") -> float:
    """RSS of the server and its workers, in MiB (``field``: VmRSS, RssAnon or RssFile)."""
    total = 0
    for p in serving_pids(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                total += int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))  # type: ignore[union-attr]
        except (OSError, AttributeError):
            pass
    return total / 1024


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("roots", nargs="*")
    parser.add_argument("--index", dest="index_file")
    parser.add_argument("--duration", type=int, default=300)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--reload-at", type=float, default=0.5,
                        help="when to send SIGHUP, as a fraction of the duration")
    parser.add_argument("--settle", type=float, default=2.0,
                        help="seconds between the end of the run and the RSS read (0 in the test suite's smoke run)")
    args = parser.parse_args()

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    server = start_server(args.roots, port, index=args.index_file, workers=args.workers)
    try:
        try:
            wait_ready(port, server, 600, "/_mgmt/ready", interval=0.5, request_timeout=30)
        except RuntimeError as exc:
            raise SystemExit(f"server did not start: {exc}") from None
        collections = get_json(base + "/collections?limit=100")["collections"]
        biggest = max(collections, key=lambda c: get_json(f"{base}/collections/{c['id']}/items?limit=1")["numberMatched"])
        collection = biggest["id"]
        page = get_json(f"{base}/collections/{collection}/items?limit=200")
        ids = [f["id"] for f in page["features"]]
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
            f.write(LUA.replace("{IDS}", "{" + ",".join(json.dumps(i) for i in ids) + "}")
                    .replace("{COLLECTION}", collection))
            script = f.name

        def wrk(seconds: int) -> str:
            out = subprocess.run(
                ["wrk", "-t2", f"-c{args.connections}", f"-d{seconds}s", "--timeout", "10s", "-s", script, base],
                capture_output=True, text=True, timeout=seconds + 60,
            )
            return out.stdout + out.stderr

        wrk(args.warmup)
        rss_start = {f: rss_mib(server.pid, f) for f in ("VmRSS", "RssAnon", "RssFile")}
        reload_at = args.duration * args.reload_at

        def reload() -> None:
            time.sleep(reload_at)
            os.kill(server.pid, signal.SIGHUP)

        threading.Thread(target=reload, daemon=True).start()
        started = time.monotonic()
        output = wrk(args.duration)
        elapsed = time.monotonic() - started
        time.sleep(args.settle)
        rss_end = {f: rss_mib(server.pid, f) for f in ("VmRSS", "RssAnon", "RssFile")}
        ready = get_json(base + "/_mgmt/ready")
    finally:
        stop(server, timeout=30)

    def field(name: str) -> int:
        m = re.search(rf"^{name} (\d+)", output, re.M)
        return int(m.group(1)) if m else -1

    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    requests = field("requests")
    errors = (int(non2xx.group(1)) if non2xx else 0) + max(field("socket_errors"), 0)
    print(output.strip())
    print()
    print(f"duration {elapsed:.0f} s at {args.connections} connections, {args.workers} worker(s); SIGHUP at "
          f"{reload_at:.0f} s: {ready['last_reload']}")
    if not ready["last_reload"]["reloads"]:
        print("THE RELOAD HAD NOT FINISHED AT THE END OF THE RUN")
    print(f"requests/s {requests / elapsed:,.0f}   p50 {field('p50_us') / 1000:.2f} ms   "
          f"p99 {field('p99_us') / 1000:.2f} ms   errors {errors}")
    for name in rss_start:
        print(f"{name} after warm-up {rss_start[name]:.0f} MiB, at the end {rss_end[name]:.0f} MiB "
              f"({(rss_end[name] - rss_start[name]) / max(rss_start[name], 1) * 100:+.1f}%)")


if __name__ == "__main__":
    main()
