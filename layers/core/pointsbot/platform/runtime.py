"""Per-container state of a Lambda function: the settings and one database connection.

Created on first use and kept for the life of the container, so warm invocations reuse them.
The local runtime and tests call `reset()` after they change the environment.
"""

from __future__ import annotations

from .config import get_settings, reset_settings
from .db import Database

_database: Database | None = None


def get_database() -> Database:
    global _database
    if _database is None:
        _database = Database.from_settings(get_settings())
    return _database


def set_database(database: Database) -> None:
    """Use this database for every handler in the process (the local runtime's pool)."""
    global _database
    _database = database


def reset() -> None:
    global _database
    if _database is not None:
        _database.close()
    _database = None
    reset_settings()
