"""schemathesis against the server's own OpenAPI document (/api), on the real server: no 5xx,
and no response that violates the document (status codes, media types, headers, bodies)."""

from __future__ import annotations

import subprocess
import sys

import pytest

CHECKS = ",".join([
    "not_a_server_error", "status_code_conformance", "content_type_conformance",
    "response_headers_conformance", "response_schema_conformance", "allow_header_conformance",
])


def test_api_document_holds_under_schemathesis(live_server: str, tmp_path) -> None:
    pytest.importorskip("schemathesis", reason="schemathesis comes with the test extra")
    result = subprocess.run(
        [sys.executable, "-m", "schemathesis.cli", "run", f"{live_server}/api", "--checks", CHECKS,
         "--max-examples", "40", "--seed", "1", "--exclude-path", "/_mgmt/reload"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
