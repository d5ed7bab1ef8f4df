"""Pages for people: a Document rendered with the Jinja2 templates in server/api/templates.

Every catalog value is untrusted: Jinja2 autoescapes it; hrefs from the catalog become links
only when http(s) (`safe_href`); map data goes into the page as JSON inside a
``<script type="application/json">`` (tojson escapes <, > and &); descriptions are Markdown
rendered with raw HTML off. Pages work without JavaScript except the map, which is Leaflet
served by us (xstatic-leaflet, under /static/leaflet/) over the tiles the operator sets
(STAC_STATIC_HTML_TILES; the browser fetches them, never the server)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson
import xstatic.pkg.leaflet
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from server.api import paths
from server.api.documents import CATALOG, CHILDREN, COLLECTION, COLLECTIONS, ITEM, ITEMS, LANDING, Document
from server.api.links import UrlBuilder, public_base_url, url_builder
from server.api.static_files import STATIC_PREFIXES
from server.api.tree_documents import item_links, node_title
from server.index import Index
from server.index.tree import COLLECTION as COLLECTION_NODE
from server.index.tree import LANDING as LANDING_NODE
from server.settings import Settings

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
_MARKDOWN = MarkdownIt("commonmark", {"html": False})  # raw HTML in a description is shown as text
_PAGES = {LANDING: "landing.html", COLLECTIONS: "collections.html", COLLECTION: "collection.html",
          ITEMS: "items.html", ITEM: "item.html", CATALOG: "catalog.html", CHILDREN: "children.html"}
# Item properties shown in the table of a page of items, when the items have them
TABLE_PROPERTIES = ("collection", "platform", "constellation", "instruments", "eo:cloud_cover", "gsd")


def static_routes() -> list[BaseRoute]:
    """The pages' files: Leaflet from its PyPI package, and ours (style, map script)."""
    return [
        Mount("/static/leaflet", app=StaticFiles(directory=xstatic.pkg.leaflet.BASE_DIR), name="leaflet"),
        Mount("/static/pages", app=StaticFiles(directory=HERE / "static"), name="pages"),
    ]


def safe_href(href: Any) -> str | None:
    """A catalog href a page may link to or show: http(s) only, never javascript: or data:, nor
    the local file paths of a catalog read from disk (they mean nothing to a browser); a
    root-relative href only into the files this server serves itself (the sample's thumbnails)."""
    if not isinstance(href, str):
        return None
    if href.startswith(STATIC_PREFIXES) and ".." not in href:
        return href
    return href if urlsplit(href.strip()).scheme.lower() in ("http", "https") else None


def markdown(text: Any) -> Markup:
    return Markup(_MARKDOWN.render(str(text or "")))


def show(value: Any) -> str:
    """A property value as text: strings as they are, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def excerpt(text: Any, size: int = 240) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= size else text[:size].rsplit(" ", 1)[0] + " …"


def with_format(href: str, fmt: str) -> str:
    """``href`` with its f parameter set to ``fmt``."""
    if "f=" not in href:  # nearly always: no parsing (~2 us instead of ~25 on a search's self link)
        return f"{href}{'&' if '?' in href else '?'}f={fmt}"
    parts = urlsplit(href)
    pairs = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "f"]
    return urlunsplit(parts._replace(query=urlencode([*pairs, ("f", fmt)])))


for name, fn in (("safe_href", safe_href), ("markdown", markdown), ("show", show), ("excerpt", excerpt)):
    TEMPLATES.env.filters[name] = fn


def _link(doc: dict[str, Any], rel: str) -> str | None:
    return next((link["href"] for link in doc.get("links", []) if link.get("rel") == rel), None)


def _box_feature(bbox: list[float], href: str, title: str) -> dict[str, Any]:
    x0, y0, x1, y1 = (bbox[0], bbox[1], bbox[3], bbox[4]) if len(bbox) == 6 else bbox[:4]
    ring = [[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": {"href": href, "title": title}}


def _extent_features(collections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for c in collections:
        boxes = (c.get("extent") or {}).get("spatial", {}).get("bbox") or []
        if boxes and isinstance(boxes[0], list) and len(boxes[0]) in (4, 6):
            out.append(_box_feature(boxes[0], _link(c, "self") or "", str(c.get("title") or c.get("id"))))
    return out


def _footprints(features: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for f in features:
        geometry = f.get("geometry")
        if geometry is None and isinstance(f.get("bbox"), list) and len(f["bbox"]) in (4, 6):
            geometry = _box_feature(f["bbox"], "", "")["geometry"]
        if geometry is not None:
            out.append({"type": "Feature", "geometry": geometry,
                        "properties": {"href": _link(f, "self") or "", "title": str(f.get("id"))}})
    return out


def _site_title(request: Request, settings: Settings) -> str:
    index = paths.pinned_index(request.scope)
    return str((index.root.get("title") if index is not None else None) or settings.title)


def _tree_context(urls: UrlBuilder, index: Index, number: int, items: bool) -> dict[str, Any]:
    """A node's place in the tree for its page: the catalogs above it (crumbs), its children and,
    with ``items``, its items (id and href), in the source's order."""
    tree = index.tree
    children = []
    for child in tree.nodes[number].children:
        node = tree.nodes[child]
        doc = index.collections.get(node.id) if node.kind == COLLECTION_NODE else node.document
        children.append({"kind": node.kind, "title": node_title(index, node), "href": urls.node(node),
                         "description": (doc or {}).get("description")})
    crumbs = [{"title": node_title(index, tree.nodes[a]) if a != LANDING_NODE else "Home", "href": urls.node(tree.nodes[a])}
              for a in tree.ancestors(number)]
    found = []
    if items:
        found = [{"id": link["title"], "href": link["href"]} for link in item_links(urls, index, tree.node_items(number))]
    return {"tree_children": children, "tree_items": found, "crumbs": crumbs}


def _context(request: Request, doc: Document) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    urls = url_builder(public_base_url(request, settings.base_url))
    body = doc.plain()
    params = dict(parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    index = paths.pinned_index(request.scope)
    ctx: dict[str, Any] = {
        "doc": body, "kind": doc.kind, "params": params, "urls": urls, "settings": settings,
        "site_title": _site_title(request, settings),
        "json_href": with_format(str(request.url), "json"), "map": None,
        "table_properties": TABLE_PROPERTIES,
    }
    if doc.kind == LANDING and index is not None:
        ctx["counts"] = {"collections": len(index.collections), "items": index.size,
                         "loaded": dt.datetime.fromtimestamp(index.loaded_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
        ctx.update(_tree_context(urls, index, LANDING_NODE, items=True))
    elif doc.kind == CATALOG and index is not None:
        ctx.update(_tree_context(urls, index, int(request.path_params["node"]), items=True))
    elif doc.kind == COLLECTIONS:
        ctx["map"] = _extent_features(body["collections"])
    elif doc.kind == COLLECTION:
        ctx["map"] = _extent_features([body])
        number = index.tree.collection_node(body["id"]) if index is not None else None
        if index is not None and number is not None:
            ctx.update(_tree_context(urls, index, number, items=False))
    elif doc.kind == ITEMS:
        ctx["map"] = _footprints(body["features"])
        ctx["columns"] = [p for p in TABLE_PROPERTIES
                          if any(p in (f.get("properties") or {}) for f in body["features"])]
        ctx["collection_id"] = request.path_params.get("collection_id")
        ctx["action"] = str(request.url.replace(query=""))
    elif doc.kind == ITEM:
        ctx["map"] = _footprints([body])
    return ctx


def page(request: Request, doc: Document) -> Response:
    template = _PAGES.get(doc.kind, "generic.html")
    ctx = _context(request, doc)
    if template == "generic.html":
        ctx["text"] = orjson.dumps(ctx["doc"], option=orjson.OPT_INDENT_2).decode()
    return TEMPLATES.TemplateResponse(request, template, ctx, status_code=doc.status)


def error_page(request: Request, status: int, code: str, description: str) -> Response:
    settings: Settings = request.app.state.settings
    context = {"status": status, "code": code, "description": description, "settings": settings,
               "urls": url_builder(public_base_url(request, settings.base_url)), "map": None,
               "site_title": _site_title(request, settings), "kind": "error", "json_href": with_format(str(request.url), "json")}
    return TEMPLATES.TemplateResponse(request, "error.html", context, status_code=status)
