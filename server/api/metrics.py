"""GET /_mgmt/metrics: Prometheus's text format, and the middleware measuring every request.

The counters and histograms are defined in server.metrics (every layer counts there); this
module measures the HTTP side and adds, at scrape time, what the serving index says of itself
(IndexCollector: items, collections, bytes, version, how its load went), read from
``app.state`` like /_mgmt/ready, so it costs nothing between scrapes and is the same in every
worker.

The middleware is pure ASGI and outermost, so it sees every answer (cache hits, 304s, 431s).
Labels are few by construction: the route's template (``/collections/{collection_id}/items``,
never an id or a query string; "unmatched" for any unknown path), the method (the usual ones,
else "other"), the status; the histogram's operation and format. The label children are
resolved once per combination and kept; the route is the one Starlette's router matched
(``scope["route"]``), or the one the response cache kept with the response it answers from,
so a request is never matched twice (only a 304 whose response left the cache is).
"""

from __future__ import annotations

import array
import os
import time
import weakref
from collections.abc import Iterator
from typing import Any

import numpy as np
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import metrics
from server.api.static_files import STATIC_PREFIXES

UNMATCHED = "unmatched"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The operation of a route template, where its first segment does not say it.
OPERATIONS = {
    "/": "landing",
    "/api.html": "api",
    "/collections/{collection_id}": "collection",
    "/collections/{collection_id}/items": "items",
    "/collections/{collection_id}/items/{item_id}": "item",
    "/collections/{collection_id}/queryables": "queryables",
    "/collections/{collection_id}/aggregate": "aggregate",
    "/collections/{collection_id}/aggregations": "aggregations",
}
STATIC_OPERATION = "static"  # files: Leaflet, the pages' style and script, Swagger UI, favicon, thumbnails


def route_labels(route: BaseRoute) -> tuple[str, str]:
    """(template, operation) of a route: its path with the parameter names, never their values;
    the operation is the table's, else the first segment (/search: search, /_mgmt/...: mgmt)."""
    if isinstance(route, Mount):
        return route.path + "/{path}", STATIC_OPERATION
    if not isinstance(route, Route):
        return UNMATCHED, UNMATCHED
    template = route.path
    if template in OPERATIONS:
        return template, OPERATIONS[template]
    if template.startswith(STATIC_PREFIXES):
        return template, STATIC_OPERATION
    first = template.split("/")[1]
    return template, "mgmt" if first == "_mgmt" else first


def _format(headers: Any) -> str:
    for name, value in headers or ():
        if name == b"content-type":
            return "html" if value.startswith(b"text/html") else "json" if b"json" in value else "other"
    return "other"


# Where the response cache (server.api.caching) says how it answered: hit, miss, not_modified.
CACHE_RESULT = "stac_static_api.cache"


class RequestMetrics:
    """Counts every request by route template, method and status, its duration (from its
    arrival to its last body byte) by operation and format, and how the response cache
    answered it, once that last byte is handed to the server: the counting is not part of the
    response's latency (bench/README.md: metrics overhead). In one process a scrape always
    follows what the process answered; under --workers another worker's answers are in the
    shared files as soon as it has handed their last bytes over."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # by the route's id (a Starlette route compares by value, and is not hashable)
        self._children: dict[tuple[int, str, int, str], tuple[Any, Any]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        start: Message | None = None
        ended = 0.0

        async def measured(message: Message) -> None:
            nonlocal start, ended
            if start is None:  # http.response.start
                start = message
            elif not message.get("more_body", False):
                ended = time.perf_counter()
            await send(message)

        try:
            await self.app(scope, receive, measured)
        finally:  # failed before answering: Starlette's outer error handler answers 500
            self.record(scope, start or FAILED, (ended or time.perf_counter()) - started)

    def record(self, scope: Scope, start: Message, seconds: float) -> None:
        route = scope.get("route")
        if route is None and "router" not in scope:  # answered before the router: a 304, a 431
            route = self._match(scope)
        method = scope["method"]
        if method not in METHODS:
            method = "other"
        status = start["status"]
        fmt = _format(start.get("headers"))
        key = (id(route), method, status, fmt)
        children = self._children.get(key)
        if children is None:
            template, operation = route_labels(route) if route is not None else (UNMATCHED, UNMATCHED)
            children = self._children[key] = (metrics.HTTP_REQUESTS.labels(template, method, str(status)),
                                              metrics.HTTP_DURATION.labels(operation, fmt))
        children[0].inc()
        children[1].observe(seconds)
        cache = scope.get(CACHE_RESULT)
        if cache is not None:
            _CACHE_RESULTS[cache].inc()

    @staticmethod
    def _match(scope: Scope) -> BaseRoute | None:
        app = scope.get("app")
        for route in getattr(app, "routes", ()):
            if route.matches(scope)[0] is not Match.NONE:
                return route
        return None


FAILED: Message = {"type": "http.response.start", "status": 500, "headers": []}
_CACHE_RESULTS = {result: metrics.RESPONSE_CACHE.labels(result) for result in ("hit", "miss", "not_modified")}


# -- the scrape ------------------------------------------------------------------------------


_SIZED = (np.ndarray, memoryview, bytes, bytearray, array.array)
BIG_CONTAINER = 10_000  # lists and dicts longer than this hold Python objects (ids), no buffers
_PLAIN = (str, int, float, bool)


def _buffer_bytes(obj: Any, seen: set[int]) -> int:
    """Bytes of the arrays and buffers reachable from ``obj`` (an index): its item JSON,
    geometries, columns and indexes; Python objects (ids, collections) are not counted."""
    if id(obj) in seen:
        return 0
    seen.add(id(obj))
    if isinstance(obj, _SIZED):
        return memoryview(obj).nbytes if not isinstance(obj, np.ndarray) else int(obj.nbytes)
    if isinstance(obj, dict):
        parts: Any = obj.values() if len(obj) <= BIG_CONTAINER else ()
        if isinstance(next(iter(parts), None), _PLAIN):  # a vocabulary, a document: no buffers
            return 0
    elif isinstance(obj, (list, tuple)):
        if len(obj) > BIG_CONTAINER or (obj and isinstance(obj[0], _PLAIN)):
            return 0
        parts = obj
    elif type(obj).__module__.startswith("server.index"):
        parts = [*getattr(obj, "__dict__", {}).values(),
                 *(getattr(obj, name, None) for cls in type(obj).__mro__ for name in getattr(cls, "__slots__", ()))]
    else:
        return 0
    return sum(_buffer_bytes(part, seen) for part in parts)


_bytes_of: tuple[Any, int] = (None, 0)  # (a weak reference to the index last measured, its bytes)


def index_bytes(index: Any) -> int:
    """The index's array and buffer bytes, measured once per index (an index never changes)."""
    global _bytes_of
    ref, size = _bytes_of
    if ref is None or ref() is not index:
        size = _buffer_bytes(index, set())
        _bytes_of = (weakref.ref(index), size)
    return size


class IndexCollector:
    """What the serving index and the last reload say, at scrape time (no cost in between)."""

    def __init__(self, state: Any) -> None:
        self.state = state

    def collect(self) -> Iterator[Metric]:
        index = self.state.index
        if index is not None:
            yield from self._index(index)
        status = self.state.reloader.status
        if status.ok is not None:
            yield GaugeMetricFamily("stac_static_last_reload_success", "Whether the last reload succeeded (1) or "
                                    "failed and the previous index kept serving (0).", value=1 if status.ok else 0)
            yield GaugeMetricFamily("stac_static_last_reload_timestamp_seconds", "When the last reload started "
                                    "(Unix time).", value=status.started_at or 0)

    def _index(self, index: Any) -> Iterator[Metric]:
        def gauge(name: str, documentation: str, value: float) -> GaugeMetricFamily:
            return GaugeMetricFamily(name, documentation, value=value)

        yield gauge("stac_static_index_items", "Items in the serving index.", index.size)
        yield gauge("stac_static_index_collections", "Collections in the serving index.", len(index.collections))
        yield gauge("stac_static_index_bytes", "Bytes of the serving index's arrays and buffers (item JSON, "
                    "geometries, columns, the spatial, time and text indexes).", index_bytes(index))
        yield gauge("stac_static_index_version", "Version of the serving index (1, then +1 at each reload).",
                    index.version)
        yield gauge("stac_static_index_loaded_timestamp_seconds", "When the serving index was built (Unix time).",
                    index.loaded_at)
        report = index.load_report or {}
        if "seconds" in report:
            yield gauge("stac_static_index_load_seconds", "Seconds the load that built the serving index took.",
                        report["seconds"])
        if "structure_skipped" in report:
            yield gauge("stac_static_index_unread_structures", "Catalogs, collections and bulk files the serving "
                        "index's load could not read (everything under them is missing: /_mgmt/ready says "
                        "degraded).", report["structure_skipped"])
        if "kept_unreadable" in report:
            yield gauge("stac_static_index_kept_unreadable_items", "Item documents the serving index's load (a "
                        "reload) could not read for now, served as the load before read them (/_mgmt/ready: "
                        "load.kept_unreadable_items).", report["kept_unreadable"])
        by_reason = report.get("skipped_by_reason")
        if by_reason is not None:
            skipped = GaugeMetricFamily("stac_static_index_skipped_documents", "Documents the serving index's "
                                        "load skipped, by reason (README: what is skipped).", labels=["reason"])
            for reason, count in sorted(by_reason.items()):
                skipped.add_metric([reason], count)
            yield skipped


def exposition(state: Any) -> bytes:
    """Every metric in the text format: under --workers, every process's counters (the
    library's multiprocess mode); the serving index's, from this process."""
    index_registry = CollectorRegistry(auto_describe=False)
    index_registry.register(IndexCollector(state))
    folder = os.environ.get(metrics.MULTIPROCESS_ENV)
    if folder:
        MultiProcessCollector(index_registry, path=folder)
        return generate_latest(index_registry)
    return generate_latest(REGISTRY) + generate_latest(index_registry)


async def metrics_endpoint(request: Request) -> Response:
    return Response(exposition(request.app.state), media_type=CONTENT_TYPE_LATEST)
