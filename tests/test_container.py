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
import re
import shlex
import shutil
import subprocess
import sys
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

CACHE = Path(os.environ.get("STAC_STATIC_CONTAINER_CACHE") or Path.home() / ".cache/stac-static-api/container")
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""
API_IMAGE = "localhost/stac-static-api:test"
COMPOSE_FILES = [REPO / "docker-compose.yml", REPO / "tests/container/compose.podman.yml"]
CONTAINER_PORT = 9000  # not the image's 8000: the environment moves it
READY_TIMEOUT = 180.0


def env() -> dict[str, str]:
    """Ours, for podman: its own containers.conf, and no STAC_STATIC_* settings of this shell."""
    out = {k: v for k, v in os.environ.items() if not k.startswith("STAC_STATIC_")}
    out["CONTAINERS_CONF"] = str(CACHE / "containers.conf")
    return out


def run(args: list[str], *, timeout: float = 120, check: bool = True,
        extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, cwd=REPO,
                          env={**env(), **(extra_env or {})})
    if check and proc.returncode != 0:
        pytest.fail(f"{shlex.join(args)} exited {proc.returncode}:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}")
    return proc


# -- the base image: Debian with Python, from the mirror apt uses ---------------------------------


def debian_suite() -> str:
    release = dict(line.split("=", 1) for line in Path("/etc/os-release").read_text().splitlines() if "=" in line)
    codename = release.get("VERSION_CODENAME", "").strip('"')
    return codename if release.get("ID") == "debian" and codename else "bookworm"


def debian_mirror(suite: str) -> str:
    """The URI apt fetches `suite` from (deb822 .sources files or sources.list lines)."""
    sources = Path("/etc/apt/sources.list.d")
    for path in sorted(sources.glob("*.sources")) if sources.is_dir() else []:
        for stanza in path.read_text().split("\n\n"):
            fields = dict(re.findall(r"^(\w[\w-]*):\s*(.*)$", stanza, re.MULTILINE))
            if "deb" in fields.get("Types", "").split() and suite in fields.get("Suites", "").split():
                return fields["URIs"].split()[0]
    for line in Path("/etc/apt/sources.list").read_text().splitlines() if Path("/etc/apt/sources.list").is_file() else []:
        words = re.sub(r"\[[^]]*\]", "", line).split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            return words[1]
    return "http://deb.debian.org/debian"


@pytest.fixture(scope="module")
def base_image() -> str:
    CACHE.mkdir(parents=True, exist_ok=True)
    (CACHE / "containers.conf").write_text(CONTAINERS_CONF)
    suite = debian_suite()
    name = f"localhost/stac-static-api-test-base:{suite}"
    if run(["podman", "image", "exists", name], check=False).returncode == 0:
        return name
    rootfs = CACHE / f"{suite}-rootfs"
    if not (rootfs / ".complete").is_file():
        partial = CACHE / f"{suite}-rootfs.partial"
        shutil.rmtree(partial, ignore_errors=True)
        run(["debootstrap", "--variant=minbase", "--include=python3,python3-venv,python3-pip,ca-certificates",
             suite, str(partial), debian_mirror(suite)], timeout=1800)
        shutil.rmtree(rootfs, ignore_errors=True)
        partial.rename(rootfs)
        (rootfs / ".complete").touch()
    run(["bash", "-o", "pipefail", "-c",
         f"tar -C {shlex.quote(str(rootfs))} --exclude ./.complete -c . | podman import - {shlex.quote(name)}"],
        timeout=600)
    return name


# -- the image: the Dockerfile on that base, with the host's pip configuration ---------------------


def pip_build_secrets(folder: Path) -> list[str]:
    """This host's pip configuration as `podman build --secret` arguments: the settings that mean
    something inside the build (index URLs over http(s), trusted hosts, timeouts, proxy) as a
    pip.conf, and the CA bundle pip is told to trust as ca.crt. Secrets are mounted for the
    install step only (Dockerfile): nothing of them is in the image."""
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True,
                            timeout=60).stdout
    config: dict[str, str] = {}
    for line in listed.splitlines():  # `:env:.cert='/etc/ssl/...'`, then `global.cert='...'`: the first wins
        match = re.match(r"^[^.]*\.([\w-]+)='(.*)'$", line)
        if match:
            config.setdefault(match.group(1), match.group(2))
    kept = {}
    for key in ("index-url", "extra-index-url"):
        urls = [url for url in config.get(key, "").split() if url.startswith(("http://", "https://"))]
        if urls:
            kept[key] = " ".join(urls)
    for key in ("trusted-host", "timeout", "default-timeout", "retries", "proxy"):
        if key in config:
            kept[key] = config[key]
    proxy = os.environ.get("HTTPS_PROXY") or os.environ.get("https_proxy")
    if proxy and "proxy" not in kept:
        kept["proxy"] = proxy
    secrets = []
    if kept:
        conf = folder / "pip.conf"
        conf.write_text("[global]\n" + "".join(f"{key} = {value}\n" for key, value in kept.items()))
        secrets += ["--secret", f"id=pip.conf,src={conf}"]
    cert = config.get("cert") or os.environ.get("SSL_CERT_FILE")
    if cert and Path(cert).is_file():
        secrets += ["--secret", f"id=ca.crt,src={cert}"]
    return secrets


@pytest.fixture(scope="module")
def api_image(base_image: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Built as `docker compose build` would (BASE_IMAGE is compose's build argument), on the host's
    network; podman-compose 1.0 passes neither a network nor secrets to its builds."""
    secrets = pip_build_secrets(tmp_path_factory.mktemp("pip"))
    run(["podman", "build", "--network", "host", *secrets, "--build-arg", f"BASE_IMAGE={base_image}",
         "-t", API_IMAGE, str(REPO)], timeout=1800)
    return API_IMAGE


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
