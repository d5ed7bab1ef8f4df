"""The fields extension: which members of each returned document to keep.

- no `fields`: the whole document;
- `include` given and not empty: only the included paths, plus id, type, stac_version and
  links; an excluded path is still dropped unless it is itself included (a field in both
  lists is kept), and an included nested path survives the exclusion of its parent
  (`-properties,+properties.gsd` keeps `properties.gsd`);
- `include` empty or null (POST), or `fields=` empty (GET): the default set, minus `exclude`;
- only `exclude`: the whole document minus the excluded paths.

Paths are dotted (`properties.eo:cloud_cover`); a property name may itself contain dots.
"""

from __future__ import annotations

import copy
from typing import Any

from server.query.model import FieldsSpec

ALWAYS = ("id", "type", "stac_version", "links")
ITEM_DEFAULTS = (
    "type", "stac_version", "id", "geometry", "bbox", "links", "assets", "collection",
    "properties.datetime", "properties.start_datetime", "properties.end_datetime", "stac_extensions",
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
    """Dotted path → keys; `properties.a.b` may name the property `a.b`. (A collection's
    `properties` may be anything, null too: qa19, `/collections?fields=properties.a` was a 500.)"""
    properties = doc.get("properties")
    if path.startswith("properties.") and isinstance(properties, dict) and path[len("properties."):] in properties:
        return ["properties", path[len("properties."):]]
    return path.split(".")


def _under(path: str, parent: str) -> bool:
    return path.startswith(parent + ".")


def apply_fields(doc: dict[str, Any], spec: FieldsSpec | None, defaults: tuple[str, ...] = ITEM_DEFAULTS) -> dict[str, Any]:
    if spec is None:
        return doc
    include = [p for p in spec.include if p]
    exclude = [p for p in spec.exclude if p and p not in include]
    if include:
        keep = list(dict.fromkeys([*ALWAYS, *include]))
    elif spec.include_given or not exclude:
        keep = list(defaults)
    else:
        keep = []  # only exclusions: start from the whole document
    out: dict[str, Any] = {} if keep else copy.deepcopy(doc)
    for path in keep:
        _copy_path(doc, out, _split(path, doc))
    # Shallowest first, so the most specific path decides whatever the order given:
    # -properties.meta.a,-properties,+properties.meta keeps meta without meta.a.
    for path in sorted(exclude, key=lambda p: len(_split(p, doc))):
        _drop_path(out, _split(path, doc))
        for kept in include:
            if _under(kept, path):
                _copy_path(doc, out, _split(kept, doc))
    return out
