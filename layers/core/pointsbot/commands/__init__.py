"""Slash commands: the definitions (one place), their registration, and what each does.

Importing this package is cheap: the definitions and their sync are imported on first use of
their names, the command logic and the database with the first `execute`, so a PING (which
imports `commands.endpoint`, hence this package) pays for none of them on a cold start.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalog import COMMANDS, definitions, definitions_hash
    from .dispatch import Outcome
    from .sync import SyncResult, plan, sync_commands

# name -> the module of this package that defines it, imported when the name is first read
_LAZY = {"COMMANDS": "catalog", "definitions": "catalog", "definitions_hash": "catalog",
         "SyncResult": "sync", "plan": "sync", "sync_commands": "sync"}  # fmt: skip

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
    from .catalog import definitions

    return definitions()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
