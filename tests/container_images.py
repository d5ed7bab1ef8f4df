"""The container tests' images, built once and reused: the base (a minimal Debian with Python made
by debootstrap from the mirror apt uses, kept under CACHE) and the image of the Dockerfile on it.

Kept apart from tests/test_container.py so that tests/conftest.py can start these builds in the
background when the session starts (tests/prepare.py), while the other tests run: cold, they are
~3.5 min of mostly downloads. Each build holds a lock (CACHE/build.lock): the fixture that needs
an image waits for a build under way, then finds the base there and the image's layers cached.
Failures raise (pytest.fail) as they did in the fixtures; a background build that failed leaves
nothing behind but its log, and the fixture then builds and reports the failure itself."""

from __future__ import annotations

import contextlib
import fcntl
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import REPO

CACHE = Path(os.environ.get("STAC_STATIC_CONTAINER_CACHE") or Path.home() / ".cache/stac-static-api/container")
CONTAINERS_CONF = """\
[containers]
default_ulimits = []

[engine]
cgroup_manager = "cgroupfs"
runtime = "runc"
"""
API_IMAGE = "localhost/stac-static-api:test"


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


@contextlib.contextmanager
def build_lock() -> Iterator[None]:
    """One build at a time (the background one of tests/prepare.py, a test's fixture), so that a
    fixture waits for a build under way instead of starting a second debootstrap into its folder."""
    CACHE.mkdir(parents=True, exist_ok=True)
    conf = CACHE / "containers.conf"
    if not conf.is_file() or conf.read_text() != CONTAINERS_CONF:  # not rewritten under a podman reading it
        conf.write_text(CONTAINERS_CONF)
    with open(CACHE / "build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def build_base_image() -> str:
    """The base image's name, made first if it is not there."""
    with build_lock():
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


def build_api_image(base_image: str, secrets_folder: Path) -> str:
    """Built as `docker compose build` would (BASE_IMAGE is compose's build argument), on the host's
    network; podman-compose 1.0 passes neither a network nor secrets to its builds."""
    secrets = pip_build_secrets(secrets_folder)
    with build_lock():
        run(["podman", "build", "--network", "host", *secrets, "--build-arg", f"BASE_IMAGE={base_image}",
             "-t", API_IMAGE, str(REPO)], timeout=1800)
    return API_IMAGE
