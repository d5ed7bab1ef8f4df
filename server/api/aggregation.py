"""The Aggregation extension's endpoints: /aggregate (GET and POST) and /aggregations, and
their per-collection forms. The same filters as /search (the parameter table's AGGREGATE
endpoint), the computation in server.index.aggregation."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.api import paths
from server.api.documents import AGGREGATE as AGGREGATE_DOCUMENT
from server.api.documents import AGGREGATIONS, Document
from server.api.render import HTML, check_format, render, request_representation
from server.api.responses import JSONResponse
from server.api.routes import (
    INLINE_RECORDS,
    _in_thread,
    _index,
    _input_size,
    _json_body,
    _parse,
    _query_params,
    _requested_collection,
    _urls,
)
from server.errors import InvalidQueryParameter
from server.index.aggregation import GRIDS
from server.query.model import SearchQuery
from server.query.parameters import AGGREGATE, PARAMETERS

NOT_FOR_A_COLLECTION = ("collections",)  # its collection is the path's
OPTIONS = [p.name for p in PARAMETERS if p.endpoints == frozenset({AGGREGATE}) and p.name != "aggregations"]


def _names(query: SearchQuery) -> list[str] | None:
    return query.extra.get("aggregations")


async def _answer(request: Request, query: SearchQuery, collection_id: str | None) -> Response:
    index = _index(request)
    urls = _urls(request)
    names = _names(query)
    if collection_id is not None:
        query.collections = [collection_id]
        allowed = {entry["name"] for entry in index.aggregations(collection_id)}
        others = [name for name in names or [] if name not in allowed]
        if others:
            raise InvalidQueryParameter(
                f"Aggregations not available for collection {collection_id!r}: {', '.join(others)}; "
                "its /aggregations lists those that are")
    options = {name: query.extra.get(name) for name in OPTIONS}
    matches = request.app.state.match_cache
    heavy = index.size > INLINE_RECORDS or any(name in GRIDS for name in names or [])
    if heavy:
        aggregations = await _in_thread(request, index.aggregate, query, names, options, matches)
    else:
        aggregations = index.aggregate(query, names, options, matches)
    if collection_id is not None:
        href = urls.collection(collection_id) + "/aggregate"
        links = [urls.link("self", href), urls.link("root", urls.url()),
                 urls.link("collection", urls.collection(collection_id))]
    else:
        links = [urls.link("self", urls.url("aggregate")), urls.link("root", urls.url())]
    return await _respond(request, AGGREGATE_DOCUMENT,
                          {"type": "AggregationCollection", "aggregations": aggregations, "links": links})


async def _respond(request: Request, kind: str, body: dict[str, Any]) -> Response:
    """A page for a browser or f=html (the one renderer: server.api.pages); for everyone else
    the JSON as it always was (no alternate link added: the answers stay byte for byte)."""
    if request_representation(request) == HTML:
        return await render(request, Document(kind, body))
    return JSONResponse(body)


async def _query(request: Request, collection_id: str | None) -> SearchQuery:
    if request.method == "POST":
        body, size = await _json_body(request)
        if collection_id is not None:
            body = {k: v for k, v in body.items() if k not in NOT_FOR_A_COLLECTION}
        request.state.posted = body  # the parameters its page (if a browser asked) says it used
        return await _parse(request, body, body=True, size=size, endpoint=AGGREGATE)
    params = _query_params(request)
    if collection_id is not None:
        for name in NOT_FOR_A_COLLECTION:
            params.pop(name, None)
    return await _parse(request, params, size=_input_size(request), endpoint=AGGREGATE)


def _check_format(request: Request) -> None:
    """A 400 for an f the API does not have, as on every route."""
    check_format(request.scope.get("query_string", b""))


async def aggregate(request: Request) -> Response:
    _check_format(request)
    _index(request)
    return await _answer(request, await _query(request, None), None)


async def collection_aggregate(request: Request) -> Response:
    _check_format(request)
    _, collection_id = _requested_collection(request)
    return await _answer(request, await _query(request, collection_id), collection_id)


async def aggregations(request: Request) -> Response:
    _check_format(request)
    index = _index(request)
    urls = _urls(request)
    links = [urls.link("root", urls.url()), urls.link("self", urls.url("aggregations"))]
    return await _respond(request, AGGREGATIONS,
                          {"type": "AggregationCollection", "aggregations": index.aggregations(), "links": links})


async def collection_aggregations(request: Request) -> Response:
    _check_format(request)
    index, collection_id = _requested_collection(request)
    urls = _urls(request)
    href = urls.collection(collection_id)
    links = [urls.link("root", urls.url()), urls.link("collection", href), urls.link("self", href + "/aggregations")]
    return await _respond(request, AGGREGATIONS, {"type": "AggregationCollection",
                                                  "aggregations": index.aggregations(collection_id), "links": links})


def aggregation_routes() -> list[Route]:
    return [
        Route("/aggregate", aggregate, methods=["GET", "POST"]),
        Route("/aggregations", aggregations, methods=["GET"]),
        # Matched on the raw path, as every route below a collection (server.api.paths): its id
        # may hold "/" or be "." or "..", which its links write encoded.
        paths.RawPathRoute("/collections/{collection_id}/aggregate", collection_aggregate, paths.AGGREGATE,
                           methods=("GET", "POST")),
        paths.RawPathRoute("/collections/{collection_id}/aggregations", collection_aggregations, paths.AGGREGATIONS),
    ]
