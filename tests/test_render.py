"""Items are served by appending the API's links to their stored bytes, without parsing them:
the result must be the very document the parse-and-dump path gives, for every item."""

from __future__ import annotations

from typing import Any

import orjson

from server.index import Index
from server.index.builder import IndexBuilder
from server.links import UrlBuilder
from server.routes import render_item

URLS = UrlBuilder("http://example.com/stac")


def as_json(rendered: Any) -> Any:
    return orjson.loads(orjson.dumps(rendered))


def assert_spliced_equals_parsed(index: Index) -> None:
    assert index.links_last
    for pos in range(index.size):
        fast = render_item(URLS, index, pos)
        assert isinstance(fast, orjson.Fragment)
        index.links_last = False  # as an index from before the builder stored links last
        try:
            slow = render_item(URLS, index, pos)
        finally:
            index.links_last = True
        assert as_json(fast) == slow


def test_spliced_items_equal_parsed_items(sample_index: Index) -> None:
    assert_spliced_equals_parsed(sample_index)


def test_links_that_are_missing_or_not_a_list_are_stored_as_an_empty_list() -> None:
    builder = IndexBuilder()
    base = {"type": "Feature", "stac_version": "1.0.0", "geometry": None, "properties": {"datetime": None}}
    builder.add_item({**base, "id": "none"})
    builder.add_item({**base, "id": "string", "links": "not a list"})
    builder.add_item({**base, "id": "own", "links": [{"rel": "license", "href": "http://x/l"}]})
    builder.add_collection({"id": "c d/é", "type": "Collection", "links": []})
    builder.add_item({**base, "id": "a b/é?#", "collection": "c d/é"})
    index = builder.build()
    rendered = {index.ids[p]: as_json(render_item(URLS, index, p)) for p in range(index.size)}
    assert rendered["none"]["links"] == [{"rel": "root", "type": "application/json", "href": "http://example.com/stac/"}]
    assert rendered["string"]["links"] == rendered["none"]["links"]
    assert [link["rel"] for link in rendered["own"]["links"]] == ["license", "root"]
    assert_spliced_equals_parsed(index)
