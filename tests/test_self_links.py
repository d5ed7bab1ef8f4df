"""Every item every response returns carries a self link that answers 200 with that item
(issue 16): for every shared catalog (loose items under plain catalogs, catalogs with no
collection at all, an item file as the root) and the bundled sample, each on the real server;
and pystac's get_self_href() through pystac-client."""

from __future__ import annotations

import os
from typing import Any

import httpx
import pytest
from pystac_client import Client

from server.sample import SAMPLE_ROOT
from tests.helpers import SHARED, run_server, shared_roots

ROOTS = [[str(SAMPLE_ROOT)], *shared_roots()]


def _name(roots: list[str]) -> str:
    return "sample" if roots[0] == str(SAMPLE_ROOT) else os.path.relpath(roots[0], SHARED)


def _pages(client: httpx.Client, url: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """A GET listing and every page after it (its next links)."""
    pages = []
    response = client.get(url, params=params)
    while True:
        assert response.status_code == 200, (url, response.text[:300])
        pages.append(response.json())
        following = [ln["href"] for ln in pages[-1].get("links", []) if ln["rel"] == "next"]
        if not following:
            return pages
        response = client.get(following[0])


def _self(feature: dict[str, Any]) -> str:
    hrefs = [ln["href"] for ln in feature["links"] if ln["rel"] == "self"]
    assert len(hrefs) == 1, (feature["id"], feature["links"])
    return hrefs[0]


@pytest.mark.parametrize("roots", ROOTS, ids=_name)
def test_every_item_in_every_response_answers_at_its_self_link(roots: list[str]) -> None:
    with run_server(roots) as api, httpx.Client(timeout=10) as client:
        features: list[dict[str, Any]] = []
        collections = [c for p in _pages(client, api + "/collections") for c in p["collections"]]
        for col in collections:
            features += [f for p in _pages(client, f"{api}/collections/{col['id']}/items", {"limit": 50}) for f in p["features"]]
        searched = [f for p in _pages(client, api + "/search", {"limit": 100}) for f in p["features"]]
        features += searched
        posted = client.post(api + "/search", json={"limit": 10_000})
        features += posted.json()["features"]
        # every item is in some collection: the collection listings hold them all
        assert len(features) == 3 * len(searched) and posted.json()["numberMatched"] == len(searched)
        answers: dict[str, Any] = {}
        for feature in features:
            href = _self(feature)
            assert href.startswith(api + "/collections/"), href
            if href not in answers:
                response = client.get(href)
                assert response.status_code == 200, (href, response.text[:300])
                answers[href] = response.json()
            assert answers[href] == feature, href
            collection_href = next(ln["href"] for ln in feature["links"] if ln["rel"] == "collection")
            assert collection_href == f"{api}/collections/{feature['collection']}" or "%" in collection_href
        assert len(answers) == len(searched)

        # pystac's view through pystac-client: every item knows where it lives
        api_client = Client.open(api + "/")
        for found in api_client.search(max_items=None, limit=100).items():
            assert found.get_self_href() in answers, found.id
        for col in api_client.get_collections():
            for found in col.get_items():
                assert found.get_self_href() in answers, (col.id, found.id)
