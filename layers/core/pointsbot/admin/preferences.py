"""Each admin's own preferences on the admin site: the time zone every time is shown in.

An admin is keyed by who signed in ('discord:<user id>' or 'local:<name>', sql/045). With no
choice of their own, times are shown in the guild's time zone (the one its weekly and monthly
boards use, community.windows), else in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg

from ..community import windows
from .sessions import Identity

DEFAULT_TIME_ZONE = "UTC"


def admin_key(identity: Identity) -> str:
    if identity.kind == "discord" and identity.user_id is not None:
        return f"discord:{identity.user_id}"
    return f"local:{identity.name.lower()}"


@dataclass(frozen=True)
class TimeZoneChoice:
    zone: str  # the zone times are shown in
    own: str | None  # the admin's own choice, None when following the guild (or UTC)
    guild: str | None  # the guild's zone, if one is set


def time_zone(conn: psycopg.Connection, identity: Identity | None, guild_id: int | None) -> TimeZoneChoice:
    """The zone the admin sees times in: their choice, else the guild's, else UTC (one query)."""
    row = conn.execute(
        """
        SELECT (SELECT time_zone FROM admin_preferences WHERE admin_key = %(k)s),
               (SELECT settings ->> 'time_zone' FROM guilds WHERE guild_id = %(g)s)
        """,
        {"k": admin_key(identity) if identity else "", "g": guild_id},
    ).fetchone()
    own, guild = row[0], row[1]
    return TimeZoneChoice(own or guild or DEFAULT_TIME_ZONE, own, guild)


def set_time_zone(conn: psycopg.Connection, identity: Identity, name: str | None) -> str | None:
    """Store the admin's zone (checked first: nothing is written for an unknown one); None goes
    back to the guild's zone."""
    zone = None if name is None else windows.check_time_zone(conn, name)
    conn.execute(
        """
        INSERT INTO admin_preferences (admin_key, time_zone) VALUES (%s, %s)
        ON CONFLICT (admin_key) DO UPDATE SET time_zone = excluded.time_zone, updated_at = now()
        """,
        (admin_key(identity), zone),
    )
    return zone
