"""The Fields Extension: which members of an item or collection a response keeps."""

from __future__ import annotations

from typing import Any

ITEM_FIELD_DEFAULTS = (
    "id", "type", "geometry", "bbox", "links", "assets", "properties.datetime", "properties.start_datetime",
    "properties.end_datetime", "collection", "stac_version", "stac_extensions",
)
COLLECTION_FIELD_DEFAULTS = ("id", "type", "title", "description", "links", "extent", "license", "stac_version")
ALWAYS_FIELDS = ("id", "type", "stac_version", "links")


def project(
    doc: dict[str, Any],
    include: list[str],
    exclude: list[str],
    defaults: tuple[str, ...],
    include_given: bool = False,
) -> dict[str, Any]:
    """The fields extension as the server documents it (server/api/fields.py docstring):

    - some include: the included paths plus id, type, stac_version, links;
    - no include, but an (empty) include list was given, or nothing at all: the default set;
    - only exclusions: the whole document;
    then every excluded path is dropped, unless a more specific included path lies inside
    it (a path in both lists counts as included). Leaves only: containers left empty by
    the rules are not compared (see ``drop_empty``).
    """
    inc = [p.split(".") for p in include if p]
    exc = [p.split(".") for p in exclude if p and p not in include]
    if inc:
        base: list[list[str]] | None = [p.split(".") for p in ALWAYS_FIELDS] + inc
    elif include_given or not exc:
        base = [p.split(".") for p in defaults]
    else:
        base = None  # the whole document

    def covers(q: list[str], path: list[str]) -> bool:
        return path[: len(q)] == q

    def kept(path: list[str]) -> bool:
        if base is not None and not any(covers(b, path) for b in base):
            return False
        xs = [x for x in exc if covers(x, path)]
        if not xs:
            return True
        deepest = max(len(x) for x in xs)
        return any(covers(i, path) and len(i) > deepest for i in inc)

    def walk(node: dict[str, Any], prefix: list[str]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in node.items():
            path = prefix + [key]
            if isinstance(value, dict) and value:
                sub = walk(value, path)
                if sub:
                    out[key] = sub
            elif kept(path):
                out[key] = value
        return out

    return walk(doc, [])


def drop_empty(doc: Any) -> Any:
    """A document without empty objects (at any depth), to compare projections by leaves."""
    if isinstance(doc, dict):
        out = {k: drop_empty(v) for k, v in doc.items()}
        return {k: v for k, v in out.items() if v != {}}
    return doc
