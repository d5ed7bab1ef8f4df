"""parallel.forked_map: results in task order, a dead child ends them, closing ends the children;
a parquet file's last row groups shared by the processes (issue 18)."""

from __future__ import annotations

import contextlib
import os
import time
from typing import Any

import pytest

from server.catalog import parallel
from server.catalog.loader import _group_tasks

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forked processes only where fork is")

BIG = 3 << 20  # a result over any pipe's buffer (Linux: 64 KB, 1 MB asked)


def _work(task: int) -> tuple[int, float, bytes]:
    return task, time.monotonic(), bytes([task % 256]) * BIG


def test_results_stop_where_a_child_dies() -> None:
    """A child that dies part way: the results end early, in order, the rest left to the caller
    (what it had made and not yet sent is lost with it: the caller does that part again)."""

    def work(task: int) -> int:
        if task == 5:
            os._exit(3)
        return task

    with contextlib.closing(parallel.forked_map(list(range(10)), 2, work)) as results:
        got = list(results)
    assert got == list(range(len(got))) and len(got) <= 5
    assert results.ended


def test_closing_early_ends_children_whose_results_wait() -> None:
    """The caller stops reading: the children, however far ahead, are ended and reaped."""
    results = parallel.forked_map(list(range(4 * 8)), 2, _work)
    assert next(results)[0] == 0
    pids = list(results.pids)
    results.close()
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


@pytest.mark.parametrize("count", [2, 3])
def test_a_parquet_files_last_row_groups_are_shared(count: int) -> None:
    """Loader._index_parquet_forked's tasks: every row once, in order; a group each, the last
    ones (the remainder of the rounds and one round more) in ``count`` parts, so each process
    gets the same rows to within a part's rounding."""
    groups = [1000] * 24 + [995]
    tasks = _group_tasks(groups, count)
    rows = [(g, r) for g, first, end in tasks for r in range(first, end)]
    assert rows == [(g, r) for g, n in enumerate(groups) for r in range(n)]
    shares = [sum(end - first for _, first, end in tasks[k::count]) for k in range(count)]
    assert max(shares) - min(shares) <= count + len(groups) % count  # a row per shared group at most
    assert [t for t in tasks if t[2] - t[1] < 1000][0][0] == len(groups) - len(groups) % count - count
    assert _group_tasks([7], count) == [(0, 0, 7)] and _group_tasks(groups, 1) == [(g, 0, n) for g, n in enumerate(groups)]


def test_rows_of_a_row_group_read_across_batches(tmp_path: Any) -> None:
    """parquet.read_batches' ``rows``: those rows of the row groups read, whatever the batches."""
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    from server.catalog.parquet import read_batches

    table = pa.table({"id": [f"i{n}" for n in range(300)], "type": ["Feature"] * 300})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=120)
    data = (tmp_path / "t.parquet").read_bytes()

    def ids(**kw: Any) -> list[str]:
        return [item["id"] for batch in read_batches(data, batch_size=50, threads=False, **kw) for item in batch]

    assert ids(row_groups=[1]) == [f"i{n}" for n in range(120, 240)]
    for first, end in [(0, 120), (0, 60), (60, 120), (49, 51), (50, 100), (119, 120), (30, 31)]:
        assert ids(row_groups=[1], rows=(first, end)) == [f"i{n}" for n in range(120 + first, 120 + end)]
    assert ids(row_groups=[2], rows=(30, 60)) == [f"i{n}" for n in range(270, 300)]  # past its end: what there is
