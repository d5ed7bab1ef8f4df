"""The renderer: a handler's Document becomes a response in the representation asked for.

``?f=json`` / ``?f=html`` (the OGC API convention) wins; else the Accept header: a browser's,
which lists text/html first, gets a page, and so does one preferring text/* (_accept_wants_html);
application/json, application/geo+json, */* or no Accept get JSON, so STAC clients and curl see
what they always saw. The HTTP cache keys its
ETags and bodies on the same answer (server.api.caching), so a JSON body is never served to a
browser or a page to a client.

JSON keeps its fast path here: an item's stored bytes are spliced with the API's links, never
parsed (server.api.documents.render_item)."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Scope

from server.api import pages
from server.api.documents import AGGREGATE, ITEM, ITEMS, Document, Features, item_bytes
from server.api.links import JSON
from server.api.responses import JSONResponse
from server.api.threads import in_thread
from server.errors import InvalidQueryParameter, InvalidRequestHeader

HTML, JSON_FORMAT = "html", "json"
HTML_TYPE = "text/html"
# ?f= values: the OGC names and the media types' short names
_FORMATS = {"html": HTML, "json": JSON_FORMAT, "geojson": JSON_FORMAT}
_HTML_TYPES = ("text/html", "application/xhtml+xml")
# Pages of more items than this are rendered in a worker thread (10,000 items: ~30 ms).
LARGE_PAGE = 500


def _names_f(query_string: bytes) -> bool:
    """Whether the query string may hold an f parameter (every request asks, twice). find, not
    `in`: CPython 3.11's bytes `in` first tries the needle as an integer, raising and clearing a
    TypeError, ~2,100 instructions a test under callgrind (qa18)."""
    return query_string.find(b"f=") >= 0


def _f_value(query_string: bytes) -> str:
    """The f parameter's value, "" when absent or empty (as every empty parameter). Only
    whitespace is not empty: kept as sent, an f the API does not have (a 400, as `limit= ` is;
    schemathesis found `f=%0C` answered 200, the document's enum being json and html)."""
    if not _names_f(query_string):
        return ""
    value = ""
    for name, v in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if name == "f":
            value = v  # the last one, as for every other repeated parameter
    return value.strip().lower() or value


def _format_param(query_string: bytes) -> str | None:
    return _FORMATS.get(_f_value(query_string))


def check_format(query_string: bytes) -> None:
    """A 400 for an f the API does not have (elsewhere, such as an error's own page, it is as absent)."""
    value = _f_value(query_string)
    if value and value not in _FORMATS:
        raise InvalidQueryParameter(f"Invalid f: {value!r}; expected one of json, html")


def _accept_wants_html(accept: str) -> bool:
    """Whether the client prefers a page to JSON (RFC 9110 §12.5.1). Each gets the q of the most
    specific media range that matches it: HTML text/html (or application/xhtml+xml, which
    browsers list beside it), else text/*, else */*; JSON a JSON type (application/json,
    application/geo+json, any +json), else application/*, else */*; none: 0. HTML wins when
    its q is over 0 and over JSON's, or equal to it and its range listed first, and the client
    named it (text/html or text/*): a client that did not ask for HTML (*/*, an image type,
    */*;q=0.5 beside application/geo+json;q=0.1) gets JSON. qa16: "text/*" got JSON (only
    text/html counted), though it matches text/html."""
    # (specificity, q, position) of the range that decides each
    html, json = (-1, 0.0, 0), (-1, 0.0, 0)
    for position, part in enumerate(accept.split(",")):
        media, _, params = part.strip().partition(";")
        media = media.strip().lower()
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.strip().partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        if media == "*/*":
            html, json = max(html, (0, q, -position)), max(json, (0, q, -position))
        elif media in _HTML_TYPES or media == "text/*":
            html = max(html, (1 if media == "text/*" else 2, q, -position))
        elif media == "application/*" or media.startswith("application/") and media.endswith("json"):
            json = max(json, (1 if media == "application/*" else 2, q, -position))
    (html_kind, html_q, html_at), (_, json_q, json_at) = html, json
    if html_kind < 1:
        return False  # HTML not asked for by name (at most by */*): JSON, whatever the q
    return html_q > 0 and (html_q > json_q or html_q == json_q and html_at > json_at)


def representation(query_string: bytes, accept: bytes | None) -> str:
    """HTML or JSON_FORMAT for a request with this query string and Accept header."""
    chosen = _format_param(query_string) if _names_f(query_string) else None
    if chosen is not None:
        return chosen
    if not accept:
        return JSON_FORMAT
    # Media types are case-insensitive (RFC 9110 §8.3.1; qa17: "TEXT/HTML" got JSON, the quick
    # test looked for lower-case "html"): the header is decoded and lowered once, and tested as
    # a str, which is cheaper than the bytes it was tested as: `b"x" in some_bytes` first tries
    # the needle as an integer (CPython 3.11 raises and clears a TypeError), ~2,100 instructions
    # a test under callgrind. representation() with Accept */*: ~7,700 -> ~4,850 instructions a
    # call, application/json ~7,970 -> ~5,100, none: the same (bench/README.md, session 18 qa18).
    text = accept.decode("latin-1").lower()
    if "html" not in text and "text/*" not in text:  # the common API case, decided without parsing
        return JSON_FORMAT
    return HTML if _accept_wants_html(text) else JSON_FORMAT


# Where a request's representation is kept once decided (by the HTTP cache, for its ETag, or
# here), so it is decided once per request.
_CHOSEN = "stac_static_api.representation"


def scope_representation(scope: Scope, accept: bytes | None = None, accept_known: bool = False) -> str:
    """The representation of the request ``scope``, decided at its first ask; ``accept``: its
    Accept header (the first), when the caller has already found it (``accept_known``)."""
    chosen: str | None = scope.get(_CHOSEN)
    if chosen is None:
        if not accept_known:
            accept = next((v for k, v in scope["headers"] if k == b"accept"), None)
        chosen = scope[_CHOSEN] = representation(scope.get("query_string", b""), accept)
    return chosen


def request_representation(request: Request) -> str:
    return scope_representation(request.scope)


def _alternate(links: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The link to the page of a document whose links are ``links``, from its self link."""
    self_link = links[0] if links and links[0].get("rel") == "self" else next(
        (link for link in links if link.get("rel") == "self"), None)
    if self_link is None:
        return None
    return {"rel": "alternate", "type": HTML_TYPE, "href": pages.with_format(self_link["href"], HTML),
            "title": "This page as HTML"}


def _with_alternate(body: dict[str, Any], method: str) -> dict[str, Any]:
    """``body`` with a link to its page next to its self link (a POST search has no page URL)."""
    links = body.get("links")
    if method != "GET" or not isinstance(links, list) or any(
            link.get("rel") == "alternate" and link.get("type") == HTML_TYPE for link in links):
        return body
    alternate = _alternate(links)
    return body if alternate is None else {**body, "links": [*links, alternate]}


async def json_response(request: Request, doc: Document) -> Response:
    body = doc.body
    if doc.kind == ITEM and isinstance(body, Features):
        # the spliced bytes, written as they are (their links carry the alternate)
        data = item_bytes(body.urls, body.index, body.positions[0]) if body.fields is None else None
        if data is not None:
            return Response(data, status_code=doc.status, media_type=doc.media_type)
        content: Any = body.as_json()[0]
    elif doc.kind == ITEMS:
        features: Features = body["features"]
        rendered = await in_thread(request, features.as_json) if len(features) > LARGE_PAGE else features.as_json()
        # The API writes these links itself (none come from the catalog): no alternate among them.
        links = body["links"]
        alternate = _alternate(links) if request.method == "GET" else None
        content = {**body, "features": rendered, "links": [*links, alternate] if alternate else links}
    else:
        content = _with_alternate(body, request.method) if isinstance(body, dict) else body
    return JSONResponse(content, status_code=doc.status, media_type=doc.media_type)


async def render(request: Request, doc: Document) -> Response:
    if scope_representation(request.scope) == HTML:
        large = doc.kind == ITEMS and len(doc.body["features"]) > LARGE_PAGE  # a 10,000-row page: ~1 s
        large = large or (isinstance(doc.body, dict) and len(doc.body.get("links") or ()) > LARGE_PAGE)  # a catalog's items
        large = large or doc.kind == AGGREGATE and sum(  # up to 10,000 cells or 65,536 datetime buckets a table
            len(a.get("buckets") or ()) for a in doc.body["aggregations"]) > LARGE_PAGE
        return await in_thread(request, pages.page, request, doc) if large else pages.page(request, doc)
    return await json_response(request, doc)


def error(request: Request, status: int, code: str, description: str) -> Response:
    """An error: a page for a browser, {"code", "description"} for everything else."""
    response: Response | None = None
    if request_representation(request) == HTML:
        with contextlib.suppress(InvalidRequestHeader):  # no page links without a usable Host: JSON
            response = pages.error_page(request, status, code, description)
    if response is None:
        response = JSONResponse({"code": code, "description": description}, status_code=status, media_type=JSON)
    response.headers["Vary"] = "Accept"  # errors are not cached here, but a shared cache may keep them
    return response


def rendered(handler: Callable[[Request], Awaitable[Document]]) -> Callable[[Request], Awaitable[Response]]:
    """A Starlette endpoint from a handler that returns a Document."""

    @functools.wraps(handler)
    async def endpoint(request: Request) -> Response:
        query_string = request.scope.get("query_string", b"")
        if _names_f(query_string):
            check_format(query_string)
        return await render(request, await handler(request))

    return endpoint
