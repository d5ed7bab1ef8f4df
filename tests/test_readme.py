"""The README shows what a reader gets: each `$ curl ...` recipe, run as written against the real
server on the sample catalog, prints exactly the lines the README shows under it; and CI runs
the quick start's test command as it stands."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.helpers import REPO, run_server

README = (REPO / "README.md").read_text()
README_BASE = "http://127.0.0.1:8000"


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def shell_examples(text: str) -> list[tuple[str, list[str]]]:
    """(command, output lines) of each `$ command` in the indented blocks of `text`: the command
    runs on while its lines end with a backslash; its output is the lines after it up to a
    blank line, a comment or the next command."""
    examples: list[tuple[str, list[str]]] = []
    lines = [line[4:] for line in text.splitlines() if line.startswith("    ") or not line.strip()]
    i = 0
    while i < len(lines):
        if not lines[i].startswith("$ "):
            i += 1
            continue
        command = [lines[i][2:]]
        while command[-1].endswith("\\"):
            i += 1
            command.append(lines[i])
        i += 1
        output = []
        while i < len(lines) and lines[i].strip() and not lines[i].startswith(("$ ", "#")):
            output.append(lines[i])
            i += 1
        examples.append(("\n".join(command), output))
    return examples


RECIPES = shell_examples(section("Recipes (against the sample catalog)"))


def test_the_recipes_are_found() -> None:
    assert len(RECIPES) >= 5 and all(output for _, output in RECIPES)
    assert all(command.startswith("curl ") and "| jq " in command for command, _ in RECIPES)


@pytest.mark.skipif(shutil.which("curl") is None or shutil.which("jq") is None,
                    reason="the README's recipes need curl and jq (apt-get install curl jq)")
def test_each_recipe_prints_what_the_readme_shows() -> None:
    with run_server() as base:
        for command, output in RECIPES:
            ran = subprocess.run(["bash", "-o", "pipefail", "-c", command.replace(README_BASE, base)],
                                 capture_output=True, text=True, timeout=60)
            assert ran.returncode == 0, (command, ran.stderr)
            assert ran.stdout.splitlines() == output, command


def test_ci_runs_the_quick_start_test_command() -> None:
    blocks = re.findall(r"^    (python3 -m venv .*)$", section("Quick start"), re.MULTILINE)
    assert len(blocks) == 2, blocks  # one serves the sample, one runs the tests
    serve, tests = blocks
    assert serve.endswith("stac-static-api serve") and " -m pytest -rs" in tests
    ci = (REPO / ".ci/run").read_text()
    assert tests in ci.splitlines()
