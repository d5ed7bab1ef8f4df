"""The bound on a request's header fields (STAC_STATIC_MAX_HEADER_BYTES)."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.responses import JSONResponse
from server.errors import RequestHeaderFieldsTooLarge


class HeaderLimit:
    """431 (RFC 6585) for a request whose header fields total over ``max_bytes``, counted as
    sent (name, ": ", value, CRLF), before any other middleware or endpoint reads them.

    uvicorn with httptools has no such limit (only its h11 backend does). This bounds what
    the app works on; the bytes have already been read by then."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = scope["headers"]
            size = 4 * len(headers)
            for name, value in headers:  # a loop: a generator costs ~0.5 us more
                size += len(name) + len(value)
            if size > self.max_bytes:
                error = RequestHeaderFieldsTooLarge(
                    f"Request header fields total {size} bytes, over the limit of {self.max_bytes}")
                response = JSONResponse({"code": error.code, "description": error.description},
                                        status_code=error.status_code, headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
