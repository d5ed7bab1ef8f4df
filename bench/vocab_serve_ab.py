"""Two servers of a 1M generated catalog's snapshots (two trees, each with its own snapshot) at
once: RssAnon after ready and after the queries, and median latency / CPU per request of
string and date-time filters, the servers alternating, literals varied per round (uncached).
Session 14, branch vocab14 (bench/README: compact vocabularies).

    python bench/vocab_serve_ab.py BASE_TREE BASE.idx NEW_TREE NEW.idx [ROUNDS]
"""

import json
import os
import random
import statistics
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from serverproc import free_port  # noqa: E402

PY = sys.executable

TREES = {"base": (sys.argv[1], sys.argv[2], free_port()), "mine": (sys.argv[3], sys.argv[4], free_port())}
R = random.Random(5)


def dt():
    return f"20{R.randint(19, 24)}-{R.randint(1, 12):02d}-{R.randint(1, 28):02d}T{R.randint(0, 23):02d}"


Q = {
    "uncached datetime = ": lambda: "filter=" + urllib.parse.quote(f"datetime='{dt()}:00:00.000Z'") + "&limit=10",
    "uncached datetime <": lambda: (
        "filter=" + urllib.parse.quote(f"datetime<'{dt()}:00:00Z' AND platform='sentinel-2a'") + "&limit=10"
    ),
    "uncached LIKE": lambda: "filter=" + urllib.parse.quote(f"datetime LIKE '{dt()}:1%'") + "&limit=10",
    "uncached CASEI dt": lambda: "filter=" + urllib.parse.quote(f"CASEI(datetime)=CASEI('{dt()}:00:00.000z')") + "&limit=10",
}
Q0 = {
    "datetime = (bisect)": "filter=" + urllib.parse.quote("datetime='2021-03-13T16:51:53.205Z'") + "&limit=10",
    "datetime string < ": "filter="
    + urllib.parse.quote("datetime<'2020-01-05T00:00:00Z' AND platform='sentinel-2a'")
    + "&limit=10",
    "T_AFTER + sortby": "filter="
    + urllib.parse.quote("T_AFTER(datetime,TIMESTAMP('2024-06-01T00:00:00Z'))")
    + "&sortby=-datetime&limit=10",
    "CASEI platform": "filter=" + urllib.parse.quote("CASEI(platform)=CASEI('Landsat-8')") + "&limit=10",
    "LIKE datetime": "filter=" + urllib.parse.quote("datetime LIKE '2021-03-13T16:5%'") + "&limit=10",
}


def rss(pid):
    out = {}
    for line in open(f"/proc/{pid}/status"):
        if line.startswith(("RssAnon", "VmRSS")):
            k, v = line.split(":")
            out[k] = int(v.split()[0]) // 1024
    return out


def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


procs = {}
for name, (tree, idx, port) in TREES.items():
    env = dict(os.environ, PYTHONPATH=tree)
    procs[name] = subprocess.Popen(
        [PY, "-m", "server", "serve", "--index", idx, "--port", str(port), "--log-level", "warning"], cwd=tree, env=env
    )


def get(port, q):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/search?{q}", timeout=120) as r:
        body = r.read()
        assert r.status == 200
        return body


try:
    for name, (_, _, port) in TREES.items():
        t = time.time()
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read()
                break
            except Exception:
                time.sleep(0.2)
        time.sleep(1)
        print(name, "ready", rss(procs[name].pid), "cpu", cpu(procs[name].pid), flush=True)
    answers = {}
    for qn, q in Q0.items():
        for name, (_, _, port) in TREES.items():
            answers[name] = get(port, q)
        a, b = (json.loads(answers[n]) for n in ("base", "mine"))
        same = [f["id"] for f in a["features"]] == [f["id"] for f in b["features"]] and a.get("numberMatched") == b.get(
            "numberMatched"
        )
        print(f"{qn}: matched {a.get('numberMatched')} same={same}", flush=True)
    for name in TREES:
        print(name, "after one of each", rss(procs[name].pid), flush=True)
    runs = int(sys.argv[5]) if len(sys.argv) > 5 else 30
    for qn, q in Q.items():
        times = {n: [] for n in TREES}
        c0 = {n: cpu(procs[n].pid) for n in TREES}
        for _ in range(runs):
            qq = q()
            for name, (_, _, port) in TREES.items():
                t = time.perf_counter()
                get(port, qq)
                times[name].append((time.perf_counter() - t) * 1000)
        print(
            f"{qn:22s} "
            + "  ".join(
                f"{n} median {statistics.median(times[n]):7.2f} ms cpu/req {(cpu(procs[n].pid) - c0[n]) / runs * 1000:6.2f} ms"
                for n in TREES
            ),
            flush=True,
        )
    for name in TREES:
        print(name, "after queries", rss(procs[name].pid), flush=True)
    print("load", open("/proc/loadavg").read().strip())
finally:
    for p in procs.values():
        p.terminate()
    for p in procs.values():
        p.wait(30)
