"""GET /_mgmt/metrics (Prometheus text format): every request counted once by route template,
method and status, latency by operation, the response cache, the serving index, loads and
reloads (success and failure), skipped documents by reason, remote fetches (here, in a fetch
process, in a reload's child process), the off switch, and `--workers 2`: one scrape through any
worker sees every worker's counts, also after a worker is killed and replaced.

In-process tests share one registry (the process's): they compare what a scrape says before
and after their own requests. The real servers are fresh processes: there counts are exact
from zero."""

from __future__ import annotations

import collections
import contextlib
import functools
import http.server
import json
import os
import re
import signal
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from server.api.metrics import RequestMetrics
from server.catalog import sources
from server.catalog.loader import SKIP_REASONS, LoadOptions, load_catalogs
from server.settings import Settings
from tests.helpers import CatalogDir, catalog, collection, http_server, in_thread, item, link, run_server
from tests.test_remote_fetch import BACKENDS, failing, fetcher, ok, server, validated
from tests.test_workers import Server

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
ITEM_ROUTE = "/collections/{collection_id}/items/{item_id}"
TOKEN = "metrics-test-token"


def parse(text: str) -> Samples:
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def scrape(get: Any) -> Samples:
    """A scrape through ``get`` (a TestClient's or httpx's get), parsed."""
    response = get("/_mgmt/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def series(samples: Samples, name: str, **labels: str) -> dict[frozenset[tuple[str, str]], float]:
    """The samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return {key: value for (n, key), value in samples.items() if n == name and wanted <= key}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def delta(before: Samples, after: Samples, name: str) -> dict[frozenset[tuple[str, str]], float]:
    keys = set(series(before, name)) | set(series(after, name))
    changed = {k: after.get((name, k), 0.0) - before.get((name, k), 0.0) for k in keys}
    return {k: v for k, v in changed.items() if v}


def requests_key(route: str, method: str, status: int) -> frozenset[tuple[str, str]]:
    return frozenset({("route", route), ("method", method), ("status", str(status))})


# -- in process: labels, exact counts, the cache, the index, the off switch -------------------


@pytest.fixture
def metrics_client(make_client: Any) -> Iterator[Any]:
    with make_client(Settings(metrics=True)) as client:
        yield client


def test_requests_are_counted_by_route_template_method_and_status(metrics_client: Any, sample_index: Any) -> None:
    collection_id, item_id = sample_index.collection_of(0), sample_index.ids[0]
    sent = [
        ("GET", "/", 200), ("GET", "/", 200), ("GET", "/conformance", 200),
        ("GET", f"/collections/{collection_id}", 200), ("GET", f"/collections/{collection_id}/items?limit=2", 200),
        ("GET", f"/collections/{collection_id}/items/{item_id}", 200),
        ("GET", f"/collections/{collection_id}/items/{item_id}?f=html", 200),
        ("GET", f"/collections/{collection_id}/items/no-such-item", 404),
        ("GET", "/collections/no-such-collection", 404),
        ("GET", "/search?bbox=-10,40,30,60&datetime=2020-01-01T00:00:00Z/..", 200),
        ("POST", "/search", 200), ("GET", "/search?bbox=1,2", 400), ("DELETE", "/search", 405),
        ("GET", "/no/such/path", 404), ("GET", "/another-unknown-path?x=1", 404), ("GET", "/static/nope.css", 404),
        ("BREW", "/", 405), ("GET", "/aggregate?aggregations=total_count", 200),
        ("GET", "/static/pages/style.css", 200), ("GET", "/_mgmt/health", 200),
    ]
    before = scrape(metrics_client.get)
    for method, url, status in sent:
        response = metrics_client.request(method, url, json={} if method == "POST" else None)
        assert response.status_code == status, (method, url, response.text)
    after = scrape(metrics_client.get)
    routes = {"/": "/", "/conformance": "/conformance", "/search": "/search", "/aggregate": "/aggregate",
              f"/collections/{collection_id}": "/collections/{collection_id}",
              f"/collections/{collection_id}/items": "/collections/{collection_id}/items",
              "/static/pages/style.css": "/static/pages/{path}", "/_mgmt/health": "/_mgmt/health",
              "/collections/no-such-collection": "/collections/{collection_id}"}
    expected: collections.Counter[frozenset[tuple[str, str]]] = collections.Counter()
    for method, url, status in sent:
        path = url.split("?")[0]
        route = ITEM_ROUTE if "/items/" in path else routes.get(path, "unmatched")
        expected[requests_key(route, "other" if method == "BREW" else method, status)] += 1
    expected[requests_key("/_mgmt/metrics", "GET", 200)] += 1  # the first scrape (each counts after its answer)
    assert delta(before, after, "stac_static_http_requests_total") == dict(expected)
    for key in series(after, "stac_static_http_requests_total"):  # no id, no query string in any label
        for _, label in key:
            assert item_id not in label and "?" not in label and "no-such" not in label, key


def test_latency_is_a_histogram_per_operation_and_format(metrics_client: Any, sample_index: Any) -> None:
    collection_id, item_id = sample_index.collection_of(0), sample_index.ids[0]
    sent = {("item", "json"): 3, ("item", "html"): 1, ("search", "json"): 2, ("collections", "json"): 1,
            ("landing", "html"): 1, ("mgmt", "json"): 1}
    urls = {("item", "json"): f"/collections/{collection_id}/items/{item_id}",
            ("item", "html"): f"/collections/{collection_id}/items/{item_id}?f=html",
            ("search", "json"): "/search?limit=1", ("collections", "json"): "/collections",
            ("landing", "html"): "/?f=html", ("mgmt", "json"): "/_mgmt/ready"}
    before = scrape(metrics_client.get)
    for key, count in sent.items():
        for _ in range(count):
            assert metrics_client.get(urls[key]).status_code == 200
    after = scrape(metrics_client.get)
    counts = delta(before, after, "stac_static_http_request_duration_seconds_count")
    expected = {frozenset({("operation", op), ("format", fmt)}): n for (op, fmt), n in sent.items()}
    expected[frozenset({("operation", "mgmt"), ("format", "other")})] = 1  # the first scrape: text/plain
    assert counts == expected
    for key in expected:  # cumulative buckets ending at the count; a positive sum
        labels = dict(key)
        buckets = sorted(((float(dict(k)["le"]), v) for k, v in series(after, "stac_static_http_request_duration_seconds_bucket",
                                                                       **labels).items()))
        assert [v for _, v in buckets] == sorted(v for _, v in buckets)
        assert buckets[-1] == (float("inf"), value(after, "stac_static_http_request_duration_seconds_count", **labels))
        assert value(after, "stac_static_http_request_duration_seconds_sum", **labels) > 0


def test_response_cache_hits_misses_and_not_modified(metrics_client: Any) -> None:
    url = "/search?bbox=0,40,20,60&limit=3&cache-test=1"  # a URL no other test asks for
    before = scrape(metrics_client.get)
    first = metrics_client.get(url)
    second = metrics_client.get(url)
    third = metrics_client.get(url)
    revalidated = metrics_client.get(url, headers={"if-none-match": first.headers["etag"]})
    assert [r.status_code for r in (first, second, third, revalidated)] == [200, 200, 200, 304]
    assert first.content == second.content == third.content
    after = scrape(metrics_client.get)
    assert delta(before, after, "stac_static_response_cache_requests_total") == {
        frozenset({("result", "miss")}): 1, frozenset({("result", "hit")}): 2,
        frozenset({("result", "not_modified")}): 1}
    # the hits and the 304 carry the route the first answer was routed to
    assert delta(before, after, "stac_static_http_requests_total") == {
        requests_key("/search", "GET", 200): 3, requests_key("/search", "GET", 304): 1,
        requests_key("/_mgmt/metrics", "GET", 200): 1}


def test_the_serving_index_is_described(metrics_client: Any, sample_index: Any, sample_load: Any) -> None:
    samples = scrape(metrics_client.get)
    assert value(samples, "stac_static_index_items") == sample_index.size
    assert value(samples, "stac_static_index_collections") == len(sample_index.collections)
    assert value(samples, "stac_static_index_version") == sample_index.version
    assert value(samples, "stac_static_index_loaded_timestamp_seconds") == pytest.approx(sample_index.loaded_at)
    assert value(samples, "stac_static_index_load_seconds") == pytest.approx(sample_load[1].seconds, abs=1e-3)
    # at least the items' JSON and geometries, at most the size of a snapshot of it
    stored = sample_index.json.nbytes + sample_index.wkb.nbytes
    assert stored < value(samples, "stac_static_index_bytes") < 20 * stored
    skipped = series(samples, "stac_static_index_skipped_documents")
    assert {dict(k)["reason"] for k in skipped} == set(SKIP_REASONS)
    assert sum(skipped.values()) == sample_load[1].skipped == 0


def test_metrics_off_is_a_404_and_measures_nothing(make_client: Any, metrics_client: Any) -> None:
    with make_client(Settings(metrics=False)) as off:
        assert not any(m.cls is RequestMetrics for m in off.app.user_middleware)
        before = scrape(metrics_client.get)
        response = off.get("/_mgmt/metrics")
        assert response.status_code == 404
        assert response.json()["code"] == "NotFoundError" and response.json()["description"]
        for url in ("/", "/search?limit=1", "/search?limit=1", "/collections"):
            assert off.get(url).status_code == 200
        after = scrape(metrics_client.get)
    # only the scrape through the app that has metrics moved
    assert delta(before, after, "stac_static_http_requests_total") == {requests_key("/_mgmt/metrics", "GET", 200): 1}
    assert delta(before, after, "stac_static_response_cache_requests_total") == {}


# -- skipped documents by reason --------------------------------------------------------------------


def write_skips(catalog_dir: CatalogDir) -> dict[str, int]:
    """A catalog with documents skipped for every reason; how many of each."""
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./missing/catalog.json"),  # unreadable
        link("child", "./broken/catalog.json"),  # invalid_json
        link("child", "./array/catalog.json"),  # not_stac
        link("child", "./no-id/catalog.json"),  # missing_id
        link("child", "https://elsewhere.example/catalog.json"),  # out_of_scope
        link("child", "../outside/catalog.json"),  # out_of_scope
        link("child", "./deep/catalog.json"),
        link("child", "./good/collection.json"),
        link("child", "./again/collection.json"),  # duplicate (a second collection "good")
    ]))
    catalog_dir.write_text("broken/catalog.json", '{"type": "Catalog", "id": "broken", ')
    catalog_dir.write_text("array/catalog.json", "[1, 2, 3]")
    no_id = catalog("x")
    del no_id["id"]
    catalog_dir.write("no-id/catalog.json", no_id)
    catalog_dir.write("deep/catalog.json", catalog("deep", [link("child", "./deeper/catalog.json")]))
    catalog_dir.write("deep/deeper/catalog.json", catalog("deeper", [link("child", "./deepest/catalog.json")]))
    catalog_dir.write("deep/deeper/deepest/catalog.json", catalog("deepest"))  # limit (max depth 2)
    catalog_dir.write("again/collection.json", collection("good"))
    catalog_dir.write("good/collection.json", collection("good", [
        link("item", "./ok.json"), link("item", "./gone.json"), link("item", "./bad-json.json"),
        link("item", "./string.json"), link("item", "./no-props.json"), link("item", "./bad-time.json"),
        link("item", "./dup.json"), link("item", "./big.json"), link("item", "./lines.ndjson"),
    ]))
    catalog_dir.write("good/ok.json", item("ok"))
    catalog_dir.write_text("good/bad-json.json", "{nope")  # invalid_json
    catalog_dir.write_text("good/string.json", '"just a string"')  # not_stac
    no_props = item("no-props")
    del no_props["properties"]
    catalog_dir.write("good/no-props.json", no_props)  # invalid_item
    catalog_dir.write("good/bad-time.json", item("bad-time", datetime="yesterday"))  # invalid_item
    catalog_dir.write("good/dup.json", item("ok"))  # duplicate
    catalog_dir.write("good/big.json", item("big", properties={"pad": "x" * 5000}))  # too_large
    catalog_dir.write_text("good/lines.ndjson", json.dumps(item("line-1")) + "\n{broken line\n"
                           + json.dumps(item("line-2")) + "\n")  # one invalid_json
    (catalog_dir.root.parent / "outside").mkdir(exist_ok=True)
    (catalog_dir.root.parent / "outside" / "catalog.json").write_text(json.dumps(catalog("outside")))
    return {"unreadable": 2, "invalid_json": 3, "not_stac": 2, "missing_id": 1, "out_of_scope": 2, "limit": 1,
            "duplicate": 2, "invalid_item": 2, "too_large": 1}


def test_skipped_documents_are_counted_by_reason(catalog_dir: CatalogDir) -> None:
    expected = dict.fromkeys(SKIP_REASONS, 0) | write_skips(catalog_dir)
    _, report = load_catalogs([str(catalog_dir.path("catalog.json"))],
                              LoadOptions(max_depth=2, max_document_bytes=4000, progress=False))
    assert report.skipped_by_reason == expected
    assert report.skipped == sum(expected.values())
    env = {"STAC_STATIC_MAX_DEPTH": "2", "STAC_STATIC_MAX_DOCUMENT_BYTES": "4000"}
    with run_server([str(catalog_dir.path("catalog.json"))], env=env) as base, httpx.Client(base_url=base) as client:
        samples = scrape(client.get)
        ready = client.get("/_mgmt/ready").json()
    assert ready["load"]["skipped_by_reason"] == expected
    assert {dict(k)["reason"]: v for k, v in series(samples, "stac_static_index_skipped_documents").items()} == expected
    assert value(samples, "stac_static_index_unread_structures") == ready["load"]["structure_skipped"] > 0


def test_remote_documents_skipped_as_unreadable_or_too_large(tmp_path: Path) -> None:
    folder = CatalogDir(tmp_path / "remote")
    folder.write("collection.json", collection("c", [link("item", "./a.json"), link("item", "./big.json"),
                                                    link("item", "./gone.json")]))
    folder.write("a.json", item("a"))
    folder.write("big.json", item("big", properties={"pad": "x" * 5000}))
    for backend in BACKENDS:
        name = getattr(backend, "values", [backend])[0]
        if name == "curl" and sources.CurlPool is None:
            continue
        with counting_folder(folder.root) as (base, _):
            options = LoadOptions(max_document_bytes=4000, progress=False)
            if name == "urllib3":
                with pytest.MonkeyPatch.context() as patch:
                    patch.setattr(sources, "CurlPool", None)
                    _, report = load_catalogs([f"{base}/collection.json"], options)
            else:
                _, report = load_catalogs([f"{base}/collection.json"], options)
        assert report.skipped_by_reason["too_large"] == 1, (name, report.skips)
        assert report.skipped_by_reason["unreadable"] == 1, (name, report.skips)


# -- remote fetches --------------------------------------------------------------------------------


def remote(source: str = "http") -> dict[str, float]:
    return {kind: REGISTRY.get_sample_value(f"stac_static_remote_{kind}_total", {"source": source}) or 0.0
            for kind in ("requests", "retries", "errors", "not_modified")}


@pytest.mark.parametrize("backend", BACKENDS)
def test_remote_fetches_retries_errors_and_304s_are_counted(backend: str) -> None:
    routes = {"/a.json": failing(503, 2, ok()), "/b.json": ok(), "/c.json": validated(b"[1]"),
              "/gone.json": lambda h: h.answer(404, b"no"), "/down.json": failing(503, 99)}
    cache = sources.RemoteCache()
    before = remote()
    with server(routes) as (base, handler):
        with fetcher(backend, retries=2, remote_cache=cache) as f:
            for path in ("/a.json", "/b.json", "/c.json", "/c.json", "/gone.json", "/down.json"):
                with contextlib.suppress(sources.FetchError):
                    f.fetch(base + path)
    after = remote()
    counted = {kind: after[kind] - before[kind] for kind in after}
    assert counted == {
        "requests": sum(handler.hits.values()),  # what the server saw: 3 + 1 + 2 + 1 + 3
        "retries": 2 + 2,  # a.json's two 503s, down.json's
        "errors": 2,  # gone.json, down.json
        "not_modified": 1,  # c.json the second time
    }
    assert counted["requests"] == 10


# -- real servers: reloads, a reload's child process, workers ---------------------------------------


@contextlib.contextmanager
def counting_folder(folder: Path) -> Iterator[tuple[str, collections.Counter[int]]]:
    """``folder`` over HTTP (If-Modified-Since answered with 304); how many answers of each status."""
    statuses: collections.Counter[int] = collections.Counter()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def send_response(self, code: int, message: str | None = None) -> None:
            statuses[code] += 1
            super().send_response(code, message)

        def log_message(self, *args: Any) -> None:
            pass

    httpd = http_server(functools.partial(Handler, directory=str(folder)))
    with in_thread(httpd) as url:
        yield url, statuses


def reload(base: str) -> httpx.Response:
    return httpx.post(base + "/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)


def test_loads_and_reloads_are_counted_with_their_remote_fetches(sample_copy: Path) -> None:
    """One process: the first load (here), a reload built in a child process (its fetches come
    back to this process's counters), a reload that fails (the old index keeps serving)."""
    with counting_folder(sample_copy) as (remote_base, statuses):
        with (run_server([f"{remote_base}/catalog.json"], env={"STAC_STATIC_ADMIN_TOKEN": TOKEN}) as base,
              httpx.Client(base_url=base) as client):
            first = scrape(client.get)
            assert value(first, "stac_static_loads_total", result="success") == 1
            assert value(first, "stac_static_remote_requests_total", source="http") == statuses.total() > 10
            assert value(first, "stac_static_remote_not_modified_total", source="http") == 0
            assert "stac_static_last_reload_success" not in {name for name, _ in first}

            assert reload(base).status_code == 200  # built in a child process: every document a 304
            second = scrape(client.get)
            assert statuses[304] > 10
            assert value(second, "stac_static_loads_total", result="success") == 2
            assert value(second, "stac_static_load_duration_seconds_count", result="success") == 2
            assert value(second, "stac_static_remote_requests_total", source="http") == statuses.total()
            assert value(second, "stac_static_remote_not_modified_total", source="http") == statuses[304]
            assert value(second, "stac_static_last_reload_success") == 1
            assert value(second, "stac_static_index_version") == 2

            (sample_copy / "catalog.json").unlink()  # the root is gone: the reload fails
            failed = reload(base)
            assert failed.status_code == 502, failed.text
            third = scrape(client.get)
            assert value(third, "stac_static_loads_total", result="failure") == 1
            assert value(third, "stac_static_load_duration_seconds_count", result="failure") == 1
            assert value(third, "stac_static_loads_total", result="success") == 2
            assert value(third, "stac_static_last_reload_success") == 0
            assert value(third, "stac_static_remote_errors_total", source="http") == 1
            assert value(third, "stac_static_remote_requests_total", source="http") == statuses.total()
            assert value(third, "stac_static_index_version") == 2  # still serving
            assert value(third, "stac_static_index_items") == value(second, "stac_static_index_items") > 0
            polled = value(first, "stac_static_http_requests_total", route="/", method="GET", status="200")
            assert polled >= 1  # run_server's readiness polls (a slow first answer is asked again)
            assert series(third, "stac_static_http_requests_total") == {
                requests_key("/_mgmt/metrics", "GET", 200): 2, requests_key("/", "GET", 200): polled,
                requests_key("/_mgmt/reload", "POST", 200): 1, requests_key("/_mgmt/reload", "POST", 502): 1}


def metric_files(pid: int) -> list[str]:
    """The multiprocess files a worker has open (its counters, histograms, live gauge)."""
    found = []  # a file may be open twice (the file and its mapping)
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if re.search(r"stac-static-api-metrics-[^/]+/\w+_\d+\.db$", target):
                found.append(target)
    return found


def requests_by_worker(pids: list[int], at_least: int) -> dict[int, float]:
    """Each worker's own request count, read from its counter file (what the scrape sums), once
    they add up to ``at_least`` (a worker counts a request just after its last byte went out)."""
    deadline = time.monotonic() + 10
    while True:
        counts = {}
        for pid in pids:
            # none yet: a worker that has counted nothing still holds its parent's files (inherited)
            paths = {p for p in metric_files(pid) if os.path.basename(p) == f"counter_{pid}.db"}
            try:
                counts[pid] = sum(v for path in paths for key, v, _, _ in MmapedDict.read_all_values_from_file(path)
                                  if json.loads(key)[1] == "stac_static_http_requests_total")
            except struct.error:  # a file being made this instant
                counts[pid] = 0
        if sum(counts.values()) >= at_least or time.monotonic() > deadline:
            return counts
        time.sleep(0.02)


def send_spread(base: str, url: str, count: int, threads: int = 8) -> None:
    """``count`` GETs of ``url`` from ``threads`` clients at once, each on new connections (so
    both workers accept some)."""
    errors = []

    def run(n: int) -> None:
        for _ in range(n):
            response = httpx.get(base + url, timeout=20, headers={"connection": "close"})
            if response.status_code != 200:
                errors.append(response.status_code)

    workers = [threading.Thread(target=run, args=(count // threads + (k < count % threads),)) for k in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert not errors


def test_workers_2_one_scrape_counts_every_request_of_every_worker_once(sample_index: Any) -> None:
    server = Server([], "--workers", "2")  # the bundled sample, once GET /_mgmt/ready answered
    try:
        pids = server.wait_workers(2)
        # the readiness polls that reached a worker: one, unless a slow one was asked again
        polled = sum(requests_by_worker(pids, 1).values())
        item_url = f"/collections/{sample_index.collection_of(0)}/items/{sample_index.ids[0]}"
        sent = 0
        while True:  # until each worker has answered some (the kernel picks who accepts)
            send_spread(server.base, item_url, 40)
            sent += 40
            by_worker = requests_by_worker(pids, sent + polled)
            assert sum(by_worker.values()) == sent + polled, f"not each request once in the workers' files: {by_worker}"
            if all(by_worker.values()):
                break
            assert sent < 2000, by_worker
        scrapes = 0

        def scraped() -> Samples:
            nonlocal scrapes
            samples = scrape(lambda path: httpx.get(server.base + path, timeout=20))
            scrapes += 1
            return samples

        def expected(items: int) -> dict[frozenset[tuple[str, str]], float]:
            return {requests_key(ITEM_ROUTE, "GET", 200): items, requests_key("/_mgmt/ready", "GET", 200): polled,
                    **({requests_key("/_mgmt/metrics", "GET", 200): scrapes - 1} if scrapes > 1 else {})}

        def check(items: int) -> Samples:
            """A scrape counting ``items`` item GETs, each once. A worker counts a request just
            after handing its last byte over: a scrape through the other one at that moment may
            not see it yet, never counts it twice."""
            deadline = time.monotonic() + 30  # generous: a loaded machine (load ~15) once took over 10 s
            while True:
                samples = scraped()
                counted = series(samples, "stac_static_http_requests_total")
                if counted == expected(items):
                    break
                assert all(counted.get(k, 0) <= v for k, v in expected(items).items()), counted
                assert time.monotonic() < deadline, (counted, expected(items))
                time.sleep(0.05)
            assert value(samples, "stac_static_http_request_duration_seconds_count",
                         operation="item", format="json") == items
            assert value(samples, "stac_static_loads_total", result="success") == 1  # the parent's, before the fork
            return samples

        for _ in range(4):  # through whichever worker accepts: the same counts
            check(sent)
        versions = series(check(sent), "stac_static_process_index_version")
        assert {int(dict(k)["pid"]): v for k, v in versions.items()} == dict.fromkeys(pids, 1.0)

        # a worker killed (its counts stay, once) and replaced (counting from zero, anew). Killed
        # only once its files hold every request so far: the scrape just answered is counted just
        # after its last byte went out, and a worker killed in between never counts it.
        by_worker = requests_by_worker(pids, sent + polled + scrapes)
        assert sum(by_worker.values()) == sent + polled + scrapes, by_worker
        os.kill(pids[0], signal.SIGKILL)
        replaced = server.wait_workers(2, gone=pids[0])
        check(sent)
        send_spread(server.base, item_url, 30)
        check(sent + 30)
        deadline = time.monotonic() + 20
        while True:  # the dead one's live gauge is gone; the replacement's comes when it has started
            versions = series(scraped(), "stac_static_process_index_version")
            if sorted(int(dict(k)["pid"]) for k in versions) == sorted(replaced) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert sorted(int(dict(k)["pid"]) for k in versions) == sorted(replaced)
        check(sent + 30)

        # a reload: built once by the parent and counted there, mapped by each worker
        os.kill(server.proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 60
        while True:
            samples = scraped()
            versions = series(samples, "stac_static_process_index_version")
            if sorted(versions.values()) == [2.0, 2.0] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert {int(dict(k)["pid"]): v for k, v in versions.items()} == dict.fromkeys(replaced, 2.0)
        assert value(samples, "stac_static_loads_total", result="success") == 2
        assert value(samples, "stac_static_load_duration_seconds_count", result="success") == 2
        assert value(samples, "stac_static_index_version") == 2
    finally:
        server.close()
