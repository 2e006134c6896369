"""Database access: the one transaction helper every module uses.

A Lambda container keeps one connection and reuses it across invocations; the local runtime
and the tests use a pool. Either way `Database.run(fn, ...)` calls `fn(conn, ...)` inside one
transaction, retrying only on serialization failure (40001) and deadlock (40P01).
A connection the server dropped while it sat idle is noticed before use and replaced.
"""

from __future__ import annotations

import random
import select
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import tuple_row

from . import storable

T = TypeVar("T")

RETRYABLE = (pg_errors.SerializationFailure, pg_errors.DeadlockDetected)
MAX_ATTEMPTS = 5


class DatabaseUnavailable(RuntimeError):
    """The database could not be reached or did not answer in time. Nothing was written
    by the call that raised this, unless the failure happened during COMMIT itself (then an
    idempotency key makes the retry safe)."""


def connection_kwargs(
    statement_timeout_ms: int = 5000, connect_timeout_s: int = 5, prepare_threshold: int = 5
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": connect_timeout_s,
        "options": f"-c statement_timeout={int(statement_timeout_ms)}",
        "application_name": "pointsbot",
        # A peer that vanished without closing the socket (a NAT or firewall that forgot the
        # connection while Lambda was frozen) would otherwise hang a query for the kernel's
        # retransmission timeout, many minutes: give up on unacknowledged bytes after as long
        # as we would wait for a new connection, then `run` reconnects. TCP only; a Unix
        # socket ignores these.
        "tcp_user_timeout": max(1, int(connect_timeout_s)) * 1000,
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    kwargs["prepare_threshold"] = None if prepare_threshold < 0 else prepare_threshold
    # str and JSON parameters refuse text Postgres cannot store (NUL) with a plain InvalidInput.
    kwargs["cursor_factory"] = storable.CheckedCursor
    return kwargs


def _looks_dead(conn: psycopg.Connection) -> bool:
    """True when an idle connection has been closed by the server.

    A server that ends a session (pg_terminate_backend, a restart, an idle timeout) sends an
    error and closes the socket, so an idle connection with something to read is dead. This
    costs no round trip, unlike a `SELECT 1` on every use.
    """
    if conn.closed or conn.broken:
        return True
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError):
        return True
    # We never LISTEN, so an idle connection has nothing legitimate to say.
    return bool(readable)


class Database:
    """Transactions over one reused connection (Lambda) or a pool (local runtime, tests)."""

    def __init__(
        self,
        dsn: str,
        *,
        pooled: bool = False,
        pool_max: int = 10,
        statement_timeout_ms: int = 5000,
        connect_timeout_s: int = 5,
        prepare_threshold: int = 5,
    ) -> None:
        self.dsn = dsn
        self._kwargs = connection_kwargs(statement_timeout_ms, connect_timeout_s, prepare_threshold)
        self._pool = None
        self._conn: psycopg.Connection | None = None
        self._lock = threading.Lock()
        if pooled:
            from psycopg_pool import ConnectionPool  # local runtime and tests only

            self._pool = ConnectionPool(
                dsn,
                min_size=1,
                max_size=pool_max,
                kwargs=self._kwargs,
                check=ConnectionPool.check_connection,
                open=True,
                timeout=connect_timeout_s + 5,
                # psycopg_pool retries a failed connect in the background with a doubling delay
                # for up to 5 minutes, and asks for no other meanwhile: after an outage the pool
                # stayed without connections for minutes though the database was back. Giving
                # up after one connect timeout lets the next request start a fresh attempt.
                reconnect_timeout=max(1, connect_timeout_s),
            )

    @classmethod
    def from_settings(cls, settings, *, pooled: bool = False) -> Database:
        return cls(
            settings.database_url,
            pooled=pooled,
            pool_max=settings.db_pool_max,
            statement_timeout_ms=settings.db_statement_timeout_ms,
            connect_timeout_s=settings.db_connect_timeout_s,
            prepare_threshold=settings.db_prepare_threshold,
        )

    # -- connections -------------------------------------------------------------------
    def _single(self) -> psycopg.Connection:
        if self._conn is not None and _looks_dead(self._conn):
            try:
                self._conn.close()
            finally:
                self._conn = None
        if self._conn is None:
            try:
                self._conn = psycopg.connect(self.dsn, row_factory=tuple_row, **self._kwargs)
            except psycopg.OperationalError as exc:
                raise DatabaseUnavailable(str(exc).strip()) from exc
        return self._conn

    @contextmanager
    def connection(self) -> Iterator[psycopg.Connection]:
        """A connection in autocommit mode; use `run` for anything that writes."""
        if self._pool is not None:
            from psycopg_pool import PoolTimeout

            try:
                conn = self._pool.getconn()
            except (psycopg.OperationalError, PoolTimeout) as exc:
                raise DatabaseUnavailable(str(exc).strip() or "no database connection") from exc
            try:
                yield conn
            finally:
                self._pool.putconn(conn)
        else:
            with self._lock:
                yield self._single()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.close()
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    # -- transactions ------------------------------------------------------------------
    def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call fn(conn, *args, **kwargs) in one transaction and return what it returns.

        Retries on 40001 and 40P01 only. A connection that breaks before COMMIT was sent
        (the transaction is rolled back by the server) is replaced and the call runs once
        more; a failure of COMMIT itself is reported, never guessed at.
        """
        attempt = 0
        reconnected = False
        while True:
            attempt += 1
            body_done = False
            try:
                with self.connection() as conn, conn.transaction():
                    result = fn(conn, *args, **kwargs)
                    body_done = True
                return result
            except RETRYABLE:
                if attempt >= MAX_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.001, 0.01) * attempt)  # noqa: S311 - jitter only
            except psycopg.OperationalError as exc:
                if isinstance(exc, pg_errors.QueryCanceled):
                    raise DatabaseUnavailable("the database did not answer in time") from exc
                broken = self._conn is None or self._conn.broken or self._pool is not None
                if not body_done and broken and not reconnected:
                    reconnected = True
                    if self._conn is not None:
                        self._conn.close()
                        self._conn = None
                    continue
                raise DatabaseUnavailable(str(exc).strip() or "database connection lost") from exc

    def fetchall(self, sql: str, params: Any = None) -> list[tuple]:
        return self.run(lambda conn: conn.execute(sql, params).fetchall())

    def fetchone(self, sql: str, params: Any = None) -> tuple | None:
        return self.run(lambda conn: conn.execute(sql, params).fetchone())
