"""bench/replicate.py --distinct-times (issue 18: a 10M set with a datetime per item, as a real
archive has, not the 1M set's repeated ten times): copy k's time members k seconds later, still
RFC 3339 in the same spelling, in every layout; the copies load with distinct datetimes."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from server.catalog.loader import load_catalogs
from server.query.datetime import parse_document_datetime
from tests.helpers import REPO, server_env

ITEMS = 300
TIME_KEYS = ("datetime", "start_datetime", "end_datetime", "created", "updated")


def _replicate_module() -> Any:
    spec = importlib.util.spec_from_file_location("replicate", REPO / "bench" / "replicate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(script: str, *args: str) -> None:
    result = subprocess.run([sys.executable, f"bench/{script}", *args], cwd=REPO, env=server_env(),
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]


def test_shifted_times_keep_the_spelling() -> None:
    shifted = _replicate_module().shifted_times
    line = (b'{"id":"a","properties":{"datetime":"2021-12-31T23:59:58.123Z","created":"2020-02-28 23:59:59+01:00",'
            b'"updated":"2020-02-30T00:00:00Z","start_datetime":"9999-12-31T23:59:59Z","title":"datetime",'
            b'"note":"\\"created\\":\\"2020-01-01T00:00:00Z"}}\n')
    out = json.loads(shifted(line, 3))["properties"]
    assert out["datetime"] == "2022-01-01T00:00:01.123Z"  # over a year's end, the fraction kept
    assert out["created"] == "2020-02-29 00:00:02+01:00"  # a leap day; separator and offset kept
    assert out["updated"] == "2020-02-30T00:00:00Z"  # no date: kept
    assert out["start_datetime"] == "9999-12-31T23:59:59Z"  # past 9999: kept
    assert out["note"] == '"created":"2020-01-01T00:00:00Z'  # inside a string: not a member
    assert shifted(line, 0) == line


def _times(index: Any) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for pos in range(index.size):
        item = index.item(pos)
        for key in TIME_KEYS:
            if isinstance(item["properties"].get(key), str):
                out.setdefault(key, []).append(parse_document_datetime(item["properties"][key]))
    return out


@pytest.mark.parametrize(("layout", "flags"), [("ndjson", []), ("ndjson", ["--lean", "--as-roots"]),
                                               ("parquet", []), ("parquet", ["--lean"])])
def test_copies_have_distinct_times(tmp_path: Path, layout: str, flags: list[str]) -> None:
    pytest.importorskip("pyarrow")
    src, out, plain = tmp_path / "src", tmp_path / "rep", tmp_path / "plain"
    run("generate.py", str(src), "--items", str(ITEMS), "--collections", "2", "--layout", layout, "-q", "--workers", "1")
    run("replicate.py", str(src), str(out), "--copies", "3", "--distinct-times", *flags)
    run("replicate.py", str(src), str(plain), "--copies", "1", *flags)
    def roots(folder: Path) -> list[str]:
        if "--as-roots" in flags:
            return [str(p) for p in sorted(folder.glob("*/collection.json")) + sorted(folder.glob("*/items.ndjson"))]
        return [str(folder / "catalog.json")]

    index, report = load_catalogs(roots(out))
    assert index.size == 3 * ITEMS and report.skipped == 0
    original = _times(load_catalogs(roots(plain))[0])
    copies = _times(index)
    assert {"datetime", "created"} <= copies.keys()
    for key, values in original.items():
        second = 1_000_000
        expected = sorted(v + k * second for v in values for k in range(3))
        assert sorted(copies[key]) == expected, key
    datetimes = copies["datetime"]
    assert len(set(datetimes)) == 3 * len(set(original["datetime"]))
    for path in out.glob("*/items.ndjson"):  # still RFC 3339 as written
        for line in path.read_text().splitlines()[:20]:
            text = json.loads(line)["properties"]["datetime"]
            assert dt.datetime.fromisoformat(text.replace("Z", "+00:00")) and text.endswith("Z")
