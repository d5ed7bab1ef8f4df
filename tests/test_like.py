"""CQL2 LIKE without backtracking (server/index/cql2_terms.py like_regex): the same answers as
the regex it replaced (session 14's, kept here as OLD) for ordinary patterns, and a hostile
pattern over a long value answered at once (it took 7.2 s of regex backtracking in the search
thread before: session 14's QA); a request's pattern past LIKE_PATTERN_MAX is a 400. A pattern
of any length (a catalog property's: no cap) matched in linear time (server/index/like.py
LikeMatcher): the answers of like_regex over random patterns and values (session 16)."""

from __future__ import annotations

import itertools
import json
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server.index.cql2_terms import LIKE_PATTERN_MAX, like_regex, like_segments
from server.index.like import REGEX_MIDDLE, LikeMatcher, fold, like_matcher
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


# Characters that LIKE, the regex and CASEI treat apart: the pattern's own, letters whose case
# re.IGNORECASE folds in its own ways (ſ/s, K/k, ß/ẞ, ı/İ/i/I, σ/ς/Σ), an accent, a surrogate
RANDOM_PATTERN = "ab%_\\AB" + "sSſKk\u212aßẞıIİiσςΣé\udcff"
RANDOM_VALUE = "abAB%_\\" + "sSſKk\u212aßẞıIİiσςΣé\udcff"


def test_the_linear_matcher_gives_the_regex_answers_over_random_patterns() -> None:
    """60,000 random patterns (qa15's count) of up to 12 characters, each against a random
    value, plain and CASEI: LikeMatcher answers as like_regex (today's answers), middle segments
    with `_` searched by the regex engine or (regex_middle=0) by the shift-and; and as the
    backtracking definition where that oracle agrees (ASCII: it lowers whole strings)."""
    rng = random.Random(16)
    checked = oracle = 0
    for _ in range(60_000):
        pattern = "".join(rng.choice(RANDOM_PATTERN) for _ in range(rng.randint(0, 12)))
        value = "".join(rng.choice(RANDOM_VALUE) for _ in range(rng.randint(0, 14)))
        casei = rng.random() < 0.5
        old = like_regex(pattern, casei).fullmatch(value) is not None
        for regex_middle in (0, REGEX_MIDDLE):
            assert LikeMatcher(pattern, casei, regex_middle)(value) == old, (pattern, value, casei, regex_middle)
        checked += 1
        if not casei or value.isascii() and pattern.isascii():
            assert old == like_match(value, pattern, casei), (pattern, value, casei)
            oracle += 1
    assert checked == 60_000 and oracle > 30_000


def mutated(rng: random.Random, value: str) -> str:
    """A pattern made of ``value``: some characters `_`, some runs cut out as `%`, one changed
    now and then (so that some patterns are alike and some nearly)."""
    out, i = [], 0
    while i < len(value):
        roll = rng.random()
        if roll < 0.01:
            out.append("%")
            i += rng.randint(0, 40)
        elif roll < 0.05:
            out.append("_")
            i += 1
        elif roll < 0.051:
            out.append("c")
            i += 1
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def test_long_patterns_give_the_regex_answers() -> None:
    """Patterns of up to 3,000 characters made of values of up to 3,000 (long middle segments,
    with `_`s and without): like_matcher (a LikeMatcher past REGEX_MIDDLE or LIKE_PATTERN_MAX)
    answers as like_regex; about half alike."""
    rng = random.Random(1616)
    alike = 0
    for n in range(300):
        value = "".join(rng.choice("ab" if n % 2 else "aaab") for _ in range(rng.randint(0, 3_000)))
        pattern = mutated(rng, value)
        casei = n % 3 == 0
        if casei:
            value = value.upper() if n % 6 == 0 else value
        old = like_regex(pattern, casei).fullmatch(value) is not None
        assert bool(like_matcher(pattern, casei)(value)) == old, (n, len(pattern), casei)
        assert LikeMatcher(pattern, casei, 0)(value) == old, (n, len(pattern), casei)
        alike += old
    assert 50 < alike < 250, alike


def test_casei_folds_characters_as_the_regex_ignorecase() -> None:
    """fold (LikeMatcher's CASEI) takes two characters as one exactly when re.IGNORECASE does:
    every pair of a class of the first 0x3000 code points (and a few far ones) matches, and a
    character does not match its upper/lower/title case forms of another class."""
    codes = [*range(0x3000), 0x1E9E, 0x212A, 0x212B, 0x2126, 0x10400, 0x10428, 0x1E900, 0x1E922]
    classes: dict[str, list[str]] = {}
    for code in codes:
        if 0xD800 <= code < 0xE000:
            continue
        classes.setdefault(fold(chr(code)), []).append(chr(code))
    merged = 0
    for members in classes.values():
        for a, b in itertools.product(members, repeat=2):
            assert re.fullmatch(re.escape(a), b, re.IGNORECASE), (hex(ord(a)), hex(ord(b)))
        merged += len(members) > 1
    assert merged > 500
    for members in classes.values():
        for a in members:
            for other in {a.upper(), a.lower(), a.title(), a.casefold()}:
                if len(other) == 1 and fold(other) != fold(a):
                    assert not re.fullmatch(re.escape(a), other, re.IGNORECASE), (hex(ord(a)), hex(ord(other)))


def test_like_matcher_keeps_the_regex_for_ordinary_patterns() -> None:
    """The regex's fullmatch (a C call a value over a vocabulary) for every pattern within
    LIKE_PATTERN_MAX whose middle segments are at most REGEX_MIDDLE characters."""
    for pattern in ("2020-01%", "%:00Z", "%T10:%", "2020-0_-1_T%", "%2020%01%Z", "%" + "x" * REGEX_MIDDLE + "%",
                    "x" * (LIKE_PATTERN_MAX - 1) + "%"):
        assert not isinstance(like_matcher(pattern), LikeMatcher), pattern
    for pattern in ("%" + "x" * (REGEX_MIDDLE + 1) + "%", "x" * LIKE_PATTERN_MAX + "%"):
        assert isinstance(like_matcher(pattern), LikeMatcher), pattern


HOSTILE_TITLE = "x" * 100_000
HOSTILE = {  # each hostile pattern took 1.1-4.9 CPU-s of one regex call over the title before (CASEI the most)
    "middle": (HOSTILE_TITLE, "%" + "x" * 19_999 + "y%"),  # a literal middle segment of 20,000 characters
    "middle-wild": (HOSTILE_TITLE, "%" + "x_" * 9_000 + "y%"),  # 18,001 characters with `_`s
    "alike": (HOSTILE_TITLE, "%" + "x_" * 9_000 + "%"),
    "last": (HOSTILE_TITLE + "y", "%" + "x" * 15_000 + "_" * 4_000 + "y"),
    "longer": ("x" * 20_000, "%" + "x" * 99_998 + "y%"),  # longer than the value (refused at once either way)
    "short": ("abc", "a%c"),
}


@pytest.fixture(scope="module")
def hostile_patterns(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Items whose `pattern` property is a long LIKE pattern (no cap: the catalog's), served
    with a search time budget a hostile regex call went far past."""
    folder = CatalogDir(tmp_path_factory.mktemp("like-patterns") / "catalog")
    docs = [item(iid, (0, 0, 1, 1), "2020-01-01T00:00:00Z", "c", properties={"title": title, "pattern": pattern})
            for iid, (title, pattern) in HOSTILE.items()]
    folder.write("collection.json", collection("c"))
    folder.write_text("items.ndjson", "\n".join(json.dumps(doc) for doc in docs) + "\n")
    env = {"STAC_STATIC_QUERY_TIME_BUDGET": "2"}
    with run_server([str(folder.path("collection.json")), str(folder.path("items.ndjson"))], env=env) as base:
        yield base


def test_a_catalog_pattern_of_any_length_is_answered_in_time(hostile_patterns: str) -> None:
    """LIKE with the pattern a property (no LIKE_PATTERN_MAX for it): each record's title against
    its own pattern, and a request's long text against every record's pattern, plain and CASEI:
    the right items, within the search's time budget (2 s here: milliseconds are needed; before,
    the regex calls took 2.6 CPU-s plain, 7.4 CASEI, and the search ended in a 400
    QueryTooExpensive)."""
    title, pattern = {"property": "title"}, {"property": "pattern"}
    for casei in (False, True):
        def wrap(arg: object) -> object:
            return {"op": "casei", "args": [arg]} if casei else arg  # noqa: B023
        assert ids_of(hostile_patterns, {"op": "like", "args": [wrap(title), wrap(pattern)]}) == ["alike", "last", "short"]
        text = HOSTILE_TITLE.upper() if casei else HOSTILE_TITLE
        assert ids_of(hostile_patterns, {"op": "like", "args": [wrap(text), wrap(pattern)]}) == ["alike"]
