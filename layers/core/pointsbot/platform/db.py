"""Database access: the one transaction helper every module uses.

A Lambda container keeps one connection and reuses it across invocations; the local runtime
and the tests use a pool. Either way `Database.run(fn, ...)` calls `fn(conn, ...)` inside one
transaction, retrying only on serialization failure (40001) and deadlock (40P01).
A connection the server dropped while it sat idle is noticed before use and replaced.

Nothing here keeps state in the session (no SET, LISTEN, session advisory lock or temporary
table), so the connection may sit behind a transaction-mode pooler; with prepare_threshold
-1 the statement timeout is set per transaction (see `connection_kwargs`).
"""

from __future__ import annotations

import contextvars
import os
import queue
import random
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
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


class DeadlineExceeded(DatabaseUnavailable):
    """An attempt run with `run_within` did not finish in time and was abandoned."""


class Deadline:
    """A wall-clock limit for everything one attempt does with the database: waiting for the
    connection, connecting, every statement, COMMIT.

    Postgres' own timeouts cannot give this. `statement_timeout` is kept by the server, and a
    server whose processes are stopped (or a peer that takes bytes and never answers) keeps
    nothing; a connect waits at least 2 s (libpq's floor), per address. So `expire` shuts down
    the socket of the connection the attempt holds: a call blocked on it returns at once with
    an error, and the server, when it runs again, reads end-of-file after what it was sent and
    rolls back a transaction whose COMMIT it never got. If COMMIT was sent, it may commit: the
    caller's idempotency key makes that and a retry one change, never two.
    """

    def __init__(self, seconds: float) -> None:
        self.expires_at = time.monotonic() + seconds
        self._expired = False
        self._sockets: set[int] = set()
        self._lock = threading.Lock()

    @property
    def expired(self) -> bool:
        return self._expired or time.monotonic() >= self.expires_at

    def remaining(self) -> float:
        return max(0.0, self.expires_at - time.monotonic())

    def check(self) -> None:
        if self.expired:
            raise DeadlineExceeded("the database did not answer within the deadline")

    @contextmanager
    def watching(self, conn: psycopg.Connection) -> Iterator[None]:
        """While the attempt uses `conn`, `expire` may cut it. The socket is let go before the
        connection is closed or handed back, so a reused descriptor number is never cut."""
        fd = conn.pgconn.socket
        with self._lock:
            if self.expired:
                raise DeadlineExceeded("the database did not answer within the deadline")
            self._sockets.add(fd)
        try:
            yield
        finally:
            with self._lock:
                self._sockets.discard(fd)

    def expire(self) -> None:
        with self._lock:
            self._expired = True
            for fd in self._sockets:
                _shut_down(fd)
            self._sockets.clear()


def _shut_down(fd: int) -> None:
    """Shut down the socket behind `fd` (for both ends: the blocked reader wakes with EOF)."""
    try:
        with socket.socket(fileno=os.dup(fd)) as sock:  # the duplicate is closed, the original stays
            sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed or never connected: nothing to cut


# The deadline of the attempt running on this thread (set by `run_within`).
_deadline: ContextVar[Deadline | None] = ContextVar("pointsbot_db_deadline", default=None)


def time_left() -> float | None:
    """Seconds left of the deadline this thread runs under (`run_within`), or None without one:
    for work that paces itself, such as a bulk batch applied in chunks until its time is up."""
    deadline = _deadline.get()
    return None if deadline is None else deadline.remaining()


class _AttemptThreads:
    """The threads `run_within` runs attempts on, kept between calls.

    A thread per attempt cost every interaction a thread start (about 0.1 ms of CPU, more on a
    loaded machine) before its first statement. Here a thread that finished its attempt waits
    for the next one; an attempt abandoned at its deadline keeps its thread until it ends on
    its own, and meanwhile the next call gets another thread. Each attempt runs in a fresh,
    empty context, as on a new thread, so nothing one attempt sets is seen by the next. A
    forked child (the benches fork clients) starts with no threads and forgets the parent's.
    """

    KEEP_IDLE = 4  # threads kept waiting; more than that end when their attempt does

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle: list[queue.SimpleQueue] = []
        os.register_at_fork(after_in_child=self._forget)

    def _forget(self) -> None:
        self._lock = threading.Lock()
        self._idle = []

    def start(self, job: Callable[[], None]) -> None:
        with self._lock:
            jobs = self._idle.pop() if self._idle else None
        if jobs is None:
            jobs = queue.SimpleQueue()
            threading.Thread(target=self._serve, args=(jobs,), name="deadline-attempt", daemon=True).start()
        jobs.put(job)

    def _serve(self, jobs: queue.SimpleQueue) -> None:
        while True:
            contextvars.Context().run(jobs.get())
            with self._lock:
                if len(self._idle) >= self.KEEP_IDLE:
                    return
                self._idle.append(jobs)


_attempt_threads = _AttemptThreads()


def run_within(seconds: float, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Call fn(*args, **kwargs) with a wall-clock deadline of `seconds` and return its result.

    fn runs on a thread other than the caller's (`_AttemptThreads`: one kept from an earlier
    attempt, else a new one), so the caller gets control back when the time is up, whatever fn
    is waiting for; every `Database` call fn makes is bound by the deadline (see `Deadline`).
    Past it, the connection fn holds is cut and DeadlineExceeded is raised here; the abandoned
    attempt ends on its own (a connect that is under way finishes or gives up within its
    connect timeout, then finds the deadline gone and runs nothing).
    """
    deadline = Deadline(seconds)
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def attempt() -> None:
        _deadline.set(deadline)
        try:
            outcome["result"] = fn(*args, **kwargs)
        except BaseException as exc:  # handed to the waiting caller, or dropped if it left
            outcome["error"] = exc
        finally:
            done.set()

    _attempt_threads.start(attempt)
    if not done.wait(seconds):
        deadline.expire()
        raise DeadlineExceeded(f"the database did not answer within {seconds:.2f} s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def connection_kwargs(
    statement_timeout_ms: int = 5000, connect_timeout_s: int = 5, prepare_threshold: int = 5
) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "connect_timeout": connect_timeout_s,
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
    if prepare_threshold < 0:
        # Behind a transaction-mode pooler (PgBouncer, Supavisor, RDS Proxy) a session is not
        # ours: a statement prepared on one server connection is missing on the next, and
        # PgBouncer refuses the `options` startup parameter outright ("unsupported startup
        # parameter"). So no prepared statements, and `Database.run` sets the statement
        # timeout per transaction (SET LOCAL) instead.
        kwargs["prepare_threshold"] = None
    else:
        kwargs["prepare_threshold"] = prepare_threshold
        kwargs["options"] = f"-c statement_timeout={int(statement_timeout_ms)}"
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
        self._options = {"statement_timeout_ms": statement_timeout_ms, "connect_timeout_s": connect_timeout_s,
                         "prepare_threshold": prepare_threshold}  # fmt: skip
        self._kwargs = connection_kwargs(statement_timeout_ms, connect_timeout_s, prepare_threshold)
        # Through a transaction pooler the timeout cannot ride on the session: each transaction
        # sets its own (one more statement per transaction, only in that mode).
        self._timeout_per_transaction = (
            f"SET LOCAL statement_timeout = {int(statement_timeout_ms)}" if prepare_threshold < 0 else None
        )
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
        """A connection in autocommit mode; use `run` for anything that writes.

        Under a deadline (`run_within`) the wait for it is bounded and the deadline may cut it.
        """
        deadline = _deadline.get()
        if self._pool is not None:
            from psycopg_pool import PoolTimeout

            try:
                conn = self._pool.getconn(timeout=deadline.remaining() if deadline else None)
            except (psycopg.OperationalError, PoolTimeout) as exc:
                raise DatabaseUnavailable(str(exc).strip() or "no database connection") from exc
            try:
                if deadline is None:
                    yield conn
                else:
                    with deadline.watching(conn):
                        yield conn
            finally:
                self._pool.putconn(conn)
            return
        if not self._lock.acquire(timeout=deadline.remaining() if deadline else -1):
            raise DeadlineExceeded("the database connection stayed busy until the deadline")
        try:
            if deadline is None:
                yield self._single()
            else:
                deadline.check()  # a connect that outlived the deadline runs nothing more
                conn = self._single()
                with deadline.watching(conn):
                    yield conn
        finally:
            self._lock.release()

    def companion(self) -> Database:
        """Another connection's worth of this database, for work run beside it on another thread:
        a pool is shared as it is; one reused connection (Lambda) gets a Database of its own
        with the same settings, which the caller closes."""
        if self._pool is not None:
            return self
        return Database(self.dsn, **self._options)

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
        deadline = _deadline.get()
        while True:
            attempt += 1
            body_done = False
            if deadline is not None:
                deadline.check()  # no new transaction once the deadline is gone
            try:
                with self.connection() as conn, conn.transaction():
                    if self._timeout_per_transaction is not None:
                        conn.execute(self._timeout_per_transaction)
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
                if deadline is not None and deadline.expired:  # cut by the deadline: no reconnect
                    raise DeadlineExceeded("the database did not answer within the deadline") from exc
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
