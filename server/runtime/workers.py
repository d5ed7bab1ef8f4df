"""`serve --workers N`: load once, then fork N uvicorn workers on one listening socket.

Forking after the load shares the index among workers copy-on-write: its bulk is in
numpy arrays and byte buffers that no worker writes, and gc.freeze() keeps the cyclic
collector from touching (and so copying) the pages of the Python objects that remain.
Reloads are built once by the parent and mapped by every worker from the same snapshot file.

The parent replaces a worker that dies (a crash, the OOM killer, kill -9) with a new fork
serving the same index version as the others, which keep serving meanwhile: the listening
socket is shared, so only the dead worker's own connections fail. A worker that keeps dying
soon after it started is restarted after a growing delay (restart_delay), and when none is
left serving and restarts keep failing the parent gives up (exit status 1) and leaves it to
whatever runs it. SIGTERM or SIGINT stops every worker (gracefully: the requests in flight get
the setting shutdown_grace_seconds, uvicorn's timeout_graceful_shutdown) and the parent exits 0.
"""

from __future__ import annotations

import contextlib
import ctypes
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import orjson
import uvicorn

from server import metrics
from server.catalog.configured import roots_of
from server.catalog.fingerprint import Fingerprint
from server.catalog.loader import release_free_memory
from server.catalog.sources import RemoteCache
from server.index import Index
from server.runtime import start_check
from server.runtime.child_build import ChildBuilder, failure_text
from server.runtime.reloader import START_CHECK_FILE, ReloadStatus
from server.runtime.remote_snapshot import RemoteSnapshot
from server.runtime.snapshot import read_snapshot, snapshot_base
from server.runtime.start_check import StartCheck
from server.runtime.stopping import stop_requested
from server.settings import Settings

log = logging.getLogger("stac_static_api.reload")
workers_log = logging.getLogger("stac_static_api.workers")

# Replacing dead workers (see restart_delay): a worker that stayed up HEALTHY_AFTER seconds
# was healthy, and its death starts the count again.
RESTART_FIRST_DELAY = 0.5
RESTART_MAX_DELAY = 30.0
HEALTHY_AFTER = 30.0
GIVE_UP_AFTER = 5  # quick deaths in a row of every worker, with none left serving
STOP_MARGIN = 5.0  # beyond the workers' graceful shutdown, before they are killed
POLL_SECONDS = 0.1
WORKER_SIGNALS = {signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGUSR1}


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


@dataclass(frozen=True)
class Published:
    """The snapshot the workers serve since the last successful reload. Its file stays open
    here: a replacement worker inherits the descriptor at the fork and maps the file through
    it, even when a reload published after the fork has unlinked it."""

    fd: int
    path: Path
    version: int
    # the snapshot it refers to for most items' bytes (a reload's: runtime/snapshot.py), held
    # open as it is, so that a worker forked later maps the same file; -1: none
    base_fd: int = -1
    base: Path | None = None


class Supervisor:
    """Reloads for forked workers, built once: the supervisor (the workers' parent) runs the
    build in a child process, publishes the snapshot it wrote and signals every worker, which
    maps that same file, so the workers go on sharing one copy of the index after a reload.
    Reload requests (SIGHUP, a worker's POST /_mgmt/reload), the interval and the file watch
    all end up here."""

    def __init__(self, settings: Settings, remote_cache: RemoteCache, fingerprint: Fingerprint | None,
                 replica: RemoteSnapshot | None = None, index_file: str | None = None,
                 current: Callable[[], Index | None] | None = None, check: StartCheck | None = None) -> None:
        """``replica``: a replica's reload downloads the published snapshot (when it changed)
        instead of a build; ``index_file``, ``current``: a snapshot of the index loaded before
        the fork, that index (ChildBuilder: the first build reuses its unchanged items);
        ``check``: the start check of that snapshot, run here once the workers serve
        (start_checking), its state published for them beside the publication."""
        self.settings = settings
        self._loaded = current
        self.builder: ChildBuilder | RemoteSnapshot = replica or ChildBuilder(settings, remote_cache, index_file,
                                                                              self._serving_index)
        self.fingerprint = fingerprint
        self.workdir = Path(tempfile.mkdtemp(prefix="stac-static-api-workers-"))
        self.publication = self.workdir / "published.json"
        self.pending: str | None = None
        self.workers: list[int] = []
        # Held while publishing and while forking a worker: a worker is in self.workers (and
        # signalled) by the time a publication it did not see at its fork is announced.
        self.lock = threading.Lock()
        self.serving: Published | None = None  # None: the index loaded before the fork
        self._thread: threading.Thread | None = None
        self._builds = 0
        self._version = 1  # the index loaded before the fork
        # builds that ended, by number: succeeded or not (build_and_wait)
        self._done = threading.Condition()
        self._results: dict[int, bool] = {}
        self.check = check
        if check is not None:
            check.publish(self.workdir / START_CHECK_FILE)  # before the fork: every worker reads it
        now = time.monotonic()
        self._next_interval = now + settings.reload_interval
        self._next_watch = now + settings.watch_interval

    def _serving_index(self) -> Index | None:
        """The index the workers serve, for a build whose previous snapshot is gone from the
        disk (someone deleted it): ChildBuilder writes a snapshot of it to reuse from. Before
        the first publication that is the index loaded before the fork; after it, the workers'
        pre-fork copy is released, so it is the published snapshot, mapped here through the
        descriptors held open (its files may be unlinked) for as long as that write takes."""
        served = self.serving
        if served is None:
            return self._loaded() if self._loaded is not None else None
        base = f"/proc/self/fd/{served.base_fd}" if served.base_fd >= 0 else None
        index, _ = read_snapshot(f"/proc/self/fd/{served.fd}", verify=False, base=base)
        return index

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
        with self._done:
            self._builds += 1
            number = self._builds
        try:
            self._build_number(reason, number)
        finally:
            with self._done:
                self._results.setdefault(number, False)
                for old in [n for n in self._results if n < number - 16]:  # a waiter wants a recent one
                    del self._results[old]
                self._done.notify_all()

    def _build_number(self, reason: str, number: int) -> None:
        started = time.time()
        folder = self.workdir / f"build-{number}"
        folder.mkdir()
        published: Published | None = None
        try:
            built = self.builder.build_snapshot(folder, fingerprint=self.settings.watch_interval > 0)
            if built is None:  # a replica's snapshot, unchanged: nothing to publish
                metrics.observe_load(True, time.time() - started)
                log.info("reload (%s): unchanged", reason)
                return
            snapshot = built
            if built.parent == folder:  # a build's own file; a replica's copy stays in its cache
                snapshot = self.workdir / f"index-{number}.snapshot"
                os.replace(built, snapshot)
            if (folder / "fingerprint.pickle").exists():
                self.fingerprint = pickle.loads((folder / "fingerprint.pickle").read_bytes())
            base = snapshot_base(str(snapshot))
            published = Published(os.open(snapshot, os.O_RDONLY), snapshot, self._version + 1,
                                  os.open(base, os.O_RDONLY) if base else -1, Path(base) if base else None)
            if isinstance(self.builder, ChildBuilder):
                self.builder.previous = str(snapshot)  # the next build reuses its unchanged items
            doc = {"ok": True, "snapshot": str(snapshot), "version": published.version}
        except Exception as exc:  # the workers keep serving and report it
            doc = {"ok": False, "error": failure_text(exc)}
            log.error("reload (%s) failed, still serving the previous index: %s", reason, exc)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        seconds = time.time() - started
        doc.update(reason=reason, started_at=started, seconds=seconds)
        metrics.observe_load(published is not None, seconds)  # built once, here: the workers only map it
        previous = self.serving
        with self.lock:
            if published is not None:
                self._version = published.version
                self.serving = published
            tmp = self.publication.with_suffix(".tmp")
            tmp.write_bytes(orjson.dumps(doc))
            os.replace(tmp, self.publication)
            for worker in self.workers:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker, signal.SIGUSR1)
        if published is not None:
            self._forget(previous, published)
            with self._done:
                self._results[number] = True

    def build_and_wait(self, reason: str, stop: threading.Event) -> bool:
        """Ask for a build (the main thread's poll starts it) and wait for one started since to
        end: whether it was published. False when ``stop`` is set first."""
        with self._done:
            before = self._builds
            self.pending = reason
            while not stop.is_set():
                ended = [n for n in self._results if n > before]
                if ended:
                    return self._results[min(ended)]
                self._done.wait(0.2)
        return False

    def start_checking(self) -> None:
        """The start check (server.runtime.start_check) in a thread of the supervisor, once the
        workers serve the snapshot: a stale one is rebuilt and published as any reload, and
        written over the --index file."""
        check = self.check
        if check is None or check.check is None:
            return
        state_file = self.workdir / START_CHECK_FILE

        def rewrite() -> None:
            served = self.serving
            assert served is not None
            base = f"/proc/self/fd/{served.base_fd}" if served.base_fd >= 0 else None
            index, _ = read_snapshot(f"/proc/self/fd/{served.fd}", verify=False, base=base)
            try:
                start_check.rewrite_index_file(check.path, index, roots_of(self.settings), self.builder)
            finally:
                del index

        threading.Thread(target=start_check.run, name="start-check", daemon=True,
                         args=(check, lambda reason: self.build_and_wait(reason, check.stop),
                               lambda: self._version != check.version, rewrite, self.settings.start_check_retry_seconds,
                               self.settings.start_check_retries, lambda: check.publish(state_file))).start()

    def _forget(self, previous: Published | None, published: Published) -> None:
        """The files of the publication before ``published``: mapped by the workers at the last
        reload, and by any worker forked since through its own copy of the descriptors, so
        unlinking them is safe (files of ours, not a replica's cached copy), but for the one
        ``published`` refers to (its base). A base that a build of ours wrote from the index
        loaded before the fork (ChildBuilder) goes when no publication refers to it any more."""
        if isinstance(self.builder, ChildBuilder):
            self.builder.forget_all_but(str(published.base) if published.base else None)
        if previous is None:
            return
        os.close(previous.fd)
        if previous.base_fd >= 0:
            os.close(previous.base_fd)
        for path in (previous.path, previous.base):
            if path is not None and path.parent == self.workdir and path not in (published.path, published.base):
                path.unlink(missing_ok=True)

    def close(self) -> None:
        if self.check is not None:
            self.check.stop.set()
        self.builder.kill()
        if self._thread is not None:
            self._thread.join(timeout=10)
        if isinstance(self.builder, ChildBuilder):
            self.builder.close()  # the snapshot of the first index it wrote for the builds to refer to
        if self.serving is not None:
            for fd in (self.serving.fd, self.serving.base_fd):
                with contextlib.suppress(OSError):
                    if fd >= 0:
                        os.close(fd)
        shutil.rmtree(self.workdir, ignore_errors=True)


def _exit_with_parent() -> None:
    """Linux: SIGTERM this worker when the supervisor dies (even by SIGKILL), never an orphan."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


@dataclass
class Slot:
    """One of the N workers: its process (None while a replacement is due) and its deaths."""

    pid: int | None = None
    started: float = 0.0
    quick_deaths: int = 0  # in a row, each within HEALTHY_AFTER seconds of the worker's start
    restart_at: float = 0.0


def restart_delay(quick_deaths: int) -> float:
    """Seconds before replacing a worker that died ``quick_deaths`` times in a row soon after
    starting: the first at once (a single crash or kill -9 costs capacity only for a fork),
    then 0.5 s, 1 s, 2 s, ... up to 30 s, so a worker that cannot stay up is not forked in a
    tight loop."""
    if quick_deaths <= 1:
        return 0.0
    return min(RESTART_MAX_DELAY, RESTART_FIRST_DELAY * 2 ** (quick_deaths - 2))


def describe_exit(status: int) -> str:
    code = os.waitstatus_to_exitcode(status)
    if code >= 0:
        return f"exited with status {code}"
    try:
        name = signal.Signals(-code).name
    except ValueError:
        name = "unknown"
    return f"killed by signal {-code} ({name})"


class WorkerPool:
    """The N forked workers of one listening socket: started, replaced when one dies, stopped
    on SIGTERM/SIGINT. Runs in the parent's main thread; the Supervisor's builds in another."""

    def __init__(self, app: Any, config_kwargs: dict[str, Any], sock: socket.socket,
                 supervisor: Supervisor, size: int) -> None:
        self.app = app
        self.config_kwargs = config_kwargs
        self.sock = sock
        self.supervisor = supervisor
        self.slots = [Slot() for _ in range(size)]
        self.parent = os.getpid()
        self.stopping: int | None = None  # the signal that asked for the stop
        self.signalled: set[int] = set()
        # The index loaded before the fork, kept (shared copy-on-write with the workers, so
        # it costs nothing) for replacements until a reload is published.
        self.holds_loaded_index = app.state.index is not None

    # -- in the parent -------------------------------------------------------------------------

    def run(self) -> int:
        """Supervise until asked to stop (0) or until no worker stays up (1)."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self.stop)
        gc.collect()
        for slot in self.slots:  # before the first fork: a worker answering is no guarantee the parent is past its forks
            self.spawn(slot)
        self.supervisor.start_checking()  # after the first forks: no worker inherits its thread
        while True:
            time.sleep(POLL_SECONDS)
            self.reap()
            if self.stopping is not None:
                return self.finish_stop()
            if self.supervisor.serving is not None and self.holds_loaded_index:
                self.release_loaded_index()
            if self.given_up():
                return 1
            now = time.monotonic()
            for slot in self.slots:
                if slot.pid is None and now >= slot.restart_at:
                    self.spawn(slot)
            self.supervisor.poll()

    def spawn(self, slot: Slot) -> None:
        try:
            self.fork(slot)
        except OSError as exc:  # EAGAIN, ENOMEM: try again later, like a worker that died at once
            slot.quick_deaths += 1
            delay = max(RESTART_FIRST_DELAY, restart_delay(slot.quick_deaths))
            slot.restart_at = time.monotonic() + delay
            workers_log.error("cannot fork a worker (%s); trying again in %.1f s", exc, delay)

    def fork(self, slot: Slot) -> None:
        gc.freeze()  # the collector leaves the shared pages of what exists now alone, here and in the worker
        with self.supervisor.lock:
            if self.supervisor.serving is not None:
                self.app.state.index = None  # not the published version; the worker maps that
            mask = signal.pthread_sigmask(signal.SIG_BLOCK, WORKER_SIGNALS)  # until the worker has its handlers
            try:
                pid = os.fork()
                if pid == 0:
                    self.work(mask)
                slot.pid, slot.started = pid, time.monotonic()
                self.supervisor.workers.append(pid)
            finally:
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        workers_log.info("worker %d started", pid)

    def reap(self) -> None:
        for slot in self.slots:
            if slot.pid is None:
                continue
            try:
                done, status = os.waitpid(slot.pid, os.WNOHANG)
            except ChildProcessError:
                done, status = slot.pid, 0
            if not done:
                continue
            pid, slot.pid = slot.pid, None
            metrics.process_gone(pid)
            with self.supervisor.lock:
                self.supervisor.workers.remove(pid)
            if self.stopping is not None:
                continue
            now = time.monotonic()
            up = now - slot.started
            slot.quick_deaths = slot.quick_deaths + 1 if up < HEALTHY_AFTER else 1
            delay = restart_delay(slot.quick_deaths)
            slot.restart_at = now + delay
            if delay == 0:
                workers_log.warning("worker %d %s after %.1f s; replacing it", pid, describe_exit(status), up)
            else:
                workers_log.error("worker %d %s after %.1f s, death %d in a row within %.0f s of a start; "
                                  "replacing it in %.1f s", pid, describe_exit(status), up, slot.quick_deaths,
                                  HEALTHY_AFTER, delay)

    def given_up(self) -> bool:
        if any(slot.pid is not None or slot.quick_deaths < GIVE_UP_AFTER for slot in self.slots):
            return False
        workers_log.error("no worker stays up (each died %d times in a row soon after starting): stopping",
                          GIVE_UP_AFTER)
        return True

    def release_loaded_index(self) -> None:
        """A reload is published: replacements map its snapshot, the pre-fork index can go."""
        with self.supervisor.lock:
            self.app.state.index = None
        self.holds_loaded_index = False
        gc.unfreeze()
        release_free_memory()

    def stop(self, signum: int, frame: Any) -> None:
        if self.stopping is None:
            workers_log.info("%s: stopping the workers", signal.Signals(signum).name)
        self.stopping = signum
        self.forward(signum)

    def forward(self, signum: int) -> None:
        for pid in list(self.supervisor.workers):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signum)
            self.signalled.add(pid)

    def finish_stop(self) -> int:
        """Wait for the workers' graceful shutdown, then kill what is left; a requested stop is a success."""
        assert self.stopping is not None
        for pid in set(self.supervisor.workers) - self.signalled:  # forked as the signal came
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, self.stopping)
        allowed = (self.config_kwargs.get("timeout_graceful_shutdown") or 0) + STOP_MARGIN
        deadline = time.monotonic() + allowed
        while any(slot.pid is not None for slot in self.slots):
            if time.monotonic() > deadline:
                for slot in self.slots:
                    if slot.pid is not None:
                        workers_log.error("worker %d still running %.0f s after the stop: killing it", slot.pid, allowed)
                        with contextlib.suppress(ProcessLookupError):
                            os.kill(slot.pid, signal.SIGKILL)
                        with contextlib.suppress(ChildProcessError):
                            os.waitpid(slot.pid, 0)
                        slot.pid = None
                break
            time.sleep(POLL_SECONDS / 2)
            self.reap()
        return 0

    # -- in a worker ---------------------------------------------------------------------------

    def work(self, mask: set[int | signal.Signals]) -> NoReturn:
        """A forked worker's life; its exit status tells the parent how it ended."""
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, stop_requested)  # uvicorn's handlers while it runs; exit 0 after
            signal.signal(signal.SIGHUP, signal.SIG_DFL)
            signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # until its loop handles it (Reloader.start)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            _exit_with_parent()
            served = self.supervisor.serving
            if served is not None:
                self.map_published(served)
            self.adopt_reload_status()
            self.app.state.reloader.follow(self.supervisor.publication, self.parent)
            server = uvicorn.Server(uvicorn.Config(self.app, **self.config_kwargs))
            server.run(sockets=[self.sock])
            code = 0 if server.started else 3
        except KeyboardInterrupt:  # stop_requested: a stop asked for by a signal
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            workers_log.exception("worker %d failed", os.getpid())
        finally:
            os._exit(code)

    def map_published(self, served: Published) -> None:
        """Serve the version the other workers serve: the snapshot last published, through the
        descriptor inherited from the parent (/proc/self/fd opens it anew even if unlinked)."""
        fd_path = f"/proc/self/fd/{served.fd}"
        base_path = f"/proc/self/fd/{served.base_fd}"
        try:
            index, _ = read_snapshot(fd_path if os.path.exists(fd_path) else str(served.path), verify=False,
                                     base=base_path if served.base_fd >= 0 and os.path.exists(base_path) else None)
        finally:
            os.close(served.fd)  # the mapping keeps what it needs; this would keep the file after the next reload
            if served.base_fd >= 0:
                os.close(served.base_fd)
        index.version = served.version
        self.app.state.index = index

    def adopt_reload_status(self) -> None:
        """/_mgmt/ready's last_reload as in the workers that saw the publications (one swap per
        successful reload): a replacement reports what they report."""
        try:
            doc = orjson.loads(self.supervisor.publication.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return
        index = self.app.state.index
        now = time.time()
        self.app.state.reloader.status = ReloadStatus(bool(doc.get("ok")), "built by the supervisor", doc.get("error"),
                                                      now, 0.0, index.version - 1 if index is not None else 0)


def run_forked(app: Any, config_kwargs: dict[str, Any], host: str, port: int, workers: int,
               check: StartCheck | None = None) -> int:
    """Serve with ``workers`` forked workers until SIGTERM/SIGINT (0), or until none stays up (1);
    ``check``: a snapshot's start check, run by the supervisor once they serve."""
    sock = listening_socket(host, port)
    settings: Settings = app.state.settings
    fingerprint = app.state.index.fingerprint if settings.watch_interval > 0 else None
    supervisor = Supervisor(settings, app.state.remote_cache, fingerprint, app.state.replica,
                            getattr(app.state, "index_file", None), lambda: app.state.index, check)

    def request_reload(signum: int, frame: Any) -> None:
        supervisor.pending = "SIGHUP"

    signal.signal(signal.SIGHUP, request_reload)
    signal.signal(signal.SIGUSR1, signal.SIG_IGN)  # a worker inherits it until its loop handles it
    pool = WorkerPool(app, config_kwargs, sock, supervisor, workers)
    print(f"stac-static-api: {workers} workers on http://{host}:{port}", file=sys.stderr)
    try:
        return pool.run()
    finally:
        supervisor.close()
