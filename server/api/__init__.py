"""Everything that speaks HTTP: the Starlette application and its routes (thin handlers that
parse a request, ask the index and return a document), the one renderer that writes a document
as JSON or as a page for people (f= / Accept; Jinja2 templates, the map's static files), links
and pagination, the fields extension's shaping, media types, the OpenAPI and conformance
documents, queryables, aggregations, the /_mgmt endpoints and the middleware measuring requests
for /_mgmt/metrics, the roots' own files (/_assets/, --serve-assets), HTTP caching (ETag,
response cache, keyed on the representation), CORS, the
header limit and uvicorn's error answers.

May import server.index, server.query and the base (server.errors, server.settings,
server.metrics); never
server.runtime (processes, reloads) or server.catalog (reading catalogs): what the API serves
from is attached to the application by the runtime (app.state)."""
