"""The static catalog's own tree, served (the browseable and children extensions): pystac's walk
of the API visits the same catalogs, collections and items, in the same places and order, as
its walk of the source files, on the sample and on every shared catalog with sub-catalogs, on the
real server; every child and item link resolves to a document whose self link is that href, and
each /children lists exactly what its node's child links serve; then paging and the type filter
of /children, several roots, odd ids, bulk roots (not browseable), pages, snapshots and reloads.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pystac
import pytest
from pystac_client import Client

from server.catalog.loader import load_catalogs
from server.index.tree import Tree
from server.runtime.app import create_app
from server.runtime.snapshot import read_snapshot, write_snapshot
from server.sample import SAMPLE_ROOT
from server.settings import Settings
from tests.conftest import TEST_BASE, TestClient
from tests.helpers import SHARED, CatalogDir, catalog, collection, drop_misc_catalog, item, link, run_server, shared_roots

CHILDREN_CLASS = "https://api.stacspec.org/v1.0.0-rc.2/children"
BROWSEABLE_CLASS = "https://api.stacspec.org/v1.0.0-rc.3/browseable"
PAGE = {"Accept": "text/html"}

Row = tuple[tuple[tuple[str, str], ...], list[tuple[str, str]], list[str]]


# -- walks -------------------------------------------------------------------------------------


def _kind(obj: Any) -> str:
    return "Collection" if isinstance(obj, pystac.Collection) else "Catalog"


def walk_rows(root: pystac.Catalog, objects: list[list[Any]] | None = None) -> list[Row]:
    """pystac's walk as rows: (the chain of (kind, id) from the root down to a catalog, its
    children as (kind, id), its items' ids), in the walk's order. ``objects``, when given, gets
    each row's children as pystac objects."""
    chains: dict[int, tuple[tuple[str, str], ...]] = {id(root): ()}
    rows = []
    for node, children, items in root.walk():
        children, items = list(children), list(items)
        chain = chains[id(node)]
        for child in children:
            chains[id(child)] = (*chain, (_kind(child), child.id))
        rows.append((chain, [(_kind(c), c.id) for c in children], [i.id for i in items]))
        if objects is not None:
            objects.append([node, *children])
    return rows


def _loader_rules(rows: list[Row], objects: list[list[Any]]) -> list[Row]:
    """What the loader is documented to skip (README): a second collection with an id already
    loaded (and all under it), and a second item with a (collection, id) already loaded, the
    collection being the nearest one above it. The shared catalogs have both (stac-spec examples).
    ``objects``: each row's catalog and children as pystac objects (two collections of one id
    have one chain of ids)."""
    seen_collections: set[str] = set()
    dropped: set[int] = set()  # the objects left out, by identity: all under them goes too
    seen_items: set[tuple[str | None, str]] = set()
    out = []
    for (chain, children, items), (node, *child_objects) in zip(rows, objects):
        if id(node) in dropped:
            dropped.update(id(c) for c in child_objects)
            continue
        kept_children = []
        for (kind, cid), obj in zip(children, child_objects):
            if kind == "Collection" and cid in seen_collections:
                dropped.add(id(obj))
                continue
            if kind == "Collection":
                seen_collections.add(cid)
            kept_children.append((kind, cid))
        above = next((cid for kind, cid in reversed(chain) if kind == "Collection"), None)
        kept_items = []
        for iid in items:
            if (above, iid) not in seen_items:
                seen_items.add((above, iid))
                kept_items.append(iid)
        out.append((chain, kept_children, kept_items))
    return out


def source_rows(roots: list[str]) -> list[Row]:
    """The source's walk as the landing page should present it: one root catalog is the landing
    page; a root collection, or several roots, are the landing page's children."""
    walked = [pystac.read_file(root) for root in roots]
    objects: list[list[Any]] = []
    if len(walked) == 1 and not isinstance(walked[0], pystac.Collection):
        return _loader_rules(walk_rows(walked[0], objects), objects)  # type: ignore[arg-type]
    rows: list[Row] = [((), [(_kind(obj), obj.id) for obj in walked], [])]
    objects.append([None, *walked])
    for obj in walked:
        top = ((_kind(obj), obj.id),)
        rows += [(top + chain, children, items) for chain, children, items in walk_rows(obj, objects)]  # type: ignore[arg-type]
    return _loader_rules(rows, objects)


def api_rows(base: str) -> list[Row]:
    return walk_rows(pystac.Catalog.from_file(base + "/"))


def _has_sub_catalogs(root: str) -> bool:
    """Whether the source nests: a catalog below its root, or a child of a child."""
    path = Path(root)
    doc = json.loads(path.read_text())
    frontier = [(path, doc, 0)]
    while frontier:
        at, doc, depth = frontier.pop()
        for ln in doc.get("links", []):
            if ln.get("rel") != "child":
                continue
            target = (at.parent / ln["href"]).resolve()
            if not target.is_file():
                continue
            child = json.loads(target.read_text())
            if depth >= 1 or child.get("type", "Catalog") == "Catalog" and "extent" not in child:
                return True
            frontier.append((target, child, depth + 1))
    return False


NESTED = [roots for roots in shared_roots() if len(roots) == 1 and roots[0].endswith(".json")
          and _has_sub_catalogs(roots[0])]


def _name(roots: list[str]) -> str:
    if roots == [str(SAMPLE_ROOT)]:
        return "sample"
    return str(Path(roots[0]).relative_to(SHARED)) if roots[0].startswith(str(SHARED)) else Path(roots[0]).name


# -- the same tree, crawled by plain HTTP as a browser would -----------------------------------


def _get(http: httpx.Client, href: str) -> dict[str, Any]:
    response = http.get(href)
    assert response.status_code == 200, (href, response.text)
    assert response.headers["content-type"].split(";")[0] in ("application/json", "application/geo+json"), href
    return response.json()


def _rel(doc: dict[str, Any], rel: str) -> list[dict[str, Any]]:
    return [ln for ln in doc["links"] if ln["rel"] == rel]


def crawl(base: str) -> int:
    """Follow every child and item link from the landing page, as STAC Browser does: each
    resolves to a document whose self link is its href and whose parent is where it was linked
    from; each node's /children is the documents its child links serve, in order. Returns how
    many items it reached."""
    items = 0
    with httpx.Client(timeout=20.0) as http:
        frontier = [(base + "/", _get(http, base + "/"))]
        while frontier:
            href, doc = frontier.pop()
            children = [(ln["href"], _get(http, ln["href"])) for ln in _rel(doc, "child")]
            for child_href, child in children:
                assert _rel(child, "self")[0]["href"] == child_href
                assert _rel(child, "parent")[0]["href"] == href, (child_href, href)
                frontier.append((child_href, child))
            listing = _rel(doc, "children")
            if children or href == base + "/":
                assert len(listing) == 1, href
                listed = _get(http, listing[0]["href"])
                assert listed["children"] == [c for _, c in children], href
                assert _rel(listed, "self")[0]["href"] == listing[0]["href"]
                assert _rel(listed, "parent")[0]["href"] == href
            else:
                assert not listing, href
            for ln in _rel(doc, "item"):
                found = _get(http, ln["href"])
                assert found["type"] == "Feature" and _rel(found, "self")[0]["href"] == ln["href"]
                items += 1
    return items


def _check_served_tree(roots: list[str]) -> None:
    expected = source_rows(roots)
    with run_server(roots) as base:
        assert api_rows(base) == expected
        landing = httpx.get(base + "/").json()
        assert CHILDREN_CLASS in landing["conformsTo"] and BROWSEABLE_CLASS in landing["conformsTo"]
        ready = httpx.get(base + "/_mgmt/ready").json()
        assert crawl(base) == sum(len(row[2]) for row in expected) == ready["items"]


# -- the served tree equals the source's -----------------------------------------------------------


def test_the_shared_catalogs_with_sub_catalogs_are_found() -> None:
    if not shared_roots():
        pytest.skip("../shared/catalogs not present")
    names = {_name(r) for r in NESTED}
    assert {"pystac-catalogs/test-case-1/catalog.json", "pystac-catalogs/test-case-5/catalog.json",
            "pystac-catalogs/planet-example-v1.0.0-beta.2/collection.json",
            "stactools-modis-examples/catalog.json"} <= names, names


@pytest.mark.parametrize("roots", [[str(SAMPLE_ROOT)], *NESTED], ids=_name)
def test_pystac_walks_the_api_as_it_walks_the_source(roots: list[str]) -> None:
    _check_served_tree(roots)


class InProcessIO(pystac.StacIO):
    """pystac reading the API through an in-process client (the live tests above use HTTP)."""

    def __init__(self, client: TestClient) -> None:
        super().__init__()
        self.client = client

    def read_text(self, source: Any, *args: Any, **kwargs: Any) -> str:
        href = str(source)
        assert href.startswith(TEST_BASE), href
        response = self.client.get(href[len(TEST_BASE):])
        assert response.status_code == 200, (href, response.text)
        return response.text

    def write_text(self, dest: Any, txt: str, *args: Any, **kwargs: Any) -> None:
        raise AssertionError("read only")


STRUCTURED = [roots for roots in shared_roots() if json.loads(Path(roots[0]).read_text()).get("type") != "Feature"]


@pytest.mark.parametrize("roots", STRUCTURED or [[]], ids=_name if STRUCTURED else None)
def test_every_shared_catalog_walks_the_same_in_process(roots: list[str], make_client) -> None:
    """The flat catalogs too (and a collection with its items in a bulk file beside it: neither
    side links them). The duplicates the loader skips are left out of the expected walk."""
    if not roots:
        pytest.skip("../shared/catalogs not present")
    index, _ = load_catalogs(roots)
    with make_client(index=index) as c:
        api = walk_rows(pystac.Catalog.from_file(TEST_BASE + "/", stac_io=InProcessIO(c)))
    assert api == source_rows([r for r in roots if r.endswith(".json")])


def test_several_roots_are_the_landing_pages_children() -> None:
    """Two root catalogs: each is a child of the landing page at /catalogs/{its id}, with its
    whole tree below it (one root catalog is the landing page itself)."""
    fabdem = SHARED / "fabdem-brazil-south" / "catalog.json"
    if not fabdem.is_file():
        pytest.skip("../shared/catalogs not present")
    roots = [str(SAMPLE_ROOT), str(fabdem)]
    _check_served_tree(roots)
    with run_server(roots) as base:
        landing = httpx.get(base + "/").json()
        assert [ln["href"] for ln in _rel(landing, "child")] == [f"{base}/catalogs/sample",
                                                                 f"{base}/catalogs/fabdem-brazil-south"]
        # the sample's collections now sit one level down, and keep their URLs
        dem = httpx.get(f"{base}/collections/dem-alps").json()
        assert _rel(dem, "parent")[0]["href"] == f"{base}/catalogs/sample"
        assert _rel(dem, "child")[0]["href"] == f"{base}/catalogs/sample/dem-alps/dem-alps-tiles-extra"


ODD = ["a/b", "children", "c%d", "h#x", "q?r", ".", "..", "ü/中", "x y", "p+s", "dup", "dup", "items", "children~2"]


@pytest.fixture(scope="module")
def odd_catalog(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Sub-catalogs whose ids need encoding, repeat a sibling's or are the name of the children
    endpoint; each links three items without a collection and a collection with one item."""
    folder = CatalogDir(tmp_path_factory.mktemp("odd-tree"))
    children = []
    for n, cid in enumerate(ODD):
        children.append(link("child", f"./s{n}/catalog.json"))
        sub = [link("item", f"./i{k}.json") for k in range(3)] + [link("child", "./c/collection.json")]
        folder.write(f"s{n}/catalog.json", catalog(cid, sub, title=f"<b>sub</b> {n}"))
        for k in range(3):
            folder.write(f"s{n}/i{k}.json", item(f"{n}/{cid}#{k}"))
        folder.write(f"s{n}/c/collection.json", collection(f"col {n}/{cid}", [link("item", "./j.json")]))
        folder.write(f"s{n}/c/j.json", item(cid, collection=f"col {n}/{cid}"))
    folder.write("catalog.json", catalog("odd", children))
    return folder.path("catalog.json")


def test_odd_ids_walk_the_same(odd_catalog: Path) -> None:
    _check_served_tree([str(odd_catalog)])
    with run_server([str(odd_catalog)]) as base:
        hrefs = [ln["href"][len(base):] for ln in _rel(httpx.get(base + "/").json(), "child")]
        assert hrefs[:4] == ["/catalogs/a%2Fb", "/catalogs/children~2", "/catalogs/c%25d", "/catalogs/h%23x"]
        assert hrefs[5:7] == ["/catalogs/%2E", "/catalogs/%2E%2E"]
        assert hrefs[10:] == ["/catalogs/dup", "/catalogs/dup~2", "/catalogs/items", "/catalogs/children~2~2"]
        # "children" below a catalog is its children endpoint, never a catalog
        assert httpx.get(base + "/catalogs/children").status_code == 404
        listed = httpx.get(base + "/catalogs/dup~2/children").json()
        assert [c["id"] for c in listed["children"]] == ["col 11/dup"]


# -- clients ---------------------------------------------------------------------------------------


def test_pystac_client_still_lists_every_collection() -> None:
    """MODIS' collections sit under two catalogs: the landing page's child links are those two,
    and /collections (what get_collections reads) still lists all 36."""
    modis = SHARED / "stactools-modis-examples" / "catalog.json"
    if not modis.is_file():
        pytest.skip("../shared/catalogs not present")
    index, _ = load_catalogs([str(modis)])
    with run_server([str(modis)]) as base:
        client = Client.open(base + "/")
        assert sorted(c.id for c in client.get_collections()) == sorted(index.collections)
        assert [c.id for c in client.get_children()] == ["modis-006", "modis-061"]
        assert client.get_collection("modis-13A1-006").id == "modis-13A1-006"
        found = list(client.search(collections=["modis-13A1-006"]).items())
        assert len(found) == 2


# -- /children, in process -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def modis_client(make_client) -> Iterator[TestClient]:
    modis = SHARED / "stactools-modis-examples" / "catalog.json"
    if not modis.is_file():
        pytest.skip("../shared/catalogs not present")
    index, _ = load_catalogs([str(modis)])
    with make_client(index=index) as c:
        yield c


def test_children_pages_both_ways_and_filters_by_type(modis_client: TestClient) -> None:
    everything = modis_client.get("/catalogs/modis-006/children").json()
    ids = [c["id"] for c in everything["children"]]
    assert len(ids) == everything["numberMatched"] == 17 and not [ln for ln in everything["links"] if ln["rel"] == "next"]
    seen, page = [], modis_client.get("/catalogs/modis-006/children", params={"limit": 5}).json()
    pages = [page]
    while nxt := [ln for ln in page["links"] if ln["rel"] == "next"]:
        page = modis_client.get(nxt[0]["href"][len(TEST_BASE):]).json()
        pages.append(page)
    seen = [c["id"] for p in pages for c in p["children"]]
    assert seen == ids and [p["numberReturned"] for p in pages] == [5, 5, 5, 2]
    back = [ln for ln in page["links"] if ln["rel"] == "prev"][0]
    assert [c["id"] for c in modis_client.get(back["href"][len(TEST_BASE):]).json()["children"]] == ids[10:15]
    first = [ln for ln in page["links"] if ln["rel"] == "first"][0]
    assert [c["id"] for c in modis_client.get(first["href"][len(TEST_BASE):]).json()["children"]] == ids[:5]
    # the type filter
    assert modis_client.get("/children", params={"type": "Collection"}).json()["children"] == []
    catalogs = modis_client.get("/children", params={"type": "Catalog"}).json()
    assert [c["id"] for c in catalogs["children"]] == ["modis-006", "modis-061"]
    for bad in ({"type": "catalog"}, {"type": "Item"}, {"limit": "0"}, {"token": "nope"}):
        r = modis_client.get("/children", params=bad)
        assert r.status_code == 400 and set(r.json()) == {"code", "description"}, bad
    token = modis_client.get("/collections", params={"limit": 1}).json()["links"]
    other = [ln for ln in token if ln["rel"] == "next"][0]["href"].split("token=")[1]
    assert modis_client.get("/children", params={"token": other}).status_code == 400  # a /collections token


def test_unknown_paths_are_a_json_404(client: TestClient) -> None:
    for path in ("/catalogs/nope", "/catalogs/misc/nope", "/catalogs/nope/children", "/catalogs/",
                 "/catalogs/misc/children/x", "/collections/nope/children"):
        r = client.get(path)
        assert r.status_code == 404 and set(r.json()) == {"code", "description"}, path


def test_listings_leave_item_links_to_the_documents(client: TestClient) -> None:
    """/collections gives a collection's child links but not its item links (a static collection may
    link a million items); its own document has them, and so has /children."""
    listed = {c["id"]: c for c in client.get("/collections").json()["collections"]}
    own = client.get("/collections/dem-alps").json()
    assert not _rel(listed["dem-alps"], "item") and len(_rel(own, "item")) == 8
    assert _rel(listed["dem-alps"], "child") == _rel(own, "child")
    assert client.get("/children").json()["children"][3] == own


def test_an_item_of_a_plain_catalog_is_linked_into_its_made_collection(client: TestClient) -> None:
    """The loader makes a collection for the items of a plain catalog: the catalog's item links
    lead there, and the made collection, which the source does not have, is no node of the tree."""
    misc = client.get("/catalogs/misc").json()
    assert [ln["href"] for ln in _rel(misc, "item")] == [f"{TEST_BASE}/collections/misc/items/aerial-wageningen-2021"]
    assert client.get("/collections/misc/items/aerial-wageningen-2021").status_code == 200
    made = client.get("/collections/misc").json()
    assert _rel(made, "parent")[0]["href"] == f"{TEST_BASE}/" and not _rel(made, "item") and not _rel(made, "child")
    assert f"{TEST_BASE}/collections/misc" not in [ln["href"] for ln in _rel(client.get("/").json(), "child")]


def test_catalog_document(client: TestClient) -> None:
    doc = client.get("/catalogs/dem-alps/dem-alps-tiles-extra").json()
    source = json.loads((SAMPLE_ROOT.parent / "dem-alps" / "tiles-extra" / "catalog.json").read_text())
    members = ("type", "id", "title", "description")
    assert {k: doc[k] for k in members} == {k: source[k] for k in members}
    assert [(ln["rel"], ln["href"]) for ln in doc["links"][:4]] == [
        ("self", f"{TEST_BASE}/catalogs/dem-alps/dem-alps-tiles-extra"),
        ("alternate", f"{TEST_BASE}/catalogs/dem-alps/dem-alps-tiles-extra?f=html"),
        ("root", f"{TEST_BASE}/"), ("parent", f"{TEST_BASE}/collections/dem-alps")]
    assert [ln["href"].rsplit("/", 1)[1] for ln in _rel(doc, "item")] == ["dem-alps-n46e011", "dem-alps-n47e012",
                                                                          "dem-alps-n47e013"]
    assert all(urlsplit(ln["href"]).path.startswith("/collections/dem-alps/items/") for ln in _rel(doc, "item"))


def test_documents_with_many_item_links_are_written_in_a_thread(make_client, monkeypatch) -> None:
    """Above LARGE_LINKS item links a document is built in a worker thread: the same document."""
    from server.api import browse, routes

    paths = ["/collections/dem-alps", "/catalogs/dem-alps/dem-alps-tiles-extra", "/children", "/collections/dem-alps/children"]
    with make_client(Settings(response_cache_bytes=0)) as c:
        inline = [c.get(p).json() for p in paths]
        calls = []
        real = browse._in_thread

        async def counting(request: Any, fn: Any, *args: Any) -> Any:
            calls.append(fn)
            return await real(request, fn, *args)

        for module in (routes, browse):
            monkeypatch.setattr(module, "LARGE_LINKS", 1)
            monkeypatch.setattr(module, "_in_thread", counting)
        assert [c.get(p).json() for p in paths] == inline
    assert len(calls) == len(paths)


def test_the_landing_page_carries_its_root_catalogs_own_links(catalog_dir: CatalogDir, make_client) -> None:
    """The lone root catalog is the landing page: its license and about links are the landing
    page's too, but not those of a relation the landing page writes itself (nor alternate)."""
    catalog_dir.write("catalog.json", catalog("root", [
        link("child", "./c/collection.json"), link("license", "https://example.org/license"),
        link("about", "https://example.org/about"), link("search", "https://elsewhere.example/search"),
        link("alternate", "https://example.org/root.html", "text/html")]))
    catalog_dir.write("c/collection.json", collection("c"))
    index, _ = load_catalogs([str(catalog_dir.path("catalog.json"))])
    with make_client(index=index) as c:
        landing = c.get("/").json()
    assert [ln["href"] for ln in _rel(landing, "license") + _rel(landing, "about")] == [
        "https://example.org/license", "https://example.org/about"]
    assert all(ln["href"].startswith(TEST_BASE) for ln in _rel(landing, "search") + _rel(landing, "alternate"))


# -- what is browseable --------------------------------------------------------------------------------


def test_a_bulk_root_is_not_browseable(catalog_dir: CatalogDir, make_client) -> None:
    """Items read from a FeatureCollection are linked by no catalog: browseable is not claimed
    (children still is), and the collection keeps its place."""
    catalog_dir.write("collection.json", collection("bulk"))
    catalog_dir.write("items.geojson", {"type": "FeatureCollection",
                                        "features": [item(f"b{i}", collection="bulk") for i in range(3)]})
    index, _ = load_catalogs([str(catalog_dir.path("collection.json")), str(catalog_dir.path("items.geojson"))])
    assert not index.tree.complete
    with make_client(index=index) as c:
        landing = c.get("/").json()
        assert BROWSEABLE_CLASS not in landing["conformsTo"] and CHILDREN_CLASS in landing["conformsTo"]
        assert c.get("/conformance").json()["conformsTo"] == landing["conformsTo"]
        assert [ln["href"] for ln in _rel(landing, "child")] == [f"{TEST_BASE}/collections/bulk"]
        assert not _rel(c.get("/collections/bulk").json(), "item")


def test_items_follow_their_links_in_order(catalog_dir: CatalogDir, make_client) -> None:
    """The order of a node's children and items is its links' order, whatever the ids; an item
    rejected by the index leaves no link behind."""
    names = ["z", "a", "m", "b"]
    catalog_dir.write("catalog.json", catalog("root", [link("child", "./c/collection.json"),
                                                       *[link("item", f"./{n}.json") for n in names]]))
    catalog_dir.write("c/collection.json", collection("c", [link("item", f"./{n}.json") for n in names]))
    for n in names:
        catalog_dir.write(f"{n}.json", item(n))
        catalog_dir.write(f"c/{n}.json", item(n, collection="c", datetime=f"2020-01-0{names.index(n) + 1}T00:00:00Z"))
    catalog_dir.write("c/bad.json", item("bad", geometry={"type": "Polygon", "coordinates": "x"}, collection="c"))
    doc = json.loads(catalog_dir.path("c/collection.json").read_text())
    doc["links"].insert(1, link("item", "./bad.json"))
    catalog_dir.write("c/collection.json", doc)
    index, _ = load_catalogs([str(catalog_dir.path("catalog.json"))])
    with make_client(index=index) as c:
        landing = c.get("/").json()
        assert [ln["href"].rsplit("/", 1)[1] for ln in _rel(landing, "item")] == names
        assert [ln["href"].rsplit("/", 1)[1] for ln in _rel(c.get("/collections/c").json(), "item")] == names


# -- pages -------------------------------------------------------------------------------------------------


def test_pages_show_the_tree(client: TestClient) -> None:
    landing = client.get("/", headers=PAGE).text
    assert "Catalogs and collections" in landing and f'href="{TEST_BASE}/catalogs/misc"' in landing
    page = client.get("/catalogs/dem-alps/dem-alps-tiles-extra", headers=PAGE)
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert f'href="{TEST_BASE}/collections/dem-alps"' in page.text  # the crumbs
    assert f'href="{TEST_BASE}/collections/dem-alps/items/dem-alps-n46e011"' in page.text
    collection_page = client.get("/collections/dem-alps", headers=PAGE).text
    assert f'href="{TEST_BASE}/catalogs/dem-alps/dem-alps-tiles-extra"' in collection_page
    assert "item: " not in collection_page  # its items are behind "Browse items", not listed as links
    children = client.get("/children", headers=PAGE).text
    assert children.count('<span class="tag">Collection</span>') == 4 and '<span class="tag">Catalog</span>' in children


def test_catalog_text_is_escaped_on_its_page(odd_catalog: Path, make_client) -> None:
    index, _ = load_catalogs([str(odd_catalog)])
    with make_client(index=index) as c:
        for path in ("/", "/catalogs/a%2Fb", "/children"):
            html = c.get(path, headers=PAGE).text
            assert "<b>sub</b>" not in html and "&lt;b&gt;sub&lt;/b&gt;" in html, path


# -- snapshots and reloads ------------------------------------------------------------------------------


def _tree_of(tree: Tree) -> list[Any]:
    return [(n.kind, n.id, n.parent, n.segments, n.children, n.document) for n in tree.nodes] + [
        tree.items.tolist(), tree.item_starts.tolist(), tree.complete]


def test_a_snapshot_keeps_the_tree(sample_index, tmp_path: Path, make_client) -> None:
    write_snapshot(str(tmp_path / "s.idx"), sample_index, [str(SAMPLE_ROOT)])
    restored, _ = read_snapshot(str(tmp_path / "s.idx"))
    assert _tree_of(restored.tree) == _tree_of(sample_index.tree)
    with make_client(index=restored) as a, make_client(index=sample_index) as b:
        for path in ("/", "/children", "/catalogs/misc", "/collections/dem-alps"):
            assert a.get(path).json() == b.get(path).json(), path


@pytest.mark.parametrize("in_child", [True, False], ids=["child-process", "thread"])
def test_a_reload_serves_the_new_tree(sample_copy: Path, in_child: bool) -> None:
    token = "tree-token"
    app = create_app(Settings(roots=[str(sample_copy / "catalog.json")], admin_token=token, reload_in_child=in_child))
    with TestClient(app, base_url=TEST_BASE) as c:
        deadline = time.monotonic() + 30
        while c.get("/").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get("/catalogs/misc").status_code == 200
        drop_misc_catalog(sample_copy)
        root = json.loads((sample_copy / "catalog.json").read_text())
        root["links"].append({"rel": "child", "href": "./added/catalog.json"})
        (sample_copy / "catalog.json").write_text(json.dumps(root))
        (sample_copy / "added").mkdir()
        (sample_copy / "added" / "catalog.json").write_text(json.dumps(catalog("added", [])))
        assert c.post("/_mgmt/reload", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        assert c.get("/catalogs/misc").status_code == 404
        assert [ln["href"] for ln in _rel(c.get("/").json(), "child")][-1] == f"{TEST_BASE}/catalogs/added"
        assert c.get("/catalogs/added").json()["id"] == "added"
