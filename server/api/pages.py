"""Pages for people: a Document rendered with the Jinja2 templates in server/api/templates."""

from __future__ import annotations

from pathlib import Path

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from server.api.documents import Document

TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


async def page(request: Request, doc: Document) -> Response:
    text = orjson.dumps(doc.plain(), option=orjson.OPT_INDENT_2).decode()
    return TEMPLATES.TemplateResponse(request, "generic.html", {"kind": doc.kind, "text": text}, status_code=doc.status)


def error_page(request: Request, status: int, code: str, description: str) -> Response:
    context = {"status": status, "code": code, "description": description}
    return TEMPLATES.TemplateResponse(request, "error.html", context, status_code=status)
