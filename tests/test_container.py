"""The container for real: the Dockerfile built and docker-compose.yml run with podman and
podman-compose, reached from this host as a user would reach it.

No Docker engine and no container registry are needed: the base image is a minimal Debian with
Python made by debootstrap from the mirror apt uses (cached, see CACHE), the image is built on it
(the Dockerfile's BASE_IMAGE argument) with this host's pip configuration passed as build secrets,
and tests/container/compose.podman.yml swaps the registry's nginx for that Debian image running
Python's http.server. Then: the api gets healthy on the port its environment names (9000, moved
from 8000, and the health check follows it), a search answers through the published port, an asset
href the API gives is downloaded from the host, a SIGHUP reloads what changed in the bucket, a
killed server is started again (restart policy), and an s3:// root (moto on loopback) loads in the
image.

Opt-in (the first run bootstraps Debian, ~3 minutes; later runs reuse it):
STAC_STATIC_TEST_CONTAINERS=1, as root, with `apt-get install podman runc debootstrap podman-compose`.
STAC_STATIC_CONTAINER_CACHE is where the Debian tree is kept (default ~/.cache/stac-static-api/container).
Podman runs with runc and cgroupfs from a containers.conf of its own (CONTAINERS_CONF): crun refuses
hybrid cgroup hierarchies, and without systemd there is no other cgroup manager. Nothing runs the
health checks on a schedule without systemd either: the tests run them (`podman healthcheck run`)
where Docker would."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pystac_client import Client

from server.index import Index
from server.sample import SAMPLE_ROOT
from tests.container_images import build_api_image, build_base_image, run
from tests.helpers import REPO, CatalogDir, catalog, collection, free_port, item, link

TOOLS = ("podman", "runc", "podman-compose", "debootstrap")
MISSING = [tool for tool in TOOLS if shutil.which(tool) is None]
# Skipped as a whole, so `pytest -rs` says why once.
if os.environ.get("STAC_STATIC_TEST_CONTAINERS") != "1":
    pytest.skip("container tests are opt-in: STAC_STATIC_TEST_CONTAINERS=1 (root; apt-get install podman runc "
                "debootstrap podman-compose; the first run bootstraps Debian, ~3 min)", allow_module_level=True)
if MISSING:
    pytest.skip(f"container tests need {', '.join(MISSING)} (apt-get install podman runc debootstrap podman-compose)",
                allow_module_level=True)
if os.geteuid() != 0:
    pytest.skip("container tests need root (rootful podman, debootstrap)", allow_module_level=True)

COMPOSE_FILES = [REPO / "docker-compose.yml", REPO / "tests/container/compose.podman.yml"]
CONTAINER_PORT = 9000  # not the image's 8000: the environment moves it
READY_TIMEOUT = 180.0


@pytest.fixture(scope="module")
def base_image() -> str:
    return build_base_image()


@pytest.fixture(scope="module")
def api_image(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return build_api_image(base_image, tmp_path_factory.mktemp("pip"))


def test_the_build_context_holds_what_the_image_needs_and_nothing_else(base_image: str, tmp_path: Path) -> None:
    """.dockerignore as the engine applies it: everything a `COPY .` of the context receives."""
    (tmp_path / "Containerfile").write_text(f"FROM {base_image}\nCOPY . /context\n")
    image = "localhost/stac-static-api-test-context:latest"
    run(["podman", "build", "--network", "none", "-f", str(tmp_path / "Containerfile"), "-t", image, str(REPO)])
    try:
        listed = run(["podman", "run", "--rm", image, "find", "/context", "-mindepth", "1"]).stdout.split()
    finally:
        run(["podman", "rmi", "-f", image], check=False)
    paths = {path.removeprefix("/context/") for path in listed}
    assert {path.split("/")[0] for path in paths} == {"pyproject.toml", "README.md", "server"}
    assert "server/sample/catalog/catalog.json" in paths
    assert not [path for path in paths if "__pycache__" in path or path.endswith(".pyc")]


def test_the_image_runs_as_a_user_and_has_the_extras(api_image: str) -> None:
    assert run(["podman", "run", "--rm", "--entrypoint", "id", api_image, "-u"]).stdout.strip() != "0"
    run(["podman", "run", "--rm", "--entrypoint", "python", api_image, "-c", "import boto3, pyarrow, stac_geoparquet"])
    # The build's pip configuration stayed in the build.
    inside = run(["podman", "run", "--rm", "--entrypoint", "sh", api_image, "-c",
                  "ls /run/secrets 2>/dev/null; env | grep -c '^PIP_' || true"]).stdout.split()
    assert inside == ["0"]


# -- docker-compose.yml, for real ---------------------------------------------------------------


@dataclass
class Stack:
    project: str
    bucket: CatalogDir
    bucket_url: str
    api_url: str
    variables: dict[str, str]

    @property
    def api(self) -> str:
        return f"{self.project}_api_1"

    def compose(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        files = [arg for path in COMPOSE_FILES for arg in ("-f", str(path))]
        return run(["podman-compose", "-p", self.project, *files, *args], timeout=timeout, check=check,
                   extra_env=self.variables)

    def inspect(self, template: str) -> str:
        return run(["podman", "inspect", self.api, "--format", template]).stdout.strip()

    def wait_healthy(self) -> None:
        """Plays Docker's scheduler: runs the container's health check until it passes. The checks
        that fail while the catalog loads fall in the start period: the container is never
        `unhealthy` (with 3 retries and no start period, 3 failures would make it so)."""
        deadline = time.monotonic() + READY_TIMEOUT
        while run(["podman", "healthcheck", "run", self.api], check=False).returncode != 0:
            assert self.inspect("{{.State.Health.Status}}") != "unhealthy"
            if time.monotonic() > deadline:
                logs = run(["podman", "logs", "--tail", "40", self.api], check=False)
                pytest.fail(f"{self.api} not healthy after {READY_TIMEOUT} s:\n{logs.stdout}{logs.stderr}")
            time.sleep(1)

    def ready(self) -> dict[str, Any]:
        return httpx.get(f"{self.api_url}/_mgmt/ready", timeout=10).json()


def write_bucket(bucket: CatalogDir, items: list[str]) -> dict[str, bytes]:
    """A catalog of one collection whose items each have an asset with a relative href; returns
    each asset's bytes by item id."""
    bucket.write("catalog.json", catalog("bucket", links=[link("child", "./col/collection.json")]))
    bucket.write("col/collection.json", collection("col", links=[link("item", f"./{i}/{i}.json") for i in items]))
    assets = {}
    for iid in items:
        assets[iid] = f"asset of {iid} {uuid.uuid4()}\n".encode()
        bucket.path(f"col/{iid}/{iid}.txt").parent.mkdir(parents=True, exist_ok=True)
        bucket.path(f"col/{iid}/{iid}.txt").write_bytes(assets[iid])
        bucket.write(f"col/{iid}/{iid}.json", item(
            iid, collection="col", assets={"data": {"href": f"./{iid}.txt", "type": "text/plain"}}))
    return assets


@pytest.fixture(scope="module")
def stack(api_image: str, base_image: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    bucket = CatalogDir(tmp_path_factory.mktemp("bucket"))
    bucket.root.chmod(0o755)
    write_bucket(bucket, ["item-1"])
    bucket_port, api_port = free_port(), free_port()
    variables = {
        "TEST_BASE_IMAGE": base_image,
        "TEST_API_IMAGE": api_image,
        "BUCKET_DIR": str(bucket.root),
        "BUCKET_PORT": f"127.0.0.1:{bucket_port}",
        "BUCKET_PUBLIC_URL": f"http://127.0.0.1:{bucket_port}/",
        "API_PORT": f"127.0.0.1:{api_port}",
        "STAC_STATIC_PORT": str(CONTAINER_PORT),
        "API_START_PERIOD": "7m",
    }
    stack = Stack(f"ssa-test-{os.getpid()}", bucket, f"http://127.0.0.1:{bucket_port}",
                  f"http://127.0.0.1:{api_port}", variables)
    try:
        # The services `docker compose up` starts: podman-compose 1.0 knows no profiles, and would
        # start the optional ones too (their images cannot be pulled here).
        stack.compose("up", "-d", "bucket", "api")
        stack.wait_healthy()
        yield stack
    finally:
        stack.compose("down", check=False)
        run(["podman", "network", "rm", "-f", f"{stack.project}_default"], check=False)


def test_the_api_is_healthy_on_the_port_its_environment_names(stack: Stack) -> None:
    assert stack.inspect("{{.State.Health.Status}}") == "healthy"
    assert stack.inspect("{{.Config.Healthcheck.StartPeriod}}") == "7m0s"  # API_START_PERIOD reached it
    assert f"STAC_STATIC_PORT={CONTAINER_PORT}" in stack.inspect("{{.Config.Env}}")
    logs = run(["podman", "logs", stack.api])
    assert f"running on http://0.0.0.0:{CONTAINER_PORT}" in logs.stdout + logs.stderr
    assert stack.ready()["status"] == "ready"


def test_a_search_answers_through_the_published_port(stack: Stack) -> None:
    client = Client.open(stack.api_url + "/")
    assert [i.id for i in client.search(collections=["col"]).items()] == ["item-1"]


def test_an_asset_href_from_the_api_downloads_on_the_host(stack: Stack) -> None:
    expected = stack.bucket.path("col/item-1/item-1.txt").read_bytes()
    href = httpx.get(f"{stack.api_url}/collections/col/items/item-1", timeout=10).json()["assets"]["data"]["href"]
    assert href == f"{stack.bucket_url}/col/item-1/item-1.txt"  # not http://bucket/..., a name only compose resolves
    answer = httpx.get(href, timeout=10)
    assert answer.status_code == 200 and answer.content == expected


def test_sighup_reloads_what_changed_in_the_bucket(stack: Stack) -> None:
    before = stack.ready()["version"]
    write_bucket(stack.bucket, ["item-1", "item-2"])
    run(["podman", "kill", "--signal", "HUP", stack.api])
    deadline = time.monotonic() + READY_TIMEOUT
    while (status := stack.ready())["version"] == before:
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert status["last_reload"]["ok"] and status["last_reload"]["reason"] == "SIGHUP"
    found = httpx.get(f"{stack.api_url}/search", params={"collections": "col"}, timeout=10).json()
    assert sorted(f["id"] for f in found["features"]) == ["item-1", "item-2"]


def test_a_killed_server_is_started_again(stack: Stack) -> None:
    """compose's `restart: unless-stopped`: the server killed (as the OOM killer would) comes back."""
    restarts = int(stack.inspect("{{.RestartCount}}"))
    os.kill(int(stack.inspect("{{.State.Pid}}")), 9)
    deadline = time.monotonic() + READY_TIMEOUT
    while int(stack.inspect("{{.RestartCount}}")) == restarts:
        assert time.monotonic() < deadline, "not restarted"
        time.sleep(0.5)
    stack.wait_healthy()
    assert stack.ready()["items"] == 2


# -- an s3:// root in the image ----------------------------------------------------------------


def test_an_s3_root_loads_in_the_image(api_image: str, sample_index: Index) -> None:
    boto3 = pytest.importorskip("boto3", reason="boto3 comes with the test extra")
    moto_server = pytest.importorskip("moto.server", reason="moto[server] comes with the test extra")
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, moto_port = server.get_host_and_port()
    aws = {"AWS_ENDPOINT_URL": f"http://{host}:{moto_port}", "AWS_ACCESS_KEY_ID": "testing",
           "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    name = f"ssa-test-s3-{os.getpid()}"
    try:
        s3 = boto3.client("s3", endpoint_url=aws["AWS_ENDPOINT_URL"], aws_access_key_id="testing",
                          aws_secret_access_key="testing", region_name="us-east-1")
        s3.create_bucket(Bucket="stac-bucket")
        root = SAMPLE_ROOT.parent
        sample = [path for path in root.rglob("*.json")]
        for path in sample:
            s3.put_object(Bucket="stac-bucket", Key=f"stac/{path.relative_to(root).as_posix()}", Body=path.read_bytes())
        port = free_port()
        # The host's network, so the container reaches moto on loopback; STAC_STATIC_HOST keeps
        # the server there too (the image's default is every interface).
        settings = {"STAC_STATIC_HOST": "127.0.0.1", "STAC_STATIC_PORT": str(port), **aws}
        run(["podman", "run", "-d", "--name", name, "--network", "host",
             *[arg for key, value in settings.items() for arg in ("-e", f"{key}={value}")],
             api_image, "s3://stac-bucket/stac/catalog.json"])
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            try:
                ready = httpx.get(f"http://127.0.0.1:{port}/_mgmt/ready", timeout=5)
                if ready.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline or run(["podman", "inspect", name, "--format", "{{.State.Running}}"]
                                                  ).stdout.strip() != "true":
                logs = run(["podman", "logs", name], check=False)
                pytest.fail(f"the s3 root did not load:\n{logs.stdout}{logs.stderr}")
            time.sleep(0.5)
        # What the same catalog loads here from disk (conftest's sample_index).
        assert ready.json()["items"] == sample_index.size and ready.json()["load"]["skipped"] == 0
        listed = httpx.get(f"http://127.0.0.1:{port}/collections", params={"limit": 1000}, timeout=10).json()
        assert {c["id"] for c in listed["collections"]} == set(sample_index.collections)
    finally:
        run(["podman", "rm", "-f", "-t", "2", name], check=False)
        server.stop()
