"""What a handler returns: a Document, the resource's content and its kind, for the renderer
(server.api.render) to write as JSON or as a page. Items stay positions in the index until a
renderer asks for them: the JSON renderer splices their stored bytes, a page parses them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from server.api.fields import apply_fields
from server.api.links import JSON, UrlBuilder
from server.index import Index
from server.index.served import with_base_bytes
from server.query.model import FieldsSpec

# The kinds of document; each has a page (server/api/templates/<kind>.html) or the generic one.
LANDING, CONFORMANCE, COLLECTIONS, COLLECTION, ITEMS, ITEM, QUERYABLES, API = (
    "landing", "conformance", "collections", "collection", "items", "item", "queryables", "api")
CATALOG, CHILDREN = "catalog", "children"  # a sub-catalog of the tree, and a node's children


def render_item(urls: UrlBuilder, index: Index, pos: int, fields: FieldsSpec | None = None) -> Any:
    """The item as served: a dict, or (without fields, the common case) its stored bytes with
    the API's links appended, spliced without parsing them (an orjson.Fragment; the link bytes
    each collection shares are kept by the UrlBuilder, itself shared per base URL)."""
    collection, item_id = index.collection_of(pos), index.ids[pos]
    if fields is None and index.links_last:
        data = index.json[pos]  # ends with the item's own links array: ...]}
        if index.asset_roots:  # hrefs of files the API serves: under this request's base URL
            data = with_base_bytes(data, urls.base_json)
        extra = urls.item_links_json()(collection, item_id)
        return orjson.Fragment(data[:-2] + extra + b"]}" if data.endswith(b"[]}") else data[:-2] + b"," + extra + b"]}")
    return item_dict(urls, index, pos, fields)


def item_dict(urls: UrlBuilder, index: Index, pos: int, fields: FieldsSpec | None = None) -> dict[str, Any]:
    """The item as served, parsed: for pages, which read its members."""
    collection, item_id = index.collection_of(pos), index.ids[pos]
    item = orjson.loads(with_base_bytes(index.json[pos], urls.base_json)) if index.asset_roots else index.item(pos)
    item["links"] = item.get("links", []) + urls.item_links(collection, item_id)
    return apply_fields(item, fields)


@dataclass(slots=True)  # not frozen: its __init__ would cost ~1 us of an item GET's ~40
class Features:
    """Items of the index, not yet rendered: ``positions`` in order, shaped by ``fields``."""

    urls: UrlBuilder
    index: Index
    positions: list[int]
    fields: FieldsSpec | None = None

    def as_json(self) -> list[Any]:
        return [render_item(self.urls, self.index, p, self.fields) for p in self.positions]

    def as_dicts(self) -> list[dict[str, Any]]:
        return [item_dict(self.urls, self.index, p, self.fields) for p in self.positions]

    def __len__(self) -> int:
        return len(self.positions)


@dataclass(slots=True)
class Document:
    """A resource: ``body`` is its JSON (an ``ITEM``'s body is a one-item Features; an
    ``ITEMS`` body holds a Features under "features"), written as ``media_type``."""

    kind: str
    body: Any
    media_type: str = JSON
    status: int = 200

    def plain(self) -> Any:
        """The body with its items parsed: what a page reads."""
        if isinstance(self.body, Features):
            return self.body.as_dicts()[0]
        if isinstance(self.body, dict) and isinstance(self.body.get("features"), Features):
            return {**self.body, "features": self.body["features"].as_dicts()}
        return self.body
