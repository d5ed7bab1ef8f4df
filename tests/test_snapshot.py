"""Index snapshots (`index -o FILE`, `serve --index FILE`) and forked workers (`serve --workers N`)."""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.catalog.loader import LoadOptions, load_catalogs
from server.runtime import snapshot
from server.runtime.snapshot import (
    BODY_START,
    FORMAT_VERSION,
    MAGIC,
    POINTER,
    SnapshotError,
    read_snapshot,
    seal_header,
    write_snapshot,
)
from server.sample import SAMPLE_ROOT
from tests.helpers import REPO, run_cli, run_server


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE_ROOT.parent, target)
    return target


def answers(base: str) -> list[list[str]]:
    queries = [
        {"limit": 100},
        {"bbox": "5.65,51.95,5.68,51.98", "limit": 100},
        {"filter": "eo:cloud_cover < 30", "sortby": "-eo:cloud_cover", "limit": 100},
        {"q": "NDVI", "limit": 100},
    ]
    return [[f["id"] for f in httpx.get(base + "/search", params=q).json()["features"]] for q in queries]


def test_snapshot_round_trip_serves_the_same_answers(sample_copy: Path, tmp_path: Path) -> None:
    snapshot = tmp_path / "sample.idx"
    result = run_cli(["index", str(sample_copy / "catalog.json"), "-o", str(snapshot)])
    assert result.returncode == 0, result.stderr
    assert snapshot.read_bytes().startswith(MAGIC)
    with run_server([str(sample_copy / "catalog.json")]) as direct:
        expected = answers(direct)
    with run_server(extra_args=["--index", str(snapshot)]) as from_snapshot:
        assert answers(from_snapshot) == expected
        ready = httpx.get(from_snapshot + "/_mgmt/ready").json()
        assert ready["items"] == 68


def test_stale_snapshot_is_refused_or_rebuilt(sample_copy: Path, tmp_path: Path) -> None:
    root = sample_copy / "catalog.json"
    index, _ = load_catalogs([str(root)])
    snapshot = tmp_path / "sample.idx"
    write_snapshot(str(snapshot), index, [str(root)])
    read_snapshot(str(snapshot))  # fresh: fine

    doc = json.loads(root.read_text())
    doc["links"] = [link for link in doc["links"] if "misc" not in link["href"]]
    root.write_text(json.dumps(doc, indent=1))
    with pytest.raises(SnapshotError, match="stale"):
        read_snapshot(str(snapshot))

    # Without roots the server refuses to start on it, saying why.
    result = run_cli(["serve", "--index", str(snapshot), "--port", "1"])
    assert result.returncode == 1
    assert "stale" in result.stderr

    # With roots it rebuilds from them (and writes the snapshot anew).
    with run_server([str(root)], extra_args=["--index", str(snapshot)]) as base:
        assert httpx.get(base + "/_mgmt/ready").json()["items"] == 67
    rebuilt, _ = read_snapshot(str(snapshot))
    assert rebuilt.size == 67


def test_a_snapshot_of_other_roots_is_rebuilt_from_the_roots_given(sample_copy: Path, tmp_path: Path) -> None:
    """Found by QA: `serve ROOT --index FILE` served FILE's catalog whatever ROOT was, until a
    reload switched to ROOT."""
    other = tmp_path / "other"
    shutil.copytree(sample_copy, other)
    doc = json.loads((other / "catalog.json").read_text())
    doc["links"] = [link for link in doc["links"] if "misc" not in link["href"]]
    (other / "catalog.json").write_text(json.dumps(doc, indent=1))
    snapshot = tmp_path / "other.idx"
    write_snapshot(str(snapshot), load_catalogs([str(other / "catalog.json")])[0], [str(other / "catalog.json")])
    with run_server([str(sample_copy / "catalog.json")], extra_args=["--index", str(snapshot)]) as base:
        assert httpx.get(base + "/_mgmt/ready").json()["items"] == 68
    rebuilt, header = read_snapshot(str(snapshot))
    assert rebuilt.size == 68 and header["roots"] == [str(sample_copy / "catalog.json")]


def test_other_format_versions_and_garbage_are_refused(tmp_path: Path) -> None:
    wrong = tmp_path / "wrong.idx"
    wrong.write_bytes(MAGIC + b'{"format": 999}\n')
    with pytest.raises(SnapshotError, match="format 999"):
        read_snapshot(str(wrong))
    garbage = tmp_path / "garbage.idx"
    garbage.write_bytes(b"hello")
    with pytest.raises(SnapshotError, match="not a stac-static-api index snapshot"):
        read_snapshot(str(garbage))
    damaged = tmp_path / "damaged.idx"
    damaged.write_bytes(forged(b"\x80\x05junk", pickle=[BODY_START, 6]))
    with pytest.raises(SnapshotError, match="damaged or from an incompatible version"):
        read_snapshot(str(damaged))
    cut = tmp_path / "cut.idx"  # the header says more than the file holds
    cut.write_bytes(forged(b"\x80\x05junk", pickle=[BODY_START, 600]))
    with pytest.raises(SnapshotError, match="truncated"):
        read_snapshot(str(cut))
    truncated = tmp_path / "truncated.idx"  # the end, with the header, cut off
    truncated.write_bytes(forged(b"\x80\x05junk" * 10, pickle=[BODY_START, 60])[: BODY_START + 20])
    with pytest.raises(SnapshotError, match="truncated or damaged: no header where it says"):
        read_snapshot(str(truncated))
    longer = tmp_path / "longer.idx"  # bytes after the header
    longer.write_bytes(forged(b"\x80\x05junk", pickle=[BODY_START, 6]) + b"\0" * 10)
    with pytest.raises(SnapshotError, match="not the length its header gives"):
        read_snapshot(str(longer))
    unsealed = tmp_path / "unsealed.idx"  # a damaged byte in the header: its checksum says so
    unsealed.write_bytes(forged(b"\x80\x05junk", pickle=[BODY_START, 6]).replace(b'"body_bytes":6', b'"body_bytes":9'))
    with pytest.raises(SnapshotError, match="damaged snapshot header"):
        read_snapshot(str(unsealed))
    older = tmp_path / "older.idx"  # format 7 and before: the header on the second line
    older.write_bytes(MAGIC + b'{"format": 7, "roots": [], "pickle_bytes": 100, "buffers": []}\n')
    with pytest.raises(SnapshotError, match="format 7, this server reads formats 9 and 10"):
        read_snapshot(str(older))
    for other in (8, 11):  # named, both ways, not "damaged"
        path = tmp_path / f"format-{other}.idx"
        path.write_bytes(forged(b"\x80\x05junk", pickle=[BODY_START, 6], format=other))
        with pytest.raises(SnapshotError, match=f"has snapshot format {other}, this server reads formats 9 and 10"):
            read_snapshot(str(path))


def test_format_9_snapshots_are_read_and_format_10_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Format 10 (session 15): a vocabulary may be a TextBlock (session 14 wrote those as 9, and a
    format-9 server refused them as "damaged"); format 9 is read as before."""
    assert FORMAT_VERSION == 10
    index, _ = load_catalogs([str(SAMPLE_ROOT)])
    newer = tmp_path / "newer.idx"
    assert write_snapshot(str(newer), index, [str(SAMPLE_ROOT)])["format"] == 10
    monkeypatch.setattr(snapshot, "FORMAT_VERSION", 9)
    older = tmp_path / "older.idx"
    assert write_snapshot(str(older), index, [str(SAMPLE_ROOT)])["format"] == 9
    monkeypatch.undo()
    for path in (older, newer):
        read, header = read_snapshot(str(path))
        assert read.size == 68 and header["format"] in (9, 10)


def forged(body: bytes, **fields: object) -> bytes:
    """A snapshot file holding ``body``, with a header of ``fields`` sealed as the writer seals
    it (its checksums right)."""
    header = {"format": FORMAT_VERSION, "header_sha256": "0" * 64, "body_sha256": "0" * 64,
              "body_bytes": len(body), "roots": [], "buffers": [], **fields}
    line = json.dumps(header, separators=(",", ":")).encode() + b"\n"
    return MAGIC + POINTER % (BODY_START + len(body)) + body + seal_header(line, hashlib.sha256(body).hexdigest())


def test_a_snapshot_carries_the_checksums_of_its_header_and_body(tmp_path: Path) -> None:
    index, _ = load_catalogs([str(SAMPLE_ROOT)])
    path = tmp_path / "x.idx"
    header = write_snapshot(str(path), index, [str(SAMPLE_ROOT)])
    data = path.read_bytes()
    header_at = int(data[len(MAGIC) : BODY_START])
    assert header["body_bytes"] == header_at - BODY_START
    assert hashlib.sha256(data[BODY_START:header_at]).hexdigest() == header["body_sha256"]
    assert data[header_at:].count(b"\n") == 1 and data.endswith(b"\n")  # the header ends the file
    assert read_snapshot(str(path))[1]["header_sha256"] == header["header_sha256"]


def test_a_spooled_snapshot_is_hashed_as_it_grows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The body of a snapshot whose items are spooled into it during the build is hashed by a
    thread following the file (FollowingHash) before finish(), and the checksum is still the
    body's: what finish() hashes is only what was left."""
    monkeypatch.setattr(snapshot, "HASH_CHUNK", 4096)
    monkeypatch.setattr(snapshot.FollowingHash, "POLL_SECONDS", 0.001)
    hashed_ahead: list[int] = []
    hash_to = snapshot.FollowingHash._hash_to

    def spy(self: snapshot.FollowingHash, end: int) -> None:
        if threading.current_thread() is not threading.main_thread():
            hashed_ahead.append(end)
        hash_to(self, end)

    monkeypatch.setattr(snapshot.FollowingHash, "_hash_to", spy)
    path = tmp_path / "x.idx"
    writer = snapshot.SnapshotWriter(str(path))
    index, _ = load_catalogs([str(SAMPLE_ROOT)], LoadOptions(item_spool=writer.spool))
    writer.spool.write(b"x" * 3 * 4096)  # more to hash, as the build would add; then aligned over
    writer.spool.flush()
    deadline = time.monotonic() + 30
    while not hashed_ahead and time.monotonic() < deadline:
        time.sleep(0.01)
    header = writer.finish(index, [str(SAMPLE_ROOT)])
    assert hashed_ahead  # before finish
    data = path.read_bytes()
    header_at = int(data[len(MAGIC) : BODY_START])
    assert hashlib.sha256(data[BODY_START:header_at]).hexdigest() == header["body_sha256"]
    assert read_snapshot(str(path))[0].size == index.size


def test_the_buffers_written_beside_the_pickle_are_where_the_header_says(tmp_path: Path) -> None:
    """finish() writes the out-of-band buffers in a thread of its own while the pickle runs: each
    buffer's bytes are at the offset the header gives, aligned, in pickle order."""
    index, _ = load_catalogs([str(SAMPLE_ROOT)])
    path = tmp_path / "x.idx"
    header = write_snapshot(str(path), index, [str(SAMPLE_ROOT)])
    buffers: list[pickle.PickleBuffer] = []
    pickle.dumps(index, protocol=5, buffer_callback=buffers.append)
    data = path.read_bytes()
    assert len(buffers) == len(header["buffers"]) > 10
    spans: list[tuple[int, int]] = []
    for buffer, (at, size) in zip(buffers, header["buffers"], strict=True):
        raw = buffer.raw()
        assert size == raw.nbytes
        assert data[at : at + size] == raw.tobytes()
        # aligned, unless a view of a buffer written before it (not written again)
        assert at % snapshot.ALIGN == 0 or size == 0 or any(s <= at and at + size <= e for s, e in spans)
        spans.append((at, at + size))
    pickle_at, pickle_bytes = header["pickle"]
    assert pickle_at + pickle_bytes == int(data[len(MAGIC) : BODY_START])  # the header follows the pickle
    assert read_snapshot(str(path))[0].size == index.size


def test_a_buffer_write_that_fails_fails_the_snapshot(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A write of the buffers' thread that fails (a full disk) is raised by finish: no snapshot,
    no half-written file left."""

    class FullDisk:
        def __init__(self, f: object) -> None:
            self.f = f

        def write(self, data: object) -> int:
            raise OSError(28, "No space left on device")

    init = snapshot._BufferWriter.__init__

    def failing(self: snapshot._BufferWriter, f: object) -> None:
        init(self, FullDisk(f))

    monkeypatch.setattr(snapshot._BufferWriter, "__init__", failing)
    index, _ = load_catalogs([str(SAMPLE_ROOT)])
    with pytest.raises(OSError, match="No space left"):
        write_snapshot(str(tmp_path / "x.idx"), index, [str(SAMPLE_ROOT)])
    assert list(tmp_path.iterdir()) == []


def test_index_replaces_its_output_and_the_old_file_goes(sample_copy: Path, tmp_path: Path) -> None:
    """`index -o F` over an existing F: the new snapshot replaces it when complete and nothing
    of the old file or the build's temporary file is left beside it; an output with another hard
    link is replaced by name, and the other name keeps the old bytes."""
    out = tmp_path / "out.idx"
    out.write_bytes(b"old" * 1000)
    result = run_cli(["index", str(sample_copy / "catalog.json"), "-o", str(out)])
    assert result.returncode == 0, result.stderr
    assert read_snapshot(str(out))[0].size == 68
    assert not list(tmp_path.glob("out.idx.*"))
    linked = tmp_path / "linked.idx"
    linked.write_bytes(b"older" * 1000)
    keep = tmp_path / "keep"
    keep.hardlink_to(linked)
    result = run_cli(["index", str(sample_copy / "catalog.json"), "-o", str(linked)])
    assert result.returncode == 0, result.stderr
    assert read_snapshot(str(linked))[0].size == 68
    assert keep.read_bytes() == b"older" * 1000
    assert not list(tmp_path.glob("linked.idx.*"))


def test_a_reload_that_cannot_write_its_snapshot_keeps_the_old_index(sample_copy: Path, tmp_path: Path) -> None:
    """serve --index F, an item changed, POST /_mgmt/reload: the reload's build process (a
    child) cannot write its snapshot (RLIMIT_FSIZE on the server, which its children inherit:
    EFBIG when the snapshot is written, as a full disk's ENOSPC; the server's own writes are
    smaller). The old index keeps serving, the failure is logged and answered in a line that
    says why; before, the child's traceback went to the server's log and the reason given was
    "the build process exited with status 1" (a real full disk, a 64 KB tmpfs as TMPDIR: same)."""
    import resource

    snapshot_file = tmp_path / "sample.idx"
    assert run_cli(["index", str(sample_copy / "catalog.json"), "-o", str(snapshot_file)]).returncode == 0
    assert snapshot_file.stat().st_size > 128 << 10  # what the reload writes is of this size too

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))

    log = tmp_path / "server.log"
    env = {"STAC_STATIC_ADMIN_TOKEN": "t", "STAC_STATIC_RELOAD_IN_CHILD": "true"}
    with run_server([str(sample_copy / "catalog.json")], ["--index", str(snapshot_file)], env=env, log_path=log,
                    preexec=limited) as base:
        # one item changed: the load writes little, and what fails is the snapshot's tail (its
        # columns and the rest: finish), where the child's traceback came from
        path = next(p for p in sorted(sample_copy.rglob("*.json")) if json.loads(p.read_text()).get("type") == "Feature")
        doc = json.loads(path.read_text())
        doc["properties"]["title"] = "changed"
        path.write_text(json.dumps(doc))
        answer = httpx.post(f"{base}/_mgmt/reload", headers={"Authorization": "Bearer t"}, timeout=120)
        assert answer.status_code == 502, answer.text
        assert "File too large" in answer.json()["description"], answer.text
        page = httpx.get(f"{base}/search", params={"limit": 100}).json()
        assert page["numberMatched"] == 68 and "changed" not in {f["properties"].get("title") for f in page["features"]}
        ready = httpx.get(f"{base}/_mgmt/ready").json()
        assert ready["last_reload"]["ok"] is False and "File too large" in ready["last_reload"]["error"]
    said = log.read_text()
    assert "Traceback" not in said, said
    assert "failed, still serving the previous index: OSError: [Errno 27] File too large" in said, said


def test_workers_share_one_load_and_stop_together(sample_copy: Path) -> None:
    with run_server([str(sample_copy / "catalog.json")], extra_args=["--workers", "2"]) as base:
        with httpx.Client(base_url=base) as client:
            for _ in range(20):
                response = client.get("/search", params={"limit": 3})
                assert response.status_code == 200
                assert response.json()["numberMatched"] == 68


@pytest.mark.parametrize("call", ["snapshot.write_snapshot", "finish"])
def test_a_failed_write_collected_later_does_not_crash(tmp_path: Path, call: str) -> None:
    """A write_snapshot that failed (a full disk), its error and the index then dropped: the next
    gc.collect() segfaulted (memoryview tp_clear with an export: the traceback's frames held the
    pickle's buffers). In a child process, as a crash would end pytest. SnapshotWriter.finish
    releases those buffers when it fails (session 15; session 14 dropped write_snapshot's
    traceback instead): the error kept with its traceback, from either, is collected safely."""
    script = f"""
import gc
from server.runtime import snapshot

def finish(path, index, roots):
    writer = snapshot.SnapshotWriter(path)
    try:
        return writer.finish(index, roots)
    except BaseException:
        writer.abort()
        raise
from server.catalog.loader import load_catalogs
from server.sample import SAMPLE_ROOT

class FullDisk:
    def __init__(self, f): self.f = f
    def write(self, data): raise OSError(28, "No space left on device")

init = snapshot._BufferWriter.__init__
snapshot._BufferWriter.__init__ = lambda self, f: init(self, FullDisk(f))
index, _ = load_catalogs([str(SAMPLE_ROOT)])
try:
    {call}({str(tmp_path / "x.idx")!r}, index, [str(SAMPLE_ROOT)])
except OSError as exc:
    kept = exc
assert kept.__traceback__ is not None and "No space left" in str(kept)
del index, kept
gc.collect()
print("collected")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert result.returncode == 0 and "collected" in result.stdout, result.stderr[-2000:]
    assert "exported buffer" not in result.stderr


def test_a_build_on_a_full_disk_leaves_no_half_written_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    """`index -o` into a folder whose disk fills (the spool's file descriptor made /dev/full's):
    the load's ENOSPC is what is said, and the half-written file is removed. Before, abort()
    closed the spool first, whose buffered bytes raised ENOSPC again, so the unlink after it
    never ran: the .tmp file (most of the disk, by then) stayed, and the error seen was abort's
    (found on a 2 MB tmpfs with 3,000 item files)."""
    import os

    from server.runtime.cli import main as cli_main

    real_init = snapshot.SnapshotWriter.__init__

    def on_a_full_disk(self: snapshot.SnapshotWriter, path: str) -> None:
        real_init(self, path)
        full = os.open("/dev/full", os.O_WRONLY)
        os.dup2(full, self.spool.fileno())  # the next write or flush of the spool: ENOSPC
        os.close(full)

    monkeypatch.setattr(snapshot.SnapshotWriter, "__init__", on_a_full_disk)
    out = tmp_path / "full.idx"
    assert cli_main(["index", str(SAMPLE_ROOT), "-o", str(out), "--log-level", "warning"]) == 1
    said = capsys.readouterr().err.strip().splitlines()[-1]
    assert said.startswith(f"stac-static-api: cannot write {out}: No space left on device"), said
    assert list(tmp_path.iterdir()) == []  # no half-written snapshot left


FULL_DISK = """
import os, sys
from server.runtime import snapshot
from server.runtime.cli import main

real_init = snapshot.SnapshotWriter.__init__

def on_a_full_disk(self, path):
    real_init(self, path)
    full = os.open("/dev/full", os.O_WRONLY)
    os.dup2(full, self.spool.fileno())  # every later write of the snapshot: ENOSPC
    os.close(full)

snapshot.SnapshotWriter.__init__ = on_a_full_disk
sys.exit(main(sys.argv[1:]))
"""


def _no_space(*args: str, preexec: Any = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, cwd=REPO, timeout=120,
                          preexec_fn=preexec)


@pytest.mark.parametrize("how", ["full disk", "file size limit", "no folder"])
def test_index_that_cannot_write_its_file_says_why_in_a_line(tmp_path: Path, how: str) -> None:
    """`stac-static-api index ... -o F` that cannot write F, through the real CLI: a full disk
    (the snapshot's file descriptor made /dev/full's: ENOSPC as a full disk answers), a file
    size limit (RLIMIT_FSIZE, as a quota stops a file: EFBIG, no patch at all), a folder that
    does not exist. Each ends in one line that names the file and why, exit status 1, and
    nothing left beside it; before, a Python traceback."""
    import resource

    out = tmp_path / "folder" / "index.snapshot"
    out.parent.mkdir()
    args = ["index", str(SAMPLE_ROOT), "-o", str(out), "--log-level", "warning"]
    if how == "full disk":
        result, why = _no_space("-c", FULL_DISK, *args), "No space left on device"
    elif how == "file size limit":
        def limited() -> None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))  # the sample's snapshot: ~240 KB

        result, why = _no_space("-m", "server", *args, preexec=limited), "File too large"
    else:
        out = tmp_path / "missing" / "index.snapshot"
        result, why = _no_space("-m", "server", *args[:3], str(out)), "No such file or directory"
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(f"stac-static-api: cannot write {out}: {why}") and "no snapshot written" in last, last
    assert not out.parent.exists() or list(out.parent.iterdir()) == []  # no half-written file
