"""The static catalog's own tree over HTTP: its sub-catalogs at /catalogs/{path}, and the
children extension's /children below the landing page, each sub-catalog and each collection.
The documents are server.api.tree_documents'; the tree is server.index.tree."""

from __future__ import annotations

import bisect
from typing import Any

import numpy as np
from starlette.requests import Request
from starlette.routing import BaseRoute, Route

from server.api import documents, paths
from server.api.documents import Document
from server.api.links import JSON
from server.api.pagination import decode_page_token, paged_href, paging_links_get, query_string
from server.api.render import rendered
from server.api.routes import _in_thread, _index, _query_params, _requested_collection, _settings, _urls
from server.api.tree_documents import LARGE_LINKS, catalog_document, child_document, linked_items
from server.errors import InvalidQueryParameter, NotFoundError
from server.index.table import SearchResult
from server.index.tree import LANDING
from server.query.parameters import CHILDREN
from server.query.parse import parse_search
from server.settings import RequestLimits


def _node(request: Request) -> int:
    number = request.path_params.get("node")
    if number is None:
        raise NotFoundError(f"No catalog at {request.url.path[:200]!r}: follow the child links from the landing page")
    return int(number)


@rendered
async def catalog(request: Request) -> Document:
    index = _index(request)
    number = _node(request)
    urls = _urls(request)
    if linked_items(index, [number]) > LARGE_LINKS:
        return Document(documents.CATALOG, await _in_thread(request, catalog_document, urls, index, number))
    return Document(documents.CATALOG, catalog_document(urls, index, number))


def _page(children: list[int], kinds: list[str], wanted: str | None, limit: int,
          after: list[Any] | None, before: list[Any] | None) -> tuple[list[int], SearchResult]:
    """The ordinals (places among all children) of one page of the children of type
    ``wanted``; a token's key is the ordinal it pages from."""
    ordinals = [k for k, kind in enumerate(kinds) if wanted is None or kind == wanted]
    key = before if before is not None else after
    if key is not None and not (isinstance(key[-1], list) and len(key[-1]) == 1 and type(key[-1][0]) is int):
        raise InvalidQueryParameter("Invalid token: not one of a children page")
    if before is not None:
        end = bisect.bisect_left(ordinals, before[-1][0])
        begin = max(0, end - limit)
    else:
        begin = bisect.bisect_right(ordinals, after[-1][0]) if after is not None else 0
        end = begin + limit
    page = ordinals[begin:end]
    result = SearchResult(np.array(page, dtype=np.int64), len(ordinals),
                          next_key=[[page[-1]]] if page and end < len(ordinals) else None,
                          prev_key=[[page[0]]] if page and begin > 0 else None, has_prev=begin > 0)
    return page, result


async def _children(request: Request, number: int | None, href: str, parent: str) -> Document:
    """The children of node ``number`` (None: a collection outside the tree, which has none)."""
    index = _index(request)
    urls = _urls(request)
    settings = _settings(request)
    params = _query_params(request)
    # all children by default, as the extension asks (the validator reads one page)
    query = parse_search(params, default_limit=settings.max_limit, max_limit=settings.max_limit,
                         limits=RequestLimits(settings.max_ids, settings.max_collections, settings.max_vertices),
                         endpoint=CHILDREN)
    tree = index.tree
    children = tree.nodes[number].children if number is not None else []
    after, before = decode_page_token(query.token)
    page, result = _page(children, [tree.nodes[c].kind for c in children], query.extra.get("type"), query.limit,
                         after, before)
    numbers = [children[k] for k in page]

    def documents_of() -> list[dict[str, Any]]:
        return [child_document(urls, index, n) for n in numbers]

    listed = await _in_thread(request, documents_of) if linked_items(index, numbers) > LARGE_LINKS else documents_of()
    encoded = query_string(params)
    links = [
        urls.link("self", paged_href(href, encoded, params.get("token"))),
        urls.link("root", urls.url()),
        urls.link("parent", parent),
        *paging_links_get(href, encoded, result, JSON),
    ]
    return Document(documents.CHILDREN, {"children": listed, "links": links, "numberMatched": result.matched,
                                         "numberReturned": len(listed)})


@rendered
async def landing_children(request: Request) -> Document:
    urls = _urls(request)
    return await _children(request, LANDING, urls.url("children"), urls.url())


@rendered
async def catalog_children(request: Request) -> Document:
    index = _index(request)
    number = _node(request)
    urls = _urls(request)
    node = index.tree.nodes[number]
    return await _children(request, number, urls.children(node), urls.node(node))


@rendered
async def collection_children(request: Request) -> Document:
    index, collection_id = _requested_collection(request)
    urls = _urls(request)
    href = urls.collection(collection_id)
    return await _children(request, index.tree.collection_node(collection_id), href + "/children", href)


def browse_routes() -> list[BaseRoute]:
    return [
        Route("/children", landing_children, methods=["GET"]),
        # matched on the raw path, one decoded segment per level (server.api.paths)
        paths.RawPathRoute("/catalogs/{catalogPath}", catalog, paths.CATALOG),
        paths.RawPathRoute("/catalogs/{catalogPath}/children", catalog_children, paths.CATALOG_CHILDREN),
        paths.RawPathRoute("/collections/{collection_id}/children", collection_children, paths.COLLECTION_CHILDREN),
    ]
