"""STAC versions: 1.0.0 and 1.1.x are served as they are; older ones are migrated by pystac."""

from __future__ import annotations

import copy
from typing import Any

NATIVE_VERSIONS = {"1.0.0", "1.1.0", "1.1.0-beta.1"}


class UnsupportedVersion(ValueError):
    pass


def needs_migration(doc: dict[str, Any]) -> bool:
    if doc.get("type") == "FeatureCollection":
        return False  # a plain GeoJSON container: its features are migrated one by one
    return doc.get("stac_version") not in NATIVE_VERSIONS or "type" not in doc


def migrate(doc: dict[str, Any]) -> dict[str, Any]:
    """Bring a pre-1.0 (0.8, 0.9, 1.0.0-beta/rc) document to the current version."""
    # pystac only for the documents that need it: its import costs every start ~70 ms otherwise.
    from pystac.serialization import identify_stac_object, migrate_to_latest  # noqa: PLC0415

    try:
        info = identify_stac_object(doc)
        return migrate_to_latest(copy.deepcopy(doc), info)
    except Exception as exc:  # pystac raises many kinds on odd input
        version = doc.get("stac_version", "unknown")
        raise UnsupportedVersion(f"cannot migrate STAC {version}: {exc}") from None
