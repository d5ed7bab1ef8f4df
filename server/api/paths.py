"""The paths below /collections/ and /catalogs/, matched on the raw request path.

Starlette's router matches the *decoded* path, where an id's %2F has already become a
separator: `/collections/a%2Fb/items` would look like the collection `a` followed by two more
segments. Here the raw path (the ASGI ``raw_path``, %2F still encoded) is split on "/" first and
each segment percent-decoded on its own, so a collection or item id holding "/", "%", "#", "?",
"+", spaces, non-ASCII characters or being "." or ".." (which the links write as %2E) is named
exactly by the segment the links write for it (server.api.links.quote_segment).

Two leniencies, for clients that put ids into URLs without encoding them (pystac-client 0.9's
``get_collection`` and ``get_item`` do):

- an item id is everything after ``items/``, its unencoded "/" included (``{item_id:path}`` did
  the same before);
- when the first segment is no known collection, or what follows it names no endpoint, the
  longest run of segments (joined by "/") that is a collection id holding "/" is tried.

A properly encoded path always means what its segments say; a lenient reading is only tried
when that one names no collection the index has.

A sub-catalog of the static catalog's tree (server.index.tree) is ``/catalogs/{path}``, one
segment per level (each node's segment is its id, unique among its siblings, never
``children``), its children ``/catalogs/{path}/children``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from starlette.routing import Match, Route
from starlette.types import Scope

from server.index import Index
from server.index.tree import CHILDREN_SEGMENT

COLLECTION, QUERYABLES, ITEMS, ITEM = "collection", "queryables", "items", "item"
COLLECTION_CHILDREN = "collection-children"
AGGREGATE, AGGREGATIONS = "aggregate", "aggregations"  # the Aggregation extension's, below a collection
CATALOG, CATALOG_CHILDREN = "catalog", "catalog-children"
CHILDREN = CHILDREN_SEGMENT  # the children endpoint's segment below a catalog or collection

# Where a request's resolved path is kept, so the routes below the first do not split it again.
_RESOLVED = "stac_static_api.collection_path"
_PREFIXES = ("/collections/", "/catalogs/")
_UNSET: Any = object()

Resolved = tuple[str, dict[str, Any]] | None


def _route_path(scope: Scope) -> str:
    """The decoded path below the root path (as Starlette's router sees it)."""
    path: str = scope["path"]
    root = scope.get("root_path", "")
    return path[len(root):] if root and path.startswith(root + "/") else path


def decoded_segments(scope: Scope) -> list[str] | None:
    """The request path's segments below the root path, each percent-decoded on its own; None
    for a path that is not UTF-8 once decoded (no id can be named by it)."""
    raw: bytes | None = scope.get("raw_path")
    if raw is None:  # a server that gives no raw path: the decoded one is all there is
        return _route_path(scope).split("/")[1:]
    root = scope.get("root_path", "")
    if root:
        prefix = root.encode("utf-8")
        if raw.startswith(prefix) and raw[len(prefix):len(prefix) + 1] == b"/":
            raw = raw[len(prefix):]
    try:
        if b"%" not in raw:
            return raw.decode("utf-8").split("/")[1:]
        return [(unquote_to_bytes(part) if b"%" in part else part).decode("utf-8") for part in raw.split(b"/")[1:]]
    except UnicodeDecodeError:
        return None


def pinned_index(scope: Scope) -> Index | None:
    """The index this request runs on (None while loading), fixed at its first use, here or in
    a handler: a reload swapping in a new one mid-request does not mix versions in one response.
    Kept in the request's state (what ``request.state`` reads), by the router's first look."""
    state = scope.setdefault("state", {})
    index = state.get("index")
    if index is None and "app" in scope:
        index = scope["app"].state.index
        if index is not None:
            state["index"] = index
    return index


def _endpoint(tail: list[str]) -> tuple[str, str | None] | None:
    """The endpoint the segments after a collection id name, and the item id if any."""
    if not tail:
        return COLLECTION, None
    if tail[0] == "items":
        if len(tail) == 1:
            return ITEMS, None
        item_id = tail[1] if len(tail) == 2 else "/".join(tail[1:])
        return (ITEM, item_id) if item_id else None
    if tail == ["queryables"]:
        return QUERYABLES, None
    if tail == [CHILDREN]:
        return COLLECTION_CHILDREN, None
    if tail in ([AGGREGATE], [AGGREGATIONS]):
        return tail[0], None
    return None


def _result(found: tuple[str, str | None], collection_id: str) -> tuple[str, dict[str, Any]]:
    kind, item_id = found
    params = {"collection_id": collection_id}
    if item_id is not None:
        params["item_id"] = item_id
    return kind, params


# The collections of the index seen last, and the length of its longest id holding "/" (0: none).
_slashed: tuple[Any, int] = (None, 0)


def _longest_slashed(collections: dict[str, Any]) -> int:
    global _slashed
    seen, longest = _slashed
    if seen is not collections:
        longest = max((len(cid) for cid in collections if "/" in cid), default=0)
        _slashed = (collections, longest)
    return longest


def _lenient(ids: list[str], collections: dict[str, Any]) -> Resolved:
    """The longest run of leading segments that, joined by "/", is a collection id, followed by
    segments naming an endpoint."""
    longest = _longest_slashed(collections)
    if not longest:
        return None
    found: Resolved = None
    collection_id = ids[0]
    for k in range(1, len(ids)):
        collection_id = f"{collection_id}/{ids[k]}"
        if len(collection_id) > longest:
            break
        if collection_id in collections and (endpoint := _endpoint(ids[k + 1:])) is not None:
            found = _result(endpoint, collection_id)
    return found


def _collection_path(scope: Scope, ids: list[str]) -> Resolved:
    """Below /collections/: the collection id first, then what names the endpoint."""
    if not ids[0]:
        return None
    found: Resolved = None
    endpoint = _endpoint(ids[1:])
    index = pinned_index(scope)
    collections = index.collections if index is not None else None
    if collections is not None and (endpoint is None or ids[0] not in collections):
        found = _lenient(ids, collections)
    if found is None and endpoint is not None:
        found = _result(endpoint, ids[0])
    return found


def _catalog_path(scope: Scope, segments: list[str]) -> Resolved:
    """Below /catalogs/: a node of the tree, or its children. The node is None when the path
    names none (the handler answers 404, or 503 while loading)."""
    index = pinned_index(scope)
    if index is None:
        return CATALOG, {"node": None}
    tree = index.tree
    path = tuple(segments)
    node = tree.find_catalog(path)
    if node is not None:
        return CATALOG, {"node": node}
    if len(path) > 1 and path[-1] == CHILDREN and (node := tree.find_catalog(path[:-1])) is not None:
        return CATALOG_CHILDREN, {"node": node}
    return CATALOG, {"node": None}


def resolve(scope: Scope) -> Resolved:
    """(endpoint, path parameters) of a request below /collections/ or /catalogs/, or None;
    computed once per request (kept in the scope)."""
    found: Resolved = scope.get(_RESOLVED, _UNSET)
    if found is not _UNSET:
        return found
    found = None
    if _route_path(scope).startswith(_PREFIXES):
        segments = decoded_segments(scope)
        if segments is not None and len(segments) > 1:
            first, rest = segments[0], segments[1:]
            if first == "collections":
                found = _collection_path(scope, rest)
            elif first == "catalogs" and rest != [""]:
                found = _catalog_path(scope, rest)
    scope[_RESOLVED] = found
    return found


class RawPathRoute(Route):
    """A route below /collections/ or /catalogs/, matched by ``resolve`` on the raw path instead
    of by its template on the decoded one (the template documents it, see openapi)."""

    def __init__(self, path: str, endpoint: Callable[..., Any], kind: str, methods: tuple[str, ...] = ("GET",)) -> None:
        super().__init__(path, endpoint, methods=list(methods))
        self.kind = kind

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        found = scope.get(_RESOLVED, _UNSET)
        if found is _UNSET:
            found = resolve(scope)
        if found is None or found[0] != self.kind:
            return Match.NONE, {}
        child_scope = {"endpoint": self.endpoint, "path_params": {**scope.get("path_params", {}), **found[1]}}
        if self.methods and scope["method"] not in self.methods:
            return Match.PARTIAL, child_scope
        return Match.FULL, child_scope
