"""What running STAC Browser 4.0.1 against the server found on our side, pinned over plain HTTP
against a live server:
- the queryables' geometry was a ``$ref`` to geojson.org: STAC Browser dereferences the queryables
  on every search form, so an air-gapped site saw a request to a third host fail (and a console
  error) each time;
- the landing page's and collections' links had no titles: STAC Browser lists them under
  "Additional Resources" by title, showing "aggregate (host)" twice for the GET and POST links."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx


def _refs(value: Any) -> Iterator[str]:
    """Every ``$ref`` in a JSON document."""
    if isinstance(value, dict):
        for key, member in value.items():
            if key == "$ref" and isinstance(member, str):
                yield member
            else:
                yield from _refs(member)
    elif isinstance(value, list):
        for member in value:
            yield from _refs(member)


def test_queryables_refer_to_no_other_host(live_server: str) -> None:
    collections = httpx.get(f"{live_server}/collections", params={"limit": 100}).json()["collections"]
    urls = [f"{live_server}/queryables"] + [f"{live_server}/collections/{quote(c['id'], safe='')}/queryables"
                                            for c in collections]
    for url in urls:
        doc = httpx.get(url).json()
        assert [ref for ref in _refs(doc) if not ref.startswith("#")] == [], url
        # the geometry as OGC API - Features declares one
        assert doc["properties"]["geometry"]["format"] == "geometry-any", url
        assert doc["properties"]["geometry"]["x-ogc-role"] == "primary-geometry", url


def test_landing_page_and_collection_links_are_titled(live_server: str) -> None:
    landing = httpx.get(f"{live_server}/").json()
    collection = httpx.get(f"{live_server}/collections/sentinel-2-l2a-nl").json()
    listed = httpx.get(f"{live_server}/collections").json()["collections"][0]
    for doc in (landing, collection, listed):
        ours = [link for link in doc["links"] if link["href"].startswith(live_server) and link["rel"] != "self"]
        assert ours and [link for link in ours if not link.get("title")] == [], doc["id"]
        # two links of one rel are told apart by their titles (aggregate GET and POST, search GET and POST)
        named = [(link["rel"], link["title"]) for link in ours if link["rel"] != "child"]
        assert len(named) == len(set(named)), doc["id"]
