"""The pages in a real headless Chromium, against the real server on 127.0.0.1: every page type
loads without a console error, the maps draw their footprints, the search form gives the ids the
JSON API gives, and a hostile title stays text. No network: the tiles setting is empty.

Screenshots of each page type go to $STAC_STATIC_SCREENSHOTS (else the test's temp dir).
Needs Debian's chromium and chromium-driver (.ci/run installs them); skipped without them."""

from __future__ import annotations

import base64
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from server.sample import SAMPLE_ROOT
from tests.helpers import CatalogDir, box_geometry, collection, item, run_server, serve_folder

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None or CHROMEDRIVER is None,
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)

# The sample catalog's made-up asset host: its thumbnails do not load (the page still shows them as <img>)
SAMPLE_ASSET_HOST = "https://data.example.com/"
HOSTILE = '<script>window.pwned = 1</script><img src=x onerror="window.pwned = 2">Hostile & <b>bold</b>'
PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg=="


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    folder = CatalogDir(tmp_path_factory.mktemp("hostile"))
    folder.path("thumb.png").write_bytes(base64.b64decode(PIXEL))
    with serve_folder(folder.root) as files, \
            run_server(_hostile_roots(folder, files), env={"STAC_STATIC_HTML_TILES": ""}) as base:
        yield base


def _hostile_roots(folder: CatalogDir, files: str) -> list[str]:
    """The sample catalog and a collection whose texts are HTML, with a thumbnail served from ``files``."""
    folder.write("collection.json", collection(
        "hostile", title=HOSTILE, description=HOSTILE + "\n\n*Markdown* [js](javascript:alert(1))",
        keywords=[HOSTILE], links=[{"rel": "item", "href": "./h1.json"}]))
    folder.write("h1.json", item(
        "h1", bbox=(5.0, 51.0, 6.0, 52.0), collection="hostile", properties={"title": HOSTILE, HOSTILE: 1},
        assets={"thumb": {"href": f"{files}/thumb.png", "type": "image/png", "roles": ["thumbnail"], "title": HOSTILE},
                "evil": {"href": "javascript:window.pwned=3", "title": "evil"}}))
    return [str(SAMPLE_ROOT), str(folder.path("collection.json")), _dateline_root(folder), _long_root(folder)]


# The lines of text an element's content takes (a script for execute_script)
LINES = """const range = document.createRange(); range.selectNodeContents(arguments[0]);
           return Math.round(range.getBoundingClientRect().height
                             / parseFloat(getComputedStyle(arguments[0]).lineHeight));"""

# One word of 300 characters as a collection's id and title, and an item's id and property: what
# a page must wrap rather than widen itself for.
LONG = "L" * 300


def _long_root(folder: CatalogDir) -> str:
    folder.write("long/collection.json", collection(LONG, title=LONG, links=[{"rel": "item", "href": "./long.json"},
                                                                             {"rel": "item", "href": "./null.json"}]))
    folder.write("long/null.json", item("no-geometry", bbox=None, collection=LONG))
    folder.write("long/long.json", item(LONG, collection=LONG, properties={LONG: LONG, "platform": "sentinel-2a",
                                                                       "constellation": "sentinel-2", "gsd": 10}))
    return str(folder.path("long/collection.json"))


# Astride the antimeridian: a collection extent with minx > maxx, a footprint whose ring jumps
# from 175 to -175 (common in catalogs), one split at 180 as RFC 7946 asks, and one wholly west of it.
DATELINE_ITEMS = {
    "jump": ((175.0, -5.0, -175.0, 5.0),
             {"type": "Polygon", "coordinates": [[[175, -5], [-175, -5], [-175, 5], [175, 5], [175, -5]]]}),
    "split": ((170.0, 10.0, -172.0, 15.0),
              {"type": "MultiPolygon", "coordinates": [[[[170, 10], [180, 10], [180, 15], [170, 15], [170, 10]]],
                                                       [[[-180, 10], [-172, 10], [-172, 15], [-180, 15], [-180, 10]]]]}),
    "west": ((-178.0, -12.0, -176.0, -10.0),
             {"type": "Polygon", "coordinates": [[[-178, -12], [-176, -12], [-176, -10], [-178, -10], [-178, -12]]]}),
}


def _dateline_root(folder: CatalogDir) -> str:
    extent = {"spatial": {"bbox": [[170.0, -20.0, -170.0, 20.0]]},
              "temporal": {"interval": [["2020-01-01T00:00:00Z", None]]}}
    folder.write("dateline/collection.json", collection(
        "dateline", title="Astride the antimeridian", extent=extent,
        links=[{"rel": "item", "href": f"./{iid}.json"} for iid in DATELINE_ITEMS]))
    for iid, (bbox, geometry) in DATELINE_ITEMS.items():
        folder.write(f"dateline/{iid}.json", item(iid, bbox=bbox, collection="dateline", geometry=geometry))
    return str(folder.path("dateline/collection.json"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1280,1400"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER or ""))
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = Path(os.environ.get("STAC_STATIC_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _open(browser: Any, url: str, shots: Path, name: str, footprints: bool = True, error_page: bool = False) -> int:
    """Load ``url``; no console error; the map's footprint count (0 when no map); a screenshot."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get_log("browser")  # drop what earlier pages logged
    browser.get(url)
    WebDriverWait(browser, 10).until(lambda d: d.execute_script("return document.readyState") == "complete")
    drawn = 0
    if footprints:
        WebDriverWait(browser, 10).until(
            lambda d: d.find_element(By.ID, "map").get_attribute("data-footprints") is not None)
        drawn = len(browser.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive"))
    browser.save_screenshot(str(shots / f"{name}.png"))
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"
              and not (error_page and e["message"].startswith(url + " - Failed to load resource"))  # its own 404
              and not e["message"].startswith(SAMPLE_ASSET_HOST)]
    assert errors == [], (url, errors)
    assert browser.execute_script("return window.pwned === undefined")
    return drawn


def test_every_page_type_loads_and_maps_its_footprints(server: str, browser: Any, shots: Path) -> None:
    _open(browser, f"{server}/", shots, "landing", footprints=False)
    collections = httpx.get(f"{server}/collections").json()
    assert _open(browser, f"{server}/collections", shots, "collections") == collections["numberReturned"]
    assert _open(browser, f"{server}/collections/sentinel-2-l2a-nl", shots, "collection") == 1
    items = httpx.get(f"{server}/collections/sentinel-2-l2a-nl/items", params={"limit": 5}).json()
    assert _open(browser, f"{server}/collections/sentinel-2-l2a-nl/items?limit=5", shots, "items") == \
        len([f for f in items["features"] if f.get("geometry")])
    first = items["features"][0]["id"]
    assert _open(browser, f"{server}/collections/sentinel-2-l2a-nl/items/{first}", shots, "item") == 1
    _open(browser, f"{server}/collections/nope", shots, "error", footprints=False, error_page=True)
    # the static catalog's tree: the landing page's children, sub-catalogs
    _open(browser, f"{server}/children", shots, "children", footprints=False)
    _open(browser, f"{server}/catalogs/sample/dem-alps/dem-alps-tiles-extra", shots, "catalog", footprints=False)
    _open(browser, f"{server}/catalogs/sample/misc", shots, "catalog-misc", footprints=False)


def test_conformance_queryables_and_api_are_pages(server: str, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, f"{server}/conformance", shots, "conformance", footprints=False)
    links = [a.get_attribute("href") for a in browser.find_elements(By.CSS_SELECTOR, "ul.conformance a")]
    assert sorted(links) == sorted(httpx.get(f"{server}/conformance").json()["conformsTo"])
    for path, name in (("/collections/sentinel-2-l2a-nl/queryables", "queryables"), ("/queryables", "queryables-all"),
                       ("/collections/hostile/queryables", "queryables-hostile")):
        _open(browser, f"{server}{path}", shots, name, footprints=False)
        names = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "#queryables tbody td:first-child")]
        assert names == list(httpx.get(f"{server}{path}").json()["properties"])
    assert HOSTILE in names  # the hostile collection's property name, shown as text
    _open(browser, f"{server}/api?f=html", shots, "api", footprints=False)
    rows = browser.find_elements(By.CSS_SELECTOR, "#operations tbody tr")
    assert len(rows) == sum(len(ops) for ops in httpx.get(f"{server}/api").json()["paths"].values())


def test_search_form_gives_the_ids_of_the_json_api(server: str, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    _open(browser, f"{server}/search", shots, "search-empty")
    form = {"bbox": "3,50,7,54", "datetime": "2023-01-01T00:00:00Z/2023-12-31T23:59:59Z", "limit": "7",
            "sortby": "-datetime"}
    for name, value in form.items():
        field = browser.find_element(By.NAME, name)
        field.clear()
        field.send_keys(value)
    browser.find_element(By.CSS_SELECTOR, "form.search button[type=submit]").click()
    # the submitted GET, not the empty form still showing while it loads (a busy machine)
    WebDriverWait(browser, 20).until(lambda d: "bbox=" in d.current_url)
    drawn = _open(browser, browser.current_url, shots, "search")
    shown = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#items tbody td:first-child a")]
    api = httpx.get(f"{server}/search", params=form).json()
    assert shown == [f["id"] for f in api["features"]] and shown
    assert drawn == len(shown)


def test_a_posted_search_is_a_page_whose_next_page_is_a_get(server: str, browser: Any, shots: Path) -> None:
    """What a script in a browser gets when it POSTs a search asking for HTML: the page, with
    its map, and paging links that are the GETs asking the same."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    body = {"bbox": [3, 50, 8, 54], "limit": 3, "sortby": [{"field": "properties.datetime", "direction": "desc"}]}
    _open(browser, f"{server}/search", shots, "search-before-post")
    html = browser.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {method: "POST", headers: {"Accept": "text/html", "Content-Type": "application/json"},
                             body: JSON.stringify(arguments[1])}).then(r => r.text()).then(done);
    """, f"{server}/search", body)
    browser.execute_script("document.open(); document.write(arguments[0]); document.close();", html)
    WebDriverWait(browser, 10).until(
        lambda d: d.find_element(By.ID, "map").get_attribute("data-footprints") is not None)
    browser.save_screenshot(str(shots / "search-posted.png"))
    api = httpx.post(f"{server}/search", json=body).json()
    shown = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#items tbody td:first-child a")]
    assert shown == [f["id"] for f in api["features"]]
    assert len(browser.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive")) == len(shown)
    assert browser.find_element(By.NAME, "bbox").get_attribute("value") == "3,50,8,54"
    browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
    WebDriverWait(browser, 20).until(lambda d: "token=" in d.current_url)
    _open(browser, browser.current_url, shots, "search-posted-next")
    token = next(link for link in api["links"] if link["rel"] == "next")["body"]["token"]
    following = httpx.post(f"{server}/search", json={**body, "token": token}).json()
    shown = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#items tbody td:first-child a")]
    assert shown == [f["id"] for f in following["features"]] and shown


def _view(browser: Any) -> tuple[float, ...]:
    from selenium.webdriver.common.by import By

    view = browser.find_element(By.ID, "map").get_attribute("data-view")
    return tuple(float(v) for v in view.split(","))


def test_what_crosses_the_antimeridian_is_drawn_in_one_piece(server: str, browser: Any, shots: Path) -> None:
    """Before, the extent became a box over the rest of the world, the jumping footprint a band
    around it, and the split one two halves at opposite ends of the map: each view spanned ~350°."""
    from selenium.webdriver.common.by import By

    for url, name, drawn in ((f"{server}/collections/dateline", "dateline-collection", 1),
                             (f"{server}/collections/dateline/items", "dateline-items", len(DATELINE_ITEMS)),
                             (f"{server}/collections/dateline/items/jump", "dateline-item-jump", 1),
                             (f"{server}/collections/dateline/items/split", "dateline-item-split", 1)):
        assert _open(browser, url, shots, name) == drawn, url
        west, _, east, _ = _view(browser)
        # the view is on 180°, not on the whole world (its width follows the map's shape)
        assert east - west < 200 and abs((west + east) / 2 - 180) < 15, (url, west, east)
        map_box = browser.find_element(By.ID, "map").rect
        for path in browser.find_elements(By.CSS_SELECTOR, "#map path.leaflet-interactive"):
            assert path.rect["width"] < 0.95 * map_box["width"], (url, path.rect)  # no band over the whole map
    # the hostile collection's extent is the whole world, as written (-180 to 180): not taken to cross
    whole = httpx.get(f"{server}/collections/hostile").json()["extent"]["spatial"]["bbox"][0]
    assert whole[0] == -180 and whole[2] == 180
    assert _open(browser, f"{server}/collections", shots, "collections-with-dateline") == \
        httpx.get(f"{server}/collections").json()["numberReturned"]
    drawn = json.loads(browser.execute_script("return document.getElementById('map-data').textContent"))
    xs = {f["properties"]["title"]: sorted({x for x, _ in f["geometry"]["coordinates"][0]}) for f in drawn["features"]}
    assert xs["Astride the antimeridian"] == [170, 190] and xs[HOSTILE] == [-180, 180]


def test_a_hostile_title_stays_text(server: str, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, f"{server}/collections/hostile", shots, "hostile-collection")
    assert browser.find_element(By.TAG_NAME, "h1").text == HOSTILE
    assert browser.find_elements(By.CSS_SELECTOR, "h1 b, h1 img, .description script") == []
    assert not browser.find_elements(By.CSS_SELECTOR, "a[href^='javascript']")
    _open(browser, f"{server}/collections/hostile/items/h1", shots, "hostile-item")
    assert browser.find_element(By.TAG_NAME, "h1").text == HOSTILE
    assert browser.find_element(By.CSS_SELECTOR, ".thumb img").get_attribute("src").endswith("/thumb.png")
    assert not browser.find_elements(By.CSS_SELECTOR, "a[href^='javascript']")
    _open(browser, f"{server}/collections", shots, "collections-hostile")
    assert HOSTILE in browser.find_element(By.TAG_NAME, "main").text


def test_aggregations_are_pages_of_tables(server: str, browser: Any, shots: Path) -> None:
    """/aggregations and /aggregate (and per collection) as a person sees them: the list of
    aggregations, each a link to its page; the summary values, each distribution a table in
    the answer's order (datetime buckets by year, in time order; a grid's cells with the box
    they cover), the parameters used, the JSON one link away and a hostile key as text. JSON
    clients get the JSON as before."""
    from selenium.webdriver.common.by import By

    def cells(selector: str) -> list[list[str]]:
        return [[td.text for td in row.find_elements(By.TAG_NAME, "td")]
                for row in browser.find_elements(By.CSS_SELECTOR, selector)]

    available = httpx.get(f"{server}/aggregations").json()["aggregations"]
    _open(browser, f"{server}/aggregations", shots, "aggregations", footprints=False)
    assert [row[0] for row in cells("#aggregations tbody tr")] == [a["name"] for a in available]
    link = browser.find_element(By.LINK_TEXT, "centroid_geohash_grid_frequency").get_attribute("href")
    assert link == f"{server}/aggregate?aggregations=centroid_geohash_grid_frequency"

    query = ("aggregations=total_count,datetime_max,datetime_frequency,collection_frequency,"
             "centroid_geohash_grid_frequency,cloud_cover_frequency&datetime_frequency_interval=year"
             "&bbox=3,50,8,54")
    answer = {a["name"]: a for a in httpx.get(f"{server}/aggregate?{query}").json()["aggregations"]}
    _open(browser, f"{server}/aggregate?{query}", shots, "aggregate", footprints=False)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Aggregations"
    assert ["bbox", "3,50,8,54"] == next(
        [th.text, td.text] for th, td in zip(browser.find_elements(By.CSS_SELECTOR, "#parameters th"),
                                             browser.find_elements(By.CSS_SELECTOR, "#parameters td"))
        if th.text == "bbox")
    summary = browser.find_element(By.ID, "values").text
    assert f"Items matched total_count {answer['total_count']['value']:,}" in summary
    assert answer["datetime_max"]["value"] in summary
    years = cells("#datetime_frequency tbody tr")
    assert [(row[0], int(row[1].replace(",", ""))) for row in years] == \
        [(b["key"][:4], b["frequency"]) for b in answer["datetime_frequency"]["buckets"]]
    assert [row[0] for row in years] == sorted(row[0] for row in years) and len(years) > 1
    assert [(row[0], int(row[1].replace(",", ""))) for row in cells("#collection_frequency tbody tr")] == \
        [(b["key"], b["frequency"]) for b in answer["collection_frequency"]["buckets"]]
    grid = cells("#centroid_geohash_grid_frequency tbody tr")
    assert [(row[0], int(row[2])) for row in grid] == \
        [(b["key"], b["frequency"]) for b in answer["centroid_geohash_grid_frequency"]["buckets"]]
    assert ["u", "0, 45, 45, 90"] == grid[0][:2]  # geohash u: the box its items' centres are in
    assert [row[0] for row in cells("#cloud_cover_frequency tbody tr")][:2] == ["< 5", "≥ 5 and < 15"]
    alternate = browser.find_element(By.CSS_SELECTOR, "link[rel=alternate][type='application/json']")
    assert httpx.get(alternate.get_attribute("href")).json()["aggregations"] == list(answer.values())

    # per collection, with the hostile collection's titles as the keys: text, never markup
    _open(browser, f"{server}/collections/hostile/aggregate?aggregations=title_frequency", shots,
          "aggregate-hostile", footprints=False)
    assert browser.find_element(By.TAG_NAME, "h1").text == "Aggregations of hostile"
    assert [row[0] for row in cells("#title_frequency tbody tr")] == [HOSTILE]
    assert browser.find_elements(By.CSS_SELECTOR, "main b, main img, main script") == []
    _open(browser, f"{server}/collections/hostile/aggregations", shots, "aggregations-hostile", footprints=False)
    assert "title_frequency" in [row[0] for row in cells("#aggregations tbody tr")]

    # JSON clients: as before, no page and no link added
    plain = httpx.get(f"{server}/aggregate?{query}")
    assert plain.headers["content-type"].startswith("application/json")
    assert [link["rel"] for link in plain.json()["links"]] == ["self", "root"]
    assert httpx.get(f"{server}/aggregate?{query}&f=html").headers["content-type"].startswith("text/html")


def test_no_page_is_wider_than_a_desktop_or_a_phone(server: str, browser: Any, shots: Path) -> None:
    """Every page type, at 1280 px and at a phone's 375 px, is as wide as the window: long words
    wrap, wide tables scroll inside the page. Before: a 300-character id made the landing page
    3,306 px wide on a desktop; on a phone the conformance classes, a collection's links and the
    API page's paths (436, 438 and 475 px) made the whole page scroll sideways, and the property
    tables gave their values a third of the screen."""
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    item_id = httpx.get(f"{server}/collections/sentinel-2-l2a-nl/items", params={"limit": 1}).json()["features"][0]["id"]
    paths = ["/", "/collections", "/collections/sentinel-2-l2a-nl", "/collections/sentinel-2-l2a-nl/items",
             f"/collections/sentinel-2-l2a-nl/items/{item_id}", "/search?bbox=3,50,8,54", "/conformance", "/queryables",
             "/api", "/aggregate?aggregations=total_count,datetime_frequency,cloud_cover_frequency",
             f"/collections/{LONG}", f"/collections/{LONG}/items", f"/collections/{LONG}/items/{quote(LONG)}",
             f"/collections/{LONG}/queryables", "/children"]
    try:
        for width, label in ((1280, "desktop"), (375, "phone")):
            browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                    {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": width < 600})
            for path in paths:
                _open(browser, f"{server}{path}", shots, f"width-{label}-{paths.index(path)}", footprints=False)
                page, window = browser.execute_script(
                    "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
                assert page <= window, (label, path, page, window)
            if width == 375:  # the landing page's counts are words, not letters ("16 collectio/ns")
                _open(browser, f"{server}/", shots, "phone-landing", footprints=False)
                counts = browser.find_elements(By.CSS_SELECTOR, ".counts li")
                assert counts and [li.text for li in counts if browser.execute_script(LINES, li) != 1] == []
            if width == 375:  # a property's value has more room than its name
                _open(browser, f"{server}/collections/sentinel-2-l2a-nl/items/{item_id}", shots, "phone-item", footprints=False)
                row = browser.find_element(By.CSS_SELECTOR, "table.props tr")
                name, value = (row.find_element(By.TAG_NAME, tag).rect["width"] for tag in ("th", "td"))
                assert value > 1.5 * name, (name, value)
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def test_an_item_without_geometry_says_so_instead_of_a_blank_map(server: str, browser: Any, shots: Path) -> None:
    """An item whose geometry is null (the spec allows it; shared catalog loose-items has one) had
    an empty grey map box with zoom buttons, as if its footprint had failed to load."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{server}/collections/{LONG}/items/no-geometry", shots, "item-no-geometry", footprints=False)
    assert browser.find_elements(By.ID, "map") == []
    assert "no geometry" in browser.find_element(By.ID, "no-footprint").text
    # an item with one keeps its map
    assert _open(browser, f"{server}/collections/{LONG}/items/{LONG}", shots, "item-long") == 1


def test_a_desktop_items_table_breaks_no_heading_nor_usual_id(server: str, browser: Any, shots: Path) -> None:
    """On a desktop, 50 results with a 300-character id and time ranges among them: the headings
    stay whole words, a datetime and a usual id (the sample's, up to 33 characters) one line
    each. Before, the long values took the room: headings in letters ("plat/for/m", "g/s/d"),
    datetimes in three lines ("2023-12-/12T10:34:0/7Z")."""
    from selenium.webdriver.common.by import By

    lines = LINES
    _open(browser, f"{server}/search?limit=50", shots, "search-50", footprints=True)
    assert LONG in [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#items tbody td:first-child a")]
    headings = browser.find_elements(By.CSS_SELECTOR, "#items thead th")
    assert [th.text for th in headings if browser.execute_script(lines, th) != 1] == []
    times = browser.find_elements(By.CSS_SELECTOR, "#items tbody td:nth-child(2)")
    assert any(" –" in td.text for td in times)
    assert [td.text for td in times if browser.execute_script(lines, td) != (2 if " –" in td.text else 1)] == []
    ids = [a for a in browser.find_elements(By.CSS_SELECTOR, "#items tbody td:first-child a") if len(a.text) <= 33]
    assert ids and [a.text for a in ids if browser.execute_script(lines, a) != 1] == []


def test_a_search_gone_wrong_comes_back_as_its_form_to_correct(server: str, browser: Any, shots: Path) -> None:
    """A filter cut short, typed in the search form: the 400 page says why and shows the form
    again as it was sent, so the person corrects it there (before: the message, and Back)."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    for url, name in ((f"{server}/search?bbox=3,50,8,54&filter=eo:cloud_cover%20%3C&limit=4", "search-bad-filter"),
                      (f"{server}/collections/sentinel-2-l2a-nl/items?bbox=3,50,8,54&filter=eo:cloud_cover%20%3C&limit=4",
                       "items-bad-filter")):
        _open(browser, url, shots, name, footprints=False, error_page=True)
        assert "Invalid filter" in browser.find_element(By.CSS_SELECTOR, ".error").text
        assert browser.find_element(By.NAME, "bbox").get_attribute("value") == "3,50,8,54"
        field = browser.find_element(By.NAME, "filter")
        assert field.get_attribute("value") == "eo:cloud_cover <"
        field.send_keys(" 50")
        browser.find_element(By.CSS_SELECTOR, "form.search button[type=submit]").click()
        WebDriverWait(browser, 20).until(lambda d: "50" in d.current_url and "%3C+50" in d.current_url)
        _open(browser, browser.current_url, shots, name + "-corrected")
        shown = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "#items tbody td:first-child a")]
        api = httpx.get(url.replace("%3C", "%3C%2050")).json()
        assert shown == [f["id"] for f in api["features"]] and shown
    # the collection search's form too
    _open(browser, f"{server}/collections?q=sentinel&bbox=3,50,8", shots, "collections-bad-bbox", footprints=False,
          error_page=True)
    assert "bbox" in browser.find_element(By.CSS_SELECTOR, ".error").text
    assert [browser.find_element(By.NAME, n).get_attribute("value") for n in ("q", "bbox")] == ["sentinel", "3,50,8"]
    # a 400 elsewhere (no search) has no form
    _open(browser, f"{server}/conformance?f=xml", shots, "conformance-bad-f", footprints=False, error_page=True)
    assert browser.find_elements(By.CSS_SELECTOR, "form.search") == []


# -- session 14: page gaps ---------------------------------------------------------------------


def test_an_item_without_assets_says_so_instead_of_an_empty_table(server: str, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    _open(browser, f"{server}/collections/{LONG}/items/no-geometry", shots, "item-no-assets", footprints=False)
    assert "no assets" in browser.find_element(By.ID, "no-assets").text
    assert browser.find_elements(By.XPATH, "//h2[text()='Assets']/following-sibling::*[1][self::table]") == []
    # an item with assets keeps its table
    _open(browser, f"{server}/collections/hostile/items/h1", shots, "item-assets")
    assert browser.find_elements(By.ID, "no-assets") == []
    assert len(browser.find_elements(By.XPATH, "//h2[text()='Assets']/following-sibling::table[1]//tr")) == 3


def test_the_landing_page_of_several_roots_names_them(server: str, browser: Any, shots: Path) -> None:
    """Four roots: the page's title was the first root's (the sample's), its description too."""
    from selenium.webdriver.common.by import By

    _open(browser, f"{server}/", shots, "landing-roots", footprints=False)
    title = browser.find_element(By.TAG_NAME, "h1").text
    assert "stac-static-api sample catalog" in title and "3 more" in title, title
    description = browser.find_element(By.CSS_SELECTOR, ".description").text
    assert "4 roots" in description and "Astride the antimeridian" in description, description
    assert "<script>" in description  # the hostile title, as text
    assert "A small made-up STAC catalog" not in description
    assert "3 more" in browser.title
    # the JSON landing page is unchanged: the first root's
    assert httpx.get(f"{server}/").json()["title"] == "stac-static-api sample catalog"


def test_a_configured_title_names_a_landing_page_of_several_roots(tmp_path: Path, browser: Any, shots: Path) -> None:
    from selenium.webdriver.common.by import By

    folder = CatalogDir(tmp_path / "two")
    roots = [str(folder.write(f"{c}/collection.json", collection(c, title=f"Title {c}"))) for c in ("a", "b")]
    env = {"STAC_STATIC_HTML_TILES": "", "STAC_STATIC_TITLE": "Our <b>data</b>"}
    with run_server(roots, env=env) as base:
        _open(browser, f"{base}/", shots, "landing-configured", footprints=False)
        assert browser.find_element(By.TAG_NAME, "h1").text == "Our <b>data</b>"
        assert "Title a" in browser.find_element(By.CSS_SELECTOR, ".description").text


def _described(folder: CatalogDir, name: str, description: str) -> Path:
    folder.path(f"{name}/img").mkdir(parents=True, exist_ok=True)
    folder.path(f"{name}/img/pic.png").write_bytes(base64.b64decode(PIXEL))
    return folder.write(f"{name}/collection.json", collection(name, title=name, description=description))


def test_relative_images_and_links_in_descriptions(tmp_path: Path, browser: Any, shots: Path) -> None:
    """Relative hrefs in a description resolved against the document they were written in: a
    remote one's URL, a local one's file when --serve-assets serves it; one that leads out of
    the roots (or nowhere served) is dropped, its alt text kept. Before, they resolved against
    the page's URL: 404s (a console error each)."""
    from selenium.webdriver.common.by import By

    folder = CatalogDir(tmp_path / "desc")
    text = "![Pic {name}](img/pic.png) [doc {name}](img/pic.png) ![Out {name}](../../outside.png) [top](#top)"
    folder.path("outside.png").write_bytes(base64.b64decode(PIXEL))
    _described(folder, "remote", text.format(name="remote"))
    local = _described(folder, "local", text.format(name="local"))
    with serve_folder(folder.root) as files, \
            run_server([f"{files}/remote/collection.json", str(local)], extra_args=["--serve-assets"],
                       env={"STAC_STATIC_HTML_TILES": ""}) as base:
        for name, expected in (("remote", f"{files}/remote/img/pic.png"), ("local", f"{base}/_assets/0/img/pic.png")):
            _open(browser, f"{base}/collections/{name}", shots, f"description-{name}")
            description = browser.find_element(By.CSS_SELECTOR, ".description")
            image = description.find_element(By.CSS_SELECTOR, "img")
            assert image.get_attribute("src") == expected and image.get_attribute("alt") == f"Pic {name}"
            assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image) == 1
            assert description.find_element(By.LINK_TEXT, f"doc {name}").get_attribute("href") == expected
            images = description.find_elements(By.CSS_SELECTOR, "img")
            if name == "remote":  # a URL: the remote site's file beside the root's folder
                assert [i.get_attribute("src") for i in images] == [expected, f"{files}/outside.png"]
            else:  # out of the served root: no image, its alt text as text
                assert len(images) == 1 and f"Out {name}" in description.text
            assert description.find_element(By.LINK_TEXT, "top").get_attribute("href").endswith("#top")
    # a local root not served: the relative image is dropped (nothing to load it from)
    with run_server([str(local)], env={"STAC_STATIC_HTML_TILES": ""}) as base:
        _open(browser, f"{base}/collections/local", shots, "description-unserved")
        description = browser.find_element(By.CSS_SELECTOR, ".description")
        assert description.find_elements(By.CSS_SELECTOR, "img") == []
        assert "Pic local" in description.text and "doc local" in description.text
        assert description.find_elements(By.LINK_TEXT, "doc local") == []


def test_a_search_page_of_a_huge_limit_is_capped(tmp_path: Path, browser: Any, shots: Path) -> None:
    """limit=10000 as a page was 7.6 MB (10,000 rows and footprints); the page shows
    STAC_STATIC_HTML_PAGE_ITEMS (here 20) and links the next; JSON answers as before."""
    from selenium.webdriver.common.by import By

    with run_server(env={"STAC_STATIC_HTML_TILES": "", "STAC_STATIC_HTML_PAGE_ITEMS": "20"}) as base:
        as_json = httpx.get(f"{base}/search", params={"limit": 10000}).json()
        assert as_json["numberReturned"] == 68 and len(as_json["features"]) == 68
        assert not any(link["rel"] == "next" for link in as_json["links"])
        _open(browser, f"{base}/search?limit=10000", shots, "search-capped")
        rows = browser.find_elements(By.CSS_SELECTOR, "#items tbody tr")
        assert len(rows) == 20
        note = browser.find_element(By.ID, "capped").text
        assert "20" in note and "10,000" in note, note
        seen = [row.find_element(By.CSS_SELECTOR, "td").text for row in rows]
        browser.find_element(By.CSS_SELECTOR, "a[rel=next]").click()
        rows = browser.find_elements(By.CSS_SELECTOR, "#items tbody tr")
        assert len(rows) == 20
        seen += [row.find_element(By.CSS_SELECTOR, "td").text for row in rows]
        ids = [f["id"] for f in as_json["features"]]
        assert seen == ids[:40]
        # the JSON link of the capped page asks for the limit as given: the API's answer
        href = browser.find_element(By.CSS_SELECTOR, "a.json").get_attribute("href")
        assert len(httpx.get(href).json()["features"]) == 68 - 20


def test_odd_geometries_the_loader_takes_leave_the_map_drawn(tmp_path: Path, browser: Any, shots: Path) -> None:
    """qa16: a GeometryCollection inside a GeometryCollection (RFC 7946 only says SHOULD avoid)
    threw in Leaflet 1.9.3 ("t.getElement is not a function", binding its tooltip), and an empty
    Point ("Invalid LatLng object"): the loader takes both (GEOS reads them), and either one
    left the map of every page showing it blank, the other footprints undrawn. Found serving a
    catalog of such items and opening its items page in Chromium."""
    from selenium.webdriver.common.by import By

    folder = CatalogDir(tmp_path / "odd")
    point = {"type": "Point", "coordinates": [0.5, 0.5]}
    geometries = {  # id: (geometry, the paths its map draws)
        "nested": ({"type": "GeometryCollection", "geometries": [
            {"type": "GeometryCollection", "geometries": [point, {"type": "GeometryCollection", "geometries": []}]},
            {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}]}, 2),
        "with-empty-point": ({"type": "GeometryCollection", "geometries": [{"type": "Point", "coordinates": []}, point]}, 1),
        "plain": (box_geometry((2.0, 2.0, 3.0, 3.0)), 1),
        "empty-point": ({"type": "Point", "coordinates": []}, 0),
    }
    folder.write("collection.json", collection("odd", links=[{"rel": "item", "href": f"./{i}.json"} for i in geometries]))
    for iid, (geometry, _) in geometries.items():
        folder.write(f"{iid}.json", item(iid, bbox=None, collection="odd", geometry=geometry))
    with run_server([str(folder.path("collection.json"))], env={"STAC_STATIC_HTML_TILES": ""}) as base:
        assert httpx.get(f"{base}/collections/odd/items").json()["numberMatched"] == len(geometries)
        assert _open(browser, f"{base}/collections/odd/items", shots, "odd-geometries") == 4
        for iid, (_, paths) in geometries.items():
            url = f"{base}/collections/odd/items/{iid}"
            assert _open(browser, url, shots, f"odd-geometry-{iid}", footprints=paths > 0) == paths, iid
        # an empty point is no footprint: its page says so, as for a null geometry
        assert "no geometry" in browser.find_element(By.ID, "no-footprint").text


# Where the characters of a piece of text are drawn: the left edges of its first and last
# characters (the first text node under arguments[0] holding arguments[1]), or null.
DRAWN = """const [root, needle] = arguments;
           const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
           for (let node = walker.nextNode(); node; node = walker.nextNode()) {
             const at = node.data.indexOf(needle);
             if (at < 0) continue;
             const left = (i) => { const r = document.createRange(); r.setStart(node, i); r.setEnd(node, i + 1);
                                   return r.getBoundingClientRect().left; };
             return [left(at), left(at + needle.length - 1)];
           }
           return null;"""


def test_an_id_with_a_right_to_left_override_does_not_display_reversed(tmp_path: Path, browser: Any, shots: Path) -> None:
    """qa16: an item id "evil" U+202E "gnp.exe" displayed as "evilexe.png", and its collection's
    id, ending with U+202E, reversed the crumbs after it ("items" read "smeti"). Now each shows
    the control as its escape, and the text reads in its order, left to right."""
    from urllib.parse import quote

    from selenium.webdriver.common.by import By

    rlo = "\u202e"
    folder = CatalogDir(tmp_path / "bidi")
    folder.write("collection.json", collection(f"lane{rlo}", title=f"Lane {rlo}sdrawkcab",
                                               links=[{"rel": "item", "href": "./i.json"}]))
    folder.write("i.json", item(f"evil{rlo}gnp.exe", bbox=(5.0, 51.0, 6.0, 52.0), collection=f"lane{rlo}"))
    with run_server([str(folder.path("collection.json"))], env={"STAC_STATIC_HTML_TILES": ""}) as base:
        lane = quote(f"lane{rlo}", safe="")
        _open(browser, f"{base}/collections/{lane}/items/{quote(f'evil{rlo}gnp.exe', safe='')}", shots, "bidi-item")
        for selector, text in (("h1", "gnp.exe"), ("p.id", "gnp.exe"), ("p.crumbs", "items")):
            first, last = browser.execute_script(DRAWN, browser.find_element(By.CSS_SELECTOR, selector), text)
            assert first < last, (selector, text, first, last)  # drawn in its order, not reversed
        assert browser.find_element(By.CSS_SELECTOR, "p.id").text == "evil\\u202Egnp.exe"
        _open(browser, f"{base}/collections/{lane}", shots, "bidi-collection")
        first, last = browser.execute_script(DRAWN, browser.find_element(By.TAG_NAME, "h1"), "sdrawkcab")
        assert first < last, (first, last)  # a title's override shown too, not obeyed
        _open(browser, f"{base}/collections/{lane}/items", shots, "bidi-items")
        cell = browser.find_element(By.CSS_SELECTOR, "#items tbody td:first-child a")
        first, last = browser.execute_script(DRAWN, cell, "gnp.exe")
        assert first < last and cell.text == "evil\\u202Egnp.exe", (first, last, cell.text)


def test_right_to_left_titles_and_typed_values(tmp_path: Path, browser: Any, shots: Path) -> None:
    """qa17 left: an Arabic title written with RLE ... PDF showed "\\u202B" boxes; the landing
    page's roots were one text; a q holding U+202E came back in its field as "\\u202E", so
    submitting again searched for those six characters. In Chromium: the embedding is obeyed
    (no box), an override still boxed, each root title its own <bdi>, and a resubmitted form
    sends the character typed. Screenshots rtl-landing, rtl-collection, rtl-search."""
    from urllib.parse import parse_qs, urlencode, urlsplit

    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    rle, pdf, rlo = "\u202b", "\u202c", "\u202e"
    arabic = "خريطة الغطاء الأرضي 2024"
    folder = CatalogDir(tmp_path / "rtl")
    roots = [str(folder.write("a/collection.json", collection("a", title=f"{rle}{arabic}{pdf}",
                                                                links=[{"rel": "item", "href": "./i.json"}]))),
             str(folder.write("b/collection.json", collection("b", title=f"Lane {rlo}sdrawkcab")))]
    folder.write("a/i.json", item("i", bbox=(5.0, 51.0, 6.0, 52.0), collection="a"))
    with run_server(roots, env={"STAC_STATIC_HTML_TILES": ""}) as base:
        _open(browser, f"{base}/", shots, "rtl-landing", footprints=False)
        heading = browser.find_element(By.TAG_NAME, "h1")
        assert "\\u202B" not in heading.text and "\\u202E" in heading.text, heading.text
        assert len(heading.find_elements(By.TAG_NAME, "bdi")) == 2
        assert len(browser.find_elements(By.CSS_SELECTOR, ".description p bdi")) == 2
        first, last = browser.execute_script(DRAWN, heading, "sdrawkcab")
        assert first < last  # the override boxed, not obeyed
        _open(browser, f"{base}/collections/a", shots, "rtl-collection")
        title = browser.find_element(By.TAG_NAME, "h1").text
        assert "\\u202B" not in title and "\\u202C" not in title and arabic in title, title
        typed = f"a{rlo}b"
        _open(browser, f"{base}/search?{urlencode({'q': typed, 'f': 'html'})}", shots, "rtl-search", footprints=False)
        field = browser.find_element(By.CSS_SELECTOR, "form.search input[name=q]")
        assert field.get_attribute("value") == typed
        before = browser.current_url
        field.submit()
        WebDriverWait(browser, 10).until(lambda d: d.current_url != before
                                         and d.execute_script("return document.readyState") == "complete")
        assert parse_qs(urlsplit(browser.current_url).query)["q"] == [typed], browser.current_url
        assert browser.find_element(By.CSS_SELECTOR, "form.search input[name=q]").get_attribute("value") == typed


def test_an_isolate_closed_in_order_is_obeyed_one_left_open_shown(tmp_path: Path, browser: Any, shots: Path) -> None:
    """qa18 left: a right-to-left isolate (RLI ... PDI, as Unicode recommends for a name of the
    other direction inside a text) showed "\\u2067" and "\\u2069" boxes though closed. In
    Chromium now: closed in order, it is obeyed, so the Latin word inside the right-to-left
    isolate stands left of the Arabic one, as a reader of the source expects (shown as boxes, it
    stood right of it); one left open is still boxed. Screenshots isolate-collection, isolate-open."""
    from selenium.webdriver.common.by import By

    rli, lri, pdi = "\u2067", "\u2066", "\u2069"
    arabic = "خريطة"
    folder = CatalogDir(tmp_path / "isolates")
    folder.write("collection.json", collection("iso", title=f"Map {rli}{arabic} Corine{pdi} v2",
                                               links=[{"rel": "item", "href": "./open.json"}]))
    folder.write("open.json", item("open", bbox=(5.0, 51.0, 6.0, 52.0), collection="iso",
                                   properties={"title": f"{lri}open"}))
    with run_server([str(folder.path("collection.json"))], env={"STAC_STATIC_HTML_TILES": ""}) as base:
        _open(browser, f"{base}/collections/iso", shots, "isolate-collection")
        heading = browser.find_element(By.TAG_NAME, "h1")
        assert "\\u2067" not in heading.text and "\\u2069" not in heading.text, heading.text
        corine, _ = browser.execute_script(DRAWN, heading, "Corine")
        first, last = browser.execute_script(DRAWN, heading, arabic)
        assert last < first  # Arabic letters right to left
        assert corine < last, (corine, first, last)  # the isolate's own direction: Corine before the Arabic, leftwards
        v2, _ = browser.execute_script(DRAWN, heading, " v2")
        assert v2 > first  # what follows the isolate reads on to its right, in the page's direction
        _open(browser, f"{base}/collections/iso/items/open", shots, "isolate-open")
        assert "\\u2066open" in browser.find_element(By.TAG_NAME, "h1").text
