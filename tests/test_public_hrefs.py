"""Hrefs a client can use (issue 16), against the real server:

- a catalog read over HTTP with a relative asset href, and ``--public-href SRC=DST``: the href
  served is the public one, and a client downloads the asset through it;
- a local catalog: no response (search, items, item, collections, pages, readiness) holds the
  server's path of the root, with no option, with a folder mapping and with ``--serve-assets``;
- ``--serve-assets``: rasterio reads a COG window through the API by range requests; the HTTP
  semantics of the served files (ranges, 206/416, ETag, traversal and symlinks refused);
- the settings' forms (repeated flags, a JSON list or commas in the environment) and a
  snapshot built with other href settings.

The self links of every item of the shared catalogs: tests/test_self_links.py.
"""

from __future__ import annotations

import http.client
import json
import os
import re
from collections import deque
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx
import numpy as np
import pytest

from tests.helpers import CatalogDir, catalog, collection, item, link, run_cli, run_server, serve_folder

rasterio = pytest.importorskip("rasterio", reason="rasterio (GDAL inside its wheel) comes with the test extra")


# -- a catalog with every kind of local href ---------------------------------------------------------------


def write_catalog(folder: CatalogDir) -> None:
    """A root catalog with a collection (relative, ../, absolute-path and file: asset hrefs, a
    collection asset, license links), a loose item under the root and a plain sub-catalog."""
    root = folder.root
    folder.write("catalog.json", catalog("root", [
        link("child", "./c/collection.json"), link("child", "./loose/catalog.json"),
        link("item", "./top/top.json"), link("license", "./LICENSE"),
    ], title="Root"))
    folder.write_text("LICENSE", "CC0")
    folder.write("c/collection.json", collection("c", [
        link("item", "./i1/i1.json"), link("item", "./i2/i2.json"), link("license", "../LICENSE"),
    ], assets={"thumbnail": {"href": "./thumb.png", "type": "image/png"}}))
    folder.write_text("c/thumb.png", "png")
    folder.write("c/i1/i1.json", item("i1", collection="c", bbox=(5, 50, 6, 51), links=[link("license", "../../LICENSE")],
                                      assets={
                                          "data": {"href": "./data.tif", "type": "image/tiff"},
                                          "meta": {"href": "../shared/meta.xml"},
                                          "absolute": {"href": str(root / "c" / "i1" / "abs.txt")},
                                          "file-url": {"href": (root / "c" / "i1" / "url.txt").as_uri()},
                                      }))
    for name in ("c/i1/data.tif", "c/shared/meta.xml", "c/i1/abs.txt", "c/i1/url.txt"):
        folder.write_text(name, f"contents of {name}")
    folder.write("c/i2/i2.json", item("i2", collection="c", bbox=(6, 50, 7, 51), assets={"data": {"href": "data.tif"}}))
    folder.write_text("c/i2/data.tif", "i2 data")
    folder.write("top/top.json", item("top", bbox=(1, 1, 2, 2), assets={"data": {"href": "./top.txt"}}))
    folder.write_text("top/top.txt", "top")
    folder.write("loose/catalog.json", catalog("loose", [link("item", "./l1/l1.json")], title="Loose ones"))
    folder.write("loose/l1/l1.json", item("l1", bbox=(3, 3, 4, 4), assets={"data": {"href": "./l1 file.txt"}}))
    folder.write_text("loose/l1/l1 file.txt", "l1")


def crawl(base: str) -> dict[str, str]:
    """Every API document reachable from the landing page by the links and asset hrefs the API
    wrote (JSON, and the page of each), plus a POST search and /_mgmt/ready: URL -> body."""
    bodies: dict[str, str] = {}
    queue = deque([base + "/", base + "/_mgmt/ready", base + "/api"])
    with httpx.Client(timeout=10) as client:
        while queue and len(bodies) < 400:
            url = queue.popleft()
            if url in bodies:
                continue
            response = client.get(url)
            assert response.status_code == 200, (url, response.status_code, response.text[:300])
            bodies[url] = response.text
            if "json" not in response.headers["content-type"]:
                continue
            for href in _hrefs(response.json()):
                if href.startswith(base) and "/_assets/" not in href and href not in bodies:
                    queue.append(href)
                    if "?" not in href and not href.endswith(("/api", "/queryables")):
                        queue.append(href + "?f=html")
        post = client.post(base + "/search", json={"limit": 100})
        bodies["POST /search"] = post.text
    return bodies


def _hrefs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["href"]] if isinstance(node.get("href"), str) and node.get("method", "GET") == "GET" else []
        return found + [h for value in node.values() for h in _hrefs(value)]
    if isinstance(node, list):
        return [h for value in node for h in _hrefs(value)]
    return []


def assert_no_server_path(bodies: dict[str, str], root: Path) -> None:
    paths = {str(root), os.path.realpath(root), str(root.parent)}
    for url, body in bodies.items():
        for path in paths:
            assert path not in body and path.replace("/", "\\/") not in body, f"{url} shows the server path {path}"
        assert "file:" not in body, url


def items_by_id(base: str) -> dict[str, dict[str, Any]]:
    features = httpx.get(base + "/search", params={"limit": 100}).json()["features"]
    return {f["id"]: f for f in features}


# -- remote catalogs: the bucket's address mapped to the public one --------------------------------------


def test_a_remote_relative_asset_href_answers_the_public_url(tmp_path: Path) -> None:
    bucket = CatalogDir(tmp_path / "bucket")
    bucket.write("catalog.json", catalog("root", [link("child", "./col/collection.json")]))
    bucket.write("col/collection.json", collection("col", [link("item", "./item1/item1.json"), link("license", "./LICENSE")]))
    bucket.write("col/item1/item1.json", item("item1", collection="col",
                                             assets={"data": {"href": "./item1.tif"}, "web": {"href": "https://x.example/a"}}))
    bucket.write_text("col/item1/item1.tif", "the asset's bytes")
    # the bucket, as the server reads it; and the same files at the address clients use
    with serve_folder(bucket.root) as internal, serve_folder(bucket.root) as public:
        with run_server([f"{internal}/catalog.json"]) as api:
            unmapped = httpx.get(f"{api}/collections/col/items/item1").json()
        assert unmapped["assets"]["data"]["href"] == f"{internal}/col/item1/item1.tif"  # where the server read it
        with run_server([f"{internal}/catalog.json"], ["--public-href", f"{internal}/=http://public.example/",
                                                       "--public-href", f"{internal}/col/item1/={public}/col/item1/"]) as api:
            doc = httpx.get(f"{api}/collections/col/items/item1").json()
            # the longest SRC wins
            assert doc["assets"]["data"]["href"] == f"{public}/col/item1/item1.tif"
            assert doc["assets"]["web"]["href"] == "https://x.example/a"
            col = httpx.get(f"{api}/collections/col").json()
            assert [ln["href"] for ln in col["links"] if ln["rel"] == "license"] == ["http://public.example/col/LICENSE"]
            assert httpx.get(doc["assets"]["data"]["href"]).text == "the asset's bytes"  # a client downloads it
        # the environment's comma-separated form, as a compose file writes it
        env = {"STAC_STATIC_PUBLIC_HREFS": f"{internal}/=http://public.example/, https://unused.example/=https://x.example/"}
        with run_server([f"{internal}/catalog.json"], env=env) as api:
            doc = httpx.get(f"{api}/collections/col/items/item1").json()
            assert doc["assets"]["data"]["href"] == "http://public.example/col/item1/item1.tif"
        env = {"STAC_STATIC_PUBLIC_HREFS": json.dumps([f"{internal}/col/=http://public.example/c/"])}
        with run_server([f"{internal}/catalog.json"], env=env) as api:
            doc = httpx.get(f"{api}/collections/col/items/item1").json()
            assert doc["assets"]["data"]["href"] == "http://public.example/c/item1/item1.tif"


@pytest.mark.parametrize(("flag", "env", "reason"), [
    ("http://bucket/", None, "is not SRC=DST"),  # no "="
    ("=https://data.example.org/", None, "is not SRC=DST"),  # no SRC
    ("http://bucket/=", None, "is not SRC=DST"),  # no DST
    ("data=/public/", None, "is not SRC=DST"),  # a DST that is no URL
    ("data=public.example.org/x", None, "is not SRC=DST"),
    (None, "[abc", "not a JSON list"),
    (None, '["http://bucket/"]', "is not SRC=DST"),
    (None, "[1]", "valid string"),
    (None, "http://bucket/=https://data.example.org/a,b", "write it as a JSON list"),  # split at the comma
], ids=["no-equals", "no-src", "no-dst", "path-dst", "schemeless-dst", "env-bad-json", "env-json-no-equals",
        "env-json-number", "env-comma-in-url"])
def test_a_public_href_that_is_not_src_equals_url_stops_the_start(tmp_path: Path, flag: str | None, env: str | None,
                                                                   reason: str) -> None:
    """A mistake in the setting, as a flag or in the environment, stops the start with its reason
    on one line: exit status 2, no traceback."""
    result = run_cli(["index", str(tmp_path), "-o", str(tmp_path / "x.idx"), *(["--public-href", flag] if flag else [])],
                     env={"STAC_STATIC_PUBLIC_HREFS": env} if env else None)
    assert result.returncode == 2, result.stderr
    assert reason in result.stderr and "public_hrefs" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    assert not (tmp_path / "x.idx").exists()


# -- local catalogs: never a server path ----------------------------------------------------------------


def test_a_local_catalog_without_options_shows_no_server_path(tmp_path: Path) -> None:
    folder = CatalogDir(tmp_path / "srv" / "data")
    write_catalog(folder)
    log = tmp_path / "server.log"
    with run_server([str(folder.path("catalog.json"))], log_path=log) as api:
        bodies = crawl(api)
        items = items_by_id(api)
        ready = httpx.get(api + "/_mgmt/ready").json()
    assert_no_server_path(bodies, folder.root)
    assert len(bodies) > 30, sorted(bodies)
    # as the catalog wrote them; absolute paths into the root made relative
    assert {k: a["href"] for k, a in items["i1"]["assets"].items()} == {
        "data": "./data.tif", "meta": "../shared/meta.xml", "absolute": "abs.txt", "file-url": "url.txt"}
    assert items["l1"]["assets"]["data"]["href"] == "./l1 file.txt"
    # i1: 4 assets and a license; i2, top, l1: 1 each; the collection's thumbnail and license;
    # the root catalog's license (the landing page, which stands for it, carries it)
    assert ready["load"]["hrefs_not_public"] == 11
    assert "11 local hrefs could not be made public" in log.read_text()


def test_a_local_catalog_with_its_folder_mapped(tmp_path: Path) -> None:
    folder = CatalogDir(tmp_path / "srv" / "data")
    write_catalog(folder)
    # relative to the working directory (the repository: run_server's cwd)
    relative = os.path.relpath(folder.root, Path(__file__).resolve().parents[1])
    with run_server([str(folder.path("catalog.json"))], ["--public-href", f"{relative}=https://data.example.org/stac"]) as api:
        bodies = crawl(api)
        items = items_by_id(api)
        ready = httpx.get(api + "/_mgmt/ready").json()
        misc = httpx.get(api + "/collections/loose").json()
    assert_no_server_path(bodies, folder.root)
    assert {k: a["href"] for k, a in items["i1"]["assets"].items()} == {
        "data": "https://data.example.org/stac/c/i1/data.tif", "meta": "https://data.example.org/stac/c/shared/meta.xml",
        "absolute": "https://data.example.org/stac/c/i1/abs.txt", "file-url": "https://data.example.org/stac/c/i1/url.txt"}
    assert items["l1"]["assets"]["data"]["href"] == "https://data.example.org/stac/loose/l1/l1%20file.txt"
    assert ready["load"]["hrefs_not_public"] == 0
    # the made collection and its items link their source files, mapped
    assert [ln["href"] for ln in misc["links"] if ln["rel"] == "via"] == ["https://data.example.org/stac/loose/catalog.json"]
    assert {ln["href"] for ln in items["l1"]["links"] if ln["rel"] == "alternate" and ln["type"] == "application/geo+json"} == {
        "https://data.example.org/stac/loose/l1/l1.json"}


SECRET = "the contents of a file outside the root"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A local catalog served with --serve-assets (and its access log at info level), a COG
    among its assets, a symlink out of the root and one inside it, a dot file."""
    tmp = tmp_path_factory.mktemp("served")
    folder = CatalogDir(tmp / "srv" / "data")
    write_catalog(folder)
    cog = folder.path("c/i1/cog.tif")
    make_cog(cog)
    doc = json.loads(folder.path("c/i1/i1.json").read_text())
    doc["assets"]["cog"] = {"href": "./cog.tif", "type": "image/tiff; application=geotiff; profile=cloud-optimized"}
    folder.write("c/i1/i1.json", doc)
    (tmp / "outside").mkdir()
    (tmp / "outside" / "secret.txt").write_text(SECRET)
    os.symlink(tmp / "outside" / "secret.txt", folder.path("c/escape.txt"))
    os.symlink(folder.path("c/i1"), folder.path("c/alias"))
    folder.write_text("c/.hidden", "hidden")
    log = tmp / "server.log"
    with run_server([str(folder.path("catalog.json"))], ["--serve-assets", "--log-level", "info"], log_path=log) as api:
        yield api, folder, cog, log


def make_cog(path: Path) -> None:
    """A 1024 x 1024 uint16 cloud-optimized GeoTIFF (256 x 256 tiles, overviews), values from
    the pixel's position, written with rasterio (GDAL's COG driver)."""
    from affine import Affine
    from rasterio.io import MemoryFile
    from rasterio.shutil import copy as copy_raster

    rows, cols = np.mgrid[0:1024, 0:1024]
    data = ((rows * 7 + cols * 13) % 65521).astype("uint16")
    profile = {"driver": "GTiff", "width": 1024, "height": 1024, "count": 1, "dtype": "uint16", "crs": "EPSG:32631",
               "transform": Affine(10, 0, 600000, 0, -10, 5800000)}  # (rasterio's from_origin warns with affine 3.1)
    with MemoryFile() as memory:
        with memory.open(**profile) as dataset:
            dataset.write(data, 1)
        with memory.open() as dataset:
            copy_raster(dataset, str(path), driver="COG", blocksize=256, compress="DEFLATE")


def test_with_serve_assets_no_server_path_and_hrefs_under_the_api(served: Any) -> None:
    api, folder, _, _ = served
    bodies = crawl(api)
    assert_no_server_path(bodies, folder.root)
    items = items_by_id(api)
    assert items["i1"]["assets"]["data"]["href"] == f"{api}/_assets/0/c/i1/data.tif"
    assert items["i1"]["assets"]["meta"]["href"] == f"{api}/_assets/0/c/shared/meta.xml"
    assert items["l1"]["assets"]["data"]["href"] == f"{api}/_assets/0/loose/l1/l1%20file.txt"
    for feature in items.values():  # every served href answers the file the catalog names
        for asset in feature["assets"].values():
            if "/_assets/" in asset["href"] and not asset["href"].endswith(".tif"):
                assert httpx.get(asset["href"]).text.startswith(("contents of", "top", "l1")), asset
    collection_doc = httpx.get(f"{api}/collections/c").json()
    assert httpx.get(collection_doc["assets"]["thumbnail"]["href"]).text == "png"
    # behind a proxy the hrefs follow the public base URL, like every link the API writes
    proxied = httpx.get(f"{api}/collections/c/items/i1", headers={
        "X-Forwarded-Proto": "https", "X-Forwarded-Host": "stac.example.org", "X-Forwarded-Prefix": "/api"}).json()
    assert proxied["assets"]["data"]["href"] == "https://stac.example.org/api/_assets/0/c/i1/data.tif"
    page = httpx.get(f"{api}/collections/c/items/i1", params={"f": "html"}).text
    assert f"{api}/_assets/0/c/i1/data.tif" in page
    ready = httpx.get(api + "/_mgmt/ready").json()
    assert ready["load"]["hrefs_not_public"] == 0


def test_rasterio_reads_a_cog_window_through_the_api_by_ranges(served: Any) -> None:
    api, _, cog, log = served
    href = items_by_id(api)["i1"]["assets"]["cog"]["href"]
    assert href == f"{api}/_assets/0/c/i1/cog.tif"
    window = rasterio.windows.Window(col_off=512, row_off=256, width=128, height=100)
    with rasterio.open(cog) as local:
        expected = local.read(1, window=window)
    before = log.read_text()
    with rasterio.Env(GDAL_DISABLE_READDIR_ON_OPEN="EMPTY_DIR", GDAL_HTTP_MAX_RETRY="0"):
        with rasterio.open(href) as remote:
            assert (remote.width, remote.height, remote.dtypes[0]) == (1024, 1024, "uint16")
            got = remote.read(1, window=window)
    assert np.array_equal(got, expected)
    requests = re.findall(r'"(GET|HEAD) /_assets/0/c/i1/cog\.tif HTTP/1\.1" (\d+)', log.read_text()[len(before):])
    assert ("GET", "206") in requests, requests
    assert ("GET", "200") not in requests, requests  # never the whole file


def _raw_get(api: str, path: str) -> tuple[int, str]:
    """GET with the path sent exactly as given (httpx would resolve dot segments first)."""
    parts = urlsplit(api)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()


def test_served_files_speak_http_ranges_and_refuse_what_is_outside(served: Any) -> None:
    api, folder, cog, _ = served
    url = f"{api}/_assets/0/c/i1/cog.tif"
    size = cog.stat().st_size
    data = cog.read_bytes()
    with httpx.Client(timeout=10) as client:
        head = client.head(url)
        assert head.status_code == 200 and int(head.headers["content-length"]) == size
        assert head.headers["accept-ranges"] == "bytes" and head.headers["etag"] and head.headers["last-modified"]
        assert head.headers["content-type"] == "image/tiff"
        whole = client.get(url, headers={"Accept-Encoding": "gzip"})
        assert whole.status_code == 200 and whole.content == data and "content-encoding" not in whole.headers
        part = client.get(url, headers={"Range": "bytes=100-299"})
        assert part.status_code == 206 and part.content == data[100:300]
        assert part.headers["content-range"] == f"bytes 100-299/{size}"
        tail = client.get(url, headers={"Range": "bytes=-10"})
        assert tail.status_code == 206 and tail.content == data[-10:]
        assert client.get(url, headers={"If-None-Match": head.headers["etag"]}).status_code == 304
        # If-Range with another validator: the whole file
        assert client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"other"'}).status_code == 200
        beyond = client.get(url, headers={"Range": f"bytes={size}-{size + 10}"})
        assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
        assert beyond.json()["code"] == "RangeNotSatisfiable"
        # a malformed Range is ignored (RFC 9110 14.2): the whole file
        odd = client.get(url, headers={"Range": "pages=1-2"})
        assert odd.status_code == 200 and odd.content == data
        # a symlink inside the root is followed; one out of it is refused
        assert client.get(f"{api}/_assets/0/c/alias/data.tif").text == "contents of c/i1/data.tif"
        escape = client.get(f"{api}/_assets/0/c/escape.txt")
        assert escape.status_code == 403 and escape.json()["code"] == "OutsideRoots" and SECRET not in escape.text
        for path in ("c/.hidden", "c/i1", "c/nothing.tif", "c//i1/data.tif"):
            response = client.get(f"{api}/_assets/0/{path}")
            assert response.status_code == 404 and response.json()["code"] == "NotFoundError", path
        for path in ("/_assets/1/catalog.json", "/_assets/x/catalog.json", "/_assets/-1/catalog.json"):
            assert client.get(api + path).status_code == 404, path
    for path in ("/_assets/0/../../outside/secret.txt", "/_assets/0/%2e%2e/%2e%2e/outside/secret.txt",
                 "/_assets/0/c/..%2F..%2F..%2Foutside/secret.txt", "/_assets/0/%2Fetc/passwd"):
        status, body = _raw_get(api, path)
        assert status in (403, 404) and SECRET not in body and "root:" not in body, (path, status)
        assert json.loads(body)["code"] in ("NotFoundError", "OutsideRoots")


def test_served_ranges_are_read_as_rfc_9110_writes_them(served: Any) -> None:
    """RFC 9110 14.1.1/14.2/15.5.17: ranges of which one is satisfiable are served (the others
    dropped), 416 only when none is; a range-spec is ASCII digits (anything else: the header
    is ignored, the whole file), of any length."""
    api, _, cog, _ = served
    url = f"{api}/_assets/0/c/i1/cog.tif"
    size = cog.stat().st_size
    data = cog.read_bytes()
    with httpx.Client(timeout=10) as client:
        some = client.get(url, headers={"Range": f"bytes=1-1,{size}-{size + 10}"})
        assert some.status_code == 206 and some.headers["content-range"] == f"bytes 1-1/{size}", some.headers
        assert some.content == data[1:2]
        for odd in ("bytes=+1-2", "bytes=1_0-20", "bytes=0x1-2", "bytes=1-2-3", "bytes=3-1", "bytes=1-2;q"):
            whole = client.get(url, headers={"Range": odd})
            assert whole.status_code == 200 and whole.content == data, odd
        many = "bytes=" + ",".join(f"{i}-{i}" for i in range(0, 2_000, 2))  # over 100 ranges: ignored
        assert client.get(url, headers={"Range": many}).status_code == 200
        long_last = client.get(url, headers={"Range": "bytes=10-" + "9" * 5_000})
        assert long_last.status_code == 206 and long_last.headers["content-range"] == f"bytes 10-{size - 1}/{size}"
        long_first = client.get(url, headers={"Range": "bytes=" + "9" * 5_000 + "-"})
        assert long_first.status_code == 416 and long_first.json()["code"] == "RangeNotSatisfiable"


def test_a_range_beyond_the_end_is_a_json_416_with_if_range_too(served: Any) -> None:
    api, _, cog, _ = served
    url = f"{api}/_assets/0/c/i1/cog.tif"
    size = cog.stat().st_size
    with httpx.Client(timeout=10) as client:
        head = client.head(url)
        for validator in (head.headers["etag"], head.headers["last-modified"]):  # an If-Range that holds
            for asked in (f"bytes={size}-", "bytes=-0"):
                beyond = client.get(url, headers={"Range": asked, "If-Range": validator})
                assert beyond.status_code == 416 and beyond.headers["content-range"] == f"bytes */{size}"
                assert beyond.json()["code"] == "RangeNotSatisfiable", (validator, asked)
            assert client.get(url, headers={"Range": "bytes=0-1", "If-Range": validator}).content == cog.read_bytes()[:2]


def test_a_root_number_of_any_length_is_a_404(served: Any) -> None:
    api, _, _, _ = served
    with httpx.Client(timeout=10) as client:
        for number in ("9" * 5_000, "99999999999999999999", "x", "-1", "0x0", "\u0660"):
            response = client.get(f"{api}/_assets/{quote(number)}/catalog.json")
            assert response.status_code == 404 and response.json()["code"] == "NotFoundError", number[:20]


def test_a_dot_file_is_refused_behind_a_symlink_too(served: Any) -> None:
    api, folder, _, _ = served
    folder.write_text("c/.config/secret.txt", "dot folder")
    os.symlink(".hidden", folder.path("c/to-hidden"))
    os.symlink(".config", folder.path("c/to-config"))
    with httpx.Client(timeout=10) as client:
        for path in ("c/to-hidden", "c/to-config/secret.txt", "c/.config/secret.txt"):
            response = client.get(f"{api}/_assets/0/{path}")
            assert response.status_code == 404 and response.json()["code"] == "NotFoundError", path


@pytest.mark.parametrize("change", ["truncate", "append", "replace", "delete"])
def test_a_file_changed_while_served_is_cut_short_without_a_traceback(served: Any, change: str) -> None:
    """A file rewritten in place while it is sent: the answer stops short (the client sees its
    Content-Length unmet, or the connection closed), the server logs one warning, no traceback;
    renamed over or deleted: the open file is sent whole."""
    api, folder, _, log = served
    path = folder.path(f"c/changing-{change}.bin")
    size = 64 * 1024 * 1024  # more than the sockets between hold: the server is mid-file
    with open(path, "wb") as out:
        out.truncate(size)
    before = len(log.read_text())
    parts = urlsplit(api)
    for ranges in (None, "bytes=100-40000000", "bytes=0-99,40000000-50000000"):
        with open(path, "wb") as out:
            out.truncate(size)
        connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
        connection.request("GET", f"/_assets/0/c/{path.name}", headers={"Range": ranges} if ranges else {})
        response = connection.getresponse()
        expected = int(response.headers["content-length"])
        got = len(response.read(1024 * 1024))
        if change == "truncate":
            os.truncate(path, 2 * 1024 * 1024)
        elif change == "append":
            with open(path, "ab") as out:
                out.write(b"x" * 1024 * 1024)
        elif change == "replace":
            path.rename(path.with_suffix(".old"))
            path.write_bytes(b"new")
        else:
            path.unlink()
        try:
            while chunk := response.read(1024 * 1024):
                got += len(chunk)
        except (http.client.IncompleteRead, ConnectionError):
            pass
        connection.close()
        if change == "truncate":
            assert got < expected, (ranges, got, expected)
        elif change == "append":  # the first bytes are as they were; the whole file's answer ends at them at most
            assert got <= expected, (ranges, got, expected)
        else:
            assert got == expected, (ranges, got, expected)
    path.unlink(missing_ok=True)
    path.with_suffix(".old").unlink(missing_ok=True)
    assert httpx.get(api + "/_mgmt/health").status_code == 200
    logged = log.read_text()[before:]
    assert "Traceback" not in logged and "Exception in ASGI" not in logged, logged[-3000:]
    # appended to: a range is still read whole; the whole file reads past its announced length,
    # unless the client has all of it and closed first
    warned = {"truncate": [3], "append": [0, 1]}.get(change, [0])
    assert logged.count("changed while it was served") in warned, logged[-3000:]


def test_without_serve_assets_nothing_is_served(tmp_path: Path) -> None:
    folder = CatalogDir(tmp_path / "data")
    write_catalog(folder)
    with run_server([str(folder.path("catalog.json"))]) as api:
        response = httpx.get(f"{api}/_assets/0/c/i1/data.tif")
    assert response.status_code == 404 and "--serve-assets" in response.json()["description"]


def test_a_reload_keeps_the_href_settings(tmp_path: Path) -> None:
    """A reload builds in a child process from the settings: the same hrefs come back."""
    folder = CatalogDir(tmp_path / "data")
    write_catalog(folder)
    args = ["--serve-assets", "--public-href", f"{folder.path('c/shared')}=https://shared.example/"]
    with run_server([str(folder.path("catalog.json"))], args, env={"STAC_STATIC_ADMIN_TOKEN": "t"}) as api:
        before = items_by_id(api)["i1"]["assets"]
        reloaded = httpx.post(api + "/_mgmt/reload", headers={"Authorization": "Bearer t"}, timeout=60)
        assert reloaded.status_code == 200, reloaded.text
        after = items_by_id(api)["i1"]["assets"]
    assert after == before
    assert before["meta"]["href"] == "https://shared.example/meta.xml"
    assert before["data"]["href"] == f"{api}/_assets/0/c/i1/data.tif"


def test_a_snapshot_built_with_other_href_settings_is_rebuilt(tmp_path: Path) -> None:
    folder = CatalogDir(tmp_path / "data")
    write_catalog(folder)
    snapshot = tmp_path / "x.idx"
    built = run_cli(["index", str(folder.path("catalog.json")), "-o", str(snapshot),
                     "--public-href", f"{folder.root}=https://old.example/"])
    assert built.returncode == 0, built.stderr
    log = tmp_path / "server.log"
    with run_server([str(folder.path("catalog.json"))], ["--index", str(snapshot),
                                                        "--public-href", f"{folder.root}=https://new.example/"],
                    log_path=log) as api:
        assert items_by_id(api)["top"]["assets"]["data"]["href"] == "https://new.example/top/top.txt"
    assert "built with other hrefs settings" in log.read_text()
    # the rebuild rewrote the snapshot: with the same settings it is used as it is
    with run_server([str(folder.path("catalog.json"))], ["--index", str(snapshot),
                                                        "--public-href", f"{folder.root}=https://new.example/"],
                    log_path=log) as api:
        assert items_by_id(api)["top"]["assets"]["data"]["href"] == "https://new.example/top/top.txt"
    assert "from snapshot" in log.read_text()
