"""`export -o FILE.ndjson` loaded into pgstac by pypgstac, as a user moving to pgstac would.

pypgstac pins versions this project's environment cannot take (cachetools 6.0.0), so it lives
in its own virtualenv, made once and kept under the system's temporary folder
(PYPGSTAC_VENV). PostgreSQL and PostGIS come from the system (Debian: `postgresql`,
`postgresql-15-postgis-3`); a private cluster is made for the test on a free loopback port,
run as the `postgres` user when the tests run as root, and removed after. The test is skipped,
with the reason, when PostgreSQL, PostGIS or pypgstac cannot be had.

pgstac takes only items that have a collection and a geometry (its items table needs both):
the catalog exported here is the sample's collections with those of their items.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from server.catalog.loader import LoadOptions, load_catalogs
from server.runtime.cli import main
from server.sample import SAMPLE_ROOT
from tests.helpers import free_port

PYPGSTAC = "pypgstac[psycopg]==0.10.0"
PYPGSTAC_VENV = Path(tempfile.gettempdir()) / "stac-static-api-pypgstac-0.10.0"


def postgres_bin() -> Path | None:
    """The bin folder of a PostgreSQL whose share folder has PostGIS, newest first."""
    for initdb in sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True):
        version = Path(initdb).parents[1].name
        if glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"):
            return Path(initdb).parent
    return None


def pypgstac_venv() -> Path:
    """The virtualenv with pypgstac, made on first use (under a lock: tests may run at once)."""
    ready = PYPGSTAC_VENV / "complete"
    PYPGSTAC_VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{PYPGSTAC_VENV}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if ready.exists():
            return PYPGSTAC_VENV
        shutil.rmtree(PYPGSTAC_VENV, ignore_errors=True)  # a run that stopped half way
        subprocess.run([sys.executable, "-m", "venv", str(PYPGSTAC_VENV)], check=True, capture_output=True, timeout=120)
        done = subprocess.run([str(PYPGSTAC_VENV / "bin" / "pip"), "install", "--quiet", PYPGSTAC],
                              capture_output=True, text=True, timeout=900)
        if done.returncode:
            shutil.rmtree(PYPGSTAC_VENV, ignore_errors=True)
            pytest.skip(f"pypgstac could not be installed ({PYPGSTAC}): {done.stderr.strip()[-300:]}")
        ready.touch()
    return PYPGSTAC_VENV


def as_postgres(args: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the postgres user."""
    return ["runuser", "-u", "postgres", "--", *args] if os.geteuid() == 0 else args


@pytest.fixture(scope="module")
def pgstac() -> Iterator[tuple[Path, str]]:
    """(pypgstac's virtualenv, the DSN of a migrated pgstac database)."""
    bin_dir = postgres_bin()
    if bin_dir is None:
        pytest.skip("no PostgreSQL with PostGIS here (Debian: apt-get install postgresql postgresql-15-postgis-3)")
    if os.geteuid() == 0 and (shutil.which("runuser") is None or subprocess.run(["id", "postgres"]).returncode):
        pytest.skip("running as root without a postgres user to run PostgreSQL as")
    venv = pypgstac_venv()
    folder = tempfile.mkdtemp(prefix="stac-static-api-pg-")  # not under pytest's root-only tmp folder
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    data, port = os.path.join(folder, "data"), free_port()
    try:
        subprocess.run(as_postgres([str(bin_dir / "initdb"), "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8"]),
                       check=True, capture_output=True, timeout=120)
        subprocess.run(as_postgres([str(bin_dir / "pg_ctl"), "-D", data, "-l", os.path.join(folder, "log"), "-w",
                                    "-o", f"-p {port} -c listen_addresses=127.0.0.1 -k {folder} -c fsync=off", "start"]),
                       check=True, capture_output=True, timeout=120)
        dsn = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        subprocess.run([str(venv / "bin" / "pypgstac"), "migrate", "--dsn", dsn], check=True, capture_output=True,
                       timeout=300)
        yield venv, dsn
    finally:
        subprocess.run(as_postgres([str(bin_dir / "pg_ctl"), "-D", data, "-m", "immediate", "stop"]),
                       capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def query(venv: Path, dsn: str, sql: str) -> Any:
    """One SQL query's rows, through the psycopg that came with pypgstac."""
    code = ("import json, sys, psycopg\n"
            "with psycopg.connect(sys.argv[1]) as c:\n"
            "    print(json.dumps(c.execute(sys.argv[2]).fetchall(), default=str))\n")
    done = subprocess.run([str(venv / "bin" / "python"), "-c", code, dsn, sql], capture_output=True, text=True,
                          check=True, timeout=60)
    return json.loads(done.stdout)


def test_pypgstac_loads_the_exported_items(pgstac: tuple[Path, str], tmp_path: Path) -> None:
    venv, dsn = pgstac
    index, _ = load_catalogs([str(SAMPLE_ROOT)], LoadOptions(progress=False))
    roots = []
    with open(tmp_path / "collections.ndjson", "wb") as collections:
        for cid, doc in index.collections.items():
            mine = [index.item(p) for p in range(index.size)
                    if index.collection_of(p) == cid and index.item(p)["geometry"] is not None]
            (tmp_path / cid).mkdir()
            (tmp_path / cid / "collection.json").write_bytes(orjson.dumps(doc))
            (tmp_path / cid / "items.ndjson").write_bytes(b"".join(orjson.dumps(i) + b"\n" for i in mine))
            roots += [str(tmp_path / cid / "collection.json"), str(tmp_path / cid / "items.ndjson")]
            collections.write(orjson.dumps({**doc, "links": []}) + b"\n")
    out = tmp_path / "items.ndjson"
    assert main(["export", *roots, "-o", str(out)]) == 0
    exported = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert len(exported) > 50

    pypgstac = str(venv / "bin" / "pypgstac")
    for kind, path in (("collections", tmp_path / "collections.ndjson"), ("items", out)):
        done = subprocess.run([pypgstac, "load", kind, str(path), "--dsn", dsn, "--method", "upsert"],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]

    rows = query(venv, dsn, "select collection, id from pgstac.items")
    assert sorted(map(tuple, rows)) == sorted((i["collection"], i["id"]) for i in exported)
    for item in exported[:: max(1, len(exported) // 10)]:  # a tenth of them, as pgstac gives them back
        [[back]] = query(venv, dsn, f"select pgstac.get_item('{item['id']}', '{item['collection']}')")
        back = json.loads(back) if isinstance(back, str) else back
        assert back["geometry"] == item["geometry"] and back["bbox"] == item["bbox"]
        assert back["assets"] == item["assets"]
        # pgstac drops a null datetime when start/end are given
        assert back["properties"] == {k: v for k, v in item["properties"].items() if v is not None}
