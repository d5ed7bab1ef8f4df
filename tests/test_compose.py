"""docker-compose.yml and the Dockerfile: no Docker engine runs here, so check that what they
say refers to real things: services, the build, files, the CLI's arguments, health URLs.
(The same topology runs for real in test_reload: the API over a catalog on an HTTP server.)"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from server.api.app import http_app
from server.api.routes import route_table
from server.runtime.cli import build_parser
from server.settings import Settings
from tests.helpers import REPO

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()
ROUTES = {route.path for route in route_table()}


def health_path(test: list[str]) -> str:
    url = re.search(r"https?://[^'\" ]+", " ".join(test))
    assert url, test
    return urlsplit(url.group(0)).path


def entrypoint() -> list[str]:
    line = next(ln for ln in DOCKERFILE.splitlines() if ln.startswith("ENTRYPOINT"))
    return json.loads(line[len("ENTRYPOINT"):])


def test_services_are_a_bucket_and_the_api() -> None:
    services = COMPOSE["services"]
    # what `docker compose up` starts; STAC Browser only with --profile browser
    assert {name for name, service in services.items() if not service.get("profiles")} == {"bucket", "api"}
    assert services["api"]["depends_on"]["bucket"]["condition"] == "service_healthy"
    assert "8000:8000" in services["api"]["ports"]


def test_bucket_serves_a_real_catalog_folder() -> None:
    for volume in COMPOSE["services"]["bucket"]["volumes"]:
        source, target = volume.split(":")[:2]
        folder = (REPO / source).resolve()
        assert folder.is_dir(), source
        assert (folder / "catalog.json").is_file()
        assert target == "/usr/share/nginx/html"


def test_api_is_built_from_the_repo_and_its_command_parses() -> None:
    api = COMPOSE["services"]["api"]
    context = REPO / api["build"]["context"]
    assert (context / api["build"]["dockerfile"]).is_file()
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY"):
            for source in shlex.split(line)[1:-1]:
                assert (context / source).exists(), source
    program, *args = entrypoint() + api["command"]
    assert program == "stac-static-api"
    parsed = build_parser().parse_args(args)
    assert parsed.command == "serve"
    root = urlsplit(parsed.roots[0])
    assert root.hostname == "bucket"  # the compose service name
    assert parsed.port == 8000 and parsed.host == "0.0.0.0"


def test_health_checks_hit_real_endpoints() -> None:
    assert health_path(COMPOSE["services"]["api"]["healthcheck"]["test"]) in ROUTES
    assert "/_mgmt/ready" in ROUTES
    docker_health = next(ln for ln in DOCKERFILE.splitlines() if "CMD python" in ln)
    assert health_path([docker_health]) == "/_mgmt/ready"
    bucket_check = health_path(COMPOSE["services"]["bucket"]["healthcheck"]["test"])
    assert (REPO / "server/sample/catalog" / Path(bucket_check).name).is_file()


def test_stac_browser_is_optional_and_points_at_the_api() -> None:
    browser = COMPOSE["services"]["browser"]
    assert browser["profiles"] == ["browser"]
    image, tag = browser["image"].rsplit(":", 1)
    assert image == "ghcr.io/radiantearth/stac-browser"
    assert tag == stac_browser_version()  # the version bench/stac_browser.py tests
    # the API's URL as a browser on the host reaches it: the published port, with the slash of
    # the landing page's self link (STAC Browser compares the two)
    url = urlsplit(browser["environment"]["SB_catalogUrl"])
    published = next(p.split(":")[0] for p in COMPOSE["services"]["api"]["ports"])
    assert (url.scheme, url.hostname, str(url.port), url.path) == ("http", "localhost", published, "/")
    assert browser["depends_on"]["api"]["condition"] == "service_healthy"
    assert "8080:8080" in browser["ports"]  # the image's nginx listens on 8080


def stac_browser_version() -> str:
    source = (REPO / "bench" / "stac_browser.py").read_text()
    found = re.search(r'^VERSION = "([^"]+)"', source, re.MULTILINE)
    assert found
    return found.group(1)


def test_the_optional_prometheus_scrapes_the_apis_metrics() -> None:
    """`docker compose --profile metrics up`: Prometheus with prometheus.yml, scraping a route
    the API serves, at the api service's port."""
    prometheus = COMPOSE["services"]["prometheus"]
    assert prometheus["profiles"] == ["metrics"]
    assert prometheus["depends_on"]["api"]["condition"] == "service_healthy"
    [volume] = prometheus["volumes"]
    source, target = volume.split(":")[:2]
    assert target == "/etc/prometheus/prometheus.yml"
    config = yaml.safe_load((REPO / source).read_text())
    [job] = config["scrape_configs"]
    assert job["metrics_path"] in {route.path for route in http_app(Settings(), lambda app: None).routes}
    [target_host] = [t for group in job["static_configs"] for t in group["targets"]]
    assert target_host == "api:" + COMPOSE["services"]["api"]["ports"][0].split(":")[-1]
