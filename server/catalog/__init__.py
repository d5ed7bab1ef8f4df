"""Reading static catalogs into an index: where documents live (local files, http(s) through
libcurl or urllib3, s3: one Source each) and how they are read (STAC JSON, FeatureCollections,
ndjson, stac-geoparquet: one Reader each, formats.py), the walk
over child and item links with its scope rules, version migration, public hrefs (--public-href,
--serve-assets; never a server path), the collections made for items of none, the load report
with every skip's reason, and the fingerprint of the local files read.

May import server.index (to build the index), server.query (datetime parsing) and the base
(server.errors, server.settings); never server.api or server.runtime."""
