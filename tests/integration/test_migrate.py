"""The migrate command on a real, empty database: once, in order, and refusing drift."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pointsbot.platform import migrate
from pointsbot.platform.migrate import MigrationError, schema_version
from pointsbot_local import pg

pytestmark = pytest.mark.integration


@pytest.fixture
def empty_dsn(pg_admin_dsn: str) -> Iterator[str]:
    dsn = pg.create_database(pg_admin_dsn, "pb_migrate")
    yield dsn
    pg.drop_database(pg_admin_dsn, dsn)


@pytest.fixture
def sql_dir(tmp_path: Path) -> Path:
    # 002 needs 001's table, and 003 needs 002's column: only the right order works.
    (tmp_path / "001_things.sql").write_text("CREATE TABLE things (id INT PRIMARY KEY);\n")
    (tmp_path / "002_thing_names.sql").write_text(
        "ALTER TABLE things ADD COLUMN name TEXT NOT NULL DEFAULT '';\n"
    )
    (tmp_path / "003_seed.sql").write_text("INSERT INTO things (id, name) VALUES (1, 'first');\n")
    return tmp_path


def _recorded(dsn: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(
            "SELECT version, name, checksum FROM schema_migrations ORDER BY version"
        ).fetchall()


def test_applies_in_order_once_and_records_checksums(empty_dsn, sql_dir):
    log: list[str] = []
    done = migrate.migrate(empty_dsn, sql_dir, log=log.append)
    assert [m.version for m in done] == [1, 2, 3]
    assert log == ["applied 001_things.sql", "applied 002_thing_names.sql", "applied 003_seed.sql"]
    assert _recorded(empty_dsn) == [
        (v, n, hashlib.sha256((sql_dir / f"{v:03d}_{n}.sql").read_bytes()).hexdigest())
        for v, n in [(1, "things"), (2, "thing_names"), (3, "seed")]
    ]
    # a second run applies nothing (the seed row would be a duplicate key if it did)
    assert migrate.migrate(empty_dsn, sql_dir, log=log.append) == []
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT id, name FROM things").fetchall() == [(1, "first")]
        assert schema_version(conn) == 3
    # a new file is applied on its own
    (sql_dir / "004_more.sql").write_text("INSERT INTO things VALUES (2, 'second');\n")
    assert [m.version for m in migrate.migrate(empty_dsn, sql_dir, log=log.append)] == [4]


def test_refuses_an_applied_file_that_was_edited(empty_dsn, sql_dir):
    migrate.migrate(empty_dsn, sql_dir, log=lambda _m: None)
    (sql_dir / "002_thing_names.sql").write_text("ALTER TABLE things ADD COLUMN name TEXT;\n")
    (sql_dir / "004_more.sql").write_text("CREATE TABLE more (id INT);\n")
    with pytest.raises(MigrationError, match=r"002_thing_names\.sql was edited"):
        migrate.migrate(empty_dsn, sql_dir, log=lambda _m: None)
    # nothing after the drift was applied either
    assert [r[0] for r in _recorded(empty_dsn)] == [1, 2, 3]


def test_refuses_a_missing_applied_file(empty_dsn, sql_dir, capsys):
    migrate.migrate(empty_dsn, sql_dir, log=lambda _m: None)
    (sql_dir / "003_seed.sql").unlink()
    with pytest.raises(MigrationError, match=r"003_seed\.sql was applied but its file is missing"):
        migrate.migrate(empty_dsn, sql_dir, log=lambda _m: None)
    # the command line says it in one line and exits 1
    assert migrate.main(["--database-url", empty_dsn, "--dir", str(sql_dir)]) == 1
    assert "missing" in capsys.readouterr().err


def test_a_failing_migration_is_rolled_back_and_not_recorded(empty_dsn, sql_dir):
    (sql_dir / "004_broken.sql").write_text("CREATE TABLE half (id INT);\nSELECT no_such_function();\n")
    with pytest.raises(psycopg.errors.UndefinedFunction):
        migrate.migrate(empty_dsn, sql_dir, log=lambda _m: None)
    assert [r[0] for r in _recorded(empty_dsn)] == [1, 2, 3]
    with psycopg.connect(empty_dsn) as conn:
        assert conn.execute("SELECT to_regclass('half')").fetchone()[0] is None
    # once fixed, it applies
    (sql_dir / "004_broken.sql").write_text("CREATE TABLE half (id INT);\n")
    assert [m.version for m in migrate.migrate(empty_dsn, sql_dir, log=lambda _m: None)] == [4]


def test_the_project_schema_applies_to_an_empty_database(empty_dsn):
    assert migrate.migrate(empty_dsn, log=lambda _m: None)
    assert migrate.main(["--database-url", empty_dsn]) == 0
    with psycopg.connect(empty_dsn) as conn:
        assert schema_version(conn) == max(
            m.version for m in migrate.discover(migrate.default_migrations_dir())
        )
