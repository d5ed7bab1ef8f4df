"""What a person meets on the way: /api.html works air-gapped (Swagger UI from our own origin),
a favicon, and the bundled sample's thumbnails (served by the server itself) and projection
fields (enough for odc-stac, stackstac or GDAL's STACIT driver to lay out an array)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from server.sample import SAMPLE_DIR, SAMPLE_THUMBNAILS
from tests.conftest import TEST_BASE
from tests.helpers import prefix_proxy, run_server


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[tuple[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.refs.append((tag, value))


def _refs(html: str) -> list[tuple[str, str]]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


def test_api_html_loads_only_from_our_origin(client) -> None:
    r = client.get("/api.html")
    assert r.status_code == 200
    refs = _refs(r.text)
    assert {tag for tag, _ in refs} >= {"link", "script", "a"}
    for _, url in refs:
        assert url.startswith(TEST_BASE + "/"), url
    # and no other origin anywhere in the page (inline script included)
    assert set(re.findall(r"https?://[^/\"'\s]+", r.text)) == {TEST_BASE}
    wanted = {"script": "text/javascript", "link": None}
    for tag, url in refs:
        if tag not in wanted:
            continue
        asset = client.get(url)
        assert asset.status_code == 200, url
        kind = asset.headers["content-type"].split(";")[0]
        if url.endswith(".js"):
            assert kind == "text/javascript" and b"SwaggerUIBundle" in asset.content
        elif url.endswith(".css"):
            assert kind == "text/css" and b".swagger-ui" in asset.content
        else:
            assert url.endswith("/favicon.ico") and kind == "image/x-icon"


def test_api_html_behind_a_prefix(client) -> None:
    r = client.get("/api.html", headers={"X-Forwarded-Prefix": "/stac"})
    assert all(url.startswith(TEST_BASE + "/stac/") for _, url in _refs(r.text))


def test_swagger_ui_files_revalidate_and_only_those_are_served(client) -> None:
    first = client.get("/static/swagger-ui/swagger-ui.css")
    assert first.headers["cache-control"] == "public, max-age=86400"
    assert len(first.headers.get_list("etag")) == 1  # its own, not the index's too
    again = client.get("/static/swagger-ui/swagger-ui.css", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""
    for name in ("swagger-editor.js", "..%2Fcore.py", "index.css"):
        r = client.get(f"/static/swagger-ui/{name}")
        assert r.status_code == 404 and r.json()["code"] == "NotFoundError"


def test_favicon(client) -> None:
    r = client.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-icon"
    body = r.content
    assert body[:6] == b"\x00\x00\x01\x00\x01\x00"  # ICO, one image
    assert body[22:30] == b"\x89PNG\r\n\x1a\n" and len(body) < 2048
    assert r.headers["cache-control"] == "public, max-age=86400"


def _sample_items() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(SAMPLE_DIR.rglob("*.json"))
            if json.loads(p.read_text()).get("type") == "Feature"]


def test_every_sample_thumbnail_is_served_by_the_server(client) -> None:
    pystac = pytest.importorskip("pystac")
    thumbs = 0
    for raw in _sample_items():
        if raw["geometry"] is None:
            continue
        path = f"/collections/{raw['collection']}/items/{raw['id']}" if raw.get("collection") else None
        served = client.get(path).json() if path else raw
        href = served["assets"]["thumbnail"]["href"]
        assert raw["assets"]["thumbnail"]["href"] == f"/sample/thumbnails/{raw['id']}.png"  # as the sample writes it
        url = f"{TEST_BASE}/sample/thumbnails/{raw['id']}.png"
        if path:  # served below the API's base URL (a proxy's prefix: test_sample_thumbnails_behind_a_proxy)
            assert href == url
            item = pystac.Item.from_dict(served)
            assert item.assets["thumbnail"].get_absolute_href() == url
        r = client.get(urlsplit(url).path)
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert r.content[:8] == b"\x89PNG\r\n\x1a\n" and len(r.content) < 4096
        thumbs += 1
    assert thumbs == len(list(SAMPLE_THUMBNAILS.glob("*.png"))) > 60
    assert client.get("/sample/thumbnails/nothing.png").status_code == 404
    assert client.get("/sample/thumbnails/..%2Fmake_sample.py").status_code == 404


@pytest.mark.parametrize("forward_prefix", [True, False], ids=["X-Forwarded-Prefix", "--base-url"])
def test_sample_thumbnails_behind_a_proxy(forward_prefix: bool) -> None:
    """The real server behind a proxy that publishes it under /stac/ (saying so in
    X-Forwarded-Prefix, or the server given --base-url with the path): every item's thumbnail,
    as its JSON and its page give it, loads through the proxy. qa16: the hrefs were
    root-relative (/sample/thumbnails/...), outside the prefix: 404 behind the proxy."""
    with prefix_proxy("/stac", forward_prefix) as proxy:
        args = [] if forward_prefix else ["--base-url", proxy.url + "/"]
        with run_server(extra_args=args) as backend, httpx.Client(timeout=10) as http:
            proxy.backend = backend
            thumbnails, pages = set(), 0
            url: str | None = proxy.url + "/search?limit=40"
            while url:
                page = http.get(url).json()
                for feature in page["features"]:
                    thumbnail = feature.get("assets", {}).get("thumbnail")
                    if thumbnail is None:
                        continue
                    assert thumbnail["href"] == f"{proxy.url}/sample/thumbnails/{feature['id']}.png"
                    thumbnails.add(thumbnail["href"])
                    if len(thumbnails) % 10 == 1:  # some items' pages: their <img> is the same URL
                        html = http.get(next(ln["href"] for ln in feature["links"] if ln["rel"] == "alternate")).text
                        assert [src for tag, src in _refs(html) if tag == "img"] == [thumbnail["href"]]
                        pages += 1
                url = next((ln["href"] for ln in page["links"] if ln["rel"] == "next"), None)
            assert len(thumbnails) == len(list(SAMPLE_THUMBNAILS.glob("*.png"))) and pages > 5
            for href in thumbnails:
                r = http.get(href)
                assert r.status_code == 200 and r.headers["content-type"] == "image/png", href


def test_sample_thumbnails_through_a_symlink_and_in_a_copy(tmp_path: Path, sample_copy: Path, make_client) -> None:
    """The sample named through a symlink is the sample: its thumbnails go below the base URL; a
    copy elsewhere is a catalog of its own, whose root-relative hrefs stay as it wrote them."""
    from server.catalog.loader import load_catalogs

    (tmp_path / "link").symlink_to(SAMPLE_DIR)
    path = "/collections/dem-alps/items/dem-alps-n46e010"
    for root, href in ((tmp_path / "link" / "catalog.json", f"{TEST_BASE}/stac/sample/thumbnails/dem-alps-n46e010.png"),
                       (sample_copy / "catalog.json", "/sample/thumbnails/dem-alps-n46e010.png")):
        index, _ = load_catalogs([str(root)])
        with make_client(index=index) as c:
            doc = c.get(path, headers={"X-Forwarded-Prefix": "/stac"}).json()
            assert doc["assets"]["thumbnail"]["href"] == href, root


def test_sample_items_have_a_pixel_grid_over_their_footprint() -> None:
    pyproj = pytest.importorskip("pyproj", reason="pyproj comes with the parquet extra's stac-geoparquet")
    for item in _sample_items():
        if item["geometry"] is None:
            continue
        p = item["properties"]
        rows, cols = p["proj:shape"]
        res_x, _, x0, _, res_y, y0, *last = p["proj:transform"]
        assert last == [0.0, 0.0, 1.0] and res_y == -res_x and res_x > 0
        assert p["proj:bbox"] == pytest.approx([x0, y0 + rows * res_y, x0 + cols * res_x, y0], abs=1e-6)
        to_grid = pyproj.Transformer.from_crs(4326, p["proj:epsg"], always_xy=True)
        xs, ys = zip(*(to_grid.transform(*pt) for pt in item["geometry"]["coordinates"][0]))
        # the grid covers the footprint, with less than two pixels to spare on any side
        west, south, east, north = p["proj:bbox"]
        tol = res_x * 2
        assert west - 1e-6 <= min(xs) < west + tol and east - tol < max(xs) <= east + 1e-6, item["id"]
        assert south - 1e-6 <= min(ys) < south + tol and north - tol < max(ys) <= north + 1e-6, item["id"]


def test_the_committed_sample_is_what_the_script_writes(tmp_path: Path, monkeypatch) -> None:
    import importlib.util

    script = SAMPLE_DIR.parent / "make_sample.py"
    spec = importlib.util.spec_from_file_location("make_sample_under_test", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(module, "OUT", tmp_path / "catalog")
    monkeypatch.setattr(module, "THUMBS_OUT", tmp_path / "thumbnails")
    module.main()
    for ours, committed in ((tmp_path / "catalog", SAMPLE_DIR), (tmp_path / "thumbnails", SAMPLE_THUMBNAILS)):
        written = {p.relative_to(ours): p.read_bytes() for p in ours.rglob("*") if p.is_file()}
        shipped = {p.relative_to(committed): p.read_bytes() for p in committed.rglob("*") if p.is_file()}
        assert written.keys() == shipped.keys()
        assert [k for k in written if written[k] != shipped[k]] == []


@pytest.mark.skipif(shutil.which("gdalinfo") is None, reason="gdalinfo absent (Debian: gdal-bin)")
def test_gdal_stacit_builds_its_mosaic_from_our_search(live_server: str) -> None:
    """STACIT reads the search's items and groups their B04 assets by CRS (proj:epsg, with
    proj:transform and proj:shape for each footprint): one subdataset per CRS. Opening one
    would read the pixels, which live on the sample's fictional host."""
    search = f"{live_server}/search?collections=sentinel-2-l2a-nl&bbox=5.6,51.9,5.7,52.0"
    out = subprocess.run(["gdalinfo", f'STACIT:"{search}":asset=B04'], capture_output=True, text=True, timeout=120,
                         env={"GDAL_HTTP_TIMEOUT": "5", "PATH": "/usr/bin:/bin", "CPL_VSIL_CURL_ALLOWED_EXTENSIONS": ".tif"})
    text = out.stdout + out.stderr
    assert "No compatible asset found" not in text
    assert out.returncode == 0, text
    assert "asset=B04,crs=EPSG_32631" in text and "asset=B04,crs=EPSG_32632" in text
