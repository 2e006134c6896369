"""Names and pictures of members, admins and guilds, for the admin site.

Where they come from, cheapest first:
- every interaction carries the member's names and avatar: `members.remember` keeps them in the
  statement it runs anyway (an UPDATE only when something changed, no extra round trip);
- a Discord sign-in carries the admin's own profile and the icons of their guilds
  (`record_user`, `record_guild`);
- what is missing or older than PROFILE_MAX_AGE is refreshed by the worker from Discord's REST
  API (GET /guilds/{id}, GET /guilds/{id}/members/{user}), task "refresh_profiles". A page asks
  for it (`people` claims what it shows that is stale, at most once per REQUEST_AGAIN) and never
  waits for Discord.

A page looks its people up in one query (`people`: ids in, `Person` out), however many rows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.types.json import Jsonb

from ..discord.interactions import avatar_path
from ..platform.ids import format_snowflake
from ..platform.observability import logger

if TYPE_CHECKING:
    from ..delivery.tasks import Task
    from ..discord.rest import DiscordClient
    from ..platform.db import Database

REFRESH_TASK_KIND = "refresh_profiles"
CDN = "https://cdn.discordapp.com"
PROFILE_MAX_AGE = timedelta(days=3)  # older than this: asked again from Discord
REQUEST_AGAIN = timedelta(minutes=10)  # a refresh asked for and not done is asked again after this
MAX_PER_TASK = 50  # members refreshed by one task (one GET each, paced by the REST client)
MAX_NAME = 100
_HASH = re.compile(r"^(a_)?[0-9a-f]{32}$")  # an icon hash as Discord makes them


def icon_path(guild_id: str | int, icon_hash: Any) -> str | None:
    return f"icons/{guild_id}/{icon_hash}" if isinstance(icon_hash, str) and _HASH.match(icon_hash) else None


def cdn_url(path: str | None, size: int = 64) -> str | None:
    return f"{CDN}/{path}.png?size={size}" if path else None


def _name(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    text = "".join(c for c in value if c.isprintable()).strip()[:MAX_NAME]
    return text or None


@dataclass(frozen=True)
class Person:
    """Someone the site names: a member of the guild, or an admin who signed in with Discord."""

    user_id: int
    name: str | None  # what Discord shows: server nickname, else display name, else username
    username: str | None
    avatar: str | None  # CDN path
    erased: bool = False
    member: bool = False  # has a profile in this guild (a link to the member page makes sense)

    @property
    def label(self) -> str:
        if self.erased:
            return "Erased member"
        return self.name or self.username or format_snowflake(self.user_id) or ""

    @property
    def avatar_url(self) -> str | None:
        return None if self.erased else cdn_url(self.avatar)

    @property
    def initial(self) -> str:
        label = self.name or self.username or ""
        return (label[:1] or "#").upper()


@dataclass(frozen=True)
class GuildProfile:
    guild_id: int
    name: str
    icon: str | None

    @property
    def label(self) -> str:
        return self.name or format_snowflake(self.guild_id) or ""

    @property
    def icon_url(self) -> str | None:
        return cdn_url(self.icon)


# -- looking up: one query per page -------------------------------------------------------------
def people(conn: psycopg.Connection, guild_id: int, user_ids: list[int] | set[int]) -> dict[int, Person]:
    """Everyone in `user_ids` as the site shows them, in one query; ids nobody knows get a
    Person with the id only. Members shown whose profile is missing or old are claimed for a
    refresh: `stale_claimed` below returns them (the caller asks the worker after COMMIT)."""
    ids = sorted({int(u) for u in user_ids})
    if not ids:
        return {}
    rows = conn.execute(
        """
        SELECT u.id, m.user_id IS NOT NULL, m.erased_at IS NOT NULL,
               m.display_name, m.username, m.avatar, d.global_name, d.username, d.avatar
        FROM unnest(%s::bigint[]) AS u(id)
        LEFT JOIN members m ON m.guild_id = %s AND m.user_id = u.id
        LEFT JOIN discord_users d ON d.user_id = u.id
        """,
        (ids, guild_id),
    ).fetchall()
    found = {}
    for uid, member, erased, m_name, m_user, m_avatar, d_name, d_user, d_avatar in rows:
        found[uid] = Person(uid, m_name or d_name, m_user or d_user, m_avatar or d_avatar,
                            erased=bool(erased), member=bool(member))  # fmt: skip
    return found


def claim_stale(conn: psycopg.Connection, guild_id: int, user_ids: list[int] | set[int]) -> list[int]:
    """Of these members, the ones whose profile is missing or older than PROFILE_MAX_AGE and
    not asked for in the last REQUEST_AGAIN; marks them asked for and returns them (at most
    MAX_PER_TASK). One UPDATE on the primary key; nothing when all are fresh."""
    ids = sorted({int(u) for u in user_ids})[:1000]
    if not ids:
        return []
    rows = conn.execute(
        """
        UPDATE members SET profile_requested_at = now()
        WHERE (guild_id, user_id) IN (
            SELECT guild_id, user_id FROM members
            WHERE guild_id = %s AND user_id = ANY(%s) AND erased_at IS NULL
              AND (profile_checked_at IS NULL OR profile_checked_at < now() - %s)
              AND (profile_requested_at IS NULL OR profile_requested_at < now() - %s)
            ORDER BY user_id LIMIT %s FOR UPDATE SKIP LOCKED)
        RETURNING user_id
        """,
        (guild_id, ids, PROFILE_MAX_AGE, REQUEST_AGAIN, MAX_PER_TASK),
    ).fetchall()
    return sorted(r[0] for r in rows)


def guild_profile(conn: psycopg.Connection, guild_id: int) -> tuple[GuildProfile, bool]:
    """The guild's name and icon, and whether it was claimed for a refresh (missing or old)."""
    row = conn.execute(
        """
        UPDATE guilds SET profile_requested_at = now()
        WHERE guild_id = %s
          AND (profile_checked_at IS NULL OR profile_checked_at < now() - %s)
          AND (profile_requested_at IS NULL OR profile_requested_at < now() - %s)
        RETURNING name, icon
        """,
        (guild_id, PROFILE_MAX_AGE, REQUEST_AGAIN),
    ).fetchone()
    if row is not None:
        return GuildProfile(guild_id, row[0] or "", row[1]), True
    row = conn.execute("SELECT name, icon FROM guilds WHERE guild_id = %s", (guild_id,)).fetchone()
    return GuildProfile(guild_id, (row[0] if row else "") or "", row[1] if row else None), False


def request_refresh(guild_id: int, user_ids: list[int], guild: bool = False) -> bool:
    """Ask the worker to refresh these profiles (after COMMIT). Never raises: what is not done
    is claimed again by a later page once REQUEST_AGAIN has passed."""
    if not user_ids and not guild:
        return False
    from ..delivery.tasks import Task, get_task_queue

    payload = {"guild_id": str(guild_id), "user_ids": [str(u) for u in user_ids], "guild": guild}
    try:
        get_task_queue().send(Task(REFRESH_TASK_KIND, payload))
    except Exception:
        logger.warning("could not request a profile refresh; a later page asks again", exc_info=True)
        return False
    return True


# -- recording what arrives ---------------------------------------------------------------------
def record_user(conn: psycopg.Connection, user: dict[str, Any]) -> None:
    """An admin's own profile from a Discord sign-in (GET /users/@me)."""
    try:
        user_id = int(user["id"])
    except (KeyError, TypeError, ValueError):
        return
    values = (
        _name(user.get("username")),
        _name(user.get("global_name")),
        avatar_path(user_id, user.get("avatar")),
    )
    conn.execute(
        """
        INSERT INTO discord_users (user_id, username, global_name, avatar) VALUES (%s, %s, %s, %s)
        ON CONFLICT (user_id) DO UPDATE SET username = EXCLUDED.username, global_name = EXCLUDED.global_name,
            avatar = EXCLUDED.avatar, updated_at = now()
        WHERE (discord_users.username, discord_users.global_name, discord_users.avatar)
              IS DISTINCT FROM (EXCLUDED.username, EXCLUDED.global_name, EXCLUDED.avatar)
        """,
        (user_id, *values),
    )


def record_guild(
    conn: psycopg.Connection, guild_id: int, name: Any, icon_hash: Any, *, checked: bool = False
) -> None:
    """A guild's name and icon as Discord showed them (a sign-in's guild list, or GET /guilds)."""
    conn.execute(
        """
        UPDATE guilds SET name = coalesce(%s, name), icon = %s,
               profile_checked_at = CASE WHEN %s THEN now() ELSE profile_checked_at END
        WHERE guild_id = %s
        """,
        (_name(name), icon_path(guild_id, icon_hash), checked, guild_id),
    )


def record_member(conn: psycopg.Connection, guild_id: int, user_id: int, member: dict[str, Any]) -> None:
    """A member as GET /guilds/{g}/members/{u} answered (never an erased member's names)."""
    user = member.get("user") or {}
    name = _name(member.get("nick")) or _name(user.get("global_name")) or _name(user.get("username"))
    conn.execute(
        """
        UPDATE members SET username = coalesce(%s, username), display_name = coalesce(%s, display_name),
               avatar = %s, profile_checked_at = now()
        WHERE guild_id = %s AND user_id = %s AND erased_at IS NULL
        """,
        (_name(user.get("username")), name, avatar_path(user_id, user.get("avatar"), guild_id, member.get("avatar")),
         guild_id, user_id),
    )  # fmt: skip


def mark_checked(conn: psycopg.Connection, guild_id: int, user_id: int) -> None:
    """Discord has no such member (they left): keep what we have, ask again after PROFILE_MAX_AGE."""
    conn.execute(
        "UPDATE members SET profile_checked_at = now() WHERE guild_id = %s AND user_id = %s",
        (guild_id, user_id),
    )


# -- the worker's side ----------------------------------------------------------------------------
def refresh_task(task: Task) -> None:
    """The "refresh_profiles" task (payload: guild_id, user_ids, guild)."""
    from ..discord.rest import get_client
    from ..platform.runtime import get_database

    try:
        guild_id = int(task.payload.get("guild_id"))
        user_ids = [int(u) for u in task.payload.get("user_ids") or []][:MAX_PER_TASK]
    except (TypeError, ValueError):
        logger.warning("refresh_profiles task with a bad payload", extra={"payload": task.payload})
        return
    refresh(get_database(), get_client(), guild_id, user_ids, guild=bool(task.payload.get("guild")))


def refresh(db: Database, client: DiscordClient, guild_id: int, user_ids: list[int], *, guild: bool) -> int:
    """Ask Discord for the guild (if `guild`) and each member, one GET each, and keep what it
    says; returns how many members were refreshed. A member Discord no longer has is marked
    checked; Discord unreachable or rate limiting stops quietly (the rows stay claimed until
    REQUEST_AGAIN, then a page asks again)."""
    from ..delivery.tasks import time_left_s
    from ..discord.rest import DiscordError, DiscordUnavailable, RateLimited

    done = 0
    try:
        if guild:
            try:
                found = client.guild(guild_id)
                db.run(record_guild, guild_id, found.get("name"), found.get("icon"), checked=True)
            except DiscordError as exc:
                if exc.status not in (403, 404):
                    raise
                logger.info("guild profile not readable", extra={"guild_id": guild_id, "status": exc.status})
        for user_id in user_ids[:MAX_PER_TASK]:
            left = time_left_s()
            if left is not None and left < 3:
                break
            try:
                member = client.guild_member(guild_id, user_id)
            except DiscordError as exc:
                if exc.status in (403, 404):  # left the guild, or the bot cannot see them
                    db.run(mark_checked, guild_id, user_id)
                    continue
                raise
            db.run(record_member, guild_id, user_id, member)
            done += 1
    except (DiscordUnavailable, RateLimited, DiscordError) as exc:
        logger.info("profile refresh stopped; asked again later", extra={"error": str(exc)})
    return done


# -- the guild's roles ------------------------------------------------------------------------------
ROLES_MAX_AGE = timedelta(minutes=10)  # older than this: a page asks Discord again (once)


@dataclass(frozen=True)
class GuildRole:
    id: int
    name: str
    position: int
    managed: bool  # a bot's or an integration's own role: nobody else can hold it


@dataclass(frozen=True)
class GuildRoles:
    """The guild's roles as Discord last listed them; `roles` is None when it never has."""

    roles: tuple[GuildRole, ...] | None
    checked_at: datetime | None
    problem: str | None = None  # why Discord could not be asked just now, in words

    @property
    def choosable(self) -> list[GuildRole]:
        """Roles a member can be given, highest first (not @everyone, not a bot's own role)."""
        return [r for r in self.roles or () if not r.managed and r.name != "@everyone"]

    def name_of(self, role_id: int | str | None) -> str | None:
        for role in self.roles or ():
            if str(role.id) == str(role_id):
                return role.name
        return None


def _roles_from(guild_id: int, listed: Any) -> tuple[GuildRole, ...]:
    roles = []
    for item in listed if isinstance(listed, list) else []:
        try:
            role_id = int(item["id"])
        except (KeyError, TypeError, ValueError):
            continue
        name = "@everyone" if role_id == guild_id else (_name(item.get("name")) or format_snowflake(role_id))
        position = item.get("position")
        roles.append(
            GuildRole(role_id, name, position if isinstance(position, int) else 0, bool(item.get("managed")))
        )
    roles.sort(key=lambda r: (-r.position, r.id))
    return tuple(roles)


def cached_roles(conn: psycopg.Connection, guild_id: int) -> GuildRoles:
    """The guild's roles as kept (no call to Discord)."""
    row = conn.execute(
        "SELECT roles, roles_checked_at FROM guilds WHERE guild_id = %s", (guild_id,)
    ).fetchone()
    if row is None or row[0] is None:
        return GuildRoles(None, None)
    return GuildRoles(_roles_from(guild_id, row[0]), row[1])


def record_roles(conn: psycopg.Connection, guild_id: int, listed: list[dict[str, Any]]) -> GuildRoles:
    """Keep the roles Discord listed (only what the site shows of each)."""
    roles = _roles_from(guild_id, listed)
    kept = [{"id": str(r.id), "name": r.name, "position": r.position, "managed": r.managed} for r in roles]
    row = conn.execute(
        "UPDATE guilds SET roles = %s, roles_checked_at = now() WHERE guild_id = %s RETURNING roles_checked_at",
        (Jsonb(kept), guild_id),
    ).fetchone()
    return GuildRoles(roles, row[0] if row else None)


def guild_roles(db: Database, client: DiscordClient, guild_id: int, *, refresh: bool = False) -> GuildRoles:
    """The guild's roles for a page: as kept when younger than ROLES_MAX_AGE (and not `refresh`),
    else one GET /guilds/{id}/roles, kept. When Discord cannot answer, what was kept (if
    anything) with `problem` saying so; never raises for Discord."""
    from ..discord.rest import DiscordError, DiscordUnavailable, RateLimited

    kept = db.run(cached_roles, guild_id)
    fresh = kept.checked_at is not None and datetime.now(UTC) - kept.checked_at < ROLES_MAX_AGE
    if not refresh and kept.roles is not None and fresh:
        return kept
    try:
        listed = client.guild_roles(format_snowflake(guild_id))
    except DiscordError as exc:
        if exc.code in (10004, 50001):
            problem = "The bot is not in this server any more, so Discord does not show its roles."
        else:
            problem = f"Discord would not list this server's roles ({exc.code or exc.status})."
        return GuildRoles(kept.roles, kept.checked_at, problem)
    except (DiscordUnavailable, RateLimited):
        return GuildRoles(kept.roles, kept.checked_at, "Discord could not be reached to list the roles.")
    return db.run(record_roles, guild_id, listed)
