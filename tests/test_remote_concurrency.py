"""Remote loads at a bucket's latency (issue 18): libcurl's transfers in flight grow from
fetch_concurrency while that pays, within fetch_max_concurrency, and back off when the server
says it is busy; keep-alive connections a server closes early, and many transfers at once,
lose or duplicate no item. Every server is bench/ttfb_server.py on 127.0.0.1, started for real
(an asyncio server that waits a fixed time before each answer and counts, at /_stats, the
answers waiting at once and the connections open)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from server.catalog import curl_pool, forked_reader, sources
from server.catalog.loader import LoadOptions, LoadReport, load_catalogs
from server.index import Index
from tests.helpers import CatalogDir, catalog, collection, item, link, ttfb_server
from tests.oracles.search import Oracle

pytestmark = pytest.mark.skipif(sources.CurlPool is None, reason="pycurl is not installed")


def stats(base: str) -> dict[str, Any]:
    return httpx.get(f"{base}/_stats", timeout=10).json()


def load_through(root: Path, *server: str, **options: Any) -> tuple[Index, LoadReport, dict[str, Any]]:
    """The catalog at ``root`` loaded from bench/ttfb_server.py started with the options
    ``server``, with LoadOptions(progress=False, **options); and the server's /_stats after."""
    with ttfb_server(root.parent, *server) as base:
        index, report = load_catalogs([f"{base}/catalog.json"], LoadOptions(progress=False, **options))
        return index, report, stats(base)


def write_catalog(root: Path, count: int, collections: int = 2) -> Path:
    """`count` item files linked from `collections` collections under a root catalog."""
    folder = CatalogDir(root)
    children = []
    for c in range(collections):
        cid = f"c{c}"
        names = [f"{cid}-i{n}" for n in range(c, count, collections)]
        for n, name in enumerate(names):
            folder.write(f"{cid}/{name}.json", item(name, bbox=(n % 90, c, n % 90 + 1, c + 1),
                                                    properties={"n": n, "platform": cid}))
        folder.write(f"{cid}/collection.json", collection(cid, [link("item", f"./{name}.json") for name in names]))
        children.append(link("child", f"./{cid}/collection.json"))
    return folder.write("catalog.json", catalog("root", children))


@pytest.fixture(scope="module")
def items_1500(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_catalog(tmp_path_factory.mktemp("remote") / "cat", 1500)


@pytest.fixture(scope="module")
def items_600(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """For the server over capacity, which takes ~6 at 10 ms each: 1,500 items were ~6 s a case."""
    return write_catalog(tmp_path_factory.mktemp("remote") / "cat", 600)


def keys_of(index: Index) -> list[tuple[str | None, str]]:
    return [(index.collection_of(p), index.ids[p]) for p in range(index.size)]


def check_against_the_source(index: Index, root: Path) -> None:
    """Every item of the source once (no loss, no duplicate), each with its own properties."""
    oracle = Oracle.from_root(root)
    keys = keys_of(index)
    assert len(keys) == len(set(keys)) == len(oracle.items)
    assert set(keys) == oracle.keys()
    expected = {o.key: o.doc["properties"] for o in oracle.items}
    for position, key in enumerate(keys):
        served = orjson.loads(index.json[position])
        assert served["properties"] == expected[key], key
        assert served["id"] == key[1]


READERS = ["here", "fetch-process", "forked-reader"]


def use_reader(reader: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Where the items are fetched: libcurl in this process, in a fetch_worker process, or in
    a forked reader (which also parses and normalizes them)."""
    monkeypatch.setattr(forked_reader, "usable", lambda count: reader == "forked-reader")
    monkeypatch.setattr(curl_pool, "_spare_core", lambda: True)
    monkeypatch.setattr(curl_pool, "WORKER_MIN_BATCH", 1 if reader == "fetch-process" else 10**9)


@pytest.mark.parametrize("reader", READERS)
def test_in_flight_grows_from_the_start_within_the_bound(
    items_1500: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    use_reader(reader, monkeypatch)
    index, report, seen = load_through(items_1500, "--latency-ms", "20", fetch_concurrency=4, fetch_max_concurrency=24)
    assert report.skipped == 0, report.skips
    check_against_the_source(index, items_1500)
    # grew past the start (20 ms per answer: documents/s grows with each step), never past the bound
    assert 4 < seen["most_in_flight"] <= 24
    # connections reused: at most one per transfer in flight, plus the walk's few (catalog, collections)
    assert seen["most_open"] <= 24 + 4
    assert seen["connections"] <= 24 + 4


@pytest.mark.parametrize("reader", READERS)
def test_a_fixed_number_in_flight_without_a_larger_bound(
    items_1500: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """fetch_max_concurrency no larger than fetch_concurrency: as before this issue."""
    use_reader(reader, monkeypatch)
    index, _, seen = load_through(items_1500, "--latency-ms", "5", fetch_concurrency=6, fetch_max_concurrency=1)
    assert index.size == 1500
    assert seen["most_in_flight"] <= 6


@pytest.mark.parametrize("status", ["503", "429"])
@pytest.mark.parametrize("reader", ["here", "forked-reader"])
def test_backs_off_while_the_server_is_over_capacity(
    items_600: Path, reader: str, status: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that takes 6 at a time and answers 503 (or 429) to any more: the load starts
    at 32 in flight, halves on those answers, and settles near what the server takes; with 32
    fixed in flight most requests would be refused, and items lost after their retries."""
    use_reader(reader, monkeypatch)
    index, report, seen = load_through(items_600, "--latency-ms", "10", "--capacity", "6", "--status", status,
                                       fetch_concurrency=32, fetch_max_concurrency=64)
    assert report.skipped == 0, report.skips
    check_against_the_source(index, items_600)
    arrivals = seen["arrivals"]
    refused = [s != 200 for _, s in arrivals]
    assert any(refused[:100])  # it was over capacity at the start
    later = refused[len(refused) // 2:]
    assert sum(later) < 0.2 * len(later), sum(later)  # then mostly within it (probes upwards refused)


@pytest.mark.parametrize("reader", ["here", "forked-reader"])
def test_a_busy_spell_cuts_the_limit_and_every_item_still_arrives(
    items_1500: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """503 to everything for 0.4 s once the items are asked for (retries as before: 0.2, 0.4,
    0.8 s apart); afterwards the transfers in flight start low again and grow back."""
    use_reader(reader, monkeypatch)
    index, report, seen = load_through(items_1500, "--latency-ms", "10", "--busy-seconds", "0.4", "--busy-from", "4",
                                       fetch_concurrency=32, fetch_max_concurrency=64)
    assert report.skipped == 0, report.skips
    check_against_the_source(index, items_1500)
    arrivals = seen["arrivals"]
    first_ok = next(i for i, (_, status) in enumerate(arrivals[3:], 3) if status == 200)
    assert first_ok > 32  # all of the first round refused
    # then few at once (cut on each round of 503s: 32, 16, 8 ...; without the cuts the retries
    # come back together, 20 of them at once)
    assert max(waiting for waiting, _ in arrivals[first_ok:first_ok + 20]) < 8
    assert seen["most_in_flight"] > 8  # and more again later


@pytest.mark.parametrize("reader", READERS)
def test_keep_alive_connections_closed_early_by_the_server_lose_nothing(
    items_1500: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server hangs up after every third answer without a `Connection: close`: libcurl
    finds the connection dead when it reuses it and asks again on a new one."""
    use_reader(reader, monkeypatch)
    index, report, seen = load_through(items_1500, "--latency-ms", "2", "--close-after", "3",
                                       fetch_concurrency=16, fetch_max_concurrency=64)
    assert report.skipped == 0, report.skips
    check_against_the_source(index, items_1500)
    assert seen["connections"] >= 1502 // 3  # they really were closed


@pytest.mark.parametrize("reader", READERS)
def test_no_item_lost_or_duplicated_at_high_concurrency(
    tmp_path: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = write_catalog(tmp_path / "cat", 4000, collections=3)
    use_reader(reader, monkeypatch)
    index, report, seen = load_through(root, "--latency-ms", "3", fetch_concurrency=256, fetch_max_concurrency=512)
    assert report.skipped == 0, report.skips
    check_against_the_source(index, root)
    assert seen["requests"] == 4000 + 4  # each document once: nothing fetched twice
    assert seen["most_in_flight"] > 32


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
@pytest.mark.parametrize("reader", ["here", "forked-reader"])
def test_https_with_http2_multiplexes_on_few_connections(
    items_1500: Path, reader: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A server that offers HTTP/2 (ALPN): the transfers in flight share a few connections
    instead of one each."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))
    use_reader(reader, monkeypatch)
    with ttfb_server(items_1500.parent, "--latency-ms", "20", "--tls", str(cert), str(key)) as base:
        base = base.replace("http://", "https://")
        index, report = load_catalogs([f"{base}/catalog.json"], LoadOptions(
            progress=False, fetch_concurrency=32, fetch_max_concurrency=64))
        seen = httpx.get(f"{base}/_stats", verify=ssl.create_default_context(cafile=str(cert)), timeout=10).json()
    assert report.skipped == 0, report.skips
    check_against_the_source(index, items_1500)
    assert seen["most_in_flight"] > 16
    assert seen["most_open"] <= 4 and seen["connections"] <= 6  # HTTP/1.1 would need one per transfer


@pytest.mark.parametrize("reader", READERS)
def test_a_reload_with_the_remote_cache_revalidates_every_item(
    items_1500: Path, reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The first load keeps each document with its ETag (sent back by a forked reader or
    fetch process to this process's cache); the second asks "changed since?" and every item
    answered 304 is the cached body: the same index, no item body transferred again."""
    use_reader(reader, monkeypatch)
    cache = sources.RemoteCache()
    with ttfb_server(items_1500.parent, "--latency-ms", "2") as base:
        options = LoadOptions(progress=False, fetch_concurrency=8, fetch_max_concurrency=64, remote_cache=cache)
        first, _ = load_catalogs([f"{base}/catalog.json"], options)
        before = stats(base)["not_modified"]
        second, report = load_catalogs([f"{base}/catalog.json"], options)
        not_modified = stats(base)["not_modified"] - before
    assert before == 0 and report.skipped == 0
    check_against_the_source(second, items_1500)
    assert [second.json[p] for p in range(second.size)] == [first.json[p] for p in range(first.size)]
    assert not_modified >= 1500
    assert cache.revalidated >= 1500


def test_stats_stay_bounded_however_long_the_server_runs(tmp_path: Path) -> None:
    """/_stats lists the first `--arrivals N` requests' arrivals and counts the rest: before, a
    pair for every request for as long as it ran (64 B each: a million a full load of the 1M
    bench bucket, each reload's requests on top), and each /_stats a JSON of them all."""
    (tmp_path / "a.json").write_text("{}")
    with ttfb_server(tmp_path, "--latency-ms", "0", "--arrivals", "3") as base, httpx.Client() as client:
        for _ in range(5):
            assert client.get(f"{base}/a.json").status_code == 200
        seen = client.get(f"{base}/_stats").json()
    assert seen["requests"] == 5
    assert seen["arrivals"] == [[0, 200]] * 3 and seen["arrivals_dropped"] == 2
