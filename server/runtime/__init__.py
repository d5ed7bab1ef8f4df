"""The process: the command line (`serve`, `index`), the application factory that joins the
HTTP application to its index, live reloads (in-process swap; builds in a child process),
forked workers sharing one index, and index snapshots.

The top layer: may import every other package (api, catalog, index, query, the base); none
imports it."""
