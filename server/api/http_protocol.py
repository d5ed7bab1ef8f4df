"""uvicorn's HTTP protocol (httptools), with its own error answers in this API's JSON shape.

uvicorn answers a request it cannot parse (malformed, or a request line over httptools'
~64 KiB limit) itself, before the app sees it, with a text/plain 400. Clients of this API
read `{"code", "description"}` from every error, so that answer is written the same way here.
"""

from __future__ import annotations

import orjson
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

MALFORMED = orjson.dumps({
    "code": "BadRequest",
    "description": "Invalid HTTP request: malformed, or its request line (path and query) is over 64 KiB; "
                   "send large searches as POST /search",
})


class JsonErrorsProtocol(HttpToolsProtocol):
    def send_400_response(self, msg: str) -> None:
        content = [STATUS_LINE[400]]
        for name, value in self.server_state.default_headers:
            content.extend([name, b": ", value, b"\r\n"])
        content.extend([
            b"content-type: application/json\r\n",
            b"content-length: " + str(len(MALFORMED)).encode("ascii") + b"\r\n",
            b"connection: close\r\n",
            b"\r\n",
            MALFORMED,
        ])
        self.transport.write(b"".join(content))
        self.transport.close()
