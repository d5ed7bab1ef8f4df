"""CPU of CQL2 LIKE matching (server/index/cql2_terms.py like_regex) in the tree on PYTHONPATH:
ordinary patterns over 980,000 distinct datetimes (the 1M set's `datetime` vocabulary, as a
LIKE filter scans it) and hostile long patterns over long values. Run it from two trees to
compare (session 15, branch debt15):

    cd TREE && PYTHONPATH=. python bench/like_cost.py [--hostile-chars 70000] [--skip-quadratic]
        [--catalog-value-chars 100000]

Session 16 (branch debt16): the patterns that are catalog properties (no cap), through
like_matcher where the tree has it.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

import numpy as np

from server.index.cql2_terms import like_regex

try:
    from server.index.like import like_matcher

    def scan(alike, values):  # type: ignore[no-untyped-def]
        """A vocabulary's matches as filtering.py's _like takes them (session 16)."""
        return np.fromiter(map(alike, values), dtype=bool, count=len(values))
except ImportError:  # a tree before session 16: the regex for every pattern, as its filtering used

    def like_matcher(pattern: str, case_insensitive: bool = False):  # type: ignore[no-untyped-def,misc]
        return like_regex(pattern, case_insensitive).fullmatch

    def scan(alike, values):  # type: ignore[no-untyped-def]
        return np.array([alike(v) is not None for v in values], dtype=bool)


def cpu(fn, repeat: int = 3) -> float:  # type: ignore[no-untyped-def]
    best = float("inf")
    for _ in range(repeat):
        started = time.process_time()
        fn()
        best = min(best, time.process_time() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--values", type=int, default=980_000)
    parser.add_argument("--hostile-chars", type=int, default=70_000)
    parser.add_argument("--skip-quadratic", action="store_true", help="leave out the case that is n^2 in the old tree")
    parser.add_argument("--catalog-value-chars", type=int, default=100_000,
                        help="the value's length for the catalog patterns (a property's: not capped)")
    args = parser.parse_args()
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    values = sorted({(start + dt.timedelta(seconds=97 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(args.values)})
    for pattern in ("2020-01%", "%:00Z", "%T10:%", "2020-0_-1_T%", "%2020%01%Z"):
        for casei in (False, True):
            fullmatch = like_matcher(pattern, casei)
            seconds = cpu(lambda: scan(fullmatch, values))  # noqa: B023
            hits = int(scan(fullmatch, values).sum())
            print(f"{pattern!r:18} casei={casei!s:5} {len(values):,} values: {seconds * 1000:7.1f} ms CPU, {hits:,} alike")
    n = args.hostile_chars
    value = "x" * n
    cases = {"'%' + x*(n-1) + 'y' (last segment)": "%" + "x" * (n - 1) + "y",
             "'%' + x*998 + 'y' (last, 1,000 chars)": "%" + "x" * 998 + "y",
             "'%' + x*997 + 'y%' (middle, 1,000 chars)": "%" + "x" * 997 + "y%"}
    if args.skip_quadratic:
        del cases["'%' + x*(n-1) + 'y' (last segment)"]
    for name, pattern in cases.items():
        for casei in (False, True):
            regex = like_regex(pattern, casei)
            seconds = cpu(lambda: regex.fullmatch(value), repeat=1)  # noqa: B023
            print(f"{name} over x*{n:,} casei={casei}: {seconds:.4f} s CPU")
    # A pattern that is a catalog property (LIKE(a, b), b a property): no LIKE_PATTERN_MAX; what
    # filtering runs for it (like_matcher; the regex in trees before session 16)
    value = "x" * args.catalog_value_chars
    catalog = {"'%' + x*19,999 + 'y%' (a middle of 20,000)": "%" + "x" * 19_999 + "y%",
               "'%' + 'x_'*9,000 + 'y%' (a middle of 18,001 with _s)": "%" + "x_" * 9_000 + "y%",
               "'%' + 'x_'*9,000 + '%' (alike)": "%" + "x_" * 9_000 + "%",
               "'%' + x*(v+10) + 'y%' (longer than the value)": "%" + "x" * (len(value) + 10) + "y%"}
    for name, pattern in catalog.items():
        for casei in (False, True):
            alike = like_matcher(pattern, casei)
            seconds = cpu(lambda: alike(value), repeat=1)  # noqa: B023
            print(f"catalog pattern {name} over x*{len(value):,} casei={casei}: {seconds:.4f} s CPU, "
                  f"alike {bool(alike(value))}")


if __name__ == "__main__":
    main()
