"""Exceptions the API raises on purpose, and their mapping to HTTP answers.

Every error body is ``{"code": <exception name>, "description": <message>}``.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from server.responses import JSONResponse


class StacApiError(Exception):
    status_code = 500

    def __init__(self, description: str) -> None:
        super().__init__(description)
        self.description = description

    @property
    def code(self) -> str:
        return type(self).__name__


class InvalidQueryParameter(StacApiError):
    status_code = 400


class InvalidRequestBody(StacApiError):
    status_code = 400


class QueryTooExpensive(StacApiError):
    """Over the search time budget (STAC_STATIC_QUERY_TIME_BUDGET)."""

    status_code = 400


class NotFoundError(StacApiError):
    status_code = 404


class PayloadTooLarge(StacApiError):
    status_code = 413


class UnsupportedMediaType(StacApiError):
    status_code = 415


class NotReady(StacApiError):
    status_code = 503


class RequestHeaderFieldsTooLarge(StacApiError):
    status_code = 431


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
            size = sum(len(name) + len(value) + 4 for name, value in scope["headers"])
            if size > self.max_bytes:
                error = RequestHeaderFieldsTooLarge(
                    f"Request header fields total {size} bytes, over the limit of {self.max_bytes}")
                response = JSONResponse({"code": error.code, "description": error.description},
                                        status_code=error.status_code, headers={"Connection": "close"})
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
