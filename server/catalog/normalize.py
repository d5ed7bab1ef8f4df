"""Making a static document servable: hrefs a client can use (public.py), and no links the
API writes itself."""

from __future__ import annotations

from typing import Any

from server.catalog.locations import resolve_href
from server.catalog.public import PublicHrefs

__all__ = ["STRUCTURAL_RELS", "public_assets", "public_links", "resolve_href", "servable"]

# Links the API rewrites to point at itself; the static ones are dropped.
STRUCTURAL_RELS = {"self", "root", "parent", "child", "item", "items", "collection"}


def public_links(doc: dict[str, Any], base: str, hrefs: PublicHrefs) -> list[dict[str, Any]]:
    """The document's non-structural links, with public hrefs."""
    kept = []
    links = doc.get("links")
    # not a list (a number, true): no links, as for any other member of the wrong type (qa19:
    # a collection's "links": 5 was a TypeError that stopped the whole load)
    for link in links if isinstance(links, list) else ():
        if not isinstance(link, dict) or not isinstance(link.get("href"), str):
            continue
        if link.get("rel") in STRUCTURAL_RELS:
            continue
        kept.append({**link, "href": hrefs.href(base, link["href"])})
    return kept


def public_assets(assets: Any, base: str, hrefs: PublicHrefs) -> Any:
    """The assets with the hrefs to serve; an asset whose href is served as written is kept as
    it is (not copied: most items' assets point at absolute URLs, and a copy per asset was a
    tenth of a load), and so are the assets when every one is (~2 us an item less: issue 18)."""
    if not isinstance(assets, dict):
        return assets
    out = None
    as_written = hrefs.as_written  # hrefs served as written, known by their start alone
    for key, asset in assets.items():
        if type(asset) is dict or isinstance(asset, dict):
            href = asset.get("href")
            if type(href) is str and href.startswith(as_written):
                continue
            if isinstance(href, str):
                public = hrefs.href(base, href)
                if public is not href:
                    if out is None:
                        out = dict(assets)
                    out[key] = {**asset, "href": public}
    return assets if out is None else out


def servable(doc: dict[str, Any], base: str, hrefs: PublicHrefs) -> dict[str, Any]:
    """A copy of a catalog, collection or item ready to store."""
    out = dict(doc)
    out["links"] = public_links(doc, base, hrefs)
    if "assets" in doc:
        out["assets"] = public_assets(doc["assets"], base, hrefs)
    return out
