"""A large batch of remote documents fetched in a child process, so that two cores work: this
one runs libcurl (curl.py: the same timeouts, retries, size limits, no redirects) and streams
the bodies back in order through a pipe; the loader's process only parses and indexes them.

Why: with libcurl in the loader's own process, a document costs ~75 us of its CPU, of which
~20 us is the fetch (libcurl and the socket calls); the loader's process is the bottleneck on
a fast server while the second core is mostly idle. A pipe read of a body costs ~2 us.

Run as `python -m server.catalog.fetch_worker` (curl_pool.py starts it), so that it starts in
~50 ms and needs no import of the loader. Its input (stdin, read whole before any fetch): one JSON line of options, then
one JSON line per document: [url, byte limit, etag or null, last-modified or null]. Its output
(stdout), per document in the same order: a header (kind, etag length, last-modified length,
payload length), then those bytes. Kinds: BODY (payload = the body), ERROR (payload = the
reason), NOT_MODIFIED (a 304 to the validators given: the caller has the body). After the last
document, one COUNTS record: what the fetches took (requests, retries, errors, 304s; JSON), for
the parent's metrics (server.metrics: this process imports no metrics library, which would
double its start).
"""

from __future__ import annotations

import os
import signal
import struct
import sys
from typing import Any

import orjson

from server.catalog.conditional import validator_headers
from server.catalog.curl import CurlSession

HEADER = struct.Struct("<BIIQ")
BODY, ERROR, NOT_MODIFIED, COUNTS = 0, 1, 2, 3


class _Validators:
    """Stands in for the RemoteCache in the child: the validators the parent sent, and those
    of each new body, to send back."""

    NOT_MODIFIED = b"\x00not modified"

    def __init__(self, sent: dict[str, tuple[str | None, str | None]]) -> None:
        self.sent = sent
        self.received: dict[str, tuple[str | None, str | None]] = {}

    def conditional_headers(self, url: str) -> dict[str, str]:
        return validator_headers(*self.sent.get(url, (None, None)))

    def cached_body(self, url: str) -> bytes:
        return self.NOT_MODIFIED

    def store_validators(self, url: str, etag: str | None, modified: str | None, body: bytes) -> None:
        if etag or modified:
            self.received[url] = (etag, modified)


def main() -> None:
    lines = sys.stdin.buffer.read().splitlines()
    options: dict[str, Any] = orjson.loads(lines[0])
    urls: list[str] = []
    limits: dict[str, int] = {}
    sent: dict[str, tuple[str | None, str | None]] = {}
    for line in lines[1:]:
        url, limit, etag, modified = orjson.loads(line)
        urls.append(url)
        limits[url] = limit
        if etag or modified:
            sent[url] = (etag, modified)
    del lines
    cache = _Validators(sent) if options["cache"] else None
    session = CurlSession(options["concurrency"], options["timeout"], options["retries"],
                          options.get("most"))
    out = sys.stdout.fileno()
    pending: list[bytes] = []
    pending_size = 0

    def flush() -> None:
        """Whatever is ready goes to the parent in one write (a write per document cost the
        child ~5 us and woke the parent each time)."""
        nonlocal pending, pending_size
        parts, pending, pending_size = pending, [], 0
        while parts:
            written = os.writev(out, parts[:512])
            total = sum(len(p) for p in parts[:512])
            if written < total:  # a short write (a signal): the rest of these
                record = memoryview(b"".join(parts[:512]))
                while written < total:
                    written += os.write(out, record[written:])
            del parts[:512]

    def not_remote(location: str) -> tuple[str, bytes | None, str | None]:
        return location, None, "not an http(s) URL"  # pragma: no cover - the parent sends only those

    results = session.fetch_many(urls, limits.__getitem__, cache, not_remote, flush)
    for url, body, error in results:
        etag = modified = b""
        if body is None:
            kind, payload = ERROR, (error or "unreadable").encode("utf-8", "replace")
        elif cache is not None and body is _Validators.NOT_MODIFIED:
            kind, payload = NOT_MODIFIED, b""
        else:
            kind, payload = BODY, body
            if cache is not None:
                got = cache.received.pop(url, None)
                if got is not None:
                    etag, modified = ((v or "").encode("latin-1") for v in got)
        pending += (HEADER.pack(kind, len(etag), len(modified), len(payload)), etag, modified, payload)
        pending_size += len(payload)
        if pending_size >= 1 << 18:
            flush()
    counts = orjson.dumps(session.counts.take())
    pending += (HEADER.pack(COUNTS, 0, 0, len(counts)), counts)
    flush()
    session.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C is the parent's to handle; it ends us
    try:
        main()
    except BrokenPipeError:  # the parent stopped reading: the batch was abandoned
        pass
