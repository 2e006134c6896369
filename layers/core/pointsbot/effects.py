"""What follows a ledger change inside the same database transaction.

Kept apart from the ledger so the ledger does not import the features built on it
(achievements, the DM outbox); each adds its step to `after_change`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from .guilds import GuildPolicy
    from .ledger import OperationResult


def after_change(conn: psycopg.Connection, result: OperationResult, policy: GuildPolicy) -> None:
    """Runs after every applied (not replayed) ledger operation, before COMMIT."""
    return None
