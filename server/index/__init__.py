"""The in-memory index, immutable once built: item records as compact bytes, columnar fields,
the spatial (box index, polygon grid), temporal and free-text indexes, CQL2 evaluation over the
columns, ordering and paging both ways, aggregations, the stored hrefs of served files
(served.py); Index.search() answers a SearchQuery, Index.aggregate() its aggregations.

May import server.query (the SearchQuery it answers) and the base (server.errors); never
server.api, server.catalog or server.runtime."""

from server.index.builder import IndexBuilder
from server.index.index import Index

__all__ = ["Index", "IndexBuilder"]
