"""Parsing request parameters into a SearchQuery."""
