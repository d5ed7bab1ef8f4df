"""The in-memory index: compact item records, columnar fields, spatial/temporal lookups."""

from server.index.builder import IndexBuilder
from server.index.index import Index

__all__ = ["Index", "IndexBuilder"]
