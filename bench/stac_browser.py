"""STAC Browser (the STAC community's web UI) against this server, in headless Chromium (issue 15).

    python bench/stac_browser.py [--cache DIR] [--screenshots DIR] [ROOT ...]

1. Builds STAC Browser once into ``--cache`` (default ``$STAC_BROWSER_CACHE`` or
   ``~/.cache/stac-static-api``): ``npm pack @radiantearth/stac-browser@4.0.1`` (the package
   ships its sources, no built ``dist/``), ``ol-stac`` pinned to 1.5.1 (what ``^1.1.0`` resolves
   to today, 1.6.0, does not build against the ``ol ~10.6`` STAC Browser pins), ``npm install``,
   the runtime ``config.js`` enabled in ``public/index.html`` exactly as the official Docker
   image's build does it, ``npm run build``. Later runs reuse the build (~2.5 min cold, 0 warm).
2. Starts this server (``python -m server serve``, access log on) on the bundled sample catalog
   and on ``ROOT...`` (default: two of ../shared/catalogs, 43 collections), and serves the built
   ``dist/`` from a small static server of this script that answers ``/config.js`` with the
   catalog URL and page sizes (so one build serves any API) and every other unknown path with
   ``index.html`` (STAC Browser's history mode, as the image's nginx does).
3. Drives Debian's chromium through chromedriver (selenium), as a person would: the landing page
   and its collections (paged through ``next`` links), a collection's items (Next, Previous,
   First), an item (its map, its thumbnail), the item search (a date range typed, a bbox drawn
   on the map, then Next and Previous), a filter on a queryable (CQL2), the collection search
   with words (``q``); then, with ``apiCatalogPriority: "childs"`` (as docker-compose.yml sets
   it), the catalogs' own trees, clicked through from the landing page card by card (issue 17).
   Each time the ids in the page are compared with what the JSON API answers
   for the same query, fetched by this script; the browser's console must hold no error (tiles
   of the basemap, which this offline machine cannot reach, excepted) and the server's access
   log no 4xx/5xx.

Screenshots go to ``--screenshots`` (default: a new temp dir), printed at the end with what each
shows. Exits 1 with the failed checks listed; 0 when every check passed. Needs node/npm (for the
build), chromium and chromium-driver, and selenium (``pip install '.[test]'``).
"""

from __future__ import annotations

import argparse
import fcntl
import functools
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import httpx
from selenium import webdriver
from selenium.common.exceptions import ElementClickInterceptedException, StaleElementReferenceException, TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.serverproc import REPO, clean_env, free_port, spawn, stop, wait_ready  # noqa: E402

PACKAGE = "@radiantearth/stac-browser"
VERSION = "4.0.1"
PINS = {"ol-stac": "1.5.1"}  # ol-stac 1.6.0 (what ^1.1.0 gives) fails the build against ol ~10.6
SHARED = Path(REPO).parent / "shared" / "catalogs"
DEFAULT_ROOTS = [str(SHARED / "stactools-modis-examples" / "catalog.json"),
                 str(SHARED / "pystac-catalogs" / "test-case-4" / "catalog.json")]
# Hosts unreachable offline that are none of the API's business: STAC Browser's own basemap, and
# the GeoJSON schema the queryables' geometry names by $ref (kept for JSON clients; STAC Browser
# dereferences it on each search form).
OFFLINE_HOSTS = ("tile.openstreetmap.org", "geojson.org")
WAIT = 30  # seconds for a page or a result to show (a loaded 2-core CI machine)
PAGE = 5  # items (and search results) per page asked of STAC Browser: several pages on the sample
# Lists as the API serves them: collections from the paged /collections only (by default STAC
# Browser also fetches every `child` link of the landing page, one request per collection), and
# in the API's order (by default STAC Browser sorts each page by title).
SHOWN_AS_SERVED = {"apiCatalogPriority": "collections", "cardViewSort": None}
# The catalog's own tree (issue 17): the landing page's child links (its first level), as
# docker-compose.yml sets it.
SHOWN_AS_ARRANGED = {"apiCatalogPriority": "childs", "cardViewSort": None}


# -- building STAC Browser ----------------------------------------------------------------


def _run(cmd: list[str], cwd: Path, log: Path) -> float:
    t0 = time.perf_counter()
    with log.open("a") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        result = subprocess.run(cmd, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, check=False)
    if result.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({result.returncode}); see {log}")
    return time.perf_counter() - t0


def build(cache: Path) -> tuple[Path, dict[str, Any]]:
    """STAC Browser's ``dist/`` built under ``cache`` (reused when already there), and how long
    each step took (empty when reused)."""
    root = cache / f"stac-browser-{VERSION}-ol-stac-{PINS['ol-stac']}"
    cache.mkdir(parents=True, exist_ok=True)
    # One build at a time: the test suite starts one in the background (tests/prepare.py) while
    # its other tests run, and the STAC Browser test then waits for it here rather than build twice.
    with open(cache / f"{root.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(root)


def _build(root: Path) -> tuple[Path, dict[str, Any]]:
    dist = root / "package" / "dist"
    stamp = root / "built.json"
    if stamp.exists() and (dist / "index.html").exists():
        return dist, {}
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm not found: STAC Browser is built with node and npm")
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    log = root / "build.log"
    times: dict[str, Any] = {}
    times["pack_s"] = _run([npm, "pack", f"{PACKAGE}@{VERSION}", "--pack-destination", str(root)], root, log)
    tgz = next(root.glob("*.tgz"))
    with tarfile.open(tgz) as tar:
        tar.extractall(root, filter="data")
    package = root / "package"
    for name, version in PINS.items():
        _run([npm, "pkg", "set", f"dependencies.{name}={version}"], package, log)
    times["install_s"] = _run([npm, "install", "--no-audit", "--no-fund", "--loglevel=error"], package, log)
    # The runtime config.js, switched on as the official image's Dockerfile does (DYNAMIC_CONFIG)
    index_html = package / "public" / "index.html"
    text = index_html.read_text()
    commented = '<!-- <script defer="defer" src="/config.js"></script> -->'
    if commented not in text:
        raise RuntimeError(f"{index_html} no longer holds {commented}")
    index_html.write_text(text.replace(commented, '<script defer="defer" src="/config.js"></script>'))
    times["build_s"] = _run([npm, "run", "build", "--", "--historyMode=history", "--pathPrefix=/",
                             "--noSourceMaps"], package, log)
    stamp.write_text(json.dumps({"package": f"{PACKAGE}@{VERSION}", "pins": PINS, **times}))
    return dist, times


# -- serving it ----------------------------------------------------------------------------


@contextmanager
def serve_dist(dist: Path, config: dict[str, Any]) -> Iterator[tuple[str, list[tuple[int, str]]]]:
    """``dist`` on 127.0.0.1 with ``/config.js`` answering ``config`` and every unknown path
    answering ``index.html``. Yields the base URL and the list of (status, path) it answered."""
    body = f"window.STAC_BROWSER_CONFIG = {json.dumps(config)};".encode()
    answered: list[tuple[int, str]] = []

    class Handler(http.server.SimpleHTTPRequestHandler):
        def send_head(self) -> Any:
            path = self.path.split("?", 1)[0]
            if path == "/config.js":
                self.send_response(200)
                self.send_header("Content-Type", "text/javascript")
                self.send_header("Content-Length", str(len(body)))
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                return _Bytes(body)
            if not os.path.exists(self.translate_path(path)):
                self.path = "/index.html"
            return super().send_head()

        def log_request(self, code: Any = "-", size: Any = "-") -> None:
            answered.append((int(code) if str(code).isdigit() else 0, self.path))

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=str(dist)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", answered
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


class _Bytes:
    """What SimpleHTTPRequestHandler.copyfile reads a generated body from."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, n: int = -1) -> bytes:
        data, self.data = (self.data, b"") if n < 0 else (self.data[:n], self.data[n:])
        return data

    def close(self) -> None:
        pass


@contextmanager
def api_server(roots: list[str], log: Path) -> Iterator[str]:
    """This server on ``roots`` with its access log in ``log``; yields its base URL with a slash."""
    port = free_port()
    cmd = [sys.executable, "-m", "server", "serve", *roots, "--host", "127.0.0.1", "--port", str(port),
           "--log-level", "info"]
    env = clean_env({"PYTHONPATH": REPO})
    proc = spawn(cmd, cwd=REPO, env=env, log=str(log))
    try:
        wait_ready(port, proc, timeout=120)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop(proc)


def access_errors(log: Path) -> list[str]:
    """The access log's lines that answered 4xx or 5xx."""
    return [line.strip() for line in log.read_text().splitlines()
            if re.search(r'" [45]\d\d\b', line)]


@contextmanager
def chromium() -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or shutil.which("chromium-browser") or ""
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", f"--user-data-dir={profile}",
                 "--window-size=1280,1400", "--lang=en-US"):
        options.add_argument(flag)
    # performance: the requests the page sends (a POST search's body), to ask the API the same
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    service = Service(shutil.which("chromedriver") or "", env={**os.environ, "TZ": "UTC"})
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


# -- what a person does --------------------------------------------------------------------


class Run:
    """One STAC Browser in front of one API: a person's steps, each checked against the JSON API."""

    def __init__(self, driver: Any, api: str, browser: str, shots: Path, name: str) -> None:
        self.driver, self.api, self.browser, self.shots, self.name = driver, api, browser, shots, name
        self.http = httpx.Client(timeout=30, trust_env=False)  # loopback: never through a proxy
        self.failures: list[str] = []
        self.screenshots: list[tuple[str, str]] = []

    # -- helpers

    def check(self, ok: bool, what: str) -> bool:
        print(f"  [{'ok' if ok else 'FAIL'}] {self.name}: {what}", flush=True)
        if not ok:
            self.failures.append(f"{self.name}: {what}")
        return ok

    def wait(self, condition: Callable[[Any], Any], what: str, timeout: float = WAIT) -> Any:
        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.2).until(condition)
        except TimeoutException:
            self.shot(f"timeout-{len(self.failures)}", f"what the page showed when waiting for {what} timed out")
            self.check(False, f"{what} (not within {timeout} s)")
            return None

    def shot(self, name: str, description: str) -> None:
        path = self.shots / f"{self.name}-{name}.png"
        self.driver.save_screenshot(str(path))
        self.screenshots.append((path.name, description))

    def open(self, path: str) -> None:
        self.driver.get(self.browser + path)

    def console_errors(self) -> list[str]:
        """Console errors since the last call, without those of the unreachable OFFLINE_HOSTS."""
        return [e["message"] for e in self.driver.get_log("browser")
                if e["level"] == "SEVERE" and not any(h in e["message"] for h in OFFLINE_HOSTS)]

    def requests_to_api(self) -> list[dict[str, Any]]:
        """The requests the page sent to the API since the last call (method, url, body)."""
        sent = []
        for entry in self.driver.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                request = message["params"]["request"]
                if request["url"].startswith(self.api) and request["method"] in ("GET", "POST"):
                    sent.append({"method": request["method"], "url": request["url"],
                                 "body": json.loads(request["postData"]) if request.get("postData") else None})
        return sent

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        response = self.http.get(self.api + path.lstrip("/"), params=params)
        response.raise_for_status()
        return response.json()

    def follow(self, doc: dict[str, Any], rel: str) -> Any:
        """The API's page behind ``doc``'s link ``rel`` (GET or POST, body merged as the spec says)."""
        link = next(link for link in doc["links"] if link["rel"] == rel)
        if link.get("method", "GET") == "POST":
            response = self.http.post(link["href"], json=link.get("body") or {})
        else:
            response = self.http.get(link["href"])
        response.raise_for_status()
        return response.json()

    def ids_shown(self, css: str) -> list[str]:
        """The last path segment of each STAC link matching ``css``, in page order."""
        hrefs = [a.get_attribute("href") or "" for a in self.driver.find_elements(By.CSS_SELECTOR, css)]
        return [h.rstrip("/").rsplit("/", 1)[-1] for h in hrefs]

    def item_ids(self, scope: str = "") -> list[str]:
        return self.ids_shown(f"{scope} section.items a.stac-link.stretched-link")

    def collection_ids(self, scope: str = "") -> list[str]:
        return self.ids_shown(f"{scope} section.catalogs a.stac-link.stretched-link")

    def wait_ids(self, read: Callable[[], list[str]], expected: list[str], what: str) -> list[str]:
        """Wait until ``read()`` gives ``expected``; then (or on timeout) check it and return it."""
        self.wait(lambda d: read() == expected, what)
        shown = read()
        self.check(shown == expected, f"{what}: page shows {shown}, API answers {expected}")
        return shown

    def click_button(self, text: str, scope: str = "section.items") -> None:
        buttons = [b for b in self.driver.find_elements(By.CSS_SELECTOR, f"{scope} button")
                   if b.text.strip().endswith(text) or b.text.strip().startswith(text)]
        if not self.check(bool(buttons) and buttons[0].is_enabled(), f"the {text!r} button is there and enabled"):
            return
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", buttons[0])
        buttons[0].click()

    def pagination_enabled(self, scope: str = "section.items") -> dict[str, bool]:
        return {b.text.strip(" «‹›»"): b.is_enabled()
                for b in self.driver.find_elements(By.CSS_SELECTOR, f"{scope} .btn-group:first-of-type button")}

    # -- the steps

    def landing(self, per_page: int) -> None:
        """The landing page: the catalog's title, its collections all listed (STAC Browser loads
        the pages of /collections through their next links as the list scrolls)."""
        root = self.get("/")
        self.console_errors(), self.requests_to_api()
        self.open("/")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "h1") and
                  d.find_element(By.CSS_SELECTOR, "h1").text == root["title"], "the landing page's title")
        expected, page = [], self.get("/collections", {"limit": per_page})
        pages = 1
        while True:
            expected += [c["id"] for c in page["collections"]]
            if not any(link["rel"] == "next" for link in page["links"]):
                break
            page, pages = self.follow(page, "next"), pages + 1
        # scroll until no "Load more" is left (it loads by itself when it comes into view; when
        # it stays in view after a page came, as under 5 cards in rows of 3, it is not seen to
        # come again: it is clicked, as a person would)
        deadline = time.monotonic() + WAIT * 2
        seen = 0.0
        while time.monotonic() < deadline:
            self.driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
            time.sleep(0.5)
            more = [b for b in self.driver.find_elements(By.CSS_SELECTOR, "section.catalogs > button")
                    if b.is_displayed()]
            if not more and len(self.collection_ids()) >= len(expected):
                break
            seen = seen + 0.5 if more else 0.0
            if seen >= 3:
                try:
                    more[0].click()
                except (StaleElementReferenceException, ElementClickInterceptedException):
                    pass
                seen = 0.0
        self.driver.execute_script("window.scrollTo(0, 0);")
        shown = self.collection_ids()
        self.check(sorted(shown) == sorted(expected),
                   f"the landing page lists the {len(expected)} collections of /collections "
                   f"({len(shown)} shown, {len(set(shown))} distinct)")
        walked = [r["url"] for r in self.requests_to_api() if "/collections?" in r["url"] and "token=" in r["url"]]
        self.check(len(walked) >= pages - 1,
                   f"STAC Browser walked /collections in pages of {per_page} through next links "
                   f"({len(walked)} next pages fetched, {pages} pages)")
        self.shot("landing", f"the landing page: title, description, and the {len(expected)} collections "
                  f"as cards, loaded {per_page} at a time")
        self.expect_no_console_error("landing page")

    def collection_items(self, collection: str) -> str:
        """A collection's page: its items, Next, Previous, First; returns the first item's id."""
        first = self.get(f"/collections/{collection}/items", {"limit": PAGE})
        second = self.follow(first, "next")
        third = self.follow(second, "next") if any(link["rel"] == "next" for link in second["links"]) else None
        self.open(f"/collections/{collection}")
        ids = [f["id"] for f in first["features"]]
        self.wait_ids(self.item_ids, ids, f"{collection}: the first page of items")
        badge = self.driver.find_elements(By.CSS_SELECTOR, "section.items header .badge")
        self.check(bool(badge) and badge[0].text == str(first["numberMatched"]),
                   f"{collection}: the items' count shows numberMatched {first['numberMatched']}")
        state = self.pagination_enabled()
        self.check(state.get("Next") is True and state.get("Previous") is False,
                   f"{collection}: on page 1 Next is enabled, Previous not ({state})")
        pictured = any("thumbnail" in a.get("roles", []) for f in first["features"] for a in f["assets"].values())
        self.shot("collection", f"collection {collection}: description, map of the extent and footprints, "
                  f"items 1-{len(ids)} of {first['numberMatched']}{' with thumbnails' if pictured else ''}")
        self.click_button("Next")
        self.wait_ids(self.item_ids, [f["id"] for f in second["features"]], f"{collection}: Next (page 2)")
        state = self.pagination_enabled()
        self.check(state.get("Previous") is True and state.get("First") is True,
                   f"{collection}: on page 2 Previous and First are enabled ({state})")
        self.shot("collection-page2", f"collection {collection} after Next: the second page of items, "
                  "Previous and First enabled")
        if third is not None:
            self.click_button("Next")
            self.wait_ids(self.item_ids, [f["id"] for f in third["features"]], f"{collection}: Next (page 3)")
        self.click_button("Previous")
        expected = second if third is not None else first
        self.wait_ids(self.item_ids, [f["id"] for f in expected["features"]],
                      f"{collection}: Previous (back to page {2 if third is not None else 1})")
        self.click_button("First")
        self.wait_ids(self.item_ids, ids, f"{collection}: First (page 1 again)")
        self.expect_no_console_error(f"collection {collection}")
        return ids[0]

    def item(self, collection: str, item_id: str) -> None:
        """An item's page: its title, the map with its footprint, its thumbnail loaded."""
        doc = self.get(f"/collections/{collection}/items/{item_id}")
        title = doc["properties"].get("title") or doc["id"]
        self.open(f"/collections/{collection}/items/{item_id}")
        self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, "h1") and
                  d.find_element(By.CSS_SELECTOR, "h1").text == title, f"item {item_id}: its title")
        self.check(self.wait(lambda d: d.find_elements(By.CSS_SELECTOR, ".map-container canvas, .ol-viewport canvas"),
                             f"item {item_id}: its map") is not None, f"item {item_id}: a map is drawn")
        self_href = next(link["href"] for link in doc["links"] if link["rel"] == "self")
        thumbnails = [urljoin(self_href, a["href"]) for a in doc["assets"].values() if "thumbnail" in a.get("roles", [])]
        time.sleep(1)  # the map's footprint settles
        self.shot("item", f"item {item_id}: title, map with its footprint, metadata and assets")
        if thumbnails:
            tab = [a for a in self.driver.find_elements(By.CSS_SELECTOR, ".nav a, .nav button")
                   if a.text.strip() == "Thumbnails"]
            if self.check(bool(tab), f"item {item_id}: a Thumbnails tab beside the map"):
                tab[0].click()
            loaded = self.wait(lambda d: d.execute_script(
                "return Array.from(document.images).some(i => i.src === arguments[0] && i.complete"
                " && i.naturalWidth > 0 && i.offsetWidth > 0);", thumbnails[0]), f"item {item_id}: its thumbnail")
            self.check(bool(loaded), f"item {item_id}: the thumbnail {thumbnails[0]} is shown")
            self.shot("item-thumbnail", f"item {item_id}: its thumbnail, served by the API, in the Thumbnails tab")
        self.expect_no_console_error(f"item {item_id}")

    def _search_tab(self, label: str) -> Any:
        self.open("/search")
        tab = self.wait(lambda d: [a for a in d.find_elements(By.CSS_SELECTOR, ".nav-tabs a") if a.text == label],
                        f"the search page's tab {label!r}")
        if not tab:
            return None
        tab[0].click()
        return self.wait(lambda d: d.find_element(By.CSS_SELECTOR, ".tab-pane.active form.filter"),
                         f"the form of {label!r}")

    def _submit(self, form: Any) -> dict[str, Any] | None:
        """Submit ``form``; the search request it sent."""
        self.requests_to_api()
        form.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        return self._sent("search")

    def _sent(self, what: str) -> dict[str, Any] | None:
        found: list[dict[str, Any]] = []

        def sent(_: Any) -> bool:
            found.extend(r for r in self.requests_to_api() if r["url"].split("?")[0].endswith(("/search", "/collections")))
            return bool(found)

        self.wait(sent, f"the {what} request")
        return found[-1] if found else None

    def item_search(self, datetime: tuple[str, str], around: tuple[float, float]) -> None:
        """Search for Items: a date range typed, a bbox drawn on the map around ``around``
        (lon, lat), submitted; the results and their pages against the API's."""
        form = self._search_tab("Search for Items")
        if form is None:
            return
        typed = form.find_element(By.CSS_SELECTOR, ".filter-datetime input")
        typed.send_keys(f"{datetime[0]} ~ {datetime[1]}")
        typed.send_keys(Keys.ENTER)
        form.find_element(By.CSS_SELECTOR, ".filter-bbox label").click()
        canvas = self.wait(lambda d: form.find_element(By.CSS_SELECTOR, ".filter-bbox .ol-viewport"), "the bbox map")
        if canvas is None:
            return
        self._zoom_to(form, around)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", canvas)
        # a click in the map draws a box around the clicked point (STAC Browser's MapSelect)
        webdriver.ActionChains(self.driver).move_to_element(canvas).click().perform()
        time.sleep(0.5)
        request = self._submit(form)
        if request is None:
            return
        body = request["body"] or {}
        bbox = body.get("bbox")
        self.check(request["method"] == "POST" and isinstance(bbox, list) and len(bbox) == 4
                   and bbox[0] < around[0] < bbox[2] and bbox[1] < around[1] < bbox[3],
                   f"item search: STAC Browser POSTed a bbox around {around}: {bbox}")
        want = f"{datetime[0].replace(' ', 'T')}.000Z/{datetime[1].replace(' ', 'T')}.000Z"
        self.check(body.get("datetime") == want, f"item search: the typed dates were sent ({body.get('datetime')})")
        api = self.get("/search", {"bbox": ",".join(map(str, bbox or [])), "datetime": want, "limit": PAGE})
        ids = [f["id"] for f in api["features"]]
        self.check(len(ids) > 0, f"item search: the query matches items ({api['numberMatched']})")
        self.wait_ids(self.item_ids, ids, "item search: the results")
        badge = self.driver.find_elements(By.CSS_SELECTOR, "section.items header .badge")
        self.check(bool(badge) and badge[0].text == str(api["numberMatched"]),
                   f"item search: the count shows numberMatched {api['numberMatched']}")
        self.driver.execute_script("window.scrollTo(0, 0);")
        self.shot("search", f"item search: dates {datetime[0]} ~ {datetime[1]} and a bbox drawn around "
                  f"{around} in the form, map of the results, {api['numberMatched']} items, first {len(ids)}")
        if not any(link["rel"] == "next" for link in api["links"]):
            self.check(False, "item search: the query has more than one page (choose another)")
            return
        second = self.follow(api, "next")
        self.click_button("Next")
        self.wait_ids(self.item_ids, [f["id"] for f in second["features"]], "item search: Next (page 2)")
        self.driver.execute_script("window.scrollTo(0, 0);")
        self.shot("search-page2", "item search after Next: the second page of results, Previous enabled")
        self.click_button("Previous")
        self.wait_ids(self.item_ids, ids, "item search: Previous (page 1 again)")
        self.expect_no_console_error("item search")

    def _zoom_to(self, form: Any, around: tuple[float, float]) -> None:
        """Centre the bbox map on ``around`` at zoom 6, as a person would by panning and zooming
        (STAC Browser's OpenLayers map, reached through its Vue component)."""
        self.driver.execute_script("""
            let vm = null;
            for (let e = arguments[0]; e && !vm; e = e.parentElement) {
              if (e.__vue__ && e.__vue__.map) { vm = e.__vue__; }
            }
            const view = vm.map.getView();
            const [lon, lat] = arguments[1];
            let xy = [lon, lat];
            if (view.getProjection().getCode() === 'EPSG:3857') {
              xy = [lon * 20037508.34 / 180,
                    Math.log(Math.tan((90 + lat) * Math.PI / 360)) / (Math.PI / 180) * 20037508.34 / 180];
            }
            view.setCenter(xy);
            view.setZoom(6);
        """, form.find_element(By.CSS_SELECTOR, ".filter-bbox .ol-viewport"), list(around))
        time.sleep(0.5)

    def filter_queryable(self, name: str, below: float) -> None:
        """Search for Items with one filter: ``name`` < ``below``, chosen from the queryables."""
        form = self._search_tab("Search for Items")
        if form is None:
            return
        add = self.wait(lambda d: form.find_element(By.CSS_SELECTOR, ".queryables .dropdown-toggle"),
                        "the 'Add filter' menu (from /queryables)")
        if add is None:
            return
        add.click()
        choices = [a for a in form.find_elements(By.CSS_SELECTOR, ".queryables .dropdown-item")
                   if a.find_element(By.CSS_SELECTOR, ".badge").text == name]
        if not self.check(bool(choices), f"filter: {name} is offered as a queryable"):
            return
        choices[0].click()
        row = self.wait(lambda d: form.find_element(By.CSS_SELECTOR, ".queryable-group"), "the filter's row")
        if row is None:
            return
        # the operator: the menu lists them; pick "<"
        row.find_element(By.CSS_SELECTOR, ".op .dropdown-toggle-split, .op button.dropdown-toggle").click()
        operators = [b for b in row.find_elements(By.CSS_SELECTOR, ".op .dropdown-item")
                     if b.find_element(By.CSS_SELECTOR, ".badge").text == "<"]
        if not self.check(bool(operators), "filter: the operator < is offered"):
            return
        operators[0].click()
        value = row.find_element(By.CSS_SELECTOR, "input.value")
        value.clear()
        value.send_keys(str(below))
        request = self._submit(form)
        if request is None:
            return
        body = request["body"] or {}
        self.check("filter" in body, f"filter: STAC Browser sent a CQL2 filter: {body.get('filter')} "
                   f"({body.get('filter-lang')})")
        api = self.get("/search", {"filter": f'"{name}" < {below}', "filter-lang": "cql2-text", "limit": PAGE})
        ids = [f["id"] for f in api["features"]]
        self.check(0 < api["numberMatched"] < self.get("/search", {"limit": 1})["numberMatched"],
                   f"filter: {name} < {below} keeps some items, not all ({api['numberMatched']})")
        self.wait_ids(self.item_ids, ids, f"filter {name} < {below}: the results")
        self.shot("filter", f"item search with the filter {name} < {below} (from the queryables menu): "
                  f"{api['numberMatched']} items")
        self.expect_no_console_error("filter")

    def collection_search(self, words: str) -> None:
        """Search for Collections with words (q)."""
        form = self._search_tab("Search for Collections")
        if form is None:
            return
        terms = form.find_element(By.CSS_SELECTOR, ".filter-freetext .multiselect")
        terms.click()
        typed = terms.find_element(By.CSS_SELECTOR, "input")
        typed.send_keys(words)
        typed.send_keys(Keys.ENTER)
        request = self._submit(form)
        if request is None:
            return
        self.check(f"q={words}" in request["url"] or (request["body"] or {}).get("q") in (words, [words]),
                   f"collection search: q={words} was sent ({request['url']})")
        api = self.get("/collections", {"q": words})
        ids = [c["id"] for c in api["collections"]]
        self.check(len(ids) > 0, f"collection search: q={words} matches collections ({ids})")
        self.wait_ids(lambda: self.collection_ids(".search .right"), ids, f"collection search q={words}")
        self.shot("collection-search", f"collection search for {words!r}: the matching collections as cards, "
                  "a map of their extents")
        self.expect_no_console_error("collection search")

    def expect_no_console_error(self, where: str) -> None:
        errors = self.console_errors()
        self.check(not errors, f"{where}: no console error {errors[:3]}")

    def _settled(self, read: Callable[[], list[str]]) -> Callable[[], list[str]]:
        """``read``, read again while the page re-renders under it (an element replaced as it is
        read); [] if it never settles within a few seconds."""
        def safe() -> list[str]:
            for _ in range(20):
                try:
                    return read()
                except StaleElementReferenceException:
                    time.sleep(0.1)
            return []
        return safe

    def _load_all_cards(self, count: int) -> None:
        """Scroll until ``count`` catalog cards are shown (more load as "Load more..." comes into
        view; STAC Browser 4.0.1 keeps showing that button under an API's landing page with
        apiCatalogPriority "childs" while /collections has a next page, so its presence says
        nothing here)."""
        deadline = time.monotonic() + WAIT
        cards = self._settled(self.collection_ids)
        while len(cards()) < count and time.monotonic() < deadline:
            self.driver.execute_script("window.scrollTo(0, document.body.scrollHeight);")
            time.sleep(0.5)
        self.driver.execute_script("window.scrollTo(0, 0);")

    def tree(self, most: int = 10) -> None:
        """The catalog's own tree (apiCatalogPriority "childs"): the landing page and, breadth
        first, up to ``most`` catalogs and collections below it, each opened by clicking its card
        on its parent's page; each lists the catalogs and collections its child links name, in
        their order, and a catalog the items its item links name (a collection's items come from
        its /items, checked by collection_items)."""
        frontier: list[tuple[str, str | None]] = [(self.api, None)]  # (API href, the card to click on the page shown)
        opened = 0
        while frontier and opened < most:
            href, card = frontier.pop(0)
            doc = self.http.get(href).json()
            name = doc.get("title") or doc["id"]
            if card is None:
                self.open("/")
            elif not self.check(self._click_card(card), f"tree: a card for {href} on its parent's page"):
                continue
            self._wait_title(name, f"tree: {href} opens ({name!r})")
            opened += 1
            children = [link["href"] for link in doc["links"] if link["rel"] == "child"]
            expected = [h.rstrip("/").rsplit("/", 1)[-1] for h in children]
            self._load_all_cards(len(expected))
            self.wait_ids(self._settled(self.collection_ids), expected, f"tree: {href} lists its children in order")
            if doc["type"] == "Catalog":
                items = [link["href"].rsplit("/", 1)[-1] for link in doc["links"] if link["rel"] == "item"]
                if items:
                    self.wait_ids(self._settled(lambda: self.item_ids()[:PAGE]), items[:PAGE],
                                  f"tree: {href} lists its items")
            if opened == 1 or (doc["type"] == "Catalog" and items and len(self.screenshots) < 12):
                self.shot(f"tree-{opened}", f"{href}: the catalog's own children, in its order"
                          + (" and its items" if doc["type"] == "Catalog" and items else ""))
            self.expect_no_console_error(f"tree: {href}")
            # its children are opened from its page: come back to it before each
            frontier += [(h, h.rstrip("/").rsplit("/", 1)[-1]) for h in children]
            if frontier and frontier[0][1] is not None:
                parent = self._parent_of(frontier[0][0])
                if parent is not None and parent != href:
                    back = self.http.get(parent).json()
                    self.open("/" + parent[len(self.api):])
                    self._wait_title(back.get("title") or back["id"], f"tree: back to {parent}")

    def _wait_title(self, name: str, what: str) -> None:
        self.wait(lambda d: self._settled(lambda: [e.text for e in d.find_elements(By.CSS_SELECTOR, "h1")])() == [name],
                  what)

    def _click_card(self, segment: str) -> bool:
        """Click the card linking to ``segment`` (found again when the page re-renders under it)."""
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            for card in self._cards_to(segment)[:1]:
                try:
                    self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", card)
                    # clicked on the element itself, not at its place on the screen: cards still
                    # loading below shift the layout, and a click at the old place opened a
                    # sibling (CI: kam's card clicked, acc's page opened)
                    self.driver.execute_script("arguments[0].click();", card)
                    return True
                except StaleElementReferenceException:
                    pass
            time.sleep(0.2)
        return False

    def _cards_to(self, segment: str) -> list[Any]:
        """The catalog cards on the page linking to a path ending with ``segment`` ([] while the
        page re-renders under the search)."""
        try:
            return [a for a in self.driver.find_elements(By.CSS_SELECTOR, "section.catalogs a.stac-link.stretched-link")
                    if (a.get_attribute("href") or "").rstrip("/").endswith("/" + segment)]
        except StaleElementReferenceException:
            return []

    def _parent_of(self, href: str) -> str | None:
        doc = self.http.get(href).json()
        return next((link["href"] for link in doc["links"] if link["rel"] == "parent"), None)


# -- the run -------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("roots", nargs="*", default=DEFAULT_ROOTS,
                        help="catalogs for the second API (default: MODIS examples + pystac test-case-4)")
    parser.add_argument("--cache", type=Path, default=Path(os.environ.get("STAC_BROWSER_CACHE") or
                                                           Path.home() / ".cache" / "stac-static-api"))
    parser.add_argument("--screenshots", type=Path, default=None)
    args = parser.parse_args(argv)
    if shutil.which("chromedriver") is None:
        print("chromedriver not found (apt-get install chromium chromium-driver)", file=sys.stderr)
        return 2
    shots = args.screenshots or Path(tempfile.mkdtemp(prefix="stac-browser-shots-"))
    shots.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        dist, times = build(args.cache)
    except RuntimeError as exc:
        print(f"cannot build STAC Browser: {exc}", file=sys.stderr)
        return 2
    built = time.perf_counter() - t0
    how = f"built in {built:.0f} s: {times}" if times else "reused"
    print(f"STAC Browser {VERSION}: {dist} ({how})")
    failures: list[str] = []
    screenshots: list[tuple[str, str]] = []
    logs = Path(tempfile.mkdtemp(prefix="stac-browser-logs-"))
    t1 = time.perf_counter()
    with chromium() as driver:
        # 1. the bundled sample: every step
        with api_server([], logs / "sample.log") as api, \
                serve_dist(dist, {"catalogUrl": api, "collectionsPerPage": 2, "itemsPerPage": PAGE,
                                  "searchResultsPerPage": PAGE, **SHOWN_AS_SERVED}) as (sb, answered):
            run = Run(driver, api, sb, shots, "sample")
            run.landing(per_page=2)
            first = run.collection_items("sentinel-2-l2a-nl")
            run.item("sentinel-2-l2a-nl", first)
            run.item_search(("2021-01-01 00:00:00", "2023-12-31 23:59:59"), around=(5.0, 51.5))
            run.filter_queryable("eo:cloud_cover", 10)
            run.collection_search("NDVI")
            run.check(not access_errors(logs / "sample.log"),
                      f"the API answered no 4xx/5xx: {access_errors(logs / 'sample.log')[:5]}")
            missing = [(status, path) for status, path in answered if status >= 400]
            run.check(not missing, f"STAC Browser's own files all found: {missing[:5]}")
            failures += run.failures
            run.http.close()
            screenshots += run.screenshots
        # 2. real public catalogs: 43 collections paged, a collection's items
        with api_server(args.roots, logs / "shared.log") as api, \
                serve_dist(dist, {"catalogUrl": api, "collectionsPerPage": 10, "itemsPerPage": PAGE,
                                  "searchResultsPerPage": PAGE, **SHOWN_AS_SERVED}) as (sb, _):
            run = Run(driver, api, sb, shots, "shared")
            run.landing(per_page=10)
            biggest = max(run.get("/collections", {"limit": 100})["collections"],
                          key=lambda c: run.get(f"/collections/{c['id']}/items", {"limit": 1})["numberMatched"])
            first = run.collection_items(biggest["id"])
            run.item(biggest["id"], first)
            run.check(not access_errors(logs / "shared.log"),
                      f"the API answered no 4xx/5xx: {access_errors(logs / 'shared.log')[:5]}")
            failures += run.failures
            run.http.close()
            screenshots += run.screenshots
        # 3. the catalogs' own trees, clicked through from the landing page
        for name, roots in (("sample-tree", []), ("shared-tree", args.roots)):
            with api_server(roots, logs / f"{name}.log") as api, \
                    serve_dist(dist, {"catalogUrl": api, "collectionsPerPage": 10, "itemsPerPage": PAGE,
                                      **SHOWN_AS_ARRANGED}) as (sb, _):
                run = Run(driver, api, sb, shots, name)
                run.tree()
                run.check(not access_errors(logs / f"{name}.log"),
                          f"the API answered no 4xx/5xx: {access_errors(logs / f'{name}.log')[:5]}")
                failures += run.failures
                run.http.close()
                screenshots += run.screenshots
    print(f"\nbrowser checks: {time.perf_counter() - t1:.0f} s; build: {built:.0f} s "
          f"({'cold' if times else 'warm, reused'}); server logs: {logs}")
    print(f"screenshots in {shots}:")
    for name, description in screenshots:
        print(f"  {name}: {description}")
    if failures:
        print(f"\n{len(failures)} check(s) failed:")
        for failure in failures:
            print(f"  - {failure}")
        return 1
    print("\nevery check passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
