"""Which property a name in a filter, sortby or query means, through the real server (uvicorn,
plain HTTP and pystac-client), on a catalog whose items hold a nested object and a property
literally named `properties.x` beside one named `x` (qa16 found both answering nothing).

- Every name /queryables lists finds the items holding that property, as listed.
- A `properties.` prefix is dropped only when no property has the name as given.
- A path into a property holding objects (`nested.deep.x`) is a 400 naming it and saying what
  is queryable, never an empty answer where the data exists; a dotted name no property starts
  stays an unknown property (NULL: /queryables says additionalProperties).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pystac_client import Client
from pystac_client.exceptions import APIError

from tests.helpers import CatalogDir, catalog, collection, item, link, run_server
from tests.oracles.expected import expected_items
from tests.oracles.records import item_records
from tests.oracles.search import Oracle

PROPERTIES: dict[str, dict[str, Any]] = {
    "i0": {"nested": {"deep": {"x": 1}}, "properties.x": 5, "x": 7, "tags": ["a", "b"]},
    "i1": {"nested": {"deep": {"x": 2}}, "x": 8},
    "i2": {"properties.x": 6, "tags": ["c"]},
    "i3": {"gsd": 10},
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = CatalogDir(tmp_path_factory.mktemp("names"))
    links = []
    for name, properties in PROPERTIES.items():
        folder.write(f"c/{name}.json", item(name, collection="c", properties=properties,
                                            links=[link("collection", "./collection.json")]))
        links.append(link("item", f"./{name}.json"))
    folder.write("c/collection.json", collection("c", links))
    return folder.write("catalog.json", catalog("root", [link("child", "./c/collection.json")]))


@pytest.fixture(scope="module")
def base(root: Path) -> Iterator[str]:
    with run_server([str(root)]) as url:
        yield url


@pytest.fixture(scope="module")
def http(base: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base, timeout=30) as client:
        yield client


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [f["id"] for f in response.json()["features"]]


def search(http: httpx.Client, method: str, text: str | None = None, node: Any = None, **extra: Any) -> httpx.Response:
    """The filter on /search, as cql2-text (``text``) or cql2-json (``node``)."""
    if method == "GET":
        params = {"filter": text, "filter-lang": "cql2-text"} if text is not None else {
            "filter": json.dumps(node), "filter-lang": "cql2-json"}
        return http.get("/search", params={**params, **{k: v if isinstance(v, str) else json.dumps(v) for k, v in extra.items()}})
    body = {"filter": text, "filter-lang": "cql2-text"} if text is not None else {"filter": node, "filter-lang": "cql2-json"}
    return http.post("/search", json={**body, **extra})


def compare(name: str, value: Any) -> tuple[str, dict[str, Any]]:
    """``name = value`` as cql2-text (a quoted identifier; a string in single quotes) and as cql2-json."""
    literal = f"'{value}'" if isinstance(value, str) else json.dumps(value)
    return f'"{name}" = {literal}', {"op": "=", "args": [{"property": name}, value]}


METHODS_AND_LANGS = [("GET", "text"), ("GET", "json"), ("POST", "text"), ("POST", "json")]


@pytest.mark.parametrize(("method", "lang"), METHODS_AND_LANGS)
@pytest.mark.parametrize(("name", "value", "expected"), [
    ("properties.x", 5, ["i0"]),  # the property literally so named (listed by /queryables as such)
    ("properties.x", 6, ["i2"]),
    ("x", 7, ["i0"]),
    ("properties.properties.x", 6, ["i2"]),  # its fully qualified form
    ("properties.gsd", 10, ["i3"]),  # no property is named so: the prefix is dropped
])
def test_a_name_means_the_property_so_named_first(http: httpx.Client, method: str, lang: str, name: str, value: Any,
                                                  expected: list[str]) -> None:
    text, node = compare(name, value)
    response = search(http, method, text=text) if lang == "text" else search(http, method, node=node)
    assert ids(response) == expected, (name, response.text)


def test_every_queryable_is_queryable_as_listed(http: httpx.Client) -> None:
    listed = http.get("/queryables").json()["properties"]
    assert {"properties.x", "x", "nested", "gsd", "tags"} <= set(listed)
    for name in listed:
        if name == "geometry":
            continue
        have = sorted(i for i, props in PROPERTIES.items() if name in props or name in ("id", "collection", "datetime"))
        for method in ("GET", "POST"):
            got = ids(search(http, method, node={"op": "not", "args": [{"op": "isNull", "args": [{"property": name}]}]}))
            assert sorted(got) == have, (name, method)


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_sortby_and_query_map_names_as_filters_do(http: httpx.Client, method: str) -> None:
    if method == "GET":
        by_literal = http.get("/search", params={"sortby": "-properties.x", "limit": 10})
        queried = http.get("/search", params={"query": json.dumps({"properties.x": {"gte": 5}})})
    else:
        by_literal = http.post("/search", json={"sortby": [{"field": "properties.x", "direction": "desc"}]})
        queried = http.post("/search", json={"query": {"properties.x": {"gte": 5}}})
    assert ids(by_literal)[:2] == ["i2", "i0"]  # 6, 5; the others (no such property) last
    assert sorted(ids(queried)) == ["i0", "i2"]


NESTED = [("nested.deep.x", 1), ("properties.nested.deep.x", 1), ("nested.deep", 1), ("tags.0", "a")]


@pytest.mark.parametrize(("method", "lang"), METHODS_AND_LANGS)
@pytest.mark.parametrize(("name", "value"), NESTED)
def test_a_path_into_an_object_property_is_a_400_naming_it(http: httpx.Client, method: str, lang: str, name: str,
                                                           value: Any) -> None:
    text, node = compare(name, value)
    response = search(http, method, text=text) if lang == "text" else search(http, method, node=node)
    assert response.status_code == 400, response.text
    body = response.json()
    assert isinstance(body.get("code"), str) and body["code"]
    assert name in body["description"] and "/queryables" in body["description"], body


@pytest.mark.parametrize(("name", "value"), NESTED[:1])
def test_a_path_is_a_400_on_collection_items_sortby_and_query_too(http: httpx.Client, name: str, value: Any) -> None:
    text, _ = compare(name, value)
    for response in (
        http.get("/collections/c/items", params={"filter": text}),
        http.get("/search", params={"sortby": name}),
        http.post("/search", json={"query": {name: {"eq": value}}}),
        http.post("/search", json={"filter": {"op": "and", "args": [
            {"op": ">", "args": [{"property": "gsd"}, 0]}, {"op": "=", "args": [{"property": name}, value]}]}}),
    ):
        assert response.status_code == 400, response.text
        assert name in response.json()["description"]


def test_a_dotted_name_no_property_starts_is_unknown_not_an_error(http: httpx.Client) -> None:
    for method in ("GET", "POST"):
        assert ids(search(http, method, text='"no.such.path" = 1')) == []
        assert ids(search(http, method, text='"x.y" = 1')) == []  # x holds numbers: no path can be in it
    assert sorted(ids(search(http, "POST", text="nested IS NOT NULL"))) == ["i0", "i1"]  # the object itself: queryable


def test_pystac_client_sees_the_same(base: str) -> None:
    api = Client.open(base)
    for method in ("GET", "POST"):
        found = api.search(method=method, filter={"op": "=", "args": [{"property": "properties.x"}, 6]},
                           filter_lang="cql2-json")
        assert [i["id"] for i in found.items_as_dicts()] == ["i2"]
        with pytest.raises(APIError, match="nested.deep.x"):
            list(api.search(method=method, filter="nested.deep.x = 1", filter_lang="cql2-text").items_as_dicts())


def test_the_catalog_on_disk_is_what_the_cases_say(base: str) -> None:
    """Guards the cases above: the server holds the four items with these properties."""
    with httpx.Client(base_url=base) as client:
        served = {f["id"]: f["properties"] for f in client.get("/search", params={"limit": 10}).json()["features"]}
    assert {k: {p: v for p, v in props.items() if p != "datetime"} for k, props in served.items()} == PROPERTIES


def test_queryables_say_a_path_into_an_object_or_array_is_refused(http: httpx.Client) -> None:
    """Where a client reads the names (the JSON and its page), the properties holding objects or
    arrays say that a path into them is a 400, as the 400 itself does (filter17 left /queryables
    silent about it); the other properties' schemas are as they were (no description added)."""
    listed = http.get("/queryables").json()["properties"]
    assert listed["nested"]["type"] == "object" and listed["tags"]["type"] == "array"
    assert "nested.member" in listed["nested"]["description"] and "400" in listed["nested"]["description"]
    assert "tags.0" in listed["tags"]["description"] and "400" in listed["tags"]["description"]
    assert "A_CONTAINS" in listed["tags"]["description"]
    for name in ("x", "properties.x", "gsd"):
        assert set(listed[name]) == {"title", "type"}, listed[name]
    for path, name in (("nested.deep.x", "nested"), ("tags.0", "tags")):  # the 400 names the path and /queryables
        body = search(http, "GET", text=f'"{path}" = 1').json()
        assert path in body["description"] and repr(name) in body["description"] and "/queryables" in body["description"]
    page = http.get("/queryables", headers={"Accept": "text/html"}).text
    row = page[page.index("<code>tags</code>"):]
    row = row[:row.index("</tr>")]
    assert "tags.0" in row and "400" in row, row


ORACLE_FILTERS: list[Any] = [
    *({"op": "=", "args": [{"property": name}, value]} for name, value in (
        ("properties.x", 5), ("properties.x", 6), ("properties.x", 7), ("x", 7), ("x", 5),
        ("properties.properties.x", 6), ("properties.gsd", 10), ("gsd", 10))),
    {"op": "isNull", "args": [{"property": "properties.x"}]},
    {"op": "not", "args": [{"op": "isNull", "args": [{"property": "properties.geometry"}]}]},
    {"op": "s_intersects", "args": [{"property": "properties.geometry"}, {"type": "Point", "coordinates": [0, 0]}]},
    {"op": "t_intersects", "args": [{"property": "properties.datetime"}, {"interval": ["2020-01-01T00:00:00Z", ".."]}]},
]


def test_the_oracle_maps_names_as_the_server_does(root: Path, http: httpx.Client) -> None:
    """tests/oracles/records.py states the server's rule (the name as given when some item has
    it, else without `properties.`) over the catalog's items; it dropped the prefix per item,
    so `properties.x` = 5 expected nothing where i0 holds it (it mirrored, not checked)."""
    oracle = Oracle.from_root(root)
    records = item_records(oracle)
    for node in ORACLE_FILTERS:
        expected = [key[1] for key in expected_items(oracle, records, filter=node)]
        assert ids(search(http, "POST", node=node, limit=10)) == expected, node
    for field, direction in (("properties.x", "desc"), ("properties.gsd", "asc"), ("x", "asc")):
        expected = [key[1] for key in expected_items(oracle, records, sortby=[(field, direction == "desc")])]
        assert ids(http.post("/search", json={"sortby": [{"field": field, "direction": direction}], "limit": 10})) == expected
    assert ids(http.post("/search", json={"query": {"properties.x": {"gte": 5}}})) == \
        [key[1] for key in expected_items(oracle, records, query={"properties.x": {"gte": 5}})]
