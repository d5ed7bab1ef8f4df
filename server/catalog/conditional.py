"""Conditional requests: the headers that ask "changed since?" (its own module so that the
fetch child process, which starts as a bare script, imports nothing else)."""

from __future__ import annotations


def validator_headers(etag: str | None, modified: str | None) -> dict[str, str]:
    """The conditional request headers for a cached document's validators."""
    headers = {}
    if etag:
        headers["If-None-Match"] = etag
    if modified:
        headers["If-Modified-Since"] = modified
    return headers
