"""s3:// catalogs, against a real S3-compatible server on loopback (moto in server mode)."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from server.catalog.loader import load_catalogs
from server.runtime.app import create_app
from server.sample import SAMPLE_ROOT
from server.settings import Settings
from tests.conftest import TestClient

boto3 = pytest.importorskip("boto3", reason="boto3 is the s3:// client; it comes with the test extra")
moto_server = pytest.importorskip("moto.server", reason="moto[server] comes with the test extra")

BUCKET = "stac-bucket"


@pytest.fixture
def s3_endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    try:
        yield endpoint
    finally:
        server.stop()


def upload_sample(prefix: str = "stac") -> object:
    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    root = SAMPLE_ROOT.parent
    for path in root.rglob("*.json"):
        client.put_object(Bucket=BUCKET, Key=f"{prefix}/{path.relative_to(root).as_posix()}", Body=path.read_bytes())
    return client


def test_an_s3_catalog_loads_like_a_local_one(s3_endpoint: str) -> None:
    upload_sample()
    local, _ = load_catalogs([str(SAMPLE_ROOT)])
    remote, report = load_catalogs([f"s3://{BUCKET}/stac/catalog.json"])
    assert report.skipped == 0
    assert sorted(remote.ids) == sorted(local.ids)
    assert set(remote.collections) == set(local.collections)


def test_s3_links_out_of_the_bucket_are_refused_and_missing_keys_skipped(s3_endpoint: str) -> None:
    client = upload_sample()
    doc = json.loads((SAMPLE_ROOT).read_text())
    doc["links"] += [
        {"rel": "child", "href": "s3://another-bucket/catalog.json"},
        {"rel": "child", "href": "./missing/catalog.json"},
    ]
    client.put_object(Bucket=BUCKET, Key="stac/catalog.json", Body=json.dumps(doc).encode())  # type: ignore[attr-defined]
    index, report = load_catalogs([f"s3://{BUCKET}/stac/catalog.json"])
    assert index.size == 68
    reasons = dict(report.skips)
    assert "outside the catalog roots" in reasons["s3://another-bucket/catalog.json"]
    assert "NoSuchKey" in reasons[f"s3://{BUCKET}/stac/missing/catalog.json"]


def test_the_api_follows_changes_in_the_bucket(s3_endpoint: str) -> None:
    client = upload_sample()
    app = create_app(Settings(roots=[f"s3://{BUCKET}/stac/catalog.json"], admin_token="t"))
    with TestClient(app) as api:
        while api.get("/_mgmt/ready").status_code != 200:
            pass
        assert api.get("/collections/dem-alps").json()["title"] != "Changed in the bucket"
        path = SAMPLE_ROOT.parent / "dem-alps" / "collection.json"
        doc = json.loads(path.read_text())
        doc["title"] = "Changed in the bucket"
        client.put_object(Bucket=BUCKET, Key="stac/dem-alps/collection.json", Body=json.dumps(doc).encode())  # type: ignore[attr-defined]
        assert api.post("/_mgmt/reload", headers={"Authorization": "Bearer t"}).status_code == 200
        assert api.get("/collections/dem-alps").json()["title"] == "Changed in the bucket"


def test_relative_hrefs_resolve_inside_the_bucket() -> None:
    from server.catalog.locations import resolve_href

    assert resolve_href("s3://b/a/c/catalog.json", "../x/item.json") == "s3://b/a/x/item.json"
    assert resolve_href("s3://b/catalog.json", "../../../etc/passwd") == "s3://b/etc/passwd"
    assert resolve_href("s3://b/a/catalog.json", "https://h/x.tif") == "https://h/x.tif"


def test_s3_hrefs_mapped_to_their_public_url(s3_endpoint: str) -> None:
    """An s3:// root with relative asset hrefs: --public-href s3://bucket/prefix/=https://... makes
    them the bucket's public URL, on the real server (which reads the bucket through moto)."""
    import httpx

    from tests.helpers import collection, item, link, run_server

    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    docs = {
        "stac/collection.json": collection("c", [link("item", "./a/a.json"), link("license", "./LICENSE")]),
        "stac/a/a.json": item("a", collection="c", assets={"data": {"href": "./a.tif"}, "up": {"href": "../shared/b.tif"}}),
        "loose/catalog.json": {"type": "Catalog", "stac_version": "1.0.0", "id": "loose", "description": "d",
                               "links": [link("item", "./l.json")]},
        "loose/l.json": item("l"),
    }
    for key, doc in docs.items():
        client.put_object(Bucket=BUCKET, Key=key, Body=json.dumps(doc).encode())
    public = f"https://{BUCKET}.s3.example.org/stac/"
    with run_server([f"s3://{BUCKET}/stac/collection.json", f"s3://{BUCKET}/loose/catalog.json"],
                    ["--public-href", f"s3://{BUCKET}/stac/={public}",
                     "--public-href", f"s3://{BUCKET}/=https://{BUCKET}.s3.example.org/"]) as api:
        served = httpx.get(f"{api}/collections/c/items/a").json()
        col = httpx.get(f"{api}/collections/c").json()
        loose = httpx.get(f"{api}/collections/loose/items/l").json()
        made = httpx.get(f"{api}/collections/loose").json()
    assert served["assets"]["data"]["href"] == public + "a/a.tif"
    assert served["assets"]["up"]["href"] == public + "shared/b.tif"
    assert [ln["href"] for ln in col["links"] if ln["rel"] == "license"] == [public + "LICENSE"]
    # the item of no collection: a self link that answers, and its source file's public URL
    assert [ln["href"] for ln in loose["links"] if ln["rel"] == "self"] == [f"{api}/collections/loose/items/l"]
    assert [ln["href"] for ln in loose["links"] if ln["rel"] == "alternate" and ln["type"] == "application/geo+json"] == [
        f"https://{BUCKET}.s3.example.org/loose/l.json"]
    assert [ln["href"] for ln in made["links"] if ln["rel"] == "via"] == [f"https://{BUCKET}.s3.example.org/loose/catalog.json"]


def test_relative_links_in_descriptions_of_s3_documents(s3_endpoint: str) -> None:
    """A relative link or image in the description of a document read from s3://: on its HTML
    page, the public URL --public-href maps it to; unmapped, its text (alt text) only: nothing a
    browser can open resolves it (an s3:// URL would not open; before, urljoin left it as
    written, which the browser resolved against the page's URL: a 404). Absolute https links
    and fragments stay as written either way."""
    import re

    import httpx

    from tests.helpers import collection, run_server

    client = boto3.client("s3")
    client.create_bucket(Bucket=BUCKET)
    doc = collection("c")
    doc["description"] = ("See [the readme](./README.md), ![the map](img/map.png), [up](../other/x.json), "
                          "[elsewhere](https://example.org/x) and [below](#notes).")
    client.put_object(Bucket=BUCKET, Key="stac/collection.json", Body=json.dumps(doc).encode())
    root = f"s3://{BUCKET}/stac/collection.json"

    def description(extra: list[str]) -> str:
        with run_server([root], extra) as api:
            page = httpx.get(f"{api}/collections/c", params={"f": "html"}).text
        found = re.search(r'<div class="description">(.*?)</div>', page, re.S)
        assert found is not None, page
        return found.group(1)

    public = f"https://{BUCKET}.s3.example.org/"
    mapped = description(["--public-href", f"s3://{BUCKET}/={public}"])
    assert f'href="{public}stac/README.md"' in mapped and f'src="{public}stac/img/map.png"' in mapped, mapped
    assert f'href="{public}other/x.json"' in mapped, mapped
    plain = description([])
    assert "s3:" not in plain, plain
    assert "the readme" in plain and "the map" in plain and "up" in plain and "<img" not in plain, plain
    for shown in (mapped, plain):
        assert 'href="https://example.org/x"' in shown and 'href="#notes"' in shown, shown
