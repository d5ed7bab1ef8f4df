"""Replicas from one snapshot: `index ROOT... -o s3://...` (or a file put on a web server) by one
builder, `serve --index URL` by each replica. Real processes against a loopback HTTP server that
records what it is asked (ETag, 304) and a moto S3 server: the download once into the cache, the
conditional request of the next start, refused downloads (corrupted, truncated, another format)
keeping the cached copy, and reloads that fetch the new snapshot."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.catalog.loader import load_catalogs
from server.catalog.sources import Fetcher
from server.runtime.remote_snapshot import RemoteSnapshot
from server.runtime.snapshot import BODY_START, FORMAT_VERSION, MAGIC, SnapshotError, seal_header
from server.sample import SAMPLE_ROOT
from server.settings import Settings
from tests.helpers import http_server, in_thread, run_cli, run_server

boto3 = pytest.importorskip("boto3", reason="boto3 is the s3:// client; it comes with the test extra")
moto_server = pytest.importorskip("moto.server", reason="moto[server] comes with the test extra")

TOKEN = "replica-token"
QUERIES = [
    {"limit": 100},
    {"bbox": "5.65,51.95,5.68,51.98", "limit": 100},
    {"filter": "eo:cloud_cover < 30", "sortby": "-eo:cloud_cover", "limit": 100},
    {"q": "NDVI", "limit": 100},
    {"collections": "sentinel-2-l2a-nl", "datetime": "2023-05-01T00:00:00Z/..", "limit": 5},
]


def answers(base: str) -> list[list[str]]:
    return [[f["id"] for f in httpx.get(base + "/search", params=q).json()["features"]] for q in QUERIES]


class Published:
    """A web server holding published files (path -> bytes) with strong ETags, answering
    If-None-Match with 304; it records (path, If-None-Match sent, status) of every GET."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str | None, int]] = []
        self.lock = threading.Lock()

    def put(self, path: str, body: bytes) -> None:
        with self.lock:
            self.files[path] = body

    def handler(self) -> type[http.server.BaseHTTPRequestHandler]:
        published = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                with published.lock:
                    body = published.files.get(self.path)
                asked = self.headers.get("If-None-Match")
                etag = f'"{hashlib.sha256(body).hexdigest()[:20]}"' if body is not None else None
                status = 404 if body is None else 304 if asked == etag else 200
                with published.lock:  # before the answer: a client that has it finds it recorded
                    published.requests.append((self.path, asked, status))
                self.send_response(status)
                if etag is not None:
                    self.send_header("ETag", etag)
                self.send_header("Content-Length", str(len(body)) if body is not None and status == 200 else "0")
                self.end_headers()
                if body is not None and status == 200:
                    self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        return Handler


@pytest.fixture
def published() -> Iterator[tuple[Published, str]]:
    files = Published()
    httpd = http_server(files.handler())
    with in_thread(httpd) as url:
        yield files, url


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE_ROOT.parent, target)
    return target


def build(root: Path, output: Path, env: dict[str, str] | None = None) -> bytes:
    done = run_cli(["index", str(root / "catalog.json"), "-o", str(output)], env=env)
    assert done.returncode == 0, done.stderr
    return output.read_bytes()


def publish(published: tuple[Published, str], root: Path, tmp_path: Path) -> tuple[Published, str, bytes]:
    """The builder's snapshot of ``root`` put on the web server at /x.idx: the server, its
    URL and the snapshot's bytes."""
    files, url = published
    snapshot = build(root, tmp_path / "built.idx")
    files.put("/x.idx", snapshot)
    return files, url, snapshot


def drop_an_item(root: Path) -> str:
    """Remove one item link from the sample's Sentinel-2 collection; its id."""
    path = root / "sentinel-2-l2a-nl" / "collection.json"
    doc = json.loads(path.read_text())
    link = next(link for link in doc["links"] if link["rel"] == "item")
    doc["links"].remove(link)
    path.write_text(json.dumps(doc))
    return Path(link["href"]).parent.name


def flipped(body: bytes, at: int) -> bytes:
    damaged = bytearray(body)
    damaged[at] ^= 0x40
    return bytes(damaged)


def replica_env(tmp_path: Path) -> dict[str, str]:
    """A replica's settings: its snapshot cache under ``tmp_path`` and the admin token."""
    return {"STAC_STATIC_INDEX_CACHE_DIR": str(tmp_path / "cache"), "STAC_STATIC_ADMIN_TOKEN": TOKEN}


def reload(base: str) -> httpx.Response:
    return httpx.post(base + "/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60)


def test_two_replicas_start_from_one_published_snapshot_downloaded_once(
    published: tuple[Published, str], sample_copy: Path, tmp_path: Path,
) -> None:
    files, url, _ = publish(published, sample_copy, tmp_path)
    cache = tmp_path / "cache"
    env = {"STAC_STATIC_INDEX_CACHE_DIR": str(cache)}
    with run_server(roots=[str(sample_copy / "catalog.json")]) as direct:
        expected = answers(direct)
    assert all(expected) and len(expected[0]) == 68
    with run_server(extra_args=["--index", f"{url}/x.idx"], env=env, log_path=tmp_path / "a.log") as first:
        assert files.requests == [("/x.idx", None, 200)]
        copy = next(p for p in cache.iterdir() if not p.name.endswith(".json"))
        assert copy.read_bytes() == files.files["/x.idx"]
        with run_server(extra_args=["--index", f"{url}/x.idx"], env=env, log_path=tmp_path / "b.log") as second:
            # the second start asks "changed since?" with the copy's ETag and gets 304: no transfer
            assert len(files.requests) == 2
            path, asked, status = files.requests[1]
            assert (path, status) == ("/x.idx", 304) and asked
            assert "unchanged since the cached copy (304)" in (tmp_path / "b.log").read_text()
            assert answers(first) == answers(second) == expected
            assert httpx.get(second + "/_mgmt/ready").json()["items"] == 68


def test_a_replica_reload_fetches_the_new_snapshot_and_keeps_serving_on_a_bad_one(
    published: tuple[Published, str], sample_copy: Path, tmp_path: Path,
) -> None:
    files, url, _ = publish(published, sample_copy, tmp_path)
    env = replica_env(tmp_path)
    with run_server(extra_args=["--index", f"{url}/x.idx"], env=env) as base:
        before = answers(base)
        unchanged = reload(base)
        assert unchanged.status_code == 200 and unchanged.json()["changed"] is False
        assert files.requests[-1][2] == 304 and answers(base) == before
        # the catalog changes and the builder publishes again; the replica reads no catalog file
        gone = drop_an_item(sample_copy)
        new = build(sample_copy, tmp_path / "built.idx")
        shutil.rmtree(sample_copy)
        files.put("/x.idx", flipped(new, len(new) - 100))  # damaged on its way
        refused = reload(base)
        assert refused.status_code == 502
        assert "damaged" in refused.json()["description"] and "cached copy is kept" in refused.json()["description"]
        assert answers(base) == before  # still serving the previous snapshot
        files.put("/x.idx", new)
        swapped = reload(base)
        assert swapped.status_code == 200 and swapped.json()["changed"] is True
        after = answers(base)
        assert gone in before[0] and gone not in after[0] and len(after[0]) == len(before[0]) - 1
        assert httpx.get(base + "/_mgmt/ready").json()["items"] == 67


def test_damaged_truncated_and_foreign_downloads_are_refused_and_the_copy_kept(
    published: tuple[Published, str], sample_copy: Path, tmp_path: Path,
) -> None:
    files, url, good = publish(published, sample_copy, tmp_path)
    replica = RemoteSnapshot(f"{url}/x.idx", Settings(index_cache_dir=str(tmp_path / "cache")))
    assert replica.fetch() is True and replica.path.read_bytes() == good
    assert replica.fetch() is False  # 304
    header_at = int(good[len(MAGIC) : BODY_START])  # the header ends the file
    foreign = good[:header_at] + good[header_at:].replace(b'"format":%d' % FORMAT_VERSION,
                                                          b'"format":%d' % (FORMAT_VERSION - 2), 1)
    cases = {
        "a byte of the body": (flipped(good, len(good) // 2), "the checksum of its body does not match"),
        "a byte of the header": (flipped(good, header_at + 30), "damaged snapshot header"),
        "the end cut off": (good[: header_at - 1000], "truncated (its header, which ends it, is not complete): "
                                                      "1000 bytes of its body missing"),
        "cut in the header": (good[:-10], "truncated"),
        "cut in the header's place": (good[: BODY_START - 10], "truncated"),
        "bytes added": (good + b"\0" * 10, "longer than its header says"),
        "another format": (foreign, f"format {FORMAT_VERSION - 2}, this server reads formats 9 and 10"),
        "a web page": (b"<html>Not here</html>", "not a stac-static-api index snapshot"),
    }
    for case, (body, reason) in cases.items():
        files.put("/x.idx", body)
        with pytest.raises(SnapshotError, match="refused; the cached copy is kept") as refused:
            replica.fetch()
        assert reason in str(refused.value), case
        assert replica.path.read_bytes() == good, case
        assert replica.cached() is not None, case
        assert not [p for p in replica.folder.iterdir() if p.name.endswith(".part")], case
    assert not [t for t in threading.enumerate() if t.name == "snapshot-check"]  # each check's hasher ended
    # a server that cannot start from a bad download says why and exits, with no copy to serve
    files.put("/x.idx", flipped(good, len(good) // 2))
    done = run_cli(["serve", "--index", f"{url}/x.idx", "--port", "1"],
                   env={"STAC_STATIC_INDEX_CACHE_DIR": str(tmp_path / "other-cache")})
    assert done.returncode == 1
    assert "damaged: the checksum of its body does not match its header's: refused" in done.stderr
    assert not (tmp_path / "other-cache").exists() or not [
        p for p in (tmp_path / "other-cache").iterdir() if not p.name.startswith(".")
    ]


def test_a_cached_copy_damaged_on_disk_is_downloaded_again(
    published: tuple[Published, str], sample_copy: Path, tmp_path: Path,
) -> None:
    files, url, good = publish(published, sample_copy, tmp_path)
    settings = Settings(index_cache_dir=str(tmp_path / "cache"))
    assert RemoteSnapshot(f"{url}/x.idx", settings).load().size == 68
    replica = RemoteSnapshot(f"{url}/x.idx", settings)
    header_at = int(good[len(MAGIC) : BODY_START])
    pickle_at = json.loads(good[header_at:])["pickle"][0]
    with open(replica.path, "r+b") as f:  # the header and the length still check; the pickle does not
        f.seek(pickle_at)
        f.write(b"\xff" * 16)
    assert replica.load().size == 68
    assert [status for _, _, status in files.requests] == [200, 304, 200]
    assert replica.path.read_bytes() == good


def test_a_replica_restarting_while_the_url_fails_serves_its_cached_copy(
    published: tuple[Published, str], sample_copy: Path, tmp_path: Path,
) -> None:
    files, url, good = publish(published, sample_copy, tmp_path)
    env = replica_env(tmp_path)
    with run_server(extra_args=["--index", f"{url}/x.idx"], env=env) as base:
        before = answers(base)
    drop_an_item(sample_copy)
    newer = build(sample_copy, tmp_path / "built.idx")
    # a damaged snapshot is published: the replica restarts on the copy it checked, and says why
    files.put("/x.idx", flipped(newer, len(newer) // 2))
    log = tmp_path / "damaged.log"
    with run_server(extra_args=["--index", f"{url}/x.idx"], env=env, log_path=log) as base:
        assert answers(base) == before
        assert httpx.get(base + "/_mgmt/ready").json()["items"] == 68
        said = log.read_text()
        assert "the cached copy fetched" in said and "the checksum of its body does not match" in said
        # the publisher fixes it: the next reload takes the good one
        files.put("/x.idx", newer)
        swapped = reload(base)
        assert swapped.status_code == 200 and swapped.json()["changed"] is True
        assert httpx.get(base + "/_mgmt/ready").json()["items"] == 67
    # the web server is gone: the replica starts on its (now newer) cached copy
    log = tmp_path / "unreachable.log"
    dead = "http://127.0.0.1:1/x.idx"
    cache = RemoteSnapshot(f"{url}/x.idx", Settings(index_cache_dir=str(tmp_path / "cache")))
    other = RemoteSnapshot(dead, Settings(index_cache_dir=str(tmp_path / "cache")))
    shutil.copy(cache.path, other.path)
    shutil.copy(cache.meta_path, other.meta_path)
    with run_server(extra_args=["--index", dead], env=env, log_path=log) as base:
        assert httpx.get(base + "/_mgmt/ready").json()["items"] == 67
        assert "cannot download" in log.read_text() and "the cached copy fetched" in log.read_text()


def test_a_snapshot_of_another_format_is_refused_before_its_body_is_read(
    published: tuple[Published, str], tmp_path: Path,
) -> None:
    header = b'{"format":%d,"header_sha256":"%s","body_sha256":"%s","body_bytes":1000000}\n' % (
        FORMAT_VERSION + 1, b"0" * 64, b"0" * 64)
    files, url = published
    files.put("/new.idx", MAGIC + seal_header(header, "0" * 64) + b"\0" * 1_000_000)
    done = run_cli(["serve", "--index", f"{url}/new.idx"], env={"STAC_STATIC_INDEX_CACHE_DIR": str(tmp_path)})
    assert done.returncode == 1
    assert f"has snapshot format {FORMAT_VERSION + 1}, this server reads formats 9 and 10" in done.stderr


def test_a_replica_fetching_a_format_9_snapshot_still_starts(
    published: tuple[Published, str], sample_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Format 10 (session 15) differs from 9 only by the vocabularies that may be TextBlocks: a
    snapshot a builder of format 9 published is served as before. The sample's vocabularies are
    under TextBlock's 256 texts, so the file written here as format 9 is what such a builder wrote."""
    from server.runtime import snapshot as snapshot_module

    monkeypatch.setattr(snapshot_module, "FORMAT_VERSION", 9)
    index, _ = load_catalogs([str(sample_copy / "catalog.json")])
    older = tmp_path / "older.idx"
    snapshot_module.write_snapshot(str(older), index, [str(sample_copy / "catalog.json")])
    monkeypatch.undo()
    with open(older, "rb") as f:
        assert snapshot_module.read_header(f, str(older))["format"] == 9
    files, url = published
    files.put("/x.idx", older.read_bytes())
    with run_server(extra_args=["--index", f"{url}/x.idx"], env=replica_env(tmp_path)) as base:
        ready = httpx.get(base + "/_mgmt/ready").json()
        assert ready["status"] == "ready" and ready["items"] == 68, ready
        assert httpx.get(base + "/search", params={"limit": 100}).json()["numberReturned"] == 68


def test_a_replica_takes_no_roots_and_http_is_not_an_upload_destination(tmp_path: Path) -> None:
    done = run_cli(["serve", str(SAMPLE_ROOT), "--index", "http://127.0.0.1:1/x.idx"])
    assert done.returncode == 2 and "give the ROOTs to the builder" in done.stderr
    done = run_cli(["index", str(SAMPLE_ROOT), "-o", "https://example.com/x.idx"])
    assert done.returncode == 2 and "upload it with your own tool" in done.stderr


def test_forked_workers_of_a_replica_reload_the_new_snapshot(
    published: tuple[Published, str], sample_copy: Path, tmp_path: Path,
) -> None:
    files, url, _ = publish(published, sample_copy, tmp_path)
    env = replica_env(tmp_path)
    with run_server(extra_args=["--index", f"{url}/x.idx", "--workers", "2"], env=env) as base:
        before = answers(base)
        drop_an_item(sample_copy)
        files.put("/x.idx", build(sample_copy, tmp_path / "built.idx"))
        assert reload(base).status_code == 202  # the supervisor downloads once, every worker maps it
        deadline = time.monotonic() + 30
        while {httpx.get(base + "/_mgmt/ready").json()["items"] for _ in range(8)} != {67}:
            assert time.monotonic() < deadline, "the workers did not all swap to the new snapshot"
            time.sleep(0.2)
        assert len(answers(base)[0]) == len(before[0]) - 1
        assert [status for _, _, status in files.requests] == [200, 200]
        cached = [p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".json")]
        assert len(cached) == 1  # the supervisor published the cached copy, and left it there


# -- S3 (moto in server mode) -------------------------------------------------------------------


@pytest.fixture
def s3_env() -> Iterator[dict[str, str]]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    env = {"AWS_ENDPOINT_URL": f"http://{host}:{port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        boto3.client("s3").create_bucket(Bucket="indexes")
        yield env
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        server.stop()


def test_the_builder_publishes_to_s3_and_replicas_start_from_it(
    s3_env: dict[str, str], sample_copy: Path, tmp_path: Path,
) -> None:
    key = "s3://indexes/prod/catalog.idx"
    done = run_cli(["index", str(sample_copy / "catalog.json"), "-o", key], env=s3_env)
    assert done.returncode == 0, done.stderr
    assert f"uploaded it to {key}" in done.stderr
    env = {**s3_env, **replica_env(tmp_path)}
    with run_server(roots=[str(sample_copy / "catalog.json")]) as direct:
        expected = answers(direct)
    with run_server(extra_args=["--index", key], env=env, log_path=tmp_path / "a.log") as first:
        assert "(downloaded)" in (tmp_path / "a.log").read_text()
        copy = next(p for p in (tmp_path / "cache").iterdir() if not p.name.endswith(".json"))
        inode = copy.stat().st_ino
        with run_server(extra_args=["--index", key], env=env, log_path=tmp_path / "b.log") as second:
            assert "unchanged since the cached copy (304)" in (tmp_path / "b.log").read_text()
            assert copy.stat().st_ino == inode  # not downloaded again
            assert answers(first) == answers(second) == expected
            # the builder publishes a new snapshot; a replica's reload picks it up from the bucket
            drop_an_item(sample_copy)
            assert run_cli(["index", str(sample_copy / "catalog.json"), "-o", key], env=s3_env).returncode == 0
            swapped = reload(second)
            assert swapped.status_code == 200 and swapped.json()["changed"] is True
            assert httpx.get(second + "/_mgmt/ready").json()["items"] == 67
            assert httpx.get(first + "/_mgmt/ready").json()["items"] == 68  # until it reloads too
            assert reload(first).json()["changed"] is True
            assert answers(first) == answers(second) != expected


def test_a_large_snapshot_goes_up_in_parts_and_comes_down_whole(s3_env: dict[str, str], tmp_path: Path) -> None:
    """Over boto3's multipart threshold (8 MiB): the managed upload, then the streamed download."""
    body = os.urandom(9 * 1024 * 1024 + 123)
    path = tmp_path / "big.bin"
    path.write_bytes(body)
    with Fetcher(max_bytes=0) as fetcher:
        fetcher.upload(str(path), "s3://indexes/big.bin")
        with open(tmp_path / "down.bin", "wb") as sink:
            got = fetcher.download("s3://indexes/big.bin", sink)
        assert got.modified and got.size == len(body) and got.etag
        assert (tmp_path / "down.bin").read_bytes() == body
        with open(os.devnull, "wb") as sink:
            assert not fetcher.download("s3://indexes/big.bin", sink, got.etag, got.last_modified).modified
    head = boto3.client("s3").head_object(Bucket="indexes", Key="big.bin")
    assert "-" in head["ETag"]  # a multipart upload's ETag: "<md5 of the parts' md5s>-<parts>"
