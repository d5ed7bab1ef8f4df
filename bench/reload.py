"""Issue 18, target 3: a reload after a few item files of a large catalog changed.

    python bench/reload.py ROOT_FOLDER [--runs 3] [--changed 100 --added 10 --deleted 10]
                           [--http [--listing] [--latency-ms MS]]
                           [--baseline /work/main [--baseline-python PY]] [--phases]

ROOT_FOLDER comes from `python bench/generate.py OUT --items N --layout files` (it is changed in
place: generate it into /tmp and remove it after). Both servers are the real CLI, `serve ROOT
--index SNAPSHOT` (each from a snapshot its own code wrote with `index`), reloading in a child
process (the default); each run changes --changed item files (a property), adds --added (files
and links in their collection.json) and deletes --deleted (files and links), then sends SIGHUP to
one server and the other (in turn, first one first) and reads the reload's seconds from
/_mgmt/ready (`last_reload.seconds`: from the signal to the new index swapped in). Prints each
run and the medians. --http: the roots are URLs of the folder served on 127.0.0.1 by nginx when
installed (bench/remote_ingest.py), else Python's http.server; with --listing or --latency-ms, by
bench/ttfb_server.py (--latency-ms before each answer; --listing: as an S3-style bucket endpoint,
MD5 ETags and ListObjectsV2, named to this tree's server in STAC_STATIC_BUCKET_LISTINGS, while the
baseline reloads with its conditional requests as before; each run's changes are then PUT and
DELETE requests to it, as a bucket's client makes them). --phases: also where the time
goes in this tree's reload, measured in this process (read the previous snapshot, the walk,
checking the files, taking the rows, the merge, writing the snapshot).

A 1M bucket's `index` takes 6-17 min, so it is made once and reused (session 13):

    python bench/reload.py ROOT --http --listing --phases-only --snapshot S --keep-snapshot \
        --bucket-port 18765 --md5-cache M        # S written by `index` through the bucket when not there
    python bench/ttfb_server.py ROOT --bucket --latency-ms 0 --port 18765 --md5-cache M &
    python bench/reload.py ROOT --http --listing --phases-only --snapshot S --bucket-url http://127.0.0.1:18765 \
        --changed 0 --added 0 --deleted 0 --code CHECKOUT   # each checkout in turn, one bucket

--bucket-port: the bucket on a fixed port (the snapshot's locations are its URLs); --md5-cache:
the bucket's MD5s kept between its runs (no 5.9 GB read and hashed again at its first listing);
--bucket-url: a bucket already serving ROOT (its changes PUT to it); --code: the `server` of
another checkout measured by --phases-only (an A/B from one snapshot and one bucket).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import serverproc  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TOKEN = "bench-reload"
UNITLESS = ("items reused", "snapshot bytes written (MB)", "refers to the previous snapshot")
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def ready(port: int) -> dict[str, Any]:
    with _OPENER.open(f"http://127.0.0.1:{port}/_mgmt/ready", timeout=30) as r:
        return json.loads(r.read())


class Catalog:
    """The generated folder, changed in place: N item files edited, added, deleted per run."""

    def __init__(self, folder: Path, seed: int = 18) -> None:
        self.folder = folder
        self.bucket: str | None = None  # an S3-style endpoint serving the folder: changes go through it
        self.rnd = random.Random(seed)
        self.collections = sorted(p.parent for p in folder.glob("*/collection.json"))
        self.added = 0
        # added items named anew by each run of this script: named bench-added-N at every run, they
        # were written over the last run's and linked again, so the 1M bench bucket's collections
        # held repeated links (session 15: the loader's per-link path for 2 of its 4 collections)
        self.run = f"{os.getpid()}-{int(time.time()) % 100_000}"

    def items_of(self, collection: Path) -> list[str]:
        doc = json.loads((collection / "collection.json").read_bytes())
        return [link["href"] for link in doc["links"] if link["rel"] == "item"]

    def change(self, changed: int, added: int, deleted: int) -> None:
        links = {c: self.items_of(c) for c in self.collections}
        every = [(c, href) for c, hrefs in links.items() for href in hrefs]
        picked = self.rnd.sample(every, changed + deleted)
        for collection, href in picked[:changed]:
            path = collection / href
            doc = json.loads(path.read_bytes())
            doc["properties"]["eo:cloud_cover"] = round(self.rnd.random() * 100, 2)
            self.write(path, json.dumps(doc))
        gone = {(c, h) for c, h in picked[changed:]}
        for collection, href in gone:
            self.unlink(collection / href)
        template_collection, template_href = picked[0]
        template = json.loads((template_collection / template_href).read_bytes())
        new: dict[Path, list[str]] = {}
        for _ in range(added):
            self.added += 1
            collection = self.rnd.choice(self.collections)
            item_id = f"bench-added-{self.run}-{self.added}"
            template.update(id=item_id, collection=json.loads((collection / "collection.json").read_bytes())["id"])
            self.write(collection / item_id / f"{item_id}.json", json.dumps(template))
            new.setdefault(collection, []).append(f"./{item_id}/{item_id}.json")
        for collection in self.collections:
            dropped = {h for c, h in gone if c == collection}
            if not dropped and collection not in new:
                continue
            path = collection / "collection.json"
            doc = json.loads(path.read_bytes())
            doc["links"] = [link for link in doc["links"] if not (link["rel"] == "item" and link["href"] in dropped)]
            doc["links"] += [{"rel": "item", "href": h, "type": "application/geo+json"} for h in new.get(collection, [])]
            self.write(path, json.dumps(doc))

    def _url(self, path: Path) -> str:
        return f"{self.bucket}/{urllib.parse.quote(path.relative_to(self.folder).as_posix())}"

    def write(self, path: Path, text: str) -> None:
        """The file written anew: a PUT to the bucket endpoint (as a client uploads), or locally."""
        if self.bucket is None:
            path.parent.mkdir(exist_ok=True)
            replace(path, text)
            return
        request = urllib.request.Request(self._url(path), data=text.encode(), method="PUT")
        with _OPENER.open(request, timeout=60) as r:
            r.read()

    def unlink(self, path: Path) -> None:
        if self.bucket is None:
            path.unlink()
            return
        with _OPENER.open(urllib.request.Request(self._url(path), method="DELETE"), timeout=60) as r:
            r.read()


def replace(path: Path, text: str) -> None:
    """Write ``path`` anew (a new file renamed over it): a tree of hard links to another
    (`cp -al`) stays safe to change, its source untouched."""
    tmp = path.with_name(path.name + ".bench-tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


@contextlib.contextmanager
def server(name: str, cwd: Path, python: str, roots: list[str], snapshot: str, workdir: Path,
           extra_env: dict[str, str] | None = None) -> Iterator[tuple[int, int]]:
    port = serverproc.free_port()
    env = serverproc.clean_env({"STAC_STATIC_ADMIN_TOKEN": TOKEN, **(extra_env or {})})
    proc = serverproc.spawn([python, "-m", "server", "serve", *roots, "--index", snapshot, "--port", str(port),
                             "--log-level", "warning"], cwd=str(cwd), env=env, log=str(workdir / f"{name}.log"))
    try:
        serverproc.wait_ready(port, proc, timeout=600, path="/_mgmt/ready")
        yield port, proc.pid
    finally:
        serverproc.stop(proc)


def reload_seconds(port: int, pid_of: dict[int, int]) -> float:
    before = ready(port)["last_reload"]["reloads"]
    os.kill(pid_of[port], signal.SIGHUP)
    while True:
        time.sleep(0.2)
        status = ready(port)["last_reload"]
        if status["reloads"] > before:
            return float(status["seconds"])
        if status["ok"] is False and status["started_at"] and status["error"]:
            raise RuntimeError(f"reload failed: {status['error']}")


def index_snapshot(cwd: Path, python: str, roots: list[str], output: Path) -> float:
    started = time.perf_counter()
    subprocess.run([python, "-m", "server", "index", *roots, "-o", str(output)], cwd=str(cwd), check=True,
                   env=serverproc.clean_env({}), stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


@contextlib.contextmanager
def bucket(folder: Path, latency: float, port: int, md5_cache: Path | None) -> Iterator[str]:
    """bench/ttfb_server.py --bucket on ``port`` (0: any), its MD5s kept in ``md5_cache``: a snapshot
    indexed through it (whose locations are its URLs, port included) is reused by later runs."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        command = [sys.executable, str(REPO / "bench" / "ttfb_server.py"), str(folder), "--latency-ms",
                   str(latency * 1000), "--port-file", str(port_file), "--port", str(port), "--bucket"]
        if md5_cache:
            command += ["--md5-cache", str(md5_cache)]
        proc = subprocess.Popen(command)
        try:
            deadline = time.monotonic() + 60
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise RuntimeError("ttfb_server.py did not start")
                time.sleep(0.05)
            base = f"http://127.0.0.1:{port_file.read_text()}"
            # its walk of the folder done (a listing waits for it) before any client's 20 s read
            # timeout starts: a million item folders took minutes at load 11, and `index`'s first
            # request failed (curl error 28)
            with _OPENER.open(f"{base}/?list-type=2&prefix=bench-not-a-key/", timeout=3600) as r:
                r.read()
            yield base
        finally:
            proc.terminate()  # (it writes its MD5s on SIGTERM: a million take seconds under load)
            try:
                proc.wait(timeout=300)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _children_cpu() -> float:
    """User + system CPU seconds of this process's reaped child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def phases(roots: list[str], snapshot: str, listings: tuple[str, ...] = (), profile: Path | None = None,
           keep_new: Path | None = None) -> dict[str, float]:
    """This tree's reload, phase by phase, in this process (as the child build runs it): wall
    seconds, and the CPU seconds of this process (all its threads) as "..., CPU"; ``profile``:
    the load and the write under cProfile (its main thread), the stats dumped there."""
    from server.catalog import loader  # noqa: PLC0415 - this tree's code, only for --phases
    from server.catalog.configured import load_options  # noqa: PLC0415
    from server.catalog.fingerprint import Fingerprint  # noqa: PLC0415
    from server.catalog.reuse import ReusePlan  # noqa: PLC0415
    from server.index.origins import OriginsBuilder  # noqa: PLC0415
    from server.index.reuse import ReusingBuilder  # noqa: PLC0415
    from server.runtime.snapshot import SnapshotWriter, read_snapshot  # noqa: PLC0415
    from server.settings import Settings  # noqa: PLC0415

    spent: dict[str, float] = {}

    def timed(owner: Any, name: str, label: str) -> None:
        inner = getattr(owner, name)

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            try:
                return inner(*args, **kwargs)
            finally:
                spent[label] = spent.get(label, 0.0) + time.perf_counter() - started
                spent[f"{label}, CPU"] = spent.get(f"{label}, CPU", 0.0) + time.process_time() - cpu
        setattr(owner, name, wrapper)

    timed(loader.Loader, "_walk_level", "walk (catalogs, collections, item links)")
    timed(ReusePlan, "__init__", "origins by location")
    timed(ReusePlan, "check", "stat the item files / list the prefix")
    timed(loader.Loader, "_add_reused", "take the unchanged rows")
    timed(ReusingBuilder, "build", "merge into the new index")
    timed(loader.Loader, "_load_items_reusing", "items in all (check, take, read the changed)")
    timed(loader, "release_free_memory", "free the walk's memory")
    timed(OriginsBuilder, "freeze", "the new origins")
    timed(Fingerprint, "of", "the new fingerprint")
    started = time.perf_counter()
    previous, _ = read_snapshot(snapshot, verify=False)
    spent["read the previous snapshot"] = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:  # as the child build does: items spooled into the new snapshot
        writer = SnapshotWriter(f"{tmp}/new.snapshot")
        started, cpu = time.perf_counter(), time.process_time()
        children = _children_cpu()
        # the load options the server's child build takes (the environment's STAC_STATIC_* limits:
        # a 10M catalog needs STAC_STATIC_MAX_DOCUMENTS over the default 5M), as it reloads
        options = load_options(Settings())
        options.previous, options.progress, options.item_spool, options.refer_previous = previous, False, writer.spool, True
        options.bucket_listings = listings
        profiler = cProfile.Profile() if profile else None
        if profiler is not None:
            profiler.enable()
        index, report = loader.load_catalogs(roots, options)
        spent["load in all"] = time.perf_counter() - started
        spent["load in all, CPU of this process"] = time.process_time() - cpu
        # its forked processes (lstats, the bucket listing: session 14), reaped by then
        spent["load in all, CPU of its child processes"] = _children_cpu() - children
        started, cpu = time.perf_counter(), time.process_time()
        header = writer.finish(index, roots, refer=True)
        if profiler is not None:
            profiler.disable()
            profiler.dump_stats(str(profile))
        spent["write the snapshot"] = time.perf_counter() - started
        spent["write the snapshot, CPU"] = time.process_time() - cpu
        spent["snapshot bytes written (MB)"] = os.path.getsize(f"{tmp}/new.snapshot") / 1e6
        spent["refers to the previous snapshot"] = float("base" in header)
        del index
        started, cpu = time.perf_counter(), time.process_time()
        read_snapshot(f"{tmp}/new.snapshot", verify=False)
        spent["read the new snapshot (as the server does)"] = time.perf_counter() - started
        if keep_new is not None:  # (same file system as the tempdir: renamed, else copied)
            shutil.move(f"{tmp}/new.snapshot", keep_new)
    spent["items reused"] = report.reused
    return spent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--changed", type=int, default=100)
    parser.add_argument("--added", type=int, default=10)
    parser.add_argument("--deleted", type=int, default=10)
    parser.add_argument("--http", action="store_true")
    parser.add_argument("--listing", action="store_true",
                        help="with --http: the folder is an S3-style bucket endpoint this tree's server lists")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="with --http: time to first byte per request")
    parser.add_argument("--baseline", type=Path, help="a checkout of today's main (its full rebuild)")
    parser.add_argument("--baseline-python", default=None, help="its Python (default: BASELINE/.venv/bin/python)")
    parser.add_argument("--phases", action="store_true")
    parser.add_argument("--profile", type=Path, help="with --phases: cProfile of that reload's load and write, to this file")
    parser.add_argument("--phases-only", action="store_true",
                        help="no servers: change the catalog once, then only --phases from --snapshot (written when not given)")
    parser.add_argument("--snapshot", type=Path, help="this tree's snapshot of ROOT, already written (skips its `index`)")
    parser.add_argument("--baseline-snapshot", type=Path, help="the baseline's snapshot of ROOT, already written")
    parser.add_argument("--shared-snapshot", action="store_true",
                        help="the baseline starts from this tree's snapshot too (same format): one `index` fewer")
    parser.add_argument("--baseline-runs", type=int, help="reload the baseline in the first N runs only (default: all)")
    parser.add_argument("--keep-snapshot", action="store_true",
                        help="with --snapshot: written there by `index` when not there yet, and kept (reused by later runs)")
    parser.add_argument("--bucket-port", type=int, default=0,
                        help="with --listing: the bucket endpoint's port (fixed, so a kept snapshot's URLs stay valid)")
    parser.add_argument("--md5-cache", type=Path,
                        help="with --listing: the bucket endpoint's MD5s kept there between runs (no 5.9 GB hashed again)")
    parser.add_argument("--bucket-url", help="with --phases-only --listing: a bench bucket of ROOT already serving "
                        "(`ttfb_server.py ROOT --bucket --latency-ms 0 --port P`): phases of several checkouts in turns")
    parser.add_argument("--keep-new", type=Path, help="with --phases-only: the reload's snapshot kept there (it refers "
                        "to --snapshot's file: the next A/B's snapshot, as a server's second reload starts from)")
    parser.add_argument("--code", type=Path, help="with --phases-only: the checkout whose `server` is measured (A/B)")
    args = parser.parse_args()
    if args.code:  # that checkout's `server` (nothing imported it yet)
        sys.path.insert(0, str(args.code.resolve()))
    catalog = Catalog(args.root)
    workdir = Path(tempfile.mkdtemp(prefix="bench-reload-"))
    keep = args.keep_snapshot and args.snapshot is not None and not args.snapshot.exists()
    if args.phases_only:
        with contextlib.ExitStack() as stack:
            listings: tuple[str, ...] = ()
            roots = [str(args.root / "catalog.json")]
            if args.http and args.listing:  # through the bench bucket, the changes uploaded to it
                base = args.bucket_url or stack.enter_context(
                    bucket(args.root, args.latency_ms / 1000, args.bucket_port, args.md5_cache))
                catalog.bucket, roots, listings = base, [f"{base}/catalog.json"], (f"{base}/",)
            snapshot = args.snapshot or workdir / "this-tree.snapshot"
            if not args.snapshot or keep:
                print(f"index {roots[0]}: {index_snapshot(args.code or REPO, sys.executable, roots, snapshot):.1f} s",
                      flush=True)
            if args.changed or args.added or args.deleted:
                catalog.change(args.changed, args.added, args.deleted)
            for label, value in phases(roots, str(snapshot), listings, profile=args.profile, keep_new=args.keep_new).items():
                print(f"phase: {label}: {value:.2f}" + ("" if label in UNITLESS else " s"), flush=True)
        shutil.rmtree(workdir, ignore_errors=True)
        return
    from bench.remote_ingest import serve, serve_ttfb  # noqa: PLC0415 - (imports `server`: after --code)

    sides = {"this tree": (REPO, sys.executable)}
    if args.baseline_runs == 0:  # (no baseline reloads: do not index one nor start its server)
        args.baseline = None
    if args.baseline:
        sides["baseline"] = (args.baseline, args.baseline_python or str(args.baseline / ".venv" / "bin" / "python"))
    times: dict[str, list[float]] = {name: [] for name in sides}
    with contextlib.ExitStack() as stack:
        if args.http and (args.listing or args.latency_ms):
            base = stack.enter_context(bucket(args.root, args.latency_ms / 1000, args.bucket_port, args.md5_cache)
                                       if args.listing else serve_ttfb(args.root, args.latency_ms / 1000))
            if args.listing:
                catalog.bucket = base  # changes are uploaded through it, as to a bucket
        else:
            base = stack.enter_context(serve(args.root)) if args.http else None
        listing_env = {"STAC_STATIC_BUCKET_LISTINGS": json.dumps([f"{base}/"])} if args.listing else {}
        roots = [f"{base}/catalog.json"] if base else [str(args.root / "catalog.json")]
        ports: dict[str, int] = {}
        pid_of: dict[int, int] = {}
        snapshots: dict[str, Path] = {}
        for name, (cwd, python) in sides.items():
            given = args.snapshot if name == "this tree" else args.baseline_snapshot
            if name == "baseline" and args.shared_snapshot:
                given = snapshots["this tree"]
            snapshot = given or workdir / f"{name.replace(' ', '-')}.snapshot"
            snapshots[name] = snapshot
            if not given or (keep and name == "this tree"):
                print(f"{name}: index {roots[0]}: {index_snapshot(cwd, python, roots, snapshot):.1f} s", flush=True)
            port, pid = stack.enter_context(server(name.replace(" ", "-"), cwd, python, roots, str(snapshot), workdir,
                                                   listing_env if name == "this tree" else None))
            ports[name], pid_of[port] = port, pid
        for run in range(args.runs):
            catalog.change(args.changed, args.added, args.deleted)
            order = list(sides) if run % 2 == 0 else list(reversed(sides))
            for name in order:
                if name == "baseline" and args.baseline_runs is not None and run >= args.baseline_runs:
                    continue
                seconds = reload_seconds(ports[name], pid_of)
                times[name].append(seconds)
                print(f"run {run + 1}: {name}: reload {seconds:.2f} s", flush=True)
        if args.phases:  # from the snapshot the server started from: the runs' changes since then
            listings = tuple(json.loads(listing_env["STAC_STATIC_BUCKET_LISTINGS"])) if listing_env else ()
            for label, value in phases(roots, str(snapshots["this tree"]), listings, args.profile).items():
                print(f"phase: {label}: {value:.2f}" + ("" if label in UNITLESS else " s"), flush=True)
    for name, values in times.items():
        if not values:
            continue
        print(f"median reload, {name}: {statistics.median(values):.2f} s ({', '.join(f'{v:.2f}' for v in values)})")
    shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
