"""Registering the commands with Discord: compare, show the difference, overwrite only if needed.

`sync_commands` is what the deploy-time custom resource and the CLI call. Discord's bulk
overwrite (PUT) replaces the whole set, so a command dropped from the definitions disappears.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .catalog import definitions, definitions_hash

# Fields Discord fills in with a default when they are left out; compared with the default.
_COMMAND_DEFAULTS: dict[str, Any] = {
    "type": 1,
    "options": [],
    "default_member_permissions": None,
    "contexts": None,
    "integration_types": [0],
    "nsfw": False,
}
_OPTION_FIELDS = (
    "type", "name", "description", "required", "choices", "options", "min_value", "max_value",
    "min_length", "max_length", "autocomplete", "channel_types", "name_localizations",
    "description_localizations",
)  # fmt: skip
_LOCALIZATIONS = ("name_localizations", "description_localizations")


def _option(option: dict[str, Any]) -> dict[str, Any]:
    # `required: false` and absent mean the same to Discord; 0 (a min_value) is a real value.
    shown = {
        k: option[k]
        for k in _OPTION_FIELDS
        if not (option.get(k) is None or option[k] is False or option[k] == [] or option[k] == {})
    }
    if "options" in shown:
        shown["options"] = [_option(o) for o in shown["options"]]
    return shown


def canonical(command: dict[str, Any]) -> dict[str, Any]:
    """A command as a comparable value: our fields only, Discord's defaults made explicit."""
    shown: dict[str, Any] = {"name": command["name"], "description": command.get("description") or ""}
    for key, default in _COMMAND_DEFAULTS.items():
        value = command.get(key, default)
        shown[key] = default if value is None and key != "default_member_permissions" else value
    if shown["default_member_permissions"] is not None:
        shown["default_member_permissions"] = str(shown["default_member_permissions"])
    for key in ("contexts", "integration_types"):
        if shown[key] is not None:
            shown[key] = sorted(shown[key])
    shown["options"] = [_option(o) for o in shown["options"] or []]
    for key in _LOCALIZATIONS:  # null, absent and {} mean the same to Discord
        shown[key] = command.get(key) or {}
    return shown


@dataclass(frozen=True)
class SyncResult:
    changed: bool
    added: tuple[str, ...]
    removed: tuple[str, ...]
    updated: tuple[str, ...]
    definitions_hash: str
    scope: str  # "global" or "guild <id>"
    diff: tuple[str, ...] = field(default_factory=tuple)
    applied: bool = False

    def summary(self) -> str:
        if not self.changed:
            return f"{self.scope}: the {len(definitions())} commands are up to date (hash {self.definitions_hash[:12]})"
        parts = (
            [f"+{n}" for n in self.added] + [f"-{n}" for n in self.removed] + [f"~{n}" for n in self.updated]
        )
        verb = "updated" if self.applied else "would update"
        return f"{self.scope}: {verb} {', '.join(parts)} (hash {self.definitions_hash[:12]})"


def plan(remote: list[dict[str, Any]], local: list[dict[str, Any]] | None = None) -> SyncResult:
    """What a sync would change, without changing anything."""
    local = definitions() if local is None else local
    ours = {c["name"]: canonical(c) for c in local}
    theirs = {c["name"]: canonical(c) for c in remote}
    added = tuple(sorted(set(ours) - set(theirs)))
    removed = tuple(sorted(set(theirs) - set(ours)))
    updated = tuple(sorted(n for n in set(ours) & set(theirs) if ours[n] != theirs[n]))
    diff: list[str] = [f"+ /{n}" for n in added] + [f"- /{n}" for n in removed]
    for name in updated:
        for key in sorted(set(ours[name]) | set(theirs[name])):
            if ours[name].get(key) != theirs[name].get(key):
                diff.append(
                    f"~ /{name} {key}: {json.dumps(theirs[name].get(key))} -> {json.dumps(ours[name].get(key))}"
                )
    return SyncResult(
        bool(added or removed or updated), added, removed, updated, definitions_hash(), "", tuple(diff)
    )


def sync_commands(
    client: Any, application_id: str, guild_id: str | int | None = None, *, dry_run: bool = False
) -> SyncResult:
    """Make Discord's registered commands equal to the definitions (globally or for one guild).

    Reads what is registered first; when nothing differs, nothing is sent. `client` is a
    pointsbot.discord.rest.DiscordClient.
    """
    remote = client.get_commands(application_id, guild_id)
    result = plan(remote)
    scope = "global" if guild_id is None else f"guild {guild_id}"
    applied = False
    if result.changed and not dry_run:
        client.bulk_overwrite_commands(application_id, definitions(), guild_id)
        applied = True
    return SyncResult(
        result.changed, result.added, result.removed, result.updated, result.definitions_hash, scope,
        result.diff, applied,
    )  # fmt: skip
