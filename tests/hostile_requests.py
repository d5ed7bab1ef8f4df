"""A corpus of hostile requests: each one, sent by one anonymous client, once took the server
down (a segfault, a hang past the time budget and SIGTERM) or is of a kind that could (deep
nesting in every syntax, backtracking patterns, huge lists, geometries and headers).

Used by tests/test_hostile_requests.py (each request against a live server) and by
bench/hostile_soak.py (the corpus from 8 clients for a minute, timing /_mgmt/health meanwhile).
The requests assume a catalog with a collection named COLLECTION, served with --serve-assets from
a folder laid out by lay_out_served_files, and then write_wide_collection's; how they are answered (200, 206 or a 4xx) is not
prescribed, only that they are answered, within the time budget, and the server lives.
"""

from __future__ import annotations

import json
import math
import os
import stat
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import collection, item

COLLECTION = "hostile"
WIDE = "hostile-wide"  # a collection whose items name WIDE_PROPERTIES properties between them
WIDE_PROPERTIES = 6_000
JSON = {"content-type": "application/json"}
SERVED = "/_assets/0"  # the first root's folder, with --serve-assets
SPARSE_BYTES = 3 * 1024**3 + 3  # a sparse file past 2 GiB (and 32-bit offsets)


def write_wide_collection(folder: str) -> list[str]:
    """The collection WIDE in ``folder``/wide, item i with property ``p{i}``: the roots to load
    after the corpus's collection (so that its folder stays served root 0)."""
    os.makedirs(os.path.join(folder, "wide"))
    roots = [os.path.join(folder, "wide", "collection.json"), os.path.join(folder, "wide", "items.ndjson")]
    with open(roots[0], "w") as out:
        json.dump(collection(WIDE), out)
    with open(roots[1], "w") as out:
        for i in range(WIDE_PROPERTIES):
            out.write(json.dumps(item(f"wide-{i}", collection=WIDE, properties={f"p{i}": i})) + "\n")
    return roots


def lay_out_served_files(folder: str) -> None:
    """Beside the catalog in ``folder``: a small file, a 3 GiB sparse one, a dot file, a FIFO, a
    sub-folder, a symlink out of the folder and one to the dot file, and a device file (null)
    when this process may make one."""
    with open(os.path.join(folder, "asset.bin"), "wb") as out:
        out.write(bytes(range(256)) * 64)
    with open(os.path.join(folder, "sparse.bin"), "wb") as out:
        out.truncate(SPARSE_BYTES)
    with open(os.path.join(folder, ".secret"), "w") as out:
        out.write("a dot file")
    os.mkfifo(os.path.join(folder, "fifo"))
    os.makedirs(os.path.join(folder, "sub"))
    os.symlink("/etc/passwd", os.path.join(folder, "out"))
    os.symlink(".secret", os.path.join(folder, "to-secret"))
    try:
        os.mknod(os.path.join(folder, "null"), stat.S_IFCHR | 0o644, os.makedev(1, 3))
    except PermissionError:
        pass  # not root: the request for it is a 404 of a missing file instead


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
    # A long pattern's last segment was tried at every position of a value (7.2 s at 70,000
    # characters, session 14's QA): a request's pattern is at most 1,000 characters (a 400).
    for chars in (999, 70_000):
        out.append(HostileRequest(f"LIKE {chars:,}-character pattern", "POST", "/search", body={
            "filter-lang": "cql2-json",
            "filter": {"op": "like", "args": [{"op": "casei", "args": [{"property": "title"}]}, "%" + "s" * chars]}}))
        out.append(HostileRequest(f"LIKE {chars:,}-character middle", "POST", "/search", body={
            "filter-lang": "cql2-json", "filter": {"op": "like", "args": [{"property": "id"}, "%" + "a" * chars + "%"]}}))
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
    # Aggregation precisions str.isdigit() took and int() refused (qa19: each a 500).
    for name, value in {"superscript two": "\u00b2", "5000 digits": "9" * 5_000}.items():
        out.append(HostileRequest(f"aggregate precision {name}", "GET", "/aggregate",
                                  {"centroid_geotile_grid_frequency_precision": value}))
        out.append(HostileRequest(f"collection aggregate precision {name}", "POST", f"/collections/{COLLECTION}/aggregate",
                                  body={"aggregations": ["geometry_geohash_grid_frequency"],
                                        "geometry_geohash_grid_frequency_precision": value}))
    # Headers.
    out.append(HostileRequest("header 200 KB", "GET", "/search", headers={"x-padding": "a" * 200_000}))
    out.append(HostileRequest("headers 500 of 1 KB", "GET", "/",
                              headers={f"x-h{i}": "b" * 1_000 for i in range(500)}))
    # Queryables over thousands of properties, each URL new to the response cache.
    for k in range(4):
        out.append(HostileRequest(f"queryables of a wide collection #{k}", "GET", f"/collections/{WIDE}/queryables",
                                  {"k": str(k)}))
        out.append(HostileRequest(f"queryables of all #{k}", "GET", "/queryables", {"k": str(k)}))
    return out + _served_files()


def _served_files() -> list[HostileRequest]:
    """Ranges, encoded traversals, odd root numbers and special files under --serve-assets."""
    out: list[HostileRequest] = []
    ranges = {
        "bytes=-0": "bytes=-0", "0-0 x1000": "bytes=" + ",".join(["0-0"] * 1_000),
        "100 ranges": "bytes=" + ",".join(f"{2 * i}-{2 * i}" for i in range(100)),
        "first 20 digits": "bytes=99999999999999999999-", "first 5000 digits": "bytes=" + "9" * 5_000 + "-",
        "last 5000 digits": "bytes=0-" + "9" * 5_000, "suffix 5000 digits": "bytes=-" + "9" * 5_000,
        "one of two beyond": "bytes=0-9,99999-", "not digits": "bytes=+1-1_0", "garbage": "bytes=" + "-," * 5_000,
    }
    for name, value in ranges.items():
        out.append(HostileRequest(f"served Range {name}", "GET", f"{SERVED}/asset.bin", headers={"range": value}))
    for name, value in {"odd date": "Mon, 99 Foo 99999 99:99:99 GMT", "epoch": "Thu, 01 Jan 1970 00:00:00 GMT",
                        "10 KB": '"x"' * 3_400, "weak": 'W/"x"'}.items():
        out.append(HostileRequest(f"served If-Range {name}", "GET", f"{SERVED}/asset.bin",
                                  headers={"range": "bytes=99999-", "if-range": value}))
    for name, value in {"past 2 GiB": "bytes=2147483648-2147483700", "last bytes": "bytes=-3",
                        "first and last": f"bytes=0-0,{SPARSE_BYTES - 1}-", "beyond": f"bytes={SPARSE_BYTES}-"}.items():
        out.append(HostileRequest(f"served 3 GiB sparse Range {name}", "GET", f"{SERVED}/sparse.bin",
                                  headers={"range": value}))
    paths = {
        "%2e%2e": "%2e%2e/%2e%2e/%2e%2e/etc/passwd", "..%2F": "sub/..%2F..%2F..%2Fetc/passwd",
        "..%5c": "sub/..%5c..%5cetc%5cpasswd", "NUL": "asset.bin%00.png", "overlong UTF-8": "%c0%ae%c0%ae/%c0%ae%c0%ae/etc",
        "invalid UTF-8": "%ff%fe%fd", "3000 segments": "a/" * 3_000 + "b", "name of 20 KB": "n" * 20_000,
        "dot file": ".secret", "encoded dot file": "%2esecret", "symlink out": "out", "symlink to dot file": "to-secret",
        "FIFO": "fifo", "device": "null", "folder": "sub", "folder slash": "sub/", "empty segment": "sub//asset.bin",
    }
    for name, path in paths.items():
        out.append(HostileRequest(f"served path {name}", "GET", f"{SERVED}/{path}"))
    for name, root in {"negative": "-1", "out of range": "7", "20 digits": "9" * 20, "5000 digits": "9" * 5_000,
                       "not a number": "x", "hex": "0x0", "Arabic-Indic digit": "%D9%A0"}.items():
        out.append(HostileRequest(f"served root {name}", "GET", f"/_assets/{root}/asset.bin"))
    return out
