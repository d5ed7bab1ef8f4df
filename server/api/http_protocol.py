"""uvicorn's HTTP protocol (httptools), with its own error answers in this API's JSON shape.

uvicorn answers a request it cannot parse itself, before the app sees it, with a text/plain
400 ("Invalid HTTP request received.") for whatever went wrong. Clients of this API read
`{"code", "description"}` from every error, so that answer is written the same way here, and
says which of the three it was: a method HTTP does not define (`FOO / HTTP/1.1`: llhttp knows
the registered methods only), a request line over 64 KiB (the URL parser's offsets are 16-bit:
a longer path and query cannot be read), or anything else malformed, with the parser's reason.
qa16: all three said "malformed, or over 64 KiB".

Telling them apart costs a request that parses nothing: uvicorn calls send_400_response only
from its `except httptools.HttpParserError` around the parser, so the error is still the one
being handled (sys.exc_info) and the URL read so far is on the protocol.
"""

from __future__ import annotations

import sys

import httptools
import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

# The longest URL httptools.parse_url reads (http_parser_url's 16-bit offsets and lengths)
MAX_URL = 65_535


def _answer(description: str) -> bytes:
    return orjson.dumps({"code": "BadRequest", "description": description})


METHOD = _answer("Invalid HTTP request: its method is not one HTTP defines "
                 "(this API answers GET, HEAD, POST and OPTIONS)")
TOO_LONG = _answer("Invalid HTTP request: its request line (path and query) is over 64 KiB; "
                   "send large searches as POST /search")
MALFORMED = _answer("Invalid HTTP request: malformed")


def _description(error: BaseException | None, url_bytes: int) -> bytes:
    if isinstance(error, httptools.HttpParserInvalidMethodError):
        return METHOD
    if url_bytes > MAX_URL:
        return TOO_LONG
    reason = str(error) if isinstance(error, httptools.HttpParserError) else ""
    # llhttp's reasons are short fixed texts ("Invalid header token"); an exception raised in a
    # callback (the URL parser's) is told by its type only
    if reason and reason.isascii() and len(reason) < 100 and not isinstance(error, httptools.HttpParserCallbackError):
        return _answer(f"Invalid HTTP request: malformed ({reason})")
    return MALFORMED


class JsonErrorsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        body = _description(sys.exc_info()[1], len(getattr(self, "url", b"")))
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(body)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            body,
        ])
        self.transport.write(b"".join(content))
        self.transport.close()

    def _unsupported_upgrade_warning(self) -> None:
        """A request asking to upgrade (to a WebSocket: none is offered here, `ws="none"`) is
        answered as the HTTP request it also is; uvicorn's two warnings for each one ("No
        supported WebSocket library detected") were log lines any client could write at will."""
