"""STAC Browser against the API (issue 15).

What running STAC Browser 4.0.1 against the server found on our side, pinned over plain HTTP
against a live server (these always run):
- the queryables' geometry is a ``$ref`` to geojson.org (kept: JSON clients read it), which STAC
  Browser dereferences on every search form, failing offline; it now also carries OGC API -
  Features' ``format``/``x-ogc-role``, which need no other host;
- the landing page's and collections' links had no titles: STAC Browser lists them under
  "Additional Resources" by title, showing "aggregate (host)" twice for the GET and POST links.

And the whole of it, opt-in (``STAC_BROWSER_TEST=1``): ``bench/stac_browser.py`` builds STAC
Browser with npm (~2.5 min the first time, then reused from ``$STAC_BROWSER_CACHE`` or
``~/.cache/stac-static-api``) and drives it in headless Chromium over the sample catalog and two
of ../shared/catalogs (their trees too: landing page, sub-catalogs, collections), comparing the
ids it shows with the JSON API's; screenshots go to
``$STAC_STATIC_SCREENSHOTS`` (else the test's temp dir)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.helpers import REPO, server_env


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


def test_queryables_refer_to_no_other_host_but_geojson(live_server: str) -> None:
    collections = httpx.get(f"{live_server}/collections", params={"limit": 100}).json()["collections"]
    urls = [f"{live_server}/queryables"] + [f"{live_server}/collections/{quote(c['id'], safe='')}/queryables"
                                            for c in collections]
    for url in urls:
        doc = httpx.get(url).json()
        assert [ref for ref in _refs(doc) if not ref.startswith("#")] == ["https://geojson.org/schema/Geometry.json"], url
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


# -- STAC Browser itself, opt-in -------------------------------------------------------------


def _missing() -> str | None:
    if not os.environ.get("STAC_BROWSER_TEST"):
        return "STAC_BROWSER_TEST is not set (the STAC Browser run builds it with npm: ~2.5 min the first time)"
    for tool, package in (("npm", "npm"), ("chromedriver", "chromium-driver")):
        if shutil.which(tool) is None:
            return f"needs {tool} (apt-get install {package})"
    if shutil.which("chromium") is None and shutil.which("chromium-browser") is None:
        return "needs chromium (apt-get install chromium)"
    return None


@pytest.mark.skipif(_missing() is not None, reason=_missing() or "")
def test_stac_browser_shows_what_the_api_answers(tmp_path: Path) -> None:
    shots = Path(os.environ.get("STAC_STATIC_SCREENSHOTS") or tmp_path / "screenshots")
    result = subprocess.run([sys.executable, "bench/stac_browser.py", "--screenshots", str(shots)],
                            cwd=REPO, env=server_env(), capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
    assert "every check passed" in result.stdout
