"""The representation: ?f= over Accept, JSON for API clients and pages for browsers; the HTTP
cache keyed on it (a cached JSON body never reaches a browser, nor a page an API client);
alternate links both ways; errors as pages for browsers only."""

from __future__ import annotations

import pytest

from server.api.render import representation
from tests.conftest import TestClient

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"


@pytest.mark.parametrize(("query", "accept", "expected"), [
    (b"", None, "json"),
    (b"", b"*/*", "json"),
    (b"", b"application/json", "json"),
    (b"", b"application/geo+json", "json"),
    (b"", BROWSER.encode(), "html"),
    (b"", b"application/json, text/html;q=0.5", "json"),
    (b"", b"text/html;q=0.1, application/json", "json"),
    (b"", b"text/html;q=0", "json"),
    # text/* matches text/html (qa16: JSON); the most specific range gives each its q (RFC 9110 §12.5.1)
    (b"", b"text/*", "html"),
    (b"", b"text/*;q=1, application/json;q=0.5", "html"),
    (b"", b"text/*, application/json", "html"),  # equal q: the first listed
    (b"", b"application/json, text/*", "json"),
    (b"", b"text/*;q=0.9, text/html;q=0", "json"),  # text/html refused by its own range
    (b"", b"text/html;q=0.5, application/json;q=0.1, */*", "html"),
    (b"", b"text/plain", "json"),
    (b"", b"image/png", "json"),
    (b"", b"*/*;q=0.5, application/geo+json;q=0.1", "json"),  # HTML not asked for by name
    (b"", b"text/*;q=0", "json"),
    # media types are case-insensitive (RFC 9110 §8.3.1; qa17: upper case got JSON)
    (b"", b"TEXT/HTML", "html"),
    (b"", b"Text/Html", "html"),
    (b"", b"APPLICATION/XHTML+XML", "html"),
    (b"", b"TEXT/*", "html"),
    (b"", b"Text/*;Q=1, Application/Json;Q=0.5", "html"),
    (b"", b"APPLICATION/JSON, TEXT/HTML;Q=0.5", "json"),
    (b"", b"TEXT/HTML;Q=0", "json"),
    (b"", b"TEXT/PLAIN", "json"),
    (b"f=json", BROWSER.encode(), "json"),
    (b"f=html", None, "html"),
    (b"f=html", b"application/json", "html"),
    (b"limit=2&f=json&f=html", None, "html"),  # the last wins
    (b"f=xml", BROWSER.encode(), "html"),  # unknown: as if absent
])
def test_representation(query: bytes, accept: bytes | None, expected: str) -> None:
    assert representation(query, accept) == expected


@pytest.mark.parametrize("path", ["/", "/collections", "/collections/dem-alps", "/collections/dem-alps/items",
                                  "/search?limit=2", "/conformance"])
def test_api_clients_get_json_and_browsers_pages(client: TestClient, path: str) -> None:
    for accept in (None, "*/*", "application/json"):
        response = client.get(path, headers={"Accept": accept} if accept else {})
        assert response.headers["content-type"].startswith("application/"), (path, accept)
        response.json()
    page = client.get(path, headers={"Accept": BROWSER})
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert page.text.lstrip().lower().startswith("<!doctype html>")
    sep = "&" if "?" in path else "?"
    assert client.get(path + sep + "f=json", headers={"Accept": BROWSER}).headers["content-type"].startswith("application/")
    assert client.get(path + sep + "f=html").headers["content-type"].startswith("text/html")


def test_text_star_gets_pages_over_http(live_server: str) -> None:
    """Over the real server: Accept text/* (alone, or preferred to JSON) gets each document's
    page, and an error's, in any case; */* and JSON types still get JSON."""
    import httpx

    paths = ["/", "/collections", "/collections/dem-alps", "/collections/dem-alps/items?limit=2",
             "/collections/dem-alps/items/dem-alps-n46e008", "/search?limit=2", "/queryables", "/conformance"]
    with httpx.Client(base_url=live_server, timeout=10) as http:
        for path in paths:
            for accept in ("text/*", "text/*;q=1, application/json;q=0.5"):
                r = http.get(path, headers={"Accept": accept})
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (path, accept)
                assert r.text.lstrip().lower().startswith("<!doctype html>")
            for accept in ("*/*", "application/json, text/*;q=0.5", "application/geo+json"):
                r = http.get(path, headers={"Accept": accept})
                assert r.headers["content-type"].startswith("application/"), (path, accept)
                r.json()
            for accept in ("TEXT/HTML", "Text/*"):  # media types are case-insensitive (qa17: JSON)
                r = http.get(path, headers={"Accept": accept})
                assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), (path, accept)
        missing = http.get("/collections/nope", headers={"Accept": "text/*"})
        assert missing.status_code == 404 and missing.headers["content-type"].startswith("text/html")


def test_item_negotiates_too(client: TestClient) -> None:
    href = next(link["href"] for link in client.get("/collections/dem-alps/items", params={"limit": 1}).json()["features"][0]
                ["links"] if link["rel"] == "self")
    path = href.split("testserver", 1)[1]
    assert client.get(path).headers["content-type"] == "application/geo+json"
    assert client.get(path, headers={"Accept": BROWSER}).headers["content-type"].startswith("text/html")


def test_cache_and_etag_are_keyed_on_the_representation(client: TestClient) -> None:
    """Fails before the renderer: the cache served the first body it stored to every Accept."""
    path = "/collections/dem-alps"
    json_first = client.get(path)
    page = client.get(path, headers={"Accept": BROWSER})
    assert page.headers["content-type"].startswith("text/html")
    assert page.headers["etag"] != json_first.headers["etag"]
    assert "Accept" in page.headers["vary"] and "Accept" in json_first.headers["vary"]
    # and the other way round, each from the cache now
    assert client.get(path).headers["content-type"] == "application/json"
    assert client.get(path).content == json_first.content
    assert client.get(path, headers={"Accept": BROWSER}).content == page.content
    # a JSON ETag does not validate the page
    assert client.get(path, headers={"Accept": BROWSER, "If-None-Match": json_first.headers["etag"]}).status_code == 200
    assert client.get(path, headers={"If-None-Match": json_first.headers["etag"]}).status_code == 304


def _alternates(doc: dict) -> list[str]:
    return [link["href"] for link in doc["links"] if link["rel"] == "alternate" and link["type"] == "text/html"]


def test_every_json_document_links_its_page(client: TestClient) -> None:
    assert _alternates(client.get("/").json()) == ["http://testserver/?f=html"]
    assert _alternates(client.get("/collections").json()) == ["http://testserver/collections?f=html"]
    assert _alternates(client.get("/collections/dem-alps").json()) == ["http://testserver/collections/dem-alps?f=html"]
    items = client.get("/collections/dem-alps/items", params={"limit": 1}).json()
    assert _alternates(items) == ["http://testserver/collections/dem-alps/items?limit=1&f=html"]
    feature = items["features"][0]
    self_href = next(link["href"] for link in feature["links"] if link["rel"] == "self")
    assert _alternates(feature) == [self_href + "?f=html"]
    assert _alternates(client.get("/search", params={"limit": 1, "f": "json"}).json()) == \
        ["http://testserver/search?limit=1&f=html"]


def test_errors_are_pages_for_browsers_only(client: TestClient) -> None:
    for path in ("/collections/nope", "/no/such/route", "/search?bbox=1,2"):
        api = client.get(path)
        assert api.status_code in (400, 404)
        assert set(api.json()) == {"code", "description"}
        page = client.get(path, headers={"Accept": BROWSER})
        assert page.status_code == api.status_code
        assert page.headers["content-type"].startswith("text/html")
        assert api.json()["code"] in page.text
        assert "Accept" in page.headers["vary"] and "Accept" in api.headers["vary"]


def test_an_unknown_f_is_a_400(client: TestClient) -> None:
    response = client.get("/collections", params={"f": "xml"})
    assert response.status_code == 400 and "f" in response.json()["description"]
    assert client.get("/collections", params={"f": ""}).status_code == 200
    for blank in (" ", "\x0c", "\t"):  # not empty: no format (schemathesis: `f=%0C` answered 200)
        response = client.get("/queryables", params={"f": blank})
        assert response.status_code == 400 and "f" in response.json()["description"], blank
