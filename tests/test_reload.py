"""Live reload: admin request, SIGHUP and interval; atomic swap; failed reloads keep serving;
paging across a reload; the same against a catalog served over HTTP, with a client polling."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.runtime.app import create_app
from server.settings import Settings
from tests.conftest import TestClient
from tests.helpers import REPO, drop_misc_catalog, free_port, once_counted, serve_folder, server_env

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LOOSE_ITEM = "aerial-wageningen-2021"


def wait_ready(client: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = client.get("/_mgmt/ready")
        if response.status_code == 200:
            return response.json()
        time.sleep(0.05)
    raise AssertionError("never ready")


def ids_of(client: Any, **params: Any) -> list[str]:
    body = client.get("/search", params={"limit": 1000, **params}).json()
    return [f["id"] for f in body["features"]]


@pytest.mark.parametrize("in_child", [True, False], ids=["child-process", "thread"])
def test_admin_reload_swaps_and_failed_reload_keeps_serving(sample_copy: Path, in_child: bool) -> None:
    app = create_app(Settings(roots=[str(sample_copy / "catalog.json")], admin_token=TOKEN,
                              reload_in_child=in_child))
    with TestClient(app) as client:
        ready = wait_ready(client)
        assert ready["items"] == 68 and ready["version"] == 1
        assert client.get("/_mgmt/health").json() == {"status": "ok"}
        assert LOOSE_ITEM in ids_of(client)

        assert client.post("/_mgmt/reload").status_code == 401  # no credentials (test_reload_credentials)
        assert client.post("/_mgmt/reload", headers={"Authorization": "Bearer wrong"}).status_code == 403
        assert client.post("/_mgmt/reload", headers={"Authorization": TOKEN}).status_code == 401  # no scheme
        # RFC 7235: the scheme is case-insensitive
        assert client.post("/_mgmt/reload", headers={"Authorization": f"bearer {TOKEN}"}).status_code == 200

        drop_misc_catalog(sample_copy)
        response = client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        assert response.json()["ok"] is True
        assert LOOSE_ITEM not in ids_of(client)
        ready = client.get("/_mgmt/ready").json()
        assert ready["items"] == 67 and ready["version"] == 3 and ready["last_reload"]["ok"] is True

        (sample_copy / "catalog.json").write_text("{ not json")
        response = client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 502  # the catalog could not be loaded: not a server error
        assert "LoadError" in response.json()["error"] and response.json()["code"] == "ReloadFailed"
        assert not response.json()["error"].startswith("ChildBuildError")
        # The previous index still answers, and readiness says what went wrong.
        assert len(ids_of(client)) == 67
        ready = client.get("/_mgmt/ready").json()
        assert ready["version"] == 3 and ready["last_reload"]["ok"] is False
        assert ready["last_reload"]["error"]


@pytest.mark.parametrize("in_child", [True, False], ids=["child-process", "thread"])
def test_a_reload_that_cannot_read_a_sub_catalog_it_served_keeps_serving_it(sample_copy: Path, in_child: bool) -> None:
    """A sub-catalog that cannot be read at a reload (half written, the bucket's hiccup) would
    take its items out of the API: the reload is refused and the previous index, which has
    them, keeps serving until a reload reads it again. Deleting it is a change: applied."""
    misc = sample_copy / "misc" / "catalog.json"
    good = misc.read_bytes()
    app = create_app(Settings(roots=[str(sample_copy / "catalog.json")], admin_token=TOKEN,
                              reload_in_child=in_child))
    with TestClient(app) as client:
        assert wait_ready(client)["items"] == 68
        misc.write_bytes(good[: len(good) // 2])  # half written
        response = client.post("/_mgmt/reload", headers=AUTH)
        assert response.status_code == 502, response.text
        body = response.json()
        assert body["code"] == "ReloadFailed" and "DegradedReload" in body["error"], body
        assert "could not read 1 of the catalogs" in body["error"] and f"{misc}: invalid JSON" in body["error"], body
        ready = client.get("/_mgmt/ready").json()
        assert ready["status"] == "ready" and ready["version"] == 1 and ready["items"] == 68
        assert ready["last_reload"]["ok"] is False and "DegradedReload" in ready["last_reload"]["error"]
        assert LOOSE_ITEM in ids_of(client)

        misc.write_bytes(good)  # written in full: the next reload serves it
        assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
        assert client.get("/_mgmt/ready").json()["version"] == 2 and LOOSE_ITEM in ids_of(client)

        misc.unlink()  # deleted (its link left): a change of the catalog, served as it is now
        assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
        ready = client.get("/_mgmt/ready").json()
        assert ready["status"] == "degraded" and ready["items"] == 67 and LOOSE_ITEM not in ids_of(client)
        drop_misc_catalog(sample_copy)  # and unlinked
        assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
        assert client.get("/_mgmt/ready").json()["status"] == "ready"


@contextlib.contextmanager
def served_over_http(folder: Path, in_child: bool, **settings: Any) -> Iterator[tuple[str, dict[str, int], Any]]:
    """The sample at ``folder`` served over HTTP, loaded by an app (no retries; ``settings``)
    reloading in a child process or a thread: (its URL, the paths to answer with a status
    instead, a client)."""
    fail: dict[str, int] = {}  # filled by the caller while serving
    with serve_folder(folder, fail) as url:
        app = create_app(Settings(roots=[f"{url}/catalog.json"], admin_token=TOKEN, reload_in_child=in_child,
                                  fetch_retries=0, **settings))
        with TestClient(app) as client:
            assert wait_ready(client)["items"] == 68
            yield url, fail, client


def test_a_reload_over_http_refuses_a_sub_catalog_answering_an_error_and_applies_one_gone(sample_copy: Path) -> None:
    """Over HTTP: a sub-catalog answering 503 (past the retries) is not lost at a reload; one
    answering 404 or 410 is deleted, a change served as the catalog now is (degraded)."""
    with served_over_http(sample_copy, in_child=False) as (url, fail, client):
        fail["/misc/catalog.json"] = 503
        response = client.post("/_mgmt/reload", headers=AUTH)
        assert response.status_code == 502 and "DegradedReload" in response.json()["error"], response.text
        assert f"{url}/misc/catalog.json: HTTP 503" in response.json()["error"]
        assert LOOSE_ITEM in ids_of(client) and client.get("/_mgmt/ready").json()["version"] == 1
        for status, version in ((404, 2), (410, 4)):  # each followed by a reload of it served again
            fail["/misc/catalog.json"] = status
            assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
            ready = client.get("/_mgmt/ready").json()
            assert ready["status"] == "degraded" and ready["version"] == version and ready["items"] == 67
            del fail["/misc/catalog.json"]
            assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
            assert LOOSE_ITEM in ids_of(client)


def _reload_until(client: Any, done: Any, timeout: float = 30.0) -> Any:
    """POST /_mgmt/reload again until ``done(response)``: that response."""
    deadline = time.monotonic() + timeout
    while True:
        response = client.post("/_mgmt/reload", headers=AUTH)
        if done(response) or time.monotonic() > deadline:
            return response
        time.sleep(0.1)


ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


@pytest.mark.parametrize("in_child", [True, False], ids=["child-process", "thread"])
def test_a_sub_catalog_unreadable_for_longer_than_the_setting_is_served_without(sample_copy: Path,
                                                                                in_child: bool) -> None:
    """A sub-catalog answering 500 for good (a broken object in the bucket) holds reloads back
    for reload_unreadable_seconds from the first that could not read it, then a reload goes
    ahead without it (degraded, as one gone: the other changes are served), the report saying
    since when; read again, it is served and forgotten, so its next failure is held back anew."""
    misc = "/misc/catalog.json"
    with served_over_http(sample_copy, in_child, reload_unreadable_seconds=1) as (url, fail, client):
        fail[misc] = 500
        started = time.monotonic()
        response = client.post("/_mgmt/reload", headers=AUTH)
        assert response.status_code == 502 and "DegradedReload" in response.json()["error"], response.text
        assert f"{url}{misc}: HTTP 500, unreadable since " in response.json()["error"], response.text
        assert "STAC_STATIC_RELOAD_UNREADABLE_SECONDS=1)" in response.json()["error"]
        ready = client.get("/_mgmt/ready").json()
        assert ready["status"] == "ready" and ready["version"] == 1 and LOOSE_ITEM in ids_of(client)

        response = _reload_until(client, lambda r: r.status_code != 502)  # refused until a second has passed
        assert response.status_code == 200 and response.json()["ok"] is True, response.text
        assert time.monotonic() - started >= 1.0
        ready = client.get("/_mgmt/ready").json()
        assert ready["status"] == "degraded" and ready["items"] == 67 and LOOSE_ITEM not in ids_of(client)
        [skip] = ready["load"]["structure_skips"]
        assert skip["location"] == f"{url}{misc}" and skip["reason"] == "HTTP 500", skip
        assert ISO_UTC.fullmatch(skip["unreadable_since"]), skip
        assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True  # still broken: since then
        assert client.get("/_mgmt/ready").json()["load"]["structure_skips"] == [skip]

        del fail[misc]  # fixed: served again
        assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
        ready = client.get("/_mgmt/ready").json()
        assert ready["status"] == "ready" and ready["items"] == 68 and ready["load"]["structure_skips"] == []
        assert LOOSE_ITEM in ids_of(client)
        fail[misc] = 500  # broken again: forgotten when it was read, so held back anew
        response = client.post("/_mgmt/reload", headers=AUTH)
        assert response.status_code == 502 and "DegradedReload" in response.json()["error"], response.text
        assert client.get("/_mgmt/ready").json()["items"] == 68 and LOOSE_ITEM in ids_of(client)


def test_reload_unreadable_seconds_0_serves_without_an_unreadable_sub_catalog_at_once(sample_copy: Path) -> None:
    with served_over_http(sample_copy, in_child=False, reload_unreadable_seconds=0) as (url, fail, client):
        fail["/misc/catalog.json"] = 503
        assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
        ready = client.get("/_mgmt/ready").json()
        assert ready["status"] == "degraded" and ready["items"] == 67 and LOOSE_ITEM not in ids_of(client)


@pytest.mark.parametrize("in_child", [True, False], ids=["child-process", "thread"])
def test_a_reload_serves_an_item_it_cannot_read_now_as_last_read(sample_copy: Path, in_child: bool) -> None:
    """An item document answering 503 (past the retries) at a reload is served as the serving
    index read it, said in the load's report and the log; one answering 404 is gone."""
    item_path = f"/misc/{LOOSE_ITEM}/{LOOSE_ITEM}.json"
    assert (sample_copy / item_path.lstrip("/")).is_file()
    with served_over_http(sample_copy, in_child) as (url, fail, client):
        before = client.get(f"/collections/misc/items/{LOOSE_ITEM}")
        fail[item_path] = 503
        assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
        ready = client.get("/_mgmt/ready").json()
        assert ready["status"] == "ready" and ready["version"] == 2 and ready["items"] == 68, ready
        assert ready["load"]["kept_unreadable"] == 1 and ready["load"]["skipped"] == 0, ready["load"]
        assert ready["load"]["kept_unreadable_items"] == [{"location": f"{url}{item_path}", "reason": "HTTP 503"}]
        again = client.get(f"/collections/misc/items/{LOOSE_ITEM}")
        assert again.status_code == 200 and again.json() == before.json()
        assert "\nstac_static_index_kept_unreadable_items 1.0\n" in client.get("/_mgmt/metrics").text

        fail[item_path] = 403  # deleted, from a bucket that does not allow listing: a change
        assert client.post("/_mgmt/reload", headers=AUTH).json()["ok"] is True
        ready = client.get("/_mgmt/ready").json()
        assert ready["items"] == 67 and ready["load"]["kept_unreadable"] == 0 and ready["load"]["skipped"] == 1
        assert LOOSE_ITEM not in ids_of(client)


@pytest.mark.parametrize(("error", "is_gone"), [
    ("No such file or directory", True), ("HTTP 404", True), ("HTTP 410", True), ("HTTP 403", True),
    ("S3 NoSuchKey: An error occurred (NoSuchKey) when calling the GetObject operation: The specified key does "
     "not exist.", True),
    ("S3 ClientError: An error occurred (AccessDenied) when calling the GetObject operation: Access Denied", True),
    ("HTTP 503", False), ("HTTP 500", False), ("Permission denied", False), ("response not complete after 30 s", False),
    ("S3 ClientError: An error occurred (SlowDown) when calling the GetObject operation: Please reduce", False),
    ("S3 EndpointConnectionError: Could not connect to the endpoint URL", False),
])
def test_what_counts_as_a_document_gone(error: str, is_gone: bool) -> None:
    from server.catalog.loader import gone

    assert gone(error) is is_gone


def test_a_reload_missing_what_the_serving_index_missed_too_is_applied(sample_copy: Path) -> None:
    """A sub-catalog that was unreadable at the load being served too: a reload missing it
    again serves the rest of what changed (there is nothing better to keep)."""
    misc = sample_copy / "misc" / "catalog.json"
    misc.write_text("{ not json")
    app = create_app(Settings(roots=[str(sample_copy / "catalog.json")], admin_token=TOKEN, reload_in_child=False))
    with TestClient(app) as client:
        ready = wait_ready(client)
        assert ready["status"] == "degraded" and ready["items"] == 67
        collections = client.get("/collections").json()["collections"]
        assert collections
        drop_first = sample_copy / "catalog.json"
        doc = json.loads(drop_first.read_text())
        doc["title"] = "Changed while misc is still broken"
        drop_first.write_text(json.dumps(doc))
        response = client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200 and response.json()["ok"] is True, response.text
        assert client.get("/").json()["title"] == "Changed while misc is still broken"
        assert client.get("/_mgmt/ready").json()["status"] == "degraded"


def test_a_reload_builds_in_a_child_process_and_serves_its_mapped_snapshot(
    sample_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The build runs in another process (a loader call here would fail the test), the index
    comes back from a snapshot whose buffers are mapped, and no work folder is left behind."""
    import tempfile

    import server.runtime.app

    monkeypatch.setattr(server.runtime.app, "load_index", lambda *a: pytest.fail("loaded in the server process"))
    monkeypatch.setattr(tempfile, "tempdir", str(sample_copy.parent / "work"))
    (sample_copy.parent / "work").mkdir()
    app = create_app(Settings(roots=[str(sample_copy / "catalog.json")], admin_token=TOKEN))
    with TestClient(app) as client:
        assert wait_ready(client)["items"] == 68
        assert app.state.index.json.data.readonly  # mapped from the snapshot, not built here
        drop_misc_catalog(sample_copy)
        assert client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}).json()["ok"] is True
        assert len(ids_of(client)) == 67
    assert list((sample_copy.parent / "work").iterdir()) == []


@pytest.mark.parametrize("authorization", [None, TOKEN, f"Basic {TOKEN}", "Bearer", "Bearer  "])
def test_reload_without_a_bearer_token_is_a_401_with_the_challenge(make_client, authorization: str | None) -> None:
    """RFC 6750 3.1: a request without the token is answered 401 with WWW-Authenticate: Bearer."""
    headers = {} if authorization is None else {"Authorization": authorization}
    with make_client(Settings(admin_token=TOKEN)) as client:
        response = client.post("/_mgmt/reload", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json()["code"] == "Unauthorized" and response.json()["description"]


def test_reload_with_a_wrong_token_is_a_403(make_client) -> None:
    with make_client(Settings(admin_token=TOKEN)) as client:
        response = client.post("/_mgmt/reload", headers={"Authorization": "Bearer not-the-token"})
    assert response.status_code == 403
    assert response.json()["code"] == "Forbidden"
    assert "www-authenticate" not in response.headers


def test_the_document_describes_the_reload_challenge(client: TestClient) -> None:
    document = client.get("/api").json()
    reload = document["paths"]["/_mgmt/reload"]["post"]
    assert set(reload["responses"]) >= {"401", "403", "404"}
    assert "WWW-Authenticate" in reload["responses"]["401"]["headers"]
    scheme = document["components"]["securitySchemes"][next(iter(reload["security"][0]))]
    assert scheme == {**scheme, "type": "http", "scheme": "bearer"}


def test_reload_over_http_is_off_without_a_token(client: TestClient) -> None:
    response = client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 404
    assert response.json()["code"] == "NotFoundError"


def test_paging_continues_across_a_reload(sample_copy: Path) -> None:
    """A next link from before the swap neither repeats nor skips items present in both versions."""
    app = create_app(Settings(roots=[str(sample_copy / "catalog.json")], admin_token=TOKEN))
    with TestClient(app) as client:
        wait_ready(client)
        everything = ids_of(client)
        first = client.get("/search", params={"limit": 20}).json()
        seen = [f["id"] for f in first["features"]]
        next_href = next(link["href"] for link in first["links"] if link["rel"] == "next")

        # Remove items both before and after the page boundary.
        removed = {everything[5], everything[40]}
        for path in sample_copy.rglob("*.json"):
            doc = json.loads(path.read_text())
            links = doc.get("links", [])
            kept = [link for link in links if not (link["rel"] == "item" and any(r in link["href"] for r in removed))]
            if len(kept) != len(links):
                doc["links"] = kept
                path.write_text(json.dumps(doc))
        assert client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200

        href: str | None = next_href
        while href:
            page = client.get(href).json()
            seen += [f["id"] for f in page["features"]]
            href = next((link["href"] for link in page["links"] if link["rel"] == "next"), None)
        expected = [i for i in everything if i not in removed or i in seen[:20]]
        assert seen == expected


def _start(roots: list[str], *args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", *roots, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", *args],
        cwd=REPO, env={**server_env(), **(env or {})}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(base + "/", timeout=2).status_code == 200:
                return proc, base
        except httpx.TransportError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("server did not start")


class Poller:
    """A client searching throughout, recording every failure."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.failures: list[str] = []
        self.requests = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(base_url=self.base, timeout=10) as client:
            while not self._stop.is_set():
                try:
                    response = client.get("/search", params={"limit": 5, "bbox": "-10,35,30,70"})
                    if response.status_code != 200:
                        self.failures.append(f"{response.status_code} {response.text[:200]}")
                except httpx.HTTPError as exc:
                    self.failures.append(repr(exc))
                self.requests += 1

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=20)


def _wait_for(base: str, check: Any, timeout: float = 30.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = httpx.get(base + "/_mgmt/ready", timeout=5).json()
        if check(ready):
            return ready
        time.sleep(0.1)
    raise AssertionError(f"condition not met; last readiness: {ready}")


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    for proc in procs:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_sighup_reloads_a_live_server_without_failed_requests(sample_copy: Path, stop: list[Any]) -> None:
    proc, base = _start([str(sample_copy / "catalog.json")])
    stop.append(proc)
    with Poller(base) as poller:
        time.sleep(0.3)
        drop_misc_catalog(sample_copy)
        os.kill(proc.pid, signal.SIGHUP)
        ready = _wait_for(base, lambda r: r["last_reload"]["reloads"] >= 1)
        time.sleep(0.3)
    assert ready["items"] == 67 and ready["last_reload"]["reason"] == "SIGHUP"
    assert poller.requests > 5 and poller.failures == []


def test_interval_reload_follows_a_bucket_over_http(sample_copy: Path, stop: list[Any]) -> None:
    """The catalog served by a real HTTP server changes; the API follows on its reload interval."""
    with serve_folder(sample_copy) as bucket:
        proc, base = _start([f"{bucket}/catalog.json"], "--reload-interval", "0.5")
        stop.append(proc)
        assert LOOSE_ITEM in [f["id"] for f in httpx.get(base + "/search", params={"limit": 100}).json()["features"]]
        with Poller(base) as poller:
            drop_misc_catalog(sample_copy)
            ready = _wait_for(base, lambda r: r["items"] == 67)
            time.sleep(0.3)
        assert ready["last_reload"]["reason"] == "interval"
        assert poller.requests > 5 and poller.failures == []
        ids = [f["id"] for f in httpx.get(base + "/search", params={"limit": 100}).json()["features"]]
        assert LOOSE_ITEM not in ids and len(ids) == 67


def test_watch_reloads_when_a_local_file_changes(sample_copy: Path, stop: list[Any]) -> None:
    proc, base = _start([str(sample_copy / "catalog.json")], "--watch-interval", "0.2")
    stop.append(proc)
    time.sleep(0.3)
    drop_misc_catalog(sample_copy)
    ready = _wait_for(base, lambda r: r["items"] == 67)
    assert ready["last_reload"]["reason"].startswith("file change:")
    assert "catalog.json" in ready["last_reload"]["reason"]


def test_reload_of_a_remote_catalog_uses_conditional_requests(sample_copy: Path) -> None:
    """Unchanged documents answer 304 (the test server honours If-Modified-Since) and are
    taken from the cache; the changed one is fetched anew."""
    # Last-Modified has one-second resolution: the files made 10 s older first, so the one
    # changed below is newer than what the first load saw (was a 1.1 s sleep before the change)
    past = time.time() - 10
    for path in sample_copy.rglob("*"):
        os.utime(path, (past, past))
    with serve_folder(sample_copy) as bucket:
        app = create_app(Settings(roots=[f"{bucket}/catalog.json"], admin_token=TOKEN))
        with TestClient(app) as client:
            wait_ready(client)
            assert app.state.remote_cache.revalidated == 0
            drop_misc_catalog(sample_copy)
            assert client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
            assert app.state.remote_cache.revalidated >= 60  # every item and collection, not catalog.json
            assert LOOSE_ITEM not in ids_of(client)
            assert len(ids_of(client)) == 67


def _mapped_snapshots(pid: int) -> set[str]:
    with open(f"/proc/{pid}/maps") as maps:
        return {line.split(None, 5)[5].strip() for line in maps if ".snapshot" in line}


def _worker_pids(supervisor: int) -> list[int]:
    with open(f"/proc/{supervisor}/task/{supervisor}/children") as f:
        children = [int(p) for p in f.read().split()]
    workers = []
    for pid in children:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            if b"server.runtime.child_build" not in f.read():
                workers.append(pid)
    return workers


def _forked_workers(supervisor: int, count: int = 2, timeout: float = 15.0) -> list[int]:
    """The supervisor's workers once there are ``count`` (or, past ``timeout``, as they are):
    the first worker forked can answer the readiness poll before the supervisor has forked the
    next one (server.runtime.workers: "a worker answering is no guarantee the parent is past its
    forks"), so counting them right after _start could find one."""
    return once_counted(lambda: _worker_pids(supervisor), count, timeout)


def test_forked_workers_reload_once_and_map_the_same_snapshot(sample_copy: Path, stop: list[Any]) -> None:
    """With --workers 2 the supervisor builds each reload once; every worker swaps to the same
    mapped file (one copy of the index), whichever way the reload was asked for, with no failed
    request; a failed build leaves every worker serving and saying why."""
    proc, base = _start([str(sample_copy / "catalog.json")], "--workers", "2")
    stop.append(proc)
    workers = _forked_workers(proc.pid)
    assert len(workers) == 2
    with Poller(base) as poller:
        drop_misc_catalog(sample_copy)
        os.kill(proc.pid, signal.SIGHUP)
        deadline = time.monotonic() + 30
        while any(not _mapped_snapshots(w) for w in workers):
            assert time.monotonic() < deadline, "the workers never mapped the new index"
            time.sleep(0.1)
        time.sleep(0.3)
    assert poller.requests > 5 and poller.failures == []
    assert _mapped_snapshots(workers[0]) == _mapped_snapshots(workers[1])
    with httpx.Client(base_url=base) as client:  # a new connection per request: both workers answer
        for _ in range(10):
            ready = httpx.get(base + "/_mgmt/ready").json()
            assert ready["items"] == 67 and ready["version"] == 2
            assert ready["last_reload"]["ok"] is True

        (sample_copy / "catalog.json").write_text("{ not json")
        os.kill(proc.pid, signal.SIGHUP)
        ready = _wait_for(base, lambda r: r["last_reload"]["ok"] is False)
        assert "LoadError" in ready["last_reload"]["error"] and ready["version"] == 2
        assert len(client.get("/search", params={"limit": 100}).json()["features"]) == 67


def test_forked_workers_serve_without_a_sub_catalog_unreadable_for_longer_than_the_setting(
    sample_copy: Path, stop: list[Any]
) -> None:
    """Under --workers the supervisor builds the reloads (in a child process each): it is the
    one that remembers since when a sub-catalog could not be read, and past the setting every
    worker serves the catalog without it."""
    fail: dict[str, int] = {}  # filled while serving
    with serve_folder(sample_copy, fail) as bucket:
        proc, base = _start([f"{bucket}/catalog.json"], "--workers", "2",
                            env={"STAC_STATIC_RELOAD_UNREADABLE_SECONDS": "1", "STAC_STATIC_FETCH_RETRIES": "0"})
        stop.append(proc)
        fail["/misc/catalog.json"] = 500
        os.kill(proc.pid, signal.SIGHUP)
        ready = _wait_for(base, lambda r: r["last_reload"]["ok"] is False)
        assert "unreadable since" in ready["last_reload"]["error"] and ready["items"] == 68, ready

        def served_without(ready: dict[str, Any]) -> bool:
            if ready["items"] == 67:
                return True
            os.kill(proc.pid, signal.SIGHUP)  # refused until a second has passed: asked again
            return False

        ready = _wait_for(base, served_without)
        assert ready["status"] == "degraded" and ready["last_reload"]["ok"] is True, ready
        assert ISO_UTC.fullmatch(ready["load"]["structure_skips"][0]["unreadable_since"]), ready


def test_a_forked_workers_admin_reload_asks_the_supervisor(
    sample_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import server.runtime.reloader

    signals: list[tuple[int, int]] = []
    monkeypatch.setattr(server.runtime.reloader.os, "kill", lambda pid, sig: signals.append((pid, sig)))
    from server.catalog.loader import load_catalogs

    index, _ = load_catalogs([str(sample_copy / "catalog.json")])
    app = create_app(Settings(admin_token=TOKEN), index=index)
    app.state.reloader.follow(tmp_path / "published.json", 424242)
    with TestClient(app) as client:
        response = client.post("/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 202 and response.json()["requested"] is True
    assert signals == [(424242, signal.SIGHUP)]


def test_workers_do_not_outlive_a_killed_supervisor(sample_copy: Path, stop: list[Any]) -> None:
    proc, _ = _start([str(sample_copy / "catalog.json")], "--workers", "2")
    stop.append(proc)
    workers = _forked_workers(proc.pid)
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)
    def alive(pid: int) -> bool:
        try:
            return "zombie" not in Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return False

    deadline = time.monotonic() + 10
    while any(alive(w) for w in workers):
        assert time.monotonic() < deadline, "a worker outlived its supervisor"
        time.sleep(0.1)
