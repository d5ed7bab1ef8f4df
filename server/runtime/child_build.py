"""Reload builds in a child process.

A reload in a thread of the serving process shares its GIL: at a million items the build
starves the requests and the requests starve the build (measured: the reload had not finished
after minutes of load), and the build's garbage stays in the serving heap. Here a fresh
interpreter (``python -m server.runtime.child_build JOB``) loads the catalogs and writes a snapshot; the
server maps that snapshot (seconds at 1M items, the big buffers stay in the page cache) and
the child's memory goes back to the OS when it exits.

What the child counts for the metrics (its remote fetches) comes back in a file and is added to
this process's counters (server.metrics): the child never writes to the server's multiprocess
metrics folder, where every reload would leave files of its own.

The remote documents cache (ETags) goes to the child and comes back, so conditional
requests work across reloads as in a thread; so does the memory of since when reloads could
not read a document (configured.load_index's ``unreadable``), from a failed build too. So does
the index being replaced: the child maps the snapshot it was served from (the one the last
build wrote, kept until the next one; the ``--index`` file; or, at the first reload of an
index loaded from the roots, a snapshot written of it then) and takes from it the items of
documents that did not change (server.index.reuse).
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from server import metrics
from server.catalog.configured import load_index, roots_of
from server.catalog.sources import RemoteCache
from server.index import Index
from server.runtime.snapshot import SnapshotError, SnapshotWriter, read_snapshot, write_snapshot
from server.settings import Settings


class ChildBuildError(Exception):
    """The child could not build an index; the message is its reason."""


def failure_text(exc: Exception) -> str:
    """A failed build as reported: "LoadError: ...", the type once (a ChildBuildError's
    message already names the child's own failure)."""
    return str(exc) if isinstance(exc, ChildBuildError) else f"{type(exc).__name__}: {exc}"


class ChildBuilder:
    """Callable building an Index in a child process; ``kill()`` stops a running build."""

    def __init__(self, settings: Settings, remote_cache: RemoteCache, previous: str | None = None,
                 current: Callable[[], Index | None] | None = None) -> None:
        """``previous``: a snapshot of the index being served (its items are reused where their
        documents did not change); ``current``: the serving index, written to a snapshot for
        that at the first reload when there is none."""
        self.settings = settings
        self.remote_cache = remote_cache
        self.previous = previous
        self.current = current
        # snapshots written here and kept: the last build's (the next one's previous) and the one
        # it refers to for most of its items (its base, see runtime/snapshot.py), by path
        self._kept: set[str] = set()
        # since when consecutive reloads could not read each document (configured.load_index),
        # kept here, in the process that asks for the builds (the server, or the supervisor)
        self.unreadable: dict[str, float] = {}
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._killed = False

    def __call__(self) -> Index:
        workdir = Path(tempfile.mkdtemp(prefix="stac-static-api-reload-"))
        try:
            snapshot = self.build_snapshot(workdir)
            index, header = read_snapshot(str(snapshot), verify=False)
            self.keep(snapshot, header.get("base", {}).get("path"))
            return index
        finally:
            shutil.rmtree(workdir, ignore_errors=True)  # the mapping keeps the snapshot's pages alive

    def keep(self, snapshot: Path, base: str | None = None) -> None:
        """``snapshot`` (now served) becomes the next build's previous index; the snapshots kept
        before go, but for ``base``, the one it refers to (a mapping of them keeps their pages
        while a request still reads them)."""
        kept = self._kept_path()
        os.replace(snapshot, kept)
        self.previous = str(kept)
        self._forget(keep={str(kept), base})

    def _kept_path(self) -> Path:
        path = Path(tempfile.mkdtemp(prefix="stac-static-api-previous-")) / "index.snapshot"
        self._kept.add(str(path))
        return path

    def _forget(self, keep: set[str | None]) -> None:
        for path in self._kept - keep:
            shutil.rmtree(Path(path).parent, ignore_errors=True)
        self._kept &= keep

    def forget_all_but(self, base: str | None) -> None:
        """For a caller that keeps the builds' snapshots itself (workers.Supervisor): remove
        the snapshots written here, but for ``base``, which the one it serves refers to."""
        self._forget(keep={base})

    def close(self) -> None:
        """Remove the snapshots kept for the next build."""
        self._forget(keep=set())

    def _previous_snapshot(self) -> str | None:
        if self.previous is not None and os.path.exists(self.previous):
            return self.previous
        index = self.current() if self.current is not None else None
        if index is None or index.origins is None or not len(index.origins):
            return None
        path = self._kept_path()  # kept: the build's snapshot may refer to it
        write_snapshot(str(path), index, roots_of(self.settings))
        self.previous = str(path)
        return str(path)

    def build_snapshot(self, workdir: Path, fingerprint: bool = False) -> Path:
        """Run the child in ``workdir``; the snapshot it wrote (and, with ``fingerprint``, the
        fingerprint of the local files it read, in ``fingerprint.pickle``)."""
        job = workdir / "job.pickle"
        job.write_bytes(pickle.dumps({"settings": self.settings.model_dump(), "cache": self.remote_cache,
                                      "fingerprint": fingerprint, "previous": self._previous_snapshot(),
                                      "unreadable": self.unreadable},
                                     protocol=5))
        with self._lock:
            if self._killed:
                raise ChildBuildError("the server is stopping")
            env = {k: v for k, v in os.environ.items() if k != metrics.MULTIPROCESS_ENV}
            self._child = subprocess.Popen([sys.executable, "-m", "server.runtime.child_build", str(workdir)],
                                           stdin=subprocess.DEVNULL, env=env)
        code = self._child.wait()
        with self._lock:
            self._child = None
        counted = workdir / "metrics.json"
        if counted.exists():  # not when it was killed or crashed: what it counted is lost
            metrics.add_counter_values(orjson.loads(counted.read_bytes()))
        unreadable = workdir / "unreadable.json"
        if unreadable.exists():  # written by a build that failed too (a reload it refused starts the time)
            self.unreadable = orjson.loads(unreadable.read_bytes())
        if code != 0:
            reason = (workdir / "error").read_text() if (workdir / "error").exists() else ""
            raise ChildBuildError(reason or f"the build process exited with status {code}")
        self.remote_cache.replace_with(pickle.loads((workdir / "cache.pickle").read_bytes()))
        return workdir / "index.snapshot"

    def kill(self) -> None:
        with self._lock:
            self._killed = True
            if self._child is not None and self._child.poll() is None:
                self._child.kill()


def read_published(publication: Path) -> Index:
    """The index a supervisor published (see server.runtime.workers.Supervisor), mapped."""
    doc = orjson.loads(publication.read_bytes())
    if not doc["ok"]:
        raise ChildBuildError(doc["error"])
    index, _ = read_snapshot(doc["snapshot"], verify=False)
    index.version = doc["version"]
    return index


def child_main(workdir: str) -> int:
    """Load the catalogs described by the job file and write the index and the cache."""
    folder = Path(workdir)
    job: dict[str, Any] = pickle.loads((folder / "job.pickle").read_bytes())
    settings = Settings(**job["settings"])
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    cache: RemoteCache = job["cache"]
    previous = None
    if job.get("previous"):
        try:
            previous, _ = read_snapshot(job["previous"], verify=False)
        except SnapshotError as exc:  # everything is read again
            logging.getLogger("stac_static_api.reload").warning("not reusing the previous index: %s", exc)
    # the items' bytes go into the snapshot as they are read, as `index` does (snapshot.py);
    # those reused from the previous one stay in its file, which the new one refers to (until
    # the reload compacts: server.index.reuse)
    try:
        writer = SnapshotWriter(str(folder / "index.snapshot"))
    except OSError as exc:
        return _failed(folder, exc)
    unreadable: dict[str, float] = dict(job.get("unreadable") or {})
    try:
        try:
            index = load_index(settings, cache, previous=previous, spool=writer.spool, refer_previous=True,
                               unreadable=unreadable)
        finally:
            for name, value in (("metrics.json", metrics.counter_values()), ("unreadable.json", unreadable)):
                with contextlib.suppress(OSError):  # (a full disk: these are lost, not the reason)
                    (folder / name).write_bytes(orjson.dumps(value))
        # writing the snapshot fails too (a full disk): the reason to the parent, as a load's
        writer.finish(index, roots_of(settings), refer=True)
        (folder / "cache.pickle").write_bytes(pickle.dumps(cache, protocol=5))
        if job.get("fingerprint") and index.fingerprint is not None:
            (folder / "fingerprint.pickle").write_bytes(pickle.dumps(index.fingerprint, protocol=5))
    except Exception as exc:  # the parent reports it and keeps serving the old index
        writer.abort()
        return _failed(folder, exc)
    return 0


def _failed(folder: Path, exc: Exception) -> int:
    """The child's failure given to the parent (ChildBuilder.build_snapshot reads ``error``; its
    half-written snapshot is removed first, so even a disk that filled has room for the line);
    said on stderr (the server's log) when even that cannot be written. Its exit status."""
    reason = f"{type(exc).__name__}: {exc}"
    try:
        (folder / "error").write_text(reason)
    except OSError:
        print(f"stac-static-api reload: {reason}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: python -m server.runtime.child_build WORKDIR (run by the server)", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(child_main(sys.argv[1]))
