"""The HTTP application: routes, middleware (gzip, CORS, the response cache) and error
handlers that answer every failure as {"code", "description"}. What it serves from (the index,
how reloads happen) is the runtime's to attach (server.runtime.app)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from server.api import render
from server.api.aggregation import aggregation_routes
from server.api.browse import browse_routes
from server.api.caching import GzipWhenAccepted, HttpCache
from server.api.cors import CorsWhenOrigin
from server.api.header_limit import HeaderLimit
from server.api.metrics import RequestMetrics, metrics_endpoint
from server.api.routes import route_table
from server.errors import StacApiError
from server.index.match_cache import MatchCache
from server.settings import Settings

log = logging.getLogger("stac_static_api")


async def stac_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StacApiError)
    return render.error(request, exc.status_code, exc.code, exc.description)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "NotFoundError", 405: "MethodNotAllowed"}
    response = render.error(request, exc.status_code, codes.get(exc.status_code, "HTTPException"), str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path)
    return render.error(request, 500, "InternalServerError", "Unexpected error; it has been logged")


def http_app(settings: Settings, lifespan: Callable[[Starlette], AbstractAsyncContextManager[None]]) -> Starlette:
    """The API's routes and middleware, with no index yet (`app.state.index` None: every
    endpoint answers 503 until the runtime sets one). With metrics off there is no
    /_mgmt/metrics (a 404) and nothing measures requests."""
    metrics = settings.metrics
    app = Starlette(
        routes=[*route_table(), *aggregation_routes(), *browse_routes(),
                *([Route("/_mgmt/metrics", metrics_endpoint, methods=["GET"])] if metrics else [])],
        middleware=[
            # Outermost: it sees every answer, the cache's and the header limit's too.
            *([Middleware(RequestMetrics)] if metrics else []),
            Middleware(HeaderLimit, max_bytes=settings.max_header_bytes),
            *([Middleware(GzipWhenAccepted, minimum_size=settings.gzip_min_bytes)] if settings.gzip_min_bytes > 0 else []),
            Middleware(CorsWhenOrigin, allow_origins=["*"], allow_methods=["GET", "HEAD", "POST"], allow_headers=["*"],
                       expose_headers=["ETag", "Content-Range", "Accept-Ranges"]),
            Middleware(HttpCache, max_bytes=settings.response_cache_bytes, max_age=settings.cache_max_age,
                       counted=metrics),
        ],
        exception_handlers={
            StacApiError: stac_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.index = None
    app.state.match_cache = MatchCache(settings.match_cache_bytes)
    app.state.search_threads = asyncio.Semaphore(settings.search_threads)
    return app
