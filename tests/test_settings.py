"""Every setting is documented: in the README's settings table and with a help text; a value out
of a setting's range stops the start with its reason."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from server.settings import Settings
from tests.helpers import REPO, run_cli


def test_every_setting_is_in_the_readme_and_has_help() -> None:
    readme = (REPO / "README.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"STAC_STATIC_{name.upper()}" in readme, f"README does not document STAC_STATIC_{name.upper()}"
        assert field.description, f"setting {name} has no description"


def test_environment_variables_are_read(monkeypatch) -> None:
    monkeypatch.setenv("STAC_STATIC_MAX_LIMIT", "50")
    monkeypatch.setenv("STAC_STATIC_ROOTS", '["a.json", "b.json"]')
    settings = Settings()
    assert settings.max_limit == 50 and settings.roots == ["a.json", "b.json"]


@pytest.mark.parametrize("value", ["-1", "nan"])
def test_reload_unreadable_seconds_is_checked(monkeypatch, value: str) -> None:
    monkeypatch.setenv("STAC_STATIC_RELOAD_UNREADABLE_SECONDS", value)
    with pytest.raises(ValidationError, match="reload_unreadable_seconds"):
        Settings()
    monkeypatch.setenv("STAC_STATIC_RELOAD_UNREADABLE_SECONDS", "0")
    assert Settings().reload_unreadable_seconds == 0


@pytest.mark.parametrize(("value", "reason"), [
    ("-1", "greater than or equal to 0"),
    ("86400", "less than or equal to 3600"),  # a day: no stop waits that long for a request
    ("nan", "finite number"),
    ("5s", "valid number"),
])
def test_a_shutdown_grace_out_of_range_stops_the_start(value: str, reason: str) -> None:
    """STAC_STATIC_SHUTDOWN_GRACE_SECONDS is seconds from 0 to an hour: anything else stops the
    start with the setting's name and the reason on one line (exit status 2, nothing served)."""
    result = run_cli(["serve", "--port", "1"], env={"STAC_STATIC_SHUTDOWN_GRACE_SECONDS": value}, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "invalid setting: shutdown_grace_seconds" in result.stderr and reason in result.stderr, result.stderr
    assert "Traceback" not in result.stderr, result.stderr
