"""CQL2 property-property and literal-literal forms, checked three-valued record by record.

For every operator and many operand pairs (properties, literals, INTERVALs with property
ends and '..', CASEI), the evaluator's TRUE and FALSE masks over the index must equal the
brute-force oracle's TRUE / FALSE / NULL for each record, on the sample catalog and on the
synthetic one (open intervals, null geometries, mixed types, patterns with % and _).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from server.catalog.loader import load_catalogs
from server.errors import InvalidQueryParameter
from server.index.filtering import FilterEvaluator
from tests.oracles.cql2 import SPATIAL, evaluate
from tests.oracles.random_inputs import ARRAY_OPS, COMPARE_OPS, TEMPORAL_OPS
from tests.oracles.records import Record, item_records
from tests.oracles.search import Oracle
from tests.oracles.synthetic import write_synthetic_catalog

SYNTH_SEED = "stac-static-api-synthetic-v1"


class Env:
    def __init__(self, index: Any, records: list[Record]) -> None:
        self.index = index
        by_key = {r.key: r for r in records}
        self.records = [by_key[(index.collection_of(p), index.ids[p])] for p in range(index.size)]

    def check(self, node: Any) -> tuple[int, int, int]:
        """Asserts the index agrees with the oracle on every record; (#TRUE, #FALSE, #NULL)."""
        t, f = FilterEvaluator(self.index).evaluate(node)
        assert not (t & f).any(), node
        want = [evaluate(node, r) for r in self.records]
        got = [True if a else False if b else None for a, b in zip(t.tolist(), f.tolist())]
        bad = [(r.key, g, w) for r, g, w in zip(self.records, got, want) if g != w]
        assert not bad, (node, bad[:5], len(bad))
        return want.count(True), want.count(False), want.count(None)


@pytest.fixture(scope="module")
def sample(sample_index, oracle: Oracle) -> Env:
    return Env(sample_index, item_records(oracle))


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Env:
    root: Path = tmp_path_factory.mktemp("synthetic-pp")
    write_synthetic_catalog(root, SYNTH_SEED)
    index, _ = load_catalogs([str(root)])
    return Env(index, item_records(Oracle.from_root(root / "catalog.json")))


def envs(sample: Env, synth: Env) -> list[Env]:
    return [sample, synth]


def P(name: str) -> dict[str, str]:
    return {"property": name}


TIME_OPERANDS: list[Any] = [
    P("datetime"), P("start_datetime"), P("end_datetime"), P("created"), P("properties.published"),
    {"interval": [P("start_datetime"), P("end_datetime")]},
    {"interval": ["..", P("end_datetime")]},
    {"interval": [P("start_datetime"), ".."]},
    {"interval": [P("datetime"), P("datetime")]},
    {"interval": [P("created"), P("published")]},
    {"interval": [P("datetime"), "2021-06-01T00:00:00Z"]},
    {"interval": [{"date": "2019-01-01"}, P("end_datetime")]},
    {"interval": [{"timestamp": "2020-01-01T00:00:00Z"}, P("created")]},
    {"interval": ["2016-01-01", "2022-12-31"]},
    {"interval": ["..", ".."]},
    {"timestamp": "2020-01-01T00:00:00Z"},
    {"date": "2021-01-01"},
]


@pytest.mark.parametrize("op", TEMPORAL_OPS)
def test_temporal_operand_pairs(sample: Env, synth: Env, op: str) -> None:
    totals = np.zeros(3, dtype=int)
    for env in envs(sample, synth):
        for a, b in itertools.product(TIME_OPERANDS, repeat=2):
            totals += env.check({"op": op, "args": [a, b]})
    assert totals[0] and totals[1] and totals[2], (op, totals)  # not vacuous


def test_temporal_relations_of_an_interval_with_itself(synth: Env) -> None:
    """INTERVAL(start_datetime, end_datetime) against itself: equal, intersecting, never before."""
    iv = {"interval": [P("start_datetime"), P("end_datetime")]}
    t_eq, f_eq, n_eq = synth.check({"op": "t_equals", "args": [iv, iv]})
    assert t_eq > 0 and f_eq == 0 and n_eq > 0
    assert synth.check({"op": "t_before", "args": [iv, iv]})[0] == 0


GEOMETRY_LITERALS: list[Any] = [
    {"type": "Point", "coordinates": [1.0, 1.0]},
    {"type": "Point", "coordinates": [2.0, 1.0]},
    {"bbox": [0.0, 0.0, 2.0, 2.0]},
    {"type": "LineString", "coordinates": [[-1.0, 1.0], [3.0, 1.0]]},
    {"type": "Polygon", "coordinates": [[[2.0, 0.0], [4.0, 0.0], [4.0, 2.0], [2.0, 2.0], [2.0, 0.0]]]},
]


@pytest.mark.parametrize("op", sorted(SPATIAL))
def test_spatial_geometry_against_itself_and_literal_pairs(sample: Env, synth: Env, op: str) -> None:
    for env in envs(sample, synth):
        t, f, n = env.check({"op": op, "args": [P("geometry"), P("geometry")]})
        assert n == sum(r.geometry is None for r in env.records)
        assert (t > 0) == (op in ("s_intersects", "s_equals", "s_within", "s_contains")) and t + f + n == len(env.records)
        for a, b in itertools.product(GEOMETRY_LITERALS, repeat=2):
            t, f, n = env.check({"op": op, "args": [a, b]})
            assert n == 0 and t in (0, len(env.records))


STRINGS = ["id", "title", "pattern", "platform", "collection", "mixed", "no:such_property"]


@pytest.mark.parametrize("casei", [False, True])
def test_like_property_patterns(sample: Env, synth: Env, casei: bool) -> None:
    def wrap(x: Any) -> Any:
        return {"op": "casei", "args": [x]} if casei else x

    totals = np.zeros(3, dtype=int)
    for env in envs(sample, synth):
        for a, b in itertools.product(STRINGS, repeat=2):
            totals += env.check({"op": "like", "args": [wrap(P(a)), wrap(P(b))]})
        for literal in ["50%", "a_b", "A_B", "x", "under_score_", "back\\slash", "alpha", ""]:
            for b in STRINGS:
                totals += env.check({"op": "like", "args": [wrap(literal), wrap(P(b))]})
            for pattern in ["%", "a%", "A\\_B", "_", "x", "50\\%"]:
                totals += env.check({"op": "like", "args": [wrap(literal), wrap(pattern)]})
    assert all(totals), totals


ARRAYS = ["tags", "bands", "keywords", "mixed", "instruments", "title", "no:such_property"]


@pytest.mark.parametrize("op", ARRAY_OPS)
def test_array_property_pairs(sample: Env, synth: Env, op: str) -> None:
    totals = np.zeros(3, dtype=int)
    for env in envs(sample, synth):
        for a, b in itertools.product(ARRAYS, repeat=2):
            totals += env.check({"op": op, "args": [P(a), P(b)]})
        for a, b in itertools.product([[], ["a"], ["a", "b"], ["b", "a"], [1, 2.0], [1.0, True]], repeat=2):
            totals += env.check({"op": op, "args": [a, b]})
    assert totals[0] and totals[1] and totals[2], totals


LITERALS: list[Any] = [
    1, 1.0, 2.5, "a", "b", "A", "", True, False, None,
    {"timestamp": "2020-01-01T00:00:00Z"}, {"timestamp": "2020-01-01T12:00:00Z"}, {"date": "2020-01-01"},
    {"date": "2020-01-02"}, "2020-01-01T12:00:00Z",
]


@pytest.mark.parametrize("op", COMPARE_OPS)
def test_literal_comparisons(sample: Env, op: str) -> None:
    for a, b in itertools.product(LITERALS, repeat=2):
        sample.check({"op": op, "args": [a, b]})
        if isinstance(a, str) and isinstance(b, str):
            sample.check({"op": op, "args": [{"op": "casei", "args": [a]}, {"op": "casei", "args": [b]}]})


def test_is_null_of_literals_and_expressions(sample: Env, synth: Env) -> None:
    for value in LITERALS:
        t, f, n = sample.check({"op": "isNull", "args": [value]})
        assert (t, n) == ((len(sample.records), 0) if value is None else (0, 0))
    for env in envs(sample, synth):
        for expr in [{"op": "+", "args": [P("gsd"), 1]}, {"op": "casei", "args": [P("title")]}]:
            env.check({"op": "isNull", "args": [expr]})
            env.check({"op": "not", "args": [{"op": "isNull", "args": [expr]}]})


@pytest.mark.parametrize("node", [
    {"op": "t_after", "args": [P("datetime"), 5]},
    {"op": "t_after", "args": [P("datetime"), "2020-01-01T00:00:00Z"]},
    {"op": "t_after", "args": [P("datetime"), {"interval": ["2022-01-01", "2020-01-01"]}]},
    {"op": "t_after", "args": [P("datetime"), {"interval": [{"op": "+", "args": [P("gsd"), 1]}, ".."]}]},
    {"op": "t_after", "args": [P("datetime"), {"interval": [P("created")]}]},
    {"op": "t_after", "args": [P("datetime")]},
    {"op": "s_intersects", "args": [P("gsd"), P("geometry")]},
    {"op": "s_intersects", "args": [P("geometry"), 5]},
    {"op": "like", "args": [P("title"), 5]},
    {"op": "like", "args": [5, "5"]},
    {"op": "a_contains", "args": [P("tags"), [P("title")]]},
    {"op": "a_contains", "args": [P("tags"), "a"]},
    {"op": "=", "args": [{"type": "Point", "coordinates": [1, 1]}, {"type": "Point", "coordinates": [1, 1]}]},
    {"op": "=", "args": [{"interval": [P("start_datetime"), P("end_datetime")]}, 1]},
    {"op": "isNull", "args": [{"interval": [P("start_datetime"), ".."]}]},
])
def test_arguments_that_do_not_fit_are_400(sample: Env, node: Any) -> None:
    with pytest.raises(InvalidQueryParameter):
        FilterEvaluator(sample.index).evaluate(node)


def test_like_pattern_property_case_and_escapes(tmp_path: Path) -> None:
    """A hand-made catalog where case and escapes decide: value and pattern on each item."""
    from tests.helpers import CatalogDir

    rows = [("Hello", "h%"), ("hello", "H_LLO"), ("HELLO", "hello"), ("a_b", "a\\_b"), ("axb", "a\\_b"),
            ("50%", "50\\%"), ("50x", "50\\%"), ("x", None), (None, "x"), (7, "7"), ("7", 7)]
    cat = CatalogDir(tmp_path / "like")
    links = [{"rel": "root", "href": "./catalog.json"}]
    for i, (value, pattern) in enumerate(rows):
        props: dict[str, Any] = {"datetime": "2020-01-01T00:00:00Z"}
        if value is not None:
            props["v"] = value
        if pattern is not None:
            props["p"] = pattern
        cat.write(f"i{i}.json", {"type": "Feature", "stac_version": "1.0.0", "id": f"i{i}", "geometry": None,
                                 "properties": props, "links": [], "assets": {}})
        links.append({"rel": "item", "href": f"./i{i}.json"})
    cat.write("catalog.json", {"type": "Catalog", "stac_version": "1.0.0", "id": "like", "description": "d",
                               "links": links})
    index, _ = load_catalogs([str(cat.root)])
    env = Env(index, item_records(Oracle.from_root(cat.root / "catalog.json")))
    plain = env.check({"op": "like", "args": [P("v"), P("p")]})
    casei = env.check({"op": "like", "args": [{"op": "casei", "args": [P("v")]}, {"op": "casei", "args": [P("p")]}]})
    assert plain == (2, 7, 2) and casei == (5, 4, 2), (plain, casei)
    assert env.check({"op": "like", "args": [{"op": "casei", "args": ["HELLO"]}, {"op": "casei", "args": [P("p")]}]})[0] == 3
