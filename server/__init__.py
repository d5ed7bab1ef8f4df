"""stac-static-api: serve static STAC catalogs as a STAC API from an in-memory index."""

__version__ = "0.1.0"
