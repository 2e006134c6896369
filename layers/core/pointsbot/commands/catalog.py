"""Every slash command the bot registers (the catalog), in one place, and a stable hash of them.

Admin commands carry `default_member_permissions` (Manage Server) so Discord hides them from
members by default; the server still checks rights on every use (see dispatch.is_admin),
because a guild can change who sees a command.
"""

from __future__ import annotations

import copy
import hashlib
import json
from typing import TYPE_CHECKING, Any

from ..platform.i18n import C_, N_
from ..platform.paging import MAX_PAGE

if TYPE_CHECKING:
    from ..platform.i18n import Translator

SUB_COMMAND, STRING, INTEGER, BOOLEAN, USER, CHANNEL, ROLE = 1, 3, 4, 5, 6, 7, 8
GUILD_TEXT, GUILD_ANNOUNCEMENT = 0, 5
CHAT_INPUT, USER_MENU, MESSAGE_MENU = 1, 2, 3  # command types: slash, a user's and a message's context menu
GUILD_CONTEXT = 0  # InteractionContextType.GUILD: never in DMs, the bot's data is per guild
GUILD_INSTALL = 0  # ApplicationIntegrationType.GUILD_INSTALL
MANAGE_GUILD = str(1 << 5)
# Discord sends integers as JSON numbers; keep amounts well inside what a double holds exactly.
MAX_AMOUNT = 1_000_000_000
NAME_CONTEXT = "command name"  # the catalogs' msgctxt of command and option names


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


def _menu(kind: int, name: str, *, admin: bool = False) -> dict[str, Any]:
    """A context-menu command (right-click on a member or a message): a name, no description."""
    return {**_command(name, "", admin=admin), "type": kind, "options": []}


def _member(description: str = N_("The member"), required: bool = True) -> dict[str, Any]:
    return _option(USER, C_("command name", "member"), description, required)


def _amount(description: str, minimum: int = 1) -> dict[str, Any]:
    return _option(
        INTEGER, C_("command name", "amount"), description, True, min_value=minimum, max_value=MAX_AMOUNT
    )


def _page() -> dict[str, Any]:
    return _option(
        INTEGER,
        C_("command name", "page"),
        N_("Page number (1 is the first)"),
        min_value=1,
        max_value=MAX_PAGE,
    )


def _period() -> dict[str, Any]:
    return _option(
        STRING,
        C_("command name", "period"),
        N_("All time (the default), this week, this month or the season running"),
        choices=[{"name": name, "value": value} for name, value in
                 ((N_("all time"), "all"), (N_("this week"), "week"), (N_("this month"), "month"),
                  (N_("this season"), "season"))],
    )  # fmt: skip


_REASON = _option(
    STRING, C_("command name", "reason"), N_("Why (shown in the member's history)"), True, max_length=500
)
_SILENT = _option(BOOLEAN, C_("command name", "silent"), N_("Do not DM the member about this change"))

COMMANDS: tuple[dict[str, Any], ...] = (
    # -- members --------------------------------------------------------------------------
    _command(C_("command name", "balance"), N_("Show a balance"),
             _member(N_("Whose balance (yours if empty)"), required=False)),
    _command(C_("command name", "leaderboard"), N_("The members with the most points"), _page(), _period()),
    _command(C_("command name", "rank"), N_("Show a place on the leaderboard"),
             _member(N_("Whose rank (yours if empty)"), required=False), _period()),
    _command(C_("command name", "history"), N_("Your latest point changes"), _page()),
    _command(C_("command name", "achievements"), N_("Achievements earned"),
             _member(N_("Whose achievements (yours if empty)"), required=False)),
    _command(C_("command name", "profile"), N_("A member's points card: balance, rank, achievements"),
             _member(N_("Whose profile (yours if empty)"), required=False)),
    _command(C_("command name", "help"), N_("What you can do with this bot here")),
    _command(
        C_("command name", "email"),
        N_("Your email address"),
        _sub(
            C_("command name", "submit"),
            N_("Submit your email address for an admin to approve"),
            _option(STRING, C_("command name", "address"), N_("Your email address"), True, max_length=254),
        ),
    ),
    _command(
        C_("command name", "give"),
        N_("Give some of your points to another member"),
        _member(N_("Who gets them")),
        _amount(N_("How many")),
        _option(STRING, C_("command name", "reason"), N_("Why (optional)"), max_length=500),
    ),
    _command(C_("command name", "shop"), N_("The rewards you can buy with your points"), _page()),
    _command(
        C_("command name", "buy"),
        N_("Buy a reward with your points"),
        _option(
            STRING, C_("command name", "reward"), N_("Which reward (start typing its name)"), True, max_length=100,
            autocomplete=True,
        ),
    ),
    _command(C_("command name", "purchases"), N_("Your reward purchases and where they stand"), _page()),
    _command(
        C_("command name", "season"),
        N_("Seasons: a fresh board for a stretch of time"),
        _sub(C_("command name", "current"), N_("The season running now: its dates, time left and your place")),
        _sub(
            C_("command name", "standings"),
            N_("The final table of a season that has ended"),
            _option(
                STRING,
                C_("command name", "season"),
                N_("Which season (the latest ended if empty)"),
                max_length=100,
                autocomplete=True,
            ),
            _page(),
        ),
    ),
    # -- admins ---------------------------------------------------------------------------
    _command(
        C_("command name", "points"),
        N_("Change a member's points"),
        _sub(C_("command name", "add"), N_("Add points to a member"), _member(), _amount(N_("How many to add")),
             _REASON, _SILENT),
        _sub(C_("command name", "remove"), N_("Take points from a member"), _member(),
             _amount(N_("How many to take")), _REASON, _SILENT),
        _sub(
            C_("command name", "set"),
            N_("Set a member's balance"),
            _member(),
            _option(INTEGER, C_("command name", "amount"), N_("The new balance"), True, min_value=-MAX_AMOUNT,
                    max_value=MAX_AMOUNT),
            _REASON,
            _SILENT,
        ),
        _sub(
            C_("command name", "revert"),
            N_("Reverse a ledger entry with a new one"),
            _option(INTEGER, C_("command name", "entry"), N_("The entry number (#) to reverse"), True, min_value=1),
            _option(STRING, C_("command name", "reason"), N_("Why (optional)"), max_length=500),
            _SILENT,
        ),
        admin=True,
    ),
    _command(
        C_("command name", "emails"),
        N_("Review email submissions"),
        _sub(C_("command name", "pending"), N_("Submissions waiting for review"), _page()),
        _sub(
            C_("command name", "approve"),
            N_("Approve a member's pending email address"),
            _member(),
            _option(STRING, C_("command name", "note"), N_("A note for the member"), max_length=500),
            _option(INTEGER, C_("command name", "bonus"), N_("Points to award with the approval"), min_value=0,
                    max_value=MAX_AMOUNT),
        ),
        _sub(
            C_("command name", "reject"),
            N_("Reject a member's pending email address"),
            _member(),
            _option(STRING, C_("command name", "note"), N_("Why (sent to the member)"), max_length=500),
        ),
        admin=True,
    ),
    _command(
        C_("command name", "member"), N_("Look up a member"),
        _sub(C_("command name", "info"), N_("A member's profile and points"), _member()), admin=True,
    ),
    _command(
        C_("command name", "seasons"),
        N_("Run seasons: start, end early, rename; the server's time zone"),
        _sub(
            C_("command name", "start"),
            N_("Start a season now or later"),
            _option(STRING, C_("command name", "name"), N_("The season's name"), True, max_length=100),
            _option(
                STRING, C_("command name", "end"), N_("Last day (2026-12-31) or an end time (2026-12-31 18:00)"),
                True, max_length=20,
            ),
            _option(STRING, C_("command name", "start"), N_("First day or start time (now if empty)"), max_length=20),
            _option(INTEGER, C_("command name", "prize_places"), N_("How many top places win a prize"), min_value=0,
                    max_value=100),
            _option(
                INTEGER, C_("command name", "prize_points"), N_("Points each prize winner gets"), min_value=0,
                max_value=MAX_AMOUNT,
            ),
            _option(ROLE, C_("command name", "prize_role"), N_("A role each prize winner gets")),
            _option(BOOLEAN, C_("command name", "reset_balances"), N_("Reset every balance to zero when the season ends")),
            _option(
                CHANNEL,
                C_("command name", "channel"),
                N_("Post the final top 10 here"),
                channel_types=[GUILD_TEXT, GUILD_ANNOUNCEMENT],
            ),
        ),
        _sub(
            C_("command name", "end"),
            N_("End the running season now (or cancel one not started)"),
            _option(
                STRING, C_("command name", "season"), N_("Which season (the current one if empty)"), max_length=100,
                autocomplete=True,
            ),
        ),
        _sub(
            C_("command name", "rename"),
            N_("Rename a season"),
            _option(STRING, C_("command name", "name"), N_("The new name"), True, max_length=100),
            _option(
                STRING, C_("command name", "season"), N_("Which season (the current one if empty)"), max_length=100,
                autocomplete=True,
            ),
        ),
        _sub(
            C_("command name", "timezone"),
            N_("The server's time zone for weeks, months and season dates"),
            _option(
                STRING,
                C_("command name", "zone"),
                N_("An IANA time zone, e.g. Europe/Berlin or America/New_York"),
                True,
                max_length=64,
            ),
        ),
        admin=True,
    ),
    _command(
        C_("command name", "redemptions"),
        N_("Reward purchases to hand over, or refund"),
        _sub(C_("command name", "pending"), N_("Item purchases waiting to be handed over"), _page()),
        _sub(
            C_("command name", "fulfil"),
            N_("Mark an item purchase as handed over (the member is DMed)"),
            _option(INTEGER, C_("command name", "purchase"), N_("The purchase number (#)"), True, min_value=1),
            _option(STRING, C_("command name", "note"), N_("A note for the member"), max_length=500),
        ),
        _sub(
            C_("command name", "refund"),
            N_("Give a purchase's points back (the member is DMed)"),
            _option(INTEGER, C_("command name", "purchase"), N_("The purchase number (#)"), True, min_value=1),
            _option(STRING, C_("command name", "reason"), N_("Why (sent to the member)"), max_length=500),
        ),
        admin=True,
    ),
    # -- context menus (right-click a member or a message) ------------------------------------
    _menu(USER_MENU, C_("command name", "Points profile")),
    _menu(USER_MENU, C_("command name", "Give points")),
    _menu(USER_MENU, C_("command name", "Award points"), admin=True),
    _menu(MESSAGE_MENU, C_("command name", "Award points for this message"), admin=True),
)  # fmt: skip

ADMIN_COMMANDS = frozenset(c["name"] for c in COMMANDS if c["default_member_permissions"] is not None)
# Answers only the asker sees: personal data, and everything an admin does.
EPHEMERAL_COMMANDS = frozenset(
    {"history", "email", "shop", "buy", "purchases", "profile", "help", *ADMIN_COMMANDS}
)
SLASH_COMMANDS = tuple(c for c in COMMANDS if c["type"] == CHAT_INPUT)


def is_admin_command(path: str) -> bool:
    return path in ADMIN_COMMANDS or path.split(" ", 1)[0] in ADMIN_COMMANDS


def is_ephemeral(path: str) -> bool:
    return path.split(" ", 1)[0] in EPHEMERAL_COMMANDS


def definitions() -> list[dict[str, Any]]:
    """The definitions in the shape of Discord's bulk-overwrite body, with the names and
    descriptions of every catalog language (`name_localizations`, `description_localizations`)."""
    return [_localized(command) for command in COMMANDS]


def _localized(item: dict[str, Any]) -> dict[str, Any]:
    from ..platform.i18n import LANGUAGES, SOURCE_LANGUAGE, discord_locales, translator

    done = copy.deepcopy(item)
    names: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for language in LANGUAGES:
        if language == SOURCE_LANGUAGE:
            continue
        tr = translator(language)
        english_name, english_description = item["name"], item.get("description") or ""
        name = tr.pgettext(NAME_CONTEXT, english_name)
        description = tr._(english_description) if english_description else ""
        for locale in discord_locales(language):
            if name != item["name"]:
                names[locale] = name
            if description and description != item["description"]:
                descriptions[locale] = description
    if names:
        done["name_localizations"] = names
    if descriptions:
        done["description_localizations"] = descriptions
    if item.get("options"):
        done["options"] = [_localized(option) for option in item["options"]]
    if item.get("choices"):
        done["choices"] = [_localized_choice(choice) for choice in item["choices"]]
    return done


def _localized_choice(choice: dict[str, Any]) -> dict[str, Any]:
    from ..platform.i18n import LANGUAGES, SOURCE_LANGUAGE, discord_locales, translator

    english = choice["name"]  # marked for the catalogs where the choice is defined
    names = {}
    for language in LANGUAGES:
        if language != SOURCE_LANGUAGE:
            name = translator(language)._(english)
            names.update({locale: name for locale in discord_locales(language) if name != english})
    return {**choice, "name_localizations": names} if names else dict(choice)


def canonical_json(commands: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> str:
    return json.dumps(list(commands), sort_keys=True, separators=(",", ":"))


def definitions_hash() -> str:
    """SHA-256 of the definitions (their translations too); the deploy-time custom resource
    re-registers when it changes."""
    return hashlib.sha256(canonical_json(definitions()).encode()).hexdigest()


def leaf_options(path: str) -> list[dict[str, Any]] | None:
    """The option definitions of `/path` ("points add"), or None if there is no such command."""
    words = path.split(" ")
    options: list[dict[str, Any]] | None = next(
        (c["options"] for c in SLASH_COMMANDS if c["name"] == words[0]), None
    )
    for word in words[1:]:
        sub = next((o for o in options or () if o["type"] == SUB_COMMAND and o["name"] == word), None)
        options = None if sub is None else sub["options"]
    if options and any(o["type"] == SUB_COMMAND for o in options):
        return None  # a command with sub-commands is never run without one
    return options


def option_problem(
    path: str, values: dict[str, Any], types: dict[str, int] | None = None, tr: Translator | None = None
) -> str | None:
    """Why `values` (and the `types` they came as) are not what `/path` declares, as a plain
    sentence in the asker's language; None when they are. Names, types, required options and
    string lengths; not the range of numbers, which the commands and the ledger check with
    their own message.

    Discord checks options against the registered definitions, so this only says no to
    payloads Discord never sends (or to an interaction made under definitions since changed).
    """
    from ..platform.i18n import translator

    tr = tr or translator()
    declared = leaf_options(path)
    if declared is None:
        return None  # an unknown command: dispatch answers that itself
    by_name = {option["name"]: option for option in declared}
    for name in values:
        if name not in by_name:
            return tr._("/{command} has no option called {name}.", command=path, name=repr(name[:32]))
    for option in declared:
        name, value = option["name"], values.get(option["name"])
        if value is None:
            if option.get("required"):
                return tr._("/{command} needs its {name} option.", command=path, name=name)
            continue
        kind = option["type"]
        if types is not None and types.get(name, kind) != kind:
            return tr._(
                "The {name} option came as another type than /{command} has it.", name=name, command=path
            )
        if kind == INTEGER:
            if isinstance(value, bool) or not isinstance(value, int):
                return tr._("The {name} must be a whole number.", name=name)
            # How large or small is the commands' and the ledger's rule (one message for it).
        elif kind == STRING:
            if not isinstance(value, str):
                return tr._("The {name} must be text.", name=name)
            if len(value) > option.get("max_length", 6000):
                return tr._("The {name} can be at most {n} characters long.", name=name,
                            n=tr.number(option.get("max_length", 6000)))  # fmt: skip
        elif kind == BOOLEAN and not isinstance(value, bool):
            return tr._("{name} must be true or false.", name=name)
        elif kind == USER and not _is_snowflake(value):
            return tr._("The {name} must be a member of this server.", name=name)
        elif kind == ROLE and not _is_snowflake(value):
            return tr._("The {name} must be a role of this server.", name=name)
        elif kind == CHANNEL and not _is_snowflake(value):
            return tr._("The {name} must be a channel of this server.", name=name)
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
