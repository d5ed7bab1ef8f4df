"""Correctness at 1M through the bucket: the reload (as bench/reload.py --phases-only does it, from
X.snapshot, its snapshot written and kept, referring to X.snapshot) against a full load of the
bucket as it is now (in memory: a 2.9 GB snapshot would not fit the scratch), by
bench/same_index.differences (session 15: same index, 999,990 items).

    python bench/reload_same_index.py BUCKET_URL PREVIOUS.snapshot OUT.snapshot

BUCKET_URL: a bench bucket (bench/ttfb_server.py --bucket) of the folder PREVIOUS was indexed
from, changed since (bench/reload.py --listing --phases-only --bucket-url ... made the changes).
Exit status 0 when the same index, 1 and the first difference otherwise."""
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


from bench.same_index import differences  # noqa: E402
from server.catalog import loader  # noqa: E402
from server.runtime.snapshot import SnapshotWriter, read_snapshot  # noqa: E402

base, previous_path, out = sys.argv[1:4]
roots = [f"{base}/catalog.json"]
t, c = time.perf_counter(), time.process_time()
previous, _ = read_snapshot(previous_path, verify=False)
writer = SnapshotWriter(out)
index, report = loader.load_catalogs(roots, loader.LoadOptions(previous=previous, progress=False, item_spool=writer.spool,
                                                                refer_previous=True, bucket_listings=(f"{base}/",)))
header = writer.finish(index, roots, refer=True)
print(f"reload: {time.perf_counter() - t:.1f} s, {time.process_time() - c:.1f} CPU-s, reused {report.reused} of {index.size},"
      f" refers to the previous: {'base' in header}", flush=True)
del index, previous
reloaded, _ = read_snapshot(out, verify=True)
t, c = time.perf_counter(), time.process_time()
full, full_report = loader.load_catalogs(roots, loader.LoadOptions(progress=False))
u = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"full load: {time.perf_counter() - t:.1f} s, {time.process_time() - c:.1f} CPU-s here, children so far "
      f"{u.ru_utime + u.ru_stime:.1f} CPU-s, {full.size} items", flush=True)
found = differences(reloaded, full)
print("same index:" if found is None else "DIFFERENT:", found or f"{full.size} items")
sys.exit(0 if found is None else 1)
