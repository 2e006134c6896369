"""Guilds and their policy: the configured limits and switches, overridden per guild."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from ..platform.amounts import MAX_BALANCE, OUT_OF_RANGE
from ..platform.config import Settings
from ..platform.errors import InvalidInput, OutOfRange
from ..platform.ids import parse_snowflake
from ..platform.storable import check_one_line
from ..platform.wording import currency_singular, points

DEFAULT_ACCENT = 0x5865F2  # Discord's blurple (pointsbot.discord.cards.DEFAULT_ACCENT)
MAX_ACCENT = 0xFFFFFF


@dataclass(frozen=True)
class GuildPolicy:
    max_change: int
    daily_cap: int  # 0: no cap
    allow_negative: bool
    transfers_enabled: bool
    dm_notifications: bool
    currency_name: str
    admin_role_ids: tuple[int, ...] = ()
    currency_singular: str = ""  # empty: derived from currency_name (pointsbot.platform.wording)
    # The balances at which the guild's role thresholds sit (kept by community/role_rewards in the
    # guild's settings), so a balance change that crosses none costs no query.
    role_thresholds: tuple[int, ...] = ()
    # Read with the settings from the guild row, so a change needs no second look at it
    # (sql/037); None: not read, and whoever needs it reads it.
    guild_name: str | None = field(default=None, compare=False)
    active_achievements: int | None = field(default=None, compare=False)
    accent_color: int = DEFAULT_ACCENT  # the colour of the bot's answer cards (0xRRGGBB)
    # The server's language as Discord last said (guild_locale): DMs and public posts use it.
    locale: str | None = None
    # Whether the guild's public leaderboard page is on (community.boards); off unless set.
    public_leaderboard: bool = False

    @property
    def currency_one(self) -> str:
        """What one of the currency is called: the guild's singular, or one derived from the name."""
        return self.currency_singular or currency_singular(self.currency_name)

    def points(self, amount: int) -> str:
        """An amount in this guild's currency, singular or plural: "1 point", "5 points"."""
        return points(amount, self.currency_name, self.currency_one)

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["admin_role_ids"] = [str(r) for r in self.admin_role_ids]
        del data["guild_name"], data["active_achievements"]  # the guild row's, not its policy
        return data


# What a guild may override, and how each override is checked.
OVERRIDABLE: dict[str, type] = {
    "max_change": int,
    "daily_cap": int,
    "allow_negative": bool,
    "transfers_enabled": bool,
    "dm_notifications": bool,
    "currency_name": str,
    "currency_singular": str,
    "admin_role_ids": list,
    "accent_color": int,
    "public_leaderboard": bool,  # the public leaderboard page (community.boards), off unless set
}


def policy_from(
    settings: Settings,
    overrides: dict[str, Any] | None,
    guild_name: str | None = None,
    active_achievements: int | None = None,
) -> GuildPolicy:
    overrides = overrides or {}
    roles = tuple(int(r) for r in overrides.get("admin_role_ids", ()) or ())
    # Overrides stored before the balance range existed may be larger; they count as the bound.
    return GuildPolicy(
        max_change=min(int(overrides.get("max_change", settings.max_change)), MAX_BALANCE),
        daily_cap=min(int(overrides.get("daily_cap", settings.daily_cap)), MAX_BALANCE),
        allow_negative=bool(overrides.get("allow_negative", settings.allow_negative)),
        transfers_enabled=bool(overrides.get("transfers_enabled", settings.transfers_enabled)),
        dm_notifications=bool(overrides.get("dm_notifications", settings.dm_notifications)),
        currency_name=str(overrides.get("currency_name", settings.currency_name)),
        admin_role_ids=roles,
        currency_singular=str(overrides.get("currency_singular", "") or ""),
        role_thresholds=tuple(sorted(int(p) for p in overrides.get("role_thresholds", ()) or ())),
        guild_name=guild_name,
        active_achievements=active_achievements,
        accent_color=_accent(overrides.get("accent_color")),
        locale=_locale(overrides.get("locale")),
        public_leaderboard=overrides.get("public_leaderboard") is True,
    )


def _locale(value: Any) -> str | None:
    ok = (
        isinstance(value, str)
        and 0 < len(value) <= 16
        and value.isascii()
        and value.replace("-", "").isalnum()
    )
    return value if ok else None


def remember_locale(conn: psycopg.Connection, guild_id: int, locale: str) -> None:
    """Keep the server's language (Discord's guild_locale of its latest interaction) in its
    settings, for DMs and posts made without an interaction. The caller compares first."""
    if _locale(locale) is None:
        return
    conn.execute(
        "UPDATE guilds SET settings = settings || jsonb_build_object('locale', %s::text) "
        "WHERE guild_id = %s AND settings ->> 'locale' IS DISTINCT FROM %s",
        (locale, guild_id, locale),
    )


def _accent(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ACCENT:
        return DEFAULT_ACCENT
    return value


def ensure_guild(conn: psycopg.Connection, guild_id: int, name: str | None = None) -> dict[str, Any]:
    """The guild's overrides; the guild row is created on first contact."""
    row = conn.execute("SELECT settings FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    if row is not None:
        if name:
            conn.execute(
                "UPDATE guilds SET name = %s WHERE guild_id = %s AND name IS DISTINCT FROM %s",
                (name, guild_id, name),
            )
        return row[0]
    conn.execute(
        "INSERT INTO guilds (guild_id, name) VALUES (%s, %s) ON CONFLICT (guild_id) DO NOTHING",
        (guild_id, name or ""),
    )
    return {}


# The guild row as a change reads it: the overrides, the name (for a DM) and whether any
# achievement is active (for the check after it).
GUILD_ROW = "SELECT settings, name, active_achievements FROM guilds WHERE guild_id = %(guild_id)s"


def guild_policy(conn: psycopg.Connection, settings: Settings, guild_id: int) -> GuildPolicy:
    """The guild's policy; the guild row is created on first contact."""
    row = conn.execute(GUILD_ROW, {"guild_id": guild_id}).fetchone()
    if row is None:
        ensure_guild(conn, guild_id)
        row = conn.execute(GUILD_ROW, {"guild_id": guild_id}).fetchone()
    return policy_from(settings, *row)


# The settings as an admin reads them, for the messages that refuse a value.
LABELS = {
    "max_change": "The largest single change",
    "daily_cap": "The daily cap",
    "allow_negative": "Whether deductions may go below zero",
    "transfers_enabled": "Whether members may give points",
    "dm_notifications": "Whether members get a DM",
    "currency_name": "The currency name",
    "currency_singular": "The currency name for one",
    "admin_role_ids": "The admin roles",
    "accent_color": "The card colour",
    "public_leaderboard": "Whether the leaderboard page is public",
}
MAX_ADMIN_ROLES = 250  # Discord's most roles a guild may have


def validate_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """Check a settings form before it is stored; raises InvalidInput naming the field in words."""
    clean: dict[str, Any] = {}
    for key, value in values.items():
        kind = OVERRIDABLE.get(key)
        if kind is None:
            raise InvalidInput(f"unknown guild setting {key!r}", field=key)
        label = LABELS.get(key, key)
        if kind is int:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise InvalidInput(f"{label} must be a whole number, zero or above.", field=key)
            if key == "accent_color" and value > MAX_ACCENT:
                raise InvalidInput(f"{label} must be a colour from #000000 to #FFFFFF.", field=key)
            if value > MAX_BALANCE:
                raise OutOfRange(OUT_OF_RANGE, field=key)
            if key == "max_change" and value == 0:
                raise InvalidInput(f"{label} must be above zero.", field=key)
        elif kind is bool and not isinstance(value, bool):
            raise InvalidInput(f"{label} must be on or off.", field=key)
        elif key == "currency_singular" and isinstance(value, str) and not value.strip():
            value = ""  # empty: derived from the currency name again
        elif kind is str:
            if not isinstance(value, str) or not 0 < len(value.strip()) <= 32:
                raise InvalidInput(f"{label} must be 1 to 32 characters.", field=key)
            value = check_one_line(value.strip(), label)
        elif kind is list:
            if not isinstance(value, list | tuple) or len(value) > MAX_ADMIN_ROLES:
                raise InvalidInput(f"{label} must be a list of at most {MAX_ADMIN_ROLES} roles.", field=key)
            ids = [parse_snowflake(v, "A role id") for v in value]
            value = [str(v) for v in dict.fromkeys(ids)]
        clean[key] = value
    return clean


def update_guild_settings(conn: psycopg.Connection, guild_id: int, changes: dict[str, Any]) -> dict[str, Any]:
    """Merge validated overrides into the guild's settings; returns the stored settings."""
    ensure_guild(conn, guild_id)
    clean = validate_overrides(changes)
    row = conn.execute(
        "UPDATE guilds SET settings = settings || %s, updated_at = now() WHERE guild_id = %s RETURNING settings",
        (Jsonb(clean), guild_id),
    ).fetchone()
    return row[0]
