"""CORS: Starlette's CORSMiddleware, entered only by requests that carry an Origin header.

Every response may be read cross-origin (Access-Control-Allow-Origin: *). A request without
an Origin (same-origin, or not from a browser) needs none of that middleware's work, only
the ``Vary: Origin`` it would add, so that a cache does not hand that response, which lacks
the CORS headers, to a browser's cross-origin request: ~7 us per request saved.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server.api.responses import JSONResponse


class JsonRefusals(CORSMiddleware):
    """Starlette's CORS, a preflight it refuses (a method this API does not answer, such as
    DELETE; a private-network request) answered as every error of this API,
    {"code", "description"} (qa19: a text/plain "Disallowed CORS method"), its CORS headers kept."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code < 400:
            return response
        headers = {k: v for k, v in response.headers.items() if k not in ("content-length", "content-type")}
        reason = bytes(response.body).decode("utf-8", "replace")
        return JSONResponse({"code": "BadRequest", "description": f"{reason} (this API answers GET, HEAD and POST "
                             "from any origin, with any request headers)"}, status_code=response.status_code, headers=headers)


class CorsWhenOrigin:
    def __init__(self, app: ASGIApp, allow_origins: list[str], allow_methods: list[str], allow_headers: list[str],
                 expose_headers: list[str]) -> None:
        self.app = app
        self.cors = JsonRefusals(app, allow_origins=allow_origins, allow_methods=allow_methods,
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
