"""`serve --index FILE` of a snapshot read from more files than STAC_STATIC_START_CHECK_FILES:
served at once, its files checked in the background, reloaded from its roots when stale."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from server.catalog.fingerprint import Fingerprint
from server.catalog.loader import load_catalogs
from server.runtime.snapshot import write_snapshot
from server.sample import SAMPLE_ROOT
from tests.helpers import run_server

BACKGROUND = {"STAC_STATIC_START_CHECK_FILES": "0"}  # every snapshot is checked once serving


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE_ROOT.parent, target)
    return target


def checked(base: str, timeout: float = 60.0) -> dict[str, Any]:
    """/_mgmt/ready once the start check (and a reload it started) has ended."""
    deadline = time.monotonic() + timeout
    while True:
        ready = httpx.get(base + "/_mgmt/ready").json()
        check = ready["last_reload"]["start_check"]
        if check["state"] in ("unchanged", "reloaded", "failed") and check.get("index_file") != "writing":
            return ready
        assert time.monotonic() < deadline, ready
        time.sleep(0.1)


def snapshot_of(root: Path, path: Path) -> None:
    index, _ = load_catalogs([str(root)])
    write_snapshot(str(path), index, [str(root)])


def test_a_stale_snapshot_is_served_then_replaced_by_its_rebuilt_index(sample_copy: Path, tmp_path: Path) -> None:
    root = sample_copy / "catalog.json"
    original = root.read_text()
    # with its ROOTs, and without (its own roots are reloaded): the stale snapshot's index
    # (version 1) is served, then replaced by the reload of the changed catalog (version 2)
    for roots in ([str(root)], []):
        root.write_text(original)
        _, snapshot = stale_sample(sample_copy, tmp_path)  # (the first start rewrote it)
        log = tmp_path / f"server-{len(roots)}.log"
        with run_server(roots, extra_args=["--index", str(snapshot)], env=BACKGROUND, log_path=log) as base:
            ready = checked(base)
            check = ready["last_reload"]["start_check"]
            assert check["state"] == "reloaded", ready
            assert "is stale" in check["detail"] and "catalog.json (changed)" in check["detail"]
            assert check["files"] > 68 and check["seconds"] >= 0
            assert ready["last_reload"]["reason"] == "start check: stale snapshot"
            assert ready["last_reload"]["ok"] is True and ready["version"] == 2 and ready["items"] == 67
            assert len(httpx.get(base + "/search", params={"limit": 100}).json()["features"]) == 67
        output = log.read_text()
        assert "served while its" in output and "checked in the background" in output
        assert "is stale" in output and "served until a reload from its roots replaces it" in output


def test_an_unchanged_snapshot_is_never_reloaded(sample_copy: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "sample.idx"
    snapshot_of(sample_copy / "catalog.json", snapshot)
    with run_server(extra_args=["--index", str(snapshot)], env=BACKGROUND) as base:
        ready = checked(base)
        assert ready["last_reload"]["start_check"]["state"] == "unchanged"
        assert ready["last_reload"]["start_check"]["detail"] is None
        time.sleep(0.5)  # nothing reloads after the check either
        ready = httpx.get(base + "/_mgmt/ready").json()
        assert ready["last_reload"]["reloads"] == 0 and ready["last_reload"]["ok"] is None
        assert ready["version"] == 1 and ready["items"] == 68
    # a snapshot of fewer files than the setting is checked before serving, as before
    with run_server(extra_args=["--index", str(snapshot)]) as base:
        assert "start_check" not in httpx.get(base + "/_mgmt/ready").json()["last_reload"]


def test_a_check_that_fails_leaves_the_snapshot_served_and_says_so(sample_copy: Path, tmp_path: Path) -> None:
    root = sample_copy / "catalog.json"
    index, _ = load_catalogs([str(root)])
    # a path os.stat refuses (ValueError, not OSError: not "gone"): the check itself fails
    fp = index.fingerprint
    index.fingerprint = Fingerprint(np.frombuffer(fp.paths.tobytes() + b"\n/no\0such", dtype=np.uint8),
                                    np.append(fp.sizes, 0), np.append(fp.mtimes, 0))
    snapshot = tmp_path / "sample.idx"
    write_snapshot(str(snapshot), index, [str(root)])
    log = tmp_path / "server.log"
    with run_server(extra_args=["--index", str(snapshot)], env=BACKGROUND, log_path=log) as base:
        ready = checked(base)
        check = ready["last_reload"]["start_check"]
        assert check["state"] == "failed" and "null" in check["detail"], ready
        assert ready["status"] == "ready" and ready["items"] == 68 and ready["last_reload"]["reloads"] == 0
        assert httpx.get(base + "/search", params={"limit": 1}).status_code == 200
    assert "serving it unchecked" in log.read_text()


# -- session 14: workers, the --index file rewritten, retries, staleness in /_mgmt/ready ---------


def stale_sample(sample_copy: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A snapshot of the sample, then its catalog changed (one child link less: 67 items)."""
    root = sample_copy / "catalog.json"
    snapshot = tmp_path / "sample.idx"
    snapshot_of(root, snapshot)
    doc = json.loads(root.read_text())
    doc["links"] = [link for link in doc["links"] if "misc" not in link["href"]]
    root.write_text(json.dumps(doc, indent=1))
    return root, snapshot


def header_sha(snapshot: Path) -> str:
    from server.runtime.snapshot import read_header

    with open(snapshot, "rb") as f:
        return str(read_header(f, str(snapshot))["header_sha256"])


@pytest.mark.parametrize("workers", [1, 2])
def test_the_reloaded_snapshot_is_written_to_the_index_file(sample_copy: Path, tmp_path: Path, workers: int) -> None:
    root, snapshot = stale_sample(sample_copy, tmp_path)
    before = header_sha(snapshot)
    log = tmp_path / "server.log"
    # with --workers N too, the snapshot is served at once: the supervisor checks it once the
    # workers serve, and every worker maps the reload it publishes
    check = reloaded_in_the_background(root, snapshot, workers, log, {"status": "ready", "stale": False})
    assert check["index_file"] == "rewritten", check
    output = log.read_text()
    assert "served while its" in output and "checked in the background" in output
    assert header_sha(snapshot) != before
    assert not list(tmp_path.glob("sample.idx.tmp*"))
    # the next start finds the rewritten file unchanged: no second reload
    with run_server([str(root)], extra_args=["--index", str(snapshot)], env=BACKGROUND) as base:
        ready = checked(base)
        assert ready["last_reload"]["start_check"]["state"] == "unchanged", ready
        assert ready["items"] == 67 and ready["version"] == 1 and ready["stale"] is False


def reloaded_in_the_background(root: Path, snapshot: Path, workers: int, log: Path,
                               expected: dict[str, Any]) -> dict[str, Any]:
    """A start from ``snapshot`` (stale) with ROOT ``root`` and ``workers`` workers, until its
    check has reloaded it: the check's state; whichever worker answers /_mgmt/ready, it serves
    the reload (67 items, version 2) and says ``expected`` too."""
    with run_server([str(root)], extra_args=["--index", str(snapshot), "--workers", str(workers)], env=BACKGROUND,
                    log_path=log) as base:
        check = checked(base)["last_reload"]["start_check"]
        assert check["state"] == "reloaded", check
        # Under --workers the check's state is a file the supervisor writes once its build is
        # published and the workers signalled (SIGUSR1): a worker can read "reloaded" before it
        # has mapped that build, so 8 answers in a row are asked until they all give version 2
        # (up to 30 s), then checked (the kind of race CI failed on in test_metrics).
        deadline = time.monotonic() + 30
        while True:
            answers = [httpx.get(base + "/_mgmt/ready").json() for _ in range(8)]
            if all(a["version"] == 2 for a in answers) or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        for ready in answers:
            assert ready["items"] == 67 and ready["version"] == 2, ready
            assert ready["last_reload"]["start_check"]["state"] == "reloaded"
            assert {key: ready[key] for key in expected} == expected, ready
    return dict(check)


def test_a_failed_reload_is_retried_and_the_staleness_is_reported(sample_copy: Path, tmp_path: Path) -> None:
    root, snapshot = stale_sample(sample_copy, tmp_path)
    good = root.read_text()
    root.write_text("{ not json")  # the reload cannot read its root
    log = tmp_path / "server.log"
    env = {**BACKGROUND, "STAC_STATIC_START_CHECK_RETRY_SECONDS": "0.2", "STAC_STATIC_START_CHECK_RETRIES": "50"}
    with run_server([str(root)], extra_args=["--index", str(snapshot)], env=env, log_path=log) as base:
        deadline = time.monotonic() + 60
        while True:
            ready = httpx.get(base + "/_mgmt/ready").json()
            check = ready["last_reload"]["start_check"]
            if check["attempts"] >= 2:
                break
            assert time.monotonic() < deadline, ready
            time.sleep(0.1)
        # serving the stale snapshot is intended: ready stays ready, and says it is stale
        assert ready["status"] == "ready" and ready["items"] == 68 and ready["version"] == 1
        assert check["state"] == "stale" and ready["stale"] is True, ready
        assert "is stale" in ready["stale_reason"]
        assert ready["last_reload"]["ok"] is False
        root.write_text(good)  # the next retry reads it
        ready = checked(base)
        assert ready["last_reload"]["start_check"]["state"] == "reloaded", ready
        assert ready["stale"] is False and "stale_reason" not in ready and ready["items"] == 67
    output = log.read_text()
    assert "retrying in" in output


def test_retries_are_bounded(sample_copy: Path, tmp_path: Path) -> None:
    root, snapshot = stale_sample(sample_copy, tmp_path)
    root.write_text("{ not json")
    log = tmp_path / "server.log"
    env = {**BACKGROUND, "STAC_STATIC_START_CHECK_RETRY_SECONDS": "0.1", "STAC_STATIC_START_CHECK_RETRIES": "2"}
    with run_server([str(root)], extra_args=["--index", str(snapshot)], env=env, log_path=log) as base:
        deadline = time.monotonic() + 60
        while "giving up" not in log.read_text():
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        time.sleep(0.5)
        ready = httpx.get(base + "/_mgmt/ready").json()
        check = ready["last_reload"]["start_check"]
        assert check["attempts"] == 3 and check["state"] == "stale" and check["retry_at"] is None, ready
        assert ready["stale"] is True and ready["status"] == "ready"
        assert ready["last_reload"]["reloads"] == 0


@pytest.fixture
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot create files in: mode 555, or (as root, whom modes do not
    stop) the immutable attribute; skipped where neither holds."""
    folder = tmp_path / "ro"
    folder.mkdir()
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], capture_output=True, check=False)
    folder.chmod(0o755)


def make_read_only(folder: Path) -> None:
    folder.chmod(0o555)
    if os.access(folder, os.W_OK):
        done = subprocess.run(["chattr", "+i", str(folder)], capture_output=True, check=False)
        if done.returncode != 0 or os.access(folder, os.W_OK):
            pytest.skip("no way to make a folder read-only here (root without chattr +i)")


def test_a_stale_snapshot_checked_before_serving_in_a_read_only_folder_is_rebuilt_and_served(
        sample_copy: Path, tmp_path: Path, read_only_folder: Path) -> None:
    # checked before serving (under STAC_STATIC_START_CHECK_FILES): the rebuilt index could not be
    # written over the --index file (the server exited with a PermissionError traceback); it is
    # served, as the background check's reload is, and the next start rebuilds it again
    root, snapshot = stale_sample(sample_copy, tmp_path)
    kept = read_only_folder / "sample.idx"
    shutil.move(snapshot, kept)
    make_read_only(read_only_folder)
    log = tmp_path / "server.log"
    for _ in range(2):  # two starts in a row: the same
        with run_server([str(root)], extra_args=["--index", str(kept)], log_path=log) as base:
            ready = httpx.get(base + "/_mgmt/ready").json()
            assert ready["items"] == 67 and ready["stale"] is False, ready
            assert len(httpx.get(base + "/search", params={"limit": 100}).json()["features"]) == 67
        output = log.read_text()
        assert "is stale" in output and "not rewritten" in output and "Traceback" not in output, output
        assert sorted(p.name for p in read_only_folder.iterdir()) == ["sample.idx"]


# -- session 15: a degraded reload is served but never written as the --index file ---------------


def degraded_sample(sample_copy: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    """A snapshot of the sample, then its misc sub-catalog deleted (a load of it is degraded: a
    catalog not read, its item missing): the root, the snapshot and its header's checksum."""
    root = sample_copy / "catalog.json"
    snapshot = tmp_path / "sample.idx"
    snapshot_of(root, snapshot)
    shutil.rmtree(sample_copy / "misc")
    return root, snapshot, header_sha(snapshot)


@pytest.mark.parametrize("workers", [1, 2])
def test_a_degraded_reload_is_served_but_not_written_to_the_index_file(sample_copy: Path, tmp_path: Path,
                                                                       workers: int) -> None:
    # the misc sub-catalog deleted: the reload reads the rest (its item missing, "degraded") and
    # serves it; written over the --index file, the next start would serve it as complete
    # (its files unchanged), as `index` never writes such a load
    root, snapshot, before = degraded_sample(sample_copy, tmp_path)
    log = tmp_path / "server.log"
    check = reloaded_in_the_background(root, snapshot, workers, log, {"status": "degraded"})
    assert check["index_file"].startswith("not rewritten: the reloaded index is degraded"), check
    assert "misc/catalog.json" in check["index_file"], check
    assert header_sha(snapshot) == before
    assert not list(tmp_path.glob("sample.idx.tmp*"))
    assert "not rewritten with the reloaded index" in log.read_text()
    # the next start finds the snapshot stale again, not a degraded one passed for fresh
    with run_server([str(root)], extra_args=["--index", str(snapshot)], env=BACKGROUND) as base:
        ready = checked(base)
        assert ready["last_reload"]["start_check"]["state"] == "reloaded", ready


def test_a_degraded_rebuild_before_serving_is_served_but_not_written(sample_copy: Path, tmp_path: Path) -> None:
    # checked before serving (few files): the rebuilt index is degraded, so it is not written either
    root, snapshot, before = degraded_sample(sample_copy, tmp_path)
    log = tmp_path / "server.log"
    with run_server([str(root)], extra_args=["--index", str(snapshot)], log_path=log) as base:
        ready = httpx.get(base + "/_mgmt/ready").json()
        assert ready["status"] == "degraded" and ready["items"] == 67, ready
    assert header_sha(snapshot) == before
    assert "not rewritten: the index rebuilt from the roots is degraded" in log.read_text()
