"""RunList (server/index/runs.py): the loader's per-file values (locations, item-link positions)
with a forked chunk's positions held as one range; read as the list of its values."""

from __future__ import annotations

import pickle
import random
from typing import Any

import pytest

from server.index.builder import IndexBuilder
from server.index.runs import RunList, tail_is
from tests.helpers import item


def test_ranges_are_held_as_ranges_and_merged() -> None:
    runs = RunList(["/a.json"])
    runs.extend(range(10, 2058))
    runs.extend(range(2058, 4106))  # the next chunk of positions: one range with the one before
    runs.append("/b.json")
    runs.extend(range(5000, 5010))
    assert runs._parts == [["/a.json"], range(10, 4106), ["/b.json"], range(5000, 5010)]
    assert len(runs) == 1 + 4096 + 1 + 10
    assert runs[0] == "/a.json" and runs[1] == 10 and runs[4096] == 4105 and runs[4097] == "/b.json" and runs[-1] == 5009
    assert runs[4095:4099] == [4104, 4105, "/b.json", 5000]
    assert runs.index(5003) == 4101 and runs.index("/b.json", 5) == 4097
    with pytest.raises(ValueError):
        runs.index(10, 2)
    assert 4000 in runs and 4200 not in runs
    assert pickle.loads(pickle.dumps(runs, protocol=5))._parts == runs._parts


def test_a_run_list_reads_as_the_list_of_its_values() -> None:
    """Random appends, extends (ranges, lists, run lists), tail cuts and tail replacements,
    each read back against a list made the same way."""
    rnd = random.Random(7)
    for _ in range(800):
        runs, plain = RunList(), []
        for _ in range(rnd.randint(0, 10)):
            c = rnd.random()
            values: Any
            if c < 0.3:
                value = rnd.choice(["a", "b", 3, 4, 5])
                runs.append(value)
                plain.append(value)
                continue
            if c < 0.6:
                first = rnd.randint(0, 8)
                values = range(first, first + rnd.randint(0, 4))
            elif c < 0.8:
                values = [rnd.choice(["a", 1, 2, 7]) for _ in range(rnd.randint(0, 3))]
            elif c < 0.9 and plain:
                k = rnd.randint(0, len(plain))
                del runs[k:], plain[k:]
                continue
            else:
                k = rnd.randint(0, len(plain))
                values = rnd.choice([range(2, 5), ["x", 3], RunList([1, 2]), []])
                runs[k:] = values
                plain[k:] = list(values)
                continue
            runs.extend(values)
            plain.extend(values)
        assert list(runs) == plain and len(runs) == len(plain) and runs == plain and runs == RunList(plain)
        assert [runs[i] for i in range(-len(plain), len(plain))] == plain[-len(plain):] + plain
        for a in range(len(plain) + 1):
            assert runs[a:] == plain[a:] and runs[:a] == plain[:a] and runs[a:a + 2] == plain[a:a + 2]
            assert tail_is(runs, a, plain[a:]) and tail_is(plain, a, RunList(plain[a:]))
            if a < len(plain):
                other = plain[a:]
                other[-1] = "changed"
                assert not tail_is(runs, a, other) and runs != plain[:a] + other
            for value in ("a", 3, 7, 99):
                expected = plain.index(value, a) if value in plain[a:] else None
                found = runs.index(value, a) if value in runs[a:] else None
                assert found == expected
        assert not tail_is(runs, 0, plain + [1])


def test_tail_is_compares_ranges_by_their_ends() -> None:
    """A million positions in two runs against range(n): compared as ranges (no int made)."""
    runs = RunList(["/head.json"])
    runs.extend(range(0, 600_000))
    runs.extend(range(600_000, 1_000_000))
    assert tail_is(runs, 1, range(1_000_000)) and not tail_is(runs, 1, range(1, 1_000_001))
    assert not tail_is(runs, 0, range(1_000_001))


def test_the_labels_of_a_chunk_given_as_positions_are_asked_of_label_of() -> None:
    """A forked chunk whose labels came as a range keeps none: a duplicate among its rows is
    reported with label_of(row)'s label, one of the rows around it with its own."""
    def chunk_of(ids: list[str], labels: list[str]) -> Any:
        part = IndexBuilder()
        for item_id, label in zip(ids, labels):
            part.add_item(item(item_id, collection="c"), label)
        return part.chunk()

    reported: list[str] = []
    builder = IndexBuilder(on_reject=lambda label, reason, duplicate=False: reported.append(label))
    builder.add_item(item("a", collection="c"), "/a.json")  # row 0
    ranged = chunk_of(["b", "a", "c"], ["x", "y", "z"])
    ranged.labels = range(100, 103)  # rows 1-3: positions
    builder.add_chunk(ranged)
    builder.add_chunk(chunk_of(["b", "d"], ["/b2.json", "/d.json"]))  # rows 4, 5: labels kept
    ranged = chunk_of(["e", "d"], ["x", "y"])
    ranged.labels = range(103, 105)  # rows 6, 7
    builder.add_chunk(ranged)
    ranged = chunk_of(["f", "e"], ["x", "y"])
    ranged.labels = range(105, 107)  # rows 8, 9: one run with rows 6, 7
    builder.add_chunk(ranged)
    builder.add_item(item("c", collection="c"), "/c2.json")  # row 10
    assert list(builder._unlabeled_first) == [1, 6] and list(builder._unlabeled_count) == [3, 4]
    builder.label_of = lambda row: f"row {row}"
    builder.build()
    assert sorted(reported) == ["/b2.json", "/c2.json", "row 2", "row 7", "row 9"]
