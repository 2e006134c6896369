"""Every slash command the bot registers (the catalog), in one place, and a stable hash of them.

Admin commands carry `default_member_permissions` (Manage Server) so Discord hides them from
members by default; the server still checks rights on every use (see dispatch.is_admin),
because a guild can change who sees a command.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import Any

from ..platform.paging import MAX_PAGE

SUB_COMMAND, STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE = 1, 3, 4, 5, 6, 7, 8
GUILD_TEXT, GUILD_ANNOUNCEMENT = 0, 5
CHAT_INPUT = 1
GUILD_CONTEXT = 0  # InteractionContextType.GUILD: never in DMs, the bot's data is per guild
GUILD_INSTALL = 0  # ApplicationIntegrationType.GUILD_INSTALL
MANAGE_GUILD = str(1 << 5)
# Discord sends integers as JSON numbers; keep amounts well inside what a double holds exactly.
MAX_AMOUNT = 1_000_000_000


def _option(kind: int, name: str, description: str, required: bool = False, **extra: Any) -> dict[str, Any]:
    option: dict[str, Any] = {"type": kind, "name": name, "description": description}
    if required:
        option["required"] = True
    option.update(extra)
    return option


def _sub(name: str, description: str, *options: dict[str, Any]) -> dict[str, Any]:
    return {"type": SUB_COMMAND, "name": name, "description": description, "options": list(options)}


def _command(name: str, description: str, *options: dict[str, Any], admin: bool = False) -> dict[str, Any]:
    return {
        "name": name,
        "type": CHAT_INPUT,
        "description": description,
        "options": list(options),
        "default_member_permissions": MANAGE_GUILD if admin else None,
        "contexts": [GUILD_CONTEXT],
        "integration_types": [GUILD_INSTALL],
        "nsfw": False,
    }


def _member(description: str = "The member", required: bool = True) -> dict[str, Any]:
    return _option(USER, "member", description, required)


def _amount(description: str, minimum: int = 1) -> dict[str, Any]:
    return _option(INTEGER, "amount", description, True, min_value=minimum, max_value=MAX_AMOUNT)


def _page() -> dict[str, Any]:
    return _option(INTEGER, "page", "Page number (1 is the first)", min_value=1, max_value=MAX_PAGE)


def _period() -> dict[str, Any]:
    return _option(
        STRING,
        "period",
        "All time (the default), this week, this month or the season running",
        choices=[{"name": name, "value": value} for name, value in
                 (("all time", "all"), ("this week", "week"), ("this month", "month"), ("this season", "season"))],
    )  # fmt: skip


_REASON = _option(STRING, "reason", "Why (shown in the member's history)", True, max_length=500)
_SILENT = _option(BOOLEAN, "silent", "Do not DM the member about this change")

COMMANDS: tuple[dict[str, Any], ...] = (
    # -- members --------------------------------------------------------------------------
    _command("balance", "Show a balance", _member("Whose balance (yours if empty)", required=False)),
    _command("leaderboard", "The members with the most points", _page(), _period()),
    _command(
        "rank",
        "Show a place on the leaderboard",
        _member("Whose rank (yours if empty)", required=False),
        _period(),
    ),
    _command("history", "Your latest point changes", _page()),
    _command(
        "achievements", "Achievements earned", _member("Whose achievements (yours if empty)", required=False)
    ),
    _command(
        "email",
        "Your email address",
        _sub(
            "submit",
            "Submit your email address for an admin to approve",
            _option(STRING, "address", "Your email address", True, max_length=254),
        ),
    ),
    _command(
        "give",
        "Give some of your points to another member",
        _member("Who gets them"),
        _amount("How many"),
        _option(STRING, "reason", "Why (optional)", max_length=500),
    ),
    _command("shop", "The rewards you can buy with your points", _page()),
    _command(
        "buy",
        "Buy a reward with your points",
        _option(
            STRING, "reward", "Which reward (start typing its name)", True, max_length=100, autocomplete=True
        ),
    ),
    _command("purchases", "Your reward purchases and where they stand", _page()),
    _command(
        "season",
        "Seasons: a fresh board for a stretch of time",
        _sub("current", "The season running now: its dates, time left and your place"),
        _sub(
            "standings",
            "The final table of a season that has ended",
            _option(
                STRING,
                "season",
                "Which season (the latest ended if empty)",
                max_length=100,
                autocomplete=True,
            ),
            _page(),
        ),
    ),
    # -- admins ---------------------------------------------------------------------------
    _command(
        "points",
        "Change a member's points",
        _sub("add", "Add points to a member", _member(), _amount("How many to add"), _REASON, _SILENT),
        _sub("remove", "Take points from a member", _member(), _amount("How many to take"), _REASON, _SILENT),
        _sub(
            "set",
            "Set a member's balance",
            _member(),
            _option(INTEGER, "amount", "The new balance", True, min_value=-MAX_AMOUNT, max_value=MAX_AMOUNT),
            _REASON,
            _SILENT,
        ),
        _sub(
            "revert",
            "Reverse a ledger entry with a new one",
            _option(INTEGER, "entry", "The entry number (#) to reverse", True, min_value=1),
            _option(STRING, "reason", "Why (optional)", max_length=500),
            _SILENT,
        ),
        admin=True,
    ),
    _command(
        "emails",
        "Review email submissions",
        _sub("pending", "Submissions waiting for review", _page()),
        _sub(
            "approve",
            "Approve a member's pending email address",
            _member(),
            _option(STRING, "note", "A note for the member", max_length=500),
            _option(INTEGER, "bonus", "Points to award with the approval", min_value=0, max_value=MAX_AMOUNT),
        ),
        _sub(
            "reject",
            "Reject a member's pending email address",
            _member(),
            _option(STRING, "note", "Why (sent to the member)", max_length=500),
        ),
        admin=True,
    ),
    _command(
        "member", "Look up a member", _sub("info", "A member's profile and points", _member()), admin=True
    ),
    _command(
        "seasons",
        "Run seasons: start, end early, rename; the server's time zone",
        _sub(
            "start",
            "Start a season now or later",
            _option(STRING, "name", "The season's name", True, max_length=100),
            _option(
                STRING, "end", "Last day (2026-12-31) or an end time (2026-12-31 18:00)", True, max_length=20
            ),
            _option(STRING, "start", "First day or start time (now if empty)", max_length=20),
            _option(INTEGER, "prize_places", "How many top places win a prize", min_value=0, max_value=100),
            _option(
                INTEGER, "prize_points", "Points each prize winner gets", min_value=0, max_value=MAX_AMOUNT
            ),
            _option(ROLE, "prize_role", "A role each prize winner gets"),
            _option(BOOLEAN, "reset_balances", "Reset every balance to zero when the season ends"),
            _option(
                CHANNEL,
                "channel",
                "Post the final top 10 here",
                channel_types=[GUILD_TEXT, GUILD_ANNOUNCEMENT],
            ),
        ),
        _sub(
            "end",
            "End the running season now (or cancel one not started)",
            _option(
                STRING, "season", "Which season (the current one if empty)", max_length=100, autocomplete=True
            ),
        ),
        _sub(
            "rename",
            "Rename a season",
            _option(STRING, "name", "The new name", True, max_length=100),
            _option(
                STRING, "season", "Which season (the current one if empty)", max_length=100, autocomplete=True
            ),
        ),
        _sub(
            "timezone",
            "The server's time zone for weeks, months and season dates",
            _option(
                STRING,
                "zone",
                "An IANA time zone, e.g. Europe/Berlin or America/New_York",
                True,
                max_length=64,
            ),
        ),
        admin=True,
    ),
    _command(
        "redemptions",
        "Reward purchases to hand over, or refund",
        _sub("pending", "Item purchases waiting to be handed over", _page()),
        _sub(
            "fulfil",
            "Mark an item purchase as handed over (the member is DMed)",
            _option(INTEGER, "purchase", "The purchase number (#)", True, min_value=1),
            _option(STRING, "note", "A note for the member", max_length=500),
        ),
        _sub(
            "refund",
            "Give a purchase's points back (the member is DMed)",
            _option(INTEGER, "purchase", "The purchase number (#)", True, min_value=1),
            _option(STRING, "reason", "Why (sent to the member)", max_length=500),
        ),
        admin=True,
    ),
)

ADMIN_COMMANDS = frozenset(c["name"] for c in COMMANDS if c["default_member_permissions"] is not None)
# Answers only the asker sees: personal data, and everything an admin does.
EPHEMERAL_COMMANDS = frozenset({"history", "email", "shop", "buy", "purchases", *ADMIN_COMMANDS})


def is_admin_command(path: str) -> bool:
    return path.split(" ", 1)[0] in ADMIN_COMMANDS


def is_ephemeral(path: str) -> bool:
    return path.split(" ", 1)[0] in EPHEMERAL_COMMANDS


def definitions() -> list[dict[str, Any]]:
    """A copy of the definitions, in the shape of Discord's bulk-overwrite body."""
    return copy.deepcopy(list(COMMANDS))


def canonical_json(commands: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> str:
    return json.dumps(list(commands), sort_keys=True, separators=(",", ":"))


def definitions_hash() -> str:
    """SHA-256 of the definitions; the deploy-time custom resource re-registers when it changes."""
    return hashlib.sha256(canonical_json(COMMANDS).encode()).hexdigest()


def leaf_options(path: str) -> list[dict[str, Any]] | None:
    """The option definitions of `/path` ("points add"), or None if there is no such command."""
    words = path.split(" ")
    options: list[dict[str, Any]] | None = next(
        (c["options"] for c in COMMANDS if c["name"] == words[0]), None
    )
    for word in words[1:]:
        sub = next((o for o in options or () if o["type"] == SUB_COMMAND and o["name"] == word), None)
        options = None if sub is None else sub["options"]
    if options and any(o["type"] == SUB_COMMAND for o in options):
        return None  # a command with sub-commands is never run without one
    return options


def option_problem(path: str, values: dict[str, Any], types: dict[str, int] | None = None) -> str | None:
    """Why `values` (and the `types` they came as) are not what `/path` declares, as a plain
    sentence; None when they are. Names, types, required options and string lengths; not the
    range of numbers, which the commands and the ledger check with their own message.

    Discord checks options against the registered definitions, so this only says no to
    payloads Discord never sends (or to an interaction made under definitions since changed).
    """
    declared = leaf_options(path)
    if declared is None:
        return None  # an unknown command: dispatch answers that itself
    by_name = {option["name"]: option for option in declared}
    for name in values:
        if name not in by_name:
            return f"/{path} has no option called {name[:32]!r}."
    for option in declared:
        name, value = option["name"], values.get(option["name"])
        if value is None:
            if option.get("required"):
                return f"/{path} needs its {name} option."
            continue
        kind = option["type"]
        if types is not None and types.get(name, kind) != kind:
            return f"The {name} option came as another type than /{path} has it."
        if kind == INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                return f"The {name} must be a whole number."
            # How large or small is the commands' and the ledger's rule (one message for it).
        elif kind == STRING:
            if not isinstance(value, str):
                return f"The {name} must be text."
            if len(value) > option.get("max_length", 6000):
                return f"The {name} can be at most {option.get('max_length', 6000):,} characters long."
        elif kind == BOOLEAN and not isinstance(value, bool):
            return f"{name} must be true or false."
        elif kind == USER and not _is_snowflake(value):
            return f"The {name} must be a member of this server."
        elif kind in (ROLE, CHANNEL) and not _is_snowflake(value):
            return f"The {name} must be a {'role' if kind == ROLE else 'channel'} of this server."
    return None


def _is_snowflake(value: Any) -> bool:
    """A Discord id as Discord writes it: digits, no sign or leading zero, below 2^63."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= 19
        and value.isascii()
        and value.isdigit()
        and value[0] != "0"
        and int(value) < 2**63
    )
