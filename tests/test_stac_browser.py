"""What running STAC Browser 4.0.1 against the server found on our side, pinned over plain HTTP
against a live server:
- the queryables' geometry was a ``$ref`` to geojson.org: STAC Browser dereferences the queryables
  on every search form, so an air-gapped site saw a request to a third host fail (and a console
  error) each time."""

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
