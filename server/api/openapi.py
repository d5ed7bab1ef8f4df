"""The OpenAPI 3.0 description of every endpoint, served at /api."""

from __future__ import annotations

from typing import Any

from server import __version__
from server.query.cql2 import CRS84
from server.query.extensions import FIELDS_MEMBERS, MAX_SORT_FIELDS, QUERY_OPS
from server.query.parse import GEOMETRY_TYPES

_STR = {"type": "string"}


def _bbox(*lengths: int) -> dict[str, Any]:
    """What parse_bbox takes: 4 or 6 numbers (OpenAPI 3.0 cannot say which is a longitude)."""
    return {"type": "array", "items": {"type": "number"},
            "oneOf": [{"minItems": n, "maxItems": n} for n in lengths]}


# What parse_filter takes; "" (and null in a POST body) is as absent too.
FILTER_LANGS = ["cql2-text", "cql2-json"]
FILTER_CRS = sorted(CRS84)


def _param(name: str, description: str, schema: dict[str, Any], where: str = "query", required: bool = False,
           style: str | None = None, explode: bool | None = None) -> dict[str, Any]:
    p: dict[str, Any] = {"name": name, "in": where, "description": description, "required": required, "schema": schema}
    if where == "query":
        p["allowEmptyValue"] = True  # every query parameter given empty (`bbox=`) is as absent
    if style:
        p["style"] = style
    if explode is not None:
        p["explode"] = explode
    return p


PARAMS = {
    "collectionId": _param("collectionId", "Collection id", _STR, "path", True),
    "itemId": _param("itemId", "Item id", _STR, "path", True),
    "bbox": _param(
        "bbox", "minx,miny,maxx,maxy (or 6 numbers with elevations); minx > maxx crosses the antimeridian",
        _bbox(4, 6), style="form", explode=False,
    ),
    "datetime": _param("datetime", "RFC 3339 instant or interval (start/end, '..' or empty for open ends)", _STR),
    "limit": _param("limit", "Page size (clamped to the server maximum)", {"type": "integer", "minimum": 1, "default": 10}),
    # Text, not an array of strings: any text is a list of one or more ids, which is what the server
    # reads (an array schema would have tools take `ids=1` for a mistyped array).
    "ids": _param("ids", "Comma-separated item ids (or the parameter repeated)", _STR),
    "collections": _param("collections", "Comma-separated collection ids (or the parameter repeated)", _STR),
    "intersects": _param("intersects", "A GeoJSON geometry as JSON text", _STR),
    "token": _param("token", "Opaque page token from a next link", _STR),
    "q": _param("q", "Free text: comma-separated terms (OR); advanced syntax with AND, OR, NOT, +, -, "
                "parentheses and quoted phrases", _STR),
    "filter": _param("filter", "CQL2 filter (text, or JSON with filter-lang=cql2-json)", _STR),
    "filter-lang": _param("filter-lang", "Filter encoding", {"type": "string", "enum": FILTER_LANGS}),
    "filter-crs": _param("filter-crs", "CRS of geometries in the filter: CRS84 only",
                         {"type": "string", "enum": FILTER_CRS}),
    "sortby": _param("sortby", "Comma-separated fields, + ascending (default) or - descending", _STR),
    "fields": _param("fields", "Comma-separated fields to include, - prefix to exclude", _STR),
    "query": _param("query", "Legacy query extension as JSON text", _STR),
}

_ERROR = {
    "description": "Error",
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["code", "description"],
                "properties": {"code": _STR, "description": _STR},
            }
        }
    },
}
_OBJECT = {"type": "object"}
_UNAUTHORIZED = {
    **_ERROR,
    "description": "No bearer token given",
    "headers": {"WWW-Authenticate": {"description": "Bearer (RFC 6750)", "schema": _STR}},
}


def _ok(media_type: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": _OBJECT}}}


def _get(summary: str, op_id: str, params: list[str], media_type: str = "application/json",
         errors: tuple[str, ...] = ("400",)) -> dict[str, Any]:
    responses = {"200": _ok(media_type, summary)}
    responses.update({code: _ERROR for code in errors})
    responses["503"] = _ERROR
    return {
        "get": {
            "summary": summary,
            "operationId": op_id,
            "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in params],
            "responses": responses,
        }
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON null for a search member means "not given". (OpenAPI 3.0: an enum must list null too.)"""
    out = {**schema, "nullable": True}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


_STRINGS = {"type": "array", "items": _STR}
# The legacy query extension: {property: {op: operand}}
_SCALAR = {"not": {"anyOf": [{"type": "object"}, {"type": "array"}]}}
_QUERY_OPERANDS = {"startsWith": _STR, "endsWith": _STR, "contains": _STR, "in": {"type": "array", "minItems": 1}}
SEARCH_BODY = {
    "type": "object",
    "properties": {
        "bbox": _nullable(_bbox(4, 6)),
        "intersects": _nullable({
            "type": "object", "description": "GeoJSON geometry", "required": ["type"],
            "properties": {"type": {"type": "string", "enum": sorted(GEOMETRY_TYPES)}},
        }),
        "datetime": _nullable(_STR),
        # Also a comma list, as on GET: clients send that too
        "ids": _nullable({"oneOf": [_STRINGS, _STR]}),
        "collections": _nullable({"oneOf": [_STRINGS, _STR]}),
        "limit": _nullable({"type": "integer", "minimum": 1}),
        "token": _nullable(_STR),
        "q": _nullable({"oneOf": [_STR, _STRINGS]}),
        # CQL2 text, CQL2 JSON, or the CQL2 JSON literals true and false
        "filter": _nullable({"oneOf": [_STR, {"type": "object"}, {"type": "boolean"}]}),
        "filter-lang": _nullable({"type": "string", "enum": [*FILTER_LANGS, ""]}),
        "filter-crs": _nullable({"type": "string", "enum": [*FILTER_CRS, ""]}),
        "sortby": _nullable({
            "type": "array",
            "maxItems": MAX_SORT_FIELDS,
            "items": {
                "type": "object",
                "required": ["field"],
                "properties": {
                    "field": _STR,
                    "direction": {"type": "string", "description": "asc or desc, in any case",
                                  "pattern": "^([aA][sS][cC]|[dD][eE][sS][cC])$"},
                },
            },
        }),
        # Not nullable: a null fields is a 400 (give an object, or leave it out).
        "fields": {
            "type": "object",
            "properties": {name: _nullable(_STRINGS) for name in FIELDS_MEMBERS},
            "additionalProperties": False,
        },
        "query": _nullable({"type": "object", "additionalProperties": {
            "type": "object", "minProperties": 1, "additionalProperties": False,
            "properties": {op: _QUERY_OPERANDS.get(op, _SCALAR) for op in sorted(QUERY_OPS)},
        }}),
    },
    # Both given (not null) is a 400
    "not": {"required": ["bbox", "intersects"], "properties": {"bbox": {"type": "array"}, "intersects": {"type": "object"}}},
}


def openapi_document(server_url: str) -> dict[str, Any]:
    geojson = "application/geo+json"
    extensions = ["q", "filter", "filter-lang", "filter-crs", "sortby", "fields"]
    search_params = ["bbox", "intersects", "datetime", "ids", "collections", "limit", "token", *extensions, "query"]
    schema = "application/schema+json"
    paths = {
        "/": _get("Landing page", "getLandingPage", [], errors=()),
        "/conformance": _get("Conformance classes", "getConformance", [], errors=()),
        "/api": _get("This OpenAPI document", "getOpenAPI", [], "application/vnd.oai.openapi+json;version=3.0", ()),
        "/api.html": _get("API documentation page", "getOpenAPIHtml", [], "text/html", ()),
        "/collections": _get(
            "Collections, or a collection search", "getCollections",
            ["bbox", "datetime", "limit", "token", *extensions],
        ),
        "/queryables": _get("Queryable properties of all items", "getQueryables", [], schema, ()),
        "/collections/{collectionId}/queryables": _get(
            "Queryable properties of a collection's items", "getCollectionQueryables", ["collectionId"], schema, ("404",)
        ),
        "/collections/{collectionId}": _get("One collection", "describeCollection", ["collectionId"], errors=("404",)),
        "/collections/{collectionId}/items": _get(
            "Items of a collection", "getFeatures",
            ["collectionId", "bbox", "datetime", "limit", "token", *extensions, "query"], geojson,
            ("400", "404"),
        ),
        "/collections/{collectionId}/items/{itemId}": _get(
            "One item", "getFeature", ["collectionId", "itemId"], geojson, ("404",)
        ),
        "/search": _get("Item search", "getItemSearch", search_params, geojson),
        "/_mgmt/health": _get("Liveness: the process answers", "getHealth", [], errors=()),
        "/_mgmt/ready": _get(
            "Readiness: index version, counts, load time and the last reload's result (503 until loaded)",
            "getReady", [], errors=(),
        ),
        "/_mgmt/reload": {
            "post": {
                "summary": "Reload the catalogs now (Authorization: Bearer <admin token>); the old index "
                "keeps serving if the reload fails",
                "operationId": "postReload",
                "responses": {"200": _ok("application/json", "Reloaded"),
                              "202": _ok("application/json", "Requested from the supervisor of forked workers, "
                                         "which builds once and has every worker map the result"),
                              "401": _UNAUTHORIZED, "403": {**_ERROR, "description": "Not the admin token"},
                              "404": {**_ERROR, "description": "Reload over HTTP is off: no admin token is set"},
                              "502": _ERROR},
                "security": [{"adminToken": []}],
            }
        },
    }
    paths["/search"]["post"] = {
        "summary": "Item search",
        "operationId": "postItemSearch",
        "requestBody": {"content": {"application/json": {"schema": SEARCH_BODY}}},
        "responses": {"200": _ok(geojson, "Item search"), "400": _ERROR, "413": _ERROR, "415": _ERROR, "503": _ERROR},
    }
    return {
        "openapi": "3.0.3",
        "info": {"title": "stac-static-api", "version": __version__,
                 "description": "STAC API v1.0.0 over static catalogs"},
        "servers": [{"url": server_url.rstrip("/")}],
        "paths": paths,
        "components": {
            "parameters": PARAMS,
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "The admin token (STAC_STATIC_ADMIN_TOKEN)"}},
        },
    }


def swagger_html(openapi_url: str) -> str:
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>stac-static-api</title>
<link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css"></head>
<body><div id="ui"><p>API description: <a href="{openapi_url}">{openapi_url}</a></p></div>
<script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: "{openapi_url}", dom_id: "#ui"}});</script>
</body></html>"""
