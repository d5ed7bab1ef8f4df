"""A corpus of hostile requests: each one, sent by one anonymous client, once took the server
down (a segfault, a hang past the time budget and SIGTERM) or is of a kind that could (deep
nesting in every syntax, backtracking patterns, huge lists, geometries and headers).

Used by tests/test_hostile_requests.py (each request against a live server) and by
bench/hostile_soak.py (the corpus from 8 clients for a minute, timing /_mgmt/health meanwhile).
The requests assume a catalog with a collection named COLLECTION; how they are answered (200 or
a 4xx) is not prescribed, only that they are answered, within the time budget, and the server lives.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

COLLECTION = "hostile"
JSON = {"content-type": "application/json"}


@dataclass(frozen=True)
class HostileRequest:
    name: str
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None  # sent as JSON
    content: bytes | None = None  # sent as it is, for bodies that are not JSON one could build
    headers: dict[str, str] = field(default_factory=dict)


def _filter_everywhere(name: str, text: str) -> list[HostileRequest]:
    """A cql2-text filter on every endpoint that takes one, GET and POST."""
    return [
        HostileRequest(f"{name} GET /search", "GET", "/search", {"filter": text}),
        HostileRequest(f"{name} POST /search", "POST", "/search", body={"filter": text, "filter-lang": "cql2-text"}),
        HostileRequest(f"{name} GET /collections", "GET", "/collections", {"filter": text}),
        HostileRequest(f"{name} GET items", "GET", f"/collections/{COLLECTION}/items", {"filter": text}),
    ]


def _nested_json(depth: int) -> str:
    """CQL2 JSON of `depth` NOTs around a comparison, as text (json.dumps recurses on it)."""
    return '{"op":"not","args":[' * depth + '{"op":"=","args":[{"property":"id"},"x"]}' + "]}" * depth


def _polygon(vertices: int) -> dict[str, Any]:
    ring = [[10 + 5 * math.cos(2 * math.pi * i / vertices), 50 + 5 * math.sin(2 * math.pi * i / vertices)]
            for i in range(vertices)]
    return {"type": "Polygon", "coordinates": [ring + [ring[0]]]}


def _nested_collection(depth: int) -> str:
    """A GeometryCollection `depth` deep around a point, as text."""
    return '{"type":"GeometryCollection","geometries":[' * depth + '{"type":"Point","coordinates":[10,50]}' + "]}" * depth


def _json_body(key: str, value_text: str) -> bytes:
    return f'{{"{key}": {value_text}}}'.encode()


def corpus() -> list[HostileRequest]:
    out: list[HostileRequest] = []
    # Deep nesting in every cql2-text form the native parser recurses on.
    for n in (1_700, 5_000, 100_000):
        out += _filter_everywhere(f"parentheses x{n}", "(" * n + "id='x'" + ")" * n)
    out += _filter_everywhere("NOT x5000", "NOT " * 5_000 + "id='x'")
    out += _filter_everywhere("unary minus x5000", "gsd = " + "-" * 5_000 + "1")
    out += _filter_everywhere("function calls x5000", "gsd = " + "f(" * 5_000 + "1" + ")" * 5_000)
    out += _filter_everywhere("CASEI x5000", "CASEI(" * 5_000 + "id" + ")" * 5_000 + " = 'x'")
    out.append(HostileRequest("AND x20000", "POST", "/search", body={"filter": " AND ".join(["gsd = 1"] * 20_000)}))
    out.append(HostileRequest("plus x20000", "POST", "/search", body={"filter": "gsd = " + "1+" * 20_000 + "1"}))
    # Deep CQL2 JSON, as a body and as a GET parameter; deep JSON for other parameters.
    out.append(HostileRequest("JSON NOT x5000 POST", "POST", "/search", content=_json_body("filter", _nested_json(5_000)),
                              headers=JSON))
    out.append(HostileRequest("JSON NOT x500 GET", "GET", "/search",
                              {"filter": _nested_json(500), "filter-lang": "cql2-json"}))
    out.append(HostileRequest("JSON arrays x100000", "POST", "/search", content=b"[" * 100_000,
                              headers=JSON))
    out.append(HostileRequest("JSON objects x50000", "POST", "/search", content=b'{"a":' * 50_000,
                              headers=JSON))
    out.append(HostileRequest("intersects GeometryCollection x5000", "POST", "/search",
                              content=_json_body("intersects", _nested_collection(5_000)), headers=JSON))
    out.append(HostileRequest("intersects GeometryCollection x500 GET", "GET", "/search",
                              {"intersects": _nested_collection(500)}))
    # Patterns that backtrack: each % was a .* for Python's re.
    for k in (6, 20, 200, 5_000):
        out += _filter_everywhere(f"LIKE %x{k}", f"id LIKE '{'%' * k}Z'")
    out += _filter_everywhere("LIKE %a x300", "id LIKE '" + "%a" * 300 + "%Z'")
    out += _filter_everywhere("LIKE %_ x300", "id LIKE '" + "%_" * 300 + "%Z'")
    out.append(HostileRequest("CASEI LIKE % x200", "GET", "/search",
                              {"filter": f"CASEI(id) LIKE CASEI('{'%' * 200}z')"}))
    out.append(HostileRequest("LIKE property pattern", "GET", "/search", {"filter": "'" + "a" * 5_000 + "' LIKE id"}))
    out.append(HostileRequest("query startsWith %", "POST", "/search",
                              body={"query": {"platform": {"startsWith": "%" * 5_000, "endsWith": "%_" * 2_000}}}))
    # Huge lists and geometries.
    out.append(HostileRequest("IN x10000", "POST", "/search",
                              body={"filter": "id IN (" + ",".join(f"'i{i}'" for i in range(10_000)) + ")"}))
    out.append(HostileRequest("IN x60000 (over the body limit)", "POST", "/search",
                              body={"filter": "id IN (" + ",".join(f"'item-number-{i}'" for i in range(60_000)) + ")"}))
    out.append(HostileRequest("ids x20000", "POST", "/search", body={"ids": [f"i{i}" for i in range(20_000)]}))
    out.append(HostileRequest("polygon 19000 vertices", "POST", "/search", body={"intersects": _polygon(19_000)}))
    out.append(HostileRequest("polygon 30000 vertices", "POST", "/search", body={"intersects": _polygon(30_000)}))
    out.append(HostileRequest("S_INTERSECTS polygon 15000", "POST", "/search",
                              body={"filter": {"op": "s_intersects",
                                               "args": [{"property": "geometry"}, _polygon(15_000)]}}))
    # Free text, sort, fields and paging, pushed to their limits.
    out.append(HostileRequest("q parentheses x5000", "GET", "/search", {"q": "(" * 5_000 + "a" + ")" * 5_000}))
    out.append(HostileRequest("q NOT x5000", "GET", "/search", {"q": "NOT " * 5_000 + "a"}))
    out.append(HostileRequest("q quotes x5000", "GET", "/search", {"q": '"' * 5_001}))
    out.append(HostileRequest("q terms x20000", "POST", "/search", body={"q": [f"t{i}" for i in range(20_000)]}))
    out.append(HostileRequest("q OR x5000", "GET", "/collections", {"q": " OR ".join(["a"] * 5_000)}))
    out.append(HostileRequest("sortby x5000", "GET", "/search", {"sortby": ",".join(f"-p{i}" for i in range(5_000))}))
    out.append(HostileRequest("fields x20000", "GET", "/search", {"fields": ",".join(f"p{i}" for i in range(20_000))}))
    out.append(HostileRequest("token garbage", "GET", "/search", {"token": "next:" + "\u00ff" * 3_000}))
    out.append(HostileRequest("limit huge", "GET", "/search", {"limit": "9" * 400}))
    out.append(HostileRequest("bbox huge numbers", "GET", "/search", {"bbox": "-1e308,-1e308,1e308,1e308"}))
    out.append(HostileRequest("datetime huge year", "GET", "/search", {"datetime": "99999999-01-01T00:00:00Z/.."}))
    # Headers.
    out.append(HostileRequest("header 200 KB", "GET", "/search", headers={"x-padding": "a" * 200_000}))
    out.append(HostileRequest("headers 500 of 1 KB", "GET", "/",
                              headers={f"x-h{i}": "b" * 1_000 for i in range(500)}))
    return out
