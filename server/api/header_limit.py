"""The bound on a request's header fields (STAC_STATIC_MAX_HEADER_BYTES), and the answer to a
request the server's stop cuts: the first and last things every request meets."""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send

from server.api.responses import JSONResponse
from server.errors import RequestHeaderFieldsTooLarge, ServerStopping


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
        try:
            await self.app(scope, receive, send)
        except asyncio.CancelledError:
            # uvicorn cancels what still runs at the end of the stop's grace
            # (STAC_STATIC_SHUTDOWN_GRACE_SECONDS) and answers a plain-text 500 with an "Exception
            # in ASGI application" traceback in the log: a JSON 503 instead, when nothing was
            # sent yet (no send wrapped to know it: sending a start twice is refused, then the
            # cancellation goes on as it came). Free on every other request.
            if scope["type"] != "http" or not await _answered_stopping(scope, receive, send):
                raise


async def _answered_stopping(scope: Scope, receive: Receive, send: Send) -> bool:
    error = ServerStopping("The server is stopping; this request was still running at the end of its grace")
    response = JSONResponse({"code": error.code, "description": error.description}, status_code=error.status_code,
                            headers={"Connection": "close", "Retry-After": "1"})
    try:
        await response(scope, receive, send)
    except (RuntimeError, OSError):  # the answer had started (or the connection is gone)
        return False
    return True
