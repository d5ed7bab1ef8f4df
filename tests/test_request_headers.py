"""Request header fields are bounded (STAC_STATIC_MAX_HEADER_BYTES): over the limit is a JSON
431 (RFC 6585), on the real server (uvicorn with httptools, which has no limit of its own)."""

from __future__ import annotations

import httpx

from server.settings import Settings
from tests.helpers import run_server

DEFAULT = Settings.model_fields["max_header_bytes"].default


def _assert_431(response: httpx.Response) -> None:
    assert response.status_code == 431, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "RequestHeaderFieldsTooLarge"
    assert str(body["description"])


def test_a_200_kb_header_is_a_431_and_normal_requests_are_served(live_server: str) -> None:
    with httpx.Client(base_url=live_server, timeout=10) as client:
        _assert_431(client.get("/search", headers={"X-Big": "a" * 200_000}))
        _assert_431(client.post("/search", json={"limit": 1}, headers={"Cookie": "c=" + "b" * 200_000}))
        # many small fields count as much as one large one
        _assert_431(client.get("/", headers={f"x-h{i}": "v" * 100 for i in range(DEFAULT // 100)}))
        assert client.get("/search", params={"limit": 1}).status_code == 200
        # large but under the limit: a big cookie or token still gets through
        assert client.get("/", headers={"X-Big": "a" * (DEFAULT // 2)}).status_code == 200


def test_the_limit_is_a_setting() -> None:
    with run_server(env={"STAC_STATIC_MAX_HEADER_BYTES": "4096"}) as base, httpx.Client(base_url=base) as client:
        _assert_431(client.get("/", headers={"X-Big": "a" * 8_000}))
        assert client.get("/", headers={"X-Big": "a" * 2_000}).status_code == 200


def test_a_host_header_that_is_no_host_is_a_400_and_never_written_into_links(live_server: str) -> None:
    """The Host header goes into every link; one of another form (a quote, markup, a path, a
    space, userinfo) is a JSON 400 (RFC 9112 3.2), on the JSON and the HTML answers alike, while
    names, addresses, IPv6 literals and ports are written as given (qa19: `Host: a"b<c>` gave
    hrefs `http://a"b<c>/...`)."""
    with httpx.Client(base_url=live_server, timeout=10) as client:
        for host in ('a"b<c>', "a b", "evil.example/x", "user@evil.example", "a'b", "<script>"):
            for path in ("/", "/search?limit=1", "/collections?f=html"):
                response = client.get(path, headers={"Host": host})
                assert response.status_code == 400, (host, path, response.text)
                assert response.headers["content-type"].startswith("application/json"), (host, path)
                assert response.json()["code"] == "InvalidRequestHeader"
                assert host not in response.text
        for host in ("example.org", "EXAMPLE.org:8443", "127.0.0.1:9", "[::1]:8080", "xn--bcher-kva.example"):
            response = client.get("/", headers={"Host": host})
            assert response.status_code == 200, (host, response.text)
            assert {link["href"] for link in response.json()["links"] if link["rel"] == "self"} == {f"http://{host}/"}
        # behind a proxy that names the host, the request's own Host is checked too
        response = client.get("/", headers={"Host": 'a"b', "X-Forwarded-Host": "public.example"})
        assert response.status_code == 400
        response = client.get("/", headers={"Host": "internal:8000", "X-Forwarded-Host": "public.example"})
        assert {link["href"] for link in response.json()["links"] if link["rel"] == "self"} == {"http://public.example/"}


def test_a_request_asking_for_a_websocket_is_answered_as_http(tmp_path) -> None:
    """No WebSocket endpoint here: a request asking to upgrade gets the HTTP answer to what it
    asks for (was an empty 403 once uvicorn upgraded it through wsproto, qa19), and no warning
    per request in the log (a line any client could write at will)."""
    upgrade = {"Upgrade": "websocket", "Connection": "Upgrade", "Sec-WebSocket-Version": "13",
               "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}
    log = tmp_path / "server.log"
    with run_server(log_path=log) as base, httpx.Client(base_url=base, timeout=10) as client:
        landing = client.get("/", headers=upgrade)
        assert landing.status_code == 200 and landing.json()["type"] == "Catalog", landing.text
        missing = client.get("/nope", headers=upgrade)
        assert missing.status_code == 404 and missing.json()["code"] == "NotFoundError", missing.text
    assert "WebSocket" not in log.read_text(), log.read_text()
