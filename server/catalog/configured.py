"""The catalogs the settings name: their roots (the bundled sample when none), the load
options, and a load of them."""

from __future__ import annotations

import logging
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
    keeps serving (the next reload tries again)."""


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
               spool: BinaryIO | None = None, refer_previous: bool = False) -> Index:
    """The settings' catalogs loaded; ``previous``: the index this one replaces, whose items
    of unchanged documents are taken as they are (a reload); ``spool``: the file the items'
    bytes go to as they are read (LoadOptions.item_spool); ``refer_previous``: that file may
    refer to the previous snapshot's for the reused items' bytes (LoadOptions.refer_previous)."""
    options = load_options(settings, remote_cache)
    options.previous = previous
    options.item_spool = spool
    options.refer_previous = refer_previous
    index, report = load_catalogs(roots_of(settings), options)
    (log.error if report.degraded else log.info)(report.summary())
    lost = [skip for skip in newly_missing(previous.load_report, index.load_report)
            if not gone(str(skip.get("reason")))] if previous is not None else []
    if lost:
        # A document that could not be read now (an error status, the network, a sub-catalog
        # half written) would take everything under it out of the API until the next reload,
        # where the serving index still has it. One deleted is a change: served (degraded).
        shown = "; ".join(f"{skip.get('location')}: {skip.get('reason')}" for skip in lost[:3])
        raise DegradedReload(f"could not read {len(lost)} of the catalogs, collections or bulk files the serving "
                             f"index read ({shown}{' ...' if len(lost) > 3 else ''}); everything under them "
                             f"would be missing")
    return index
