"""Live reload: a new index is built beside the serving one and swapped in atomically.

Requests read ``app.state.index`` once, so each finishes on the version it started with.
A reload that fails (bucket down, root unreadable, nothing loadable) leaves the old index
serving and records why; /_mgmt/ready reports it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson
from starlette.applications import Starlette

from server import metrics
from server.catalog.configured import roots_of
from server.catalog.loader import release_free_memory
from server.index import Index
from server.runtime import start_check
from server.runtime.child_build import failure_text, read_published
from server.runtime.start_check import StartCheck

START_CHECK_FILE = "start_check.json"  # beside a supervisor's publication (server.runtime.workers)

log = logging.getLogger("stac_static_api.reload")


@dataclass
class ReloadStatus:
    ok: bool | None = None
    reason: str | None = None
    error: str | None = None
    started_at: float | None = None
    seconds: float | None = None
    reloads: int = 0
    # False: a replica's snapshot unchanged (nothing swapped in), or a reload that found every
    # document as the serving index read it (swapped in, with the next version, serving the same)
    changed: bool | None = None


class Reloader:
    def __init__(self, app: Starlette, build: Callable[[], Index | None]) -> None:
        self.app = app
        self.build = build
        self.status = ReloadStatus()
        self.start_check: StartCheck | None = None
        self._lock = asyncio.Lock()
        self._tasks: list[asyncio.Task[Any]] = []
        self.supervisor_pid: int | None = None
        self.publication: Path | None = None

    def follow(self, publication: Path, supervisor_pid: int) -> None:
        """In a forked worker: the supervisor builds every reload once, this process maps the
        snapshot it publishes (on SIGUSR1), so workers keep sharing one copy of the index."""
        self.build = lambda: read_published(publication)
        self.publication = publication
        self.supervisor_pid = supervisor_pid

    def _missed_publication(self) -> bool:
        """A publication that came before this worker listened for it."""
        try:
            doc = orjson.loads(self.publication.read_bytes()) if self.publication else {}
        except (OSError, orjson.JSONDecodeError):
            return False
        index = self.app.state.index
        return bool(doc.get("ok")) and index is not None and doc["version"] > index.version

    async def request(self, reason: str) -> ReloadStatus | None:
        """Reload now, or (in a forked worker) ask the supervisor to, and return None."""
        if self.supervisor_pid is not None:
            os.kill(self.supervisor_pid, signal.SIGHUP)
            return None
        return await self.reload(reason)

    async def reload(self, reason: str) -> ReloadStatus:
        """Build a new index in a thread and swap it in; one reload at a time. The metrics
        count the loads this process builds (a forked worker maps what the supervisor built
        and counted). A build that returns None found nothing new (a replica's snapshot
        answered 304): a success, and the index serving stays."""
        async with self._lock:
            started = time.time()
            builds = self.supervisor_pid is None
            try:
                index = await asyncio.to_thread(self.build)
            except Exception as exc:  # any failure keeps the old index serving
                self.status = ReloadStatus(False, reason, failure_text(exc), started,
                                           time.time() - started, self.status.reloads)
                if builds:
                    metrics.observe_load(False, self.status.seconds or 0.0)
                log.error("reload (%s) failed, still serving the previous index: %s", reason, exc)
                return self.status
            if index is None:
                self.status = ReloadStatus(True, reason, None, started, time.time() - started,
                                           self.status.reloads + 1, changed=False)
                if builds:
                    metrics.observe_load(True, self.status.seconds or 0.0)
                log.info("reload (%s): unchanged, in %.2f s", reason, self.status.seconds)
                return self.status
            previous = self.app.state.index
            # (in a thread: at 10M items, arrays of 80 MB each compared when every item was reused)
            changed = previous is None or not await asyncio.to_thread(index.serves_as, previous)
            if self.supervisor_pid is None:  # a worker takes the supervisor's count, the same in every worker
                index.version = (previous.version + 1) if previous is not None else index.version
            # The swap and its status together, with no await between: /_mgmt/ready never
            # shows the new index with the previous reload's status.
            self.app.state.index = index
            matches = getattr(self.app.state, "match_cache", None)
            if matches is not None:
                matches.clear()  # its entries are the previous index's
            self.status = ReloadStatus(True, reason, None, started, time.time() - started, self.status.reloads + 1,
                                       changed=changed)
            if builds:
                metrics.observe_load(True, self.status.seconds or 0.0)
            metrics.set_process_index_version(index.version)
            log.info("reload (%s): %d items in %.2f s%s", reason, index.size, self.status.seconds,
                     "" if changed else ", every document unchanged")
            del previous
            await asyncio.to_thread(release_free_memory)  # the old index's pages go back to the OS
            return self.status

    def start(self, interval: float, watch_interval: float = 0.0) -> None:
        """Reload every ``interval`` seconds (0: never), when a watched local file changes,
        and on SIGHUP."""
        loop = asyncio.get_running_loop()
        if self.supervisor_pid is not None:  # timers, watching and SIGHUP belong to the supervisor
            def published() -> None:
                self._tasks.append(loop.create_task(self.reload("built by the supervisor")))

            try:
                loop.add_signal_handler(signal.SIGUSR1, published)
            except (NotImplementedError, RuntimeError, ValueError):  # not the main thread (in-process tests)
                log.debug("SIGUSR1 reload not available in this process")
            if self._missed_publication():
                published()
            return
        if self.start_check is not None and self.start_check.check is not None:
            self._check_start(self.start_check, loop)
        if interval > 0:
            self._tasks.append(loop.create_task(self._every(interval)))
        if watch_interval > 0:
            self._tasks.append(loop.create_task(self._watch(watch_interval)))
        try:
            loop.add_signal_handler(signal.SIGHUP, lambda: self._tasks.append(loop.create_task(self.reload("SIGHUP"))))
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread, or no signals here
            log.debug("SIGHUP reload not available in this process")

    def _check_start(self, check: StartCheck, loop: asyncio.AbstractEventLoop) -> None:
        """Start checking the served snapshot's source files in a thread of its own (one: forking
        checkers beside a serving event loop is not safe); a stale one is reloaded by this loop,
        retried when that fails, and written over the --index file (server.runtime.start_check)."""

        def reload(reason: str) -> bool:
            try:
                return bool(asyncio.run_coroutine_threadsafe(self.reload(reason), loop).result().ok)
            except (RuntimeError, concurrent.futures.CancelledError):  # the loop stopped: the server is stopping
                check.stop.set()
                return False

        def replaced() -> bool:
            index = self.app.state.index
            return index is not None and index.version != check.version

        def rewrite() -> None:
            start_check.rewrite_index_file(check.path, self.app.state.index, roots_of(self.app.state.settings),
                                           self.build)

        settings = self.app.state.settings
        thread = threading.Thread(target=start_check.run, name="start-check", daemon=True,
                                  args=(check, reload, replaced, rewrite, settings.start_check_retry_seconds,
                                        settings.start_check_retries))
        thread.start()

    async def _every(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            await self.reload("interval")

    async def _watch(self, interval: float) -> None:
        """Stat the local files the serving index was read from; reload when one changed."""
        while True:
            await asyncio.sleep(interval)
            index = self.app.state.index
            if index is None or index.fingerprint is None:
                continue
            changed = await asyncio.to_thread(index.fingerprint.changed, 1)
            if changed:
                await self.reload(f"file change: {changed[0]}")

    def stop(self) -> None:
        if self.start_check is not None:
            self.start_check.stop.set()
        for task in self._tasks:
            task.cancel()
        kill = getattr(self.build, "kill", None)
        if kill is not None:  # a build in a child process would otherwise outlive the server
            kill()
        close = getattr(self.build, "close", None)
        if close is not None:  # the snapshot a child build kept for the next one
            close()
        try:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            asyncio.get_running_loop().remove_signal_handler(signal.SIGUSR1)
        except (NotImplementedError, RuntimeError, ValueError):
            pass

    def describe(self) -> dict[str, Any]:
        out = asdict(self.status)
        check = self.checked()
        if check is not None:
            out["start_check"] = {k: v for k, v in check.items() if k != "version"}
        return out

    def checked(self) -> dict[str, Any] | None:
        """The start check's state, with the index version it is about: this process's, or
        (a forked worker) the one the supervisor publishes."""
        if self.start_check is not None:
            return {**self.start_check.describe(), "version": self.start_check.version}
        if self.publication is not None:
            return start_check.read_published(self.publication.parent / START_CHECK_FILE)
        return None

    def staleness(self) -> dict[str, Any]:
        """/_mgmt/ready's ``stale`` (and ``stale_reason``): see start_check.staleness."""
        index = self.app.state.index
        return start_check.staleness(self.checked(), index.version if index is not None else None)
