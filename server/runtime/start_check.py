"""The background start check of a large snapshot (`serve --index FILE` read from more than
Settings.start_check_files local files): served at once, its files stat()ed in a thread once the
server serves; a stale one is reloaded from its roots, that reload retried with a growing delay
when it fails, and, once it succeeded, written over the --index file so that the next start
finds it fresh (before, every start reloaded again until `index` was run).

One driver (``run``) for both ways of serving: a single process (server.runtime.reloader: the
reload is the event loop's) and `--workers N` (server.runtime.workers: the supervisor, which
does not serve, checks once the workers serve; its published reload reaches them as any).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson

from server.index import Index
from server.index.index import degraded_reason
from server.runtime.child_build import ChildBuilder, failure_text
from server.runtime.snapshot import write_snapshot

log = logging.getLogger("stac_static_api.reload")

RETRY_MAX_DELAY = 3600.0


@dataclass
class StartCheck:
    """A snapshot served before its source files were checked. /_mgmt/ready's
    ``last_reload.start_check`` shows it: ``state`` ``checking``, then ``unchanged``, ``stale``
    (while its reload runs or waits to be retried, or after the retries gave up: ``last_reload``
    says why), ``reloaded``, or ``failed`` (the check itself: the snapshot stays served,
    unchecked); ``attempts`` (reloads tried), ``retry_at`` (when the next one is due),
    ``index_file`` (after the reload: ``writing``, then ``rewritten``, or why not)."""

    path: str
    files: int
    check: Callable[[], str | None] | None  # why it is stale, or None; dropped once run (it maps the snapshot)
    version: int  # the served index's: a reload meanwhile makes the outcome moot
    state: str = "pending"
    started_at: float | None = None
    seconds: float | None = None
    detail: str | None = None
    attempts: int = 0
    retry_at: float | None = None
    index_file: str | None = None
    stop: threading.Event = field(default_factory=threading.Event)

    def describe(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("check", "version", "stop")}

    def publish(self, path: Path) -> None:
        """For forked workers (they read it for /_mgmt/ready): the state, with the version it is about."""
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps({**self.describe(), "version": self.version}))
        os.replace(tmp, path)


def read_published(path: Path) -> dict[str, Any] | None:
    """A check's state as a supervisor published it (StartCheck.publish), or None."""
    try:
        doc = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return None
    return doc if isinstance(doc, dict) else None


def staleness(check: dict[str, Any] | None, version: int | None) -> dict[str, Any]:
    """/_mgmt/ready's additions: ``stale`` (the index served is a snapshot found stale, not yet
    replaced by its reload: served on purpose, so readiness does not fail) and its reason."""
    if check is None or check.get("state") != "stale" or version is None or version != check.get("version"):
        return {"stale": False}
    return {"stale": True, "stale_reason": check.get("detail")}


def retry_delay(first: float, attempt: int) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): first, twice that, ... at most an hour."""
    return float(min(RETRY_MAX_DELAY, first * 2 ** (attempt - 1)))


def run(check: StartCheck, reload: Callable[[str], bool], replaced: Callable[[], bool],
        rewrite: Callable[[], None], retry_seconds: float, retries: int,
        changed: Callable[[], None] = lambda: None) -> None:
    """The check, in the calling thread: ``reload(reason)`` builds and swaps in (True: done),
    ``replaced()``: another reload replaced the snapshot meanwhile, ``rewrite()`` writes the
    index now served over the --index file; ``changed()`` after each change of state.
    Returns at the end, or when ``check.stop`` is set."""
    assert check.check is not None
    run_check, check.check = check.check, None
    check.state, check.started_at = "checking", time.time()
    changed()
    log.info("checking the %d source files of %s in the background", check.files, check.path)
    try:
        stale = run_check()
    except Exception as exc:  # the snapshot stays served, and says it was not checked
        check.state, check.seconds, check.detail = "failed", time.time() - check.started_at, failure_text(exc)
        changed()
        log.error("checking the source files of %s failed, serving it unchecked: %s", check.path, exc)
        return
    finally:
        del run_check
    check.seconds = time.time() - check.started_at
    if stale is None:
        check.state = "unchanged"
        changed()
        log.info("%s: its %d source files are unchanged (checked in %.1f s)", check.path, check.files, check.seconds)
        return
    check.state, check.detail = "stale", stale
    changed()
    if replaced():
        log.warning("%s (found in %.1f s); a reload has replaced it already", stale, check.seconds)
        check.state = "reloaded"
        changed()
        return
    log.warning("%s (found in %.1f s): served until a reload from its roots replaces it", stale, check.seconds)
    while not check.stop.is_set():
        check.attempts += 1
        check.retry_at = None
        changed()
        if reload("start check: stale snapshot" if check.attempts == 1 else
                  f"start check: stale snapshot, retry {check.attempts - 1}"):
            check.state, check.index_file = "reloaded", "writing"
            changed()
            _rewrite(check, rewrite)
            changed()
            return
        if replaced():  # another reload (SIGHUP, interval) succeeded meanwhile
            check.state = "reloaded"
            changed()
            return
        if check.attempts > retries:
            log.error("the reload of stale snapshot %s failed %d times: giving up, still serving it stale "
                      "(SIGHUP or POST /_mgmt/reload to try again, or rebuild it with `index`)",
                      check.path, check.attempts)
            return
        delay = retry_delay(retry_seconds, check.attempts)
        check.retry_at = time.time() + delay
        changed()
        log.warning("the reload of stale snapshot %s failed (attempt %d of %d): retrying in %.1f s",
                    check.path, check.attempts, retries + 1, delay)
        check.stop.wait(delay)


def _rewrite(check: StartCheck, rewrite: Callable[[], None]) -> None:
    """The --index file replaced by the reloaded index (written beside it, then renamed over it),
    when it is a local file this process may replace; its outcome in ``check.index_file``."""
    folder = os.path.dirname(os.path.abspath(check.path))
    if not os.path.isfile(check.path) or not os.access(folder, os.W_OK):
        check.index_file = f"not rewritten: {folder} is not writable" if os.path.isfile(check.path) else \
            "not rewritten: not a regular file"
        log.warning("%s: the reloaded index is served but %s (the next start reloads again; rebuild it with "
                    "`index`)", check.path, check.index_file)
        return
    started = time.time()
    try:
        rewrite()
    except DegradedIndex as exc:  # served (a reload's outcome), but never taken for complete at the next start
        check.index_file = f"not rewritten: {exc}"
        log.error("%s: not rewritten with the reloaded index: %s (the next start reloads again; rebuild it with "
                  "`index` once every root reads)", check.path, exc)
        return
    except Exception as exc:  # the reloaded index stays served; only the next start pays
        check.index_file = f"not rewritten: {failure_text(exc)}"
        log.error("%s: writing the reloaded index over it failed (the next start reloads again): %s", check.path, exc)
        return
    check.index_file = "rewritten"
    log.info("%s rewritten with the reloaded index in %.1f s", check.path, time.time() - started)


class DegradedIndex(Exception):
    """An index some of whose catalogs, collections or bulk files (a whole root, maybe) were not
    read: served, as a reload's outcome is, but not written as the --index file."""


def rewrite_index_file(path: str, index: Index, roots: list[str], builder: object) -> None:
    """The start check's rewrite (``rewrite`` of ``run``; server.runtime.reloader and
    server.runtime.workers give the index each serves): ``index`` written over the --index file
    at ``path``, then a ChildBuilder's next reload pointed at it (it reuses the items of the
    file rewritten). A degraded index raises DegradedIndex, written nowhere."""
    reason = degraded_reason(index.load_report)
    if reason is not None:
        raise DegradedIndex(f"the reloaded index is degraded ({reason})")
    write_snapshot(path, index, roots)
    if isinstance(builder, ChildBuilder):
        builder.previous = path
