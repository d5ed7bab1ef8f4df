"""ListObjectsV2 listings read fast (server.catalog.listing): pages as S3 writes them, their
entities, an entry in another order, what is not a listing; and whole listings of more than a
page from bench/ttfb_server.py --bucket, in parts and by continuation token, equal to the folder."""

from __future__ import annotations

import hashlib
import http.server
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from urllib.parse import parse_qsl, quote

import httpx
import numpy as np
import pytest

from server.catalog import listing
from server.catalog.listing import http_listing, parse_page
from server.catalog.sources import OVER_LIMIT, FetchError
from tests.helpers import http_server, in_thread, ttfb_server


def listed_as_dict(base: str, urls: list[str]) -> dict[str, tuple[str, int]]:
    """http_listing's answer for ``urls``, as url -> (MD5 hex, size) of those listed."""
    found, digests, sizes = http_listing(f"{base}/", urls, 10, 1)
    return {url: (digests[i].tobytes().hex(), int(sizes[i])) for i, url in enumerate(urls) if found[i]}

S3_PAGE = b"""<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><Prefix>p/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>
<Contents><Key>p/a&amp;b &lt;1&gt;.json</Key><LastModified>2026-12-06T20:00:00.000Z</LastModified>
<ETag>&quot;0123456789abcdef0123456789abcdef&quot;</ETag><ChecksumAlgorithm>CRC32</ChecksumAlgorithm>
<Size>12</Size><Owner><ID>x</ID></Owner><StorageClass>STANDARD</StorageClass></Contents>
<Contents><Key>p/\xc3\xa9t\xc3\xa9.json</Key><LastModified>2026-12-06T20:00:00.000Z</LastModified>
<ETag>"abc-2"</ETag><Size>7</Size><StorageClass>STANDARD</StorageClass></Contents>
<NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken></ListBucketResult>"""


def test_a_page_as_s3_writes_it() -> None:
    entries, token = parse_page(S3_PAGE)
    assert entries == [("p/a&b <1>.json", ("0123456789abcdef0123456789abcdef", 12)), ("p/été.json", ("abc-2", 7))]
    assert token == "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM="


def test_entries_in_another_order_are_read_one_by_one() -> None:
    page = (b"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>k1</Key><Size>1</Size></Contents>"
            b"<Contents><Size>2</Size><ETag>&quot;e&quot;</ETag><Key>k2</Key></Contents></ListBucketResult>")
    assert parse_page(page) == ([("k1", ("", 1)), ("k2", ("e", 2))], None)


@pytest.mark.parametrize("body", [b"<html><body>Index of /</body></html>", b"",
                                  b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>",
                                  b"<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>",
                                  b"<ListBucketResult><Contents><ETag>x</ETag></Contents></ListBucketResult>"])
def test_what_is_not_a_whole_listing_is_refused(body: bytes) -> None:
    with pytest.raises(FetchError):
        parse_page(body)


@pytest.fixture(params=["curl", "threads"])
def driver(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Each part's pages followed through libcurl from one thread (HttpPages.follow), or each
    part's in a thread of its own through urllib3 (as where pycurl is not installed)."""
    if request.param == "threads":
        monkeypatch.setattr(listing, "CurlSession", None)
    return str(request.param)


@pytest.mark.parametrize("part_keys", [100_000, 300])
def test_a_listing_of_several_pages_from_a_bucket_endpoint(tmp_path: Path, part_keys: int, driver: str,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """2,600 objects in two folders (and one outside the prefix): every page followed, in one part
    or in parts from after each other's keys; each ETag the MD5 of the bytes, as S3's; a URL
    the listing lacks is not in the answer."""
    monkeypatch.setattr(listing, "LIST_PART_KEYS", part_keys)
    expected = {}
    for i in range(2_600):
        path = tmp_path / "cat" / f"c{i % 2}" / f"item {i:05d}+é.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        data = b"{}" + b" " * (i % 7)
        path.write_bytes(data)
        expected[path.relative_to(tmp_path).as_posix()] = (hashlib.md5(data).hexdigest(), len(data))
    (tmp_path / "other.json").write_text("{}")
    with ttfb_server(tmp_path, "--latency-ms", "0", "--bucket") as base:
        wanted = {f"{base}/{quote(key)}": key for key in sorted(expected)[::-1]}
        listed = listed_as_dict(base, [*wanted, f"{base}/cat/c0/not-there.json"])
    assert listed == {url: expected[key] for url, key in wanted.items()}


def test_the_bucket_endpoint_lists_what_was_put_and_deleted_through_it(tmp_path: Path) -> None:
    """bench/ttfb_server.py --bucket keeps its sorted keys and each key's <Contents> in memory
    between listings (no stat a key, as S3): an object PUT (over another, or new in a new folder)
    is listed at once with its new MD5 and size and read back by GET, a DELETEd one is listed no
    more and its file is gone; a file changed on disk behind its back is not seen by the listing
    (as a bucket's disks are not), only by GET, and a PUT of it is listed again."""
    keys = [f"cat/c{i % 3}/item{i:04d}/item{i:04d}.json" for i in range(1_500)]
    for i, key in enumerate(keys):
        (tmp_path / key).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / key).write_bytes(b"{}" + b" " * (i % 5))
    outside = tmp_path.parent / f"{tmp_path.name}-outside.json"
    with ttfb_server(tmp_path, "--latency-ms", "0", "--bucket") as base:
        urls = [f"{base}/{key}" for key in keys]
        first = listed_as_dict(base, urls)
        assert first == {url: (hashlib.md5(b"{}" + b" " * (i % 5)).hexdigest(), 2 + i % 5) for i, url in enumerate(urls)}
        added = "cat/c1/new é/new.json"
        put = {keys[7]: b'{"edited": 1}', keys[900]: b'{"renamed": true}', added: b'{"new": 1}'}
        for key, data in put.items():
            response = httpx.put(f"{base}/{quote(key)}", content=data)
            assert response.status_code == 200 and response.headers["etag"] == f'"{hashlib.md5(data).hexdigest()}"'
        assert httpx.delete(f"{base}/{keys[1_400]}").status_code == 204
        assert httpx.delete(f"{base}/cat/never-there.json").status_code == 204
        assert httpx.put(f"{base}/%2E%2E/{outside.name}", content=b"{}").status_code == 404  # not out of the folder
        behind = tmp_path / keys[3]
        behind.write_bytes(b'{"behind its back": 1}')
        added_url = f"{base}/{quote(added)}"
        second = listed_as_dict(base, [*urls, added_url])
        assert httpx.get(f"{base}/{keys[3]}").content == b'{"behind its back": 1}'
        assert [httpx.get(f"{base}/{quote(key)}").content for key in put] == list(put.values())
        assert httpx.get(f"{base}/{keys[1_400]}").status_code == 404
        assert httpx.put(f"{base}/{keys[3]}", content=behind.read_bytes()).status_code == 200
        third = listed_as_dict(base, [*urls, added_url])
    assert not outside.exists() and not (tmp_path / keys[1_400]).exists()
    assert (tmp_path / added).read_bytes() == b'{"new": 1}'
    expected = dict(first)
    expected[urls[7]] = (hashlib.md5(b'{"edited": 1}').hexdigest(), 13)
    expected[urls[900]] = (hashlib.md5(b'{"renamed": true}').hexdigest(), 17)
    del expected[urls[1_400]]
    expected[added_url] = (hashlib.md5(b'{"new": 1}').hexdigest(), 10)
    assert second == expected  # keys[3] as it was: changed behind the endpoint's back
    expected[urls[3]] = (hashlib.md5(b'{"behind its back": 1}').hexdigest(), 22)
    assert third == expected


def test_a_listing_finds_keys_by_their_bytes_and_marks_etags_that_are_not_an_md5() -> None:
    """Listing.find: the MD5 bytes and size of each key listed; a multipart ETag, one of another
    length or not hex is no MD5 (the document is read again); keys out of order or listed twice
    (parts that overlap) are sorted and kept once; a key not listed is not found."""
    md5 = hashlib.md5(b"x").hexdigest()
    page = (b"<ListBucketResult><IsTruncated>false</IsTruncated>"
            + b"".join(b"<Contents><Key>%s</Key><ETag>&quot;%s&quot;</ETag><Size>%d</Size></Contents>" % (k, e, n)
                       for k, e, n in [(b"p/b", md5.encode(), 3), (b"p/a&amp;c", md5.upper().encode(), 4),
                                       (b"p/c", b"0123456789abcdef0123456789abcdef-2", 5),
                                       (b"p/d", md5[:31].encode() + b"g", 6), (b"p/e", md5[:30].encode(), 7),
                                       (b"p/b", md5.encode(), 3)])
            + b"</ListBucketResult>")
    (keys, etags, sizes), token = listing.parse_columns(page)
    assert token is None and keys[1] == b"p/a&c"
    listed = listing.Listing(keys, etags, sizes)
    assert len(listed) == 5
    wanted = [b"p/e", b"p/a&c", b"p/zz", b"p/c", b"p/b", b"p/d", b"p/"]
    found, digests, sizes_found = listed.find(np.array(wanted, dtype=bytes))
    assert found.tolist() == [False, True, False, False, True, False, False]
    assert digests[1].tobytes() == digests[4].tobytes() == hashlib.md5(b"x").digest()
    assert sizes_found[1] == 4 and sizes_found[4] == 3
    # found in sorted order whatever the keys' order (and when already sorted): the same answers
    in_order = sorted(wanted)
    again = listed.find(np.array(in_order, dtype=bytes))
    by_key = {k: (f, d.tobytes(), s) for k, f, d, s in zip(in_order, again[0].tolist(), again[1], again[2].tolist())}
    assert [by_key[k] for k in wanted] == list(zip(found.tolist(), (d.tobytes() for d in digests), sizes_found.tolist()))
    # find_keys (by the keys' hashes, a list in any order): the same answers, listed twice or not
    for n in (5, 6):  # without the second p/b (by the hashes), with it (listed twice: find, sorted)
        assert listing.Listing(keys[:n], etags[:n], sizes[:n]).find_keys(wanted)[0].tolist() == found.tolist()
    answer = listing.Listing(keys, etags, sizes).find_keys(wanted)
    assert [(f, d.tobytes(), s) for f, d, s in zip(answer[0].tolist(), answer[1], answer[2].tolist()) if f] == \
        [(f, d.tobytes(), s) for f, d, s in zip(found.tolist(), digests, sizes_found.tolist()) if f]
    assert listing.Listing([], [], []).find_keys(wanted)[0].tolist() == [False] * len(wanted)


def test_a_hash_equal_by_chance_is_no_match(monkeypatch: pytest.MonkeyPatch) -> None:
    """find_keys compares each key found by its hash with the one listed: a key not listed whose
    hash is a listed key's is not found."""
    md5 = hashlib.md5(b"x").hexdigest().encode()
    listed = listing.Listing([b"p/a", b"p/b"], [md5, md5], [b"1", b"2"])
    hashes = {b"p/a": 1, b"p/b": 2, b"p/gone": 2}

    class Key(bytes):
        def __hash__(self) -> int:
            return hashes[bytes(self)]

    listed._listed = [Key(b"p/a"), Key(b"p/b")]
    found, _, sizes = listed.find_keys([Key(b"p/gone"), Key(b"p/b"), Key(b"p/a")])
    assert found.tolist() == [False, True, True] and sizes.tolist()[1:] == [2, 1]


def _page(keys: list[str], token: str | None) -> bytes:
    entries = "".join(f"<Contents><Key>{k}</Key><ETag>&quot;{'0' * 32}&quot;</ETag><Size>2</Size></Contents>" for k in keys)
    more = f"<IsTruncated>true</IsTruncated><NextContinuationToken>{token}</NextContinuationToken>" if token else \
        "<IsTruncated>false</IsTruncated>"
    return f"<ListBucketResult>{more}{entries}</ListBucketResult>".encode()


def _send(handler: http.server.BaseHTTPRequestHandler, status: int, body: bytes = b"") -> None:
    handler.send_response(status)
    handler.send_header("Content-Length", str(len(body)))
    handler.end_headers()
    handler.wfile.write(body)


def _serving(answer: Callable[[http.server.BaseHTTPRequestHandler], None]) -> AbstractContextManager[str]:
    """A server on 127.0.0.1 whose GETs ``answer`` answers, in a thread: its base URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802
            answer(self)

        def log_message(self, *args: object) -> None:
            pass

    return in_thread(http_server(Handler))


@pytest.mark.parametrize("hostile", ["same token", "keys go back", "empty pages", "huge page"])
def test_a_listing_that_never_ends_or_is_too_large_is_refused_soon(hostile: str, driver: str,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A bucket endpoint that truncates its listing forever (the same token again, pages of
    keys it listed already, empty pages with new tokens) or answers a page of gigabytes: a
    FetchError after a few requests and at most MAX_PAGE_BYTES read (the reload then fetches
    conditionally), not 100,000 pages per part nor the whole body in memory."""
    monkeypatch.setattr(listing, "MAX_PAGE_BYTES", 1 << 20)
    requests: list[str] = []

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        n = len(requests)
        requests.append(handler.path)
        if hostile == "same token":
            body = _page([f"cat/k{n:06d}.json"], "again")
        elif hostile == "keys go back":
            body = _page(["cat/a.json", "cat/b.json"], f"t{n}")
        elif hostile == "empty pages":
            body = _page([], f"t{n}")
        else:
            handler.send_response(200)
            handler.send_header("Content-Length", str(1 << 30))
            handler.end_headers()
            head = _page(["cat/a.json"], None)[:-len(b"</ListBucketResult>")]
            try:
                handler.wfile.write(head)
                for _ in range(1 << 10):
                    handler.wfile.write(b" " * (1 << 20))
            except OSError:
                pass  # the reader stopped: as it should
            return
        _send(handler, 200, body)

    with _serving(answer) as base:
        with pytest.raises(FetchError) as raised:
            http_listing(f"{base}/", [f"{base}/cat/a.json", f"{base}/cat/z.json"], 10, 0)
    assert len(requests) <= listing.MAX_EMPTY_PAGES + 2, (hostile, len(requests))
    assert (OVER_LIMIT in str(raised.value)) == (hostile == "huge page"), raised.value


def test_the_bucket_endpoint_keeps_its_md5s_and_keys_across_a_restart(tmp_path: Path) -> None:
    """ttfb_server.py --bucket --md5-cache: written on SIGTERM, read at the start; the restarted
    server lists what was listed before (a PUT and a DELETE included), without walking the folder
    (a file put there behind its back is not listed)."""
    import subprocess
    import sys
    import time
    import urllib.request

    from bench import serverproc

    folder = tmp_path / "b"
    (folder / "a").mkdir(parents=True)
    (folder / "a" / "1.json").write_bytes(b'{"x": 1}')
    (folder / "a" / "2.json").write_bytes(b'{"y": 2}')
    cache = tmp_path / "md5s"
    port = serverproc.free_port()
    script = Path(__file__).resolve().parents[1] / "bench" / "ttfb_server.py"

    def request(path: str, method: str = "GET", data: bytes | None = None) -> bytes:
        for _ in range(100):
            try:
                with urllib.request.urlopen(urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method,
                                                                   data=data), timeout=10) as r:
                    return r.read()
            except OSError:
                time.sleep(0.1)
        raise AssertionError("the bench bucket did not answer")

    def listed(change: bool) -> bytes:
        proc = subprocess.Popen([sys.executable, str(script), str(folder), "--bucket", "--latency-ms", "0",
                                 "--port", str(port), "--md5-cache", str(cache)], stdout=subprocess.DEVNULL)
        try:
            if change:
                request("/a/1.json")
                request("/a/2.json")
                request("/c/3.json", "PUT", b'{"z": 3}')
                request("/a/2.json", "DELETE")
            return request("/?list-type=2&prefix=")
        finally:
            proc.terminate()
            assert proc.wait(timeout=60) == 0

    first = listed(True)
    assert cache.exists() and first.count(b"<Key>") == 2 and b"<Key>c/3.json</Key>" in first
    (folder / "behind.json").write_bytes(b"{}")
    assert listed(False) == first


@pytest.mark.parametrize("locations", [
    ["http://b.test/bucket/c/a.json", "http://b.test/bucket/c/été/b.json", "http://b.test/bucket/d.json"],
    ["http://b.test/bucket/c/a%20b.json", "http://b.test/bucket/c/b.json"],  # quoted: each URL's path
    ["http://b.test/bucket/c/a.json?v=2", "http://b.test/bucket/c/b.json"],
    ["http://b.test/bucket/c/a.json", "http://other.test/bucket/b.json"],  # not all under it
    ["http://b.test/bucket/c/a.json\nhttp://b.test/bucket/x.json"],  # a newline inside one
    [],
])
def test_keys_cut_from_joined_locations_are_each_locations_key_or_none(locations: list[str]) -> None:
    """joined_keys (a reload's keys cut out of its origins' joined locations, no string a
    location) gives location_key_list's keys where its fast path applies, None where it does not."""
    base = "http://b.test/bucket/"
    joined = "\n".join(locations).encode()
    keys = listing.joined_keys(base, joined, len(locations))
    under = all(location.startswith(base) for location in locations)
    plain = not any(mark in "".join(locations) for mark in "?#%\n")
    if under and plain:
        assert keys == listing.location_key_list(base, locations)
        assert keys == [location[len(base):].encode() for location in locations]
    else:
        assert keys is None


@pytest.mark.parametrize("failing", ["503 once", "403"])
def test_a_page_that_fails_once_is_asked_again_and_one_refused_ends_the_listing(failing: str, driver: str) -> None:
    """Each page of a listing in three parts (the second page of each first answers 503 once, or
    every second page 403): retried as any document is, the listing whole; a refusal ends the
    listing with its status (the reload then asks for each document instead)."""
    keys = [f"cat/k{i:05d}.json" for i in range(30)]
    served: list[str] = []

    def answer(handler: http.server.BaseHTTPRequestHandler) -> None:
        query = dict(parse_qsl(handler.path.partition("?")[2]))
        token = query.get("continuation-token")
        served.append(handler.path)
        if token is not None and (failing == "403" or served.count(handler.path) == 1):
            _send(handler, 403 if failing == "403" else 503)
            return
        after = token or query.get("start-after", "")
        rest = [k for k in keys if k > after][:4]
        more = len([k for k in keys if k > after]) > 4
        _send(handler, 200, _page(rest, rest[-1] if more else None))

    with _serving(answer) as base:
        pages = listing._pages(10, 2, None)
        page = lambda params: pages.get(f"{base}/?{listing._query(params)}")  # noqa: E731
        follow = (lambda parts: pages.follow(parts, lambda p: f"{base}/?{listing._query(p)}")) if pages.can_follow else None
        assert (follow is not None) == (driver == "curl")
        try:
            if failing == "403":
                with pytest.raises(FetchError, match="403"):
                    listing._list_parts(page, "cat/", [keys[9].encode(), keys[19].encode()], follow=follow)
                return
            found = listing._list_parts(page, "cat/", [keys[9].encode(), keys[19].encode()], follow=follow)
        finally:
            pages.close()
    assert found.keys.tolist() == [k.encode() for k in keys]
    assert any(served.count(path) == 2 for path in served)  # asked again
