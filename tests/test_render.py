"""Items are served by appending the API's links to their stored bytes, without parsing them:
the result must be the very document the parse-and-dump path gives, for every item."""

from __future__ import annotations

from typing import Any

import orjson

from server.api.documents import Features, render_item
from server.api.links import UrlBuilder
from server.index import Index
from server.index.builder import IndexBuilder

URLS = UrlBuilder("http://example.com/stac")


def as_json(rendered: Any) -> Any:
    return orjson.loads(orjson.dumps(rendered))


def assert_spliced_equals_parsed(index: Index) -> None:
    assert index.links_last
    # a page's items, their columns read at once, are the items one by one
    page = Features(URLS, index, list(range(index.size))[::-1]).as_json()
    assert [as_json(f) for f in page] == [as_json(render_item(URLS, index, p)) for p in range(index.size)][::-1]
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


def test_quote_segment_is_quote_for_any_string() -> None:
    import random
    from urllib.parse import quote

    from server.api.links import quote_segment

    rng = random.Random(7)
    alphabet = "aZ09_.~-/ ?#%&=+:é\u00a0\u4e2d\x00'\"\\"
    samples = ["", "S2A_MSIL2A_20200101T10", "a.b~c-d_e", "a b", "../x", "é", "%41"]
    samples += ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(2000)]
    for value in samples:
        expected = value.replace(".", "%2E") if value in (".", "..") else quote(value, safe="")
        assert quote_segment(value) == expected, value


def test_dot_segment_ids_get_links_a_client_can_follow(make_client) -> None:
    """Found by QA: an item or collection id "." or ".." was written into links as it is, and
    clients (curl, requests, browsers) resolve such segments away instead of sending them."""
    builder = IndexBuilder()
    base = {"type": "Feature", "stac_version": "1.0.0", "geometry": None, "properties": {"datetime": None}}
    for cid in ("..", "c"):
        builder.add_collection({"id": cid, "type": "Collection", "links": []})
        for iid in (".", "..", "x"):
            builder.add_item({**base, "id": iid, "collection": cid})
    index = builder.build()
    with make_client(index=index) as client:
        for feature in client.get("/search", params={"limit": 100}).json()["features"]:
            for rel in ("self", "collection"):
                href = next(link["href"] for link in feature["links"] if link["rel"] == rel)
                assert "/./" not in href + "/" and "/../" not in href + "/", href
                got = client.get(href.replace("http://testserver", ""))
                assert got.status_code == 200, (href, got.text)
                assert got.json()["id"] == (feature["id"] if rel == "self" else feature["collection"])


def test_query_params_read_as_starlette_does() -> None:
    from starlette.requests import Request

    from server.api.routes import _query_params

    for qs in [b"", b"a=1&b=2&a=3", b"x=%C3%A9&y=&z", b"bbox=1%2C2&q=a+b", b"k=%FF&&=v&t=%", b"\xe9=\xe9",
               b"bbox=1,2,3,4&bbox=5,6,7,8", b"collections=a,b"]:
        request = Request({"type": "http", "query_string": qs, "headers": []})
        assert _query_params(request) == dict(request.query_params.items()), qs


def test_repeated_list_parameters_are_joined() -> None:
    """Found by QA: ?collections=a&collections=b searched b only, silently."""
    from starlette.requests import Request

    from server.api.routes import _query_params

    def params(qs: bytes) -> dict[str, str]:
        return _query_params(Request({"type": "http", "query_string": qs, "headers": []}))

    assert params(b"collections=a&collections=b,c&limit=5&limit=7")["collections"] == "a,b,c"
    assert params(b"collections=a&collections=b&limit=5&limit=7")["limit"] == "7"
    assert params(b"ids=x&ids=&ids=y")["ids"] == "x,y"


def test_base_url_without_a_host_header_comes_from_the_server_address() -> None:
    from starlette.requests import Request

    from server.api.links import public_base_url

    def base(server: tuple[str, int] | None, scheme: str = "http", headers: Any = ()) -> str:
        scope = {"type": "http", "scheme": scheme, "server": server, "headers": headers, "root_path": "/stac"}
        return public_base_url(Request(scope), None)

    assert base(("10.0.0.1", 80)) == "http://10.0.0.1/stac"
    assert base(("10.0.0.1", 8080)) == "http://10.0.0.1:8080/stac"
    assert base(("10.0.0.1", 443), "https") == "https://10.0.0.1/stac"
    assert base(None) == "http://localhost/stac"
    assert base(("10.0.0.1", 8080), headers=[(b"host", b"api.example")]) == "http://api.example/stac"
    # without a forwarding header the raw headers are read in one pass; with one, as before: the same
    for extra in ([], [(b"x-forwarded-for", b"1.2.3.4")], [(b"forwarded", b"for=1.2.3.4")],
                  [(b"x-forwarded-port", b"8443")], [(b"host", b"other.example")]):
        assert base(("10.0.0.1", 8080), "HTTP", [(b"host", b"api.example"), *extra]) == "http://api.example/stac"


def test_url_builders_are_shared_per_base_and_bounded() -> None:
    from server.api.links import _builders, url_builder

    first = url_builder("http://a.example")
    assert url_builder("http://a.example") is first
    assert first.item_links_json() is first.item_links_json()
    for k in range(500):
        url_builder(f"http://h{k}.example")  # a client choosing a new Host each time
    assert len(_builders) <= _builders.maxsize


def test_ids_lookup_finds_an_id_in_every_collection_once() -> None:
    from server.query.model import SearchQuery

    builder = IndexBuilder()
    base = {"type": "Feature", "stac_version": "1.0.0", "geometry": None, "properties": {"datetime": None}}
    for cid in ("a", "b"):
        builder.add_collection({"id": cid, "type": "Collection", "links": []})
    for n in range(30):
        builder.add_item({**base, "id": f"i{n}", "collection": "a" if n % 2 else "b"})
    builder.add_item({**base, "id": "i3", "collection": "b"})  # the same id in another collection
    index = builder.build()

    def found(ids: list[str]) -> list[tuple[str | None, str]]:
        positions = index.match(SearchQuery(ids=ids))
        assert list(positions) == sorted(positions)
        return sorted((index.collection_of(int(p)), index.ids[int(p)]) for p in positions)

    assert found(["i3"]) == [("a", "i3"), ("b", "i3")]
    assert found(["i3", "i3", "i4", "nope", ""]) == [("a", "i3"), ("b", "i3"), ("b", "i4")]
    assert found(["nope"]) == []
    assert found([f"i{n}" for n in range(30)]) == sorted(
        [("a" if n % 2 else "b", f"i{n}") for n in range(30)] + [("b", "i3")])
