"""Each benchmark in bench/, run on a tiny catalog so it cannot rot. These check that the
scripts run and report; they assert correctness, never timings."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from server.catalog.loader import load_catalogs
from tests.helpers import REPO, server_env, ttfb_server

ITEMS = 3000  # latency.py pages 50 deep into one bbox


def run(script: str, *args: str, timeout: float = 240) -> str:
    result = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=REPO, env=server_env(),
                            capture_output=True, text=True, timeout=timeout)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "files"
    run("generate.py", str(out), "--items", str(ITEMS), "-q", "--workers", "1")
    return out


def test_generator_is_deterministic_and_loadable(catalog: Path, tmp_path: Path) -> None:
    index, report = load_catalogs([str(catalog / "catalog.json")])
    assert index.size == ITEMS and report.skipped == 0
    again = tmp_path / "again"
    run("generate.py", str(again), "--items", str(ITEMS), "-q", "--workers", "2")
    first = sorted(p.relative_to(catalog) for p in catalog.rglob("*.json"))
    assert first == sorted(p.relative_to(again) for p in again.rglob("*.json"))
    for rel in first[:: max(1, len(first) // 20)]:
        assert (catalog / rel).read_bytes() == (again / rel).read_bytes()


def test_child_items(catalog: Path, tmp_path: Path) -> None:
    """The forked ndjson child's per-item path timed in process, on lines made of item files."""
    items = [p for p in sorted(catalog.rglob("*.json")) if '"Feature"' in p.read_text()][:300]
    lines = tmp_path / "items.ndjson"
    lines.write_bytes(b"".join(orjson.dumps(orjson.loads(p.read_bytes())) + b"\n" for p in items))
    out = run("child_items.py", str(lines), "--lines", "250", "--reps", "1", "--chunk", "100")
    assert "250 items: " in out and " us an item (parse and free " in out, out


def test_same_index(catalog: Path, tmp_path: Path) -> None:
    """Two builds of one catalog are the same index; a catalog with one item changed is not."""
    for name in ("a", "b"):
        result = subprocess.run([sys.executable, "-m", "server", "index", str(catalog / "catalog.json"), "-o",
                                 str(tmp_path / f"{name}.idx")], cwd=REPO, env=server_env(), capture_output=True, timeout=240)
        assert result.returncode == 0, result.stderr
    assert "same index: 3000 items" in run("same_index.py", str(tmp_path / "a.idx"), str(tmp_path / "b.idx"))
    changed = tmp_path / "changed"
    shutil.copytree(catalog, changed)
    first = sorted(changed.rglob("*.json"), key=lambda p: (len(p.parts), str(p)))[-1]  # an item file
    first.write_text(first.read_text().replace('"datetime": "', '"datetime": "1', 1).replace('"datetime":"', '"datetime":"1', 1))
    assert subprocess.run([sys.executable, "-m", "server", "index", str(changed / "catalog.json"), "-o",
                           str(tmp_path / "c.idx")], cwd=REPO, env=server_env(), capture_output=True, timeout=240).returncode == 0
    result = subprocess.run([sys.executable, "bench/same_index.py", str(tmp_path / "a.idx"), str(tmp_path / "c.idx")],
                            cwd=REPO, env=server_env(), capture_output=True, text=True, timeout=240)
    assert result.returncode == 1 and "different:" in result.stdout, result.stdout + result.stderr
    # digests saved of one, compared with the other (two 1M snapshots need not be on disk at once)
    assert "digests of 3000 items saved" in run("same_index.py", "--save", str(tmp_path / "a.json"), str(tmp_path / "a.idx"))
    assert "same index: 3000 items" in run("same_index.py", "--against", str(tmp_path / "a.json"), str(tmp_path / "b.idx"))
    against = ["--against", str(tmp_path / "a.json"), str(tmp_path / "c.idx")]
    result = subprocess.run([sys.executable, "bench/same_index.py", *against], cwd=REPO, env=server_env(),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 1 and "different: size" in result.stdout, result.stdout + result.stderr


def test_ingest(catalog: Path) -> None:
    out = run("ingest.py", str(catalog), "--repeat", "1", "--pystac-repeat", "1", "--no-warm", "--wait-idle", "0")
    assert "ingest ratio" in out and "RSS / compact JSON" in out


def test_latency(catalog: Path) -> None:
    out = run("latency.py", str(catalog), "--runs", "3", "--max-seconds", "2")
    assert "bbox+datetime" in out
    assert re.search(r"paging with the match cache \(the default\): pages 2-50 median [0-9.]+ ms", out)


def test_ab_latency(catalog: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "index.snap"
    run("latency.py", str(catalog), "--runs", "1", "--max-seconds", "1", "--snapshot", str(snapshot))
    tree = f"{REPO}:{snapshot}"
    out = run("ab_latency.py", str(catalog), "--tree", f"a={tree}", "--tree", f"b={tree}", "--rounds", "2",
              "--runs", "3")
    assert re.search(r"item GET +[0-9.]+ \( *\d+\) +[0-9.]+ \( *\d+\)", out), out
    assert out.count("round ") == 4


@pytest.mark.parametrize("mode", [[], ["--multiprocess"]])
def test_latency_metrics_overhead(catalog: Path, mode: list[str]) -> None:
    out = run("latency.py", str(catalog), "--runs", "4", "--metrics-overhead", "2", *mode)
    for query in ("item GET", "bbox+datetime", "item GET (cache hit)", "bbox+datetime (cache hit)"):
        assert re.search(rf"{re.escape(query)} +to the last byte: on [0-9.]+ ms, off [0-9.]+ ms", out), out


def test_remote_ingest(catalog: Path) -> None:
    out = run("remote_ingest.py", str(catalog), "--repeat", "1")
    assert f"remote catalog of {ITEMS} items" in out and "ratio" in out


def test_remote_ingest_checkouts_at_a_latency(catalog: Path) -> None:
    """Issue 18's table: this checkout (twice, as two names) behind ttfb_server.py's 5 ms, and the local floor."""
    out = run("remote_ingest.py", str(catalog), "--latency-ms", "5", "--repeat", "1", "--tree", f"a={REPO}",
              "--tree", f"b={REPO}", "--floor", "--max-concurrency", "64")
    for name in ("a", "b", "b, local files"):
        assert re.search(rf"\| 5 ms \| {re.escape(name)} \| {ITEMS:,} \| [0-9.]+ \| [0-9,]+ \|", out), out


@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed (bench dependency: apt-get install wrk)")
def test_load_and_throughput(catalog: Path) -> None:
    out = run("load.py", str(catalog / "catalog.json"), "--duration", "4", "--warmup", "1", "--connections", "4",
              "--settle", "0")
    assert "errors 0" in out
    out = run("throughput.py", str(catalog), "--duration", "1", "--configs", "bare,ours")
    assert "req/s" in out or "requests/s" in out


def test_starvation(catalog: Path) -> None:
    out = run("starvation.py", str(catalog / "catalog.json"), "--seconds", "1")
    assert "cheap request during heavy" in out


def test_replica_start(tmp_path: Path) -> None:
    snapshot = tmp_path / "sample.idx"
    subprocess.run([sys.executable, "-m", "server", "index", "-o", str(snapshot)], cwd=REPO, env=server_env(),
                   check=True, capture_output=True, timeout=120)
    out = run("replica_start.py", str(snapshot), "--rounds", "1", "--timeout", "60")
    assert "url, cold  ready in" in out and "answered [200]" in out and "answered [304]" in out
    assert re.search(r"url, 304\s+ready\s+[0-9.]+ s", out)


def test_reload_from_a_bucket_endpoint(catalog: Path, tmp_path: Path) -> None:
    """bench/reload.py --http --listing: each run's changes are PUT to and DELETEd from
    ttfb_server.py --bucket as a bucket's client uploads them, and its listing shows them at
    once: the phases' reload (from the first snapshot) reuses every item but the 5 changed and
    the 2 deleted (a listing that missed an upload would reuse a changed one)."""
    folder = shutil.copytree(catalog, tmp_path / "files")
    out = run("reload.py", str(folder), "--http", "--listing", "--runs", "1", "--baseline-runs", "0",
              "--changed", "5", "--added", "2", "--deleted", "2", "--phases", timeout=600)
    assert re.search(r"median reload, this tree: [0-9.]+ s", out), out
    assert float(re.search(r"phase: items reused: ([0-9.]+)", out)[1]) == ITEMS - 5 - 2, out  # type: ignore[index]


def test_a_reload_through_a_bucket_gives_a_full_loads_index(catalog: Path, tmp_path: Path) -> None:
    """bench/reload_same_index.py: a reload through a bench bucket after changes PUT and DELETEd
    (reload.py --phases-only --bucket-url) against a full load of the bucket: the same index."""
    folder = shutil.copytree(catalog, tmp_path / "files")
    snapshot = tmp_path / "before.idx"
    with ttfb_server(folder, "--latency-ms", "0", "--bucket") as base:
        subprocess.run([sys.executable, "-m", "server", "index", f"{base}/catalog.json", "-o", str(snapshot)], cwd=REPO,
                       env=server_env(), check=True, capture_output=True, timeout=240)
        run("reload.py", str(folder), "--http", "--listing", "--phases-only", "--snapshot", str(snapshot),
            "--bucket-url", base, "--changed", "5", "--added", "2", "--deleted", "2", timeout=600)
        out = run("reload_same_index.py", base, str(snapshot), str(tmp_path / "after.idx"), timeout=600)
    assert f"reused {ITEMS - 5 - 2} of {ITEMS}" in out and f"same index: {ITEMS} items" in out, out


def test_replicate_lean_parquet_and_latency_on_it(tmp_path: Path) -> None:
    """replicate.py --lean on a parquet layout: a file per copy, every item's assets cut to the
    thumbnail, its collection the copy, its id its own; the copies load as N x the items, and
    latency.py samples its ids from the parquet files."""
    import pyarrow.parquet as pq

    src, out = tmp_path / "pq", tmp_path / "rep"
    run("generate.py", str(src), "--items", str(ITEMS), "--collections", "2", "--layout", "parquet", "-q", "--workers", "1")
    run("replicate.py", str(src), str(out), "--copies", "2", "--lean")
    originals = {}
    for path in sorted(src.glob("*/items.parquet")):
        for row in pq.read_table(path, columns=["id", "collection"]).to_pylist():
            originals[row["id"]] = row["collection"]
    copies = sorted(out.glob("*/items.parquet"))
    assert len(copies) == 4 and all(not p.is_symlink() and p.stat().st_nlink == 1 for p in copies)
    index, report = load_catalogs([str(out / "catalog.json")])
    assert index.size == 2 * ITEMS and report.skipped == 0
    for path in copies:
        copy = path.parent.name  # <original>-c<k>
        original, k = copy.rsplit("-c", 1)
        table = pq.read_table(path)
        assert table.schema.metadata and b"geo" in table.schema.metadata
        rows = table.select(["id", "collection"]).to_pylist()
        assert {r["collection"] for r in rows} == {copy}
        assert all(r["id"].endswith(f"-c{k}") and originals[r["id"][: -len(f"-c{k}")]] == original for r in rows)
        for row in rows[:: max(1, len(rows) // 5)]:
            pos = index.find(copy, row["id"])
            assert pos is not None
            item = index.item(pos)
            assert item["id"] == row["id"] and item["collection"] == copy and set(item["assets"]) == {"thumbnail"}
    ids = {r for p in copies for r in pq.read_table(p, columns=["id"]).column("id").to_pylist()}
    assert len(ids) == 2 * ITEMS
    result = run("latency.py", str(out), "--runs", "2", "--max-seconds", "2")
    assert "item GET" in result and "ids (10)" in result


def test_vocab_serve_ab(tmp_path: Path) -> None:
    snapshot = tmp_path / "sample.idx"
    subprocess.run([sys.executable, "-m", "server", "index", "-o", str(snapshot)], cwd=REPO, env=server_env(),
                   check=True, capture_output=True, timeout=120)
    out = run("vocab_serve_ab.py", str(REPO), str(snapshot), str(REPO), str(snapshot), "2")
    assert "base ready" in out and "mine after queries" in out and "same=False" not in out, out
    assert re.search(r"uncached LIKE\s+base median\s+[0-9.]+ ms", out), out


def test_benchmarks_and_tests_pick_ports_one_way(monkeypatch: pytest.MonkeyPatch) -> None:
    """bench/serverproc.py's free_port is the tests' (tests.helpers): under pytest-xdist, worker
    k of n only takes ports p with p // 2 % n == k, the benchmarks' servers a test starts too
    (before, serverproc took any free port: one could be another worker's next server's)."""
    from bench import serverproc
    from tests import helpers

    assert helpers.free_port is serverproc.free_port
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw4")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    assert {serverproc.free_port() // 2 % 3 for _ in range(20)} == {1}


def test_vocab_build() -> None:
    out = run("vocab_build.py", "--items", "5000", "--chunk", "700")
    assert "5000 datetime texts (TextBlock)" in out and "held after the merges" in out, out
    assert re.search(r"merged [0-9.]+, freeze [0-9.]+", out), out
