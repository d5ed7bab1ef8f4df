"""HTTP endpoints: parse the request, ask the index, write the response. Nothing else."""

from __future__ import annotations

import functools
import time
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import orjson
import shapely
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from server.api import documents, management, pages, paths
from server.api.assets import asset_routes
from server.api.conformance import conformance_classes
from server.api.documents import Document, Features
from server.api.links import (
    GEOJSON,
    HTML,
    JSON,
    OPENAPI,
    QUERYABLES_REL,
    SCHEMA_JSON,
    UrlBuilder,
    public_base_url,
    url_builder,
)
from server.api.openapi import openapi_document, swagger_html
from server.api.pagination import (
    decode_page_token,
    paged_href,
    paging_links_get,
    paging_links_post,
    query_string,
)
from server.api.queryables import queryables_document
from server.api.render import HTML as HTML_FORMAT
from server.api.render import rendered, request_representation
from server.api.static_files import static_routes
from server.api.threads import in_thread as _in_thread
from server.api.tree_documents import LARGE_LINKS, collection_document, linked_items, root_catalog_links, tree_links
from server.errors import (
    InvalidRequestBody,
    NotFoundError,
    NotReady,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from server.index import Index
from server.index.cql2_terms import is_light
from server.index.tree import LANDING
from server.query.model import SearchQuery
from server.query.parameters import (
    COLLECTION_SEARCH,
    ITEM_SEARCH,
    ITEMS,
    PARAMETERS,
    as_get_params,
    repeatable_names,
)
from server.query.parse import parse_search
from server.settings import RequestLimits, Settings

STAC_VERSION = "1.0.0"
T = TypeVar("T")


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _index(request: Request) -> Index:
    """The index this request runs on, fixed at its first use: a reload swapping in a
    new one mid-request does not mix versions in one response."""
    index = paths.pinned_index(request.scope)
    if index is None:
        raise NotReady("The catalog is still loading")
    return index


def _urls(request: Request) -> UrlBuilder:
    return url_builder(public_base_url(request, _settings(request).base_url))


# Lists a client may also send as repeated parameters (?collections=a&collections=b): joined.
REPEATABLE = repeatable_names()
# What /collections/{id}/items does not take (its collection is the path's): left out of its links.
NOT_FOR_ITEMS = [p.name for p in PARAMETERS if ITEMS not in p.endpoints]


def _query_params(request: Request) -> dict[str, str]:
    """The query string as a dict (without building Starlette's multi-dict): the values of a
    repeated list parameter joined by commas, the last of any other repeated name winning."""
    raw = request.scope.get("query_string", b"")
    if not raw:
        return {}
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    params = dict(pairs)
    if len(params) < len(pairs):  # some name repeats
        for name in REPEATABLE:
            values = [v for k, v in pairs if k == name]
            if len(values) > 1:
                params[name] = ",".join(v for v in values if v)
    return params


async def _json_body(request: Request) -> tuple[dict[str, Any], int]:
    """The body's JSON object, and the body's size in bytes."""
    content_type = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if content_type not in ("application/json", "application/geo+json", ""):
        raise UnsupportedMediaType(f"Expected an application/json body, got {content_type!r}")
    most = _settings(request).max_request_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > most:
        raise PayloadTooLarge(f"Request body over {most} bytes")
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > most:
            raise PayloadTooLarge(f"Request body over {most} bytes")
    if not body.strip():
        return {}, len(body)
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestBody(f"Request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidRequestBody("Request body must be a JSON object")
    return data, len(body)


# -- documents ------------------------------------------------------------------------------


@rendered
async def landing_page(request: Request) -> Document:
    index = _index(request)
    settings = _settings(request)
    urls = _urls(request)
    root = index.root
    links = [
        # Titled: STAC Browser lists links under "Additional Resources" by their titles
        urls.link("self", urls.url()),
        urls.link("root", urls.url(), title="Landing page"),
        urls.link("conformance", urls.url("conformance"), title="Conformance classes"),
        urls.link("data", urls.url("collections"), title="Collections"),
        urls.link("service-desc", urls.url("api"), OPENAPI, title="OpenAPI definition"),
        urls.link("service-doc", urls.url("api.html"), "text/html", title="API documentation"),
        urls.link("search", urls.url("search"), GEOJSON, method="GET", title="Item search (GET)"),
        urls.link("search", urls.url("search"), GEOJSON, method="POST", title="Item search (POST)"),
        urls.link(QUERYABLES_REL, urls.url("queryables"), SCHEMA_JSON, title="Queryables"),
        *urls.aggregation_links(urls.url(), [entry["name"] for entry in index.aggregations()]),
    ]
    links += tree_links(urls, index, LANDING)  # the root catalog's own children and items (server.index.tree)
    links += root_catalog_links(urls, index, {link["rel"] for link in links})
    return Document(
        documents.LANDING,
        {
            "type": "Catalog",
            "stac_version": STAC_VERSION,
            "id": root.get("id") or settings.api_id,
            "title": root.get("title") or settings.title,
            "description": root.get("description") or settings.description,
            "conformsTo": conformance_classes(browseable=index.tree.complete),
            "links": links,
        }
    )


@rendered
async def conformance(request: Request) -> Document:
    return Document(documents.CONFORMANCE, {"conformsTo": conformance_classes(browseable=_index(request).tree.complete)})


@rendered
async def api_document(request: Request) -> Document:
    return Document(documents.API, openapi_document(_urls(request).url()), OPENAPI)


async def api_html(request: Request) -> Response:
    return HTMLResponse(swagger_html(_urls(request).url("api"), _urls(request).base))


@rendered
async def collections(request: Request) -> Document:
    """All collections, or a collection search (bbox, datetime, q, filter, sortby, fields)."""
    index = _index(request)
    urls = _urls(request)
    params = _query_params(request)
    query = await _parse(request, params, size=_input_size(request), endpoint=COLLECTION_SEARCH)
    table = index.collection_table
    after, before = decode_page_token(query.token)
    result = table.page(table.match(query), query, after, before)
    href, encoded = urls.url("collections"), query_string(params)
    links = [
        urls.link("self", paged_href(href, encoded, params.get("token"))),
        urls.link("root", urls.url()),
        urls.link("parent", urls.url()),
    ]
    links += paging_links_get(href, encoded, result, JSON)
    return Document(
        documents.COLLECTIONS,
        {
            "collections": [
                collection_document(urls, index, table.docs[int(p)], query.fields, items=False) for p in result.positions
            ],
            "links": links,
            "numberMatched": result.matched,
            "numberReturned": len(result.positions),
        }
    )


# Queryables over more properties than this are made in a worker thread: a catalog may name
# thousands (microseconds each), and the event loop must not wait for them.
MANY_PROPERTIES = 500


async def _queryables(request: Request, index: Index, href: str, collection_id: str | None) -> Document:
    if len(index.columns) > MANY_PROPERTIES:
        doc = await _in_thread(request, queryables_document, index, href, collection_id)
    else:
        doc = queryables_document(index, href, collection_id)
    return Document(documents.QUERYABLES, doc, SCHEMA_JSON)


@rendered
async def queryables(request: Request) -> Document:
    return await _queryables(request, _index(request), _urls(request).url("queryables"), None)


@rendered
async def collection_queryables(request: Request) -> Document:
    index, collection_id = _requested_collection(request)
    return await _queryables(request, index, _urls(request).collection(collection_id) + "/queryables", collection_id)


def _collection_or_404(index: Index, collection_id: str) -> dict[str, Any]:
    collection = index.collections.get(collection_id)
    if collection is None:
        raise NotFoundError(f"Collection {collection_id!r} not found")
    return collection


def _requested_collection(request: Request) -> tuple[Index, str]:
    """The index and the path's collection id; a 404 when no such collection is loaded."""
    index = _index(request)
    collection_id = request.path_params["collection_id"]
    _collection_or_404(index, collection_id)
    return index, collection_id


@rendered
async def collection(request: Request) -> Document:
    index = _index(request)
    found = _collection_or_404(index, request.path_params["collection_id"])
    number = index.tree.collection_node(found["id"])
    if number is not None and linked_items(index, [number]) > LARGE_LINKS:  # its item links, in a thread
        return Document(documents.COLLECTION, await _in_thread(request, collection_document, _urls(request), index, found))
    return Document(documents.COLLECTION, collection_document(_urls(request), index, found))


@rendered
async def item(request: Request) -> Document:
    index = _index(request)
    collection_id = request.path_params["collection_id"]
    item_id = request.path_params["item_id"]
    _collection_or_404(index, collection_id)
    pos = index.find(collection_id, item_id)
    if pos is None:
        raise NotFoundError(f"Item {item_id!r} not found in collection {collection_id!r}")
    return Document(documents.ITEM, Features(_urls(request), index, [pos]), GEOJSON)


# -- searches --------------------------------------------------------------------------------


# Below this many records a free-text search or sort takes well under a millisecond or two:
# handing it to a thread (~50-170 us) would cost more than the stall it avoids.
INLINE_RECORDS = 50_000


# A query string or body larger than this is parsed in a worker thread: CQL2 of 100 KB takes
# tens of milliseconds, which would stall every other client on the event loop.
LARGE_INPUT = 8 * 1024


def _heavy(query: SearchQuery, index: Index) -> bool:
    """Queries that may take long: a big polygon, a filter that is not light (is_light) at any
    size, free text or a sort over a large index. They run in a worker thread, so one of them
    cannot stall the event loop and every other client; the rest run inline, where a thread
    hand-off would cost more than the search."""
    if query.intersects is not None and shapely.get_num_coordinates(query.intersects) > 1000:
        return True
    if query.filter is not None and not is_light(query.filter):
        return True  # LIKE over a vocabulary, arrays, geometries: may take long at any size
    return index.size > INLINE_RECORDS and bool(query.q is not None or query.sortby)  # light filters stay inline


async def _item_collection(
    request: Request, urls: UrlBuilder, query: SearchQuery, href: str, params: dict[str, Any] | None,
    extra_links: tuple[dict[str, Any], ...] = (), get_params: dict[str, str] | None = None,
) -> Document:
    """A page of ``query``'s items, from ``href``: GET with ``params``, or POST (None), whose
    body GET can say as ``get_params`` when not None."""
    index = _index(request)
    after, before = decode_page_token(query.token)
    matches = request.app.state.match_cache
    if _heavy(query, index):
        result = await _in_thread(request, index.search, query, after, matches, before)
    else:
        result = index.search(query, after, matches, before)
    encoded = query_string(params) if params is not None else ""
    self_href = paged_href(href, encoded, params.get("token")) if params is not None else href
    links = [urls.link("self", self_href, GEOJSON), urls.link("root", urls.url()), *extra_links]
    links += (paging_links_get(href, encoded, result, GEOJSON) if params is not None
              else paging_links_post(href, result, GEOJSON))
    if get_params is not None:
        # A POST's page: the GET asking the same (the renderer makes a GET's from its self link)
        same = paged_href(href, query_string(get_params), get_params.get("token"))
        links.append(urls.link("alternate", pages.with_format(same, "html"), HTML, method="GET",
                               title="This search as a page"))
    features = Features(urls, index, result.positions.tolist(), query.fields)
    return Document(
        documents.ITEMS,
        {
            "type": "FeatureCollection",
            "features": features,
            "links": links,
            "numberMatched": result.matched,
            "numberReturned": len(features),
        },
        GEOJSON,
    )


async def _parse(request: Request, params: dict[str, Any], body: bool = False, size: int = 0,
                 endpoint: str = ITEM_SEARCH) -> SearchQuery:
    """The search of a request to `endpoint` whose input is `size` bytes (large ones parse in a thread)."""
    settings = _settings(request)
    limits = RequestLimits(settings.max_ids, settings.max_collections, settings.max_vertices)
    parse = functools.partial(parse_search, default_limit=settings.default_limit, max_limit=settings.max_limit,
                              body=body, limits=limits, endpoint=endpoint)
    query = await _in_thread(request, parse, params) if size > LARGE_INPUT else parse(params)
    if query.limit > settings.html_page_items and request_representation(request) == HTML_FORMAT:
        # a page for a person: its rows and footprints cost ~760 bytes an item (limit=10000:
        # 7.6 MB); the page links the next one, from where this one ends (the limit asked for stays
        # in its links, and its JSON link answers it)
        request.state.page_capped = query.limit
        query.limit = settings.html_page_items
    query.deadline = time.monotonic() + settings.query_time_budget
    return query


def _input_size(request: Request) -> int:
    return len(request.scope.get("query_string", b""))


async def search_get(request: Request) -> Document:
    _index(request)
    params = _query_params(request)
    urls = _urls(request)
    query = await _parse(request, params, size=_input_size(request))
    return await _item_collection(request, urls, query, urls.url("search"), params)


async def search_post(request: Request) -> Document:
    _index(request)
    body, size = await _json_body(request)
    urls = _urls(request)
    query = await _parse(request, body, body=True, size=size)
    # Without a GET form (an id holding a comma, an intersects too large for a URL), no alternate.
    return await _item_collection(request, urls, query, urls.url("search"), None, get_params=as_get_params(body))


@rendered
async def search(request: Request) -> Document:
    """One route for both methods, so a 405 lists them both in Allow."""
    return await (search_post(request) if request.method == "POST" else search_get(request))


@rendered
async def collection_items(request: Request) -> Document:
    index, collection_id = _requested_collection(request)
    urls = _urls(request)
    params = _query_params(request)
    for name in NOT_FOR_ITEMS:
        params.pop(name, None)
    query = await _parse(request, params, size=_input_size(request), endpoint=ITEMS)
    query.collections = [collection_id]
    href = urls.items(collection_id)
    extra = (
        urls.link("collection", urls.collection(collection_id)),
        urls.link("parent", urls.collection(collection_id)),
    )
    return await _item_collection(request, urls, query, href, params, extra)


def route_table() -> list[BaseRoute]:
    return [
        # The router tries routes in this order and no two match the same path: the most asked
        # for come first (each route passed over costs a regex match, ~0.4 us).
        # Matched on the raw path, one percent-decoded segment per id (server.api.paths): an id
        # may hold "/", "%", "#", "?" and anything else its links encode.
        paths.RawPathRoute("/collections/{collection_id}/items/{item_id}", item, paths.ITEM),
        paths.RawPathRoute("/collections/{collection_id}/items", collection_items, paths.ITEMS),
        Route("/search", search, methods=["GET", "POST"]),
        paths.RawPathRoute("/collections/{collection_id}", collection, paths.COLLECTION),
        paths.RawPathRoute("/collections/{collection_id}/queryables", collection_queryables, paths.QUERYABLES),
        Route("/", landing_page, methods=["GET"]),
        Route("/conformance", conformance, methods=["GET"]),
        Route("/api", api_document, methods=["GET"]),
        Route("/api.html", api_html, methods=["GET"]),
        Route("/collections", collections, methods=["GET"]),
        Route("/queryables", queryables, methods=["GET"]),
        *pages.static_routes(),
        Route("/_mgmt/health", management.health, methods=["GET"]),
        Route("/_mgmt/ready", management.ready, methods=["GET"]),
        Route("/_mgmt/reload", management.reload, methods=["POST"]),
        *static_routes(),
        *asset_routes(),
    ]
