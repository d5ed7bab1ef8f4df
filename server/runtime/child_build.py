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
requests work across reloads as in a thread.
"""

from __future__ import annotations

import logging
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import orjson

from server import metrics
from server.catalog.configured import load_index, roots_of
from server.catalog.sources import RemoteCache
from server.index import Index
from server.runtime.snapshot import SnapshotWriter, read_snapshot
from server.settings import Settings


class ChildBuildError(Exception):
    """The child could not build an index; the message is its reason."""


def failure_text(exc: Exception) -> str:
    """A failed build as reported: "LoadError: ...", the type once (a ChildBuildError's
    message already names the child's own failure)."""
    return str(exc) if isinstance(exc, ChildBuildError) else f"{type(exc).__name__}: {exc}"


class ChildBuilder:
    """Callable building an Index in a child process; ``kill()`` stops a running build."""

    def __init__(self, settings: Settings, remote_cache: RemoteCache) -> None:
        self.settings = settings
        self.remote_cache = remote_cache
        self._child: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()
        self._killed = False

    def __call__(self) -> Index:
        workdir = Path(tempfile.mkdtemp(prefix="stac-static-api-reload-"))
        try:
            index, _ = read_snapshot(str(self.build_snapshot(workdir)), verify=False)
            return index
        finally:
            shutil.rmtree(workdir, ignore_errors=True)  # the mapping keeps the snapshot's pages alive

    def build_snapshot(self, workdir: Path, fingerprint: bool = False) -> Path:
        """Run the child in ``workdir``; the snapshot it wrote (and, with ``fingerprint``, the
        fingerprint of the local files it read, in ``fingerprint.pickle``)."""
        job = workdir / "job.pickle"
        job.write_bytes(pickle.dumps({"settings": self.settings.model_dump(), "cache": self.remote_cache,
                                      "fingerprint": fingerprint}, protocol=5))
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
    # the items' bytes go into the snapshot as they are read, as `index` does (snapshot.py)
    writer = SnapshotWriter(str(folder / "index.snapshot"))
    try:
        index = load_index(settings, cache, writer.spool)
    except Exception as exc:  # the parent reports it and keeps serving the old index
        writer.abort()
        (folder / "error").write_text(f"{type(exc).__name__}: {exc}")
        return 1
    finally:
        (folder / "metrics.json").write_bytes(orjson.dumps(metrics.counter_values()))
    writer.finish(index, roots_of(settings))
    (folder / "cache.pickle").write_bytes(pickle.dumps(cache, protocol=5))
    if job.get("fingerprint") and index.fingerprint is not None:
        (folder / "fingerprint.pickle").write_bytes(pickle.dumps(index.fingerprint, protocol=5))
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 2 or not os.path.isdir(sys.argv[1]):
        print("usage: python -m server.runtime.child_build WORKDIR (run by the server)", file=sys.stderr)
        raise SystemExit(2)
    raise SystemExit(child_main(sys.argv[1]))
