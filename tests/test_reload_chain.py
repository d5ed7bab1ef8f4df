"""A running server's reloads refer to the previous snapshot's file for the items whose documents
did not change (issue 18, target 3: server.runtime.snapshot's "base"): over a chain of reloads
the server answers as a fresh one, keeps only the snapshots it serves and refers to (and none
once stopped), keeps serving when a reload's build is killed half way or its snapshot files
were deleted, and so do forked workers."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import once_counted, run_server
from tests.test_incremental import TOKEN, _reload, add_and_delete, answers, edit_items, move_item, prepare

CHANGES = [edit_items, add_and_delete, move_item]


def snapshots(folder: Path) -> list[Path]:
    """The snapshot files (whole or being written) under ``folder``, the server's TMPDIR."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".snapshot" in p.name)


def settled(folder: Path, count: int, timeout: float = 30.0) -> list[Path]:
    """The snapshot files under ``folder`` once there are ``count`` of them (or, past
    ``timeout``, as they are). Under --workers the supervisor unlinks the files of the
    publication before just after it signals the workers to map the new one, so a worker can
    answer the new version while they are still there."""
    return once_counted(lambda: snapshots(folder), count, timeout)


def builds(folder: Path) -> list[int]:
    """The reload builds (child processes) working in a folder under ``folder``."""
    found = []
    for pid in (int(p) for p in os.listdir("/proc") if p.isdigit()):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                command = f.read().split(b"\0")
        except OSError:
            continue
        if b"server.runtime.child_build" in command and command[-2].startswith(str(folder).encode()):
            found.append(pid)
    return found


def ready_version(base: str, version: int, timeout: float = 60.0) -> dict[str, Any]:
    """/_mgmt/ready once every answer (any worker) gives ``version``."""
    deadline = time.monotonic() + timeout
    while True:
        answers = [httpx.get(f"{base}/_mgmt/ready").json() for _ in range(6)]
        if all(a["version"] == version for a in answers):
            return answers[0]
        assert time.monotonic() < deadline, f"versions {[a['version'] for a in answers]}, not {version}"
        time.sleep(0.1)


@contextlib.contextmanager
def reloaded_once(catalog: Path, tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, Any]]]:
    """A server of ``catalog`` (its snapshots in a folder of their own, which it also gets
    as TMPDIR) after one reload of edited items: its URL, that folder and its answers."""
    work = tmp_path / "work"
    work.mkdir()
    env = {"STAC_STATIC_ADMIN_TOKEN": TOKEN, "TMPDIR": str(work)}
    with run_server([str(catalog / "catalog.json")], env=env) as base:
        edit_items(catalog)
        _reload(base)
        yield base, work, answers(base)


@pytest.fixture
def catalog(sample_copy: Path) -> Path:
    prepare(sample_copy)
    return sample_copy


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_chain_of_reloads_answers_as_a_fresh_server_and_keeps_two_snapshots(catalog: Path, tmp_path: Path,
                                                                              workers: str) -> None:
    work = tmp_path / "work"
    work.mkdir()
    env = {"STAC_STATIC_ADMIN_TOKEN": TOKEN, "TMPDIR": str(work)}
    roots = [str(catalog / "catalog.json")]
    with run_server(roots, ["--workers", workers], env=env) as base:
        token_link = next(link["href"] for link in httpx.get(f"{base}/search", params={"limit": 5}).json()["links"]
                          if link["rel"] == "next")
        for version, change in enumerate(CHANGES, start=2):
            change(catalog)
            if workers == "1":
                ready = _reload(base)
            else:  # the supervisor builds, the workers map what it publishes
                httpx.post(f"{base}/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"})
                ready = ready_version(base, version)
            assert ready["last_reload"]["ok"] is True and ready["load"]["reused"] > 0, change.__name__
            # the one served and the one it refers to (written of the first index at the first reload)
            assert len(settled(work, 2)) == 2, snapshots(work)
        assert httpx.get(token_link).status_code == 200  # a paging token from before still pages
        reloaded = answers(base)
    assert snapshots(work) == []
    with run_server(roots) as fresh:
        assert reloaded == answers(fresh)


def test_a_reload_killed_half_way_keeps_serving_and_the_next_one_reuses(catalog: Path, tmp_path: Path) -> None:
    """The build process killed once it writes its snapshot: the reload fails, the index of
    before answers as before, its files stay usable, and the next reload refers to them."""
    roots = [str(catalog / "catalog.json")]
    with reloaded_once(catalog, tmp_path) as (base, work, before):
        add_and_delete(catalog)
        outcome: list[httpx.Response] = []
        request = threading.Thread(target=lambda: outcome.append(httpx.post(
            f"{base}/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=120)))
        request.start()
        deadline = time.monotonic() + 60
        while not any(".tmp-" in p.name for p in snapshots(work)):  # the new snapshot being written
            assert time.monotonic() < deadline and request.is_alive(), "no reload build seen"
            time.sleep(0.002)
        for pid in builds(work):
            os.kill(pid, signal.SIGKILL)
        request.join(timeout=120)
        assert outcome[0].status_code == 502 and "exited with status -9" in outcome[0].json()["error"]
        assert answers(base) == before
        ready = _reload(base)
        assert ready["last_reload"]["ok"] is True and ready["load"]["reused"] > 0
        reloaded = answers(base)
        assert len(snapshots(work)) == 2
    with run_server(roots) as fresh:
        assert reloaded == answers(fresh)


def test_deleted_snapshot_files_are_written_again_of_the_serving_index(catalog: Path, tmp_path: Path) -> None:
    """Someone removed the snapshots the server keeps: it serves on (they are mapped), and the
    next reload reuses the serving index through a snapshot written of it then (as the first
    reload does), which the new one refers to."""
    roots = [str(catalog / "catalog.json")]
    with reloaded_once(catalog, tmp_path) as (base, work, before):
        for path in snapshots(work):
            path.unlink()
        assert answers(base) == before
        move_item(catalog)
        ready = _reload(base)
        assert ready["last_reload"]["ok"] is True and ready["load"]["reused"] > 0
        assert len(snapshots(work)) == 2
        reloaded = answers(base)
    with run_server(roots) as fresh:
        assert reloaded == answers(fresh)


def test_under_workers_deleted_snapshot_files_are_written_again_of_the_served_index(catalog: Path,
                                                                                   tmp_path: Path) -> None:
    """The same with `serve --workers 2`: after a reload the supervisor had let the pre-fork
    index go, so with the kept snapshots deleted the next build found no previous index and read
    everything again (reused 0). It maps the published snapshot through the descriptors it holds
    and writes a snapshot of it to reuse from, as README says."""
    work = tmp_path / "work"
    work.mkdir()
    env = {"STAC_STATIC_ADMIN_TOKEN": TOKEN, "TMPDIR": str(work)}
    roots = [str(catalog / "catalog.json")]
    with run_server(roots, ["--workers", "2"], env=env) as base:
        edit_items(catalog)
        httpx.post(f"{base}/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert ready_version(base, 2)["load"]["reused"] > 0
        before = answers(base)
        assert len(settled(work, 2)) == 2, snapshots(work)
        for path in snapshots(work):
            path.unlink()
        assert answers(base) == before
        move_item(catalog)
        httpx.post(f"{base}/_mgmt/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        ready = ready_version(base, 3)
        assert ready["last_reload"]["ok"] is True and ready["load"]["reused"] > 0, ready
        assert len(settled(work, 2)) == 2, snapshots(work)  # the new one and the one written to refer to
        reloaded = answers(base)
    assert snapshots(work) == []
    with run_server(roots) as fresh:
        assert reloaded == answers(fresh)
