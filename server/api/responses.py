"""JSON responses serialized with orjson, in the media types STAC clients expect."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

from server.api.links import GEOJSON, JSON, OPENAPI
from server.index import exact_json


class JSONResponse(Response):
    media_type = JSON

    def render(self, content: Any) -> bytes:
        try:
            return orjson.dumps(content)
        except orjson.JSONEncodeError:  # a catalog's integer beyond 64 bits: written exactly
            return exact_json.dumps(content)


class GeoJSONResponse(JSONResponse):
    media_type = GEOJSON


class OpenAPIResponse(JSONResponse):
    media_type = OPENAPI


class SchemaResponse(JSONResponse):
    media_type = "application/schema+json"
