"""Which item documents a reload need not read again: the previous index's origins
(server.index.origins) checked against the catalog as it is now.

- local files: unchanged when their size and mtime are those read (one lstat each, from
  STAT_THREADS threads: an inode not in the kernel's cache is a disk read, ~0.3 ms on this
  machine's disk, and a million one after the other took 100 s; 32 at once were 5x faster, and
  faster with a warm cache too). The loader gives each document's item links as soon as it has
  walked it (check_soon), so those waits overlap the walk of the next documents. A symlink is
  always read again (where it leads is checked at each read);
- s3://: unchanged when a ListObjectsV2 listing of their common prefix (1,000 keys a request,
  parts listed at once: server.catalog.listing) gives the ETag (the MD5 of a plain upload) and
  size of the bytes read;
- http(s):// under a bucket endpoint named in the ``bucket_listings`` setting (an S3-style
  server: a public bucket over https): the same listing, over plain GETs; when the endpoint
  answers no listing (403, 404, not XML) the documents are fetched as below, the reason logged;
- other http(s)://: no listing exists, so the document is fetched (a conditional request answers
  304 when the server has validators, see RemoteCache) and is unchanged when its MD5 is the one
  read.

An unchanged document's row is then reused when the collection serving it is the same as before
(server.catalog.loader decides that again at every load). Everything else is read as usual.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import stat
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import cast

import numpy as np

from server.catalog import parallel
from server.catalog.listing import bucket_of, http_listing, joined_keys, s3_listing
from server.catalog.sources import FetchError, s3_client
from server.index import Index
from server.index.origins import UNKNOWN, Origins

log = logging.getLogger("stac_static_api.loader")

LSTAT_PROCESSES = 2  # processes check_all_soon forks, each lstat'ing a part of the files
STAT_THREADS = 32  # lstats in flight (they wait for the disk when the inode is not cached)
# ... and when they are cached: more threads then only contend for the GIL (a million cached
# lstats: 32 threads 8.0 CPU-s, 4 threads 3.7, as one thread; not cached, 26 CPU-s and 108 s
# one after the other). The first chunk, timed, tells which: cached under ~50 us an lstat.
STAT_THREADS_CACHED = 4
CACHED_STAT_SECONDS = 50e-6
STAT_CHUNK = 2_000  # files a thread checks at a time

Found = tuple[np.ndarray, np.ndarray, np.ndarray]  # a listing's answer for documents: listed with an MD5 ETag, that MD5, its size


def digest(data: bytes) -> bytes:
    """What a remote document's bytes are compared by: MD5, which is also a plain S3 upload's ETag."""
    return hashlib.md5(data, usedforsecurity=False).digest()


class ReusePlan:
    """The previous index's origins, by location, with what is known unchanged."""

    def __init__(self, previous: Index, origins: Origins, bucket_listings: tuple[str, ...] = (),
                 listing_timeout: float | None = None) -> None:
        self.previous = previous
        self.bucket_listings = bucket_listings  # http(s) bucket endpoints listed (settings.bucket_listings)
        self.listing_timeout = listing_timeout  # seconds a listing may take in all (settings.listing_timeout)
        self.origins = origins
        # (the rows' lists, a million strings and ints at 1M: made when first used, after
        # check_all_soon's forks, so that a bucket's listing starts ~0.5 s sooner)
        self.unchanged = np.zeros(len(origins), dtype=bool)
        names = previous.collection_names
        served = previous.codes[origins.positions]
        self._served = served
        # each row's serving collection as a code into origins.names (-2: none of them)
        code_of = {name: i for i, name in enumerate(origins.names)}
        by_code = np.array([code_of.get(name, -2) for name in names] + [-2], dtype=np.int32)
        self.served_codes = by_code[served]  # a code of -1 (no collection) reads the last entry
        self.not_public_codes = origins.not_public
        self.made = {m["collection"] for m in (previous.load_report or {}).get("made_collections", [])}
        self.checked = {"local": 0, "s3": 0, "listed": 0}
        self._pool: ThreadPoolExecutor | None = None  # lstats started by check_soon
        self._started: list[tuple[np.ndarray, list[Future[list[int]]]]] = []
        self._s3_later: list[int] = []  # S3 objects given to check_soon
        self._listed_later: list[int] = []  # documents under a listed bucket endpoint given to check_soon
        # check_all_soon's processes: the origins each checks, their results (indices changed)
        self._forked: tuple[list[np.ndarray], parallel.forked_map] | None = None
        # list_all_soon's process: the listings of the bucket endpoints, as _listed_all gives them
        self._listing: parallel.forked_map | None = None
        self._early: dict[str, tuple[Found | str, float]] | None = None  # its answers, once taken
        # the origin of each location the last check was given (by_location.find), if it looked them up
        self.found: np.ndarray | None = None

    @functools.cached_property
    def locations(self) -> list[str]:
        return self.origins.location_list()

    @functools.cached_property
    def sizes(self) -> list[int]:
        return cast(list[int], self.origins.sizes.tolist())

    @functools.cached_property
    def mtimes(self) -> list[int]:
        return cast(list[int], self.origins.mtimes.tolist())

    @functools.cached_property
    def not_public(self) -> list[int]:
        return cast(list[int], self.origins.not_public.tolist())

    @functools.cached_property
    def declared(self) -> list[str | None]:
        names = self.origins.names
        return [names[c] if c >= 0 else None for c in self.origins.declared.tolist()]

    @functools.cached_property
    def served_under(self) -> list[str | None]:
        names = self.previous.collection_names
        return [names[c] if c >= 0 else None for c in self._served.tolist()]

    @functools.cached_property
    def _any_s3(self) -> bool:
        """Whether a document of the previous index is under an s3:// bucket or a bucket endpoint
        (the first remote one is, in the common case: read from the joined locations)."""
        remote = np.flatnonzero(self.origins.sizes < 0)
        if not len(remote):
            return False
        if remote[0] == 0:
            first = bytes(self.origins.locations[:8192]).partition(b"\n")[0].decode("utf-8", "surrogateescape")
            if first.startswith("s3://") or bucket_of(first, self.bucket_listings) is not None:
                return True
        locations = self.locations
        return any(locations[o].startswith("s3://") or bucket_of(locations[o], self.bucket_listings) is not None
                   for o in remote.tolist())

    @functools.cached_property
    def by_location(self) -> Locations:
        """Each location's origin (made when first needed: after check_all_soon's fork)."""
        return Locations(self.locations)

    def check_all_soon(self, max_bytes: int, timeout: float, retries: int) -> bool:
        """Start checking every local file of the previous index's rows in a process forked
        now, while this one walks the catalogs: a million lstats are ~4 CPU-s of Python, which
        in threads here slowed the walk as much again (the GIL), in another process take none
        of its time (and nothing waits for the walk to link the files). False when this
        process may not fork (threads of its own running): the caller gives the files to
        check_soon as it links them instead. LSTAT_PROCESSES of them, each a part of the
        files: they are the reload's longest task when the inodes are not in the kernel's
        cache (20-28 CPU-s at 1M, ~4 when they are), the walk ~2."""
        if not parallel.forkable() or not len(self.origins):
            return False
        wanted = np.flatnonzero((self.origins.sizes >= 0) & (self.origins.not_public != UNKNOWN))
        parts = np.array_split(wanted, max(1, min(LSTAT_PROCESSES, len(wanted) // STAT_CHUNK)))
        if len(wanted):  # made here, shared by the forks, not made again by each
            self.locations, self.sizes, self.mtimes  # noqa: B018
        self._forked = (parts, parallel.forked_map(parts, len(parts), lambda w: self._changed_of(w, max_bytes)))
        self.list_all_soon(timeout, retries)  # after: an lstat process's close() must not kill it
        return True

    def list_all_soon(self, timeout: float, retries: int) -> None:
        """Start listing the bucket endpoints (bucket_listings) and the S3 buckets (s3://) the
        previous index's documents were under, in a process forked now, while this one walks
        the catalogs (boto3's client made there: nothing of it crosses the fork): at a million
        documents the listing was this process's largest phase (3.9 CPU-s of GETs, parsing the
        pages and looking up the keys, 6 s at load 4-8, session 13) and needs nothing of the
        walk: the documents a reload checks by listing are the previous index's (origins), so
        their keys are known before it starts. _check_listed then takes their answers from it.
        Called only where this process may fork (check_all_soon)."""
        if not self._any_s3:
            return
        self._listing = parallel.forked_map([0], 1, lambda _: self._listed_all(timeout, retries))

    def _listed_all(self, timeout: float, retries: int) -> list[tuple[str, Found | str, float]]:
        """(In list_all_soon's process) the listing of the previous documents under each bucket
        endpoint and each S3 bucket (as ``s3://BUCKET/``): (where, for every origin (not listed
        where not under it): listed with an MD5 ETag, that MD5, its size; or why it failed,
        seconds it took)."""
        n = len(self.origins)  # (not of self.locations: that list is not made here when the keys are cut)
        candidates = np.flatnonzero((self.origins.sizes < 0) & (self.origins.not_public != UNKNOWN)).tolist()
        by_base: dict[str, list[int]] = {}
        # every document under the one endpoint (the common case): their keys cut out of the
        # origins' joined locations, no string a location (~0.5 of the child's 3.8 CPU-s at 1M)
        keys = joined_keys(self.bucket_listings[0], self.origins.locations.tobytes(), n) \
            if len(self.bucket_listings) == 1 and len(candidates) == n else None
        if keys is not None or (len(self.bucket_listings) == 1
                                and _all_under(self.bucket_listings[0], [self.locations[o] for o in candidates])):
            by_base[self.bucket_listings[0]] = candidates
        else:
            for o in candidates:
                location = self.locations[o]
                if location.startswith("s3://"):
                    by_base.setdefault(f"s3://{location[5:].partition('/')[0]}/", []).append(o)
                    continue
                base = bucket_of(location, self.bucket_listings)
                if base is not None:
                    by_base.setdefault(base, []).append(o)
        out: list[tuple[str, Found | str, float]] = []
        client = None
        for base, origins in by_base.items():
            started = time.perf_counter()
            try:
                if base.startswith("s3://"):
                    client = client or s3_client(timeout, retries)
                    found = self._s3_found(client, base[5:-1], origins, timeout, retries)[0]
                else:
                    found = http_listing(base, [] if keys is not None else [self.locations[o] for o in origins],
                                         timeout, retries, limit=self.listing_timeout, keys=keys)
            except FetchError as exc:
                out.append((base, str(exc), time.perf_counter() - started))
                continue
            rows = np.array(origins, dtype=np.int64)
            listed, digests, sizes = (np.zeros(n, dtype=bool), np.zeros((n, 16), dtype=np.uint8),
                                      np.zeros(n, dtype=np.int64))
            listed[rows], digests[rows], sizes[rows] = found
            out.append((base, (listed, digests, sizes), time.perf_counter() - started))
        return out

    def _s3_found(self, client: object, bucket: str, origins: list[int], timeout: float, retries: int
                  ) -> tuple[Found, int]:
        """The listing of ``bucket`` under its documents' common prefix: for each of ``origins``
        (its documents) listed with an MD5 ETag, that MD5, its size; and the objects listed."""
        keys = [self.locations[o][len("s3://") + len(bucket) + 1:] for o in origins]
        listed = s3_listing(client, bucket, sorted(keys), timeout, retries, limit=self.listing_timeout)
        return listed.find(np.array([k.encode("utf-8", "surrogateescape") for k in keys], dtype=bytes)), len(listed)

    def _take_listing(self) -> dict[str, tuple[Found | str, float]] | None:
        """list_all_soon's listings by endpoint (``s3://BUCKET/`` for an S3 bucket's); None when
        there was none or its process died (the endpoints are then listed here, as without it).
        Kept once taken: the S3 buckets' are taken first (_check_s3), the endpoints' then."""
        if self._listing is None:
            return self._early
        forked, self._listing = self._listing, None
        with contextlib.closing(forked):
            results = list(forked)
        if not results:
            log.warning("the process listing the bucket endpoints ended early: listing them here")
            return None
        self._early = {base: (found, seconds) for base, found, seconds in results[0]}
        return self._early

    @property
    def checking_all(self) -> bool:
        return self._forked is not None

    def _changed_of(self, wanted: np.ndarray, max_bytes: int) -> np.ndarray:
        """(In the forked process) the indices into ``wanted`` of the files changed."""
        _, futures = self._start_local(wanted, max_bytes, True)
        try:
            return np.array([i for future in futures for i in future.result()], dtype=np.int64)
        finally:
            self.close()

    def check_soon(self, locations: list[str], max_bytes: int) -> None:
        """Start checking the local files among ``locations`` (items the load will read) in the
        background: the walk goes on parsing the next documents while the lstats wait for the
        disk. ``check`` then waits for them; ``close`` stops what is left of them."""
        _, local, s3, listed = self._origins_of(locations)
        self._s3_later.extend(s3)  # listed by check, all at once
        self._listed_later.extend(listed)
        if not local:
            return
        self._started.append(self._start_local(np.array(local, dtype=np.int64), max_bytes, True))

    def check(self, locations: list[str], max_bytes: int, timeout: float, retries: int) -> None:
        """Find which of ``locations`` (the items a load is about to read, besides those given
        to check_soon) and of those given to check_soon (or checked by check_all_soon's
        process) are unchanged."""
        self.found = None
        local: list[int] = []
        s3: list[int] = []
        listed: list[int] = []
        if self._forked is not None:
            self._take_forked(max_bytes)
            if self._any_s3:
                self.found, _, s3, listed = self._origins_of(locations)
        else:
            self.found, local, s3, listed = self._origins_of(locations)
        s3, self._s3_later = self._s3_later + s3, []
        listed, self._listed_later = self._listed_later + listed, []
        if local:
            self._started.append(self._start_local(np.array(local, dtype=np.int64), max_bytes, len(local) > STAT_CHUNK))
        for wanted, futures in self._started:
            same = np.ones(len(wanted), dtype=bool)
            for future in futures:
                same[np.array(future.result(), dtype=np.int64)] = False
            self.unchanged[wanted[same]] = True
            self.checked["local"] += len(wanted)
        self._stop_checks()  # (not the listing: _check_listed takes it)
        if s3:
            try:
                self._check_s3(s3, max_bytes, timeout, retries)
            except FetchError as exc:  # the items are read instead
                log.warning("cannot list the S3 prefix of the items, reading them all: %s", exc)
        if listed:
            self._check_listed(listed, max_bytes, timeout, retries)
        self.close()  # a listing not taken (no document under a bucket endpoint now)

    def _take_forked(self, max_bytes: int) -> None:
        """check_all_soon's result; should its process have died, the files are checked here."""
        assert self._forked is not None
        parts, forked = self._forked
        self._forked = None
        with contextlib.closing(forked):
            results = list(forked)
        for i, wanted in enumerate(parts):
            changed = results[i] if i < len(results) else None
            if changed is None:
                log.warning("a process checking the item files ended early: checking its files here")
                _, futures = self._start_local(wanted, max_bytes, True)
                changed = np.array([i for future in futures for i in future.result()], dtype=np.int64)
            self.unchanged[wanted] = True
            self.unchanged[wanted[changed]] = False
            self.checked["local"] += len(wanted)

    def close(self) -> None:
        """Stop the background checks and listing (those not started are dropped)."""
        if self._listing is not None:
            self._listing.close()
            self._listing = None
        self._stop_checks()

    def _stop_checks(self) -> None:
        """Stop the background checks of local files (those not started are dropped)."""
        if self._forked is not None:
            self._forked[1].close()
            self._forked = None
        self._started = []
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def _origins_of(self, locations: list[str]) -> tuple[np.ndarray, list[int], list[int], list[int]]:
        """Each of ``locations``' origin (by_location.find, -1: none; the loader takes rows by
        them, not looked up again: ~0.5 CPU-s at 1M) and the origins to check: local files,
        objects in S3 buckets (s3://), documents under a listed bucket endpoint. Each location
        told apart here, where it is read anyway (telling the S3 ones from the others again
        later, a row at a time, was ~0.5 CPU-s at 1M)."""
        local, s3, listed = [], [], []
        not_public, sizes, bases = self.not_public, self.sizes, self.bucket_listings
        found = self.by_location.find(locations)
        if len(bases) == 1 and _all_under(bases[0], locations):  # one bucket endpoint, every item under it:
            known = found[found >= 0]  # no call a document (a million: ~0.5 CPU-s)
            return found, [], [], known[self.not_public_codes[known] != UNKNOWN].tolist()
        for location, o in zip(locations, found.tolist()):
            if o < 0 or not_public[o] == UNKNOWN:
                continue
            if location.startswith("s3://"):
                s3.append(o)
            elif bases and bucket_of(location, bases) is not None:
                listed.append(o)
            elif "://" not in location and sizes[o] >= 0:
                local.append(o)
        return found, local, s3, listed

    def _start_local(self, wanted: np.ndarray, max_bytes: int, background: bool
                     ) -> tuple[np.ndarray, list[Future[list[int]]]]:
        """The lstats of the files of origins ``wanted``, STAT_CHUNK a task, in the pool's
        threads (``background``) or here: futures of the indices into ``wanted`` of those
        changed. The pool's first chunk is run here, timed, to size the pool."""
        order = wanted.tolist()
        pending = ([self.locations[o] for o in order], [self.sizes[o] for o in order],
                   [self.mtimes[o] for o in order], max_bytes)
        n = len(order)
        ranges = [(i, min(i + STAT_CHUNK, n)) for i in range(0, n, STAT_CHUNK)]
        futures: list[Future[list[int]]] = []
        for bounds in ranges:
            if background and self._pool is not None:
                futures.append(self._pool.submit(_changed_in_range, pending, bounds))
                continue
            started = time.perf_counter()
            done: Future[list[int]] = Future()
            done.set_result(_changed_in_range(pending, bounds))
            futures.append(done)
            if background:
                cached = (time.perf_counter() - started) < CACHED_STAT_SECONDS * (bounds[1] - bounds[0])
                self._pool = ThreadPoolExecutor(STAT_THREADS_CACHED if cached else STAT_THREADS,
                                                thread_name_prefix="reuse-lstat")
        return wanted, futures

    def _check_s3(self, wanted: list[int], max_bytes: int, timeout: float, retries: int) -> None:
        by_bucket: dict[str, list[int]] = {}
        for o in wanted:
            bucket = self.locations[o][len("s3://"):].partition("/")[0]
            by_bucket.setdefault(bucket, []).append(o)
        early = self._take_listing()
        client = None
        for bucket, origins in by_bucket.items():
            started = time.perf_counter()
            answer = early.get(f"s3://{bucket}/") if early is not None else None
            if answer is not None:  # listed by list_all_soon's process
                result, seconds = answer
                started -= seconds
                if isinstance(result, str):
                    raise FetchError(result)
                rows = np.array(origins, dtype=np.int64)
                found: Found = (result[0][rows], result[1][rows], result[2][rows])
                objects = int(found[0].sum())
            else:
                client = client or s3_client(timeout, retries)
                found, objects = self._s3_found(client, bucket, origins, timeout, retries)
            same = self._take_listed(origins, found, max_bytes)
            log.info("S3 listing of s3://%s: %d objects listed in %.1f s, %d of %d item documents unchanged",
                     bucket, objects, time.perf_counter() - started, same, len(origins))
            self.checked["s3"] += len(origins)

    def _check_listed(self, wanted: list[int], max_bytes: int, timeout: float, retries: int) -> None:
        """The documents of origins ``wanted`` under listed bucket endpoints: each endpoint's
        listing of their common prefix; one that answers none leaves its documents to be
        fetched (conditionally, as without a listing), the reason logged."""
        by_base: dict[str, list[int]] = {}
        if len(self.bucket_listings) == 1:  # (each under it, as _origins_of chose them: no call a document)
            by_base[self.bucket_listings[0]] = wanted
        for o in wanted if not by_base else ():
            base = bucket_of(self.locations[o], self.bucket_listings)
            assert base is not None
            by_base.setdefault(base, []).append(o)
        early = self._take_listing()
        for base, origins in by_base.items():
            started = time.perf_counter()
            try:
                if early is not None and base in early:  # listed by list_all_soon's process
                    answer, seconds = early[base]
                    started -= seconds
                    if isinstance(answer, str):
                        raise FetchError(answer)
                    rows = np.array(origins, dtype=np.int64)
                    found = (answer[0][rows], answer[1][rows], answer[2][rows])
                else:
                    found = http_listing(base, [self.locations[o] for o in origins], timeout, retries,
                                         limit=self.listing_timeout)
            except FetchError as exc:
                log.warning("bucket listing of %s failed (%s): fetching its %d item documents with conditional "
                            "requests instead", base, exc, len(origins))
                continue
            if origins and not found[0].any():  # e.g. an empty listing (session 14: a bench bucket that
                # listed no key made a 1M reload fetch every document, 457k GETs in 7 min, without a word)
                log.warning("bucket listing of %s lists none of its %d item documents with an MD5 ETag (another "
                            "prefix, an empty or lagging listing, multipart uploads): fetching them with "
                            "conditional requests", base, len(origins))
            same = self._take_listed(origins, found, max_bytes)
            log.info("bucket listing of %s: %d objects listed in %.1f s, %d of %d item documents unchanged",
                     base, int(found[0].sum()), time.perf_counter() - started, same, len(origins))
            self.checked["listed"] += len(origins)

    def _take_listed(self, origins: list[int], found: tuple[np.ndarray, np.ndarray, np.ndarray], max_bytes: int) -> int:
        """Mark unchanged the origins whose listed ETag is the MD5 of the bytes read before
        (``found``: for each, listed with an MD5 ETag, that MD5, its size: Listing.find); how
        many. Compared in array operations (a million rows one by one were ~2 s). Not listed
        (other prefix, listing lag), too large, or not an MD5 (multipart): read again."""
        if not origins:
            return 0
        wanted = np.array(origins, dtype=np.int64)
        listed, digests, sizes = found
        same = listed & (sizes <= max_bytes) & (self.origins.digests[wanted] == digests).all(axis=1)
        self.unchanged[wanted[same]] = True
        return int(same.sum())

    def same_bytes(self, o: int, data: bytes) -> int:
        """``o`` when it is the origin (found by by_location) of a fetched remote document
        whose bytes are those read before, else -1."""
        if o < 0 or self.not_public[o] == UNKNOWN:
            return -1
        return o if self.origins.digests[o].tobytes() == digest(data) else -1


class Locations:
    """The origin of each location (its index in ``locations``), as a dict of them gives it
    (the last of equal ones), without a dict of a million strings (0.4 s to make, ~0.4 s of
    lookups at a million items): a reload's item links come in the order of the previous
    load's origins but for the few added, deleted or moved, so ``find`` compares runs of links
    with the run that follows the last one found (a slice compare, in C) and looks up only the
    runs that differ, by the sorted hashes of the locations."""

    RUN = 64  # links compared at once

    def __init__(self, locations: list[str]) -> None:
        self.locations = locations
        hashes = np.fromiter(map(hash, locations), dtype=np.int64, count=len(locations))
        self._order = np.argsort(hashes, kind="stable")
        self._hashes = hashes[self._order]
        self._next = 0  # where the next run of links is expected
        # two equal locations: the dict's answer (the last) is not always the one in order
        same = np.flatnonzero(self._hashes[1:] == self._hashes[:-1]).tolist()
        order = self._order.tolist() if same else []
        self._unique = not any(locations[order[i]] == locations[order[i + 1]] for i in same)

    def _looked_up(self, links: list[str]) -> list[int]:
        """The index of each of ``links`` by its hash (-1: none), the hashes searched at once."""
        if not links:
            return []
        wanted = np.fromiter(map(hash, links), dtype=np.int64, count=len(links))
        ats = (np.searchsorted(self._hashes, wanted, side="right") - 1).tolist()
        hashes, order, locations = self._hashes, self._order, self.locations
        out = []
        for link, h, at in zip(links, wanted.tolist(), ats):
            found = -1
            while at >= 0 and hashes[at] == h:
                o = int(order[at])
                if locations[o] == link:
                    found = o
                    break
                at -= 1
            out.append(found)
        return out

    def find(self, links: list[str]) -> np.ndarray:
        """The index of each of ``links`` (the last when it is there more than once; -1: none), int64."""
        out = np.empty(len(links), dtype=np.int64)
        locations, n, run = self.locations, len(self.locations), self.RUN
        at = 0
        while at < len(links):
            end = min(at + run, len(links))
            k = self._next
            if self._unique and k + end - at <= n and locations[k : k + end - at] == links[at:end]:
                out[at:end] = np.arange(k, k + end - at)
                self._next = k + end - at
            else:
                found = self._looked_up(links[at:end])
                out[at:end] = found
                last = next((o for o in reversed(found) if o >= 0), -1)
                if last >= 0:
                    self._next = last + 1
            at = end
        return out


def _all_under(base: str, locations: list[str]) -> bool:
    """Whether every one of ``locations`` (not none) starts with ``base``: one join and counts."""
    joined = "\n".join(locations)
    n = len(locations)
    return n > 0 and joined.startswith(base) and joined.count("\n") == n - 1 and joined.count("\n" + base) == n - 1


def _changed_in_range(pending: tuple[list[str], list[int], list[int], int], bounds: tuple[int, int]) -> list[int]:
    """Indices (into ``pending``'s paths) of files gone, changed, over the size limit or symlinks."""
    paths, sizes, mtimes, max_bytes = pending
    changed = []
    lstat = os.lstat
    for i in range(*bounds):
        try:
            info = lstat(paths[i])
        except OSError:
            changed.append(i)
            continue
        if (info.st_size != sizes[i] or info.st_mtime_ns != mtimes[i] or not stat.S_ISREG(info.st_mode)
                or info.st_size > max_bytes):
            changed.append(i)
    return changed
