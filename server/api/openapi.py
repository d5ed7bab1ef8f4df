"""The OpenAPI 3.0 description of every endpoint, served at /api."""

from __future__ import annotations

import json
from html import escape
from typing import Any

from server import __version__
from server.api.static_files import FAVICON_PATH, SWAGGER_UI_FILES, SWAGGER_UI_PATH
from server.index.served import ASSETS_PATH, THUMBNAILS_PATH
from server.query.parameters import (
    AGGREGATE,
    CHILDREN,
    COLLECTION_SEARCH,
    ITEM_SEARCH,
    ITEMS,
    PARAMETERS,
    Parameter,
    taken_by,
)

_STR = {"type": "string"}


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


PATH_PARAMS = {
    "collectionId": _param("collectionId", "Collection id, percent-encoded as one path segment ('/' as %2F)", _STR, "path", True),
    "itemId": _param("itemId", "Item id, percent-encoded as one path segment ('/' as %2F)", _STR, "path", True),
    "catalogPath": _param("catalogPath", "A sub-catalog's path: the ids of the catalogs and collections from the "
                          "landing page down to it, each percent-encoded as one segment ('/' in an id as %2F); the "
                          "child links give it", _STR, "path", True),
}


# The representation (server.api.render): not a search parameter, so not in the parameter table.
FORMAT_PARAM = _param("f", "The representation: json, or html (a page for people). Without it, the Accept header "
                      "decides: text/html (or text/*) preferred to JSON gets the page, anything else JSON.",
                      {"type": "string", "enum": ["json", "html"]})


def _search_param(p: Parameter) -> dict[str, Any]:
    return _param(p.name, p.description, p.schema, style="form" if p.form_array else None,
                  explode=False if p.form_array else None)


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


def _ok(media_type: str, description: str, html: bool = False) -> dict[str, Any]:
    content = {media_type: {"schema": _OBJECT}}
    if html:
        content["text/html"] = {"schema": _STR}
    return {"description": description, "content": content}


_HTML_ERROR: dict[str, Any] = {
    "description": "Error: {code, description} as JSON, or a page for a browser",
    "content": {"application/json": _ERROR["content"]["application/json"], "text/html": {"schema": _STR}},  # type: ignore[index]
}


def _get(summary: str, op_id: str, params: list[str], media_type: str = "application/json",
         errors: tuple[str, ...] = ("400",), html: bool = True) -> dict[str, Any]:
    """A GET path; ``html``: it takes f and answers browsers with a page (errors too)."""
    responses = {"200": _ok(media_type, summary, html)}
    error = _HTML_ERROR if html else _ERROR
    responses.update({code: error for code in sorted({*errors, *(["400"] if html else [])})})  # 400: a wrong f
    responses["503"] = error
    return {
        "get": {
            "summary": summary,
            "operationId": op_id,
            "parameters": [{"$ref": f"#/components/parameters/{p}"} for p in [*params, *(["f"] if html else [])]],
            "responses": responses,
        }
    }


def _file(summary: str, op_id: str, media_types: list[str], file_schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A static file; ``file_schema``: what the path's {file} may be (a 404 otherwise)."""
    ok = {"description": summary, "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in media_types}}
    op: dict[str, Any] = {"summary": summary, "operationId": op_id, "tags": ["Files"], "responses": {"200": ok}}
    if file_schema is not None:
        op["parameters"] = [_param("file", "File name", file_schema, "path", True)]
        op["responses"]["404"] = _ERROR
    return {"get": op}


def _served_file() -> dict[str, Any]:
    """/_assets/{root}/{path}: a file of a local root's folder (--serve-assets), whole or by ranges."""
    content = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    headers: dict[str, Any] = {"ETag": {"schema": _STR}, "Last-Modified": {"schema": _STR}, "Accept-Ranges": {"schema": _STR}}
    binary: dict[str, Any] = {"description": "The file", "content": content, "headers": headers}
    return {
        "summary": "A file inside a local root's folder, served with --serve-assets (the hrefs the API writes "
                   "for local assets point here); HTTP byte ranges for GDAL and rasterio",
        "operationId": "getServedFile",
        "tags": ["Files"],
        "parameters": [
            _param("root", "Which local root's folder, numbered in the order of the roots", {"type": "integer", "minimum": 0},
                   "path", True),
            _param("path", "The file's path inside that folder ('/'-separated)", _STR, "path", True),
            _param("Range", "bytes=START-END (RFC 9110); several ranges answer multipart/byteranges", _STR, "header"),
        ],
        "responses": {
            "200": binary,
            "206": {**binary, "description": "The ranges asked for",
                    "headers": {**headers, "Content-Range": {"schema": _STR}}},
            "304": {"description": "Not modified (If-None-Match names the file's ETag)"},
            "403": {**_HTML_ERROR, "description": "A symlink leads out of the folder"},
            "404": {**_HTML_ERROR, "description": "No such file, a dot file, a path with . or .., or files are not served"},
            "416": {**_HTML_ERROR, "description": "The range starts beyond the file",
                    "headers": {"Content-Range": {"schema": _STR}}},
            "503": _HTML_ERROR,
        },
    }


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    """A JSON null for a search member means "not given". (OpenAPI 3.0: an enum must list null too.)"""
    out = {**schema, "nullable": True}
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def search_body(endpoint: str = ITEM_SEARCH, leave_out: tuple[str, ...] = ()) -> dict[str, Any]:
    """The POST /search (or /aggregate) body: each member the parameter table gives a body schema."""
    members = {p.name: _nullable(p.body_schema) if p.body_nullable else p.body_schema
               for p in taken_by(endpoint) if p.body_schema is not None and p.name not in leave_out}
    return {
        "type": "object",
        "properties": members,
        # Both given (not null) is a 400
        "not": {"required": ["bbox", "intersects"],
                "properties": {"bbox": {"type": "array"}, "intersects": {"type": "object"}}},
    }


def openapi_document(server_url: str) -> dict[str, Any]:
    geojson = "application/geo+json"
    def names(endpoint: str) -> list[str]:
        return [p.name for p in taken_by(endpoint)]

    schema = "application/schema+json"
    paths = {
        "/": _get("Landing page", "getLandingPage", [], errors=()),
        "/conformance": _get("Conformance classes", "getConformance", [], errors=()),
        "/api": _get("This OpenAPI document", "getOpenAPI", [], "application/vnd.oai.openapi+json;version=3.0", ()),
        "/api.html": _get("API documentation page", "getOpenAPIHtml", [], "text/html", (), html=False),
        "/collections": _get(
            "Collections, or a collection search", "getCollections", names(COLLECTION_SEARCH),
        ),
        "/queryables": _get("Queryable properties of all items", "getQueryables", [], schema, ()),
        "/collections/{collectionId}/queryables": _get(
            "Queryable properties of a collection's items", "getCollectionQueryables", ["collectionId"], schema, ("404",)
        ),
        "/collections/{collectionId}": _get("One collection", "describeCollection", ["collectionId"], errors=("404",)),
        "/collections/{collectionId}/items": _get(
            "Items of a collection", "getFeatures",
            ["collectionId", *names(ITEMS)], geojson,
            ("400", "404"),
        ),
        "/collections/{collectionId}/items/{itemId}": _get(
            "One item", "getFeature", ["collectionId", "itemId"], geojson, ("404",)
        ),
        "/search": _get("Item search", "getItemSearch", names(ITEM_SEARCH), geojson),
        # The static catalog's own tree (the Children and Browseable extensions)
        "/children": _get("The catalogs and collections the landing page links as children, each as its own URL "
                          "serves it (all by default)", "getChildren", names(CHILDREN)),
        "/catalogs/{catalogPath}": _get("A sub-catalog of the static catalog, its child and item links into this API",
                                        "getCatalog", ["catalogPath"], errors=("404",)),
        "/catalogs/{catalogPath}/children": _get("The catalogs and collections a sub-catalog links as children",
                                                 "getCatalogChildren", ["catalogPath", *names(CHILDREN)],
                                                 errors=("400", "404")),
        "/collections/{collectionId}/children": _get("The catalogs and collections a collection links as children",
                                                     "getCollectionChildren", ["collectionId", *names(CHILDREN)],
                                                     errors=("400", "404")),
        "/_mgmt/health": _get("Liveness: the process answers", "getHealth", [], errors=(), html=False),
        "/_mgmt/ready": _get(
            "Readiness: index version, counts, load time, what the load could not read (status "
            "\"degraded\" when a catalog, collection or bulk file was not) and the last reload's result "
            "(503 until loaded)",
            "getReady", [], errors=(), html=False,
        ),
        "/_mgmt/metrics": _get(
            "Prometheus metrics in the text format: requests, latency, the response cache, the index, loads, "
            "remote fetches (404 when STAC_STATIC_METRICS is false)", "getMetrics", [], "text/plain",
            errors=("404",), html=False,
        ),
        SWAGGER_UI_PATH + "/{file}": _file("Swagger UI's script and style sheet, for /api.html", "getSwaggerUiFile",
                                           sorted({t.split(";")[0] for t in SWAGGER_UI_FILES.values()}),
                                           {"type": "string", "enum": list(SWAGGER_UI_FILES)}),
        FAVICON_PATH: _file("The favicon", "getFavicon", ["image/x-icon"]),
        THUMBNAILS_PATH + "/{file}": _file("A thumbnail of the bundled sample catalog", "getSampleThumbnail", ["image/png"],
                                           {"type": "string", "pattern": r"^[A-Za-z0-9_-]+\.png$"}),
        ASSETS_PATH + "/{root}/{path}": {"get": _served_file()},
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
    # A browser's POST (f=html or Accept) gets the result page too
    paths["/search"]["post"] = {
        "summary": "Item search",
        "operationId": "postItemSearch",
        "parameters": [{"$ref": "#/components/parameters/f"}],
        "requestBody": {"content": {"application/json": {"schema": search_body()}}},
        "responses": {"200": _ok(geojson, "Item search", html=True), "400": _HTML_ERROR, "413": _HTML_ERROR,
                      "415": _HTML_ERROR, "503": _HTML_ERROR},
    }
    # The Aggregation extension (JSON only: no pages, so no f); /collections/{id}/aggregate takes
    # its collection from the path.
    aggregate = names(AGGREGATE)
    paths["/aggregate"] = _get("Aggregations of the items a search matches", "getAggregate", aggregate, html=False)
    paths["/aggregations"] = _get("The aggregations /aggregate computes", "getAggregations", [], errors=(),
                                  html=False)
    paths["/collections/{collectionId}/aggregate"] = _get(
        "Aggregations of a collection's items a search matches", "getCollectionAggregate",
        ["collectionId", *(n for n in aggregate if n != "collections")], errors=("400", "404"), html=False)
    paths["/collections/{collectionId}/aggregations"] = _get(
        "The aggregations a collection's /aggregate computes", "getCollectionAggregations", ["collectionId"],
        errors=("404",), html=False)
    for path, leave_out, op_id in (("/aggregate", (), "postAggregate"),
                                   ("/collections/{collectionId}/aggregate", ("collections",), "postCollectionAggregate")):
        paths[path]["post"] = {
            "summary": paths[path]["get"]["summary"],
            "operationId": op_id,
            "parameters": [{"$ref": "#/components/parameters/collectionId"}] if "{collectionId}" in path else [],
            "requestBody": {"content": {"application/json": {"schema": search_body(AGGREGATE, leave_out)}}},
            "responses": {"200": _ok("application/json", "An AggregationCollection"), "400": _ERROR, "404": _ERROR,
                          "413": _ERROR, "415": _ERROR, "503": _ERROR},
        }
    return {
        "openapi": "3.0.3",
        "info": {"title": "stac-static-api", "version": __version__,
                 "description": "STAC API v1.0.0 over static catalogs"},
        "servers": [{"url": server_url.rstrip("/")}],
        "paths": paths,
        "components": {
            "parameters": {**PATH_PARAMS, **{p.name: _search_param(p) for p in PARAMETERS}, "f": FORMAT_PARAM},
            "securitySchemes": {"adminToken": {"type": "http", "scheme": "bearer",
                                               "description": "The admin token (STAC_STATIC_ADMIN_TOKEN)"}},
        },
    }


def swagger_html(openapi_url: str, base_url: str) -> str:
    """The docs page: Swagger UI from our own origin (server.api.static_files), nothing from elsewhere."""
    api, ui, icon = (escape(u, quote=True) for u in (openapi_url, base_url + SWAGGER_UI_PATH, base_url + FAVICON_PATH))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>stac-static-api</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="{icon}">
<link rel="stylesheet" href="{ui}/swagger-ui.css"></head>
<body><div id="ui"><p>API description: <a href="{api}">{api}</a></p></div>
<script src="{ui}/swagger-ui-bundle.js"></script>
<script>SwaggerUIBundle({{url: {_js_string(openapi_url)}, dom_id: "#ui"}});</script>
</body></html>"""


def _js_string(value: str) -> str:
    """A JavaScript string literal that cannot end the <script> element it is written in."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
