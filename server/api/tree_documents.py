"""The documents of the static catalog's tree (server.index.tree) as the API serves them: a
sub-catalog at /catalogs/{path}, a collection at /collections/{id}, the landing page, each with
its `child` and `item` links rewritten to the API (the browseable extension) and a `children`
link to its /children (the children extension).

Listings (/collections, a collection search) give each collection without its `item` links:
a static collection may link hundreds of thousands of items, and a page of collections would
carry them all; the collection's own document (and /children, whose entries must be what their
`self` URLs serve) has them.
"""

from __future__ import annotations

from typing import Any

from server.api.fields import COLLECTION_DEFAULTS, apply_fields
from server.api.links import GEOJSON, HTML, UrlBuilder, quote_segment
from server.index import Index
from server.index.served import with_base
from server.index.tree import COLLECTION, LANDING, LANDING_KIND, Node
from server.query.model import FieldsSpec

# Documents linking more items than this are written in a worker thread: 100,000 item links
# take 0.1-0.3 s to build (1-3 us each, on the 2-core machine the benchmarks use), which would
# stall every other client on the event loop.
LARGE_LINKS = 20_000


def linked_items(index: Index, numbers: list[int]) -> int:
    """How many item links the nodes ``numbers`` have between them."""
    starts = index.tree.item_starts
    return sum(int(starts[n + 1] - starts[n]) for n in numbers)


def node_title(index: Index, node: Node) -> str:
    """What a link to the node is titled: its document's title, else its id."""
    if node.kind == COLLECTION:
        doc = index.collections.get(node.id) or {}
    else:
        doc = node.document or index.root
    title = doc.get("title")
    return title if isinstance(title, str) and title else node.id or str(doc.get("id") or "")


def item_links(urls: UrlBuilder, index: Index, positions: Any) -> list[dict[str, Any]]:
    """`item` links to the items at ``positions`` (index positions), in that order, titled with
    the item's id. (The loader puts every item in a collection, made for it if need be; an item
    of none, in an index built otherwise, has no URL to link.)"""
    names, ids = index.collection_names, index.ids
    prefixes: dict[int, str] = {}
    out = []
    for pos, code in zip(positions.tolist(), index.codes[positions].tolist()):
        if code < 0:
            continue
        prefix = prefixes.get(code)
        if prefix is None:
            prefix = prefixes[code] = urls.items(names[code]) + "/"
        href = prefix + quote_segment(ids[pos])
        out.append({"rel": "item", "type": GEOJSON, "href": href, "title": ids[pos]})  # titled: STAC Browser lists links by title
    return out


def tree_links(urls: UrlBuilder, index: Index, number: int, items: bool = True) -> list[dict[str, Any]]:
    """A node's `children` link (the landing page's always, another's when it has children),
    its `child` links and, with ``items``, its `item` links, in the source's order."""
    tree = index.tree
    node = tree.nodes[number]
    links = []
    if node.children or number == LANDING:
        links.append(urls.link("children", urls.children(node), title="Child catalogs and collections"))
    for child in node.children:
        links.append(urls.link("child", urls.node(tree.nodes[child]), title=node_title(index, tree.nodes[child])))
    if items:
        links += item_links(urls, index, tree.node_items(number))
    return links


def parent_of(urls: UrlBuilder, index: Index, number: int) -> tuple[str, str]:
    """(href, title) of the node holding node ``number``."""
    parent = index.tree.nodes[index.tree.nodes[number].parent]
    return urls.node(parent), node_title(index, parent) if parent.kind != LANDING_KIND else "Landing page"


def root_catalog_links(urls: UrlBuilder, index: Index, written: set[str]) -> list[dict[str, Any]]:
    """The lone root catalog's own links (license, about...), which the landing page that stands
    for it carries too, but for the relations it writes itself (``written``) and alternate."""
    document = index.tree.nodes[LANDING].document
    if document is None:
        return []
    source = with_base(document, urls.base) if index.served_hrefs else document
    return [link for link in source.get("links", []) if link.get("rel") not in written and link.get("rel") != "alternate"]


def catalog_document(urls: UrlBuilder, index: Index, number: int) -> dict[str, Any]:
    """A sub-catalog as served at its /catalogs/{path}."""
    node = index.tree.nodes[number]
    source = node.document or {"type": "Catalog", "id": node.id}
    href = urls.node(node)
    parent_href, parent_title = parent_of(urls, index, number)
    out = with_base(source, urls.base) if index.served_hrefs else dict(source)  # hrefs of files the API serves
    out["links"] = [
        urls.link("self", href),
        urls.link("alternate", href + "?f=html", HTML, title="This catalog as HTML"),
        urls.link("root", urls.url(), title="Landing page"),
        urls.link("parent", parent_href, title=parent_title),
        *tree_links(urls, index, number),
        *out.get("links", []),
    ]
    return out


def collection_document(urls: UrlBuilder, index: Index, collection: dict[str, Any],
                        fields: FieldsSpec | None = None, items: bool = True) -> dict[str, Any]:
    """A collection as served at /collections/{id}; without its `item` links in listings
    (``items`` False)."""
    cid = collection["id"]
    number = index.tree.collection_node(cid)
    parent = None
    if number is not None and index.tree.nodes[number].parent != LANDING:
        parent = parent_of(urls, index, number)
    out = with_base(collection, urls.base) if index.served_hrefs else dict(collection)  # hrefs of files the API serves
    links = urls.collection_links(cid, parent)
    if number is not None:
        links += tree_links(urls, index, number, items)
    out["links"] = links + out.get("links", [])
    return apply_fields(out, fields, COLLECTION_DEFAULTS)


def child_document(urls: UrlBuilder, index: Index, number: int) -> dict[str, Any]:
    """A node as served at its own URL: what /children lists."""
    node = index.tree.nodes[number]
    if node.kind == COLLECTION:
        return collection_document(urls, index, index.collections[node.id])
    return catalog_document(urls, index, number)
