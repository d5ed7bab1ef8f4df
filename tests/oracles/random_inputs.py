"""Seeded random requests drawn from the records' own values, so that they select something:
CQL2 predicates (and the same predicate written as CQL2 text), free-text queries, sortby
lists and bboxes.
"""

from __future__ import annotations

import math
import random
from typing import Any

import shapely

from tests.oracles.cql2 import ARITH, SPATIAL, is_property
from tests.oracles.freetext import text_words
from tests.oracles.records import DAY, Record, instant, is_number
from tests.oracles.search import to_micros
from tests.oracles.sort import sortable
from tests.oracles.synthetic import T_LO, random_time, rfc3339

COMPARE_OPS = ["=", "<>", "<", "<=", ">", ">="]
TEMPORAL_OPS = [
    "t_after", "t_before", "t_contains", "t_disjoint", "t_during", "t_equals", "t_finishedby", "t_finishes",
    "t_intersects", "t_meets", "t_metby", "t_overlappedby", "t_overlaps", "t_startedby", "t_starts",
]
ARRAY_OPS = ["a_equals", "a_contains", "a_containedby", "a_overlaps"]
UNKNOWN = "no:such_property"


class Vocabulary:
    """Observed values per property name, to draw literals that actually hit records."""

    def __init__(self, records: list[Record]) -> None:
        self.records = records
        self.values: dict[str, list[Any]] = {}
        for r in records:
            for k, v in [*r.members.items(), ("id", r.id)] + ([("collection", r.collection)] if r.kind == "item" else []):
                if k in ("links", "assets"):
                    continue
                self.values.setdefault(k, []).append(v)
        self.names = sorted(self.values)

    def of_type(self, test: Any) -> list[str]:
        return [n for n in self.names if any(test(v) for v in self.values[n])]

    def sample(self, rng: random.Random, name: str, test: Any = lambda v: v is not None) -> Any:
        good = [v for v in self.values.get(name, []) if test(v)]
        return rng.choice(good) if good else None

    def times(self) -> list[float]:
        out = []
        for r in self.records:
            out += [t for t in (r.start, r.end) if t is not None and math.isfinite(t)]
        return out


def _p(rng: random.Random, name: str) -> dict[str, str]:
    prefixed = name not in ("id", "collection", "geometry", "datetime") and rng.random() < 0.2
    return {"property": f"properties.{name}" if prefixed else name}


def _is_time_string(v: Any) -> bool:
    return instant(v) is not None


def _literal_for(rng: random.Random, vocab: Vocabulary, name: str) -> Any:
    v = vocab.sample(rng, name, lambda x: x is not None and not isinstance(x, (list, dict)))
    r = rng.random()
    if v is None or r < 0.08:
        return rng.choice([3, 10.5, "abc", True, False, "alpha"])
    if is_number(v):
        return rng.choice([v, v, v + rng.choice([-1, 1, 0.5]), int(v) if float(v).is_integer() else round(v)])
    if isinstance(v, str) and _is_time_string(v) and r < 0.6:
        t = to_micros(v) + rng.choice([0, 0, -1_000_000, 1_000_000, DAY])
        if rng.random() < 0.4:
            return {"date": rfc3339(t)[:10]}
        return {"timestamp": rfc3339(t)}
    if isinstance(v, str) and r < 0.3:
        return rng.choice([v.upper(), v.lower(), v[:-1], v + "z", ""])
    return v


def _like_pattern(rng: random.Random, value: str) -> str:
    out = []
    for ch in value:
        if ch in "%_\\":
            out.append("\\" + ch if rng.random() < 0.6 else ch)
        elif rng.random() < 0.15:
            out.append("_")
        else:
            out.append(ch)
    pattern = "".join(out)
    cut = rng.randint(0, len(pattern))
    kind = rng.choice(["prefix", "suffix", "middle", "whole"])
    if kind == "prefix":
        pattern = pattern[:cut].rstrip("\\") + "%"
    elif kind == "suffix":
        pattern = "%" + pattern[cut:]
    elif kind == "middle":
        pattern = "%" + pattern[cut // 2 : cut].rstrip("\\") + "%"
    if rng.random() < 0.3:
        pattern = pattern.swapcase()
    return pattern


def random_bbox_near(rng: random.Random, records: list[Record]) -> list[float]:
    geoms = [r.geometry for r in records if r.geometry is not None]
    if geoms and rng.random() < 0.8:
        x0, y0, x1, y1 = rng.choice(geoms).bounds
        cx, cy = rng.uniform(x0, x1), rng.uniform(y0, y1)
    else:
        cx, cy = rng.uniform(-170, 170), rng.uniform(-80, 80)
    w, h = math.exp(rng.uniform(math.log(0.01), math.log(40))), math.exp(rng.uniform(math.log(0.01), math.log(30)))
    return [round(max(-180, cx - w), 3), round(max(-90, cy - h), 3), round(min(180, cx + w), 3), round(min(90, cy + h), 3)]


def _geometry_literal(rng: random.Random, records: list[Record]) -> dict[str, Any]:
    geoms = [r for r in records if r.geometry is not None]
    kind = rng.choice(["bbox", "bbox", "polygon", "point", "line", "item", "multipoint"])
    b = random_bbox_near(rng, records)
    if kind == "bbox":
        return {"bbox": b}
    if kind == "item" and geoms:
        g = rng.choice(geoms)
        return g.doc["geometry"] if g.kind == "item" else {"bbox": b}
    if kind == "point":
        if geoms and rng.random() < 0.5:
            g = rng.choice(geoms).geometry
            x, y = list(shapely.get_coordinates(g))[0]
            return {"type": "Point", "coordinates": [float(x), float(y)]}
        return {"type": "Point", "coordinates": [b[0], b[1]]}
    if kind == "multipoint":
        return {"type": "MultiPoint", "coordinates": [[b[0], b[1]], [b[2], b[3]]]}
    if kind == "line":
        return {"type": "LineString", "coordinates": [[b[0], b[1]], [b[2], b[3]]]}
    x0, y0, x1, y1 = b
    if x0 == x1 or y0 == y1:
        return {"bbox": [x0, y0, round(x0 + 1, 3), round(y0 + 1, 3)]}
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y0]]]}


def _time_literal(rng: random.Random, vocab: Vocabulary) -> dict[str, Any]:
    times = vocab.times()

    def t() -> int:
        if times and rng.random() < 0.6:
            return int(rng.choice(times)) + rng.choice([0, 0, 0, -1_000_000, 1_000_000])
        return random_time(rng)

    kind = rng.choice(["timestamp", "date", "interval", "interval"])
    if kind == "timestamp":
        return {"timestamp": rfc3339(t())}
    if kind == "date":
        return {"date": rfc3339(t())[:10]}
    a, b = sorted((t(), t()))
    ends = [rfc3339(a), rfc3339(b)]
    if rng.random() < 0.2:
        ends = [e[:10] for e in ends]
    if rng.random() < 0.25:
        ends[rng.randrange(2)] = ".."
    return {"interval": ends}


def random_predicate(rng: random.Random, vocab: Vocabulary, depth: int = 0) -> Any:
    """One random CQL2 JSON predicate (and/or/not of the atoms below, up to three levels)."""
    if depth < 3 and rng.random() < (0.45 if depth == 0 else 0.25):
        kind = rng.choice(["and", "or", "not"])
        if kind == "not":
            return {"op": "not", "args": [random_predicate(rng, vocab, depth + 1)]}
        return {"op": kind, "args": [random_predicate(rng, vocab, depth + 1) for _ in range(rng.randint(2, 3))]}
    scalars = vocab.of_type(lambda v: v is not None and not isinstance(v, (list, dict)))
    strings = vocab.of_type(lambda v: isinstance(v, str))
    numbers = vocab.of_type(is_number)
    arrays = vocab.of_type(lambda v: isinstance(v, list))
    times = vocab.of_type(_is_time_string)
    kind = rng.choices(
        ["compare", "casei", "like", "between", "in", "isnull", "spatial", "temporal", "array", "arith",
         "propprop", "bool", "unknown", "temporal2", "spatial2", "like2", "array2", "literals"],
        [14, 3, 4, 3, 3, 3, 6, 6, 3, 2, 2, 1, 1, 6, 2, 3, 2, 2],
    )[0]
    needs = {"casei": strings, "like": strings, "between": numbers, "array": arrays, "arith": numbers,
             "propprop": numbers or strings, "like2": strings, "array2": arrays}
    if kind in needs and not needs[kind]:
        kind = "compare"
    if kind == "compare":
        name = rng.choice(scalars + ["id", "collection", "datetime"])
        lit = _literal_for(rng, vocab, name)
        node = {"op": rng.choice(COMPARE_OPS), "args": [_p(rng, name), lit]}
        if rng.random() < 0.15:
            node["args"].reverse()
        return node
    if kind == "casei":
        name = rng.choice(strings)
        v = vocab.sample(rng, name, lambda x: isinstance(x, str)) or "x"
        lit = rng.choice([v.upper(), v.lower(), v.swapcase(), v])
        return {"op": rng.choice(["=", "=", "<>", "<", ">="]),
                "args": [{"op": "casei", "args": [_p(rng, name)]}, {"op": "casei", "args": [lit]}]}
    if kind == "like":
        name = rng.choice(strings)
        v = vocab.sample(rng, name, lambda x: isinstance(x, str)) or "x"
        pattern = _like_pattern(rng, v)
        if rng.random() < 0.3:
            return {"op": "like", "args": [{"op": "casei", "args": [_p(rng, name)]}, {"op": "casei", "args": [pattern]}]}
        return {"op": "like", "args": [_p(rng, name), pattern]}
    if kind == "between":
        name = rng.choice(numbers)
        a, b = (vocab.sample(rng, name, is_number) for _ in range(2))
        lo, hi = sorted((a, b)) if rng.random() < 0.9 else (max(a, b), min(a, b))
        return {"op": "between", "args": [_p(rng, name), lo, hi]}
    if kind == "in":
        name = rng.choice(scalars + ["id", "collection"])
        values = [_literal_for(rng, vocab, name) for _ in range(rng.randint(1, 4))]
        values = [v for v in values if not isinstance(v, dict)] or ["none"]
        return {"op": "in", "args": [_p(rng, name), values]}
    if kind == "isnull":
        name = rng.choice(vocab.names + ["geometry", "geometry", UNKNOWN, "collection"])
        return {"op": "isNull", "args": [_p(rng, name)]}
    if kind == "spatial":
        op = rng.choice(sorted(SPATIAL))
        args = [{"property": "geometry"}, _geometry_literal(rng, vocab.records)]
        if rng.random() < 0.2:
            args.reverse()
        return {"op": op, "args": args}
    if kind == "temporal":
        op = rng.choice(TEMPORAL_OPS)
        name = rng.choice(["datetime"] * 4 + [n for n in times if n != "datetime"])
        args = [{"property": name}, _time_literal(rng, vocab)]
        if rng.random() < 0.2:
            args.reverse()
        return {"op": op, "args": args}
    if kind == "array":
        name = rng.choice(arrays)
        elems = [e for v in vocab.values[name] if isinstance(v, list) for e in v if not isinstance(e, (list, dict))]
        lit = rng.sample(elems, min(len(elems), rng.randint(1, 3))) if elems else ["x"]
        if rng.random() < 0.2:
            lit.append(rng.choice(["zzz", 99]))
        args = [{"property": name}, lit]
        if rng.random() < 0.15:
            args.reverse()
        return {"op": rng.choice(ARRAY_OPS), "args": args}
    if kind == "arith":
        name = rng.choice(numbers)
        aop = rng.choice(["+", "-", "*", "/", "%", "div"])
        const = rng.choice([1, 2, 3, 0.5, 10]) if aop in ("/", "%", "div") else rng.choice([0, 1, 2, -3, 0.5])
        v = vocab.sample(rng, name, is_number)
        return {"op": rng.choice(COMPARE_OPS), "args": [{"op": aop, "args": [_p(rng, name), const]}, v]}
    if kind == "propprop":
        pool = rng.choice([p for p in (numbers, strings) if p])
        a, b = rng.choice(pool), rng.choice(pool)
        return {"op": rng.choice(COMPARE_OPS), "args": [_p(rng, a), _p(rng, b)]}
    if kind == "temporal2":
        # Property-property: each operand a time property, a literal, or an INTERVAL whose
        # ends are properties, literals or '..'; seldom two literals.
        args = [_temporal_operand(rng, vocab, times, True), _temporal_operand(rng, vocab, times, rng.random() < 0.2)]
        rng.shuffle(args)
        return {"op": rng.choice(TEMPORAL_OPS), "args": args}
    if kind == "spatial2":
        if rng.random() < 0.6:
            return {"op": rng.choice(sorted(SPATIAL)), "args": [{"property": "geometry"}, {"property": "geometry"}]}
        g = _geometry_literal(rng, vocab.records)
        other = g if rng.random() < 0.5 else _geometry_literal(rng, vocab.records)
        return {"op": rng.choice(sorted(SPATIAL)), "args": [g, other]}
    if kind == "like2":
        pool = strings + ["pattern"] * 3 if "pattern" in strings else strings
        a, b = rng.choice(pool), rng.choice(pool)
        form = rng.choice(["props", "props", "same", "literal-left", "literals"])
        if form == "same":
            b = a
        left: Any = _p(rng, a)
        pattern: Any = _p(rng, b)
        if form in ("literal-left", "literals"):
            left = vocab.sample(rng, rng.choice(strings), lambda x: isinstance(x, str)) or "x"
        if form == "literals":
            pattern = _like_pattern(rng, left if rng.random() < 0.7 else "x")
        if rng.random() < 0.3:
            left, pattern = {"op": "casei", "args": [left]}, {"op": "casei", "args": [pattern]}
        return {"op": "like", "args": [left, pattern]}
    if kind == "array2":
        op = rng.choice(ARRAY_OPS)
        if rng.random() < 0.75:
            a = rng.choice(arrays)
            b = a if rng.random() < 0.4 else rng.choice(arrays)
            return {"op": op, "args": [_p(rng, a), _p(rng, b)]}
        elems = [e for n in arrays for v in vocab.values[n] if isinstance(v, list) for e in v
                 if not isinstance(e, (list, dict))] or ["x", 1]
        return {"op": op, "args": [rng.sample(elems, min(len(elems), rng.randint(1, 3))) for _ in range(2)]}
    if kind == "literals":
        pool = [1, 2.5, 3, "a", "b", "A", True, False, None,
                {"timestamp": "2020-01-01T00:00:00Z"}, {"timestamp": "2020-01-01T12:00:00Z"},
                {"date": "2020-01-01"}, {"date": "2020-01-02"}, "2020-01-01T12:00:00Z"]
        if rng.random() < 0.25:
            return {"op": "isNull", "args": [rng.choice(pool)]}
        a, b = rng.choice(pool), rng.choice(pool)
        if rng.random() < 0.3:
            b = a
        if isinstance(a, dict) and isinstance(b, str) and rng.random() < 0.5:
            a, b = b, a
        return {"op": rng.choice(COMPARE_OPS), "args": [a, b]}
    if kind == "bool":
        return rng.choice([True, False])
    return {"op": rng.choice(COMPARE_OPS), "args": [{"property": UNKNOWN}, rng.choice([1, "x", True])]}


def _temporal_operand(rng: random.Random, vocab: Vocabulary, times: list[str], with_property: bool) -> Any:
    """A temporal operand: a time property, or an INTERVAL with a property at one or both
    ends (the others literals or '..'); without ``with_property``, a literal."""
    names = ["datetime", "datetime"] + [n for n in times if n != "datetime"]

    def end(is_end: bool) -> Any:
        r = rng.random()
        if r < 0.5:
            return {"property": rng.choice(names)}
        if r < 0.65:
            return ".."
        t = rfc3339(int(rng.choice(vocab.times() or [T_LO])) + rng.choice([0, 0, -DAY, DAY]))
        return rng.choice([t, t[:10], {"timestamp": t}, {"date": t[:10]}])

    if not with_property:
        return _time_literal(rng, vocab)
    if rng.random() < 0.45:
        return _p(rng, rng.choice(names))
    ends = [end(False), end(True)]
    if not any(is_property(e) for e in ends):
        ends[rng.randrange(2)] = {"property": rng.choice(names)}
    return {"interval": ends}


def _text_value(x: Any) -> str:
    if x is None:
        return "NULL"
    if is_property(x):
        return '"' + x["property"] + '"'
    if isinstance(x, bool):
        return "TRUE" if x else "FALSE"
    if isinstance(x, (int, float)):
        return repr(x)
    if isinstance(x, str):
        return "'" + x.replace("'", "''") + "'"
    if isinstance(x, list):
        return "(" + ", ".join(_text_value(v) for v in x) + ")"
    if isinstance(x, dict):
        if "timestamp" in x:
            return f"TIMESTAMP('{x['timestamp']}')"
        if "date" in x:
            return f"DATE('{x['date']}')"
        if "interval" in x:
            return "INTERVAL(" + ", ".join(_text_value(e) for e in x["interval"]) + ")"
        if "bbox" in x:
            return "BBOX(" + ", ".join(repr(v) for v in x["bbox"]) + ")"
        if "type" in x:
            return wkt(x)
        if "op" in x:
            return to_text(x)
    raise ValueError(f"cannot write {x!r} as CQL2 text")


def wkt(g: dict[str, Any]) -> str:
    """GeoJSON → WKT with the shortest exact spelling of every number."""
    def pt(c: list[float]) -> str:
        return " ".join(repr(float(v)) for v in c)

    def ring(cs: list[list[float]]) -> str:
        return "(" + ", ".join(pt(c) for c in cs) + ")"

    def poly(rings: list[Any]) -> str:
        return "(" + ", ".join(ring(r) for r in rings) + ")"

    t, cs = g["type"], g.get("coordinates")
    if t == "Point":
        return f"POINT({pt(cs)})"
    if t == "MultiPoint":
        return "MULTIPOINT(" + ", ".join(f"({pt(c)})" for c in cs) + ")"
    if t == "LineString":
        return "LINESTRING" + ring(cs)
    if t == "MultiLineString":
        return "MULTILINESTRING(" + ", ".join(ring(c) for c in cs) + ")"
    if t == "Polygon":
        return "POLYGON" + poly(cs)
    if t == "MultiPolygon":
        return "MULTIPOLYGON(" + ", ".join(poly(p) for p in cs) + ")"
    return "GEOMETRYCOLLECTION(" + ", ".join(wkt(m) for m in g["geometries"]) + ")"


def to_text(node: Any) -> str:
    """CQL2 JSON → CQL2 text."""
    if node is True or node is False:
        return "TRUE" if node else "FALSE"
    op = node["op"]
    args = node["args"]
    low = op.lower()
    if low in ("and", "or"):
        return "(" + f") {low.upper()} (".join(to_text(a) for a in args) + ")"
    if low == "not":
        return f"NOT ({to_text(args[0])})"
    if low in ("casei", "accenti"):
        return f"{low.upper()}({_text_value(args[0])})"
    if low in ARITH:
        return f"({_text_value(args[0])} {op} {_text_value(args[1])})"
    if op in COMPARE_OPS:
        return f"{_text_value(args[0])} {op} {_text_value(args[1])}"
    if low == "like":
        return f"{_text_value(args[0])} LIKE {_text_value(args[1])}"
    if low == "between":
        return f"{_text_value(args[0])} BETWEEN {_text_value(args[1])} AND {_text_value(args[2])}"
    if low == "in":
        return f"{_text_value(args[0])} IN {_text_value(args[1])}"
    if low == "isnull":
        return f"{_text_value(args[0])} IS NULL"
    return f"{low.upper()}({_text_value(args[0])}, {_text_value(args[1])})"


def random_q(rng: random.Random, records: list[Record], advanced: bool = True) -> str:
    """A free-text query: words, prefixes, phrases from the records' texts, and the advanced syntax."""
    words = sorted({w for r in records for t in r.texts for w in text_words(t)}) or ["x"]

    def term() -> str:
        r = rng.random()
        if r < 0.45:
            w = rng.choice(words)
            w = w[: rng.randint(1, len(w))] if rng.random() < 0.4 else w
            return w.upper() if rng.random() < 0.2 else w
        if r < 0.75:
            texts = [t for rec in records for t in rec.texts]
            ws = text_words(rng.choice(texts)) if texts else ["x"]
            if len(ws) < 2:
                return ws[0] if ws else "x"
            i = rng.randrange(len(ws) - 1)
            k = rng.randint(2, min(3, len(ws) - i))
            phrase = ws[i : i + k]
            if rng.random() < 0.3:
                phrase[-1] = phrase[-1][: rng.randint(1, len(phrase[-1]))]
            if rng.random() < 0.2:
                phrase.reverse()
            return '"' + " ".join(phrase) + '"' if advanced or rng.random() < 0.5 else "-".join(phrase)
        if r < 0.85:
            return rng.choice(["nosuchword", "qqq", "ndvi", "Sentinel-2", "land-cover", "l2a"])
        return rng.choice(words) + rng.choice(["", "s", "ing"])

    if not advanced:
        return ",".join(term() for _ in range(rng.randint(1, 3)))

    def expr(depth: int) -> str:
        parts = []
        for i in range(rng.randint(1, 3)):
            r = rng.random()
            if depth < 2 and r < 0.15:
                piece = "(" + expr(depth + 1) + ")"
            elif r < 0.3:
                piece = f"{term()} AND {term()}"
            elif r < 0.38:
                piece = f"NOT {term()}"
            elif r < 0.55:
                piece = rng.choice("+-") + term()
            else:
                piece = term()
            if i:
                parts.append(rng.choice([" ", " OR ", " "]))
            parts.append(piece)
        return "".join(parts)

    q = expr(0)
    if rng.random() < 0.2:
        q += "," + term()
    return q


def random_sortby(rng: random.Random, records: list[Record], kind: str = "item") -> list[tuple[str, bool]]:
    vocab = Vocabulary(records)
    names = [n for n in vocab.names if sortable(records, n)]
    weights = [5 if n in ("datetime", "id", "collection", "title", "n", "cloud", "platform", "mixed", "flag", "gsd") else 1
               for n in names]
    chosen: list[str] = []
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        n = rng.choices(names, weights)[0]
        if n not in chosen:
            chosen.append(n)
    return [(n, rng.random() < 0.5) for n in chosen]


def sortby_get(fields: list[tuple[str, bool]], rng: random.Random) -> str:
    def name(n: str) -> str:
        return f"properties.{n}" if n not in ("id", "collection") and rng.random() < 0.3 else n

    return ",".join(("-" if d else rng.choice(["", "+"])) + name(n) for n, d in fields)


def sortby_post(fields: list[tuple[str, bool]], rng: random.Random) -> list[dict[str, str]]:
    return [{"field": n, "direction": "desc" if d else "asc"} for n, d in fields]
