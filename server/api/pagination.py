"""Page tokens and the next, prev and first links.

A token is a keyset, not an offset: it names the sort key of the record a page starts from
and the direction to go, so the page it asks for is found in whatever index version answers
it, at the same cost however deep. A next token names the last record returned ("after": the
page is the ``limit`` records right after it); a prev token the first ("before": the
``limit`` records right before it, in the same order), so going back from page N lands on
page N-1. Tokens from before directions were named (a bare key) are next tokens.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote_plus, urlencode

import orjson

from server.errors import InvalidQueryParameter
from server.index.table import SearchResult

AFTER, BEFORE = "after", "before"


def encode_token(key: Any, direction: str = AFTER) -> str:
    """The token of a page after (a next link) or before (a prev link) the record with ``key``."""
    return base64.urlsafe_b64encode(orjson.dumps({direction: key})).decode().rstrip("=")


def decode_token(token: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidQueryParameter(f"Invalid token {token[:80]!r}") from None


def _is_key(key: Any) -> bool:
    return isinstance(key, list) and bool(key) and isinstance(key[-1], list)


def decode_page_token(token: str | None) -> tuple[list[Any] | None, list[Any] | None]:
    """(after, before): the sort key a token pages from, on the side its direction says;
    (None, None) without a token."""
    if not token:
        return None, None
    value = decode_token(token)
    if _is_key(value):  # a bare key: a next token from before tokens had directions
        return value, None
    if isinstance(value, dict) and len(value) == 1:
        ((direction, key),) = value.items()
        if direction in (AFTER, BEFORE) and _is_key(key):
            return (key, None) if direction == AFTER else (None, key)
    raise InvalidQueryParameter(f"Invalid token {token[:80]!r}")


def query_string(params: dict[str, Any]) -> str:
    """A GET request's parameters, less its page token, URL-encoded once for its self and
    paging links."""
    return urlencode({k: v for k, v in params.items() if k != "token" and v is not None})


def paged_href(href: str, encoded: str, token: str | None) -> str:
    """``href`` with the ``query_string`` ``encoded`` and a page token."""
    if token is not None:
        encoded = f"{encoded}&token={quote_plus(token)}" if encoded else f"token={quote_plus(token)}"
    return f"{href}?{encoded}" if encoded else href


def next_link_get(href: str, encoded: str, token: str | None, media_type: str, rel: str = "next") -> dict[str, Any]:
    return {"rel": rel, "type": media_type, "method": "GET", "href": paged_href(href, encoded, token)}


def next_link_post(href: str, token: str | None, media_type: str, rel: str = "next") -> dict[str, Any]:
    """A POST paging link: its body is merged into the request's (a null token: none, the first page)."""
    return {
        "rel": rel,
        "type": media_type,
        "method": "POST",
        "href": href,
        "body": {"token": token},
        "merge": True,
    }


def _tokens(result: SearchResult) -> list[tuple[str, str | None]]:
    """(rel, token) of the paging links a page has: next when a page follows, prev when one
    precedes, first when any match precedes (from page 2 on)."""
    out: list[tuple[str, str | None]] = []
    if result.next_key is not None:
        out.append(("next", encode_token(result.next_key, AFTER)))
    if result.prev_key is not None:
        out.append(("prev", encode_token(result.prev_key, BEFORE)))
    if result.has_prev:
        out.append(("first", None))
    return out


def paging_links_get(href: str, encoded: str, result: SearchResult, media_type: str) -> list[dict[str, Any]]:
    return [next_link_get(href, encoded, token, media_type, rel) for rel, token in _tokens(result)]


def paging_links_post(href: str, result: SearchResult, media_type: str) -> list[dict[str, Any]]:
    return [next_link_post(href, token, media_type, rel) for rel, token in _tokens(result)]
