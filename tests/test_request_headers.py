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
