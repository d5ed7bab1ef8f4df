"""Files inside the local roots' folders, served by the API itself (``--serve-assets``).

``/_assets/{root}/{path}``: ``root`` numbers the local roots' folders (``Index.asset_roots``, in
the order the roots were given), ``path`` is the file's path inside it; the loader writes these
hrefs for local assets and links (server/catalog/public.py). Starlette's FileResponse answers
them: byte ranges (one, or several as multipart/byteranges: 206), If-Range, an ETag and
Last-Modified from the file's size and mtime, HEAD; so GDAL and rasterio read a COG through
it window by window. Refused: a path with an empty, ``.`` or ``..`` segment or any dot file
(404), one a symlink leads out of the folder (403), anything but a regular file (404).
"""

from __future__ import annotations

import os
import stat

from starlette.requests import Request
from starlette.responses import FileResponse, MalformedRangeHeader, RangeNotSatisfiable, Response
from starlette.routing import Route

from server.api import paths, render
from server.errors import NotFoundError, NotReady, StacApiError
from server.index.served import ASSETS_PATH


class OutsideRoots(StacApiError):
    """A symlink inside a served folder leads out of it."""

    status_code = 403


class AssetFile(FileResponse):
    """Starlette's FileResponse, with a malformed Range header ignored (the whole file, 200) as
    RFC 9110 14.2 lets a server do, instead of its plain-text 400."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        try:
            return super()._parse_range_header(http_range, file_size)
        except MalformedRangeHeader:
            return []


def _file(request: Request) -> tuple[str, os.stat_result]:
    """The served file the request names and its stat, or the error saying why not."""
    index = paths.pinned_index(request.scope)
    if index is None:
        raise NotReady("The catalog is still loading")
    number: int = request.path_params["root"]
    relative: str = request.path_params["path"]
    if not index.asset_roots or number >= len(index.asset_roots):
        raise NotFoundError(f"No served folder {number}" if index.asset_roots else "No files are served (--serve-assets is off)")
    parts = relative.split("/")
    if any(not part or part.startswith(".") for part in parts) or "\\" in relative or "\0" in relative:
        raise NotFoundError(f"No file {relative!r}")
    folder = index.asset_roots[number]
    real = os.path.realpath(os.path.join(folder, *parts))
    if not real.startswith(os.path.join(folder, "")):
        raise OutsideRoots(f"{relative!r} leads out of the served folder")
    try:
        found = os.stat(real)
    except OSError:
        raise NotFoundError(f"No file {relative!r}") from None
    if not stat.S_ISREG(found.st_mode):
        raise NotFoundError(f"No file {relative!r}")
    return real, found


async def asset_file(request: Request) -> Response:
    path, found = _file(request)
    cache_control = f"public, max-age={request.app.state.settings.cache_max_age}"
    response = AssetFile(path, stat_result=found, headers={"Cache-Control": cache_control})
    etag = response.headers["etag"]
    if etag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    asked = request.headers.get("range")
    if asked is not None and "if-range" not in request.headers:  # else FileResponse decides
        try:
            AssetFile._parse_range_header(asked, found.st_size)
        except RangeNotSatisfiable:
            error = render.error(request, 416, "RangeNotSatisfiable",
                                 f"Range {asked!r} starts beyond the file's {found.st_size} bytes")
            error.headers["Content-Range"] = f"bytes */{found.st_size}"
            return error
    return response


def asset_routes() -> list[Route]:
    return [Route(ASSETS_PATH + "/{root:int}/{path:path}", asset_file, methods=["GET", "HEAD"])]
