"""Configuration: defaults, refusals that name the variable, and the README's table."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from pointsbot.platform import config
from pointsbot.platform.config import SETTINGS_TABLE, ConfigError, Settings, load_settings

pytestmark = pytest.mark.unit

README = Path(__file__).resolve().parents[2] / "README.md"
_ROW = re.compile(r"^\|\s*`([A-Z0-9_]+)`\s*\|\s*`([^`]*)`\s*\|(.*)\|\s*$")


def _readme_rows() -> dict[str, tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    section = text.split("\n## Configuration", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        match = _ROW.match(line.strip())
        if match:
            assert match.group(1) not in rows, f"README lists {match.group(1)} twice"
            rows[match.group(1)] = (match.group(2), match.group(3).strip())
    return rows


def _shown(default: object) -> str:
    if default == "":
        return "(empty)"
    if isinstance(default, bool):
        return "true" if default else "false"
    return str(default)


def test_table_and_dataclass_agree():
    names = [s.field for s in SETTINGS_TABLE]
    envs = [s.env for s in SETTINGS_TABLE]
    assert len(set(names)) == len(names) and len(set(envs)) == len(envs)
    assert set(names) == {f.name for f in fields(Settings)}
    for setting in SETTINGS_TABLE:
        assert setting.kind in (str, int, bool)
        assert isinstance(setting.default, setting.kind), setting.env
        assert setting.help.strip(), f"{setting.env} has no help text"


def test_defaults_from_an_empty_environment():
    settings = load_settings({})
    for setting in SETTINGS_TABLE:
        assert getattr(settings, setting.field) == setting.default, setting.env
    # the defaults the ledger leans on
    assert settings.max_change == 1_000_000
    assert settings.daily_cap == 0
    assert settings.allow_negative is False
    assert settings.transfers_enabled is True
    assert settings.discord_api_base_url == "https://discord.com/api/v10"


def test_values_are_read_and_converted():
    settings = load_settings(
        {"POINTS_MAX_CHANGE": " 250 ", "POINTS_ALLOW_NEGATIVE": "Yes", "DM_NOTIFICATIONS": "off",
         "POINTS_CURRENCY_NAME": "stars", "DB_POOL_MAX": ""}
    )  # fmt: skip
    assert settings.max_change == 250
    assert settings.allow_negative is True
    assert settings.dm_notifications is False
    assert settings.currency_name == "stars"
    assert settings.db_pool_max == 10  # empty means the default for a number


@pytest.mark.parametrize("setting", [s for s in SETTINGS_TABLE if s.kind is int], ids=lambda s: s.env)
def test_a_bad_number_names_the_variable(setting):
    with pytest.raises(ConfigError, match=setting.env):
        load_settings({setting.env: "12abc"})
    with pytest.raises(ConfigError, match=setting.env):
        load_settings({setting.env: "1.5"})


@pytest.mark.parametrize("setting", [s for s in SETTINGS_TABLE if s.kind is bool], ids=lambda s: s.env)
def test_a_bad_switch_names_the_variable(setting):
    with pytest.raises(ConfigError, match=setting.env):
        load_settings({setting.env: "maybe"})


@pytest.mark.parametrize(
    ("env", "value"),
    [
        ("POINTS_MAX_CHANGE", "0"),
        ("POINTS_MAX_CHANGE", "-5"),
        ("POINTS_DAILY_CAP", "-1"),
        # Past the balance range (pointsbot.platform.amounts): such a limit could never be used safely.
        ("POINTS_MAX_CHANGE", "1000000000001"),
        ("POINTS_MAX_CHANGE", "9223372036854775807"),
        ("POINTS_DAILY_CAP", "1000000000001"),
    ],
)
def test_out_of_range_values_name_the_variable(env, value):
    with pytest.raises(ConfigError, match=env):
        load_settings({env: value})


def test_settings_are_read_once_and_reset_on_request(monkeypatch):
    monkeypatch.setenv("POINTS_CURRENCY_NAME", "gems")
    config.reset_settings()
    try:
        first = config.get_settings()
        monkeypatch.setenv("POINTS_CURRENCY_NAME", "coins")
        assert config.get_settings() is first and first.currency_name == "gems"
        config.reset_settings()
        assert config.get_settings().currency_name == "coins"
    finally:
        config.reset_settings()


def test_with_overrides_changes_only_what_is_named():
    base = load_settings({})
    changed = base.with_overrides(daily_cap=10)
    assert changed.daily_cap == 10 and base.daily_cap == 0
    assert {f.name for f in fields(Settings) if getattr(base, f.name) != getattr(changed, f.name)} == {
        "daily_cap"
    }


def test_readme_has_a_row_for_every_setting():
    rows = _readme_rows()
    missing = [s.env for s in SETTINGS_TABLE if s.env not in rows]
    assert missing == [], f"README.md's configuration table lacks {missing}"
    unknown = sorted(set(rows) - {s.env for s in SETTINGS_TABLE})
    assert unknown == [], f"README.md's configuration table lists unknown settings {unknown}"
    for setting in SETTINGS_TABLE:
        shown, what = rows[setting.env]
        assert shown == _shown(setting.default), f"README shows {setting.env} default as {shown!r}"
        assert what, f"README row of {setting.env} says nothing"
        if setting.secret:
            assert "secret" in what.lower(), f"README row of {setting.env} should say it is a secret"
