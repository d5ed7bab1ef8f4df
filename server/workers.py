"""`serve --workers N`: load once, then fork N uvicorn workers on one listening socket.

Forking after the load shares the index among workers copy-on-write: its bulk is in
numpy arrays and byte buffers that no worker writes, and gc.freeze() keeps the cyclic
collector from touching (and so copying) the pages of the Python objects that remain.
Reloads are built once by the parent and mapped by every worker from the same snapshot file.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
import pickle
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import orjson
import uvicorn

from server.catalog.loader import release_free_memory
from server.catalog.sources import RemoteCache
from server.rebuild import ChildBuilder, failure_text
from server.settings import Settings
from server.catalog.fingerprint import Fingerprint

log = logging.getLogger("stac_static_api.reload")


def listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP, not 0: asyncio only sets TCP_NODELAY on sockets that say they are
    # TCP, and without it Nagle's algorithm holds small responses back ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


class Supervisor:
    """Reloads for forked workers, built once: the supervisor (the workers' parent) runs the
    build in a child process, publishes the snapshot it wrote and signals every worker, which
    maps that same file, so the workers go on sharing one copy of the index after a reload.
    Reload requests (SIGHUP, a worker's POST /_mgmt/reload), the interval and the file watch
    all end up here."""

    def __init__(self, settings: Settings, remote_cache: RemoteCache, fingerprint: Fingerprint | None) -> None:
        self.settings = settings
        self.builder = ChildBuilder(settings, remote_cache)
        self.fingerprint = fingerprint
        self.workdir = Path(tempfile.mkdtemp(prefix="stac-static-api-workers-"))
        self.publication = self.workdir / "published.json"
        self.pending: str | None = None
        self.workers: list[int] = []
        self._thread: threading.Thread | None = None
        self._builds = 0
        self._snapshot: Path | None = None
        self._version = 1  # the index loaded before the fork
        now = time.monotonic()
        self._next_interval = now + settings.reload_interval
        self._next_watch = now + settings.watch_interval

    def poll(self) -> None:
        """Start a build when one is asked for or due and none is running."""
        if self._thread is not None and self._thread.is_alive():
            return
        reason, self.pending = self.pending or self._due(), None
        if reason:
            self._thread = threading.Thread(target=self._build, args=(reason,), daemon=True)
            self._thread.start()

    def _due(self) -> str | None:
        now = time.monotonic()
        if self.settings.reload_interval > 0 and now >= self._next_interval:
            self._next_interval = now + self.settings.reload_interval
            return "interval"
        if self.settings.watch_interval > 0 and self.fingerprint is not None and now >= self._next_watch:
            self._next_watch = now + self.settings.watch_interval
            changed = self.fingerprint.changed(1)
            if changed:
                return f"file change: {changed[0]}"
        return None

    def _build(self, reason: str) -> None:
        self._builds += 1
        started = time.time()
        folder = self.workdir / f"build-{self._builds}"
        folder.mkdir()
        snapshot = None
        try:
            built = self.builder.build_snapshot(folder, fingerprint=self.settings.watch_interval > 0)
            snapshot = self.workdir / f"index-{self._builds}.snapshot"
            os.replace(built, snapshot)
            if (folder / "fingerprint.pickle").exists():
                self.fingerprint = pickle.loads((folder / "fingerprint.pickle").read_bytes())
            self._version += 1
            doc = {"ok": True, "snapshot": str(snapshot), "version": self._version}
        except Exception as exc:  # the workers keep serving and report it
            doc = {"ok": False, "error": failure_text(exc)}
            log.error("reload (%s) failed, still serving the previous index: %s", reason, exc)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        doc.update(reason=reason, started_at=started, seconds=time.time() - started)
        tmp = self.publication.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, self.publication)
        for worker in self.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(worker, signal.SIGUSR1)
        if snapshot is not None:
            if self._snapshot is not None:  # mapped by the workers at the last reload: unlinking is safe
                self._snapshot.unlink(missing_ok=True)
            self._snapshot = snapshot

    def close(self) -> None:
        self.builder.kill()
        if self._thread is not None:
            self._thread.join(timeout=10)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _exit_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervisor dies (even by SIGKILL), never an orphan."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def run_forked(app: Any, config_kwargs: dict[str, Any], host: str, port: int, workers: int) -> int:
    sock = listening_socket(host, port)
    settings: Settings = app.state.settings
    fingerprint = app.state.index.fingerprint if settings.watch_interval > 0 else None
    supervisor = Supervisor(settings, app.state.remote_cache, fingerprint)
    gc.collect()
    gc.freeze()
    supervisor_pid = os.getpid()

    def forward(signum: int, frame: Any) -> None:
        for child in supervisor.workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(child, signum)

    def request_reload(signum: int, frame: Any) -> None:
        supervisor.pending = "SIGHUP"

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, forward)
    signal.signal(signal.SIGHUP, request_reload)
    # Before the first fork: a worker answering is no guarantee the parent is past its forks.
    for _ in range(workers):
        pid = os.fork()
        if pid == 0:  # a worker
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
                signal.signal(sig, signal.SIG_DFL)
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until its loop handles it (Reloader.start)
            _exit_with_parent()
            app.state.reloader.follow(supervisor.publication, supervisor_pid)
            server = uvicorn.Server(uvicorn.Config(app, **config_kwargs))
            try:
                server.run(sockets=[sock])
            finally:
                os._exit(0)
        supervisor.workers.append(pid)
    app.state.index = None  # the workers have it; the supervisor only builds reloads
    gc.unfreeze()
    release_free_memory()

    print(f"stac-static-api: {workers} workers on http://{host}:{port}", file=sys.stderr)
    status = 0
    try:
        while supervisor.workers:
            time.sleep(0.2)
            for pid in list(supervisor.workers):
                try:
                    done, code = os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    done, code = pid, 0
                if done:
                    supervisor.workers.remove(pid)
                    status = status or os.waitstatus_to_exitcode(code)
                    forward(signal.SIGTERM, None)  # one worker gone: stop the rest, let a supervisor restart
            if len(supervisor.workers) == workers:
                supervisor.poll()
    finally:
        supervisor.close()
    return status
