"""Through PgBouncer in transaction mode (as Neon's and Supabase's poolers run): nothing the bot
does may rely on its session. The ledger, interactions and worker modules marked
`through_pgbouncer` run whole through the pooler too; these are the session-state cases."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from pointsbot.platform import migrate
from pointsbot.platform.db import Database, DatabaseUnavailable
from pointsbot_local import pg

pytestmark = pytest.mark.integration


@pytest.fixture
def pooled_empty(pg_admin_dsn: str, pgbouncer) -> Iterator[tuple[str, str]]:
    """An empty database: (direct DSN, DSN through the pooler)."""
    dsn = pg.create_database(pg_admin_dsn, "pb_pooler")
    yield dsn, pgbouncer.url_for(dsn)
    pg.drop_database(pg_admin_dsn, dsn)


def test_a_pooled_database_connects_and_keeps_its_statement_timeout(pooled_empty):
    # PgBouncer refuses the `options` startup parameter the timeout used to ride on
    # ("unsupported startup parameter: options"): with prepare_threshold -1 it is set per
    # transaction instead, and still cuts a slow statement.
    _direct, through = pooled_empty
    database = Database(through, pooled=False, statement_timeout_ms=200, prepare_threshold=-1)
    try:
        assert database.fetchone("SHOW statement_timeout") == ("200ms",)
        with pytest.raises(DatabaseUnavailable, match="did not answer in time"):
            database.run(lambda conn: conn.execute("SELECT pg_sleep(2)"))
        assert database.fetchone("SELECT 1") == (1,)
    finally:
        database.close()


def test_a_transaction_timeout_does_not_leak_to_the_next_client_of_the_server_connection(pooled_empty):
    _direct, through = pooled_empty
    short = Database(through, pooled=False, statement_timeout_ms=150, prepare_threshold=-1)
    try:
        short.fetchone("SELECT 1")
    finally:
        short.close()
    # Another client, no timeout of its own, on the server connection the first one used
    with psycopg.connect(through, autocommit=True, prepare_threshold=None) as other:
        assert other.execute("SELECT pg_sleep(0.3)::text, 'finished'").fetchone() == ("", "finished")


def test_repeated_statements_run_through_the_pooler_with_prepared_statements_off(pooled_empty):
    # Well past psycopg's default threshold of 5, from clients whose transactions the pooler
    # spreads over several server connections.
    _direct, through = pooled_empty
    database = Database(through, pooled=True, pool_max=8, prepare_threshold=-1)
    errors: list[BaseException] = []

    def client() -> None:
        try:
            for i in range(30):
                assert database.fetchone("SELECT %s::int + 1", (i,)) == (i + 1,)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=client) for _ in range(8)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        database.close()
    assert errors == []


def test_two_migrators_through_the_pooler_apply_each_migration_once(pooled_empty, tmp_path: Path):
    # A session advisory lock through a transaction pooler locks one server connection and may
    # be "taken" again by the other migrator on the same connection: both ran at once and one
    # failed on the other's half-applied migration. Each transaction now takes its own lock.
    direct, through = pooled_empty
    (tmp_path / "001_slow_things.sql").write_text(
        "SELECT pg_sleep(0.3); CREATE TABLE things (id INT PRIMARY KEY);\n"
    )
    (tmp_path / "002_seed.sql").write_text("SELECT pg_sleep(0.3); INSERT INTO things VALUES (1);\n")
    outcomes: list[object] = []

    def migrator() -> None:
        try:
            outcomes.append([m.version for m in migrate.migrate(through, tmp_path, log=lambda _m: None)])
        except BaseException as exc:  # reported below
            outcomes.append(exc)

    threads = [threading.Thread(target=migrator) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(v for o in outcomes if isinstance(o, list) for v in o) == [1, 2], outcomes
    with psycopg.connect(direct, autocommit=True) as conn:
        assert conn.execute("SELECT id FROM things").fetchall() == [(1,)]
        assert conn.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database "
            "WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        ).fetchone() == (0,)


def test_the_admin_accounts_command_works_through_the_pooler(pooled_empty, pg_admin_dsn, monkeypatch, capsys):
    # `python -m admin_site.accounts` against the deployed (pooled) DATABASE_URL: it built its
    # own Database without the prepare threshold, so it sent the startup options PgBouncer refuses.
    from admin_site import accounts
    from pointsbot.platform.config import reset_settings

    direct, through = pooled_empty
    migrate.migrate(direct, log=lambda _m: None)
    monkeypatch.setenv("DATABASE_URL", through)
    monkeypatch.setenv("DB_PREPARE_THRESHOLD", "-1")
    monkeypatch.setenv("ADMIN_PASSWORD", "a long enough password")
    reset_settings()
    try:
        assert accounts.main(["create", "pooled-admin", "--guild", "940000000000000001"]) == 0
        assert accounts.main(["list"]) == 0
    finally:
        reset_settings()
    assert "pooled-admin: 940000000000000001" in capsys.readouterr().out


def test_the_pooler_lets_an_idle_database_s_server_connections_go(pooled_empty):
    # Each test module makes a database of its own; with PgBouncer's default (server connections
    # kept 10 minutes) every finished module's pool held up to 20 of the server's 100
    # connections, and a whole-suite run beside a bench hit "too many clients already".
    direct, through = pooled_empty
    database = Database(through, pooled=True, pool_max=6, prepare_threshold=-1)
    held = threading.Barrier(6)

    def client() -> None:  # six transactions at once: six server connections
        database.run(lambda conn: (conn.execute("SELECT 1"), held.wait(timeout=10)))

    threads = [threading.Thread(target=client) for _ in range(6)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        database.close()

    def server_connections() -> int:
        with psycopg.connect(direct, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
            return row[0] if row else 0

    assert server_connections() >= 6  # the pooler keeps them for its next clients...
    for _ in range(300):  # ...and closes them once idle (5 s; waited for up to 30 s)
        if server_connections() == 0:
            break
        threading.Event().wait(0.1)
    assert server_connections() == 0
