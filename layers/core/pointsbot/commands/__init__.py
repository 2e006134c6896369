"""Slash commands: the definitions (one place), their registration, and what each does.

Importing this package is cheap (definitions and registration only); the command logic and
the database come in with the first `execute`, so the register-commands function and a PING
do not pay for them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .catalog import COMMANDS, definitions, definitions_hash
from .sync import SyncResult, plan, sync_commands

if TYPE_CHECKING:
    from .dispatch import Outcome

__all__ = [
    "COMMANDS",
    "SyncResult",
    "command_definitions",
    "definitions",
    "definitions_hash",
    "execute",
    "plan",
    "sync_commands",
]


def execute(*args: Any, **kwargs: Any) -> Outcome:
    """See pointsbot.commands.dispatch.execute."""
    from .dispatch import execute as run

    return run(*args, **kwargs)


def command_definitions() -> list[dict[str, Any]]:
    """The definitions as Discord's bulk overwrite takes them (what deploy_hooks registers)."""
    return definitions()
