"""Walks static catalogs and fills an IndexBuilder.

Two phases: first the structure (catalogs and collections, level by level), so that every
collection is known before any item is indexed; then all items, fetched concurrently in
chunks. Anything unreadable is skipped with a reason; nothing stops the load.
"""

from __future__ import annotations

import ctypes
import gc
import glob
import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import orjson

from server.catalog import forked_reader
from server.catalog.fingerprint import Fingerprint
from server.catalog.locations import Scope, is_s3, is_url
from server.catalog.normalize import child_hrefs, resolve_href, servable
from server.catalog.sources import Fetcher, RemoteCache, SourceLog
from server.catalog.versions import UnsupportedVersion, migrate, needs_migration
from server.index import Index, IndexBuilder
from server.index.builder import ItemRejected

log = logging.getLogger("stac_static_api.loader")

ITEM_CHUNK = 512
MAX_SKIPS_KEPT = 1000


@dataclass
class LoadReport:
    catalogs: int = 0
    collections: int = 0
    items: int = 0
    skipped: int = 0
    seconds: float = 0.0
    skips: list[tuple[str, str]] = field(default_factory=list)
    sources: SourceLog | None = None  # the local files read, for snapshot fingerprints
    roots: list[str] = field(default_factory=list)  # the documents the load started from

    def summary(self) -> str:
        return (
            f"loaded {self.catalogs} catalogs, {self.collections} collections, {self.items} items; "
            f"skipped {self.skipped}; {self.seconds:.2f} s"
        )


@dataclass(frozen=True)
class Context:
    collection: str | None
    depth: int


@dataclass
class LoadOptions:
    max_document_bytes: int = 32 * 1024 * 1024
    max_documents: int = 5_000_000
    max_depth: int = 64
    fetch_concurrency: int = 32
    fetch_timeout: float = 20.0
    fetch_retries: int = 3
    allow_hosts: tuple[str, ...] = ()
    allow_outside_root: bool = False
    progress: bool | None = None  # None: when stderr is a terminal
    remote_cache: RemoteCache | None = None  # kept across reloads for conditional requests


def release_free_memory() -> None:
    """Collect what the load left behind and hand freed heap pages back to the OS, so the
    resident size reflects the index rather than the load's transient documents."""
    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


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
    for depth in range(1, 6):
        pattern = os.path.join(path, *(["*"] * depth))
        found = sorted(
            p for name in ("catalog.json", "collection.json") for p in glob.glob(os.path.join(pattern, name))
        )
        if found:
            return found
    return [path]


def _ndjson_lines(data: bytes) -> Iterator[tuple[int, memoryview]]:
    """(line number, line) of newline-delimited JSON, without copying the whole file."""
    view = memoryview(data)
    start, number = 0, 0
    while start < len(data):
        end = data.find(b"\n", start)
        end = len(data) if end < 0 else end
        number += 1
        if data[start:end].strip():
            yield number, view[start:end]
        start = end + 1


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
        self.report = LoadReport(roots=list(self.roots))
        self.builder = IndexBuilder(on_reject=self.skip)
        self._seen: set[str] = set()
        self._documents = 0
        self._pending_items: list[tuple[str, Context]] = []
        self._inline_items: list[tuple[dict[str, Any], str, Context]] = []
        self._last_progress = 0.0
        show = self.options.progress
        self._show_progress = sys.stderr.isatty() if show is None else show

    # -- bookkeeping -----------------------------------------------------------------------

    def skip(self, location: str, reason: str) -> None:
        self.report.skipped += 1
        if len(self.report.skips) < MAX_SKIPS_KEPT:
            self.report.skips.append((location, reason))
        log.warning("skipped %s: %s", location, reason)

    def _admit(self, location: str, ctx: Context) -> bool:
        """Whether a linked document should be read (in scope, new, within limits)."""
        key = location
        if key in self._seen:
            return False
        refusal = self.scope.refusal(location)
        if refusal is None and ctx.depth > self.options.max_depth:
            refusal = f"nesting deeper than {self.options.max_depth}"
        if refusal is None and self._documents >= self.options.max_documents:
            refusal = f"over the {self.options.max_documents} document limit"
        if refusal is not None:
            self.skip(location, refusal)
            return False
        self._seen.add(key)
        self._documents += 1
        return True

    def _check_real_path(self, path: str, real: str) -> str | None:
        """Called with where an opened file really is: refuse one a symlink took out of
        the roots, or one already read under its own name (a symlink alias)."""
        refusal = self.scope.real_refusal(real)
        if refusal is None and real != path:
            if real in self._seen:
                return f"already read as {real} (a symlink leads here again)"
            self._seen.add(real)
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
        started = time.perf_counter()
        with Fetcher(
            max_bytes=self.options.max_document_bytes,
            timeout=self.options.fetch_timeout,
            retries=self.options.fetch_retries,
            remote_cache=self.options.remote_cache,
            real_path_check=self._check_real_path,
            roots=tuple(self.roots),
            concurrency=self.options.fetch_concurrency,
        ) as fetcher, ThreadPoolExecutor(self.options.fetch_concurrency) as pool:
            self._fetcher = fetcher
            self._pool = pool
            frontier = [(root, Context(None, 0)) for root in self.roots if self._admit(root, Context(None, 0))]
            while frontier:
                frontier = self._walk_level(frontier)
            self._load_items()
            self._progress(force=True)
            index = self.builder.build()
            self.report.sources = fetcher.sources
            index.fingerprint = Fingerprint.of(fetcher.sources)
        self._forget_walk()
        release_free_memory()
        self.report.items = index.size
        self.report.collections = len(index.collections)
        self.report.seconds = time.perf_counter() - started
        return index, self.report

    def _forget_walk(self) -> None:
        """Drop what only the walk needed (visited paths, resolved folders) before the
        memory is handed back."""
        self._seen = set()
        self.builder = IndexBuilder(on_reject=self.skip)

    def _fetch_all(self, locations: list[str]) -> Iterator[tuple[str, bytes | None, str | None]]:
        read = self._fetcher.fetch_result
        if not any(is_url(loc) for loc in locations):
            # local disks gain nothing from threads here, and pay for the hand-offs
            yield from map(read, locations)
        elif self._fetcher.batches and not any(is_s3(loc) for loc in locations):
            # http(s) through libcurl: many in flight from this thread, parsed as they arrive
            yield from self._fetcher.fetch_many(locations)
        else:
            yield from self._pool.map(read, locations)

    def _walk_level(self, frontier: list[tuple[str, Context]]) -> list[tuple[str, Context]]:
        contexts = dict(frontier)
        following: list[tuple[str, Context]] = []
        for location, docs in self._read_documents([loc for loc, _ in frontier]):
            for doc in docs:
                following.extend(self._structure_document(location, doc, contexts[location]))
            self._progress()
        return following

    def _read_documents(self, locations: list[str]) -> Iterator[tuple[str, Iterable[Any]]]:
        """The parsed document(s) at each location; what cannot be read or parsed is skipped."""
        return self._parse_documents(self._fetch_all(locations))

    def _parse_documents(self, fetched: Iterable[tuple[str, bytes | None, str | None]]
                         ) -> Iterator[tuple[str, Iterable[Any]]]:
        for location, data, error in fetched:
            if data is None:
                self.skip(location, error or "unreadable")
                continue
            try:
                yield location, [orjson.loads(data)]
            except orjson.JSONDecodeError as exc:
                lines = _ndjson_lines(data)
                first = next(lines, None)
                try:
                    head = orjson.loads(first[1]) if first is not None else None
                except orjson.JSONDecodeError:
                    head = None
                if not isinstance(head, dict):
                    self.skip(location, f"invalid JSON: {exc}")
                    continue
                yield location, self._ndjson_documents(location, head, lines)

    def _ndjson_documents(self, location: str, head: dict[str, Any],
                          lines: Iterator[tuple[int, memoryview]]) -> Iterator[Any]:
        """One parsed document at a time: a bulk file of a million items never becomes a
        list of a million dicts. A line that is not JSON is skipped with its number."""
        yield head
        for number, line in lines:
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                self.skip(f"{location} line {number}", f"invalid JSON: {exc}")

    def _structure_document(self, location: str, doc: Any, ctx: Context) -> list[tuple[str, Context]]:
        if not isinstance(doc, dict):
            self.skip(location, "not a JSON object")
            return []
        if needs_migration(doc):
            try:
                doc = migrate(doc)
            except UnsupportedVersion as exc:
                self.skip(location, str(exc))
                return []
        kind = _kind(doc)
        if kind == "Feature":
            self._inline_items.append((doc, location, ctx))
            return []
        if kind == "FeatureCollection":
            features = doc.get("features")
            if not isinstance(features, list):
                self.skip(location, "FeatureCollection without a features array")
                return []
            for feature in features:
                self._inline_items.append((feature, location, ctx))
            return []
        if kind not in ("Catalog", "Collection"):
            self.skip(location, "not a STAC catalog, collection or item")
            return []
        if not isinstance(doc.get("id"), str) or not doc["id"]:
            self.skip(location, f"{kind.lower()} without an id")
            return []
        collection_ctx = ctx.collection
        if kind == "Collection":
            collection = servable(doc, location)
            collection["type"] = "Collection"
            if self.builder.add_collection(collection):
                collection_ctx = doc["id"]
            else:
                self.skip(location, f"duplicate collection id {doc['id']!r}; kept the first")
                return []
        else:
            self.report.catalogs += 1
        if not self.builder.root:
            self.builder.root = {k: doc.get(k) for k in ("id", "title", "description") if doc.get(k)}
        child_ctx = Context(collection_ctx, ctx.depth + 1)
        children = []
        for href in child_hrefs(doc, ("child",)):
            target = resolve_href(location, href)
            if self._admit(target, child_ctx):
                children.append((target, child_ctx))
        for href in child_hrefs(doc, ("item",)):
            target = resolve_href(location, href)
            if self._admit(target, child_ctx):
                self._pending_items.append((target, child_ctx))
        return children

    # -- items -----------------------------------------------------------------------------

    def _load_items(self) -> None:
        for item, location, ctx in self._inline_items:
            self._add_item(item, location, ctx)
        self._inline_items.clear()
        pending = self._pending_items
        # libcurl's batches stream in order with bounded memory: all items in one (no pause
        # between chunks, and large enough for a fetch process); a thread pool's map holds
        # every result of its batch, so chunks there
        if forked_reader.usable(len(pending)) and not any(is_url(loc) for loc, _ in pending):
            done = self._load_items_forked(pending)
            del pending[:done]  # what a child that died did not send is read here
        size = ITEM_CHUNK
        if self._fetcher.batches and not any(is_s3(loc) for loc, _ in pending):
            size = max(1, len(pending))
        for start in range(0, len(pending), size):
            chunk = pending[start : start + size]
            contexts = iter(chunk)
            for location, docs in self._read_documents([loc for loc, _ in chunk]):
                # in order; those skipped as unreadable are passed
                ctx = next(ctx for known, ctx in contexts if known == location)
                for doc in docs:
                    self._add_item(doc, location, ctx)
                self._progress()
        pending.clear()

    def _load_items_forked(self, pending: list[tuple[str, Context]]) -> int:
        """Local items read and made servable by a forked child (forked_reader), indexed
        here as they arrive; how many of ``pending`` were handled."""
        done = 0
        fetched = forked_reader.read_forked([loc for loc, _ in pending], self._fetcher.fetch_result,
                                            self._fetcher.sources)
        for position, kind, payload in fetched:
            location, ctx = pending[position]
            if kind == b"n":
                self._index_item(orjson.loads(payload), location, ctx)
            else:
                raw = (location, payload, None) if kind == b"r" else (location, None, payload.decode())
                for _, docs in self._parse_documents([raw]):
                    for doc in docs:
                        self._add_item(doc, location, ctx)
            done = position + 1
            self._progress()
        return done

    def _add_item(self, item: Any, location: str, ctx: Context) -> None:
        if not isinstance(item, dict):
            self.skip(location, "item is not a JSON object")
            return
        if needs_migration(item):
            try:
                item = migrate(item)
            except UnsupportedVersion as exc:
                self.skip(location, str(exc))
                return
        if _kind(item) != "Feature":
            self.skip(location, "expected an item (GeoJSON Feature)")
            return
        self._index_item(servable(item, location), location, ctx)

    def _index_item(self, item: dict[str, Any], location: str, ctx: Context) -> None:
        """A servable item into the index, under the collection it resolves to."""
        item["collection"] = self._collection_for(item, location, ctx)
        if item["collection"] is None:
            del item["collection"]
        try:
            self.builder.add_item(item, location)
        except ItemRejected as exc:
            self.skip(location, f"item {item.get('id')!r}: {exc}")

    def _collection_for(self, item: dict[str, Any], location: str, ctx: Context) -> str | None:
        """The item's own `collection` if that collection is loaded, else the nearest above,
        else none: every collection an item names must resolve to /collections/{id}."""
        declared = item.get("collection")
        if declared is not None and not isinstance(declared, str):
            return declared  # no collection id (a list is not even hashable): the builder rejects the item
        if declared is None or declared in self.builder.collections:
            return declared if declared is not None else ctx.collection
        if ctx.collection is not None:
            log.info(
                "%s: item names collection %r, which is not loaded; using its parent %r",
                location, declared, ctx.collection,
            )
            return ctx.collection
        log.info("%s: item names collection %r, which is not loaded; served without one", location, declared)
        return None


def load_catalogs(roots: Iterable[str], options: LoadOptions | None = None) -> tuple[Index, LoadReport]:
    """Load the roots into an Index. Raises LoadError when nothing at all was found."""
    loader = Loader(roots, options)
    index, report = loader.load()
    if index.size == 0 and not index.collections and report.catalogs == 0:
        raise LoadError(f"nothing could be loaded from {', '.join(loader.roots)}: {report.summary()}")
    return index, report
