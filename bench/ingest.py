"""Issue 4, targets 1 and 2: ingest speed against pystac, and resident memory against JSON size.

    python bench/ingest.py ROOT [--repeat 3] [--pystac-repeat N] [--no-pystac] [--no-rss]
                                [--breakdown] [--profile] [--json FILE]
    python bench/ingest.py --items 10000 [--data-dir /tmp/bench-data] ...   # generate if missing

ROOT is a catalog made by ``bench/generate.py --layout files`` (one JSON file per item), or any
static catalog (then the JSON size is computed from the loaded items, see below).

Target 1 (ingest), items/s from start to ready, median of repetitions, each in a fresh process:
  ours     ``server.catalog.loader.load_catalogs([root])`` until it returns the built Index;
  pystac   ``pystac.Catalog.from_file(root).get_items(recursive=True)`` walked to the end.
Both read the same files in the same run, taking turns; an untimed pass reads every file
once first, so both start with a warm page cache. The ratio is ours / pystac. Each run also
reports items per CPU-second (CPU time of the process and its children), which holds up better than wall-clock time
when other processes share the CPUs; ``--wait-idle`` waits for quiet CPUs before each run.
Note that pystac slows down as collections grow (for each item it looks up its parent's self
link by scanning all of the parent's links), so the ratio grows with items per collection.

Target 2 (memory), in a fresh process that only loads: RSS after ``load_catalogs`` returns
(index alive, ``gc.collect()`` done) minus the RSS of the same process just before, with
every import done; compared with the total size of the items as compact JSON (from the
generator's ``bench-manifest.json``; else the size of the loaded items re-serialized compact).
Peak RSS during the load (VmHWM) is printed too. RSS comes from psutil when installed, else
from /proc/self/status. ``--breakdown`` adds an estimate of what the index holds, attribute
by attribute (numpy/bytes sizes and Python object sizes; GEOS memory is not visible to it).

``--profile`` runs our loader once more under cProfile (main thread) and prints the top
functions. For a sampling profile of all threads use py-spy (see bench/README.md).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA = "/tmp/bench-data"


# --------------------------------------------------------------------------- memory


def rss_bytes() -> int:
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        return _status_kb("VmRSS") * 1024


def peak_rss_bytes() -> int:
    return _status_kb("VmHWM") * 1024


def _status_kb(field: str) -> int:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def deep_size(obj: Any, seen: set[int] | None = None, depth: int = 0) -> int:
    """Rough bytes held by an object graph: numpy buffers, bytes, Python objects."""
    import numpy as np

    seen = set() if seen is None else seen
    if id(obj) in seen or depth > 12:
        return 0
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        size = sys.getsizeof(obj)  # includes the data when the array owns it
        if not obj.flags.owndata and obj.base is not None:
            size += deep_size(obj.base, seen, depth + 1)
        if obj.dtype == object:
            size += sum(deep_size(x, seen, depth + 1) for x in obj.ravel())
        return size
    if isinstance(obj, memoryview):
        try:
            return deep_size(obj.obj, seen, depth + 1)
        except (AttributeError, ValueError):  # a released view
            return 0
    size = sys.getsizeof(obj, 0)
    if isinstance(obj, (str, bytes, bytearray, int, float, bool, type(None))):
        return size
    if isinstance(obj, dict):
        return size + sum(deep_size(k, seen, depth + 1) + deep_size(v, seen, depth + 1) for k, v in obj.items())
    if isinstance(obj, (list, tuple, set, frozenset)):
        return size + sum(deep_size(x, seen, depth + 1) for x in obj)
    if hasattr(obj, "__dict__") and not isinstance(obj, type):
        size += deep_size(vars(obj), seen, depth + 1)
    for name in getattr(type(obj), "__slots__", ()):
        if hasattr(obj, name):
            size += deep_size(getattr(obj, name), seen, depth + 1)
    return size


def breakdown(index: Any) -> list[tuple[str, int]]:
    seen: set[int] = set()
    parts = [(name, deep_size(value, seen)) for name, value in vars(index).items()]
    return sorted(parts, key=lambda p: -p[1])


# --------------------------------------------------------------------------- workers
# Each runs in its own process and prints one JSON line on stdout.


def cpu_time() -> float:
    """CPU seconds of this process and of its children that have exited (the loader's forked
    reader, server/catalog/forked_reader.py), so per-CPU figures count both."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def worker_ours(root: str) -> dict[str, Any]:
    from server.catalog.loader import LoadOptions, load_catalogs

    gc.collect()
    c0, t0 = cpu_time(), time.perf_counter()
    index, report = load_catalogs([root], LoadOptions(progress=False))
    seconds, cpu = time.perf_counter() - t0, cpu_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "items": index.size, "skipped": report.skipped}


def worker_pystac(root: str) -> dict[str, Any]:
    import pystac

    gc.collect()
    c0, t0 = cpu_time(), time.perf_counter()
    catalog = pystac.Catalog.from_file(root)
    n = sum(1 for _ in catalog.get_items(recursive=True))
    seconds, cpu = time.perf_counter() - t0, cpu_time() - c0
    return {"seconds": seconds, "cpu_seconds": cpu, "items": n, "skipped": 0}


def worker_rss(root: str, with_breakdown: bool) -> dict[str, Any]:
    import numpy  # noqa: F401 - everything the load needs, imported before the baseline
    import orjson
    import shapely  # noqa: F401

    from server.catalog.loader import LoadOptions, load_catalogs

    gc.collect()
    baseline = rss_bytes()
    t0 = time.perf_counter()
    index, report = load_catalogs([root], LoadOptions(progress=False))
    seconds = time.perf_counter() - t0
    gc.collect()
    after = rss_bytes()
    out: dict[str, Any] = {
        "items": index.size,
        "seconds": seconds,
        "baseline_rss": baseline,
        "after_rss": after,
        "peak_rss": peak_rss_bytes(),
    }
    stored = getattr(getattr(index, "json", None), "data", None)
    if stored is not None:
        out["stored_json_bytes"] = int(getattr(stored, "nbytes", len(stored)))
    del stored  # no reference may outlive the index (see freed_rss below)
    manifest = os.path.join(os.path.dirname(root) if root.endswith(".json") else root, "bench-manifest.json")
    if not os.path.isfile(manifest):
        # No generator manifest: the loaded items, re-serialized compact, are the reference.
        out["compact_json_bytes_loaded"] = sum(len(orjson.dumps(index.item(i))) for i in range(index.size))
    if with_breakdown:
        out["breakdown"] = breakdown(index)
    # What stays resident once the index is gone: heap the allocator could not hand back
    # (and modules imported during the load). Large means fragmentation, not index data.
    del index, report
    gc.collect()
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    out["freed_rss"] = rss_bytes()
    return out


def worker_profile(root: str) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    from server.catalog.loader import LoadOptions, load_catalogs

    prof = cProfile.Profile()
    t0 = time.perf_counter()
    prof.enable()
    index, _ = load_catalogs([root], LoadOptions(progress=False))
    prof.disable()
    seconds = time.perf_counter() - t0
    text = io.StringIO()
    stats = pstats.Stats(prof, stream=text)
    stats.sort_stats("tottime").print_stats(25)
    stats.sort_stats("cumulative").print_stats(25)
    return {"seconds": seconds, "items": index.size, "report": text.getvalue()}


def warm(root_dir: str) -> dict[str, Any]:
    """Read every .json file under the catalog once (page cache), timed as a floor."""
    t0 = time.perf_counter()
    files = nbytes = 0
    for dirpath, _, names in os.walk(root_dir):
        for name in names:
            if name.endswith(".json") or name.endswith(".ndjson"):
                with open(os.path.join(dirpath, name), "rb") as f:
                    nbytes += len(f.read())
                files += 1
    return {"seconds": time.perf_counter() - t0, "files": files, "bytes": nbytes}


def cpu_busy(interval: float = 1.0) -> float:
    """Share of all CPUs busy over ``interval`` seconds (from /proc/stat; 0.0 where absent)."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
        idle = values[3] + (values[4] if len(values) > 4 else 0)
        return sum(values), idle

    try:
        total0, idle0 = sample()
        time.sleep(interval)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return 0.0
    return 1.0 - (idle1 - idle0) / max(total1 - total0, 1)


def wait_idle(limit: float, threshold: float = 0.15) -> float:
    """Wait (up to ``limit`` seconds) until other processes leave the CPUs mostly idle, so a
    timed run is not sharing them; returns the last busy share seen."""
    deadline = time.monotonic() + limit
    busy = cpu_busy()
    while busy > threshold and time.monotonic() < deadline:
        busy = cpu_busy(2.0)
    return busy


def run_worker(mode: str, root: str, *extra: str) -> dict[str, Any]:
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", mode, root, *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- driver


def mib(n: float) -> str:
    return f"{n / 2**20:,.1f} MiB"


def server_commit() -> str:
    """The commit of the code measured, with '+dirty' when server/ has local changes."""
    import server

    repo = os.path.dirname(os.path.dirname(os.path.abspath(server.__file__)))
    try:
        head = subprocess.run(["git", "-C", repo, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--", "server"], capture_output=True,
                               text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("+dirty" if dirty else "")


def short_count(n: int) -> str:
    """10000 -> 10k, 1000000 -> 1m: the folder names used under the data dir."""
    for div, suffix in ((1_000_000, "m"), (1000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def resolve_root(args: argparse.Namespace) -> str:
    if args.root:
        root = os.path.abspath(args.root)
    elif args.items is not None:
        root = os.path.join(args.data_dir, f"files-{short_count(args.items)}")
        if not os.path.isfile(os.path.join(root, "catalog.json")):
            print(f"generating {args.items} items into {root} ...", flush=True)
            subprocess.run([sys.executable, os.path.join(HERE, "generate.py"), root, "--items", str(args.items),
                            "--force"], check=True)
    else:
        raise SystemExit("give ROOT or --items N")
    if os.path.isdir(root):
        root = os.path.join(root, "catalog.json")
    if not os.path.isfile(root):
        raise SystemExit(f"no catalog at {root}")
    return root


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root", nargs="?", help="catalog.json or the folder holding it")
    ap.add_argument("--items", type=int, help="use (or generate) DATA_DIR/files-N (10000 -> files-10k, 1000000 -> files-1m)")
    ap.add_argument("--data-dir", default=DEFAULT_DATA)
    ap.add_argument("--repeat", type=int, default=3, help="runs of our loader (median)")
    ap.add_argument("--pystac-repeat", type=int, default=None,
                    help="runs of the pystac walk (default: as --repeat up to 20,000 items, else 1)")
    ap.add_argument("--no-pystac", action="store_true")
    ap.add_argument("--no-rss", action="store_true")
    ap.add_argument("--no-warm", action="store_true")
    ap.add_argument("--wait-idle", type=float, default=20.0, metavar="S",
                    help="before each timed run, wait up to S seconds for the CPUs to be idle "
                         "(other processes busy <= 15%%); the busy share is printed (default 20)")
    ap.add_argument("--breakdown", action="store_true", help="estimate what the index holds")
    ap.add_argument("--profile", action="store_true", help="cProfile one load of ours")
    ap.add_argument("--json", metavar="FILE", help="write the results as JSON")
    ap.add_argument("--worker", choices=["ours", "pystac", "rss", "rss+breakdown", "profile"],
                    help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        root = args.root
        if args.worker == "ours":
            result = worker_ours(root)
        elif args.worker == "pystac":
            result = worker_pystac(root)
        elif args.worker == "profile":
            result = worker_profile(root)
        else:
            result = worker_rss(root, with_breakdown=args.worker == "rss+breakdown")
        print(json.dumps(result))
        return 0

    root = resolve_root(args)
    root_dir = os.path.dirname(root)
    manifest_path = os.path.join(root_dir, "bench-manifest.json")
    manifest = json.load(open(manifest_path)) if os.path.isfile(manifest_path) else {}
    results: dict[str, Any] = {"root": root, "manifest": manifest, "python": sys.version.split()[0],
                               "cpus": os.cpu_count(), "server_commit": server_commit()}
    print(f"server code: {results['server_commit']}")
    print(f"catalog: {root}" + (f" ({manifest['items']} items, {manifest['collections']} collections, "
                                f"{mib(manifest['compact_json_bytes'])} compact JSON)" if manifest else ""))

    if not args.no_warm:
        w = warm(root_dir)
        results["warm"] = w
        print(f"warm-up read of {w['files']} files ({mib(w['bytes'])}): {w['seconds']:.1f} s, "
              f"{w['files'] / w['seconds']:,.0f} files/s (plain open+read, one thread)")

    n_hint = manifest.get("items", 0)
    pystac_repeat = 0 if args.no_pystac else (
        args.pystac_repeat if args.pystac_repeat is not None else (args.repeat if n_hint <= 20_000 else 1))
    ours: list[dict[str, Any]] = []
    theirs: list[dict[str, Any]] = []
    for i in range(max(args.repeat, pystac_repeat)):
        for name, runs, wanted in (("ours", ours, args.repeat), ("pystac", theirs, pystac_repeat)):
            if i >= wanted:
                continue
            busy = wait_idle(args.wait_idle) if args.wait_idle > 0 else 0.0
            r = run_worker(name, root)
            r["busy_before"] = busy
            runs.append(r)
            print(f"  {name:<6} run {i + 1}: {r['items']} items in {r['seconds']:.2f} s = "
                  f"{r['items'] / r['seconds']:,.0f} items/s; {r['items'] / r['cpu_seconds']:,.0f} items per "
                  f"CPU-s; skipped {r['skipped']}; CPUs {busy:.0%} busy before", flush=True)

    def median_rate(runs: list[dict[str, Any]]) -> float:
        return statistics.median(r["items"] / r["seconds"] for r in runs)

    for name, runs in (("ours", ours), ("pystac", theirs)):
        if not runs:
            continue
        res = results[name] = {
            "runs": runs,
            "median_items_per_s": median_rate(runs),
            "median_seconds": statistics.median(r["seconds"] for r in runs),
            "median_items_per_cpu_s": statistics.median(r["items"] / r["cpu_seconds"] for r in runs),
        }
        print(f"ingest, {name + ':':<7} median {res['median_items_per_s']:,.0f} items/s ({res['median_seconds']:.2f} s, "
              f"{len(runs)} runs); {res['median_items_per_cpu_s']:,.0f} items per CPU-s")
    if ours and theirs:
        if ours[0]["items"] != theirs[0]["items"]:
            print(f"  note: ours indexed {ours[0]['items']} items, pystac walked {theirs[0]['items']}")
        results["ingest_ratio"] = results["ours"]["median_items_per_s"] / results["pystac"]["median_items_per_s"]
        results["ingest_ratio_cpu"] = (results["ours"]["median_items_per_cpu_s"]
                                       / results["pystac"]["median_items_per_cpu_s"])
        print(f"ingest ratio ours/pystac: {results['ingest_ratio']:.1f}x wall-clock  (target >= 10x); "
              f"{results['ingest_ratio_cpu']:.1f}x per CPU-second")

    if not args.no_rss:
        m = run_worker("rss+breakdown" if args.breakdown else "rss", root)
        compact = manifest.get("compact_json_bytes") or m.get("compact_json_bytes_loaded")
        delta = m["after_rss"] - m["baseline_rss"]
        m["compact_json_bytes"] = compact
        m["rss_delta"] = delta
        m["ratio"] = delta / compact if compact else None
        results["memory"] = m
        print(f"memory: RSS {mib(m['baseline_rss'])} after imports, {mib(m['after_rss'])} after load "
              f"(peak {mib(m['peak_rss'])}); index = {mib(delta)}")
        print(f"  items as compact JSON: {mib(compact)} ({compact} bytes); stored JSON buffer "
              f"{mib(m.get('stored_json_bytes', 0))}")
        print(f"  RSS / compact JSON: {m['ratio']:.3f}x  (target <= 1.5x); peak-over-baseline / compact JSON: "
              f"{(m['peak_rss'] - m['baseline_rss']) / compact:.2f}x")
        print(f"  after dropping the index (gc + malloc_trim): {mib(m['freed_rss'])}, i.e. "
              f"{mib(m['freed_rss'] - m['baseline_rss'])} over the baseline is not the index itself")
        if m.get("breakdown"):
            print("  what the index holds (allocated sizes; a bytearray's spare capacity is not resident):")
        for name, size in m.get("breakdown", [])[:15]:
            print(f"    {name:<24} {mib(size):>12}  ({size / max(m['items'], 1):,.0f} B/item)")

    if args.profile:
        p = run_worker("profile", root)
        results["profile_seconds"] = p["seconds"]
        print(f"cProfile of one load ({p['seconds']:.2f} s with profiling on):")
        print(p["report"])

    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
