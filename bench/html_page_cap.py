"""GET /search?limit=10000 as a page (Accept: text/html) and as JSON, 5 times each, against the
server of TREE (a checkout) serving the ndjson set DATA (collection.json + items.ndjson per
folder, bench/generate.py): items shown, bytes, wall per request (median). The response cache is
off, so each request renders.

    python bench/html_page_cap.py TREE PORT [DATA]      # DATA: /tmp/bench-data/ndjson-100k
"""

import glob
import os
import statistics
import subprocess
import sys
import time

import httpx

tree, port = sys.argv[1], int(sys.argv[2])
data = sys.argv[3] if len(sys.argv) > 3 else "/tmp/bench-data/ndjson-100k"
env = {**os.environ, "PYTHONPATH": tree, "STAC_STATIC_HTML_TILES": "", "STAC_STATIC_RESPONSE_CACHE_BYTES": "0",
       "STAC_STATIC_MAX_DOCUMENT_BYTES": "1000000000"}
roots = [*sorted(glob.glob(f"{data}/*/collection.json")), *sorted(glob.glob(f"{data}/*/items.ndjson"))]
proc = subprocess.Popen([sys.executable, "-m", "server", "serve", *roots, "--host", "127.0.0.1", "--port", str(port),
                         "--log-level", "warning"], cwd=tree, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 600
    while True:
        try:
            if httpx.get(base + "/_mgmt/ready", timeout=5).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if time.time() > deadline:
            raise SystemExit("the server was not ready in 600 s")
        time.sleep(0.5)
    for name, headers in (("html", {"Accept": "text/html"}), ("json", {})):
        walls, size, returned = [], 0, 0
        for _ in range(5):
            started = time.perf_counter()
            r = httpx.get(base + "/search", headers=headers, params={"limit": 10000}, timeout=120)
            walls.append(time.perf_counter() - started)
            r.raise_for_status()
            size = len(r.content)
            returned = r.text.count("<tr>") - 1 if name == "html" else r.json()["numberReturned"]
        print(f"{name}: {returned} items, {size:,} bytes, median {statistics.median(walls) * 1000:.0f} ms "
              f"({', '.join(f'{w * 1000:.0f}' for w in walls)})")
finally:
    proc.terminate()
    proc.wait(10)
