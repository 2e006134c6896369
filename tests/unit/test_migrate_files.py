"""Finding migration files: numbered, in order, no two with one number."""

from __future__ import annotations

from pathlib import Path

import pytest

from pointsbot.platform import migrate
from pointsbot.platform.migrate import MigrationError, discover

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]


def test_discover_orders_by_number_not_by_name(tmp_path):
    for name in ("010_b.sql", "002_a.sql", "100_c.sql"):
        (tmp_path / name).write_text("SELECT 1;")
    (tmp_path / "README.md").write_text("not a migration")
    found = discover(tmp_path)
    assert [(m.version, m.name) for m in found] == [(2, "a"), (10, "b"), (100, "c")]


@pytest.mark.parametrize("name", ["1_short.sql", "002-dash.sql", "003_Upper.sql", "abc_x.sql"])
def test_badly_named_files_are_refused(tmp_path, name):
    (tmp_path / name).write_text("SELECT 1;")
    with pytest.raises(MigrationError, match=r"NNN_name\.sql"):
        discover(tmp_path)


def test_two_files_with_one_number_are_refused(tmp_path):
    (tmp_path / "002_a.sql").write_text("SELECT 1;")
    (tmp_path / "0002_b.sql").write_text("SELECT 2;")
    with pytest.raises(MigrationError, match="share number 2"):
        discover(tmp_path)


def test_checksum_follows_the_bytes(tmp_path):
    path = tmp_path / "001_x.sql"
    path.write_text("SELECT 1;")
    (first,) = discover(tmp_path)
    before = first.checksum
    path.write_text("SELECT 1; ")
    assert first.checksum != before and len(before) == 64


def test_the_project_migrations_are_well_formed():
    found = discover(ROOT / "sql")
    assert found and found[0].version == 1
    assert migrate.default_migrations_dir() == ROOT / "sql"


def test_cli_without_a_database_url_says_so(monkeypatch, capsys):
    monkeypatch.delenv("DATABASE_URL", raising=False)
    assert migrate.main([]) == 2
    assert "DATABASE_URL" in capsys.readouterr().err
