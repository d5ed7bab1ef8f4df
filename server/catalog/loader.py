"""Walks static catalogs and fills an IndexBuilder.

Two phases: first the structure (catalogs and collections, level by level), so that every
collection is known before any item is indexed; then all items, fetched concurrently in
chunks. Items met during the walk (in an ndjson or FeatureCollection file) are indexed as they
are read when the collection they go to is already known, else after the walk. Files that hold
items only (stac-geoparquet, formats.Reader.items_only) are not read during the walk but after
it, local ones by a forked child while this process indexes (forked_reader). Local item
files, large ndjson files and local stac-geoparquet files are indexed by several forked
processes at once, a chunk of item links, of lines or a row group each, appended here in order
(parallel.py, _load_files_forked, _index_lines_forked, _index_parquet_forked;
LoadOptions.index_processes). Anything unreadable is skipped with a
reason; nothing stops the load.

Where a document comes from is its Source (sources.py, by URL scheme), how its bytes are read
is its Reader (formats.py, by name, media type or content). How large it may be depends on how
it was reached, which is known before it is read: a root or a child link leads to a structural
document (a catalog, a collection, or a bulk FeatureCollection / ndjson file holding many
items), read within ``max_structure_bytes``; an item link leads to one item, read within
``max_document_bytes``. A structural document that cannot be read loses everything under it:
the report counts these apart from skipped items (``structure_skips``), the index carries
them to /_mgmt/ready ("degraded"), and ``stac-static-api index`` fails on them. Links refused
by the scope rules (another host, outside the root folder) are the operator's policy, not a
loss, and stay ordinary skips.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import gc
import glob
import itertools
import logging
import operator
import os
import posixpath
import re
import shutil
import sys
import tempfile
import time
from array import array
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, BinaryIO
from urllib.parse import unquote, urlsplit

import numpy as np
import orjson

from server.catalog import forked_reader, formats, parallel
from server.catalog.fingerprint import Fingerprint
from server.catalog.formats import FormatError
from server.catalog.links import ItemLinks
from server.catalog.locations import OUTSIDE_ROOTS, Scope, is_url
from server.catalog.normalize import resolve_href, servable
from server.catalog.public import PublicHrefs
from server.catalog.reuse import ReusePlan, digest
from server.catalog.sources import OVER_LIMIT, Fetcher, RemoteCache, SourceLog
from server.catalog.versions import UnsupportedVersion, migrate, needs_migration
from server.catalog.waiting import WaitingItems
from server.index import Index, IndexBuilder, exact_json, heap
from server.index.builder import Chunk, ItemRejected
from server.index.index import degraded_reason
from server.index.origins import UNKNOWN, Origins, OriginsBuilder
from server.index.reuse import ReusingBuilder
from server.index.runs import RunList, tail_is
from server.index.tree import CATALOG, COLLECTION, LANDING, NO_NODE

log = logging.getLogger("stac_static_api.loader")

ITEM_CHUNK = 512
# The lines of an ndjson file indexed by forked processes (Loader._index_lines_forked): files of
# at least this many bytes, in chunks of at most LINES_CHUNK_BYTES (at least LINES_MIN_CHUNK_BYTES,
# each child having ~4 of them); a file whose forked indexing stopped on a line this process
# must handle (a catalog, an item of a collection not yet loaded ...) is forked again from the
# next line at most LINES_MAX_FORKS times, then read here to its end.
LINES_MIN_BYTES = 1 << 20
LINES_CHUNK_BYTES = 8 << 20
LINES_MIN_CHUNK_BYTES = 64 << 10
LINES_MAX_FORKS = 8
# Item files read and indexed by forked processes (Loader._load_files_forked): at least
# FILES_MIN_ITEMS of them, in chunks of at most FILES_CHUNK (at least FILES_MIN_CHUNK,
# each child having ~4 of them).
FILES_MIN_ITEMS = 2000
FILES_CHUNK = 2048
FILES_MIN_CHUNK = 256
_CONTEXT, _NODE = operator.itemgetter(1), operator.attrgetter("node")  # an item link's context, its tree node
REUSE_CHUNK = 65_536  # item links planned at once by a reload reusing rows: bounded fetched documents
MAX_SKIPS_KEPT = 1000

# Why a document was skipped, in words that stay the same: the report counts each
# (skipped_by_reason: GET /_mgmt/ready's load, the metric stac_static_index_skipped_documents).
OUT_OF_SCOPE = "out_of_scope"  # a link leaving the roots (another host, outside the root folder, a symlink out), another scheme
LIMIT = "limit"  # past STAC_STATIC_MAX_DEPTH or STAC_STATIC_MAX_DOCUMENTS
TOO_LARGE = "too_large"  # over its size limit (STAC_STATIC_MAX_DOCUMENT_BYTES / _MAX_STRUCTURE_BYTES)
UNREADABLE = "unreadable"  # a broken link: no such file, an HTTP error, the network, a timeout
INVALID_JSON = "invalid_json"  # not JSON (or not the format it claims: a FeatureCollection without features, parquet)
NOT_STAC = "not_stac"  # not a STAC catalog, collection or item, or a version that cannot be migrated
MISSING_ID = "missing_id"  # a catalog or collection without an id
INVALID_ITEM = "invalid_item"  # an item without a string id, properties or geometry, a non-string collection, a bad geometry
DUPLICATE = "duplicate"  # a collection or item id already loaded, a file already read (through a symlink)
SKIP_REASONS = (OUT_OF_SCOPE, LIMIT, TOO_LARGE, UNREADABLE, INVALID_JSON, NOT_STAC, MISSING_ID, INVALID_ITEM, DUPLICATE)
ALREADY_READ = "already read as"


def failure_reason(error: str) -> str:
    """The skip reason of a document that could not be read, from the Source's message: the
    scope's refusals (locations.py) and every size limit's message (sources.py, curl.py) say
    so in these words."""
    if error.startswith(OUTSIDE_ROOTS) or error.startswith("unsupported scheme"):
        return OUT_OF_SCOPE
    if error.startswith(ALREADY_READ):
        return DUPLICATE
    if OVER_LIMIT in error:
        return TOO_LARGE
    return UNREADABLE


# What the Sources say of a document that is not there (sources.py, curl.py; boto3's error
# codes): deleted, as opposed to unreadable for now (an error status, the network, a half
# written file's JSON), which a reload does not lose (configured.load_index for catalogs,
# Loader._keep_unreadable for items). 403 is S3's answer for a deleted key where listing is
# not allowed (a public bucket's usual policy), so it counts as gone.
GONE = frozenset({os.strerror(errno.ENOENT), "HTTP 403", "HTTP 404", "HTTP 410"})
S3_GONE = ("(NoSuchKey)", "(AccessDenied)", "(404)", "(403)")


def gone(error: str) -> bool:
    """Whether a document could not be read because it is not there (deleted or never made)."""
    return error in GONE or (error.startswith("S3 ") and any(code in error for code in S3_GONE))


ROOT_MAX_BYTES = 8 * 1024**3  # a configured root (the operator named it) may be this large at least


@dataclass
class StructureSkip:
    """A structural document (root or child link) that was not read: everything under it is
    missing. ``items``: how many item links it held, when known (it was parsed)."""

    location: str
    reason: str
    items: int | None = None


@dataclass
class LoadReport:
    catalogs: int = 0
    collections: int = 0
    items: int = 0
    skipped: int = 0  # every skip, structural documents included
    seconds: float = 0.0
    skips: list[tuple[str, str]] = field(default_factory=list)
    skipped_by_reason: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SKIP_REASONS, 0))
    sources: SourceLog | None = None  # the local files read, for snapshot fingerprints
    roots: list[str] = field(default_factory=list)  # the documents the load started from
    structure_skipped: int = 0
    structure_skips: list[StructureSkip] = field(default_factory=list)
    # (collection the items name, which is not loaded; the loaded one above them) -> items
    reassigned: dict[tuple[str, str], int] = field(default_factory=dict)
    # collections made for items of no collection: id -> the catalog (or root file) they came from
    made_collections: dict[str, str] = field(default_factory=dict)
    hrefs_not_public: int = 0  # local hrefs neither mapped (--public-href) nor served (--serve-assets)
    reused: int = 0  # items taken from the previous index, their documents unchanged (a reload)
    # item documents a reload could not read for now (not gone: Loader._keep_unreadable), served
    # as the previous index read them; the first MAX_SKIPS_KEPT (location, reason)
    kept_unreadable: int = 0
    kept_unreadable_items: list[tuple[str, str]] = field(default_factory=list)

    @property
    def degraded(self) -> bool:
        """Whether a catalog, collection or bulk file could not be read (its items are missing):
        index.degraded_reason's answer, the one predicate (of the report as the index keeps it)."""
        return degraded_reason(self.problems()) is not None

    def summary(self) -> str:
        text = (
            f"loaded {self.catalogs} catalogs, {self.collections} collections, {self.items} items; "
            f"skipped {self.skipped}; {self.seconds:.2f} s"
        )
        if self.structure_skipped:
            held = [s.items for s in self.structure_skips if s.items is not None]
            text += (f"; ERROR: {self.structure_skipped} catalog/collection/bulk documents not read, "
                     f"everything under them is missing"
                     + (f" (at least {sum(held)} item links)" if held else "")
                     + ": " + "; ".join(f"{s.location}: {s.reason}" for s in self.structure_skips[:5])
                     + (" ..." if self.structure_skipped > 5 else ""))
        if self.reassigned:
            text += "; " + ", ".join(f"{n} items naming collection {declared!r} served under {parent!r}"
                                     for (declared, parent), n in sorted(self.reassigned.items()))
        if self.made_collections:
            made = sorted(self.made_collections.items())
            text += (f"; made {len(made)} collections for items of no collection: "
                     + ", ".join(f"{cid!r} (from {source})" for cid, source in made[:5]) + (" ..." if len(made) > 5 else ""))
        if self.reused:
            text += f"; {self.reused} items of unchanged documents reused"
        if self.kept_unreadable:
            text += (f"; WARNING: {self.kept_unreadable} item documents could not be read now, served as last read: "
                     + "; ".join(f"{loc}: {why}" for loc, why in self.kept_unreadable_items[:5])
                     + (" ..." if self.kept_unreadable > 5 else ""))
        if self.hrefs_not_public:
            text += (f"; {self.hrefs_not_public} local hrefs could not be made public (served as the catalogs wrote "
                     f"them: map their folder with --public-href, or --serve-assets)")
        return text

    def problems(self) -> dict[str, Any]:
        """What /_mgmt/ready shows of the load (JSON): skips, structural ones listed."""
        return {
            "skipped": self.skipped,
            "skipped_by_reason": dict(self.skipped_by_reason),
            "seconds": round(self.seconds, 3),
            "structure_skipped": self.structure_skipped,
            "structure_skips": [{"location": s.location, "reason": s.reason, "items": s.items}
                                for s in self.structure_skips],
            "items_missing_at_least": sum(s.items or 0 for s in self.structure_skips),
            "reassigned": [{"collection": declared, "served_under": parent, "items": n}
                           for (declared, parent), n in sorted(self.reassigned.items())],
            "made_collections": [{"collection": cid, "from": source} for cid, source in sorted(self.made_collections.items())],
            "hrefs_not_public": self.hrefs_not_public,
            "reused": self.reused,
            "kept_unreadable": self.kept_unreadable,
            "kept_unreadable_items": [{"location": loc, "reason": why} for loc, why in self.kept_unreadable_items],
        }


@dataclass(frozen=True)
class Context:
    """Where a linked document sits: the collection above it, how deep, and the tree node
    (server.index.tree) whose link led to it."""

    collection: str | None
    depth: int
    # the nearest plain catalog above: the home of items that belong to no collection
    catalog: str | None = None
    node: int = LANDING


def default_structure_bytes() -> int:
    """The default structural bound: an eighth of physical memory (a link list parses to ~4x
    its size in Python objects, bench/big_collection.py, so a document at the bound still fits
    in about half of memory), at least 256 MiB, at most 8 GiB; 2 GiB where memory is unknown."""
    try:
        memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 2 * 1024**3
    return min(8 * 1024**3, max(256 * 1024**2, memory // 8))


@dataclass
class LoadOptions:
    max_document_bytes: int = 32 * 1024 * 1024  # an item document
    max_structure_bytes: int = field(default_factory=default_structure_bytes)  # catalogs, collections, bulk files
    max_documents: int = 5_000_000
    max_depth: int = 64
    fetch_concurrency: int = 32
    fetch_max_concurrency: int = 256  # libcurl grows from fetch_concurrency up to this while it pays
    fetch_timeout: float = 20.0
    fetch_retries: int = 3
    allow_hosts: tuple[str, ...] = ()
    # http(s) bucket endpoints (URLs ending in /) a reload lists (ListObjectsV2) to tell unchanged
    # item documents under them without requesting each (reuse.py; Settings.bucket_listings)
    bucket_listings: tuple[str, ...] = ()
    listing_timeout: float = 300.0  # seconds one listing (an endpoint's, an S3 prefix's) may take in all
    allow_outside_root: bool = False
    progress: bool | None = None  # None: when stderr is a terminal
    remote_cache: RemoteCache | None = None  # kept across reloads for conditional requests
    parquet_assets: bool = True  # a collection's stac-geoparquet asset holds its items
    public_hrefs: tuple[tuple[str, str], ...] = ()  # (SRC, DST): Settings.public_href_pairs
    serve_assets: bool = False  # local hrefs inside the roots' folders point at /_assets/ (public.py)
    # an open file the items' bytes are written to as they are read (the snapshot `index`
    # is writing: server.runtime.snapshot.SnapshotWriter) instead of being held in memory
    item_spool: BinaryIO | None = None
    # the index this load replaces: items whose documents did not change are taken from it (reuse.py)
    previous: Index | None = None
    # a reload whose snapshot (item_spool) may refer to the previous one's file for the reused
    # items' bytes instead of copying them (server.index.reuse, runtime.snapshot): the server's
    refer_previous: bool = False
    # processes reading and indexing local item files, the lines of a large ndjson file or the row
    # groups of a local parquet one (forked: parallel.py); 0: one per core, 1: this one only
    index_processes: int = 0
    # large local ndjson files read during the walk mapped instead of read into this process's
    # memory (sources.LocalFiles.map): the `index` command's load only, as a file truncated
    # while mapped kills the process (SIGBUS), which a serving process must not risk
    map_bulk: bool = False


def release_free_memory() -> None:
    """Collect what the load left behind and hand freed heap pages back to the OS, so the
    resident size reflects the index rather than the load's transient documents."""
    gc.collect()
    heap.trim()


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """The cyclic garbage collector off while a load runs. A load makes millions of dicts and
    lists (the parsed items) that reference counting frees, none of them in cycles; the
    collector, triggered by every 700 allocations, walked the young ones again and again, and
    the growing old generation now and then: 30-50% of a load's CPU time at 100k items
    (bench/parquet_read.py --loader). Turned back on (if it was on) when the load ends;
    release_free_memory() then collects once. Process-wide: in a server that loads in a thread,
    requests' cyclic garbage waits for the end of the load."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class LoadError(Exception):
    """Nothing at all could be loaded."""


def find_roots(root: str) -> list[str]:
    """The document(s) to start from for one configured root."""
    if is_url(root):
        return [root]
    path = os.path.abspath(root)
    if not os.path.isdir(path):
        return [path]
    for name in ("catalog.json", "collection.json"):
        if os.path.isfile(os.path.join(path, name)):
            return [os.path.join(path, name)]
    parquet = sorted(glob.glob(os.path.join(path, "**", "*.parquet"), recursive=True))
    if parquet and not glob.glob(os.path.join(path, "**", "*.json"), recursive=True):
        return parquet  # a folder of stac-geoparquet files (hive-partitioned or not)
    for depth in range(1, 6):
        pattern = os.path.join(path, *(["*"] * depth))
        found = sorted(
            p for name in ("catalog.json", "collection.json") for p in glob.glob(os.path.join(pattern, name))
        )
        if found:
            return found
    return [path]


def _parquet_assets(collection: dict[str, Any]) -> list[str]:
    """The hrefs of a collection's stac-geoparquet assets of items: typed as parquet, or keyed
    geoparquet-items (the stac-geoparquet convention) with a parquet name."""
    assets = collection.get("assets")
    if not isinstance(assets, dict):
        return []
    found = []
    for key, asset in assets.items():
        if not isinstance(asset, dict) or not isinstance(asset.get("href"), str):
            continue
        media_type = str(asset.get("type") or "").partition(";")[0].strip().lower()
        roles = asset["roles"] if isinstance(asset.get("roles"), list) else []
        if media_type in formats.GeoParquet.media_types or key == "geoparquet-items" or "stac-items" in roles:
            if media_type in formats.GeoParquet.media_types or formats.extension(asset["href"]) in ("parquet", "geoparquet"):
                found.append(asset["href"])
    return found


def _kind(doc: dict[str, Any]) -> str:
    kind = doc.get("type")
    if kind in ("Catalog", "Collection", "Feature", "FeatureCollection"):
        return kind
    if "extent" in doc and "license" in doc:
        return "Collection"
    if "geometry" in doc and "properties" in doc:
        return "Feature"
    if "links" in doc and "id" in doc:
        return "Catalog"
    return "unknown"


_PLAIN_JSON = frozenset({"application/json", "application/geo+json"})
# A relative href that normpath, unquote and the scope's checks leave as it is below its
# document's folder: segments without "%", "\\", ":", "?", "#", none empty or starting with ".".
_PLAIN_RELATIVE = re.compile(r"(?:\./)?[^/%\\:?#.][^/%\\:?#]*(?:/[^/%\\:?#.][^/%\\:?#]*)*")


_NOT_PLAIN = ("%", "\\", ":", "?", "#", "/.", "\n.", "//", "\n/", "/\n", "\n\n")  # in hrefs joined, without their ./


def _plain_targets(folder: str, hrefs: list[str]) -> list[str] | None:
    """What _admit_items makes of each of ``hrefs`` when every one is plain relative
    (_PLAIN_RELATIVE: no %, \\, :, ?, #, no empty segment nor one that starts with a dot, after
    an optional ./): ``folder`` + the href without its ./, from the hrefs joined by a few
    substring searches, a replace and a split (no call a link; a regular expression over them
    joined cost as much as one a link: 0.19 CPU-s for 250k); else None."""
    lines = ("\n" + "\n".join(hrefs)).replace("\n./", "\n")
    if (not hrefs or "\n" in folder or lines.count("\n") != len(hrefs) or lines.endswith(("/", "\n"))
            or any(mark in lines for mark in _NOT_PLAIN)):
        return None
    return lines.replace("\n", "\n" + folder)[1:].split("\n")


def _links(doc: dict[str, Any], lean: bool = True) -> Iterator[tuple[str, str, Any]]:
    """(rel, href, media type) of the document's child and item links, whether its links are
    dicts or, for a large document, item hrefs kept bare (formats.LeanLinks; ``lean``: those too)."""
    links = doc.get("links")
    if links is None:
        return
    for link in links if isinstance(links, list) else ():
        if isinstance(link, dict):
            rel, href = link.get("rel"), link.get("href")
            if isinstance(href, str) and (rel == "item" or rel == "child"):
                yield rel, href, link.get("type")
    if lean and isinstance(links, formats.LeanLinks):
        types = links.item_types
        for position, href in enumerate(links.item_hrefs):
            yield "item", href, types.get(position) if types else None


def _group_tasks(groups: list[int], count: int) -> list[tuple[int, int, int]]:
    """The tasks of a parquet file's row groups (their rows: ``groups``) for ``count`` forked
    processes (task i to process i % count): (group, first row, end of its rows), a row group
    each, but the last ones (the rounds' remainder and one round more) shared by the processes,
    ``count`` parts each, so they end together: with a whole group each, at 1M (4 files of 25
    groups of 10k items, 2 processes) one process had a group more at each file's end, ~0.4 s
    of a core idle each time (issue 18). Each part decodes its whole group (pyarrow's unit) and
    converts only its rows to items."""
    if count < 2 or len(groups) < 2:
        return [(g, 0, rows) for g, rows in enumerate(groups)]
    shared = len(groups) % count + count
    tasks = [(g, 0, rows) for g, rows in enumerate(groups[:-shared])]
    for g in range(max(len(groups) - shared, 0), len(groups)):
        rows = groups[g]
        bounds = [rows * k // count for k in range(count + 1)]
        tasks.extend((g, bounds[k], bounds[k + 1]) for k in range(count) if bounds[k + 1] > bounds[k])
    return tasks


class Loader:
    def __init__(self, roots: Iterable[str], options: LoadOptions | None = None) -> None:
        self.options = options or LoadOptions()
        self.roots = [r for root in roots for r in find_roots(root)]
        self.scope = Scope(
            hosts={h.lower() for h in self.options.allow_hosts},
            allow_outside_root=self.options.allow_outside_root,
        )
        for root in self.roots:
            self.scope.add_root(root)
        folders = list(zip(self.scope.lexical_folders, self.scope.folders))
        self.hrefs = PublicHrefs(self.options.public_hrefs, folders, self.options.serve_assets)
        self.report = LoadReport(roots=list(self.roots))
        # Homes of items that belong to no collection (a plain catalog's location, or a root
        # file's), in the order the walk met them; their collection ids, given after the walk
        # (when every loaded collection id is known); the collections made so far.
        self._catalogs: dict[str, dict[str, Any]] = {}  # plain catalogs: id, title, description
        self._homes: dict[str, dict[str, Any]] = {}
        self._home_ids: dict[str, str] = {}
        self._made: set[str] = set()
        self._reuse = self._reuse_plan()
        spool = self.options.item_spool
        self.builder: IndexBuilder = (
            ReusingBuilder(self._reuse.previous, on_reject=self._invalid_item, spool=spool,
                           refer=self.options.refer_previous)
            if self._reuse is not None else IndexBuilder(on_reject=self._invalid_item, spool=spool))
        self._origins = OriginsBuilder()  # where each item read from a document of its own came from
        self._digests: dict[str, bytes] = {}  # remote item documents' MD5, for the next reload
        # the documents admitted: item links in _pending_items (ItemLinks: one block of bytes,
        # no string a link), the others (roots, children, real paths of symlinks) here
        self._seen: set[str] = set()
        self._documents = 0
        self._pending_items: ItemLinks[Context] = ItemLinks()
        self._checked_from = 0  # a reload: _pending_items before this are being checked (_check_soon)
        # items found among the structure (bulk files, item documents as roots): linked by no
        # `item` link, so without a place in the tree; kept here (as bytes in a temporary file
        # beside the snapshot being written) only while they wait for the collection they go
        # to (_inline_item)
        spool_folder = os.path.dirname(os.path.abspath(spool.name)) if spool is not None and isinstance(spool.name, str) else None
        self._inline_items: WaitingItems[Context] = WaitingItems(spool_folder)
        self._bulk_items: list[tuple[str, Context]] = []  # files of items only, read after the walk
        self._structural: set[str] = set()  # roots and children admitted: a skip of one is a loss
        self._refused: set[str] = set()  # refused by policy once opened (a symlink): not a loss
        # in a forked process indexing item files (_index_files): the real paths of those read
        # through a symlink, added to _seen, for this process's loader to check and add
        self._aliases: list[str] | None = None
        self._walking = True
        self._media_types: dict[str, str] = {}  # a link's type, when it is not plain JSON
        self._structure_limit = max(self.options.max_structure_bytes, self.options.max_document_bytes)
        self._chunk_folder: str | None = None  # while forked processes index: where chunks leave items' bytes
        self._append_to: str | None = None  # while forked processes index: the spool they append items' bytes to
        self._last_progress = 0.0
        show = self.options.progress
        self._show_progress = sys.stderr.isatty() if show is None else show

    # -- bookkeeping -----------------------------------------------------------------------

    def _reuse_plan(self) -> ReusePlan | None:
        """What the previous index can give this load: nothing when it holds no origins, or
        other hrefs than this load would write."""
        previous = self.options.previous
        if previous is None or previous.origins is None or not len(previous.origins):
            return None
        if (previous.hrefs_config or hrefs_config(LoadOptions())) != hrefs_config(self.options):
            return None
        plan = ReusePlan(previous, previous.origins, self.options.bucket_listings, self.options.listing_timeout)
        plan.check_all_soon(self.options.max_document_bytes, self.options.fetch_timeout, self.options.fetch_retries)
        return plan

    def skip(self, location: str, reason: str, kind: str) -> None:
        """``location`` not read or not used, with why (``kind``: one of SKIP_REASONS). During
        the walk, a root or child document's skip is a structural one (skip_structure)."""
        if self._walking and location in self._structural and location not in self._refused:
            self.skip_structure(location, reason, kind)
            return
        self.skip_item(location, reason, kind)

    def skip_item(self, location: str, reason: str, kind: str) -> None:
        """One item (or one part of a document) not used: an ordinary skip, even when the
        item came from a bulk file that is itself structural."""
        self.report.skipped += 1
        self.report.skipped_by_reason[kind] += 1
        if len(self.report.skips) < MAX_SKIPS_KEPT:
            self.report.skips.append((location, reason))
        log.warning("skipped %s: %s", location, reason)

    def skip_structure(self, location: str, reason: str, kind: str, items: int | None = None) -> None:
        """A catalog, collection or bulk file not read: an error, everything under it is missing."""
        self.report.skipped += 1
        self.report.skipped_by_reason[kind] += 1
        if len(self.report.skips) < MAX_SKIPS_KEPT:
            self.report.skips.append((location, reason))
        self.report.structure_skipped += 1
        if len(self.report.structure_skips) < MAX_SKIPS_KEPT:
            self.report.structure_skips.append(StructureSkip(location, reason, items))
        log.error("not read: %s: %s; everything under it is missing", location, reason)

    def _invalid_item(self, location: str, reason: str, duplicate: bool = False) -> None:
        """What the index builder drops after add_item (a geometry GEOS cannot read, too large;
        a duplicate, found when the index is built): an item's skip, even one from a bulk file
        indexed during the walk."""
        self.skip_item(location, reason, DUPLICATE if duplicate else INVALID_ITEM)

    def _invalid_json(self, location: str, reason: str) -> None:
        """What a format reader skips inside a document (a line of an ndjson file): an item's
        skip, not the document's."""
        self.skip_item(location, reason, INVALID_JSON)

    def _admit(self, location: str, ctx: Context, structural: bool = False, inside: bool = False) -> bool:
        """Whether a linked document should be read (in scope, new, within limits); ``inside``:
        it is known to be in scope (a plain relative path below an admitted local document)."""
        if location in self._seen or location in self._pending_items:
            return False
        refusal = None if inside else self.scope.refusal(location)
        if refusal is not None:  # the scope rules: policy, not a loss
            self.skip(location, refusal, OUT_OF_SCOPE)
            return False
        if ctx.depth > self.options.max_depth:
            refusal = f"nesting deeper than {self.options.max_depth}"
        elif self._documents >= self.options.max_documents:
            refusal = f"over the {self.options.max_documents} document limit"
        if refusal is not None:  # a limit cut the catalog short
            (self.skip_structure if structural else self.skip)(location, refusal, LIMIT)
            return False
        self._documents += 1
        if structural:  # an item link is the caller's to append to _pending_items: a member then
            self._seen.add(location)
            self._structural.add(location)
        return True

    def _check_real_path(self, path: str, real: str) -> str | None:
        """Called with where an opened file really is: refuse one a symlink took out of
        the roots, or one already read under its own name (a symlink alias)."""
        refusal = self.scope.real_refusal(real)
        if refusal is None and real != path:
            if real in self._seen or real in self._pending_items:
                refusal = f"{ALREADY_READ} {real} (a symlink leads here again)"
            else:
                self._seen.add(real)
                if self._aliases is not None:
                    self._aliases.append(real)
        if refusal is not None:
            self._refused.add(path)
        return refusal

    def _progress(self, force: bool = False) -> None:
        if not self._show_progress:
            return
        now = time.monotonic()
        if force or now - self._last_progress > 0.5:
            self._last_progress = now
            r = self.report
            print(
                f"\rloading: {r.catalogs} catalogs, {r.collections} collections, "
                f"{len(self.builder)} items, {r.skipped} skipped",
                end="\n" if force else "",
                file=sys.stderr,
                flush=True,
            )

    # -- the walk ----------------------------------------------------------------------------

    def load(self) -> tuple[Index, LoadReport]:
        try:
            return self._load()
        finally:
            self._inline_items.close()  # a load that failed: the items waiting are let go
            if self._reuse is not None:  # a load that failed: its background checks stop
                self._reuse.close()

    def _load(self) -> tuple[Index, LoadReport]:
        started = time.perf_counter()
        with paused_gc(), Fetcher(
            max_bytes=self.options.max_document_bytes,
            timeout=self.options.fetch_timeout,
            retries=self.options.fetch_retries,
            remote_cache=self.options.remote_cache,
            real_path_check=self._check_real_path,
            roots=tuple(self.roots),
            root_max_bytes=max(ROOT_MAX_BYTES, self._structure_limit),
            concurrency=self.options.fetch_concurrency,
            max_concurrency=self.options.fetch_max_concurrency,
        ) as fetcher, ThreadPoolExecutor(self.options.fetch_concurrency) as pool:
            self._fetcher = fetcher
            self._pool = pool
            # the item files a forked process indexed are logged (and their origins and rows'
            # labels kept) as their link's position, the location made from it when needed
            fetcher.sources.resolve = self._origins.resolve = self._pending_items.resolve
            fetcher.sources.join = self._pending_items.joined
            spool = getattr(self.options.item_spool, "name", None)
            if isinstance(spool, str):  # the joined paths in a file beside the snapshot, mapped (ItemLinks.joined)
                self._pending_items.spill_folder = os.path.dirname(os.path.abspath(spool))
            frontier = [(root, Context(None, 0)) for root in self.roots if self._admit(root, Context(None, 0), True)]
            limit = fetcher.root_max_bytes
            while frontier:
                frontier = self._walk_level(frontier, limit)
                limit = self._structure_limit
            self._walking = False
            self._name_homes()
            self._load_items()
            self._progress(force=True)
            # every document is read: the set of those seen goes before build() (its peak), not
            # after: a table of 16 B a slot, 2**24 slots (256 MiB) at 10M item files
            self._seen = set()
            self._pending_items.forget_members()  # its hashes and table (16 MiB at 1M item files)
            # the origins and the fingerprint made before build() (its peak), not after: their
            # locations then one buffer, the strings of the item files' paths (~150 B a file,
            # held by the origins and the log of files read) let go before it
            within = _FingerprintTail(fetcher.sources)
            origins = self._origins.settle(functools.partial(_read_stats, fetcher.sources), self._digests, within)
            fingerprint = within.fingerprint or Fingerprint.of(fetcher.sources, share=True)
            self._origins = OriginsBuilder()
            fetcher.sources.compact(fingerprint.paths)
            self._pending_items.clear()  # the item links' block: no location refers to it now
            self.builder.label_of = functools.partial(_row_location, origins, {})
            index = self.builder.build()
            self.report.sources = fetcher.sources
            index.origins = origins.placed(self.builder.positions)
            index.fingerprint = fingerprint
            if isinstance(self.builder, ReusingBuilder):
                self.report.reused = self.builder.reused
        self._forget_walk()
        release_free_memory()
        self.report.items = index.size
        self.report.collections = len(index.collections)
        self.report.seconds = time.perf_counter() - started
        self.report.hrefs_not_public = self.hrefs.not_public
        index.load_report = self.report.problems()
        index.asset_roots = tuple(self.hrefs.asset_roots)
        index.sample_hrefs = self.hrefs.sample_hrefs
        index.hrefs_config = hrefs_config(self.options)
        return index, self.report

    def _forget_walk(self) -> None:
        """Drop what only the walk needed (visited paths, resolved folders) before the
        memory is handed back."""
        self._seen = set()
        self._structural = set()
        self._reuse = None  # its map of a million locations
        self.builder = IndexBuilder(on_reject=self._invalid_item)

    def _walk_level(self, frontier: list[tuple[str, Context]], limit: int) -> list[tuple[str, Context]]:
        contexts = dict(frontier)
        following: list[tuple[str, Context]] = []
        now = []
        for location, ctx in frontier:
            reader = formats.by_name(location, self._media_types.get(location))
            if reader is not None and reader.items_only:
                self._bulk_items.append((location, ctx))  # holds no catalog or collection
                if ctx.collection is None:  # its items may belong to none: a home, in walk order
                    self._add_home(ctx.catalog or location)
            else:
                now.append(location)
        for location, docs in self._read_documents(now, limit):
            whole = formats.whole_document(docs)
            if isinstance(docs, formats.NdjsonValues):
                docs = self._ndjson_values(docs, contexts[location])
            try:
                for doc in docs:
                    following.extend(self._structure_document(location, doc, contexts[location], whole))
            except FormatError as exc:  # a bulk file that went wrong part way
                self.skip(location, str(exc), INVALID_JSON)
            self._check_soon()
            self._progress()
        return following

    def _check_soon(self) -> None:
        """A reload: the item files linked so far are checked in the background while the walk
        goes on (ReusePlan.check_soon)."""
        pending = self._pending_items
        if self._reuse is not None and not self._reuse.checking_all and len(pending) > self._checked_from:
            self._reuse.check_soon(list(pending.locations(self._checked_from)), self.options.max_document_bytes)
            self._checked_from = len(pending)

    # -- the lines of a large ndjson file, indexed by forked processes ---------------------------

    def _ndjson_values(self, values: formats.NdjsonValues, ctx: Context, linked: bool = False) -> Iterator[Any]:
        """The values of an ndjson file for the walk to handle (_structure_document), or of
        one an `item` link led to (``linked``: for _add_item), as it would have them all; but
        while they need nothing of this process but indexing (the common case: items of a
        loaded collection), their lines are indexed by forked processes (_index_lines_forked)
        and not handed out. In the order of the lines."""
        data, location = values.data, values.location
        count = parallel.processes(self.options.index_processes)
        if count < 2 or len(data) < LINES_MIN_BYTES or not parallel.forkable():
            yield from values  # one generator: no check between lines
            return
        at, number, forks = 0, 0, 0
        view, skip = memoryview(data), values.skip
        while at < len(data):
            if (forks < LINES_MAX_FORKS and len(data) - at >= LINES_MIN_BYTES
                    and self._lines_ready(location, ctx) and parallel.forkable()):
                forks += 1
                at, number = self._index_lines_forked(values, at, number, ctx, count, linked)
            # here, from the line the children stopped at (or while not ready), until forking can pay
            for line_number, line_start, line_end in formats.line_spans(data, at, number):
                try:
                    # as NdjsonValues does (a line at a time: where this stops is not known ahead)
                    yield exact_json.loads(view[line_start:line_end])
                except orjson.JSONDecodeError as exc:
                    skip(f"{location} line {line_number}", f"invalid JSON: {exc}")
                at, number = line_end + 1, line_number
                if (forks < LINES_MAX_FORKS and len(data) - at >= LINES_MIN_BYTES
                        and self._lines_ready(location, ctx)):
                    break
            else:
                return

    def _lines_ready(self, location: str, ctx: Context) -> bool:
        """Whether the next lines of a bulk file at ``location`` can be indexed elsewhere: no
        item waits for its collection (_inline_item), and an item of no collection has its home."""
        return not self._inline_items and (ctx.collection is not None or (ctx.catalog or location) in self._homes)

    def _plain_item(self, doc: Any, ctx: Context) -> bool:
        """Whether a value of a bulk file whose lines are ready (_lines_ready: the caller checks
        it once, as indexing plain items does not change it) is an item whose indexing changes
        nothing but the builder's rows and the skips (no home, no collection made, no item kept
        waiting, no reassignment): one a forked process may index (_index_lines_forked) with
        _index_plain."""
        if type(doc) is not dict or needs_migration(doc) or _kind(doc) != "Feature":
            return False
        declared = doc.get("collection")
        if declared is None:
            return ctx.collection is not None
        return type(declared) is str and declared in self.builder.collections and declared not in self._made

    def _index_lines_forked(self, values: formats.NdjsonValues, at: int, number: int, ctx: Context,
                            count: int, linked: bool = False) -> tuple[int, int]:
        """Index the lines of ``values`` from byte ``at`` (``number`` lines before it) in
        ``count`` forked processes, chunk by chunk, each chunk's rows appended here in order
        (IndexBuilder.add_chunk), its skips reported as they were met. Where the lines to
        read here start: the end, or a line a child did not index (not _plain_item), or the
        first chunk not received (a child died)."""
        data = values.data
        size = min(LINES_CHUNK_BYTES, max(LINES_MIN_CHUNK_BYTES, (len(data) - at) // (4 * count)))
        # the chunks' bounds only: their lines are counted by the children, each chunk's with
        # its result (not all here before forking: ~0.25 s per 600 MB file with both cores
        # idle, issue 18; nor here as each comes back: a mapped file's pages would be read into
        # this process too); a child counts up to a chunk only when it must name a line
        # (_index_lines)
        tasks: list[tuple[int, int]] = []
        start = at
        while start < len(data):
            newline = data.find(b"\n", start + size)
            end = len(data) if newline < 0 else newline + 1
            tasks.append((start, end))
            start = end
        location = values.location
        log.info("%s: indexing its lines in %d processes (%d chunks)", location, count, len(tasks))
        done, lines = 0, number
        counted = [at, number]  # (a byte where a line starts, the lines before it): each child's own
        with self._chunk_files(append=True), contextlib.closing(parallel.forked_map(
                tasks, count, lambda task: self._index_lines(values, task, counted, ctx, linked))) as results:
            for chunk, events, not_public, stop, newlines in results:
                self._take_chunk(chunk, events, not_public)
                if stop is not None:
                    return stop
                lines += newlines
                done += 1
        return (tasks[done][0], lines) if done < len(tasks) else (len(data), lines)

    def _index_lines(self, values: formats.NdjsonValues, task: tuple[int, int], counted: list[int], ctx: Context,
                     linked: bool = False) -> tuple[Chunk, list[tuple[bool, tuple[Any, ...]]], int, tuple[int, int] | None, int]:
        """In a forked process: index the lines of one chunk as the walk would (their values
        through _structure_document) into a builder of their own, until a value that is not
        a _plain_item. (The chunk's rows, the skips met, hrefs not made public, where the
        lines it left start: (byte, lines before) or None, the chunk's newlines.) ``counted``:
        this process's [byte, lines before it], before the chunk, moved up to it when a line
        must be named. ``linked``: the file is an item document (_add_items), its items
        placed under the tree node that linked it, as _add_item places them."""
        start, end = task
        path = self._chunk_file(f"lines-{start}")
        events = self._forked_builder(path)
        not_public = self.hrefs.not_public
        data, location, stop = values.data, values.location, None
        view = memoryview(data)

        def line(in_chunk: int) -> int:
            """The number in the file of the chunk's line ``in_chunk`` (from 1)."""
            if counted[0] != start:
                counted[1] += formats.newlines(data, counted[0], start)
                counted[0] = start
            return counted[1] + in_chunk

        ready, plain, loads = self._lines_ready(location, ctx), self._plain_item, formats.lines_loads(data, start, end)
        index = self._index_linked if linked else self._index_plain
        line_number, line_end = 0, start
        for line_number, line_start, line_end in formats.line_spans(data, start, 0, end):
            try:
                doc = loads(view[line_start:line_end])
            except orjson.JSONDecodeError as exc:
                self._invalid_json(f"{location} line {line(line_number)}", f"invalid JSON: {exc}")
                continue
            if not ready or not plain(doc, ctx):
                stop = (line_start, line(line_number) - 1)
                break
            # what _structure_document comes to for a plain item (its home is there already:
            # _lines_ready; _inline_item indexes it at once: nothing waits, its collection is known)
            index(doc, location, ctx)
        newlines = 0 if stop is not None else _chunk_newlines(data, start, end, line_number, line_end)
        return (self.builder.chunk(path), events, self.hrefs.not_public - not_public, stop,
                newlines)

    def _read_documents(self, locations: list[str], limit: int) -> Iterator[tuple[str, Iterable[Any]]]:
        """The parsed document(s) at each location, each read within ``limit`` bytes; what
        cannot be read or parsed is skipped."""
        if not self.options.map_bulk or not any(self._mappable(loc) for loc in locations):
            return self._parse_documents(self._fetcher.fetch_all(locations, limit, self._pool))
        return self._parse_documents(self._fetch_mapping(locations, limit))

    def _mappable(self, location: str) -> bool:
        """Whether a document is a local ndjson file by its name: one the forked indexing reads
        by its lines (_ndjson_values), so it may be mapped (LoadOptions.map_bulk). Remote ones
        are fetched as before (concurrently, from the pool)."""
        return not is_url(location) and formats.by_name(location, self._media_types.get(location)) is formats.NDJSON

    def _fetch_mapping(self, locations: list[str], limit: int) -> Iterator[tuple[str, Any, str | None]]:
        """fetch_all's results, in order, with the large local ndjson files mapped (issue 18:
        no read into fresh memory while the other cores wait; the forked children read the
        pages from the page cache). One whose first line is not a JSON object (read as one
        JSON document) is copied into bytes."""
        fetcher = self._fetcher
        for mapped, group in itertools.groupby(locations, self._mappable):
            if not mapped:
                yield from fetcher.fetch_all(list(group), limit, self._pool)
                continue
            for location in group:
                location, data, error = fetcher.map_result(location, limit, LINES_MIN_BYTES)
                if data is not None and not isinstance(data, bytes) and not formats.NDJSON.first_is_object(data):  # type: ignore[arg-type]
                    data = data[:]
                yield location, data, error

    def _parse_documents(self, fetched: Iterable[tuple[str, bytes | None, str | None]]
                         ) -> Iterator[tuple[str, Iterable[Any]]]:
        media_types = self._media_types
        for location, data, error in fetched:
            if data is None:
                self.skip(location, error or "unreadable", failure_reason(error or ""))
                continue
            if not self._walking and "://" in location:  # an item document: its MD5 for the next reload
                self._digests[location] = digest(data)
            try:
                docs = formats.read(location, data, self._invalid_json, media_types.get(location) if media_types else None)
            except FormatError as exc:
                self.skip(location, str(exc), INVALID_JSON)
                continue
            data = None  # a parsed document no longer needs its bytes (a bulk reader keeps its own)
            yield location, docs

    def _structure_document(self, location: str, doc: Any, ctx: Context, whole: bool = False) -> list[tuple[str, Context]]:
        """Index a catalog or collection and return the children to read next; keep the items
        it is or holds for later (``whole``: ``doc`` is the whole document at ``location``)."""
        if not isinstance(doc, dict):
            self.skip(location, "not a JSON object", NOT_STAC)
            return []
        if needs_migration(doc):
            links = doc.get("links")
            try:
                doc = migrate(doc)
            except UnsupportedVersion as exc:
                self.skip(location, str(exc), NOT_STAC)
                return []
            if isinstance(links, formats.LeanLinks):  # the item links kept bare stay with it
                doc["links"] = formats.LeanLinks.like(links, doc.get("links") or ())
        kind = _kind(doc)
        if kind in ("Feature", "FeatureCollection") and ctx.collection is None:
            self._add_home(ctx.catalog or location)
        if kind == "Feature":
            self._inline_item(doc, location, ctx, whole)
            return []
        if kind == "FeatureCollection":  # one inside a bulk file (a file that is one, its reader reads)
            try:
                features = formats.FEATURE_COLLECTION.features(doc)
            except FormatError as exc:
                self.skip(location, str(exc), INVALID_JSON)
                return []
            for feature in features:
                self._inline_item(feature, location, ctx, False)
            return []
        if kind not in ("Catalog", "Collection"):
            self.skip(location, "not a STAC catalog, collection or item", NOT_STAC)
            return []
        if not isinstance(doc.get("id"), str) or not doc["id"]:
            self.skip(location, f"{kind.lower()} without an id", MISSING_ID)
            return []
        collection_ctx = ctx.collection
        servable_doc = servable(doc, location, self.hrefs)
        servable_doc["type"] = kind
        if kind == "Collection":
            if not self.builder.add_collection(servable_doc):
                self.skip_structure(location, f"duplicate collection id {doc['id']!r}; kept the first", DUPLICATE,
                                    items=sum(1 for rel, _, _ in _links(doc) if rel == "item"))
                return []
            collection_ctx = doc["id"]
            node = self.builder.add_node(COLLECTION, doc["id"], ctx.node, source=self.hrefs.location(location))
        else:
            self.report.catalogs += 1
            self._catalogs[location] = {k: doc[k] for k in ("id", "title", "description") if k in doc}
            node = self.builder.add_node(CATALOG, doc["id"], ctx.node, servable_doc, self.hrefs.location(location))
        if not self.builder.root:
            self.builder.root = {k: doc.get(k) for k in ("id", "title", "description") if doc.get(k)}
        child_ctx = Context(collection_ctx, ctx.depth + 1, location if kind == "Catalog" else ctx.catalog, node)
        homeless = collection_ctx is None  # its items belong to no collection unless they name one
        children = []
        pending = self._pending_items
        admit = self._admit
        if kind == "Collection" and self.options.parquet_assets:
            for href in _parquet_assets(doc):  # its items, in bulk (stac-geoparquet's collection asset)
                target = resolve_href(location, href)
                self._media_types[target] = formats.GeoParquet.media_types[0]
                if admit(target, child_ctx, True):
                    children.append((target, child_ctx))
        folder = self._links_folder(location)
        plain = _PLAIN_RELATIVE.fullmatch
        links = doc.get("links")
        bulk = (folder is not None and isinstance(links, formats.LeanLinks) and not links.item_types
                and child_ctx.depth <= self.options.max_depth
                and self._documents + len(links.item_hrefs) < self.options.max_documents)
        for rel, href, media_type in _links(doc, lean=not bulk):  # one pass, no list of hrefs (a collection may link 250k items)
            # a plain relative path below the document: resolved and in scope as it is
            # (resolve_href and the scope's check cost ~5 us a link locally, ~12 remotely:
            # seconds for a million)
            inside = folder is not None and plain(href) is not None
            target = folder + (href[2:] if href.startswith("./") else href) if inside else resolve_href(location, href)  # type: ignore[operator]
            if media_type and isinstance(media_type, str) and media_type not in _PLAIN_JSON:
                self._media_types[target] = media_type  # a format the name may not say (formats.py)
            if rel == "child":
                if admit(target, child_ctx, True):
                    children.append((target, child_ctx))
            elif admit(target, child_ctx, False, inside):
                pending.append(target, child_ctx, folder or "")
                if homeless:
                    self._add_home(location)
                    homeless = False
        if bulk and self._admit_items(location, links.item_hrefs, child_ctx, folder) and homeless:  # type: ignore[arg-type]
            self._add_home(location)
        return children

    def _links_folder(self, location: str) -> str | None:
        """What a plain relative href (_PLAIN_RELATIVE) in the document at ``location`` is
        appended to, to give what resolve_href gives, in scope as the document is: a local
        document's folder; a remote one's location up to its last "/" when resolving there is
        only that (no query, fragment, empty or dot segment in its path; checked on one href)
        and the scope admits the document itself (a relative href keeps its origin). None:
        every href is resolved and checked on its own."""
        if not is_url(location):
            return os.path.join(os.path.dirname(location), "")
        folder = location[: location.rfind("/") + 1]
        if resolve_href(location, "x.json") != folder + "x.json" or self.scope.refusal(location) is not None:
            return None
        return folder

    def _admit_items(self, location: str, hrefs: list[str], ctx: Context, folder: str) -> bool:
        """A large document's item links (hrefs kept bare) admitted as _admit would, within
        the limits (the caller checked them), the plain relative ones without a call each: a
        million links took seconds. Whether any was admitted."""
        seen, pending, plain = self._seen, self._pending_items, _PLAIN_RELATIVE.fullmatch
        before, admitted = len(pending), 0
        targets = _plain_targets(folder, hrefs)
        if targets is not None and len(set(targets)) != len(targets):
            # a link repeated (bench/reload.py's added items, run after run): its first kept, as
            # below; not one call a link for the whole collection (2 of 4 250k-link ones, ~0.4 CPU-s)
            targets = list(dict.fromkeys(targets))
        if targets is not None and seen.isdisjoint(targets) and pending.disjoint(targets):
            # each new and plain: admitted at once (a 250k-link collection: 0.3 CPU-s -> 0.1)
            pending.extend_new(targets, ctx, folder)
            self._documents += len(targets)
            return len(targets) > 0
        for href in hrefs:
            if plain(href) is not None:
                target = folder + (href[2:] if href.startswith("./") else href)
                if target not in seen and target not in pending:
                    pending.append(target, ctx, folder)
                    admitted += 1
            else:
                target = resolve_href(location, href)
                if self._admit(target, ctx):
                    pending.append(target, ctx)
        self._documents += admitted
        return len(pending) > before

    # -- homes for items of no collection ------------------------------------------------------

    def _add_home(self, location: str) -> None:
        """``location`` (a plain catalog, or a root file of items) may hold items that belong
        to no collection: a collection is made for them, named from it (_name_homes)."""
        if location not in self._homes:
            self._homes[location] = self._catalogs.get(location, {})

    def _name_homes(self) -> None:
        """Give each home its collection id, in the order the walk met them, once every
        loaded collection's id is known: the catalog's id, or a root file's name without its
        extension; an id already taken gets -2, -3 ... (first free)."""
        taken = set(self.builder.collections) | set(self._home_ids.values())
        for location, catalog in self._homes.items():
            if location in self._home_ids:
                continue
            base = str(catalog["id"]) if catalog else _file_stem(location)  # a catalog has a non-empty id (checked)
            cid, n = base, 1
            while cid in taken:
                n += 1
                cid = f"{base}-{n}"
            taken.add(cid)
            self._home_ids[location] = cid

    def _home_collection(self, home: str) -> str:
        """The id of the collection made for the items of ``home``, made at its first item."""
        if home not in self._home_ids:  # not met by the walk (cannot happen): named now
            self._add_home(home)
            self._name_homes()
        cid = self._home_ids[home]
        if cid not in self._made:
            self._made.add(cid)
            catalog = self._homes[home]
            self.builder.add_collection(self._made_collection(cid, home, catalog), extent_from_items=True)
            self.report.made_collections[cid] = (f"catalog {catalog['id']!r}" if catalog else f"file {_file_name(home)!r}")
        return cid

    def _made_collection(self, cid: str, home: str, catalog: dict[str, Any]) -> dict[str, Any]:
        """A collection for the items of a catalog (or root file) that belong to none; its
        extent is computed from them when the index is built (IndexBuilder)."""
        name = str(catalog.get("title") or catalog.get("id")) if catalog else _file_name(home)
        what = f"the catalog {name!r}" if catalog else f"the file {name!r}"
        note = (f"Made by stac-static-api for the items of {what}, which belong to no collection; "
                f"its extent is computed from them.")
        description = catalog.get("description") if catalog else None
        doc: dict[str, Any] = {
            "type": "Collection",
            "stac_version": "1.0.0",  # the API's version (its items keep theirs)
            "id": cid,
            "title": name,
            "description": f"{description}\n\n{note}" if isinstance(description, str) and description else note,
            "license": "other",
            "extent": {"spatial": {"bbox": [[-180.0, -90.0, 180.0, 90.0]]}, "temporal": {"interval": [[None, None]]}},
            "links": [],
        }
        source = self.hrefs.location(home)
        if source is not None:
            doc["links"].append({"rel": "via", "href": source, "type": "application/json",
                                 "title": f"The {'catalog' if catalog else 'file'} these items come from"})
        return doc

    # -- items -----------------------------------------------------------------------------

    def _inline_item(self, item: Any, location: str, ctx: Context, whole: bool) -> None:
        """An item met during the walk (in a bulk file: ndjson, a FeatureCollection; or a root
        that is one). Indexed at once when the collection it goes to is already decided, so a
        bulk file of a million items is never a million dicts at once; kept until the walk is
        over otherwise, as bytes in a temporary file (waiting.py): it names a collection not
        loaded (yet: a later document may hold it), or it goes to a collection made for items
        of none, whose id is given once every loaded collection's is known (_name_homes). Once
        one waits, those after it wait too: items are indexed in the order they were read (of
        two with one id, the first is kept)."""
        if not self._inline_items and self._decided(item, ctx):
            self._add_item(item, location, ctx, whole, linked=False)
            self._progress()
        else:
            self._inline_items.append(item, location, ctx, whole)

    def _decided(self, item: Any, ctx: Context) -> bool:
        """Whether the collection an item goes to is known already (_collection_for)."""
        if not isinstance(item, dict):
            return True  # skipped in any case
        declared = item.get("collection")
        if declared is None:
            return ctx.collection is not None
        return not isinstance(declared, str) or (declared in self.builder.collections and declared not in self._made)

    def _load_items(self) -> None:
        for item, location, ctx, whole in self._inline_items.drain():
            self._add_item(item, location, ctx, whole, linked=False)
            self._progress()
        self._load_bulk()
        pending = self._pending_items
        if self._reuse is not None:
            self._load_items_reusing(pending)
            del pending[:]  # let go; the block stays until the origins are settled (_load)
            return
        # libcurl's batches stream in order with bounded memory: all items in one (no pause
        # between chunks, and large enough for a fetch process); a thread pool's map holds
        # every result of its batch, so chunks there
        del pending[: self._load_files_forked(pending)]  # what a child that died did not send is read below
        if forked_reader.usable(len(pending)) and self._fetcher.forkable(pending.locations()):
            done = self._load_items_forked(pending)
            del pending[:done]  # what a child that died did not send is read here
        size = ITEM_CHUNK
        if self._fetcher.batches_all(pending.locations()):
            size = max(1, len(pending))
        for start in range(0, len(pending), size):
            self._read_items(pending[start : start + size])
        del pending[:]

    def _read_items(self, chunk: list[tuple[str, Context]]) -> None:
        """Read the documents of these item links and index their items, in order."""
        contexts = iter(chunk)
        for location, docs in self._read_documents([loc for loc, _ in chunk], self.options.max_document_bytes):
            # in order; those skipped as unreadable are passed
            ctx = next(ctx for known, ctx in contexts if known == location)
            self._add_items(docs, location, ctx)
            self._progress()

    def _load_items_reusing(self, pending: ItemLinks[Context]) -> None:
        """The items of a reload with a previous index: an unchanged document's row is taken
        from it (ReusingBuilder.add_reused), the others are read, all in the order of their links
        (which of two items with one id is kept, and the tree's order, are as in a full load).
        Rows are told apart with arrays, runs of reusable ones taken at once: a million item
        links are no million calls."""
        plan = self._reuse
        assert plan is not None
        limit = self.options.max_document_bytes
        by_location = plan.by_location  # made while the lstat processes may still run
        checked_from = self._checked_from
        plan.check(list(pending.locations(checked_from)), limit, self.options.fetch_timeout,
                   self.options.fetch_retries)  # those before were given to check_soon during the walk
        found = plan.found  # the origins of pending[checked_from:] when the check looked them up
        # the rows whose item names the collection that served it, a loaded one (not made):
        # served under it again, nothing to decide per row
        homes = set(self._home_ids.values())
        name_ok = np.array([name in self.builder.collections and name not in homes and name not in plan.made
                            for name in plan.origins.names] + [False], dtype=bool)
        declared = plan.origins.declared
        settled = plan.unchanged & (plan.not_public_codes >= 0) & name_ok[declared] & (declared == plan.served_codes)
        for start in range(0, len(pending), REUSE_CHUNK):
            chunk = pending[start : start + REUSE_CHUNK]
            locations = [loc for loc, _ in chunk]
            taken = found[start - checked_from : start - checked_from + len(chunk)] \
                if found is not None and start >= checked_from else by_location.find(locations)
            known = taken >= 0
            fast = np.zeros(len(chunk), dtype=bool)
            fast[known] = settled[taken[known]]
            unchanged = np.zeros(len(chunk), dtype=bool)
            unchanged[known] = plan.unchanged[taken[known]]
            nodes = np.fromiter(map(_NODE, map(_CONTEXT, chunk)), dtype=np.int32, count=len(chunk))
            fetched = self._fetcher.fetch_all([loc for loc, same in zip(locations, unchanged.tolist()) if not same],
                                              limit, self._pool)
            run_from = 0
            for i in np.flatnonzero(~fast).tolist():
                location, ctx = chunk[i]
                o = int(taken[i])
                if unchanged[i] and self._reusable(o, location, ctx):
                    continue  # taken with the run it is in
                fetched_one = next(fetched) if not unchanged[i] else self._fetcher.fetch_result(location, limit)
                data = fetched_one[1]
                if data is None and known[i] and self._keep_unreadable(o, location, ctx, fetched_one[2]):
                    continue  # as the previous index read it: taken with the run it is in
                same = plan.same_bytes(o, data) if data is not None and "://" in location else -1
                if same >= 0 and self._reusable(same, location, ctx):
                    continue  # the same bytes as before (same is o): taken with the run it is in
                self._add_reused(taken[run_from:i], locations[run_from:i], nodes[run_from:i])
                run_from = i + 1
                for _, docs in self._parse_documents([fetched_one]):
                    self._add_items(docs, location, ctx)
                self._progress()
            self._add_reused(taken[run_from:], locations[run_from:], nodes[run_from:])
            self._progress()

    def _keep_unreadable(self, o: int, location: str, ctx: Context, error: str | None) -> bool:
        """Whether the item document at ``location``, which the serving index read (origin
        ``o``) and which could not be read now for a reason that may pass (an error status past
        the retries, the network, a timeout: not gone, not over a limit, not out of the roots),
        is served as then: a bucket's moment would otherwise take the item out of the API
        until the next reload (configured.load_index refuses the like for a catalog)."""
        error = error or "unreadable"
        if gone(error) or failure_reason(error) != UNREADABLE or not self._reusable(o, location, ctx):
            return False
        self.report.kept_unreadable += 1
        if len(self.report.kept_unreadable_items) < MAX_SKIPS_KEPT:
            self.report.kept_unreadable_items.append((location, error))
        log.warning("item document %s could not be read now (%s): served as the previous load read it", location, error)
        return True

    def _reusable(self, o: int, location: str, ctx: Context) -> bool:
        """Whether origin ``o``'s row is the one reading its (unchanged) document would make
        here: served under the same collection, made for items of none or not, as before. Counts
        what reading it would count (an item served under another collection than it names)."""
        plan = self._reuse
        assert plan is not None
        if plan.not_public[o] == UNKNOWN:
            return False
        declared = plan.declared[o]
        served = plan.served_under[o]
        reassigned = dict(self.report.reassigned)
        now = self._collection_for({"collection": declared} if declared is not None else {}, location, ctx)
        if now != served or (now in self._made) != (served in plan.made):
            self.report.reassigned = reassigned  # counted when it is read
            return False
        return True

    def _add_reused(self, taken: np.ndarray, locations: list[str], nodes: np.ndarray) -> None:
        """Rows of the previous index (origins ``taken``, at ``locations``, linked by the tree
        nodes ``nodes``) into the builder, as their documents would have been: what they count
        in the report, the files in the fingerprint, their origins."""
        if not len(taken):
            return
        plan = self._reuse
        assert plan is not None and isinstance(self.builder, ReusingBuilder)
        origins = plan.origins
        first = self.builder.rows
        # a duplicate among them is found, and reported by its location, when the index is built
        self.builder.add_reused(origins.positions[taken], nodes, locations)
        self.hrefs.not_public += int(origins.not_public[taken].sum())
        sizes = origins.sizes[taken]
        local = sizes >= 0
        sources = self._fetcher.sources
        if local.all():
            sources.paths.extend(locations)
        else:
            sources.paths.extend(loc for loc, is_local in zip(locations, local.tolist()) if is_local)
        sources.sizes.frombytes(sizes[local].tobytes())
        sources.mtimes.frombytes(origins.mtimes[taken][local].tobytes())
        self._origins.extend(first, locations, origins.declared[taken], origins.names, origins.not_public[taken],
                             origins.sizes[taken], origins.mtimes[taken], origins.digests[taken])

    def _add_items(self, docs: Any, location: str, ctx: Context) -> None:
        """Index the item documents read from one location; a bulk file that goes wrong part way
        is skipped from there, with its reason."""
        whole = formats.whole_document(docs)
        if isinstance(docs, formats.NdjsonValues):  # its lines indexed by forked processes where they can be
            docs = self._ndjson_values(docs, ctx, linked=True)
        try:
            for doc in docs:
                self._add_item(doc, location, ctx, whole)
        except FormatError as exc:
            self.skip(location, str(exc), INVALID_JSON)

    # -- item files read and indexed by forked processes ------------------------------------------

    def _load_files_forked(self, pending: ItemLinks[Context]) -> int:
        """Local item files read and indexed by forked processes, a chunk of links each in
        turn (as _index_lines_forked does for ndjson lines), appended here in order
        (_take_files): the index one process makes. A file a child cannot index alone (not a
        _plain_item: needing migration, not one item, naming a collection not loaded ...) is
        read here, in its place. How many of ``pending`` were handled (fewer if a child died)."""
        count = parallel.processes(self.options.index_processes)
        if (count < 2 or len(pending) < FILES_MIN_ITEMS or not parallel.forkable()
                or not self._fetcher.all_local(pending.locations())):
            return 0
        size = min(FILES_CHUNK, max(FILES_MIN_CHUNK, len(pending) // (4 * count)))
        tasks = [(start, min(start + size, len(pending))) for start in range(0, len(pending), size)]
        log.info("indexing %d item files in %d processes (%d chunks)", len(pending), count, len(tasks))
        done = 0
        with self._chunk_files(), contextlib.closing(
                parallel.forked_map(tasks, count, lambda task: self._index_files(pending, *task))) as results:
            for pieces in results:
                for piece in pieces:
                    if isinstance(piece, int):  # a file the child left
                        self._read_items(pending[piece : piece + 1])
                    elif not self._take_files(piece):
                        self._read_items(pending[piece.start : piece.end])
                done += 1
        return tasks[done][0] if done < len(tasks) else len(pending)

    def _index_files(self, pending: ItemLinks[Context], start: int, end: int) -> list[FilesPiece | int]:
        """In a forked process: read and index the item files ``pending[start:end]`` as
        _read_items would, into a builder of its own, leaving to this process's loader each
        file whose item is not a _plain_item (read here, it counts for nothing: it is read
        again there). The pieces in order: what was indexed (FilesPiece), the position of a
        file left."""
        fetcher, limit = self._fetcher, self.options.max_document_bytes
        aliases = self._aliases = []
        pieces: list[FilesPiece | int] = []
        first = start
        piece = self._files_piece(start)
        taken: list[str] = []  # the piece's links' locations, the str objects read (_as_positions)
        links = pending[start:end]
        # each file read when asked for, the next ones asked for ahead (LocalFiles.fetch_many)
        results = fetcher.fetch_all([location for location, _ in links], limit)
        for i, (location, ctx) in enumerate(links, start):
            taken.append(location)
            sources = fetcher.sources
            read, aliased = len(sources.paths), len(aliases)
            for _, docs in self._parse_documents([next(results)]):
                if (formats.whole_document(docs) and self._lines_ready(location, ctx)
                        and self._plain_item(docs[0], ctx)):  # type: ignore[index]
                    self._add_items(docs, location, ctx)
                    continue
                del sources.paths[read:], sources.sizes[read:], sources.mtimes[read:], aliases[aliased:]
                taken.pop()
                if i > first:
                    pieces.append(self._finish_piece(piece, i, aliases, taken))
                pieces.append(i)
                first = i + 1
                piece = self._files_piece(first)
                taken = []
        if end > first:
            pieces.append(self._finish_piece(piece, end, aliases, taken))
        return pieces

    def _files_piece(self, start: int) -> FilesPiece:
        """In a forked process: a builder, origins and log of files read of its own, for the
        item files from ``start``."""
        events = self._forked_builder(self._chunk_file(f"files-{start}"))
        self._origins = OriginsBuilder()
        self._fetcher.sources = SourceLog()
        return FilesPiece(start, 0, events, self.hrefs.not_public)

    def _finish_piece(self, piece: FilesPiece, end: int, aliases: list[str], taken: list[str]) -> FilesPiece:
        piece.end = end
        piece.chunk = self.builder.chunk(self._chunk_file(f"files-{piece.start}"))
        piece.not_public = self.hrefs.not_public - piece.not_public
        piece.origins, piece.sources = self._origins, self._fetcher.sources
        piece.aliases = aliases[:]
        aliases.clear()
        self._as_positions(piece, taken)
        return piece

    def _take_files(self, piece: FilesPiece) -> bool:
        """What a forked process indexed of some item files, appended here as if read here;
        False (nothing taken) when one of them was read through a symlink to a file an
        earlier chunk read too (a duplicate the child could not see): read them here."""
        if any(real in self._seen or real in self._pending_items for real in piece.aliases):
            return False
        self._seen.update(piece.aliases)
        first = self.builder.rows
        assert piece.chunk is not None and piece.origins is not None and piece.sources is not None
        if not isinstance(piece.chunk.labels, range):  # not as positions (_as_positions): strings
            _share_locations(piece)
        self._take_chunk(piece.chunk, piece.events, piece.not_public)
        self._origins.append(piece.origins, first)
        sources = self._fetcher.sources
        sources.paths.extend(piece.sources.paths)
        sources.sizes.extend(piece.sources.sizes)
        sources.mtimes.extend(piece.sources.mtimes)
        return True

    def _as_positions(self, piece: FilesPiece, taken: list[str]) -> None:
        """In a forked process: a piece whose files are its links (``taken``: the locations it
        read them at, the links' ``pending[i]``), each read once in order (the common case),
        sends its origins', log of files read's and rows' labels as its links' positions, one
        range, instead of the locations' strings: this process's loader keeps them so
        (ItemLinks.resolve gives them back), without unpickling a string an item file, comparing
        it with its link's and making it an int (~56 B an item file held through the load as an
        int in three lists: RunList, IndexBuilder._unlabeled)."""
        assert piece.origins is not None and piece.sources is not None and piece.chunk is not None
        own = piece.origins.locations
        if not own or len(own) != piece.end - piece.start or own != taken or piece.sources.paths != own:
            return
        positions = range(self._pending_items.position(piece.start), self._pending_items.position(piece.end))
        piece.origins.locations = RunList(positions)
        piece.sources.paths = RunList(positions)
        if piece.chunk.labels == own:
            piece.chunk.labels = positions

    def _load_items_forked(self, pending: ItemLinks[Context]) -> int:
        """Items read and made servable by a forked child (forked_reader), indexed
        here as they arrive; how many of ``pending`` were handled."""
        done = 0
        not_public, first_origin = self.hrefs.not_public, len(self._origins.rows)
        fetched = forked_reader.read_forked(list(pending.locations()), self._fetcher, self.hrefs)
        for position, kind, payload in fetched:
            location, ctx = pending[position]
            if kind == b"n":
                self._index_item(exact_json.loads(payload), location, ctx, True)
            else:
                raw = (location, payload, None) if kind == b"r" else (location, None, payload.decode())
                for _, docs in self._parse_documents([raw]):
                    self._add_items(docs, location, ctx)
            done = position + 1
            self._progress()
        if self.hrefs.not_public == not_public:  # the child counted no local href for any item: each has none
            for i in range(first_origin, len(self._origins.rows)):
                self._origins.not_public[i] = max(0, self._origins.not_public[i])
        return done

    def _bulk_limit(self, location: str) -> int:
        return self._fetcher.root_max_bytes if location in self._fetcher.roots else self._structure_limit

    def _read_bulk(self, location: str) -> tuple[str, bytes | None, str | None]:
        return self._fetcher.fetch_result(location, self._bulk_limit(location))

    def _bulk_values(self, location: str, data: bytes, skip: formats.Skip) -> Iterable[Any]:
        return formats.read(location, data, skip, self._media_types.get(location))

    def _bulk_failed(self, location: str, reason: str, kind: str) -> None:
        """A bulk file not read (or not to the end): a structural loss, unless the scope
        refused it (a symlink out of the roots), which is policy."""
        (self.skip_item if location in self._refused else self.skip_structure)(location, reason, kind)

    def _load_bulk(self) -> None:
        """The files of items only (stac-geoparquet) met during the walk, in order: each local
        one large enough indexed by forked processes (_index_parquet_forked), each run of the
        others between them read by a forked child while this process indexes
        (forked_reader.read_bulk_forked) where that can pay, else here, one file at a time.
        Each file is judged on its own: a small one does not stop the forking of those after it."""
        bulk, self._bulk_items = self._bulk_items, []
        run: list[tuple[str, Context]] = []
        for location, ctx in bulk:
            if self._parquet_forkable(location, ctx):
                self._load_bulk_run(run)  # the files before it first: items stay in file order
                run = []
                if self._index_parquet_forked(location, ctx):
                    continue
            run.append((location, ctx))
        self._load_bulk_run(run)

    def _load_bulk_run(self, bulk: list[tuple[str, Context]]) -> None:
        """Bulk files not indexed by forked processes: read by a forked child where that can
        pay, the rest (or what a child that died did not send) here."""
        done, had = 0, 0
        locations = [loc for loc, _ in bulk]
        if bulk and self._fetcher.all_local(locations) and forked_reader.usable_bulk(locations):
            done, had = self._load_bulk_forked(bulk)
        for location, ctx in bulk[done:]:
            skip_first, had = had, 0
            _, data, error = self._read_bulk(location)
            if data is None:
                self._bulk_failed(location, error or "unreadable", failure_reason(error or ""))
                continue
            try:
                for doc in self._bulk_values(location, data, self._invalid_json):
                    if skip_first:  # the forked child sent these before it died
                        skip_first -= 1
                        continue
                    self._add_item(doc, location, ctx, linked=False)
                    self._progress()
            except FormatError as exc:
                self._bulk_failed(location, str(exc), INVALID_JSON)

    def _parquet_forkable(self, location: str, ctx: Context) -> bool:
        """Whether the bulk file at ``location`` is one _index_parquet_forked indexes in forked
        processes: a local stac-geoparquet file of LINES_MIN_BYTES or more whose items can be
        indexed elsewhere, with processes to fork."""
        if (parallel.processes(self.options.index_processes) < 2
                or not isinstance(formats.by_name(location, self._media_types.get(location)), formats.GeoParquet)
                or not self._fetcher.all_local([location]) or not self._lines_ready(location, ctx)
                or not parallel.forkable()):
            return False
        try:
            return os.stat(location).st_size >= LINES_MIN_BYTES
        except OSError:
            return False  # the usual path reports it

    def _index_parquet_forked(self, location: str, ctx: Context) -> bool:
        """A local stac-geoparquet file's items (the caller checked _parquet_forkable) indexed by
        forked processes, a row group each in turn, appended here in order (as
        _index_lines_forked does for ndjson lines); the items from one a child did not index
        (not _plain_item) on, indexed here. Whether the file was handled (else the usual path
        reads it)."""
        count = parallel.processes(self.options.index_processes)
        reader = formats.by_name(location, self._media_types.get(location))
        if not isinstance(reader, formats.GeoParquet):  # the caller checked (_parquet_forkable)
            return False
        _, data, error = self._read_bulk(location)
        if data is None:
            self._bulk_failed(location, error or "unreadable", failure_reason(error or ""))
            return True
        try:
            groups = reader.row_groups(data, location)
        except FormatError:
            return False  # the usual path reports it (the file was read once more)
        log.info("%s: indexing its items in %d processes (%d row groups)", location, count, len(groups))
        tasks = _group_tasks(groups, count)
        before = 0
        with self._chunk_files(append=True), contextlib.closing(parallel.forked_map(
                tasks, count, lambda task: self._index_rows(reader, data, location, task, ctx))) as results:
            for (_, first, end), (chunk, events, not_public, stop, failure) in zip(tasks, results, strict=False):
                self._take_chunk(chunk, events, not_public)
                if failure is not None:
                    self._bulk_failed(location, failure, INVALID_JSON)
                    return True
                if stop is not None:
                    before += stop
                    break
                before += end - first
            else:
                if before == sum(groups):  # every row group received: nothing left to read
                    return True
        try:  # the rest here: from a value a child left, or the first row group not received
            for doc in itertools.islice(self._bulk_values(location, data, self._invalid_json), before, None):
                self._add_item(doc, location, ctx, linked=False)
                self._progress()
        except FormatError as exc:
            self._bulk_failed(location, str(exc), INVALID_JSON)
        return True

    def _index_rows(self, reader: formats.GeoParquet, data: bytes, location: str, task: tuple[int, int, int],
                    ctx: Context) -> tuple[Chunk, list[tuple[bool, tuple[Any, ...]]], int, int | None, str | None]:
        """In a forked process: index the items of one row group (``task``: the group, its first
        row and the end of the rows read: _group_tasks) as _load_bulk would, into a builder of
        its own, until one that is not a _plain_item. (The chunk's rows, the skips met, hrefs
        not made public, the items indexed when it stopped early, why the file could not be
        read further.)"""
        group, first, end = task
        path = self._chunk_file(f"group-{group}-{first}")
        events = self._forked_builder(path)
        not_public, done, failure = self.hrefs.not_public, 0, None
        ready = self._lines_ready(location, ctx)
        try:
            # assets as JSON text when their http(s) hrefs are served as written (servable keeps
            # them); json_only: the items are only made servable and serialized here
            for doc in reader.read_row_groups(data, location, [group], assets_json=bool(self.hrefs.as_written),
                                              json_only=True, rows=(first, end)):
                if not ready or not self._plain_item(doc, ctx):
                    return self.builder.chunk(path), events, self.hrefs.not_public - not_public, done, None
                self._index_plain(doc, location, ctx)
                done += 1
        except FormatError as exc:
            failure = str(exc)
        return self.builder.chunk(path), events, self.hrefs.not_public - not_public, None, failure

    def _forked_builder(self, json_path: str | None = None) -> list[tuple[bool, tuple[Any, ...]]]:
        """In a forked process: a builder of its own (given the collections), skips recorded
        (in the list returned) for this process's loader to report, no progress shown;
        ``json_path``: where its chunk() leaves the items' bytes (_chunk_file), written there
        as they come."""
        events: list[tuple[bool, tuple[Any, ...]]] = []
        self.skip_item = lambda *args: events.append((False, args))  # type: ignore[method-assign]
        self.skip_structure = lambda *args, **kw: events.append((True, (*args, *kw.values())))  # type: ignore[method-assign]
        self._show_progress = False
        collections = self.builder.collections
        self.builder = IndexBuilder(on_reject=self._invalid_item, json_path=json_path, json_append=self._append_to)
        self.builder.collections = collections
        return events

    @contextlib.contextmanager
    def _chunk_files(self, append: bool = False) -> Iterator[None]:
        """While forked processes index for a builder that spools the items' bytes (`index -o`):
        a private folder beside the spool, where each chunk's item bytes are left (_chunk_file)
        for _take_chunk to have the kernel copy into the spool, and removed. Through the pipe
        they were pickled, read, unpickled and written again (~3 us an item of this process's
        time, ~2 us of all: issue 18). Anything left (a child that died) goes with the folder.
        ``append``: no folder, the children append the bytes to the spool itself
        (IndexBuilder(json_append=...)), where this process's builder places them: for forked
        indexing during which this process writes no item's bytes of its own (lines, row groups;
        not item files, some of which it reads itself meanwhile). Bytes appended by a chunk that
        is not taken (a child that stopped early or died, and those ahead of it) stay in the
        file unused. Exit it after the children are ended."""
        spool = self.options.item_spool
        name = getattr(spool, "name", None)
        if not isinstance(name, str):
            yield
            return
        if append:
            self._append_to = os.path.abspath(name)
            try:
                yield
            finally:
                self._append_to = None
                self.builder.spool_appended()
            return
        self._chunk_folder = tempfile.mkdtemp(prefix=".chunks-", dir=os.path.dirname(os.path.abspath(name)))
        try:
            yield
        finally:
            shutil.rmtree(self._chunk_folder, ignore_errors=True)
            self._chunk_folder = None

    def _chunk_file(self, name: str) -> str | None:
        """In a forked process: where the chunk ``name`` leaves its items' bytes (_chunk_files), if anywhere."""
        return None if self._chunk_folder is None else os.path.join(self._chunk_folder, name)

    def _take_chunk(self, chunk: Chunk, events: list[tuple[bool, tuple[Any, ...]]], not_public: int) -> None:
        """What a forked process indexed (its rows, the skips it met, the hrefs it did not make
        public), appended here as if indexed here."""
        self.builder.add_chunk(chunk)
        if chunk.json_in is not None:
            os.unlink(chunk.json_in[0])
        for structural, args in events:
            (self.skip_structure if structural else self.skip_item)(*args)
        self.hrefs.not_public += not_public
        self._progress()

    def _load_bulk_forked(self, bulk: list[tuple[str, Context]]) -> tuple[int, int]:
        """Bulk files read by a forked child; (files finished, items already had of the next
        one, if the child died part way through it)."""
        done, had = 0, 0
        records = forked_reader.read_bulk_forked(
            [loc for loc, _ in bulk], self._read_bulk, self._bulk_values,
            lambda location: location in self._refused, self._fetcher, self.hrefs)
        for position, kind, payload in records:
            location, ctx = bulk[position]
            if kind == b"n":
                self._index_item(exact_json.loads(payload), location, ctx, linked=False)
            elif kind == b"v":
                self._add_item(exact_json.loads(payload), location, ctx, linked=False)
            elif kind in (b"k", b"x"):
                label, _, reason = payload.decode().partition("\0")
                self.skip_item(label, reason, INVALID_JSON)
            elif kind == b"e":
                reason = payload.decode()
                self.skip_structure(location, reason, failure_reason(reason))
            elif kind == b"f":
                self.skip_item(location, payload.decode(), OUT_OF_SCOPE)
            if kind == b"d":
                done, had = position + 1, 0
            elif kind in (b"n", b"v", b"x"):  # one value of the file
                had += 1
                self._progress()
        return done, had

    def _add_item(self, item: Any, location: str, ctx: Context, whole: bool = False, linked: bool = True) -> None:
        if not isinstance(item, dict):
            self.skip_item(location, "item is not a JSON object", NOT_STAC)
            return
        if needs_migration(item):
            try:
                item = migrate(item)
            except UnsupportedVersion as exc:
                self.skip_item(location, str(exc), NOT_STAC)
                return
        if _kind(item) != "Feature":
            self.skip_item(location, "expected an item (GeoJSON Feature)", NOT_STAC)
            return
        not_public = self.hrefs.not_public
        item = servable(item, location, self.hrefs)
        self._index_item(item, location, ctx, whole, linked, self.hrefs.not_public - not_public)

    def _index_plain(self, item: dict[str, Any], location: str, ctx: Context) -> None:
        """What _add_item comes to for a _plain_item of a bulk file (checked already)."""
        self._index_item(servable(item, location, self.hrefs), location, ctx, linked=False)

    def _index_linked(self, item: dict[str, Any], location: str, ctx: Context) -> None:
        """What _add_item comes to for a _plain_item of an ndjson file an `item` link led to."""
        self._index_item(servable(item, location, self.hrefs), location, ctx)

    def _index_item(self, item: dict[str, Any], location: str, ctx: Context, whole: bool = False,
                    linked: bool = True, not_public: int = UNKNOWN) -> None:
        """A servable item into the index, under the collection it resolves to (``whole``: it
        is the whole document at ``location``; ``linked``: an `item` link of the tree node
        ``ctx.node`` led to it, its place in the tree; ``not_public``: its local hrefs left as
        written, UNKNOWN when counted with others)."""
        declared = item.get("collection")
        collection = item["collection"] = self._collection_for(item, location, ctx)
        if collection is None:
            del item["collection"]
        elif whole and isinstance(collection, str) and collection in self._made:  # made: link where it comes from
            source = self.hrefs.location(location)
            if source is not None and isinstance(item.get("links"), list):
                item["links"].append({"rel": "alternate", "href": source, "type": "application/geo+json",
                                      "title": "The item's source document"})
        row = self.builder.rows
        try:
            self.builder.add_item(item, location, ctx.node if linked else NO_NODE)
            if whole and linked and (declared is None or isinstance(declared, str)):
                self._origins.add(row, location, declared, not_public)
        except ItemRejected as exc:
            self.skip_item(location, f"item {item.get('id')!r}: {exc}", DUPLICATE if exc.duplicate else INVALID_ITEM)

    def _collection_for(self, item: dict[str, Any], location: str, ctx: Context) -> str | None:
        """The item's own `collection` if that collection is loaded, else the nearest above,
        else the one made for the items of its catalog (or root file): every item is served
        under a collection, so /collections/{id}/items/{itemId} is its self link."""
        declared = item.get("collection")
        if declared is not None and not isinstance(declared, str):
            return declared  # no collection id (a list is not even hashable): the builder rejects the item
        if declared is not None and declared in self.builder.collections and declared not in self._made:
            return declared
        if declared is None and ctx.collection is not None:
            return ctx.collection
        served_under = ctx.collection if ctx.collection is not None else self._home_collection(ctx.catalog or location)
        if declared is not None and declared != served_under:
            log.info("%s: item names collection %r, which is not loaded; serving it under %r",
                     location, declared, served_under)
            key = (declared, served_under)
            self.report.reassigned[key] = self.report.reassigned.get(key, 0) + 1
        return served_under


@dataclass
class FilesPiece:
    """Item files ``start`` to ``end`` (positions in the item links) read and indexed by a
    forked process (Loader._index_files): its rows (Chunk), the skips met, hrefs not made
    public, the items' origins and the files read, and the real paths of those read through a
    symlink (for the duplicate check across chunks)."""

    start: int
    end: int
    events: list[tuple[bool, tuple[Any, ...]]]
    not_public: int
    chunk: Chunk | None = None
    origins: OriginsBuilder | None = None
    sources: SourceLog | None = None
    aliases: list[str] = field(default_factory=list)


def _share_locations(piece: FilesPiece) -> None:
    """The paths and rows' labels a forked process sent replaced by its origins' strings of the
    same value where they are other strings (pickle shares only the objects that were one in the
    child), so that each location is held once until the origins are settled: ~145 bytes an item
    file (1.4 GB at 10M). Compared as lists first (in C: the same objects, or equal), else
    looked up one by one."""
    assert piece.origins is not None and piece.sources is not None and piece.chunk is not None
    own = piece.origins.locations
    same: dict[Any, Any] | None = None
    holders: tuple[RunList, list[Any]] = (piece.sources.paths, piece.chunk.labels)  # type: ignore[assignment]  # (labels: not a range, the caller's)
    for holder in holders:
        if holder == own:
            holder[:] = own
        elif holder:
            if same is None:
                same = {loc: loc for loc in own}
            holder[:] = [same.get(loc, loc) for loc in holder]


def _chunk_newlines(data: bytes, start: int, end: int, last: int, last_end: int) -> int:
    """The newlines in ``data[start:end]``, a chunk whose last non-blank line (line_spans from
    ``start``) was its line ``last`` (0: none), ending at ``last_end``: that line's number
    counts the newlines before it, only the bytes after it are counted. Counting the whole
    chunk again (formats.newlines: a mapped file copied a MiB at a time) was ~5% of a forked
    child's CPU at 100k ndjson (py-spy, issue 18)."""
    if not last:
        return formats.newlines(data, start, end)
    if last_end >= end:  # the data's last line, without a newline
        return last - 1
    return last + formats.newlines(data, last_end + 1, end)


STATS_LOOKAHEAD = 64  # log entries _read_stats looks ahead before it looks a path up instead


def _read_stats(sources: SourceLog, paths: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(size, mtime) of each of ``paths`` as it was read, (-1, 0) for one not in the log of local
    files read (for the origins). The items' files were logged in the order their origins come
    in, so one forward pass over the log finds them (one further on than the next few entries
    by a scan in C: a reload's few files read among a million reused, where a map of them all
    took 0.3 s); only a path out of that order (or not local) is looked up in a map of the
    log, made then (a set and a dict of every path read cost ~200 MB at a million files, the
    rest of `index`'s peak being ~1 GB)."""
    logged, sizes, mtimes = sources.paths, sources.sizes, sources.mtimes
    n, at = len(logged), 0
    if paths and len(paths) <= n and tail_is(logged, n - len(paths), paths):  # every file in order (no slice: 80 MB at 10M files)
        # views, not copies: the caller copies them into its own arrays (16 B a file made and
        # let go at the settle's peak: 16 MB at 1M item files)
        return (np.frombuffer(sizes, dtype=np.int64)[n - len(paths):],
                np.frombuffer(mtimes, dtype=np.int64)[n - len(paths):])
    where: dict[str, int] | None = None
    out = array("q")  # size, mtime: in pairs
    for path in paths:
        end = min(n, at + STATS_LOOKAHEAD)
        i = at
        while i < end and logged[i] != path:
            i += 1
        if i == end and where is None and not (isinstance(path, str) and "://" in path):
            try:  # further on: found by a scan in C (a reload: a few files read among a million reused)
                i = logged.index(path, end)
                end = i + 1
            except ValueError:  # not after ``at``: looked up in the map from here on
                pass
        if i < end:
            at = i + 1
        else:
            if where is None:
                where = {p: j for j, p in enumerate(logged)}
            i = where.get(path, -1)
            if i < 0:
                out.extend((-1, 0))
                continue
        out.extend((sizes[i], mtimes[i]))
    pairs = np.frombuffer(out, dtype=np.int64).reshape(-1, 2) if out else np.zeros((0, 2), np.int64)
    return pairs[:, 0].copy(), pairs[:, 1].copy()


class _FingerprintTail:
    """The fingerprint of the files read, made as the origins are frozen so that their
    locations are a view of its paths (server.index.origins, written once in a snapshot) when
    the log's last paths are those locations: as when every item was read from a local file of
    its own, but for the files read out of the items' order (a reload reads its changed files
    ahead of the reused rows around them), put in the items' order here (the log's order
    means nothing else)."""

    REORDER_AT_MOST = 65_536  # files read by the load, at most, for that

    def __init__(self, sources: SourceLog) -> None:
        self.sources = sources
        self.fingerprint: Fingerprint | None = None

    def __call__(self, locations: Sequence[Any], sizes: np.ndarray, mtimes: np.ndarray, read: np.ndarray) -> np.ndarray | None:
        sources = self.sources
        skip = len(sources.paths) - len(locations)
        if skip < 0 or not self._in_order(skip, locations, sizes, mtimes, read):
            return None
        self.fingerprint = Fingerprint.of(sources, share=True)
        head = len("\n".join(sources.strings(sources.paths[:skip])).encode("utf-8", "surrogateescape")) + 1 if skip else 0
        return self.fingerprint.paths[head:]

    def _in_order(self, skip: int, locations: Sequence[Any], sizes: np.ndarray, mtimes: np.ndarray, read: np.ndarray) -> bool:
        """Whether the log's paths from ``skip`` are ``locations``, once those ``read`` (by
        this load, the others' logged in order as reused) are put in their place."""
        if tail_is(self.sources.paths, skip, locations):
            return True
        if len(read) > self.REORDER_AT_MOST:
            return False
        tail = self.sources.paths[skip:]
        picked = read.tolist()
        moved = {locations[i] for i in picked}
        others = np.ones(len(locations), dtype=bool)
        others[read] = False
        if list(itertools.filterfalse(moved.__contains__, tail)) != list(itertools.compress(locations, others.tolist())) \
                or Counter(filter(moved.__contains__, tail)) != Counter(locations[i] for i in picked):
            return False
        self.sources.paths[skip:] = locations  # the same files, each with its stats (those read: as logged)
        self.sources.sizes[skip:] = array("q", sizes.tobytes())
        self.sources.mtimes[skip:] = array("q", mtimes.tobytes())
        return True


def _row_location(origins: Origins, cache: dict[str, Any], row: int) -> str:
    """The location of builder row ``row`` from the settled origins (their positions are the
    builder's rows, ascending): a duplicate's label when its row kept an item link's position."""
    if "lines" not in cache:
        cache["lines"] = origins.location_list()
    k = int(np.searchsorted(origins.positions, row))
    lines: list[str] = cache["lines"]
    return lines[k] if k < len(lines) and k < len(origins.positions) and origins.positions[k] == row else f"row {row}"


def _file_name(location: str) -> str:
    return posixpath.basename(unquote(urlsplit(location).path)) if "://" in location else os.path.basename(location)


def _file_stem(location: str) -> str:
    """A root file's name without its extension (items.ndjson: items), for its made collection."""
    name = _file_name(location)
    return (name.rsplit(".", 1)[0] if "." in name[1:] else name) or "items"


def hrefs_config(options: LoadOptions) -> dict[str, Any]:
    """The href options a load applies (its index's hrefs_config): an index made with other
    ones holds other hrefs."""
    return {"public_hrefs": ["=".join(pair) for pair in options.public_hrefs], "serve_assets": options.serve_assets}


def load_catalogs(roots: Iterable[str], options: LoadOptions | None = None) -> tuple[Index, LoadReport]:
    """Load the roots into an Index. Raises LoadError when nothing at all was found."""
    loader = Loader(roots, options)
    try:
        index, report = loader.load()
    except BaseException:
        loader.builder.discard()
        raise
    if index.size == 0 and not index.collections and report.catalogs == 0:
        raise LoadError(f"nothing could be loaded from {', '.join(loader.roots)}: {report.summary()}")
    return index, report
