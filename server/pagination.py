"""Page tokens and next links.

A token names the sort key of the last record returned, not an offset, so the next page
starts right after it in whatever index version answers it.
"""

from __future__ import annotations

import base64
from typing import Any

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


def next_link_get(href: str, params: dict[str, Any], token: str, media_type: str) -> dict[str, Any]:
    from urllib.parse import urlencode

    query = {k: v for k, v in params.items() if k != "token"}
    query["token"] = token
    return {"rel": "next", "type": media_type, "method": "GET", "href": f"{href}?{urlencode(query)}"}


def next_link_post(href: str, token: str, media_type: str) -> dict[str, Any]:
    return {
        "rel": "next",
        "type": media_type,
        "method": "POST",
        "href": href,
        "body": {"token": token},
        "merge": True,
    }
