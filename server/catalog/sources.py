"""Reading the bytes of one document, locally or over HTTP, within a size limit.

Remote documents: with pycurl installed, batches through libcurl's multi interface
(curl.py; large ones in a child process, fetch_worker.py): measured against nginx on
loopback, ~50,000 documents/s from one thread. Without it, one urllib3 PoolManager
(connection pooling, timeouts) used from the loader's threads: ~4,200 documents/s with 16
threads (httpx: ~2,100/s). Both follow the same rules (timeouts, retries, size limits, no
redirects, conditional requests with the RemoteCache).
"""

from __future__ import annotations

import os
import stat
import threading
import time
from array import array
from collections.abc import Callable, Iterator
from typing import Any

import urllib3
from cachetools import LRUCache

from server.catalog.conditional import validator_headers
from server.catalog.locations import is_remote

try:  # libcurl's multi interface: many remote documents at once for little Python (curl.py)
    from server.catalog.curl_pool import CurlPool
except ImportError:  # pycurl not installed: urllib3 from the loader's threads
    CurlPool = None  # type: ignore[assignment,misc]


class FetchError(Exception):
    """The document could not be read; the message says why."""


class SourceLog:
    """Every local file read, with the size and mtime it had: a snapshot's fingerprint."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.sizes = array("q")
        self.mtimes = array("q")

    def add(self, path: str, size: int, mtime_ns: int) -> None:
        self.paths.append(path)
        self.sizes.append(size)
        self.mtimes.append(mtime_ns)


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


class Fetcher:
    def __init__(
        self, *, max_bytes: int, timeout: float = 20.0, retries: int = 3, remote_cache: RemoteCache | None = None,
        real_path_check: Callable[[str, str], str | None] | None = None,
        roots: tuple[str, ...] = (), root_max_bytes: int = 8 * 1024**3, concurrency: int = 32,
        use_curl: bool | None = None, worker_min_batch: int | None = None,
    ) -> None:
        self.roots = set(roots)
        self.root_max_bytes = max(root_max_bytes, max_bytes)
        self._real_path_check = real_path_check
        self.remote_cache = remote_cache
        self.sources = SourceLog()
        self._s3: Any = None
        self.max_bytes = max_bytes
        self.retries = retries
        self._client: urllib3.PoolManager | None = None
        self._timeout = timeout
        if use_curl is None:
            use_curl = CurlPool is not None
        if use_curl and CurlPool is None:
            raise FetchError("pycurl is not installed")
        self._curl = CurlPool(concurrency, timeout, retries, worker_min_batch) if use_curl else None

    @property
    def batches(self) -> bool:
        """Whether fetch_many reads remote documents concurrently by itself (libcurl); else
        the caller runs fetch() from threads."""
        return self._curl is not None

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.clear()
            self._client = None
        if self._curl is not None:
            self._curl.close()

    def _limit(self, location: str) -> int:
        return self.root_max_bytes if location in self.roots else self.max_bytes

    def fetch_result(self, location: str) -> tuple[str, bytes | None, str | None]:
        try:
            return location, self.fetch(location), None
        except FetchError as exc:
            return location, None, str(exc)

    def fetch_many(self, locations: list[str]) -> Iterator[tuple[str, bytes | None, str | None]]:
        """(location, body, None) or (location, None, reason) for each, in order: http(s)
        through libcurl, many in flight from this thread; anything else one by one. Only
        when `batches`; one thread at a time per batch (each batch has its own session)."""
        assert self._curl is not None
        return self._curl.fetch_many(locations, self._limit, self.remote_cache, self.fetch_result)

    def fetch(self, location: str) -> bytes:
        # A configured root (a bulk ndjson or FeatureCollection file may be gigabytes) has its
        # own, larger limit; every document it leads to has the per-document one.
        limit = self._limit(location)
        if is_remote(location):
            if self._curl is not None:
                return self._fetch_remote_curl(location)
            return self._fetch_remote(location, limit)
        if location.startswith("s3://"):
            return self._fetch_s3(location, limit)
        return self._fetch_local(location, limit)

    def _fetch_s3(self, url: str, limit: int) -> bytes:
        """s3:// through boto3 (the AWS SDK: credentials, endpoint such as MinIO's, retries
        and signing from the usual AWS environment variables and files; anonymous when
        no credentials are configured, for public buckets)."""
        if self._s3 is None:
            self._s3 = s3_client(self._timeout, self.retries)
        bucket, _, key = url[len("s3://"):].partition("/")
        try:
            obj = self._s3.get_object(Bucket=bucket, Key=key)
        except Exception as exc:  # botocore's ClientError, EndpointConnectionError, ...
            raise FetchError(f"S3 {type(exc).__name__}: {exc}") from None
        size = obj.get("ContentLength") or 0
        if size > limit:
            obj["Body"].close()
            raise FetchError(f"object is {size} bytes, over the {limit} byte limit")
        body = obj["Body"].read(limit + 1)
        if len(body) > limit:
            raise FetchError(f"object over the {limit} byte limit")
        return body

    def _fetch_local(self, path: str, limit: int) -> bytes:
        """One open, one fstat, one read: cheaper than the io stack, and only regular
        files (a FIFO or device would never end)."""
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        except OSError as exc:
            raise FetchError(exc.strerror or str(exc)) from None
        try:
            self._check_real_path(path, fd)
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise FetchError("not a regular file")
            if info.st_size > limit:
                raise FetchError(f"file is {info.st_size} bytes, over the {limit} byte limit")
            self.sources.add(path, info.st_size, info.st_mtime_ns)
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

    def _check_real_path(self, path: str, fd: int) -> None:
        """Where the opened file really is (one readlink of /proc/self/fd, not an lstat per
        path component), for the caller's check: inside the roots, not read before."""
        if self._real_path_check is None:
            return
        try:
            real = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            real = os.path.realpath(path)
        refusal = self._real_path_check(path, real)
        if refusal is not None:
            raise FetchError(refusal)

    def _fetch_remote_curl(self, url: str) -> bytes:
        [(_, body, error)] = list(self.fetch_many([url]))
        if body is None:
            raise FetchError(error or "unreadable")
        return body

    def _client_for_remote(self) -> urllib3.PoolManager:
        if self._client is None:
            self._client = urllib3.PoolManager(
                maxsize=64,
                block=False,
                retries=False,  # retried below, with backoff, only on what is worth retrying
                timeout=urllib3.Timeout(connect=self._timeout, read=self._timeout),
            )
        return self._client

    def _fetch_remote(self, url: str, limit: int) -> bytes:
        client = self._client_for_remote()
        cache = self.remote_cache
        headers = cache.conditional_headers(url) if cache is not None else {}
        delay = 0.2
        for attempt in range(self.retries + 1):
            last = attempt == self.retries
            try:
                response = client.request("GET", url, headers=headers, preload_content=False, redirect=False)
            except (urllib3.exceptions.TimeoutError, urllib3.exceptions.ProtocolError) as exc:
                if last:
                    raise FetchError(f"{type(exc).__name__}: {exc}") from None
                time.sleep(delay)
                delay *= 2
                continue
            except urllib3.exceptions.HTTPError as exc:
                raise FetchError(f"{type(exc).__name__}: {exc}") from None
            try:
                status = response.status
                if status == 304 and cache is not None:
                    body = cache.cached_body(url)
                    if body is not None:
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
            time.sleep(delay)
            delay *= 2
        raise FetchError("gave up")  # pragma: no cover - the loop always returns or raises

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

    def _read_limited(self, response: urllib3.BaseHTTPResponse, limit: int) -> bytes:
        """The body, within the size limit and an overall deadline (a server trickling
        bytes forever never trips a per-read timeout)."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FetchError(f"response of {declared} bytes, over the {limit} byte limit")
        deadline = time.monotonic() + 3 * self._timeout
        chunks: list[bytes] = []
        total = 0
        for chunk in response.stream(1 << 16):
            total += len(chunk)
            if total > limit:
                raise FetchError(f"response over the {limit} byte limit")
            if time.monotonic() > deadline:
                raise FetchError(f"response not complete after {3 * self._timeout:.0f} s")
            chunks.append(chunk)
        return b"".join(chunks)
