"""create_app(settings) -> Starlette: the HTTP application (server.api.app) with what it
serves from: the index (loaded before serving, or in the background), the remote documents
cache, and the reloader that swaps in a new index."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette

from server import metrics
from server.api.app import http_app
from server.catalog.configured import load_index
from server.catalog.sources import RemoteCache
from server.index import Index
from server.runtime.child_build import ChildBuilder
from server.runtime.reloader import Reloader
from server.runtime.remote_snapshot import RemoteSnapshot
from server.settings import Settings


def create_app(
    settings: Settings | None = None, index: Index | None = None, remote_cache: RemoteCache | None = None,
    replica: RemoteSnapshot | None = None, index_file: str | None = None,
) -> Starlette:
    """The API over ``index``; without one, the index is loaded in the background and
    every endpoint answers 503 until it is ready. A ``replica`` serves a published snapshot:
    its reloads fetch that snapshot again (when it changed) instead of reading catalogs.
    ``index_file``: a snapshot of ``index``, whose unchanged items the first reload reuses."""
    settings = settings or Settings()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        reloader: Reloader = app.state.reloader
        if app.state.index is None:
            reloader._tasks.append(asyncio.create_task(reloader.reload("initial load")))
        else:  # in the serving process (a forked worker's own, after the fork)
            metrics.set_process_index_version(app.state.index.version)
        reloader.start(settings.reload_interval, settings.watch_interval)
        yield
        reloader.stop()

    app = http_app(settings, lifespan)
    app.state.index = index
    app.state.remote_cache = remote_cache or RemoteCache()
    app.state.replica = replica
    app.state.index_file = index_file
    build: Callable[[], Index | None]
    if replica is not None:
        build = replica  # a download and a mapping: nothing for a child process to spare the server
    elif settings.reload_in_child:
        build = ChildBuilder(settings, app.state.remote_cache, index_file, lambda: app.state.index)
    else:  # the serving index is the previous one: its unchanged items are reused
        unreadable: dict[str, float] = {}  # since when reloads could not read a document (load_index)

        def build() -> Index:
            return load_index(settings, app.state.remote_cache, previous=app.state.index, unreadable=unreadable)
    app.state.reloader = Reloader(app, build)
    return app
