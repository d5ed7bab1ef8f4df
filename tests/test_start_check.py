"""`serve --index FILE` of a snapshot read from more files than STAC_STATIC_START_CHECK_FILES:
served at once, its files checked in the background, reloaded from its roots when stale."""

from __future__ import annotations

import json
import shutil
import time
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
        if ready["last_reload"]["start_check"]["state"] in ("unchanged", "reloaded", "failed"):
            return ready
        assert time.monotonic() < deadline, ready
        time.sleep(0.1)


def snapshot_of(root: Path, path: Path) -> None:
    index, _ = load_catalogs([str(root)])
    write_snapshot(str(path), index, [str(root)])


def test_a_stale_snapshot_is_served_then_replaced_by_its_rebuilt_index(sample_copy: Path, tmp_path: Path) -> None:
    root = sample_copy / "catalog.json"
    snapshot = tmp_path / "sample.idx"
    snapshot_of(root, snapshot)
    doc = json.loads(root.read_text())
    doc["links"] = [link for link in doc["links"] if "misc" not in link["href"]]
    root.write_text(json.dumps(doc, indent=1))

    # with its ROOTs, and without (its own roots are reloaded): the stale snapshot's index
    # (version 1) is served, then replaced by the reload of the changed catalog (version 2)
    for roots in ([str(root)], []):
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
