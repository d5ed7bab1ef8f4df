"""Files served from our own origin, so the pages work air-gapped: Swagger UI's script and
style sheet for /api.html (from the swagger-ui-py package's static folder, never a CDN), the
favicon, and the bundled sample catalog's thumbnails.

Only the files named here are served, each with its media type and a one-day Cache-Control;
the response cache (server.api.caching) leaves these paths alone: they do not change with the
index, and their ETag is the file's own."""

from __future__ import annotations

import importlib.util
import os
import struct
from pathlib import Path

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from server.index.served import THUMBNAILS_PATH
from server.sample import SAMPLE_THUMBNAILS
from server.sample.make_sample import png

SWAGGER_UI_PATH = "/static/swagger-ui"
FAVICON_PATH = "/favicon.ico"
# The prefixes the response cache skips (server.api.caching.UNCACHED_PREFIXES).
STATIC_PREFIXES = ("/static/", FAVICON_PATH, THUMBNAILS_PATH + "/")
CACHE_CONTROL = "public, max-age=86400"

# What /api.html loads, with the media type each is served as.
SWAGGER_UI_FILES = {"swagger-ui.css": "text/css; charset=utf-8",
                    "swagger-ui-bundle.js": "text/javascript; charset=utf-8"}


def _swagger_ui_dir() -> Path:
    """swagger-ui-py's static folder, found without importing the package (which imports jinja2
    for its framework handlers we do not use)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("swagger-ui-py is not installed (a dependency of stac-static-api)")
    return Path(next(iter(spec.submodule_search_locations))) / "static"


SWAGGER_UI_DIR = _swagger_ui_dir()


def names_etag(if_none_match: str, etag: str, star: bool = True) -> bool:
    """Whether an If-None-Match header names ``etag`` (or, with ``star``, is "*": any current
    representation, for a caller that knows one exists), by the weak comparison it calls for
    (RFC 9110 §13.1.2): W/"x" and "x" are one tag. qa16: the strong form of a weak tag (a proxy
    dropped the W/), or the weak form of a file's strong one (nginx's gzip makes them so), got
    the whole body again."""
    def opaque(tag: str) -> str:
        return tag[2:] if tag.startswith("W/") else tag

    wanted = opaque(etag)
    return any(star and tag == "*" or opaque(tag) == wanted for tag in (t.strip() for t in if_none_match.split(",")))


def _file(request: Request, path: Path, media_type: str) -> Response:
    """The file, or 304 when the client's If-None-Match names its ETag (size and mtime)."""
    try:
        stat = os.stat(path)
    except OSError:
        raise HTTPException(404, f"No file {request.url.path}") from None
    response = FileResponse(path, media_type=media_type, stat_result=stat, headers={"Cache-Control": CACHE_CONTROL})
    etag = response.headers["etag"]
    if names_etag(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": CACHE_CONTROL})
    return response


async def swagger_ui_file(request: Request) -> Response:
    name = request.path_params["file"]
    if name not in SWAGGER_UI_FILES:
        raise HTTPException(404, f"No file {request.url.path}")
    return _file(request, SWAGGER_UI_DIR / name, SWAGGER_UI_FILES[name])


async def sample_thumbnail(request: Request) -> Response:
    name = request.path_params["file"]
    # A plain file name of the sample's thumbnails folder: no "/" (the route's pattern), no dot files.
    if not name.endswith(".png") or name.startswith("."):
        raise HTTPException(404, f"No file {request.url.path}")
    return _file(request, SAMPLE_THUMBNAILS / name, "image/png")


# -- the favicon: a 32 x 32 globe (a disc with a meridian and parallel grid), drawn once -------


def _globe(size: int = 32, samples: int = 4) -> bytes:
    """RGBA pixels: a blue disc, white grid lines (3 meridians, the outer two elliptic arcs; 3 parallels),
    a dark rim; anti-aliased by averaging samples x samples points per pixel."""
    ocean, line, rim = (35, 110, 190), (235, 245, 255), (20, 60, 110)
    r = size / 2 - 1
    c = size / 2
    out = bytearray()
    for py in range(size):
        for px in range(size):
            acc = [0.0, 0.0, 0.0, 0.0]
            for sy in range(samples):
                for sx in range(samples):
                    x = (px + (sx + 0.5) / samples - c) / r
                    y = (py + (sy + 0.5) / samples - c) / r
                    d = (x * x + y * y) ** 0.5
                    if d > 1:
                        continue
                    if d > 0.9:
                        rgb = rim
                    elif (abs(x) < 0.07 or abs(abs(x) - 0.55 * (1 - y * y) ** 0.5) < 0.07
                          or abs(y) < 0.07 or abs(abs(y) - 0.5) < 0.07):
                        rgb = line
                    else:
                        rgb = ocean
                    acc[0] += rgb[0]
                    acc[1] += rgb[1]
                    acc[2] += rgb[2]
                    acc[3] += 255
            covered = acc[3] / 255  # sample points inside the disc
            if covered == 0:
                out += b"\x00\x00\x00\x00"
            else:
                out += bytes((round(acc[0] / covered), round(acc[1] / covered), round(acc[2] / covered),
                              round(acc[3] / (samples * samples))))
    return bytes(out)


def _ico(image: bytes, size: int) -> bytes:
    """An ICO file holding one PNG image (every current browser reads PNG-in-ICO)."""
    header = struct.pack("<HHH", 0, 1, 1)
    entry = struct.pack("<BBBBHHII", size % 256, size % 256, 0, 0, 1, 32, len(image), 6 + 16)
    return header + entry + image


FAVICON = _ico(png(32, 32, _globe(32), channels=4), 32)


async def favicon(request: Request) -> Response:
    return Response(FAVICON, media_type="image/x-icon", headers={"Cache-Control": CACHE_CONTROL})


def static_routes() -> list[Route]:
    return [
        Route(SWAGGER_UI_PATH + "/{file}", swagger_ui_file, methods=["GET"]),
        Route(FAVICON_PATH, favicon, methods=["GET"]),
        Route(THUMBNAILS_PATH + "/{file}", sample_thumbnail, methods=["GET"]),
    ]
