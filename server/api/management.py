"""/_mgmt endpoints: liveness, readiness (what is loaded, how the last reload went), reload."""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import Response

from server.api.responses import JSONResponse
from server.errors import NotFoundError, NotReady, StacApiError
from server.index.index import degraded_reason


class Unauthorized(StacApiError):
    """No bearer token given (RFC 6750 3.1: 401 with a WWW-Authenticate challenge, no error code)."""

    status_code = 401


class Forbidden(StacApiError):
    """A bearer token was given, and it is not the admin token."""

    status_code = 403


def _challenge(exc: Unauthorized) -> Response:
    return JSONResponse({"code": exc.code, "description": exc.description}, status_code=exc.status_code,
                        headers={"WWW-Authenticate": "Bearer"})


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def ready(request: Request) -> Response:
    index = request.app.state.index
    reload_status = request.app.state.reloader.describe()
    if index is None:
        error = reload_status["error"]
        raise NotReady("The catalog is still loading" + (f"; last error: {error}" if error else ""))
    # The load's report: catalogs, collections or bulk files that could not be read (their items
    # are missing, "degraded"), items served under another collection than the one they name.
    load = getattr(index, "load_report", None)  # None: a snapshot older than the report
    degraded = degraded_reason(load) is not None
    return JSONResponse(
        {
            "status": "degraded" if degraded else "ready",
            "version": index.version,
            "loaded_at": index.loaded_at,
            "collections": len(index.collections),
            "items": index.size,
            "load": load,
            "last_reload": reload_status,
            # a snapshot served while found stale (its reload pending, retried or given up):
            # serving it is intended, so the status stays; a monitor reads this
            **request.app.state.reloader.staleness(),
        }
    )


async def reload(request: Request) -> Response:
    """POST with `Authorization: Bearer <admin token>`; disabled when no token is set."""
    token = request.app.state.settings.admin_token
    if not token:
        raise NotFoundError("Reload over HTTP is disabled (no admin token configured)")
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return _challenge(Unauthorized("An admin token is required: Authorization: Bearer <token>"))
    if not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise Forbidden("A valid admin token is required")
    status = await request.app.state.reloader.request("admin request")
    body = request.app.state.reloader.describe()
    if status is None:  # a forked worker: the supervisor builds, then every worker swaps
        return JSONResponse({"requested": True, "last_reload": body}, status_code=202)
    if status.ok:
        return JSONResponse(body)
    # The catalog (upstream of this server) could not be loaded; the old index still serves.
    return JSONResponse({"code": "ReloadFailed", "description": f"Reload failed, still serving the previous index: "
                         f"{status.error}", **body}, status_code=502)
