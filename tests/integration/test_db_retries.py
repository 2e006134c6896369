"""Database.run's retry policy on a real Postgres: 40001 and 40P01 are retried, nothing else is."""

from __future__ import annotations

import socket
import threading

import psycopg
import pytest

from pointsbot.platform.db import MAX_ATTEMPTS, Database, DatabaseUnavailable

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def rows(database_url):
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE retry_probe (id INT PRIMARY KEY, value INT NOT NULL)")
        conn.execute("INSERT INTO retry_probe VALUES (1, 0), (2, 0)")
    return database_url


def test_a_deadlock_is_retried_and_both_transactions_finish(rows):
    database = Database(rows, pooled=True, pool_max=4)
    both_locked_first = threading.Barrier(2)
    attempts = {"a": 0, "b": 0}

    def opposite_order(conn: psycopg.Connection, name: str, first: int, second: int) -> None:
        attempts[name] += 1
        conn.execute("UPDATE retry_probe SET value = value + 1 WHERE id = %s", (first,))
        if attempts[name] == 1:
            both_locked_first.wait(timeout=10)  # each holds one row and wants the other's
        conn.execute("UPDATE retry_probe SET value = value + 1 WHERE id = %s", (second,))

    errors: list[BaseException] = []

    def run(name: str, first: int, second: int) -> None:
        try:
            database.run(opposite_order, name, first, second)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=("a", 1, 2)), threading.Thread(target=run, args=("b", 2, 1))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert errors == []
        # Postgres broke the deadlock by failing one of them; that one ran again
        assert sorted(attempts.values()) == [1, 2]
        with database.connection() as conn:
            assert conn.execute("SELECT value FROM retry_probe ORDER BY id").fetchall() == [(2,), (2,)]
    finally:
        database.close()


def test_a_serialization_failure_is_retried(rows):
    database = Database(rows, pooled=False)
    attempts = []

    def serializable_increment(conn: psycopg.Connection) -> int:
        attempts.append(1)
        conn.execute("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
        value = conn.execute("SELECT value FROM retry_probe WHERE id = 1").fetchone()[0]
        if len(attempts) == 1:  # someone else commits a change to the row we read
            with psycopg.connect(rows, autocommit=True) as other:
                other.execute("UPDATE retry_probe SET value = value + 100 WHERE id = 1")
        conn.execute("UPDATE retry_probe SET value = %s WHERE id = 1", (value + 1,))
        return value + 1

    try:
        before = database.run(
            lambda conn: conn.execute("SELECT value FROM retry_probe WHERE id = 1").fetchone()[0]
        )
        assert database.run(serializable_increment) == before + 101
        assert len(attempts) == 2
    finally:
        database.close()


def test_other_errors_are_not_retried(rows):
    database = Database(rows, pooled=False)
    attempts = []

    def duplicate(conn: psycopg.Connection) -> None:
        attempts.append(1)
        conn.execute("INSERT INTO retry_probe VALUES (1, 0)")

    try:
        with pytest.raises(psycopg.errors.UniqueViolation):
            database.run(duplicate)
        assert len(attempts) == 1
        # and the connection is fine for the next call
        assert database.run(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)
    finally:
        database.close()


def test_retries_stop_after_max_attempts(rows):
    database = Database(rows, pooled=False)
    attempts = []

    def always_conflicts(conn: psycopg.Connection) -> None:
        attempts.append(1)
        conn.execute("SELECT 1")
        raise psycopg.errors.SerializationFailure("simulated")

    try:
        with pytest.raises(psycopg.errors.SerializationFailure):
            database.run(always_conflicts)
        assert len(attempts) == MAX_ATTEMPTS
    finally:
        database.close()


def test_a_statement_timeout_is_database_unavailable(rows):
    database = Database(rows, pooled=False, statement_timeout_ms=200)
    try:
        with pytest.raises(DatabaseUnavailable, match="did not answer in time"):
            database.run(lambda conn: conn.execute("SELECT pg_sleep(2)"))
        assert database.run(lambda conn: conn.execute("SELECT 1").fetchone()) == (1,)
    finally:
        database.close()


def test_an_unreachable_server_is_database_unavailable():
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    database = Database(f"postgresql://postgres@127.0.0.1:{port}/x", pooled=False, connect_timeout_s=1)
    try:
        with pytest.raises(DatabaseUnavailable):
            database.run(lambda conn: None)
    finally:
        database.close()
