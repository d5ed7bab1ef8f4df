"""create_app(settings) -> Starlette. The index is loaded before serving or in the background."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from server.caching import GzipWhenAccepted, HttpCache
from server.cors import CorsWhenOrigin
from server.catalog.sources import RemoteCache
from server.catalog.loader import LoadOptions, load_catalogs
from server.errors import HeaderLimit, StacApiError
from server.index import Index
from server.index.match_cache import MatchCache
from server.responses import JSONResponse
from server.rebuild import ChildBuilder
from server.reload import Reloader
from server.routes import route_table
from server.settings import Settings

log = logging.getLogger("stac_static_api")


def load_options(settings: Settings, remote_cache: RemoteCache | None = None) -> LoadOptions:
    return LoadOptions(
        remote_cache=remote_cache,
        max_document_bytes=settings.max_document_bytes,
        max_documents=settings.max_documents,
        max_depth=settings.max_depth,
        fetch_concurrency=settings.fetch_concurrency,
        fetch_timeout=settings.fetch_timeout,
        fetch_retries=settings.fetch_retries,
        allow_hosts=tuple(settings.allow_hosts),
        allow_outside_root=settings.allow_outside_root,
    )


def roots_of(settings: Settings) -> list[str]:
    if settings.roots:
        return list(settings.roots)
    from server.sample import SAMPLE_ROOT

    return [str(SAMPLE_ROOT)]


def load_index(settings: Settings, remote_cache: RemoteCache | None = None) -> Index:
    index, report = load_catalogs(roots_of(settings), load_options(settings, remote_cache))
    log.info(report.summary())
    return index


def _error(status: int, code: str, description: str) -> Response:
    return JSONResponse({"code": code, "description": description}, status_code=status)


async def stac_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StacApiError)
    return _error(exc.status_code, exc.code, exc.description)


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    codes = {404: "NotFoundError", 405: "MethodNotAllowed"}
    response = _error(exc.status_code, codes.get(exc.status_code, "HTTPException"), str(exc.detail))
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def unexpected_error(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s", request.url.path)
    return _error(500, "InternalServerError", "Unexpected error; it has been logged")


def create_app(
    settings: Settings | None = None, index: Index | None = None, remote_cache: RemoteCache | None = None
) -> Starlette:
    """The API over ``index``; without one, the index is loaded in the background and
    every endpoint answers 503 until it is ready."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reloader: Reloader = app.state.reloader
        if app.state.index is None:
            reloader._tasks.append(asyncio.create_task(reloader.reload("initial load")))
        reloader.start(settings.reload_interval, settings.watch_interval)
        yield
        reloader.stop()

    app = Starlette(
        routes=route_table(),
        middleware=[
            Middleware(HeaderLimit, max_bytes=settings.max_header_bytes),
            *([Middleware(GzipWhenAccepted, minimum_size=settings.gzip_min_bytes)] if settings.gzip_min_bytes > 0 else []),
            Middleware(CorsWhenOrigin, allow_origins=["*"], allow_methods=["GET", "HEAD", "POST"], allow_headers=["*"],
                       expose_headers=["ETag"]),
            Middleware(HttpCache, max_bytes=settings.response_cache_bytes, max_age=settings.cache_max_age),
        ],
        exception_handlers={
            StacApiError: stac_error,
            HTTPException: http_error,
            Exception: unexpected_error,
        },
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.index = index
    app.state.remote_cache = remote_cache or RemoteCache()
    app.state.match_cache = MatchCache(settings.match_cache_bytes)
    if settings.reload_in_child:
        build: Callable[[], Index] = ChildBuilder(settings, app.state.remote_cache)
    else:
        build = lambda: load_index(settings, app.state.remote_cache)  # noqa: E731
    app.state.reloader = Reloader(app, build)
    return app
