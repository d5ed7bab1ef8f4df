"""The OpenAPI document (/api) and the server agree on the structure of search input: a value the
document allows is served, a value it forbids is a 400, never a 500. schemathesis
(test_schemathesis.py) fuzzes the same, but cannot check the first half on the search operations
(their query languages are beyond JSON Schema): these cases pin it for the parameters' structure."""

from __future__ import annotations

from typing import Any

import pytest

from server.query.cql2 import CRS84

jsonschema = pytest.importorskip("jsonschema", reason="jsonschema comes with schemathesis, in the test extra")

POINT = {"type": "Point", "coordinates": [5.0, 52.0]}
CRS = sorted(CRS84)


def _json_schema(schema: Any) -> Any:
    """OpenAPI 3.0's `nullable` as JSON Schema: null is allowed too, unless an enum leaves it out
    (OpenAPI 3.0.3; schemathesis reads it so)."""
    if isinstance(schema, list):
        return [_json_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _json_schema(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") and None in schema.get("enum", [None]):
        return {"anyOf": [out, {"type": "null"}]}
    return out


@pytest.fixture(scope="module")
def document(client) -> dict[str, Any]:
    return client.get("/api").json()


def _allows(schema: dict[str, Any], value: Any) -> bool:
    return jsonschema.Draft4Validator(_json_schema(schema)).is_valid(value)


# (query parameter, its text, the value the document's schema sees, served?)
GET_CASES = [
    ("bbox", "0,50,6,53", [0, 50, 6, 53], True),
    ("bbox", "0,50,-100,6,53,100", [0, 50, -100, 6, 53, 100], True),
    ("bbox", "0,50,6,53,1", [0, 50, 6, 53, 1], False),
    ("bbox", "0,50,6", [0, 50, 6], False),
    ("filter-crs", CRS[0], CRS[0], True),
    ("filter-crs", CRS[1], CRS[1], True),
    ("filter-crs", "o", "o", False),
    ("filter-crs", "EPSG:4326", "EPSG:4326", False),
    ("filter-lang", "cql2-text", "cql2-text", True),
    ("filter-lang", "cql2", "cql2", False),
]


@pytest.mark.parametrize("name,text,value,served", GET_CASES, ids=[f"{c[0]}={c[1]}" for c in GET_CASES])
@pytest.mark.parametrize("path", ["/search", "/collections/sentinel-2-l2a-nl/items", "/collections"])
def test_get_parameters(client, document, path: str, name: str, text: str, value: Any, served: bool) -> None:
    schema = document["components"]["parameters"][name]["schema"]
    assert _allows(schema, value) is served
    response = client.get(path, params={name: text})
    assert response.status_code == (200 if served else 400), response.text


def test_every_query_parameter_may_be_empty(client, document) -> None:
    """`bbox=` and the like are as absent: the document says so with allowEmptyValue."""
    for name, param in document["components"]["parameters"].items():
        if param["in"] == "query":
            assert param["allowEmptyValue"] is True, name
            assert client.get("/search", params={name: ""}).status_code == 200, name


# (POST /search body, served?)
POST_CASES = [
    ({"bbox": [0, 50, 6, 53]}, True),
    ({"bbox": [0, 50, 6, 53, 1]}, False),
    ({"bbox": [0, 50, 6, 53], "intersects": POINT}, False),
    ({"bbox": None, "intersects": POINT}, True),
    ({"intersects": {"type": []}}, False),  # was a 500: an unhashable geometry type
    ({"intersects": {"type": {"a": 1}}}, False),
    ({"ids": ["a", "b"]}, True),
    ({"ids": "a,b"}, True),  # GET's comma list: clients send it (test_api)
    ({"ids": [1]}, False),
    ({"collections": "sentinel-2-l2a-nl"}, True),
    ({"fields": {"include": ["id"], "exclude": ["assets"]}}, True),
    ({"fields": {"include": None}}, True),
    ({"fields": {}}, True),
    ({"fields": {"includes": ["id"]}}, False),  # a misspelt member was ignored: the whole items came back
    ({"fields": {"include": [1]}}, False),
    ({"fields": None}, False),
    ({"filter-lang": None}, True),
    ({"filter-lang": ""}, True),
    ({"filter-lang": "cql2-json", "filter": {"op": "=", "args": [{"property": "id"}, "x"]}}, True),
    ({"filter-lang": "cql2"}, False),
    ({"filter-crs": None}, True),
    ({"filter-crs": CRS[0]}, True),
    ({"filter-crs": "o"}, False),
    ({"filter": True}, True),
    ({"filter": 1}, False),
    ({"sortby": [{"field": "id", "direction": "DESC"}]}, True),
    ({"sortby": [{"field": "id", "direction": None}]}, False),
    ({"sortby": [{"field": "id"}] * 8}, True),
    ({"sortby": [{"field": "id"}] * 9}, False),
    ({"query": {"gsd": {"lt": 20}}}, True),
    ({"query": {"gsd": {"in": [10, 20]}}}, True),
    ({"query": {"gsd": {"foo": 20}}}, False),
    ({"query": {"gsd": {}}}, False),
    ({"query": {"gsd": 20}}, False),
    ({"query": {"gsd": {"in": []}}}, False),
    ({"query": {"title": {"startsWith": 5}}}, False),
    ({"limit": None, "token": None, "datetime": None, "q": None, "filter": None}, True),
]


@pytest.mark.parametrize("body,served", POST_CASES, ids=[repr(c[0])[:60] for c in POST_CASES])
def test_post_search_body(client, document, body: dict[str, Any], served: bool) -> None:
    schema = document["paths"]["/search"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert _allows(schema, body) is served
    response = client.post("/search", json=body)
    assert response.status_code == (200 if served else 400), response.text


def test_get_intersects_with_an_unhashable_type_is_a_400(client) -> None:
    response = client.get("/search", params={"intersects": '{"type": [], "coordinates": [0, 0]}'})
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "InvalidQueryParameter"


def test_only_search_members_are_nullable(document) -> None:
    """Marking the search body's members nullable once also made every plain string in the
    document nullable (path parameters, error codes): they shared one schema object."""
    assert "nullable" not in document["components"]["parameters"]["collectionId"]["schema"]
    error = document["paths"]["/"]["get"]["responses"]["503"]["content"]["application/json"]["schema"]
    assert all("nullable" not in s for s in error["properties"].values())
