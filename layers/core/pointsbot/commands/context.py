"""What a command is given and how it is registered: the `command` decorator and `Context`.

member.py and admin.py register their commands here; dispatch.py looks them up and runs them.
Kept apart from dispatch so the commands and their dispatcher do not import each other.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import psycopg

from ..community import audit, members
from ..discord import cards
from ..discord.interactions import MANAGE_GUILD, Interaction, Reply, picture_of
from ..ledger.guilds import GuildPolicy
from ..platform.config import Settings
from ..platform.errors import InvalidInput
from ..platform.i18n import Translator, translator
from ..platform.ids import parse_snowflake
from ..platform.paging import page_number

CommandFn = Callable[["Context", psycopg.Connection], Reply]


@dataclass(frozen=True)
class CommandSpec:
    path: str
    fn: CommandFn
    writes: bool
    # the option naming a member the command writes for, remembered with the caller (one round trip)
    remembers: str | None = None


_REGISTRY: dict[str, CommandSpec] = {}

# An option's autocomplete: (conn, guild id, user id, what was typed) -> (name, value) choices.
AutocompleteFn = Callable[[psycopg.Connection, int, int, str], list[tuple[str, str]]]
_AUTOCOMPLETE: dict[str, AutocompleteFn] = {}


def autocomplete(path: str) -> Callable[[AutocompleteFn], AutocompleteFn]:
    """Register the choices of `/path`'s autocomplete option (read-only, answered inline)."""

    def register(fn: AutocompleteFn) -> AutocompleteFn:
        _AUTOCOMPLETE[path] = fn
        return fn

    return register


def command(
    path: str, *, writes: bool = False, remembers: str | None = None
) -> Callable[[CommandFn], CommandFn]:
    """Register the function that answers `/path` ("balance", "points add", ...). `remembers`
    names the option of a member the command writes for: dispatch records them on contact (with
    the names Discord resolved) in the caller's statement."""

    def register(fn: CommandFn) -> CommandFn:
        _REGISTRY[path] = CommandSpec(path, fn, writes, remembers)
        return fn

    return register


def is_admin(interaction: Interaction, policy: GuildPolicy) -> bool:
    """Decided from what Discord sent with this interaction, never from registration."""
    if interaction.has_permission(MANAGE_GUILD):
        return True
    admin_roles = {str(r) for r in policy.admin_role_ids}
    return bool(admin_roles.intersection(interaction.roles))


@dataclass
class Context:
    """One command's inputs: who asks, where, with which options, under which policy."""

    interaction: Interaction
    path: str
    options: dict[str, Any]
    guild_id: int
    user_id: int
    settings: Settings
    policy: GuildPolicy
    update: bool = False  # a button asked: the answer replaces the message it was on
    # audit rows dispatch writes with the stored answer, in this transaction (`audit_later`)
    audit_rows: list[dict[str, Any]] = field(default_factory=list)

    @property
    def idempotency_key(self) -> str:
        return self.interaction.id

    @property
    def actor_name(self) -> str:
        return self.interaction.username or self.interaction.user_id

    def member(self, name: str = "member") -> int | None:
        value = self.options.get(name)
        return None if value is None else parse_snowflake(value, name)

    def integer(self, name: str, default: int | None = None) -> int | None:
        value = self.options.get(name, default)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidInput(f"The {name} must be a whole number.")
        return value

    def page(self) -> int:
        """The `page` option, clamped (a page past the end is each command's own business)."""
        return page_number(self.options.get("page"))

    def text(self, name: str, default: str = "") -> str:
        value = self.options.get(name, default)
        return value if isinstance(value, str) else default

    def flag(self, name: str) -> bool:
        return self.options.get(name) is True

    def points(self, amount: int) -> str:
        return f"**{self.amount(amount)}**"

    def amount(self, amount: int) -> str:
        """An amount of the guild's currency in the answer's language ("5 points", "5 Punkte")."""
        return self.tr.points(amount, self.policy.currency_name, self.policy.currency_one)

    @property
    def private(self) -> bool:
        from .catalog import is_ephemeral

        return is_ephemeral(self.path)

    @property
    def tr(self) -> Translator:
        """The answer's language: the asker's own for a private answer; for one the channel sees,
        the server's (Discord's guild_locale), as for DMs and other posts to the community."""
        if self.private:
            return translator(self.interaction.locale)
        return translator(self.interaction.guild_locale or self.interaction.locale)

    def avatar(self, user_id: int) -> str:
        """The member's avatar from what Discord sent with this interaction (default when none)."""
        seen = self.interaction.user(str(user_id))
        if seen is None:
            return cards.default_avatar_url(user_id)
        return cards.avatar_url(user_id, seen.avatar, seen.discriminator, guild_id=self.guild_id,
                                member_avatar=seen.member_avatar)  # fmt: skip

    def card(self) -> cards.Card:
        return cards.Card(accent=self.policy.accent_color)

    def answer(self, card: cards.Card, *, ephemeral: bool | None = None) -> Reply:
        """A card as this command's answer (private where the command's answers are)."""
        components, text = card.build()
        return Reply(text, ephemeral=self.private if ephemeral is None else ephemeral,
                     components=components, v2=True)  # fmt: skip

    def audit_later(self, action: str, target: str, after: dict[str, Any]) -> None:
        """An audit row of this command (via slash, naming the interaction), written by dispatch
        in the statement that stores the answer: in this transaction, one round trip fewer."""
        self.audit_rows.append(audit.pending(
            guild_id=self.guild_id, actor_id=self.user_id, actor_name=self.actor_name, action=action,
            target=target, after={**after, "via": "slash", "interaction": self.interaction.id},
        ))  # fmt: skip

    def person(self, user_id: int) -> members.Person:
        """A member named in an option, with the names and picture Discord resolved for them."""
        resolved = self.interaction.users.get(str(user_id))
        return (user_id, resolved.username if resolved else None, resolved.display_name if resolved else None,
                picture_of(resolved, self.guild_id))  # fmt: skip

    def is_bot(self, user_id: int) -> bool:
        raw = ((self.interaction.raw.get("data") or {}).get("resolved") or {}).get("users") or {}
        return bool((raw.get(str(user_id)) or {}).get("bot"))
