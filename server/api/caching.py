"""HTTP caching for GET responses: ETag / If-None-Match (304), Cache-Control, and a bounded
in-memory cache of response bodies, all keyed by the index version.

A response is a pure function of the index, the URL, the headers that shape its links and its
representation (JSON or a page: server.api.render, from ?f= or Accept; Vary names Accept), so
the ETag is a hash of those: a revalidation costs no search and no serialization, and
a reload changes every ETag at once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from cachetools import LRUCache
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.metrics import CACHE_RESULT
from server.api.render import scope_representation
from server.api.static_files import STATIC_PREFIXES, names_etag
from server.index.served import ASSETS_PATH

LINK_HEADERS = (b"host", b"forwarded", b"x-forwarded-proto", b"x-forwarded-host", b"x-forwarded-port",
                b"x-forwarded-prefix")
# Files (Swagger UI, the favicon, the sample's thumbnails, the pages' /static/, the files of
# --serve-assets) carry their own ETag and Cache-Control.
UNCACHED_PREFIXES = ("/_mgmt", "/static/", *STATIC_PREFIXES, ASSETS_PATH + "/")


class HttpCache:
    """``counted``: whether it was a hit, a miss or a 304 is noted in the scope for the request
    metrics (server.api.metrics). An entry keeps the route that made it, so the request metrics
    label a hit without routing it."""

    def __init__(self, app: ASGIApp, max_bytes: int, max_age: int, max_entry_bytes: int = 1 << 20,
                 counted: bool = False) -> None:
        self.app = app
        self.max_entry_bytes = max_entry_bytes
        self.counted = counted
        self.bodies: LRUCache[str, tuple[list[tuple[bytes, bytes]], bytes, Any]] | None = (
            LRUCache(maxsize=max_bytes, getsizeof=lambda entry: len(entry[1]) + 512) if max_bytes > 0 else None
        )
        self.shared_validators = [
            (b"cache-control", f"public, max-age={max_age}".encode()),
            (b"vary", b"Accept, Host, Forwarded, X-Forwarded-Host, X-Forwarded-Proto, X-Forwarded-Port, X-Forwarded-Prefix"),
        ]

    @staticmethod
    def _etag(scope: Scope, index: Any, headers: dict[bytes, bytes]) -> str:
        # The raw path: /collections/a%2Fb and /collections/a/b are different resources.
        path = scope.get("raw_path")
        parts = [
            str(id(index)), str(index.version), repr(index.loaded_at),
            path.decode("latin-1") if path is not None else scope["path"],
            scope.get("query_string", b"").decode("latin-1"), scope.get("root_path", ""),
            *(headers.get(name, b"").decode("latin-1") for name in LINK_HEADERS),
            scope_representation(scope, headers.get(b"accept"), accept_known=True),
        ]
        digest = hashlib.blake2b("\x00".join(parts).encode(), digest_size=12).hexdigest()
        return f'W/"{digest}"'

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD") or scope["path"].startswith(UNCACHED_PREFIXES):
            await self.app(scope, receive, send)
            return
        index = scope["app"].state.index
        if index is None:
            await self.app(scope, receive, send)
            return
        # The headers that shape links or validate, in one pass (a repeated one: its first value)
        headers: dict[bytes, bytes] = {}
        for name, value in scope["headers"]:
            if (name in LINK_HEADERS or name in (b"if-none-match", b"accept")) and name not in headers:
                headers[name] = value
        etag = self._etag(scope, index, headers)
        validators = [(b"etag", etag.encode()), *self.shared_validators]
        cached = self.bodies.get(etag) if self.bodies is not None else None
        if cached is not None:
            scope["route"] = cached[2]  # as the router would have set it (server.api.metrics)
        # "*" names any current representation (RFC 9110 §13.1.2), which a stored 200 shows;
        # without one the request runs and only its 200 becomes the 304 (qa19: "*" was a 304
        # for /collections/nope and for a 400, whose preconditions §13.2.1 says to ignore).
        star = False
        if_none_match = headers.get(b"if-none-match")
        if if_none_match is not None:
            tags = if_none_match.decode("latin-1")
            if names_etag(tags, etag, star=cached is not None):
                if self.counted:
                    scope[CACHE_RESULT] = "not_modified"
                await send({"type": "http.response.start", "status": 304, "headers": validators})
                await send({"type": "http.response.body", "body": b""})
                return
            star = cached is None and names_etag(tags, etag)  # (the tag itself did not match: "*" then)
        if cached is not None:
            if self.counted:
                scope[CACHE_RESULT] = "hit"
            response_headers, body, _ = cached
            await send({"type": "http.response.start", "status": 200, "headers": response_headers})
            await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body})
            return
        if self.counted and self.bodies is not None:
            scope[CACHE_RESULT] = "miss"

        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if message["status"] == 200:
                    message = {**message, "headers": [*message.get("headers", []), *validators]}
                # A copy: the middleware outside (CORS) adds this request's headers to the
                # message it is sent, and those must not be stored for the next request.
                start = {**message, "headers": list(message.get("headers", []))}
                if star and message["status"] == 200:  # "*", and a current representation: 304
                    if self.counted:
                        scope[CACHE_RESULT] = "not_modified"
                    message = {**message, "status": 304, "headers": validators}
                await send(message)
                return
            if message["type"] == "http.response.body" and start is not None and start["status"] == 200:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False) and self.bodies is not None:
                    body = b"".join(chunks)
                    if len(body) <= self.max_entry_bytes and scope["method"] == "GET":
                        self.bodies[etag] = (list(start["headers"]), body, scope.get("route"))
                if star:  # the 304's: no body
                    if not message.get("more_body", False):
                        await send({"type": "http.response.body", "body": b""})
                    return
            await send(message)

        await self.app(scope, receive, capture)


_ASSETS = ASSETS_PATH + "/"


def _gzip_not_refused(value: bytes) -> bool:
    """Whether an Accept-Encoding value with parameters gives gzip a q above 0 under one of
    its names: q=0 marks a coding "not acceptable" (RFC 9110 §12.5.3); "x-gzip" is gzip
    (§8.4.1.3), so "x-gzip;q=0, gzip" still accepts it."""
    for part in value.lower().split(b","):
        coding, _, params = part.partition(b";")
        if coding.strip() not in (b"gzip", b"x-gzip"):
            continue
        q = b"1"
        for param in params.split(b";"):
            name, _, text = param.partition(b"=")
            if name.strip() == b"q":
                q = text
                break
        try:
            if float(q) > 0:
                return True
        except ValueError:
            pass
    return False


class GzipWhenAccepted:
    """Starlette's GZipMiddleware (level 1: ~3 us per KB, JSON ~10x smaller), entered only by
    requests that accept gzip: its wrapping costs ~9 us per request even when it compresses
    nothing, a third of a response served from the cache. Never for served files (/_assets/):
    a raster is not worth compressing on the fly, and a client reading ranges wants the
    file's own length."""

    def __init__(self, app: ASGIApp, minimum_size: int) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size, compresslevel=1)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        gzip_scope = _gzip_scope(scope) if scope["type"] == "http" and not scope["path"].startswith(_ASSETS) else None
        if gzip_scope is not None:
            await self.gzip(gzip_scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _gzip_scope(scope: Scope) -> Scope | None:
    """The scope to hand to GZipMiddleware when the request accepts gzip, else None. Content
    codings are case-insensitive (RFC 9110 §8.4.1) but Starlette's own check is not: a value
    that names gzip in another case ("GZIP", "Gzip") is handed on with its accept-encoding
    values lowercased, or Starlette would answer it uncompressed. The common lowercase value
    costs no copy."""
    for k, v in scope["headers"]:
        if k != b"accept-encoding":
            continue
        lowercase = b"gzip" in v  # the common value: no copy, and handed on as it is
        if not lowercase and b"gzip" not in v.lower():
            continue
        if b"=" in v and not _gzip_not_refused(v):
            continue
        if lowercase:
            return scope
        return {**scope, "headers": [(n, value.lower() if n == b"accept-encoding" else value)
                                     for n, value in scope["headers"]]}
    return None
