"""Files inside the local roots' folders, served by the API itself (``--serve-assets``).

``/_assets/{root}/{path}``: ``root`` numbers the local roots' folders (``Index.asset_roots``, in
the order the roots were given), ``path`` is the file's path inside it; the loader writes these
hrefs for local assets and links (server/catalog/public.py). Starlette's FileResponse answers
them: byte ranges (one, or several as multipart/byteranges: 206), If-Range, an ETag and
Last-Modified from the file's size and mtime, HEAD; so GDAL and rasterio read a COG through
it window by window. Ranges are read as RFC 9110 14.1 writes them (AssetFile). Refused: a path
with an empty, ``.`` or ``..`` segment or any dot file, also behind a symlink (404), one a
symlink leads out of the folder (403), anything but a regular file (404). A file rewritten in
place while it is sent ends its answer short (the connection closes), with a warning logged.
"""

from __future__ import annotations

import logging
import os
import re
import stat

from starlette.requests import Request
from starlette.responses import FileResponse, RangeNotSatisfiable, Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from server.api import paths, render
from server.api.static_files import names_etag
from server.errors import NotFoundError, NotReady, StacApiError
from server.index.served import ASSETS_PATH

log = logging.getLogger("stac_static_api")


class OutsideRoots(StacApiError):
    """A symlink inside a served folder leads out of it."""

    status_code = 403


# One range-spec (RFC 9110 14.1.1): first-pos "-" [last-pos], or "-" suffix-length; ASCII digits only.
_RANGE_SPEC = re.compile(r"[ \t]*([0-9]*)[ \t]*-[ \t]*([0-9]*)[ \t]*")
_HUGE = 1 << 62  # a number of more digits than any file's size has


def _number(digits: str) -> int:
    digits = digits.lstrip("0") or "0"
    return int(digits) if len(digits) < 19 else _HUGE  # int() refuses over 4300 digits


class AssetFile(FileResponse):
    """Starlette's FileResponse, with ranges read as RFC 9110 14.1 and 14.2 write them: a
    malformed Range header, or one of over ``max_ranges`` ranges, is ignored (the whole file,
    200) instead of Starlette's plain-text 400; unsatisfiable ranges are dropped, and only when
    none is left is it a 416 (Starlette: when any is); numbers are digits (not ``+1``, ``1_0``),
    of any length. And a file that changes while it is sent ends the answer short with a
    warning, not a traceback."""

    @classmethod
    def _parse_range_header(cls, http_range: str, file_size: int) -> list[tuple[int, int]]:
        unit, equals, specs = http_range.partition("=")
        parts = [part for part in specs.split(",") if part.strip()]  # empty list elements are allowed
        if unit.strip().lower() != "bytes" or not equals or not parts or len(parts) > cls.max_ranges:
            return []
        ranges: list[tuple[int, int]] = []
        for part in parts:
            spec = _RANGE_SPEC.fullmatch(part)
            if spec is None or not spec[2] and not spec[1]:
                return []
            if not spec[1]:  # the last N bytes
                start, end = max(file_size - _number(spec[2]), 0), file_size
            else:
                start, end = _number(spec[1]), file_size
                if spec[2]:
                    last = _number(spec[2])
                    if last < start:
                        return []  # invalid: the header is ignored
                    end = min(last + 1, file_size)
            if start < end:  # satisfiable
                ranges.append((start, end))
        if not ranges:
            raise RangeNotSatisfiable(file_size)
        ranges.sort()
        merged = [ranges[0]]
        for start, end in ranges[1:]:
            if start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return merged

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except (OSError, RuntimeError) as exc:  # uvicorn's "shorter/longer than Content-Length", Starlette's
            if not _changed(str(self.path), self.stat_result):
                raise
            log.warning("%s changed while it was served (%s): its answer ended short", self.path, exc)


def _changed(path: str, served: os.stat_result | None) -> bool:
    try:
        now = os.stat(path)
    except OSError:
        return True
    return served is None or (now.st_ino, now.st_size, now.st_mtime_ns) != (served.st_ino, served.st_size,
                                                                            served.st_mtime_ns)


def _file(request: Request) -> tuple[str, os.stat_result]:
    """The served file the request names and its stat, or the error saying why not."""
    index = paths.pinned_index(request.scope)
    if index is None:
        raise NotReady("The catalog is still loading")
    root: str = request.path_params["root"]
    relative: str = request.path_params["path"]
    if not index.asset_roots:
        raise NotFoundError("No files are served (--serve-assets is off)")
    # matched as text: Starlette's int convertor fails (a 500) on a number of over 4300 digits
    number = int(root) if root.isascii() and root.isdigit() and len(root) < 10 else len(index.asset_roots)
    if number >= len(index.asset_roots):
        raise NotFoundError(f"No served folder {root[:40]!r}")
    parts = relative.split("/")
    if any(not part or part.startswith(".") for part in parts) or "\\" in relative or "\0" in relative:
        raise NotFoundError(f"No file {relative!r}")
    folder = os.path.join(index.asset_roots[number], "")  # with its separator ("/" has one already)
    real = os.path.realpath(os.path.join(folder, *parts))
    if not real.startswith(folder):
        raise OutsideRoots(f"{relative!r} leads out of the served folder")
    if any(part.startswith(".") for part in real[len(folder):].split(os.sep)):  # a symlink to a dot file
        raise NotFoundError(f"No file {relative!r}")
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
    if names_etag(request.headers.get("if-none-match", ""), etag):
        return Response(status_code=304, headers={"ETag": etag, "Cache-Control": cache_control})
    asked = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if asked is not None and (if_range is None or response._should_use_range(if_range)):  # else: the whole file
        try:
            AssetFile._parse_range_header(asked, found.st_size)
        except RangeNotSatisfiable:
            error = render.error(request, 416, "RangeNotSatisfiable",
                                 f"No range of {asked[:200]!r} is inside the file's {found.st_size} bytes")
            error.headers["Content-Range"] = f"bytes */{found.st_size}"
            return error
    return response


def asset_routes() -> list[Route]:
    return [Route(ASSETS_PATH + "/{root}/{path:path}", asset_file, methods=["GET", "HEAD"])]
