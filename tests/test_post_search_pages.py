"""POST /search for people and for links: a browser's POST (Accept text/html or ?f=html) gets
the result page, and the JSON of a POST links its page as the GET that asks the same, when the
body has a GET form (server.query.parameters.as_get_params). Against the real server."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
import pytest

from server.query.parameters import MAX_GET_QUERY, as_get_params

PAGE = {"Accept": "text/html"}
SQUARE = {"type": "Polygon", "coordinates": [[[4, 51], [7, 51], [7, 53], [4, 53], [4, 51]]]}


@pytest.fixture(scope="module")
def api(live_server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=live_server, timeout=30) as client:
        yield client


def _alternate(doc: dict[str, Any]) -> dict[str, Any] | None:
    return next((link for link in doc["links"] if link["rel"] == "alternate" and link["type"] == "text/html"), None)


def _as_json(href: str) -> str:
    """The GET alternate's URL asking for JSON instead of the page."""
    parts = urlsplit(href)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "f"]
    return parts._replace(query=urlencode([*query, ("f", "json")])).geturl()


def _bodies(api: httpx.Client) -> list[dict[str, Any]]:
    ids = [f["id"] for f in api.get("/search", params={"limit": 3}).json()["features"]]
    first = api.post("/search", json={"bbox": [3, 50, 8, 54], "limit": 2}).json()
    token = next(link for link in first["links"] if link["rel"] == "next")["body"]["token"]
    return [
        {"bbox": [3, 50, 8, 54], "limit": 2},
        {"bbox": [3, 50, 8, 54], "limit": 2, "token": token},  # page 2: the alternate is that page
        {"collections": ["sentinel-2-l2a-nl"], "datetime": "2021-01-01T00:00:00Z/..", "limit": 4,
         "sortby": [{"field": "properties.eo:cloud_cover", "direction": "desc"}, {"field": "id"}]},
        {"intersects": SQUARE, "fields": {"include": ["id", "properties.datetime"], "exclude": ["assets"]}},
        {"filter": {"op": "<", "args": [{"property": "eo:cloud_cover"}, 20]}, "filter-lang": "cql2-json"},
        {"filter": "eo:cloud_cover < 20 AND collection = 'sentinel-2-l2a-nl'", "limit": 3},
        {"filter": True, "limit": 1},
        {"q": ["sentinel", "ndvi"], "limit": 5},
        {"ids": ids, "collections": "sentinel-2-l2a-nl,dem-alps"},
        {"query": {"eo:cloud_cover": {"lt": 30}}, "fields": {"include": []}},
        {"datetime": None, "bbox": [5.5, 45, 11.5, 48.5], "limit": 6.0},  # null: not given; 6.0 is 6
    ]


def test_a_post_links_the_get_that_asks_the_same(api: httpx.Client) -> None:
    for body in _bodies(api):
        posted = api.post("/search", json=body)
        assert posted.status_code == 200, (body, posted.text)
        doc = posted.json()
        alternate = _alternate(doc)
        assert alternate is not None and alternate["method"] == "GET", body
        assert alternate["href"].startswith(f"{str(api.base_url).rstrip('/')}/search?") and alternate["href"].endswith("f=html")
        got = api.get(_as_json(alternate["href"]))
        assert got.status_code == 200, (body, got.text)
        again = got.json()
        assert again["features"] == doc["features"], body
        assert again["numberMatched"] == doc["numberMatched"], body
        assert [link["rel"] for link in again["links"] if link["rel"] in ("next", "prev", "first")] == \
            [link["rel"] for link in doc["links"] if link["rel"] in ("next", "prev", "first")], body
        page = api.get(alternate["href"])
        assert page.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("body", [
    {"ids": ["a,b"]},  # GET's ids are a comma list
    {"collections": ["sentinel-2-l2a-nl", " dem-alps"]},  # GET strips the space: another id
    {"fields": {"include": ["-assets"]}},  # GET reads "-" as an exclusion
    {"fields": {"include": [], "exclude": ["assets"]}},  # GET's exclusions alone keep everything else
    {"q": ["ndvi", '"sentinel, 2"']},  # a comma in a piece (here quoted: kept to be sure)
])
def test_a_post_that_get_cannot_say_has_no_alternate(api: httpx.Client, body: dict[str, Any]) -> None:
    assert as_get_params(body) is None
    posted = api.post("/search", json=body)
    assert posted.status_code == 200, posted.text
    assert _alternate(posted.json()) is None


def test_a_large_intersects_has_no_alternate(api: httpx.Client) -> None:
    """A polygon whose JSON is over MAX_GET_QUERY: no proxy would pass it in a URL."""
    import math

    ring = [[6 + 2 * math.cos(k / 200 * 2 * math.pi), 50 + 2 * math.sin(k / 200 * 2 * math.pi)] for k in range(200)]
    polygon = {"type": "Polygon", "coordinates": [[*ring, ring[0]]]}
    assert len(urlencode({"intersects": json.dumps(polygon)})) > MAX_GET_QUERY
    doc = api.post("/search", json={"intersects": polygon, "limit": 2}).json()
    assert doc["numberReturned"] > 0 and _alternate(doc) is None
    small = api.post("/search", json={"intersects": SQUARE, "limit": 2}).json()
    assert _alternate(small) is not None


def test_get_answers_keep_their_one_alternate(api: httpx.Client) -> None:
    doc = api.get("/search", params={"bbox": "3,50,8,54", "limit": 2}).json()
    assert [link["rel"] for link in doc["links"]].count("alternate") == 1


def _ids_in_table(html: str) -> list[str]:
    table = html.split('<table class="list" id="items">', 1)[1].split("</table>", 1)[0]
    return re.findall(r'<tr>\s*<td><a href="[^"]+"><bdi>([^<]+)</bdi></a></td>', table)  # ids isolated (pages.ident)


@pytest.mark.parametrize("how", ["accept", "f"])
def test_a_browser_post_gets_the_result_page(api: httpx.Client, how: str) -> None:
    body = {"bbox": [3, 50, 8, 54], "datetime": "2020-01-01T00:00:00Z/..", "limit": 2}
    doc = api.post("/search", json=body).json()
    if how == "accept":
        page = api.post("/search", json=body, headers=PAGE)
    else:
        page = api.post("/search", params={"f": "html"}, json=body)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert _ids_in_table(html) == [f["id"] for f in doc["features"]]
    # the form is filled in, and the JSON and next-page links are GETs asking the same
    assert 'name="bbox" value="3,8,50,54"' not in html and 'name="bbox" value="3,50,8,54"' in html
    assert 'name="datetime" value="2020-01-01T00:00:00Z/.."' in html
    json_href = re.search(r'<link rel="alternate" type="application/json" href="([^"]+)">', html)
    assert json_href is not None
    assert api.get(json_href.group(1).replace("&amp;", "&")).json()["features"] == doc["features"]
    next_href = re.search(r'<a href="([^"]+)" rel="next">', html)
    assert next_href is not None
    following = api.get(next_href.group(1).replace("&amp;", "&"), headers={"Accept": "application/json"}).json()
    token = next(link for link in doc["links"] if link["rel"] == "next")["body"]["token"]
    assert following["features"] == api.post("/search", json={**body, "token": token}).json()["features"]


def test_a_browser_post_get_cannot_say_is_still_a_page(api: httpx.Client) -> None:
    body = {"ids": ["a,b"], "limit": 2}
    page = api.post("/search", json=body, headers=PAGE)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "no URL can say" in page.text and 'rel="next"' not in page.text
    assert 'type="application/json"' not in page.text.split("<main>")[0]  # no JSON link that would lose the body
