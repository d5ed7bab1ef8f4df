"""No single request takes the server down: every request of the hostile corpus
(tests/hostile_requests.py) sent to the real server is answered, 200 or a JSON 4xx
(STAC API - Item Search §Errors: {"code", "description"}), within the query time budget plus a
small bound, and /_mgmt/health answers within a second after each, and while they run."""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.helpers import CatalogDir, collection, item, run_server
from tests.hostile_requests import COLLECTION, HostileRequest, corpus

BUDGET = 2.0  # STAC_STATIC_QUERY_TIME_BUDGET for this server, seconds
BOUND = 3.0  # what a request may take beyond it (a loaded 2-core CI machine)
ITEMS = 3_000


@pytest.fixture(scope="module")
def hostile_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = CatalogDir(tmp_path_factory.mktemp("hostile"))
    lines = []
    for i in range(ITEMS):
        x, y = (i % 60) - 10, 36 + (i // 60) % 30
        props = {"gsd": 10 + i % 3, "platform": f"sat-{i % 4}", "title": f"scene {i} over tile {i % 97}"}
        lines.append(item(f"item-{i:05d}-aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", (x, y, x + 1, y + 1),
                          f"2020-{1 + i % 12:02d}-01T00:00:00Z", COLLECTION, properties=props))
    folder.write("collection.json", collection(COLLECTION))
    folder.write_text("items.ndjson", "\n".join(json.dumps(doc) for doc in lines) + "\n")
    env = {"STAC_STATIC_QUERY_TIME_BUDGET": str(BUDGET)}
    with run_server([str(folder.path("collection.json")), str(folder.path("items.ndjson"))], env=env) as base:
        yield base


@dataclass
class Answer:
    status: int
    body: bytes
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body)


def send(base: str, case: HostileRequest) -> Answer:
    """The request as it is, over http.client: httpx refuses URLs over 64 KiB, and a hostile
    client is under no such limit."""
    url = urllib.parse.urlsplit(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=BUDGET + BOUND + 5)
    content = case.content if case.content is not None else None if case.body is None else json.dumps(case.body).encode()
    headers = {**({"content-type": "application/json"} if case.body is not None else {}), **case.headers}
    target = case.path + ("?" + urllib.parse.urlencode(case.params) if case.params else "")
    started = time.monotonic()
    try:
        connection.request(case.method, target, body=content, headers=headers)
        response = connection.getresponse()
        return Answer(response.status, response.read(), time.monotonic() - started)
    finally:
        connection.close()


def assert_answered(answer: Answer, case: HostileRequest) -> None:
    assert answer.status < 500, (case.name, answer.status, answer.body[:500])
    if answer.status >= 400:
        body = answer.json()
        assert set(body) >= {"code", "description"}, (case.name, body)
    assert answer.seconds < BUDGET + BOUND, (case.name, answer.seconds)


def assert_alive(client: httpx.Client, base: str) -> None:
    started = time.monotonic()
    assert client.get(base + "/_mgmt/health").status_code == 200
    assert time.monotonic() - started < 1.0


@pytest.mark.parametrize("case", corpus(), ids=lambda case: case.name)
def test_hostile_request_is_answered_in_time(hostile_server: str, case: HostileRequest) -> None:
    assert_answered(send(hostile_server, case), case)
    with httpx.Client(timeout=5) as client:
        assert_alive(client, hostile_server)


def test_health_answers_while_hostile_requests_run(hostile_server: str) -> None:
    """Four clients send the corpus while a fifth asks /_mgmt/health: it never waits a second."""
    cases = corpus()
    waits: list[float] = []
    with httpx.Client(timeout=5) as client, concurrent.futures.ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(send, hostile_server, case) for case in cases]
        while not all(f.done() for f in futures):
            started = time.monotonic()
            assert client.get(hostile_server + "/_mgmt/health").status_code == 200
            waits.append(time.monotonic() - started)
            time.sleep(0.05)
    for case, future in zip(cases, futures):
        assert_answered(future.result(), case)
    assert waits and max(waits) < 1.0, sorted(waits)[-5:]


def test_like_is_exact_for_wildcards_underscores_and_escapes(hostile_server: str) -> None:
    """CQL2 §LIKE: % any run, _ one character, backslash escapes; runs of % change nothing."""
    with httpx.Client(timeout=30) as client:
        def count(pattern: str) -> int:
            response = client.get(f"{hostile_server}/search", params={"filter": f"id LIKE '{pattern}'", "limit": 1})
            assert response.status_code == 200, response.text
            return response.json()["numberMatched"]

        assert count("%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%%Z") == 0
        assert count("%" * 50) == ITEMS
        assert count("item-0000_-%") == 10
        assert count("item-%0-%a%a%") == ITEMS // 10
        assert count("item-00012-" + "_" * 32) == 1
        assert count("item-00012-" + "_" * 31) == 0
        assert count("item\\-00012%") == 1
        assert count("item\\%%") == 0
