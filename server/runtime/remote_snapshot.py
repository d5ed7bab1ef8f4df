"""`serve --index URL`: replicas started from one published snapshot.

The builder writes a snapshot (`index ROOT... -o s3://bucket/key`, or `-o FILE` and an upload of
its own); each replica downloads it once into a local cache folder (settings.index_cache_dir)
and maps it as it maps a local file (read_snapshot: the item bytes stay in the mapped file).
At the next start, and at each reload (SIGHUP, POST /_mgmt/reload, --reload-interval), a
conditional request with the copy's ETag / Last-Modified asks whether it changed: a 304 reuses
the copy, with no transfer and no catalog read.

A download goes to a temporary file beside the copy and is checked as it arrives
(snapshot.SnapshotCheck: magic, format version, the header's checksum, then the body's length
and SHA-256); only a complete, checked file is renamed over the copy, so a truncated or
corrupted download is refused with the reason and the previous copy stays. A process serving
the previous copy keeps its mapping of it (a rename does not change mapped pages).

Several replicas on one machine may share the folder: each download has its own temporary
name, and the copy's validators (in a JSON file beside it) name the header checksum of the
copy they describe, so a stale pair is never taken for current. Whether a reload has something
new to serve is decided by that checksum against the one of the snapshot this process serves,
not by the 304 alone: another process may have brought the shared copy up to date meanwhile.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import orjson

from server.catalog.configured import load_options
from server.catalog.loader import LoadOptions, hrefs_config
from server.catalog.sources import Fetcher, FetchError, scheme
from server.index import Index
from server.runtime.snapshot import SnapshotCheck, SnapshotError, read_header, read_snapshot
from server.settings import Settings

log = logging.getLogger("stac_static_api.snapshot")

REMOTE_SCHEMES = ("http", "https", "s3")


def is_remote(location: str) -> bool:
    return scheme(location) in REMOTE_SCHEMES


def check_hrefs(index: Index, settings: Settings, name: str) -> None:
    """A snapshot's hrefs are those of its build: refused when built with other hrefs settings."""
    wanted = hrefs_config(load_options(settings))
    if (index.hrefs_config or hrefs_config(LoadOptions())) != wanted:
        raise SnapshotError(f"{name} was built with other hrefs settings ({index.hrefs_config}), not {wanted}")


class RemoteSnapshot:
    """One snapshot URL and its local copy. ``fetch()`` brings the copy up to date; called as
    a reload's build, the new index or None when the snapshot did not change."""

    def __init__(self, url: str, settings: Settings) -> None:
        self.url = url
        self.settings = settings
        self.copy_sha256: str | None = None  # header checksum of the copy, as of the last fetch
        self.serving_sha256: str | None = None  # of the snapshot this process last read to serve
        self.folder = Path(settings.index_cache_folder())
        name = re.sub(r"[^A-Za-z0-9._-]", "_", url.rstrip("/").rsplit("/", 1)[-1])[-64:] or "snapshot"
        key = hashlib.sha256(url.encode()).hexdigest()[:16]
        self.path = self.folder / f"{key}-{name}"
        self.meta_path = self.folder / f"{key}-{name}.json"

    # -- the copy --------------------------------------------------------------------------------

    def cached(self) -> dict[str, Any] | None:
        """The copy's validators, when the copy is complete and is the one they describe."""
        try:
            meta = orjson.loads(self.meta_path.read_bytes())
            with open(self.path, "rb") as f:
                header = read_header(f, str(self.path))  # and complete: the header ends it
        except (OSError, orjson.JSONDecodeError, SnapshotError, KeyError, TypeError):
            return None
        if not isinstance(meta, dict) or meta.get("header_sha256") != header["header_sha256"]:
            return None
        return meta

    def fetch(self) -> bool:
        """Bring the copy up to date: True when a new snapshot was downloaded, False when the
        copy is current (304). SnapshotError with the reason otherwise (the previous copy, if
        any, stays as it was)."""
        meta = self.cached()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.folder)
        except OSError as exc:
            raise SnapshotError(f"cannot write the snapshot cache folder {self.folder} ({exc.strerror or exc}): "
                                "set STAC_STATIC_INDEX_CACHE_DIR") from None
        kept = "; the cached copy is kept" if meta else ""
        started = time.monotonic()
        check: SnapshotCheck | None = None
        try:
            with os.fdopen(fd, "wb") as f, self._fetcher() as fetcher:
                check = SnapshotCheck(self.url, f)
                got = fetcher.download(self.url, check, *((meta["etag"], meta["last_modified"]) if meta else ()))
                if not got.modified:
                    self.copy_sha256 = meta["header_sha256"] if meta else None
                    return False
                header = check.finish()
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except FetchError as exc:
            raise SnapshotError(f"cannot download {self.url}: {exc}{kept}") from None
        except SnapshotError as exc:
            raise SnapshotError(f"{exc}: refused{kept}") from None
        except OSError as exc:
            raise SnapshotError(f"cannot write {self.path}: {exc.strerror or exc}{kept}") from None
        finally:
            if check is not None:
                check.close()
            if os.path.exists(tmp):
                os.unlink(tmp)
        self.copy_sha256 = header["header_sha256"]
        self._write_meta({"url": self.url, "etag": got.etag, "last_modified": got.last_modified,
                          "header_sha256": header["header_sha256"], "bytes": got.size, "fetched": time.time()})
        log.info("downloaded %s (%d bytes, %d items) in %.1f s", self.url, got.size, header.get("items", 0),
                 time.monotonic() - started)
        return True

    def _write_meta(self, meta: dict[str, Any]) -> None:
        tmp = self.meta_path.with_name(f".{self.meta_path.name}.{os.getpid()}")
        tmp.write_bytes(orjson.dumps(meta))
        os.replace(tmp, self.meta_path)

    def _fetcher(self) -> Fetcher:
        return Fetcher(max_bytes=self.settings.max_document_bytes, timeout=self.settings.fetch_timeout,
                       retries=self.settings.fetch_retries, use_curl=False)

    # -- serving it ------------------------------------------------------------------------------

    def load(self) -> Index:
        """At the start: the index of the copy, brought up to date first. A copy that answers
        304 but cannot be read (damaged on this disk after it was checked, e.g. by a crash of
        the machine) is dropped and downloaded again. When the URL cannot give a good snapshot
        (unreachable, or its download is refused) but a checked copy is cached, the copy is
        served, with the reason logged: a replica restarting while the bucket is away or a
        bad snapshot was published still serves; a reload tries the URL again."""
        try:
            how = "downloaded" if self.fetch() else "unchanged since the cached copy (304)"
        except SnapshotError as exc:
            meta = self.cached()
            if meta is None:
                raise
            fetched = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(meta.get("fetched", 0)))
            log.warning("serving the cached copy of %s fetched %s: %s", self.url, fetched, exc)
            how = f"the cached copy fetched {fetched}, as the URL failed: {exc}"
            self.copy_sha256 = meta["header_sha256"]
        try:
            index, header = read_snapshot(str(self.path), verify=False)
        except SnapshotError as exc:
            if how == "downloaded":
                raise
            log.warning("the cached copy of %s is unreadable (%s): downloading it again", self.url, exc)
            self.meta_path.unlink(missing_ok=True)
            self.fetch()
            how = "downloaded again"
            index, header = read_snapshot(str(self.path), verify=False)
        self._serve(index, header)
        print(f"stac-static-api: {index.size} items from snapshot {self.url} ({how})", file=sys.stderr)
        return index

    def _read(self) -> Index:
        return self._serve(*read_snapshot(str(self.path), verify=False))

    def _serve(self, index: Index, header: dict[str, Any]) -> Index:
        """The index of a snapshot read, checked for serving here. Its fingerprint names the
        builder's files, not this machine's: neither verified here nor watched (--watch-interval)."""
        check_hrefs(index, self.settings, self.url)
        index.fingerprint = None
        self.serving_sha256 = header["header_sha256"]
        return index

    def _changed(self) -> bool:
        """Whether the copy, once up to date, is another snapshot than the one served."""
        self.fetch()
        return self.copy_sha256 is None or self.copy_sha256 != self.serving_sha256

    def __call__(self) -> Index | None:
        """A reload: the new snapshot's index, or None when it is the one served."""
        return self._read() if self._changed() else None

    def build_snapshot(self, workdir: Path, fingerprint: bool = False) -> Path | None:
        """For forked workers' supervisor: the copy to publish, None when unchanged."""
        if not self._changed():
            return None
        self._read()  # the checks of a start, before the workers map it
        return self.path

    def kill(self) -> None:
        pass  # a download in a thread ends with its timeout; the server does not wait for it
