"""Schema migrations: numbered SQL files applied once, in order, each in its own transaction.

Every applied file is recorded with a SHA-256 checksum; an applied file that was edited
afterwards stops the run, because the database no longer matches what the file says.
Run it with `python -m pointsbot.platform.migrate [--database-url URL] [--dir sql]`.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import psycopg

_NAME = re.compile(r"^(\d{3,})_([a-z0-9_]+)\.sql$")
# Any constant will do; it only has to be the same for every migrator of this schema.
_ADVISORY_LOCK = 7_240_519_001


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def default_migrations_dir() -> Path:
    configured = os.environ.get("POINTSBOT_SQL_DIR")
    if configured:
        return Path(configured)
    # layers/core/pointsbot/platform/migrate.py -> repository root / sql
    return Path(__file__).resolve().parents[4] / "sql"


def discover(directory: Path) -> list[Migration]:
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNN_name.sql")
        version = int(match.group(1))
        if version in found:
            raise MigrationError(
                f"two migrations share number {version}: {found[version].path.name}, {path.name}"
            )
        found[version] = Migration(version, match.group(2), path)
    return [found[v] for v in sorted(found)]


def _ensure_table(conn: psycopg.Connection) -> None:
    conn.execute(
        """
        CREATE TABLE IF NOT EXISTS schema_migrations (
            version    INTEGER PRIMARY KEY,
            name       TEXT NOT NULL,
            checksum   TEXT NOT NULL,
            applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
        )
        """
    )


def applied(conn: psycopg.Connection) -> dict[int, tuple[str, str]]:
    rows = conn.execute("SELECT version, name, checksum FROM schema_migrations").fetchall()
    return {version: (name, checksum) for version, name, checksum in rows}


def schema_version(conn: psycopg.Connection) -> int | None:
    """The highest applied migration, or None on an empty database."""
    exists = conn.execute("SELECT to_regclass('schema_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return None
    return conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]


def migrate(dsn: str, directory: Path | None = None, log=print) -> list[Migration]:
    """Apply what is pending; returns the migrations applied by this call.

    Two migrators at once (two cold starts, two deploys) wait for each other on an advisory
    lock taken by each transaction (`pg_advisory_xact_lock`), never held by the session: a
    transaction-mode pooler (PgBouncer, Supavisor, RDS Proxy) may run each transaction on a
    different server connection, where a session lock would be taken on one and "released" on
    another, left held until the pooler closed that connection. So this works through the same
    pooled URL the functions use; each migration checks again, under the lock, that no other
    migrator applied it meanwhile.
    """
    migrations = discover(directory or default_migrations_dir())
    done: list[Migration] = []
    # No prepared statements: the same statement runs once per migration, and through a pooler
    # a statement prepared on one server connection is missing on the next.
    with psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as conn:
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
            _ensure_table(conn)
            recorded = applied(conn)
        known = {m.version for m in migrations}
        for version, (name, _checksum) in sorted(recorded.items()):
            if version not in known:
                raise MigrationError(
                    f"migration {version:03d}_{name}.sql was applied but its file is missing"
                )
        for migration in migrations:
            if migration.version in recorded:
                _check_unchanged(migration, recorded[migration.version][1])
                continue
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
                row = conn.execute(
                    "SELECT checksum FROM schema_migrations WHERE version = %s", (migration.version,)
                ).fetchone()
                if row is not None:  # another migrator applied it while this one waited
                    _check_unchanged(migration, row[0])
                    continue
                conn.execute(migration.sql)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
            log(f"applied {migration.path.name}")
            done.append(migration)
    return done


def _check_unchanged(migration: Migration, recorded_checksum: str) -> None:
    if recorded_checksum != migration.checksum:
        raise MigrationError(
            f"{migration.path.name} was edited after it was applied; "
            "write a new migration instead of changing an applied one"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pointsbot.platform.migrate", description=__doc__)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--dir", type=Path, default=None, help="folder of NNN_name.sql files")
    args = parser.parse_args(argv)
    if not args.database_url:
        print("DATABASE_URL is not set (or pass --database-url)", file=sys.stderr)
        return 2
    try:
        done = migrate(args.database_url, args.dir)
    except MigrationError as exc:
        print(f"migrate: {exc}", file=sys.stderr)
        return 1
    print(f"{len(done)} migration(s) applied" if done else "schema is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
