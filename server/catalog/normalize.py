"""Making a static document servable: absolute hrefs, and no links the API writes itself."""

from __future__ import annotations

from typing import Any

from server.catalog.locations import resolve_href

# Links the API rewrites to point at itself; the static ones are dropped.
STRUCTURAL_RELS = {"self", "root", "parent", "child", "item", "items", "collection"}


def absolute_links(doc: dict[str, Any], base: str) -> list[dict[str, Any]]:
    """The document's non-structural links, hrefs made absolute."""
    kept = []
    for link in doc.get("links") or []:
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            continue
        if link.get("rel") in STRUCTURAL_RELS:
            continue
        kept.append({**link, "href": resolve_href(base, link["href"])})
    return kept


def absolute_assets(assets: Any, base: str) -> Any:
    """The assets with absolute hrefs; an asset whose href already is one is kept as it is
    (not copied: most items' assets point at absolute URLs, and a copy per asset was a tenth
    of a load)."""
    if not isinstance(assets, dict):
        return assets
    out = {}
    for key, asset in assets.items():
        if isinstance(asset, dict):
            href = asset.get("href")
            if isinstance(href, str):
                absolute = resolve_href(base, href)
                if absolute is not href:
                    asset = {**asset, "href": absolute}
        out[key] = asset
    return out


def servable(doc: dict[str, Any], base: str) -> dict[str, Any]:
    """A copy of a catalog, collection or item ready to store."""
    out = dict(doc)
    out["links"] = absolute_links(doc, base)
    if "assets" in doc:
        out["assets"] = absolute_assets(doc["assets"], base)
    return out


def child_hrefs(doc: dict[str, Any], rels: tuple[str, ...]) -> list[str]:
    return [
        link["href"]
        for link in doc.get("links") or []
        if isinstance(link, dict) and link.get("rel") in rels and isinstance(link.get("href"), str)
    ]
