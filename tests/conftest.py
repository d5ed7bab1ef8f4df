"""Fixtures: the sample catalog's index, an in-process client, the real server, ad-hoc catalogs,
and the two catalogs (sample and synthetic) the extension tests compare with the oracles."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # Starlette >= 1.x warns once, at import, when its TestClient runs on httpx instead of the
    # httpx2 fork. Either works for these tests; only that import-time notice is silenced here,
    # every other warning stays an error (pyproject: filterwarnings = error).
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette\.testclient`")
    from starlette.testclient import TestClient

from server.catalog.loader import LoadReport, load_catalogs
from server.index import Index
from server.runtime.app import create_app
from server.sample import SAMPLE_ROOT
from server.settings import Settings
from tests.helpers import CatalogDir, run_server
from tests.oracles.random_inputs import Vocabulary
from tests.oracles.records import Record, collection_records, item_records
from tests.oracles.search import Oracle
from tests.oracles.synthetic import write_synthetic_catalog

TEST_BASE = "http://testserver"


def _share_httpx_default_ssl_context() -> None:
    """Every httpx.Client (so every httpx.get/post of a test) built an SSL context of its own,
    loading certifi's CA bundle: 25 ms of ssl.create_default_context, 34 ms an httpx.Client()
    at load 3.5, though the tests talk plain HTTP to 127.0.0.1 (test_static_files' proxy made
    one a request). The default one (verify=True, no cert) is made once per environment and
    shared, as SSL contexts may be; a test that gives its own `verify` still gets it."""
    import httpx._transports.default as transport

    create = transport.create_ssl_context
    made: dict[tuple[Any, ...], Any] = {}

    def shared(verify: Any = True, cert: Any = None, trust_env: bool = True) -> Any:
        if verify is not True or cert is not None:
            return create(verify=verify, cert=cert, trust_env=trust_env)
        key = (trust_env, os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
        if key not in made:
            made[key] = create(verify=verify, cert=cert, trust_env=trust_env)
        return made[key]

    transport.create_ssl_context = shared  # type: ignore[assignment]


_share_httpx_default_ssl_context()


# -- the slow preparations, started in the background as the session starts ---------------------

# The test file each preparation of tests/prepare.py is for.
PREPARED_FOR = {"container": "tests/test_container.py", "stac_browser": "tests/test_stac_browser.py",
                "pgstac": "tests/test_pgstac_export.py"}
_preparing: list[subprocess.Popen[bytes]] = []


def _selected(config: pytest.Config, test_file: str) -> bool:
    """Whether the run's arguments (or testpaths) take in ``test_file``."""
    target = Path(__file__).resolve().parents[1] / test_file
    for arg in config.args:
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if target == path or path in target.parents:
            return True
    return False


# Files of a minute or more (cold: the container images, STAC Browser's build; then browsers,
# benchmarks, servers with workers): run first, so that under xdist's --dist loadfile no worker
# is left alone at the end with one of them while the others are idle. The rest keep their order.
# Session 14's run under xdist (load ~10-20): schemathesis 215 s in one test, STAC Browser 140,
# the container's first fixture 107 (its images built meanwhile), bench smoke ~8 min in all.
SLOW_FIRST = ["tests/test_schemathesis.py", "tests/test_container.py", "tests/test_stac_browser.py",
              "tests/test_bench_smoke.py", "tests/test_pgstac_export.py", "tests/test_pages_browser.py",
              "tests/test_workers.py", "tests/test_reload_chain.py", "tests/test_counted_boxes.py"]


def pytest_configure(config: pytest.Config) -> None:
    # xdist's loadfile hands out files largest (most tests) first by default; the order of
    # pytest_collection_modifyitems below is better: the slow files are few tests each.
    if getattr(config.option, "dist", "no") == "loadfile":
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))  # stable: the rest as collected


def pytest_sessionstart(session: pytest.Session) -> None:
    """Cold, the container images (~3.5 min), STAC Browser's npm build (~3 min) and pypgstac's
    virtualenv are mostly downloads that the tests needing them used to wait for one after the
    other; started here (once, in xdist's controller) they overlap the rest of the suite. Each
    test's fixture still does its own step under the same lock (tests/prepare.py), so it waits
    for a preparation under way and finds the result cached. Off with STAC_STATIC_TEST_PREPARE=0;
    not for a run narrowed by -k or -m (which may not reach those tests) or --collect-only."""
    config = session.config
    if hasattr(config, "workerinput") or os.environ.get("STAC_STATIC_TEST_PREPARE") == "0":
        return
    if config.option.collectonly or config.option.keyword or config.option.markexpr:
        return
    names = [name for name, test_file in PREPARED_FOR.items() if _selected(config, test_file)]
    if names:
        log = config._tmp_path_factory.getbasetemp() / "prepare.log"  # type: ignore[attr-defined]
        with open(log, "wb") as out:
            _preparing.append(subprocess.Popen([sys.executable, "-m", "tests.prepare", *names], stdout=out,
                                               stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[1],
                                               start_new_session=True))


def pytest_sessionfinish(session: pytest.Session) -> None:
    """A preparation still running (its tests failed early, or were deselected) is stopped."""
    for proc in _preparing:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture(scope="session")
def sample_load() -> tuple[Index, LoadReport]:
    return load_catalogs([str(SAMPLE_ROOT)])


@pytest.fixture(scope="session")
def sample_index(sample_load: tuple[Index, LoadReport]) -> Index:
    return sample_load[0]


@pytest.fixture(scope="session")
def oracle() -> Oracle:
    """Brute-force answers computed from the sample catalog's JSON files."""
    return Oracle.from_root(SAMPLE_ROOT)


@pytest.fixture(scope="session")
def make_client(sample_index: Index) -> Callable[..., TestClient]:
    """make_client(settings=None, index=None): an in-process client over create_app()."""

    def make(settings: Settings | None = None, index: Index | None = None, **kwargs) -> TestClient:
        app = create_app(settings or Settings(), index=index if index is not None else sample_index)
        return TestClient(app, base_url=TEST_BASE, **kwargs)

    return make


@pytest.fixture(scope="session")
def client(make_client: Callable[..., TestClient]) -> Iterator[TestClient]:
    with make_client() as c:
        yield c


@pytest.fixture(scope="session")
def live_server() -> Iterator[str]:
    """Base URL of the real CLI (`python -m server serve`) on the bundled sample catalog."""
    with run_server() as base:
        yield base


@pytest.fixture
def catalog_dir(tmp_path: Path) -> CatalogDir:
    """A fresh folder to write a small ad-hoc catalog into (see tests.helpers for documents)."""
    return CatalogDir(tmp_path / "catalog")


# -- the extension tests' catalogs: records and vocabulary for the oracles, a client for the server --

SYNTH_SEED = "stac-static-api-synthetic-v1"


@dataclass
class Env:
    client: Any
    oracle: Oracle
    items: list[Record]
    collections: list[Record]
    vocab: Vocabulary


@pytest.fixture(scope="module")
def sample_env(client, oracle: Oracle) -> Env:
    items = item_records(oracle)
    return Env(client, oracle, items, collection_records(oracle.collections), Vocabulary(items))


@pytest.fixture(scope="module")
def synth_env(tmp_path_factory, make_client) -> Iterator[Env]:
    root: Path = tmp_path_factory.mktemp("synthetic")
    write_synthetic_catalog(root, SYNTH_SEED)
    index, report = load_catalogs([str(root)])
    oracle = Oracle.from_root(root / "catalog.json")
    assert index.size == len(oracle.items), report.summary()
    items = item_records(oracle)
    with make_client(index=index) as c:
        yield Env(c, oracle, items, collection_records(oracle.collections), Vocabulary(items))


@pytest.fixture
def sample_copy(tmp_path: Path) -> Path:
    """A copy of the bundled sample catalog's folder, to change under a running server."""
    target = tmp_path / "sample"
    shutil.copytree(SAMPLE_ROOT.parent, target)
    return target
