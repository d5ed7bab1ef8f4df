"""Batches of remote documents through libcurl: in this process (a CurlSession, reused from
an idle pool), or, for a large batch when a core is free, in a child process (fetch_worker)
whose bodies stream back through a pipe."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Sequence

import orjson

from server import metrics
from server.catalog import fetch_worker
from server.catalog.curl import CurlSession, RemoteCache, Result
from server.catalog.locations import is_remote

# The folder holding the `server` package: the child runs `python -m server.catalog.fetch_worker`.
_PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _child_env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": _PACKAGE_PARENT + (os.pathsep + path if path else "")}


def _spare_core() -> bool:
    """Whether a child process would have a core to itself: the 1-minute load average (which
    counts this process and the server it reads from) leaves most of one core idle. The child
    costs ~15% more CPU in all (the pipe, its start): ~10% less time when a core is free
    (10k items, 2 cores), ~7% more when another process keeps the cores busy."""
    try:
        cores = len(os.sched_getaffinity(0))
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        return False
    return cores >= 2 and load < cores - 0.25


class _Unconditional:
    """A RemoteCache that asks no "changed since?" (its entry is gone), and stores as usual."""

    def __init__(self, cache: RemoteCache | None) -> None:
        self.cache = cache

    def conditional_headers(self, url: str) -> dict[str, str]:
        return {}

    def cached_body(self, url: str) -> bytes | None:
        return None

    def store_validators(self, url: str, etag: str | None, modified: str | None, body: bytes) -> None:
        if self.cache is not None:
            self.cache.store_validators(url, etag, modified, body)


def _grow_pipe(fd: int) -> None:
    """A 1 MiB pipe (Linux): the child runs further ahead of the parser between reads."""
    try:
        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except OSError:
        pass


# A batch at least this large (all http(s)) is fetched by a child process (fetch_worker.py)
# when a core is free; the child costs ~50 ms to start.
WORKER_MIN_BATCH = 2000


def _count_worker(read: Callable[[int], bytes]) -> None:
    """The fetch_worker's last record: its counts, for the metrics (lost if it died first)."""
    head = read(fetch_worker.HEADER.size)
    if len(head) < fetch_worker.HEADER.size:
        return
    kind, _, _, size = fetch_worker.HEADER.unpack(head)
    payload = read(size)
    if kind == fetch_worker.COUNTS and len(payload) == size:
        metrics.count_remote("http", **orjson.loads(payload))


class CurlPool:
    """Idle CurlSessions, so that each batch reuses the connections the last one opened."""

    def __init__(self, concurrency: int, timeout: float, retries: int, worker_min_batch: int | None = None,
                 most: int | None = None) -> None:
        self._args = (concurrency, timeout, retries, concurrency if most is None else max(concurrency, most))
        self._idle: list[CurlSession] = []
        self._lock = threading.Lock()
        self._auto = worker_min_batch is None  # then also only with a core to spare
        self.worker_min_batch = WORKER_MIN_BATCH if worker_min_batch is None else worker_min_batch

    def fetch_many(self, locations: Sequence[str], limit_of: Callable[[str], int], cache: RemoteCache | None,
                   fetch_other: Callable[[str], Result]) -> Iterator[Result]:
        if len(locations) >= self.worker_min_batch and (not self._auto or _spare_core()):
            if all(is_remote(loc) for loc in locations):
                yield from self._fetch_in_worker(locations, limit_of, cache, fetch_other)
                return
        yield from self._fetch_here(locations, limit_of, cache, fetch_other)

    def _fetch_in_worker(self, locations: Sequence[str], limit_of: Callable[[str], int],
                         cache: RemoteCache | None, fetch_other: Callable[[str], Result]) -> Iterator[Result]:
        """The batch fetched by a child process (fetch_worker.py), read back in order; what it
        did not answer (it died, or could not start) is fetched here."""
        concurrency, timeout, retries, most = self._args
        options = {"concurrency": concurrency, "most": most, "timeout": timeout, "retries": retries,
                   "cache": cache is not None}
        answered = 0
        proc = None
        try:
            proc = subprocess.Popen([sys.executable, "-m", fetch_worker.__name__], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, bufsize=1 << 20, env=_child_env())
            assert proc.stdin is not None and proc.stdout is not None
            _grow_pipe(proc.stdout.fileno())
            # the child reads all of this before it writes anything: no deadlock
            write = proc.stdin.write
            write(orjson.dumps(options))
            for url in locations:
                etag = modified = None
                if cache is not None:
                    validators = cache.conditional_headers(url)
                    etag, modified = validators.get("If-None-Match"), validators.get("If-Modified-Since")
                write(b"\n" + orjson.dumps([url, limit_of(url), etag, modified]))
            proc.stdin.close()
            read = proc.stdout.read
            header = fetch_worker.HEADER
            for url in locations:
                head = read(header.size)
                if len(head) < header.size:
                    break
                kind, etag_size, modified_size, size = header.unpack(head)
                etag = read(etag_size).decode("latin-1") if etag_size else None
                modified = read(modified_size).decode("latin-1") if modified_size else None
                payload = read(size)
                if len(payload) < size:
                    break
                answered += 1
                if kind == fetch_worker.BODY:
                    if cache is not None and (etag or modified):
                        cache.store_validators(url, etag, modified, payload)
                    yield url, payload, None
                elif kind == fetch_worker.ERROR:
                    yield url, None, payload.decode("utf-8", "replace")
                else:  # NOT_MODIFIED
                    cached = cache.cached_body(url) if cache is not None else None
                    if cached is not None:
                        yield url, cached, None
                    else:  # evicted meanwhile: asked again here, for the whole document
                        yield from self._fetch_here([url], limit_of, _Unconditional(cache), fetch_other)
            if answered == len(locations):
                _count_worker(read)
        except OSError:  # could not start it, or it went away: the rest is fetched here
            pass
        finally:
            if proc is not None:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
        if answered < len(locations):
            yield from self._fetch_here(locations[answered:], limit_of, cache, fetch_other)

    def _fetch_here(self, locations: Sequence[str], limit_of: Callable[[str], int], cache: RemoteCache | None,
                    fetch_other: Callable[[str], Result]) -> Iterator[Result]:
        with self._lock:
            session = self._idle.pop() if self._idle else None
        if session is None:
            session = CurlSession(*self._args)
        try:
            yield from session.fetch_many(locations, limit_of, cache, fetch_other)
        finally:
            metrics.count_remote("http", **session.counts.take())
            with self._lock:
                self._idle.append(session)

    def fetch_fresh(self, locations: Sequence[str], limit_of: Callable[[str], int], cache: RemoteCache | None,
                    fetch_other: Callable[[str], Result], counts: dict[str, int]) -> Iterator[Result]:
        """A batch through a session of its own, closed after it; its counts added to
        ``counts`` (a forked child's: its connections are not the pooled ones, which belong
        to the process that forked it, and its metrics go back to that process)."""
        session = CurlSession(*self._args)
        try:
            yield from session.fetch_many(locations, limit_of, cache, fetch_other)
        finally:
            for name, value in session.counts.take().items():
                counts[name] = counts.get(name, 0) + value
            session.close()

    def close(self) -> None:
        with self._lock:
            sessions, self._idle = self._idle, []
        for session in sessions:
            session.close()
