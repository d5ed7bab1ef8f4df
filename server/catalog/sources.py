"""Reading the bytes of one document, locally, over HTTP or from S3, within a size limit: one
Source class per URL scheme (LocalFiles, HttpSource, S3Source), registered by scheme; the
Fetcher hands each location to its Source and a batch of them to their common Source.

A Source also downloads one large file (a published index snapshot) to a writer as its bytes
arrive, conditionally (ETag / Last-Modified of the copy held), and S3 uploads one (the
builder's `index -o s3://...`).

Remote documents: with pycurl installed, batches through libcurl's multi interface
(curl.py; large ones in a child process, fetch_worker.py): measured against nginx on
loopback, ~50,000 documents/s from one thread. Without it, one urllib3 PoolManager
(connection pooling, timeouts) used from the loader's threads: ~4,200 documents/s with 16
threads (httpx: ~2,100/s). Both follow the same rules (timeouts, retries, size limits, no
redirects, conditional requests with the RemoteCache).
"""

from __future__ import annotations

import collections
import mmap
import os
import stat
import threading
import time
from array import array
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any, Protocol

import urllib3
from cachetools import LRUCache

from server import metrics
from server.catalog.conditional import validator_headers
from server.index.runs import RunList

try:  # libcurl's multi interface: many remote documents at once for little Python (curl.py)
    from server.catalog.curl_pool import CurlPool
except ImportError:  # pycurl not installed: urllib3 from the loader's threads
    CurlPool = None  # type: ignore[assignment,misc]


class FetchError(Exception):
    """The document could not be read; the message says why."""


OVER_LIMIT = "byte limit"  # what every size limit's message says (the loader's skip reason too_large)
READ_BYTES = 1 << 16  # a body is read this much at a time at most, its deadline checked between


def read_within(response: urllib3.BaseHTTPResponse, limit: int, deadline: float,
                late: Callable[[], FetchError]) -> bytes:
    """The body of ``response``: FetchError past ``limit`` bytes, ``late()`` raised once
    time.monotonic() passes ``deadline``. Read a read1() at a time (what one read of the
    socket gives, READ_BYTES at most), so that a server sending its bytes slowly, each within
    the per-read timeout, meets the deadline between reads: stream() and read(n) wait to fill
    their n bytes (a 40-byte body a byte every 0.1 s: one chunk after 4 s). Given up, the
    response is closed: draining the rest to reuse the connection would wait for it all."""
    chunks: list[bytes] = []
    total = 0
    while True:
        if time.monotonic() > deadline:
            response.close()
            raise late()
        chunk = response.read1(READ_BYTES)
        if not chunk:
            return b"".join(chunks)
        total += len(chunk)
        if total > limit:
            response.close()
            raise FetchError(f"response over the {limit} {OVER_LIMIT}")
        chunks.append(chunk)


class SourceLog:
    """Every local file read, with the size and mtime it had: a snapshot's fingerprint."""

    def __init__(self) -> None:
        # a path, or (the loader's item files indexed by a forked process) the position of its
        # item link, an int the loader's ItemLinks gives the path of: no string held a file
        # through the load (~150 B each), and a chunk's positions held as one range (RunList);
        # ``resolve`` makes such a list's strings
        self.paths = RunList()
        self.sizes = array("q")
        self.mtimes = array("q")
        self._joined: Any = None  # compact(): the paths as one buffer
        self.resolve: Callable[[Sequence[Any]], list[str]] | None = None
        # the paths joined by the loader's ItemLinks in its own block when they are its links
        # in order (ItemLinks.joined), else None: not made a second time beside it
        self.join: Callable[[Sequence[Any]], Any] | None = None

    def add(self, path: str, size: int, mtime_ns: int) -> None:
        self.paths.append(path)
        self.sizes.append(size)
        self.mtimes.append(mtime_ns)

    def joined_paths(self, part: int = 8192) -> bytearray:
        """The paths newline-joined as UTF-8 bytes, made a part at a time: "\n".join(paths)
        then .encode() held the text twice at once (~100 MB each at 1M item files)."""
        paths = self.paths
        joined = self.join(paths) if self.join is not None else None
        if joined is not None:
            return joined
        out = bytearray()
        for start in range(0, len(paths), part):
            if start:
                out += b"\n"
            out += "\n".join(self.strings(paths[start : start + part])).encode("utf-8", "surrogateescape")
        return out

    def compact(self, joined: Any) -> None:
        """The paths given up for ``joined`` (the same paths newline-joined as UTF-8 bytes: a
        Fingerprint's), once no more files are read: a buffer instead of a string a file
        (~150 B each, ~1.5 GB at 10M item files) through the index's build."""
        self.paths = RunList()
        self._joined = joined
        self.resolve = self.join = None

    def strings(self, paths: Sequence[Any]) -> list[str]:
        return self.resolve(paths) if self.resolve is not None else list(paths)

    def path_list(self) -> list[str]:
        """The paths of the files read (those given up for a buffer by ``compact`` too)."""
        if self._joined is None or self.paths or not len(self.sizes):
            return self.strings(self.paths)
        return bytes(self._joined).decode("utf-8", "surrogateescape").split("\n")


def s3_client(timeout: float, retries: int) -> Any:
    try:
        import boto3  # noqa: PLC0415 - optional: only s3:// roots need it ([s3] extra)
        import botocore.config  # noqa: PLC0415
        from botocore import UNSIGNED  # noqa: PLC0415
    except ImportError:
        raise FetchError("s3:// needs boto3: pip install 'stac-static-api[s3]'") from None
    session = boto3.session.Session()
    options: dict[str, Any] = {
        "connect_timeout": timeout, "read_timeout": timeout,
        "retries": {"max_attempts": retries + 1, "mode": "standard"}, "max_pool_connections": 64,
    }
    if session.get_credentials() is None:
        options["signature_version"] = UNSIGNED  # a public bucket
    return session.client("s3", config=botocore.config.Config(**options))


class RemoteCache:
    """Remote documents with their ETag / Last-Modified, kept across reloads (bounded by
    bytes), so a reload asks "changed since?" and a 304 costs no transfer."""

    def __init__(self, max_bytes: int = 256 * 1024 * 1024) -> None:
        self._entries = self._new_entries(max_bytes)
        self._lock = threading.Lock()
        self.revalidated = 0

    @staticmethod
    def _new_entries(max_bytes: int) -> LRUCache[str, tuple[str | None, str | None, bytes]]:
        return LRUCache(maxsize=max_bytes, getsizeof=lambda entry: len(entry[2]) + 256)

    def conditional_headers(self, url: str) -> dict[str, str]:
        with self._lock:
            entry = self._entries.get(url)
        if entry is None:
            return {}
        return validator_headers(entry[0], entry[1])

    def cached_body(self, url: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(url)
            if entry is not None:
                self.revalidated += 1
        return None if entry is None else entry[2]

    def __getstate__(self) -> dict[str, Any]:  # to a reload's child process and back
        with self._lock:  # a lambda (getsizeof) does not pickle: the entries go as a list
            return {"max_bytes": self._entries.maxsize, "entries": list(self._entries.items()),
                    "revalidated": self.revalidated}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._entries = self._new_entries(state["max_bytes"])
        for url, entry in state["entries"]:
            self._entries[url] = entry
        self.revalidated = state["revalidated"]
        self._lock = threading.Lock()

    def replace_with(self, other: RemoteCache) -> None:
        with self._lock:
            self._entries, self.revalidated = other._entries, other.revalidated

    def store(self, url: str, response: urllib3.BaseHTTPResponse, body: bytes) -> None:
        self.store_validators(url, response.headers.get("etag"), response.headers.get("last-modified"), body)

    def store_validators(self, url: str, etag: str | None, modified: str | None, body: bytes) -> None:
        if (etag or modified) and len(body) < self._entries.maxsize:
            with self._lock:
                self._entries[url] = (etag, modified, body)


class Writer(Protocol):
    def write(self, data: bytes, /) -> object: ...


@dataclass(frozen=True)
class Download:
    """What a download found: a new body (written to the writer, ``size`` bytes, with its
    validators) or, for a conditional request, that the copy held is current."""

    modified: bool
    etag: str | None = None
    last_modified: str | None = None
    size: int = 0


DOWNLOAD_CHUNK = 1 << 20


Result = tuple[str, "bytes | None", "str | None"]  # (location, body, None) or (location, None, reason)


class _RecordingCache:
    """A forked reader's view of the RemoteCache (its copy, from the fork): validators to
    send and bodies a 304 stands for as usual, but new validators are recorded for the
    parent (``received``), whose cache is the one that lasts, and so are the 304s answered."""

    def __init__(self, cache: RemoteCache) -> None:
        self.cache = cache
        self.received: dict[str, tuple[str | None, str | None]] = {}
        self.revalidated = 0

    def conditional_headers(self, url: str) -> dict[str, str]:
        return self.cache.conditional_headers(url)

    def cached_body(self, url: str) -> bytes | None:
        body = self.cache.cached_body(url)
        if body is not None:
            self.revalidated += 1
        return body

    def store_validators(self, url: str, etag: str | None, modified: str | None, body: bytes) -> None:
        if etag or modified:
            self.received[url] = (etag, modified)


class Source:
    """How documents of some URL schemes are read: ``fetch`` one within a byte limit, or
    ``fetch_many`` in order (concurrently where the scheme gains from it: from the loader's
    threads, or libcurl's own batches). One instance per Fetcher and class, made on first use;
    it shares the Fetcher's settings (timeouts, retries, the caches, the files-read log).

    A new scheme is one subclass with its ``schemes`` and ``fetch``, and ``@register_source``."""

    schemes: tuple[str, ...] = ()
    local = False  # files on this machine: a forked process may open a bulk file by its path itself
    batches = False  # fetch_many reads concurrently by itself: one batch may hold them all
    forkable = False  # a forked reader may read them (files; or libcurl's own session there)

    def __init__(self, fetcher: Fetcher) -> None:
        self.fetcher = fetcher

    def fetch(self, location: str, limit: int) -> bytes:
        raise NotImplementedError

    def fetch_many(self, locations: Sequence[str], limit: int, pool: Executor | None) -> Iterator[Result]:
        """Each location's result, in order; concurrently from ``pool`` when given."""
        def read(location: str) -> Result:
            try:
                return location, self.fetch(location, limit), None
            except FetchError as exc:
                return location, None, str(exc)

        return map(read, locations) if pool is None else pool.map(read, locations)

    def download(self, location: str, sink: Writer, etag: str | None = None,
                 last_modified: str | None = None) -> Download:
        """The whole body of ``location`` written to ``sink`` as it arrives, whatever its size
        (each read within the timeout); with a validator of the copy held, only if changed."""
        raise FetchError(f"cannot download {location}: not a remote URL (http, https, s3)")

    def upload(self, path: str, location: str) -> None:
        raise FetchError(f"cannot upload to {location}: only s3:// destinations are written "
                         "(for http, upload the file with your own tool)")

    def close(self) -> None:
        pass


_SOURCES: dict[str, type[Source]] = {}


def register_source(cls: type[Source]) -> type[Source]:
    for scheme in cls.schemes:
        _SOURCES[scheme] = cls
    return cls


def scheme(location: str) -> str:
    """The URL scheme, lower case; '' for a local path (a single letter is a drive)."""
    at = location.find("://", 0, 16)
    return location[:at].lower() if at > 1 else ""


class Fetcher:
    """Reads documents from whichever Source their scheme names, each within its byte limit."""

    def __init__(
        self, *, max_bytes: int, timeout: float = 20.0, retries: int = 3, remote_cache: RemoteCache | None = None,
        real_path_check: Callable[[str, str], str | None] | None = None,
        roots: tuple[str, ...] = (), root_max_bytes: int = 8 * 1024**3, concurrency: int = 32,
        max_concurrency: int | None = None, use_curl: bool | None = None, worker_min_batch: int | None = None,
    ) -> None:
        self.roots = set(roots)
        self.root_max_bytes = max(root_max_bytes, max_bytes)
        self.real_path_check = real_path_check
        self.remote_cache = remote_cache
        self.sources = SourceLog()
        self.max_bytes = max_bytes
        self.retries = retries
        self.timeout = timeout
        self.concurrency = concurrency
        # libcurl grows from `concurrency` up to this while it pays (curl.Concurrency); the
        # urllib3 and S3 paths keep `concurrency` threads
        self.max_concurrency = concurrency if max_concurrency is None else max(concurrency, max_concurrency)
        if use_curl is None:
            use_curl = CurlPool is not None
        if use_curl and CurlPool is None:
            raise FetchError("pycurl is not installed")
        self.use_curl = use_curl
        self.worker_min_batch = worker_min_batch
        self._child_cache: _RecordingCache | None = None
        self._child_counts: dict[str, int] = {}
        self._sources: dict[type[Source], Source] = {}
        self._sources_lock = threading.Lock()

    def source(self, location: str) -> Source:
        cls = _SOURCES.get(scheme(location))
        if cls is None:
            raise FetchError(f"unsupported scheme in {location!r}")
        source = self._sources.get(cls)
        if source is None:
            with self._sources_lock:  # made once, also when first asked from the loader's threads
                source = self._sources.get(cls)
                if source is None:
                    source = self._sources[cls] = cls(self)
        return source

    def _one_source(self, locations: Sequence[str]) -> Source | None:
        """The Source of all the locations, or None when they need several (or none exists)."""
        if not locations:
            return None
        try:
            first = self.source(locations[0])
            return first if all(self.source(loc) is first for loc in locations) else None
        except FetchError:
            return None

    @property
    def batches(self) -> bool:
        """Whether fetch_many reads remote (http) documents concurrently by itself
        (libcurl); else the caller runs fetch() from threads."""
        return self.use_curl

    def batches_all(self, locations: Sequence[str]) -> bool:
        """Whether one fetch_all of all these streams them in order with bounded memory."""
        source = self._one_source(locations)
        return source is not None and source.batches

    def all_local(self, locations: Sequence[str]) -> bool:
        """Whether all are files on this machine: a bulk file's forked reader or indexing
        processes may open it by path (``forkable`` says which documents a forked reader reads)."""
        source = self._one_source(locations)
        return source is not None and source.local

    def forkable(self, locations: Sequence[str]) -> bool:
        """Whether a forked reader (forked_reader.py) may read all of them: files on this
        machine, or http(s) through libcurl (a session of the child's own, read_in_child)."""
        source = self._one_source(locations)
        return source is not None and source.forkable

    # -- in a forked reader (forked_reader.py) ---------------------------------------------------

    def read_in_child(self, locations: Sequence[str]) -> Iterator[Result]:
        """(In a forked child) each location's result, in order: http(s) through a libcurl
        session of its own, many in flight (the inherited sessions' connections are the
        parent's), new validators kept for ``child_validators``; files one by one."""
        source = self._one_source(locations)
        if isinstance(source, HttpSource) and source.forkable:
            self._child_cache = _RecordingCache(self.remote_cache) if self.remote_cache is not None else None
            return source.curl_fresh(locations, self._limit, self._child_cache)
        return map(self.fetch_result, locations)

    def child_validators(self, location: str) -> tuple[str | None, str | None] | None:
        """(In the child) the ETag / Last-Modified that came with ``location``'s body, if any."""
        cache = self._child_cache
        return None if cache is None else cache.received.pop(location, None)

    def child_tally(self) -> dict[str, int]:
        """(In the child) what its fetches took, for ``add_child_tally`` in the parent."""
        tally = dict(self._child_counts)
        if self._child_cache is not None:
            tally["revalidated"] = self._child_cache.revalidated
        return tally

    def keep_validators(self, location: str, etag: str | None, modified: str | None, body: bytes) -> None:
        """(In the parent) validators the child received, into the RemoteCache."""
        if self.remote_cache is not None:
            self.remote_cache.store_validators(location, etag, modified, body)

    def add_child_tally(self, tally: dict[str, int]) -> None:
        """(In the parent) the child's fetch counts, into the metrics and the RemoteCache."""
        revalidated = tally.pop("revalidated", 0)
        if revalidated and self.remote_cache is not None:
            with self.remote_cache._lock:
                self.remote_cache.revalidated += revalidated
        if tally:
            metrics.count_remote("http", **tally)

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        sources, self._sources = self._sources, {}
        for source in sources.values():
            source.close()

    def _limit(self, location: str) -> int:
        return self.root_max_bytes if location in self.roots else self.max_bytes

    def fetch_result(self, location: str, limit: int | None = None) -> Result:
        try:
            return location, self.fetch(location, limit), None
        except FetchError as exc:
            return location, None, str(exc)

    def fetch_all(self, locations: Sequence[str], limit: int | None = None,
                  pool: Executor | None = None) -> Iterator[Result]:
        """Every location's result, in order, each within ``limit`` (default: the item
        limit, the root limit for a root), through its Source; locations of several
        sources are read one by one from ``pool``."""
        source = self._one_source(locations)
        if source is None:
            def read(location: str) -> Result:
                return self.fetch_result(location, limit)

            return map(read, locations) if pool is None else pool.map(read, locations)
        if limit is None:
            return self._fetch_many_by_location(source, locations, pool)
        return source.fetch_many(locations, limit, pool)

    def _fetch_many_by_location(self, source: Source, locations: Sequence[str],
                                pool: Executor | None) -> Iterator[Result]:
        roots = [loc for loc in locations if loc in self.roots]
        if not roots:
            yield from source.fetch_many(locations, self.max_bytes, pool)
            return
        for location in locations:  # rare: roots among others, each with its own limit
            yield self.fetch_result(location)

    def fetch_many(self, locations: list[str]) -> Iterator[Result]:
        """(location, body, None) or (location, None, reason) for each, in order: http(s)
        through libcurl, many in flight from this thread; anything else one by one. Only
        when `batches`; one thread at a time per batch (each batch has its own session)."""
        assert self.use_curl
        source = self.source("http://")
        assert isinstance(source, HttpSource)
        return source.curl_many(locations, self._limit)

    def download(self, location: str, sink: Writer, etag: str | None = None,
                 last_modified: str | None = None) -> Download:
        return self.source(location).download(location, sink, etag, last_modified)

    def upload(self, path: str, location: str) -> None:
        self.source(location).upload(path, location)

    def map_result(self, location: str, limit: int, min_bytes: int) -> tuple[str, bytes | mmap.mmap | None, str | None]:
        """As fetch_result, but a local file of ``min_bytes`` or more mapped (LocalFiles.map)."""
        try:
            source = self.source(location)
            if isinstance(source, LocalFiles):
                return location, source.map(location, limit, min_bytes), None
        except FetchError as exc:
            return location, None, str(exc)
        return self.fetch_result(location, limit)

    def fetch(self, location: str, limit: int | None = None) -> bytes:
        # A configured root (a bulk ndjson or FeatureCollection file may be gigabytes) has its
        # own, larger limit; every document it leads to has the one the caller gives, by
        # default the per-document (item) one.
        return self.source(location).fetch(location, self._limit(location) if limit is None else limit)


_READ = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0)
_FADVISE: Callable[[int, int, int, int], None] | None = getattr(os, "posix_fadvise", None)
# Files opened and asked for ahead of the one read (LocalFiles.fetch_many). 10M item files
# from a disk image, reading only (cold, 125k files): one at a time 5.3-7.5k files/s, asking
# ahead in batches of 16: 16.3k, 256: 18.4k, 1,024: 15.4k (bench/README, session 17).
READ_AHEAD = 64
PROBE_EVERY = 1024


def _cached(fd: int) -> bool | None:
    """Whether the file's first page is in the page cache (a one-byte read that may not wait
    for the disk); None when the system cannot tell (no RWF_NOWAIT, an empty file)."""
    try:
        return os.preadv(fd, [bytearray(1)], 0, os.RWF_NOWAIT) > 0 or None
    except BlockingIOError:
        return False
    except (OSError, AttributeError):
        return None


_O_PATH: int | None = getattr(os, "O_PATH", None) if os.path.isdir("/proc/self/fd") else None
_NOT_A_NAME = frozenset({"", ".", ".."})
MAX_ANCHORS = 64


@register_source
class LocalFiles(Source):
    """Paths on this machine: one open, one fstat, one read; only regular files; where the
    opened file really is goes to the loader's check (symlinks out of the roots, aliases)."""

    schemes = ("",)
    local = True
    forkable = True

    def __init__(self, fetcher: Fetcher) -> None:
        super().__init__(fetcher)
        # folders files are opened from (by name, no symlink followed on the way), with where
        # each really is: the opened file's real path without a readlink each (_open_anchored)
        self._anchors: dict[str, tuple[int, str]] = {}
        self._last: tuple[str, str] = ("", "")  # the folder and the one above of the last plain open

    def fetch(self, path: str, limit: int) -> bytes:
        """One open, one fstat, one read: cheaper than the io stack, and only regular
        files (a FIFO or device would never end)."""
        data = self._fetch(path, limit, None)
        assert isinstance(data, bytes)
        return data

    def map(self, path: str, limit: int, min_bytes: int) -> bytes | mmap.mmap:
        """As fetch, but a file of ``min_bytes`` or more mapped (read-only, shared) instead of
        read: no copy into fresh memory in this process (~0.5 s per 600 MB file, with the other
        cores idle: issue 18), and processes forked from it read the pages from the page cache.
        Only for a process that may die of it: a mapped file truncated while in use kills the
        process reading it (SIGBUS) instead of failing the read (the `index` command's load)."""
        return self._fetch(path, limit, min_bytes)

    def _fetch(self, path: str, limit: int, map_bytes: int | None) -> bytes | mmap.mmap:
        fd, real = self._open(path)
        return self._read_opened(path, fd, real, limit, map_bytes)

    def _open(self, path: str) -> tuple[int, str | None]:
        """The file opened for reading, and its real path when the anchored open knows it."""
        anchored = self._open_anchored(path) if self.fetcher.real_path_check is not None else None
        if anchored is not None:
            return anchored
        try:
            return os.open(path, _READ), None
        except OSError as exc:
            raise FetchError(exc.strerror or str(exc)) from None

    def _read_opened(self, path: str, fd: int, real: str | None, limit: int, map_bytes: int | None,
                     probed: list[bool | None] | None = None) -> bytes | mmap.mmap:
        """The opened file's bytes (or mapping), after the checks; ``fd`` closed. With
        ``probed``, whether its first page was in the page cache is added to it, after the
        checks (only a regular file inside the roots is read from) and before the read."""
        try:
            self._check_real_path(path, fd, real)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise FetchError("not a regular file")
            if info.st_size > limit:
                raise FetchError(f"file is {info.st_size} bytes, over the {limit} byte limit")
            if probed is not None:
                probed.append(_cached(fd))
            self.fetcher.sources.add(path, info.st_size, info.st_mtime_ns)
            if map_bytes is not None and info.st_size >= max(map_bytes, 1):
                return mmap.mmap(fd, info.st_size, flags=mmap.MAP_SHARED, prot=mmap.PROT_READ)
            chunks = [os.read(fd, info.st_size + 1)]
            total = len(chunks[0])
            while chunks[-1] and total <= limit and total > info.st_size:
                chunks.append(os.read(fd, 1 << 20))  # the file grew while we read it
                total += len(chunks[-1])
            if total > limit:
                raise FetchError(f"file is over the {limit} byte limit")
            return b"".join(chunks)
        except OSError as exc:
            raise FetchError(exc.strerror or str(exc)) from None
        finally:
            os.close(fd)

    def _check_real_path(self, path: str, fd: int, real: str | None = None) -> None:
        """Where the opened file really is (``real`` when known, else one readlink of
        /proc/self/fd, not an lstat per path component), for the caller's check: inside the
        roots, not read before."""
        if self.fetcher.real_path_check is None:
            return
        if real is None:
            try:
                real = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                real = os.path.realpath(path)
        refusal = self.fetcher.real_path_check(path, real)
        if refusal is not None:
            raise FetchError(refusal)

    def _open_anchored(self, path: str) -> tuple[int, str] | None:
        """The file opened below an anchor, a folder opened before whose real path is known
        (its own folder, or the one above: the files layout's ITEM/ITEM.json), each name
        below it opened without following a symlink, so its real path is the anchor's and
        the names: the readlink per file was a tenth of a forked reader's time. None: open it
        the plain way (no anchor yet, a symlink or an error on the way: the plain open says
        which); two plain opens in a row from one folder (or the one above) anchor it, up to
        MAX_ANCHORS. The anchors stay open until the fetcher is closed: an fd is never
        closed while another thread may use it."""
        if _O_PATH is None:
            return None
        slash = path.rfind("/")
        folder, name = path[:slash], path[slash + 1 :]
        up = folder.rfind("/")
        above, sub = folder[:up], folder[up + 1 :]
        if name in _NOT_A_NAME or sub in _NOT_A_NAME or up < 0:
            return None
        anchor = self._anchors.get(folder)
        try:
            if anchor is not None:
                return os.open(name, _READ | os.O_NOFOLLOW, dir_fd=anchor[0]), f"{anchor[1]}/{name}"
            anchor = self._anchors.get(above)
            if anchor is not None:
                between = os.open(sub, _O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=anchor[0])
                try:
                    return os.open(name, _READ | os.O_NOFOLLOW, dir_fd=between), f"{anchor[1]}/{sub}/{name}"
                finally:
                    os.close(between)
        except OSError:
            return None
        last_folder, last_above = self._last
        self._last = (folder, above)
        if len(self._anchors) < MAX_ANCHORS and (folder == last_folder or above == last_above):
            self._anchor(folder if folder == last_folder else above)
        return None

    def _anchor(self, folder: str) -> None:
        try:
            fd = os.open(folder or "/", _O_PATH | os.O_DIRECTORY)  # type: ignore[operator]
        except OSError:
            return
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            os.close(fd)
            return
        if self._anchors.setdefault(folder, (fd, real.rstrip("/")))[0] != fd:
            os.close(fd)  # another thread anchored it first

    def close(self) -> None:
        anchors, self._anchors = self._anchors, {}
        for fd, _ in anchors.values():
            os.close(fd)

    def fetch_many(self, locations: Sequence[str], limit: int, pool: Executor | None) -> Iterator[Result]:
        """Each file's result, in order, read when asked for (the caller's bookkeeping of what
        was read stays in step), the next READ_AHEAD files opened before and their pages asked
        for (posix_fadvise WILLNEED: the kernel reads them while this process parses).
        Threads gain nothing here and pay for the hand-offs; what one file at a time loses is
        the device's round trip per file: 10M item files from a disk image were read at one
        loop-device request at a time (~100 us each, 8.4k items/s) where asking ahead keeps
        its queue full (bench/README, session 17). Only what the kernel is asked to read
        early changes: each file is checked, read and logged in its turn, as fetch does."""
        if _FADVISE is None:
            yield from super().fetch_many(locations, limit, None)
            return
        # Asking costs a syscall a file (~1.5 CPU-s a million: 3% of a build whose files are
        # all in the page cache), so one file in PROBE_EVERY is not asked for but probed in its
        # turn (RWF_NOWAIT): already cached, the next ones are not asked for either.
        ahead: collections.deque[tuple[str, int | None, str | None, bool]] = collections.deque()
        asking, count = True, 0
        try:
            for location in locations:
                count += 1
                probe = count % PROBE_EVERY == 0
                ahead.append(self._open_ahead(location, asking and not probe, probe))
                if len(ahead) > READ_AHEAD:
                    result, cached = self._read_ahead(ahead.popleft(), limit)
                    asking = asking if cached is None else not cached
                    yield result
            while ahead:
                yield self._read_ahead(ahead.popleft(), limit)[0]
        finally:
            for _, fd, _, _ in ahead:
                if fd is not None:
                    os.close(fd)

    def _open_ahead(self, path: str, ask: bool, probe: bool) -> tuple[str, int | None, str | None, bool]:
        """(path, fd, real path or None, probe) of the file opened, its pages asked for if
        ``ask``; (path, None, why, False) if it cannot be opened."""
        try:
            fd, real = self._open(path)
        except FetchError as exc:
            return path, None, str(exc), False
        if ask:
            try:
                _FADVISE(fd, 0, 0, os.POSIX_FADV_WILLNEED)  # type: ignore[misc]
            except OSError:
                pass  # only a hint
        return path, fd, real, probe

    def _read_ahead(self, opened: tuple[str, int | None, str | None, bool], limit: int) -> tuple[Result, bool | None]:
        """The file's result, and for a probe whether its pages were in the page cache before
        it was read (None: not a probe, or cannot tell)."""
        path, fd, note, probe = opened
        if fd is None:
            return (path, None, note), None
        probed: list[bool | None] | None = [] if probe else None
        try:
            data = self._read_opened(path, fd, note, limit, None, probed)
        except FetchError as exc:
            return (path, None, str(exc)), probed[0] if probed else None
        assert isinstance(data, bytes)
        return (path, data, None), probed[0] if probed else None


@register_source
class HttpSource(Source):
    """http(s): batches through libcurl (curl_pool.py) when pycurl is installed, else
    urllib3 from the caller's threads."""

    schemes = ("http", "https")

    def __init__(self, fetcher: Fetcher) -> None:
        super().__init__(fetcher)
        self.batches = self.forkable = fetcher.use_curl
        self._curl = (CurlPool(fetcher.concurrency, fetcher.timeout, fetcher.retries, fetcher.worker_min_batch,
                               most=fetcher.max_concurrency) if fetcher.use_curl else None)
        self._client: urllib3.PoolManager | None = None

    def fetch(self, location: str, limit: int) -> bytes:
        if self._curl is not None:
            [(_, body, error)] = list(self.curl_many([location], lambda _: limit))
            if body is None:
                raise FetchError(error or "unreadable")
            return body
        try:
            return self._fetch_urllib3(location, limit)
        except FetchError:
            metrics.count_remote("http", errors=1)
            raise

    def curl_many(self, locations: Sequence[str], limit_of: Callable[[str], int]) -> Iterator[Result]:
        assert self._curl is not None
        return self._curl.fetch_many(locations, limit_of, self.fetcher.remote_cache, self.fetcher.fetch_result)

    def curl_fresh(self, locations: Sequence[str], limit_of: Callable[[str], int],
                   cache: _RecordingCache | None) -> Iterator[Result]:
        """A batch through a libcurl session made for it (a forked reader's), its counts
        left in the fetcher's ``_child_counts``."""
        assert self._curl is not None
        return self._curl.fetch_fresh(locations, limit_of, cache, self.fetcher.fetch_result,
                                      self.fetcher._child_counts)

    def fetch_many(self, locations: Sequence[str], limit: int, pool: Executor | None) -> Iterator[Result]:
        if self._curl is not None:  # many in flight from this thread, parsed as they arrive
            return self.curl_many(locations, lambda _: limit)
        return super().fetch_many(locations, limit, pool)

    def client(self) -> urllib3.PoolManager:
        if self._client is None:
            self._client = urllib3.PoolManager(
                maxsize=64,
                block=False,
                retries=False,  # retried below, with backoff, only on what is worth retrying
                timeout=urllib3.Timeout(connect=self.fetcher.timeout, read=self.fetcher.timeout),
            )
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.clear()
            self._client = None
        if self._curl is not None:
            self._curl.close()

    def _attempts(self) -> Iterator[bool]:
        """The attempts at one request through urllib3, each counted (requests, retries) and
        each retry after a growing pause (0.2 s, doubled each time); yields whether it is the
        last one."""
        delay = 0.2
        for attempt in range(self.fetcher.retries + 1):
            if attempt:
                time.sleep(delay)
                delay *= 2
            metrics.count_remote("http", requests=1, retries=1 if attempt else 0)
            yield attempt == self.fetcher.retries

    def _fetch_urllib3(self, url: str, limit: int) -> bytes:
        client = self.client()
        cache = self.fetcher.remote_cache
        headers = cache.conditional_headers(url) if cache is not None else {}
        for last in self._attempts():
            try:
                response = client.request("GET", url, headers=headers, preload_content=False, redirect=False)
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as exc:
                if last:
                    raise FetchError(f"{type(exc).__name__}: {exc}") from None
                continue
            except urllib3.exceptions.HTTPError as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            try:
                status = response.status
                if status == 304 and cache is not None:
                    body = cache.cached_body(url)
                    if body is not None:
                        metrics.count_remote("http", not_modified=1)
                        return body
                    headers = {}  # evicted meanwhile: ask for the whole document
                elif status == 429 or status >= 500:
                    if last:
                        raise FetchError(f"HTTP {status}")
                elif status != 200:
                    raise FetchError(f"HTTP {status}")
                else:
                    body = self._read_limited(response, limit)
                    if cache is not None:
                        cache.store(url, response, body)
                    return body
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as exc:
                if last:
                    raise FetchError(f"{type(exc).__name__}: {exc}") from None
            finally:
                self._finish(response)
        raise FetchError("gave up")  # a 304 whose cached body was evicted, on the last attempt

    @staticmethod
    def _finish(response: urllib3.BaseHTTPResponse) -> None:
        """Hand the connection back for the next request, past any unread body (a 304, an
        error page): left there, it would be taken for the next response on this keep-alive
        connection. A large or unending one closes the connection instead."""
        if isinstance(response, urllib3.HTTPResponse) and not response.isclosed():
            declared = response.headers.get("content-length", "")
            if response.status == 304 or (declared.isdigit() and int(declared) <= 1 << 16):
                response.drain_conn()
            else:
                response.close()
        response.release_conn()

    def download(self, location: str, sink: Writer, etag: str | None = None,
                 last_modified: str | None = None) -> Download:
        """Through urllib3 (one large body streamed to the sink: nothing for libcurl's batches
        to gain), with the same retries as a document until the body starts; a failure
        within the body is not retried (the sink has part of it)."""
        try:
            return self._download(location, sink, etag, last_modified)
        except FetchError:
            metrics.count_remote("http", errors=1)
            raise

    def _download(self, url: str, sink: Writer, etag: str | None, last_modified: str | None) -> Download:
        headers = validator_headers(etag, last_modified)
        for last in self._attempts():
            try:
                response = self.client().request("GET", url, headers=headers, preload_content=False, redirect=False)
            except urllib3.exceptions.HTTPError as exc:
                if last or not isinstance(exc, (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError)):
                    raise FetchError(f"{type(exc).__name__}: {exc}") from None
                continue
            try:
                if response.status == 304 and headers:
                    metrics.count_remote("http", not_modified=1)
                    return Download(False, etag, last_modified)
                if response.status == 200:
                    size = 0
                    for chunk in response.stream(DOWNLOAD_CHUNK):
                        sink.write(chunk)
                        size += len(chunk)
                    declared = response.headers.get("content-length", "")
                    encoded = response.headers.get("content-encoding", "identity") != "identity"
                    if declared.isdigit() and int(declared) != size and not encoded:  # gzip: decoded here
                        raise FetchError(f"response ended after {size} of its {declared} bytes")
                    return Download(True, response.headers.get("etag"), response.headers.get("last-modified"), size)
                if (response.status != 429 and response.status < 500) or last:
                    raise FetchError(f"HTTP {response.status}")
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            finally:
                self._finish(response)
        raise FetchError("gave up")  # pragma: no cover - the loop always returns or raises

    def _read_limited(self, response: urllib3.BaseHTTPResponse, limit: int) -> bytes:
        """The body, within the size limit and an overall deadline (a server trickling
        bytes forever never trips a per-read timeout)."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"response of {declared} bytes, over the {limit} byte limit")
        seconds = 3 * self.fetcher.timeout
        return read_within(response, limit, time.monotonic() + seconds,
                           lambda: FetchError(f"response not complete after {seconds:.0f} s"))


@register_source
class S3Source(Source):
    """s3:// through boto3, from the caller's threads."""

    schemes = ("s3",)

    def __init__(self, fetcher: Fetcher) -> None:
        super().__init__(fetcher)
        self.client: Any = None

    def fetch(self, url: str, limit: int) -> bytes:
        """s3:// through boto3 (the AWS SDK: credentials, endpoint such as MinIO's, retries
        and signing from the usual AWS environment variables and files; anonymous when
        no credentials are configured, for public buckets)."""
        if self.client is None:
            self.client = s3_client(self.fetcher.timeout, self.fetcher.retries)
        try:
            return self._get(url, limit)
        except FetchError:
            metrics.count_remote("s3", errors=1)
            raise

    def _client(self) -> Any:
        if self.client is None:
            self.client = s3_client(self.fetcher.timeout, self.fetcher.retries)
        return self.client

    def download(self, url: str, sink: Writer, etag: str | None = None,
                 last_modified: str | None = None) -> Download:
        """GetObject, conditional on the copy's ETag / Last-Modified (S3 answers 304), its
        body streamed to the sink."""
        bucket, _, key = url[len("s3://"):].partition("/")
        conditions: dict[str, Any] = {}
        if etag:
            conditions["IfNoneMatch"] = etag
        if last_modified:
            try:
                conditions["IfModifiedSince"] = parsedate_to_datetime(last_modified)
            except (TypeError, ValueError):
                pass
        try:
            obj = self._client().get_object(Bucket=bucket, Key=key, **conditions)
        except Exception as exc:  # botocore's ClientError (304 among them), EndpointConnectionError, ...
            response = getattr(exc, "response", None)
            _count_s3_attempts(response)
            status = response.get("ResponseMetadata", {}).get("HTTPStatusCode") if isinstance(response, dict) else None
            if status == 304 and conditions:
                metrics.count_remote("s3", not_modified=1)
                return Download(False, etag, last_modified)
            metrics.count_remote("s3", errors=1)
            raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None
        _count_s3_attempts(obj)
        size = 0
        chunks = obj["Body"].iter_chunks(DOWNLOAD_CHUNK)
        try:
            while True:
                try:
                    chunk = next(chunks, None)
                except Exception as exc:  # botocore's ReadTimeoutError, ResponseStreamingError, ...
                    metrics.count_remote("s3", errors=1)
                    raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None
                if chunk is None:
                    break
                sink.write(chunk)  # its own errors (a damaged snapshot) go to the caller as they are
                size += len(chunk)
        finally:
            obj["Body"].close()
        if size != (obj.get("ContentLength") or size):
            raise FetchError(f"object ended after {size} of its {obj['ContentLength']} bytes")
        modified = obj.get("LastModified")
        return Download(True, obj.get("ETag"), _http_date(modified), size)

    def upload(self, path: str, url: str) -> None:
        """boto3's managed upload: multipart for a large file, parts in parallel; the object
        appears whole when it completes (readers see the old one until then)."""
        bucket, _, key = url[len("s3://"):].partition("/")
        if not bucket or not key:
            raise FetchError(f"{url}: an s3:// destination is s3://BUCKET/KEY")
        try:
            self._client().upload_file(path, bucket, key)
        except Exception as exc:  # boto3's S3UploadFailedError, ClientError, ...
            metrics.count_remote("s3", errors=1)
            raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None
        metrics.count_remote("s3", requests=1)

    def _get(self, url: str, limit: int) -> bytes:
        bucket, _, key = url[len("s3://"):].partition("/")
        try:
            obj = self.client.get_object(Bucket=bucket, Key=key)
        except Exception as exc:  # botocore's ClientError, EndpointConnectionError, ...
            _count_s3_attempts(getattr(exc, "response", None))
            raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None
        _count_s3_attempts(obj)
        size = obj.get("ContentLength") or 0
        if size > limit:
            obj["Body"].close()
            raise FetchError(f"object is {size} bytes, over the {limit} byte limit")
        body = obj["Body"].read(limit + 1)
        if len(body) > limit:
            raise FetchError(f"object over the {limit} byte limit")
        return body


def _http_date(moment: datetime | None) -> str | None:
    """An S3 LastModified (botocore's aware datetime) as an HTTP date, for If-Modified-Since."""
    return format_datetime(moment.astimezone(UTC), usegmt=True) if moment is not None else None


def _count_s3_attempts(response: Any) -> None:
    """boto3 retries by itself and says how often in the response (or the error's)."""
    retries = 0
    if isinstance(response, dict):
        retries = int(response.get("ResponseMetadata", {}).get("RetryAttempts") or 0)
    metrics.count_remote("s3", requests=1 + retries, retries=retries)
