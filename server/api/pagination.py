"""Page tokens and next links.

A token names the sort key of the last record returned, not an offset, so the next page
starts right after it in whatever index version answers it.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import quote_plus, urlencode

import orjson

from server.errors import InvalidQueryParameter


def encode_token(key: Any) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode().rstrip("=")


def decode_token(token: str) -> Any:
    try:
        return orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, orjson.JSONDecodeError):
        raise InvalidQueryParameter(f"Invalid token {token[:80]!r}") from None


def decode_key_token(token: str) -> list[Any]:
    """A token naming the sort key of the last record of the previous page."""
    key = decode_token(token)
    if isinstance(key, list) and key and isinstance(key[-1], list):
        return key
    raise InvalidQueryParameter(f"Invalid token {token[:80]!r}")


def query_string(params: dict[str, Any]) -> str:
    """A GET request's parameters, less its page token, URL-encoded once for its self and
    next links."""
    return urlencode({k: v for k, v in params.items() if k != "token" and v is not None})


def paged_href(href: str, encoded: str, token: str | None) -> str:
    """``href`` with the ``query_string`` ``encoded`` and a page token."""
    if token is not None:
        encoded = f"{encoded}&token={quote_plus(token)}" if encoded else f"token={quote_plus(token)}"
    return f"{href}?{encoded}" if encoded else href


def next_link_get(href: str, encoded: str, token: str, media_type: str) -> dict[str, Any]:
    return {"rel": "next", "type": media_type, "method": "GET", "href": paged_href(href, encoded, token)}


def next_link_post(href: str, token: str, media_type: str) -> dict[str, Any]:
    return {
        "rel": "next",
        "type": media_type,
        "method": "POST",
        "href": href,
        "body": {"token": token},
        "merge": True,
    }
