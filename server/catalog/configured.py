"""The catalogs the settings name: their roots (the bundled sample when none), the load
options, and a load of them."""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import BinaryIO

from server.catalog.loader import LoadOptions, gone, load_catalogs
from server.catalog.sources import RemoteCache
from server.index import Index
from server.index.index import newly_missing
from server.sample import SAMPLE_ROOT
from server.settings import Settings

log = logging.getLogger("stac_static_api")


class DegradedReload(Exception):
    """A reload that could not read a catalog, collection or bulk file the serving index's
    load did not miss, for another reason than its being gone: refused, so the previous index
    keeps serving (the next reload tries again), for up to reload_unreadable_seconds after the
    first reload that could not read it (load_index's ``unreadable``)."""


def _utc(seconds: float) -> str:
    """``seconds`` (time.time()) as an ISO 8601 UTC time; "never" past the year 9999 (an
    infinite reload_unreadable_seconds: held until read or gone)."""
    try:
        return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    except (OverflowError, ValueError, OSError):
        return "never"


def load_options(settings: Settings, remote_cache: RemoteCache | None = None) -> LoadOptions:
    options = LoadOptions(
        remote_cache=remote_cache,
        max_document_bytes=settings.max_document_bytes,
        max_documents=settings.max_documents,
        max_depth=settings.max_depth,
        fetch_concurrency=settings.fetch_concurrency,
        fetch_max_concurrency=settings.fetch_max_concurrency,
        fetch_timeout=settings.fetch_timeout,
        fetch_retries=settings.fetch_retries,
        allow_hosts=tuple(settings.allow_hosts),
        bucket_listings=tuple(settings.bucket_listings),
        listing_timeout=settings.listing_timeout,
        allow_outside_root=settings.allow_outside_root,
        parquet_assets=settings.parquet_assets,
        public_hrefs=tuple(settings.public_href_pairs()),
        serve_assets=settings.serve_assets,
        index_processes=settings.index_processes,
    )
    if settings.max_structure_bytes is not None:  # else the default bound (loader.default_structure_bytes)
        options.max_structure_bytes = settings.max_structure_bytes
    return options


def roots_of(settings: Settings) -> list[str]:
    """The roots the settings name; none: the sample catalog that ships in the package."""
    return list(settings.roots) if settings.roots else [str(SAMPLE_ROOT)]


def load_index(settings: Settings, remote_cache: RemoteCache | None = None, *, previous: Index | None = None,
               spool: BinaryIO | None = None, refer_previous: bool = False,
               unreadable: dict[str, float] | None = None) -> Index:
    """The settings' catalogs loaded; ``previous``: the index this one replaces, whose items
    of unchanged documents are taken as they are (a reload); ``spool``: the file the items'
    bytes go to as they are read (LoadOptions.item_spool); ``refer_previous``: that file may
    refer to the previous snapshot's for the reused items' bytes (LoadOptions.refer_previous);
    ``unreadable``: the reloading process's memory, updated here, of since when (time.time())
    each catalog, collection or bulk file the serving index has and consecutive reloads could
    not read has been unreadable (none: a reload's first)."""
    options = load_options(settings, remote_cache)
    options.previous = previous
    options.item_spool = spool
    options.refer_previous = refer_previous
    index, report = load_catalogs(roots_of(settings), options)
    (log.error if report.degraded else log.info)(report.summary())
    if previous is None:
        return index
    # A document that could not be read now (an error status, the network, a sub-catalog
    # half written) would take everything under it out of the API until the next reload,
    # where the serving index still has it: refused. One deleted is a change: served (degraded);
    # so is one unreadable for longer than reload_unreadable_seconds (one broken object in the
    # bucket would otherwise hold every other change back until someone fixes it).
    unreadable_now = {str(skip.get("location")): skip for skip in (index.load_report or {}).get("structure_skips") or []
                      if isinstance(skip, dict) and not gone(str(skip.get("reason")))}
    lost = [str(skip.get("location")) for skip in newly_missing(previous.load_report, index.load_report)
            if not gone(str(skip.get("reason")))]
    since = unreadable if unreadable is not None else {}
    for location in set(since) - set(unreadable_now):
        del since[location]  # read again (or gone, or no longer linked): its next failure is held anew
    now = time.time()
    for location in lost:
        since.setdefault(location, now)
    limit = settings.reload_unreadable_seconds

    def listed(locations: list[str], most: int) -> str:
        return "; ".join(f"{location}: {unreadable_now[location].get('reason')}, unreadable since "
                         f"{_utc(since[location])}" for location in locations[:most]) + (
            " ..." if len(locations) > most else "")

    held = [location for location in lost if now - since[location] < limit]
    if held:
        until = _utc(max(since[location] for location in held) + limit)
        raise DegradedReload(f"could not read {len(held)} of the catalogs, collections or bulk files the serving "
                             f"index read ({listed(held, 3)}); everything under them would be missing ("
                             + ("refused until they are read or gone" if until == "never" else
                                f"a reload from {until} goes ahead without those still unreadable then")
                             + f": STAC_STATIC_RELOAD_UNREADABLE_SECONDS={limit:g})")
    for location, skip in unreadable_now.items():  # served without them: the report says since when
        if location in since:
            skip["unreadable_since"] = _utc(since[location])
    if lost:
        log.error("reload goes ahead without %d catalogs, collections or bulk files unreadable for longer than "
                  "STAC_STATIC_RELOAD_UNREADABLE_SECONDS (%g), served degraded: %s", len(lost), limit, listed(lost, 5))
    return index
