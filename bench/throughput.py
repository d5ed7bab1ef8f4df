"""Requests/s of GET /search bbox+datetime under wrk, ours vs a bare Starlette app (issue 4, target 4).

    python bench/throughput.py ROOT... [--index FILE] [--duration 15] [--connections 16]
                               [--configs bare,ours,ours-matches,ours-cached,bare-w2,ours-w2]

Starts the real server (``python -m server serve ROOT... --port P --log-level warning``, with
``--index FILE`` when given, ``--workers 2`` for the ``-w2`` configurations) and a bare
Starlette app under uvicorn that answers each URL of the mix with the very bytes our server
returned for it (fetched once before the runs). Each is driven by ``wrk`` on loopback
(``apt-get install -y wrk``) with a Lua script cycling through a handful of bbox+datetime
URLs (the bbox+datetime variants of bench/latency.py). Configurations:

* ``bare``, ``bare-w2``: the bare app, 1 or 2 uvicorn workers: the ceiling of this stack
  (bare-w2 forks two uvicorn servers on one socket made with IPPROTO_TCP, see bare_app.py's
  main: with ``uvicorn --workers 2`` Nagle stays on and every response stalls ~40 ms);
* ``ours``, ``ours-w2``: our server with its response cache off
  (``STAC_STATIC_RESPONSE_CACHE_BYTES=0``) and its match cache off
  (``STAC_STATIC_MATCH_CACHE_BYTES=0``), so every request searches and renders;
* ``ours-matches``: our server with its response cache off and its match cache on: every
  request parses, pages and renders, but its matches come from the cache — what this stack
  gives when the search itself costs nothing (the ceiling of any faster search kernel);
* ``ours-cached``, ``ours-cached-w2``: our server with its defaults (a repeat of a URL is
  served from the response cache, which is what a handful of URLs measures).

Every server is started by this script and stopped by its PID (process group) at the end,
whatever happens. Prints requests/s per configuration and the ratios ours/bare.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from latency import query_mix, roots_for, url_of  # noqa: E402
from serverproc import clean_env, free_port, spawn, start_server, stop, wait_ready  # noqa: E402

PYTHON = sys.executable

BARE_APP = r'''
import json, os
from starlette.applications import Starlette
from starlette.responses import Response
from starlette.routing import Route

with open(os.environ["BARE_RESPONSES"]) as f:
    RESPONSES = {k: v.encode() for k, v in json.load(f).items()}

async def endpoint(request):
    key = request.url.path + ("?" + request.url.query if request.url.query else "")
    return Response(RESPONSES[key], media_type="application/geo+json")

app = Starlette(routes=[Route("/{path:path}", endpoint)])

if __name__ == "__main__":
    # python bare_app.py PORT WORKERS: WORKERS forked uvicorn servers on one listening socket.
    # The socket is made with IPPROTO_TCP so that asyncio sets TCP_NODELAY on accepted
    # connections: `uvicorn --workers N` (and a socket.socket(AF_INET, SOCK_STREAM) without a
    # proto) leaves Nagle on, and every response then waits ~40 ms for a delayed ACK.
    import socket, sys, uvicorn
    port, workers = int(sys.argv[1]), int(sys.argv[2])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.set_inheritable(True)
    children = []
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:
            uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False)).run(sockets=[sock])
            os._exit(0)
        children.append(pid)
    import signal
    signal.signal(signal.SIGTERM, lambda *_: [os.kill(c, signal.SIGTERM) for c in children])
    for c in children:
        try:
            os.waitpid(c, 0)
        except ChildProcessError:
            pass
'''

LUA = r'''
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
'''


def start_ours(args: argparse.Namespace, port: int, workers: int, caches: str) -> subprocess.Popen:
    """``caches``: "all" (the defaults), "matches" (no response cache) or "none" (every
    request searches)."""
    extra = {"STAC_STATIC_MAX_DOCUMENT_BYTES": str(4 << 30)}
    if caches != "all":
        extra["STAC_STATIC_RESPONSE_CACHE_BYTES"] = "0"
    if caches == "none":
        extra["STAC_STATIC_MATCH_CACHE_BYTES"] = "0"
    return start_server(args.roots, port, index=args.index, workers=workers if workers > 1 else None,
                        env=clean_env(extra), log=os.path.join(args.tmp, f"ours-{port}.log"))


def start_bare(args: argparse.Namespace, port: int, workers: int, responses: str) -> subprocess.Popen:
    if workers > 1 and not args.uvicorn_workers:
        cmd = [PYTHON, "bare_app.py", str(port), str(workers)]
    else:
        cmd = [PYTHON, "-m", "uvicorn", "bare_app:app", "--host", "127.0.0.1", "--port", str(port),
               "--log-level", "warning", "--no-access-log"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
    env = clean_env({"BARE_RESPONSES": responses, "PYTHONPATH": args.tmp})
    return spawn(cmd, cwd=args.tmp, env=env, log=os.path.join(args.tmp, f"bare-{port}.log"))


def run_wrk(args: argparse.Namespace, port: int, script: str) -> dict[str, Any]:
    cmd = ["wrk", "-t", str(args.threads), "-c", str(args.connections), "-d", f"{args.duration}s",
           "--latency", "-s", script, f"http://127.0.0.1:{port}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.duration + 60).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    p50 = re.search(r"\s50%\s+([\d.]+\w+)", out)
    return {"rps": rps, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "socket_errors": errors.group(0) if errors else "", "p50": p50.group(1) if p50 else "",
            "cmd": " ".join(cmd)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", help="generated catalog folder (files or ndjson layout)")
    parser.add_argument("--index", help="serve from this index snapshot (see `python -m server index`)")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--configs", default="bare,ours,ours-cached,bare-w2,ours-w2")
    parser.add_argument("--ready-timeout", type=float, default=900)
    parser.add_argument("--uvicorn-workers", action="store_true",
                        help="bare-w2 via `uvicorn --workers 2` (Nagle left on: ~40 ms per response) "
                             "instead of forked servers on an IPPROTO_TCP socket")
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()
    args.roots = roots_for(args.root)
    args.tmp = tempfile.mkdtemp(prefix="bench-throughput-")

    paths = [url_of(p, q) for p, q in query_mix(args.root)["bbox+datetime"]]
    script = os.path.join(args.tmp, "mix.lua")
    with open(script, "w") as f:
        f.write(LUA % ", ".join(json.dumps(p) for p in paths))
    with open(os.path.join(args.tmp, "bare_app.py"), "w") as f:
        f.write(BARE_APP)

    # a SIGTERM (e.g. from `timeout`) unwinds through the finally below, which stops the servers
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    results: dict[str, Any] = {}
    procs: list[subprocess.Popen] = []
    responses_file = os.path.join(args.tmp, "responses.json")
    try:
        # our bytes first: one server started to fetch them (the links name its host:port; the
        # bare app returns them as they are, so both send the same number of bytes)
        for config in ["ours-fetch"] + args.configs.split(","):
            port = free_port()
            workers = 2 if config.endswith("-w2") else 1
            if config.startswith("bare"):
                proc = start_bare(args, port, workers, responses_file)
            else:
                caches = "all" if config.startswith("ours-cached") or config == "ours-fetch" else (
                    "matches" if config.startswith("ours-matches") else "none")
                proc = start_ours(args, port, workers, caches)
            procs.append(proc)
            ready = wait_ready(port, proc, args.ready_timeout, "/" if config == "ours-fetch" else paths[0])
            if config == "ours-fetch":
                bodies = {}
                for p in paths:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}{p}") as r:
                        bodies[p] = r.read().decode()
                with open(responses_file, "w") as f:
                    json.dump(bodies, f)
                print(f"# fetched {len(bodies)} responses, {sum(map(len, bodies.values())) // len(bodies)} B each; "
                      f"ready in {ready:.1f} s", file=sys.stderr)
            else:
                # a short warm-up (2 s; no longer than the run: the test suite's smoke run is 1 s), then the timed run
                subprocess.run(["wrk", "-t", "1", "-c", "2", "-d", f"{min(2, args.duration)}s", "-s", script,
                                f"http://127.0.0.1:{port}"], capture_output=True, timeout=30)
                results[config] = {**run_wrk(args, port, script), "ready_s": ready, "workers": workers}
                r = results[config]
                print(f"  {config:16s} {r['rps']:9.1f} req/s  p50 {r['p50']:>8s}  non-2xx {r['non_2xx']}",
                      file=sys.stderr)
            stop(proc)
            procs.remove(proc)
    finally:
        for proc in procs:
            stop(proc)

    print(f"\nGET /search bbox+datetime, {len(paths)} URLs, wrk -t{args.threads} -c{args.connections} "
          f"-d{args.duration}s, root {args.root}{' index ' + args.index if args.index else ''}")
    print(f"{'config':16s} {'req/s':>9s} {'p50':>9s} {'non-2xx':>8s}")
    for name, r in results.items():
        print(f"{name:16s} {r['rps']:9.1f} {r['p50']:>9s} {r['non_2xx']:8d}")
    for ours, bare in (("ours", "bare"), ("ours-matches", "bare"), ("ours-cached", "bare"), ("ours-w2", "bare-w2"),
                       ("ours-cached-w2", "bare-w2"), ("ours-w2", "ours")):
        if ours in results and bare in results:
            print(f"ratio {ours}/{bare}: {results[ours]['rps'] / results[bare]['rps']:.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"paths": paths, "results": results}, f, indent=1)


if __name__ == "__main__":
    main()
