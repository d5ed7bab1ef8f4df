"""Shared test helpers: small ad-hoc STAC catalogs on disk, the real server in a subprocess,
and paging through search and collection results to the end.

Kept out of conftest.py so test modules can import them (``from tests.helpers import ...``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from bench.serverproc import free_port  # the one way to pick a port, xdist's split included (there)
from server.query.parse import parse_search

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "catalogs"  # real public catalogs beside the repository (DESIGN.md)
STAC_VERSION = "1.0.0"
SERVER_START_TIMEOUT = 30.0


# -- documents ---------------------------------------------------------------------------------


def link(rel: str, href: str, media_type: str | None = None) -> dict[str, Any]:
    out = {"rel": rel, "href": href}
    if media_type:
        out["type"] = media_type
    return out


def catalog(cid: str, links: list[dict[str, Any]] = (), **extra: Any) -> dict[str, Any]:
    return {
        "type": "Catalog",
        "stac_version": STAC_VERSION,
        "id": cid,
        "description": f"catalog {cid}",
        "links": list(links),
        **extra,
    }


def collection(cid: str, links: list[dict[str, Any]] = (), **extra: Any) -> dict[str, Any]:
    return {
        "type": "Collection",
        "stac_version": STAC_VERSION,
        "id": cid,
        "description": f"collection {cid}",
        "license": "CC0-1.0",
        "extent": {
            "spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]},
            "temporal": {"interval": [["2000-01-01T00:00:00Z", None]]},
        },
        "links": list(links),
        **extra,
    }


def box_geometry(bbox: tuple[float, float, float, float]) -> dict[str, Any]:
    x0, y0, x1, y1 = bbox
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


_UNSET: Any = object()


def item(
    iid: str,
    bbox: tuple[float, float, float, float] | None = (0.0, 0.0, 1.0, 1.0),
    datetime: str | None = "2020-01-01T00:00:00Z",
    collection: str | None = None,
    geometry: Any = _UNSET,
    properties: dict[str, Any] | None = None,
    links: list[dict[str, Any]] = (),
    assets: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if geometry is _UNSET:
        geometry = None if bbox is None else box_geometry(bbox)
    doc: dict[str, Any] = {
        "type": "Feature",
        "stac_version": STAC_VERSION,
        "id": iid,
        "geometry": geometry,
        "properties": {"datetime": datetime, **(properties or {})},
        "links": list(links),
        "assets": assets if assets is not None else {},
    }
    if bbox is not None:
        doc["bbox"] = list(bbox)
    if collection is not None:
        doc["collection"] = collection
    return doc


class CatalogDir:
    """A folder to lay out a small static catalog in: write documents at relative paths."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def path(self, rel: str) -> Path:
        return self.root / rel

    def write(self, rel: str, doc: Any) -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(doc, indent=1))
        return path

    def write_text(self, rel: str, text: str) -> Path:
        path = self.path(rel)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


# -- the real server ---------------------------------------------------------------------------


def server_env() -> dict[str, str]:
    # Settings come from the command line only, not from STAC_STATIC_* variables around us.
    env = {k: v for k, v in os.environ.items() if not k.startswith("STAC_STATIC_")}
    # The checkout, not whatever else is on the path, is what the subprocess must run.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_cli(args: list[str], timeout: float = 60.0, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m server ARGS` to completion (for commands that are expected to exit), with
    `env` (STAC_STATIC_* settings) added to its environment."""
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO,
        env={**server_env(), **(env or {})},
    )


@contextlib.contextmanager
def run_server(roots: list[str] = (), extra_args: list[str] = (), env: dict[str, str] | None = None,
               log_path: Path | None = None, preexec: Callable[[], None] | None = None) -> Iterator[str]:
    """The real CLI (`python -m server serve ROOT... --host 127.0.0.1 --port P`) in a subprocess,
    with `env` (STAC_STATIC_* settings) added to its environment; its output goes to
    ``log_path`` when given (for a test that reads it); ``preexec``: run in the child before it
    starts (a resource limit).

    Yields its base URL once GET / answers 200; fails with the server's output if it exits
    or is not ready within SERVER_START_TIMEOUT seconds. Always terminates it.
    """
    port = free_port()
    with open(log_path, "w+") if log_path is not None else tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "server", "serve", *roots, "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning", *extra_args],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**server_env(), **(env or {})},
            preexec_fn=preexec,
        )
        base = f"http://127.0.0.1:{port}"

        def output() -> str:
            log.flush()
            log.seek(0)
            return log.read()

        try:
            deadline = time.monotonic() + SERVER_START_TIMEOUT
            with httpx.Client(timeout=2.0) as client:
                while True:
                    if proc.poll() is not None:
                        raise RuntimeError(f"server exited with {proc.returncode} before it was ready:\n{output()}")
                    try:
                        if client.get(base + "/").status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"server not ready after {SERVER_START_TIMEOUT} s:\n{output()}")
                    time.sleep(0.1)
            yield base
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=10)


# -- searching through every page ----------------------------------------------------------------

GEOJSON = "application/geo+json"


def get_params(query: dict[str, Any]) -> dict[str, str]:
    """A POST /search body as GET /search query parameters."""
    out: dict[str, str] = {}
    for name, value in query.items():
        if name in ("bbox", "ids", "collections"):
            out[name] = ",".join(str(v) for v in value)
        elif name == "intersects":
            out[name] = json.dumps(value)
        else:
            out[name] = str(value)
    return out


def feature_key(feature: dict[str, Any]) -> tuple[str | None, str]:
    return (feature.get("collection"), feature["id"])


def _check_page(response: Any, limit: int | None) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].split(";")[0] == GEOJSON
    page = response.json()
    assert page["type"] == "FeatureCollection"
    assert page["numberReturned"] == len(page["features"])
    if limit is not None:
        assert len(page["features"]) <= limit
    return page


def next_link(page: dict[str, Any]) -> dict[str, Any] | None:
    found = [ln for ln in page["links"] if ln["rel"] == "next"]
    assert len(found) <= 1, found
    return found[0] if found else None


def collect_pages(client: Any, method: str, url: str, query: dict[str, Any], max_pages: int = 10_000) -> list[dict[str, Any]]:
    """Follow `next` links from a first GET (query as parameters) or POST (query as body)."""
    limit = query.get("limit")
    if method == "GET":
        response = client.get(url, params=get_params(query))
    else:
        response = client.post(url, json=query)
    pages = [_check_page(response, limit)]
    while (nxt := next_link(pages[-1])) is not None:
        assert len(pages) < max_pages, "paging does not end"
        assert nxt.get("method", "GET") == method, nxt
        assert nxt["type"] == GEOJSON
        if method == "GET":
            response = client.get(nxt["href"])
        else:
            body = {**query, **nxt["body"]} if nxt.get("merge") else nxt["body"]
            response = client.post(nxt["href"], json=body)
        pages.append(_check_page(response, limit))
    return pages


def search_all(
    client: Any, method: str, url: str, query: dict[str, Any]
) -> tuple[list[tuple[str | None, str]], list[dict[str, Any]]]:
    """Every feature key over all pages (in order, repeats kept), and the pages."""
    pages = collect_pages(client, method, url, query)
    keys = [feature_key(f) for page in pages for f in page["features"]]
    return keys, pages


def check_item_search(
    client: Any, method: str, url: str, params: dict[str, Any], expected: list[Any], label: str
) -> list[dict[str, Any]]:
    """Page through a search to the end; the keys, in order, must be the oracle's."""
    keys, pages = search_all(client, method, url, params)
    assert len(keys) == len(set(keys)), f"{label}: an item repeats across pages"
    if keys != expected:
        got, want = set(keys), set(expected)
        raise AssertionError(
            f"{label}:\n server-only {sorted(got - want, key=str)}\n oracle-only {sorted(want - got, key=str)}"
            + ("\n same set, different order:\n server " + str(keys) + "\n oracle " + str(expected) if got == want else "")
        )
    limit = int(params.get("limit", 10))
    for page in pages:
        assert page["numberMatched"] == len(expected), label
    for page in pages[:-1]:
        assert page["numberReturned"] == limit, f"{label}: a page before the last is not full"
    return pages


PAGING_RELS = ("next", "prev", "first")


def link_of(page: dict[str, Any], rel: str) -> dict[str, Any] | None:
    found = [ln for ln in page["links"] if ln["rel"] == rel]
    assert len(found) <= 1, found
    return found[0] if found else None


def follow(client: Any, method: str, query: dict[str, Any], link: dict[str, Any]) -> dict[str, Any]:
    """The page a paging link leads to, from a search first sent as ``method`` with ``query``."""
    assert link.get("method", "GET") == method, link
    if method == "GET":
        response = client.get(link["href"])
    else:
        assert link["merge"] is True, link
        response = client.post(link["href"], json={**query, **link["body"]})
    assert response.status_code == 200, response.text
    return response.json()


def check_paging_back(
    client: Any, method: str, query: dict[str, Any], pages: list[dict[str, Any]], label: str, what: str = "features"
) -> None:
    """``pages``: a search followed by next links from its first page to its last. prev and
    first links are on every page from the second on, never on the first; prev links from
    the last page lead back to the first, each page the same as the forward page of the same
    number (the same records in the same order, numberMatched, the same next, prev and first
    links); first leads to the first page."""

    def records(page: dict[str, Any]) -> list[tuple[Any, str]]:
        return [(d.get("collection"), d["id"]) for d in page[what]]

    def paging(page: dict[str, Any]) -> dict[str, Any]:
        return {rel: link_of(page, rel) for rel in PAGING_RELS}

    for n, page in enumerate(pages):
        assert (link_of(page, "prev") is not None) == (n > 0), f"{label}: prev link on page {n + 1}"
        assert (link_of(page, "first") is not None) == (n > 0), f"{label}: first link on page {n + 1}"
    page, n = pages[-1], len(pages) - 1
    while (prev := link_of(page, "prev")) is not None:
        assert n > 0, f"{label}: a prev link before the first page"
        page, n = follow(client, method, query, prev), n - 1
        want = pages[n]
        assert records(page) == records(want), (
            f"{label}: back on page {n + 1} of {len(pages)}\n back    {records(page)}\n forward {records(want)}"
        )
        assert page["numberMatched"] == want["numberMatched"], label
        assert paging(page) == paging(want), f"{label}: page {n + 1}'s links, back and forward"
    assert n == 0, f"{label}: prev links end on page {n + 1}"
    if len(pages) > 1:
        first = follow(client, method, query, link_of(pages[-1], "first"))  # type: ignore[arg-type]
        assert records(first) == records(pages[0]) and paging(first) == paging(pages[0]), label


def collection_pages(client: Any, params: dict[str, Any], label: str) -> list[dict[str, Any]]:
    """GET /collections with params, following next links to the end."""
    response = client.get("/collections", params=params)
    pages = []
    while True:
        assert response.status_code == 200, f"{label}: {response.status_code} {response.text}"
        page = response.json()
        assert page["numberReturned"] == len(page["collections"]), label
        pages.append(page)
        nxt = [ln for ln in page["links"] if ln["rel"] == "next"]
        if not nxt:
            return pages
        assert len(pages) < 1000, f"{label}: paging does not end"
        response = client.get(nxt[0]["href"])


# -- a static file server, for catalogs given by URL ---------------------------------------------------


@contextlib.contextmanager
def serve_folder(folder: Path, fail: dict[str, int] | None = None) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1; yields the base URL (no trailing slash).

    ``fail`` maps URL paths to a status code answered instead of the file (e.g. 500); the
    caller's dict itself, so entries it adds while serving apply (an empty one too).
    """
    import functools
    import http.server

    fail = fail if fail is not None else {}
    requests: list[str] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            requests.append(self.path)
            if self.path in fail:
                self.send_error(fail[self.path])
                return
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    server = http_server(functools.partial(Handler, directory=str(folder)))
    with in_thread(server) as url:
        yield url


def http_server(handler: Any) -> Any:
    """A threading http.server on 127.0.0.1 (any free port) for ``handler``, with a listen
    backlog the loader's transfers fit in: http.server's default of 5 drops the SYNs of the
    32 connections a load opens at once, each retried by the kernel a second later (a load of
    the 68-item sample over HTTP took 2.1-2.8 s, 0.15 s with this)."""
    import http.server

    class Server(http.server.ThreadingHTTPServer):
        request_queue_size = 1024

    return Server(("127.0.0.1", 0), handler)


def once_counted(get: Callable[[], list[Any]], count: int, timeout: float) -> list[Any]:
    """``get()`` once it gives ``count`` things (or, past ``timeout``, as it then is): for what a
    server does just after it answers (forks a second worker, unlinks a replaced snapshot), which
    a test checking right after the answer could find not done yet (the race CI failed on in
    test_metrics)."""
    deadline = time.monotonic() + timeout
    while True:
        found = get()
        if len(found) == count or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


@contextlib.contextmanager
def in_thread(httpd: Any, scheme: str = "http") -> Iterator[str]:
    """Run an http.server server (bound to 127.0.0.1) in a daemon thread; yields its base URL,
    then shuts it down and closes its socket. Make it with http_server (its listen backlog)."""
    import threading

    # shutdown() below waits for serve_forever to see it, which it looks for between selects of
    # poll_interval seconds (0.5 by default: up to half a second at the end of every test that
    # served something, 0.25 on average)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=10)


class PrefixProxy:
    """A reverse proxy on 127.0.0.1 that publishes ``backend`` under the path ``prefix`` (GET
    only): it strips the prefix from each request's path and, with ``forward_prefix``, says it
    in X-Forwarded-Prefix (nginx's ``location /stac/ { proxy_pass http://api/; }`` with the
    header set, or without it, a server given ``--base-url`` with the path). ``backend`` may be
    set after the proxy has its address (a server started with ``--base-url {url}``)."""

    def __init__(self, prefix: str, forward_prefix: bool) -> None:
        self.prefix, self.forward_prefix = prefix.rstrip("/"), forward_prefix
        self.backend = ""
        self.url = ""  # the proxy's public URL, prefix included, without a trailing "/"


@contextlib.contextmanager
def prefix_proxy(prefix: str, forward_prefix: bool = True) -> Iterator[PrefixProxy]:
    import http.server

    proxy = PrefixProxy(prefix, forward_prefix)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            if not self.path.startswith(proxy.prefix + "/"):
                self.send_error(404)
                return
            headers = {"accept": self.headers.get("accept", "*/*")}
            if proxy.forward_prefix:  # and the host the client reached, as nginx's proxy_set_header Host $host
                headers.update({"x-forwarded-prefix": proxy.prefix, "host": self.headers["host"]})
            r = httpx.get(proxy.backend + self.path[len(proxy.prefix):], headers=headers, timeout=10)
            self.send_response(r.status_code)
            self.send_header("content-type", r.headers.get("content-type", "application/octet-stream"))
            self.send_header("content-length", str(len(r.content)))
            self.end_headers()
            self.wfile.write(r.content)

        def log_message(self, *args: Any) -> None:
            pass

    with in_thread(http_server(Handler)) as url:
        proxy.url = url + proxy.prefix
        yield proxy


def drop_misc_catalog(root: Path) -> None:
    """Unlink the sample's sub-catalog holding its one loose item (a copy of the sample at root)."""
    doc = json.loads((root / "catalog.json").read_text())
    doc["links"] = [link for link in doc["links"] if "misc" not in link["href"]]
    (root / "catalog.json").write_text(json.dumps(doc))


def shared_roots() -> list[list[str]]:
    """Roots from ../shared/catalogs/README.md's table; "a + b" is one load of two files."""
    readme = SHARED / "README.md"
    if not readme.is_file():
        return []
    roots = []
    for line in readme.read_text().splitlines():
        m = re.match(r"\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|", line)
        if not m or not m.group(1).endswith((".json", ".geojson", ".ndjson")) or m.group(1) == "root":
            continue
        parts = [p.strip() for p in m.group(1).split("+")]
        first = SHARED / parts[0]
        roots.append([str(first)] + [str(first.parent / p) for p in parts[1:]])
    return roots


def parsed(params: dict[str, str]):  # type: ignore[no-untyped-def]
    """A search's GET parameters as the server parses them (limit 10 unless given)."""
    return parse_search(params, default_limit=10, max_limit=1000)


def walk_pages(search: Any, most: int = 60) -> list[tuple[Any, ...]]:
    """Every page of ``search(after, before)`` from the first by next tokens (at most ``most``),
    then back from the last by prev tokens: each page's positions, numberMatched and tokens."""
    pages = [search(None, None)]
    while pages[-1].next_key is not None and len(pages) < most:
        pages.append(search(pages[-1].next_key, None))
    back = pages[-1]
    while back.prev_key is not None and len(pages) < 2 * most:
        back = search(None, back.prev_key)
        pages.append(back)
    return [(p.positions.tolist(), p.matched, p.next_key, p.prev_key, p.has_prev) for p in pages]


def http_pages(client: Any, method: str, query: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Every page of a /search through ``client`` (httpx, or the tests' TestClient) by next
    links to the end, checked back by prev links: each page's ids, numberMatched and link rels."""
    response = client.get("/search", params=query) if method == "GET" else client.post("/search", json=query)
    assert response.status_code == 200, response.text
    pages = [response.json()]
    while (link := link_of(pages[-1], "next")) is not None:
        pages.append(follow(client, method, query, link))
    check_paging_back(client, method, query, pages, str(query))
    return [([f["id"] for f in p["features"]], p["numberMatched"], [ln["rel"] for ln in p["links"]]) for p in pages]


@contextlib.contextmanager
def ttfb_server(folder: Path, *options: str) -> Iterator[str]:
    """bench/ttfb_server.py serving `folder` (``options``: its flags: --latency-ms, --bucket, ...);
    yields its base URL (no trailing slash)."""
    with tempfile.TemporaryDirectory() as tmp:
        port_file = Path(tmp) / "port"
        proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "ttfb_server.py"), str(folder),
                                 "--port-file", str(port_file), *options])
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists():
                assert proc.poll() is None and time.monotonic() < deadline, "ttfb_server.py did not start"
                time.sleep(0.02)
            yield f"http://127.0.0.1:{port_file.read_text()}"
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _files(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file()}


@contextlib.contextmanager
def uploaded(base: str, folder: Path) -> Iterator[None]:
    """The files changed, added or deleted in ``folder`` in the block are then PUT to and DELETEd
    from the bucket endpoint ``base`` (bench/ttfb_server.py --bucket serving ``folder``), as
    `aws s3 sync` would: its listing changes through its API only, as a bucket's does."""
    before = _files(folder)
    yield
    after = _files(folder)
    for key, stamp in after.items():
        if before.get(key) != stamp:
            response = httpx.put(f"{base}/{quote(key)}", content=(folder / key).read_bytes())
            assert response.status_code == 200, response.text
    for key in before.keys() - after.keys():
        assert httpx.delete(f"{base}/{quote(key)}").status_code == 204
