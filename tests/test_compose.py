"""docker-compose.yml, the Dockerfile and .dockerignore without a container engine: what they
say refers to real things (services, files, the CLI's arguments, health URLs), and the api's
health check, run as compose runs it, passes against a real server on the port the environment
names and fails where nothing listens. tests/test_container.py runs them all for real (podman)."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from server.api.app import http_app
from server.api.routes import route_table
from server.runtime.cli import build_parser
from server.settings import Settings
from tests.helpers import REPO, free_port, run_server

COMPOSE = yaml.safe_load((REPO / "docker-compose.yml").read_text())
DOCKERFILE = (REPO / "Dockerfile").read_text()
DOCKERIGNORE = (REPO / ".dockerignore").read_text()
ROUTES = {route.path for route in route_table()}


def interpolate(value: str, env: dict[str, str] | None = None) -> str:
    """Compose's `${NAME}` / `${NAME:-default}` with `env` (no variable set: the defaults)."""
    env = env or {}

    def one(match: re.Match[str]) -> str:
        return env.get(match.group(1)) or match.group(2) or ""

    return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", one, value)


def health_path(test: str) -> str:
    url = re.search(r"https?://[^'\" ]+", test)
    assert url, test
    return urlsplit(url.group(0).replace("%s", "8000")).path


def entrypoint() -> list[str]:
    line = next(ln for ln in DOCKERFILE.splitlines() if ln.startswith("ENTRYPOINT"))
    return json.loads(line[len("ENTRYPOINT"):])


def dockerfile_env() -> dict[str, str]:
    text = DOCKERFILE.replace("\\\n", " ")
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in shlex.split(line[4:]))
    return env


def test_services_are_a_bucket_and_the_api() -> None:
    services = COMPOSE["services"]
    # Optional services (a browser, monitoring) sit behind profiles: `up` alone starts these two.
    assert {name for name, service in services.items() if "profiles" not in service} == {"bucket", "api"}
    assert services["api"]["depends_on"]["bucket"]["condition"] == "service_healthy"
    assert [interpolate(port) for port in services["api"]["ports"]] == ["8000:8000"]
    assert interpolate(services["api"]["environment"]["STAC_STATIC_PORT"]) == "8000"


def test_the_bucket_serves_a_real_catalog_folder_published_on_the_host() -> None:
    bucket = COMPOSE["services"]["bucket"]
    for volume in bucket["volumes"]:
        source, target = interpolate(volume).split(":")[:2]
        folder = (REPO / source).resolve()
        assert folder.is_dir(), source
        assert (folder / "catalog.json").is_file()
        assert target == "/usr/share/nginx/html"
    assert [interpolate(port) for port in bucket["ports"]] == ["8081:80"]


def test_no_two_services_publish_the_same_host_port() -> None:
    """Every profile at once (`--profile browser` and the others start beside bucket and api)."""
    published = [interpolate(port).rsplit(":", 1)[0] for service in COMPOSE["services"].values()
                 for port in service.get("ports", [])]
    assert len(published) == len(set(published)), published


def test_hrefs_under_the_bucket_are_mapped_to_its_published_address() -> None:
    api = COMPOSE["services"]["api"]
    root = urlsplit(api["command"][0])
    mapping = json.loads(interpolate(api["environment"]["STAC_STATIC_PUBLIC_HREFS"]))
    assert len(mapping) == 1
    source, public = mapping[0].split("=", 1)
    assert api["command"][0].startswith(source) and source == f"http://{root.hostname}/"
    host_port = interpolate(COMPOSE["services"]["bucket"]["ports"][0]).split(":")[0]
    assert urlsplit(public).port == int(host_port)
    moved = json.loads(interpolate(api["environment"]["STAC_STATIC_PUBLIC_HREFS"],
                                   {"BUCKET_PUBLIC_URL": "https://data.example.org/"}))
    assert moved == ["http://bucket/=https://data.example.org/"]


def test_the_api_is_built_from_the_repo_and_its_command_parses() -> None:
    api = COMPOSE["services"]["api"]
    context = REPO / api["build"]["context"]
    assert (context / api["build"].get("dockerfile", "Dockerfile")).is_file()
    allowed = {line[1:].rstrip("/") for line in DOCKERIGNORE.splitlines() if line.startswith("!")}
    for line in DOCKERFILE.splitlines():
        if line.startswith("COPY"):
            for source in shlex.split(line)[1:-1]:
                assert (context / source).exists(), source
                assert source.rstrip("/") in allowed, f"{source} is COPYed but .dockerignore keeps it out"
    program, *args = entrypoint() + api["command"]
    assert program == "stac-static-api"
    parsed = build_parser().parse_args(args)
    assert parsed.command == "serve"
    assert urlsplit(parsed.roots[0]).hostname == "bucket"  # the compose service name
    # Neither the entrypoint nor the command fixes the address: the environment decides, and the
    # image's default listens on all of the container's interfaces.
    assert parsed.port is None and parsed.host is None
    assert dockerfile_env()["STAC_STATIC_HOST"] == "0.0.0.0"


def test_the_image_has_no_health_check_of_its_own_and_compose_one_with_a_start_period() -> None:
    assert not any(line.startswith("HEALTHCHECK") for line in DOCKERFILE.splitlines())  # one definition
    check = COMPOSE["services"]["api"]["healthcheck"]
    assert health_path(check["test"]) == "/_mgmt/ready" and "/_mgmt/ready" in ROUTES
    assert interpolate(check["start_period"]) == "10m"
    assert interpolate(check["start_period"], {"API_START_PERIOD": "45m"}) == "45m"
    bucket_check = health_path(COMPOSE["services"]["bucket"]["healthcheck"]["test"])
    assert (REPO / "server/sample/catalog" / Path(bucket_check).name).is_file()


def run_health_check(port: int) -> int:
    """The api's health check as compose runs it (CMD-SHELL: `/bin/sh -c TEST`) in an
    environment with STAC_STATIC_PORT=port; our interpreter stands in for the image's `python`."""
    test = COMPOSE["services"]["api"]["healthcheck"]["test"]
    assert test.startswith("python ")
    command = shlex.quote(sys.executable) + test[len("python"):]
    env = {**os.environ, "STAC_STATIC_PORT": str(port)}
    return subprocess.run(["/bin/sh", "-c", command], env=env, capture_output=True, timeout=30).returncode


def test_the_health_check_follows_the_port_in_the_environment() -> None:
    with run_server() as base:
        port = urlsplit(base).port
        assert port is not None
        assert run_health_check(port) == 0
    assert run_health_check(free_port()) != 0  # nothing listens there


def test_stac_browser_is_optional_and_points_at_the_api() -> None:
    browser = COMPOSE["services"]["browser"]
    assert browser["profiles"] == ["browser"]
    image, tag = browser["image"].rsplit(":", 1)
    assert image == "ghcr.io/radiantearth/stac-browser"
    assert tag == stac_browser_version()  # the version bench/stac_browser.py tests
    # the API's URL as a browser on the host reaches it: the published port, with the slash of
    # the landing page's self link (STAC Browser compares the two)
    url = urlsplit(browser["environment"]["SB_catalogUrl"])
    published = next(interpolate(p).split(":")[0] for p in COMPOSE["services"]["api"]["ports"])
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
    assert target_host == "api:" + interpolate(COMPOSE["services"]["api"]["ports"][0]).split(":")[-1]
