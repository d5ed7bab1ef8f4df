"""A generated catalog end to end: served, counted, indexed (issue 14: the 1M-item catalog whose
big collections were dropped while the server said it was ready).

    python bench/generate.py /tmp/big-1m --sizes 249950,249950,249950,249950,25,25,25,25,25,25,25,25
    python bench/catalog_e2e.py /tmp/big-1m [--env STAC_STATIC_MAX_STRUCTURE_BYTES=20000000] [--port P]

Starts `stac-static-api serve DIR/catalog.json` (with the given settings, else the defaults)
and waits for /_mgmt/ready to answer; then reads GET /search numberMatched, each collection's
/collections/{id}/items numberMatched and /_mgmt/ready's status, and compares them with what
bench-manifest.json says was generated; notes the server's load time and peak RSS (VmHWM of its
process). Then runs `stac-static-api index DIR/catalog.json -o FILE` with the same settings and
reports its exit status and time. Exits 1 when what is served is not what was generated or the
exit status does not follow the readiness (0 when ready, 1 when degraded).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

from serverproc import REPO, clean_env, free_port, start_server, stop  # noqa: E402

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def get(port: int, path: str) -> tuple[int, Any]:
    try:
        with _OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=120) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def peak_rss_mib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) // 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", help="a catalog from bench/generate.py (catalog.json, bench-manifest.json)")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE", help="a setting (repeatable)")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--timeout", type=float, default=1800)
    args = parser.parse_args()
    manifest = json.load(open(os.path.join(args.folder, "bench-manifest.json")))
    root = os.path.join(args.folder, "catalog.json")
    env = clean_env(dict(item.split("=", 1) for item in args.env))
    port = args.port or free_port()
    ok = True

    started = time.perf_counter()
    proc = start_server([root], port, env=env, log=os.path.join(tempfile.gettempdir(), f"catalog_e2e-{port}.log"))
    try:
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"server exited with {proc.returncode}")
            try:
                status, ready = get(port, "/_mgmt/ready")
                if status == 200:
                    break
            except OSError:
                pass
            if time.perf_counter() - started > args.timeout:
                raise SystemExit("not ready in time")
            time.sleep(1)
        load = ready["load"]
        print(f"serve: ready after {time.perf_counter() - started:.1f} s; /_mgmt/ready status {ready['status']!r}; "
              f"server peak RSS {peak_rss_mib(proc.pid):,} MiB; load report: structure_skipped "
              f"{load['structure_skipped']}, items_missing_at_least {load['items_missing_at_least']}, skipped "
              f"{load['skipped']}")
        for skip in load["structure_skips"][:5]:
            print(f"  not read: {skip['location']}: {skip['reason']} (item links: {skip['items']})")
        _, page = get(port, "/search?limit=1")
        matched = page["numberMatched"]
        print(f"GET /search numberMatched {matched:,} (generated: {manifest['items']:,})")
        ids: list[str] = []
        path: str | None = "/collections?limit=100"
        while path:  # every page of them
            _, collections = get(port, path)
            ids += [c["id"] for c in collections["collections"]]
            after = next((link["href"] for link in collections["links"] if link["rel"] == "next"), None)
            path = after and after[after.index("/collections"):]
        ids.sort()
        per = {cid: get(port, f"/collections/{cid}/items?limit=1")[1]["numberMatched"] for cid in ids}
        print(f"collections served: {len(ids)} (generated: {manifest['collections']}); items per collection: "
              + ", ".join(f"{cid} {n:,}" for cid, n in per.items()))
        complete = matched == manifest["items"] and len(ids) == manifest["collections"]
        if sizes := manifest.get("sizes"):
            complete = complete and sorted(per.values()) == sorted(sizes)
        degraded = ready["status"] == "degraded"
        print(f"all generated items served: {complete}; degraded: {degraded}")
        ok = complete != degraded  # complete and ready, or incomplete and saying so
    finally:
        stop(proc)

    with tempfile.TemporaryDirectory() as folder:
        t = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "server", "index", root, "-o", os.path.join(folder, "snap.idx")],
                              cwd=REPO, env=env, capture_output=True, text=True)
        last = (done.stderr.strip().splitlines() or [""])[-1]
        print(f"index: exit {done.returncode} after {time.perf_counter() - t:.1f} s: {last[:300]}")
        ok = ok and done.returncode == (1 if degraded else 0)
    print("OK" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
