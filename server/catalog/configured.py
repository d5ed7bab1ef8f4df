"""The catalogs the settings name: their roots (the bundled sample when none), the load
options, and a load of them."""

from __future__ import annotations

import logging
from typing import BinaryIO

from server.catalog.loader import LoadOptions, load_catalogs
from server.catalog.sources import RemoteCache
from server.index import Index
from server.sample import SAMPLE_ROOT
from server.settings import Settings

log = logging.getLogger("stac_static_api")


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
    return index
