"""Hrefs to files the API serves itself: ``--serve-assets``' ``/_assets/{root}/{path}``, and the
bundled sample catalog's thumbnails at ``/sample/thumbnails/`` (written root-relative in its
documents).

Such an href is made at load time, but the API's public base URL is only known per request
(``--base-url``, or the Host and X-Forwarded-* headers), and may carry a path (a proxy's
prefix). So it is stored as a marker (a control character, which no URL holds) followed by the
path below the base, and the base is put in front when an item or collection is rendered: one
``bytes.replace`` on a stored item, and only on an index that has such hrefs
(``Index.served_hrefs``). qa16: the sample's thumbnails, served root-relative as written,
pointed outside the prefix behind a proxy (404).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

ASSETS_PATH = "/_assets"
THUMBNAILS_PATH = "/sample/thumbnails"  # the sample's thumbnails (server.api.static_files serves them)
MARKER = "\x1f"
# How orjson writes the start of a stored served href: the marker escaped, then the path's "/"
# (both kinds in one replace). A catalog's own string starting with U+001F "/" would be
# completed too, as one starting with U+001F "/_assets/" was before: no text starts so.
_STORED = b'"\\u001f/'
# What a path inside a root keeps as it is in the URL (RFC 3986 pchar and "/"); the rest is escaped.
_SAFE = "/~!$&'()*+,;=:@"


def served_href(root: int, relative: str) -> str:
    """The stored href of the file ``relative`` (a "/"-separated path) inside served root ``root``."""
    return f"{MARKER}{ASSETS_PATH}/{root}/{quote(relative, safe=_SAFE)}"


def own_href(path: str) -> str:
    """The stored href of ``path`` (root-relative, such as ``/sample/thumbnails/x.png``), a file
    the API serves at that path below its base URL."""
    return MARKER + path


def with_base_bytes(data: bytes, base_json: bytes) -> bytes:
    """Stored JSON with its served hrefs completed; ``base_json`` is the base URL as written
    inside a JSON string (escaped), without a trailing "/"."""
    return data.replace(_STORED, b'"' + base_json + b"/")


def with_base(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """A copy of a stored collection (or item dict) with the served hrefs of its assets and
    links completed (the only places the loader writes them)."""
    out = dict(doc)
    for member in ("assets", "links"):
        value = doc.get(member)
        if isinstance(value, dict):
            out[member] = {k: _completed(v, base) for k, v in value.items()}
        elif isinstance(value, list):
            out[member] = [_completed(v, base) for v in value]
    return out


def _completed(entry: Any, base: str) -> Any:
    if isinstance(entry, dict):
        href = entry.get("href")
        if isinstance(href, str) and href.startswith(MARKER):
            return {**entry, "href": base + href[len(MARKER):]}
    return entry
