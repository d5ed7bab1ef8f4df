"""Request input to typed values: the search parameters (GET strings or a POST body) parsed into
a SearchQuery, with CQL2 (text and JSON), datetime intervals, free text, sortby, fields and the
legacy query extension; every malformed input is an InvalidQueryParameter that says why.

The bottom of the layers above the base: may import only server.errors and server.settings."""
