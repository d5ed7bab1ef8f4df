"""CQL2 LIKE without backtracking (server/index/cql2_terms.py like_regex): the same answers as
the regex it replaced (session 14's, kept here as OLD) for ordinary patterns, and a hostile
pattern over a long value answered at once (it took 7.2 s of regex backtracking in the search
thread before: session 14's QA); a request's pattern past LIKE_PATTERN_MAX is a 400."""

from __future__ import annotations

import itertools
import json
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.index.cql2_terms import LIKE_PATTERN_MAX, like_regex, like_segments
from tests.helpers import CatalogDir, collection, item, run_server
from tests.oracles.cql2 import like_match


def old_like_regex(pattern: str, case_insensitive: bool = False) -> re.Pattern[str]:
    """Session 14's like_regex (s15base), the segments read as they still are: `.*last` for
    the last segment."""
    parts = ["".join(segment) for segment in like_segments(pattern)]
    if len(parts) == 1:
        regex = parts[0]
    else:
        middle = "".join(f"(?>.*?{part})" for part in parts[1:-1] if part)
        regex = f"{parts[0]}{middle}.*{parts[-1]}"
    return re.compile(regex, re.DOTALL | (re.IGNORECASE if case_insensitive else 0))


VALUES = [
    "", "a", "ab", "abc", "abcabc", "aXbXc", "a%b", "a_b", "a\\b", "100%", "50_50", "%", "_", "\\",
    "NDVI 2022-01", "ndvi 2022-01", "2022-01-05T10:00:00Z", "2022-01-05T10:00:00.123456Z",
    "Straße", "STRASSE", "strasse", "İstanbul", "istanbul", "ıstanbul", "ſun", "SUN", "Kelvin", "kelvin",
    "µm", "μm", "Μm", "e\u0301te", "été", "日本語テキスト", "😀 emoji 😀", "line\nbreak", "tab\there",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaab", "abababababababababab", "xyzzy" * 40, "ab" * 300 + "c",
]
PATTERNS = [
    "", "%", "%%", "_", "__", "a", "A", "a%", "%a", "%a%", "a%c", "a_c", "%b%", "%B%", "a%b%c", "%a%b%c%",
    "_%_", "%_%", "%__%", "a\\%b", "a\\_b", "%\\%", "\\%%", "100\\%", "50\\_50", "a\\\\b", "\\", "a\\",
    "%\\", "NDVI%", "ndvi%", "%2022-0_", "%2022-01-__T%Z", "2022-01-05T10:00:00%", "%:00%Z",
    "straße", "STRASSE", "%SS%", "%ß%", "i%", "İ%", "I%", "%stanbul", "ſ%", "s%", "S%", "%elvin",
    "K%", "\u212a%", "µ%", "μ%", "%m", "%\u0301%", "été", "%té", "日本%", "%テキスト", "%😀", "😀%",
    "line_break", "line%break", "%\n%", "tab%", "%ab", "%aab", "%aaab%", "a%aab", "%abab%c", "%ab_c",
    "xyzzy%xyzzy", "%zyx%", "%" + "xyzzy" * 39, "xyzzy" * 39 + "%", "%abab%abab%abab%", "[a]%", "(a|b)%",
    ".*", "%.%", "^a%", "%$", "a{2}%", "%+%",
]


@pytest.mark.parametrize("casei", [False, True])
def test_like_gives_the_answers_of_the_regex_it_replaced(casei: bool) -> None:
    """Every pattern against every value, case-sensitive and CASEI (re.IGNORECASE, as before):
    the same answers as session 14's regex, and as the backtracking definition (for what
    that oracle agrees on: it lowers whole strings, ß and İ aside)."""
    agree_with_oracle = 0
    for pattern, value in itertools.product(PATTERNS, VALUES):
        new = like_regex(pattern, casei).fullmatch(value) is not None
        assert new == (old_like_regex(pattern, casei).fullmatch(value) is not None), (pattern, value, casei)
        if not casei or value.isascii() and pattern.isascii():
            assert new == like_match(value, pattern, casei), (pattern, value, casei)
            agree_with_oracle += 1
    assert agree_with_oracle > len(PATTERNS) * len(VALUES) // 2


def test_like_of_every_shape_over_every_short_value() -> None:
    """Patterns of up to 5 characters over `a`, `b`, `%`, `_` and a backslash against every value
    of up to 4 characters of `a`, `b`, `%`: the same answers as before (77k pairs)."""
    patterns = ["".join(p) for n in range(6) for p in itertools.product("ab%_\\", repeat=n)]
    values = ["".join(v) for n in range(5) for v in itertools.product("ab%", repeat=n)]
    for pattern in patterns:
        new, old = like_regex(pattern).fullmatch, old_like_regex(pattern).fullmatch
        for value in values:
            assert (new(value) is None) == (old(value) is None), (pattern, value)


LONG = 150_000  # characters: the old `.*last` tried the last segment at each of them (~n^2/2 steps)


@pytest.fixture(scope="module")
def long_values(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Items whose titles are long: one a long pattern-looking text, one its match."""
    folder = CatalogDir(tmp_path_factory.mktemp("like") / "catalog")
    titles = {"long-pattern": "%" + "x" * LONG, "long-value": "x" * (LONG + 1), "short": "x%y"}
    docs = [item(iid, (0, 0, 1, 1), "2020-01-01T00:00:00Z", "c", properties={"title": title})
            for iid, title in titles.items()]
    folder.write("collection.json", collection("c"))
    folder.write_text("items.ndjson", "\n".join(json.dumps(doc) for doc in docs) + "\n")
    with run_server([str(folder.path("collection.json")), str(folder.path("items.ndjson"))]) as base:
        yield base


def ids_of(base: str, cql2: dict[str, object]) -> list[str]:
    # a generous bound: each of these took tens of seconds of backtracking before (7.2 s at
    # 70,000 characters, ~n^2), and a few milliseconds now
    with httpx.Client(timeout=60) as client:
        started = time.monotonic()
        response = client.post(base + "/search", json={"filter-lang": "cql2-json", "filter": cql2, "limit": 10})
        assert response.status_code == 200, response.text
        assert time.monotonic() - started < 20, cql2["op"]
    return sorted(feature["id"] for feature in response.json()["features"])


def test_a_long_pattern_over_a_long_value_is_answered_at_once(long_values: str) -> None:
    title = {"property": "title"}
    # each record's own title as its pattern: "%xxx...x" matches itself ("%" then the x's)
    assert ids_of(long_values, {"op": "like", "args": [title, title]}) == ["long-pattern", "long-value", "short"]
    # a request's long text against each record's title as a pattern
    assert ids_of(long_values, {"op": "like", "args": ["x" * (LONG + 1), title]}) == ["long-pattern", "long-value"]
    assert ids_of(long_values, {"op": "like", "args": ["x" * LONG + "y", title]}) == ["short"]
    # the longest pattern a request may give, over the long values
    hostile = "%" + "x" * (LIKE_PATTERN_MAX - 2) + "y"
    assert ids_of(long_values, {"op": "like", "args": [title, hostile]}) == []
    middle = "%" + "x" * (LIKE_PATTERN_MAX - 3) + "y%"
    assert ids_of(long_values, {"op": "like", "args": [title, middle]}) == []
    casei = {"op": "like", "args": [{"op": "casei", "args": [title]}, {"op": "casei", "args": [hostile.upper()]}]}
    assert ids_of(long_values, casei) == []


def test_a_request_pattern_past_the_limit_is_a_400(long_values: str) -> None:
    with httpx.Client(timeout=60) as client:
        ok = client.get(long_values + "/search", params={"filter": f"title LIKE '%{'x' * (LIKE_PATTERN_MAX - 1)}'"})
        assert ok.status_code == 200, ok.text  # the longest allowed
        assert sorted(f["id"] for f in ok.json()["features"]) == ["long-pattern", "long-value"]
        for pattern in ("%" + "x" * LIKE_PATTERN_MAX, "%" + "x" * 70_000):
            response = client.post(long_values + "/search", json={
                "filter-lang": "cql2-json", "filter": {"op": "like", "args": [{"property": "title"}, pattern]}})
            assert response.status_code == 400, response.text
            body = response.json()
            assert set(body) >= {"code", "description"} and "LIKE pattern" in body["description"], body
            assert f"{LIKE_PATTERN_MAX:,}" in body["description"]


def test_the_limit_and_its_reason_are_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    assert f"{LIKE_PATTERN_MAX:,} characters" in readme
