"""CPU of CQL2 LIKE matching (server/index/cql2_terms.py like_regex) in the tree on PYTHONPATH:
ordinary patterns over 980,000 distinct datetimes (the 1M set's `datetime` vocabulary, as a
LIKE filter scans it) and hostile long patterns over long values. Run it from two trees to
compare (session 15, branch debt15):

    cd TREE && PYTHONPATH=. python bench/like_cost.py [--hostile-chars 70000] [--skip-quadratic]
"""

from __future__ import annotations

import argparse
import datetime as dt
import time

from server.index.cql2_terms import like_regex


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
    args = parser.parse_args()
    start = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    values = sorted({(start + dt.timedelta(seconds=97 * i)).strftime("%Y-%m-%dT%H:%M:%SZ") for i in range(args.values)})
    for pattern in ("2020-01%", "%:00Z", "%T10:%", "2020-0_-1_T%", "%2020%01%Z"):
        for casei in (False, True):
            fullmatch = like_regex(pattern, casei).fullmatch
            seconds = cpu(lambda: [fullmatch(v) is not None for v in values])  # noqa: B023
            hits = sum(fullmatch(v) is not None for v in values)
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


if __name__ == "__main__":
    main()
