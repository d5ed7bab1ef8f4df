"""ItemLinks (server/catalog/links.py): the walk's item links as one block of bytes with a hash
table of positions; membership exact even when hashes collide."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from server.catalog.links import ItemLinks


def test_links_in_order_with_their_contexts() -> None:
    links: ItemLinks[str] = ItemLinks()
    links.append("/c/a/a.json", "ctx1", "/c/")
    links.extend_new(["/d/b/b.json", "/d/c/c.json"], "ctx2", "/d/")
    links.append("http://h/x.json", "ctx1")  # no prefix
    links.append("/e/\udcff.json", "ctx2", "/nope/")  # a path of bytes not UTF-8; a prefix it lacks
    assert len(links) == 5
    assert links[0] == ("/c/a/a.json", "ctx1")
    assert links[-1] == ("/e/\udcff.json", "ctx2")
    assert links[1:3] == [("/d/b/b.json", "ctx2"), ("/d/c/c.json", "ctx2")]
    assert list(links.locations(3)) == ["http://h/x.json", "/e/\udcff.json"]
    assert list(links.contexts()) == ["ctx1", "ctx2", "ctx2", "ctx1", "ctx2"]
    del links[:2]
    assert len(links) == 3 and links[0] == ("/d/c/c.json", "ctx2")
    assert "/c/a/a.json" in links  # let go, still admitted
    assert links.locations()[0] == "/d/c/c.json" and len(links.locations(1, 2)) == 1
    with pytest.raises(IndexError):
        links[3]
    links.clear()
    assert len(links) == 0 and "/c/a/a.json" not in links


def test_membership_grows_past_the_first_table() -> None:
    links: ItemLinks[int] = ItemLinks()
    many = [f"/root/col/item-{i}/item-{i}.json" for i in range(20_000)]
    links.extend_new(many[:7000], 1, "/root/col/")
    for loc in many[7000:9000]:
        assert loc not in links
        links.append(loc, 2, "/root/col/")
    links.extend_new(many[9000:], 3, "/root/col/")
    assert all(loc in links for loc in many)
    assert "/root/col/item-20000/item-20000.json" not in links
    assert links.disjoint([f"/other/{i}" for i in range(5000)])
    assert not links.disjoint(["/other/x", many[12_345]])
    assert [loc for loc, _ in links] == many
    assert links.nbytes() < 20_000 * 60  # the bytes after the prefix, ends, codes, hashes, table


@pytest.mark.parametrize("buckets", [1, 3])
def test_colliding_hashes_are_told_apart(buckets: int) -> None:
    """Every location hashed to one of ``buckets`` values: found or not by their bytes."""
    links: ItemLinks[None] = ItemLinks(hash_text=lambda text: len(text) % buckets)
    first = [f"/a/{i}.json" for i in range(300)]
    links.extend_new(first, None, "/a/")
    for i in range(300, 400):
        loc = f"/a/{i}.json"
        assert loc not in links
        links.append(loc, None)
    assert all(f"/a/{i}.json" in links for i in range(400))
    assert "/a/400.json" not in links and "/b/1.json" not in links
    assert links.disjoint(["/a/400.json", "/b/1.json"])
    assert not links.disjoint(["/b/1.json", "/a/399.json"])
    assert [loc for loc, _ in links] == [f"/a/{i}.json" for i in range(400)]


def test_negative_hashes() -> None:
    links: ItemLinks[None] = ItemLinks(hash_text=lambda text: -len(text) * 7919)
    links.extend_new(["x", "yy", "zzz"], None)
    links.append("wwww", None)
    assert all(t in links for t in ("x", "yy", "zzz", "wwww")) and "v" * 5 not in links


def test_members_forgotten_links_still_read() -> None:
    links: ItemLinks[int] = ItemLinks()
    links.extend_new([f"/r/{i}.json" for i in range(5000)], 0, "/r/")
    before = links.nbytes()
    links.forget_members()
    assert links.nbytes() < before - 5000 * 8  # the hashes at least
    assert "/r/1.json" not in links and links.disjoint(["/r/1.json"])
    assert links[4999] == ("/r/4999.json", 0) and links.resolve([3, "x"]) == ["/r/3.json", "x"]
    with pytest.raises(RuntimeError):
        links.append("/r/new.json", 0)
    with pytest.raises(RuntimeError):
        links.extend_new(["/r/new.json"], 0)


@pytest.mark.parametrize("part", [1, 3, 65_536])
@pytest.mark.parametrize("spilled", [False, True])
def test_joined_in_the_block_as_the_log_joins_them(part: int, spilled: bool, tmp_path: Path) -> None:
    """Made in the block's memory, or (spilled: `index`'s load) written to a file in the folder
    given and mapped as the block: the same bytes, the links read from them."""
    links: ItemLinks[str] = ItemLinks()
    if spilled:
        links.spill_folder = str(tmp_path)
    locations = [f"/root/c{i % 3}/item-{i}/é-{i}.json" for i in range(50)] + ["http://h/x.json", "/e/\udcff.json"]
    links.extend_new(locations[:20], "a", "/root/c")  # prefixes of several lengths, and none
    for loc in locations[20:]:
        links.append(loc, "b", loc[: loc.find("/item")] + "/" if "/item" in loc else "")
    links.forget_members()
    head = ["/root/catalog.json", "/root/c0/collection.json"]
    assert links.joined([*head, *range(1, len(locations)), 0]) is None  # not the links in order: not joined
    assert links.joined([*head, "/x.json", *range(1, len(locations))]) is None
    joined = links.joined([*head, *range(len(locations))], part=part)
    assert joined is not None and isinstance(joined, mmap.mmap) == spilled
    assert bytes(joined) == "\n".join(head + locations).encode("utf-8", "surrogateescape")
    assert list(tmp_path.iterdir()) == []  # an unnamed file: gone with its mapping
    assert list(links.locations()) == locations and links[51] == ("/e/\udcff.json", "b")  # still read, from there
    assert links.resolve([0, "x", 50]) == [locations[0], "x", "http://h/x.json"]
    assert links.joined([*head, *range(len(locations))]) is None  # once


def test_joined_without_a_head_and_not_before_members_are_forgotten(tmp_path: Path) -> None:
    links: ItemLinks[str] = ItemLinks()
    links.extend_new(["/a/1.json", "/a/2.json"], "a", "/a/")
    assert links.joined([0, 1]) is None  # links may still be added
    links.forget_members()
    assert bytes(links.joined([0, 1]) or b"") == b"/a/1.json\n/a/2.json"
    assert ItemLinks().joined([]) is None
    one: ItemLinks[str] = ItemLinks()
    one.spill_folder = str(tmp_path)
    one.append("/b/1.json", "b", "/b/")
    one.forget_members()
    assert bytes(one.joined(["/cat.json", 0]) or b"") == b"/cat.json\n/b/1.json" and one[0] == ("/b/1.json", "b")


def test_links_locations_and_text_blocks_read_as_the_lists_they_stand_for() -> None:
    """ItemLinks, LocationsView and TextBlock (server/index/vocab.py) decode their blocks through
    one sequence (vocab.Decoded, session 15: the review found the indexing written twice):
    [i], negative [i], slices with steps, empty and reversed slices, iteration, IndexError."""
    from server.index.vocab import Decoded, TextBlock

    texts = sorted(f"/r/c/item-{i:03d}/item-{i:03d}.json" for i in range(300))
    links: ItemLinks[str] = ItemLinks()
    links.extend_new(texts[:150], "a", "/r/c/")
    for text in texts[150:]:
        links.append(text, "b")
    del links[:7]
    block = TextBlock.of(texts[7:])
    assert block is not None
    for sequence, expected in ((links, [(t, "a" if i < 150 else "b") for i, t in enumerate(texts)][7:]),
                               (links.locations(), texts[7:]), (links.locations(10, 200), texts[17:207]),
                               (block, texts[7:])):
        assert isinstance(sequence, Decoded)
        assert len(sequence) == len(expected) and list(sequence) == expected
        for i in (0, 1, len(expected) - 1, -1, -len(expected)):
            assert sequence[i] == expected[i], (type(sequence), i)
        for cut in (slice(None), slice(3, 9), slice(None, None, 7), slice(9, 3), slice(-5, None), slice(5, 300, 13),
                    slice(None, None, -1), slice(-1, -40, -3)):
            assert sequence[cut] == expected[cut], (type(sequence), cut)
        for i in (len(expected), -len(expected) - 1):
            with pytest.raises(IndexError):
                sequence[i]


@pytest.mark.parametrize("joined", [False, True])
def test_runs_of_links_read_at_once_as_one_by_one(joined: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Slices and iteration decode a run of links at once (ItemLinks._locations: ASCII bytes cut
    by their ends, prefixes put back), across documents' prefixes, runs with bytes not ASCII (read
    one by one), chunks of iteration, links let go and a block joined: what reading each gives."""
    from server.catalog import links as links_module

    monkeypatch.setattr(links_module, "CHUNK", 7)
    links: ItemLinks[str] = ItemLinks()
    locations = [f"/root/c{i % 3}/item-{i}/{'é' if i == 33 else 'e'}-{i}.json" for i in range(60)]
    locations += ["http://h/x.json", "/e/\udcff.json", "/root/c1/", "/root/c1/a"]
    links.extend_new(locations[:20], "a", "/root/c0")
    links.extend_new(locations[20:30], "c", "")
    for loc in locations[30:]:
        links.append(loc, "b", loc[: loc.find("/item")] + "/" if "/item" in loc else "")
    if joined:
        links.forget_members()
        assert links.joined(["/root/catalog.json", *range(len(locations))]) is not None
    one_by_one = [links._location(at) for at in range(len(locations))]
    assert one_by_one == locations
    assert list(links.locations()) == locations and list(links) == [(loc, links[i][1]) for i, loc in enumerate(locations)]
    for a, b in [(0, 64), (5, 6), (19, 21), (30, 40), (31, 35), (40, 64), (60, 62), (10, 10), (50, 3)]:
        assert links.locations()[a:b] == locations[a:b] and [loc for loc, _ in links[a:b]] == locations[a:b]
    assert links.locations()[::5] == locations[::5] and links.locations(40, 50)[2:] == locations[42:50]
    del links[:25]
    assert list(links.locations()) == locations[25:] and [loc for loc, _ in links] == locations[25:]
    assert [ctx for _, ctx in links[:6]] == ["c"] * 5 + ["b"]
