"""What a handler returns: a Document, the resource's content and its kind, for the renderer
(server.api.render) to write as JSON or as a page. Items stay positions in the index until a
renderer asks for them: the JSON renderer splices their stored bytes, a page parses them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from server.api.fields import apply_fields
from server.api.links import JSON, UrlBuilder
from server.index import Index, exact_json
from server.index.served import with_base_bytes
from server.query.model import FieldsSpec

# The kinds of document; each has its page (server.api.pages.PAGES, templates in server/api/templates).
LANDING, CONFORMANCE, COLLECTIONS, COLLECTION, ITEMS, ITEM, QUERYABLES, API = (
    "landing", "conformance", "collections", "collection", "items", "item", "queryables", "api")
CATALOG, CHILDREN = "catalog", "children"  # a sub-catalog of the tree, and a node's children
AGGREGATE, AGGREGATIONS = "aggregate", "aggregations"  # an AggregationCollection computed, and the one listing them


def item_bytes(urls: UrlBuilder, index: Index, pos: int) -> bytes | None:
    """The item as served without fields: its stored bytes with the API's links appended,
    spliced without parsing them in one copy (the link bytes each collection shares are kept by
    the UrlBuilder, itself shared per base URL); None when the index cannot (not links_last)."""
    if not index.links_last:
        return None
    # the stored item ends with its own links array: ...]}; hrefs of files the API serves
    # (index.served_hrefs) go under this request's base URL
    data = with_base_bytes(index.json[pos], urls.base_json) if index.served_hrefs else index.json.view(pos)
    return urls.item_links_json().splice(data, index.collection_of(pos), index.ids[pos])


def items_bytes(urls: UrlBuilder, index: Index, positions: list[int]) -> list[bytes] | None:
    """``item_bytes`` of each of ``positions`` (a page), the index's columns read for all at
    once rather than item by item."""
    if not index.links_last:
        return None
    at = np.asarray(positions, dtype=np.int64)
    splice, ids = urls.item_links_json().splice, index.ids
    stored: Sequence[bytes | memoryview] = index.json.views(at)
    if index.served_hrefs:
        stored = [with_base_bytes(bytes(data), urls.base_json) for data in stored]
    return [splice(data, collection, ids[pos]) for data, collection, pos in zip(stored, index.collections_of(at), positions)]


def render_item(urls: UrlBuilder, index: Index, pos: int, fields: FieldsSpec | None = None) -> Any:
    """The item as served: a dict, or (without fields, the common case) ``item_bytes`` as an
    orjson.Fragment."""
    data = item_bytes(urls, index, pos) if fields is None else None
    return item_dict(urls, index, pos, fields) if data is None else orjson.Fragment(data)


def item_dict(urls: UrlBuilder, index: Index, pos: int, fields: FieldsSpec | None = None) -> dict[str, Any]:
    """The item as served, parsed: for pages, which read its members."""
    collection, item_id = index.collection_of(pos), index.ids[pos]
    item = exact_json.loads(with_base_bytes(index.json[pos], urls.base_json)) if index.served_hrefs else index.item(pos)
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
        spliced = items_bytes(self.urls, self.index, self.positions) if self.fields is None else None
        if spliced is not None:
            return [orjson.Fragment(data) for data in spliced]
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
