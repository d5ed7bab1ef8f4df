"""Every href the API writes is built here, from the configured base URL or the request.

Behind a proxy, ``Forwarded`` or ``X-Forwarded-Proto/Host/Port/Prefix`` give the public URL.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import quote

import orjson
from cachetools import LRUCache
from starlette.requests import Request

from server.errors import InvalidRequestHeader
from server.index.tree import CATALOG, COLLECTION, Node

JSON = "application/json"
GEOJSON = "application/geo+json"
OPENAPI = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
QUERYABLES_REL = "http://www.opengis.net/def/rel/ogc/1.0/queryables"
HTML = "text/html"


def _forwarded(header: str) -> dict[str, str]:
    first = header.split(",")[0]
    pairs = (p.split("=", 1) for p in first.split(";") if "=" in p)
    return {k.strip().lower(): v.strip().strip('"') for k, v in pairs}


# What quote(s, safe="") leaves as it is: such ids (nearly all) skip the call.
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")


def quote_segment(value: str) -> str:
    """``value`` percent-encoded as one path segment; "." and ".." too, which clients would
    otherwise resolve as dot segments (RFC 3986 5.2.4) instead of sending."""
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return value if _UNRESERVED.fullmatch(value) else quote(value, safe="")


def _server_netloc(request: Request) -> str:
    """host[:port] the request reached, for a request without a Host header (HTTP/1.0)."""
    server = request.scope.get("server")
    if not server:
        return "localhost"
    host, port = server
    default = {"http": 80, "https": 443}.get(request.scope.get("scheme", "http"))
    return host if port in (None, default) else f"{host}:{port}"


# What a forwarded value may be; anything else in the header is ignored, not written into links.
_SCHEME = re.compile(r"https?", re.IGNORECASE)
_HOST = re.compile(r"(?:[A-Za-z0-9_.~-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")
_PORT = re.compile(r"[0-9]{1,5}")
_PREFIX = re.compile(r"[A-Za-z0-9_.~!$&'()*+,;=:@%/-]*")


# The bytes a Host may hold as written into links: a name or address, a port, an IPv6 literal's
# brackets (RFC 9110 7.2; no userinfo, path, query, quote, space or markup). One bytes.translate
# deleting them tells (~60 ns); a Host of anything else is a 400 (RFC 9112 3.2), where it was
# written into every link as it came (`Host: a"b<c>`: hrefs `http://a"b<c>/...`, qa19).
_HOST_BYTES = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~:[]"


def _checked_host(host: bytes) -> str | None:
    """The Host header's value for links: None when empty (none given), else it if of the
    form of a host (_HOST_BYTES); raises InvalidRequestHeader otherwise."""
    if not host:
        return None
    if host.translate(None, _HOST_BYTES):
        raise InvalidRequestHeader("the Host header is not a host name or address with an optional port")
    return host.decode("ascii")


def _first(value: str) -> str:
    return value.split(",")[0].strip()


def _valid(pattern: re.Pattern[str], value: str | None) -> str | None:
    return value if value is not None and pattern.fullmatch(value) else None


_FORWARDING = frozenset((b"forwarded", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
                         b"x-forwarded-prefix"))


def public_base_url(request: Request, configured: str | None) -> str:
    if configured:
        return configured.rstrip("/")
    # Nearly every request names its host and no proxy: read from the raw headers in one pass.
    host = None
    for name, value in request.scope["headers"]:
        if name == b"host":
            if host is None:
                host = value
        elif name in _FORWARDING:
            break
    else:
        netloc = (_checked_host(host) if host is not None else None) or _server_netloc(request)
        return f"{request.scope.get('scheme', 'http').lower()}://{netloc}{request.scope.get('root_path', '').rstrip('/')}"
    headers = request.headers
    scheme = request.scope.get("scheme", "http")
    given = _checked_host(headers.get("host", "").encode("latin-1"))  # (checked even when a proxy names another)
    host = given or _server_netloc(request)
    prefix = request.scope.get("root_path", "")
    # X-Forwarded-* over Forwarded over the request itself; a value of the wrong form is skipped
    fwd = _forwarded(headers["forwarded"]) if "forwarded" in headers else {}
    scheme = (_valid(_SCHEME, _first(headers.get("x-forwarded-proto", ""))) or _valid(_SCHEME, fwd.get("proto"))
              or scheme).lower()
    x_host = _valid(_HOST, _first(headers.get("x-forwarded-host", "")))
    host = x_host or _valid(_HOST, fwd.get("host")) or host
    if x_host:
        port = _first(headers.get("x-forwarded-port", ""))
        if ":" not in host and _PORT.fullmatch(port) and (scheme, port) not in (("http", "80"), ("https", "443")):
            host = f"{host}:{port}"
    if "x-forwarded-prefix" in headers:
        forwarded_prefix = _first(headers["x-forwarded-prefix"]).strip("/")
        if _PREFIX.fullmatch(forwarded_prefix):
            prefix = "/" + forwarded_prefix
    return f"{scheme}://{host}{prefix.rstrip('/')}"


class UrlBuilder:
    def __init__(self, base_url: str) -> None:
        self.base = base_url.rstrip("/")
        self.base_json = orjson.dumps(self.base)[1:-1]  # as written inside a JSON string
        self._item_links_json: ItemLinksJson | None = None

    def url(self, path: str = "") -> str:
        """An API URL; a query string is added by server.api.pagination (query_string, paged_href)."""
        return f"{self.base}/{path.lstrip('/')}" if path else f"{self.base}/"

    def collection(self, collection_id: str) -> str:
        return self.url(f"collections/{quote_segment(collection_id)}")

    def items(self, collection_id: str) -> str:
        return self.collection(collection_id) + "/items"

    def item(self, collection_id: str, item_id: str) -> str:
        return self.items(collection_id) + "/" + quote_segment(item_id)

    def catalog(self, segments: tuple[str, ...]) -> str:
        """A sub-catalog of the tree, by its path (server.index.tree)."""
        return self.url("catalogs/" + "/".join(quote_segment(s) for s in segments))

    def node(self, node: Node) -> str:
        """A node of the tree: a sub-catalog, a collection, or the landing page."""
        if node.kind == COLLECTION:
            return self.collection(node.id)
        if node.kind == CATALOG:
            return self.catalog(node.segments)
        return self.url()

    def children(self, node: Node) -> str:
        """The children extension's endpoint of a node."""
        return self.node(node).rstrip("/") + "/children"

    def link(self, rel: str, href: str, media_type: str = JSON, **extra: Any) -> dict[str, Any]:
        return {"rel": rel, "type": media_type, "href": href, **extra}

    def item_links(self, collection: str | None, item_id: str) -> list[dict[str, Any]]:
        links = [self.link("root", self.url())]
        if collection is not None:
            links += [
                self.link("self", self.item(collection, item_id), GEOJSON),
                self.link("alternate", self.item(collection, item_id) + "?f=html", HTML),
                self.link("parent", self.collection(collection)),
                self.link("collection", self.collection(collection)),
            ]
        return links

    def item_links_json(self) -> ItemLinksJson:
        if self._item_links_json is None:
            self._item_links_json = ItemLinksJson(self)
        return self._item_links_json

    def collection_links(self, collection_id: str, parent: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """A collection's links; ``parent``: (href, title) of the catalog or collection holding
        it in the tree, when not the landing page."""
        parent_href, parent_title = parent if parent is not None else (self.url(), "Landing page")
        return [
            self.link("self", self.collection(collection_id)),
            self.link("alternate", self.collection(collection_id) + "?f=html", HTML, title="This collection as HTML"),
            self.link("root", self.url(), title="Landing page"),
            self.link("parent", parent_href, title=parent_title),
            self.link("items", self.items(collection_id), GEOJSON, title="Items"),
            self.link(QUERYABLES_REL, self.collection(collection_id) + "/queryables", SCHEMA_JSON, title="Queryables"),
            *self.aggregation_links(self.collection(collection_id) + "/"),
        ]

    def aggregation_links(self, base: str, names: list[str] | None = None) -> list[dict[str, Any]]:
        """The Aggregation extension's links of the landing page or a collection (``base``, ending
        with /): aggregate (GET and POST) and aggregations; ``names``, the aggregations /aggregate
        takes, go on the aggregate links as the extension recommends."""
        extra = {"aggregations": names} if names is not None else {}
        return [
            self.link("aggregate", base + "aggregate", JSON, method="GET", title="Aggregate (GET)", **extra),
            self.link("aggregate", base + "aggregate", JSON, method="POST", title="Aggregate (POST)", **extra),
            self.link("aggregations", base + "aggregations", JSON, title="Available aggregations"),
        ]


class ItemLinksJson:
    """``UrlBuilder.item_links`` as JSON bytes for spliced item responses: what every item of a
    collection shares is made once, and an item's bytes are joined in one copy (``splice``)."""

    def __init__(self, urls: UrlBuilder) -> None:
        self.urls = urls
        self.root = orjson.dumps(urls.link("root", urls.url()))
        # (before the self href's segment, between it and the alternate's, after the alternate's)
        self._by_collection: dict[str, tuple[bytes, bytes, bytes]] = {}

    def _parts(self, collection: str) -> tuple[bytes, bytes, bytes]:
        parts = self._by_collection.get(collection)
        if parts is None:
            href = self.urls.collection(collection)
            items = orjson.dumps(href + "/items/")[:-1]  # the opening quote, no closing one
            shared = orjson.dumps([self.urls.link("parent", href), self.urls.link("collection", href)])[1:-1]
            parts = self._by_collection[collection] = (
                self.root + b',{"rel":"self","type":"' + GEOJSON.encode() + b'","href":' + items,
                b'"},{"rel":"alternate","type":"' + HTML.encode() + b'","href":' + items,
                b'?f=html"},' + shared,
            )
        return parts

    def splice(self, data: bytes | memoryview, collection: str | None, item_id: str) -> bytes:
        """``data``, an item's JSON ending with its own links array (``...]}``), with these links
        appended to that array."""
        comma = b"" if data[-3:] == b"[]}" else b","
        if collection is None:
            return b"".join((data[:-2], comma, self.root, b"]}"))
        head, middle, tail = self._parts(collection)
        # A quoted segment is ASCII with no quote or backslash: JSON as it is.
        segment = quote_segment(item_id).encode("ascii")
        return b"".join((data[:-2], comma, head, segment, middle, segment, tail, b"]}"))


# Builders by base URL, so what they memoize (each collection's link bytes) outlives a request.
# Bounded: the base comes from request headers, which a client chooses.
_builders: LRUCache[str, UrlBuilder] = LRUCache(maxsize=64)


def url_builder(base_url: str) -> UrlBuilder:
    """The shared UrlBuilder for ``base_url``."""
    builder = _builders.get(base_url)
    if builder is None:
        builder = _builders[base_url] = UrlBuilder(base_url)
    return builder
