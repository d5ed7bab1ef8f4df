"""Reading static catalogs (local or remote) into an index."""
