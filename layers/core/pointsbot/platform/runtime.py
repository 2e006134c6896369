"""Per-container state of a Lambda function: the settings and one database connection.

Created on first use and kept for the life of the container, so warm invocations reuse them.
The local runtime and tests call `reset()` after they change the environment.
"""

from __future__ import annotations

from .config import get_settings, reset_settings
from .db import Database

_database: Database | None = None
# The URL `_database` was made from (None: given by set_database, kept as it is).
_made_from: str | None = None


def get_database() -> Database:
    global _database, _made_from
    if _database is None or _made_from is not None:
        settings = get_settings()
        if _database is not None and settings.database_url != _made_from:
            # The database URL secret was rotated (pointsbot/platform/secrets.py reads it again after
            # SECRETS_MAX_AGE_S): connect with the new one from now on.
            _database.close()
            _database = None
        if _database is None:
            _database, _made_from = Database.from_settings(settings), settings.database_url
    return _database


def set_database(database: Database) -> None:
    """Use this database for every handler in the process (the local runtime's pool)."""
    global _database, _made_from
    _database, _made_from = database, None


def reset() -> None:
    global _database, _made_from
    if _database is not None:
        _database.close()
    _database, _made_from = None, None
    reset_settings()
