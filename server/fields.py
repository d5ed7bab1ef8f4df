"""The fields extension: which members of each returned document to keep.

Kept = (defaults ∪ include) − exclude, where names are dotted paths (`properties.gsd`).
"""

from __future__ import annotations

import copy
from typing import Any

from server.query.model import FieldsSpec

ITEM_DEFAULTS = (
    "id", "type", "geometry", "bbox", "links", "assets", "properties.datetime", "collection",
    "stac_version", "stac_extensions",
)
COLLECTION_DEFAULTS = ("id", "type", "title", "description", "links", "extent", "license", "stac_version")


def _copy_path(src: dict[str, Any], dst: dict[str, Any], parts: list[str]) -> None:
    head = parts[0]
    if head not in src:
        return
    if len(parts) == 1:
        dst[head] = copy.deepcopy(src[head]) if isinstance(src[head], (dict, list)) else src[head]
        return
    if not isinstance(src[head], dict):
        return
    child = dst.setdefault(head, {})
    if isinstance(child, dict):
        _copy_path(src[head], child, parts[1:])


def _drop_path(doc: dict[str, Any], parts: list[str]) -> None:
    head = parts[0]
    if len(parts) == 1:
        doc.pop(head, None)
    elif isinstance(doc.get(head), dict):
        _drop_path(doc[head], parts[1:])


def _split(path: str, doc: dict[str, Any]) -> list[str]:
    """Dotted path → keys; a property name may itself hold dots (`properties.a.b` may be key `a.b`)."""
    if path.startswith("properties.") and path[len("properties."):] in doc.get("properties", {}):
        return ["properties", path[len("properties."):]]
    return path.split(".")


def apply_fields(doc: dict[str, Any], spec: FieldsSpec | None, defaults: tuple[str, ...] = ITEM_DEFAULTS) -> dict[str, Any]:
    if spec is None:
        return doc
    out: dict[str, Any] = {}
    for path in dict.fromkeys([*defaults, *spec.include]):
        if path:
            _copy_path(doc, out, _split(path, doc))
    for path in spec.exclude:
        if path:
            _drop_path(out, _split(path, doc))
    return out
