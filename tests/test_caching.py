"""HTTP caching: ETag and 304, Cache-Control, the response cache, and invalidation on reload."""

from __future__ import annotations

import gzip
import http.client
import json
import shutil
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from server.runtime.app import create_app
from server.sample import SAMPLE_ROOT
from server.settings import Settings
from tests.conftest import TestClient


def test_etag_revalidates_with_304_and_no_body(client: TestClient) -> None:
    first = client.get("/search", params={"limit": 3})
    etag = first.headers["etag"]
    assert etag.startswith('W/"')
    assert "max-age=" in first.headers["cache-control"]
    again = client.get("/search", params={"limit": 3}, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get("/search", params={"limit": 3}).content == first.content


def test_etag_differs_by_url_and_by_link_shaping_headers(client: TestClient) -> None:
    a = client.get("/search", params={"limit": 3}).headers["etag"]
    b = client.get("/search", params={"limit": 4}).headers["etag"]
    c = client.get("/search", params={"limit": 3}, headers={"X-Forwarded-Host": "stac.example.com"})
    assert len({a, b, c.headers["etag"]}) == 3
    # The cached body for one host is never served to another.
    assert "stac.example.com" in c.text
    assert "stac.example.com" not in client.get("/search", params={"limit": 3}).text


def test_errors_and_posts_are_not_cached(client: TestClient) -> None:
    assert "etag" not in client.get("/search", params={"limit": 0}).headers
    assert "etag" not in client.post("/search", json={"limit": 1}).headers
    assert "etag" not in client.get("/_mgmt/ready").headers


def test_a_reload_changes_every_etag(tmp_path: Path) -> None:
    root = tmp_path / "sample"
    shutil.copytree(SAMPLE_ROOT.parent, root)
    app = create_app(Settings(roots=[str(root / "catalog.json")], admin_token="t"))
    with TestClient(app) as client:
        while client.get("/_mgmt/ready").status_code != 200:
            pass
        before = client.get("/collections/dem-alps")
        doc = json.loads((root / "dem-alps" / "collection.json").read_text())
        doc["title"] = "Renamed"
        (root / "dem-alps" / "collection.json").write_text(json.dumps(doc))
        assert client.post("/_mgmt/reload", headers={"Authorization": "Bearer t"}).status_code == 200
        stale = client.get("/collections/dem-alps", headers={"If-None-Match": before.headers["etag"]})
        assert stale.status_code == 200
        assert stale.json()["title"] == "Renamed"
        assert stale.headers["etag"] != before.headers["etag"]


def test_cached_responses_carry_the_cors_headers_of_their_own_request(client: TestClient) -> None:
    """Found by QA: the cache stored the headers CORS had added for the first request and served
    them (and a doubled Vary: Origin) to later ones."""
    url = "/search?limit=2&bbox=0,40,20,60"
    with_origin = client.get(url, headers={"Origin": "https://browser.example"})
    assert with_origin.headers["access-control-allow-origin"] == "*"
    without = client.get(url)
    assert "access-control-allow-origin" not in without.headers
    again = client.get(url, headers={"Origin": "https://browser.example"})
    assert again.headers["access-control-allow-origin"] == "*"
    assert [v.strip().lower() for v in again.headers["vary"].split(",")].count("origin") == 1
    assert with_origin.content == without.content == again.content


@pytest.mark.parametrize("url", ["/search?limit=2", "/collections/no-such", "/_mgmt/health", "/search?bbox=1"])
@pytest.mark.parametrize("origin", [None, "https://browser.example"])
def test_every_response_varies_on_origin_once(client: TestClient, url: str, origin: str | None) -> None:
    """Requests without an Origin skip the CORS middleware (CorsWhenOrigin) but their responses,
    which lack the CORS headers, still say Vary: Origin, so no cache hands them to a browser."""
    response = client.get(url, headers={"Origin": origin} if origin else {})
    vary = [v.strip().lower() for v in response.headers.get("vary", "").split(",")]
    assert vary.count("origin") == 1, response.headers
    assert ("access-control-allow-origin" in response.headers) == (origin is not None)


def test_vary_names_every_link_shaping_header_and_star_revalidates(client: TestClient) -> None:
    response = client.get("/conformance")
    assert "X-Forwarded-Port" in response.headers["vary"]
    assert client.get("/conformance", headers={"If-None-Match": "*"}).status_code == 304


def test_large_responses_are_gzipped_for_clients_that_accept_it(client: TestClient) -> None:
    page = client.get("/search", params={"limit": 50}, headers={"Accept-Encoding": "gzip"})
    assert page.headers["content-encoding"] == "gzip" and "accept-encoding" in page.headers["vary"].lower()
    raw = client.get("/search", params={"limit": 50}, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in raw.headers
    assert page.json() == raw.json()
    assert int(page.headers["content-length"]) * 4 < len(raw.content)  # httpx decoded it; it came smaller
    small = client.get("/conformance", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in small.headers  # under STAC_STATIC_GZIP_MIN_BYTES


@pytest.mark.parametrize("accept", ["gzip;q=0", "gzip; q=0.0, identity", "identity, gzip;Q=0", "deflate, GZIP;q=0.000",
                                    "gzip;q=0, x-gzip;q=0", "X-GZIP;q=0, gzip;q=nope"])
def test_gzip_refused_with_q_zero_is_not_sent(client: TestClient, accept: str) -> None:
    """q=0 marks a coding "not acceptable" (RFC 9110 §12.5.3): such a client got gzip anyway."""
    raw = client.get("/search", params={"limit": 50}, headers={"Accept-Encoding": accept})
    assert "content-encoding" not in raw.headers, accept
    assert raw.json()["numberReturned"] == 50


@pytest.mark.parametrize("accept", ["GZIP", "Gzip, deflate", "br, GZip;q=0.5", "deflate;q=0.5, X-GZIP"])
def test_gzip_named_in_any_case_is_sent(live_server: str, accept: str) -> None:
    """Content codings are case-insensitive (RFC 9110 §8.4.1): "GZIP" got an uncompressed body
    (the pre-check and Starlette's own test both looked for lowercase "gzip"). Raw HTTP to the
    real server, so nothing decodes or rewrites the header on the way."""
    url = urlsplit(live_server)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    try:
        conn.request("GET", "/search?limit=50", headers={"Accept-Encoding": accept})
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    assert response.status == 200 and response.getheader("content-encoding") == "gzip", accept
    assert "accept-encoding" in (response.getheader("vary") or "").lower()
    assert json.loads(gzip.decompress(body))["numberReturned"] == 50


@pytest.mark.parametrize("accept", ["gzip;q=0.5", "gzip; q=1, identity;q=0.1", "br;q=0, gzip",
                                    "x-gzip;q=0, gzip", "x-gzip;q=0, GZIP;q=0.3"])
def test_gzip_with_a_positive_q_is_sent(client: TestClient, accept: str) -> None:
    """gzip accepted under one of its names is accepted: the first name's q=0 ("x-gzip;q=0,
    gzip") ended the check and the body went uncompressed."""
    page = client.get("/search", params={"limit": 50}, headers={"Accept-Encoding": accept})
    assert page.headers.get("content-encoding") == "gzip", accept


def test_if_none_match_compares_entity_tags_weakly(live_server: str) -> None:
    """If-None-Match uses the weak comparison (RFC 9110 §13.1.2): W/"x" and "x" are the same
    tag. qa16: the strong form of the ETag of a document (a weak one), as a cache or proxy that
    drops the W/ sends it back, got a 200 and the whole body again; so did the weak form of a
    served file's strong ETag (nginx's gzip makes them weak). Raw HTTP to the real server."""
    url = urlsplit(live_server)

    def get(path: str, if_none_match: str | None = None) -> http.client.HTTPResponse:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            conn.request("GET", path, headers={} if if_none_match is None else {"If-None-Match": if_none_match})
            response = conn.getresponse()
            response.read()
            return response
        finally:
            conn.close()

    etag = get("/collections/dem-alps").getheader("etag") or ""
    assert etag.startswith('W/"'), etag
    opaque = etag[2:]
    for given in (etag, opaque, f'"other", {opaque}', f'W/"other",{etag}', "*"):
        assert get("/collections/dem-alps", given).status == 304, given
    for given in ('"other"', f"W/{etag}", opaque[:-2] + '"', ""):
        assert get("/collections/dem-alps", given).status == 200, given
    thumbnail = "/sample/thumbnails/S2A_MSIL2A_20231212T103407_T31UES.png"
    strong = get(thumbnail).getheader("etag") or ""  # a file's: a strong tag
    assert strong.startswith('"'), strong
    assert get(thumbnail, f"W/{strong}").status == get(thumbnail, strong).status == 304
    assert get(thumbnail, '"other"').status == 200


def test_if_none_match_star_is_a_304_only_where_there_is_a_document(live_server: str) -> None:
    """qa19: If-None-Match: * (any current representation, RFC 9110 §13.1.2) was answered 304
    for every URL, one naming no collection or item and a malformed search too: the ETag is made
    from the URL alone, before the request runs. RFC 9110 §13.2.1: preconditions are ignored
    where the answer would be other than 2xx. Now a 404 and a 400 as without it; a document
    that exists is still a 304, stored or not (the first ask of a URL runs it, no body sent)."""
    url = urlsplit(live_server)

    def get(path: str, if_none_match: str) -> tuple[int, bytes, str | None]:
        conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
        try:
            conn.request("GET", path, headers={"If-None-Match": if_none_match, "Accept-Encoding": "gzip"})
            response = conn.getresponse()
            return response.status, response.read(), response.getheader("etag")
        finally:
            conn.close()

    for given in ("*", '"other", *'):
        assert get("/collections/nope", given)[0] == 404, given
        assert get("/collections/dem-alps/items/nope", given)[0] == 404, given
        assert get("/search?limit=0", given)[0] == 400, given
        status, body, etag = get(f"/search?limit=2&star={len(given)}", given)  # a URL asked for the first time
        assert (status, body) == (304, b"") and etag and etag.startswith('W/"'), (given, status, body[:100])
        assert get(f"/search?limit=2&star={len(given)}", given)[:2] == (304, b"")  # and once stored
