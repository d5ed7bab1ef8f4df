"""Reading remote documents, through libcurl (pycurl) and through the urllib3 fallback:
retries, timeouts, the size limit, conditional requests, redirects, proxies, order. Every
server here is on 127.0.0.1."""

from __future__ import annotations

import contextlib
import http.server
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from server.catalog import sources
from server.catalog.loader import LoadOptions, load_catalogs
from server.catalog.sources import Fetcher, FetchError, RemoteCache

from .helpers import free_port, http_server, in_thread, serve_folder

HAS_CURL = sources.CurlPool is not None
NEEDS_CURL = pytest.mark.skipif(not HAS_CURL, reason="pycurl is not installed")
# curl: libcurl in this process; worker: libcurl in a child process (fetch_worker.py), used
# for large batches and here for every fetch; urllib3: the fallback without pycurl
BACKENDS = [pytest.param("curl", marks=NEEDS_CURL), pytest.param("worker", marks=NEEDS_CURL), "urllib3"]

Route = Callable[["Handler"], None]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    routes: dict[str, Route] = {}
    hits: dict[str, int] = {}
    seen_headers: list[dict[str, str]] = []
    in_flight = 0
    most_in_flight = 0
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        cls = type(self)
        with cls.lock:
            cls.hits[self.path] = cls.hits.get(self.path, 0) + 1
            cls.seen_headers.append({k.lower(): v for k, v in self.headers.items()})
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        try:
            route = cls.routes.get(self.path)
            if route is None:
                self.answer(404, b"not found")
            else:
                route(self)
        finally:
            with cls.lock:
                cls.in_flight -= 1

    def answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def hit_count(self) -> int:
        return type(self).hits[self.path]

    def log_message(self, *args: Any) -> None:
        pass


@contextlib.contextmanager
def server(routes: dict[str, Route], tls: Any = None) -> Iterator[tuple[str, type[Handler]]]:
    handler = type("TestHandler", (Handler,), {
        "routes": routes, "hits": {}, "seen_headers": [], "in_flight": 0, "most_in_flight": 0,
        "lock": threading.Lock(),
    })
    httpd = http_server(handler)
    httpd.daemon_threads = True
    if tls is not None:  # an ssl.SSLContext
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    with in_thread(httpd, "https" if tls else "http") as url:
        yield url, handler


def fetcher(backend: str, **options: Any) -> Fetcher:
    options.setdefault("max_bytes", 1_000_000)
    if backend == "worker":
        options["worker_min_batch"] = 1
    elif backend == "curl":
        options["worker_min_batch"] = 10**9
    return Fetcher(use_curl=backend != "urllib3", **options)


def fetch(backend: str, url: str, **options: Any) -> bytes:
    with fetcher(backend, **options) as f:
        return f.fetch(url)


def ok(body: bytes = b'{"ok": true}') -> Route:
    return lambda h: h.answer(200, body)


def failing(status: int, times: int, then: Route | None = None) -> Route:
    """`status` for the first `times` requests, then `then` (or `status` forever)."""
    def route(h: Handler) -> None:
        if h.hit_count() <= times or then is None:
            h.answer(status, b"busy", {"Retry-After": "0"})
        else:
            then(h)
    return route


def chunked(chunk: bytes, count: int, pause: float = 0.0) -> Route:
    """A 200 sent as ``count`` chunks of ``chunk`` (each flushed, then ``pause`` seconds, when
    given), then the end chunk; a client hanging up mid-body ends it quietly."""
    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        try:
            for _ in range(count):
                h.wfile.write(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                if pause:
                    h.wfile.flush()
                    time.sleep(pause)
            h.wfile.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client hung up, as it should
    return route


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("status", [503, 429, 500])
def test_retried_on_5xx_and_429_then_served(backend: str, status: int) -> None:
    with server({"/doc.json": failing(status, 2, ok())}) as (base, handler):
        assert fetch(backend, f"{base}/doc.json", retries=2) == b'{"ok": true}'
    assert handler.hits["/doc.json"] == 3


@pytest.mark.parametrize("backend", BACKENDS)
def test_gives_up_after_the_retries(backend: str) -> None:
    with server({"/doc.json": failing(503, 99)}) as (base, handler):
        with pytest.raises(FetchError, match="HTTP 503"):
            fetch(backend, f"{base}/doc.json", retries=1)
    assert handler.hits["/doc.json"] == 2


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("status", [404, 403, 400, 304])
def test_other_statuses_are_not_retried(backend: str, status: int) -> None:
    with server({"/doc.json": failing(status, 99)}) as (base, handler):
        with pytest.raises(FetchError, match=f"HTTP {status}"):
            fetch(backend, f"{base}/doc.json", retries=3)
    assert handler.hits["/doc.json"] == 1


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_redirect_is_not_followed(backend: str) -> None:
    """Following it could leave the catalog's scope: a 3xx is an error, its target never read."""
    with server({
        "/doc.json": lambda h: h.answer(302, b"", {"Location": "/elsewhere.json"}),
        "/elsewhere.json": ok(),
    }) as (base, handler):
        with pytest.raises(FetchError, match="HTTP 302"):
            fetch(backend, f"{base}/doc.json")
    assert "/elsewhere.json" not in handler.hits


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_slow_answer_times_out_and_is_retried(backend: str) -> None:
    def slow_first(h: Handler) -> None:
        if h.hit_count() == 1:
            time.sleep(3)
        h.answer(200, b"[1]")

    with server({"/doc.json": slow_first, "/never.json": lambda h: time.sleep(4)}) as (base, handler):
        assert fetch(backend, f"{base}/doc.json", timeout=1.0, retries=1) == b"[1]"
        with pytest.raises(FetchError) as caught:
            fetch(backend, f"{base}/never.json", timeout=1.0, retries=0)
    assert handler.hits["/doc.json"] == 2
    reason = str(caught.value).lower()
    assert "timed out" in reason or "timeout" in reason or "too slow" in reason, reason


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_refused_connection_is_retried_then_reported(backend: str) -> None:
    port = free_port()  # a port nobody listens on (nor will: another xdist worker takes none of these)
    with pytest.raises(FetchError):
        fetch(backend, f"http://127.0.0.1:{port}/doc.json", retries=1, timeout=2.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_size_limit_declared_or_streamed(backend: str) -> None:
    with server({
        "/declared.json": lambda h: h.answer(200, b"x" * 5000),
        "/chunked.json": chunked(b"x" * 0x4000, 100),
        "/fits.json": lambda h: h.answer(200, b"x" * 4000),
    }) as (base, handler):
        with pytest.raises(FetchError, match="byte limit"):
            fetch(backend, f"{base}/declared.json", max_bytes=4000)
        with pytest.raises(FetchError, match="byte limit"):
            fetch(backend, f"{base}/chunked.json", max_bytes=100_000)
        assert fetch(backend, f"{base}/fits.json", max_bytes=4000) == b"x" * 4000
    assert handler.hits["/chunked.json"] == 1  # not retried


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_root_has_its_own_larger_limit(backend: str) -> None:
    with server({"/bulk.json": lambda h: h.answer(200, b"x" * 5000)}) as (base, _):
        url = f"{base}/bulk.json"
        assert fetch(backend, url, max_bytes=1000, roots=(url,), root_max_bytes=10_000) == b"x" * 5000


def trickled(size: int, pause: float, sent: list[int]) -> Route:
    """A 200 of ``size`` bytes (Content-Length), a byte every ``pause`` seconds; ``sent`` gets
    how many went out before the client hung up (or all)."""
    def route(h: Handler) -> None:
        h.send_response(200)
        h.send_header("Content-Length", str(size))
        h.end_headers()
        n = 0
        try:
            for n in range(size):  # noqa: B007 (n: how many went out)
                h.wfile.write(b"x")
                h.wfile.flush()
                time.sleep(pause)
            n = size
        except OSError:
            pass  # the client hung up, as it should
        sent.append(n)
    return route


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("framing", ["chunked", "content-length"])
def test_a_trickling_body_hits_the_overall_deadline(backend: str, framing: str) -> None:
    # a byte every 0.05 s: 10x inside the read timeout, even on a busy CI
    sent: list[int] = []
    route = chunked(b"x", 400, pause=0.05) if framing == "chunked" else trickled(400, 0.05, sent)
    with server({"/doc.json": route}) as (base, handler):
        with pytest.raises(FetchError, match="not complete after"):
            fetch(backend, f"{base}/doc.json", timeout=0.5, retries=2)
    assert handler.hits["/doc.json"] == 1
    waited = time.monotonic()
    while framing != "chunked" and not sent and time.monotonic() - waited < 30:
        time.sleep(0.05)  # (the handler finds the client gone at its next byte)
    # given up while it trickled (urllib3 read on to 64 KiB, then drained the rest: the whole body, 20 s)
    assert framing == "chunked" or (sent and sent[0] < 400), sent


def validated(body: bytes, etag: str | None = '"v1"', modified: str | None = None) -> Route:
    """200 with validators; 304 when the request carries a matching one."""
    def route(h: Handler) -> None:
        if etag and h.headers.get("If-None-Match") == etag:
            h.answer(304)
        elif modified and h.headers.get("If-Modified-Since") == modified and not h.headers.get("If-None-Match"):
            h.answer(304)
        else:
            headers = {}
            if etag:
                headers["ETag"] = etag
            if modified:
                headers["Last-Modified"] = modified
            h.answer(200, body, headers)
    return route


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("validator", ["etag", "last-modified"])
def test_a_304_reuses_the_cached_body(backend: str, validator: str) -> None:
    modified = "Wed, 21 Oct 2015 07:28:00 GMT"
    route = validated(b"[42]", etag='"v1"' if validator == "etag" else None,
                      modified=modified if validator == "last-modified" else None)
    cache = RemoteCache()
    with server({"/doc.json": route, "/plain.json": ok(b"[0]")}) as (base, handler):
        for _ in range(3):
            assert fetch(backend, f"{base}/doc.json", remote_cache=cache) == b"[42]"
            assert fetch(backend, f"{base}/plain.json", remote_cache=cache) == b"[0]"
    assert cache.revalidated == 2
    sent = [h for h in handler.seen_headers if ("if-none-match" in h or "if-modified-since" in h)]
    assert len(sent) == 2  # only the documents that had validators were asked "changed since?"
    if validator == "etag":
        assert all(h["if-none-match"] == '"v1"' for h in sent)
    else:
        assert all(h["if-modified-since"] == modified for h in sent)


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_304_for_an_evicted_entry_asks_again_for_the_whole_document(backend: str) -> None:
    class Forgetful(RemoteCache):
        def cached_body(self, url: str) -> bytes | None:
            return None  # evicted between the question and the answer

    cache = Forgetful()
    with server({"/doc.json": validated(b"[7]")}) as (base, handler):
        assert fetch(backend, f"{base}/doc.json", remote_cache=cache) == b"[7]"
        assert fetch(backend, f"{base}/doc.json", remote_cache=cache, retries=1) == b"[7]"
    assert handler.hits["/doc.json"] == 3
    assert "if-none-match" not in handler.seen_headers[-1]


@pytest.mark.parametrize("backend", BACKENDS)
def test_proxies_from_the_environment_are_not_used(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    with server({}) as (proxy, proxy_handler), server({"/doc.json": ok()}) as (base, handler):
        for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
            monkeypatch.setenv(name, proxy)
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        assert fetch(backend, f"{base}/doc.json") == b'{"ok": true}'
    assert proxy_handler.hits == {}
    assert handler.hits == {"/doc.json": 1}


@pytest.mark.parametrize("backend", BACKENDS)
def test_spaces_and_non_ascii_in_urls_are_percent_encoded(backend: str) -> None:
    with server({"/a%20b/%C3%A9t%C3%A9.json": ok(b"[1]")}) as (base, _):
        assert fetch(backend, f"{base}/a b/été.json") == b"[1]"


@pytest.mark.skipif(not HAS_CURL, reason="pycurl is not installed")
def test_many_at_once_in_order_within_the_concurrency(tmp_path: Path) -> None:
    def slowish(h: Handler) -> None:
        if h.path.endswith("/3.json") and h.hit_count() == 1:
            h.answer(503)
            return
        time.sleep(0.01)
        h.answer(200, h.path.encode())

    local = tmp_path / "local.json"
    local.write_text("[0]")
    routes = {f"/{i}.json": slowish for i in range(100)}
    with server(routes) as (base, handler):
        locations = [f"{base}/{i}.json" for i in range(100)]
        locations[50:50] = [str(local), str(tmp_path / "missing.json")]
        locations.append(f"{base}/none.json")
        with Fetcher(max_bytes=1000, concurrency=4, use_curl=True) as f:
            results = list(f.fetch_many(locations))
            retried = handler.hits["/3.json"]
            again = list(f.fetch_many(locations[:10]))  # the session is reused
    assert [loc for loc, _, _ in results] == locations
    for loc, body, error in results:
        if loc == str(local):
            assert body == b"[0]"
        elif loc.endswith(("missing.json", "none.json")):
            assert body is None and error
        else:
            assert body == loc[len(base):].encode(), (loc, error)
    assert [r[1] for r in again] == [r[1] for r in results[:10]]
    assert 1 < handler.most_in_flight <= 4
    assert retried == 2  # a 503, then the document


@pytest.mark.skipif(not HAS_CURL, reason="pycurl is not installed")
def test_a_batch_left_half_read_frees_its_session() -> None:
    with server({f"/{i}.json": ok() for i in range(20)}) as (base, _):
        with Fetcher(max_bytes=1000, concurrency=4, use_curl=True) as f:
            batch = f.fetch_many([f"{base}/{i}.json" for i in range(20)])
            assert next(batch)[1] == b'{"ok": true}'
            batch.close()
            assert [r[1] for r in f.fetch_many([f"{base}/1.json"])] == [b'{"ok": true}']


@NEEDS_CURL
def test_the_three_fetch_paths_load_the_same(monkeypatch: pytest.MonkeyPatch) -> None:
    """libcurl here, libcurl in a child process (every batch, here), and urllib3 without pycurl."""
    from server.catalog import curl_pool
    from server.sample import SAMPLE_DIR

    def keys(index: Any) -> list[tuple[Any, str]]:
        return [(index.collection_of(pos), index.ids[pos]) for pos in range(index.size)]

    loaded = []
    with serve_folder(SAMPLE_DIR) as base:
        loaded.append(load_catalogs([f"{base}/catalog.json"], LoadOptions(progress=False)))
        monkeypatch.setattr(curl_pool, "WORKER_MIN_BATCH", 1)
        monkeypatch.setattr(curl_pool, "_spare_core", lambda: True)
        loaded.append(load_catalogs([f"{base}/catalog.json"], LoadOptions(progress=False)))
        monkeypatch.setattr(sources, "CurlPool", None)
        with Fetcher(max_bytes=1000) as f:
            assert not f.batches
        loaded.append(load_catalogs([f"{base}/catalog.json"], LoadOptions(progress=False)))
    (first, _), *others = loaded
    assert first.size > 0
    for index, report in loaded:
        assert report.skipped == 0, report.skips
        assert keys(index) == keys(first)  # the same order too
        assert sorted(index.collections) == sorted(first.collections)


@NEEDS_CURL
def test_a_fetch_process_only_with_a_core_to_spare(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from server.catalog import curl_pool

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    for load, spare in ((0.5, True), (1.6, True), (1.8, False), (3.0, False)):
        monkeypatch.setattr(os, "getloadavg", lambda load=load: (load, load, load))
        assert curl_pool._spare_core() is spare
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert curl_pool._spare_core() is False


def running_fetch_processes() -> list[Any]:
    import gc

    from server.catalog import fetch_worker

    return [obj for obj in gc.get_objects() if type(obj).__name__ == "Popen"
            and fetch_worker.__name__ in " ".join(map(str, obj.args)) and obj.poll() is None]


@NEEDS_CURL
def test_a_fetch_process_that_cannot_start_or_dies_leaves_the_batch_to_this_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import sys

    with server({f"/{i}.json": ok(b"[%d]" % i) for i in range(30)}) as (base, _):
        urls = [f"{base}/{i}.json" for i in range(30)]
        expected = [b"[%d]" % i for i in range(30)]
        with Fetcher(max_bytes=1000, worker_min_batch=1) as f:
            with monkeypatch.context() as patch:
                patch.setattr(sys, "executable", "/nonexistent/python")
                assert [body for _, body, _ in f.fetch_many(urls)] == expected
            batch = f.fetch_many(urls)
            results = [next(batch) for _ in range(10)]
            for child in running_fetch_processes():  # it dies mid-batch
                child.kill()
            results.extend(batch)
    assert [body for _, body, _ in results] == expected


@NEEDS_CURL
def test_an_abandoned_batch_ends_its_fetch_process() -> None:
    with server({f"/{i}.json": ok() for i in range(50)}) as (base, _):
        with Fetcher(max_bytes=1000, worker_min_batch=1) as f:
            batch = f.fetch_many([f"{base}/{i}.json" for i in range(50)])
            assert next(batch)[1] == b'{"ok": true}'
            children = running_fetch_processes()
            assert children
            batch.close()
            assert all(child.returncode is not None for child in children)



@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
@pytest.mark.parametrize("backend", BACKENDS)
def test_https_trusts_what_python_trusts(backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """libcurl verifies against the CA certificates Python's ssl module uses (SSL_CERT_FILE
    included), not a path built into the wheel: a self-signed server is refused until its
    certificate is the trusted one."""
    import ssl
    import subprocess

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with server({"/doc.json": ok()}, tls=context) as (base, _):
        url = f"{base}/doc.json"
        with pytest.raises(FetchError, match="(?i)certificate"):
            fetch(backend, url, retries=0)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert fetch(backend, url, retries=0) == b'{"ok": true}'
