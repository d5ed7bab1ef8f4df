"""Many remote documents at once through libcurl's multi interface (pycurl), when installed.

Why: on a fast server the loader's cost per remote document was the HTTP client's Python
code (urllib3 from 32 threads: ~300 us of CPU per document, ~3,000 documents/s on two cores
with nginx on loopback). libcurl does the requests in C from one thread, with keep-alive and
many transfers in flight, for ~20 us of Python per document; the loader parses the bodies as
they arrive while the server works on the next ones.

Same rules as the urllib3 path in sources.py: a bounded number of requests in flight, a
connect timeout and a read timeout (no byte for `timeout` seconds) per request plus an overall
deadline, retries with backoff on timeouts, dropped connections, 429 and 5xx, the body size
limit (aborted mid-transfer), conditional requests with the RemoteCache (a 304 reuses the
cached body), redirects not followed (so never out of scope: a 3xx is an error), http and
https only, and no proxy from the environment.

How many in flight (Concurrency): against a bucket, each document waits ~10-50 ms for its
first byte, so documents/s is about transfers in flight / latency (32 at 20 ms: 1,600/s).
A session starts at `concurrency` and grows by half while each growth raised the documents
per second (the server, the network and this process's parsing all keep up), up to `most`;
it halves on a sign of an overloaded server (429, 502-504, a timeout, a refused or dropped
connection), once per round of transfers, and probes upwards again later. Keep-alive
connections are reused across transfers and batches; over https, HTTP/2 where the server
offers it (ALPN), its streams multiplexed on few connections (PIPEWAIT).
"""

from __future__ import annotations

import heapq
import math
import re
import ssl
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import quote

import pycurl

from server.catalog.locations import is_remote


class RemoteCache(Protocol):
    """The conditional-request side of sources.RemoteCache (and of fetch_worker's stand-in):
    validators to send, the body a 304 stands for, validators to keep."""

    def conditional_headers(self, url: str) -> dict[str, str]: ...

    def cached_body(self, url: str) -> bytes | None: ...

    def store_validators(self, url: str, etag: str | None, modified: str | None, body: bytes) -> None: ...

Result = tuple[str, "bytes | None", "str | None"]

# Worth another try (urllib3's TimeoutError / ProtocolError / NewConnectionError there).
RETRYABLE = frozenset({
    pycurl.E_COULDNT_RESOLVE_HOST, pycurl.E_COULDNT_CONNECT, pycurl.E_OPERATION_TIMEDOUT,
    pycurl.E_GOT_NOTHING, pycurl.E_SEND_ERROR, pycurl.E_RECV_ERROR, pycurl.E_PARTIAL_FILE,
})
OVER_LIMIT = frozenset({pycurl.E_FILESIZE_EXCEEDED, pycurl.E_WRITE_ERROR})
# A server (or the path to it) that has more than it can take: fewer in flight.
OVERLOADED_STATUS = frozenset({429, 502, 503, 504})
OVERLOADED_ERRORS = RETRYABLE - {pycurl.E_COULDNT_RESOLVE_HOST}

_UNSAFE = re.compile(r"[^\x21-\x7e]|[\"<>\\^`{|}]")


def curl_url(url: str) -> str:
    """The URL as libcurl accepts it: spaces and non-ASCII percent-encoded (UTF-8), as
    urllib3 does; curl refuses them as written."""
    if _UNSAFE.search(url) is None:
        return url
    return quote(url, safe="!#$%&'()*+,/:;=?@[]~")


@dataclass
class FetchCounts:
    """What a session did, in plain integers (this module runs in fetch_worker processes too,
    which import no metrics library: they send these back, server.metrics counts them)."""

    requests: int = 0  # sent, retries included
    retries: int = 0
    errors: int = 0  # documents given up on
    not_modified: int = 0  # 304s answered from the cache

    def take(self) -> dict[str, int]:
        """The counts so far, as keyword arguments of server.metrics.count_remote; reset."""
        counts = {"requests": self.requests, "retries": self.retries, "errors": self.errors,
                  "not_modified": self.not_modified}
        self.requests = self.retries = self.errors = self.not_modified = 0
        return counts


class Concurrency:
    """How many transfers a session keeps in flight: grown while that pays, halved on trouble.

    Time is cut into rounds of at least ``4 * limit`` finished transfers (and 50 ms). After a
    round in which the limit held transfers back (more were ready to go, and the caller was
    keeping up), the limit grows by half; if the next round's documents/s did not grow by a
    sixth, the growth did not pay (the server, the network or the caller is the bound) and
    the limit goes back, to probe again 8 rounds later. Trouble (``overloaded``) halves it,
    once for the transfers in flight then (those started before a cut do not cut again),
    and growth waits two clean rounds."""

    GROWTH = 1.5
    PAYS = 1 + (GROWTH - 1) / 3
    MIN_ROUND_SECONDS = 0.05
    PROBE_EVERY = 8

    __slots__ = ("limit", "most", "peak", "cuts", "bound", "held", "trouble", "_round_start", "_done",
                 "_before", "_rate_before", "_quiet", "_last_cut")

    def __init__(self, start: int, most: int) -> None:
        self.most = max(1, most)
        self.limit = min(max(1, start), self.most)
        self.peak = self.limit
        self.cuts = 0
        self.bound = False  # this round, a transfer waited for the limit
        self.held = False  # this round, the caller was behind (bodies waiting): not the limit's doing
        self.trouble = False
        self._round_start = time.monotonic()
        self._done = 0
        self._before = 0  # the limit before a growth being tried (0: none)
        self._rate_before = 0.0
        self._quiet = 0  # rounds before the next growth may be tried
        self._last_cut = 0.0

    def finished(self, now: float, count: int) -> None:
        self._done += count
        elapsed = now - self._round_start
        if self._done < 4 * self.limit or elapsed < self.MIN_ROUND_SECONDS:
            return
        rate = self._done / elapsed
        if self._before:  # the round after a growth: keep it only if it paid
            if rate < self._rate_before * self.PAYS or self.trouble:
                self.limit = self._before
                self._quiet = self.PROBE_EVERY
            self._before = 0
        elif self._quiet:
            self._quiet -= 1
        elif self.bound and not self.held and not self.trouble and self.limit < self.most:
            self._before, self._rate_before = self.limit, rate
            self.limit = min(self.most, math.ceil(self.limit * self.GROWTH))
            self.peak = max(self.peak, self.limit)
        self._round_start, self._done = now, 0
        self.bound = self.held = self.trouble = False

    def overloaded(self, started: float, now: float) -> None:
        """A transfer started at ``started`` met an overloaded server."""
        self.trouble = True
        if started < self._last_cut:
            return  # in flight when the limit was last cut: that cut answered it
        self._last_cut = now
        self.cuts += 1
        self.limit = max(1, (self._before or self.limit) // 2)
        self._before = 0
        self._quiet = 2
        self._round_start, self._done = now, 0


class _Body:
    """A transfer's body, aborted (libcurl's write error) past the size limit: Content-Length
    is refused before the body by MAXFILESIZE, a chunked stream here."""

    __slots__ = ("chunks", "size", "limit")

    def __init__(self, limit: int) -> None:
        self.chunks: list[bytes] = []
        self.size = 0
        self.limit = limit

    def write(self, data: bytes) -> int | None:
        self.size += len(data)
        if self.size > self.limit:
            return 0  # fewer bytes taken than given: libcurl aborts the transfer
        self.chunks.append(data)
        return None


class _Transfer:
    __slots__ = ("position", "url", "limit", "attempt", "delay", "conditional", "body", "headers", "started")

    def __init__(self, position: int, url: str, limit: int) -> None:
        self.position = position
        self.url = url
        self.limit = limit
        self.attempt = 0
        self.delay = 0.2
        self.conditional = True
        self.body: _Body | None = None
        self.headers: list[bytes] = []
        self.started = 0.0


def _tls_options(handle: pycurl.Curl) -> None:
    """The CA certificates Python's ssl module (and so urllib3) trusts, SSL_CERT_FILE and
    SSL_CERT_DIR included, rather than a path compiled into the wheel's libcurl."""
    paths = ssl.get_default_verify_paths()
    if paths.cafile:
        handle.setopt(pycurl.CAINFO, paths.cafile)
    if paths.capath:
        handle.setopt(pycurl.CAPATH, paths.capath)


class CurlSession:
    """One multi handle with its easy handles (and libcurl's pool of open connections).
    Used by one thread at a time; the Fetcher keeps idle sessions for the next batch."""

    def __init__(self, concurrency: int, timeout: float, retries: int, most: int | None = None) -> None:
        self.in_flight = Concurrency(concurrency, concurrency if most is None else max(concurrency, most))
        self.timeout = timeout
        self.retries = retries
        self.deadline = 4 * timeout  # connect + first byte + a body that trickles
        self.multi = pycurl.CurlMulti()
        # idle keep-alive connections kept: as many as may be in flight, and some
        self.multi.setopt(pycurl.M_MAXCONNECTS, self.in_flight.most + 16)
        self.multi.setopt(pycurl.M_PIPELINING, pycurl.PIPE_MULTIPLEX)  # HTTP/2 streams share a connection
        self.idle: list[pycurl.Curl] = []  # made as the limit first needs them
        self.ends: float | None = None  # a time.monotonic() every transfer must end by (a listing's deadline)
        self.counts = FetchCounts()

    def _handle(self) -> pycurl.Curl:
        handle = pycurl.Curl()
        handle.setopt(pycurl.NOSIGNAL, 1)
        handle.setopt(pycurl.PROTOCOLS, pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS)
        handle.setopt(pycurl.FOLLOWLOCATION, 0)
        handle.setopt(pycurl.PROXY, "")  # as urllib3's PoolManager: no proxy from the environment
        handle.setopt(pycurl.USERAGENT, "stac-static-api")
        handle.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(self.timeout * 1000)))
        handle.setopt(pycurl.LOW_SPEED_LIMIT, 1)  # the read timeout: under a byte a second ...
        handle.setopt(pycurl.LOW_SPEED_TIME, max(1, math.ceil(self.timeout)))  # ... for `timeout` s
        handle.setopt(pycurl.TIMEOUT_MS, max(1, int(self.deadline * 1000)))
        # HTTP/2 where offered over TLS (libcurl's default), and a new transfer waits for a
        # connection that may multiplex it rather than opening its own
        handle.setopt(pycurl.PIPEWAIT, 1)
        _tls_options(handle)
        return handle

    def close(self) -> None:
        for handle in self.idle:
            handle.close()
        self.idle = []
        self.multi.close()

    def fetch_many(
        self, locations: Sequence[str], limit_of: Callable[[str], int], cache: RemoteCache | None,
        fetch_other: Callable[[str], Result], before_wait: Callable[[], None] | None = None,
    ) -> Iterator[Result]:
        """(location, body, None) or (location, None, reason) for each location, in order.
        Locations that are not http(s) are read by `fetch_other` when their turn comes.
        `before_wait` is called before it blocks waiting on the network (to flush output)."""
        count = len(locations)
        remote = [is_remote(loc) for loc in locations]
        done: dict[int, Result] = {}
        active: dict[pycurl.Curl, _Transfer] = {}
        waiting: list[tuple[float, int, _Transfer]] = []  # retries, by when they may start
        in_flight = self.in_flight
        submitted = 0
        yielded = 0
        try:
            while yielded < count:
                if not remote[yielded]:
                    yield fetch_other(locations[yielded])
                    yielded += 1
                    continue
                # Keep the server busy while the caller parses: new requests go out before
                # the next finished body is handed on, not only when none is left.
                started = False
                limit = in_flight.limit
                if len(active) < limit:
                    now = time.monotonic()
                    while waiting and waiting[0][0] <= now and len(active) < limit:
                        self._start(heapq.heappop(waiting)[2], cache, active, now)
                        started = True
                    window = yielded + max(64, 8 * limit)  # finished bodies not yet handed on, at most
                    while submitted < count and submitted < window and len(active) < limit:
                        if remote[submitted]:
                            url = locations[submitted]
                            self._start(_Transfer(submitted, url, limit_of(url)), cache, active, now)
                            started = True
                        submitted += 1
                    if submitted < count and submitted >= window:
                        in_flight.held = True  # the caller is behind: more in flight would not help
                if len(active) >= limit and (submitted < count or waiting):
                    in_flight.bound = True
                result = done.pop(yielded, None)
                if result is not None and not started:
                    yield result
                    yielded += 1
                    continue
                self._perform()
                finished = self._collect(active, cache, done, waiting)
                if result is not None:
                    yield result
                    yielded += 1
                    continue
                if not finished and yielded not in done:
                    if before_wait is not None:
                        before_wait()
                    self._wait(active, waiting)
        finally:
            self._release_all(active)

    def chains(self, starts: list[str], limit: int, following: Callable[[int, bytes], str | None]) -> str | None:
        """Chains of transfers, one in flight a chain, as a listing's parts follow their pages:
        chain i starts at ``starts[i]``; as each body arrives, ``following(i, body)`` (called
        between transfers, the others going on meanwhile) gives the chain's next URL, None when
        it ends. Timeouts, retries and the body ``limit`` as fetch_many's. The reason of the
        first transfer that failed (the others stopped), None once every chain ended."""
        active: dict[pycurl.Curl, _Transfer] = {}
        waiting: list[tuple[float, int, _Transfer]] = []
        done: dict[int, Result] = {}
        now = time.monotonic()
        for i, url in enumerate(starts):
            self._start(_Transfer(i, url, limit), None, active, now)
        try:
            while active or waiting:
                now = time.monotonic()
                while waiting and waiting[0][0] <= now:
                    self._start(heapq.heappop(waiting)[2], None, active, now)
                self._perform()
                if self._collect(active, None, done, waiting):
                    for i in list(done):
                        _, body, reason = done.pop(i)
                        if body is None:
                            return reason or "no answer"
                        following_url = following(i, body)
                        if following_url is not None:
                            self._start(_Transfer(i, following_url, limit), None, active, time.monotonic())
                    continue
                self._wait(active, waiting)
            return None
        finally:
            self._release_all(active)

    def _wait(self, active: dict[pycurl.Curl, _Transfer], waiting: list[tuple[float, int, _Transfer]]) -> None:
        """Until a transfer in flight has news, a retry is due or libcurl's own timers
        (resolver, timeouts) fire: at most a second."""
        wait = 1.0 if not waiting else max(0.0, min(1.0, waiting[0][0] - time.monotonic()))
        if active:
            due = self.multi.timeout()
            self.multi.select(min(wait, due / 1000) if due >= 0 else wait)
        elif wait > 0:
            time.sleep(wait)

    def _release_all(self, active: dict[pycurl.Curl, _Transfer]) -> None:
        """The handles of transfers still in flight (given up) released for reuse."""
        for handle in list(active):
            self._release(handle)

    def _start(self, transfer: _Transfer, cache: RemoteCache | None, active: dict[pycurl.Curl, _Transfer],
               now: float) -> None:
        handle = self.idle.pop() if self.idle else self._handle()
        transfer.body = body = _Body(transfer.limit)
        transfer.started = now
        handle.setopt(pycurl.URL, curl_url(transfer.url))
        handle.setopt(pycurl.WRITEFUNCTION, body.write)
        handle.setopt(pycurl.MAXFILESIZE_LARGE, transfer.limit)
        if self.ends is not None:  # (set on every start: an idle handle keeps what it was given)
            handle.setopt(pycurl.TIMEOUT_MS, max(1, int(min(self.deadline, self.ends - now) * 1000)))
        if cache is not None:
            transfer.headers = []
            handle.setopt(pycurl.HEADERFUNCTION, transfer.headers.append)
            conditional = cache.conditional_headers(transfer.url) if transfer.conditional else {}
            transfer.conditional = bool(conditional)
            if conditional:
                handle.setopt(pycurl.HTTPHEADER, [f"{k}: {v}" for k, v in conditional.items()])
            else:  # an empty list would keep the last transfer's headers
                handle.unsetopt(pycurl.HTTPHEADER)
        active[handle] = transfer
        self.counts.requests += 1
        self.multi.add_handle(handle)

    def _perform(self) -> None:
        while True:
            status, _ = self.multi.perform()
            if status != pycurl.E_CALL_MULTI_PERFORM:
                return

    def _collect(self, active: dict[pycurl.Curl, _Transfer], cache: RemoteCache | None,
                 done: dict[int, Result], waiting: list[tuple[float, int, _Transfer]]) -> int:
        finished = 0
        while True:
            queued, ok, failed = self.multi.info_read()
            for handle in ok:
                transfer = active.pop(handle)
                status = handle.getinfo(pycurl.RESPONSE_CODE)
                self._release(handle)
                finished += 1
                self._answered(transfer, status, cache, done, waiting)
            for handle, errno, message in failed:
                transfer = active.pop(handle)
                elapsed = time.monotonic() - transfer.started
                self._release(handle)
                finished += 1
                self._failed(transfer, errno, message, elapsed, done, waiting)
            if not queued:
                if finished:
                    self.in_flight.finished(time.monotonic(), finished)
                return finished

    def _release(self, handle: pycurl.Curl) -> None:
        self.multi.remove_handle(handle)
        handle.setopt(pycurl.WRITEFUNCTION, _discard)  # drop the references to the body
        self.idle.append(handle)

    def _answered(self, transfer: _Transfer, status: int, cache: RemoteCache | None, done: dict[int, Result],
                  waiting: list[tuple[float, int, _Transfer]]) -> None:
        body = transfer.body
        assert body is not None
        transfer.body = None
        url = transfer.url
        if status == 200:
            data = b"".join(body.chunks)
            if cache is not None:
                etag, modified = _validators(transfer.headers)
                cache.store_validators(url, etag, modified, data)
            done[transfer.position] = (url, data, None)
            return
        if status == 304 and cache is not None and transfer.conditional:
            cached = cache.cached_body(url)
            if cached is not None:
                self.counts.not_modified += 1
                done[transfer.position] = (url, cached, None)
                return
            transfer.conditional = False  # evicted meanwhile: ask for the whole document
            heapq.heappush(waiting, (0.0, transfer.position, transfer))
            return
        if status in OVERLOADED_STATUS:
            self.in_flight.overloaded(transfer.started, time.monotonic())
        if (status == 429 or status >= 500) and transfer.attempt < self.retries:
            self._retry(transfer, waiting)
            return
        self.counts.errors += 1
        done[transfer.position] = (url, None, f"HTTP {status}")

    def _failed(self, transfer: _Transfer, errno: int, message: str, elapsed: float, done: dict[int, Result],
                waiting: list[tuple[float, int, _Transfer]]) -> None:
        transfer.body = None
        if errno in OVERLOADED_ERRORS:
            self.in_flight.overloaded(transfer.started, time.monotonic())
        if errno in OVER_LIMIT:
            reason = f"response over the {transfer.limit} byte limit"
        elif errno == pycurl.E_OPERATION_TIMEDOUT and elapsed >= self.deadline * 0.99:
            reason = f"response not complete after {self.deadline:g} s"
        elif errno in RETRYABLE and transfer.attempt < self.retries:
            self._retry(transfer, waiting)
            return
        else:
            reason = f"curl error {errno}: {message}"
        self.counts.errors += 1
        done[transfer.position] = (transfer.url, None, reason)

    def _retry(self, transfer: _Transfer, waiting: list[tuple[float, int, _Transfer]]) -> None:
        self.counts.retries += 1
        transfer.attempt += 1
        heapq.heappush(waiting, (time.monotonic() + transfer.delay, transfer.position, transfer))
        transfer.delay *= 2


def _discard(data: bytes) -> None:
    return None


def _validators(lines: list[bytes]) -> tuple[str | None, str | None]:
    etag = modified = None
    for line in lines:
        name, sep, value = line.partition(b":")
        if not sep:
            continue
        name = name.strip().lower()
        if name == b"etag":
            etag = value.strip().decode("latin-1")
        elif name == b"last-modified":
            modified = value.strip().decode("latin-1")
    return etag, modified
