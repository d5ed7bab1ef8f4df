"""Pages for people: a Document rendered with the Jinja2 templates in server/api/templates.

Every catalog value is untrusted: Jinja2 autoescapes it; hrefs from the catalog become links
only when http(s) (`safe_href`); map data goes into the page as JSON inside a
``<script type="application/json">`` (tojson escapes <, > and &); descriptions are Markdown
rendered with raw HTML off. Pages work without JavaScript except the map, which is Leaflet
served by us (xstatic-leaflet, under /static/leaflet/) over the tiles the operator sets
(STAC_STATIC_HTML_TILES; the browser fetches them, never the server)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, quote_from_bytes, unquote, urlencode, urljoin, urlsplit, urlunsplit

import xstatic.pkg.leaflet
from jinja2 import Undefined
from markdown_it import MarkdownIt
from markdown_it.token import Token
from markupsafe import Markup, escape
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Mount
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from server.api import mapdata, paths
from server.api.documents import (
    AGGREGATE,
    AGGREGATIONS,
    API,
    CATALOG,
    CHILDREN,
    COLLECTION,
    COLLECTIONS,
    CONFORMANCE,
    ITEM,
    ITEMS,
    LANDING,
    QUERYABLES,
    Document,
)
from server.api.links import GEOJSON, HTML, UrlBuilder, public_base_url, quote_segment, url_builder
from server.api.pagination import next_link_get, query_string
from server.api.static_files import STATIC_PREFIXES
from server.api.tree_documents import item_links, node_title
from server.index import Index, exact_json
from server.index.aggregation import GRIDS, cell_bounds
from server.index.served import ASSETS_PATH, MARKER
from server.index.tree import COLLECTION as COLLECTION_NODE
from server.index.tree import LANDING as LANDING_NODE
from server.settings import Settings

HERE = Path(__file__).parent
TEMPLATES = Jinja2Templates(directory=HERE / "templates")
_MARKDOWN = MarkdownIt("commonmark", {"html": False})  # raw HTML in a description is shown as text
# The page of each kind of document (every kind has one)
PAGES = {LANDING: "landing.html", COLLECTIONS: "collections.html", COLLECTION: "collection.html",
         ITEMS: "items.html", ITEM: "item.html", CONFORMANCE: "conformance.html", QUERYABLES: "queryables.html",
         API: "openapi.html", CATALOG: "catalog.html", CHILDREN: "children.html",
         AGGREGATE: "aggregate.html", AGGREGATIONS: "aggregations.html"}
# Conformance classes grouped by the standard they come from (URI prefix, heading)
CONFORMANCE_GROUPS = (
    ("https://api.stacspec.org/", "STAC API"),
    ("http://www.opengis.net/spec/ogcapi-features-1/", "OGC API - Features - Part 1: Core"),
    ("http://www.opengis.net/spec/ogcapi-features-3/", "OGC API - Features - Part 3: Filtering"),
    ("http://www.opengis.net/spec/cql2/", "Common Query Language (CQL2)"),
    ("http://www.opengis.net/spec/ogcapi-common-2/", "OGC API - Common - Part 2: Geospatial Data"),
)
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Item properties shown in the table of a page of items, when the items have them
TABLE_PROPERTIES = ("collection", "platform", "constellation", "instruments", "eo:cloud_cover", "gsd")


def static_routes() -> list[BaseRoute]:
    """The pages' files: Leaflet from its PyPI package, and ours (style, map script)."""
    return [
        Mount("/static/leaflet", app=StaticFiles(directory=xstatic.pkg.leaflet.BASE_DIR), name="leaflet"),
        Mount("/static/pages", app=StaticFiles(directory=HERE / "static"), name="pages"),
    ]


# -- bidi controls: catalog text that would display reordered --------------------------------
# qa16: an id holding U+202E RIGHT-TO-LEFT OVERRIDE showed reversed ("evil\u202egnp.exe" as
# "evilexe.png"), and the reversal ran on into the page's own text after it (the crumbs' "›").
# So a page (never the JSON) shows the explicit bidi formatting characters of any catalog
# text as their escapes ("\u202E"): embeddings and overrides (U+202A-U+202E) and isolates
# (U+2066-U+2069), which reorder the text they hold, but not the marks (U+200E, U+200F,
# U+061C), which text in Arabic or Hebrew uses and which only set the direction of the
# punctuation beside them. An id (``ident``) shows the marks too: an invisible character
# makes an id look like another. Catalog text is also isolated (``<bdi>``, and CSS
# unicode-bidi: isolate on inline elements, style.css): a right-to-left title takes its own
# direction and leaves the page's text around it as it is.
_EXPLICIT = re.compile("[\u202a-\u202e\u2066-\u2069]")
# qa18: an Arabic or Hebrew title written with RLE ... PDF (U+202B, U+202C: an embedding, which
# sets the direction of the text it holds but cannot reverse the letters of a word) showed
# "\u202B" markers in its middle. qa19: so did one written with an isolate, RLI ... PDI
# (U+2067, U+2069), which Unicode recommends over embeddings (UAX #9 §6.3) and which also
# cannot reverse a word's letters. An embedding or isolate closed within the value, in order
# (each PDF closing an embedding, each PDI an isolate, none left open at a line's end, at
# most MAX_NESTED deep), is obeyed: it ends there, so nothing runs on into the page. Shown:
# the overrides (U+202D, U+202E), which display letters in reverse ("evil\u202Egnp.exe"),
# always; and every control of a value whose embeddings and isolates do not close so (an
# isolate left open, or a stray PDI, which would end the <bdi> around the text early).
_NESTING = re.compile("[\u202a-\u202c\u2066-\u2069\n\r\x1c-\x1e\x85\u2029]")
_OPENS = {"\u202a": "\u202c", "\u202b": "\u202c", "\u2066": "\u2069", "\u2067": "\u2069", "\u2068": "\u2069"}
_OVERRIDES = re.compile("[\u202d\u202e]")
# UAX #9 ignores what is nested past 125 levels, and each opener may add two: past 60, shown.
MAX_NESTED = 60
_BIDI_CONTROLS = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
_CONTROL_NAMES = {0x061C: "ARABIC LETTER MARK", 0x200E: "LEFT-TO-RIGHT MARK", 0x200F: "RIGHT-TO-LEFT MARK",
                  0x202A: "LEFT-TO-RIGHT EMBEDDING", 0x202B: "RIGHT-TO-LEFT EMBEDDING",
                  0x202C: "POP DIRECTIONAL FORMATTING", 0x202D: "LEFT-TO-RIGHT OVERRIDE",
                  0x202E: "RIGHT-TO-LEFT OVERRIDE", 0x2066: "LEFT-TO-RIGHT ISOLATE", 0x2067: "RIGHT-TO-LEFT ISOLATE",
                  0x2068: "FIRST STRONG ISOLATE", 0x2069: "POP DIRECTIONAL ISOLATE"}


def _shown(text: str) -> re.Pattern[str]:
    """The bidi controls of ``text`` a page shows rather than obeys: the overrides; and every
    explicit control unless each embedding and isolate is closed, in order, by its own PDF or
    PDI within the line it opens in (no closer closing nothing or the other kind)."""
    expected: list[str] = []  # the closer each open embedding or isolate waits for, innermost last
    for match in _NESTING.finditer(text):
        char = match.group()
        closer = _OPENS.get(char)
        if closer is not None:
            expected.append(closer)
            if len(expected) > MAX_NESTED:
                return _EXPLICIT
        elif char in "\u202c\u2069":
            if not expected or expected.pop() != char:
                return _EXPLICIT
        elif expected:  # a paragraph's end (UAX #9 class B) with something open
            return _EXPLICIT
    return _EXPLICIT if expected else _OVERRIDES


def _escape_code(match: re.Match[str]) -> str:
    return f"\\u{ord(match.group()):04X}"


def _control_span(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f'<span class="control" title="U+{code:04X} {_CONTROL_NAMES[code]}">\\u{code:04X}</span>'


def finalize(value: Any) -> Any:
    """Every value a template writes ({{ ... }}), before it is escaped: a string's explicit
    bidi controls as their escapes, in text and attributes alike (a <title>, an alt text); in
    an http(s) URL, as the percent-escapes a browser sends for them. Markup (our own, made
    from escaped text) is left alone; the common case, ASCII, costs one check. An object or
    array (catalog data of another type where the template wrote text: a `license` that is an
    object) is shown as its compact JSON, not as Python's repr of it (qa19)."""
    if isinstance(value, (dict, list)):
        value = show(value)
    if not isinstance(value, str) or isinstance(value, Markup) or value.isascii() or not _EXPLICIT.search(value):
        return value
    if value.startswith(("https://", "http://")):
        return _EXPLICIT.sub(lambda m: quote(m.group()), value)
    return _shown(value).sub(_escape_code, value)


def _missing(value: Any) -> bool:
    """None, or a member the template's value does not have: shown as nothing."""
    return value is None or isinstance(value, Undefined)


def _escaped(value: Any) -> str:
    """A value as text (show), escaped; missing as nothing."""
    return "" if _missing(value) else str(escape(show(value)))


def isolated(value: Any) -> Markup:
    """Catalog text (a title, a name) where the page's own text is around it: in a <bdi>, its
    explicit bidi controls shown (as finalize does)."""
    text = _escaped(value)
    return Markup(f"<bdi>{_shown(text).sub(_control_span, text)}</bdi>")


def ident(value: Any) -> Markup:
    """An id: in a <bdi>, every bidi control in it shown, marks too."""
    return Markup(f"<bdi>{_BIDI_CONTROLS.sub(_control_span, _escaped(value))}</bdi>")


def _map_titles(features: list[dict[str, Any]], ids: bool) -> list[dict[str, Any]]:
    """A map's features with their tooltips' bidi controls shown as escapes (map.js sets them
    as text, in a span of their own direction): items' (their ids) all of them, collections'
    (titles) the explicit ones."""
    for feature in features:
        title = feature["properties"]["title"]
        if not title.isascii():
            feature["properties"]["title"] = (_BIDI_CONTROLS if ids else _shown(title)).sub(_escape_code, title)
    return features


def field(value: Any) -> Markup:
    """A form field's value, the request's own parameter as the person typed it: escaped for
    HTML only, its bidi controls kept (finalize leaves Markup alone), so that submitting the
    form again sends what was sent (qa17: a q holding U+202E came back as the six characters
    "\u202E", and a resubmission searched for those)."""
    return escape("" if _missing(value) else str(value))


def title_or(title: Any, ident_: Any) -> Markup:
    """A document's title, isolated, or (none) its id as ``ident`` shows it."""
    return isolated(title) if title else ident(ident_)


def safe_href(href: Any) -> str | None:
    """A catalog href a page may link to or show: http(s) only, never javascript: or data:, nor
    the local file paths of a catalog read from disk (they mean nothing to a browser); a
    root-relative href only into the files this server serves itself (the sample's thumbnails)."""
    if not isinstance(href, str):
        return None
    if href.startswith(STATIC_PREFIXES) and ".." not in href:
        return href
    return href if urlsplit(href.strip()).scheme.lower() in ("http", "https") else None


def description_base(urls: UrlBuilder, source: str | None) -> tuple[str, str | None] | None:
    """What relative hrefs in a description resolve against: the public href of the document
    it was written in (Node.source: mapped by --public-href already) as a URL, and, for a local
    file this API serves (a stored served href, server.index.served), the URL of its root's
    folder, which they must stay in; None: nothing a browser can open to resolve against (a
    local document not served; an s3:// one not mapped to an http(s) URL: its links would be
    s3:// ones, which a browser cannot follow, so they are shown as their text)."""
    if source is None:
        return None
    if source.startswith(MARKER):
        url = urls.url(source[len(MARKER):])
        root = re.match(r".*?" + re.escape(ASSETS_PATH) + r"/\d+/", url)
        return url, root.group(0) if root else urls.url(ASSETS_PATH) + "/"
    if urlsplit(source).scheme.lower() not in ("http", "https"):
        return None
    return source, None


def resolve_description_href(href: str, base: tuple[str, str | None] | None) -> str | None:
    """Where an href in a description leads (see description_base): a relative one resolved
    against the document's URL, inside its root when we serve it; None when it cannot be: the
    page drops it rather than let the browser resolve it against the page's URL (a 404).
    Absolute URLs (markdown-it has already refused javascript: and the like) and fragments stay.
    A protocol-relative `//host/...` is another host's address, kept like an absolute URL: with
    the scheme of the document it was written in (RFC 3986 §5.2; a remote one's https stays
    https on an http page) when that is http(s), else the page's (left to the browser): never
    another scheme (`//host` in an s3:// document is not an s3: link)."""
    if href.startswith("//"):
        target = urljoin(base[0], href) if base is not None else href
        return target if urlsplit(target).scheme.lower() in ("http", "https") else href
    if href.startswith("#") or urlsplit(href).scheme:
        return href
    if base is None:
        return None
    url, root = base
    target = urljoin(url, href)
    if root is not None and (not target.startswith(root) or ".." in unquote(target[len(root):])):
        return None  # out of the served root (the route refuses it too): never followed
    return target


_AS_WRITTEN: Any = object()


def markdown(text: Any, base: Any = _AS_WRITTEN) -> Markup:
    """A description rendered (raw HTML off); ``base``: description_base's, hrefs resolved by
    resolve_description_href (none given: left as written, as for the operator's description).
    A link that cannot be resolved becomes its text, an image its alt text."""
    tokens = _MARKDOWN.parse(str(text or ""))
    _shown_controls(tokens)
    if base is _AS_WRITTEN:
        return Markup(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))
    for token in tokens:
        if token.type != "inline" or not token.children:
            continue
        kept, dropped_links = [], []
        for child in token.children:
            if child.type == "image":
                src = resolve_description_href(str(child.attrGet("src") or ""), base)
                if src is None:
                    child = Token("text", "", 0, content=child.content)  # its alt text
                else:
                    child.attrSet("src", src)
            elif child.type == "link_open":
                href = resolve_description_href(str(child.attrGet("href") or ""), base)
                dropped_links.append(href is None)
                if href is None:
                    continue
                child.attrSet("href", href)
            elif child.type == "link_close" and dropped_links.pop():
                continue
            kept.append(child)
        token.children = kept
    return Markup(_MARKDOWN.renderer.render(tokens, _MARKDOWN.options, {}))


def _shown_controls(tokens: list[Token]) -> None:
    """A description's explicit bidi controls shown (finalize's escapes) wherever it has text:
    its paragraphs, code, an image's alt text; link targets are left to markdown-it, which
    percent-escapes them."""
    for token in tokens:
        if token.type in ("text", "code_inline", "code_block", "fence") and not token.content.isascii():
            token.content = _shown(token.content).sub(_escape_code, token.content)
        if token.children:
            _shown_controls(token.children)


def show(value: Any) -> str:
    """A property value as text: strings as they are, the rest as compact JSON."""
    if isinstance(value, str):
        return value
    return exact_json.dumps(value).decode()


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


def conformance_groups(classes: list[str]) -> list[tuple[str, list[str]]]:
    """``classes`` under the heading of the standard each comes from, in the order listed."""
    groups: dict[str, list[str]] = {}
    for uri in classes:
        heading = next((title for prefix, title in CONFORMANCE_GROUPS if uri.startswith(prefix)), "Other")
        groups.setdefault(heading, []).append(uri)
    return list(groups.items())


def schema_type(schema: Any) -> str:
    """A JSON Schema's type as a person reads it: "string (date-time)", "array of number",
    "integer or string", "GeoJSON geometry"."""
    if not isinstance(schema, dict):
        return ""
    if "type" not in schema and isinstance(schema.get("$ref"), str):
        return "GeoJSON geometry" if "geojson.org" in schema["$ref"] else schema["$ref"]
    kinds = schema.get("type")
    text = " or ".join(str(k) for k in kinds) if isinstance(kinds, list) else str(kinds or "")
    if kinds == "array" and isinstance(schema.get("items"), dict) and schema["items"].get("type"):
        text = f"array of {schema_type(schema['items'])}"
    if schema.get("format"):
        text = f"{text} ({schema['format']})" if text else str(schema["format"])
    return text


def schema_values(schema: Any) -> str:
    """The values a JSON Schema allows, when it says: its enum, or its range."""
    if not isinstance(schema, dict):
        return ""
    if isinstance(schema.get("enum"), list):
        return ", ".join(show(v) for v in schema["enum"])
    low = next((f"{sign} {show(schema[k])}" for k, sign in (("minimum", "≥"), ("exclusiveMinimum", ">"))
                if isinstance(schema.get(k), int | float)), "")
    high = next((f"{sign} {show(schema[k])}" for k, sign in (("maximum", "≤"), ("exclusiveMaximum", "<"))
                 if isinstance(schema.get(k), int | float)), "")
    return ", ".join(part for part in (low, high) if part)


def _queryables(schema: dict[str, Any]) -> list[dict[str, Any]]:
    """A row per queryable: name, title, type, allowed values, description, and the href of
    the schema it refers to (when it is one a page may link to)."""
    properties = schema.get("properties")
    out = []
    for name, prop in (properties.items() if isinstance(properties, dict) else []):
        prop = prop if isinstance(prop, dict) else {}
        ref = prop.get("$ref") if "type" not in prop else None
        out.append({"name": name, "title": show(prop.get("title", "")), "type": schema_type(prop),
                    "values": schema_values(prop), "description": show(prop.get("description", "")),
                    "ref": safe_href(ref)})
    return out


def _as_list(value: Any) -> list[Any]:
    """A member STAC writes as an array, as one: none for null, the value alone for another."""
    return value if isinstance(value, list) else [] if value is None else [value]


def _as_mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def laid_out(collection: dict[str, Any]) -> dict[str, Any]:
    """A collection as its page lays it out: the members whose shape STAC sets (keywords,
    providers and their roles, extent, summaries, item_assets and their roles) in that shape,
    a value of another shape kept as the one entry of its list or table, shown as text. The
    loader takes a collection with any members beside its id (the JSON serves them as written):
    qa19: "providers": 5, an extent of "x" or "interval": 5 were a 500 on the collection's page
    and on every /collections page listing it. A copy: the index's document is left alone."""
    out = dict(collection)
    extent = collection.get("extent")
    temporal, spatial = _as_mapping(_as_mapping(extent).get("temporal")), _as_mapping(_as_mapping(extent).get("spatial"))
    out["extent"] = {**_as_mapping(extent),
                     "temporal": {**temporal, "interval": [i if isinstance(i, list) else [show(i)]
                                                           for i in _as_list(temporal.get("interval"))]},
                     "spatial": {**spatial, "bbox": _as_list(spatial.get("bbox"))}}
    if extent is not None and not isinstance(extent, dict):
        out["extent"]["spatial"]["bbox"] = [extent]  # shown as it is, in the Bbox row
    out["keywords"] = _as_list(collection.get("keywords"))
    out["providers"] = [{**p, "roles": _as_list(p.get("roles"))} if isinstance(p, dict) else {"name": p}
                        for p in _as_list(collection.get("providers"))]
    for member in ("summaries", "item_assets"):
        value = collection.get(member)
        if value is not None and not isinstance(value, dict):
            value = {"": value}  # one row, keyed by nothing
        out[member] = value
    out["item_assets"] = _assets_laid_out(out["item_assets"])
    return out


def _assets_laid_out(assets: Any) -> Any:
    """Assets (or item_assets) with each asset's roles an array (`"roles": "thumbnail"` as
    ["thumbnail"]; qa19: `"roles": 5` was a 500 on the item's page); an asset that is no object
    as its title, shown as text."""
    if not isinstance(assets, dict):
        return assets
    return {key: {**asset, "roles": _as_list(asset.get("roles"))} if isinstance(asset, dict) else {"title": show(asset)}
            for key, asset in assets.items()}


def _operations(openapi: dict[str, Any]) -> list[dict[str, Any]]:
    """The OpenAPI document's operations: method, path and summary, in its order."""
    out = []
    for path, item in (openapi.get("paths") or {}).items():
        for method in HTTP_METHODS:
            operation = (item or {}).get(method)
            if isinstance(operation, dict):
                out.append({"method": method.upper(), "path": path, "summary": operation.get("summary") or "",
                            "plain": method == "get" and "{" not in path})
    return out


# How an aggregation's page names it (the JSON name is shown beside), and a datetime bucket's
# start by the interval it spans
AGGREGATION_TITLES = {"total_count": "Items matched", "datetime_min": "Earliest datetime",
                      "datetime_max": "Latest datetime", "datetime_frequency": "Items by datetime",
                      "collection_frequency": "Items by collection", "cloud_cover_frequency": "Items by cloud cover"}
_GRID_TITLES = {"centroid": "Items by the {kind} cell of their centre",
                "geometry": "Items by the {kind} cells their bounding box reaches"}
_INTERVAL_LABEL = {"year": 4, "quarter": 7, "month": 7, "week": 10, "day": 10, "hour": 13, "minute": 16, "second": 19}


def aggregation_title(name: str) -> str:
    if name in AGGREGATION_TITLES:
        return AGGREGATION_TITLES[name]
    if name in GRIDS:
        source, kind = name.split("_")[:2]
        return _GRID_TITLES[source].format(kind={"geohex": "H3"}.get(kind, kind))
    return f"Items by {name.removesuffix('_frequency')}" if name.endswith("_frequency") else name


def _time_label(key: Any, interval: str) -> str:
    """A datetime bucket's start as a person reads it at its interval: 2021, 2021 Q2, 2021-04,
    2021-04-05, 2021-04-05 13:00."""
    text = show(key)
    if len(text) < 19 or text[4:5] != "-":
        return text
    if interval == "quarter":
        return f"{text[:4]} Q{(int(text[5:7]) - 1) // 3 + 1}" if text[5:7].isdigit() else text
    label = text[:_INTERVAL_LABEL.get(interval, 19)].replace("T", " ")
    return label + ":00" if interval == "hour" else label


def _number(value: Any) -> str:
    """A range's end as written: 5, 12.5 ("" for none)."""
    if value is None:
        return ""
    return str(int(value)) if isinstance(value, float) and value.is_integer() else show(value)


def _degrees(box: tuple[float, float, float, float]) -> str:
    return ", ".join(f"{v:.6g}" for v in box)


# The buckets a distribution's table shows: datetime_frequency by hour over the 100k benchmark is
# 61,368 buckets, a page of 8.7 MB built in 4.7 s (the JSON: 4.4 MB, 1.5 s) that no person reads
# down; its JSON link has them all.
PAGE_BUCKETS = 1_000


def _aggregations(body: dict[str, Any], params: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """An AggregationCollection for its page: the single values (name, title, value), and a
    table per frequency distribution: its buckets in the answer's order (datetime in time
    order, terms most frequent first), each with its count and share of the largest, a grid's
    cells with the box they cover."""
    values, tables = [], []
    interval = str(params.get("datetime_frequency_interval") or "month").lower()
    for entry in body.get("aggregations") or []:
        if not isinstance(entry, dict):
            continue
        name = show(entry.get("name", ""))
        if not isinstance(entry.get("buckets"), list):
            values.append({"name": name, "title": aggregation_title(name), "value": show(entry.get("value", ""))})
            continue
        buckets = [b for b in entry["buckets"] if isinstance(b, dict)]
        counts: list[int] = [b["frequency"] if isinstance(b.get("frequency"), int) else 0 for b in buckets]
        top = max(counts, default=0)
        grid = name in GRIDS
        rows = []
        for bucket, count in zip(buckets[:PAGE_BUCKETS], counts):
            key = bucket.get("key")
            if bucket.get("data_type") == "datetime":
                label = _time_label(key, interval)
            elif "from" in bucket or "to" in bucket:
                low, high = _number(bucket.get("from")), _number(bucket.get("to"))
                label = f"≥ {low} and < {high}" if low and high else f"< {high}" if high else f"≥ {low}"
            else:
                label = show(key)
            box = cell_bounds(name, key) if grid else None
            rows.append({"key": label, "count": count, "share": round(100 * count / top, 1) if top else 0,
                         "cell": _degrees(box) if box else ""})
        heading = "Cell" if grid else "From" if any(b.get("data_type") == "datetime" for b in buckets) else (
            "Range" if any("from" in b or "to" in b for b in buckets) else "Value")
        overflow = entry.get("overflow") if isinstance(entry.get("overflow"), int) else 0
        tables.append({"name": name, "title": aggregation_title(name), "rows": rows, "heading": heading,
                       "grid": grid, "overflow": overflow, "total": sum(counts), "buckets": len(buckets)})
    return values, tables


def noun(count: int, one: str, many: str | None = None) -> str:
    """The word for ``count`` things: "item" for one, "items" (or ``many``) otherwise."""
    return one if count == 1 else many or one + "s"


for name, fn in (("safe_href", safe_href), ("noun", noun), ("markdown", markdown), ("show", show), ("excerpt", excerpt),
                 ("schema_type", schema_type), ("schema_values", schema_values), ("isolated", isolated),
                 ("ident", ident), ("title_or", title_or), ("field", field)):
    TEMPLATES.env.filters[name] = fn
TEMPLATES.env.finalize = finalize  # before any template is compiled: the compiler reads it


def _as_get(ctx: dict[str, Any], body: dict[str, Any]) -> None:
    """A POSTed search's page, written as the GET asking the same (its alternate link, when
    the body has a GET form): the form filled in, the JSON link and the paging links as GET
    URLs. Without one, its paging links stay POSTs the page cannot offer (post_only)."""
    same = next((link["href"] for link in body.get("links", [])
                 if link.get("rel") == "alternate" and link.get("type") == HTML and link.get("method") == "GET"), None)
    if same is None:
        ctx["json_href"], ctx["post_only"] = None, True
        return
    parts = urlsplit(same)
    params = {k: v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "f"}
    href, encoded = urlunsplit(parts._replace(query="")), query_string(params)
    ctx["params"], ctx["json_href"] = params, with_format(same, "json")
    body["links"] = [
        next_link_get(href, encoded, (link.get("body") or {}).get("token"), GEOJSON, link["rel"])
        if link.get("method") == "POST" and link.get("rel") in ("next", "prev", "first") else link
        for link in body.get("links", [])
    ]


# What a query string may hold as it is in an href (RFC 3986 query characters, "%" for its escapes)
_QUERY_SAFE = "!$&'()*+,;=:@/?%~-._"


def page_href(request: Request, urls: UrlBuilder, query: bool = True) -> str:
    """The URL this request asked for, as the API's own links write it: on the public base URL
    (not the host the server was reached at behind a proxy), each path segment decoded once and
    encoded again (Starlette's ``request.url`` is the decoded path: "%2541" became "%41", which
    names another id, and "%23" a "#" that ends the URL), the query string as it came."""
    segments = paths.decoded_segments(request.scope)
    if segments is not None:
        path = "/".join(quote_segment(segment) for segment in segments)
    else:  # a path that is no UTF-8: the bytes as they came, escaped where they must be
        raw: bytes = request.scope.get("raw_path") or b""
        root = request.scope.get("root_path", "").encode("utf-8")
        path = quote_from_bytes(raw[len(root):] if root and raw.startswith(root + b"/") else raw, safe="/%")[1:]
    href = urls.url(path)
    raw_query = request.scope.get("query_string", b"")
    return f"{href}?{quote(raw_query.decode('latin-1'), safe=_QUERY_SAFE)}" if query and raw_query else href


def _roots(index: Index | None) -> list[str]:
    """The titles of the landing page's roots when there are several (catalogs or collections
    given as ROOTs, none hoisted into the landing page: server.index.tree); else []."""
    if index is None:
        return []
    landing = index.tree.nodes[LANDING_NODE]
    if landing.document is not None or len(landing.children) < 2:
        return []
    return [node_title(index, index.tree.nodes[child]) for child in landing.children]


def _roots_title(titles: list[Any], text: type[str] = str) -> Any:
    """"A and B", "A, B and C", "A and 3 more": a landing page of several roots, by their titles;
    ``text`` Markup for titles that are (_roots_heading)."""
    if len(titles) <= 3:
        return text(" and ").join([text(", ").join(titles[:-1]), titles[-1]])
    return text("{} and {} more").format(titles[0], len(titles) - 1)


# The roots a landing page's description names; the tree list below it has them all.
ROOTS_NAMED = 12


def _roots_heading(titles: list[str]) -> Markup:
    """_roots_title with each title isolated (qa17: "A, B and C" was one <bdi>, so a
    right-to-left title took the others and the commas into its direction)."""
    heading: Markup = _roots_title([isolated(t) for t in titles], Markup)
    return heading


def _roots_description(titles: list[str]) -> Markup:
    """"This API serves N roots: A, B, C.", each title isolated."""
    named = Markup(", ").join(isolated(t) for t in titles[:ROOTS_NAMED])
    more = f" and {len(titles) - ROOTS_NAMED} more" if len(titles) > ROOTS_NAMED else ""
    return Markup("This API serves {} roots: {}{}.").format(len(titles), named, more)


def _site_title(request: Request, settings: Settings) -> tuple[str, Markup]:
    """The title of the site, in every page's header: the root catalog's; of several roots, the
    configured title (STAC_STATIC_TITLE) or one naming them (not the first root's alone). As
    text (a <title>) and as markup (the header, a heading: its catalog titles isolated)."""
    index = paths.pinned_index(request.scope)
    titles = _roots(index)
    if titles and "title" not in settings.model_fields_set:
        return _roots_title(titles), _roots_heading(titles)
    title = settings.title if titles else str((index.root.get("title") if index is not None else None) or settings.title)
    return title, isolated(title)


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
    return {"tree_children": children, "tree_items": found, "crumbs": crumbs,
            "description_base": description_base(urls, tree.source(number))}


def _context(request: Request, doc: Document) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    urls = url_builder(public_base_url(request, settings.base_url))
    body = doc.plain()
    params = dict(parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
    index = paths.pinned_index(request.scope)
    site_title, site_heading = _site_title(request, settings)
    ctx: dict[str, Any] = {
        "doc": body, "kind": doc.kind, "params": params, "urls": urls, "settings": settings,
        "site_title": site_title, "site_heading": site_heading,
        "json_href": with_format(page_href(request, urls), "json"), "map": None,
        "table_properties": TABLE_PROPERTIES,
        "description_base": None,  # the document's own (its tree node's), when known
    }
    if doc.kind == LANDING and index is not None:
        titles = _roots(index)
        if titles:  # the JSON's title and description are the first root's: the page names them all
            ctx["page_title"] = site_heading
            ctx["page_description"] = settings.description if "description" in settings.model_fields_set else None
            ctx["roots_description"] = _roots_description(titles)
        ctx["counts"] = {"collections": len(index.collections), "items": index.size,
                         "loaded": dt.datetime.fromtimestamp(index.loaded_at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")}
        ctx.update(_tree_context(urls, index, LANDING_NODE, items=True))
    elif doc.kind == CATALOG and index is not None:
        ctx.update(_tree_context(urls, index, int(request.path_params["node"]), items=True))
    elif doc.kind == COLLECTIONS:
        ctx["doc"] = body = {**body, "collections": [laid_out(c) for c in body["collections"]]}
        ctx["map"] = _map_titles(mapdata.extent_features(body["collections"]), ids=False)
    elif doc.kind == COLLECTION:
        ctx["doc"] = body = laid_out(body)
        ctx["map"] = _map_titles(mapdata.extent_features([body]), ids=False)
        number = index.tree.collection_node(body["id"]) if index is not None else None
        if index is not None and number is not None:
            ctx.update(_tree_context(urls, index, number, items=False))
    elif doc.kind == ITEMS:
        if request.method == "POST":
            _as_get(ctx, body)
        ctx["map"] = _map_titles(mapdata.footprints(body["features"]), ids=True)
        ctx["columns"] = [p for p in TABLE_PROPERTIES
                          if any(p in (f.get("properties") or {}) for f in body["features"])]
        ctx["collection_id"] = request.path_params.get("collection_id")
        ctx["action"] = page_href(request, urls, query=False)
        ctx["capped"] = getattr(request.state, "page_capped", None)  # the limit asked for, when over the page's
    elif doc.kind == ITEM:
        ctx["doc"] = body = {**body, "assets": _assets_laid_out(body.get("assets"))} if "assets" in body else body
        # no geometry (null, or left out by fields): a note, not an empty map (nor Leaflet loaded for it)
        ctx["map"] = _map_titles(mapdata.footprints([body]), ids=True) or None
    elif doc.kind == CONFORMANCE:
        ctx["groups"] = conformance_groups(body.get("conformsTo") or [])
    elif doc.kind == QUERYABLES:
        ctx["collection_id"] = request.path_params.get("collection_id")
        ctx["queryables"] = rows = _queryables(body)
        ctx["has_values"] = any(row["values"] for row in rows)
        ctx["has_description"] = any(row["description"] for row in rows)
    elif doc.kind == API:
        ctx["operations"] = _operations(body)
    elif doc.kind in (AGGREGATE, AGGREGATIONS):
        ctx["collection_id"] = collection_id = request.path_params.get("collection_id")
        ctx["aggregate_href"] = urls.collection(collection_id) + "/aggregate" if collection_id else urls.url("aggregate")
        ctx["aggregations_href"] = (urls.collection(collection_id) + "/aggregations" if collection_id
                                    else urls.url("aggregations"))
        if doc.kind == AGGREGATE:
            used = getattr(request.state, "posted", None) if request.method == "POST" else params
            ctx["used"] = [(k, ", ".join(v.split(",")) if k == "aggregations" and isinstance(v, str) else show(v))
                           for k, v in (used or {}).items() if k != "f" and v not in ("", None)]
            ctx["values"], ctx["tables"] = _aggregations(body, dict(used or {}))
            if request.method == "POST":
                ctx["json_href"] = None  # a POST's answer has no URL of its own
        else:
            ctx["available"] = [{"name": show(e.get("name", "")), "title": aggregation_title(show(e.get("name", ""))),
                                 "type": f"buckets of {show(e.get('frequency_distribution_data_type', ''))}"
                                 if e.get("data_type") == "frequency_distribution" else show(e.get("data_type", ""))}
                                for e in body.get("aggregations") or [] if isinstance(e, dict)]
    return ctx


def page(request: Request, doc: Document) -> Response:
    return TEMPLATES.TemplateResponse(request, PAGES[doc.kind], _context(request, doc), status_code=doc.status)


def error_page(request: Request, status: int, code: str, description: str) -> Response:
    settings: Settings = request.app.state.settings
    urls = url_builder(public_base_url(request, settings.base_url))
    site_title, site_heading = _site_title(request, settings)
    context = {"status": status, "code": code, "description": description, "settings": settings, "urls": urls,
               "map": None, "site_title": site_title, "site_heading": site_heading, "kind": "error",
               "json_href": with_format(page_href(request, urls), "json")}
    if status == 400 and request.method == "GET":
        # a search a person typed into a page's form and got wrong (a filter cut short, a month
        # 13): the form again, filled in as sent, instead of only the message and Back
        found, segments = paths.resolve(request.scope), paths.decoded_segments(request.scope)
        params = dict(parse_qsl(request.scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True))
        if found is not None and found[0] == paths.ITEMS or segments == ["search"]:
            context["params"] = params
            context["collection_id"] = found[1]["collection_id"] if found is not None else None
            context["action"] = page_href(request, urls, query=False)
        elif segments == ["collections"]:
            context["params"], context["collections_form"] = params, True
    return TEMPLATES.TemplateResponse(request, "error.html", context, status_code=status)
